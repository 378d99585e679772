package test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Push consumers: idle heartbeats, the older nats.go API's subscriptions
// and ordered consumer, and the subject messages arrive on.

// nextData skips status messages until a message with data arrives.
func nextData(t *testing.T, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	for {
		m, err := sub.NextMsg(wait)
		require.NoError(t, err)
		if m.Header.Get("Status") == "" {
			return m
		}
	}
}

// A push consumer with idle_heartbeat sends, while it has nothing to
// deliver, status 100 Idle Heartbeat messages naming the last consumer
// and stream sequences it delivered.
func TestJetStreamPushIdleHeartbeat(t *testing.T) {
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "HB", Subjects: []string{"hb.>"}})
	publishN(t, js, "hb.x", 3)
	sub, err := nc.SubscribeSync("deliver.hb")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	_, err = js.CreateOrUpdatePushConsumer(ctx(t), "HB", jetstream.ConsumerConfig{Durable: "hb",
		DeliverSubject: "deliver.hb", AckPolicy: jetstream.AckNonePolicy, IdleHeartbeat: 200 * time.Millisecond})
	require.NoError(t, err)
	for i := range 3 {
		m, err := sub.NextMsg(wait)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(i), string(m.Data), "%s %v %q", m.Subject, m.Header, m.Reply)
		require.Empty(t, m.Header.Get("Status"))
	}
	hb, err := sub.NextMsg(wait)
	require.NoError(t, err)
	require.Equal(t, "deliver.hb", hb.Subject)
	require.Empty(t, hb.Reply)
	require.Empty(t, hb.Data)
	require.Equal(t, "100", hb.Header.Get("Status"))
	require.Equal(t, "Idle Heartbeat", hb.Header.Get("Description"))
	require.Equal(t, "3", hb.Header.Get("Nats-Last-Consumer"))
	require.Equal(t, "3", hb.Header.Get("Nats-Last-Stream"))

	// Another message from a second subject; the heartbeats follow it.
	_, err = js.Publish(ctx(t), "hb.y", []byte("later"))
	require.NoError(t, err)
	m := nextData(t, sub)
	require.Equal(t, "later", string(m.Data))
	hb, err = sub.NextMsg(wait)
	require.NoError(t, err)
	require.Equal(t, "Idle Heartbeat", hb.Header.Get("Description"))
	require.Equal(t, "4", hb.Header.Get("Nats-Last-Consumer"))
	require.Equal(t, "4", hb.Header.Get("Nats-Last-Stream"))
}

// The older API: js.Subscribe with nats.IdleHeartbeat gets every message
// in its handler, never a heartbeat, and reports no missed heartbeats
// while the stream is idle.
func TestJetStreamSubscribeIdleHeartbeat(t *testing.T) {
	tg := startTarget(t)
	_, jsA := tg.connect(t, 0)
	createStream(t, jsA, jetstream.StreamConfig{Name: "OLDHB", Subjects: []string{"oldhb.>"}})
	asyncErrs := make(chan error, 10)
	nc, err := nats.Connect(tg.urls[1], nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case asyncErrs <- err:
		default:
		}
	}))
	require.NoError(t, err)
	defer nc.Close()
	js, err := nc.JetStream()
	require.NoError(t, err)
	got := make(chan *nats.Msg, 100)
	sub, err := js.Subscribe("oldhb.>", func(m *nats.Msg) {
		got <- m
		m.Ack()
	}, nats.Durable("hb"), nats.IdleHeartbeat(200*time.Millisecond), nats.ManualAck(), nats.DeliverAll())
	require.NoError(t, err)
	defer sub.Unsubscribe()
	publishN(t, jsA, "oldhb.a", 5)
	for i := range 5 {
		select {
		case m := <-got:
			require.Equal(t, fmt.Sprint(i), string(m.Data), "%s %v %q", m.Subject, m.Header, m.Reply)
			require.Empty(t, m.Header.Get("Status"), "a status message reached the handler")
		case <-time.After(wait):
			t.Fatalf("only %d of 5 messages arrived", i)
		}
	}
	// Idle for several heartbeat intervals: nats.go would report
	// nats.ErrConsumerNotActive after two missed heartbeats.
	select {
	case err := <-asyncErrs:
		t.Fatalf("asynchronous error while idle: %v", err)
	case m := <-got:
		t.Fatalf("the handler got %q (headers %v) while idle", m.Data, m.Header)
	case <-time.After(1500 * time.Millisecond):
	}
	ci, err := sub.ConsumerInfo()
	require.NoError(t, err)
	require.Equal(t, 200*time.Millisecond, ci.Config.Heartbeat)
	require.Equal(t, uint64(5), ci.Delivered.Stream)
}

