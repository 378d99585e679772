package jsapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-io/switchyard/pkg/node"
	"github.com/switchyard-io/switchyard/services/streamsvc/internal/store"
)

// stream is one JetStream stream: its configuration, its store and the
// goroutine that stores what is published to its subjects.
//
// Publishes arrive on in from the node's delivering goroutines (a full
// queue paces the publisher through the mesh). The ingest goroutine takes
// everything queued at once as one batch: it checks each message, appends
// the batch to the store (one fsync for all: group commit), applies the
// limits, and only then sends the PubAcks, so an acknowledged message is
// on disk.
type stream struct {
	e       *Engine
	account string
	dir     string // meta.json and, for file storage, the messages

	mu      sync.Mutex // guards cfg, created
	cfg     StreamConfig
	created time.Time

	store store.Store
	// perSubjectLimit is the max_msgs_per_subject enforceLimits last
	// applied to every subject (ingest goroutine).
	perSubjectLimit int64
	in              chan inbound
	ctl             chan func() // store changes the API makes, run by the ingest goroutine
	// retire carries sequences a consumer is done with, for interest and
	// workqueue retention (the ingest goroutine removes what no one needs).
	retire chan uint64
	quit   chan struct{}
	done   chan struct{}
	unsub  []func()

	cmu       sync.Mutex // guards consumers
	consumers map[string]*consumer
	removals  atomic.Uint64 // counts purges, deletes and limit discards (consumers recount)
	lastSeq   atomic.Uint64 // the store's LastSeq, for consumers' per-message counting
	retires   atomic.Bool   // interest or workqueue retention: consumers report what they are done with
	xf        atomic.Pointer[streamTransforms]

	// Owned by the ingest goroutine.
	pub       *node.Publisher
	msgIDs    map[string]dedupe // Nats-Msg-Id within duplicate_window
	idOrder   []string
	lastMsgID string
	batches   map[string]*atomicBatch // atomic batches being staged (atomic.go)
	ttls      ttlHeap                 // deadlines of messages with a Nats-TTL (ttl.go)
	ttlTimer  *time.Timer             // fires at ttls[0]

	smu      sync.Mutex // guards sourcers
	sourcers []*sourcer // a mirror's or the sources' (source.go)
}

type dedupe struct {
	seq  uint64
	when time.Time
}

// inbound is a published message, copied off the delivering goroutine.
type inbound struct {
	subject string
	reply   string
	hdr     []byte // nil: none
	data    []byte
	src     *sourceMark // from a mirror's or a source's origin
	js      jsHeaders   // its JetStream headers (store1 reads them)
}

// ingestQueue bounds the messages waiting for a stream's ingest goroutine.
const ingestQueue = 8192

// maxBatch bounds one group commit.
const maxBatch = 1024

// metaFile holds a stream's configuration and creation time.
const metaFile = "meta.json"

type streamMeta struct {
	Config  StreamConfig `json:"config"`
	Created time.Time    `json:"created"`
}

// openStream opens (creating when new) the store of a stream and starts it.
func (e *Engine) openStream(account string, cfg StreamConfig, created time.Time) (*stream, error) {
	return e.openStreamOn(account, cfg, created, nil)
}

// openStreamOn is openStream with the store of a memory stream given
// (a restore fills one); nil: a new, empty one.
func (e *Engine) openStreamOn(account string, cfg StreamConfig, created time.Time, mem store.Store) (*stream, error) {
	dir := filepath.Join(e.dir, account, "streams", cfg.Name)
	s := &stream{e: e, account: account, dir: dir, cfg: cfg, created: created,
		in: make(chan inbound, ingestQueue), ctl: make(chan func()), retire: make(chan uint64, 4096), quit: make(chan struct{}), done: make(chan struct{}),
		pub: e.srv.NewPublisher(), msgIDs: map[string]dedupe{}, ttlTimer: time.NewTimer(time.Hour)}
	s.ttlTimer.Stop()
	if cfg.Storage == storageMemory {
		s.store = mem
		if mem == nil {
			s.store = store.NewMemory()
		}
	} else {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, err
		}
		st, err := store.OpenFile(store.FileConfig{Dir: filepath.Join(dir, "msgs"), Sync: e.sync, Interval: e.interval,
			Log: func(format string, a ...any) {
				e.log.Errorf("Stream %s > %s: %s", account, cfg.Name, fmt.Sprintf(format, a...))
			}})
		if err != nil {
			return nil, err
		}
		s.store = st
		if err := s.writeMeta(); err != nil {
			st.Close()
			return nil, err
		}
	}
	s.store = e.meter(account, cfg.Storage, s.store)
	s.lastSeq.Store(s.store.State().LastSeq)
	s.retires.Store(cfg.Retention != retentionLimits)
	s.xf.Store(newStreamTransforms(cfg))
	s.dropTornBatch()
	s.loadTTLs()
	go s.ingest()
	s.openConsumers()
	s.subscribe()
	s.startSources(cfg)
	return s, nil
}

