package test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

// jsLimits grants JetStream in an account JWT as `nsc edit account
// --js-enable 1` does: unlimited storage of both kinds, streams and
// consumers; maxStreams, when not -1, bounds the streams.
func jsLimits(maxStreams int64) func(*jwt.AccountClaims) {
	return func(ac *jwt.AccountClaims) {
		ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: maxStreams, Consumer: -1}
	}
}

// In operator mode JetStream follows the account JWTs, as on nats-server:
// an account whose JWT grants it (pushed with nsc push after streamsvc
// started) gets streams; one whose JWT does not is told JetStream is not
// enabled for it; a JWT pushed later turns JetStream on with the JWT's
// limits, or off, closing the account's streams; streams survive a
// streamsvc restart. The resolver's JWTs are in a directory.
func TestJetStreamOperatorAccounts(t *testing.T) {
	testOperatorAccounts(t, fmt.Sprintf("dir: %q", filepath.Join(t.TempDir(), "jwt")))
}

// The same with the JWTs in Postgres (authsvc lists them from there).
func TestJetStreamOperatorAccountsPostgres(t *testing.T) {
	testOperatorAccounts(t, fmt.Sprintf("postgres: %q", testkit.StartPostgres(t)))
}

func testOperatorAccounts(t *testing.T, resolverStore string) {
	op := testkit.NewOperator(t)
	a := op.Account("A", jsLimits(-1))
	b := op.Account("B", nil)
	dir := t.TempDir()
	conf := op.FullConf(resolverStore) + "jetstream { }\n"
	file := filepath.Join(dir, "suite.conf")
	require.NoError(t, os.WriteFile(file, []byte(conf), 0o600))
	router := testkit.StartRouter(t, 0)
	auth := testkit.StartAuthsvc(t, file)
	suiteConf := conf + fmt.Sprintf("routers: [%q]\nauthsvc: %q\n", router.Addr(), auth.Addr())
	var fds []*testkit.Process
	for range 2 {
		fds = append(fds, testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: suiteConf}))
	}
	ssFile := filepath.Join(dir, "streamsvc.conf")
	require.NoError(t, os.WriteFile(ssFile, []byte(suiteConf), 0o600))
	storeDir := filepath.Join(dir, "js")
	ss := testkit.StartStreamsvc(t, router.Addr(), storeDir, "-c", ssFile)

	connect := func(fd *testkit.Process, creds string) (*nats.Conn, jetstream.JetStream) {
		nc, err := nats.Connect(fd.URL(), nats.UserCredentials(creds), nats.Timeout(wait))
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		return nc, js
	}
	sysCreds, _ := op.User(op.Sys, nil, nil)
	sys, _ := connect(fds[0], sysCreds)
	push := func(acc *testkit.IssuedAccount) {
		m, err := sys.Request("$SYS.REQ.CLAIMS.UPDATE", []byte(acc.Token), wait)
		require.NoError(t, err)
		require.Contains(t, string(m.Data), `"code":200`, "pushing %s", acc.Claims.Name)
	}
	push(a)
	push(b)

	aCreds, _ := op.User(a, nil, nil)
	bCreds, _ := op.User(b, nil, nil)
	_, jsA := connect(fds[0], aCreds)
	_, jsA2 := connect(fds[1], aCreds)
	_, jsB := connect(fds[1], bCreds)

	// A's JWT grants JetStream: it arrives with the pushed JWT.
	var info *jetstream.AccountInfo
	require.Eventually(t, func() bool {
		var err error
		info, err = jsA.AccountInfo(attempt(t))
		return err == nil
	}, wait, 50*time.Millisecond, "JetStream for the pushed account A")
	require.Equal(t, -1, info.Limits.MaxStreams)
	require.Equal(t, int64(-1), info.Limits.MaxStore)
	createStream(t, jsA, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	ack, err := jsA2.Publish(ctx(t), "orders.1", []byte("one"))
	require.NoError(t, err, "published through the other frontdoor")
	require.Equal(t, "ORDERS", ack.Stream)

	// B's JWT does not: nats-server's answer, not silence.
	require.Eventually(t, func() bool {
		_, err := jsB.AccountInfo(attempt(t))
		return errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount)
	}, wait, 50*time.Millisecond, "B is told JetStream is not enabled for it")

	// A new JWT for B grants JetStream with one stream at most.
	b.Claims.IssuedAt = time.Now().Unix() + 1
	jsLimits(1)(b.Claims)
	op.Resign(b)
	push(b)
	require.Eventually(t, func() bool {
		info, err = jsB.AccountInfo(attempt(t))
		return err == nil
	}, wait, 50*time.Millisecond, "JetStream for B after its JWT changed")
	require.Equal(t, 1, info.Limits.MaxStreams)
	createStream(t, jsB, jetstream.StreamConfig{Name: "ONE", Subjects: []string{"one"}})
	_, err = jsB.CreateStream(ctx(t), jetstream.StreamConfig{Name: "TWO", Subjects: []string{"two"}})
	var apiErr *jetstream.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, jetstream.ErrorCode(10027), apiErr.ErrorCode, "B's JWT allows one stream")
	names := streamNames(t, jsA)
	require.Equal(t, []string{"ORDERS"}, names, "A does not see B's stream")

	// After a restart streamsvc learns the accounts again and opens
	// their streams.
	ss.Stop()
	testkit.StartStreamsvc(t, router.Addr(), storeDir, "-c", ssFile)
	var st jetstream.Stream
	require.Eventually(t, func() bool {
		st, err = jsA.Stream(attempt(t), "ORDERS")
		return err == nil
	}, wait, 50*time.Millisecond)
	m, err := st.GetMsg(ctx(t), 1)
	require.NoError(t, err)
	require.Equal(t, "one", string(m.Data))
	require.Equal(t, []string{"ONE"}, streamNames(t, jsB))

	// A JWT without JetStream turns it off: the account is told so, and
	// its streams' files stay for when it comes back.
	b.Claims.IssuedAt = time.Now().Unix() + 2
	b.Claims.Limits.JetStreamLimits = jwt.JetStreamLimits{}
	op.Resign(b)
	push(b)
	require.Eventually(t, func() bool {
		_, err := jsB.AccountInfo(attempt(t))
		return errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount)
	}, wait, 50*time.Millisecond, "JetStream off for B after its JWT changed")
	entries, err := os.ReadDir(filepath.Join(storeDir, b.Pub, "streams"))
	require.NoError(t, err)
	require.Len(t, entries, 1, "B's stream is kept on disk")
	_, err = jsA.Stream(ctx(t), "ORDERS")
	require.NoError(t, err, "A keeps JetStream")
}

func streamNames(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	var out []string
	l := js.StreamNames(ctx(t))
	for n := range l.Name() {
		out = append(out, n)
	}
	require.NoError(t, l.Err())
	return out
}
