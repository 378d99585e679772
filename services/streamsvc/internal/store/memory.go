package store

import (
	"fmt"
	"sync"
	"time"
)

// memBody is a message's header and data in one allocation.
type memBody struct {
	buf    []byte
	hdrLen int
}

// memStore keeps messages in memory only; mu guards everything.
type memStore struct {
	mu     sync.RWMutex
	idx    *liveIndex[memBody]
	closed bool
}

// NewMemory returns an empty store that lives in memory only.
func NewMemory() Store {
	return &memStore{idx: newLiveIndex[memBody]()}
}

func (m *memStore) Append(msgs []Msg) error {
	for i := range msgs {
		if err := checkMsg(&msgs[i]); err != nil {
			return err
		}
	}
	now := time.Now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for i := range msgs {
		msg := &msgs[i]
		if msg.Time == 0 {
			msg.Time = now
		}
		msg.Seq = m.idx.lastSeq + 1
		m.keep(msg)
	}
	return nil
}

// keep adds msg (its Seq above every sequence held) to the index with a
// copy of its bytes: the caller may reuse its buffers once it returns.
func (m *memStore) keep(msg *Msg) {
	body := memBody{hdrLen: len(msg.Header)}
	if n := len(msg.Header) + len(msg.Data); n > 0 {
		body.buf = make([]byte, 0, n)
		body.buf = append(append(body.buf, msg.Header...), msg.Data...)
	}
	m.idx.add(msg.Seq, msg.Subject, Size(msg.Subject, msg.Header, msg.Data), msg.Time, body)
}

// checkMsg refuses what neither store can hold.
func checkMsg(m *Msg) error {
	if m.Subject == "" {
		return fmt.Errorf("store: message with an empty subject")
	}
	if len(m.Subject) > maxSubject {
		return fmt.Errorf("store: subject of %d bytes is over the %d-byte limit", len(m.Subject), maxSubject)
	}
	if n := recordSize(len(m.Subject), len(m.Header), len(m.Data)); n > maxRecord {
		return fmt.Errorf("store: message on %q of %d bytes is over the %d-byte limit", m.Subject, n, maxRecord)
	}
	return nil
}

func memMsg(s slot[memBody]) Msg {
	m := Msg{Seq: s.seq, Subject: s.subject, Time: s.time}
	h := s.loc.hdrLen
	if h > 0 {
		m.Header = s.loc.buf[:h:h]
	}
	if len(s.loc.buf) > h {
		m.Data = s.loc.buf[h:]
	}
	return m
}

func (m *memStore) Get(seq uint64) (Msg, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return Msg{}, ErrClosed
	}
	s, ok := m.idx.get(seq)
	if !ok {
		return Msg{}, ErrNotFound
	}
	return memMsg(s), nil
}

func (m *memStore) LoadLast(filter string) (Msg, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return Msg{}, ErrClosed
	}
	s, ok := m.idx.last(filter)
	if !ok {
		return Msg{}, ErrNotFound
	}
	return memMsg(s), nil
}

func (m *memStore) LoadNext(filter string, start uint64) (Msg, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return Msg{}, ErrClosed
	}
	s, ok := m.idx.next(filter, start)
	if !ok {
		return Msg{}, ErrNotFound
	}
	return memMsg(s), nil
}

func (m *memStore) NextSeq(filter string, start uint64) (uint64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s, ok := m.idx.next(filter, start)
	return s.seq, ok && !m.closed
}

func (m *memStore) Deleted() []uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.idx.deleted()
}

func (m *memStore) Delete(seq uint64) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false, ErrClosed
	}
	_, ok := m.idx.remove(seq)
	return ok, nil
}

func (m *memStore) Purge(filter string, upTo, keep uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	floor, seqs := m.idx.purgePlan(filter, upTo, keep)
	if floor > 0 {
		return m.idx.removeBelow(floor, nil), nil
	}
	for _, seq := range seqs {
		m.idx.remove(seq)
	}
	return uint64(len(seqs)), nil
}

func (m *memStore) Compact(seq uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	if seq > m.idx.lastSeq+1 {
		m.idx.setLast(seq-1, m.idx.lastTime)
	}
	return m.idx.removeBelow(seq, nil), nil
}

func (m *memStore) SubjectCounts(filter string) map[string]uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.idx.counts(filter)
}

func (m *memStore) SubjectMsgs(subject string) uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.idx.msgsOn(subject)
}

func (m *memStore) State() State {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.idx.state()
}

func (m *memStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.idx = newLiveIndex[memBody]()
	return nil
}
