package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// Ack policies, ack timing and pull request limits, as nats-server
// applies them.

// fetchAll sends one pull request for up to n messages and returns what
// it got; a batch error fails the test.
func fetchAll(t *testing.T, c jetstream.Consumer, n int, opts ...jetstream.FetchOpt) []jetstream.Msg {
	t.Helper()
	batch, err := c.Fetch(n, opts...)
	require.NoError(t, err)
	var got []jetstream.Msg
	for m := range batch.Messages() {
		got = append(got, m)
	}
	require.NoError(t, batch.Error())
	return got
}

func streamSeqs(t *testing.T, msgs []jetstream.Msg) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, m := range msgs {
		meta, err := m.Metadata()
		require.NoError(t, err)
		seqs = append(seqs, meta.Sequence.Stream)
	}
	return seqs
}

func metadata(t *testing.T, m jetstream.Msg) *jetstream.MsgMetadata {
	t.Helper()
	meta, err := m.Metadata()
	require.NoError(t, err)
	return meta
}

// AckAll: acknowledging message 5 acknowledges 1-5.
func TestJetStreamAckAll(t *testing.T) {
	tg := startTarget(t)
	_, jsA := tg.connect(t, 0)
	_, jsB := tg.connect(t, 1)
	createStream(t, jsA, jetstream.StreamConfig{Name: "ALL", Subjects: []string{"all.>"}})
	publishN(t, jsA, "all.x", 10)
	cons, err := jsB.CreateOrUpdateConsumer(ctx(t), "ALL", jetstream.ConsumerConfig{Durable: "all", AckPolicy: jetstream.AckAllPolicy})
	require.NoError(t, err)
	got := fetchAll(t, cons, 8, jetstream.FetchMaxWait(wait))
	require.Equal(t, []uint64{1, 2, 3, 4, 5, 6, 7, 8}, streamSeqs(t, got))
	info, err := cons.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, 8, info.NumAckPending)

	require.NoError(t, got[4].DoubleAck(ctx(t)))
	info, err = cons.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, 3, info.NumAckPending, "6-8 still pending: %+v", info)
	require.Equal(t, uint64(5), info.AckFloor.Stream)
	require.Equal(t, uint64(5), info.AckFloor.Consumer)
	require.Equal(t, uint64(8), info.Delivered.Stream)
	require.Equal(t, uint64(2), info.NumPending)

	// Acknowledging an older message again changes nothing; the last one
	// delivered takes the rest.
	require.NoError(t, got[1].DoubleAck(ctx(t)))
	require.NoError(t, got[7].DoubleAck(ctx(t)))
	info, err = cons.Info(ctx(t))
	require.NoError(t, err)
	require.Zero(t, info.NumAckPending)
	require.Equal(t, uint64(8), info.AckFloor.Stream)
	require.Equal(t, uint64(8), info.AckFloor.Consumer)
}

// +WPI restarts ack_wait: a message kept in progress past ack_wait is not
// delivered again; once progress reports stop it is.
func TestJetStreamAckInProgress(t *testing.T) {
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "WPI", Subjects: []string{"wpi"}})
	publishN(t, js, "wpi", 1)
	const ackWait = 1500 * time.Millisecond
	cons, err := js.CreateOrUpdateConsumer(ctx(t), "WPI", jetstream.ConsumerConfig{Durable: "slow",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait})
	require.NoError(t, err)
	m, err := cons.Next(jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	require.Equal(t, uint64(1), metadata(t, m).NumDelivered)

	// A pull request waits meanwhile: a redelivery would go to it.
	again := make(chan jetstream.Msg, 1)
	go func() {
		if m, err := cons.Next(jetstream.FetchMaxWait(2 * ackWait)); err == nil {
			again <- m
		}
		close(again)
	}()
	start := time.Now()
	watch := again
	for time.Since(start) < ackWait+time.Second {
		require.NoError(t, m.InProgress())
		select {
		case r := <-watch:
			if r != nil {
				t.Fatalf("redelivered after %v although in progress (delivery %d)", time.Since(start), metadata(t, r).NumDelivered)
			}
			watch = nil // the request ended empty
		case <-time.After(ackWait / 5):
		}
	}
	info, err := cons.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, 1, info.NumAckPending)
	require.Zero(t, info.NumRedelivered)

	// No more progress reports: delivered again after ack_wait (to the
	// request still waiting, or to a new one).
	r := <-again
	if r == nil {
		r, err = cons.Next(jetstream.FetchMaxWait(wait))
		require.NoError(t, err)
	}
	meta := metadata(t, r)
	require.Equal(t, uint64(1), meta.Sequence.Stream)
	require.Equal(t, uint64(2), meta.NumDelivered)
	require.NoError(t, r.DoubleAck(ctx(t)))
}

