package test

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// Bits flipped in a stored message while streamsvc is down: after the
// restart the damage is reported (stream info "lost", the log) and every
// intact message is still served; nothing else disappears.
func TestJetStreamCorruptionReported(t *testing.T) {
	s := startSuite(t)
	_, js := connect(t, s.fds[0])
	st := createStream(t, js, jetstream.StreamConfig{Name: "DAMAGE", Subjects: []string{"damage"}})
	publishN(t, js, "damage", 20)
	s.streamsvc.Stop()

	dir := filepath.Join(s.storeDir, "$G", "streams", "DAMAGE", "msgs")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var segments []string
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".blk" {
			segments = append(segments, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(segments)
	require.NotEmpty(t, segments)
	b, err := os.ReadFile(segments[len(segments)-1])
	require.NoError(t, err)
	// Message 10's body is the only "9" preceded by its subject.
	at := -1
	for i := 0; i+len("damage9") <= len(b); i++ {
		if string(b[i:i+len("damage9")]) == "damage9" {
			at = i + len("damage")
		}
	}
	require.GreaterOrEqual(t, at, 0, "message 10 found in the segment")
	b[at] ^= 0x40
	require.NoError(t, os.WriteFile(segments[len(segments)-1], b, 0o640))

	s.startStreamsvc(t)
	var info *jetstream.StreamInfo
	require.Eventually(t, func() bool {
		info, err = st.Info(attempt(t))
		return err == nil
	}, wait, 50*time.Millisecond)
	for seq := uint64(1); seq <= 20; seq++ {
		m, err := st.GetMsg(ctx(t), seq)
		if seq == 10 {
			require.Error(t, err, "a damaged message is never served")
			continue
		}
		require.NoError(t, err, "intact message %d", seq)
		require.Equal(t, []byte{byte('0' + (seq-1)%10)}, m.Data[len(m.Data)-1:])
	}
	info, err = st.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(20), info.State.LastSeq)
	require.NotNil(t, info.State.Lost, "stream info reports the damage")
	require.Equal(t, []uint64{10}, info.State.Lost.Msgs)
	require.Regexp(t, `Stream \$G > DAMAGE: store: .*damaged record at offset \d+ .*seq 10 is lost`, s.streamsvc.Log(), "the damage is logged, naming the stream and the message")
}
