// Package test drives a real frontdoor binary with nats.go (the client most
// users run) and raw TCP, asserting the behaviour nats-server v2.15.2 shows
// for the same traffic. Every test starts its own frontdoor on free loopback
// ports, so tests cannot see each other's connections or counters.
//
// The suite also runs against the reference server, which is how its
// expectations were checked: put a "frontdoor" symlink to nats-server in a
// directory and point SWITCHYARD_BIN_DIR at it. Three tests are expected to
// fail there, each for a deliberate difference: TestConfigUnsupportedKeyRefused
// (nats-server has clusters), TestLifecycleLameDuck* (nats-server refuses a
// lame_duck_duration under 30 s; the same test passes with 30 s / 10 s), and
// TestLifecycleReloadInvalidKeepsRunning (nats-server's reload error does not
// name the key, which our errors must).
package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

// Liveness bounds: generous, because CI machines have two cores and run
// several test binaries at once. Tests that assert something is prompt use
// their own tighter bound and say why.
const (
	waitLong  = 10 * time.Second
	quietTime = 200 * time.Millisecond // how long "nothing more arrives" is watched
)

// start runs a frontdoor with the given configuration text ("" for none).
func start(t *testing.T, conf string) *testkit.Process {
	t.Helper()
	return testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: conf})
}

// connect opens a nats.go connection that is closed when the test ends.
func connect(t *testing.T, p *testkit.Process, opts ...nats.Option) *nats.Conn {
	t.Helper()
	all := append([]nats.Option{nats.Name(t.Name()), nats.Timeout(5 * time.Second)}, opts...)
	nc, err := nats.Connect(p.URL(), all...)
	require.NoError(t, err, "connecting to %s", p.URL())
	t.Cleanup(nc.Close)
	return nc
}

// flush waits until the server has processed everything nc sent.
func flush(t *testing.T, ncs ...*nats.Conn) {
	t.Helper()
	for _, nc := range ncs {
		require.NoError(t, nc.FlushTimeout(waitLong))
	}
}

// nextMsgs reads exactly n messages from a synchronous subscription.
func nextMsgs(t *testing.T, sub *nats.Subscription, n int) []*nats.Msg {
	t.Helper()
	out := make([]*nats.Msg, 0, n)
	deadline := time.Now().Add(waitLong)
	for len(out) < n {
		m, err := sub.NextMsg(time.Until(deadline))
		require.NoError(t, err, "subscription %q: got %d of %d messages", sub.Subject, len(out), n)
		out = append(out, m)
	}
	return out
}

// expectNoMsg fails if sub receives anything within quietTime.
func expectNoMsg(t *testing.T, sub *nats.Subscription) {
	t.Helper()
	m, err := sub.NextMsg(quietTime)
	if err == nil {
		t.Fatalf("subscription %q: unexpected message on %q: %q", sub.Subject, m.Subject, m.Data)
	}
	require.ErrorIs(t, err, nats.ErrTimeout)
}

// eventually polls check until it returns nil or d passes, then fails with
// its last error (which should say what was seen).
func eventually(t *testing.T, d time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// getJSON fetches a monitoring endpoint and decodes it into v.
func getJSON(t *testing.T, p *testkit.Process, path string, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal([]byte(getBody(t, p, path)), v), "GET %s: decoding", path)
}

