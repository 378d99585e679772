package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// logSink collects a store's operator messages.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logSink) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func openFS(t testing.TB, cfg FileConfig) *fileStore {
	t.Helper()
	s, err := OpenFile(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s.(*fileStore)
}

type snapshot struct {
	state State
	msgs  []Msg
}

func snap(t testing.TB, s Store) snapshot {
	return snapshot{state: s.State(), msgs: all(t, s, "")}
}

// reopenSame closes s, opens cfg again and requires the same state and
// messages.
func reopenSame(t testing.TB, s *fileStore, cfg FileConfig) *fileStore {
	t.Helper()
	before := snap(t, s)
	require.NoError(t, s.Close())
	n := openFS(t, cfg)
	after := snap(t, n)
	require.Equal(t, before.state, after.state)
	require.Equal(t, before.msgs, after.msgs)
	return n
}

func files(t testing.TB, dir, ext string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		if filepath.Ext(e.Name()) == ext {
			out = append(out, e.Name())
		}
	}
	return out
}

func fill(t testing.TB, s Store, n int, subject func(i int) string) {
	t.Helper()
	for i := range n {
		require.NoError(t, s.Append([]Msg{{Subject: subject(i), Data: []byte(fmt.Sprintf("payload %04d", i))}}))
	}
}

func bySix(i int) string { return fmt.Sprintf("s.%d", i%6) }

func TestStoreFileReopenAfterEachOp(t *testing.T) {
	cfg := FileConfig{Dir: t.TempDir(), SegmentBytes: 600}
	s := openFS(t, cfg)
	s = reopenSame(t, s, cfg)
	fill(t, s, 40, bySix)
	s = reopenSame(t, s, cfg)
	require.NoError(t, s.Append([]Msg{msg("t", "a"), msg("t.u", "b"), {Subject: "h", Header: []byte("NATS/1.0\r\n\r\n")}}))
	s = reopenSame(t, s, cfg)
	_, err := s.Delete(7)
	require.NoError(t, err)
	s = reopenSame(t, s, cfg)
	_, err = s.Purge("s.2", 0, 1)
	require.NoError(t, err)
	s = reopenSame(t, s, cfg)
	_, err = s.Purge("s.*", 30, 2)
	require.NoError(t, err)
	s = reopenSame(t, s, cfg)
	_, err = s.Compact(12)
	require.NoError(t, err)
	s = reopenSame(t, s, cfg)
	_, err = s.Purge("", 38, 0)
	require.NoError(t, err)
	s = reopenSame(t, s, cfg)
	_, err = s.Purge("", 0, 2)
	require.NoError(t, err)
	s = reopenSame(t, s, cfg)
	require.Equal(t, uint64(2), s.State().Msgs)
	_, err = s.Purge("", 0, 0)
	require.NoError(t, err)
	s = reopenSame(t, s, cfg)
	checkState(t, s, want{first: 44, last: 43})
	fill(t, s, 3, bySix)
	s = reopenSame(t, s, cfg)
	checkState(t, s, want{msgs: 3, first: 44, last: 46})
}

func TestStoreFileLastSeqSurvivesPurgeAll(t *testing.T) {
	cfg := FileConfig{Dir: t.TempDir(), SegmentBytes: 300}
	s := openFS(t, cfg)
	fill(t, s, 30, bySix)
	lastTime := s.State().LastTime
	n, err := s.Purge("", 0, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(30), n)
	require.Len(t, files(t, cfg.Dir, ".blk"), 1, "only the active segment is left")
	s = reopenSame(t, s, cfg)
	checkState(t, s, want{first: 31, last: 30})
	require.Equal(t, lastTime, s.State().LastTime)
	// Once more with the active segment rolled over in between, so the
	// floor record has to be carried into a new segment.
	fill(t, s, 30, bySix)
	_, err = s.Purge("", 0, 0)
	require.NoError(t, err)
	fill(t, s, 1, bySix)
	_, err = s.Delete(61)
	require.NoError(t, err)
	s = reopenSame(t, s, cfg)
	checkState(t, s, want{first: 62, last: 61})
}

