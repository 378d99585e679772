package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// fileStore is the segmented log described in segment.go.
//
// Concurrency: the mutating methods are called by one goroutine at a time
// (the writer), so the writer reads the index and its own segment fields
// without locking, and takes mu only to change what readers see: idx, segs,
// closed and each segment's lost list. Readers (Get, LoadLast, LoadNext,
// State, SubjectCounts) look up under mu.RLock and read the file after
// releasing it, so no lock is held across I/O; a read that fails because
// the segment was dropped meanwhile looks the sequence up again.
type fileStore struct {
	cfg  FileConfig
	fs   FS
	logf func(format string, args ...any)

	mu     sync.RWMutex
	idx    *liveIndex[fileLoc]
	segs   []*segment // ascending by name; the last is active
	closed bool

	// Writer-owned.
	active *segment
	// A new segment's first record is a floor record naming the one before
	// (prevSeg, 0 for the first ever); starting until it is written.
	starting bool
	prevSeg  uint64
	failed   error // a write or fsync failed: refuse writes until reopened
	msgs     batch // Append's records
	ctl      batch // deletes and floors
	one      [1]uint64

	// The background syncer (SyncInterval) sees the active segment through
	// these, not through the writer's fields.
	syncSeg atomic.Pointer[segment]
	dirty   atomic.Bool
	syncErr atomic.Pointer[error] // a background fsync failed
	stop    chan struct{}
	done    chan struct{}

	opened openStats
}

// openStats says how OpenFile read the segments (tests look at it).
type openStats struct{ indexed, scanned int }

// fileLoc is where a live message is: its record's segment and offset.
type fileLoc struct {
	seg *segment
	off int64
}

type segment struct {
	name uint64 // its first sequence, when it was created
	path string
	f    File

	// Writer-owned.
	size     int64
	zeroed   int64    // the file holds zeros (written ahead) up to here
	live     int      // live messages in it
	tombs    []uint64 // sequences its delete records remove
	recs     []entry  // its entries while active, for the index written when it is sealed
	dropping bool

	lost []entry // guarded by fileStore.mu: damaged records and ranges

	// Readers' view: the bytes known written (a record in the index lies
	// below it), and the last block read, which the next sequential reads
	// are served from instead of one pread each.
	committed atomic.Int64
	window    atomic.Pointer[readWindow]
}

// readWindow is an immutable copy of bytes [off, off+len(data)) of a
// segment, all below its committed size when read.
type readWindow struct {
	off  int64
	data []byte
}

// readWindowSize is how much a read that misses the window loads: a
// consumer reading in order then costs one pread per this many bytes.
const readWindowSize = 256 << 10

// readAt returns the n bytes at off, from the window when it holds them.
func (seg *segment) readAt(off int64, n int) ([]byte, error) {
	buf := make([]byte, n)
	if w := seg.window.Load(); w != nil && off >= w.off && off+int64(n) <= w.off+int64(len(w.data)) {
		copy(buf, w.data[off-w.off:])
		return buf, nil
	}
	limit := seg.committed.Load() - off
	if limit < int64(n) || n >= readWindowSize {
		_, err := seg.f.ReadAt(buf, off)
		return buf, err
	}
	w := &readWindow{off: off, data: make([]byte, min(int64(readWindowSize), limit))}
	if _, err := seg.f.ReadAt(w.data, off); err != nil {
		_, err = seg.f.ReadAt(buf, off)
		return buf, err
	}
	seg.window.Store(w)
	copy(buf, w.data)
	return buf, nil
}

// setSize records the segment's written size for readers (writer only);
// a size that shrank (a failed write cut back) drops the read window.
func (seg *segment) setSize(size int64) {
	if size < seg.size {
		seg.window.Store(nil)
	}
	seg.size = size
	seg.committed.Store(size)
}

