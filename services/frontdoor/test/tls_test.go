package test

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

// tlsConf is a tls {} block for the certificates, plus extra settings.
func tlsConf(c *testkit.Certs, extra string) string {
	return fmt.Sprintf("tls { cert_file: %q, key_file: %q, ca_file: %q %s }\n", c.ServerCert, c.ServerKey, c.CA, extra)
}

// readInfo reads the plain-text INFO a frontdoor sends first.
func readInfo(t *testing.T, addr string) map[string]any {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "INFO "), line)
	var info map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(line[5:])), &info))
	return info
}

// TLS on the client port, as nats-server does it: INFO in plain text says
// tls_required, the client upgrades, and pub/sub and request/reply work
// across two frontdoors (one of them plain); /connz shows the TLS version.
// A client that does not speak TLS gets nothing more than INFO, and a
// client that does not trust the CA is refused.
func TestTLSClients(t *testing.T) {
	certs := testkit.NewCerts(t, "suite")
	router := testkit.StartRouter(t, 0)
	routers := fmt.Sprintf("routers: [%q]\n", router.Addr())
	secure := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: routers + tlsConf(certs, "")})
	plain := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: routers})

	info := readInfo(t, secure.Addr())
	require.Equal(t, true, info["tls_required"])
	require.Nil(t, info["tls_verify"])

	url := "tls://" + secure.Addr()
	nc, err := nats.Connect(url, nats.RootCAs(certs.CA), nats.Timeout(5*time.Second))
	require.NoError(t, err)
	defer nc.Close()
	require.True(t, nc.TLSRequired())
	other, err := nats.Connect(plain.URL())
	require.NoError(t, err)
	defer other.Close()

	sub, err := nc.SubscribeSync("over.tls")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	_, err = other.Subscribe("svc", func(m *nats.Msg) { m.Respond(append([]byte("re: "), m.Data...)) })
	require.NoError(t, err)
	require.NoError(t, other.Flush())
	require.Eventually(t, func() bool {
		other.Publish("over.tls", []byte("hello"))
		_, err := sub.NextMsg(100 * time.Millisecond)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "a plain client's message reaches a TLS client on another frontdoor")
	var reply *nats.Msg
	require.Eventually(t, func() bool {
		reply, err = nc.Request("svc", []byte("ping"), 500*time.Millisecond)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, "re: ping", string(reply.Data))

	var connz struct {
		Connections []struct {
			TLSVersion string `json:"tls_version"`
			TLSCipher  string `json:"tls_cipher_suite"`
		} `json:"connections"`
	}
	resp, err := http.Get(secure.MonitorURL() + "/connz")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&connz))
	resp.Body.Close()
	require.NotEmpty(t, connz.Connections)
	require.Equal(t, "1.3", connz.Connections[0].TLSVersion)
	require.NotEmpty(t, connz.Connections[0].TLSCipher)

	// A plain client on the TLS port: after INFO it is cut off, never
	// served (nats-server: "TLS handshake error").
	rc := testkit.DialRaw(t, secure.Addr())
	require.Contains(t, rc.INFO, `"tls_required":true`)
	rc.Send("CONNECT {}\r\nPING\r\n")
	got := rc.ExpectClosed(5 * time.Second)
	require.NotContains(t, got, "PONG")
	require.Eventually(t, func() bool { return strings.Contains(secure.Log(), "TLS handshake error") }, 5*time.Second, 20*time.Millisecond)

	// A client that expects another server name refuses the certificate.
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(certs.CA)
	require.NoError(t, err)
	require.True(t, pool.AppendCertsFromPEM(ca))
	before := strings.Count(secure.Log(), "TLS handshake error")
	_, err = nats.Connect(url, nats.Secure(&tls.Config{RootCAs: pool, ServerName: "nats.example.com"}),
		nats.Timeout(2*time.Second), nats.NoReconnect())
	require.Error(t, err, "a certificate for another name")
	require.Eventually(t, func() bool { return strings.Count(secure.Log(), "TLS handshake error") > before },
		5*time.Second, 20*time.Millisecond, "the client refused the certificate in the handshake")

	// A client that does not trust the suite's CA refuses the server (the
	// frontdoor logs the client's alert; nats.go then tries the frontdoors
	// INFO told it of, so its error is about the last one).
	wrong := testkit.NewCerts(t, "other")
	_, err = nats.Connect(url, nats.RootCAs(wrong.CA), nats.Timeout(2*time.Second), nats.NoReconnect())
	require.Error(t, err)
	require.Eventually(t, func() bool { return strings.Contains(secure.Log(), "tls: bad certificate") }, 5*time.Second, 20*time.Millisecond)
}

