package test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Pacing push consumers as nats-server does: flow control (status 100
// FlowControl Request messages the client answers, delivery stalled past
// the window until it does) and rate_limit_bps.

// publishBulk stores n messages of size bytes on subj, asynchronously:
// each body starts with its index ("%08d"), padded with 'x'.
func publishBulk(t *testing.T, js jetstream.JetStream, subj string, n, size int) {
	t.Helper()
	pad := strings.Repeat("x", size-8)
	acks := make([]jetstream.PubAckFuture, 0, n)
	for i := range n {
		f, err := js.PublishAsync(subj, []byte(fmt.Sprintf("%08d", i)+pad), jetstream.WithStallWait(wait))
		require.NoError(t, err)
		acks = append(acks, f)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(wait):
		t.Fatalf("%d messages published, not all acknowledged", n)
	}
	for i, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatalf("message %d: %v", i, err)
		}
	}
}

// flowControlReply is nats-server's flow control request reply subject:
// $JS.FC.<stream>.<consumer>.<4 random characters>.
var flowControlReply = regexp.MustCompile(`^\$JS\.FC\.FC\.fc\.[0-9A-Za-z]{4}$`)

// A flow-controlled push consumer asks its client to confirm once more
// than 1 MiB (half its first window) is outstanding: a status 100
// FlowControl Request to the deliver subject with a reply subject. Left
// unanswered, it delivers until 2 MiB are outstanding and then stalls;
// its idle heartbeats name the request in Nats-Consumer-Stalled. An
// answer to another subject changes nothing; the answer resumes delivery.
// The byte counts are nats-server's: deliver subject, ack subject,
// headers and data of each message.
func TestJetStreamFlowControlRequests(t *testing.T) {
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "FC", Subjects: []string{"fc.>"}})
	const total, size, deliver = 3000, 1000, "deliver.fc"
	publishBulk(t, js, "fc.a", total, size)
	sub, err := nc.SubscribeSync(deliver)
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	_, err = js.CreateOrUpdatePushConsumer(ctx(t), "FC", jetstream.ConsumerConfig{Durable: "fc", DeliverSubject: deliver,
		AckPolicy: jetstream.AckNonePolicy, FlowControl: true, IdleHeartbeat: 200 * time.Millisecond})
	require.NoError(t, err)

	delivered, outstanding := 0, 0 // messages, and their bytes as the server counts them
	var request *nats.Msg          // the flow control request
	atRequest := 0                 // the bytes outstanding when it came
	var stalled *nats.Msg          // the last heartbeat naming it
	// read takes messages until none but heartbeats came for quiet.
	read := func(quiet time.Duration) {
		t.Helper()
		last := time.Now()
		for time.Since(last) < quiet {
			m, err := sub.NextMsg(quiet)
			if err != nil {
				break
			}
			switch {
			case m.Header.Get("Status") == "":
				require.Equal(t, fmt.Sprintf("%08d", delivered), string(m.Data[:8]), "out of order")
				delivered++
				outstanding += len(deliver) + len(m.Reply) + len(m.Data)
				last = time.Now()
			case m.Header.Get("Description") == "FlowControl Request":
				require.Nil(t, request, "a second flow control request while the first is unanswered")
				request, atRequest = m, outstanding
			default:
				require.Equal(t, "Idle Heartbeat", m.Header.Get("Description"))
				if m.Header.Get("Nats-Consumer-Stalled") != "" {
					stalled = m
				}
			}
		}
	}
	read(time.Second)

	require.NotNil(t, request, "no flow control request after %d messages (%d bytes)", delivered, outstanding)
	assert.Equal(t, deliver, request.Subject)
	assert.Regexp(t, flowControlReply, request.Reply)
	assert.Empty(t, request.Data)
	assert.Equal(t, "100", request.Header.Get("Status"))
	lastSize := outstanding / delivered // every message has the same size
	assert.Greater(t, atRequest, 1<<20, "asked before 1 MiB was outstanding")
	assert.LessOrEqual(t, atRequest-lastSize, 1<<20, "asked late: %d bytes outstanding", atRequest)

	require.Less(t, delivered, total, "delivery did not stall")
	assert.Greater(t, outstanding, 2<<20)
	assert.LessOrEqual(t, outstanding-lastSize, 2<<20, "stalled late: %d bytes outstanding", outstanding)
	require.NotNil(t, stalled, "no heartbeat while stalled")
	assert.Equal(t, request.Reply, stalled.Header.Get("Nats-Consumer-Stalled"))
	assert.Equal(t, strconv.Itoa(delivered), stalled.Header.Get("Nats-Last-Consumer"))
	assert.Equal(t, strconv.Itoa(delivered), stalled.Header.Get("Nats-Last-Stream"))

	// Answering some other request subject does not resume delivery.
	stalledAt := delivered
	require.NoError(t, nc.Publish("$JS.FC.FC.fc.other", nil))
	read(600 * time.Millisecond)
	require.Equal(t, stalledAt, delivered, "delivery resumed without the answer")

	// The answer does: everything else arrives.
	require.NoError(t, nc.Publish(request.Reply, nil))
	request = nil
	read(time.Second)
	require.Equal(t, total, delivered)
	tg.alive(t)
}

