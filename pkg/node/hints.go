package node

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-io/switchyard/pkg/mesh"
	"github.com/switchyard-io/switchyard/pkg/subject"
)

// Interest hints close a gap between the two paths a node's state takes:
// interest goes through the router tier, messages over the mesh. A service
// node (streamsvc) that subscribes and then answers a request (a stream
// created, a consumer created) could have its answer reach a frontdoor
// before its new interest does, and the client's next message (a publish
// to the new stream, an ack) would find no one to go to. So a service
// node also sends each new subscription over the mesh to every peer, on
// the connection its answers take, where it arrives first; the receiver
// forwards matching messages to that node for hintTTL, by which time the
// router tier has told it the same. (A nats-server route carries RS+ and
// RMSG on one connection, which orders them.)

// hintTTL is how long a hint stands in for the router's word: far longer
// than interest takes through the router (well under a millisecond on one
// host), and short, because a hint outlives an unsubscribe (messages sent
// on one are dropped by the node, and a request gets no 503 meanwhile).
const hintTTL = 2 * time.Second

// hint is one node's subscription learned over the mesh.
type hint struct {
	node, account, subject, queue string
	added                         time.Time
}

// interestHints are the hints a node holds, per account, and the
// subscriptions nodes said are gone, which the router may still list for
// a moment (messages for them are not sent, so a request gets no
// responders at once, as when the subscription was never there).
type interestHints struct {
	active  atomic.Bool // any hints: forward skips the lock otherwise
	anyGone atomic.Bool // any gone subscriptions
	mu      sync.RWMutex
	byAcc   map[string]*subject.Sublist[hint]
	all     []*hint // oldest first
	gone    map[goneKey]time.Time
}

type goneKey struct{ node, account, subject, queue string }

// apply records a hint, or withdraws one (m.Gone).
func (h *interestHints) apply(node string, m *mesh.Message) {
	e := &hint{node: node, account: string(m.Account), subject: string(m.Subject), added: time.Now()}
	if len(m.Queues) > 0 {
		e.queue = string(m.Queues[0])
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expire(e.added)
	k := goneKey{e.node, e.account, e.subject, e.queue}
	if m.Gone {
		h.withdraw(e)
		if h.gone == nil {
			h.gone = map[goneKey]time.Time{}
		}
		h.gone[k] = e.added
		h.anyGone.Store(true)
		time.AfterFunc(hintTTL, h.tidy) // so forward stops checking when all are stale
		return
	}
	delete(h.gone, k)
	if h.byAcc == nil {
		h.byAcc = map[string]*subject.Sublist[hint]{}
	}
	sl := h.byAcc[e.account]
	if sl == nil {
		sl = subject.NewSublist[hint]()
		h.byAcc[e.account] = sl
	}
	sl.Insert(e.subject, e.queue, e)
	h.all = append(h.all, e)
	h.active.Store(true)
}

// withdraw drops the hints of e's node for e's subscription. Caller holds mu.
func (h *interestHints) withdraw(e *hint) {
	kept := h.all[:0]
	for _, o := range h.all {
		if o.node == e.node && o.account == e.account && o.subject == e.subject && o.queue == e.queue {
			h.byAcc[o.account].Remove(o.subject, o.queue, o)
			continue
		}
		kept = append(kept, o)
	}
	clear(h.all[len(kept):])
	h.all = kept
	if len(h.all) == 0 {
		h.byAcc = nil
		h.active.Store(false)
	}
}

// tidy drops what is older than hintTTL.
func (h *interestHints) tidy() {
	h.mu.Lock()
	h.expire(time.Now())
	h.mu.Unlock()
}

// isGone reports whether node said its subscription (account, subject,
// queue) ended, within hintTTL.
func (h *interestHints) isGone(node, account, subject, queue string) bool {
	h.mu.RLock()
	t, ok := h.gone[goneKey{node, account, subject, queue}]
	h.mu.RUnlock()
	return ok && time.Since(t) < hintTTL
}

// expire drops hints older than hintTTL. Caller holds mu.
func (h *interestHints) expire(now time.Time) {
	for k, t := range h.gone {
		if now.Sub(t) >= hintTTL {
			delete(h.gone, k)
		}
	}
	if len(h.gone) == 0 {
		h.anyGone.Store(false)
	}
	n := 0
	for _, e := range h.all {
		if now.Sub(e.added) < hintTTL {
			break
		}
		h.byAcc[e.account].Remove(e.subject, e.queue, e)
		n++
	}
	if n > 0 {
		clear(h.all[:n])
		h.all = h.all[n:]
	}
	if len(h.all) == 0 {
		h.byAcc = nil
		h.active.Store(false)
	}
}

// match returns the hints matching subj in account, nil when none.
func (h *interestHints) match(account string, subj []byte) *subject.Result[hint] {
	if !h.active.Load() {
		return nil
	}
	h.mu.RLock()
	sl := h.byAcc[account]
	var r *subject.Result[hint]
	if sl != nil {
		r = sl.Match(string(subj))
	}
	stale := len(h.all) > 0 && time.Since(h.all[0].added) >= hintTTL
	h.mu.RUnlock()
	if stale {
		h.mu.Lock()
		h.expire(time.Now())
		h.mu.Unlock()
	}
	if r == nil || r.Empty() {
		return nil
	}
	return r
}

// sendHint tells every connected peer that this node now subscribes to
// pattern in acc (queue: its group, if any), or no longer does (gone). Only service nodes do, whose
// subscriptions are few and whose answers depend on them; a frontdoor's
// clients subscribe far more often (inboxes) for a frame to every peer
// each time.
func (rt *routing) sendHint(acc *account, pattern, queue string, gone bool) {
	if !rt.srv.isNode() {
		return
	}
	var queues []string
	if queue != "" {
		queues = []string{queue}
	}
	if !mesh.Fits(acc.nameBytes, []byte(pattern), nil, queues) {
		return
	}
	frame := mesh.AppendInterest(nil, acc.nameBytes, []byte(pattern), queue, gone)
	peers := rt.peers.Load()
	if peers == nil {
		return
	}
	var sent []*client
	for _, p := range *peers {
		if pc := p.out.Load(); pc != nil {
			pc.out.appendRaw(frame)
			pc.flush()
			sent = append(sent, pc)
		}
	}
	// Return once the hints are on their way (handed to the kernel), so
	// that an answer sent next cannot overtake them through a faster path
	// (a client that reads it and publishes on another frontdoor). A peer
	// that takes nothing for stuckAfter is not waited for.
	for _, pc := range sent {
		pc.out.waitDrain(0)
	}
}
