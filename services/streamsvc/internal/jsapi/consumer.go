package jsapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-io/switchyard/pkg/node"
	"github.com/switchyard-io/switchyard/pkg/subject"
	"github.com/switchyard-io/switchyard/services/streamsvc/internal/store"
)

// consumer is one JetStream consumer of a stream. Its goroutine owns its
// state: pull requests, acks and "the stream changed" signals arrive on
// channels, so nothing in the delivery path takes a lock.
type consumer struct {
	s         *stream
	name      string
	ephemeral bool
	created   time.Time
	file      string // where durable state is kept; "" for none

	mu         sync.Mutex // guards cfg
	cfg        ConsumerConfig
	cfgChanged atomic.Bool // an update to save

	// Acks and pull requests share one channel, in the order they
	// arrived: a client's NAK followed by its next pull must be seen in
	// that order (nats-server handles both inline on the connection).
	events chan consumerEvent
	notify chan struct{} // new messages, or messages removed
	calls  chan func()   // run on the goroutine (info, reset, a backup's positions)
	quit   chan struct{}
	done   chan struct{}
	unsub  []func()

	// What the stream reads to decide interest and workqueue retention:
	// the ack floor and last delivered stream sequence, and membership of
	// the pending set (written by the goroutine under pmu).
	floorSeq, deliveredSeq atomic.Uint64
	pmu                    sync.Mutex

	// Owned by the goroutine.
	pub                  *node.Publisher
	filters              []string // nil: every subject
	sseq, dseq           uint64   // last delivered stream and consumer sequences
	ackFloorS, ackFloorD uint64
	pending              map[uint64]*pendingAck // by stream sequence
	redeliver            []uint64               // stream sequences due again, oldest first
	deliveries           map[uint64]int         // deliveries so far, for messages not yet acked
	waiting              []*pullRequest
	lastActive           time.Time
	npCount, npTo        uint64 // num_pending: matches in (sseq, npTo]
	removalsSeen         uint64
	dirty                bool
	pushNextHB           time.Time
	lastDelivery         time.Time
	lpsEnd               uint64 // last_per_subject: the stream's last sequence at creation
	ackBuf               []byte
	replayMsgTime        int64 // replay original: the last message's store time
	replayAt             time.Time
	replayTimer          *time.Timer
	flow                 *flowControl // flow_control: nil for none
	rate                 *rateLimiter // rate_limit_bps: nil for none
	rateTimer            *time.Timer
	resumed              time.Time // the pause whose end was advised
	pin                  string    // pinned_client: the pinned request's id ("" for none)
	pinnedAt, pinUntil   time.Time // when pinned; when the pin lapses without a request
}

type pendingAck struct {
	dseq     uint64
	deadline time.Time
	ts       int64 // when delivered, unix nanos
}

type pullRequest struct {
	reply     string
	received  time.Time
	batch     int
	maxBytes  int
	noWait    bool
	expires   time.Time // zero: none
	heartbeat time.Duration
	nextHB    time.Time
	delivered int
	// maxBytes was set: the request ends when it is used up.
	bytesLimited bool
	bad          string // a request that could not be read: the status to answer
	json         bool   // a JSON request (the only kind with a priority group)
	prio         priorityGroup
}

type ackMsg struct {
	subject, reply string
	data           []byte
}

// consumerEvent is an ack, a pull request, or the answer to a flow
// control request (the subject it was sent to).
type consumerEvent struct {
	ack       *ackMsg
	pull      *pullRequest
	flowReply string
}

// consumerState is what a durable consumer keeps on disk.
type consumerState struct {
	Config    ConsumerConfig      `json:"config"`
	Created   time.Time           `json:"created"`
	Delivered [2]uint64           `json:"delivered"` // stream, consumer
	AckFloor  [2]uint64           `json:"ack_floor"`
	Pending   map[uint64][2]int64 `json:"pending,omitempty"` // stream seq -> consumer seq, delivered at
	Counts    map[uint64]int      `json:"redelivered,omitempty"`
}

// consumerTick paces ack timeouts, request expiry and heartbeats.
const consumerTick = 50 * time.Millisecond

// stateFlush is how often a durable consumer's changed state is written.
const stateFlush = 100 * time.Millisecond

