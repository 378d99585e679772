package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	// x/crypto/ocsp builds OCSP requests and checks responses' signatures;
	// the standard library only carries a staple, it does not make one.
	"golang.org/x/crypto/ocsp"

	"github.com/switchyard-io/switchyard/pkg/config"
	"github.com/switchyard-io/switchyard/pkg/logging"
)

// OCSP stapling, as nats-server does it for the client port and wss: the
// server asks the certificate's OCSP responder for its status, staples the
// signed answer to every handshake, and asks again halfway to the answer's
// nextUpdate. Which certificates are stapled, and what a revoked one does,
// follow the top-level ocsp setting (config.OCSPMode).
const (
	// ocspRequestTimeout bounds one request to a responder. nats-server
	// waits 30 s; a responder that slow would hold a start or a reload
	// for a minute per URL (POST, then GET), so we give up sooner.
	ocspRequestTimeout = 10 * time.Second
	// ocspDefaultInterval is how often a response without nextUpdate is
	// refreshed (nats-server: a day).
	ocspDefaultInterval = 24 * time.Hour
	// ocspExpiredRetry is how often an expired staple is retried when no
	// client asks sooner (nats-server: 2 minutes).
	ocspExpiredRetry = 2 * time.Minute
	// ocspMinInterval keeps a response that is nearly due (halving the time
	// left) or a handshake asking for a fresh one from turning into a
	// stream of requests to the responder.
	ocspMinInterval = time.Second
	// ocspMaxResponse bounds what is read from a responder; real responses
	// are a few kilobytes.
	ocspMaxResponse = 1 << 20
)

// ocspKind is how nats-server names the connections its monitors serve in
// its log lines (the client port and wss are both "Client").
const ocspKind = "Client"

// stapled is a certificate with its current OCSP staple.
type stapled struct {
	cert *tls.Certificate // OCSPStaple set
	resp *ocsp.Response   // the staple, parsed
}

// ocspStapler keeps one certificate's staple fresh and hands the
// certificate out with it (tls.Config.GetCertificate).
type ocspStapler struct {
	log          *logging.Logger
	certFile     string
	leaf, issuer *x509.Certificate
	responders   []string
	// fatal: mode must (with a must-staple certificate) or always, where a
	// status other than good shuts the server down.
	fatal   bool
	onFatal func()
	hc      *http.Client

	current atomic.Pointer[stapled]
	kick    chan struct{} // a handshake found the staple expired: fetch now
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{} // closed when run returns
	started atomic.Bool
}

// newOCSPStapler decides, as nats-server does, whether cert (the tls {}
// block t's) is stapled under o (nil: mode auto), and if so gets its
// first staple now, so a start or reload fails when none can be had: nil
// without stapling. onFatal is called when must or always sees the
// certificate revoked.
func newOCSPStapler(cert tls.Certificate, t *config.TLS, o *config.OCSP, log *logging.Logger, onFatal func()) (*ocspStapler, error) {
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls: certificate %s: %w", t.CertFile, err)
		}
	}
	mode := config.OCSPAuto
	var urls []string
	if o != nil {
		mode, urls = o.Mode, o.URLs
	}
	mustStaple := hasMustStaple(leaf)
	fatal := false
	switch {
	case mode == config.OCSPNever:
		if mustStaple {
			log.Warnf("Certificate at '%s' has MustStaple but OCSP is disabled", t.CertFile)
		}
		return nil, nil
	case mode == config.OCSPAlways:
		fatal = true
	case !mustStaple:
		return nil, nil // auto and must staple must-staple certificates only
	case mode == config.OCSPMust:
		fatal = true
	}
	issuer, err := ocspIssuer(cert.Certificate, t.CAFile)
	if err != nil {
		return nil, fmt.Errorf("bad OCSP status update for certificate at '%s': %w", t.CertFile, err)
	}
	if len(urls) == 0 {
		urls = leaf.OCSPServer
	}
	if len(urls) == 0 {
		return nil, fmt.Errorf("bad OCSP status update for certificate at '%s': it names no OCSP responder: set ocsp { url: ... }", t.CertFile)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st := &ocspStapler{
		log: log, certFile: t.CertFile, leaf: leaf, issuer: issuer, responders: urls,
		fatal: fatal, onFatal: onFatal, hc: &http.Client{Timeout: ocspRequestTimeout},
		kick: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
	raw, resp, err := st.fetch()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("bad OCSP status update for certificate at '%s': %w", t.CertFile, err)
	}
	if resp.Status != ocsp.Good && fatal {
		cancel()
		return nil, fmt.Errorf("found existing OCSP status for certificate at '%s': %s (ocsp mode %s refuses to serve it: replace the certificate)",
			t.CertFile, ocspStatusName(resp.Status), mode)
	}
	st.staple(cert, raw, resp)
	return st, nil
}

