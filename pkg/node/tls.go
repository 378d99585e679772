package node

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/switchyard-io/switchyard/pkg/config"
)

// loadTLS builds a listener's TLS configuration from a tls {} block (nil:
// plain TCP). It reads the files now, and gets the certificate's OCSP
// staple when ocsp says to (the stapler, not yet running; nil without
// stapling), so a bad certificate or no staple stops the start (or a
// reload) with the file named.
func (s *Server) loadTLS(t *config.TLS, o *config.OCSP) (*tls.Config, *ocspStapler, error) {
	if t == nil {
		return nil, nil, nil
	}
	tc, err := loadTLSFiles(t)
	if err != nil {
		return nil, nil, err
	}
	if s.isNode() {
		return tc, nil, nil // no listener to staple for
	}
	st, err := newOCSPStapler(tc.Certificates[0], t, o, s.log, func() { go s.Shutdown() })
	if err != nil || st == nil {
		return tc, nil, err
	}
	tc.Certificates, tc.GetCertificate = nil, st.certificate
	return tc, st, nil
}

func loadTLSFiles(t *config.TLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: certificate %s with key %s: %w", t.CertFile, t.KeyFile, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.MinVersion == "1.3" {
		tc.MinVersion = tls.VersionTLS13
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: ca_file %s holds no PEM certificate", t.CAFile)
		}
		tc.ClientCAs = pool
	}
	if t.Verify {
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if len(t.PinnedCerts) > 0 {
		pinned := map[string]bool{}
		for _, fp := range t.PinnedCerts {
			pinned[fp] = true
		}
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("no client certificate, and pinned_certs requires a pinned one")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			if fp := hex.EncodeToString(sum[:]); !pinned[fp] {
				return fmt.Errorf("client certificate %q (public key %s) is not in pinned_certs", cs.PeerCertificates[0].Subject, fp)
			}
			return nil
		}
	}
	return tc, nil
}

// tlsTimeout is the handshake's time limit.
func tlsTimeout(t *config.TLS) time.Duration {
	if t.Timeout > 0 {
		return t.Timeout
	}
	return config.DefaultTLSTimeout
}

// handshake completes a TLS connection's handshake before anything is
// read from it (and, with handshake_first, before INFO goes out). A
// failure is logged as nats-server logs it and closes the connection.
func (c *client) handshake(tc *tls.Conn, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.srv.log.Errorf("%s - TLS handshake error: %v", c, err)
		c.closeConnection("TLS Handshake Failure", false)
		return false
	}
	st := tc.ConnectionState()
	c.mu.Lock()
	c.tlsVersion, c.tlsCipher = tlsVersionName(st.Version), tls.CipherSuiteName(st.CipherSuite)
	c.mu.Unlock()
	if t := c.srv.Config().TLS; t != nil && t.VerifyAndMap && len(st.PeerCertificates) > 0 {
		c.certIDs = certIdentities(st.PeerCertificates[0])
	}
	c.srv.log.Debugf("%s - TLS handshake complete (%s, %s)", c, c.tlsVersion, c.tlsCipher)
	return true
}

// certIdentities are the names verify_and_map tries, in nats-server's
// order: email addresses, DNS names, URIs, then the subject (RFC 2253).
func certIdentities(cert *x509.Certificate) []string {
	ids := append([]string{}, cert.EmailAddresses...)
	ids = append(ids, cert.DNSNames...)
	for _, u := range cert.URIs {
		ids = append(ids, u.String())
	}
	return append(ids, cert.Subject.String())
}

// tlsVersionName is how /connz shows a TLS version, as nats-server does.
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return fmt.Sprintf("unknown (%#x)", v)
}

// tlsWatchInterval is how often the TLS files are checked for changes;
// tlsRetryFailed, how often changed files that did not load are tried again.
const (
	tlsWatchInterval = time.Second
	tlsRetryFailed   = time.Minute
)

// tlsFilesStamp identifies the TLS files' contents cheaply: each one's
// size and modification time.
func tlsFilesStamp(t *config.TLS) string {
	if t == nil {
		return ""
	}
	var b []byte
	for _, f := range []string{t.CertFile, t.KeyFile, t.CAFile} {
		if f == "" {
			continue
		}
		if fi, err := os.Stat(f); err == nil {
			b = fmt.Appendf(b, "%s:%d:%d;", f, fi.Size(), fi.ModTime().UnixNano())
		} else {
			b = fmt.Appendf(b, "%s:missing;", f)
		}
	}
	return string(b)
}

// watchTLS re-reads the certificate files of the client port and of
// websocket {} when they change (a certificate renewed in place, as
// cert-manager or certbot do), so new connections get the new certificate
// without a SIGHUP; connected clients keep theirs. A change that does not
// load (a key written after its certificate) is retried at the next change
// or tick.
func (s *Server) watchTLS(stop <-chan struct{}) {
	tick := time.NewTicker(tlsWatchInterval)
	defer tick.Stop()
	listeners := []*tlsWatch{
		{name: "client", stamp: &s.tlsStamp, cert: &s.tls,
			conf: func(c *Config) *config.TLS { return c.TLS }},
		{name: "websocket", stamp: &s.wsStamp, cert: &s.wsTLS,
			conf: func(c *Config) *config.TLS {
				if c.WebSocket.Enabled() {
					return c.WebSocket.TLS
				}
				return nil
			}},
	}
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		for _, w := range listeners {
			s.reloadChangedTLS(w)
		}
	}
}

// tlsWatch is one TLS listener watchTLS follows.
type tlsWatch struct {
	name     string // the listener, as staplers and logs name it
	conf     func(*Config) *config.TLS
	stamp    *atomic.Pointer[string]
	cert     *atomic.Pointer[tls.Config]
	failed   string // the stamp of files that did not load
	failedAt time.Time
}

// reloadChangedTLS loads w's files again if they changed since last
// loaded.
func (s *Server) reloadChangedTLS(w *tlsWatch) {
	cfg := s.Config()
	t := w.conf(cfg)
	if t == nil {
		return
	}
	now := tlsFilesStamp(t)
	// Files that did not load are tried again after a while even if
	// unchanged: with OCSP stapling, the responder may have been down.
	if now == *w.stamp.Load() || now == w.failed && time.Since(w.failedAt) < tlsRetryFailed {
		return
	}
	tc, st, err := s.loadTLS(t, cfg.OCSP)
	if err != nil {
		if w.failed != now {
			s.log.Errorf("TLS files of the %s listener changed but do not load (%v); new clients keep getting the previous certificate", w.name, err)
		}
		w.failed, w.failedAt = now, time.Now()
		return
	}
	w.cert.Store(tc)
	s.staplers.replace(w.name, st)
	w.stamp.Store(&now)
	w.failed = ""
	s.log.Infof("TLS files of the %s listener changed: new clients get the new certificate (%s)", w.name, t.CertFile)
}
