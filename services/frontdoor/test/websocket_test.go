package test

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

// WebSocket clients (websocket {}), checked against nats-server where
// the test can run on both: each such test runs once per server, as
// subtests "switchyard" and "nats-server" (the latter when
// NATS_SERVER_BIN or .tools/bin/nats-server is there).

// wsServer is a server with a WebSocket listener.
type wsServer struct {
	name   string
	p      *testkit.Process
	wsPort int
}

func (s wsServer) wsURL() string  { return fmt.Sprintf("ws://127.0.0.1:%d", s.wsPort) }
func (s wsServer) wssURL() string { return fmt.Sprintf("wss://127.0.0.1:%d", s.wsPort) }

// wsConf is a websocket {} block on port with extra settings.
func wsConf(port int, extra string) string {
	return fmt.Sprintf("websocket { host: \"127.0.0.1\", port: %d\n %s }\n", port, extra)
}

// wsReferenceBin finds nats-server, or returns "" (tests then run on
// Switchyard only).
func wsReferenceBin(t *testing.T) string {
	if p := os.Getenv("NATS_SERVER_BIN"); p != "" {
		return p
	}
	p := filepath.Join(testkit.RepoRoot(t), ".tools", "bin", "nats-server")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// onBoth runs body against a frontdoor and, when available, nats-server,
// each started with conf(wsPort) as its configuration file.
func onBoth(t *testing.T, conf func(wsPort int) string, body func(t *testing.T, s wsServer)) {
	t.Run("switchyard", func(t *testing.T) {
		port := testkit.FreePort(t)
		p := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: conf(port)})
		body(t, wsServer{"switchyard", p, port})
	})
	onReference(t, conf, body)
}

// onReference runs body against nats-server (with conf) when it is
// installed.
func onReference(t *testing.T, conf func(wsPort int) string, body func(t *testing.T, s wsServer)) {
	bin := wsReferenceBin(t)
	if bin == "" {
		return
	}
	t.Run("nats-server", func(t *testing.T) {
		port, wsPort, httpPort := testkit.FreePort(t), testkit.FreePort(t), testkit.FreePort(t)
		file := filepath.Join(t.TempDir(), "ref.conf")
		require.NoError(t, os.WriteFile(file, []byte(conf(wsPort)), 0o600))
		p := testkit.Start(t, bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(httpPort), "-c", file)
		p.Port, p.HTTPPort = port, httpPort
		testkit.WaitForINFO(t, p, 10*time.Second)
		body(t, wsServer{"nats-server", p, wsPort})
	})
}

func wsConnect(t *testing.T, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name(t.Name()), nats.Timeout(5 * time.Second)}, opts...)...)
	require.NoError(t, err, "connecting to %s", url)
	t.Cleanup(nc.Close)
	return nc
}