// fill's records are 47 bytes (32 header, "s.N", "payload NNNN") and every
// segment starts with a 48-byte floor record: 518-byte segments hold ten.
const tenPerSegment = 48 + 10*47

func TestStoreFileSegmentsRollAndGo(t *testing.T) {
	cfg := FileConfig{Dir: t.TempDir(), SegmentBytes: tenPerSegment, Sync: SyncNever}
	s := openFS(t, cfg)
	fill(t, s, 100, bySix)
	blks := files(t, cfg.Dir, ".blk")
	require.Len(t, blks, 10)
	require.Equal(t, "00000000000000000001.blk", blks[0])
	require.Equal(t, "00000000000000000011.blk", blks[1])
	require.Len(t, files(t, cfg.Dir, ".idx"), 9, "every sealed segment has an index")
	for _, seg := range s.segs {
		require.Equal(t, cfg.SegmentBytes, seg.size)
	}

	_, err := s.Compact(30) // segments 1 and 11 go, 21 keeps 30
	require.NoError(t, err)
	blks = files(t, cfg.Dir, ".blk")
	require.Len(t, blks, 8)
	require.Equal(t, "00000000000000000021.blk", blks[0])
	require.NotContains(t, files(t, cfg.Dir, ".idx"), "00000000000000000011.idx")

	// Emptying an interior segment (31..40) removes it.
	for seq := uint64(31); seq <= 40; seq++ {
		ok, err := s.Delete(seq)
		require.NoError(t, err)
		require.True(t, ok)
	}
	require.NotContains(t, files(t, cfg.Dir, ".blk"), "00000000000000000031.blk")
	require.Len(t, files(t, cfg.Dir, ".blk"), 7)
	s = reopenSame(t, s, cfg)
	checkState(t, s, want{msgs: 100 - 29 - 10, first: 30, last: 100, deleted: 10})
}

// TestStoreFileDeleteCarriedForward: a delete record for a message in an old
// segment lives in a later segment; when that later segment empties and
// goes, the delete must be rewritten, or the message comes back at reopen.
func TestStoreFileDeleteCarriedForward(t *testing.T) {
	cfg := FileConfig{Dir: t.TempDir(), SegmentBytes: tenPerSegment}
	s := openFS(t, cfg)
	fill(t, s, 13, bySix) // segment 1: 1..10, segment 11: 11..13
	_, err := s.Delete(5) // its delete record goes into segment 11
	require.NoError(t, err)
	fill(t, s, 12, bySix) // segment 11 takes 14..19, segment 20 the rest
	segOf := func(seq uint64) uint64 { return s.idx.slots[s.idx.find(seq)].loc.seg.name }
	require.Equal(t, uint64(11), segOf(19))
	require.Equal(t, uint64(20), segOf(20))
	for seq := uint64(11); seq <= 19; seq++ {
		_, err := s.Delete(seq)
		require.NoError(t, err)
	}
	require.NotContains(t, files(t, cfg.Dir, ".blk"), "00000000000000000011.blk")
	s = reopenSame(t, s, cfg)
	_, err = s.Get(5)
	require.ErrorIs(t, err, ErrNotFound)
	checkState(t, s, want{msgs: 15, first: 1, last: 25, deleted: 10})
}

