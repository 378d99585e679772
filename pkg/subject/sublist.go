package subject

import (
	"bytes"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Result is the set of subscriptions matching one literal subject: every plain
// subscription, and the members of each queue group (one member of a group
// receives each message). A Result is immutable once returned.
type Result[S any] struct {
	Plain  []*S
	Queues []QueueGroup[S]
}

// QueueGroup is the matching members of one queue group.
type QueueGroup[S any] struct {
	Name    string
	Members []*S
}

// Empty reports whether nothing matched.
func (r *Result[S]) Empty() bool { return len(r.Plain) == 0 && len(r.Queues) == 0 }

// Sublist is a subject trie mapping patterns to subscriptions. Matching walks
// the trie under a read lock; callers on the hot path front it with a Cache,
// which is invalidated by the generation counter that every change bumps.
type Sublist[S any] struct {
	mu      sync.RWMutex
	root    *level[S]
	count   int
	gen     atomic.Uint64
	inserts uint64
	removes uint64
	matches atomic.Uint64
}

type level[S any] struct {
	nodes    map[string]*node[S]
	pwc, fwc *node[S]
}

type node[S any] struct {
	next   *level[S]
	plain  map[*S]struct{}
	queues map[string]map[*S]struct{}
}

func newLevel[S any]() *level[S] { return &level[S]{nodes: map[string]*node[S]{}} }

// NewSublist returns an empty trie.
func NewSublist[S any]() *Sublist[S] { return &Sublist[S]{root: newLevel[S]()} }

// Generation changes whenever the trie changes.
func (sl *Sublist[S]) Generation() uint64 { return sl.gen.Load() }

// Count is the number of subscriptions held.
func (sl *Sublist[S]) Count() int {
	sl.mu.RLock()
	defer sl.mu.RUnlock()
	return sl.count
}

// Stats returns insert, remove and trie-walk counters.
func (sl *Sublist[S]) Stats() (inserts, removes, matches uint64) {
	sl.mu.RLock()
	defer sl.mu.RUnlock()
	return sl.inserts, sl.removes, sl.matches.Load()
}

// Insert adds s under pattern (and queue group, when queue is not empty). The
// pattern must already be valid (ValidSubscribe).
func (sl *Sublist[S]) Insert(pattern, queue string, s *S) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	l := sl.root
	var n *node[S]
	rest := pattern
	for {
		tok, r, more := cut(rest)
		switch tok {
		case "*":
			if l.pwc == nil {
				l.pwc = &node[S]{}
			}
			n = l.pwc
		case ">":
			if l.fwc == nil {
				l.fwc = &node[S]{}
			}
			n = l.fwc
		default:
			n = l.nodes[tok]
			if n == nil {
				n = &node[S]{}
				l.nodes[tok] = n
			}
		}
		if !more {
			break
		}
		if n.next == nil {
			n.next = newLevel[S]()
		}
		l, rest = n.next, r
	}
	if queue == "" {
		if n.plain == nil {
			n.plain = map[*S]struct{}{}
		}
		n.plain[s] = struct{}{}
	} else {
		if n.queues == nil {
			n.queues = map[string]map[*S]struct{}{}
		}
		m := n.queues[queue]
		if m == nil {
			m = map[*S]struct{}{}
			n.queues[queue] = m
		}
		m[s] = struct{}{}
	}
	sl.count++
	sl.inserts++
	sl.gen.Add(1)
}

// Remove deletes s from pattern / queue. It reports whether s was present.
// Emptied trie nodes are pruned so that churn (inboxes) does not leak.
func (sl *Sublist[S]) Remove(pattern, queue string, s *S) bool {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	type step struct {
		l   *level[S]
		n   *node[S]
		tok string
	}
	var path [16]step
	steps := path[:0]
	l := sl.root
	rest := pattern
	var n *node[S]
	for {
		tok, r, more := cut(rest)
		switch tok {
		case "*":
			n = l.pwc
		case ">":
			n = l.fwc
		default:
			n = l.nodes[tok]
		}
		if n == nil {
			return false
		}
		steps = append(steps, step{l, n, tok})
		if !more {
			break
		}
		if n.next == nil {
			return false
		}
		l, rest = n.next, r
	}
	if queue == "" {
		if _, ok := n.plain[s]; !ok {
			return false
		}
		delete(n.plain, s)
	} else {
		m := n.queues[queue]
		if _, ok := m[s]; !ok {
			return false
		}
		delete(m, s)
		if len(m) == 0 {
			delete(n.queues, queue)
		}
	}
	sl.count--
	sl.removes++
	sl.gen.Add(1)
	for i := len(steps) - 1; i >= 0; i-- {
		st := steps[i]
		if len(st.n.plain) > 0 || len(st.n.queues) > 0 || (st.n.next != nil && !st.n.next.empty()) {
			break
		}
		switch st.tok {
		case "*":
			st.l.pwc = nil
		case ">":
			st.l.fwc = nil
		default:
			delete(st.l.nodes, st.tok)
		}
	}
	return true
}

