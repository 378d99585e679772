package node

import (
	"strconv"
	"sync/atomic"

	"github.com/switchyard-io/switchyard/pkg/subject"
)

// Node mode (NewNode): what a service attached to the suite through an
// embedded server uses instead of client connections. Its subscriptions
// are internal (a handler, no socket) but otherwise ordinary: they reach
// the routers as interest, and messages for them arrive over the mesh.

func (s *Server) isNode() bool { return s.kind != "frontdoor" }

// payloadOnly adapts a handler that ignores headers.
func payloadOnly(fn func(subj, reply, payload []byte)) func(subj, reply []byte, headerLen int, msg []byte) {
	return func(subj, reply []byte, headerLen int, msg []byte) {
		if headerLen >= 0 {
			msg = msg[headerLen:]
		}
		fn(subj, reply, msg)
	}
}

// nodeSids numbers internal subscriptions.
var nodeSids atomic.Uint64

// SubscribeInternal subscribes fn to subject (in queue group queue, when
// not empty) in account. fn runs on the delivering goroutine, for every
// message, with headers first (headerLen bytes, -1: none); blocking in
// it paces the publisher. It returns the call that unsubscribes.
func (s *Server) SubscribeInternal(account, subject, queue string, fn func(subj, reply []byte, headerLen int, msg []byte)) (unsubscribe func()) {
	acc := s.account(account)
	ic := newInternalClient(s)
	ic.setAccount(acc)
	sub := &subscription{client: ic, acc: acc, subject: subject, queue: queue,
		sid: strconv.FormatUint(nodeSids.Add(1), 10), internal: fn}
	ic.subs[sub.sid] = sub
	s.trieInsert(sub)
	if s.routing != nil {
		s.routing.sendHint(acc, subject, queue, false)
	}
	return func() {
		ic.removeSub(sub)
		if s.routing != nil {
			s.routing.sendHint(acc, subject, queue, true)
		}
	}
}

// Publisher publishes into accounts for one goroutine at a time (it
// keeps per-publisher match caches and delivery state, as a client's
// reader does).
type Publisher struct {
	c     *client
	buf   []byte
	acc   *account // the last account published in (a publisher mostly keeps to one)
	shown []byte   // PublishAs's subject
}

// NewPublisher returns a publisher; use one per goroutine.
func (s *Server) NewPublisher() *Publisher { return &Publisher{c: newInternalClient(s)} }

// Publish delivers a message published in account to local subscribers
// and the nodes with interest, as a client's PUB or HPUB would (hdr nil:
// no headers). It reports whether anyone received it. Output is flushed
// by Flush.
func (p *Publisher) Publish(account, subject, reply string, hdr, data []byte) bool {
	acc := p.account(account)
	headerLen := -1
	msg := data
	if hdr != nil {
		headerLen = len(hdr)
		p.buf = append(append(p.buf[:0], hdr...), data...)
		msg = p.buf
	}
	return p.c.publish(acc, []byte(subject), []byte(reply), headerLen, msg)
}

// account is the named account, remembered: a publisher mostly keeps to one.
func (p *Publisher) account(name string) *account {
	if p.acc == nil || p.acc.name != name {
		p.acc = p.c.srv.account(name)
	}
	return p.acc
}

// PublishAs is Publish for a message addressed to subject to but shown to
// its receivers as subject, as nats-server delivers a JetStream message to
// a consumer's inbox or deliver subject under the subject it was stored
// with.
func (p *Publisher) PublishAs(account, to, subject, reply string, hdr, data []byte) bool {
	p.shown = append(p.shown[:0], subject...)
	p.c.shownAs = p.shown
	defer func() { p.c.shownAs = nil }()
	return p.Publish(account, to, reply, hdr, data)
}

// HasInterest reports whether some subscription, here or on another node,
// matches subject in account (a push consumer delivers only then, as on
// nats-server).
func (p *Publisher) HasInterest(account, subject string) bool {
	acc := p.account(account)
	subj := []byte(subject)
	if !p.c.cacheFor(acc).Match(subj).Empty() {
		return true
	}
	rt := p.c.srv.routing
	if rt == nil {
		return false
	}
	if link := rt.primary.Load(); link != nil && !p.c.remoteMatch(link, acc, subj).Empty() {
		return true
	}
	return rt.hints.match(acc.name, subj) != nil
}

// HasSubscriber is HasInterest for a subscription to exactly subject,
// not a wildcard that covers it (nats-server's interest notifications):
// a client that subscribes to a reply subject after its request must not
// be taken as subscribed because of its request inbox's _INBOX.x.*.
func (p *Publisher) HasSubscriber(account, subject string) bool {
	acc := p.account(account)
	subj := []byte(subject)
	if anyIs(p.c.cacheFor(acc).Match(subj), func(s *subscription) bool { return s.subject == subject }) {
		return true
	}
	rt := p.c.srv.routing
	if rt == nil {
		return false
	}
	if link := rt.primary.Load(); link != nil && anyIs(p.c.remoteMatch(link, acc, subj), func(r *remoteSub) bool { return r.subject == subject }) {
		return true
	}
	if r := rt.hints.match(acc.name, subj); r != nil && anyIs(r, func(h *hint) bool { return h.subject == subject }) {
		return true
	}
	return false
}

// anyIs reports whether a match has a subscription is holds for.
func anyIs[S any](r *subject.Result[S], is func(*S) bool) bool {
	for _, s := range r.Plain {
		if is(s) {
			return true
		}
	}
	for _, g := range r.Queues {
		for _, s := range g.Members {
			if is(s) {
				return true
			}
		}
	}
	return false
}

// Flush sends what Publish queued and waits while a receiver (a
// subscriber, or a peer node) is congested, as a client's reader waits
// after each read: a fast publisher is paced by its slowest receiver.
func (p *Publisher) Flush() {
	p.c.flushDelivered()
	p.c.waitForSlowSubscribers()
}
