package test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

// exitCode waits up to d for p to exit and returns its exit code.
func exitCode(t *testing.T, p *testkit.Process, d time.Duration) int {
	t.Helper()
	if !p.Wait(d) {
		t.Fatalf("process still running %v after the signal", d)
	}
	return p.Cmd.ProcessState.ExitCode()
}

// recvBy waits for a value on ch until deadline.
func recvBy[T any](t *testing.T, ch <-chan T, deadline time.Time, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(time.Until(deadline)):
		var zero T
		t.Fatalf("%s: nothing by the deadline", what)
		return zero
	}
}

func TestLifecycleReconnectAfterRestart(t *testing.T) {
	port := testkit.FreePort(t)
	p1 := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Port: port})

	disconnected := make(chan struct{}, 10)
	reconnected := make(chan struct{}, 10)
	nc := connect(t, p1,
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { disconnected <- struct{}{} }),
		nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }),
	)
	s, err := nc.SubscribeSync("survive")
	require.NoError(t, err)
	require.NoError(t, nc.Publish("survive", []byte("before")))
	flush(t, nc)
	require.Equal(t, "before", string(nextMsgs(t, s, 1)[0].Data))

	p1.Stop() // SIGKILL: no goodbye to the clients
	recvBy(t, disconnected, time.Now().Add(waitLong), "disconnect callback")

	p2 := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Port: port})
	recvBy(t, reconnected, time.Now().Add(waitLong), "reconnect callback")

	// nats.go re-sent SUB on reconnect: the new server delivers to it,
	// whether the publisher is the same connection or a new one.
	require.NoError(t, nc.Publish("survive", []byte("after")))
	flush(t, nc)
	require.Equal(t, "after", string(nextMsgs(t, s, 1)[0].Data))

	other := connect(t, p2)
	require.NoError(t, other.Publish("survive", []byte("from new conn")))
	flush(t, other)
	require.Equal(t, "from new conn", string(nextMsgs(t, s, 1)[0].Data))
}

func TestLifecycleSIGTERM(t *testing.T) {
	p := start(t, "")
	closed := make(chan struct{}, 1)
	nc := connect(t, p, nats.NoReconnect(), nats.ClosedHandler(func(*nats.Conn) { closed <- struct{}{} }))
	_, err := nc.SubscribeSync("x")
	require.NoError(t, err)
	flush(t, nc)

	require.NoError(t, p.Signal(syscall.SIGTERM))
	require.Equal(t, 0, exitCode(t, p, 5*time.Second), "exit code after SIGTERM")
	recvBy(t, closed, time.Now().Add(5*time.Second), "client closed callback")
	require.True(t, nc.IsClosed())
}

func TestLifecycleSIGINT(t *testing.T) {
	p := start(t, "")
	nc := connect(t, p, nats.NoReconnect())
	require.NoError(t, p.Signal(os.Interrupt))
	require.Equal(t, 0, exitCode(t, p, 5*time.Second), "exit code after SIGINT")
	eventually(t, 5*time.Second, func() error {
		if !nc.IsClosed() {
			return errors.New("client still connected")
		}
		return nil
	})
}

func TestLifecycleLameDuck(t *testing.T) {
	const duration, grace = 3 * time.Second, 1 * time.Second
	p := start(t, fmt.Sprintf("lame_duck_duration: %q\nlame_duck_grace_period: %q\n", duration, grace))

	const n = 4
	ldm := make(chan time.Time, n)
	closed := make(chan time.Time, n)
	for range n {
		connect(t, p, nats.NoReconnect(),
			nats.LameDuckModeHandler(func(*nats.Conn) { ldm <- time.Now() }),
			nats.ClosedHandler(func(*nats.Conn) { closed <- time.Now() }),
		)
	}
	waitForConnections(t, p, n)

	t0 := time.Now()
	require.NoError(t, p.Signal(syscall.SIGUSR2))

	// Every client hears about lame duck mode at once.
	for i := range n {
		at := recvBy(t, ldm, t0.Add(waitLong), fmt.Sprintf("lame duck callback %d", i))
		require.Less(t, at.Sub(t0), grace, "lame duck INFO came late")
	}

	// New clients are turned away from now on.
	_, err := nats.Connect(p.URL(), nats.Timeout(time.Second), nats.NoReconnect())
	require.Error(t, err, "a new connection was accepted in lame duck mode")

	// Clients are closed after the grace period, all within the duration.
	for i := range n {
		at := recvBy(t, closed, t0.Add(duration+2*time.Second), fmt.Sprintf("client %d closed", i))
		require.GreaterOrEqual(t, at.Sub(t0), grace-200*time.Millisecond, "client %d closed during the grace period", i)
		require.Less(t, at.Sub(t0), duration+time.Second, "client %d closed after lame_duck_duration", i)
	}
	require.Equal(t, 0, exitCode(t, p, duration+2*time.Second), "exit code after lame duck")
}