// The older API's ordered consumer (js.Subscribe with
// nats.OrderedConsumer: push, flow control, heartbeats) gets every
// message once, in order: what was stored before and what comes after.
func TestJetStreamSubscribeOrdered(t *testing.T) {
	tg := startTarget(t)
	_, jsA := tg.connect(t, 0)
	createStream(t, jsA, jetstream.StreamConfig{Name: "ORD", Subjects: []string{"ord.>"}})
	const before, after = 300, 100
	publishN(t, jsA, "ord.a", before)
	nc, err := nats.Connect(tg.urls[1])
	require.NoError(t, err)
	defer nc.Close()
	js, err := nc.JetStream()
	require.NoError(t, err)
	var mu sync.Mutex
	var seqs []uint64
	var bodies []string
	done := make(chan struct{})
	sub, err := js.Subscribe("ord.>", func(m *nats.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		seqs = append(seqs, meta.Sequence.Stream)
		bodies = append(bodies, string(m.Data))
		if len(seqs) == before+after {
			close(done)
		}
	}, nats.OrderedConsumer())
	require.NoError(t, err)
	defer sub.Unsubscribe()
	publishN(t, jsA, "ord.b", after)
	select {
	case <-done:
	case <-time.After(wait):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%d of %d messages arrived", len(seqs), before+after)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, seq := range seqs {
		require.Equal(t, uint64(i+1), seq)
		require.Equal(t, fmt.Sprint(i%before), bodies[i], "message %d", seq)
	}
}

// Delivered messages carry the subject they were published on, whatever
// subject they are delivered to (a pull request's inbox, a push
// consumer's deliver subject): nats.go's Msg.Subject() is that subject.
// The consumers exist before the messages (see
// TestJetStreamSubscribeStoredMessages for push consumers created over
// stored messages).
func TestJetStreamDeliveredSubject(t *testing.T) {
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "SUBJ", Subjects: []string{"subj.>"}})
	pull, err := js.CreateOrUpdateConsumer(ctx(t), "SUBJ", jetstream.ConsumerConfig{Durable: "pull"})
	require.NoError(t, err)
	push, err := nc.SubscribeSync("deliver.subj")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	_, err = js.CreateOrUpdatePushConsumer(ctx(t), "SUBJ", jetstream.ConsumerConfig{Durable: "push",
		DeliverSubject: "deliver.subj", AckPolicy: jetstream.AckNonePolicy})
	require.NoError(t, err)
	ojs, err := nc.JetStream()
	require.NoError(t, err)
	older, err := ojs.SubscribeSync("subj.b", nats.DeliverAll())
	require.NoError(t, err)

	_, err = js.Publish(ctx(t), "subj.a.1", []byte("one"))
	require.NoError(t, err)
	_, err = js.Publish(ctx(t), "subj.b", []byte("two"))
	require.NoError(t, err)

	got := fetchAll(t, pull, 2, jetstream.FetchMaxWait(wait))
	require.Len(t, got, 2)
	assert.Equal(t, "subj.a.1", got[0].Subject(), "pull")
	assert.Equal(t, "subj.b", got[1].Subject(), "pull")
	m, err := push.NextMsg(wait)
	require.NoError(t, err)
	assert.Equal(t, "subj.a.1", m.Subject, "push")
	m, err = older.NextMsg(wait)
	require.NoError(t, err)
	assert.Equal(t, "subj.b", m.Subject, "older API push")
}