func TestStoreFileIndex(t *testing.T) {
	logs := &logSink{}
	cfg := FileConfig{Dir: t.TempDir(), SegmentBytes: tenPerSegment, Log: logs.logf}
	s := openFS(t, cfg)
	fill(t, s, 50, bySix)
	_, err := s.Delete(3)
	require.NoError(t, err)
	fill(t, s, 10, bySix)
	idx := files(t, cfg.Dir, ".idx")
	sealed := len(files(t, cfg.Dir, ".blk")) - 1
	require.Len(t, idx, sealed)
	require.GreaterOrEqual(t, sealed, 4)

	s = reopenSame(t, s, cfg)
	require.Equal(t, openStats{indexed: sealed, scanned: 1}, s.opened)

	// Missing, damaged and other segments' indexes are rebuilt by scanning,
	// and written again.
	require.NoError(t, os.Remove(filepath.Join(cfg.Dir, idx[0])))
	b, err := os.ReadFile(filepath.Join(cfg.Dir, idx[1]))
	require.NoError(t, err)
	b[40] ^= 0x10
	require.NoError(t, os.WriteFile(filepath.Join(cfg.Dir, idx[1]), b, 0o640))
	other, err := os.ReadFile(filepath.Join(cfg.Dir, idx[3]))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(cfg.Dir, idx[2]), other, 0o640))
	require.NoError(t, os.WriteFile(filepath.Join(cfg.Dir, "00000000000000999999.idx"), other, 0o640))

	s = reopenSame(t, s, cfg)
	require.Equal(t, openStats{indexed: sealed - 3, scanned: 4}, s.opened)
	require.Contains(t, logs.text(), "index checksum mismatch")
	require.Contains(t, logs.text(), "index is for segment 31")
	require.Equal(t, idx, files(t, cfg.Dir, ".idx"), "rebuilt, and the orphan removed")
	s = reopenSame(t, s, cfg)
	require.Equal(t, openStats{indexed: sealed, scanned: 1}, s.opened)
	_, err = s.Get(3)
	require.ErrorIs(t, err, ErrNotFound)

	// An index for a segment whose size changed is not used.
	seg := filepath.Join(cfg.Dir, strings.TrimSuffix(idx[1], ".idx")+".blk")
	require.NoError(t, s.Close())
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte("tail"))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	s = openFS(t, cfg)
	require.Equal(t, openStats{indexed: sealed - 1, scanned: 2}, s.opened)
	require.Contains(t, logs.text(), "index is for 518 bytes of segment, it has 522")
	require.Equal(t, uint64(4), s.State().Lost.Bytes)
}

func TestStoreFileSyncInterval(t *testing.T) {
	cfg := FileConfig{Dir: t.TempDir(), Sync: SyncInterval, Interval: time.Millisecond}
	s := openFS(t, cfg)
	fill(t, s, 20, bySix)
	time.Sleep(10 * time.Millisecond)
	fill(t, s, 20, bySix)
	reopenSame(t, s, cfg)
}

func TestStoreFileTooBig(t *testing.T) {
	s := openFS(t, FileConfig{Dir: t.TempDir()})
	require.Error(t, s.Append([]Msg{{Subject: strings.Repeat("a", maxSubject+1)}}))
	require.Error(t, s.Append([]Msg{{Subject: "a", Data: make([]byte, maxRecord)}}))
	checkState(t, s, want{first: 1})
}

// damageFixture writes 30 messages in three segments (1..10, 11..20 sealed,
// 21..30 open) and closes the store.
func damageFixture(t *testing.T) (FileConfig, *logSink) {
	logs := &logSink{}
	cfg := FileConfig{Dir: t.TempDir(), SegmentBytes: tenPerSegment, Log: logs.logf}
	s := openFS(t, cfg)
	fill(t, s, 30, bySix)
	require.Len(t, files(t, cfg.Dir, ".blk"), 3)
	require.NoError(t, s.Close())
	return cfg, logs
}

// recordAt says where fill's message seq sits in damageFixture's layout.
func recordAt(cfg FileConfig, seq uint64) (path string, off int64) {
	seg := 1 + 10*((seq-1)/10)
	return filepath.Join(cfg.Dir, fmt.Sprintf("%020d.blk", seg)), 48 + int64((seq-1)%10)*47
}

func patch(t testing.TB, path string, off int64, fn func(b []byte)) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	fn(b[off:])
	require.NoError(t, os.WriteFile(path, b, 0o640))
}