// verify: true requires a client certificate signed by ca_file: with one
// the client is served, without one or with one from another CA it is
// refused in the handshake.
func TestTLSVerifyClientCertificates(t *testing.T) {
	certs := testkit.NewCerts(t, "suite")
	fd := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: tlsConf(certs, ", verify: true")})
	require.Equal(t, true, readInfo(t, fd.Addr())["tls_verify"])
	url := "tls://" + fd.Addr()

	nc, err := nats.Connect(url, nats.RootCAs(certs.CA), nats.ClientCert(certs.ClientCert, certs.ClientKey))
	require.NoError(t, err)
	defer nc.Close()
	sub, err := nc.SubscribeSync("x")
	require.NoError(t, err)
	require.NoError(t, nc.Publish("x", []byte("mine")))
	m, err := sub.NextMsg(2 * time.Second)
	require.NoError(t, err)
	require.Equal(t, "mine", string(m.Data))

	_, err = nats.Connect(url, nats.RootCAs(certs.CA), nats.Timeout(2*time.Second), nats.NoReconnect())
	require.Error(t, err, "no client certificate")
	wrong := testkit.NewCerts(t, "other")
	_, err = nats.Connect(url, nats.RootCAs(certs.CA), nats.ClientCert(wrong.ClientCert, wrong.ClientKey),
		nats.Timeout(2*time.Second), nats.NoReconnect())
	require.Error(t, err, "a client certificate from another CA")
	_, err = nats.Connect(url, nats.RootCAs(certs.CA), nats.ClientCert(certs.ExpiredCert, certs.ExpiredKey),
		nats.Timeout(2*time.Second), nats.NoReconnect())
	require.Error(t, err, "an expired client certificate")
	require.Eventually(t, func() bool {
		return strings.Count(fd.Log(), "TLS handshake error") >= 3 && strings.Contains(fd.Log(), "expired")
	}, 5*time.Second, 20*time.Millisecond, "the three refusals logged:\n%s", fd.Log())
}

// handshake_first: the TLS handshake comes before INFO, as nats.go's
// TLSHandshakeFirst expects; a client waiting for a plain-text INFO gets
// none.
func TestTLSHandshakeFirst(t *testing.T) {
	certs := testkit.NewCerts(t, "suite")
	fd := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: tlsConf(certs, ", handshake_first: true"),
		ReadyLog: "Server is ready"})
	nc, err := nats.Connect("tls://"+fd.Addr(), nats.RootCAs(certs.CA), nats.TLSHandshakeFirst())
	require.NoError(t, err)
	defer nc.Close()
	rtt, err := nc.RTT()
	require.NoError(t, err)
	require.Positive(t, rtt)

	conn, err := net.DialTimeout("tcp", fd.Addr(), time.Second)
	require.NoError(t, err)
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	n, _ := conn.Read(make([]byte, 64))
	require.Zero(t, n, "no plain-text INFO before the handshake")
}

// Certificates rotated in place are taken on SIGHUP, and without one
// once the frontdoor notices the files changed: new clients get the new
// certificate, connected ones stay.
// The same holds for wss:// (websocket {}'s tls).
func TestTLSCertificateReload(t *testing.T) {
	t.Run("SIGHUP", func(t *testing.T) { testCertificateRotation(t, true, false) })
	t.Run("files changed", func(t *testing.T) { testCertificateRotation(t, false, false) })
	t.Run("wss SIGHUP", func(t *testing.T) { testCertificateRotation(t, true, true) })
	t.Run("wss files changed", func(t *testing.T) { testCertificateRotation(t, false, true) })
}

func testCertificateRotation(t *testing.T, hup, ws bool) {
	old := testkit.NewCerts(t, "old")
	var fd *testkit.Process
	var url, listener string
	if ws {
		port := testkit.FreePort(t)
		fd = testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: wsConf(port,
			fmt.Sprintf("tls { cert_file: %q, key_file: %q }", old.ServerCert, old.ServerKey))})
		url, listener = fmt.Sprintf("wss://127.0.0.1:%d", port), "websocket"
	} else {
		fd = testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: tlsConf(old, "")})
		url, listener = "tls://"+fd.Addr(), "client"
	}
	kept, err := nats.Connect(url, nats.RootCAs(old.CA))
	require.NoError(t, err)
	defer kept.Close()

	next := testkit.NewCerts(t, "next")
	for src, dst := range map[string]string{next.ServerCert: old.ServerCert, next.ServerKey: old.ServerKey} {
		b, err := os.ReadFile(src)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(dst, b, 0o600))
	}
	if hup {
		require.NoError(t, fd.Signal(syscall.SIGHUP))
	}
	require.Eventually(t, func() bool {
		nc, err := nats.Connect(url, nats.RootCAs(next.CA), nats.Timeout(time.Second), nats.NoReconnect())
		if err != nil {
			return false
		}
		nc.Close()
		return true
	}, 10*time.Second, 50*time.Millisecond, "the new certificate is served")
	_, err = nats.Connect(url, nats.RootCAs(old.CA), nats.Timeout(time.Second), nats.NoReconnect())
	require.Error(t, err, "the old certificate is no longer served")
	require.NoError(t, kept.Flush(), "a connected client stays")
	if !hup {
		require.Contains(t, fd.Log(), "TLS files of the "+listener+" listener changed: new clients get the new certificate")
	}
}