func TestLifecycleLameDuckRefusesRawConnections(t *testing.T) {
	p := start(t, "lame_duck_duration: \"3s\"\nlame_duck_grace_period: \"1s\"\n")
	connect(t, p) // keeps the server in lame duck for the whole duration
	require.NoError(t, p.Signal(syscall.SIGUSR2))
	// Give the signal a moment to land, then no dial may get an INFO.
	eventually(t, 2*time.Second, func() error {
		c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
		if err != nil {
			return nil // refused: good
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 5)
		if n, _ := c.Read(buf); n > 0 && string(buf[:n]) == "INFO "[:n] {
			return fmt.Errorf("still greeting new connections with INFO")
		}
		return nil
	})
	select {
	case <-p.Done():
		t.Fatal("exited before lame_duck_duration although a client was still connected")
	default:
	}
}

func TestLifecycleReloadMaxPayload(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "max_payload: 1KB\n")
	p := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Args: []string{"-c", path}})

	before := connect(t, p)
	require.EqualValues(t, 1024, before.MaxPayload())

	writeConfig(t, dir, "max_payload: 2KB\n")
	require.NoError(t, p.Signal(syscall.SIGHUP))
	eventually(t, waitLong, func() error {
		nc, err := nats.Connect(p.URL(), nats.Timeout(2*time.Second))
		if err != nil {
			return err
		}
		defer nc.Close()
		if mp := nc.MaxPayload(); mp != 2048 {
			return fmt.Errorf("INFO max_payload %d after reload, want 2048", mp)
		}
		return nil
	})

	// The new limit is enforced, not just advertised: 2000 bytes (above
	// the old 1KB) now pass.
	nc := connect(t, p)
	s, err := nc.SubscribeSync("big")
	require.NoError(t, err)
	require.NoError(t, nc.Publish("big", payload(2000, 0)))
	flush(t, nc)
	require.Len(t, nextMsgs(t, s, 1)[0].Data, 2000)

	// /varz shows it too.
	require.Equal(t, 2048, getVarz(t, p).MaxPayload)
	require.False(t, before.IsClosed(), "reload closed an existing client")
}

func TestLifecycleReloadInvalidKeepsRunning(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "max_payload: 1KB\n")
	p := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Args: []string{"-c", path}})
	nc := connect(t, p, nats.NoReconnect())

	logBefore := len(p.Log())
	writeConfig(t, dir, "max_payload: \"lots\"\n")
	require.NoError(t, p.Signal(syscall.SIGHUP))
	eventually(t, waitLong, func() error {
		logged := p.Log()[logBefore:]
		if !strings.Contains(logged, "[ERR]") || !strings.Contains(logged, "max_payload") {
			return fmt.Errorf("no error naming max_payload logged after SIGHUP; log since: %q", logged)
		}
		return nil
	})

	select {
	case <-p.Done():
		t.Fatalf("exited on a bad reload:\n%s", p.Log())
	case <-time.After(quietTime):
	}
	require.False(t, nc.IsClosed())
	require.NoError(t, nc.FlushTimeout(waitLong))
	fresh := connect(t, p)
	require.EqualValues(t, 1024, fresh.MaxPayload(), "the old configuration stays in force")

	// A good file after a bad one is applied.
	writeConfig(t, dir, "max_payload: 4KB\n")
	require.NoError(t, p.Signal(syscall.SIGHUP))
	eventually(t, waitLong, func() error {
		if mp := getVarz(t, p).MaxPayload; mp != 4096 {
			return fmt.Errorf("/varz max_payload %d, want 4096", mp)
		}
		return nil
	})
}

