package test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// Mirrors and sources: a stream fed from others through consumers on
// them, as nats-server does it.

// requireMirrored waits until the mirror holds the origin's messages
// under the same sequences, subjects and payloads.
func requireMirrored(t *testing.T, origin, mirror jetstream.Stream) {
	t.Helper()
	eventually(t, func() bool {
		oi, err := origin.Info(attempt(t))
		if err != nil {
			return false
		}
		mi, err := mirror.Info(attempt(t))
		return err == nil && mi.State.LastSeq == oi.State.LastSeq && mi.State.Msgs == oi.State.Msgs
	}, "the mirror did not catch up")
	oi, err := origin.Info(ctx(t))
	require.NoError(t, err)
	for seq := oi.State.FirstSeq; seq <= oi.State.LastSeq; seq++ {
		want, err := origin.GetMsg(ctx(t), seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			_, err = mirror.GetMsg(ctx(t), seq)
			require.ErrorIs(t, err, jetstream.ErrMsgNotFound, "seq %d is deleted in the origin", seq)
			continue
		}
		require.NoError(t, err)
		got, err := mirror.GetMsg(ctx(t), seq)
		require.NoError(t, err, "seq %d", seq)
		require.Equal(t, want.Subject, got.Subject)
		require.Equal(t, want.Data, got.Data)
		require.Equal(t, want.Time.UnixNano(), got.Time.UnixNano(), "a mirror keeps the origin's timestamps")
	}
}

func TestMirror(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	_, jsB := tg.connect(t, 1)
	origin := createStream(t, js, jetstream.StreamConfig{Name: "ORIG", Subjects: []string{"orig.>"}})
	waitForStream(t, js, "orig.a")
	for _, s := range []string{"orig.b", "orig.c"} {
		m := nats.NewMsg(s)
		m.Header.Set("Kept", "yes")
		m.Data = []byte(s)
		_, err := js.PublishMsg(ctx(t), m)
		require.NoError(t, err)
	}
	require.NoError(t, origin.DeleteMsg(ctx(t), 2))

	_, err := jsB.CreateStream(ctx(t), jetstream.StreamConfig{Name: "BAD", Subjects: []string{"bad"}, Mirror: &jetstream.StreamSource{Name: "ORIG"}})
	requireAPIError(t, err, 400, 10034, "stream mirrors can not contain subjects")
	_, err = jsB.CreateStream(ctx(t), jetstream.StreamConfig{Name: "BAD", Mirror: &jetstream.StreamSource{Name: "ORIG"}, Sources: []*jetstream.StreamSource{{Name: "ORIG"}}})
	requireAPIError(t, err, 400, 10031, "stream mirrors can not also contain other sources")

	mirror := createStream(t, jsB, jetstream.StreamConfig{Name: "MIR", Mirror: &jetstream.StreamSource{Name: "ORIG"}})
	requireMirrored(t, origin, mirror)
	got, err := mirror.GetMsg(ctx(t), 3)
	require.NoError(t, err)
	require.Equal(t, "yes", got.Header.Get("Kept"))
	mi, err := mirror.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(1), mi.State.FirstSeq)
	require.NotNil(t, mi.Mirror)
	require.Equal(t, "ORIG", mi.Mirror.Name)
	require.Nil(t, mi.Mirror.Error)
	require.Empty(t, mi.Config.Subjects, "a mirror has no subjects")

	// New messages follow; nobody can publish into the mirror itself.
	for range 50 {
		_, err := js.Publish(ctx(t), "orig.more", []byte("more"))
		require.NoError(t, err)
	}
	requireMirrored(t, origin, mirror)
	_, err = nc.Request("MIR", []byte("x"), time.Second)
	require.ErrorIs(t, err, nats.ErrNoResponders)

	cfg := mi.Config
	cfg.Mirror = &jetstream.StreamSource{Name: "OTHER"}
	_, err = js.UpdateStream(ctx(t), cfg)
	requireAPIError(t, err, 400, 10055, "stream mirror configuration can not be updated")

	// A mirror from a start sequence begins there.
	late := createStream(t, jsB, jetstream.StreamConfig{Name: "LATE", Mirror: &jetstream.StreamSource{Name: "ORIG", OptStartSeq: 10}})
	eventually(t, func() bool {
		li, err := late.Info(attempt(t))
		return err == nil && li.State.LastSeq == 53
	}, "the late mirror did not catch up")
	li, err := late.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(10), li.State.FirstSeq)
	require.Equal(t, uint64(44), li.State.Msgs)

	// A mirror of a stream that does not exist yet says so, and starts
	// once it does.
	early := createStream(t, jsB, jetstream.StreamConfig{Name: "EARLY", Mirror: &jetstream.StreamSource{Name: "LATER"}})
	eventually(t, func() bool {
		ei, err := early.Info(attempt(t))
		return err == nil && ei.Mirror != nil && ei.Mirror.Error != nil && ei.Mirror.Error.ErrorCode == 10059
	}, "the mirror did not report its missing origin")
	later := createStream(t, js, jetstream.StreamConfig{Name: "LATER", Subjects: []string{"later"}})
	_, err = js.Publish(ctx(t), "later", []byte("now"))
	require.NoError(t, err)
	// nats-server retries a missing origin with a backoff of up to 30 s.
	require.Eventually(t, func() bool {
		ei, err := early.Info(attempt(t))
		return err == nil && ei.State.Msgs == 1
	}, 45*time.Second, 100*time.Millisecond, "the mirror did not start once its origin existed")
	requireMirrored(t, later, early)
}

