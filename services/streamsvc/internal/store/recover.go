package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// recoverDir rebuilds the store from its directory: sealed segments from their
// indexes (or by scanning them when an index is missing, damaged or stale),
// the last segment always by scanning, cutting off a torn tail. Then the
// records are replayed, order-independently: a message is live unless a
// delete record names it or a floor record is above it.
func (s *fileStore) recoverDir() error {
	names, err := s.fs.ReadDirNames(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("store: list stream directory: %w", err)
	}
	var segNames []uint64
	indexed := map[uint64]bool{}
	for _, n := range names {
		base, ext, _ := strings.Cut(n, ".")
		seq, perr := strconv.ParseUint(base, 10, 64)
		switch {
		case strings.HasSuffix(n, ".tmp"):
			_ = s.fs.Remove(filepath.Join(s.cfg.Dir, n)) // an index write cut short
		case len(base) != 20 || perr != nil || seq == 0:
		case ext == "blk":
			segNames = append(segNames, seq)
		case ext == "idx":
			indexed[seq] = true
		}
	}
	slices.Sort(segNames)
	for seq := range indexed {
		if _, ok := slices.BinarySearch(segNames, seq); !ok {
			_ = s.fs.Remove(idxPath(s.segPath(seq)))
		}
	}
	if len(segNames) == 0 {
		seg, err := s.createSegment(1)
		if err != nil {
			return err
		}
		s.segs, s.active, s.starting = []*segment{seg}, seg, true
		return nil
	}

	in := interner{}
	contents := make([]segContent, len(segNames))
	for i, name := range segNames {
		path := s.segPath(name)
		f, err := s.fs.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("store: open segment %s: %w", path, err)
		}
		seg := &segment{name: name, path: path, f: f}
		s.segs = append(s.segs, seg)
		if contents[i], err = s.loadSegment(seg, i == len(segNames)-1, indexed[name], in); err != nil {
			return err
		}
	}
	s.active = s.segs[len(s.segs)-1]
	if s.active.size == 0 {
		// Created by a roll that a crash cut short: nothing, not even a
		// delete or floor, went into it since, so the segment before it in
		// the directory is the one it followed.
		s.starting = true
		if n := len(s.segs); n > 1 {
			s.prevSeg = s.segs[n-2].name
		}
	}
	s.replay(contents)
	return s.dropEmptySegments()
}

func (s *fileStore) loadSegment(seg *segment, last, hasIdx bool, in interner) (segContent, error) {
	fi, err := seg.f.Stat()
	if err != nil {
		return segContent{}, fmt.Errorf("store: stat segment %s: %w", seg.path, err)
	}
	size := fi.Size()
	seg.setSize(size)
	if !last && hasIdx {
		c, err := s.loadIndexed(seg, size, in)
		if err == nil {
			s.opened.indexed++
			return c, nil
		}
		var rerr errRead
		if errors.As(err, &rerr) {
			return segContent{}, err
		}
		s.logf("store: index %s unusable (%v); rebuilding it from the segment", idxPath(seg.path), err)
	}
	c, err := scanSegment(seg.f, size, seg.name, last, in)
	if err != nil {
		return segContent{}, fmt.Errorf("store: read segment %s: %w", seg.path, err)
	}
	s.opened.scanned++
	if !last {
		s.writeIndex(seg, c.entries)
		return c, nil
	}
	if c.end < size {
		// Nothing valid follows: a write that was never acknowledged, or
		// the zeros a SyncAlways segment is extended with (not news).
		if !allZero(seg.f, c.end, size) {
			s.logf("store: %s: cut off %d bytes of an incomplete write at offset %d", seg.path, size-c.end, c.end)
		}
		if err := seg.f.Truncate(c.end); err != nil {
			return c, fmt.Errorf("store: truncate torn tail of %s: %w", seg.path, err)
		}
		if err := seg.f.Sync(); err != nil {
			return c, fmt.Errorf("store: fsync %s: %w", seg.path, err)
		}
		seg.setSize(c.end)
	}
	seg.recs = c.entries
	if hasIdx {
		// Sealed before a crash undid the next segment: it is open again.
		_ = s.fs.Remove(idxPath(seg.path))
	}
	return c, nil
}

// loadIndexed reads a sealed segment's entries from its index, and its
// delete and floor records from the segment.
func (s *fileStore) loadIndexed(seg *segment, size int64, in interner) (segContent, error) {
	b, err := s.readFile(idxPath(seg.path))
	if err != nil {
		return segContent{}, err
	}
	ents, err := decodeIndex(b, seg.name, size, in)
	if err != nil {
		return segContent{}, err
	}
	c := segContent{entries: ents, end: size}
	r := &segReader{f: seg.f, size: size}
	for i := range ents {
		e := &ents[i]
		if e.kind != kindDelete && e.kind != kindFloor {
			continue
		}
		h, rec, ok, err := r.recordAt(e.off)
		if err != nil {
			return c, errRead{fmt.Errorf("store: read segment %s: %w", seg.path, err)}
		}
		if !ok || h.kind != e.kind || int64(h.length) != e.length || c.decodeControl(h, rec[recHeaderSize:]) != nil {
			*e = entry{kind: kindDamaged, off: e.off, length: e.length}
		}
	}
	return c, nil
}