func TestLifecycleDrainConnection(t *testing.T) {
	p := start(t, "")
	pub := connect(t, p)

	closed := make(chan struct{})
	sub := connect(t, p, nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	const n = 1000
	var mu sync.Mutex
	var got []string
	for _, subj := range []string{"drain.a", "drain.b"} {
		s, err := sub.Subscribe(subj, func(m *nats.Msg) {
			time.Sleep(100 * time.Microsecond) // slower than the wire, so messages queue up
			mu.Lock()
			got = append(got, string(m.Data))
			mu.Unlock()
		})
		require.NoError(t, err)
		require.NoError(t, s.SetPendingLimits(-1, -1))
	}
	flush(t, sub)

	for i := range n {
		require.NoError(t, pub.Publish([]string{"drain.a", "drain.b"}[i%2], seqData(i)))
	}
	flush(t, pub)
	require.NoError(t, sub.Drain())
	recvBy(t, closed, time.Now().Add(waitLong), "drained connection closed")

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, n, "drain lost messages that were already published")
}

// firehoseSubscriber is a nats.go subscriber that reads as fast as it can
// and remembers whether its connection was ever dropped.
type firehoseSubscriber struct {
	nc          *nats.Conn
	mu          sync.Mutex
	received    int64
	bytes       int64
	disconnects []string
}

func newFirehoseSubscriber(t *testing.T, p *testkit.Process, subj string) *firehoseSubscriber {
	t.Helper()
	fs := &firehoseSubscriber{}
	fs.nc = connect(t, p, nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
		fs.mu.Lock()
		fs.disconnects = append(fs.disconnects, fmt.Sprint(err))
		fs.mu.Unlock()
	}))
	s, err := fs.nc.Subscribe(subj, func(m *nats.Msg) {
		fs.mu.Lock()
		fs.received++
		fs.bytes += int64(len(m.Data))
		fs.mu.Unlock()
	})
	require.NoError(t, err)
	require.NoError(t, s.SetPendingLimits(-1, -1))
	flush(t, fs.nc)
	return fs
}

// waitAll waits for n messages of size bytes, failing at once if the
// connection was dropped (whatever arrives after a reconnect is not "no
// loss").
func (fs *firehoseSubscriber) waitAll(t *testing.T, p *testkit.Process, n, size int) {
	t.Helper()
	cid := mustCID(t, fs.nc)
	eventually(t, waitLong, func() error {
		fs.mu.Lock()
		got, disc := fs.received, fs.disconnects
		fs.mu.Unlock()
		if len(disc) > 0 {
			ci, closed := findConn(getConnz(t, p, "?state=closed"), cid)
			t.Fatalf("healthy subscriber disconnected (%q) after %d of %d messages; server closed cid %d: %v, reason %q",
				disc, got, n, cid, closed, ci.Reason)
		}
		if got < int64(n) {
			return fmt.Errorf("healthy subscriber got %d of %d", got, n)
		}
		return nil
	})
	fs.mu.Lock()
	defer fs.mu.Unlock()
	require.EqualValues(t, n, fs.received)
	require.EqualValues(t, int64(n)*int64(size), fs.bytes)
}

// dialStuckSubscriber subscribes a raw connection to subj that then never
// reads again (with a small socket buffer, so it fills fast); it returns the
// connection's cid.
func dialStuckSubscriber(t *testing.T, p *testkit.Process, subj string) uint64 {
	t.Helper()
	stuck := testkit.DialRaw(t, p.Addr())
	cid := rawClientID(t, stuck)
	stuck.Conn.(*net.TCPConn).SetReadBuffer(16 << 10)
	stuck.Send("CONNECT {\"verbose\":false}\r\nSUB " + subj + " 1\r\nPING\r\n")
	stuck.Expect("PONG\r\n")
	return cid
}

// firehose publishes n messages of size bytes to subj through a new
// connection and waits until the server has read them all.
func firehose(t *testing.T, p *testkit.Process, subj string, size, n, seed int) {
	t.Helper()
	pub := connect(t, p)
	msg := payload(size, seed)
	for range n {
		require.NoError(t, pub.Publish(subj, msg))
	}
	flush(t, pub)
}