func flipData(t testing.TB, cfg FileConfig, seq uint64) (string, int64) {
	path, off := recordAt(cfg, seq)
	patch(t, path, off+40, func(b []byte) { b[0] ^= 0x04 })
	return path, off
}

// requireServed checks every message of 1..n but the lost ones.
func requireServed(t testing.TB, s Store, n uint64, lost ...uint64) {
	t.Helper()
	for seq := uint64(1); seq <= n; seq++ {
		m, err := s.Get(seq)
		if slices.Contains(lost, seq) {
			require.ErrorIs(t, err, ErrCorrupt, "seq %d", seq)
			continue
		}
		require.NoError(t, err, "seq %d", seq)
		require.Equal(t, bySix(int(seq-1)), m.Subject)
		require.Equal(t, fmt.Sprintf("payload %04d", seq-1), string(m.Data))
	}
}

func requireLost(t testing.TB, s Store, bytes uint64, seqs ...uint64) {
	t.Helper()
	st := s.State()
	require.NotNil(t, st.Lost)
	require.Equal(t, &LostData{Msgs: seqs, Bytes: bytes}, st.Lost)
}

func TestStoreFileDamageSealedScanned(t *testing.T) {
	cfg, logs := damageFixture(t)
	path, off := flipData(t, cfg, 15)
	require.NoError(t, os.Remove(idxPath(path)))
	s := openFS(t, cfg)
	requireLost(t, s, 47, 15)
	require.Contains(t, logs.text(), fmt.Sprintf("%s: damaged record at offset %d (47 bytes): seq 15 is lost", path, off))
	requireServed(t, s, 30, 15)
	st := s.State()
	require.Equal(t, uint64(29), st.Msgs)
	require.Equal(t, uint64(30), st.LastSeq)
	require.Equal(t, 1, st.NumDeleted)
	s = reopenSame(t, s, cfg) // from the rebuilt index this time
	require.Equal(t, 2, s.opened.indexed)
	requireLost(t, s, 47, 15)
}

func TestStoreFileDamageSealedFoundAtRead(t *testing.T) {
	cfg, logs := damageFixture(t)
	path, off := flipData(t, cfg, 15)
	s := openFS(t, cfg) // the index is trusted: the damage shows at read
	require.Nil(t, s.State().Lost)
	_, err := s.Get(15)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, fmt.Sprintf("seq 15 in %s at offset %d fails its checksum", path, off))
	requireLost(t, s, 47, 15)
	require.Contains(t, logs.text(), "seq 15 in "+path)

	m, err := s.LoadNext("", 14)
	require.NoError(t, err)
	require.Equal(t, uint64(14), m.Seq)
	m, err = s.LoadNext("", 15)
	require.ErrorIs(t, err, ErrCorrupt)
	require.Equal(t, uint64(15), m.Seq, "so the caller can go on past it")
	m, err = s.LoadNext("", m.Seq+1)
	require.NoError(t, err)
	require.Equal(t, uint64(16), m.Seq)
	requireServed(t, s, 30, 15)
	requireLost(t, s, 47, 15)
}

func TestStoreFileDamageOpenSegment(t *testing.T) {
	cfg, logs := damageFixture(t)
	path, off := flipData(t, cfg, 25)
	s := openFS(t, cfg)
	requireLost(t, s, 47, 25)
	require.Contains(t, logs.text(), fmt.Sprintf("%s: damaged record at offset %d", path, off))
	requireServed(t, s, 30, 25)
	require.Equal(t, uint64(30), s.State().LastSeq)
	require.Equal(t, []uint64{31}, appendMsgs(t, s, msg("s.0", "after")))
	s = reopenSame(t, s, cfg)
	requireLost(t, s, 47, 25)
	require.Equal(t, uint64(30), s.State().Msgs)
}

