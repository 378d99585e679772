package test

import (
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// Stream subject transforms and republish.
func TestStreamTransformAndRepublish(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	ncB, jsB := tg.connect(t, 1)
	waitForAPI(t, js)

	_, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "BAD", Subjects: []string{"bad.>"},
		SubjectTransform: &jetstream.SubjectTransformConfig{Source: "bad.>", Destination: "x"}})
	requireAPIError(t, err, 400, 10156, "stream transform: invalid subject")
	_, err = js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "BAD", Subjects: []string{"bad.>"},
		RePublish: &jetstream.RePublish{Source: "bad.>", Destination: "bad.again.>"}})
	requireAPIError(t, err, 500, 10052, "stream configuration for republish destination forms a cycle")
	_, err = js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "BAD", Subjects: []string{"bad.>"},
		RePublish: &jetstream.RePublish{Source: "bad.>", Destination: "elsewhere"}})
	requireAPIError(t, err, 500, 10052, "stream configuration for republish with transform from 'bad.>' to 'elsewhere' not valid")

	st := createStream(t, js, jetstream.StreamConfig{Name: "TR", Subjects: []string{"tr.>"},
		SubjectTransform: &jetstream.SubjectTransformConfig{Source: "tr.*.in", Destination: "tr.{{wildcard(1)}}.stored"},
		RePublish:        &jetstream.RePublish{Destination: "out.>"}})
	require.Equal(t, ">", st.CachedInfo().Config.RePublish.Source, "republish takes every subject by default")
	createStream(t, js, jetstream.StreamConfig{Name: "HO", Subjects: []string{"ho.>"},
		RePublish: &jetstream.RePublish{Source: "ho.>", Destination: "hout.>", HeadersOnly: true}})

	out, err := ncB.SubscribeSync("out.>")
	require.NoError(t, err)
	hout, err := ncB.SubscribeSync("hout.>")
	require.NoError(t, err)
	require.NoError(t, ncB.Flush())
	next := func(sub *nats.Subscription) *nats.Msg {
		t.Helper()
		m, err := sub.NextMsg(wait)
		require.NoError(t, err)
		return m
	}
	// Republished messages reach subscribers streamsvc knows of: publish
	// probes until one comes back, then take what is left of them.
	settle := func(sub *nats.Subscription, subj string) {
		t.Helper()
		eventually(t, func() bool {
			if _, err := jsB.Publish(attempt(t), subj, nil); err != nil {
				return false
			}
			_, err := sub.NextMsg(200 * time.Millisecond)
			return err == nil
		}, "nothing republished from %s", subj)
		for {
			if _, err := sub.NextMsg(300 * time.Millisecond); err != nil {
				return
			}
		}
	}
	settle(out, "tr.probe")
	settle(hout, "ho.probe")
	probes, err := st.Info(ctx(t))
	require.NoError(t, err)
	base := probes.State.LastSeq

	m := nats.NewMsg("tr.a.in")
	m.Header.Set("Own", "1")
	m.Data = []byte("first")
	ack, err := js.PublishMsg(ctx(t), m)
	require.NoError(t, err)
	_, err = js.Publish(ctx(t), "tr.b.other", []byte("kept"))
	require.NoError(t, err)
	third, err := js.Publish(ctx(t), "tr.a.in", []byte("second"))
	require.NoError(t, err)

	stored, err := st.GetMsg(ctx(t), ack.Sequence)
	require.NoError(t, err)
	require.Equal(t, "tr.a.stored", stored.Subject, "subject_transform rewrote the subject")

	r := next(out)
	require.Equal(t, "out.tr.a.stored", r.Subject)
	require.Equal(t, "first", string(r.Data))
	require.Equal(t, "1", r.Header.Get("Own"))
	require.Equal(t, "TR", r.Header.Get("Nats-Stream"))
	require.Equal(t, "tr.a.stored", r.Header.Get("Nats-Subject"))
	require.Equal(t, strconv.FormatUint(base+1, 10), r.Header.Get("Nats-Sequence"))
	require.Equal(t, "0", r.Header.Get("Nats-Last-Sequence"), "the first message on its subject")
	ts, err := time.Parse(time.RFC3339Nano, r.Header.Get("Nats-Time-Stamp"))
	require.NoError(t, err)
	require.Equal(t, stored.Time.UnixNano(), ts.UnixNano())
	require.Equal(t, "out.tr.b.other", next(out).Subject)
	r = next(out)
	require.Equal(t, "out.tr.a.stored", r.Subject)
	require.Equal(t, strconv.FormatUint(base+3, 10), r.Header.Get("Nats-Sequence"))
	require.Equal(t, strconv.FormatUint(base+1, 10), r.Header.Get("Nats-Last-Sequence"), "the subject's previous sequence")
	require.Equal(t, base+3, third.Sequence)

	_, err = js.Publish(ctx(t), "ho.x", []byte("payload"))
	require.NoError(t, err)
	h := next(hout)
	require.Equal(t, "hout.x", h.Subject)
	require.Empty(t, h.Data)
	require.Equal(t, "7", h.Header.Get("Nats-Msg-Size"))
}