// exerciseCore runs core NATS between a (a WebSocket client) and b:
// pub/sub both ways, request/reply, a queue group, headers.
func exerciseCore(t *testing.T, a, b *nats.Conn) {
	t.Helper()
	subA, err := a.SubscribeSync("to.a")
	require.NoError(t, err)
	subB, err := b.SubscribeSync("to.b")
	require.NoError(t, err)
	flush(t, a, b)
	eventually(t, waitLong, func() error { // across frontdoors interest takes a moment
		b.Publish("to.a", []byte("probe"))
		if _, err := subA.NextMsg(100 * time.Millisecond); err != nil {
			return fmt.Errorf("b -> a: %v", err)
		}
		a.Publish("to.b", []byte("probe"))
		if _, err := subB.NextMsg(100 * time.Millisecond); err != nil {
			return fmt.Errorf("a -> b: %v", err)
		}
		return nil
	})
	for _, n := range []int{1, 1000, 100_000} {
		require.NoError(t, a.Publish("to.b", payload(n, n)))
		m := nextMsgs(t, subB, 1)[0]
		require.Equal(t, payload(n, n), m.Data, "%d bytes a -> b", n)
		require.NoError(t, b.Publish("to.a", payload(n, n+1)))
		m = nextMsgs(t, subA, 1)[0]
		require.Equal(t, payload(n, n+1), m.Data, "%d bytes b -> a", n)
	}

	_, err = b.Subscribe("svc", func(m *nats.Msg) { m.Respond(append([]byte("re: "), m.Data...)) })
	require.NoError(t, err)
	flush(t, b)
	var reply *nats.Msg
	eventually(t, waitLong, func() error {
		reply, err = a.Request("svc", []byte("ping"), time.Second)
		return err
	})
	require.Equal(t, "re: ping", string(reply.Data))

	// A queue group on the WebSocket side: each message reaches one member.
	q1, err := a.QueueSubscribeSync("work", "g")
	require.NoError(t, err)
	q2, err := a.QueueSubscribeSync("work", "g")
	require.NoError(t, err)
	flush(t, a)
	eventually(t, waitLong, func() error {
		b.Publish("work", []byte("probe"))
		for _, q := range []*nats.Subscription{q1, q2} {
			if _, err := q.NextMsg(50 * time.Millisecond); err == nil {
				return nil
			}
		}
		return errors.New("queue group not reached yet")
	})
	for i := range 100 {
		require.NoError(t, b.Publish("work", seqData(i)))
	}
	flush(t, b)
	got := 0
	for _, q := range []*nats.Subscription{q1, q2} {
		for {
			if _, err := q.NextMsg(quietTime); err != nil {
				break
			}
			got++
		}
	}
	require.Equal(t, 100, got, "each queued message delivered once")

	// Headers, both ways.
	m := nats.NewMsg("to.b")
	m.Header.Set("X-Trace", "ws")
	m.Data = []byte("with headers")
	require.NoError(t, a.PublishMsg(m))
	in := nextMsgs(t, subB, 1)[0]
	require.Equal(t, "ws", in.Header.Get("X-Trace"))
	m = nats.NewMsg("to.a")
	m.Header.Set("X-Trace", "tcp")
	require.NoError(t, b.PublishMsg(m))
	require.Equal(t, "tcp", nextMsgs(t, subA, 1)[0].Header.Get("X-Trace"))
}

// nats.go over ws://: core NATS with a TCP client of the same server;
// INFO shows the WebSocket port; /connz types the connection websocket.
func TestWebSocketClients(t *testing.T) {
	onBoth(t, func(port int) string { return wsConf(port, "no_tls: true") }, func(t *testing.T, s wsServer) {
		ws := wsConnect(t, s.wsURL())
		tcp := wsConnect(t, s.p.URL())
		exerciseCore(t, ws, tcp)
		require.Equal(t, s.wsURL(), ws.ConnectedUrl())

		info := wsReadINFO(t, s.wsURL(), nil)
		require.EqualValues(t, s.wsPort, info["port"], "INFO names the WebSocket port")
		require.Nil(t, info["tls_required"])

		var vz struct {
			WS struct {
				Port  int  `json:"port"`
				NoTLS bool `json:"no_tls"`
			} `json:"websocket"`
		}
		getJSON(t, s.p, "/varz", &vz)
		require.Equal(t, s.wsPort, vz.WS.Port)
		require.True(t, vz.WS.NoTLS)

		cz := getConnz(t, s.p, "")
		types := map[string]int{}
		for _, c := range cz.Connections {
			types[c.Kind+"/"+c.Type]++
		}
		require.Equal(t, 1, types["Client/websocket"], "%v", types)
		require.Equal(t, 1, types["Client/nats"], "%v", types)
	})
}

// A WebSocket client on one frontdoor and a TCP client on another, through
// the router tier: everything works as between two TCP clients.
func TestWebSocketAcrossFrontdoors(t *testing.T) {
	router := testkit.StartRouter(t, 0)
	routers := fmt.Sprintf("routers: [%q]\n", router.Addr())
	port := testkit.FreePort(t)
	a := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: routers + wsConf(port, "no_tls: true")})
	b := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: routers})
	ws := wsConnect(t, wsServer{p: a, wsPort: port}.wsURL())
	tcp := wsConnect(t, b.URL())
	exerciseCore(t, ws, tcp)
	require.Empty(t, ws.DiscoveredServers(), "no TCP connect_urls given to a WebSocket client")
}

