package test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ocsp"

	"github.com/switchyard-io/switchyard/pkg/certs"
	"github.com/switchyard-io/switchyard/pkg/testkit"
)

// OCSP stapling (the top-level ocsp setting), checked against nats-server:
// each test runs as subtests "switchyard" and "nats-server" (when the
// reference binary is there), with an OCSP responder of the test's own
// CA, and looks at what a client sees: the staple in the TLS handshake.

// ocspServer starts one server binary with a configuration file.
type ocspServer struct{ name, bin string }

// ocspOnBoth runs body against the frontdoor and, when available,
// nats-server.
func ocspOnBoth(t *testing.T, body func(t *testing.T, s ocspServer)) {
	t.Run("switchyard", func(t *testing.T) { body(t, ocspServer{"switchyard", testkit.Binary(t, "frontdoor")}) })
	if bin := wsReferenceBin(t); bin != "" {
		t.Run("nats-server", func(t *testing.T) { body(t, ocspServer{"nats-server", bin}) })
	}
}

// launch starts the server with conf; it may not come up.
func (s ocspServer) launch(t *testing.T, conf string) *testkit.Process {
	t.Helper()
	port, httpPort := testkit.FreePort(t), testkit.FreePort(t)
	file := filepath.Join(t.TempDir(), "server.conf")
	require.NoError(t, os.WriteFile(file, []byte(conf), 0o600))
	p := testkit.Start(t, s.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(httpPort), "-c", file)
	p.Port, p.HTTPPort = port, httpPort
	return p
}

// start starts the server with conf and waits until it serves clients.
func (s ocspServer) start(t *testing.T, conf string) *testkit.Process {
	t.Helper()
	p := s.launch(t, conf)
	testkit.WaitForINFO(t, p, 15*time.Second)
	return p
}

// refused starts the server with conf and expects it to exit promptly,
// unsuccessfully, saying why.
func (s ocspServer) refused(t *testing.T, conf string, says ...string) {
	t.Helper()
	p := s.launch(t, conf)
	require.True(t, p.Wait(30*time.Second), "the server should refuse to start:\n%s", p.Log())
	require.NotEqual(t, 0, p.Cmd.ProcessState.ExitCode(), p.Log())
	for _, w := range says {
		require.Contains(t, p.Log(), w)
	}
}

// ocspTLS is the configuration: an ocsp setting (may be empty) and a tls
// {} block for c's server certificate.
func ocspTLS(c *testkit.Certs, ocspSetting string) string {
	return ocspSetting + "\n" + tlsConf(c, "")
}

// staple connects with nats.go over TLS and returns what the server
// stapled (nil: nothing), parsed against c's CA; the connection is
// closed when the test ends.
func staple(t *testing.T, url string, c *testkit.Certs) (*ocsp.Response, error) {
	t.Helper()
	ca := readCert(t, c.CA)
	var got []byte
	tc := &tls.Config{RootCAs: x509.NewCertPool(), VerifyConnection: func(cs tls.ConnectionState) error {
		got = cs.OCSPResponse
		return nil
	}}
	tc.RootCAs.AddCert(ca)
	nc, err := nats.Connect(url, nats.Secure(tc), nats.Timeout(5*time.Second), nats.NoReconnect())
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	if got == nil {
		return nil, nil
	}
	resp, err := ocsp.ParseResponseForCert(got, readCert(t, c.ServerCert), ca)
	require.NoError(t, err, "the staple must be a valid response for the server certificate, signed for its CA")
	return resp, nil
}

// mustStaple is staple for a connection that must succeed with a staple.
func mustStaple(t *testing.T, url string, c *testkit.Certs) *ocsp.Response {
	t.Helper()
	resp, err := staple(t, url, c)
	require.NoError(t, err)
	require.NotNil(t, resp, "the server should staple an OCSP response")
	return resp
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	blk, _ := pem.Decode(b)
	require.NotNil(t, blk, file)
	c, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	return c
}

func tlsURL(p *testkit.Process) string { return "tls://" + p.Addr() }

