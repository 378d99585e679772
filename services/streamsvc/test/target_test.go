package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

// referenceEnv names a nats-server binary to run the tests that use
// startTarget against instead of the suite: what they assert must be
// nats-server's behaviour, and this is how to check it, e.g.
//
//	STREAMSVC_REFERENCE=$PWD/../../.tools/bin/nats-server go test ./test/ -run 'JetStreamAck'
const referenceEnv = "STREAMSVC_REFERENCE"

// target is what a test talks to: two entry points into one JetStream
// (the suite's two frontdoors, or one nats-server twice).
type target struct {
	urls      [2]string
	suite     *suite // nil against nats-server
	reference bool
}

func startTarget(t *testing.T) *target {
	t.Helper()
	bin := os.Getenv(referenceEnv)
	if bin == "" {
		s := startSuite(t)
		return &target{urls: [2]string{s.fds[0].URL(), s.fds[1].URL()}, suite: s}
	}
	port := testkit.FreePort(t)
	p := testkit.Start(t, bin, "-js", "-sd", filepath.Join(t.TempDir(), "js"), "-a", "127.0.0.1", "-p", strconv.Itoa(port))
	p.Port = port
	testkit.WaitForINFO(t, p, wait)
	return &target{urls: [2]string{p.URL(), p.URL()}, reference: true}
}

// connect opens a connection through entry point i (0 or 1).
func (tg *target) connect(t *testing.T, i int) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(tg.urls[i], nats.Timeout(wait))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return nc, js
}

// alive fails the test when streamsvc has exited (nothing to check
// against nats-server).
func (tg *target) alive(t *testing.T) {
	t.Helper()
	if tg.suite == nil {
		return
	}
	select {
	case <-tg.suite.streamsvc.Done():
		t.Fatalf("streamsvc exited:\n%s", tg.suite.streamsvc.Log())
	default:
	}
}

// apiRequest sends a raw JetStream API request and decodes the reply.
func apiRequest(t *testing.T, nc *nats.Conn, subj, body string) map[string]any {
	t.Helper()
	m, err := nc.Request(subj, []byte(body), wait)
	require.NoError(t, err, "%s %s", subj, body)
	var out map[string]any
	require.NoError(t, json.Unmarshal(m.Data, &out), "%s %s: %q", subj, body, m.Data)
	return out
}

// apiError is the error object of a raw API reply (nil when it has none).
func apiError(reply map[string]any) map[string]any {
	e, _ := reply["error"].(map[string]any)
	return e
}

// errorObject is an API error as nats-server's JSON holds it.
func errorObject(code, errCode int, description string) map[string]any {
	return map[string]any{"code": float64(code), "err_code": float64(errCode), "description": description}
}

// eventually polls cond every 20 ms for up to wait.
func eventually(t *testing.T, cond func() bool, msgAndArgs ...any) {
	t.Helper()
	require.Eventually(t, cond, wait, 20*time.Millisecond, msgAndArgs...)
}

// waitForAPI waits until the JetStream API answers through js (streamsvc's
// interest reaches a new frontdoor a moment after it starts).
func waitForAPI(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	eventually(t, func() bool {
		_, err := js.AccountInfo(attempt(t))
		return err == nil
	}, "the JetStream API does not answer")
}
