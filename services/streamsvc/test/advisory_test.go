package test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// events collects the JetStream advisories and metrics of an account.
type events struct {
	mu  sync.Mutex
	got map[string][]map[string]any // by subject
}

func watchEvents(t *testing.T, nc *nats.Conn, js jetstream.JetStream) *events {
	t.Helper()
	ev := &events{got: map[string][]map[string]any{}}
	sub, err := nc.Subscribe("$JS.EVENT.>", func(m *nats.Msg) {
		var v map[string]any
		if json.Unmarshal(m.Data, &v) != nil {
			v = map[string]any{"unparsable": string(m.Data)}
		}
		ev.mu.Lock()
		ev.got[m.Subject] = append(ev.got[m.Subject], v)
		ev.mu.Unlock()
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, nc.Flush())
	// Advisories go out only to listeners streamsvc knows of: wait until
	// the subscription reached it, then start from nothing.
	eventually(t, func() bool {
		_, _ = js.CreateStream(attempt(t), jetstream.StreamConfig{Name: "EVPROBE", Subjects: []string{"evprobe"}})
		_ = js.DeleteStream(attempt(t), "EVPROBE")
		ev.mu.Lock()
		defer ev.mu.Unlock()
		return len(ev.got["$JS.EVENT.ADVISORY.STREAM.DELETED.EVPROBE"]) > 0
	}, "no advisory reached the subscriber")
	ev.mu.Lock()
	ev.got = map[string][]map[string]any{}
	ev.mu.Unlock()
	return ev
}

// waitAudit returns the API audit of a request on subj once it came.
func (ev *events) waitAudit(t *testing.T, subj string) map[string]any {
	t.Helper()
	var got map[string]any
	eventually(t, func() bool {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		for _, e := range ev.got["$JS.EVENT.ADVISORY.API"] {
			if e["subject"] == subj {
				got = e
				return true
			}
		}
		return false
	}, "no audit of %s", subj)
	return got
}

// wait returns the n-th (from 1) event on subj once it came.
func (ev *events) wait(t *testing.T, subj string, n int) map[string]any {
	t.Helper()
	var got map[string]any
	eventually(t, func() bool {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		if len(ev.got[subj]) < n {
			return false
		}
		got = ev.got[subj][n-1]
		return true
	}, "no event %d on %s", n, subj)
	return got
}

// requireEvent checks an event's type, that it has an id and a
// timestamp, and the fields given.
func requireEvent(t *testing.T, got map[string]any, typ string, fields map[string]any) {
	t.Helper()
	assert.Equal(t, typ, got["type"], "%v", got)
	assert.NotEmpty(t, got["id"], "%v", got)
	_, err := time.Parse(time.RFC3339Nano, got["timestamp"].(string))
	assert.NoError(t, err, "%v", got)
	for k, v := range fields {
		assert.Equal(t, v, got[k], "%s of %v", k, got)
	}
}

// The advisories tools watch: stream and consumer created, updated and
// deleted, NAKs, terminations, max deliveries, sampled acks, pauses, and
// the API audit.
func TestJetStreamAdvisories(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	ev := watchEvents(t, nc, js)
	const adv = "io.nats.jetstream.advisory.v1."

	st := createStream(t, js, jetstream.StreamConfig{Name: "EV", Subjects: []string{"ev.>"}})
	requireEvent(t, ev.wait(t, "$JS.EVENT.ADVISORY.STREAM.CREATED.EV", 1), adv+"stream_action", map[string]any{"stream": "EV", "action": "create"})
	audit := ev.waitAudit(t, "$JS.API.STREAM.CREATE.EV")
	requireEvent(t, audit, adv+"api_audit", nil)
	assert.Contains(t, audit["response"], `"type":"io.nats.jetstream.api.v1.stream_create_response"`)
	assert.Contains(t, audit["request"], `"name":"EV"`)
	assert.Equal(t, "$G", audit["client"].(map[string]any)["acc"])

	_, err := js.UpdateStream(ctx(t), jetstream.StreamConfig{Name: "EV", Subjects: []string{"ev.>"}, MaxMsgs: 100})
	require.NoError(t, err)
	requireEvent(t, ev.wait(t, "$JS.EVENT.ADVISORY.STREAM.UPDATED.EV", 1), adv+"stream_action", map[string]any{"stream": "EV", "action": "modify"})

	c, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "C", AckPolicy: jetstream.AckExplicitPolicy,
		MaxDeliver: 2, AckWait: time.Second, SampleFrequency: "100%"})
	require.NoError(t, err)
	requireEvent(t, ev.wait(t, "$JS.EVENT.ADVISORY.CONSUMER.CREATED.EV.C", 1), adv+"consumer_action",
		map[string]any{"stream": "EV", "consumer": "C", "action": "create"})

	for _, s := range []string{"ev.1", "ev.2", "ev.3"} {
		_, err := js.Publish(ctx(t), s, []byte("x"))
		require.NoError(t, err)
	}
	batch, err := c.Fetch(3, jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	require.Len(t, msgs, 3)
	require.NoError(t, msgs[0].Ack())
	require.NoError(t, msgs[1].Nak())
	require.NoError(t, msgs[2].TermWithReason("bad input"))

	ack := ev.wait(t, "$JS.EVENT.METRIC.CONSUMER.ACK.EV.C", 1)
	requireEvent(t, ack, "io.nats.jetstream.metric.v1.consumer_ack", map[string]any{"stream": "EV", "consumer": "C",
		"consumer_seq": float64(1), "stream_seq": float64(1), "deliveries": float64(1)})
	assert.Greater(t, ack["ack_time"], float64(0))
	requireEvent(t, ev.wait(t, "$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.EV.C", 1), adv+"nak", map[string]any{
		"consumer_seq": float64(2), "stream_seq": float64(2), "deliveries": float64(1)})
	requireEvent(t, ev.wait(t, "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.EV.C", 1), adv+"terminated", map[string]any{
		"consumer_seq": float64(3), "stream_seq": float64(3), "deliveries": float64(1), "reason": "bad input"})

	// The NAKed message comes again; NAKed again, it has used its two
	// deliveries and is given up.
	again, err := c.Next(jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	require.Equal(t, "ev.2", again.Subject())
	require.NoError(t, again.Nak())
	requireEvent(t, ev.wait(t, "$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.EV.C", 2), adv+"nak", map[string]any{
		"stream_seq": float64(2), "deliveries": float64(2)})
	_, err = c.Next(jetstream.FetchMaxWait(1500 * time.Millisecond))
	require.Error(t, err, "a message past max_deliver came again")
	maxDel := ev.wait(t, "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.EV.C", 1)
	requireEvent(t, maxDel, adv+"max_deliver", map[string]any{"stream": "EV", "consumer": "C", "stream_seq": float64(2), "deliveries": float64(2)})
	assert.NotContains(t, maxDel, "consumer_seq")

	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	_, err = js.PauseConsumer(ctx(t), "EV", "C", until)
	require.NoError(t, err)
	pause := ev.wait(t, "$JS.EVENT.ADVISORY.CONSUMER.PAUSE.EV.C", 1)
	requireEvent(t, pause, adv+"consumer_pause", map[string]any{"stream": "EV", "consumer": "C", "paused": true, "pause_until": until.Format(time.RFC3339)})
	_, err = js.ResumeConsumer(ctx(t), "EV", "C")
	require.NoError(t, err)
	requireEvent(t, ev.wait(t, "$JS.EVENT.ADVISORY.CONSUMER.PAUSE.EV.C", 2), adv+"consumer_pause", map[string]any{"paused": false})

	require.NoError(t, st.DeleteConsumer(ctx(t), "C"))
	requireEvent(t, ev.wait(t, "$JS.EVENT.ADVISORY.CONSUMER.DELETED.EV.C", 1), adv+"consumer_action", map[string]any{"action": "delete"})
	require.NoError(t, js.DeleteStream(ctx(t), "EV"))
	requireEvent(t, ev.wait(t, "$JS.EVENT.ADVISORY.STREAM.DELETED.EV", 1), adv+"stream_action", map[string]any{"action": "delete"})
}

// A paused consumer holds its messages (a pull request waits) until it
// is resumed or the pause runs out; info reports the pause.
func TestConsumerPause(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	_, jsB := tg.connect(t, 1)
	st := createStream(t, js, jetstream.StreamConfig{Name: "PAUSE", Subjects: []string{"pause.>"}})
	waitForStream(t, js, "pause.probe")

	until := time.Now().Add(time.Hour)
	c, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "P", AckPolicy: jetstream.AckExplicitPolicy, PauseUntil: &until})
	require.NoError(t, err)
	info, err := c.Info(ctx(t))
	require.NoError(t, err)
	require.True(t, info.Paused)
	require.Greater(t, info.PauseRemaining, 59*time.Minute)

	_, err = c.Next(jetstream.FetchMaxWait(time.Second))
	require.Error(t, err, "a paused consumer delivered")

	resp, err := jsB.ResumeConsumer(ctx(t), "PAUSE", "P")
	require.NoError(t, err)
	require.False(t, resp.Paused)
	m, err := c.Next(jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	require.Equal(t, "pause.probe", m.Subject())
	require.NoError(t, m.Ack())

	// A short pause runs out by itself.
	resp, err = jsB.PauseConsumer(ctx(t), "PAUSE", "P", time.Now().Add(1500*time.Millisecond))
	require.NoError(t, err)
	require.True(t, resp.Paused)
	require.Greater(t, resp.PauseRemaining, time.Duration(0))
	_, err = js.Publish(ctx(t), "pause.after", []byte("x"))
	require.NoError(t, err)
	start := time.Now()
	m, err = c.Next(jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	require.Equal(t, "pause.after", m.Subject())
	require.Greater(t, time.Since(start), time.Second, "delivered during the pause")

	_, err = jsB.PauseConsumer(ctx(t), "PAUSE", "NOPE", until)
	require.ErrorIs(t, err, jetstream.ErrConsumerNotFound)
}