func newConsumer(s *stream, name string, cfg ConsumerConfig, created time.Time, ephemeral bool) *consumer {
	c := &consumer{s: s, name: name, cfg: cfg, created: created, ephemeral: ephemeral,
		events: make(chan consumerEvent, 1024), notify: make(chan struct{}, 1),
		calls: make(chan func()), quit: make(chan struct{}), done: make(chan struct{}),
		pub: s.e.srv.NewPublisher(), pending: map[uint64]*pendingAck{}, deliveries: map[uint64]int{},
		lastActive: time.Now()}
	if cfg.FilterSubject != "" {
		c.filters = []string{cfg.FilterSubject}
	} else if len(cfg.FilterSubjects) > 0 {
		c.filters = cfg.FilterSubjects
	}
	if !ephemeral && s.config().Storage == storageFile && !cfg.MemoryStorage {
		c.file = filepath.Join(s.dir, "consumers", name+".json")
	}
	if cfg.FlowControl && cfg.DeliverSubject != "" {
		c.flow = newFlowControl() // flow_control can not be updated: set once
	}
	return c
}

// start positions a new consumer by its deliver policy.
func (c *consumer) position() {
	cfg := c.cfg
	st := c.s.store.State()
	switch cfg.DeliverPolicy {
	case "all", "":
		c.sseq = st.FirstSeq - 1
	case "last":
		if m, err := c.loadLast(); err == nil {
			c.sseq = m.Seq - 1
		} else {
			c.sseq = st.LastSeq
		}
	case "new":
		c.sseq = st.LastSeq
	case "by_start_sequence":
		c.sseq = max(cfg.OptStartSeq, 1) - 1
	case "by_start_time":
		c.sseq = st.LastSeq
		start := cfg.OptStartTime.UnixNano()
		for seq := st.FirstSeq; ; {
			m, err := c.s.store.LoadNext(">", seq)
			if err != nil {
				break
			}
			if m.Time >= start {
				c.sseq = m.Seq - 1
				break
			}
			seq = m.Seq + 1
		}
	case "last_per_subject":
		// Deliver the newest message of each subject: start at the oldest
		// of them and skip the rest as they come (see skipOlder).
		c.sseq, c.lpsEnd = st.LastSeq, st.LastSeq
		for _, m := range c.lastPerSubject() {
			if m-1 < c.sseq {
				c.sseq = m - 1
			}
		}
	}
	c.ackFloorS = c.sseq
	c.npTo = c.sseq
	c.publishPositions()
}

func (c *consumer) loadLast() (store.Msg, error) {
	var best store.Msg
	var err error = store.ErrNotFound
	for _, f := range c.filterList() {
		if m, e := c.s.store.LoadLast(f); e == nil && m.Seq > best.Seq {
			best, err = m, nil
		}
	}
	return best, err
}

// lastPerSubject is the newest sequence of each subject the consumer takes.
func (c *consumer) lastPerSubject() []uint64 {
	var out []uint64
	for _, f := range c.filterList() {
		for subj := range c.s.store.SubjectCounts(f) {
			if m, err := c.s.store.LoadLast(subj); err == nil {
				out = append(out, m.Seq)
			}
		}
	}
	return out
}

func (c *consumer) filterList() []string {
	if len(c.filters) == 0 {
		return []string{">"}
	}
	return c.filters
}

// next is the first message at or after seq the consumer takes. A
// message damaged on disk is skipped (the store reports it as lost).
func (c *consumer) next(seq uint64) (store.Msg, bool) {
	for {
		at, ok := c.nextSeq(seq)
		if !ok {
			return store.Msg{}, false
		}
		m, err := c.s.store.Get(at)
		if err == nil {
			return m, true
		}
		if errors.Is(err, store.ErrCorrupt) {
			c.s.e.log.Errorf("Consumer %s > %s > %s: message %d is damaged in storage and skipped: %v", c.s.account, c.s.cfg.Name, c.name, at, err)
		}
		seq = at + 1 // damaged, or removed meanwhile
	}
}

// nextSeq is the sequence of the first message at or after seq the
// consumer takes, from the store's index.
func (c *consumer) nextSeq(seq uint64) (uint64, bool) {
	best, found := uint64(0), false
	for _, f := range c.filterList() {
		if at, ok := c.s.store.NextSeq(f, seq); ok && (!found || at < best) {
			best, found = at, true
		}
	}
	return best, found
}

