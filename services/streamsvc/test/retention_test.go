package test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// msgCount is the stream's message count, once it settles at want.
func msgCount(t *testing.T, st jetstream.Stream, want uint64) {
	t.Helper()
	var info *jetstream.StreamInfo
	require.Eventually(t, func() bool {
		var err error
		info, err = st.Info(attempt(t))
		return err == nil && info.State.Msgs == want
	}, wait, 20*time.Millisecond, "want %d messages, stream has %+v", want, func() any {
		if info == nil {
			return nil
		}
		return info.State
	}())
}

// fetchAck takes n messages from c and acknowledges each (double ack).
func fetchAck(t *testing.T, c jetstream.Consumer, n int) {
	t.Helper()
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	got := 0
	for m := range batch.Messages() {
		require.NoError(t, m.DoubleAck(ctx(t)))
		got++
	}
	require.Equal(t, n, got)
}

// A workqueue stream removes a message once a consumer acknowledges it,
// and refuses consumers that would share a subject.
func TestJetStreamWorkQueue(t *testing.T) {
	s := startSuite(t)
	_, js := connect(t, s.fds[0])
	st := createStream(t, js, jetstream.StreamConfig{Name: "WQ", Subjects: []string{"wq.*"}, Retention: jetstream.WorkQueuePolicy})
	publishN(t, js, "wq.a", 4)
	publishN(t, js, "wq.b", 2)
	msgCount(t, st, 6)

	a, err := st.CreateOrUpdateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "a", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "wq.a"})
	require.NoError(t, err)
	fetchAck(t, a, 3)
	msgCount(t, st, 3)

	var apiErr *jetstream.APIError
	_, err = st.CreateOrUpdateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "a2", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "wq.*"})
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, jetstream.ErrorCode(10100), apiErr.ErrorCode, "filtered consumer not unique on workqueue stream")
	_, err = st.CreateOrUpdateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "none", AckPolicy: jetstream.AckNonePolicy, FilterSubject: "wq.b"})
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, jetstream.ErrorCode(10098), apiErr.ErrorCode, "workqueue stream requires explicit ack")

	b, err := st.CreateOrUpdateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "b", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "wq.b"})
	require.NoError(t, err)
	fetchAck(t, b, 2)
	msgCount(t, st, 1)
	info, err := st.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(4), info.State.FirstSeq, "the one left is wq.a's last")
}

// An interest stream keeps a message while some consumer taking its
// subject has not acknowledged it, and keeps nothing nobody takes.
func TestJetStreamInterest(t *testing.T) {
	s := startSuite(t)
	_, js := connect(t, s.fds[0])
	st := createStream(t, js, jetstream.StreamConfig{Name: "INT", Subjects: []string{"int.*"}, Retention: jetstream.InterestPolicy})
	ack, err := js.Publish(ctx(t), "int.a", []byte("nobody listens"))
	require.NoError(t, err)
	require.Equal(t, uint64(1), ack.Sequence)
	msgCount(t, st, 0)

	one, err := st.CreateOrUpdateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "one", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	two, err := st.CreateOrUpdateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "two", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "int.a"})
	require.NoError(t, err)
	publishN(t, js, "int.a", 2) // 2, 3: both consumers take them
	publishN(t, js, "int.b", 1) // 4: only "one"
	msgCount(t, st, 3)
	fetchAck(t, one, 3)
	msgCount(t, st, 2) // int.b went; int.a waits for "two"
	fetchAck(t, two, 1)
	msgCount(t, st, 1)
	// Deleting "two" leaves nobody waiting for the last int.a.
	require.NoError(t, st.DeleteConsumer(ctx(t), "two"))
	msgCount(t, st, 0)
}