// WebSocket clients learn the other frontdoors' WebSocket URLs (INFO
// connect_urls, and an INFO when one joins), TCP clients their client
// URLs, as nats-server tells each kind of client; websocket {}'s advertise
// without a port takes the listener's.
func TestWebSocketConnectURLs(t *testing.T) {
	router := testkit.StartRouter(t, 0)
	routers := fmt.Sprintf("routers: [%q]\n", router.Addr())
	aWS, bWS, cWS := testkit.FreePort(t), testkit.FreePort(t), testkit.FreePort(t)
	a := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: routers + wsConf(aWS, "no_tls: true")})
	b := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: routers + wsConf(bWS, "no_tls: true")})
	ws := wsConnect(t, wsServer{p: a, wsPort: aWS}.wsURL())
	tcp := wsConnect(t, a.URL())
	learns := func(nc *nats.Conn, want ...string) {
		t.Helper()
		slices.Sort(want)
		eventually(t, waitLong, func() error {
			got := nc.DiscoveredServers()
			slices.Sort(got)
			if !slices.Equal(got, want) {
				return fmt.Errorf("%s discovered %v, want %v", nc.ConnectedUrl(), got, want)
			}
			return nil
		})
	}
	learns(ws, fmt.Sprintf("ws://127.0.0.1:%d", bWS))
	learns(tcp, "nats://"+b.Addr())

	c := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: routers + wsConf(cWS, `no_tls: true, advertise: "ws-c.example"`)})
	learns(ws, fmt.Sprintf("ws://127.0.0.1:%d", bWS), fmt.Sprintf("ws://ws-c.example:%d", cWS))
	learns(tcp, "nats://"+b.Addr(), "nats://"+c.Addr())
}

// wss://: the TLS handshake, then the upgrade; INFO says tls_required
// and tls_available as nats-server's does; /connz shows the TLS version.
// A client that does not trust the CA is refused.
func TestWebSocketTLS(t *testing.T) {
	certs := testkit.NewCerts(t, "ws")
	tlsBlock := fmt.Sprintf("tls { cert_file: %q, key_file: %q }", certs.ServerCert, certs.ServerKey)
	onBoth(t, func(port int) string { return wsConf(port, tlsBlock) }, func(t *testing.T, s wsServer) {
		ws := wsConnect(t, s.wssURL(), nats.RootCAs(certs.CA))
		tcp := wsConnect(t, s.p.URL())
		exerciseCore(t, ws, tcp)

		pool := x509.NewCertPool()
		pem, err := os.ReadFile(certs.CA)
		require.NoError(t, err)
		pool.AppendCertsFromPEM(pem)
		info := wsReadINFO(t, s.wssURL(), &websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}})
		require.Equal(t, true, info["tls_required"])
		require.Equal(t, true, info["tls_available"])
		require.EqualValues(t, s.wsPort, info["port"])

		var cz struct {
			Connections []struct {
				Type       string `json:"type"`
				TLSVersion string `json:"tls_version"`
			} `json:"connections"`
		}
		getJSON(t, s.p, "/connz", &cz)
		found := false
		for _, c := range cz.Connections {
			if c.Type == "websocket" {
				found = true
				require.Equal(t, "1.3", c.TLSVersion)
			}
		}
		require.True(t, found)

		_, err = nats.Connect(s.wssURL(), nats.Timeout(2*time.Second), nats.NoReconnect())
		require.Error(t, err, "the suite's CA is not trusted")
		_, err = nats.Connect(s.wsURL(), nats.Timeout(2*time.Second), nats.NoReconnect())
		require.Error(t, err, "plain ws:// on a wss:// listener")
	})
}