// closedConnection waits until cid is among /connz's closed connections.
func closedConnection(t *testing.T, p *testkit.Process, cid uint64) connInfo {
	t.Helper()
	var ci connInfo
	eventually(t, waitLong, func() error {
		var ok bool
		if ci, ok = findConn(getConnz(t, p, "?state=closed"), cid); !ok {
			return fmt.Errorf("connection cid %d not among closed connections", cid)
		}
		return nil
	})
	return ci
}

func TestLifecycleSlowConsumer(t *testing.T) {
	// write_deadline long, so the stuck subscriber is cut for pending bytes
	// even on a slow machine. max_pending leaves
	// the healthy subscriber 12 MB past the 4 MB high-water mark: a test
	// process descheduled for longer than stuckAfter (50 ms, common under
	// -race on two busy cores) looks stuck for a moment, and with 1 MB the
	// publisher filled the rest of its queue before it read again.
	p := start(t, "max_pending: 16MB\nwrite_deadline: \"10s\"\n")

	stuckID := dialStuckSubscriber(t, p, "firehose")
	healthy := newFirehoseSubscriber(t, p, "firehose")
	const size, n = 1024, 50 * 1024 // 50 MB
	firehose(t, p, "firehose", size, n, 7)
	healthy.waitAll(t, p, n, size)

	ci := closedConnection(t, p, stuckID)
	require.Equal(t, "Slow Consumer (Pending Bytes)", ci.Reason)
	require.NotNil(t, ci.Stop)
	eventually(t, waitLong, func() error {
		if _, open := findConn(getConnz(t, p, ""), stuckID); open {
			return fmt.Errorf("stuck subscriber (cid %d) still listed as open", stuckID)
		}
		return nil
	})
	// At least one: nats-server counts the same client again when its
	// last write then times out.
	require.GreaterOrEqual(t, getVarz(t, p).SlowConsumers, int64(1))
}

func TestLifecycleStaleConnection(t *testing.T) {
	p := start(t, "ping_interval: \"1s\"\nping_max: 2\n")
	rc := testkit.DialRaw(t, p.Addr())
	began := time.Now()
	rc.Send("CONNECT {\"verbose\":false}\r\n")

	got := rc.ExpectClosed(waitLong)
	elapsed := time.Since(began)
	// nats-server: PINGs at about 1 s and 2 s, -ERR at about 3 s.
	require.Equal(t, "PING\r\nPING\r\n-ERR 'Stale Connection'\r\n", got)
	require.Less(t, elapsed, 5*time.Second, "stale connection closed late")
	require.Greater(t, elapsed, 1500*time.Millisecond, "closed before ping_max PINGs could be answered")

	eventually(t, waitLong, func() error {
		if v := getVarz(t, p); v.StaleConnections != 1 {
			return fmt.Errorf("/varz stale_connections %d, want 1", v.StaleConnections)
		}
		return nil
	})
	ci, ok := findConn(getConnz(t, p, "?state=closed"), rawClientID(t, rc))
	require.True(t, ok)
	require.Equal(t, "Stale Connection", ci.Reason)
}

func TestLifecycleStaleConnectionAnsweringClientSurvives(t *testing.T) {
	// A client that answers PINGs is kept however long it is idle.
	p := start(t, "ping_interval: \"1s\"\nping_max: 2\n")
	nc := connect(t, p, nats.NoReconnect())
	time.Sleep(3500 * time.Millisecond) // past the 3 s a silent client lasts
	require.True(t, nc.IsConnected(), "an answering client was closed as stale")
	require.NoError(t, nc.FlushTimeout(waitLong))
}

func TestLifecycleSlowConsumerBurstDoesNotCutHealthySubscriber(t *testing.T) {
	// A subscriber that reads as fast as it can, but a little slower than
	// one publisher can send, must not be cut: nats-server stalls the
	// producer (2-5 ms at a time) once a subscriber's pending bytes pass
	// 75% of max_pending, instead of letting the queue overflow.
	// Pacing starts at the 4 MB high-water mark; the 32 MB max_pending
	// leaves room for a test process descheduled past stuckAfter (see
	// TestLifecycleSlowConsumer).
	p := start(t, "max_pending: 32MB\n")
	healthy := newFirehoseSubscriber(t, p, "burst")
	const size, n = 1024, 48 * 1024 // 48 MB
	firehose(t, p, "burst", size, n, 1)
	healthy.waitAll(t, p, n, size)
	require.Zero(t, getVarz(t, p).SlowConsumers)
}

