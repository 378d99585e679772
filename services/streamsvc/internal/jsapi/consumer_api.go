package jsapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nuid"

	"github.com/switchyard-io/switchyard/pkg/node"
	"github.com/switchyard-io/switchyard/pkg/subject"
)

// The consumer API: CONSUMER.CREATE / DURABLE.CREATE / INFO / DELETE /
// NAMES / LIST, and CONSUMER.MSG.NEXT (pull requests).

// defaultEphemeralInactive is how long an ephemeral consumer outlives its
// last activity, as on nats-server.
const defaultEphemeralInactive = 5 * time.Second

// handleConsumer answers a consumer API request; nil when op is not one.
func (e *Engine) handleConsumer(r apiRequest, op string) []byte {
	tok := strings.Split(op, ".")
	if len(tok) < 3 || tok[0] != "CONSUMER" {
		return nil
	}
	verb := tok[1]
	switch {
	case verb == "CREATE" && len(tok) >= 3:
		name, filter := "", ""
		if len(tok) >= 4 {
			name = tok[3]
		}
		if len(tok) >= 5 {
			filter = strings.Join(tok[4:], ".")
		}
		return e.createConsumer(r.account, tok[2], name, filter, r.data, false)
	case verb == "DURABLE" && len(tok) == 5 && tok[2] == "CREATE":
		return e.createConsumer(r.account, tok[3], tok[4], "", r.data, true)
	case verb == "PAUSE" && len(tok) == 4:
		return e.pauseConsumer(r.account, tok[2], tok[3], r.data)
	case verb == "UNPIN" && len(tok) == 4:
		return e.unpinConsumer(r.account, tok[2], tok[3], r.data)
	case verb == "RESET" && len(tok) == 4:
		return e.resetConsumer(r.account, tok[2], tok[3], r.data)
	case verb == "NAMES" && len(tok) == 3, verb == "LIST" && len(tok) == 3:
		return e.listConsumers(r.account, tok[2], verb == "NAMES", r.data)
	case (verb == "INFO" || verb == "DELETE") && len(tok) == 4:
		typ := "io.nats.jetstream.api.v1.consumer_info_response"
		if verb == "DELETE" {
			typ = "io.nats.jetstream.api.v1.consumer_delete_response"
		}
		s := e.lookup(r.account, tok[2])
		if s == nil {
			return response(typ, nil, errStreamNotFound)
		}
		c := s.consumer(tok[3])
		if c == nil {
			return response(typ, nil, errConsumerNotFound)
		}
		if verb == "DELETE" {
			s.removeConsumer(c, true)
			s.retireAll()
			e.adviseConsumer(e.pub, r.account, tok[2], tok[3], "delete")
			return response(typ, map[string]any{"success": true}, nil)
		}
		info, ok := c.snapshot()
		if !ok {
			return response(typ, nil, errConsumerNotFound)
		}
		return response(typ, info, nil)
	}
	return nil
}

// unsupportedConsumerKeys are consumer settings of nats-server v2.15 that
// streamsvc does not implement yet: a consumer that asks for one is
// refused rather than created without it. None are left.
var unsupportedConsumerKeys []string

func (s *stream) consumer(name string) *consumer {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.consumers[name]
}