// permessage-deflate: negotiated when configured and offered, and then
// both directions compressed; nats.go works the same with it.
func TestWebSocketCompression(t *testing.T) {
	onBoth(t, func(port int) string { return wsConf(port, "no_tls: true, compression: true") }, func(t *testing.T, s wsServer) {
		ws := wsConnect(t, s.wsURL(), nats.Compression(true))
		tcp := wsConnect(t, s.p.URL())
		exerciseCore(t, ws, tcp)

		d := websocket.Dialer{EnableCompression: true}
		c, resp, err := d.Dial(s.wsURL(), nil)
		require.NoError(t, err)
		defer c.Close()
		require.Equal(t, "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
			resp.Header.Get("Sec-Websocket-Extensions"))
		// A compressed frame from the client, and the raw bytes of the
		// server's answer carry the compressed bit.
		raw := newRawWS(t, s.wsURL(), http.Header{"Sec-Websocket-Extensions": {"permessage-deflate"}})
		raw.expect(t, "INFO ")
		msg := []byte("CONNECT {\"verbose\":false}\r\nSUB z 1\r\nPUB z 200\r\n" + strings.Repeat("z", 200) + "\r\nPING\r\n")
		raw.send(t, wsClientFrame(0x80|0x40|0x2, wsDeflate(t, msg), true))
		b0, got := raw.readFrame(t)
		require.Equal(t, byte(0x80|0x40|0x2), b0, "compressed MSG from the server")
		require.Contains(t, string(wsInflate(t, got)), "MSG z 1 200\r\n")
	})
	// Not configured: the offer is declined.
	onBoth(t, func(port int) string { return wsConf(port, "no_tls: true") }, func(t *testing.T, s wsServer) {
		d := websocket.Dialer{EnableCompression: true}
		c, resp, err := d.Dial(s.wsURL(), nil)
		require.NoError(t, err)
		c.Close()
		require.Empty(t, resp.Header.Get("Sec-Websocket-Extensions"))
		wsConnect(t, s.wsURL(), nats.Compression(true)).Flush()
	})
}

// same_origin and allowed_origins refuse a browser's foreign Origin with
// 403; a request without Origin (not a browser) passes.
func TestWebSocketOrigin(t *testing.T) {
	dial := func(s wsServer, origin string) (int, error) {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, resp, err := websocket.DefaultDialer.Dial(s.wsURL(), h)
		if c != nil {
			c.Close()
		}
		if resp != nil {
			return resp.StatusCode, err
		}
		return 0, err
	}
	onBoth(t, func(port int) string { return wsConf(port, "no_tls: true, same_origin: true") }, func(t *testing.T, s wsServer) {
		code, err := dial(s, fmt.Sprintf("http://127.0.0.1:%d", s.wsPort))
		require.NoError(t, err)
		require.Equal(t, http.StatusSwitchingProtocols, code)
		code, err = dial(s, "http://evil.example.com")
		require.Error(t, err)
		require.Equal(t, http.StatusForbidden, code)
		code, err = dial(s, "")
		require.NoError(t, err, "no Origin: not a browser, allowed")
		require.Equal(t, http.StatusSwitchingProtocols, code)
		eventually(t, waitLong, func() error {
			if !strings.Contains(s.p.Log(), "websocket handshake error: origin not allowed: not same origin") {
				return errors.New("refusal not logged")
			}
			return nil
		})
	})
	onBoth(t, func(port int) string {
		return wsConf(port, `no_tls: true, allowed_origins: ["https://app.example.com", "http://localhost:3000"]`)
	}, func(t *testing.T, s wsServer) {
		for origin, want := range map[string]int{
			"https://app.example.com":     http.StatusSwitchingProtocols,
			"https://app.example.com:443": http.StatusSwitchingProtocols,
			"http://localhost:3000":       http.StatusSwitchingProtocols,
			"http://app.example.com":      http.StatusForbidden, // scheme differs
			"http://localhost:3001":       http.StatusForbidden,
			"https://other.example.com":   http.StatusForbidden,
		} {
			code, _ := dial(s, origin)
			require.Equal(t, want, code, origin)
		}
		_, err := nats.Connect(s.wsURL(), nats.WebSocketConnectionHeaders(http.Header{"Origin": {"https://evil.example.com"}}),
			nats.Timeout(2*time.Second), nats.NoReconnect())
		require.Error(t, err, "nats.go refused too")
	})
}

