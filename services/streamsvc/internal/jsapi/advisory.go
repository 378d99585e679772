package jsapi

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nuid"

	"github.com/switchyard-io/switchyard/pkg/node"
)

// JetStream advisories and metrics: the $JS.EVENT.ADVISORY.> and
// $JS.EVENT.METRIC.> messages nats-server publishes in a stream's account
// and tools (nats event, monitoring) watch. Each is published only when
// someone in the account listens, so an unwatched event costs one
// interest lookup. Field names and order are nats-server v2.15's.

const (
	advisoryPrefix = "$JS.EVENT.ADVISORY."
	metricPrefix   = "$JS.EVENT.METRIC."
	eventType      = "io.nats.jetstream.advisory.v1."
)

// event is what every advisory starts with.
type event struct {
	Type string    `json:"type"`
	ID   string    `json:"id"`
	Time time.Time `json:"timestamp"`
}

func newEvent(typ string) event {
	return event{Type: typ, ID: nuid.Next(), Time: time.Now().UTC()}
}

type streamActionEvent struct {
	event
	Stream string `json:"stream"`
	Action string `json:"action"`
	Domain string `json:"domain,omitempty"`
}

type consumerActionEvent struct {
	event
	Stream   string `json:"stream"`
	Consumer string `json:"consumer"`
	Action   string `json:"action"`
	Domain   string `json:"domain,omitempty"`
}

// deliveryEvent is a NAK, a TERM, max deliveries reached (no consumer
// sequence) or a sampled ack (with its ack time).
type deliveryEvent struct {
	event
	Stream      string `json:"stream"`
	Consumer    string `json:"consumer"`
	ConsumerSeq uint64 `json:"consumer_seq,omitempty"`
	StreamSeq   uint64 `json:"stream_seq"`
	AckTime     int64  `json:"ack_time,omitempty"`
	Deliveries  int    `json:"deliveries"`
	Reason      string `json:"reason,omitempty"`
	Domain      string `json:"domain,omitempty"`
}

type consumerPauseEvent struct {
	event
	Stream     string    `json:"stream"`
	Consumer   string    `json:"consumer"`
	Paused     bool      `json:"paused"`
	PauseUntil time.Time `json:"pause_until"`
	Domain     string    `json:"domain,omitempty"`
}

// apiAuditEvent reports an API request and its answer. The client is
// named by its account only: requests reach streamsvc through the mesh
// without the connection details nats-server has at hand.
type apiAuditEvent struct {
	event
	Server   string         `json:"server"`
	Client   map[string]any `json:"client"`
	Subject  string         `json:"subject"`
	Request  string         `json:"request,omitempty"`
	Response string         `json:"response"`
	Domain   string         `json:"domain,omitempty"`
}

// advise publishes ev on subject in account through p when someone there
// listens. build makes the event only then.
func advise(p *node.Publisher, account, subject string, build func() any) {
	if !p.HasInterest(account, subject) {
		return
	}
	b, err := json.Marshal(build())
	if err != nil {
		return
	}
	p.Publish(account, subject, "", nil, b)
	p.Flush()
}

// adviseStream reports a stream created, updated ("modify") or deleted,
// from the API goroutine.
func (e *Engine) adviseStream(account, stream, action string) {
	verb := map[string]string{"create": "CREATED", "modify": "UPDATED", "delete": "DELETED"}[action]
	advise(e.pub, account, advisoryPrefix+"STREAM."+verb+"."+stream, func() any {
		return streamActionEvent{newEvent(eventType + "stream_action"), stream, action, e.domain}
	})
}

// adviseConsumer reports a consumer created or deleted, through p (the
// caller's publisher: these come from the API goroutine and from the
// goroutine dropping an inactive consumer).
func (e *Engine) adviseConsumer(p *node.Publisher, account, stream, consumer, action string) {
	verb := map[string]string{"create": "CREATED", "delete": "DELETED"}[action]
	advise(p, account, advisoryPrefix+"CONSUMER."+verb+"."+stream+"."+consumer, func() any {
		return consumerActionEvent{newEvent(eventType + "consumer_action"), stream, consumer, action, e.domain}
	})
}

// adviseAPI audits one API request with its response.
func (e *Engine) adviseAPI(r apiRequest, resp []byte) {
	advise(e.pub, r.account, advisoryPrefix+"API", func() any {
		return apiAuditEvent{event: newEvent(eventType + "api_audit"), Server: e.srv.ID(),
			Client: map[string]any{"acc": r.account}, Subject: r.subject, Request: string(r.data),
			Response: string(resp), Domain: e.domain}
	})
}