// verify_and_map: the verified client certificate names the user, as on
// nats-server: its email address when that is a user, else its subject
// (RFC 2253); the user's permissions apply; a certificate that maps to no
// user is an Authorization Violation.
func TestTLSVerifyAndMap(t *testing.T) {
	certs := testkit.NewCerts(t, "suite")
	withCert := nats.ClientCert(certs.ClientCert, certs.ClientKey)
	for _, tc := range []struct{ name, users, want string }{
		{"email", `{user: "client@example.com", permissions: {publish: "ok.>"}}, {user: "CN=client"}`, "client@example.com"},
		{"subject", `{user: "CN=client", permissions: {publish: "ok.>"}}`, "CN=client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startAuthSuite(t, tlsConf(certs, ", verify_and_map: true")+"authorization { users: ["+tc.users+"] }\n", 1)
			fd := s.fds[0]
			errs := make(chan error, 1)
			nc, err := nats.Connect("tls://"+fd.Addr(), nats.RootCAs(certs.CA), withCert,
				nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
			require.NoError(t, err)
			defer nc.Close()
			require.NoError(t, nc.Publish("no", nil))
			select {
			case err := <-errs:
				require.Contains(t, err.Error(), `Permissions Violation for Publish to "no"`)
			case <-time.After(5 * time.Second):
				t.Fatal("the mapped user's permissions were not applied")
			}
			var connz struct {
				Connections []struct {
					User string `json:"authorized_user"`
				} `json:"connections"`
			}
			resp, err := http.Get(fd.MonitorURL() + "/connz?auth=1")
			require.NoError(t, err)
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&connz))
			resp.Body.Close()
			require.Len(t, connz.Connections, 1)
			require.Equal(t, tc.want, connz.Connections[0].User)
		})
	}
	t.Run("no such user", func(t *testing.T) {
		s := startAuthSuite(t, tlsConf(certs, ", verify_and_map: true")+`authorization { users: [{user: "someone"}] }`+"\n", 1)
		refused(t, s.fds[0], nats.RootCAs(certs.CA), withCert)
		require.Eventually(t, func() bool {
			return strings.Contains(s.authsvc.Log(), "no configured user matches the client certificate")
		}, 5*time.Second, 20*time.Millisecond)
	})
}

// spkiFingerprint is a certificate file's pinned_certs entry: the hex
// SHA-256 of its public key.
func spkiFingerprint(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	block, _ := pem.Decode(b)
	require.NotNil(t, block)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// pinned_certs: only client certificates whose public key is listed get
// in, even when the CA signed others.
func TestTLSPinnedCertificates(t *testing.T) {
	certs := testkit.NewCerts(t, "suite")
	withCert := nats.ClientCert(certs.ClientCert, certs.ClientKey)
	pinned := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: tlsConf(certs,
		fmt.Sprintf(", verify: true, pinned_certs: [%q]", spkiFingerprint(t, certs.ClientCert)))})
	nc, err := nats.Connect("tls://"+pinned.Addr(), nats.RootCAs(certs.CA), withCert)
	require.NoError(t, err)
	nc.Close()

	other := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: tlsConf(certs,
		fmt.Sprintf(", verify: true, pinned_certs: [%q]", spkiFingerprint(t, certs.ServerCert)))})
	_, err = nats.Connect("tls://"+other.Addr(), nats.RootCAs(certs.CA), withCert, nats.Timeout(2*time.Second), nats.NoReconnect())
	require.Error(t, err, "a certificate the CA signed but not pinned")
	require.Eventually(t, func() bool { return strings.Contains(other.Log(), "is not in pinned_certs") }, 5*time.Second, 20*time.Millisecond)
}

// A client that sends nothing after INFO (a slow-loris handshake) is cut
// off after the TLS timeout, with a log line.
func TestTLSHandshakeTimeout(t *testing.T) {
	certs := testkit.NewCerts(t, "suite")
	fd := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: tlsConf(certs, ", timeout: 0.3")})
	rc := testkit.DialRaw(t, fd.Addr())
	start := time.Now()
	rc.ExpectClosed(5 * time.Second)
	require.Less(t, time.Since(start), 4*time.Second)
	require.Eventually(t, func() bool { return strings.Contains(fd.Log(), "TLS handshake error") }, 5*time.Second, 20*time.Millisecond)
}

// A TLS client on a plain port is refused: nats.go sees no tls_required
// in INFO, and a raw ClientHello is not NATS protocol (nats-server's
// "Unknown Protocol Operation").
func TestTLSClientOnPlainPort(t *testing.T) {
	certs := testkit.NewCerts(t, "suite")
	fd := start(t, "")
	_, err := nats.Connect("tls://"+fd.Addr(), nats.RootCAs(certs.CA), nats.Timeout(2*time.Second), nats.NoReconnect())
	require.ErrorIs(t, err, nats.ErrSecureConnWanted)
	rc := testkit.DialRaw(t, fd.Addr())
	rc.Send("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")
	require.Contains(t, rc.ExpectClosed(5*time.Second), "-ERR 'Unknown Protocol Operation'")
}