func TestStoreFileDamageLengthField(t *testing.T) {
	cases := []struct {
		name  string
		patch func(b []byte)
	}{
		{"huge", func(b []byte) { copy(b[4:], []byte{0xf0, 0xff, 0xff, 0xff}) }},
		{"too small", func(b []byte) { b[4], b[5] = 3, 0 }},
		{"plausible but wrong", func(b []byte) { b[4], b[5] = 100, 0 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, logs := damageFixture(t)
			sealed, off := recordAt(cfg, 15)
			require.NoError(t, os.Remove(idxPath(sealed)))
			patch(t, sealed, off, c.patch)
			open, off2 := recordAt(cfg, 25)
			patch(t, open, off2, c.patch)
			s := openFS(t, cfg)
			requireLost(t, s, 2*47, 15, 25)
			require.Contains(t, logs.text(), fmt.Sprintf("%s: damaged record at offset %d (47 bytes): seq 15 is lost", sealed, off))
			require.Contains(t, logs.text(), fmt.Sprintf("%s: damaged record at offset %d (47 bytes): seq 25 is lost", open, off2))
			requireServed(t, s, 30, 15, 25)
			require.Equal(t, uint64(30), s.State().LastSeq)
			reopenSame(t, s, cfg)
		})
	}
}

// TestStoreFileDamageWholeHeader: with the header unreadable the sequence
// comes from the gap it leaves.
func TestStoreFileDamageWholeHeader(t *testing.T) {
	cfg, logs := damageFixture(t)
	path, off := recordAt(cfg, 15)
	require.NoError(t, os.Remove(idxPath(path)))
	patch(t, path, off, func(b []byte) {
		for i := range recHeaderSize {
			b[i] = 0xab
		}
	})
	s := openFS(t, cfg)
	requireLost(t, s, 47, 15)
	require.Contains(t, logs.text(), fmt.Sprintf("%s: damaged data at offset %d (47 bytes)", path, off))
	require.Contains(t, logs.text(), "seqs 15 to 15 have no record and were not deleted")
	requireServed(t, s, 30, 15)
}

func TestStoreFileTruncatedSealedSegment(t *testing.T) {
	cfg, logs := damageFixture(t)
	path, off := recordAt(cfg, 17)
	require.NoError(t, os.Truncate(path, off+40)) // 17's header survives, 18..20 are gone
	s := openFS(t, cfg)
	requireLost(t, s, 40, 17, 18, 19, 20)
	require.Contains(t, logs.text(), fmt.Sprintf("%s: damaged record at offset %d (40 bytes): seq 17 is lost", path, off))
	require.Contains(t, logs.text(), "seqs 18 to 20 have no record")
	requireServed(t, s, 30, 17, 18, 19, 20)
	st := s.State()
	require.Equal(t, uint64(26), st.Msgs)
	require.Equal(t, uint64(30), st.LastSeq)
	reopenSame(t, s, cfg)
}

// TestStoreFileTornTail: the end of the open segment that holds no valid
// record is an unacknowledged write, cut off without reporting loss.
func TestStoreFileTornTail(t *testing.T) {
	cases := []struct {
		name    string
		damage  func(t *testing.T, path string, off int64)
		lastSeq uint64
	}{
		{"partial record", func(t *testing.T, path string, off int64) { require.NoError(t, os.Truncate(path, off+10)) }, 29},
		{"partial body", func(t *testing.T, path string, off int64) { require.NoError(t, os.Truncate(path, off+40)) }, 29},
		{"bad checksum", func(t *testing.T, path string, off int64) { patch(t, path, off+45, func(b []byte) { b[0]++ }) }, 29},
		{"zeros after", func(t *testing.T, path string, off int64) { appendFile(t, path, make([]byte, 4096)) }, 30},
		{"partial header after", func(t *testing.T, path string, off int64) { appendFile(t, path, []byte{1, 2, 3, 4, 5, 6}) }, 30},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, logs := damageFixture(t)
			path, off := recordAt(cfg, 30)
			c.damage(t, path, off)
			s := openFS(t, cfg)
			require.Nil(t, s.State().Lost)
			if c.name == "zeros after" {
				require.Empty(t, logs.text(), "a zero tail is how a SyncAlways segment ends: not worth a log line")
			} else {
				require.Contains(t, logs.text(), "incomplete write")
			}
			require.Equal(t, c.lastSeq, s.State().LastSeq)
			requireServed(t, s, c.lastSeq)
			fi, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, off+47*int64(c.lastSeq-29), fi.Size())
			require.Equal(t, []uint64{c.lastSeq + 1}, appendMsgs(t, s, msg("s.0", "next")))
			reopenSame(t, s, cfg)
		})
	}
}

