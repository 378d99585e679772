package node

import (
	"math/rand/v2"

	"github.com/switchyard-io/switchyard/pkg/subject"
)

// Pub is the hot path: PUB / HPUB from this client.
func (c *client) Pub(subj, reply []byte, headerLen int, msg []byte) error {
	if c.authPending {
		return errAuthViolation
	}
	c.inMsgs++
	c.inBytes += int64(len(msg))
	if p := c.perms.Load(); p != nil && !p.canPublish(subj) {
		c.publishViolation(subj)
		return nil
	}
	if c.opts.Pedantic && !subject.ValidPublish(subj) {
		// nats-server reports it and still processes the message.
		c.sendErr("Invalid Publish Subject")
	}
	if c.opts.Verbose {
		c.queueSelf(okBytes)
	}
	acc := c.acc
	if m := acc.mappings.Load(); m != nil {
		if mapped, ok := m.apply(subj); ok {
			subj = mapped
		}
	}
	if subj[0] == '$' && string(subj) == userInfoSubject && len(reply) > 0 && c.srv.systemAccount() != nil {
		c.userInfo(string(reply))
		return nil
	}
	delivered := c.publish(acc, subj, reply, headerLen, msg)
	if svcs := acc.services.Load(); svcs != nil && c.requestService(*svcs, subj, reply, headerLen, msg) {
		delivered = true
	}
	if !delivered && len(reply) > 0 && c.opts.NoResponders {
		c.sendNoResponders(subj, reply)
	}
	return nil
}

// publish delivers a message published in acc: to local subscribers, to
// the other nodes with interest, and to local importers of acc's streams.
// A response to a request that came through a service import goes to the
// requester's account instead. It reports whether anyone received it.
func (c *client) publish(acc *account, subj, reply []byte, headerLen int, msg []byte) bool {
	if rr := acc.responses.take(subj); rr != nil {
		return c.publish(rr.to, []byte(rr.reply), nil, headerLen, msg)
	}
	r := c.cacheFor(acc).Match(subj)
	delivered := !r.Empty() && c.deliverAll(r, subj, reply, headerLen, msg)
	if rt := c.srv.routing; rt != nil && c.forward(rt, acc, r, subj, reply, headerLen, msg) {
		delivered = true
	}
	if outs := acc.streamsOut.Load(); outs != nil && c.deliverStreamImports(*outs, subj, reply, headerLen, msg) {
		delivered = true
	}
	return delivered
}

// deliverStreamImports gives a message published in an exporting account
// to the subscribers of the accounts on this node that import it, under
// the importer's subject. Each node does this for its own subscribers:
// the importers' nodes hold interest in the exporter's subject for them.
func (c *client) deliverStreamImports(outs []*streamImport, subj, reply []byte, headerLen int, msg []byte) bool {
	delivered := false
	for _, si := range outs {
		to, ok := importSubject(si.subject, si.tr, subj)
		if !ok {
			continue
		}
		if r := c.cacheFor(si.to).Match(to); !r.Empty() && c.deliverAll(r, to, reply, headerLen, msg) {
			delivered = true
		}
	}
	return delivered
}

// importSubject reports whether subj is taken by an import of pattern, and
// the subject it becomes on the other side (tr nil: the same).
func importSubject(pattern string, tr *subject.Transform, subj []byte) ([]byte, bool) {
	if !subject.Matches(pattern, string(subj)) {
		return nil, false
	}
	if tr == nil {
		return subj, true
	}
	mapped, ok := tr.Apply(string(subj))
	return []byte(mapped), ok
}

// requestService sends a request published on a service import's subject
// into the exporting account, with a reply subject there that routes the
// response back. A Nats-Request-Info header the client sent is replaced by
// one that says who really asked.
func (c *client) requestService(svcs []*serviceImport, subj, reply []byte, headerLen int, msg []byte) bool {
	for _, si := range svcs {
		to, ok := importSubject(si.local, si.tr, subj)
		if !ok {
			continue
		}
		var newReply []byte
		if len(reply) > 0 {
			newReply = si.exporter.responses.add(c.acc, reply, si)
		}
		hdrLen, body := c.withRequestInfo(headerLen, msg)
		return c.publish(si.exporter, to, newReply, hdrLen, body)
	}
	return false
}

func hasQueue[S any](r *subject.Result[S], name string) bool {
	for i := range r.Queues {
		if r.Queues[i].Name == name {
			return true
		}
	}
	return false
}

