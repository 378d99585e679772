package test

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

// onBothAuth runs body against the suite (a frontdoor with authsvc, both
// reading conf) and against nats-server when it is installed.
func onBothAuth(t *testing.T, conf func(wsPort int) string, body func(t *testing.T, s wsServer)) {
	t.Run("switchyard", func(t *testing.T) {
		port := testkit.FreePort(t)
		dir := t.TempDir()
		file := filepath.Join(dir, "auth.conf")
		require.NoError(t, os.WriteFile(file, []byte(conf(port)), 0o600))
		authsvc := testkit.StartAuthsvc(t, file)
		p := start(t, conf(port)+fmt.Sprintf("\nauthsvc: %q\n", authsvc.Addr()))
		body(t, wsServer{"switchyard", p, port})
	})
	onReference(t, conf, body)
}

// admits connects to url with opts and says whether it was let in. (A
// refused WebSocket client may see the close before the -ERR, so the
// error's text is not checked.)
func admits(t *testing.T, url string, opts ...nats.Option) bool {
	t.Helper()
	nc, err := nats.Connect(url, append(opts, nats.NoReconnect(), nats.Timeout(5*time.Second))...)
	if err != nil {
		return false
	}
	nc.Close()
	return true
}

// websocket {}'s authorization and no_auth_user apply to WebSocket clients
// only, as in nats-server: its own token or user/password instead of the
// client port's, its own no_auth_user; the users lists apply to both.
func TestWebSocketAuthOverride(t *testing.T) {
	t.Run("token for WebSocket only", func(t *testing.T) {
		onBothAuth(t, func(port int) string {
			return wsConf(port, `no_tls: true, authorization { token: "ws-secret" }`)
		}, func(t *testing.T, s wsServer) {
			require.True(t, admits(t, s.p.URL()), "TCP needs nothing")
			require.False(t, admits(t, s.wsURL()), "WebSocket needs the token")
			require.False(t, admits(t, s.wsURL(), nats.Token("wrong")))
			require.True(t, admits(t, s.wsURL(), nats.Token("ws-secret")))
		})
	})
	t.Run("user and password instead of the client port's token", func(t *testing.T) {
		onBothAuth(t, func(port int) string {
			return `authorization { token: "tcp-secret" }` + "\n" +
				wsConf(port, `no_tls: true, authorization { user: web, password: "web-pw", timeout: 3 }`)
		}, func(t *testing.T, s wsServer) {
			require.True(t, admits(t, s.p.URL(), nats.Token("tcp-secret")))
			require.False(t, admits(t, s.p.URL(), nats.UserInfo("web", "web-pw")))
			require.True(t, admits(t, s.wsURL(), nats.UserInfo("web", "web-pw")))
			require.False(t, admits(t, s.wsURL(), nats.UserInfo("web", "nope")))
			require.False(t, admits(t, s.wsURL(), nats.Token("tcp-secret")), "the client port's token does not open WebSocket")
		})
	})
	t.Run("no_auth_user for WebSocket only", func(t *testing.T) {
		onBothAuth(t, func(port int) string {
			return `accounts { A { users: [{user: alice, password: "a-pw"}] }, B { users: [{user: browser, password: "b-pw"}] } }` + "\n" +
				wsConf(port, `no_tls: true, no_auth_user: browser`)
		}, func(t *testing.T, s wsServer) {
			require.False(t, admits(t, s.p.URL()), "TCP without credentials")
			require.True(t, admits(t, s.p.URL(), nats.UserInfo("alice", "a-pw")))
			require.True(t, admits(t, s.wsURL(), nats.UserInfo("alice", "a-pw")), "the users lists apply to WebSocket too")
			require.False(t, admits(t, s.wsURL(), nats.UserInfo("alice", "wrong")))
			// Without credentials a WebSocket client is browser, in B:
			// it shares subjects with browser's TCP login, not alice's.
			anon := wsConnect(t, s.wsURL())
			b := wsConnect(t, s.p.URL(), nats.UserInfo("browser", "b-pw"))
			a := wsConnect(t, s.p.URL(), nats.UserInfo("alice", "a-pw"))
			inB, err := b.SubscribeSync("greet")
			require.NoError(t, err)
			inA, err := a.SubscribeSync("greet")
			require.NoError(t, err)
			flush(t, a, b)
			require.NoError(t, anon.Publish("greet", []byte("hi")))
			flush(t, anon)
			m, err := inB.NextMsg(waitLong)
			require.NoError(t, err)
			require.Equal(t, "hi", string(m.Data))
			expectNoMsg(t, inA)
		})
	})
	t.Run("user or token beside a users list", func(t *testing.T) {
		// nats-server looks a named user up in the users lists first, so
		// websocket {}'s own user could never log in: it refuses the file,
		// and so does the frontdoor, in its words.
		for _, auth := range []string{`user: web, password: "web-pw"`, `token: "ws-secret"`} {
			conf := wsConf(testkit.FreePort(t), "no_tls: true, authorization { "+auth+" }") +
				`authorization { users: [{user: alice, password: "a-pw"}] }`
			code, out := runFrontdoor(t, "-c", writeConfig(t, t.TempDir(), conf))
			require.NotZero(t, code, "started with %s", auth)
			require.Contains(t, out, "not compatible with presence of users/nkeys", auth)
		}
	})
}

// A reload of authsvc's file rechecks every connection: a WebSocket client
// that logged in with websocket {}'s token keeps its connection while the
// token stands, and is closed when it gives way to a user.
func TestWebSocketAuthOverrideReload(t *testing.T) {
	port := testkit.FreePort(t)
	conf := func(extra string) string {
		return wsConf(port, `no_tls: true, authorization { token: "ws-secret" }`) + extra
	}
	s := startAuthSuite(t, conf(""), 1)
	url := fmt.Sprintf("ws://127.0.0.1:%d", port)
	closed := make(chan struct{})
	ws := wsConnect(t, url, nats.Token("ws-secret"), nats.NoReconnect(), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))

	// Another change to the file: the revision moves, the client stays.
	require.NoError(t, os.WriteFile(s.file, []byte(conf("\nmax_payload: 2MB\naccounts { X {} }\n")), 0o600))
	require.NoError(t, s.authsvc.Signal(syscall.SIGHUP))
	testkit.WaitForLog(t, s.authsvc, "signal: reloading", waitLong)
	time.Sleep(500 * time.Millisecond) // the frontdoor rechecks within a moment
	require.NoError(t, ws.FlushTimeout(waitLong), "the WebSocket client was closed by the recheck")

	// The token gives way to a user and password: the client goes.
	require.NoError(t, os.WriteFile(s.file, []byte(wsConf(port, `no_tls: true, authorization { user: web, password: "pw" }`)), 0o600))
	require.NoError(t, s.authsvc.Signal(syscall.SIGHUP))
	select {
	case <-closed:
	case <-time.After(waitLong):
		t.Fatal("the WebSocket client stayed after its token was replaced by a user")
	}
}