// staple makes raw the staple handed out with cert from now on.
func (st *ocspStapler) staple(cert tls.Certificate, raw []byte, resp *ocsp.Response) {
	c := cert
	c.OCSPStaple = raw
	c.Leaf = st.leaf
	st.current.Store(&stapled{cert: &c, resp: resp})
}

// certificate is the tls.Config's GetCertificate. An expired staple is
// refused, as nats-server refuses it, but without asking the responder
// inside the handshake: a slow responder must not hold every client's
// handshake, so the refresher is asked to fetch at once instead.
func (st *ocspStapler) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cur := st.current.Load()
	if next := cur.resp.NextUpdate; !next.IsZero() && time.Now().After(next) {
		select {
		case st.kick <- struct{}{}:
		default:
		}
		return nil, fmt.Errorf("the OCSP staple of certificate '%s' expired at %s and the responder has not given a new one",
			st.certFile, next.Format(time.RFC3339))
	}
	return cur.cert, nil
}

// start runs the refresher (once).
func (st *ocspStapler) start() {
	if st.started.CompareAndSwap(false, true) {
		go st.run()
	}
}

// stop ends the refresher (and a request in flight) and waits for it.
func (st *ocspStapler) stop() {
	st.cancel()
	if st.started.Load() {
		<-st.done
	}
}

// run refreshes the staple halfway to each response's nextUpdate until
// stopped, logging as nats-server does.
func (st *ocspStapler) run() {
	defer close(st.done)
	st.log.Infof("OCSP Stapling enabled for %s connections", ocspKind)
	cur := st.current.Load()
	wait := st.nextRun(cur.resp)
	if cur.resp.Status == ocsp.Good {
		st.log.Infof("Found OCSP status for %s certificate at '%s': good, next update %s, checking again in %s",
			ocspKind, st.certFile, nextUpdateText(cur.resp), wait)
	} else {
		st.log.Errorf("Found OCSP status for %s certificate at '%s': %s; it is stapled, and clients that check it will refuse the server: replace the certificate",
			ocspKind, st.certFile, ocspStatusName(cur.resp.Status))
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	last := time.Now()
	for {
		select {
		case <-st.ctx.Done():
			return
		case <-timer.C:
		case <-st.kick:
			if d := ocspMinInterval - time.Since(last); d > 0 {
				timer.Reset(d)
				continue
			}
			timer.Stop()
		}
		raw, resp, err := st.fetch()
		last = time.Now()
		if st.ctx.Err() != nil {
			return
		}
		if err != nil {
			wait = st.nextRun(st.current.Load().resp)
			st.log.Errorf("Bad OCSP status update for certificate '%s': %v, trying again in %v", st.certFile, err, wait)
			timer.Reset(wait)
			continue
		}
		// nats-server staples what the responder said, revoked or not.
		st.staple(*st.current.Load().cert, raw, resp)
		wait = st.nextRun(resp)
		if resp.Status == ocsp.Good {
			st.log.Infof("Received OCSP status for %s certificate '%s': good, next update %s, checking again in %s",
				ocspKind, st.certFile, nextUpdateText(resp), wait)
			timer.Reset(wait)
			continue
		}
		st.log.Errorf("Received OCSP status for %s certificate '%s': %s", ocspKind, st.certFile, ocspStatusName(resp.Status))
		if st.fatal {
			st.log.Errorf("Shutting down: ocsp mode must or always does not serve a certificate that is not good; replace '%s'", st.certFile)
			st.onFatal()
			return
		}
		timer.Reset(wait)
	}
}

// nextRun is when to ask again after resp: halfway to its nextUpdate,
// as nats-server does.
func (st *ocspStapler) nextRun(resp *ocsp.Response) time.Duration {
	if resp.NextUpdate.IsZero() {
		return ocspDefaultInterval
	}
	left := time.Until(resp.NextUpdate)
	if left <= 0 {
		return ocspExpiredRetry
	}
	return max(left/2, ocspMinInterval)
}

// fetch asks each responder in turn, POST first and GET when POST fails
// (RFC 6960 appendix A), for a valid response about the leaf.
func (st *ocspStapler) fetch() ([]byte, *ocsp.Response, error) {
	req, err := ocsp.CreateRequest(st.leaf, st.issuer, nil)
	if err != nil {
		return nil, nil, err
	}
	var errs []error
	for _, u := range st.responders {
		u = strings.TrimSuffix(u, "/")
		raw, postErr := st.request(http.MethodPost, u, req)
		if postErr != nil {
			var getErr error
			raw, getErr = st.request(http.MethodGet, u+"/"+base64.StdEncoding.EncodeToString(req), nil)
			if getErr != nil {
				errs = append(errs, fmt.Errorf("%s: %w; %w", u, postErr, getErr))
				continue
			}
		}
		resp, err := st.parse(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
			continue
		}
		return raw, resp, nil
	}
	return nil, nil, fmt.Errorf("no OCSP responder gave a valid answer: %w", errors.Join(errs...))
}

func (st *ocspStapler) request(method, u string, body []byte) ([]byte, error) {
	hreq, err := http.NewRequestWithContext(st.ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if method == http.MethodPost {
		hreq.Header.Set("Content-Type", "application/ocsp-request")
	}
	hreq.Header.Set("Accept", "application/ocsp-response")
	start := time.Now()
	resp, err := st.hc.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	st.log.Debugf("Received OCSP response (method=%s, status=%v, url=%s, duration=%.3fs)", method, resp.StatusCode, u, time.Since(start).Seconds())
	if resp.StatusCode > 299 {
		return nil, fmt.Errorf("%s answered HTTP %d", method, resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, ocspMaxResponse))
}

// parse checks a response is about the leaf, signed by its issuer (or a
// responder the issuer delegated OCSP signing to) and current.
func (st *ocspStapler) parse(raw []byte) (*ocsp.Response, error) {
	resp, err := ocsp.ParseResponseForCert(raw, st.leaf, st.issuer)
	if err != nil {
		return nil, fmt.Errorf("not a usable OCSP response: %w", err)
	}
	if c := resp.Certificate; c != nil && !c.Equal(st.issuer) && !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		return nil, errors.New("the OCSP response's signer is not authorized by the CA to sign OCSP responses")
	}
	now := time.Now()
	if !resp.NextUpdate.IsZero() && resp.NextUpdate.Before(now) {
		return nil, fmt.Errorf("the OCSP response expired (nextUpdate %s)", resp.NextUpdate.Format(time.RFC3339))
	}
	if resp.ThisUpdate.After(now) {
		return nil, fmt.Errorf("the OCSP response is from the future (thisUpdate %s)", resp.ThisUpdate.Format(time.RFC3339))
	}
	return resp, nil
}

// hasMustStaple reports whether the certificate carries the TLS feature
// extension (RFC 7633) with status_request: it promises a staple.
func hasMustStaple(cert *x509.Certificate) bool {
	tlsFeature := asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 24}
	const statusRequest = 5
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(tlsFeature) {
			continue
		}
		var features []int
		if rest, err := asn1.Unmarshal(ext.Value, &features); err != nil || len(rest) > 0 {
			return false
		}
		return slices.Contains(features, statusRequest)
	}
	return false
}