// A must-staple certificate is stapled by default (mode auto), and a
// client works normally over the connection; a certificate without the
// extension is not stapled and its responder is never asked.
func TestOCSPStapleMustStapleByDefault(t *testing.T) {
	ocspOnBoth(t, func(t *testing.T, s ocspServer) {
		c, r := testkit.NewOCSPCerts(t, "must", true)
		p := s.start(t, ocspTLS(c, ""))
		resp := mustStaple(t, tlsURL(p), c)
		require.Equal(t, ocsp.Good, resp.Status)
		require.Equal(t, readCert(t, c.ServerCert).SerialNumber, resp.SerialNumber)
		nc := connect(t, p, nats.RootCAs(c.CA))
		sub, err := nc.SubscribeSync("ocsp")
		require.NoError(t, err)
		require.NoError(t, nc.Publish("ocsp", []byte("stapled")))
		require.Equal(t, "stapled", string(nextMsgs(t, sub, 1)[0].Data))
		require.Contains(t, p.Log(), "OCSP Stapling enabled for Client connections")
		testkit.WaitForLog(t, p, "Found OCSP status for Client certificate at '"+c.ServerCert+"': good, next update", waitLong)
		require.GreaterOrEqual(t, r.Requests(), int64(1))

		plain, pr := testkit.NewOCSPCerts(t, "plain", false)
		q := s.start(t, ocspTLS(plain, ""))
		resp, err = staple(t, tlsURL(q), plain)
		require.NoError(t, err)
		require.Nil(t, resp, "no staple without must-staple in mode auto")
		require.Zero(t, pr.Requests())
		require.NotContains(t, q.Log(), "OCSP Stapling")
	})
}

// The modes: always staples any certificate; must staples only a
// must-staple one; never (and ocsp: false) staples nothing, and warns
// about a must-staple certificate.
func TestOCSPModes(t *testing.T) {
	ocspOnBoth(t, func(t *testing.T, s ocspServer) {
		plain, _ := testkit.NewOCSPCerts(t, "plain", false)
		must, mr := testkit.NewOCSPCerts(t, "must", true)

		p := s.start(t, ocspTLS(plain, "ocsp { mode: always }"))
		require.Equal(t, ocsp.Good, mustStaple(t, tlsURL(p), plain).Status)

		p = s.start(t, ocspTLS(plain, "ocsp { mode: must }"))
		resp, err := staple(t, tlsURL(p), plain)
		require.NoError(t, err)
		require.Nil(t, resp, "mode must staples must-staple certificates only")

		p = s.start(t, ocspTLS(must, "ocsp { mode: MUST }"))
		require.Equal(t, ocsp.Good, mustStaple(t, tlsURL(p), must).Status)

		before := mr.Requests()
		for _, setting := range []string{"ocsp { mode: never }", "ocsp: false"} {
			p = s.start(t, ocspTLS(must, setting))
			resp, err = staple(t, tlsURL(p), must)
			require.NoError(t, err)
			require.Nil(t, resp, setting)
			if s.name == "switchyard" {
				// nats-server logs this before its logger is set up, so it
				// is never seen; we say it.
				require.Contains(t, p.Log(), "Certificate at '"+must.ServerCert+"' has MustStaple but OCSP is disabled")
			}
		}
		require.Equal(t, before, mr.Requests(), "never asks no responder")

		// url overrides the responder the certificate names.
		other := testkit.NewOCSPResponder(t, plain)
		p = s.start(t, ocspTLS(plain, fmt.Sprintf("ocsp { mode: always, url: %q }", other.URL)))
		mustStaple(t, tlsURL(p), plain)
		require.Positive(t, other.Requests())
	})
}

// No good staple at the start: the server refuses to start, in every
// mode that staples, naming the certificate — a responder that is
// unreachable, broken, answers garbage or a forged response; a revoked
// certificate under must or always.
func TestOCSPStartWithoutStapleRefused(t *testing.T) {
	ocspOnBoth(t, func(t *testing.T, s ocspServer) {
		for _, tc := range []struct {
			name    string
			setting string
			break_  func(r *testkit.OCSPResponder)
			says    string
		}{
			{"unreachable", "ocsp { mode: always }", func(r *testkit.OCSPResponder) { r.Misbehave(testkit.OCSPUnreachable) }, "bad OCSP status update for certificate at"},
			{"HTTP 500", "", func(r *testkit.OCSPResponder) { r.Misbehave(testkit.OCSPHTTPError) }, "bad OCSP status update for certificate at"},
			{"garbage", "ocsp { mode: must }", func(r *testkit.OCSPResponder) { r.Misbehave(testkit.OCSPGarbage) }, "bad OCSP status update for certificate at"},
			{"forged", "", func(r *testkit.OCSPResponder) { r.Set(ocsp.Good, time.Hour, certs.SignedByStranger) }, "bad OCSP status update for certificate at"},
			{"revoked must", "ocsp { mode: must }", func(r *testkit.OCSPResponder) { r.Set(ocsp.Revoked, time.Hour, certs.SignedByCA) }, "found existing OCSP status for certificate at"},
			{"unknown always", "ocsp { mode: always }", func(r *testkit.OCSPResponder) { r.Set(ocsp.Unknown, time.Hour, certs.SignedByCA) }, "found existing OCSP status for certificate at"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c, r := testkit.NewOCSPCerts(t, "bad", true)
				tc.break_(r)
				s.refused(t, ocspTLS(c, tc.setting), tc.says, c.ServerCert)
			})
		}
	})
}

