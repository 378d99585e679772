// Integration tests: streamsvc, a router and two frontdoors as real
// processes, driven with nats.go's jetstream package.
package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

const wait = 10 * time.Second

// suite is a router, two frontdoors and streamsvc.
type suite struct {
	router    *testkit.Process
	fds       []*testkit.Process
	streamsvc *testkit.Process
	storeDir  string
}

func startSuite(t *testing.T) *suite {
	t.Helper()
	s := &suite{router: testkit.StartRouter(t, 0), storeDir: filepath.Join(t.TempDir(), "js")}
	for range 2 {
		s.fds = append(s.fds, testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: fmt.Sprintf("routers: [%q]\n", s.router.Addr())}))
	}
	s.startStreamsvc(t)
	return s
}

func (s *suite) startStreamsvc(t *testing.T) {
	s.streamsvc = testkit.StartStreamsvc(t, s.router.Addr(), s.storeDir)
}

func connect(t *testing.T, p *testkit.Process) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(p.URL(), nats.Timeout(wait))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return nc, js
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return c
}

// attempt is the context of one try inside a retry loop: a request lost
// with a node that just died must not use up the whole wait.
func attempt(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Second)
	t.Cleanup(cancel)
	return c
}

// retryCreate calls create until it succeeds: streamsvc's API interest
// may not have reached the frontdoor yet (no responders), or a request
// was lost with a streamsvc that just died. The last error fails the
// test after the wait.
func retryCreate[T any](t *testing.T, create func(context.Context) (T, error)) T {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		v, err := create(attempt(t))
		if err == nil {
			return v
		}
		if time.Now().After(deadline) {
			require.NoError(t, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func createStream(t *testing.T, js jetstream.JetStream, cfg jetstream.StreamConfig) jetstream.Stream {
	t.Helper()
	return retryCreate(t, func(c context.Context) (jetstream.Stream, error) { return js.CreateStream(c, cfg) })
}

// waitForStream publishes to subj until a stream stores it: the stream's
// interest has reached this client's frontdoor.
func waitForStream(t *testing.T, js jetstream.JetStream, subj string) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := js.Publish(attempt(t), subj, []byte("probe"))
		return err == nil
	}, wait, 20*time.Millisecond, "no stream took %s", subj)
}

// A stream created through one frontdoor stores what is published
// through the other, acknowledges each message after storing it, and
// answers info, get and names; the messages survive a streamsvc restart.
func TestJetStreamPublishAcrossFrontdoors(t *testing.T) {
	s := startSuite(t)
	_, jsA := connect(t, s.fds[0])
	_, jsB := connect(t, s.fds[1])
	st := createStream(t, jsA, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.Equal(t, jetstream.FileStorage, st.CachedInfo().Config.Storage)
	require.Equal(t, []string{"orders.>"}, st.CachedInfo().Config.Subjects)

	// The stream's interest reaches frontdoor B through the router a moment
	// after the create returns (nats.go would retry a publish that got
	// no-responders, out of order): wait for it with one message.
	waitForStream(t, jsB, "orders.probe")
	const n = 1000
	var futures []jetstream.PubAckFuture
	for i := range n {
		f, err := jsB.PublishAsync(fmt.Sprintf("orders.%d", i%10), []byte(fmt.Sprintf("order %d", i)))
		require.NoError(t, err)
		futures = append(futures, f)
	}
	select {
	case <-jsB.PublishAsyncComplete():
	case <-time.After(wait):
		t.Fatal("PubAcks did not all arrive")
	}
	var seqs []uint64
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			require.Equal(t, "ORDERS", ack.Stream)
			seqs = append(seqs, ack.Sequence)
		case err := <-f.Err():
			t.Fatalf("message %d: %v", i, err)
		}
	}
	for i, seq := range seqs {
		require.Equal(t, uint64(i+2), seq, "sequences follow the publishing order: %v", seqs[max(0, i-5):min(len(seqs), i+5)])
	}
	info, err := st.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(n+1), info.State.Msgs)
	require.Equal(t, uint64(1), info.State.FirstSeq)
	require.Equal(t, uint64(n+1), info.State.LastSeq)

	m, err := st.GetMsg(ctx(t), 43)
	require.NoError(t, err)
	require.Equal(t, "orders.1", m.Subject)
	require.Equal(t, "order 41", string(m.Data))
	last, err := st.GetLastMsgForSubject(ctx(t), "orders.3")
	require.NoError(t, err)
	require.Equal(t, uint64(995), last.Sequence)
	_, err = st.GetMsg(ctx(t), n+2)
	require.ErrorIs(t, err, jetstream.ErrMsgNotFound)

	names := jsB.StreamNames(ctx(t))
	var all []string
	for name := range names.Name() {
		all = append(all, name)
	}
	require.Equal(t, []string{"ORDERS"}, all)

	// Stopped and started again: every acknowledged message is there.
	s.streamsvc.Stop()
	s.startStreamsvc(t)
	var again jetstream.Stream
	require.Eventually(t, func() bool {
		again, err = jsA.Stream(attempt(t), "ORDERS")
		return err == nil
	}, wait, 50*time.Millisecond)
	info, err = again.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(n+1), info.State.Msgs)
	m, err = again.GetMsg(ctx(t), n+1)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("order %d", n-1), string(m.Data))
	ack, err := jsA.Publish(ctx(t), "orders.new", []byte("after restart"))
	require.NoError(t, err)
	require.Equal(t, uint64(n+2), ack.Sequence)
}