// OpenFile opens (or creates) the file store in cfg.Dir, recovering what it
// finds: see recover.go.
func OpenFile(cfg FileConfig) (Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("store: FileConfig.Dir is empty: name the stream's directory")
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = defaultSegmentBytes
	}
	if cfg.Interval <= 0 {
		cfg.Interval = defaultInterval
	}
	s := &fileStore{cfg: cfg, fs: cfg.FS, logf: cfg.Log, idx: newLiveIndex[fileLoc]()}
	if s.fs == nil {
		s.fs = osFS{}
	}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	if err := s.fs.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("store: create stream directory: %w", err)
	}
	if err := s.recoverDir(); err != nil {
		for _, seg := range s.segs {
			_ = seg.f.Close()
		}
		return nil, err
	}
	s.syncSeg.Store(s.active)
	if cfg.Sync == SyncInterval {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.syncLoop()
	}
	return s, nil
}

func (s *fileStore) segPath(name uint64) string {
	return filepath.Join(s.cfg.Dir, fmt.Sprintf("%020d.blk", name))
}

func idxPath(segPath string) string { return segPath[:len(segPath)-len(".blk")] + ".idx" }

func (s *fileStore) syncLoop() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if s.dirty.Swap(false) {
				if seg := s.syncSeg.Load(); seg != nil {
					if err := seg.f.Sync(); err != nil {
						err = fmt.Errorf("store: fsync %s: %w (writes to this stream are refused until it is reopened)", seg.path, err)
						s.syncErr.CompareAndSwap(nil, &err)
						s.logf("%v", err)
						return
					}
				}
			}
		}
	}
}

// batch collects encoded records for one write.
type batch struct {
	buf  []byte
	ents []entry // offsets relative to buf
	tmp  []byte
}

func (b *batch) reset() {
	if cap(b.buf) > 4*defaultSegmentBytes {
		b.buf = nil // let a one-off huge batch go
	}
	b.buf, b.ents = b.buf[:0], b.ents[:0]
}

func (b *batch) add(kind byte, seq uint64, t int64, subject string, hdr, data []byte) {
	off := len(b.buf)
	b.buf = appendRecord(b.buf, kind, seq, t, subject, hdr, data)
	b.ents = append(b.ents, entry{kind: kind, off: int64(off), length: int64(len(b.buf) - off), seq: seq, time: t, subject: subject})
}

func (b *batch) addDeletes(seqs []uint64, now int64) {
	for len(seqs) > 0 {
		n := min(len(seqs), deletesPerRecord)
		b.tmp = appendDeletes(b.tmp[:0], seqs[:n])
		b.add(kindDelete, 0, now, "", nil, b.tmp)
		seqs = seqs[n:]
	}
}

func (b *batch) addFloor(floor, lastSeq uint64, lastTime int64, prevSeg uint64) {
	b.tmp = le.AppendUint64(b.tmp[:0], lastSeq)
	b.tmp = le.AppendUint64(b.tmp, prevSeg)
	b.add(kindFloor, floor, lastTime, "", nil, b.tmp)
}

func (s *fileStore) writable() error {
	if s.closed {
		return ErrClosed
	}
	if s.failed == nil {
		if err := s.syncErr.Load(); err != nil {
			s.failed = *err
		}
	}
	return s.failed
}

// fail refuses further writes: after a failed fsync the page cache may hold
// data that never reaches the disk, so only a reopen (which reads what is
// really there) can go on safely.
func (s *fileStore) fail(op, path string, err error) error {
	s.failed = fmt.Errorf("store: %s %s: %w (writes to this stream are refused until it is reopened)", op, path, err)
	return s.failed
}

