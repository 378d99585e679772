package test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// Per-message TTLs (Nats-TTL with allow_msg_ttl) and subject delete
// markers (subject_delete_marker_ttl), with nats-server v2.15's errors,
// timing rules and marker headers.

func publishTTL(t *testing.T, js jetstream.JetStream, subj, ttl string) (*jetstream.PubAck, error) {
	t.Helper()
	m := nats.NewMsg(subj)
	m.Data = []byte("v")
	if ttl != "" {
		m.Header.Set("Nats-TTL", ttl)
	}
	return js.PublishMsg(ctx(t), m)
}

// gone reports whether the stream no longer holds seq.
func gone(t *testing.T, st jetstream.Stream, seq uint64) bool {
	_, err := st.GetMsg(attempt(t), seq)
	return errors.Is(err, jetstream.ErrMsgNotFound)
}

func TestMsgTTL(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	_, jsB := tg.connect(t, 1)

	createStream(t, js, jetstream.StreamConfig{Name: "NOTTL", Subjects: []string{"nottl.>"}})
	waitForStream(t, js, "nottl.probe")
	_, err := publishTTL(t, js, "nottl.a", "5s")
	requireAPIError(t, err, 400, 10166, "per-message TTL is disabled")

	st := createStream(t, js, jetstream.StreamConfig{Name: "TTL", Subjects: []string{"ttl.>"}, AllowMsgTTL: true, MaxAge: 3 * time.Second})
	require.True(t, st.CachedInfo().Config.AllowMsgTTL)
	waitForStream(t, jsB, "ttl.probe")
	for _, bad := range []string{"bogus", "0", "0s", "500ms", "-1", "-2"} {
		_, err := publishTTL(t, jsB, "ttl.bad", bad)
		requireAPIError(t, err, 400, 10165, "invalid per-message TTL")
	}
	short, err := publishTTL(t, jsB, "ttl.short", "1")
	require.NoError(t, err)
	shortDur, err := publishTTL(t, jsB, "ttl.short", "1s")
	require.NoError(t, err)
	never, err := publishTTL(t, jsB, "ttl.never", "never")
	require.NoError(t, err)
	long, err := publishTTL(t, jsB, "ttl.long", "1h")
	require.NoError(t, err)
	plain, err := publishTTL(t, jsB, "ttl.plain", "")
	require.NoError(t, err)

	// The one-second messages go first; max_age (3 s) has not yet taken
	// the others.
	eventually(t, func() bool { return gone(t, st, short.Sequence) && gone(t, st, shortDur.Sequence) }, "TTL messages were kept")
	require.False(t, gone(t, st, plain.Sequence), "max_age removed a message early")
	// max_age takes everything else, a longer TTL too, but never "never".
	eventually(t, func() bool { return gone(t, st, long.Sequence) && gone(t, st, plain.Sequence) }, "max_age did not apply")
	require.False(t, gone(t, st, never.Sequence), `max_age removed a "never" message`)
	info, err := st.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Msgs)

	cfg := info.Config
	cfg.AllowMsgTTL = false
	_, err = js.UpdateStream(ctx(t), cfg)
	requireAPIError(t, err, 500, 10052, "message TTL status can not be disabled")

	if tg.suite == nil {
		return
	}
	// Deadlines outlive a streamsvc restart: the index is rebuilt from
	// the stored messages.
	later, err := publishTTL(t, jsB, "ttl.later", "2s")
	require.NoError(t, err)
	tg.suite.streamsvc.Stop()
	tg.suite.startStreamsvc(t)
	eventually(t, func() bool {
		st, err := js.Stream(attempt(t), "TTL")
		return err == nil && gone(t, st, later.Sequence)
	}, "a TTL message outlived the restart")
	require.False(t, gone(t, st, never.Sequence))
}

