package test

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// Consumer reset: to a stream sequence, or back to after the ack floor
// (what awaited an ack comes again), with reset_seq in the answer.
func TestConsumerReset(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	st := createStream(t, js, jetstream.StreamConfig{Name: "RST", Subjects: []string{"rst.>"}})
	waitForStream(t, js, "rst.1")
	for range 4 {
		_, err := js.Publish(ctx(t), "rst.x", nil)
		require.NoError(t, err)
	}
	c, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "C", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	batch, err := c.Fetch(3, jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	n := 0
	for m := range batch.Messages() {
		if n == 0 {
			require.NoError(t, m.DoubleAck(ctx(t)))
		}
		n++
	}
	require.Equal(t, 3, n)

	// Without a sequence: after the ack floor (1), so 2 and 3 come again.
	r := apiRequest(t, nc, "$JS.API.CONSUMER.RESET.RST.C", "")
	require.Nil(t, r["error"], "%v", r)
	require.Equal(t, "io.nats.jetstream.api.v1.consumer_reset_response", r["type"])
	require.Equal(t, float64(2), r["reset_seq"])
	require.Equal(t, map[string]any{"consumer_seq": float64(0), "stream_seq": float64(1)}, r["ack_floor"])
	require.Equal(t, float64(0), r["num_ack_pending"])
	require.Equal(t, float64(4), r["num_pending"])
	m, err := c.Next(jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	md, err := m.Metadata()
	require.NoError(t, err)
	require.Equal(t, uint64(2), md.Sequence.Stream)
	require.Equal(t, uint64(1), md.Sequence.Consumer, "the consumer sequence starts again")
	require.Equal(t, uint64(1), md.NumDelivered, "delivery counts start again")

	// To a sequence.
	r = apiRequest(t, nc, "$JS.API.CONSUMER.RESET.RST.C", `{"seq":5}`)
	require.Equal(t, float64(5), r["reset_seq"])
	require.Equal(t, float64(1), r["num_pending"])
	m, err = c.Next(jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	md, err = m.Metadata()
	require.NoError(t, err)
	require.Equal(t, uint64(5), md.Sequence.Stream)

	r = apiRequest(t, nc, "$JS.API.CONSUMER.RESET.RST.C", `bad`)
	require.Equal(t, float64(10025), apiError(r)["err_code"])
	require.Equal(t, float64(0), r["reset_seq"])
}