func (l *level[S]) empty() bool { return len(l.nodes) == 0 && l.pwc == nil && l.fwc == nil }

// Match returns the subscriptions whose patterns match the literal subject.
func (sl *Sublist[S]) Match(literal string) *Result[S] {
	sl.matches.Add(1)
	r := &Result[S]{}
	if hasEmptyToken(literal) {
		return r // nats-server matches nothing for "foo..bar", ".foo", "foo."
	}
	sl.mu.RLock()
	matchLevel(sl.root, literal, r)
	sl.mu.RUnlock()
	return r
}

func hasEmptyToken(s string) bool {
	if s == "" || s[0] == Separator || s[len(s)-1] == Separator {
		return true
	}
	for i := 1; i < len(s); i++ {
		if s[i] == Separator && s[i-1] == Separator {
			return true
		}
	}
	return false
}

func matchLevel[S any](l *level[S], rest string, r *Result[S]) {
	for l != nil {
		tok, next, more := cut(rest)
		if l.fwc != nil {
			collect(l.fwc, r)
		}
		if l.pwc != nil {
			if !more {
				collect(l.pwc, r)
			} else if l.pwc.next != nil {
				matchLevel(l.pwc.next, next, r)
			}
		}
		n := l.nodes[tok]
		if n == nil {
			return
		}
		if !more {
			collect(n, r)
			return
		}
		l, rest = n.next, next
	}
}

func collect[S any](n *node[S], r *Result[S]) {
	for s := range n.plain {
		r.Plain = append(r.Plain, s)
	}
	for name, members := range n.queues {
		i := 0
		for i < len(r.Queues) && r.Queues[i].Name != name {
			i++
		}
		if i == len(r.Queues) {
			r.Queues = append(r.Queues, QueueGroup[S]{Name: name})
		}
		for s := range members {
			r.Queues[i].Members = append(r.Queues[i].Members, s)
		}
	}
}

// All calls fn for every subscription (for monitoring); fn must not call back
// into the Sublist.
func (sl *Sublist[S]) All(fn func(*S)) {
	sl.mu.RLock()
	defer sl.mu.RUnlock()
	walk(sl.root, fn)
}

func walk[S any](l *level[S], fn func(*S)) {
	visit := func(n *node[S]) {
		for s := range n.plain {
			fn(s)
		}
		for _, m := range n.queues {
			for s := range m {
				fn(s)
			}
		}
		if n.next != nil {
			walk(n.next, fn)
		}
	}
	for _, n := range l.nodes {
		visit(n)
	}
	if l.pwc != nil {
		visit(l.pwc)
	}
	if l.fwc != nil {
		visit(l.fwc)
	}
}

// Cache is a single-goroutine match cache in front of a Sublist, keyed by
// literal subject and dropped whenever the Sublist's generation moves. Each
// connection's reader owns one, so hits take no lock at all.
type Cache[S any] struct {
	sl   *Sublist[S]
	gen  uint64
	m    map[string]*Result[S]
	Hits uint64
	// The last subject and its result: publishers often repeat a subject,
	// and comparing bytes is cheaper than hashing them.
	lastSubj []byte
	last     *Result[S]
	// Misses in a row: a publisher of ever-new subjects (ack and reply
	// subjects) gains nothing from caching them, so past cacheMissStreak
	// the cache stops taking new entries until something hits again.
	misses int
}

const cacheMissStreak = 64

// maxCacheEntries bounds a cache; past it the cache starts over, which keeps
// memory flat for publishers of ever-new subjects.
const maxCacheEntries = 1024

// NewCache returns an empty cache over sl.
func NewCache[S any](sl *Sublist[S]) *Cache[S] {
	return &Cache[S]{sl: sl, gen: sl.Generation()}
}

// Match is Sublist.Match with caching.
func (c *Cache[S]) Match(literal []byte) *Result[S] {
	if g := c.sl.Generation(); g != c.gen {
		clear(c.m)
		c.gen = g
		c.last = nil
	}
	if c.last != nil && bytes.Equal(c.lastSubj, literal) {
		c.Hits++
		c.misses = 0
		return c.last
	}
	if r, ok := c.m[string(literal)]; ok {
		c.Hits++
		c.misses = 0
		c.remember(literal, r)
		return r
	}
	// Match keeps no reference to the subject: no copy needed.
	r := c.sl.Match(unsafe.String(unsafe.SliceData(literal), len(literal)))
	if c.misses++; c.misses > cacheMissStreak {
		c.remember(literal, r) // a subject repeated now hits here, and caching resumes
		return r
	}
	if c.m == nil {
		c.m = make(map[string]*Result[S], 8)
	} else if len(c.m) >= maxCacheEntries {
		clear(c.m)
	}
	c.m[string(literal)] = r
	c.remember(literal, r)
	return r
}

func (c *Cache[S]) remember(literal []byte, r *Result[S]) {
	if len(literal) <= 256 {
		c.lastSubj = append(c.lastSubj[:0], literal...)
		c.last = r
	}
}