// Sources: two origins, one filtered and transformed, each message with
// its Nats-Stream-Source header; the stream takes its own publishes too.
func TestSources(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	_, jsB := tg.connect(t, 1)
	createStream(t, js, jetstream.StreamConfig{Name: "SA", Subjects: []string{"sa.>"}})
	createStream(t, js, jetstream.StreamConfig{Name: "SB", Subjects: []string{"sb.>"}})
	waitForStream(t, js, "sa.1")
	waitForStream(t, js, "sb.1")
	_, err := js.Publish(ctx(t), "sb.skip", nil)
	require.NoError(t, err)

	_, err = jsB.CreateStream(ctx(t), jetstream.StreamConfig{Name: "BAD", Subjects: []string{"bad"},
		Sources: []*jetstream.StreamSource{{Name: "SA"}, {Name: "SA"}}})
	requireAPIError(t, err, 400, 10140, "duplicate source configuration detected")
	_, err = jsB.CreateStream(ctx(t), jetstream.StreamConfig{Name: "BAD", Subjects: []string{"bad"},
		Sources: []*jetstream.StreamSource{{Name: "SA", FilterSubject: "sa.>", SubjectTransforms: []jetstream.SubjectTransformConfig{{Source: "sa.>", Destination: "x.>"}}}}})
	requireAPIError(t, err, 400, 10144, "source with multiple subject transforms cannot also have a single subject filter")
	_, err = jsB.CreateStream(ctx(t), jetstream.StreamConfig{Name: "BAD", Subjects: []string{"bad"},
		Sources: []*jetstream.StreamSource{{Name: "SA", SubjectTransforms: []jetstream.SubjectTransformConfig{{Source: "sa.>", Destination: "z"}}}}})
	requireAPIError(t, err, 400, 10146, "source transform: invalid subject")
	_, err = jsB.CreateStream(ctx(t), jetstream.StreamConfig{Name: "SELF", Subjects: []string{"self"}, Sources: []*jetstream.StreamSource{{Name: "SELF"}}})
	requireAPIError(t, err, 500, 10052, "detected cycle")

	agg := createStream(t, jsB, jetstream.StreamConfig{Name: "AGG", Subjects: []string{"agg"}, Sources: []*jetstream.StreamSource{
		{Name: "SA"},
		{Name: "SB", SubjectTransforms: []jetstream.SubjectTransformConfig{{Source: "sb.1", Destination: "from.b"}}},
	}})
	eventually(t, func() bool {
		ai, err := agg.Info(attempt(t))
		return err == nil && ai.State.Msgs == 2
	}, "the sources were not taken")
	_, err = js.Publish(ctx(t), "agg", []byte("own"))
	require.NoError(t, err)
	_, err = js.Publish(ctx(t), "sa.2", []byte("a2"))
	require.NoError(t, err)
	eventually(t, func() bool {
		ai, err := agg.Info(attempt(t))
		return err == nil && ai.State.Msgs == 4
	}, "new messages were not taken")

	bySubject := map[string]string{}
	for seq := uint64(1); seq <= 4; seq++ {
		m, err := agg.GetMsg(ctx(t), seq)
		require.NoError(t, err)
		bySubject[m.Subject] = m.Header.Get("Nats-Stream-Source")
	}
	require.Equal(t, "SA 1 > > sa.1", trimIdent(bySubject["sa.1"]))
	require.Equal(t, "SB 1 sb.1 from.b sb.1", trimIdent(bySubject["from.b"]))
	require.Equal(t, "SA 2 > > sa.2", trimIdent(bySubject["sa.2"]))
	require.Equal(t, "", bySubject["agg"])
	_, skipped := bySubject["sb.skip"]
	require.False(t, skipped, "the filter let sb.skip through")

	ai, err := agg.Info(ctx(t))
	require.NoError(t, err)
	require.Len(t, ai.Sources, 2)
	for _, si := range ai.Sources {
		require.Nil(t, si.Error, si.Name)
	}
}

// trimIdent drops the identity token nats-server appends to the
// Nats-Stream-Source header (Switchyard writes none).
func trimIdent(v string) string {
	f := strings.Fields(v)
	if len(f) == 6 {
		f = f[:5]
	}
	return strings.Join(f, " ")
}

// A mirror and a source catch up after streamsvc is killed and started
// again, without losing or repeating a message.
func TestMirrorCatchesUpAfterRestart(t *testing.T) {
	t.Parallel()
	s := startSuite(t)
	_, js := connect(t, s.fds[0])
	origin := createStream(t, js, jetstream.StreamConfig{Name: "RO", Subjects: []string{"ro.>"}})
	mirror := createStream(t, js, jetstream.StreamConfig{Name: "RM", Mirror: &jetstream.StreamSource{Name: "RO"}})
	src := createStream(t, js, jetstream.StreamConfig{Name: "RS", Subjects: []string{"rs"}, Sources: []*jetstream.StreamSource{{Name: "RO"}}})
	waitForStream(t, js, "ro.first")
	requireMirrored(t, origin, mirror)

	require.NoError(t, s.streamsvc.Signal(os.Kill))
	s.streamsvc.Wait(wait)
	s.startStreamsvc(t)
	for i := range 100 {
		eventually(t, func() bool {
			_, err := js.Publish(attempt(t), "ro.after", []byte{byte(i)})
			return err == nil
		}, "no publish after the restart")
	}
	var err error
	eventually(t, func() bool {
		origin, err = js.Stream(attempt(t), "RO")
		if err != nil {
			return false
		}
		mirror, err = js.Stream(attempt(t), "RM")
		return err == nil
	}, "the streams did not come back")
	requireMirrored(t, origin, mirror)
	eventually(t, func() bool {
		src, err = js.Stream(attempt(t), "RS")
		if err != nil {
			return false
		}
		si, err := src.Info(attempt(t))
		return err == nil && si.State.Msgs == 101
	}, "the source did not catch up")
	si, err := src.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(101), si.State.LastSeq, "the source stored a message twice")
}