// A response signed by a responder the CA delegated OCSP signing to is
// as good as one the CA signed.
func TestOCSPDelegatedResponder(t *testing.T) {
	ocspOnBoth(t, func(t *testing.T, s ocspServer) {
		c, r := testkit.NewOCSPCerts(t, "delegated", true)
		r.Set(ocsp.Good, time.Hour, certs.SignedByResponder)
		p := s.start(t, ocspTLS(c, ""))
		resp := mustStaple(t, tlsURL(p), c)
		require.NotNil(t, resp.Certificate, "the delegated responder's certificate travels in the staple")
	})
}

// Mode auto with a revoked certificate: the server runs and staples the
// revoked status (clients decide), logging it as an error.
func TestOCSPRevokedAutoStaplesIt(t *testing.T) {
	ocspOnBoth(t, func(t *testing.T, s ocspServer) {
		c, r := testkit.NewOCSPCerts(t, "revoked", true)
		r.Set(ocsp.Revoked, time.Hour, certs.SignedByCA)
		p := s.start(t, ocspTLS(c, ""))
		require.Equal(t, ocsp.Revoked, mustStaple(t, tlsURL(p), c).Status)
		testkit.WaitForLog(t, p, "OCSP status for Client certificate", waitLong)
		require.Contains(t, p.Log(), "[ERR]")
		require.Contains(t, p.Log(), "revoked")
	})
}

// The staple is refreshed before it expires (halfway to nextUpdate), and
// a responder that hangs during a refresh holds no client's handshake:
// the valid staple keeps being served.
func TestOCSPRefresh(t *testing.T) {
	ocspOnBoth(t, func(t *testing.T, s ocspServer) {
		c, r := testkit.NewOCSPCerts(t, "short", true)
		r.Set(ocsp.Good, 6*time.Second, certs.SignedByCA)
		p := s.start(t, ocspTLS(c, ""))
		first := mustStaple(t, tlsURL(p), c)
		testkit.WaitForLog(t, p, "Received OCSP status for Client certificate '"+c.ServerCert+"': good", waitLong)
		eventually(t, waitLong, func() error {
			if got := mustStaple(t, tlsURL(p), c); !got.ThisUpdate.After(first.ThisUpdate) {
				return fmt.Errorf("staple still from %v", got.ThisUpdate)
			}
			return nil
		})

		asked := r.Requests()
		r.Misbehave(testkit.OCSPHang)
		eventually(t, waitLong, func() error {
			if r.Requests() == asked {
				return errors.New("no refresh yet")
			}
			return nil
		})
		start := time.Now()
		for range 3 {
			require.Equal(t, ocsp.Good, mustStaple(t, tlsURL(p), c).Status)
		}
		require.Less(t, time.Since(start), 2*time.Second, "handshakes do not wait for the responder")
	})
}

// A failed refresh is logged, naming the certificate and when it is
// tried again, and the valid staple stays.
func TestOCSPRefreshFailureLogged(t *testing.T) {
	ocspOnBoth(t, func(t *testing.T, s ocspServer) {
		c, r := testkit.NewOCSPCerts(t, "flaky", true)
		r.Set(ocsp.Good, 4*time.Second, certs.SignedByCA)
		p := s.start(t, ocspTLS(c, ""))
		r.Misbehave(testkit.OCSPHTTPError)
		testkit.WaitForLog(t, p, "Bad OCSP status update for certificate '"+c.ServerCert+"'", waitLong)
		require.Contains(t, p.Log(), "trying again in")
		require.Equal(t, ocsp.Good, mustStaple(t, tlsURL(p), c).Status)
		r.Set(ocsp.Good, time.Hour, certs.SignedByCA)
		testkit.WaitForLog(t, p, "Received OCSP status for Client certificate '"+c.ServerCert+"': good", waitLong)
	})
}