func appendFile(t testing.TB, path string, b []byte) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(b)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// TestStoreFileLastSeqWithEmptyNewSegment: after a crash right after a new
// segment was created (so it is empty, without its first floor record),
// emptying and dropping the segment before it must not lose LastSeq.
func TestStoreFileLastSeqWithEmptyNewSegment(t *testing.T) {
	cfg := FileConfig{Dir: t.TempDir(), SegmentBytes: tenPerSegment}
	s := openFS(t, cfg)
	fill(t, s, 10, bySix)
	require.NoError(t, s.Close())
	require.NoError(t, os.WriteFile(filepath.Join(cfg.Dir, fmt.Sprintf("%020d.blk", 11)), nil, 0o640))
	s = openFS(t, cfg)
	for seq := uint64(1); seq <= 10; seq++ {
		_, err := s.Delete(seq)
		require.NoError(t, err)
	}
	require.Equal(t, []string{"00000000000000000011.blk"}, files(t, cfg.Dir, ".blk"))
	s = reopenSame(t, s, cfg)
	checkState(t, s, want{first: 11, last: 10})
}

func BenchmarkFileAppend(b *testing.B) {
	for _, size := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s, err := OpenFile(FileConfig{Dir: b.TempDir(), Sync: SyncAlways})
			require.NoError(b, err)
			defer s.Close()
			batch := make([]Msg, size)
			for i := range batch {
				batch[i] = Msg{Subject: "bench.orders", Data: make([]byte, 128)}
			}
			b.SetBytes(128)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += size {
				n := min(size, b.N-i)
				for j := range batch[:n] {
					batch[j].Time = 0
				}
				if err := s.Append(batch[:n]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// A SyncAlways segment is extended with zeros ahead of its data (so its
// fdatasyncs write data only); after a crash that zero tail is the end of
// the log, not damage, and closing cuts it.
func TestFileZeroTailAfterCrash(t *testing.T) {
	dir := t.TempDir()
	logs := &logSink{}
	cfg := FileConfig{Dir: filepath.Join(dir, "live"), Sync: SyncAlways, Log: logs.logf}
	s := openFS(t, cfg)
	appendMsgs(t, s, msg("a", "1"), msg("b", "2"), msg("a", "3"))
	seg := s.active
	info, err := os.Stat(seg.path)
	require.NoError(t, err)
	require.Greater(t, info.Size(), seg.size, "zeros written ahead of the data")

	// "Crash": copy the files as they are, open the copy.
	crashed := filepath.Join(dir, "crashed")
	require.NoError(t, os.MkdirAll(crashed, 0o750))
	names, err := os.ReadDir(cfg.Dir)
	require.NoError(t, err)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(cfg.Dir, n.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(crashed, n.Name()), b, 0o640))
	}
	c := openFS(t, FileConfig{Dir: crashed, Sync: SyncAlways, Log: logs.logf})
	st := c.State()
	require.Nil(t, st.Lost, "a zero tail is not damage")
	require.Equal(t, uint64(3), st.Msgs)
	require.Equal(t, uint64(3), st.LastSeq)
	require.Empty(t, logs.text())
	appendMsgs(t, c, msg("c", "4"))
	m, err := c.Get(4)
	require.NoError(t, err)
	require.Equal(t, "4", string(m.Data))

	// A clean close cuts the zeros.
	require.NoError(t, s.Close())
	info, err = os.Stat(seg.path)
	require.NoError(t, err)
	require.Equal(t, seg.size, info.Size())
}
