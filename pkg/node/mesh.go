package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-io/switchyard/pkg/mesh"
	"github.com/switchyard-io/switchyard/pkg/subject"
	routerv1 "github.com/switchyard-io/switchyard/proto/switchyard/router/v1"
)

// The mesh is the data path between nodes (pkg/mesh, docs/architecture.md):
// a message some other node wants goes straight to that node over a TCP
// connection this frontdoor opens to it. The router tier only tells who
// wants what and where each node listens.

// peer is another node this frontdoor sends messages to. Its connection's
// sending side is a client (kind peer) so that it shares the outbound queue,
// batching, inline writes and flow control of client connections.
type peer struct {
	rt       *routing
	id, name string
	url      string // host:port of its mesh listener
	out      atomic.Pointer[client]
	cancel   context.CancelFunc
	up       atomic.Bool
	dropped  atomic.Int64 // messages dropped since the last log line
	lastDrop atomic.Int64 // unix nanos of that log line
	failures int          // dial failures in a row; run goroutine only
}

// maxMeshBacklog bounds the bytes queued for one peer; past it the
// connection is cut and what was queued is dropped (core NATS is
// at-most-once) rather than growing this frontdoor without limit.
const maxMeshBacklog = 64 << 20

// maxMeshFrame is the largest frame a mesh reader accepts: the largest
// max_payload plus room for subject, reply and queue names.
const maxMeshFrame = 64<<20 + 1<<20

// meshHandshakeTimeout bounds dialing a peer and the hello exchange.
const meshHandshakeTimeout = 5 * time.Second

// startMesh opens the mesh listener and returns the address other nodes
// should dial.
func (rt *routing) startMesh() (string, error) {
	cfg := rt.srv.Config()
	addr := cfg.MeshListen
	if addr == "" {
		addr = net.JoinHostPort(cfg.Host, "0")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("mesh listener on %s: %w (set mesh_listen to a free host:port)", addr, err)
	}
	rt.meshLn = ln
	rt.wg.Add(1)
	go func() { defer rt.wg.Done(); rt.acceptMesh(ln) }()
	if cfg.MeshAdvertise != "" {
		return cfg.MeshAdvertise, nil
	}
	a := ln.Addr().(*net.TCPAddr)
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = firstNonLoopbackIP()
	}
	return net.JoinHostPort(host, strconv.Itoa(a.Port)), nil
}

func (rt *routing) acceptMesh(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				rt.srv.log.Errorf("Mesh listener: %v", err)
			}
			return
		}
		rt.wg.Add(1)
		go func() { defer rt.wg.Done(); rt.serveInbound(conn) }()
	}
}

// inboundPeer is one node's connection into this frontdoor; /routez shows
// them.
type inboundPeer struct {
	node       string
	remote     string
	msgs, size atomic.Int64
}

// serveInbound accepts one peer's hello and delivers its messages to local
// subscribers until the connection ends.
func (rt *routing) serveInbound(conn net.Conn) {
	defer conn.Close()
	stop := context.AfterFunc(rt.ctx, func() { conn.Close() }) // at once if stopping already
	defer stop()
	log := rt.srv.log
	conn.SetReadDeadline(time.Now().Add(meshHandshakeTimeout))
	buf := make([]byte, 64<<10)
	used, have, line, err := readHelloLine(conn, buf)
	var from, to string
	if err == nil {
		_, from, to, err = mesh.ParseHello(line)
	}
	if err == nil && to != rt.nodeID {
		err = fmt.Errorf("this is node %s, not %s: the dialing node has stale membership and will retry", rt.nodeID, to)
	}
	if err != nil {
		log.Warnf("Mesh connection from %s refused: %v", conn.RemoteAddr(), err)
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		conn.Write(mesh.AppendRefusal(nil, err.Error()))
		return
	}
	conn.SetWriteDeadline(time.Now().Add(meshHandshakeTimeout))
	if _, err := conn.Write(mesh.OK); err != nil {
		return
	}
	conn.SetDeadline(time.Time{})
	in := &inboundPeer{node: from, remote: conn.RemoteAddr().String()}
	rt.inbound.Store(in, struct{}{})
	defer rt.inbound.Delete(in)
	log.Debugf("Mesh connection from node %s (%s) accepted", from, conn.RemoteAddr())

	// The dialer waits for +OK before sending frames, but nothing is lost
	// if it does not.
	rest := copy(buf, buf[used:have])
	// readFrames returns only when the connection ends or breaks the protocol.
	if err := rt.readFrames(conn, buf, rest, in); !isEOF(err) && !errors.Is(err, net.ErrClosed) {
		log.Warnf("Mesh connection from node %s (%s) closed: %v", from, conn.RemoteAddr(), err)
	}
}

