package deploytest

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// maxDisconnected is the bound: no core subscriber stays
// disconnected longer during a rolling restart of the frontdoors.
const maxDisconnected = 2 * time.Second

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// coreWatch is one core subscriber's view of the restart.
type coreWatch struct {
	mu           sync.Mutex
	disconnected time.Time     // when the current disconnection began
	longestDown  time.Duration // longest disconnection
	reconnects   int
	lameDuck     int // lame-duck INFOs seen
	lastMsg      time.Time
	longestGap   time.Duration // longest silence between two messages
	msgs         int
}

func (w *coreWatch) options() []nats.Option {
	return []nats.Option{
		nats.DisconnectErrHandler(func(*nats.Conn, error) {
			w.mu.Lock()
			w.disconnected = time.Now()
			w.mu.Unlock()
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			w.mu.Lock()
			if !w.disconnected.IsZero() {
				w.longestDown = max(w.longestDown, time.Since(w.disconnected))
				w.disconnected = time.Time{}
			}
			w.reconnects++
			w.mu.Unlock()
		}),
		nats.LameDuckModeHandler(func(*nats.Conn) {
			w.mu.Lock()
			w.lameDuck++
			w.mu.Unlock()
		}),
	}
}

func (w *coreWatch) received() {
	now := time.Now()
	w.mu.Lock()
	if !w.lastMsg.IsZero() {
		w.longestGap = max(w.longestGap, now.Sub(w.lastMsg))
	}
	w.lastMsg = now
	w.msgs++
	w.mu.Unlock()
}