func (e *Engine) createConsumer(account, streamName, name, filter string, data []byte, legacyDurable bool) []byte {
	const typ = "io.nats.jetstream.api.v1.consumer_create_response"
	var req struct {
		Stream string         `json:"stream_name"`
		Config ConsumerConfig `json:"config"`
		Action string         `json:"action"`
	}
	if err := json.Unmarshal(data, &req); err != nil {
		return response(typ, nil, errInvalidJSON(err))
	}
	var raw struct {
		Config json.RawMessage `json:"config"`
	}
	_ = json.Unmarshal(data, &raw)
	if key := unsupportedKey(raw.Config, unsupportedConsumerKeys); key != "" {
		return response(typ, nil, errConsumerCreate("%s is not supported by Switchyard's streamsvc yet", key))
	}
	s := e.lookup(account, streamName)
	if s == nil {
		return response(typ, nil, errStreamNotFound)
	}
	if req.Stream != "" && req.Stream != streamName {
		return response(typ, nil, errStreamMismatch)
	}
	cfg := req.Config
	ephemeral := false
	switch {
	case legacyDurable:
		if cfg.Durable == "" {
			return response(typ, nil, &ApiError{400, 10018, "consumer expected to be durable but a durable name was not set"})
		}
		if cfg.Durable != name {
			return response(typ, nil, errConsumerNameMismatch)
		}
	case name == "":
		// CONSUMER.CREATE.<stream>: an ephemeral consumer.
		if cfg.Durable != "" {
			return response(typ, nil, &ApiError{400, 10020, "consumer expected to be ephemeral but a durable name was set in request"})
		}
		ephemeral = true
	default:
		if cfg.Durable != "" && cfg.Durable != name || cfg.Name != "" && cfg.Name != name {
			return response(typ, nil, errConsumerNameMismatch)
		}
		ephemeral = cfg.Durable == ""
	}
	if filter != "" && cfg.FilterSubject != filter && !(len(cfg.FilterSubjects) == 1 && cfg.FilterSubjects[0] == filter) {
		return response(typ, nil, &ApiError{400, 10131, "consumer create request did not match filtered subject from create subject"})
	}
	if name == "" {
		name = cfg.Name
		if name == "" {
			name = nuid.Next()
		}
	}
	if cfg.Name == "" {
		cfg.Name = name
	}
	if apiErr := normalizeConsumer(&cfg, s.config(), ephemeral); apiErr != nil {
		return response(typ, nil, apiErr)
	}
	if apiErr := e.limitAckPending(account, req.Config.MaxAckPending, &cfg); apiErr != nil {
		return response(typ, nil, apiErr)
	}
	if apiErr := s.checkWorkQueue(name, cfg); apiErr != nil {
		return response(typ, nil, apiErr)
	}
	c, apiErr := s.addConsumer(name, cfg, ephemeral, req.Action)
	if apiErr != nil {
		return response(typ, nil, apiErr)
	}
	info, _ := c.snapshot()
	return response(typ, info, nil)
}