// NAK with a delay: the message comes back, but not before the delay;
// the next message is delivered meanwhile.
func TestJetStreamNakWithDelay(t *testing.T) {
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "NAK", Subjects: []string{"nak"}})
	publishN(t, js, "nak", 2)
	cons, err := js.CreateOrUpdateConsumer(ctx(t), "NAK", jetstream.ConsumerConfig{Durable: "later", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	m, err := cons.Next(jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	require.Equal(t, uint64(1), metadata(t, m).Sequence.Stream)
	const delay = time.Second
	naked := time.Now()
	require.NoError(t, m.NakWithDelay(delay))

	m, err = cons.Next(jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	require.Equal(t, uint64(2), metadata(t, m).Sequence.Stream, "the delayed message waits")
	require.NoError(t, m.Ack())

	m, err = cons.Next(jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(naked), delay, "redelivered before the NAK's delay")
	meta := metadata(t, m)
	require.Equal(t, uint64(1), meta.Sequence.Stream)
	require.Equal(t, uint64(2), meta.NumDelivered)
	require.NoError(t, m.DoubleAck(ctx(t)))
	info, err := cons.Info(ctx(t))
	require.NoError(t, err)
	require.Zero(t, info.NumAckPending)
	require.Equal(t, uint64(2), info.AckFloor.Stream)
}

// BackOff: the n-th redelivery waits backoff[n-1] (the last value for
// the rest), up to max_deliver deliveries.
func TestJetStreamBackOff(t *testing.T) {
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "BO", Subjects: []string{"bo"}})
	publishN(t, js, "bo", 1)
	backoff := []time.Duration{400 * time.Millisecond, 800 * time.Millisecond}
	cons, err := js.CreateOrUpdateConsumer(ctx(t), "BO", jetstream.ConsumerConfig{Durable: "bo",
		AckPolicy: jetstream.AckExplicitPolicy, BackOff: backoff, MaxDeliver: 4})
	require.NoError(t, err)
	require.Equal(t, backoff[0], cons.CachedInfo().Config.AckWait, "ack_wait defaults to the first backoff")

	var at []time.Time
	for i := range 4 {
		m, err := cons.Next(jetstream.FetchMaxWait(wait))
		require.NoError(t, err, "delivery %d", i+1)
		at = append(at, time.Now())
		meta := metadata(t, m)
		require.Equal(t, uint64(1), meta.Sequence.Stream)
		require.Equal(t, uint64(i+1), meta.NumDelivered)
	}
	// Spacing, measured at the client: the delivery before a gap may have
	// been late to arrive, which shortens the gap seen here a little.
	const slack = 150 * time.Millisecond
	for i, want := range []time.Duration{backoff[0], backoff[1], backoff[1]} {
		require.GreaterOrEqual(t, at[i+1].Sub(at[i]), want-slack, "gap %d of %v", i+1, at)
	}
	// max_deliver 4: not again.
	_, err = cons.Next(jetstream.FetchMaxWait(2 * backoff[1]))
	require.ErrorIs(t, err, nats.ErrTimeout)
	info, err := cons.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.Delivered.Stream)
	require.Equal(t, uint64(4), info.Delivered.Consumer)
}

// max_ack_pending 3: a pull asking for 5 gets 3 until some are acked.
func TestJetStreamMaxAckPending(t *testing.T) {
	tg := startTarget(t)
	_, jsA := tg.connect(t, 0)
	_, jsB := tg.connect(t, 1)
	createStream(t, jsA, jetstream.StreamConfig{Name: "MAP", Subjects: []string{"map"}})
	publishN(t, jsA, "map", 5)
	cons, err := jsB.CreateOrUpdateConsumer(ctx(t), "MAP", jetstream.ConsumerConfig{Durable: "three",
		AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 3})
	require.NoError(t, err)
	got := fetchAll(t, cons, 5, jetstream.FetchMaxWait(time.Second))
	require.Equal(t, []uint64{1, 2, 3}, streamSeqs(t, got))
	info, err := cons.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, 3, info.NumAckPending)
	require.Equal(t, uint64(2), info.NumPending)

	require.NoError(t, got[0].DoubleAck(ctx(t)))
	more := fetchAll(t, cons, 5, jetstream.FetchMaxWait(time.Second))
	require.Equal(t, []uint64{4}, streamSeqs(t, more), "one slot freed")
	for _, m := range append(got[1:], more...) {
		require.NoError(t, m.DoubleAck(ctx(t)))
	}
	rest := fetchAll(t, cons, 5, jetstream.FetchMaxWait(time.Second))
	require.Equal(t, []uint64{5}, streamSeqs(t, rest))
}