func (s *stream) writeMeta() error {
	s.mu.Lock()
	b, err := json.MarshalIndent(streamMeta{Config: s.cfg, Created: s.created}, "", "  ")
	s.mu.Unlock()
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, metaFile+".tmp")
	if err := writeSynced(tmp, b); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.dir, metaFile))
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// subscribe takes the stream's subjects (again, after an update).
func (s *stream) subscribe() {
	for _, u := range s.unsub {
		u()
	}
	s.unsub = s.unsub[:0]
	cfg := s.config()
	for _, subj := range cfg.Subjects {
		s.unsub = append(s.unsub, s.e.srv.SubscribeInternal(s.account, subj, "", s.deliver))
	}
	if cfg.AllowDirect {
		s.directSubscribe(cfg.Name)
	}
}

// deliver runs on the node's delivering goroutine: copy and queue.
func (s *stream) deliver(subj, reply []byte, headerLen int, msg []byte) {
	in := inbound{subject: string(subj), reply: string(reply), data: bytes.Clone(msg)}
	if headerLen >= 0 {
		in.hdr, in.data = in.data[:headerLen:headerLen], in.data[headerLen:]
	}
	select {
	case s.in <- in:
	case <-s.quit:
	}
}

func (s *stream) config() StreamConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// do runs fn on the ingest goroutine (the store has one writer) and
// waits for it.
func (s *stream) do(fn func()) {
	done := make(chan struct{})
	select {
	case s.ctl <- func() { fn(); close(done) }:
		<-done
	case <-s.done:
	}
}

// consumed is called by a consumer (on its goroutine) when it is done
// with stream sequence seq; under interest or workqueue retention the
// stream may now remove it.
func (s *stream) consumed(seq uint64) {
	if !s.retires.Load() {
		return // limits retention: acks do not remove messages
	}
	select {
	case s.retire <- seq:
	case <-s.quit:
	}
}

// drainRetired handles the retirements already queued.
func (s *stream) drainRetired() {
	for {
		select {
		case seq := <-s.retire:
			s.retireMsg(seq)
		default:
			return
		}
	}
}

// retireMsg removes seq if its retention no longer needs it: a workqueue
// message once any consumer acknowledged it, an interest message once
// every consumer taking its subject did. Consumers' pending counts need
// no recount: every consumer that counted it is past it.
func (s *stream) retireMsg(seq uint64) {
	if s.config().Retention == retentionWorkQueue || s.unneeded(seq) {
		s.store.Delete(seq)
	}
}