// ocspIssuer finds the CA certificate that signed the leaf (chain[0]):
// the next certificate in cert_file, or one in ca_file. The request names
// the issuer, and the response is checked against its key.
func ocspIssuer(chain [][]byte, caFile string) (*x509.Certificate, error) {
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, err
	}
	var candidates []*x509.Certificate
	for _, der := range chain[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			candidates = append(candidates, c)
		}
	}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		for blk, rest := pem.Decode(b); blk != nil; blk, rest = pem.Decode(rest) {
			if c, err := x509.ParseCertificate(blk.Bytes); err == nil && blk.Type == "CERTIFICATE" {
				candidates = append(candidates, c)
			}
		}
	}
	for _, c := range candidates {
		if c.IsCA && leaf.CheckSignatureFrom(c) == nil {
			return c, nil
		}
	}
	return nil, errors.New("no issuer found for OCSP: put the issuing CA's certificate after the server certificate in cert_file, or in ca_file")
}

func ocspStatusName(status int) string {
	switch status {
	case ocsp.Good:
		return "good"
	case ocsp.Revoked:
		return "revoked"
	}
	return "unknown"
}

func nextUpdateText(r *ocsp.Response) string {
	if r.NextUpdate.IsZero() {
		return "none"
	}
	return r.NextUpdate.Format(time.RFC3339Nano)
}

// staplers holds the running staplers by listener ("client",
// "websocket"): a reload or a certificate change replaces one, Start
// runs them, Shutdown stops them.
type staplers struct {
	mu      sync.Mutex
	byName  map[string]*ocspStapler
	running bool
}

// replace installs st (nil: no stapling) for name, stopping the previous
// one, and starts it when the server is running.
func (sp *staplers) replace(name string, st *ocspStapler) {
	sp.mu.Lock()
	old := sp.byName[name]
	if sp.byName == nil {
		sp.byName = map[string]*ocspStapler{}
	}
	sp.byName[name] = st
	if st != nil && sp.running {
		st.start()
	}
	sp.mu.Unlock()
	if old != nil && old != st {
		old.stop()
	}
}

// run starts every stapler, and those installed later.
func (sp *staplers) run() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.running = true
	for _, st := range sp.byName {
		if st != nil {
			st.start()
		}
	}
}

// stopAll stops every stapler.
func (sp *staplers) stopAll() {
	sp.mu.Lock()
	all := sp.byName
	sp.byName, sp.running = nil, false
	sp.mu.Unlock()
	for _, st := range all {
		if st != nil {
			st.stop()
		}
	}
}