func (s *fileStore) readFile(path string) ([]byte, error) {
	f, err := s.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > 1<<30 {
		return nil, errors.New("too large")
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

// writeIndex writes a sealed segment's index (write, fsync, rename, fsync
// the directory). The index only saves a scan at open, so failing to write
// it is logged, not returned.
func (s *fileStore) writeIndex(seg *segment, ents []entry) {
	path := idxPath(seg.path)
	tmp := path + ".tmp"
	err := func() error {
		f, err := s.fs.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
		if err != nil {
			return err
		}
		_, err = f.WriteAt(encodeIndex(seg.name, seg.size, ents), 0)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = s.fs.Rename(tmp, path)
		}
		if err == nil {
			err = s.fs.SyncDir(s.cfg.Dir)
		}
		return err
	}()
	if err != nil {
		_ = s.fs.Remove(tmp)
		s.logf("store: write index %s: %v (the segment will be scanned at the next open)", path, err)
	}
}

// replay builds the index from every segment's entries, and State.Lost
// from the damage found and from sequences that should be there but are not.
func (s *fileStore) replay(contents []segContent) {
	var floor, lastSeq uint64
	var lastTime int64
	deleted := map[uint64]struct{}{}
	for i, c := range contents {
		for _, f := range c.floors {
			floor = max(floor, f.floor)
			if f.lastSeq > lastSeq {
				lastSeq, lastTime = f.lastSeq, f.lastTime
			}
		}
		for _, d := range c.deletes {
			deleted[d] = struct{}{}
		}
		s.segs[i].tombs = c.deletes
	}
	gone := func(seq uint64) bool {
		_, del := deleted[seq]
		return seq < floor || del
	}

	prev := uint64(0)
	for i, c := range contents {
		seg := s.segs[i]
		for _, e := range c.entries {
			if e.kind != kindMsg {
				continue
			}
			if e.seq >= lastSeq {
				lastSeq, lastTime = e.seq, e.time
			}
			if e.seq <= prev {
				s.logf("store: %s: record at offset %d repeats seq %d; ignored", seg.path, e.off, e.seq)
				continue
			}
			prev = e.seq
			if gone(e.seq) {
				continue
			}
			s.idx.add(e.seq, e.subject, uint64(e.length)-16, e.time, fileLoc{seg, e.off})
			seg.live++
		}
	}

	claimed := map[uint64]bool{}
	for i, c := range contents {
		seg := s.segs[i]
		for _, e := range c.entries {
			if e.kind != kindDamaged {
				continue
			}
			if e.seq != 0 {
				if _, dup := s.idx.get(e.seq); dup || claimed[e.seq] {
					e.seq = 0
				} else if gone(e.seq) {
					s.logf("store: %s: damaged record at offset %d (%d bytes) held seq %d, which was deleted anyway", seg.path, e.off, e.length, e.seq)
					continue
				}
			}
			if e.seq != 0 {
				claimed[e.seq] = true
				lastSeq = max(lastSeq, e.seq)
				s.logf("store: %s: damaged record at offset %d (%d bytes): seq %d is lost; the rest of the stream is served", seg.path, e.off, e.length, e.seq)
			} else {
				s.logf("store: %s: damaged data at offset %d (%d bytes) skipped: any messages in it are lost; the rest of the stream is served", seg.path, e.off, e.length)
			}
			seg.lost = append(seg.lost, e)
		}
	}
	s.findMissing(contents, gone, claimed)
	s.idx.setLast(lastSeq, lastTime)
}

// maxMissingRun bounds how many missing sequences in a row recovery lists
// one by one; a longer run (a damaged floor record could make one) is only
// logged.
const maxMissingRun = 1 << 16

// findMissing reports as lost the sequences a segment should hold but that
// no record, delete or floor accounts for: messages in a damaged range
// whose headers could not be read, or cut off the end of a sealed segment.
// A segment named N holds N up to its last message, and up to the next
// segment's name when that one's first floor record says it followed this
// one directly.
func (s *fileStore) findMissing(contents []segContent, gone func(uint64) bool, claimed map[uint64]bool) {
	for i, c := range contents {
		seg := s.segs[i]
		var runs [][2]uint64 // [from, to)
		expect := seg.name
		for _, e := range c.entries {
			if e.kind == kindMsg || (e.kind == kindDamaged && claimed[e.seq]) {
				if e.seq > expect {
					runs = append(runs, [2]uint64{expect, e.seq})
				}
				expect = max(expect, e.seq+1)
			}
		}
		if i+1 < len(contents) {
			next := s.segs[i+1].name
			for _, f := range contents[i+1].floors {
				if f.prevSeg == seg.name && next > expect {
					runs = append(runs, [2]uint64{expect, next})
					break
				}
			}
		}
		for _, r := range runs {
			var missing []uint64
			for q := r[0]; q < r[1] && len(missing) <= maxMissingRun; q++ {
				if !gone(q) && !claimed[q] {
					missing = append(missing, q)
				}
			}
			if len(missing) > maxMissingRun {
				s.logf("store: %s: more than %d sequences from %d to %d are missing with no delete recorded; not listed as lost one by one", seg.path, maxMissingRun, r[0], r[1]-1)
				continue
			}
			if len(missing) == 0 {
				continue
			}
			s.logf("store: %s: seqs %d to %d have no record and were not deleted: %d messages lost", seg.path, missing[0], missing[len(missing)-1], len(missing))
			for _, q := range missing {
				seg.lost = append(seg.lost, entry{kind: kindDamaged, seq: q})
			}
		}
	}
}

// allZero reports whether bytes [from, to) of f are all zero.
func allZero(f File, from, to int64) bool {
	buf := make([]byte, 64<<10)
	for off := from; off < to; {
		n := min(int64(len(buf)), to-off)
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return false
		}
		for _, b := range buf[:n] {
			if b != 0 {
				return false
			}
		}
		off += n
	}
	return true
}