// jwt_cookie: in operator mode a browser's cookie carries the user JWT
// (a bearer JWT: no nonce to sign); CONNECT without a JWT uses it.
// allowed_connection_types sees the client as WEBSOCKET.
func TestWebSocketJWTCookie(t *testing.T) {
	op := testkit.NewOperator(t)
	acc := op.Account("A", nil)
	bearer := func(types ...string) string {
		creds, _ := op.User(acc, func(uc *jwt.UserClaims) {
			uc.BearerToken = true
			uc.AllowedConnectionTypes = types
		}, nil)
		b, err := os.ReadFile(creds)
		require.NoError(t, err)
		token, err := jwt.ParseDecoratedJWT(b)
		require.NoError(t, err)
		return token
	}
	port := testkit.FreePort(t)
	s := startAuthSuite(t, op.MemoryConf(acc)+wsConf(port, `no_tls: true, jwt_cookie: "nats_jwt"`), 1)
	url := wsServer{p: s.fds[0], wsPort: port}.wsURL()
	withCookie := func(token string) nats.Option {
		return nats.WebSocketConnectionHeaders(http.Header{"Cookie": {"nats_jwt=" + token}})
	}

	nc := wsConnect(t, url, withCookie(bearer()))
	sub, err := nc.SubscribeSync("cookie")
	require.NoError(t, err)
	require.NoError(t, nc.Publish("cookie", []byte("in")))
	require.Equal(t, "in", string(nextMsgs(t, sub, 1)[0].Data))

	_, err = nats.Connect(url, nats.Timeout(2*time.Second), nats.NoReconnect())
	require.ErrorContains(t, err, "Authorization Violation", "no cookie, no JWT")
	nc = wsConnect(t, url, withCookie(bearer(jwt.ConnectionTypeWebsocket)))
	require.NoError(t, nc.Flush(), "a user allowed only on WebSocket")
	_, err = nats.Connect(url, withCookie(bearer(jwt.ConnectionTypeStandard)), nats.Timeout(2*time.Second), nats.NoReconnect())
	require.ErrorContains(t, err, "Authorization Violation", "a user allowed only on the client port")
}

// A JetStream publish (and read back) over WebSocket: the frontdoor passes
// $JS.API requests on as for any client.
func TestWebSocketJetStream(t *testing.T) {
	router := testkit.StartRouter(t, 0)
	port := testkit.FreePort(t)
	fd := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: fmt.Sprintf("routers: [%q]\n", router.Addr()) + wsConf(port, "no_tls: true")})
	testkit.StartStreamsvc(t, router.Addr(), filepath.Join(t.TempDir(), "js"))
	nc := wsConnect(t, wsServer{p: fd, wsPort: port}.wsURL())
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	var st jetstream.Stream
	eventually(t, waitLong, func() error {
		st, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "WS", Subjects: []string{"ws.>"}})
		return err
	})
	ack, err := js.Publish(ctx, "ws.one", []byte("persisted"))
	require.NoError(t, err)
	require.Equal(t, uint64(1), ack.Sequence)
	m, err := st.GetMsg(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, "persisted", string(m.Data))
}

// --- raw WebSocket clients for the frame-level tests.

// rawWS is a WebSocket connection after the upgrade, written byte by
// byte; the server's frames are read by hand too.
type rawWS struct {
	conn net.Conn
	buf  []byte // read but not yet consumed
}