// adviseDelivery reports, from the consumer's goroutine, a message NAKed
// (MSG_NAKED), terminated (MSG_TERMINATED) or given up after
// max_deliver (MAX_DELIVERIES).
func (c *consumer) adviseDelivery(kind string, sseq, dseq uint64, reason string) {
	typ := map[string]string{"MSG_NAKED": "nak", "MSG_TERMINATED": "terminated", "MAX_DELIVERIES": "max_deliver"}[kind]
	stream := c.s.config().Name
	advise(c.pub, c.s.account, advisoryPrefix+"CONSUMER."+kind+"."+stream+"."+c.name, func() any {
		return deliveryEvent{event: newEvent(eventType + typ), Stream: stream, Consumer: c.name,
			ConsumerSeq: dseq, StreamSeq: sseq, Deliveries: c.deliveries[sseq], Reason: reason, Domain: c.s.e.domain}
	})
}

// sampleAck publishes the ack metric of a consumer with sample_freq, for
// that share of its acks.
func (c *consumer) sampleAck(cfg ConsumerConfig, sseq uint64) {
	pct := samplePercent(cfg.SampleFrequency)
	if pct <= 0 || pct < 100 && rand.IntN(100) >= pct {
		return
	}
	p, ok := c.pending[sseq]
	if !ok {
		return
	}
	stream := c.s.config().Name
	advise(c.pub, c.s.account, metricPrefix+"CONSUMER.ACK."+stream+"."+c.name, func() any {
		return deliveryEvent{event: newEvent("io.nats.jetstream.metric.v1.consumer_ack"), Stream: stream, Consumer: c.name,
			ConsumerSeq: p.dseq, StreamSeq: sseq, AckTime: time.Now().UnixNano() - p.ts, Deliveries: c.deliveries[sseq], Domain: c.s.e.domain}
	})
}

// samplePercent reads sample_freq ("30%" or "30"); 0 for none or bad.
func samplePercent(freq string) int {
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(freq), "%"))
	if err != nil || n < 0 {
		return 0
	}
	return min(n, 100)
}

// advisePause reports a consumer paused or resumed.
func (c *consumer) advisePause(p *node.Publisher, until time.Time) {
	paused := time.Now().Before(until)
	stream := c.s.config().Name
	advise(p, c.s.account, advisoryPrefix+"CONSUMER.PAUSE."+stream+"."+c.name, func() any {
		return consumerPauseEvent{newEvent(eventType + "consumer_pause"), stream, c.name, paused, until.UTC(), c.s.e.domain}
	})
}

type consumerPinnedEvent struct {
	event
	Account  string `json:"account,omitempty"`
	Stream   string `json:"stream"`
	Consumer string `json:"consumer"`
	Domain   string `json:"domain,omitempty"`
	Group    string `json:"group"`
	PinnedID string `json:"pinned_id"`
}

type consumerUnpinnedEvent struct {
	event
	Account  string `json:"account,omitempty"`
	Stream   string `json:"stream"`
	Consumer string `json:"consumer"`
	Domain   string `json:"domain,omitempty"`
	Group    string `json:"group"`
	Reason   string `json:"reason"` // "admin" (the unpin API) or "timeout"
}

// advisePinned reports, from the consumer's goroutine, a client pinned
// in a priority group.
func (c *consumer) advisePinned(group string) {
	stream := c.s.config().Name
	advise(c.pub, c.s.account, advisoryPrefix+"CONSUMER.PINNED."+stream+"."+c.name, func() any {
		return consumerPinnedEvent{newEvent(eventType + "consumer_group_pinned"), c.s.account, stream, c.name, c.s.e.domain, group, c.pin}
	})
}

// adviseUnpinned reports, from the consumer's goroutine, a pin lifted.
func (c *consumer) adviseUnpinned(group, reason string) {
	stream := c.s.config().Name
	advise(c.pub, c.s.account, advisoryPrefix+"CONSUMER.UNPINNED."+stream+"."+c.name, func() any {
		return consumerUnpinnedEvent{newEvent(eventType + "consumer_group_unpinned"), c.s.account, stream, c.name, c.s.e.domain, group, reason}
	})
}