// getBody fetches a monitoring endpoint.
func getBody(t *testing.T, p *testkit.Process, path string) string {
	t.Helper()
	resp, err := httpClient.Get(p.MonitorURL() + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s", path)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// varz is the part of /varz the tests read (nats-server's field names).
type varz struct {
	ServerID         string `json:"server_id"`
	ServerName       string `json:"server_name"`
	Version          string `json:"version"`
	Port             int    `json:"port"`
	HTTPPort         int    `json:"http_port"`
	MaxPayload       int    `json:"max_payload"`
	MaxPending       int64  `json:"max_pending"`
	MaxConnections   int    `json:"max_connections"`
	Connections      int    `json:"connections"`
	TotalConnections int    `json:"total_connections"`
	InMsgs           int64  `json:"in_msgs"`
	InBytes          int64  `json:"in_bytes"`
	OutMsgs          int64  `json:"out_msgs"`
	OutBytes         int64  `json:"out_bytes"`
	SlowConsumers    int64  `json:"slow_consumers"`
	StaleConnections int64  `json:"stale_connections"`
	Subscriptions    int    `json:"subscriptions"`
}

// numSubs is /subsz num_subscriptions. nats-server counts its internal
// system-account subscriptions too, so tests compare differences.
func numSubs(t *testing.T, p *testkit.Process) int {
	t.Helper()
	var sz struct {
		NumSubs int `json:"num_subscriptions"`
	}
	getJSON(t, p, "/subsz", &sz)
	return sz.NumSubs
}

func getVarz(t *testing.T, p *testkit.Process) varz {
	t.Helper()
	var v varz
	getJSON(t, p, "/varz", &v)
	return v
}

// connz and connInfo are /connz with nats-server's field names.
type connz struct {
	ServerID    string     `json:"server_id"`
	NumConns    int        `json:"num_connections"`
	Total       int        `json:"total"`
	Connections []connInfo `json:"connections"`
}

type connInfo struct {
	Cid        uint64      `json:"cid"`
	Kind       string      `json:"kind"`
	Type       string      `json:"type"`
	IP         string      `json:"ip"`
	Port       int         `json:"port"`
	Pending    int         `json:"pending_bytes"`
	InMsgs     int64       `json:"in_msgs"`
	OutMsgs    int64       `json:"out_msgs"`
	NumSubs    int         `json:"subscriptions"`
	Name       string      `json:"name"`
	Lang       string      `json:"lang"`
	Version    string      `json:"version"`
	Reason     string      `json:"reason"`
	Stop       *time.Time  `json:"stop"`
	Subs       []string    `json:"subscriptions_list"`
	SubsDetail []subDetail `json:"subscriptions_list_detail"`
}

type subDetail struct {
	Subject string `json:"subject"`
	Queue   string `json:"qgroup"`
	Sid     string `json:"sid"`
	Msgs    int64  `json:"msgs"`
	Max     int64  `json:"max"`
	Cid     uint64 `json:"cid"`
}

func getConnz(t *testing.T, p *testkit.Process, query string) connz {
	t.Helper()
	var c connz
	getJSON(t, p, "/connz"+query, &c)
	return c
}

// findConn returns the /connz entry with the given client id.
func findConn(c connz, cid uint64) (connInfo, bool) {
	for _, ci := range c.Connections {
		if ci.Cid == cid {
			return ci, true
		}
	}
	return connInfo{}, false
}

// waitForConnections waits until /varz reports n open connections.
// StartFrontdoor's readiness probe is a real connection that the server
// notices closing a little later, so tests that count connections wait for
// it to go first.
func waitForConnections(t *testing.T, p *testkit.Process, n int) {
	t.Helper()
	eventually(t, waitLong, func() error {
		if got := getVarz(t, p).Connections; got != n {
			return fmt.Errorf("/varz connections is %d, want %d", got, n)
		}
		return nil
	})
}

// rawClientID is the client_id of a raw connection's INFO.
func rawClientID(t *testing.T, rc *testkit.RawConn) uint64 {
	t.Helper()
	var info struct {
		ClientID uint64 `json:"client_id"`
	}
	js := strings.TrimSuffix(strings.TrimPrefix(rc.INFO, "INFO "), " \r\n")
	require.NoError(t, json.Unmarshal([]byte(js), &info), "INFO %q", rc.INFO)
	require.NotZero(t, info.ClientID, "INFO without client_id: %q", rc.INFO)
	return info.ClientID
}

// writeConfig writes a configuration file the test can rewrite later.
func writeConfig(t *testing.T, dir, text string) string {
	t.Helper()
	path := filepath.Join(dir, "frontdoor.conf")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

// payload returns n bytes that differ from message to message, so a
// misplaced or truncated body does not compare equal by accident.
func payload(n int, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + (i+seed)%26)
	}
	return b
}

func seqData(i int) []byte { return []byte(fmt.Sprintf("%08d", i)) }
