package jsapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nuid"

	"github.com/switchyard-io/switchyard/pkg/node"
	"github.com/switchyard-io/switchyard/pkg/subject"
	"github.com/switchyard-io/switchyard/services/streamsvc/internal/store"
)

// Mirrors and sources, as nats-server builds them: for each origin the
// stream runs a sourcer goroutine that creates a push consumer on the
// origin through the JetStream API (so the origin may be served by this
// streamsvc or another one, or sit behind an external API prefix), with
// flow control and one-second heartbeats, and feeds what it delivers to
// the stream's ingest goroutine.
//
//   - A mirror keeps the origin's sequences and timestamps (gaps become
//     deleted sequences) and takes no publishes of its own; it resumes
//     after its last sequence.
//   - A source stores the origin's messages as new ones, with their
//     subjects transformed as configured and a Nats-Stream-Source header
//     "<origin> <origin seq> <filter> <destination> <original subject>";
//     after a restart it resumes after the newest such header per source.
//
// A consumer that stops delivering (no message or heartbeat for three
// seconds, a delivery sequence out of order, the origin gone) is
// recreated from the last stored sequence; the error, if any, shows in
// stream info until it works again.

// StreamSource is a mirror's or a source's origin.
type StreamSource struct {
	Name              string                   `json:"name"`
	OptStartSeq       uint64                   `json:"opt_start_seq,omitempty"`
	OptStartTime      *time.Time               `json:"opt_start_time,omitempty"`
	FilterSubject     string                   `json:"filter_subject,omitempty"`
	SubjectTransforms []SubjectTransformConfig `json:"subject_transforms,omitempty"`
	External          *ExternalStream          `json:"external,omitempty"`
}

// SubjectTransformConfig maps subjects matching Source to Destination.
type SubjectTransformConfig struct {
	Source      string `json:"src"`
	Destination string `json:"dest"`
}

// ExternalStream reaches an origin through another API prefix (another
// account's import, or a JetStream domain).
type ExternalStream struct {
	APIPrefix     string `json:"api"`
	DeliverPrefix string `json:"deliver"`
}

// StreamSourceInfo is a mirror's or a source's state in stream info.
type StreamSourceInfo struct {
	Name              string                   `json:"name"`
	External          *ExternalStream          `json:"external,omitempty"`
	Lag               uint64                   `json:"lag"`
	Seq               uint64                   `json:"seq,omitempty"`
	Active            time.Duration            `json:"active"`
	Error             *ApiError                `json:"error,omitempty"`
	FilterSubject     string                   `json:"filter_subject,omitempty"`
	SubjectTransforms []SubjectTransformConfig `json:"subject_transforms,omitempty"`
}

const (
	hdrStreamSource   = "Nats-Stream-Source"
	sourceHeartbeat   = time.Second
	sourceStall       = 3 * sourceHeartbeat
	sourceRetryMax    = 10 * time.Second
	sourceQueue       = 1024
	sourceAPIWait     = 5 * time.Second
	sourceConsumerTTL = 10 * time.Second
)

// Source configuration errors, as nats-server's errors.json has them.
var (
	errMirrorWithSubjects   = &ApiError{400, 10034, "stream mirrors can not contain subjects"}
	errMirrorWithSources    = &ApiError{400, 10031, "stream mirrors can not also contain other sources"}
	errMirrorUpdate         = &ApiError{400, 10055, "stream mirror configuration can not be updated"}
	errSourceDuplicate      = &ApiError{400, 10140, "duplicate source configuration detected"}
	errSourceFilterAndMulti = &ApiError{400, 10144, "source with multiple subject transforms cannot also have a single subject filter"}
	errSourceTransform      = &ApiError{400, 10146, "source transform: invalid subject"}
)

// sourceMark travels with a sourced message to the ingest goroutine: the
// origin's sequence and time (a mirror stores it under them).
type sourceMark struct {
	seq  uint64
	time int64
}