// write appends b to the active segment and makes it durable per the sync
// policy (always, when force).
func (s *fileStore) write(b *batch, force bool) error {
	seg := s.active
	off := seg.size
	if _, err := seg.f.WriteAt(b.buf, off); err != nil {
		if terr := seg.f.Truncate(off); terr != nil {
			return s.fail("write", seg.path, errors.Join(err, terr))
		}
		seg.zeroed = off
		return fmt.Errorf("store: write %s: %w", seg.path, err)
	}
	if end := off + int64(len(b.buf)); s.cfg.Sync == SyncAlways && end > seg.zeroed {
		// Zeros ahead of the data, synced with it: the next appends
		// overwrite blocks the file already has, so their fdatasync writes
		// data only (no size or extent change to journal). Recovery takes
		// a zero tail for the end of the log; sealing and closing cut it.
		ahead := zeroBlock[:min(int64(len(zeroBlock)), max(s.cfg.SegmentBytes/8, 512))]
		if _, err := seg.f.WriteAt(ahead, end); err == nil {
			seg.zeroed = end + int64(len(ahead))
		}
	}
	if force || s.cfg.Sync == SyncAlways {
		if err := seg.f.Sync(); err != nil {
			return s.fail("fsync", seg.path, err)
		}
	} else if s.cfg.Sync == SyncInterval {
		s.dirty.Store(true)
	}
	seg.setSize(seg.size + int64(len(b.buf)))
	for _, e := range b.ents {
		e.off += off
		seg.recs = append(seg.recs, e)
	}
	return nil
}

func (s *fileStore) Append(msgs []Msg) error {
	if err := s.writable(); err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	size := 0
	for i := range msgs {
		m := &msgs[i]
		if err := checkMsg(m); err != nil {
			return err
		}
		size += recordSize(len(m.Subject), len(m.Header), len(m.Data))
	}
	if seg := s.active; seg.size > 0 && seg.size+int64(size) > s.cfg.SegmentBytes && s.idx.lastSeq+1 != seg.name {
		if err := s.roll(); err != nil {
			return err
		}
	}
	now := time.Now().UnixNano()
	b := &s.msgs
	b.reset()
	if s.starting {
		b.addFloor(s.idx.firstSeq(), s.idx.lastSeq, s.idx.lastTime, s.prevSeg)
	}
	seq := s.idx.lastSeq
	for i := range msgs {
		m := &msgs[i]
		if m.Time == 0 {
			m.Time = now
		}
		seq++
		b.add(kindMsg, seq, m.Time, m.Subject, m.Header, m.Data)
	}
	seg, base := s.active, s.active.size
	if err := s.write(b, false); err != nil {
		return err
	}
	s.starting = false
	s.mu.Lock()
	i := 0
	for _, e := range b.ents {
		if e.kind == kindMsg {
			msgs[i].Seq = e.seq
			i++
			s.idx.add(e.seq, e.subject, uint64(e.length)-16, e.time, fileLoc{seg, base + e.off})
		}
	}
	s.mu.Unlock()
	seg.live += len(msgs)
	return nil
}

// zeroBlock is what a SyncAlways segment is extended with ahead of its data.
var zeroBlock [1 << 20]byte

// cutZeros trims the zeros written ahead of a segment's data.
func (s *fileStore) cutZeros(seg *segment) error {
	if seg.zeroed <= seg.size {
		return nil
	}
	if err := seg.f.Truncate(seg.size); err != nil {
		return err
	}
	seg.zeroed = seg.size
	return nil
}

// roll seals the active segment (fsync, index) and starts a new one.
func (s *fileStore) roll() error {
	old := s.active
	if err := s.cutZeros(old); err != nil {
		return s.fail("truncate", old.path, err)
	}
	if err := old.f.Sync(); err != nil {
		return s.fail("fsync", old.path, err)
	}
	seg, err := s.createSegment(s.idx.lastSeq + 1)
	if err != nil {
		return err
	}
	s.writeIndex(old, old.recs)
	// The new segment will list about as many entries: reuse the slice.
	clear(old.recs)
	seg.recs, old.recs = old.recs[:0], nil
	s.mu.Lock()
	s.segs = append(s.segs, seg)
	s.mu.Unlock()
	s.active = seg
	s.starting, s.prevSeg = true, old.name
	s.syncSeg.Store(seg)
	if old.live == 0 {
		return s.dropEmptySegments()
	}
	return nil
}