// rollingRestart restarts every frontdoor one at a time, the two fixed ones
// and each replica of the scaled one, with stop_signal SIGUSR2 (lame duck),
// while a JetStream publisher that retries and core subscribers on the
// fixed frontdoors run (they learn of the replicas and may move there). No
// acknowledged message may be missing from the stream, and no subscriber
// may stay disconnected for maxDisconnected. The figures go to the log
// (docs/benchmarks.md quotes them); throughput is not asserted.
func rollingRestart(t *testing.T, s *composeSuite) {
	// Clients start on either frontdoor and know both (and learn both
	// from connect_urls anyway). nats.go's defaults, but for reconnecting
	// forever.
	order := [][]string{{s.url(0), s.url(1)}, {s.url(1), s.url(0)}}
	const subscribers = 4
	watches := make([]*coreWatch, subscribers)
	for i := range watches {
		w := &coreWatch{}
		watches[i] = w
		opts := append(w.options(), nats.DontRandomize(), nats.MaxReconnects(-1), nats.Name(fmt.Sprintf("core-sub-%d", i)))
		nc, err := nats.Connect(strings.Join(order[i%2], ","), opts...)
		require.NoError(t, err)
		defer nc.Close()
		_, err = nc.Subscribe("roll.core", func(*nats.Msg) { w.received() })
		require.NoError(t, err)
		require.NoError(t, nc.Flush())
	}

	corePub, err := nats.Connect(s.url(0)+","+s.url(1), nats.MaxReconnects(-1), nats.Name("core-pub"))
	require.NoError(t, err)
	defer corePub.Close()
	jsConn, err := nats.Connect(s.url(1)+","+s.url(0), nats.DontRandomize(), nats.MaxReconnects(-1), nats.Name("js-pub"))
	require.NoError(t, err)
	defer jsConn.Close()
	js, err := jetstream.New(jsConn)
	require.NoError(t, err)
	_, err = js.CreateStream(testContext(t, 30*time.Second), jetstream.StreamConfig{
		Name: "ROLL", Subjects: []string{"roll.js"}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute})
	require.NoError(t, err)

	// Every subscriber hears the core publisher before the restart starts.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				corePub.Publish("roll.core", []byte(strconv.Itoa(n)))
			}
		}
	}()
	require.Eventually(t, func() bool {
		for _, w := range watches {
			w.mu.Lock()
			n := w.msgs
			w.mu.Unlock()
			if n == 0 {
				return false
			}
		}
		return true
	}, 15*time.Second, 50*time.Millisecond, "core subscribers hear nothing before the restart")

	// The JetStream publisher: one message at a time, each retried with
	// its Nats-Msg-Id until acknowledged (duplicates are dropped by the
	// stream's duplicate window).
	var acked, retries, duplicates int
	var jsErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; ; i++ {
			for attempt := 0; ; attempt++ {
				select {
				case <-stop:
					return
				default:
				}
				if attempt > 0 {
					retries++
					time.Sleep(50 * time.Millisecond)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				ack, err := js.Publish(ctx, "roll.js", []byte(strconv.Itoa(i)), jetstream.WithMsgID("roll-"+strconv.Itoa(i)))
				cancel()
				if err != nil {
					if attempt > 200 {
						jsErr = fmt.Errorf("message %d not acknowledged after %d attempts: %w", i, attempt, err)
						return
					}
					continue
				}
				if ack.Duplicate {
					duplicates++
				}
				acked = i
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	time.Sleep(time.Second)
	var perFrontdoor []time.Duration
	started := time.Now()
	// The fixed two by service name; a scaled replica by container (a
	// service restart would stop all its replicas at once). A replica may
	// come back on another port of the range and advertises that one.
	restarts := [][]string{{"frontdoor1"}, {"frontdoor2"}}
	for _, id := range s.replicas("frontdoor") {
		restarts = append(restarts, []string{"", id})
	}
	for _, r := range restarts {
		t0 := time.Now()
		// stop_signal SIGUSR2: lame duck (5 s), then the container starts
		// again; the next one waits until this one is healthy.
		var logs string
		if r[0] != "" {
			s.compose("restart", "-t", "15", r[0])
		} else {
			out, err := exec.Command("docker", "restart", "-t", "15", r[1]).CombinedOutput()
			require.NoError(t, err, "docker restart %s: %s", r[1], out)
		}
		s.waitHealthy(60 * time.Second)
		perFrontdoor = append(perFrontdoor, time.Since(t0))
		if r[0] != "" {
			logs = s.logs(r[0])
		} else {
			out, _ := exec.Command("docker", "logs", r[1]).CombinedOutput()
			logs = string(out)
		}
		require.Contains(t, logs, "Entering lame duck mode", "%v was not restarted through lame duck", r)
	}
	total := time.Since(started)
	time.Sleep(time.Second) // traffic after the last restart
	close(stop)
	wg.Wait()
	require.NoError(t, jsErr)

	// No acknowledged message is missing; each is stored once.
	ctx := testContext(t, 60*time.Second)
	stream, err := js.Stream(ctx, "ROLL")
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	seen := make(map[int]int, acked)
	for len(seen) < acked {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		got := 0
		for m := range batch.Messages() {
			n, err := strconv.Atoi(string(m.Data()))
			require.NoError(t, err)
			seen[n]++
			got++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			require.NoError(t, err)
		}
		if got == 0 {
			break
		}
	}
	var missing []int
	for i := 1; i <= acked; i++ {
		if seen[i] == 0 {
			missing = append(missing, i)
		}
	}
	stored := 0
	for _, c := range seen {
		stored += c
	}

	var longestDown, longestGap time.Duration
	reconnects, lameDucks := 0, 0
	for _, w := range watches {
		w.mu.Lock()
		longestDown = max(longestDown, w.longestDown)
		longestGap = max(longestGap, w.longestGap)
		reconnects += w.reconnects
		lameDucks += w.lameDuck
		w.mu.Unlock()
	}
	each := make([]string, len(perFrontdoor))
	for i, d := range perFrontdoor {
		each[i] = d.Round(100 * time.Millisecond).String()
	}
	t.Logf("rolling restart of %d frontdoors: %v in all (%s per frontdoor, lame_duck_duration 5s); "+
		"JetStream: %d acknowledged, %d retries, %d acknowledged as duplicates, %d stored (stream says %d), %d missing; "+
		"core: %d subscribers, %d reconnects, %d lame-duck INFOs, longest disconnection %v, longest silence between messages %v",
		len(perFrontdoor), total.Round(100*time.Millisecond), strings.Join(each, ", "),
		acked, retries, duplicates, stored, info.State.Msgs, len(missing),
		subscribers, reconnects, lameDucks, longestDown.Round(time.Millisecond), longestGap.Round(time.Millisecond))

	require.Positive(t, acked)
	require.Empty(t, missing, "acknowledged JetStream messages lost in the rolling restart")
	require.Equal(t, uint64(acked), info.State.Msgs, "the stream holds each acknowledged message once")
	require.GreaterOrEqual(t, reconnects, subscribers, "every subscriber moves at least once (each frontdoor restarted)")
	require.Less(t, longestDown, maxDisconnected, "a core subscriber stayed disconnected too long")

	// Each restarted replica advertises the port it has now (Docker may
	// have given it another one of the range).
	for i := 1; i < len(restarts)-1; i++ {
		u := fmt.Sprintf("nats://127.0.0.1:%d", s.hostPort("frontdoor", i, 4222))
		require.Eventually(t, func() bool { return slices.Contains(corePub.Servers(), u) },
			15*time.Second, 100*time.Millisecond, "replica %d (%s) is not advertised after its restart: %v", i, u, corePub.Servers())
	}
}