// checkSources validates mirror and sources (normalize calls it).
func checkSources(cfg *StreamConfig) *ApiError {
	if cfg.Mirror != nil {
		if len(cfg.Subjects) > 0 {
			return errMirrorWithSubjects
		}
		if len(cfg.Sources) > 0 {
			return errMirrorWithSources
		}
	}
	all := cfg.Sources
	if cfg.Mirror != nil {
		all = []*StreamSource{cfg.Mirror}
	}
	seen := map[string]bool{}
	for _, src := range all {
		if src == nil || src.Name == "" {
			return errInvalidConfig("sourced stream name is invalid")
		}
		if src.Name == cfg.Name && src.External == nil {
			return errInvalidConfig("detected cycle")
		}
		if src.FilterSubject != "" && len(src.SubjectTransforms) > 0 {
			return errSourceFilterAndMulti
		}
		if _, err := sourceTransforms(src); err != nil {
			return errSourceTransform
		}
		key := sourceName(src)
		if seen[key] {
			return errSourceDuplicate
		}
		seen[key] = true
	}
	return nil
}

// sourceName identifies a source among a stream's sources (the same
// origin may be sourced twice with other filters): its origin, filters
// and destinations, as the first tokens of its Nats-Stream-Source header.
func sourceName(src *StreamSource) string {
	var b strings.Builder
	b.WriteString(src.Name)
	if len(src.SubjectTransforms) == 0 {
		b.WriteString(" " + orAll(src.FilterSubject) + " >")
	}
	for _, t := range src.SubjectTransforms {
		b.WriteString(" " + orAll(t.Source) + " " + orAll(t.Destination))
	}
	return b.String()
}

func orAll(s string) string {
	if s == "" {
		return ">"
	}
	return s
}

// sourceTransforms compiles a source's subject transforms.
func sourceTransforms(src *StreamSource) ([]*subject.Transform, error) {
	var out []*subject.Transform
	for _, t := range src.SubjectTransforms {
		if t.Destination == "" {
			continue // only a filter
		}
		tr, err := compileTransform(t.Source, t.Destination)
		if err != nil {
			return nil, err
		}
		out = append(out, tr)
	}
	return out, nil
}

// compileTransform compiles a JetStream subject transform (an empty
// source is every subject), refusing what nats-server refuses there too:
// a full wildcard on one side only.
func compileTransform(src, dst string) (*subject.Transform, error) {
	src = orAll(src)
	if strings.HasSuffix(src, ">") != strings.HasSuffix(dst, ">") {
		return nil, fmt.Errorf("transform %q -> %q: full wildcards differ", src, dst)
	}
	return subject.NewTransform(src, dst)
}

// sourcer feeds one origin into its stream.
type sourcer struct {
	s          *stream
	src        StreamSource
	mirror     bool
	name       string // sourceName
	transforms []*subject.Transform
	msgs       chan sourcedMsg
	quit, done chan struct{}

	mu     sync.Mutex // guards what stream info shows
	last   uint64     // origin sequence of the last message handed to the stream
	lag    uint64
	active time.Time
	err    *ApiError
}

// sourcedMsg is a delivery of the origin's consumer, copied off the
// delivering goroutine.
type sourcedMsg struct {
	subject, reply string
	hdr, data      []byte
}

// startSources starts the stream's sourcers, resuming each where the
// stream's messages say it stopped.
func (s *stream) startSources(cfg StreamConfig) {
	var srs []*sourcer
	if cfg.Mirror != nil {
		srs = []*sourcer{s.newSourcer(*cfg.Mirror, true, s.store.State().LastSeq)}
	} else {
		last := s.sourcePositions(cfg.Sources)
		for _, src := range cfg.Sources {
			srs = append(srs, s.newSourcer(*src, false, last[sourceName(src)]))
		}
	}
	s.smu.Lock()
	s.sourcers = srs
	s.smu.Unlock()
	for _, sr := range srs {
		go sr.run()
	}
}

// stopSources ends the sourcers (before the ingest goroutine stops).
func (s *stream) stopSources() {
	s.smu.Lock()
	srs := s.sourcers
	s.sourcers = nil
	s.smu.Unlock()
	for _, sr := range srs {
		close(sr.quit)
		<-sr.done
	}
}

// restartSources replaces the sourcers after the sources changed.
func (s *stream) restartSources(cfg StreamConfig) {
	s.stopSources()
	s.startSources(cfg)
}