func (s *fileStore) createSegment(name uint64) (*segment, error) {
	path := s.segPath(name)
	f, err := s.fs.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("store: create segment %s: %w", path, err)
	}
	// The directory entry must be durable before anything in the file counts.
	if err := s.fs.SyncDir(s.cfg.Dir); err != nil {
		_ = f.Close()
		_ = s.fs.Remove(path)
		return nil, fmt.Errorf("store: fsync directory %s: %w", s.cfg.Dir, err)
	}
	return &segment{name: name, path: path, f: f}, nil
}

// segFor returns the segment whose range holds seq: segments are named by
// their first sequence and hold everything below the next one's name.
func (s *fileStore) segFor(seq uint64) *segment {
	i, found := slices.BinarySearchFunc(s.segs, seq, func(g *segment, seq uint64) int {
		switch {
		case g.name < seq:
			return -1
		case g.name > seq:
			return 1
		}
		return 0
	})
	if !found {
		i--
	}
	if i < 0 {
		return nil
	}
	return s.segs[i]
}

// dropEmptySegments removes sealed segments with no live message left.
// Their delete records may still be all that keeps a message in an older,
// surviving segment deleted, so those are first written again into the
// active segment, with a floor record for the purges they held, and made
// durable; only then do the files go.
func (s *fileStore) dropEmptySegments() error {
	var gone []*segment
	for _, g := range s.segs {
		if g != s.active && g.live == 0 {
			g.dropping = true
			gone = append(gone, g)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	first := s.idx.firstSeq()
	var carry []uint64
	for _, g := range gone {
		for _, t := range g.tombs {
			if h := s.segFor(t); t >= first && h != nil && !h.dropping {
				carry = append(carry, t)
			}
		}
	}
	b := &s.ctl
	b.reset()
	b.addDeletes(carry, time.Now().UnixNano())
	b.addFloor(first, s.idx.lastSeq, s.idx.lastTime, 0)
	if err := s.write(b, true); err != nil {
		for _, g := range gone {
			g.dropping = false
		}
		return err
	}
	s.active.tombs = append(s.active.tombs, carry...)
	s.mu.Lock()
	s.segs = slices.DeleteFunc(s.segs, func(g *segment) bool { return g.dropping })
	s.mu.Unlock()
	for _, g := range gone {
		_ = g.f.Close()
		if err := s.fs.Remove(g.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.logf("store: remove emptied segment %s: %v", g.path, err)
		}
		if err := s.fs.Remove(idxPath(g.path)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.logf("store: remove index %s: %v", idxPath(g.path), err)
		}
	}
	if err := s.fs.SyncDir(s.cfg.Dir); err != nil {
		s.logf("store: fsync directory %s: %v", s.cfg.Dir, err)
	}
	return nil
}

// release notes that a live message of seg went; it reports whether seg is
// now a sealed segment with none left.
func (s *fileStore) release(seg *segment) bool {
	seg.live--
	return seg.live == 0 && seg != s.active
}

func (s *fileStore) Delete(seq uint64) (bool, error) {
	if err := s.writable(); err != nil {
		return false, err
	}
	if _, ok := s.idx.get(seq); !ok {
		return false, nil
	}
	b := &s.ctl
	b.reset()
	s.one[0] = seq
	b.addDeletes(s.one[:], time.Now().UnixNano())
	if err := s.write(b, false); err != nil {
		return false, err
	}
	s.mu.Lock()
	sl, _ := s.idx.remove(seq)
	s.mu.Unlock()
	s.active.tombs = append(s.active.tombs, seq)
	if s.release(sl.loc.seg) {
		return true, s.dropEmptySegments()
	}
	return true, nil
}

func (s *fileStore) Purge(filter string, upTo, keep uint64) (uint64, error) {
	if err := s.writable(); err != nil {
		return 0, err
	}
	floor, seqs := s.idx.purgePlan(filter, upTo, keep)
	if floor > 0 {
		return s.compact(floor)
	}
	if len(seqs) == 0 {
		return 0, nil
	}
	b := &s.ctl
	b.reset()
	b.addDeletes(seqs, time.Now().UnixNano())
	if err := s.write(b, false); err != nil {
		return 0, err
	}
	emptied := false
	s.mu.Lock()
	for _, seq := range seqs {
		sl, _ := s.idx.remove(seq)
		emptied = s.release(sl.loc.seg) || emptied
	}
	s.mu.Unlock()
	s.active.tombs = append(s.active.tombs, seqs...)
	if emptied {
		return uint64(len(seqs)), s.dropEmptySegments()
	}
	return uint64(len(seqs)), nil
}

func (s *fileStore) Compact(seq uint64) (uint64, error) {
	if err := s.writable(); err != nil {
		return 0, err
	}
	return s.compact(seq)
}

// compact removes everything below floor with one floor record.
func (s *fileStore) compact(floor uint64) (uint64, error) {
	beyond := floor > s.idx.lastSeq+1
	if !beyond && floor <= s.idx.firstSeq() {
		return 0, nil
	}
	lastSeq := s.idx.lastSeq
	if beyond {
		lastSeq = floor - 1
	}
	b := &s.ctl
	b.reset()
	b.addFloor(floor, lastSeq, s.idx.lastTime, 0)
	if err := s.write(b, false); err != nil {
		return 0, err
	}
	emptied := false
	s.mu.Lock()
	s.idx.setLast(lastSeq, s.idx.lastTime)
	n := s.idx.removeBelow(floor, func(sl slot[fileLoc]) {
		emptied = s.release(sl.loc.seg) || emptied
	})
	// Damage to a purged message no longer loses anything (a reopen agrees).
	for _, g := range s.segs {
		g.lost = slices.DeleteFunc(g.lost, func(e entry) bool { return e.seq != 0 && e.seq < floor })
	}
	s.mu.Unlock()
	if emptied {
		return n, s.dropEmptySegments()
	}
	return n, nil
}

// errRead marks a read that failed for a reason other than damage.
type errRead struct{ err error }

func (e errRead) Error() string { return e.err.Error() }
func (e errRead) Unwrap() error { return e.err }

// readMsg reads and verifies a live message's record.
func (s *fileStore) readMsg(sl slot[fileLoc]) (Msg, error) {
	seg := sl.loc.seg
	buf, err := seg.readAt(sl.loc.off, int(sl.size+16)) // record length: Size - 16 + header
	if err != nil {
		return Msg{}, errRead{err}
	}
	h := parseHeader(buf)
	if !h.plausible() || int(h.length) != len(buf) || h.kind != kindMsg || h.seq != sl.seq ||
		crc32Castagnoli(buf[4:]) != h.crc || string(buf[recHeaderSize:recHeaderSize+h.subjLen]) != sl.subject {
		return Msg{Seq: sl.seq}, fmt.Errorf("%w: seq %d in %s at offset %d fails its checksum", ErrCorrupt, sl.seq, seg.path, sl.loc.off)
	}
	m := Msg{Seq: sl.seq, Subject: sl.subject, Time: h.time}
	body := buf[recHeaderSize+h.subjLen:]
	if h.hdrLen > 0 {
		m.Header = body[:h.hdrLen:h.hdrLen]
	}
	if len(body) > h.hdrLen {
		m.Data = body[h.hdrLen:]
	}
	return m, nil
}

// lookup finds a message with find (under the read lock) and reads it.
func (s *fileStore) lookup(find func() (slot[fileLoc], bool)) (Msg, error) {
	for {
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			return Msg{}, ErrClosed
		}
		sl, ok := find()
		s.mu.RUnlock()
		if !ok {
			return Msg{}, ErrNotFound
		}
		m, err := s.readMsg(sl)
		if err == nil {
			return m, nil
		}
		if errors.Is(err, ErrCorrupt) {
			s.noteDamage(sl, err)
			return m, err
		}
		s.mu.RLock()
		cur, live := s.idx.get(sl.seq)
		closed := s.closed
		s.mu.RUnlock()
		if closed {
			return Msg{}, ErrClosed
		}
		if live && cur.loc == sl.loc {
			return Msg{}, fmt.Errorf("store: read seq %d from %s: %w", sl.seq, sl.loc.seg.path, err)
		}
		// The segment went while we read it: look again.
	}
}

// noteDamage records a message found damaged at read time in State.Lost.
func (s *fileStore) noteDamage(sl slot[fileLoc], err error) {
	s.mu.Lock()
	seg := sl.loc.seg
	for _, e := range seg.lost {
		if e.seq == sl.seq {
			s.mu.Unlock()
			return
		}
	}
	seg.lost = append(seg.lost, entry{kind: kindDamaged, off: sl.loc.off, length: int64(sl.size + 16), seq: sl.seq})
	s.mu.Unlock()
	s.logf("%v; reported as lost", err)
}

func (s *fileStore) Get(seq uint64) (Msg, error) {
	m, err := s.lookup(func() (slot[fileLoc], bool) { return s.idx.get(seq) })
	if errors.Is(err, ErrNotFound) {
		if lerr := s.lostErr(seq); lerr != nil {
			return Msg{Seq: seq}, lerr
		}
	}
	return m, err
}

// lostErr explains a sequence that is not there because it was lost.
func (s *fileStore) lostErr(seq uint64) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, g := range s.segs {
		for _, e := range g.lost {
			if e.seq == seq {
				return fmt.Errorf("%w: seq %d in %s was found damaged or missing when the store was opened (see State.Lost)", ErrCorrupt, seq, g.path)
			}
		}
	}
	return nil
}

