package test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// firstSeq fetches one message from a new consumer and returns its
// stream sequence.
func firstSeq(t *testing.T, st jetstream.Stream, cfg jetstream.ConsumerConfig) uint64 {
	t.Helper()
	c, err := st.CreateConsumer(ctx(t), cfg)
	require.NoError(t, err)
	m, err := c.Next(jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	meta, err := m.Metadata()
	require.NoError(t, err)
	return meta.Sequence.Stream
}

// Deliver policies position a consumer as nats-server does.
func TestJetStreamDeliverPolicies(t *testing.T) {
	s := startSuite(t)
	_, js := connect(t, s.fds[0])
	st := createStream(t, js, jetstream.StreamConfig{Name: "POL", Subjects: []string{"pol.*"}, Storage: jetstream.MemoryStorage})
	publishN(t, js, "pol.a", 3) // 1-3
	publishN(t, js, "pol.b", 2) // 4-5
	time.Sleep(20 * time.Millisecond)
	mid := time.Now()
	publishN(t, js, "pol.a", 1) // 6

	require.Equal(t, uint64(1), firstSeq(t, st, jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}))
	require.Equal(t, uint64(6), firstSeq(t, st, jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverLastPolicy}))
	require.Equal(t, uint64(5), firstSeq(t, st, jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverLastPolicy, FilterSubject: "pol.b"}))
	require.Equal(t, uint64(3), firstSeq(t, st, jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: 3}))
	require.Equal(t, uint64(6), firstSeq(t, st, jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &mid}))

	// last_per_subject: each subject's newest (5 for pol.b, 6 for pol.a).
	c, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy})
	require.NoError(t, err)
	batch, err := c.Fetch(10, jetstream.FetchMaxWait(time.Second))
	require.NoError(t, err)
	var seqs []uint64
	for m := range batch.Messages() {
		meta, _ := m.Metadata()
		seqs = append(seqs, meta.Sequence.Stream)
	}
	require.Equal(t, []uint64{5, 6}, seqs)

	// new: only what comes after.
	c, err = st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	require.NoError(t, err)
	publishN(t, js, "pol.c", 1)
	m, err := c.Next(jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	meta, _ := m.Metadata()
	require.Equal(t, uint64(7), meta.Sequence.Stream)

	// Bad consumer configurations get nats-server's errors.
	var apiErr *jetstream.APIError
	_, err = st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{FilterSubject: "other.x"})
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, jetstream.ErrorCode(10093), apiErr.ErrorCode)
	_, err = st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy})
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, jetstream.ErrorCode(10094), apiErr.ErrorCode)
	_, err = st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 2,
		BackOff: []time.Duration{time.Second, 2 * time.Second}})
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, jetstream.ErrorCode(10116), apiErr.ErrorCode)
	_, err = js.Consumer(ctx(t), "POL", "nobody")
	require.ErrorIs(t, err, jetstream.ErrConsumerNotFound)
}

// Stream limits: max_msgs_per_subject, max_bytes, max_age, discard new.
func TestJetStreamLimits(t *testing.T) {
	s := startSuite(t)
	_, js := connect(t, s.fds[0])
	st := createStream(t, js, jetstream.StreamConfig{Name: "LIM", Subjects: []string{"lim.*"}, MaxMsgsPerSubject: 2})
	publishN(t, js, "lim.a", 5)
	publishN(t, js, "lim.b", 1)
	info, err := st.Info(ctx(t), jetstream.WithSubjectFilter(">"))
	require.NoError(t, err)
	require.Equal(t, uint64(3), info.State.Msgs, "two of lim.a, one of lim.b")
	m, err := st.GetMsg(ctx(t), 4)
	require.NoError(t, err)
	require.Equal(t, "3", string(m.Data))

	aged := createStream(t, js, jetstream.StreamConfig{Name: "AGE", Subjects: []string{"age"}, MaxAge: time.Second})
	publishN(t, js, "age", 3)
	require.Eventually(t, func() bool {
		info, err := aged.Info(ctx(t))
		return err == nil && info.State.Msgs == 0 && info.State.LastSeq == 3 && info.State.FirstSeq == 4
	}, 5*time.Second, 50*time.Millisecond, "messages older than max_age go")

	full := createStream(t, js, jetstream.StreamConfig{Name: "FULL", Subjects: []string{"full"}, MaxMsgs: 2, Discard: jetstream.DiscardNew})
	publishN(t, js, "full", 2)
	_, err = js.Publish(ctx(t), "full", []byte("third"))
	var apiErr *jetstream.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, "maximum messages exceeded", apiErr.Description)
	info, err = full.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(2), info.State.Msgs)

	bytesCap := createStream(t, js, jetstream.StreamConfig{Name: "BYTES", Subjects: []string{"bytes"}, MaxBytes: 500})
	for i := range 10 {
		_, err := js.Publish(ctx(t), "bytes", []byte(fmt.Sprintf("%0100d", i)))
		require.NoError(t, err)
	}
	info, err = bytesCap.Info(ctx(t))
	require.NoError(t, err)
	require.LessOrEqual(t, info.State.Bytes, uint64(500))
	require.Equal(t, uint64(10), info.State.LastSeq)
}

// Replay original delivers messages spaced as they were stored.
func TestJetStreamReplayOriginal(t *testing.T) {
	s := startSuite(t)
	_, js := connect(t, s.fds[0])
	st := createStream(t, js, jetstream.StreamConfig{Name: "REPLAY", Subjects: []string{"replay"}})
	publishN(t, js, "replay", 1)
	time.Sleep(400 * time.Millisecond)
	publishN(t, js, "replay", 1)
	c, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{ReplayPolicy: jetstream.ReplayOriginalPolicy})
	require.NoError(t, err)
	began := time.Now()
	batch, err := c.Fetch(2, jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	n := 0
	for range batch.Messages() {
		n++
	}
	require.Equal(t, 2, n)
	require.GreaterOrEqual(t, time.Since(began), 350*time.Millisecond, "the second message waits as long as it did when stored")
}