func (s *stream) newSourcer(src StreamSource, mirror bool, last uint64) *sourcer {
	trs, _ := sourceTransforms(&src) // checked at create
	return &sourcer{s: s, src: src, mirror: mirror, name: sourceName(&src), transforms: trs, last: last,
		msgs: make(chan sourcedMsg, sourceQueue), quit: make(chan struct{}), done: make(chan struct{})}
}

// sourcePositions finds, newest first, the last origin sequence each
// source stored (from the Nats-Stream-Source headers), stopping once
// every source is found.
func (s *stream) sourcePositions(srcs []*StreamSource) map[string]uint64 {
	found := map[string]uint64{}
	if len(srcs) == 0 {
		return found
	}
	st := s.store.State()
	for seq := st.LastSeq; seq >= st.FirstSeq && seq > 0 && len(found) < len(srcs); seq-- {
		m, err := s.store.Get(seq)
		if err != nil || m.Header == nil {
			continue
		}
		name, oseq, ok := parseSourceHeader(header(m.Header, hdrStreamSource))
		if _, seen := found[name]; ok && !seen {
			found[name] = oseq
		}
	}
	return found
}

// parseSourceHeader reads "<origin> <seq> <filter> <dest> [<more filter
// dest>...] <subject>" into the source's name and the origin sequence.
func parseSourceHeader(v string) (string, uint64, bool) {
	f := strings.Fields(v)
	if len(f) < 5 {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return "", 0, false
	}
	return strings.Join(append([]string{f[0]}, f[2:len(f)-1]...), " "), seq, true
}

// info is the sourcer's part of stream info.
func (sr *sourcer) info() *StreamSourceInfo {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	in := &StreamSourceInfo{Name: sr.src.Name, External: sr.src.External, Lag: sr.lag, Active: -1, Error: sr.err,
		FilterSubject: sr.src.FilterSubject, SubjectTransforms: sr.src.SubjectTransforms}
	if !sr.mirror {
		in.Seq = sr.last
	}
	if !sr.active.IsZero() {
		in.Active = time.Since(sr.active)
	}
	return in
}

func (sr *sourcer) setErr(e *ApiError) {
	sr.mu.Lock()
	sr.err = e
	sr.mu.Unlock()
}

// run keeps a consumer on the origin and hands its messages to the
// stream, recreating it whenever it stops.
func (sr *sourcer) run() {
	defer close(sr.done)
	retry := 250 * time.Millisecond
	for {
		ok := sr.consume()
		select {
		case <-sr.quit:
			return
		default:
		}
		if ok {
			retry = 250 * time.Millisecond
			continue
		}
		select {
		case <-sr.quit:
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, sourceRetryMax)
	}
}

// consume creates one consumer on the origin and takes its messages
// until it stalls or the sourcer stops; false when it could not be made.
func (sr *sourcer) consume() bool {
	s := sr.s
	prefix := "$JS.M."
	if !sr.mirror {
		prefix = "$JS.S."
	}
	if sr.src.External != nil && sr.src.External.DeliverPrefix != "" {
		prefix = sr.src.External.DeliverPrefix + "."
	}
	deliver := prefix + nuid.Next()
	unsub := s.e.srv.SubscribeInternal(s.account, deliver, "", func(subj, reply []byte, headerLen int, msg []byte) {
		m := sourcedMsg{subject: string(subj), reply: string(reply), data: bytes.Clone(msg)}
		if headerLen >= 0 {
			m.hdr, m.data = m.data[:headerLen:headerLen], m.data[headerLen:]
		}
		select {
		case sr.msgs <- m:
		case <-sr.quit:
		}
	})
	defer unsub()
	if !sr.createConsumer(deliver) {
		return false
	}
	pub := s.e.directPubs.Get().(*node.Publisher)
	defer s.e.directPubs.Put(pub)
	stall := time.NewTimer(sourceStall)
	defer stall.Stop()
	var dseq uint64
	for {
		select {
		case <-sr.quit:
			return true
		case <-stall.C:
			s.e.log.Warnf("Stream %s > %s: %s %q stalled, recreating its consumer", s.account, s.cfg.Name, sr.kind(), sr.src.Name)
			return true
		case m := <-sr.msgs:
			stall.Reset(sourceStall)
			sr.mu.Lock()
			sr.active = time.Now()
			sr.mu.Unlock()
			if status := statusOf(m.hdr); status != "" {
				// Flow control asks for an answer on the reply; a stalled
				// heartbeat names where the answer is owed.
				to := m.reply
				if to == "" {
					to = header(m.hdr, "Nats-Consumer-Stalled")
				}
				if to != "" {
					pub.Publish(s.account, to, "", nil, nil)
					pub.Flush()
				}
				continue
			}
			sseq, mdseq, ts, pending, ok := parseAckReply(m.reply)
			if !ok {
				continue
			}
			if mdseq != dseq+1 {
				// A delivery was lost on the way: start again after the
				// last message stored.
				return true
			}
			dseq = mdseq
			sr.mu.Lock()
			sr.lag = pending
			sr.mu.Unlock()
			if sseq <= sr.last {
				continue // delivered again: already stored
			}
			if !sr.handOver(m, sseq, ts) {
				return true
			}
		}
	}
}

