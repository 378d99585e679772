package store

import (
	"cmp"
	"slices"
)

// liveIndex is the in-memory view both stores answer queries from: the live
// messages in sequence order, per-subject counts, and the sequence
// counters. L is where a store keeps a message's body: the bytes themselves
// for the memory store, a segment position for the file store.
//
// Slots are kept in a slice sorted by sequence rather than a map so that
// LoadNext walks messages in order; a deleted slot stays as a hole (size 0)
// until holes outnumber live slots, when the slice is compacted, so memory
// follows the live count even for a KV-style stream whose oldest key pins
// FirstSeq far behind LastSeq.
type liveIndex[L any] struct {
	slots    []slot[L] // ascending seq; first and last are live when non-empty
	holes    int       // deleted slots still in slots
	lastSeq  uint64
	lastTime int64
	msgs     uint64
	bytes    uint64
	subjects map[string]subjectInfo
}

type slot[L any] struct {
	seq     uint64
	subject string
	size    uint64 // Size of the message; 0 marks a hole
	time    int64
	loc     L
}

type subjectInfo struct {
	msgs  uint64
	first uint64 // no live message of the subject is below this (a bound, not exact)
	last  uint64 // the subject's newest live sequence (exact)
}

func newLiveIndex[L any]() *liveIndex[L] {
	return &liveIndex[L]{subjects: map[string]subjectInfo{}}
}

func (x *liveIndex[L]) firstSeq() uint64 {
	if len(x.slots) == 0 {
		return x.lastSeq + 1
	}
	return x.slots[0].seq
}

func (x *liveIndex[L]) state() State {
	st := State{
		Msgs:     x.msgs,
		Bytes:    x.bytes,
		FirstSeq: x.firstSeq(),
		LastSeq:  x.lastSeq,
		LastTime: x.lastTime,
	}
	if x.msgs > 0 {
		st.FirstTime = x.slots[0].time
		st.NumDeleted = int(st.LastSeq - st.FirstSeq + 1 - x.msgs)
	}
	return st
}

// setLast moves LastSeq forward (compaction past the end, or recovery).
func (x *liveIndex[L]) setLast(seq uint64, t int64) {
	if seq > x.lastSeq {
		x.lastSeq, x.lastTime = seq, t
	}
}

// add records a new live message; seq must exceed every sequence present.
func (x *liveIndex[L]) add(seq uint64, subject string, size uint64, t int64, loc L) {
	x.slots = append(x.slots, slot[L]{seq: seq, subject: subject, size: size, time: t, loc: loc})
	x.msgs++
	x.bytes += size
	x.setLast(seq, t)
	si, ok := x.subjects[subject]
	if !ok {
		si.first = seq
	}
	si.msgs++
	si.last = seq
	x.subjects[subject] = si
}

// find returns the slot index holding seq (live or hole), or -1.
func (x *liveIndex[L]) find(seq uint64) int {
	n := len(x.slots)
	if n == 0 || seq < x.slots[0].seq || seq > x.slots[n-1].seq {
		return -1
	}
	// Without holes below it, a sequence sits at its offset from the first.
	if i := seq - x.slots[0].seq; i < uint64(n) && x.slots[i].seq == seq {
		return int(i)
	}
	i, ok := slices.BinarySearchFunc(x.slots, seq, cmpSlot[L])
	if !ok {
		return -1
	}
	return i
}

// lowerBound returns the index of the first slot with a sequence >= seq.
func (x *liveIndex[L]) lowerBound(seq uint64) int {
	n := len(x.slots)
	switch {
	case n == 0 || seq <= x.slots[0].seq:
		return 0
	case seq > x.slots[n-1].seq:
		return n
	}
	// As in find: without holes below it, seq sits at its offset (the
	// common case of a consumer reading on, which a binary search over a
	// large stream made cost a cache miss per step).
	if i := seq - x.slots[0].seq; i < uint64(n) && x.slots[i].seq == seq {
		return int(i)
	}
	i, _ := slices.BinarySearchFunc(x.slots, seq, cmpSlot[L])
	return i
}

func cmpSlot[L any](s slot[L], seq uint64) int { return cmp.Compare(s.seq, seq) }

func (x *liveIndex[L]) get(seq uint64) (slot[L], bool) {
	i := x.find(seq)
	if i < 0 || x.slots[i].size == 0 {
		return slot[L]{}, false
	}
	return x.slots[i], true
}

// remove deletes seq and returns what it held.
func (x *liveIndex[L]) remove(seq uint64) (slot[L], bool) {
	i := x.find(seq)
	if i < 0 || x.slots[i].size == 0 {
		return slot[L]{}, false
	}
	s := x.slots[i]
	x.removeAt(i)
	x.tidy()
	return s, true
}

// removeAt turns live slot i into a hole; the caller tidies afterwards.
func (x *liveIndex[L]) removeAt(i int) {
	s := x.slots[i]
	x.slots[i] = slot[L]{seq: s.seq} // drop the references, keep the order
	x.holes++
	x.msgs--
	x.bytes -= s.size
	si := x.subjects[s.subject]
	si.msgs--
	if si.msgs == 0 {
		delete(x.subjects, s.subject)
		return
	}
	if si.first == s.seq {
		si.first = s.seq + 1
	}
	if si.last == s.seq {
		// Only Delete removes a subject's newest message while older ones
		// stay (purges and compactions go oldest first), so this walk is rare.
		for j := i - 1; j >= 0; j-- {
			if x.slots[j].size != 0 && x.slots[j].subject == s.subject {
				si.last = x.slots[j].seq
				break
			}
		}
	}
	x.subjects[s.subject] = si
}