func TestLifecycleSignalRightAfterReady(t *testing.T) {
	// Once the client port answers, signals must be handled: a supervisor
	// that reloads as soon as the server is up must not kill it (SIGHUP's
	// default action terminates the process). nats-server installs its
	// handlers before it listens. The readiness poll here is tight and the
	// signal follows the first INFO at once; ten tries, because the window
	// is short.
	bin := testkit.Binary(t, "frontdoor")
	for i := range 10 {
		port := testkit.FreePort(t)
		p := testkit.Start(t, bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port))
		p.Port = port
		deadline := time.Now().Add(waitLong)
		for {
			c, err := net.Dial("tcp", p.Addr())
			if err == nil {
				c.SetReadDeadline(time.Now().Add(time.Second))
				buf := make([]byte, 5)
				_, err = io.ReadFull(c, buf)
				c.Close()
				if err == nil && string(buf) == "INFO " {
					break
				}
			}
			require.True(t, time.Now().Before(deadline), "try %d: never ready:\n%s", i, p.Log())
			time.Sleep(200 * time.Microsecond)
		}
		require.NoError(t, p.Signal(syscall.SIGHUP))
		select {
		case <-p.Done():
			t.Fatalf("try %d: SIGHUP right after readiness ended the process (%v):\n%s", i, p.Cmd.ProcessState, p.Log())
		case <-time.After(100 * time.Millisecond):
		}
		nc := connect(t, p)
		require.NoError(t, nc.FlushTimeout(waitLong))
		nc.Close()
		p.Stop()
	}
}

// A subscriber whose socket stops taking bytes is cut when a write blocks
// past write_deadline, before its queue reaches max_pending, and the
// publisher and a healthy subscriber go on.
func TestLifecycleSlowConsumerWriteDeadline(t *testing.T) {
	p := start(t, "write_deadline: \"1s\"\n")

	stuckID := dialStuckSubscriber(t, p, "firehose")
	healthy := newFirehoseSubscriber(t, p, "firehose")
	const size, n = 1024, 16 * 1024 // 16 MB: far below the 64 MB max_pending
	firehose(t, p, "firehose", size, n, 3)
	healthy.waitAll(t, p, n, size)

	ci := closedConnection(t, p, stuckID)
	require.Equal(t, "Slow Consumer (Write Deadline)", ci.Reason)
}

// Connections that come and go leave nothing behind: no goroutines, no
// subscriptions, no open connections.
func TestLifecycleNoLeakAfterChurn(t *testing.T) {
	profPort := testkit.FreePort(t)
	p := start(t, fmt.Sprintf("prof_port: %d\n", profPort))
	goroutines := func() int {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/goroutine?debug=1", profPort))
		require.NoError(t, err)
		defer resp.Body.Close()
		var total int
		_, err = fmt.Fscanf(resp.Body, "goroutine profile: total %d", &total)
		require.NoError(t, err)
		return total
	}
	// Warm up the monitoring connections first: their keep-alive
	// goroutines are not the clients'.
	numSubs(t, p)
	getVarz(t, p)
	goroutines()
	before := goroutines()
	for round := 0; round < 3; round++ {
		var conns []*testkit.RawConn
		for i := 0; i < 200; i++ {
			rc := testkit.DialRaw(t, p.Addr())
			rc.Send(fmt.Sprintf("CONNECT {\"verbose\":false}\r\nSUB churn.%d 1\r\nSUB _INBOX.%d.* q 2\r\nPUB churn.%d 2\r\nhi\r\nPING\r\n", i, i, i))
			conns = append(conns, rc)
		}
		for _, rc := range conns {
			rc.Expect("MSG churn.")
			rc.ReadLine(5 * time.Second)
			rc.ReadLine(5 * time.Second)
			rc.Expect("PONG\r\n")
			rc.Conn.Close()
		}
	}
	eventually(t, waitLong, func() error {
		if n := numSubs(t, p); n != 0 {
			return fmt.Errorf("%d subscriptions left", n)
		}
		if v := getVarz(t, p); v.Connections != 0 {
			return fmt.Errorf("%d connections left", v.Connections)
		}
		if g := goroutines(); g > before {
			return fmt.Errorf("%d goroutines, %d before the churn", g, before)
		}
		return nil
	})
}