// kill -9 while publishing with acks: after the restart every
// acknowledged message is there exactly once, in order.
func TestJetStreamCrashKeepsAcknowledged(t *testing.T) {
	s := startSuite(t)
	_, js := connect(t, s.fds[0])
	st := createStream(t, js, jetstream.StreamConfig{Name: "CRASH", Subjects: []string{"crash"}})
	acked := map[uint64]string{}
	for round := range 3 {
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf("r%d-%d", round, i)
				c, cancel := context.WithTimeout(context.Background(), time.Second)
				ack, err := js.Publish(c, "crash", []byte(body))
				cancel()
				if err == nil {
					acked[ack.Sequence] = body
				}
			}
		}()
		time.Sleep(300 * time.Millisecond)
		require.NoError(t, s.streamsvc.Signal(syscall.SIGKILL))
		s.streamsvc.Wait(wait)
		close(stop)
		<-done
		s.startStreamsvc(t)
		require.Eventually(t, func() bool { _, err := js.Stream(attempt(t), "CRASH"); return err == nil }, wait, 50*time.Millisecond)
	}
	require.NotEmpty(t, acked)
	info, err := st.Info(ctx(t))
	require.NoError(t, err)
	for seq, body := range acked {
		m, err := st.GetMsg(ctx(t), seq)
		require.NoError(t, err, "acknowledged message %d", seq)
		require.Equal(t, body, string(m.Data), "message %d", seq)
	}
	require.GreaterOrEqual(t, info.State.Msgs, uint64(len(acked)))
	t.Logf("%d acknowledged messages over 3 kill -9 rounds, %d stored", len(acked), info.State.Msgs)
}