func (sr *sourcer) kind() string {
	if sr.mirror {
		return "mirror of"
	}
	return "source"
}

// handOver queues a message for the stream's ingest goroutine.
func (sr *sourcer) handOver(m sourcedMsg, sseq uint64, ts int64) bool {
	in := inbound{subject: m.subject, hdr: m.hdr, data: m.data, src: &sourceMark{seq: sseq, time: ts}}
	if !sr.mirror {
		orig := m.subject
		for _, tr := range sr.transforms {
			if out, ok := tr.Apply(orig); ok {
				in.subject = out
				break
			}
		}
		in.hdr = appendHeader(in.hdr, hdrStreamSource, fmt.Sprintf("%s %d %s %s", sr.src.Name, sseq, strings.TrimPrefix(sr.name, sr.src.Name+" "), orig))
	}
	select {
	case sr.s.in <- in:
	case <-sr.quit:
		return false
	}
	sr.mu.Lock()
	sr.last = sseq
	sr.mu.Unlock()
	return true
}

// createConsumer asks the origin for the consumer that delivers to
// deliver, from after the last sequence stored.
func (sr *sourcer) createConsumer(deliver string) bool {
	s := sr.s
	sr.mu.Lock()
	if sr.mirror {
		sr.last = s.lastSeq.Load() // what the mirror holds
	}
	last := sr.last
	sr.mu.Unlock()
	prefixName := "JS_MIRROR_"
	if !sr.mirror {
		prefixName = "JS_SRC_"
	}
	cfg := map[string]any{"name": prefixName + nuid.Next()[12:], "deliver_policy": "all", "ack_policy": "none",
		"ack_wait": int64(22 * time.Hour), "max_deliver": 1, "replay_policy": "instant", "flow_control": true,
		"deliver_subject": deliver, "idle_heartbeat": int64(sourceHeartbeat), "inactive_threshold": int64(sourceConsumerTTL),
		"num_replicas": 0, "direct": true, "sourcing": true}
	switch {
	case last > 0:
		cfg["deliver_policy"], cfg["opt_start_seq"] = "by_start_sequence", last+1
	case sr.src.OptStartSeq > 0:
		cfg["deliver_policy"], cfg["opt_start_seq"] = "by_start_sequence", sr.src.OptStartSeq
	case sr.src.OptStartTime != nil:
		cfg["deliver_policy"], cfg["opt_start_time"] = "by_start_time", sr.src.OptStartTime
	}
	var filters []string
	if sr.src.FilterSubject != "" {
		filters = append(filters, sr.src.FilterSubject)
	}
	for _, t := range sr.src.SubjectTransforms {
		filters = append(filters, orAll(t.Source))
	}
	switch {
	case len(filters) == 1:
		cfg["filter_subject"] = filters[0]
	case len(filters) > 1:
		cfg["filter_subjects"] = filters
	}
	api := "$JS.API"
	if sr.src.External != nil && sr.src.External.APIPrefix != "" {
		api = sr.src.External.APIPrefix
	}
	body, _ := json.Marshal(map[string]any{"stream_name": sr.src.Name, "config": cfg})
	resp, ok := s.e.internalRequest(s.account, api+".CONSUMER.CREATE."+sr.src.Name, body, sr.quit)
	if !ok {
		sr.setErr(&ApiError{503, 10008, "JetStream system temporarily unavailable"})
		return false
	}
	var r struct {
		Error *ApiError `json:"error"`
	}
	if err := json.Unmarshal(resp, &r); err != nil || r.Error != nil {
		if r.Error == nil {
			r.Error = &ApiError{500, 10012, fmt.Sprintf("consumer create answer unreadable: %v", err)}
		}
		sr.setErr(r.Error)
		return false
	}
	sr.setErr(nil)
	return true
}

