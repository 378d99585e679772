package test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

func TestConfigMapping(t *testing.T) {
	p := start(t, `mappings {
  "orders.*": "new.orders.$1"
}
`)
	sub := connect(t, p)
	pub := connect(t, p)
	mapped, err := sub.SubscribeSync("new.orders.*")
	require.NoError(t, err)
	original, err := sub.SubscribeSync("orders.*")
	require.NoError(t, err)
	unrelated, err := sub.SubscribeSync("orders")
	require.NoError(t, err)
	flush(t, sub)

	require.NoError(t, pub.Publish("orders.x", []byte("one")))
	require.NoError(t, pub.Publish("orders.y", []byte("two")))
	require.NoError(t, pub.Publish("orders", []byte("unmapped"))) // one token: no match
	flush(t, pub, sub)

	ms := nextMsgs(t, mapped, 2)
	require.Equal(t, "new.orders.x", ms[0].Subject)
	require.Equal(t, "one", string(ms[0].Data))
	require.Equal(t, "new.orders.y", ms[1].Subject)
	expectNoMsg(t, mapped)
	// The mapping replaces the subject: the original is not delivered too.
	expectNoMsg(t, original)
	require.Equal(t, "unmapped", string(nextMsgs(t, unrelated, 1)[0].Data))

	// Requests are mapped too, and the reply comes back unmapped.
	resp := connect(t, p)
	_, err = resp.Subscribe("new.orders.req", func(m *nats.Msg) { m.Respond([]byte("via " + m.Subject)) })
	require.NoError(t, err)
	flush(t, resp)
	m, err := pub.Request("orders.req", nil, waitLong)
	require.NoError(t, err)
	require.Equal(t, "via new.orders.req", string(m.Data))
}

func TestConfigWeightedMapping(t *testing.T) {
	p := start(t, `mappings {
  "w": [
    {destination: "a", weight: "50%"},
    {destination: "b", weight: "50%"}
  ]
}
`)
	sub := connect(t, p)
	pub := connect(t, p)
	var mu sync.Mutex
	counts := map[string]int{}
	for _, subj := range []string{"a", "b", "w"} {
		s, err := sub.Subscribe(subj, func(m *nats.Msg) {
			mu.Lock()
			counts[m.Subject]++
			mu.Unlock()
		})
		require.NoError(t, err)
		require.NoError(t, s.SetPendingLimits(-1, -1))
	}
	flush(t, sub)

	const n = 1000
	for range n {
		require.NoError(t, pub.Publish("w", nil))
	}
	flush(t, pub, sub)
	eventually(t, waitLong, func() error {
		mu.Lock()
		defer mu.Unlock()
		if got := counts["a"] + counts["b"] + counts["w"]; got < n {
			return fmt.Errorf("%d of %d delivered: %v", got, n, counts)
		}
		return nil
	})
	flush(t, sub)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, n, counts["a"]+counts["b"], "every message goes to exactly one destination: %v", counts)
	require.Zero(t, counts["w"], "weights add up to 100%%: nothing keeps the original subject")
	// 50/50 over 1000: 350 is more than nine standard deviations out.
	require.Greater(t, counts["a"], 350, "split %v", counts)
	require.Greater(t, counts["b"], 350, "split %v", counts)
}

// runFrontdoor runs the binary to completion (it must exit by itself) and
// returns its exit code and output.
func runFrontdoor(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	all := append([]string{"-a", "127.0.0.1", "-p", strconv.Itoa(testkit.FreePort(t))}, args...)
	out, err := exec.CommandContext(ctx, testkit.Binary(t, "frontdoor"), all...).CombinedOutput()
	require.NoError(t, ctx.Err(), "the binary kept running:\n%s", out)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	require.NoError(t, err)
	return 0, string(out)
}

func TestConfigUnsupportedKeyRefused(t *testing.T) {
	// Line 3 holds the key; a nats-server file with a cluster block must
	// not start a frontdoor that silently is not clustered.
	path := writeConfig(t, t.TempDir(), "# a nats-server file\nmax_payload: 1MB\ncluster {\n  port: 6222\n}\n")
	code, out := runFrontdoor(t, "-c", path)
	require.NotZero(t, code, "started with an unsupported key:\n%s", out)
	require.Contains(t, out, `"cluster"`, "the error names the key")
	require.Contains(t, out, path+":3", "the error gives file and line")
}