// Limits, duplicates and the expected-* headers, with nats-server's
// errors.
func TestJetStreamStreamRules(t *testing.T) {
	s := startSuite(t)
	nc, js := connect(t, s.fds[0])
	st := createStream(t, js, jetstream.StreamConfig{Name: "RULES", Subjects: []string{"rules.*"}, MaxMsgs: 3, MaxMsgSize: 64})
	for i := range 5 {
		_, err := js.Publish(ctx(t), "rules.a", []byte(fmt.Sprint(i)))
		require.NoError(t, err)
	}
	info, err := st.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(3), info.State.Msgs, "max_msgs discards the oldest")
	require.Equal(t, uint64(3), info.State.FirstSeq)

	_, err = js.Publish(ctx(t), "rules.a", make([]byte, 100))
	var apiErr *jetstream.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, jetstream.ErrorCode(10054), apiErr.ErrorCode, "message size exceeds maximum allowed")

	ack, err := js.Publish(ctx(t), "rules.b", []byte("once"), jetstream.WithMsgID("id-1"))
	require.NoError(t, err)
	dup, err := js.Publish(ctx(t), "rules.b", []byte("once"), jetstream.WithMsgID("id-1"))
	require.NoError(t, err)
	require.True(t, dup.Duplicate)
	require.Equal(t, ack.Sequence, dup.Sequence)

	_, err = js.Publish(ctx(t), "rules.b", nil, jetstream.WithExpectLastSequence(1))
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, jetstream.ErrorCode(10071), apiErr.ErrorCode)
	require.Contains(t, apiErr.Description, fmt.Sprintf("wrong last sequence: %d", ack.Sequence))
	_, err = js.Publish(ctx(t), "rules.b", nil, jetstream.WithExpectStream("OTHER"))
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, jetstream.ErrorCode(10060), apiErr.ErrorCode)
	_, err = js.Publish(ctx(t), "rules.b", nil, jetstream.WithExpectLastMsgID("id-1"))
	require.NoError(t, err)

	// Bad requests get nats-server's errors.
	_, err = js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "OVERLAP", Subjects: []string{"rules.x"}})
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, jetstream.ErrorCode(10065), apiErr.ErrorCode, "subjects overlap with an existing stream")
	_, err = js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3"}, Replicas: 3})
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, jetstream.ErrorCode(10074), apiErr.ErrorCode, "replicas > 1 not supported in non-clustered mode")
	_, err = js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "RULES", Subjects: []string{"other"}})
	require.ErrorIs(t, err, jetstream.ErrStreamNameAlreadyInUse)
	_, err = js.Stream(ctx(t), "MISSING")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
	m, err := nc.Request("$JS.API.STREAM.CREATE.BAD", []byte("{not json"), wait)
	require.NoError(t, err)
	require.Contains(t, string(m.Data), `"err_code":10025`)
	m, err = nc.Request("$JS.API.STREAM.CREATE.ONE", []byte(`{"name":"TWO"}`), wait)
	require.NoError(t, err)
	require.Contains(t, string(m.Data), `"err_code":10056`)

	// Purge by subject, then delete the stream.
	require.NoError(t, st.Purge(ctx(t), jetstream.WithPurgeSubject("rules.a")))
	info, err = st.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(2), info.State.Msgs, "the two rules.b messages stay")
	require.NoError(t, js.DeleteStream(ctx(t), "RULES"))
	_, err = js.Stream(ctx(t), "RULES")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
	_, err = os.Stat(filepath.Join(s.storeDir, "$G", "streams", "RULES"))
	require.True(t, os.IsNotExist(err), "a deleted stream's files are gone")
}

// Accounts with JetStream each see only their own streams: the same name
// and subjects in two accounts are two streams; an account without
// JetStream is told so (10039), as by nats-server.
func TestJetStreamAccountIsolation(t *testing.T) {
	conf := `
accounts {
	A: { users: [ { user: a, password: a } ], jetstream: enabled }
	B: { users: [ { user: b, password: b } ], jetstream: enabled }
	C: { users: [ { user: c, password: c } ] }
}
jetstream { }
`
	dir := t.TempDir()
	file := filepath.Join(dir, "suite.conf")
	require.NoError(t, os.WriteFile(file, []byte(conf), 0o600))
	router := testkit.StartRouter(t, 0)
	auth := testkit.StartAuthsvc(t, file)
	fd := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: conf + fmt.Sprintf("routers: [%q]\nauthsvc: %q\n", router.Addr(), auth.Addr())})
	testkit.StartStreamsvc(t, router.Addr(), filepath.Join(dir, "js"), "-c", file)
	js := func(user string) jetstream.JetStream {
		nc, err := nats.Connect(fd.URL(), nats.UserInfo(user, user))
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		j, err := jetstream.New(nc)
		require.NoError(t, err)
		return j
	}
	jsA, jsB, jsC := js("a"), js("b"), js("c")
	createStream(t, jsA, jetstream.StreamConfig{Name: "S", Subjects: []string{"x.>"}})
	_, err := jsB.Stream(ctx(t), "S")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound, "B does not see A's stream")
	sb := createStream(t, jsB, jetstream.StreamConfig{Name: "S", Subjects: []string{"x.>"}})
	_, err = jsA.Publish(ctx(t), "x.1", []byte("from A"))
	require.NoError(t, err)
	info, err := sb.Info(ctx(t))
	require.NoError(t, err)
	require.Zero(t, info.State.Msgs, "A's message is not in B's stream")
	sa, err := jsA.Stream(ctx(t), "S")
	require.NoError(t, err)
	m, err := sa.GetMsg(ctx(t), 1)
	require.NoError(t, err)
	require.Equal(t, "from A", string(m.Data))
	require.NoError(t, jsB.DeleteStream(ctx(t), "S"))
	_, err = jsA.Stream(ctx(t), "S")
	require.NoError(t, err, "deleting B's stream left A's")

	_, err = jsC.AccountInfo(ctx(t))
	require.ErrorIs(t, err, jetstream.ErrJetStreamNotEnabledForAccount, "nats-server's answer in an account without JetStream (10039)")
	_, err = jsC.CreateStream(ctx(t), jetstream.StreamConfig{Name: "S", Subjects: []string{"x.>"}})
	require.ErrorIs(t, err, jetstream.ErrJetStreamNotEnabledForAccount)
}