// readHelloLine reads until the first \n (at most mesh.MaxHelloLine bytes)
// into buf. It returns the bytes the line used (with its \r\n), the bytes
// of buf holding data, and the line.
func readHelloLine(conn net.Conn, buf []byte) (used, have int, line []byte, err error) {
	for {
		if i := bytes.IndexByte(buf[:have], '\n'); i >= 0 {
			return i + 1, have, bytes.TrimRight(buf[:i], "\r"), nil
		}
		if have >= mesh.MaxHelloLine {
			return 0, 0, nil, fmt.Errorf("no hello line within %d bytes: not a Switchyard mesh connection", mesh.MaxHelloLine)
		}
		k, err := conn.Read(buf[have:mesh.MaxHelloLine])
		have += k
		if err != nil {
			return 0, 0, nil, fmt.Errorf("no hello: %w", err)
		}
	}
}

// readFrames decodes frames from conn into buf (which already holds have
// bytes) and delivers each.
func (rt *routing) readFrames(conn net.Conn, buf []byte, have int, in *inboundPeer) error {
	ic := newInternalClient(rt.srv)
	var m mesh.Message
	for {
		start := 0
		for {
			k, err := mesh.Decode(buf[start:have], &m, maxMeshFrame)
			if err != nil {
				return err
			}
			if k == 0 {
				break
			}
			start += k
			if m.Interest {
				rt.hints.apply(in.node, &m)
				continue
			}
			in.msgs.Add(1)
			in.size.Add(int64(len(m.Body)))
			if len(m.Reply) > 0 {
				rt.replies.add(m.Reply, in.node)
			}
			ic.deliverMeshMessage(&m)
		}
		ic.flushDelivered()
		ic.waitForSlowSubscribers()
		have = copy(buf, buf[start:have])
		if need := mesh.FrameSize(buf[:have]); need > len(buf) {
			// One frame larger than the buffer (a large payload).
			buf = append(buf[:have], make([]byte, need-have)...)
		} else if len(buf) > 64<<10 && have <= 64<<10 {
			buf = buf[: 64<<10 : 64<<10] // done with the large frame; let the rest go
		}
		k, err := conn.Read(buf[have:])
		have += k
		if err != nil {
			return err
		}
	}
}

// deliverMeshMessage hands one message from a peer to local subscribers:
// plain ones when the sender says so, and one member of each queue group it
// names.
func (c *client) deliverMeshMessage(m *mesh.Message) {
	acc := c.meshAcc
	if acc == nil || string(m.Account) != acc.name {
		if acc = c.srv.lookupAccount(m.Account); acc == nil {
			return // no account here, so no interest in it either
		}
		// Consecutive frames are mostly of one account.
		c.meshAcc, c.meshCache = acc, c.cacheFor(acc)
	}
	subj := m.Subject
	if m.To != nil {
		subj = m.To // addressed there, shown as m.Subject
		c.shownAs = m.Subject
		defer func() { c.shownAs = nil }()
	}
	if rr := acc.responses.take(subj); rr != nil {
		// A response to a request that came in through a service import:
		// the requester waits in the importing account.
		c.publish(rr.to, []byte(rr.reply), nil, m.HeaderLen, m.Body)
		return
	}
	r := c.meshCache.Match(subj)
	if m.Plain {
		for _, sub := range r.Plain {
			c.deliver(sub, subj, m.Reply, m.HeaderLen, m.Body)
		}
		if outs := acc.streamsOut.Load(); outs != nil {
			c.deliverStreamImports(*outs, subj, m.Reply, m.HeaderLen, m.Body)
		}
	}
	for _, q := range m.Queues {
		for i := range r.Queues {
			if r.Queues[i].Name == string(q) {
				c.deliverQueue(r.Queues[i].Members, subj, m.Reply, m.HeaderLen, m.Body)
			}
		}
	}
}

// meshDest is what one message owes one peer.
type meshDest struct {
	node   string
	plain  bool
	queues []string
}