func TestConfigUnknownKeyRefused(t *testing.T) {
	path := writeConfig(t, t.TempDir(), "max_payload: 1MB\nmax_paylod: 2MB\n")
	code, out := runFrontdoor(t, "-c", path)
	require.NotZero(t, code, "started with a misspelt key:\n%s", out)
	require.Contains(t, out, "max_paylod")
	require.Contains(t, out, path+":2")
}

func TestConfigBadValueRefused(t *testing.T) {
	path := writeConfig(t, t.TempDir(), "ping_interval: \"soon\"\n")
	code, out := runFrontdoor(t, "-c", path)
	require.NotZero(t, code, "started with a bad value:\n%s", out)
	require.Contains(t, out, "ping_interval")
	require.Contains(t, out, path+":1")
}

func TestConfigMaxConnections(t *testing.T) {
	p := start(t, "max_connections: 2\n")
	waitForConnections(t, p, 0) // the readiness probe counts until it is gone
	first := connect(t, p)
	connect(t, p)

	// The server writes INFO and -ERR and closes at once, so nats.go sees
	// either the -ERR (ErrMaxConnectionsExceeded) or a broken pipe while
	// sending CONNECT, with nats-server as with us. Either way: refused.
	refused, err := nats.Connect(p.URL(), nats.Timeout(5*time.Second), nats.NoReconnect())
	if err == nil {
		refused.Close()
	}
	require.Error(t, err, "a third connection was accepted with max_connections: 2")

	// On the wire: INFO, then the -ERR, then the close.
	rc := testkit.DialRaw(t, p.Addr())
	require.Equal(t, "-ERR 'maximum connections exceeded'\r\n", rc.ExpectClosed(5*time.Second))

	// The refused ones do not count; a freed slot is usable again.
	require.Equal(t, 2, getVarz(t, p).Connections)
	first.Close()
	waitForConnections(t, p, 1)
	third := connect(t, p)
	require.NoError(t, third.FlushTimeout(waitLong))
}

func TestConfigMaxSubscriptions(t *testing.T) {
	p := start(t, "max_subscriptions: 2\n")

	asyncErr := make(chan error, 4)
	nc := connect(t, p, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { asyncErr <- err }))
	a, err := nc.SubscribeSync("ms.a")
	require.NoError(t, err)
	_, err = nc.SubscribeSync("ms.b")
	require.NoError(t, err)
	_, err = nc.SubscribeSync("ms.c") // nats.go learns of the refusal asynchronously
	require.NoError(t, err)
	flush(t, nc)
	select {
	case err := <-asyncErr:
		require.ErrorIs(t, err, nats.ErrMaxSubscriptionsExceeded)
	case <-time.After(waitLong):
		t.Fatal("no asynchronous error for the third subscription")
	}
	// The connection stays open and its first subscriptions work.
	require.False(t, nc.IsClosed())
	require.NoError(t, nc.Publish("ms.a", []byte("ok")))
	flush(t, nc)
	require.Equal(t, "ok", string(nextMsgs(t, a, 1)[0].Data))

	// The exact text, as nats-server v2.15.2 sends it (lower case: it is
	// ErrTooManySubs.Error()), and the connection is not closed.
	rc := testkit.DialRaw(t, p.Addr())
	rc.Send("CONNECT {\"verbose\":false}\r\nSUB x 1\r\nSUB y 2\r\nSUB z 3\r\nPING\r\n")
	rc.Expect("-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n")
	rc.Send("PING\r\n")
	rc.Expect("PONG\r\n")

	// Per connection, not per server: a second client gets its own two.
	other := connect(t, p)
	for _, subj := range []string{"o.1", "o.2"} {
		_, err := other.SubscribeSync(subj)
		require.NoError(t, err)
	}
	flush(t, other)
	select {
	case err := <-asyncErr:
		t.Fatalf("unexpected error: %v", err)
	default:
	}
	ci, ok := findConn(getConnz(t, p, ""), mustCID(t, other))
	require.True(t, ok)
	require.Equal(t, 2, ci.NumSubs)
}

func mustCID(t *testing.T, nc *nats.Conn) uint64 {
	t.Helper()
	id, err := nc.GetClientID()
	require.NoError(t, err)
	return id
}

func TestConfigFlagsOverrideFile(t *testing.T) {
	// -p on the command line wins over port in the file (StartFrontdoor
	// passes -p), as in nats-server.
	p := start(t, "port: 1\nmax_payload: 2KB\n")
	nc := connect(t, p)
	require.EqualValues(t, 2048, nc.MaxPayload())
	require.True(t, strings.HasSuffix(nc.ConnectedUrl(), strconv.Itoa(p.Port)))
}