// A stream created through one frontdoor takes a publish through the
// other at once. streamsvc's new interest travels over the mesh ahead of
// its answer (an interest hint), not only through the router; as between
// the servers of a nats-server cluster, two connections are not strictly
// ordered, and nats.go's publish retry (after a no-responders) covers the
// rare miss, so the test uses the client as users do.
func TestJetStreamCreateThenPublishElsewhere(t *testing.T) {
	s := startSuite(t)
	_, jsA := connect(t, s.fds[0])
	_, jsB := connect(t, s.fds[1])
	createStream(t, jsA, jetstream.StreamConfig{Name: "FIRST", Subjects: []string{"first"}}) // streamsvc reachable
	for i := range 20 {
		name := fmt.Sprintf("S%d", i)
		_, err := jsA.CreateStream(ctx(t), jetstream.StreamConfig{Name: name, Subjects: []string{"at." + name}})
		require.NoError(t, err)
		ack, err := jsB.Publish(ctx(t), "at."+name, []byte("right away"))
		require.NoError(t, err, "publish to %s through the other frontdoor right after its creation", name)
		require.Equal(t, uint64(1), ack.Sequence)
	}
}

// A message delivered and not acknowledged before streamsvc restarts is
// due again its ack wait after it was delivered, as on nats-server: not at
// once when streamsvc is back, nor a whole ack wait after that.
func TestJetStreamPendingDueByDeliveryTimeAfterRestart(t *testing.T) {
	s := startSuite(t)
	_, js := connect(t, s.fds[0])
	createStream(t, js, jetstream.StreamConfig{Name: "DUE", Subjects: []string{"due"}})
	const ackWait = 6 * time.Second
	cons, err := js.CreateOrUpdateConsumer(ctx(t), "DUE", jetstream.ConsumerConfig{
		Durable: "d", AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait})
	require.NoError(t, err)
	_, err = js.Publish(ctx(t), "due", []byte("once"))
	require.NoError(t, err)
	first, err := cons.Next(jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	delivered := time.Now()

	time.Sleep(3 * time.Second) // the state is saved; half the ack wait gone
	s.streamsvc.Stop()
	s.startStreamsvc(t)
	var again jetstream.Consumer
	require.Eventually(t, func() bool {
		again, err = js.Consumer(attempt(t), "DUE", "d")
		return err == nil
	}, wait, 50*time.Millisecond)
	m, err := again.Next(jetstream.FetchMaxWait(10 * time.Second))
	require.NoError(t, err)
	since := time.Since(delivered)
	require.Equal(t, first.Data(), m.Data())
	require.Equal(t, uint64(2), metadata(t, m).NumDelivered)
	// Due at 6 s; a restarted wait would make it 9 s or more.
	require.Greater(t, since, ackWait-500*time.Millisecond, "redelivered before its ack wait")
	require.Less(t, since, ackWait+2500*time.Millisecond, "the ack wait started again at the restart")
	require.NoError(t, m.Ack())
}
