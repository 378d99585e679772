package hub

import (
	"math/rand/v2"

	"github.com/switchyard-io/switchyard/pkg/subject"
	routerv1 "github.com/switchyard-io/switchyard/proto/switchyard/router/v1"
)

type queueGroup = subject.QueueGroup[interestEntry]

// relayScratch is one reader's reusable working space, so relaying a frame
// allocates only the per-destination message copies.
type relayScratch struct {
	dests      []destination // nodes touched by the current frame, in first-touch order
	marks      []delivery    // what the current message owes each node
	candidates []*attachedNode
}

// destination gathers, in order, the copies one node gets from one frame so
// that they are queued with a single lock.
type destination struct {
	node *attachedNode
	msgs []*routerv1.Message
}

// delivery is what one message owes one node.
type delivery struct {
	node   *attachedNode
	plain  bool
	queues []string
}

// relay forwards a batch from one node. The caller is that node's only
// reader, and each destination's queue is appended in batch order, so
// messages from one node reach each destination in the order sent.
func (h *Hub) relay(from *attachedNode, msgs []*routerv1.Message, sc *relayScratch) {
	from.msgsIn.Add(uint64(len(msgs)))
	h.mu.RLock()
	for _, m := range msgs {
		from.bytesIn.Add(uint64(len(m.Payload) + len(m.Header)))
		acc := h.graph.accounts[m.Account]
		if acc == nil {
			continue
		}
		r := acc.sublist.Match(m.Subject)
		if r.Empty() {
			continue
		}
		sc.marks = sc.marks[:0]
		if m.DeliverPlain {
			for _, e := range r.Plain {
				if e.node != from {
					sc.mark(e.node).plain = true
				}
			}
		}
		for _, q := range m.Queues {
			if pick := sc.pickMember(r.Queues, q, from); pick != nil {
				d := sc.mark(pick)
				d.queues = append(d.queues, q)
			}
		}
		origin := m.OriginNode
		if origin == "" {
			origin = from.id
		}
		for _, d := range sc.marks {
			sc.add(d.node, &routerv1.Message{
				Account: m.Account, Subject: m.Subject, Reply: m.Reply,
				Header: m.Header, Payload: m.Payload, // shared, never modified
				OriginNode: origin, Queues: d.queues, DeliverPlain: d.plain,
			})
		}
	}
	h.mu.RUnlock()

	for i := range sc.dests {
		d := &sc.dests[i]
		d.node.msgsOut.Add(uint64(len(d.msgs)))
		for _, m := range d.msgs {
			d.node.bytesOut.Add(uint64(len(m.Payload) + len(m.Header)))
		}
		if !d.node.out.pushMessages(d.msgs) {
			d.node.fail(h.slowError(d.node))
		}
		clear(d.msgs)
		d.msgs = d.msgs[:0]
		d.node = nil
	}
	sc.dests = sc.dests[:0]
}

// mark returns the current message's delivery record for n.
func (sc *relayScratch) mark(n *attachedNode) *delivery {
	for i := range sc.marks {
		if sc.marks[i].node == n {
			return &sc.marks[i]
		}
	}
	// queues starts nil: the slice goes out inside the message copy.
	sc.marks = append(sc.marks, delivery{node: n})
	return &sc.marks[len(sc.marks)-1]
}

// pickMember chooses one node, at random, among those other than from with
// a member of queue group name. Several matching patterns of one node count
// once, so a node's chance does not depend on how it subscribed.
func (sc *relayScratch) pickMember(groups []queueGroup, name string, from *attachedNode) *attachedNode {
	sc.candidates = sc.candidates[:0]
	for _, g := range groups {
		if g.Name != name {
			continue
		}
		for _, e := range g.Members {
			if e.node != from && !containsNode(sc.candidates, e.node) {
				sc.candidates = append(sc.candidates, e.node)
			}
		}
	}
	switch len(sc.candidates) {
	case 0:
		return nil
	case 1:
		return sc.candidates[0]
	}
	return sc.candidates[rand.IntN(len(sc.candidates))]
}

func (sc *relayScratch) add(n *attachedNode, m *routerv1.Message) {
	for i := range sc.dests {
		if sc.dests[i].node == n {
			sc.dests[i].msgs = append(sc.dests[i].msgs, m)
			return
		}
	}
	if len(sc.dests) < cap(sc.dests) {
		// Reuse the message slice left from an earlier frame.
		sc.dests = sc.dests[:len(sc.dests)+1]
		d := &sc.dests[len(sc.dests)-1]
		d.node, d.msgs = n, append(d.msgs, m)
		return
	}
	sc.dests = append(sc.dests, destination{node: n, msgs: []*routerv1.Message{m}})
}

func containsNode(ns []*attachedNode, n *attachedNode) bool {
	for _, x := range ns {
		if x == n {
			return true
		}
	}
	return false
}