// max_bytes on a pull request: as many whole messages as fit; a first
// message bigger than max_bytes ends the request with 409 Message Size
// Exceeds MaxBytes.
func TestJetStreamPullMaxBytes(t *testing.T) {
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "MB", Subjects: []string{"mb"}})
	body := strings.Repeat("x", 1000)
	for range 5 {
		_, err := js.Publish(ctx(t), "mb", []byte(body))
		require.NoError(t, err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx(t), "MB", jetstream.ConsumerConfig{Durable: "mb", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)

	// About 1,100 bytes a message as counted: two fit in 2,500; the
	// third does not, which ends the request with a 409.
	got := pullRaw(t, nc, "$JS.API.CONSUMER.MSG.NEXT.MB.mb", `{"batch":10,"max_bytes":2500,"expires":5000000000}`)
	require.Len(t, got, 3)
	for _, m := range got[:2] {
		require.Equal(t, body, string(m.Data))
	}
	require.Equal(t, "409", got[2].Header.Get("Status"))
	require.Equal(t, "Message Size Exceeds MaxBytes", got[2].Header.Get("Description"))
	for _, m := range got[:2] {
		require.NoError(t, m.Respond(nil))
	}

	// Smaller than one message: the 409 alone, at once.
	got = pullRaw(t, nc, "$JS.API.CONSUMER.MSG.NEXT.MB.mb", `{"batch":10,"max_bytes":500,"expires":5000000000}`)
	require.Len(t, got, 1)
	require.Empty(t, got[0].Data)
	require.Equal(t, "409", got[0].Header.Get("Status"))
	require.Equal(t, "Message Size Exceeds MaxBytes", got[0].Header.Get("Description"))

	// nats.go's Fetch hides this 409: no messages, no error.
	empty := fetchAll(t, cons, 10, jetstream.FetchMaxBytes(500), jetstream.FetchMaxWait(2*time.Second))
	require.Empty(t, empty)
	// With both fitting, FetchMaxBytes gets the two.
	two := fetchAll(t, cons, 10, jetstream.FetchMaxBytes(2500), jetstream.FetchMaxWait(2*time.Second))
	require.Equal(t, []uint64{3, 4}, streamSeqs(t, two))
	require.NoError(t, two[0].Nak())
	require.NoError(t, two[1].DoubleAck(ctx(t)))

	// The older API reports it as an error.
	ojs, err := nc.JetStream()
	require.NoError(t, err)
	psub, err := ojs.PullSubscribe("mb", "mb", nats.Bind("MB", "mb"))
	require.NoError(t, err)
	_, err = psub.Fetch(1, nats.PullMaxBytes(500), nats.MaxWait(wait))
	require.EqualError(t, err, "nats: Message Size Exceeds MaxBytes")

	// Message 3 was not given out by the refused requests: the next pull
	// gets it as its second delivery (after the NAK).
	m3, err := cons.Next(jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	meta := metadata(t, m3)
	require.Equal(t, uint64(3), meta.Sequence.Stream)
	require.Equal(t, uint64(2), meta.NumDelivered)
}

// pullRaw sends a pull request and collects what answers it: messages
// up to and including the first status message (or until wait passes).
func pullRaw(t *testing.T, nc *nats.Conn, subj, body string) []*nats.Msg {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	require.NoError(t, err)
	defer sub.Unsubscribe()
	require.NoError(t, nc.PublishRequest(subj, inbox, []byte(body)))
	var got []*nats.Msg
	for {
		m, err := sub.NextMsg(wait)
		if err != nil {
			return got
		}
		got = append(got, m)
		if m.Header.Get("Status") != "" {
			return got
		}
	}
}

// headers_only: the headers and Nats-Msg-Size, no body.
func TestJetStreamHeadersOnly(t *testing.T) {
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "HO", Subjects: []string{"ho.*"}})
	msg := nats.NewMsg("ho.a")
	msg.Header.Set("X-Trace", "t-1")
	msg.Data = []byte("hello world")
	_, err := js.PublishMsg(ctx(t), msg)
	require.NoError(t, err)
	_, err = js.Publish(ctx(t), "ho.b", []byte("no headers here"))
	require.NoError(t, err)

	cons, err := js.CreateOrUpdateConsumer(ctx(t), "HO", jetstream.ConsumerConfig{Durable: "ho", HeadersOnly: true})
	require.NoError(t, err)
	got := fetchAll(t, cons, 2, jetstream.FetchMaxWait(wait))
	require.Len(t, got, 2)
	require.Empty(t, got[0].Data())
	require.Equal(t, "t-1", got[0].Headers().Get("X-Trace"))
	require.Equal(t, "11", got[0].Headers().Get("Nats-Msg-Size"))
	require.Empty(t, got[1].Data())
	require.Equal(t, "15", got[1].Headers().Get("Nats-Msg-Size"))
}