// unneeded reports whether every consumer taking seq's subject is done
// with it (interest retention).
func (s *stream) unneeded(seq uint64) bool {
	m, err := s.store.Get(seq)
	if err != nil {
		return false
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	for _, c := range s.consumers {
		if c.takes(m.Subject) && !c.hasAcked(seq) {
			return false
		}
	}
	return true
}

func (s *stream) anyConsumerTakes(subj string) bool {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	for _, c := range s.consumers {
		if c.takes(subj) {
			return true
		}
	}
	return false
}

// retireAll removes, under interest retention, the messages no remaining
// consumer needs (after a consumer is deleted).
func (s *stream) retireAll() {
	if s.config().Retention != retentionInterest {
		return
	}
	s.do(func() {
		removed := false
		for seq := s.store.State().FirstSeq; ; seq++ {
			at, ok := s.store.NextSeq(">", seq)
			if !ok {
				break
			}
			seq = at
			if s.unneeded(at) {
				s.store.Delete(at)
				removed = true
			}
		}
		if removed {
			s.removed()
		}
	})
}

// wakeConsumers tells every consumer the stream changed.
func (s *stream) wakeConsumers() {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	for _, c := range s.consumers {
		c.wake()
	}
}

// removed notes that messages left the stream other than by being
// consumed (consumers recount their pending).
func (s *stream) removed() {
	s.removals.Add(1)
	s.wakeConsumers()
}

// stop ends the consumers and the ingest goroutine and closes the store.
func (s *stream) stop() {
	for _, u := range s.unsub {
		u()
	}
	s.cmu.Lock()
	consumers := make([]*consumer, 0, len(s.consumers))
	for _, c := range s.consumers {
		consumers = append(consumers, c)
	}
	s.cmu.Unlock()
	for _, c := range consumers {
		c.stop()
	}
	s.stopSources()
	close(s.quit)
	<-s.done
	s.ttlTimer.Stop()
	s.store.Close()
}

// ingest is the stream's goroutine: batches of publishes, and the age
// limit once a second.
func (s *stream) ingest() {
	defer close(s.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	batch := make([]inbound, 0, maxBatch)
	for {
		select {
		case <-s.quit:
			return
		case now := <-tick.C:
			s.expire()
			s.expireBatches(now)
			continue
		case <-s.ttlTimer.C:
			s.expireTTLs()
			continue
		case fn := <-s.ctl:
			fn()
			continue
		case seq := <-s.retire:
			s.retireMsg(seq)
			s.drainRetired()
			continue
		case in := <-s.in:
			batch = append(batch[:0], in)
		}
	more:
		for len(batch) < maxBatch {
			select {
			case in := <-s.in:
				batch = append(batch, in)
			default:
				break more
			}
		}
		s.store1(batch)
		for i := range batch {
			batch[i] = inbound{}
		}
	}
}

// accepted is a message of a batch that passed its checks.
type accepted struct {
	idx    int // in the batch
	msgID  string
	rollup string // its Nats-Rollup: rollupSubject or rollupAll, applied once it is stored
}

// Nats-Rollup values: a stored message replaces every earlier message on
// its subject, or in the stream.
const (
	rollupSubject = "sub"
	rollupAll     = "all"
)

// store1 checks, stores and acknowledges one batch of publishes. The
// messages of atomic batches (Nats-Batch-Id) are staged or committed in
// their place in it (atomic.go); the runs of plain messages between them
// are stored as they come.
func (s *stream) store1(batch []inbound) {
	cfg := s.config()
	if cfg.Mirror != nil {
		s.storeMirrored(cfg, batch)
		return
	}
	start := 0
	for i := range batch {
		if batch[i].hdr == nil {
			continue
		}
		batch[i].js = readJSHeaders(batch[i].hdr)
		if batch[i].src != nil || batch[i].js.batchID == "" {
			continue
		}
		s.storeRun(cfg, batch[start:i], nil)
		start = i + 1
		s.atomicMsg(cfg, &batch[i])
	}
	s.storeRun(cfg, batch[start:], nil)
	s.pub.Flush()
}

// storeRun checks, stores and acknowledges a run of messages. With
// commit, the run is an atomic batch: one refusal refuses it all, and
// only the commit is answered, with the batch's PubAck.
func (s *stream) storeRun(cfg StreamConfig, batch []inbound, commit *atomicCommit) {
	if len(batch) == 0 {
		return
	}
	st := s.store.State()
	lastSeq := st.LastSeq
	msgs := make([]store.Msg, 0, len(batch))
	acc := make([]accepted, 0, len(batch))
	acks := make([][]byte, len(batch))
	now := time.Now()
	s.pruneMsgIDs(cfg, now)
	pending := map[string]uint64{} // msg ids in this batch -> position+1
	var totals map[string]*big.Int // counters: the batch's totals per subject
	var vals []string              // counters: each message's total for its PubAck
	if cfg.AllowMsgCounter {
		totals, vals = map[string]*big.Int{}, make([]string, len(batch))
	}
	count, bytes := st.Msgs, st.Bytes
	budget := s.e.storageBudget(s.account, cfg.Storage)
	var perSubject map[string]uint64 // this batch's accepted messages per subject (discard new)
	if cfg.Discard == discardNew && cfg.MaxMsgsPerSubject > 0 {
		perSubject = map[string]uint64{}
	}
	xf := s.xf.Load()
	for i := range batch {
		in := &batch[i]
		if in.src == nil {
			in.subject = xf.transformIn(in.subject)
		}
		ack, msgID := s.check(cfg, in, lastSeq, pending)
		if ack == nil && commit != nil && i > 0 && in.js.expLastSeq != "" {
			ack = pubAckError(cfg.Name, errAtomicLastSeqLater) // only the first may expect, as nats-server has it
		}
		if ack != nil {
			if commit != nil {
				commit.refuse(s, ack)
				return
			}
			acks[i] = ack
			continue
		}
		rollup := in.js.rollup
		var total *big.Int
		if cfg.AllowMsgCounter && in.src == nil {
			total = s.counterTotal(in.subject, in.js.incr, totals)
			in.data = counterBody(total)
		}
		size := store.Size(in.subject, in.hdr, in.data)
		apiErr := budget.admit(size)
		if apiErr == nil && cfg.Discard == discardNew {
			apiErr = s.discardNew(cfg, in.subject, rollup != "", count, bytes+size, perSubject)
		}
		if apiErr != nil {
			if commit != nil {
				commit.refuse(s, pubAckError(cfg.Name, apiErr))
				return
			}
			acks[i] = pubAckError(cfg.Name, apiErr)
			continue
		}
		budget.take(size)
		if total != nil {
			totals[in.subject] = total
			vals[i] = total.String()
		}
		count++
		bytes += size
		lastSeq++
		if perSubject != nil {
			perSubject[in.subject]++
		}
		msgs = append(msgs, store.Msg{Subject: in.subject, Header: in.hdr, Data: in.data, Time: now.UnixNano()})
		acc = append(acc, accepted{idx: i, msgID: msgID, rollup: rollup})
		if msgID != "" {
			pending[msgID] = uint64(len(msgs))
		}
	}
	if len(msgs) > 0 {
		var prev []uint64
		if xf.republish != nil {
			prev = s.previousSeqs(msgs, st.LastSeq+1)
		}
		if err := s.store.Append(msgs); err != nil {
			s.e.log.Errorf("Stream %s > %s: storing %d message(s) failed, they are not acknowledged: %v", s.account, cfg.Name, len(msgs), err)
			for _, a := range acc {
				acks[a.idx] = pubAckError(cfg.Name, errStreamStore(err))
			}
			acc = nil
		}
		if commit != nil {
			last := len(acc) - 1
			if len(acc) > 0 {
				b, _ := json.Marshal(PubAck{Stream: cfg.Name, Seq: msgs[last].Seq, Domain: s.e.domain, Batch: commit.id, Count: len(msgs)})
				acks[acc[last].idx] = b
				batch[acc[last].idx].reply = commit.reply
			} else {
				commit.refuse(s, acks[len(acks)-1])
			}
		}
		pa := newPubAcks(cfg.Name, s.e.domain)
		for k, a := range acc {
			seq := msgs[k].Seq
			if a.msgID != "" {
				s.rememberMsgID(a.msgID, seq, now)
			}
			if commit != nil {
				continue // the batch is answered once, on its commit (above)
			}
			acks[a.idx] = pa.ack(seq)
			if vals != nil && vals[a.idx] != "" {
				acks[a.idx], _ = json.Marshal(PubAck{Stream: cfg.Name, Seq: seq, Domain: s.e.domain, Val: vals[a.idx]})
			}
		}
		if len(acc) > 0 {
			s.rollUp(msgs, acc)
			s.stored(cfg, msgs)
			if prev != nil {
				s.republishStored(xf, cfg.Name, msgs, prev)
			}
		}
	}
	for i := range batch {
		if batch[i].reply != "" && acks[i] != nil {
			s.pub.Publish(s.account, batch[i].reply, "", nil, acks[i])
		}
	}
}

// stored follows messages just appended to the store: consumers learn
// of them, interest retention drops those no consumer takes, TTLs are
// tracked and the limits applied.
func (s *stream) stored(cfg StreamConfig, msgs []store.Msg) {
	s.lastSeq.Store(msgs[len(msgs)-1].Seq)
	if cfg.Retention == retentionInterest {
		for k := range msgs {
			if !s.anyConsumerTakes(msgs[k].Subject) {
				s.store.Delete(msgs[k].Seq) // nobody is interested: not kept
			}
		}
	}
	if cfg.AllowMsgTTL {
		s.trackTTLs(msgs)
	}
	s.enforceLimits(cfg, msgs)
	s.wakeConsumers()
}

// check applies a message's headers and the stream's rules; a non-nil
// answer refuses it (or, for a duplicate, acknowledges it again).
func (s *stream) check(cfg StreamConfig, in *inbound, lastSeq uint64, pending map[string]uint64) (ack []byte, msgID string) {
	if cfg.Sealed {
		return pubAckError(cfg.Name, errSealed), ""
	}
	if cfg.MaxMsgSize > 0 && len(in.hdr)+len(in.data) > int(cfg.MaxMsgSize) {
		return pubAckError(cfg.Name, errMsgTooBig), ""
	}
	if len(in.hdr) > 64*1024 {
		return pubAckError(cfg.Name, errHeaderTooBig), ""
	}
	if strings.HasSuffix(in.reply, ".$FI") {
		// A fast batch's message (its control channel is the reply).
		return pubAckError(cfg.Name, errFastBatchUnsupported), ""
	}
	if in.src == nil {
		if apiErr := checkCounter(cfg, in); apiErr != nil {
			return pubAckError(cfg.Name, apiErr), ""
		}
	}
	if in.hdr == nil {
		return nil, ""
	}
	if in.src != nil {
		// From a source: its origin checked what the publisher expected.
		return nil, ""
	}
	if apiErr := checkMsgTTL(cfg, in.js.ttl); apiErr != nil {
		return pubAckError(cfg.Name, apiErr), ""
	}
	if v := in.js.expStream; v != "" && v != cfg.Name {
		return pubAckError(cfg.Name, errExpectedStream), ""
	}
	if v := in.js.expLastSeq; v != "" {
		if want, err := strconv.ParseUint(v, 10, 64); err != nil || want != lastSeq {
			return pubAckError(cfg.Name, errWrongLastSeq(lastSeq)), ""
		}
	}
	if v := in.js.expLastSubjSeq; v != "" {
		want, err := strconv.ParseUint(v, 10, 64)
		var have uint64
		if m, err := s.store.LoadLast(in.subject); err == nil {
			have = m.Seq
		}
		if err != nil || want != have {
			return pubAckError(cfg.Name, errWrongLastSeq(have)), ""
		}
	}
	if v := in.js.expLastMsgID; v != "" && v != s.lastMsgID {
		return pubAckError(cfg.Name, errWrongLastMsgID(s.lastMsgID)), ""
	}
	msgID = in.js.msgID
	if msgID != "" {
		if d, ok := s.msgIDs[msgID]; ok {
			b, _ := json.Marshal(PubAck{Stream: cfg.Name, Seq: d.seq, Duplicate: true, Domain: s.e.domain})
			return b, ""
		}
		if _, ok := pending[msgID]; ok {
			// A duplicate within one batch: its sequence is not known yet;
			// nats-server acknowledges it as a duplicate too.
			b, _ := json.Marshal(PubAck{Stream: cfg.Name, Seq: lastSeq, Duplicate: true, Domain: s.e.domain})
			return b, ""
		}
	}
	// After the duplicate check, as nats-server: a duplicate is
	// acknowledged whatever its rollup.
	if v := in.js.rollup; v != "" {
		if !cfg.AllowRollup || cfg.DenyPurge {
			return pubAckError(cfg.Name, errRollupFailed("rollup not permitted")), ""
		}
		if v != rollupSubject && v != rollupAll {
			return pubAckError(cfg.Name, errRollupFailed(fmt.Sprintf("rollup value invalid: %q", v))), ""
		}
	}
	return nil, msgID
}

func (s *stream) rememberMsgID(id string, seq uint64, now time.Time) {
	s.msgIDs[id] = dedupe{seq: seq, when: now}
	s.idOrder = append(s.idOrder, id)
	s.lastMsgID = id
}

// pruneMsgIDs forgets message ids older than the duplicate window.
func (s *stream) pruneMsgIDs(cfg StreamConfig, now time.Time) {
	n := 0
	for _, id := range s.idOrder {
		if d, ok := s.msgIDs[id]; ok && now.Sub(d.when) > cfg.Duplicates {
			delete(s.msgIDs, id)
			n++
			continue
		}
		break
	}
	s.idOrder = s.idOrder[n:]
}

// discardNew refuses a message a discard-new stream has no room for
// (count and bytes: the stream's with the messages accepted before it,
// bytes including its own), as nats-server's store does: a subject at
// max_msgs_per_subject refuses it under discard_new_per_subject unless
// it rolls up, and otherwise lets it replace its subject's oldest
// message past max_msgs or max_bytes.
func (s *stream) discardNew(cfg StreamConfig, subj string, rollup bool, count, bytes uint64, perSubject map[string]uint64) *ApiError {
	atLimit := false
	if perSubject != nil {
		atLimit = s.store.SubjectMsgs(subj)+perSubject[subj] >= uint64(cfg.MaxMsgsPerSubject)
	}
	switch {
	case atLimit && cfg.DiscardNewPerSubject && !rollup:
		return errStreamMsgsPerSubject
	case cfg.MaxMsgs > 0 && count+1 > uint64(cfg.MaxMsgs) && !atLimit:
		return errStreamMsgsExceeded
	case cfg.MaxBytes > 0 && bytes > uint64(cfg.MaxBytes) && !atLimit:
		return errStreamBytesExceed
	}
	return nil
}

// rollUp applies the Nats-Rollup of each message just stored: the
// messages before it on its subject (sub), or in the stream (all), go.
func (s *stream) rollUp(msgs []store.Msg, acc []accepted) {
	rolled := false
	for k, a := range acc {
		switch a.rollup {
		case rollupSubject:
			s.store.Purge(msgs[k].Subject, msgs[k].Seq, 0)
		case rollupAll:
			s.store.Purge("", msgs[k].Seq, 0)
		default:
			continue
		}
		rolled = true
	}
	if rolled {
		s.removed()
	}
}

// enforceLimits discards the oldest messages past max_msgs, max_bytes and
// max_msgs_per_subject (discard old) once the batch stored is in. Only
// the batch's subjects can have passed max_msgs_per_subject, unless the
// limit changed since the last batch: then every subject is checked.
func (s *stream) enforceLimits(cfg StreamConfig, stored []store.Msg) {
	st := s.store.State()
	if cfg.MaxMsgs > 0 && st.Msgs > uint64(cfg.MaxMsgs) {
		s.dropOldest(st.Msgs - uint64(cfg.MaxMsgs))
		s.removed()
	}
	if cfg.MaxBytes > 0 {
		for st = s.store.State(); st.Bytes > uint64(cfg.MaxBytes) && st.Msgs > 0; st = s.store.State() {
			s.dropOldest(1)
			s.removed()
		}
	}
	if cfg.MaxMsgsPerSubject <= 0 {
		return
	}
	limit := uint64(cfg.MaxMsgsPerSubject)
	trim := func(subj string, n uint64) {
		if n > limit {
			s.store.Purge(subj, 0, limit)
			s.removed()
		}
	}
	if s.perSubjectLimit != cfg.MaxMsgsPerSubject {
		s.perSubjectLimit = cfg.MaxMsgsPerSubject
		for subj, n := range s.store.SubjectCounts(">") {
			trim(subj, n)
		}
		return
	}
	for i := range stored {
		trim(stored[i].Subject, s.store.SubjectMsgs(stored[i].Subject))
	}
}

// dropOldest removes the n oldest live messages.
func (s *stream) dropOldest(n uint64) {
	seq := s.store.State().FirstSeq
	for ; n > 0; n-- {
		m, err := s.store.LoadNext(">", seq)
		if err != nil {
			return
		}
		seq = m.Seq + 1
	}
	s.store.Compact(seq)
}

// expire removes messages older than max_age: the run of them at the
// head of the stream at once, and one by one those after a message with
// Nats-TTL: never (which max_age leaves). Subjects left empty get a
// delete marker when the stream places them.
func (s *stream) expire() {
	cfg := s.config()
	if cfg.MaxAge <= 0 {
		return
	}
	cutoff := time.Now().Add(-cfg.MaxAge).UnixNano()
	seq := s.store.State().FirstSeq
	var compactTo uint64 // the head run ends before it
	kept, removed := false, false
	var gone []store.Msg
	for {
		m, err := s.store.LoadNext(">", seq)
		if err != nil || m.Time > cutoff {
			break
		}
		seq = m.Seq + 1
		switch {
		case cfg.AllowMsgTTL && msgTTL(m.Header) < 0:
			kept = true // ends the head run
			continue
		case kept:
			s.store.Delete(m.Seq)
		default:
			compactTo = m.Seq + 1
		}
		removed = true
		if cfg.SubjectDeleteMarkerTTL > 0 {
			gone = append(gone, store.Msg{Subject: m.Subject, Header: m.Header})
		}
	}
	if !removed {
		return
	}
	if compactTo > 0 {
		s.store.Compact(compactTo)
	}
	s.removed()
	s.placeMarkers(cfg, gone)
}

// info is the stream's StreamInfo now.
func (s *stream) info() StreamInfo {
	s.mu.Lock()
	cfg, created := s.cfg, s.created
	s.mu.Unlock()
	st := s.store.State()
	state := StreamState{Msgs: st.Msgs, Bytes: st.Bytes, FirstSeq: st.FirstSeq, LastSeq: st.LastSeq,
		NumDeleted: st.NumDeleted, NumSubjects: len(s.store.SubjectCounts(">"))}
	if st.FirstTime > 0 && st.Msgs > 0 {
		state.FirstTime = time.Unix(0, st.FirstTime).UTC()
	}
	if st.LastTime > 0 {
		state.LastTime = time.Unix(0, st.LastTime).UTC()
	}
	s.cmu.Lock()
	state.Consumers = len(s.consumers)
	s.cmu.Unlock()
	if st.Lost != nil {
		state.Lost = &LostData{Msgs: st.Lost.Msgs, Bytes: st.Lost.Bytes}
	}
	info := StreamInfo{Config: cfg, Created: created, State: state,
		Cluster: &ClusterInfo{Leader: s.e.srv.Name()}, TS: time.Now().UTC()}
	s.smu.Lock()
	for _, sr := range s.sourcers {
		if sr.mirror {
			info.Mirror = sr.info()
		} else {
			info.Sources = append(info.Sources, sr.info())
		}
	}
	s.smu.Unlock()
	return info
}

// infoRequest answers STREAM.INFO, with the per-subject counts when the
// request names a subjects_filter (paged like nats-server).
func (s *stream) infoRequest(data []byte) (any, *ApiError) {
	var req struct {
		Filter         string `json:"subjects_filter"`
		Offset         int    `json:"offset"`
		DeletedDetails bool   `json:"deleted_details"`
	}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &req); err != nil {
			return nil, errInvalidJSON(err)
		}
	}
	info := s.info()
	if req.DeletedDetails {
		info.State.Deleted = s.store.Deleted()
	}
	if req.Filter == "" {
		return info, nil
	}
	counts := s.store.SubjectCounts(req.Filter)
	names := make([]string, 0, len(counts))
	for subj := range counts {
		names = append(names, subj)
	}
	slices.Sort(names)
	paged := page(names, req.Offset)
	subjects := make(map[string]uint64, len(paged))
	for _, subj := range paged {
		subjects[subj] = counts[subj]
	}
	out := map[string]any{"config": info.Config, "created": info.Created, "cluster": info.Cluster, "ts": info.TS,
		"total": len(names), "offset": req.Offset, "limit": listLimit}
	state, _ := json.Marshal(info.State)
	var st map[string]any
	_ = json.Unmarshal(state, &st)
	st["subjects"] = subjects
	out["state"] = st
	return out, nil
}