// internalRequest sends an API request from inside the engine and waits
// for its answer (false: none within sourceAPIWait, or quit).
func (e *Engine) internalRequest(account, subj string, body []byte, quit chan struct{}) ([]byte, bool) {
	inbox := "$JSC.R." + nuid.Next()
	answer := make(chan []byte, 1)
	unsub := e.srv.SubscribeInternal(account, inbox, "", func(_, _ []byte, headerLen int, msg []byte) {
		if headerLen >= 0 {
			msg = msg[headerLen:]
		}
		select {
		case answer <- bytes.Clone(msg):
		default:
		}
	})
	defer unsub()
	p := e.directPubs.Get().(*node.Publisher)
	delivered := p.Publish(account, subj, inbox, nil, body)
	p.Flush()
	e.directPubs.Put(p)
	if !delivered {
		return nil, false // no responders
	}
	t := time.NewTimer(sourceAPIWait)
	defer t.Stop()
	select {
	case b := <-answer:
		return b, true
	case <-t.C:
	case <-quit:
	}
	return nil, false
}

// statusOf is the status line of a status message ("" for a message).
func statusOf(hdr []byte) string {
	if !bytes.HasPrefix(hdr, []byte("NATS/1.0 ")) {
		return ""
	}
	line := hdr[len("NATS/1.0 "):]
	if i := bytes.IndexByte(line, '\r'); i >= 0 {
		line = line[:i]
	}
	return string(line)
}

// parseAckReply reads $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.
// <dseq>.<ts>.<pending>.
func parseAckReply(reply string) (sseq, dseq uint64, ts int64, pending uint64, ok bool) {
	t := strings.Split(reply, ".")
	if len(t) != 9 || t[0] != "$JS" || t[1] != "ACK" {
		return 0, 0, 0, 0, false
	}
	var errs [4]error
	sseq, errs[0] = strconv.ParseUint(t[5], 10, 64)
	dseq, errs[1] = strconv.ParseUint(t[6], 10, 64)
	ts, errs[2] = strconv.ParseInt(t[7], 10, 64)
	pending, errs[3] = strconv.ParseUint(t[8], 10, 64)
	for _, err := range errs {
		if err != nil {
			return 0, 0, 0, 0, false
		}
	}
	return sseq, dseq, ts, pending, true
}

// storeMirrored stores a mirror's batch under the origin's sequences and
// times (the ingest goroutine; a mirror takes nothing else).
func (s *stream) storeMirrored(cfg StreamConfig, batch []inbound) {
	msgs := make([]store.Msg, 0, len(batch))
	last := s.store.State().LastSeq
	for i := range batch {
		in := &batch[i]
		if in.src == nil || in.src.seq <= last {
			continue
		}
		last = in.src.seq
		msgs = append(msgs, store.Msg{Seq: in.src.seq, Time: in.src.time, Subject: in.subject, Header: in.hdr, Data: in.data})
	}
	if len(msgs) == 0 {
		return
	}
	r, ok := s.store.(store.Restorer)
	if !ok {
		s.e.log.Errorf("Stream %s > %s: the store cannot keep mirrored sequences", s.account, cfg.Name)
		return
	}
	if err := r.AppendAt(msgs); err != nil {
		s.e.log.Errorf("Stream %s > %s: storing %d mirrored message(s) failed, the mirror lacks sequences %d to %d: %v", s.account, cfg.Name, len(msgs), msgs[0].Seq, msgs[len(msgs)-1].Seq, err)
		return
	}
	s.stored(cfg, msgs)
}