func (c *consumer) config() ConsumerConfig {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

func (c *consumer) isPull() bool { return c.config().DeliverSubject == "" }

// wake tells the goroutine the stream changed.
func (c *consumer) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// run is the consumer's goroutine.
func (c *consumer) run() {
	defer close(c.done)
	tick := time.NewTicker(consumerTick)
	defer tick.Stop()
	lastFlush := time.Now()
	var ticked time.Time // the tick this turn of the loop handles (zero: none)
	for {
		select {
		case <-c.quit:
			c.saveState()
			for _, t := range []*time.Timer{c.replayTimer, c.rateTimer} {
				if t != nil {
					t.Stop()
				}
			}
			return
		case <-c.notify:
		case ev := <-c.events:
			c.handle(ev)
		drain:
			for range 1024 {
				select {
				case ev := <-c.events:
					c.handle(ev)
				default:
					break drain
				}
			}
		case fn := <-c.calls:
			fn() // then pump: an unpin or a reset may let messages go
		case now := <-tick.C:
			ticked = now
			if c.cfgChanged.Swap(false) {
				c.dirty = true
			}
			c.timeouts(now)
			c.resumeWhenDue(now)
			if c.pin != "" {
				c.pinExpired(c.config(), now)
			}
			if c.dirty && now.Sub(lastFlush) >= stateFlush {
				c.saveState()
				lastFlush = now
			}
			if c.expired(now) {
				go c.s.e.dropEphemeral(c)
			}
		}
		c.pump()
		if !ticked.IsZero() {
			c.idleHeartbeat(c.config(), ticked)
			ticked = time.Time{}
		}
	}
}

func (c *consumer) handle(ev consumerEvent) {
	switch {
	case ev.ack != nil:
		c.processAck(*ev.ack)
	case ev.pull != nil:
		c.addPull(*ev.pull)
	case c.flow != nil:
		c.flow.answered(ev.flowReply) // the run loop's pump resumes delivery
	}
}

// send queues an event from a delivering goroutine; false when the
// consumer is gone.
func (c *consumer) send(ev consumerEvent) bool {
	select {
	case c.events <- ev:
		return true
	case <-c.done:
		return false
	}
}

// expired reports whether an ephemeral consumer was inactive past its
// inactive_threshold: a pull consumer with no requests, a push consumer
// with nobody subscribed to its deliver subject.
func (c *consumer) expired(now time.Time) bool {
	t := c.config().InactiveThreshold
	if t <= 0 || len(c.waiting) > 0 {
		return false
	}
	if cfg := c.config(); cfg.DeliverSubject != "" && c.pushActive(cfg) {
		c.lastActive = now
		return false
	}
	return now.Sub(c.lastActive) > t
}

// pushActive reports whether a push consumer's deliver subject has a
// subscriber, here or on another node (checked once per pump, not per
// message: the next tick sees a subscriber that comes or goes).
func (c *consumer) pushActive(cfg ConsumerConfig) bool {
	return c.pub.HasInterest(c.s.account, cfg.DeliverSubject)
}

// addPull queues a pull request, or refuses it at once.
func (c *consumer) addPull(r pullRequest) {
	c.lastActive = time.Now()
	if r.bad != "" {
		c.status(r.reply, r.bad, "")
		return
	}
	cfg := c.config()
	if cfg.MaxWaiting > 0 && len(c.waiting) >= cfg.MaxWaiting {
		c.status(r.reply, "409 Exceeded MaxWaiting", "")
		return
	}
	if cfg.MaxRequestBatch > 0 && r.batch > cfg.MaxRequestBatch {
		c.status(r.reply, fmt.Sprintf("409 Exceeded MaxRequestBatch of %d", cfg.MaxRequestBatch), "")
		return
	}
	if r.json && (cfg.PriorityPolicy != "" || r.prio != priorityGroup{}) {
		if bad := c.checkPriority(cfg, &r, c.lastActive); bad != "" {
			c.status(r.reply, bad, "")
			return
		}
	}
	if r.noWait && c.numPending() == 0 && len(c.redeliver) == 0 {
		c.status(r.reply, "404 No Messages", "")
		return
	}
	r.received = c.lastActive
	if r.heartbeat > 0 {
		r.nextHB = r.received.Add(r.heartbeat)
	}
	rr := r
	c.waiting = append(c.waiting, &rr)
}

// pullInterestGrace is how long a pull request counts as listened to
// before its client's interest in the reply subject has reached streamsvc:
// the subscription travels through the router tier, the request straight
// over the mesh, and may arrive first. Well above that trip (under a
// millisecond on one host), and short, because a request whose client
// left meanwhile takes messages until it passes.
const pullInterestGrace = time.Second

// replyGone reports whether nobody listens any more on a pull request's
// reply subject (its client unsubscribed or left). nats-server drops such
// requests, so their messages go to live ones, not to nobody until the
// ack wait ends.
func (c *consumer) replyGone(r *pullRequest, now time.Time) bool {
	return now.Sub(r.received) > pullInterestGrace && !c.pub.HasInterest(c.s.account, r.reply)
}

// status sends a status message (no payload) to subj.
func (c *consumer) status(subj, status, extra string) {
	c.pub.Publish(c.s.account, subj, "", []byte("NATS/1.0 "+status+"\r\n"+extra+"\r\n"), nil)
	c.pub.Flush()
}

// pump delivers what it can: to waiting pull requests, or to the push
// consumer's deliver subject.
func (c *consumer) pump() {
	if c.removalsSeen != c.s.removals.Load() {
		c.removalsSeen = c.s.removals.Load()
		c.npCount, c.npTo = 0, c.sseq // recount what is left
	}
	cfg := c.config()
	if cfg.DeliverSubject != "" && !c.pushActive(cfg) {
		return // nobody subscribes to the deliver subject (yet): wait, as nats-server does
	}
	if c.paused(cfg) {
		return
	}
	rate := c.rateLimit(cfg)
	sent := false
	now := time.Now()
	var listened *pullRequest // the last request found still listened to
	for {
		var req *pullRequest
		at := 0 // req's place in c.waiting
		target := cfg.DeliverSubject
		if target == "" {
			if len(c.waiting) == 0 {
				break
			}
			req = c.waiting[0]
			target = req.reply
		} else if c.flow != nil && c.flow.stalled() {
			break // until the client answers the flow control request
		}
		if cfg.AckPolicy != "none" && cfg.MaxAckPending > 0 && len(c.pending) >= cfg.MaxAckPending {
			break
		}
		m, again, ok := c.nextToDeliver()
		if !ok {
			// Nothing more now: no_wait requests end here.
			if req != nil && req.noWait {
				c.waiting = c.waiting[1:]
				if req.delivered == 0 {
					c.status(req.reply, "404 No Messages", "")
				}
				continue
			}
			break
		}
		if !again && cfg.ReplayPolicy == "original" && c.holdForReplay(m) {
			break
		}
		pinned := false
		if req != nil && cfg.PriorityPolicy != "" {
			if at, pinned = c.chooseRequest(cfg); at < 0 {
				c.unread(m, again)
				break // no request may take it now
			}
			req = c.waiting[at]
			target = req.reply
		}
		if req != nil && req != listened {
			if c.replyGone(req, now) {
				// The pin stays: its client may ask again within pinned_ttl.
				c.removeWaiting(at)
				c.unread(m, again)
				continue
			}
			listened = req
		}
		size := int(store.Size(m.Subject, m.Header, m.Data))
		if req != nil && req.maxBytes > 0 && size > req.maxBytes {
			c.removeWaiting(at)
			c.status(req.reply, "409 Message Size Exceeds MaxBytes", "")
			if pinned {
				c.clearPin() // the pin goes to the next request
			}
			c.unread(m, again)
			continue
		}
		out := c.prepare(cfg, m)
		if cfg.PriorityPolicy == policyPinned {
			out.hdr = addHeader(out.hdr, "Nats-Pin-Id", c.pin)
		}
		if rate != nil && c.holdForRate(rate, len(m.Subject)+len(out.reply)+len(out.hdr)+len(out.data)) {
			c.unread(m, again)
			break
		}
		c.deliver(cfg, target, m, out)
		sent = true
		if req != nil {
			req.delivered++
			req.batch--
			if req.maxBytes > 0 {
				req.maxBytes -= size
			}
			if req.batch <= 0 || (req.bytesLimited && req.maxBytes <= 0) {
				c.removeWaiting(at)
			}
		}
	}
	if sent {
		c.pub.Flush()
	}
}

// holdForReplay keeps m back (unread) until its turn under replay
// original: as long after the previous message's delivery as it was
// stored after that message. It reports whether m was held.
func (c *consumer) holdForReplay(m store.Msg) bool {
	now := time.Now()
	if c.replayMsgTime != 0 {
		due := c.replayAt.Add(time.Duration(m.Time - c.replayMsgTime))
		if wait := due.Sub(now); wait > time.Millisecond {
			c.unread(m, false)
			if c.replayTimer != nil {
				c.replayTimer.Stop()
			}
			c.replayTimer = time.AfterFunc(wait, c.wake)
			return true
		}
	}
	c.replayMsgTime, c.replayAt = m.Time, now
	return false
}

// nextToDeliver is the next message: a redelivery first, else the next
// new one. again says it is a redelivery.
func (c *consumer) nextToDeliver() (store.Msg, bool, bool) {
	for len(c.redeliver) > 0 {
		seq := c.redeliver[0]
		c.redeliver = c.redeliver[1:]
		if _, ok := c.pending[seq]; !ok {
			continue // acked meanwhile
		}
		if max := c.config().MaxDeliver; max > 0 && c.deliveries[seq] >= max {
			c.adviseDelivery("MAX_DELIVERIES", seq, 0, "")
			c.forget(seq, false) // delivered max_deliver times: given up, not acknowledged
			continue
		}
		m, err := c.s.store.Get(seq)
		if err != nil {
			c.forget(seq, false) // purged or deleted: nothing to redeliver
			continue
		}
		return m, true, true
	}
	m, ok := c.next(c.sseq + 1)
	if !ok {
		return store.Msg{}, false, false
	}
	if m.Seq <= c.lpsEnd {
		// last_per_subject's first pass: only each subject's newest
		// message as of the consumer's creation.
		if last, err := c.s.store.LoadLast(m.Subject); err == nil && last.Seq != m.Seq && last.Seq <= c.lpsEnd {
			c.advance(m.Seq)
			return c.nextToDeliver()
		}
	}
	c.advance(m.Seq)
	return m, false, true
}

// advance moves the consumer past stream sequence seq (a new message).
func (c *consumer) advance(seq uint64) {
	if seq <= c.npTo {
		if c.npCount > 0 {
			c.npCount--
		}
	} else {
		c.npTo, c.npCount = seq, 0
	}
	c.sseq = seq
}

// unread puts a message taken by nextToDeliver back.
func (c *consumer) unread(m store.Msg, again bool) {
	if again {
		c.redeliver = append([]uint64{m.Seq}, c.redeliver...)
		return
	}
	c.sseq = m.Seq - 1
	c.npCount++
	if c.npTo < m.Seq {
		c.npTo = m.Seq
	}
}

// outgoing is a message as it is about to be delivered.
type outgoing struct {
	count     int // the how-manyth delivery
	reply     string
	hdr, data []byte
}

// prepare makes m's delivery: its ack subject, and its headers and data.
func (c *consumer) prepare(cfg ConsumerConfig, m store.Msg) outgoing {
	count := c.deliveries[m.Seq] + 1
	out := outgoing{count: count, reply: c.ackSubject(count, m.Seq, c.dseq+1, m.Time, c.numPending()),
		hdr: m.Header, data: m.Data}
	if cfg.HeadersOnly {
		out.hdr = addHeader(out.hdr, "Nats-Msg-Size", strconv.Itoa(len(out.data)))
		out.data = nil
	}
	return out
}

// deliver sends one prepared message with its ack subject.
func (c *consumer) deliver(cfg ConsumerConfig, target string, m store.Msg, out outgoing) {
	now := time.Now()
	c.dseq++
	c.pub.PublishAs(c.s.account, target, m.Subject, out.reply, out.hdr, out.data)
	if c.flow != nil && c.flow.delivered(len(target)+len(out.reply)+len(out.hdr)+len(out.data)) {
		c.askFlowControl(target)
	}
	c.lastDelivery = now
	c.pushNextHB = now.Add(cfg.Heartbeat)
	if cfg.AckPolicy == "none" {
		c.ackFloorS, c.ackFloorD = m.Seq, c.dseq
		c.publishPositions()
		c.s.consumed(m.Seq)
	} else {
		c.pmu.Lock()
		c.pending[m.Seq] = &pendingAck{dseq: c.dseq, deadline: now.Add(c.ackWait(cfg, out.count)), ts: now.UnixNano()}
		c.pmu.Unlock()
		c.deliveries[m.Seq] = out.count
		c.publishPositions()
	}
	c.dirty = true
}

// ackSubject is the reply subject of a delivery, which the client acks
// to and reads its metadata from:
// $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>.
func (c *consumer) ackSubject(count int, sseq, dseq uint64, ts int64, pending uint64) string {
	b := c.ackBuf[:0]
	b = append(b, "$JS.ACK."...)
	b = append(b, c.s.cfg.Name...)
	b = append(b, '.')
	b = append(b, c.name...)
	for _, n := range []uint64{uint64(count), sseq, dseq, uint64(ts), pending} {
		b = append(b, '.')
		b = strconv.AppendUint(b, n, 10)
	}
	c.ackBuf = b
	return string(b)
}

// ackWait is how long the count-th delivery waits for its ack (backoff
// when set).
func (c *consumer) ackWait(cfg ConsumerConfig, count int) time.Duration {
	if n := len(cfg.BackOff); n > 0 {
		return cfg.BackOff[min(count-1, n-1)]
	}
	return cfg.AckWait
}

// numPending counts the stream's messages after sseq the consumer takes.
func (c *consumer) numPending() uint64 {
	last := c.s.lastSeq.Load()
	for c.npTo < last {
		at, ok := c.nextSeq(c.npTo + 1)
		if !ok || at > last {
			c.npTo = last
			break
		}
		c.npCount++
		c.npTo = at
	}
	return c.npCount
}

// forget drops a message from the pending set (acked, terminated, or out
// of deliveries) and moves the ack floor: the floor is just below the
// oldest pending message, found by walking up from the one removed
// (acks mostly come in order, so the walk is short).
func (c *consumer) forget(seq uint64, acked bool) {
	c.pmu.Lock()
	delete(c.pending, seq)
	c.pmu.Unlock()
	delete(c.deliveries, seq)
	c.dirty = true
	if len(c.pending) == 0 {
		c.ackFloorS, c.ackFloorD = c.sseq, c.dseq
	} else {
		low := c.lowestPending()
		c.ackFloorS, c.ackFloorD = low-1, c.pending[low].dseq-1
	}
	c.publishPositions()
	if acked {
		c.s.consumed(seq)
	}
}

// publishPositions makes the ack floor and delivered sequence visible to
// the stream.
func (c *consumer) publishPositions() {
	c.floorSeq.Store(c.ackFloorS)
	c.deliveredSeq.Store(c.sseq)
}

// hasAcked reports, from any goroutine, whether the consumer is done with
// stream sequence seq (a message it takes): acknowledged, or delivered
// with no ack expected.
func (c *consumer) hasAcked(seq uint64) bool {
	if seq <= c.floorSeq.Load() {
		return true
	}
	if seq > c.deliveredSeq.Load() {
		return false
	}
	c.pmu.Lock()
	_, pending := c.pending[seq]
	c.pmu.Unlock()
	return !pending
}

// takes reports whether the consumer's filters take subj.
func (c *consumer) takes(subj string) bool {
	if len(c.filters) == 0 {
		return true
	}
	for _, f := range c.filters {
		if subject.Matches(f, subj) {
			return true
		}
	}
	return false
}

// lowestPending is the oldest pending stream sequence (pending not empty).
func (c *consumer) lowestPending() uint64 {
	// Walk up from the floor: cheap when acks come in order.
	for s, n := c.ackFloorS+1, 0; s <= c.sseq && n < 1024; s, n = s+1, n+1 {
		if _, ok := c.pending[s]; ok {
			return s
		}
	}
	low := uint64(0)
	for s := range c.pending {
		if low == 0 || s < low {
			low = s
		}
	}
	return low
}

// timeouts sends due messages again, ends expired pull requests and
// sends heartbeats.
func (c *consumer) timeouts(now time.Time) {
	var due []uint64
	for seq, p := range c.pending {
		if !p.deadline.IsZero() && now.After(p.deadline) {
			p.deadline = time.Time{} // queued once
			due = append(due, seq)
		}
	}
	if len(due) > 0 {
		slices.Sort(due)
		c.redeliver = append(c.redeliver, due...)
	}
	kept := c.waiting[:0]
	for _, r := range c.waiting {
		switch {
		case !r.expires.IsZero() && now.After(r.expires):
			c.status(r.reply, "408 Request Timeout",
				fmt.Sprintf("Nats-Pending-Messages: %d\r\nNats-Pending-Bytes: %d\r\n", r.batch, max(r.maxBytes, 0)))
			continue
		case c.replyGone(r, now):
			continue // dropped without a word, as nats-server does
		case r.heartbeat > 0 && now.After(r.nextHB):
			c.heartbeat(r.reply, "")
			r.nextHB = now.Add(r.heartbeat)
		}
		kept = append(kept, r)
	}
	c.waiting = kept
}

// idleHeartbeat sends a push consumer's idle heartbeat when it delivered
// nothing for its interval. The run loop calls it after the tick's pump,
// so what can be delivered goes first (a delivery restarts the interval):
// a subscriber whose interest just reached streamsvc gets its messages,
// not a heartbeat naming none. Only while someone subscribes, as
// deliveries.
func (c *consumer) idleHeartbeat(cfg ConsumerConfig, now time.Time) {
	if cfg.DeliverSubject != "" && cfg.Heartbeat > 0 && now.After(c.pushNextHB) && c.pushActive(cfg) {
		c.heartbeat(cfg.DeliverSubject, c.stalledHeader())
		c.pushNextHB = now.Add(cfg.Heartbeat)
	}
}

// heartbeat sends an idle heartbeat, with extra header lines (for a push
// consumer stalled on flow control).
func (c *consumer) heartbeat(subj, extra string) {
	c.status(subj, "100 Idle Heartbeat", fmt.Sprintf("Nats-Last-Consumer: %d\r\nNats-Last-Stream: %d\r\n%s", c.dseq, c.sseq, extra))
}

// processAck applies one ack sent to the consumer's ack subject.
func (c *consumer) processAck(a ackMsg) {
	c.lastActive = time.Now()
	sseq, ok := ackStreamSeq(a.subject)
	if !ok {
		return
	}
	body := a.data
	cfg := c.config()
	switch {
	case len(body) == 0 || bytes.HasPrefix(body, []byte("+ACK")):
		c.ack(cfg, sseq)
	case bytes.HasPrefix(body, []byte("-NAK")):
		if p, ok := c.pending[sseq]; ok {
			c.adviseDelivery("MSG_NAKED", sseq, p.dseq, "")
			delay := time.Duration(0)
			var d struct {
				Delay time.Duration `json:"delay"`
			}
			if rest := bytes.TrimSpace(body[4:]); len(rest) > 0 && json.Unmarshal(rest, &d) == nil {
				delay = d.Delay
			}
			if delay > 0 {
				p.deadline = time.Now().Add(delay)
			} else {
				p.deadline = time.Time{}
				c.redeliver = append(c.redeliver, sseq)
			}
		}
	case bytes.HasPrefix(body, []byte("+WPI")):
		if p, ok := c.pending[sseq]; ok && !p.deadline.IsZero() {
			p.deadline = time.Now().Add(c.ackWait(cfg, c.deliveries[sseq]))
		}
	case bytes.HasPrefix(body, []byte("+NXT")):
		c.ack(cfg, sseq)
		if a.reply != "" {
			r, _ := parsePullRequest(bytes.TrimSpace(body[4:]))
			r.reply = a.reply
			c.addPull(r)
			a.reply = "" // the messages are the answer
		}
	case bytes.HasPrefix(body, []byte("+TERM")):
		if p, ok := c.pending[sseq]; ok {
			c.adviseDelivery("MSG_TERMINATED", sseq, p.dseq, string(bytes.TrimSpace(body[5:])))
			c.forget(sseq, true)
		}
	}
	if a.reply != "" {
		// A double ack (AckSync): confirm it was processed.
		c.pub.Publish(c.s.account, a.reply, "", nil, nil)
		c.pub.Flush()
	}
}

// ackStreamSeq reads the stream sequence from an ack subject,
// $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>,
// without allocating.
func ackStreamSeq(subj string) (uint64, bool) {
	tokens, start := 0, 0
	var seq string
	for i := 0; i <= len(subj); i++ {
		if i == len(subj) || subj[i] == '.' {
			if tokens == 5 {
				seq = subj[start:i]
			}
			tokens++
			start = i + 1
		}
	}
	if tokens != 9 {
		return 0, false
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	return n, err == nil
}

func (c *consumer) ack(cfg ConsumerConfig, sseq uint64) {
	if cfg.AckPolicy == "all" {
		for s := range c.pending {
			if s <= sseq {
				c.forget(s, true)
			}
		}
		return
	}
	if _, ok := c.pending[sseq]; ok {
		if cfg.SampleFrequency != "" {
			c.sampleAck(cfg, sseq)
		}
		c.forget(sseq, true)
	}
}

// info is the consumer's ConsumerInfo (on its goroutine).
func (c *consumer) info() ConsumerInfo {
	cfg := c.config()
	redelivered := 0
	for _, n := range c.deliveries {
		if n > 1 {
			redelivered++
		}
	}
	var last *time.Time
	if !c.lastDelivery.IsZero() {
		t := c.lastDelivery.UTC()
		last = &t
	}
	remaining := time.Until(pauseTime(cfg))
	return ConsumerInfo{Stream: c.s.cfg.Name, Name: c.name, Created: c.created, Config: cfg,
		Delivered:     SequenceInfo{Consumer: c.dseq, Stream: c.sseq, Last: last},
		AckFloor:      SequenceInfo{Consumer: c.ackFloorD, Stream: c.ackFloorS},
		NumAckPending: len(c.pending), NumRedelivered: redelivered, NumWaiting: len(c.waiting),
		NumPending: c.numPending(), Cluster: &ClusterInfo{Leader: c.s.e.srv.Name()},
		Paused: remaining > 0, PauseRemaining: max(remaining, 0), TS: time.Now().UTC(),
		PriorityGroups: c.priorityState(cfg)}
}

// snapshot asks the goroutine for the info.
func (c *consumer) snapshot() (ConsumerInfo, bool) {
	var info ConsumerInfo
	ok := c.call(func() { info = c.info() })
	return info, ok
}

// call runs fn on the consumer's goroutine and waits (false: it stopped).
func (c *consumer) call(fn func()) bool {
	done := make(chan struct{})
	select {
	case c.calls <- func() { fn(); close(done) }:
		<-done
		return true
	case <-c.done:
		return false
	}
}

// saveState writes a durable consumer's state (atomically).
func (c *consumer) saveState() {
	if c.file == "" || !c.dirty {
		return
	}
	b, err := json.Marshal(c.positions())
	if err == nil {
		err = os.MkdirAll(filepath.Dir(c.file), 0o750)
	}
	if err == nil {
		tmp := c.file + ".tmp"
		if err = writeSynced(tmp, b); err == nil {
			err = os.Rename(tmp, c.file)
		}
	}
	if err != nil {
		c.s.e.log.Errorf("Consumer %s > %s > %s: saving its state failed: %v; after a restart it may deliver again what was acknowledged since the last save", c.s.account, c.s.cfg.Name, c.name, err)
		return
	}
	c.dirty = false
}

// positions is the consumer's state as saved (on its goroutine).
func (c *consumer) positions() consumerState {
	st := consumerState{Config: c.config(), Created: c.created, Delivered: [2]uint64{c.sseq, c.dseq},
		AckFloor: [2]uint64{c.ackFloorS, c.ackFloorD}, Pending: map[uint64][2]int64{}, Counts: map[uint64]int{}}
	for s, p := range c.pending {
		st.Pending[s] = [2]int64{int64(p.dseq), p.ts}
	}
	for s, n := range c.deliveries {
		st.Counts[s] = n
	}
	return st
}

// livePositions asks the consumer's goroutine for its state now (false:
// the consumer stopped).
func (c *consumer) livePositions() (consumerState, bool) {
	var st consumerState
	ok := c.call(func() { st = c.positions() })
	return st, ok
}

// restore loads a durable consumer's saved state: a pending message is due
// again its ack wait after it was delivered, as on nats-server (at once
// when that passed while the service was down).
func (c *consumer) restore(st consumerState) {
	c.sseq, c.dseq = st.Delivered[0], st.Delivered[1]
	c.ackFloorS, c.ackFloorD = st.AckFloor[0], st.AckFloor[1]
	c.npTo = c.sseq
	now := time.Now()
	for s, p := range st.Pending {
		delivered := now
		if p[1] > 0 {
			delivered = time.Unix(0, p[1])
		}
		c.pending[s] = &pendingAck{dseq: uint64(p[0]), ts: p[1], deadline: delivered.Add(c.ackWait(st.Config, max(st.Counts[s], 1)))}
	}
	c.publishPositions()
	for s, n := range st.Counts {
		c.deliveries[s] = n
	}
}

func (c *consumer) stop() {
	for _, u := range c.unsub {
		u()
	}
	select {
	case <-c.quit:
	default:
		close(c.quit)
	}
	<-c.done
}

// parsePullRequest reads a CONSUMER.MSG.NEXT body: JSON, a number (the
// batch), or nothing (one message).
func parsePullRequest(body []byte) (pullRequest, error) {
	r := pullRequest{batch: 1}
	body = bytes.TrimSpace(body)
	switch {
	case len(body) == 0:
	case body[0] == '{':
		var req struct {
			Batch     int           `json:"batch"`
			Expires   time.Duration `json:"expires"`
			NoWait    bool          `json:"no_wait"`
			MaxBytes  int           `json:"max_bytes"`
			Heartbeat time.Duration `json:"idle_heartbeat"`
			// Priority groups.
			Group         string `json:"group"`
			MinPending    int64  `json:"min_pending"`
			MinAckPending int64  `json:"min_ack_pending"`
			ID            string `json:"id"`
			Priority      int    `json:"priority"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return r, err
		}
		r.json = true
		r.prio = priorityGroup{group: req.Group, minPending: req.MinPending, minAckPending: req.MinAckPending, pinID: req.ID, priority: req.Priority}
		r.batch, r.noWait, r.maxBytes, r.heartbeat = max(req.Batch, 1), req.NoWait, req.MaxBytes, req.Heartbeat
		r.bytesLimited = req.MaxBytes > 0
		if req.Expires > 0 {
			r.expires = time.Now().Add(req.Expires)
		}
	default:
		n, err := strconv.Atoi(string(body))
		if err != nil {
			return r, err
		}
		r.batch = max(n, 1)
	}
	return r, nil
}

// addHeader appends key: value to a header block (making one if nil).
func addHeader(hdr []byte, key, value string) []byte {
	if len(hdr) == 0 {
		return []byte("NATS/1.0\r\n" + key + ": " + value + "\r\n\r\n")
	}
	out := append([]byte{}, hdr[:len(hdr)-2]...)
	return append(out, key+": "+value+"\r\n\r\n"...)
}