// header returns the first value of key in a NATS header block.
func header(hdr []byte, key string) string {
	for k, v := range headerFields(hdr) {
		if bytes.EqualFold(k, []byte(key)) {
			return string(v)
		}
	}
	return ""
}

// errFastBatchUnsupported refuses a message of a fast batch, with
// nats-server's code for a stream that does not allow batch publishes.
var errFastBatchUnsupported = &ApiError{400, 10174, "fast batch publishing is not supported by Switchyard's streamsvc yet"}

func pubAckError(stream string, e *ApiError) []byte {
	b, _ := json.Marshal(struct {
		Error  *ApiError `json:"error"`
		Stream string    `json:"stream"`
		Seq    uint64    `json:"seq"`
	}{e, stream, 0})
	return b
}

// pubAcks writes the PubAcks of one stream's batch by hand, each exactly
// what json.Marshal of PubAck gives (a publish's cost includes its ack).
type pubAcks struct{ prefix, suffix []byte }

func newPubAcks(stream, domain string) pubAcks {
	name, _ := json.Marshal(stream)
	p := pubAcks{prefix: append(append([]byte(`{"stream":`), name...), `,"seq":`...), suffix: []byte("}")}
	if domain != "" {
		d, _ := json.Marshal(domain)
		p.suffix = append(append([]byte(`,"domain":`), d...), '}')
	}
	return p
}

func (p pubAcks) ack(seq uint64) []byte {
	b := make([]byte, 0, len(p.prefix)+20+len(p.suffix))
	b = strconv.AppendUint(append(b, p.prefix...), seq, 10)
	return append(b, p.suffix...)
}