// newRawWS upgrades a plain TCP connection (header adds to the request).
func newRawWS(t *testing.T, url string, header http.Header) *rawWS {
	t.Helper()
	hostport := strings.TrimPrefix(url, "ws://")
	conn, err := net.DialTimeout("tcp", hostport, time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	req := "GET / HTTP/1.1\r\nHost: " + hostport + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	for k, vs := range header {
		for _, v := range vs {
			req += k + ": " + v + "\r\n"
		}
	}
	_, err = io.WriteString(conn, req+"\r\n")
	require.NoError(t, err)
	rc := &rawWS{conn: conn}
	head := rc.readUntil(t, "\r\n\r\n")
	require.True(t, strings.HasPrefix(head, "HTTP/1.1 101 "), head)
	return rc
}

func (rc *rawWS) readUntil(t *testing.T, sep string) string {
	t.Helper()
	rc.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	tmp := make([]byte, 4096)
	for !bytes.Contains(rc.buf, []byte(sep)) {
		n, err := rc.conn.Read(tmp)
		require.NoError(t, err, "reading until %q; have %q", sep, rc.buf)
		rc.buf = append(rc.buf, tmp[:n]...)
	}
	i := bytes.Index(rc.buf, []byte(sep)) + len(sep)
	s := string(rc.buf[:i])
	rc.buf = rc.buf[i:]
	return s
}

func (rc *rawWS) fill(t *testing.T, n int) error {
	t.Helper()
	tmp := make([]byte, 64<<10)
	for len(rc.buf) < n {
		k, err := rc.conn.Read(tmp)
		rc.buf = append(rc.buf, tmp[:k]...)
		if err != nil {
			return err
		}
	}
	return nil
}

// readFrame reads one server frame: its first byte and payload.
func (rc *rawWS) readFrame(t *testing.T) (byte, []byte) {
	t.Helper()
	b0, p, err := rc.tryFrame(t, 5*time.Second)
	require.NoError(t, err)
	return b0, p
}

func (rc *rawWS) tryFrame(t *testing.T, d time.Duration) (byte, []byte, error) {
	rc.conn.SetReadDeadline(time.Now().Add(d))
	if err := rc.fill(t, 2); err != nil {
		return 0, nil, err
	}
	require.Zero(t, rc.buf[1]&0x80, "server frames are not masked")
	n, hl := int(rc.buf[1]&0x7f), 2
	switch n {
	case 126:
		if err := rc.fill(t, 4); err != nil {
			return 0, nil, err
		}
		n, hl = int(binary.BigEndian.Uint16(rc.buf[2:])), 4
	case 127:
		if err := rc.fill(t, 10); err != nil {
			return 0, nil, err
		}
		n, hl = int(binary.BigEndian.Uint64(rc.buf[2:])), 10
	}
	if err := rc.fill(t, hl+n); err != nil {
		return 0, nil, err
	}
	b0, p := rc.buf[0], append([]byte(nil), rc.buf[hl:hl+n]...)
	rc.buf = rc.buf[hl+n:]
	return b0, p, nil
}

// expect reads data frames until their text contains want.
func (rc *rawWS) expect(t *testing.T, want string) string {
	t.Helper()
	var all string
	for !strings.Contains(all, want) {
		b0, p := rc.readFrame(t)
		require.NotEqual(t, byte(0x8), b0&0x0f, "closed (%q) while waiting for %q; had %q", p, want, all)
		if b0&0x40 != 0 {
			p = wsInflate(t, p)
		}
		all += string(p)
	}
	return all
}

// expectClose reads until the server's close frame and the end of the
// connection; it returns the close status and text.
func (rc *rawWS) expectClose(t *testing.T) (int, string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b0, p, err := rc.tryFrame(t, time.Until(deadline))
		require.NoError(t, err, "no close frame")
		if b0&0x0f == 0x8 {
			require.GreaterOrEqual(t, len(p), 2)
			rc.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, err := rc.conn.Read(make([]byte, 1))
			require.Error(t, err, "the connection ends after the close frame")
			return int(binary.BigEndian.Uint16(p)), string(p[2:])
		}
	}
	t.Fatal("no close frame")
	return 0, ""
}

func (rc *rawWS) send(t *testing.T, b []byte) {
	t.Helper()
	rc.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := rc.conn.Write(b)
	require.NoError(t, err)
}

// wsClientFrame builds a client frame with first byte b0, masked or not.
func wsClientFrame(b0 byte, p []byte, masked bool) []byte {
	f := []byte{b0}
	var mb byte
	if masked {
		mb = 0x80
	}
	switch {
	case len(p) <= 125:
		f = append(f, mb|byte(len(p)))
	case len(p) < 1<<16:
		f = append(f, mb|126, byte(len(p)>>8), byte(len(p)))
	default:
		f = append(f, mb|127)
		f = binary.BigEndian.AppendUint64(f, uint64(len(p)))
	}
	if !masked {
		return append(f, p...)
	}
	key := []byte{0x37, 0xfa, 0x21, 0x3d}
	f = append(f, key...)
	for i, b := range p {
		f = append(f, b^key[i%4])
	}
	return f
}

func wsDeflate(t *testing.T, p []byte) []byte {
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.BestSpeed)
	require.NoError(t, err)
	w.Write(p)
	w.Flush()
	return b.Bytes()[:b.Len()-4]
}

func wsInflate(t *testing.T, p []byte) []byte {
	out, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(p),
		bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}))))
	require.NoError(t, err)
	return out
}

// wsReadINFO reads the first message of a WebSocket connection: INFO.
func wsReadINFO(t *testing.T, url string, d *websocket.Dialer) map[string]any {
	t.Helper()
	if d == nil {
		d = websocket.DefaultDialer
	}
	c, _, err := d.Dial(url, nil)
	require.NoError(t, err)
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, b, err := c.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, websocket.BinaryMessage, mt)
	s := string(b)
	require.True(t, strings.HasPrefix(s, "INFO {") && strings.HasSuffix(s, "} \r\n"), s)
	var info map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSuffix(s[5:], " \r\n")), &info))
	return info
}