// forward sends the message to every other node with interest: each one
// with a plain subscriber, and for each queue group with no member here,
// one node (at random) among those with members. It reports whether some
// other node wanted it.
func (c *client) forward(rt *routing, acc *account, local *subject.Result[subscription], subj, reply []byte, headerLen int, msg []byte) bool {
	link := rt.primary.Load()
	if link == nil {
		return false
	}
	rr := c.remoteMatch(link, acc, subj)
	replyTo := rt.replies.lookup(subj)
	hr := rt.hints.match(acc.name, subj)
	if rr.Empty() && replyTo == "" && hr == nil {
		return false
	}
	dests := c.meshDests[:0]
	var d *meshDest
	if replyTo != "" {
		dests, d = destFor(dests, replyTo)
		d.plain = true
	}
	gone := rt.hints.anyGone.Load()
	for _, rs := range rr.Plain {
		if gone && rt.hints.isGone(rs.node, rs.account, rs.subject, rs.queue) {
			continue // the node said it unsubscribed; the router has not yet
		}
		dests, d = destFor(dests, rs.node)
		d.plain = true
	}
	for _, g := range rr.Queues {
		if hasQueue(local, g.Name) {
			continue
		}
		members := g.Members
		if gone {
			if members = c.liveMembers(rt, members); len(members) == 0 {
				continue
			}
		}
		dests, d = destFor(dests, c.pickNode(members))
		d.queues = append(d.queues, g.Name)
	}
	if hr != nil {
		// Subscriptions the router has not told about yet (see hints.go).
		for _, h := range hr.Plain {
			dests, d = destFor(dests, h.node)
			d.plain = true
		}
		for _, g := range hr.Queues {
			if hasQueue(local, g.Name) || hasQueue(rr, g.Name) {
				continue
			}
			dests, d = destFor(dests, g.Members[0].node)
			d.queues = append(d.queues, g.Name)
		}
	}
	peers := rt.peers.Load()
	sent := false
	for i := range dests {
		d := &dests[i]
		if p := (*peers)[d.node]; p != nil && c.sendToPeer(p, acc, subj, reply, d, headerLen, msg) {
			sent = true
		}
		d.queues = d.queues[:0]
	}
	c.meshDests = dests
	return sent
}

// destFor returns node's entry in dests, adding it (and reusing the
// slice's spare entries, queue slices included) when missing.
func destFor(dests []meshDest, node string) ([]meshDest, *meshDest) {
	for i := range dests {
		if dests[i].node == node {
			return dests, &dests[i]
		}
	}
	if len(dests) < cap(dests) {
		dests = dests[:len(dests)+1]
	} else {
		dests = append(dests, meshDest{})
	}
	d := &dests[len(dests)-1]
	d.node, d.plain, d.queues = node, false, d.queues[:0]
	return dests, d
}

// pickNode chooses one node, at random, among those with a member; several
// matching patterns of one node count once, so a node's share does not
// depend on how it subscribed.
// liveMembers leaves out the queue members whose node said they are gone.
func (c *client) liveMembers(rt *routing, members []*remoteSub) []*remoteSub {
	var live []*remoteSub
	for _, m := range members {
		if !rt.hints.isGone(m.node, m.account, m.subject, m.queue) {
			live = append(live, m)
		}
	}
	return live
}

func (c *client) pickNode(members []*remoteSub) string {
	if len(members) == 1 {
		return members[0].node
	}
	nodes := c.candidates[:0]
	for _, m := range members {
		found := false
		for _, n := range nodes {
			if n == m.node {
				found = true
				break
			}
		}
		if !found {
			nodes = append(nodes, m.node)
		}
	}
	c.candidates = nodes
	return nodes[rand.IntN(len(nodes))]
}

// sendToPeer queues one frame for p; flushDelivered sends it after this
// read, and a backlog past the high-water mark makes this publisher wait
// (as for a slow local subscriber).
func (c *client) sendToPeer(p *peer, acc *account, subj, reply []byte, d *meshDest, headerLen int, msg []byte) bool {
	pc := p.out.Load()
	if pc == nil || !mesh.Fits(acc.nameBytes, subj, reply, d.queues) || !mesh.Fits(nil, c.shownAs, nil, nil) {
		p.noteDrop()
		return false
	}
	pending := pc.out.appendFrame(acc.nameBytes, subj, c.shownAs, reply, d.queues, d.plain, headerLen, msg, maxMeshBacklog)
	switch {
	case pending == 0: // closed: reconnecting
		p.noteDrop()
		return false
	case pending < 0:
		c.srv.log.Warnf("Mesh link to node %s (%s): more than %d MB queued, the node is not reading; cutting the link (queued messages are lost) and reconnecting",
			p.id, p.url, maxMeshBacklog>>20)
		go pc.closeConnection("Mesh Backlog Exceeded", false)
		return true
	}
	c.noteQueued(pc, pending, c.srv.Config().MaxPending)
	return true
}