func (s *fileStore) LoadLast(filter string) (Msg, error) {
	return s.lookup(func() (slot[fileLoc], bool) { return s.idx.last(filter) })
}

func (s *fileStore) LoadNext(filter string, start uint64) (Msg, error) {
	return s.lookup(func() (slot[fileLoc], bool) { return s.idx.next(filter, start) })
}

func (s *fileStore) NextSeq(filter string, start uint64) (uint64, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sl, ok := s.idx.next(filter, start)
	return sl.seq, ok
}

func (s *fileStore) Deleted() []uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idx.deleted()
}

func (s *fileStore) SubjectCounts(filter string) map[string]uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idx.counts(filter)
}

func (s *fileStore) SubjectMsgs(subject string) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idx.msgsOn(subject)
}

func (s *fileStore) State() State {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.idx.state()
	var lost LostData
	damaged := false
	for _, g := range s.segs {
		for _, e := range g.lost {
			damaged = true
			lost.Bytes += uint64(e.length)
			if e.seq != 0 {
				lost.Msgs = append(lost.Msgs, e.seq)
			}
		}
	}
	if damaged {
		slices.Sort(lost.Msgs)
		st.Lost = &lost
	}
	return st
}

func (s *fileStore) Close() error {
	if s.closed {
		return nil
	}
	if s.stop != nil {
		close(s.stop)
		<-s.done
	}
	var err error
	if s.failed == nil {
		if terr := s.cutZeros(s.active); terr != nil {
			err = fmt.Errorf("store: truncate %s: %w", s.active.path, terr)
		}
	}
	if s.failed == nil && s.cfg.Sync != SyncNever {
		if serr := s.active.f.Sync(); serr != nil {
			err = fmt.Errorf("store: fsync %s: %w", s.active.path, serr)
		}
	}
	s.mu.Lock()
	s.closed = true
	s.idx = newLiveIndex[fileLoc]()
	segs := s.segs
	s.mu.Unlock()
	for _, g := range segs {
		if cerr := g.f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("store: close %s: %w", g.path, cerr)
		}
	}
	return err
}
