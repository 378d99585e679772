package config

import (
	"strings"
	"time"
)

// TLS is the client port's tls {} block (the frontdoor's): server
// certificate, optional client certificates, handshake order.
type TLS struct {
	CertFile string // "cert_file": PEM certificate (chain)
	KeyFile  string // "key_file": its PEM private key
	CAFile   string // "ca_file": PEM CAs that sign client certificates (verify)
	// Verify ("verify") requires a client certificate signed by CAFile.
	Verify bool
	// VerifyAndMap ("verify_and_map") verifies too, and the certificate
	// names the user (authsvc maps its email addresses, DNS names, URIs or
	// subject to a configured user); CONNECT's credentials are not used.
	VerifyAndMap bool
	// Timeout ("timeout", seconds, fractions allowed) bounds the
	// handshake; 0: DefaultTLSTimeout.
	Timeout time.Duration
	// HandshakeFirst ("handshake_first"/"first") does the TLS handshake
	// before INFO, as nats.go's TLSHandshakeFirst expects; otherwise INFO
	// goes out in plain text and the client upgrades after it.
	HandshakeFirst bool
	// MinVersion ("min_version": "1.2" or "1.3"); empty: TLS 1.2.
	MinVersion string
	// PinnedCerts ("pinned_certs"): hex SHA-256 fingerprints of the public
	// keys (SubjectPublicKeyInfo) client certificates must have; empty: any
	// certificate the CA signed.
	PinnedCerts []string
}

// DefaultTLSTimeout is nats-server's TLS handshake time.
const DefaultTLSTimeout = 2 * time.Second

func applyTLS(l *loader, s *Server, v value) {
	if t := l.tlsBlock(v); t != nil {
		s.TLS = t
	}
}

// tlsBlock reads a tls {} block: the client port's, or websocket {}'s.
func (l *loader) tlsBlock(v value) *TLS {
	m, ok := v.raw.(map[string]any)
	if !ok {
		l.bad(v, " expected a block { cert_file: ..., key_file: ... }, got %s", describe(v.raw))
		return nil
	}
	t := &TLS{}
	for k, e := range v.keys(m) {
		switch k {
		case "cert_file":
			t.CertFile, _ = l.str(e)
		case "key_file":
			t.KeyFile, _ = l.str(e)
		case "ca_file":
			t.CAFile, _ = l.str(e)
		case "verify":
			t.Verify, _ = l.boolean(e)
		case "verify_and_map":
			t.VerifyAndMap, _ = l.boolean(e)
		case "timeout":
			t.Timeout, _ = l.fractionalDuration(e)
		case "handshake_first", "first", "immediate":
			t.HandshakeFirst, _ = l.boolean(e)
		case "min_version":
			if t.MinVersion, _ = l.str(e); t.MinVersion != "1.2" && t.MinVersion != "1.3" {
				l.bad(e, " %q is not a TLS version: use \"1.2\" or \"1.3\"", t.MinVersion)
			}
		case "pinned_certs":
			for _, e := range l.list(e, "pinned_certs") {
				if fp, ok := l.str(e); ok {
					t.PinnedCerts = append(t.PinnedCerts, strings.ToLower(fp))
				}
			}
		case "verify_cert_and_check_known_urls", "cert_store", "cert_match",
			"cert_match_by", "cert_match_skip_invalid", "ca_certs_match", "certs", "cipher_suites",
			"curve_preferences", "insecure", "connection_rate_limit", "pinned_cert":
			l.bad(e, " is not supported in tls {} yet: remove it")
		case "ocsp_peer":
			l.bad(e, " (OCSP checks of client certificates) is not supported yet: remove it; the frontdoor's own certificate is stapled by the top-level ocsp setting")
		default:
			l.bad(e, " is not a tls {} setting: use cert_file, key_file, ca_file, verify, verify_and_map, pinned_certs, timeout, handshake_first or min_version")
		}
	}
	if t.CertFile == "" || t.KeyFile == "" {
		l.bad(v, " needs cert_file and key_file")
	}
	if t.VerifyAndMap {
		t.Verify = true
	}
	if t.Verify && t.CAFile == "" {
		l.bad(v, " verify: true needs ca_file (the CAs that sign client certificates)")
	}
	return t
}

// OCSP is the top-level ocsp setting, nats-server's: whether the TLS
// listeners (the client port's and websocket {}'s) staple an OCSP
// response for their certificate, and what happens when the certificate
// is revoked. "ocsp: true" is mode auto, "ocsp: false" mode never.
type OCSP struct {
	Mode OCSPMode
	// URLs ("url"/"urls") are the OCSP responders asked instead of those
	// the certificate names (its Authority Information Access).
	URLs []string
}

// OCSPMode is ocsp's mode, as nats-server defines them.
type OCSPMode string

const (
	// OCSPAuto staples when the certificate has the must-staple extension
	// (TLS feature status_request); a revoked status is stapled and
	// logged, and clients decide. It is the default.
	OCSPAuto OCSPMode = "auto"
	// OCSPMust staples like auto, and shuts the server down when the
	// must-staple certificate is revoked.
	OCSPMust OCSPMode = "must"
	// OCSPAlways staples every certificate, must-staple or not, and shuts
	// the server down when it is revoked.
	OCSPAlways OCSPMode = "always"
	// OCSPNever never staples, even a must-staple certificate.
	OCSPNever OCSPMode = "never"
)

func applyOCSP(l *loader, s *Server, v value) {
	switch r := v.raw.(type) {
	case bool:
		s.OCSP = &OCSP{Mode: OCSPAuto}
		if !r {
			s.OCSP.Mode = OCSPNever
		}
		return
	case map[string]any:
		o := &OCSP{Mode: OCSPAuto}
		for k, e := range v.keys(r) {
			switch k {
			case "mode":
				if m, ok := l.str(e); ok {
					switch mode := OCSPMode(strings.ToLower(m)); mode {
					case OCSPAuto, OCSPMust, OCSPAlways, OCSPNever:
						o.Mode = mode
					default:
						l.bad(e, " %q is not an OCSP mode: use auto, must, always or never", m)
					}
				}
			case "url":
				if u, ok := l.str(e); ok {
					o.URLs = []string{u}
				}
			case "urls":
				o.URLs = nil
				for _, e := range l.list(e, "urls") {
					if u, ok := l.str(e); ok {
						o.URLs = append(o.URLs, u)
					}
				}
			default:
				l.bad(e, " is not an ocsp {} setting: use mode, url or urls")
			}
		}
		s.OCSP = o
		return
	}
	l.bad(v, " expected true, false or a block { mode: auto|must|always|never, url: ... }, got %s", describe(v.raw))
}