// tidy drops holes at both ends and compacts once holes outnumber live slots.
func (x *liveIndex[L]) tidy() {
	lo, hi := 0, len(x.slots)
	for lo < hi && x.slots[lo].size == 0 {
		lo++
	}
	for hi > lo && x.slots[hi-1].size == 0 {
		hi--
	}
	x.holes -= lo + len(x.slots) - hi
	switch {
	case lo == hi:
		x.slots = nil
	case x.holes > 64 && x.holes > hi-lo-x.holes:
		live := make([]slot[L], 0, (hi-lo-x.holes)*5/4)
		for _, s := range x.slots[lo:hi] {
			if s.size != 0 {
				live = append(live, s)
			}
		}
		x.slots, x.holes = live, 0
	default:
		x.slots = x.slots[lo:hi]
	}
}

// removeBelow removes every live message with seq < floor, calling gone for
// each before it goes, and returns how many went.
func (x *liveIndex[L]) removeBelow(floor uint64, gone func(slot[L])) uint64 {
	var n uint64
	for i := 0; i < len(x.slots) && x.slots[i].seq < floor; i++ {
		if x.slots[i].size == 0 {
			continue
		}
		if gone != nil {
			gone(x.slots[i])
		}
		x.removeAt(i)
		n++
	}
	x.tidy()
	return n
}

// last returns the newest live message matching filter.
func (x *liveIndex[L]) last(filter string) (slot[L], bool) {
	if len(x.slots) == 0 {
		return slot[L]{}, false
	}
	if matchesAll(filter) {
		return x.slots[len(x.slots)-1], true
	}
	var best uint64
	if isLiteral(filter) {
		si, ok := x.subjects[filter]
		if !ok {
			return slot[L]{}, false
		}
		best = si.last
	} else {
		for subj, si := range x.subjects {
			if si.last > best && subjectMatch(filter, subj) {
				best = si.last
			}
		}
		if best == 0 {
			return slot[L]{}, false
		}
	}
	return x.get(best)
}

// next returns the first live message with seq >= start matching filter.
func (x *liveIndex[L]) next(filter string, start uint64) (slot[L], bool) {
	all, literal := matchesAll(filter), isLiteral(filter)
	end := len(x.slots)
	if literal {
		si, ok := x.subjects[filter]
		if !ok || start > si.last {
			return slot[L]{}, false
		}
		start = max(start, si.first)
		end = x.find(si.last) + 1
	}
	for i := x.lowerBound(start); i < end; i++ {
		s := &x.slots[i]
		if s.size == 0 {
			continue
		}
		if all || (literal && s.subject == filter) || (!literal && subjectMatch(filter, s.subject)) {
			return *s, true
		}
	}
	return slot[L]{}, false
}

// counts returns live messages per subject matching filter.
// msgsOn counts the live messages on a literal subject.
func (x *liveIndex[L]) msgsOn(subject string) uint64 {
	if si, ok := x.subjects[subject]; ok {
		return si.msgs
	}
	return 0
}

func (x *liveIndex[L]) counts(filter string) map[string]uint64 {
	out := map[string]uint64{}
	if isLiteral(filter) {
		if n := x.msgsOn(filter); n > 0 {
			out[filter] = n
		}
		return out
	}
	for subj, si := range x.subjects {
		if subjectMatch(filter, subj) {
			out[subj] = si.msgs
		}
	}
	return out
}

// purgePlan works out what Purge(filter, upTo, keep) removes: either every
// sequence below floor (when the filter selects all subjects, so the purge
// can be recorded as one marker), or the listed sequences (ascending).
func (x *liveIndex[L]) purgePlan(filter string, upTo, keep uint64) (floor uint64, seqs []uint64) {
	end := len(x.slots)
	if upTo > 0 {
		end = x.lowerBound(upTo)
	}
	if matchesAll(filter) {
		if keep == 0 {
			if upTo == 0 || upTo > x.lastSeq+1 {
				return x.lastSeq + 1, nil
			}
			return upTo, nil
		}
		// Walk back over the newest keep candidates; the oldest kept is the floor.
		i := end
		for i > 0 && keep > 0 {
			i--
			if x.slots[i].size != 0 {
				keep--
			}
		}
		if keep > 0 {
			return 0, nil // fewer candidates than keep
		}
		return x.slots[i].seq, nil
	}
	literal := isLiteral(filter)
	from := 0
	if literal {
		si, ok := x.subjects[filter]
		if !ok {
			return 0, nil
		}
		from = x.lowerBound(si.first)
	}
	for i := from; i < end; i++ {
		s := &x.slots[i]
		if s.size == 0 {
			continue
		}
		if (literal && s.subject == filter) || (!literal && subjectMatch(filter, s.subject)) {
			seqs = append(seqs, s.seq)
		}
	}
	if uint64(len(seqs)) <= keep {
		return 0, nil
	}
	return 0, seqs[:uint64(len(seqs))-keep]
}

// deleted lists the sequences between the first and last live messages
// that are gone (deleted, or purged by subject).
func (x *liveIndex[L]) deleted() []uint64 {
	var out []uint64
	for i, s := range x.slots {
		if i > 0 {
			for q := x.slots[i-1].seq + 1; q < s.seq; q++ {
				out = append(out, q)
			}
		}
		if s.size == 0 {
			out = append(out, s.seq)
		}
	}
	return out
}