// flowControlAnswers counts what clients send to flow control reply
// subjects (seen by a subscriber of its own on $JS.FC.>).
func flowControlAnswers(t *testing.T, nc *nats.Conn) func() int {
	t.Helper()
	sub, err := nc.SubscribeSync("$JS.FC.>")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	return func() int {
		n, _, err := sub.Pending()
		require.NoError(t, err)
		return n
	}
}

// The older nats.go API answers flow control: js.Subscribe with
// nats.EnableFlowControl (and the heartbeats it needs) gets every message
// of several windows' worth, in order.
func TestJetStreamFlowControlSubscribe(t *testing.T) {
	const total, size = 5000, 1000
	js, answers := oldAPIFlowControl(t, "FCSUB", total, size)
	got := make(chan *nats.Msg, total)
	sub, err := js.Subscribe("fcsub.>", func(m *nats.Msg) { got <- m },
		nats.Durable("fcsub"), nats.AckNone(), nats.IdleHeartbeat(time.Second), nats.EnableFlowControl())
	require.NoError(t, err)
	defer sub.Unsubscribe()
	for i := range total {
		select {
		case m := <-got:
			require.Equal(t, fmt.Sprintf("%08d", i), string(m.Data[:8]))
		case <-time.After(wait):
			t.Fatalf("%d of %d messages arrived", i, total)
		}
	}
	ci, err := sub.ConsumerInfo()
	require.NoError(t, err)
	assert.True(t, ci.Config.FlowControl)
	assert.Equal(t, uint64(total), ci.Delivered.Stream)
	assert.Positive(t, answers(), "the client answered no flow control request")
}

// oldAPIFlowControl fills stream name (subjects <name in lower case>.>)
// with total messages of size bytes through one entry point and returns
// the older nats.go API on the other, with a count of the flow control
// answers seen.
func oldAPIFlowControl(t *testing.T, name string, total, size int) (nats.JetStreamContext, func() int) {
	t.Helper()
	tg := startTarget(t)
	ncA, jsA := tg.connect(t, 0)
	prefix := strings.ToLower(name)
	createStream(t, jsA, jetstream.StreamConfig{Name: name, Subjects: []string{prefix + ".>"}})
	publishBulk(t, jsA, prefix+".a", total, size)
	answers := flowControlAnswers(t, ncA)
	nc, _ := tg.connect(t, 1)
	js, err := nc.JetStream()
	require.NoError(t, err)
	return js, answers
}