// noteDrop logs messages dropped for a peer that is not connected, at most
// once a second.
func (p *peer) noteDrop() {
	n := p.dropped.Add(1)
	now := time.Now().UnixNano()
	last := p.lastDrop.Load()
	if now-last < int64(time.Second) || !p.lastDrop.CompareAndSwap(last, now) {
		return
	}
	p.dropped.Add(-n)
	p.rt.srv.log.Warnf("Mesh link to node %s (%s) is down: %d message(s) for it dropped; check that this frontdoor can reach %s (mesh_listen / mesh_advertise)",
		p.id, p.name, n, p.url)
}

// newPeerClient is the sending side of one connection to p. It queues from
// the start; its writer stays parked (writing set) until connected.
func newPeerClient(p *peer) *client {
	c := newInternalClient(p.rt.srv)
	c.peer = p
	c.host = p.url
	c.out.writing = true
	return c
}

// current returns p's open sending client, making a new one if the last
// has closed.
func (p *peer) current() *client {
	if c := p.out.Load(); c != nil && !c.closed.Load() {
		return c
	}
	c := newPeerClient(p)
	p.out.Store(c)
	return c
}

// run keeps a connection to p up until ctx ends, redialing with backoff.
func (p *peer) run(ctx context.Context) {
	log := p.rt.srv.log
	defer func() {
		if c := p.out.Swap(nil); c != nil {
			c.closeConnection("Node Left", false)
		}
	}()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		c := p.current()
		conn, err := p.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if p.failures++; p.failures == 1 || p.failures%20 == 0 {
				log.Warnf("Mesh link to node %s (%s) at %s: %v; retrying (%d attempts so far)", p.id, p.name, p.url, err, p.failures)
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		if !c.attachConn(conn) {
			conn.Close()
			continue
		}
		p.failures = 0
		p.up.Store(true)
		log.Debugf("Mesh link to node %s (%s) at %s is up", p.id, p.name, p.url)
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		// The listener never writes after +OK: a read ends when the
		// connection does (or the peer breaks the protocol).
		var one [1]byte
		_, err = conn.Read(one[:])
		stop()
		p.up.Store(false)
		c.closeConnection("Mesh Link Closed", false)
		if ctx.Err() == nil {
			log.Infof("Mesh link to node %s (%s) at %s lost: %v; reconnecting", p.id, p.name, p.url, readErr(err))
		}
	}
}

func readErr(err error) error {
	if err == nil {
		return errors.New("the node wrote after the handshake")
	}
	if isEOF(err) {
		return io.EOF
	}
	return err
}

// dial connects to p and completes the hello exchange.
func (p *peer) dial(ctx context.Context) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, meshHandshakeTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", p.url)
	if err != nil {
		return nil, err
	}
	deadline, _ := dctx.Deadline()
	conn.SetDeadline(deadline)
	if _, err := conn.Write(mesh.AppendHello(nil, p.rt.nodeID, p.id)); err != nil {
		conn.Close()
		return nil, err
	}
	var buf [mesh.MaxHelloLine]byte
	_, _, line, err := readHelloLine(conn, buf[:])
	if err != nil {
		conn.Close()
		return nil, err
	}
	if !bytes.Equal(append(line, '\r', '\n'), mesh.OK) {
		conn.Close()
		return nil, fmt.Errorf("refused: %s", line)
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// attachConn gives a parked peer client its connection and lets it write
// what queued meanwhile. It reports false when the client closed first.
func (c *client) attachConn(conn net.Conn) bool {
	o := &c.out
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	c.conn = conn
	if tc, ok := conn.(*net.TCPConn); ok {
		c.raw = newRawWriter(tc)
	}
	o.lastProgress = time.Now()
	o.mu.Unlock()
	go c.writeLoop() // owns writing (set since creation) and drains
	return true
}

// syncPeers makes the peer set the union of the nodes every attached router
// lists: new nodes get a connection, departed ones lose theirs.
func (rt *routing) syncPeers() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	want := map[string]*routerv1.Node{}
	for _, l := range rt.links {
		if !l.up.Load() {
			continue
		}
		for _, n := range l.nodes {
			if n.NodeId != rt.nodeID && n.MeshUrl != "" {
				want[n.NodeId] = n
			}
		}
	}
	old := *rt.peers.Load()
	next := make(map[string]*peer, len(want))
	for id, n := range want {
		if p := old[id]; p != nil && p.url == n.MeshUrl {
			next[id] = p
			continue
		}
		ctx, cancel := context.WithCancel(rt.ctx)
		p := &peer{rt: rt, id: id, name: n.NodeName, url: n.MeshUrl, cancel: cancel}
		p.current() // queue from now on, even before the connection is up
		next[id] = p
		rt.wg.Add(1)
		go func() { defer rt.wg.Done(); p.run(ctx) }()
	}
	for id, p := range old {
		if next[id] != p {
			p.cancel()
		}
	}
	rt.peers.Store(&next)
}