// Markers follow messages that max_age or their TTL removed when they
// were the last on their subject; deletes, purges and expiring markers
// leave none.
func TestSubjectDeleteMarkers(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	waitForAPI(t, js)

	_, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "M", Subjects: []string{"m.>"}, AllowMsgTTL: true, SubjectDeleteMarkerTTL: 500 * time.Millisecond})
	requireAPIError(t, err, 500, 10052, "subject delete marker TTL must be at least 1 second")

	st := createStream(t, js, jetstream.StreamConfig{Name: "M", Subjects: []string{"m.>"}, SubjectDeleteMarkerTTL: time.Second, MaxAge: 2 * time.Second})
	cfg := st.CachedInfo().Config
	require.True(t, cfg.AllowMsgTTL, "markers turn message TTLs on")
	require.True(t, cfg.AllowRollup, "markers turn rollups on")
	require.Equal(t, time.Second, cfg.SubjectDeleteMarkerTTL)

	c, err := js.OrderedConsumer(ctx(t), "M", jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	waitForStream(t, js, "m.probe")
	require.NoError(t, st.Purge(ctx(t)))
	_, err = publishTTL(t, js, "m.ttl", "1s")
	require.NoError(t, err)
	_, err = publishTTL(t, js, "m.age", "")
	require.NoError(t, err)
	del, err := publishTTL(t, js, "m.del", "")
	require.NoError(t, err)
	require.NoError(t, st.DeleteMsg(ctx(t), del.Sequence))
	_, err = publishTTL(t, js, "m.purged", "")
	require.NoError(t, err)
	require.NoError(t, st.Purge(ctx(t), jetstream.WithPurgeSubject("m.purged")))
	_, err = publishTTL(t, js, "m.keep", "never")
	require.NoError(t, err)

	var subjects []string
	for {
		m, err := c.Next(jetstream.FetchMaxWait(4 * time.Second))
		if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
			break
		}
		require.NoError(t, err)
		subjects = append(subjects, m.Subject())
		if m.Headers().Get("Nats-Marker-Reason") == "" {
			continue
		}
		require.Equal(t, "MaxAge", m.Headers().Get("Nats-Marker-Reason"))
		require.Equal(t, "1s", m.Headers().Get("Nats-TTL"))
		require.Equal(t, "sub", m.Headers().Get("Nats-Rollup"))
		require.Empty(t, m.Data())
	}
	// The probe went with the purge; the delete and purge leave no
	// marker; the markers expire without markers of their own.
	require.Equal(t, []string{"m.ttl", "m.age", "m.keep", "m.ttl", "m.age"}, subjects)
	eventually(t, func() bool {
		info, err := st.Info(attempt(t))
		return err == nil && info.State.Msgs == 1
	}, "the markers did not expire")
}

// KV limit markers (ADR-48): a key created with a TTL expires and
// watchers see it purged; a purge with a TTL is removed after it.
func TestKVLimitMarkers(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	waitForAPI(t, js)

	plain := createKV(t, js, jetstream.KeyValueConfig{Bucket: "PLAIN"})
	_, err := plain.Create(ctx(t), "k", []byte("v"), jetstream.KeyTTL(time.Second))
	requireAPIError(t, err, 400, 10166, "per-message TTL is disabled")

	kv := createKV(t, js, jetstream.KeyValueConfig{Bucket: "MARK", LimitMarkerTTL: time.Second})
	status, err := kv.Status(ctx(t))
	require.NoError(t, err)
	require.Equal(t, time.Second, status.LimitMarkerTTL())

	w := watchKV(t, kv, jetstream.AllKeys)
	requireInitial(t, w)
	_, err = kv.Create(ctx(t), "session", []byte("open"), jetstream.KeyTTL(time.Second))
	require.NoError(t, err)
	requireUpdate(t, w, "session", "open", jetstream.KeyValuePut)
	e := nextUpdate(t, w)
	require.NotNil(t, e)
	require.Equal(t, "session", e.Key())
	require.Equal(t, jetstream.KeyValuePurge, e.Operation(), "the expiry is seen as a purge")
	_, err = kv.Get(ctx(t), "session")
	require.ErrorIs(t, err, jetstream.ErrKeyNotFound)

	_, err = kv.PutString(ctx(t), "cfg", "1")
	require.NoError(t, err)
	requireUpdate(t, w, "cfg", "1", jetstream.KeyValuePut)
	require.NoError(t, kv.Purge(ctx(t), "cfg", jetstream.PurgeTTL(time.Second)))
	e = nextUpdate(t, w)
	require.Equal(t, jetstream.KeyValuePurge, e.Operation())
	eventually(t, func() bool {
		st, err := js.Stream(attempt(t), "KV_MARK")
		if err != nil {
			return false
		}
		info, err := st.Info(attempt(t))
		return err == nil && info.State.Msgs == 0
	}, "the purge marker and the expiry marker stayed")
}