// deliverAll sends the message to every plain subscriber and to one member
// of each queue group. It reports whether anyone received it.
func (c *client) deliverAll(r *subject.Result[subscription], subj, reply []byte, headerLen int, msg []byte) bool {
	delivered := false
	for _, sub := range r.Plain {
		if sub.client == c && !c.opts.Echo {
			continue
		}
		if c.deliver(sub, subj, reply, headerLen, msg) {
			delivered = true
		}
	}
	for i := range r.Queues {
		if c.deliverQueue(r.Queues[i].Members, subj, reply, headerLen, msg) {
			delivered = true
		}
	}
	return delivered
}

// deliverQueue gives the message to one member of a queue group. It starts
// at a random member and takes the first that accepts, so a member that
// just auto-unsubscribed or closed is passed over.
func (c *client) deliverQueue(members []*subscription, subj, reply []byte, headerLen int, msg []byte) bool {
	start := 0
	if len(members) > 1 {
		start = rand.IntN(len(members))
	}
	for k := range members {
		sub := members[(start+k)%len(members)]
		if sub.client == c && !c.opts.Echo {
			continue
		}
		if c.deliver(sub, subj, reply, headerLen, msg) {
			return true
		}
	}
	return false
}

// deliver queues one message to one subscription.
func (c *client) deliver(sub *subscription, subj, reply []byte, headerLen int, msg []byte) bool {
	if sub.internal != nil {
		if c.shownAs != nil {
			subj = c.shownAs // as a client would see it (a mirror's or a source's delivery)
		}
		sub.internal(subj, reply, headerLen, msg)
		return true
	}
	dst := sub.client
	if p := dst.perms.Load(); p != nil && (p.subDeny != nil || p.resp != nil) {
		if p.deniedDelivery(subj) {
			return false // a wildcard subscription overlapping a deny rule
		}
		p.noteRequest(reply)
	}
	if max := sub.max.Load(); max > 0 {
		n := sub.delivered.Add(1)
		if n > max {
			return false
		}
		if n == max {
			defer dst.removeSub(sub)
		}
	} else {
		sub.delivered.Add(1)
	}
	if headerLen >= 0 && !dst.headers.Load() {
		// A subscriber that did not negotiate headers gets the payload only.
		msg = msg[headerLen:]
		headerLen = -1
	}
	maxPending := c.srv.Config().MaxPending
	shown := subj
	if c.shownAs != nil {
		shown = c.shownAs // addressed to subj, shown as stored (a JetStream delivery)
	}
	pending := dst.out.appendMsg(shown, sub.sid, reply, headerLen, msg, maxPending)
	switch {
	case pending == 0:
		return false
	case pending < 0:
		c.srv.log.Warnf("%s - slow consumer: more than max_pending (%d bytes) queued, closing; the subscriber must read faster, or raise max_pending",
			dst, maxPending)
		go dst.closeConnection("Slow Consumer (Pending Bytes)", false)
		return true
	}
	c.noteQueued(dst, pending, maxPending)
	return true
}

// noteQueued records that dst (a subscriber or a mesh peer) has output to
// flush after this read and, when its queue of pending bytes is past the
// high-water mark, that this publisher waits for it after the read.
func (c *client) noteQueued(dst *client, pending int, maxPending int64) {
	c.markDelivered(dst)
	if high, _ := watermarks(maxPending); dst != c && pending > high && !c.stallingOn(dst) {
		dst.out.mu.Lock()
		congested := dst.out.congested(pending, high)
		dst.out.mu.Unlock()
		if congested {
			c.stallOn = append(c.stallOn, dst)
		}
	}
}

func (c *client) stallingOn(dst *client) bool {
	for _, s := range c.stallOn {
		if s == dst {
			return true
		}
	}
	return false
}

// sendNoResponders answers a request nobody can serve with a 503 status on
// the requester's own reply subscription, as nats-server does.
func (c *client) sendNoResponders(subj, reply []byte) {
	var own *subscription
	for _, sub := range c.cache.Match(reply).Plain {
		if sub.client == c {
			own = sub
			break
		}
	}
	if own == nil {
		return
	}
	hdr := make([]byte, 0, 48+len(subj))
	hdr = append(hdr, "NATS/1.0 503\r\nNats-Subject: "...)
	hdr = append(hdr, subj...)
	hdr = append(hdr, "\r\n\r\n"...)
	c.out.appendMsg(reply, own.sid, nil, len(hdr), hdr, 0)
	c.markDelivered(c)
}