// filter_subjects with two filters: the messages of both, in stream
// order, and num_pending counting both.
func TestJetStreamFilterSubjects(t *testing.T) {
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "FS", Subjects: []string{"fs.>"}})
	for i, subj := range []string{"fs.a", "fs.b", "fs.c", "fs.a", "fs.c", "fs.b.x", "fs.b"} {
		_, err := js.Publish(ctx(t), subj, []byte(fmt.Sprint(i+1)))
		require.NoError(t, err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx(t), "FS", jetstream.ConsumerConfig{Durable: "ab",
		AckPolicy: jetstream.AckExplicitPolicy, FilterSubjects: []string{"fs.a", "fs.b"}})
	require.NoError(t, err)
	require.Equal(t, uint64(4), cons.CachedInfo().NumPending)
	got := fetchAll(t, cons, 10, jetstream.FetchMaxWait(time.Second))
	require.Equal(t, []uint64{1, 2, 4, 7}, streamSeqs(t, got))
	var bodies []string
	for _, m := range got {
		bodies = append(bodies, string(m.Data()))
		require.NoError(t, m.Ack())
	}
	require.Equal(t, []string{"1", "2", "4", "7"}, bodies)
	_, err = js.Publish(ctx(t), "fs.c", nil)
	require.NoError(t, err)
	_, err = js.Publish(ctx(t), "fs.b", nil)
	require.NoError(t, err)
	m, err := cons.Next(jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	require.Equal(t, uint64(9), metadata(t, m).Sequence.Stream)

	// Overlapping filters are refused.
	var apiErr *jetstream.APIError
	_, err = js.CreateOrUpdateConsumer(ctx(t), "FS", jetstream.ConsumerConfig{FilterSubjects: []string{"fs.a", "fs.*"}})
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, jetstream.ErrorCode(10138), apiErr.ErrorCode)
}

// A pull request whose client stopped listening (its inbox unsubscribed:
// a worker that quit, a Fetch given up) takes no more messages: they go to
// a live request at once, not after the ack wait, as on nats-server.
func TestJetStreamPullRequestWithoutInterestDropped(t *testing.T) {
	tg := startTarget(t)
	gone, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "GONE", Subjects: []string{"gone"}})
	cons, err := js.CreateOrUpdateConsumer(ctx(t), "GONE", jetstream.ConsumerConfig{
		Durable: "w", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute})
	require.NoError(t, err)

	// A worker asks for 10 with a long expiry, then goes away.
	inbox := gone.NewInbox()
	sub, err := gone.SubscribeSync(inbox)
	require.NoError(t, err)
	require.NoError(t, gone.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.GONE.w", inbox, []byte(`{"batch":10,"expires":60000000000}`)))
	require.NoError(t, gone.Flush())
	require.NoError(t, sub.Unsubscribe())
	require.NoError(t, gone.Flush())
	// Longer than the grace a fresh request gets while its interest is on
	// its way (pullInterestGrace).
	time.Sleep(1500 * time.Millisecond)

	_, err = js.Publish(ctx(t), "gone", []byte("work"))
	require.NoError(t, err)
	_, js2 := tg.connect(t, 1)
	cons2, err := js2.Consumer(ctx(t), "GONE", "w")
	require.NoError(t, err)
	m, err := cons2.Next(jetstream.FetchMaxWait(5 * time.Second))
	require.NoError(t, err, "the message went to the request nobody listens to")
	require.Equal(t, "work", string(m.Data()))
	require.Equal(t, uint64(1), metadata(t, m).NumDelivered)
	require.NoError(t, m.Ack())
	info, err := cons.Info(ctx(t))
	require.NoError(t, err)
	require.Zero(t, info.NumWaiting, "the abandoned request still waits")
}
