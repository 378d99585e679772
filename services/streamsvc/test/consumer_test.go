package test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// publishN stores n messages on subj (bodies "0".."n-1").
func publishN(t *testing.T, js jetstream.JetStream, subj string, n int) {
	t.Helper()
	for i := range n {
		_, err := js.Publish(ctx(t), subj, []byte(fmt.Sprint(i)))
		require.NoError(t, err)
	}
}

// A durable pull consumer through the other frontdoor: Fetch in batches,
// explicit acks, exact num_pending and ack floor; unacknowledged messages
// come back after ack_wait; NAK, TERM and max_deliver.
func TestJetStreamPullConsumer(t *testing.T) {
	s := startSuite(t)
	_, jsA := connect(t, s.fds[0])
	_, jsB := connect(t, s.fds[1])
	createStream(t, jsA, jetstream.StreamConfig{Name: "WORK", Subjects: []string{"work.*"}})
	publishN(t, jsA, "work.a", 10)
	publishN(t, jsA, "work.b", 5)

	cons, err := jsB.CreateOrUpdateConsumer(ctx(t), "WORK", jetstream.ConsumerConfig{
		Durable: "worker", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "work.a",
		AckWait: 500 * time.Millisecond, MaxDeliver: 3})
	require.NoError(t, err)
	info := cons.CachedInfo()
	require.Equal(t, uint64(10), info.NumPending, "only work.a counts")

	batch, err := cons.Fetch(4, jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	var got []jetstream.Msg
	for m := range batch.Messages() {
		got = append(got, m)
	}
	require.NoError(t, batch.Error())
	require.Len(t, got, 4)
	for i, m := range got {
		require.Equal(t, fmt.Sprint(i), string(m.Data()))
		meta, err := m.Metadata()
		require.NoError(t, err)
		require.Equal(t, uint64(i+1), meta.Sequence.Stream)
		require.Equal(t, uint64(i+1), meta.Sequence.Consumer)
		require.Equal(t, uint64(10-i-1), meta.NumPending)
		require.Equal(t, "WORK", meta.Stream)
		require.Equal(t, "worker", meta.Consumer)
	}
	require.NoError(t, got[0].DoubleAck(ctx(t)))
	require.NoError(t, got[1].Ack())
	require.NoError(t, got[2].Term())
	// got[3] is left unacknowledged.
	require.Eventually(t, func() bool {
		info, err = cons.Info(ctx(t))
		return err == nil && info.NumAckPending == 1
	}, wait, 20*time.Millisecond)
	require.Equal(t, uint64(3), info.AckFloor.Stream, "%+v", info)
	require.Equal(t, uint64(4), info.Delivered.Stream, "%+v", info)
	require.Equal(t, uint64(6), info.NumPending)

	// After ack_wait, message 4 comes first again, marked redelivered.
	time.Sleep(700 * time.Millisecond)
	m, err := cons.Next(jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	meta, _ := m.Metadata()
	require.Equal(t, uint64(4), meta.Sequence.Stream)
	require.Equal(t, uint64(2), meta.NumDelivered)
	require.NoError(t, m.Nak())
	m, err = cons.Next(jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	meta, _ = m.Metadata()
	require.Equal(t, uint64(4), meta.Sequence.Stream, "NAK: delivered again at once")
	require.Equal(t, uint64(3), meta.NumDelivered)
	require.NoError(t, m.Nak())
	// max_deliver 3: not again; the next is message 5.
	m, err = cons.Next(jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	meta, _ = m.Metadata()
	require.Equal(t, uint64(5), meta.Sequence.Stream)
	require.NoError(t, m.DoubleAck(ctx(t)))

	// no_wait with nothing left: an empty batch, at once.
	all, err := cons.FetchNoWait(100)
	require.NoError(t, err)
	n := 0
	for m := range all.Messages() {
		require.NoError(t, m.Ack())
		n++
	}
	require.Equal(t, 5, n)
	empty, err := cons.FetchNoWait(10)
	require.NoError(t, err)
	for range empty.Messages() {
		t.Fatal("nothing was left")
	}
	info, err = cons.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(0), info.NumPending)

	// The consumer survives a streamsvc restart with its position.
	publishN(t, jsA, "work.a", 2)
	s.streamsvc.Stop()
	s.startStreamsvc(t)
	var again jetstream.Consumer
	require.Eventually(t, func() bool {
		again, err = jsB.Consumer(attempt(t), "WORK", "worker")
		return err == nil
	}, wait, 50*time.Millisecond)
	m, err = again.Next(jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	meta, _ = m.Metadata()
	require.Equal(t, uint64(16), meta.Sequence.Stream, "resumes after the acknowledged messages")
}

// Consume (the continuous pull nats.go users write) and an ordered
// consumer, each receiving every message once, in order.
func TestJetStreamConsumeAndOrdered(t *testing.T) {
	s := startSuite(t)
	_, jsA := connect(t, s.fds[0])
	_, jsB := connect(t, s.fds[1])
	st := createStream(t, jsA, jetstream.StreamConfig{Name: "FEED", Subjects: []string{"feed.>"}})
	const n = 500
	publishN(t, jsA, "feed.x", n)

	cons, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	got := make(chan uint64, n)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		meta, _ := m.Metadata()
		got <- meta.Sequence.Stream
		m.Ack()
	}, jetstream.PullMaxMessages(64))
	require.NoError(t, err)
	defer cc.Stop()
	for i := range n {
		select {
		case seq := <-got:
			require.Equal(t, uint64(i+1), seq)
		case <-time.After(wait):
			t.Fatalf("consume stalled after %d messages", i)
		}
	}

	ordered, err := jsB.OrderedConsumer(ctx(t), "FEED", jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverLastPolicy})
	require.NoError(t, err)
	m, err := ordered.Next(jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	require.Equal(t, fmt.Sprint(n-1), string(m.Data()), "deliver last")
	publishN(t, jsA, "feed.y", 3)
	for i := range 3 {
		m, err := ordered.Next(jetstream.FetchMaxWait(wait))
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(i), string(m.Data()))
	}
}

// A push consumer as the older nats.go API drives it (js.Subscribe), with
// a queue group of two members: each message to exactly one.
func TestJetStreamPushConsumer(t *testing.T) {
	s := startSuite(t)
	_, jsA := connect(t, s.fds[0])
	createStream(t, jsA, jetstream.StreamConfig{Name: "PUSH", Subjects: []string{"push.>"}})
	nc, err := nats.Connect(s.fds[1].URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := nc.JetStream()
	require.NoError(t, err)
	got := make(chan string, 100)
	for range 2 {
		_, err := js.QueueSubscribe("push.>", "workers", func(m *nats.Msg) {
			got <- string(m.Data)
			m.Ack()
		}, nats.Durable("pushers"), nats.ManualAck(), nats.DeliverAll())
		require.NoError(t, err)
	}
	publishN(t, jsA, "push.one", 20)
	seen := map[string]bool{}
	for range 20 {
		select {
		case d := <-got:
			require.False(t, seen[d], "message %s delivered twice", d)
			seen[d] = true
		case <-time.After(wait):
			t.Fatalf("only %d of 20 messages arrived", len(seen))
		}
	}
	select {
	case d := <-got:
		t.Fatalf("an extra delivery: %s", d)
	case <-time.After(300 * time.Millisecond):
	}
}