// Mode must: a certificate revoked while the server runs shuts it down,
// as nats-server does, after logging why.
func TestOCSPRevokedWhileRunningShutsDown(t *testing.T) {
	ocspOnBoth(t, func(t *testing.T, s ocspServer) {
		c, r := testkit.NewOCSPCerts(t, "later", true)
		r.Set(ocsp.Good, 4*time.Second, certs.SignedByCA)
		p := s.start(t, ocspTLS(c, "ocsp { mode: must }"))
		mustStaple(t, tlsURL(p), c)
		r.Set(ocsp.Revoked, time.Hour, certs.SignedByCA)
		require.True(t, p.Wait(waitLong), "the server should shut down:\n%s", p.Log())
		require.Contains(t, p.Log(), "Received OCSP status for Client certificate '"+c.ServerCert+"': revoked")
		// nats-server exits 0 here; we exit 1, so a supervisor sees a
		// failure (deliberate difference).
		want := map[string]int{"switchyard": 1, "nats-server": 0}[s.name]
		require.Equal(t, want, p.Cmd.ProcessState.ExitCode())
	})
}

// The wss listener staples its certificate too. The issuer travels in
// cert_file after the server certificate: nats-server looks for it in
// the client port's ca_file, not websocket {}'s.
func TestOCSPWebSocket(t *testing.T) {
	ocspOnBoth(t, func(t *testing.T, s ocspServer) {
		c, _ := testkit.NewOCSPCerts(t, "wss", true)
		chain := filepath.Join(t.TempDir(), "chain.pem")
		leaf, err := os.ReadFile(c.ServerCert)
		require.NoError(t, err)
		ca, err := os.ReadFile(c.CA)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(chain, append(leaf, ca...), 0o600))
		wsPort := testkit.FreePort(t)
		p := s.start(t, wsConf(wsPort, fmt.Sprintf("tls { cert_file: %q, key_file: %q }", chain, c.ServerKey)))
		resp := mustStaple(t, fmt.Sprintf("wss://127.0.0.1:%d", wsPort), c)
		require.Equal(t, ocsp.Good, resp.Status)
		require.Contains(t, p.Log(), "OCSP Stapling enabled for Client connections")
	})
}

// Bad ocsp settings are refused by name.
func TestOCSPConfigRefused(t *testing.T) {
	c, _ := testkit.NewOCSPCerts(t, "conf", true)
	ocspOnBoth(t, func(t *testing.T, s ocspServer) {
		s.refused(t, ocspTLS(c, "ocsp { mode: sometimes }"), "ocsp")
		s.refused(t, ocspTLS(c, "ocsp { mode: always, refresh: 1 }"), "ocsp")
	})
}

// A certificate replaced on disk (SIGHUP, or the file watcher on the
// frontdoor) gets its own staple; connected clients stay.
func TestOCSPCertificateReload(t *testing.T) {
	old, _ := testkit.NewOCSPCerts(t, "old", true)
	fd := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: ocspTLS(old, "")})
	kept := connect(t, fd, nats.RootCAs(old.CA))
	mustStaple(t, tlsURL(fd), old)

	next, _ := testkit.NewOCSPCerts(t, "next", true)
	// The CA too: the issuer, which the OCSP request names, is found in
	// ca_file.
	for src, dst := range map[string]string{next.ServerCert: old.ServerCert, next.ServerKey: old.ServerKey, next.CA: old.CA} {
		b, err := os.ReadFile(src)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(dst, b, 0o600))
	}
	require.NoError(t, fd.Signal(syscall.SIGHUP))
	// next's certificate now lives in old's files: check the staple
	// against them.
	eventually(t, waitLong, func() error {
		resp, err := staple(t, tlsURL(fd), old)
		if err != nil {
			return err
		}
		if resp == nil {
			return errors.New("no staple")
		}
		return nil
	})
	require.NoError(t, kept.Flush())
}
