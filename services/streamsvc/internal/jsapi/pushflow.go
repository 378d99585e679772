package jsapi

import (
	"math/rand/v2"
	"time"
)

// Pacing a push consumer the way nats-server does, on top of the suite's
// own flow control (which only keeps a slow connection from being
// overrun): flow_control, the NATS-level exchange with the client, and
// rate_limit_bps.

// Flow control windows, as nats-server's: it starts at 1/16 of the
// ceiling and doubles with every answered request.
const (
	flowControlCeiling = 32 * 1024 * 1024 // JsFlowControlMaxPending
	flowControlStart   = flowControlCeiling / 16
)

// flowControl tracks the bytes delivered to a flow-controlled push
// consumer's client that the client has not confirmed. Past half the
// window the consumer asks the client to confirm (a status 100
// FlowControl Request with a reply subject); past the whole window it
// delivers nothing until the answer comes. Owned by the consumer's
// goroutine.
type flowControl struct {
	window  int
	pending int    // delivered, not confirmed
	asked   int    // what the outstanding request confirms when answered
	request string // the outstanding request's reply subject; "" for none
}

func newFlowControl() *flowControl { return &flowControl{window: flowControlStart} }

// stalled reports whether delivery waits for the client's answer.
func (f *flowControl) stalled() bool { return f.pending > f.window }

// delivered counts a delivery of size bytes and reports whether to ask
// the client now. While a request is outstanding and far behind, the
// request is made to confirm more (as nats-server does), so its answer
// reopens the window.
func (f *flowControl) delivered(size int) bool {
	f.pending += size
	if f.request == "" {
		return f.pending > f.window/2
	}
	if f.pending-f.asked >= f.window {
		f.asked += size
	}
	return false
}

// asking records the request sent with reply subject reply.
func (f *flowControl) asking(reply string) { f.request, f.asked = reply, f.pending }

// answered applies the client's answer to reply subject subj and reports
// whether it was the outstanding request's (an older one's answer means
// nothing: the newer request covers it).
func (f *flowControl) answered(subj string) bool {
	if f.request == "" || subj != f.request {
		return false
	}
	f.window = min(f.window*2, flowControlCeiling)
	f.pending = max(f.pending-f.asked, 0)
	f.request, f.asked = "", 0
	return true
}

// flowControlSubject is what a consumer's flow control answers arrive
// on: $JS.FC.<stream>.<consumer>.<token>, the token naming the request.
func flowControlSubject(stream, consumer string) string {
	return "$JS.FC." + stream + "." + consumer + ".*"
}

// base62 are the characters of a flow control request's token.
const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// flowControlReply is a new request's reply subject, with a random
// four-character token as nats-server makes it.
func (c *consumer) flowControlReply() string {
	var tok [4]byte
	for i, n := 0, rand.Uint64(); i < len(tok); i, n = i+1, n/62 {
		tok[i] = base62[n%62]
	}
	return "$JS.FC." + c.s.cfg.Name + "." + c.name + "." + string(tok[:])
}

// askFlowControl sends the client a flow control request (flushed with
// the delivery that prompted it).
func (c *consumer) askFlowControl(deliverSubject string) {
	reply := c.flowControlReply()
	c.flow.asking(reply)
	c.pub.Publish(c.s.account, deliverSubject, reply, []byte("NATS/1.0 100 FlowControl Request\r\n\r\n"), nil)
}

// flowControlAnswer takes a client's answer on the consumer's flow
// control subscription, in order with its acks.
func (c *consumer) flowControlAnswer(subj, _ []byte, _ int, _ []byte) {
	c.send(consumerEvent{flowReply: string(subj)})
}

// stalledHeader is the idle heartbeat's extra header while a flow control
// request waits for its answer: nats.go answers the subject it names, in
// case the request itself was lost.
func (c *consumer) stalledHeader() string {
	if c.flow == nil || c.flow.request == "" {
		return ""
	}
	return "Nats-Consumer-Stalled: " + c.flow.request + "\r\n"
}

// rateLimiter paces a push consumer's deliveries to rate_limit_bps (bits
// per second) as nats-server's token bucket does: it starts full, holds
// the largest message the stream takes (burst), and a delivery waits
// until the bucket holds its size.
type rateLimiter struct {
	bps    uint64 // as configured, to notice an update
	perSec float64
	burst  float64
	tokens float64
	last   time.Time
}

func newRateLimiter(bps uint64, burst int) *rateLimiter {
	return &rateLimiter{bps: bps, perSec: float64(bps / 8), burst: float64(burst), tokens: float64(burst)}
}

// take spends size bytes now, or reports how long until it can. A
// message larger than the bucket goes when the bucket is full and leaves
// it in debt (nats-server never delivers it, stalling the consumer for
// good).
func (r *rateLimiter) take(now time.Time, size int) time.Duration {
	if !r.last.IsZero() && now.After(r.last) {
		r.tokens = min(r.tokens+now.Sub(r.last).Seconds()*r.perSec, r.burst)
	}
	r.last = now
	need := min(float64(size), r.burst)
	if r.tokens < need {
		if r.perSec == 0 {
			return time.Hour // under 8 bits per second: the bucket never refills, as on nats-server
		}
		return time.Duration((need - r.tokens) / r.perSec * float64(time.Second))
	}
	r.tokens -= float64(size)
	return 0
}

// rateLimit is the consumer's limiter for cfg (nil: none), made anew
// when rate_limit_bps changes. The bucket holds the stream's max_msg_size,
// else the largest payload the server takes.
func (c *consumer) rateLimit(cfg ConsumerConfig) *rateLimiter {
	if cfg.RateLimit == 0 || cfg.DeliverSubject == "" {
		c.rate = nil
		return nil
	}
	if c.rate == nil || c.rate.bps != cfg.RateLimit {
		burst := int(c.s.config().MaxMsgSize)
		if burst <= 0 {
			burst = int(c.s.e.srv.Config().MaxPayload)
		}
		c.rate = newRateLimiter(cfg.RateLimit, burst)
	}
	return c.rate
}

// holdForRate keeps a message of size bytes back until the rate limit
// lets it go, and reports whether it was held.
func (c *consumer) holdForRate(rl *rateLimiter, size int) bool {
	wait := rl.take(time.Now(), size)
	if wait <= 0 {
		return false
	}
	if c.rateTimer != nil {
		c.rateTimer.Stop()
	}
	c.rateTimer = time.AfterFunc(wait, c.wake)
	return true
}