// replyRoutes remembers, for a short while, which node sent each request
// that arrived over the mesh, so that the reply goes back to that node even
// before the router has told this node about the requester's reply
// subscription. Interest travels through the router and messages do not,
// so without this a fast responder could answer before the requester's
// interest arrives, and the reply would be lost. (nats-server's routes
// carry both on one connection, which orders them.)
//
// Entries are keyed by a 64-bit hash of the reply subject, so recording one
// (every message with a reply that crosses the mesh, e.g. each JetStream
// delivery with its ack subject) allocates nothing. Two subjects sharing a
// hash would at worst send one reply to a node that has no use for it,
// which drops it. The two kinds of reply subject that come in long runs
// from one node share one entry per run (see routeKey), so the table
// stays small and in cache however many messages cross.
type replyRoutes struct {
	mu        sync.RWMutex
	seed      maphash.Seed
	cur, prev map[uint64]string // hash of the reply subject -> node id
	rotated   time.Time
	active    atomic.Bool // any entries at all: the hot path skips the lock otherwise
}

// A reply route lives between replyRouteTTL and twice that, or until
// maxReplyRoutes newer requests have arrived: long enough for the
// requester's interest to reach this node through the router.
const (
	replyRouteTTL  = 5 * time.Second
	maxReplyRoutes = 100_000
)

func (r *replyRoutes) add(reply []byte, node string) {
	key := routeKey(reply)
	now := time.Now()
	r.mu.RLock()
	if r.cur != nil && r.cur[maphash.Bytes(r.seed, key)] == node && now.Sub(r.rotated) <= replyRouteTTL {
		r.mu.RUnlock()
		return // known (the usual case: a run of one requester's replies)
	}
	r.mu.RUnlock()
	r.mu.Lock()
	if r.cur == nil {
		r.seed = maphash.MakeSeed()
	}
	if r.cur == nil || len(r.cur) >= maxReplyRoutes || now.Sub(r.rotated) > replyRouteTTL {
		r.prev, r.cur, r.rotated = r.cur, make(map[uint64]string, len(r.cur)), now
	}
	r.cur[maphash.Bytes(r.seed, key)] = node
	r.active.Store(true)
	r.mu.Unlock()
}

var (
	inboxStem = []byte("_INBOX.")
	ackStem   = []byte("$JS.ACK.")
)

// routeKey is what a reply route is remembered by: the reply subject, but
// for the two kinds that come in runs from one node, the part the run
// shares: a client's request inbox _INBOX.<connection id>.<request> by
// _INBOX.<connection id>. (nats.go's responses share one subscription to
// it), a JetStream ack subject $JS.ACK.<stream>.<consumer>.<five numbers>
// by $JS.ACK.<stream>.<consumer>. (streamsvc, the only node sending them,
// subscribes to the consumer's acks). Other replies keep their own entry.
func routeKey(subj []byte) []byte {
	switch {
	case bytes.HasPrefix(subj, inboxStem):
		if i := bytes.LastIndexByte(subj, '.'); i >= len(inboxStem) {
			return subj[:i+1]
		}
	case bytes.HasPrefix(subj, ackStem):
		i := len(subj)
		for range 5 {
			if i = bytes.LastIndexByte(subj[:i], '.'); i < len(ackStem) {
				return subj
			}
		}
		return subj[:i+1]
	}
	return subj
}

// lookup returns the node that sent a request with this reply subject
// recently, or "".
func (r *replyRoutes) lookup(subj []byte) string {
	if !r.active.Load() {
		return ""
	}
	r.mu.RLock()
	h := maphash.Bytes(r.seed, routeKey(subj))
	node, ok := r.cur[h]
	if !ok {
		node = r.prev[h]
	}
	stale := time.Since(r.rotated) > 2*replyRouteTTL
	r.mu.RUnlock()
	if stale {
		r.mu.Lock()
		if time.Since(r.rotated) > 2*replyRouteTTL {
			r.cur, r.prev = nil, nil
			r.active.Store(false)
		}
		r.mu.Unlock()
	}
	return node
}