// js.SubscribeSync on a stream that already holds messages gets them at
// once: nats.go subscribes to the deliver subject before it asks for the
// consumer, and nats-server delivers only to a deliver subject with
// interest, so the first message is never lost (it would come back only
// after ack_wait, 30 s).
func TestJetStreamSubscribeStoredMessages(t *testing.T) {
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "STORED", Subjects: []string{"stored.>"}})
	publishN(t, js, "stored.x", 3)
	nc, err := nats.Connect(tg.urls[1])
	require.NoError(t, err)
	defer nc.Close()
	ojs, err := nc.JetStream()
	require.NoError(t, err)
	for round := range 5 {
		sub, err := ojs.SubscribeSync("stored.>", nats.DeliverAll())
		require.NoError(t, err)
		for i := range 3 {
			m, err := sub.NextMsg(wait)
			require.NoError(t, err, "round %d: message %d of 3 did not arrive", round, i+1)
			require.Equal(t, fmt.Sprint(i), string(m.Data), "%s %v %q", m.Subject, m.Header, m.Reply)
			require.NoError(t, m.Ack())
		}
		require.NoError(t, sub.Unsubscribe())
	}
}

// An ephemeral push consumer lives as long as its deliver subject has a
// subscriber, however long it stays idle; inactive_threshold counts from
// when the last subscriber goes.
func TestJetStreamEphemeralPushKeptWhileSubscribed(t *testing.T) {
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "EPH", Subjects: []string{"eph.>"}})
	const threshold = time.Second

	raw, err := nc.SubscribeSync("deliver.eph")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	pushed, err := js.CreatePushConsumer(ctx(t), "EPH", jetstream.ConsumerConfig{DeliverSubject: "deliver.eph",
		AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: threshold, FilterSubject: "eph.raw"})
	require.NoError(t, err)
	name := pushed.CachedInfo().Name
	ojs, err := nc.JetStream()
	require.NoError(t, err)
	older, err := ojs.SubscribeSync("eph.old", nats.InactiveThreshold(threshold))
	require.NoError(t, err)
	oldInfo, err := older.ConsumerInfo()
	require.NoError(t, err)

	time.Sleep(threshold + 1500*time.Millisecond) // idle, subscribed
	_, err = js.PushConsumer(ctx(t), "EPH", name)
	assert.NoError(t, err, "the raw push consumer was removed while subscribed")
	_, err = js.PushConsumer(ctx(t), "EPH", oldInfo.Name)
	assert.NoError(t, err, "js.SubscribeSync's consumer was removed while subscribed")
	_, err = js.Publish(ctx(t), "eph.raw", []byte("raw"))
	require.NoError(t, err)
	_, err = js.Publish(ctx(t), "eph.old", []byte("old"))
	require.NoError(t, err)
	// (A shorter wait: a removed consumer never delivers.)
	m, err := raw.NextMsg(wait / 2)
	if assert.NoError(t, err, "raw push consumer") {
		assert.Equal(t, "raw", string(m.Data))
	}
	m, err = older.NextMsg(wait / 2)
	if assert.NoError(t, err, "js.SubscribeSync") {
		assert.Equal(t, "old", string(m.Data))
	}

	// No subscriber: gone after inactive_threshold.
	require.NoError(t, raw.Unsubscribe())
	eventually(t, func() bool {
		_, err := js.PushConsumer(attempt(t), "EPH", name)
		return errors.Is(err, jetstream.ErrConsumerNotFound)
	}, "the push consumer outlived its subscriber")
}