// The older API's ordered consumer (flow control and heartbeats) gets
// every message of a large stream once, in order.
func TestJetStreamFlowControlOrdered(t *testing.T) {
	const total, size = 20000, 256
	js, answers := oldAPIFlowControl(t, "FCORD", total, size)
	var mu sync.Mutex
	next, bad := 0, ""
	done := make(chan struct{})
	sub, err := js.Subscribe("fcord.>", func(m *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if want := fmt.Sprintf("%08d", next); bad == "" && string(m.Data[:8]) != want {
			bad = fmt.Sprintf("got %q, want %s", m.Data[:8], want)
		}
		next++
		if next == total {
			close(done)
		}
	}, nats.OrderedConsumer())
	require.NoError(t, err)
	defer sub.Unsubscribe()
	select {
	case <-done:
	case <-time.After(wait):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%d of %d messages arrived", next, total)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, bad)
	ci, err := sub.ConsumerInfo()
	require.NoError(t, err)
	assert.True(t, ci.Config.FlowControl)
	assert.Positive(t, answers(), "the client answered no flow control request")
}

// What nats-server refuses: flow control without heartbeats, flow
// control, heartbeats or a rate limit on a pull consumer, and updating a
// push consumer's heartbeats or flow control. A rate limit can change.
func TestJetStreamFlowControlConfig(t *testing.T) {
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "FCCFG", Subjects: []string{"fccfg.>"}})
	create := func(name, cfg string) map[string]any {
		return apiRequest(t, nc, "$JS.API.CONSUMER.CREATE.FCCFG."+name,
			fmt.Sprintf(`{"stream_name":"FCCFG","config":{"durable_name":%q,%s}}`, name, cfg))
	}
	hb := `"idle_heartbeat":1000000000`
	assertAPIError(t, create("a", `"deliver_subject":"d.a","flow_control":true`), 400, 10108, "consumer with flow control also needs heartbeats")
	assertAPIError(t, create("b", `"flow_control":true`), 400, 10089, "consumer flow control requires a push based consumer")
	assertAPIError(t, create("b", `"flow_control":true,`+hb), 400, 10088, "consumer idle heartbeat requires a push based consumer")
	assertAPIError(t, create("b", hb), 400, 10088, "consumer idle heartbeat requires a push based consumer")
	assertAPIError(t, create("b", `"rate_limit_bps":1000,"flow_control":true,`+hb), 400, 10086, "consumer in pull mode can not have rate limit set")
	assertAPIError(t, create("b", `"rate_limit_bps":1000`), 400, 10086, "consumer in pull mode can not have rate limit set")

	r := create("c", `"deliver_subject":"d.c","ack_policy":"none","rate_limit_bps":1000`)
	require.Nil(t, apiError(r))
	r = create("c", `"deliver_subject":"d.c","ack_policy":"none","rate_limit_bps":2000`)
	require.Nil(t, apiError(r))
	assert.Equal(t, float64(2000), r["config"].(map[string]any)["rate_limit_bps"])
	assertAPIError(t, create("c", `"deliver_subject":"d.c","ack_policy":"none","rate_limit_bps":2000,`+hb),
		500, 10012, "heart beats can not be updated")

	r = create("d", `"deliver_subject":"d.d","ack_policy":"none",`+hb)
	require.Nil(t, apiError(r))
	assertAPIError(t, create("d", `"deliver_subject":"d.d","ack_policy":"none","flow_control":true,`+hb),
		500, 10012, "flow control can not be updated")
	r = create("e", `"deliver_subject":"d.e","ack_policy":"none","flow_control":true,`+hb)
	require.Nil(t, apiError(r))
	assert.Equal(t, true, r["config"].(map[string]any)["flow_control"])
	assertAPIError(t, create("e", `"deliver_subject":"d.e","ack_policy":"none",`+hb),
		500, 10012, "flow control can not be updated")
}

// rate_limit_bps is bits per second of delivered messages (subject, ack
// subject, headers and data), with a burst of the stream's max_msg_size:
// at 80000 bits per second, about 27 KB take more than 2.5 s to arrive,
// in order.
func TestJetStreamRateLimit(t *testing.T) {
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "RL", Subjects: []string{"rl.>"}, MaxMsgSize: 1024})
	const total, size = 60, 400
	publishBulk(t, js, "rl.a", total, size)
	sub, err := nc.SubscribeSync("deliver.rl")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	start := time.Now()
	_, err = js.CreateOrUpdatePushConsumer(ctx(t), "RL", jetstream.ConsumerConfig{Durable: "rl",
		DeliverSubject: "deliver.rl", AckPolicy: jetstream.AckNonePolicy, RateLimit: 80000})
	require.NoError(t, err)
	bytes := 0
	for i := range total {
		m, err := sub.NextMsg(wait)
		require.NoError(t, err, "%d of %d messages arrived", i, total)
		require.Equal(t, fmt.Sprintf("%08d", i), string(m.Data[:8]))
		bytes += len(m.Subject) + len(m.Reply) + len(m.Data)
	}
	elapsed := time.Since(start)
	// 10000 bytes a second after the first 1024: generously below that.
	floor := time.Duration(float64(bytes-1024) / 10000 * 0.8 * float64(time.Second))
	assert.GreaterOrEqual(t, elapsed, floor, "%d bytes in %v", bytes, elapsed)
	t.Logf("%d bytes in %v", bytes, elapsed)
	tg.alive(t)
}
