package store

import (
	"fmt"
	"time"
)

// Restorer is how a stream restored from a backup is written: messages
// keep the sequences and times they had in the stream they come from, and
// the sequences that stream had deleted stay deleted here. Both stores
// implement it; like Append, one goroutine at a time calls it.
type Restorer interface {
	// AppendAt stores msgs with the Seq and Time each carries: ascending
	// and above LastSeq. The sequences skipped before a message count as
	// deleted (interior gaps, or the purged start of an empty store).
	AppendAt(msgs []Msg) error
	// SkipTo moves LastSeq up to last (LastTime to t), the sequences in
	// between counting as deleted; a last at or below LastSeq does nothing.
	SkipTo(last uint64, t int64) error
}

// checkAt refuses a restored batch whose sequences are not ascending
// above lastSeq.
func checkAt(msgs []Msg, lastSeq uint64) error {
	for i := range msgs {
		m := &msgs[i]
		if err := checkMsg(m); err != nil {
			return err
		}
		if m.Seq <= lastSeq {
			return fmt.Errorf("store: restored message seq %d is not above seq %d", m.Seq, lastSeq)
		}
		if m.Time == 0 {
			m.Time = time.Now().UnixNano()
		}
		lastSeq = m.Seq
	}
	return nil
}

func (m *memStore) AppendAt(msgs []Msg) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if err := checkAt(msgs, m.idx.lastSeq); err != nil {
		return err
	}
	for i := range msgs {
		m.keep(&msgs[i]) // the index takes any ascending sequence: a gap is a deleted run
	}
	return nil
}

func (m *memStore) SkipTo(last uint64, t int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.idx.setLast(last, t)
	return nil
}

// AppendAt writes each gap as delete records (so recovery knows the
// sequences were deleted, not lost) in the same write as the messages;
// a gap before the first message of an empty store is a floor record.
func (s *fileStore) AppendAt(msgs []Msg) error {
	if err := s.writable(); err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := checkAt(msgs, s.idx.lastSeq); err != nil {
		return err
	}
	size := 0
	for i := range msgs {
		size += recordSize(len(msgs[i].Subject), len(msgs[i].Header), len(msgs[i].Data))
	}
	if seg := s.active; seg.size > 0 && seg.size+int64(size) > s.cfg.SegmentBytes && s.idx.lastSeq+1 != seg.name {
		if err := s.roll(); err != nil {
			return err
		}
	}
	b := &s.msgs
	b.reset()
	prev := s.idx.lastSeq
	switch {
	case s.idx.msgs == 0 && msgs[0].Seq > prev+1:
		// An empty store starting past its end (a purged start): one
		// floor record says so.
		prev = msgs[0].Seq - 1
		b.addFloor(prev+1, prev, s.idx.lastTime, s.startingPrev())
	case s.starting:
		b.addFloor(s.idx.firstSeq(), s.idx.lastSeq, s.idx.lastTime, s.prevSeg)
	}
	var tombs []uint64
	for i := range msgs {
		m := &msgs[i]
		if m.Seq > prev+1 {
			tombs = addGap(b, tombs, prev+1, m.Seq-1, m.Time)
		}
		b.add(kindMsg, m.Seq, m.Time, m.Subject, m.Header, m.Data)
		prev = m.Seq
	}
	seg, base := s.active, s.active.size
	if err := s.write(b, false); err != nil {
		return err
	}
	s.starting = false
	s.mu.Lock()
	for _, e := range b.ents {
		if e.kind == kindMsg {
			s.idx.add(e.seq, e.subject, uint64(e.length)-16, e.time, fileLoc{seg, base + e.off})
		}
	}
	s.mu.Unlock()
	seg.live += len(msgs)
	s.active.tombs = append(s.active.tombs, tombs...)
	return nil
}

// addGap adds delete records for sequences from..to to b, a record at a
// time, and returns tombs with them.
func addGap(b *batch, tombs []uint64, from, to uint64, t int64) []uint64 {
	for from <= to {
		n := min(to-from+1, deletesPerRecord)
		start := len(tombs)
		for q := from; q < from+n; q++ {
			tombs = append(tombs, q)
		}
		b.addDeletes(tombs[start:], t)
		from += n
	}
	return tombs
}

// startingPrev is the previous segment a new segment's first floor
// record names (0 once it has one).
func (s *fileStore) startingPrev() uint64 {
	if s.starting {
		return s.prevSeg
	}
	return 0
}

func (s *fileStore) SkipTo(last uint64, t int64) error {
	if err := s.writable(); err != nil {
		return err
	}
	if last <= s.idx.lastSeq {
		return nil
	}
	b := &s.ctl
	b.reset()
	var tombs []uint64
	if s.idx.msgs == 0 {
		// Nothing live: a floor past the end says it all.
		b.addFloor(last+1, last, t, s.startingPrev())
	} else {
		if s.starting {
			b.addFloor(s.idx.firstSeq(), s.idx.lastSeq, s.idx.lastTime, s.prevSeg)
		}
		tombs = addGap(b, nil, s.idx.lastSeq+1, last, t)
		// This floor record carries the new LastSeq for recovery; its
		// floor is the first live sequence, so it removes nothing.
		b.addFloor(s.idx.firstSeq(), last, t, 0)
	}
	if err := s.write(b, false); err != nil {
		return err
	}
	s.starting = false
	s.mu.Lock()
	s.idx.setLast(last, t)
	s.mu.Unlock()
	s.active.tombs = append(s.active.tombs, tombs...)
	return nil
}