// normalizeConsumer checks a requested consumer and fills nats-server's
// defaults.
func normalizeConsumer(cfg *ConsumerConfig, scfg StreamConfig, ephemeral bool) *ApiError {
	for _, n := range []string{cfg.Name, cfg.Durable} {
		if strings.ContainsAny(n, `/\`) {
			return errConsumerPathSeparators
		}
		if strings.ContainsAny(n, ".*> \t") {
			return errConsumerBadDurable
		}
	}
	if cfg.FilterSubject != "" && len(cfg.FilterSubjects) > 0 {
		return errConsumerBothFilters
	}
	filters := cfg.FilterSubjects
	if cfg.FilterSubject != "" {
		filters = []string{cfg.FilterSubject}
	}
	for i, f := range filters {
		if f == "" {
			return errConsumerEmptyFilter
		}
		if !subject.ValidSubscribe([]byte(f)) {
			return errConsumerFilterNotSub
		}
		ok := false
		for _, own := range scfg.Subjects {
			if subject.Overlap(own, f) {
				ok = true
			}
		}
		if !ok {
			return errConsumerFilterNotSub
		}
		for _, g := range filters[i+1:] {
			if subject.Overlap(f, g) {
				return errConsumerOverlapFilters
			}
		}
	}
	switch cfg.DeliverPolicy {
	case "":
		cfg.DeliverPolicy = "all"
	case "all", "last", "new", "last_per_subject":
	case "by_start_sequence":
		if cfg.OptStartSeq == 0 {
			return errConsumerPolicy("consumer delivery policy is deliver by start sequence, but optional start sequence is not set")
		}
	case "by_start_time":
		if cfg.OptStartTime == nil {
			return errConsumerPolicy("consumer delivery policy is deliver by start time, but optional start time is not set")
		}
	default:
		return errInvalidJSON(fmt.Errorf("can not unmarshal %q into deliver policy", cfg.DeliverPolicy))
	}
	if cfg.DeliverPolicy != "by_start_sequence" && cfg.OptStartSeq != 0 {
		return errConsumerPolicy("consumer delivery policy is %s, optional start sequence is also set", cfg.DeliverPolicy)
	}
	switch cfg.AckPolicy {
	case "":
		cfg.AckPolicy = "none"
	case "none", "all", "explicit":
	default:
		return errInvalidJSON(fmt.Errorf("can not unmarshal %q into ack policy", cfg.AckPolicy))
	}
	switch cfg.ReplayPolicy {
	case "":
		cfg.ReplayPolicy = "instant"
	case "instant", "original":
	default:
		return errInvalidJSON(fmt.Errorf("can not unmarshal %q into replay policy", cfg.ReplayPolicy))
	}
	if cfg.AckWait < 0 {
		return errConsumerAckWait
	}
	for _, b := range cfg.BackOff {
		if b <= 0 {
			return errConsumerBackOff
		}
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = -1
	}
	if len(cfg.BackOff) > 0 && cfg.MaxDeliver > 0 && cfg.MaxDeliver <= len(cfg.BackOff) {
		return errConsumerMaxDeliverBO
	}
	if cfg.AckPolicy != "none" {
		if cfg.AckWait == 0 {
			cfg.AckWait = 30 * time.Second
			if len(cfg.BackOff) > 0 {
				cfg.AckWait = cfg.BackOff[0]
			}
		}
		if cfg.MaxAckPending == 0 {
			cfg.MaxAckPending = 1000
		}
	} else if cfg.MaxAckPending > 0 {
		return errConsumerMaxPendingAck
	}
	if cfg.DeliverSubject != "" {
		if !subject.ValidPublish([]byte(cfg.DeliverSubject)) {
			return errConsumerDeliverWild
		}
		if cfg.MaxWaiting != 0 {
			return errConsumerPushMaxWaiting
		}
	} else {
		if cfg.RateLimit > 0 {
			return errConsumerPullRateLimit
		}
		if cfg.MaxWaiting < 0 {
			return errConsumerMaxWaitingNeg
		}
		if cfg.Heartbeat > 0 {
			return errConsumerHBRequiresPush
		}
		if cfg.FlowControl {
			return errConsumerFCRequiresPush
		}
		if cfg.MaxWaiting == 0 {
			cfg.MaxWaiting = 512
		}
	}
	if cfg.Heartbeat > 0 && cfg.Heartbeat < 100*time.Millisecond {
		return errConsumerSmallHeartbeat
	}
	if cfg.Replicas > 1 {
		return errConsumerReplicas
	}
	if ephemeral && cfg.InactiveThreshold == 0 {
		cfg.InactiveThreshold = defaultEphemeralInactive
	}
	if cfg.FlowControl && cfg.Heartbeat == 0 {
		return errConsumerFCNeedsHB
	}
	return normalizePriority(cfg)
}

// checkWorkQueue applies a workqueue stream's rules to a new consumer:
// explicit acks, deliver all, and no two consumers taking one subject.
func (s *stream) checkWorkQueue(name string, cfg ConsumerConfig) *ApiError {
	if s.config().Retention != retentionWorkQueue {
		return nil
	}
	if cfg.AckPolicy != "explicit" {
		return &ApiError{400, 10098, "workqueue stream requires explicit ack"}
	}
	if cfg.DeliverPolicy != "all" {
		return &ApiError{400, 10101, "consumer must be deliver all on workqueue stream"}
	}
	filters := cfg.FilterSubjects
	if cfg.FilterSubject != "" {
		filters = []string{cfg.FilterSubject}
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	for other, c := range s.consumers {
		if other == name {
			continue
		}
		if len(filters) == 0 || len(c.filters) == 0 {
			if len(filters) == 0 && len(c.filters) == 0 {
				return &ApiError{400, 10099, "multiple non-filtered consumers not allowed on workqueue stream"}
			}
			return &ApiError{400, 10100, "filtered consumer not unique on workqueue stream"}
		}
		for _, f := range filters {
			for _, g := range c.filters {
				if subject.Overlap(f, g) {
					return &ApiError{400, 10100, "filtered consumer not unique on workqueue stream"}
				}
			}
		}
	}
	return nil
}

// addConsumer creates a consumer, returns an existing one with the same
// configuration, or updates it (action "", "create" or "update").
func (s *stream) addConsumer(name string, cfg ConsumerConfig, ephemeral bool, action string) (*consumer, *ApiError) {
	s.cmu.Lock()
	existing := s.consumers[name]
	s.cmu.Unlock()
	if existing != nil {
		old := existing.config()
		if sameJSON(old, cfg) {
			return existing, nil
		}
		if action == "create" {
			return nil, errConsumerAlreadyExists
		}
		if apiErr := existing.update(cfg); apiErr != nil {
			return nil, apiErr
		}
		return existing, nil
	}
	if action == "update" {
		return nil, errConsumerDoesNotExist
	}
	if apiErr := s.consumerRoom(); apiErr != nil {
		return nil, apiErr
	}
	c := newConsumer(s, name, cfg, time.Now().UTC(), ephemeral)
	// The stream's ingest goroutine takes no new message while the
	// consumer is positioned, so "new" and "last" mean what they say.
	s.do(func() { c.position() })
	c.dirty = true
	c.saveState()
	s.startConsumer(c)
	s.e.log.Debugf("Consumer %s > %s > %s created", s.account, s.cfg.Name, name)
	s.e.adviseConsumer(s.e.pub, s.account, s.cfg.Name, name, "create")
	if cfg.PauseUntil != nil {
		c.advisePause(s.e.pub, *cfg.PauseUntil)
	}
	return c, nil
}

// startConsumer registers and runs a consumer and subscribes its acks.
func (s *stream) startConsumer(c *consumer) {
	s.cmu.Lock()
	if s.consumers == nil {
		s.consumers = map[string]*consumer{}
	}
	s.consumers[c.name] = c
	s.cmu.Unlock()
	go c.run()
	c.unsub = append(c.unsub, s.e.srv.SubscribeInternal(s.account, "$JS.ACK."+s.cfg.Name+"."+c.name+".>", "",
		func(subj, reply []byte, headerLen int, msg []byte) {
			if headerLen >= 0 {
				msg = msg[headerLen:]
			}
			c.send(consumerEvent{ack: &ackMsg{subject: string(subj), reply: string(reply), data: bytes.Clone(msg)}})
		}))
	if c.isPull() {
		c.unsub = append(c.unsub, s.e.srv.SubscribeInternal(s.account, apiPrefix+"CONSUMER.MSG.NEXT."+s.cfg.Name+"."+c.name, "", c.nextRequest))
	}
	if c.flow != nil {
		c.unsub = append(c.unsub, s.e.srv.SubscribeInternal(s.account, flowControlSubject(s.cfg.Name, c.name), "", c.flowControlAnswer))
	}
	c.wake()
}

// update applies the changes nats-server allows to a consumer.
func (c *consumer) update(cfg ConsumerConfig) *ApiError {
	old := c.config()
	switch {
	case old.DeliverPolicy != cfg.DeliverPolicy:
		return errConsumerCreate("deliver policy can not be updated")
	case old.OptStartSeq != cfg.OptStartSeq:
		return errConsumerCreate("start sequence can not be updated")
	case old.AckPolicy != cfg.AckPolicy:
		return errConsumerCreate("ack policy can not be updated")
	case old.ReplayPolicy != cfg.ReplayPolicy:
		return errConsumerCreate("replay policy can not be updated")
	case old.Heartbeat != cfg.Heartbeat:
		return errConsumerCreate("heart beats can not be updated")
	case old.FlowControl != cfg.FlowControl:
		return errConsumerCreate("flow control can not be updated")
	case (old.DeliverSubject == "") != (cfg.DeliverSubject == ""):
		return errConsumerCreate("can not update push consumer to pull based")
	}
	c.mu.Lock()
	c.cfg = cfg
	c.mu.Unlock()
	c.cfgChanged.Store(true) // the goroutine saves it
	c.wake()
	if until, before := pauseTime(cfg), pauseTime(old); !until.Equal(before) {
		c.advisePause(c.s.e.pub, until)
	}
	return nil
}

// removeConsumer stops a consumer; erase also removes its saved state.
func (s *stream) removeConsumer(c *consumer, erase bool) {
	s.cmu.Lock()
	if s.consumers[c.name] == c {
		delete(s.consumers, c.name)
	}
	s.cmu.Unlock()
	c.stop()
	if erase && c.file != "" {
		os.Remove(c.file)
	}
}

// dropEphemeral deletes an ephemeral consumer left inactive.
func (e *Engine) dropEphemeral(c *consumer) {
	e.log.Debugf("Consumer %s > %s > %s: inactive for %v, deleted", c.s.account, c.s.cfg.Name, c.name, c.config().InactiveThreshold)
	c.s.removeConsumer(c, true)
	p := e.directPubs.Get().(*node.Publisher)
	e.adviseConsumer(p, c.s.account, c.s.config().Name, c.name, "delete")
	e.directPubs.Put(p)
}

func (e *Engine) listConsumers(account, streamName string, namesOnly bool, data []byte) []byte {
	typ := "io.nats.jetstream.api.v1.consumer_list_response"
	if namesOnly {
		typ = "io.nats.jetstream.api.v1.consumer_names_response"
	}
	var req listRequest
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &req); err != nil {
			return response(typ, nil, errInvalidJSON(err))
		}
	}
	s := e.lookup(account, streamName)
	if s == nil {
		return response(typ, nil, errStreamNotFound)
	}
	s.cmu.Lock()
	all := make([]*consumer, 0, len(s.consumers))
	for _, c := range s.consumers {
		all = append(all, c)
	}
	s.cmu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })
	out := map[string]any{"total": len(all), "offset": req.Offset, "limit": listLimit}
	if namesOnly {
		names := []string{}
		for _, c := range page(all, req.Offset) {
			names = append(names, c.name)
		}
		out["consumers"] = names
	} else {
		infos := []ConsumerInfo{}
		for _, c := range page(all, req.Offset) {
			if info, ok := c.snapshot(); ok {
				infos = append(infos, info)
			}
		}
		out["consumers"] = infos
	}
	return response(typ, out, nil)
}

// nextRequest takes a CONSUMER.MSG.NEXT request on the consumer's own
// subscription (as nats-server, which subscribes each pull consumer: a
// request for one that does not exist gets no responders). It runs on
// the delivering goroutine, in order with the client's acks.
func (c *consumer) nextRequest(_, reply []byte, headerLen int, msg []byte) {
	if len(reply) == 0 {
		return
	}
	if headerLen >= 0 {
		msg = msg[headerLen:]
	}
	req, err := parsePullRequest(msg)
	if err != nil {
		req = pullRequest{bad: "400 Bad Request - " + err.Error()}
	}
	req.reply = string(reply)
	c.send(consumerEvent{pull: &req})
}

// openConsumers restores a stream's durable consumers.
func (s *stream) openConsumers() {
	dir := filepath.Join(s.dir, "consumers")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, de := range entries {
		if !strings.HasSuffix(de.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		var st consumerState
		if err == nil {
			err = json.Unmarshal(b, &st)
		}
		if err != nil {
			s.e.log.Errorf("Stream %s > %s: consumer state %s unreadable (%v); left alone", s.account, s.cfg.Name, de.Name(), err)
			continue
		}
		name := strings.TrimSuffix(de.Name(), ".json")
		c := newConsumer(s, name, st.Config, st.Created, false)
		c.restore(st)
		s.startConsumer(c)
	}
}
