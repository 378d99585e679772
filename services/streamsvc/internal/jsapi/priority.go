package jsapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nuid"
)

// Consumer priority groups (ADR-42, nats-server v2.11+): a pull consumer
// with priority_groups and a priority_policy decides which waiting pull
// request gets each message.
//
//   - overflow: a request with min_pending / min_ack_pending gets a
//     message only while the consumer has at least that many messages
//     pending (or unacknowledged); one without either always does. Spare
//     clients take over only when the main ones fall behind.
//   - pinned_client: the first request served is pinned (a fresh
//     Nats-Pin-Id, sent on every message it gets); from then on only
//     requests carrying that id get messages. The pin lapses when the
//     pinned client sends no request for priority_timeout, or is lifted
//     by $JS.API.CONSUMER.UNPIN; a request with a stale id is told so
//     (423) and the client asks again without one.
//   - prioritized: the request with the lowest priority (0-9) is served
//     first.
//
// The pin lives on the consumer's goroutine and is not saved: after a
// restart the next request is pinned afresh, as on nats-server. A
// consumer without a policy skips all of this on its delivery path.

const (
	policyOverflow    = "overflow"
	policyPinned      = "pinned_client"
	policyPrioritized = "prioritized"
)

// defaultPinnedTTL is priority_timeout when a pinned_client consumer
// sets none, as on nats-server.
const defaultPinnedTTL = 2 * time.Minute

// validGroupName is nats-server's rule for a priority group's name:
// 1 to 16 of A-Z a-z 0-9 / _ = -.
func validGroupName(g string) bool {
	if len(g) == 0 || len(g) > 16 {
		return false
	}
	for i := 0; i < len(g); i++ {
		switch b := g[i]; {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '/', b == '_', b == '=', b == '-':
		default:
			return false
		}
	}
	return true
}

// normalizePriority checks a consumer's priority settings and fills the
// default priority_timeout (after the rest of the configuration, as
// nats-server checks them last).
func normalizePriority(cfg *ConsumerConfig) *ApiError {
	switch cfg.PriorityPolicy {
	case "none":
		cfg.PriorityPolicy = ""
	case "", policyOverflow, policyPinned, policyPrioritized:
	default:
		return errInvalidJSON(fmt.Errorf("unknown priority policy: %q", cfg.PriorityPolicy))
	}
	if cfg.PinnedTTL < 0 {
		cfg.PinnedTTL = 0 // nats-server outside pedantic mode
	}
	if cfg.PriorityPolicy == policyPinned && cfg.PinnedTTL == 0 {
		cfg.PinnedTTL = defaultPinnedTTL
	}
	if cfg.PriorityPolicy == "" {
		if len(cfg.PriorityGroups) > 0 {
			return errPriorityGroupNoPolicy
		}
		if cfg.PinnedTTL > 0 {
			return errPinnedTTLNoPolicy
		}
		cfg.PriorityGroups = nil // [] is none
		return nil
	}
	if cfg.DeliverSubject != "" {
		return errPushWithPriorityGroup
	}
	if len(cfg.PriorityGroups) == 0 {
		return errPriorityPolicyNoGroup
	}
	for _, g := range cfg.PriorityGroups {
		if g == "" {
			return errEmptyGroupName
		}
		if !validGroupName(g) {
			return errInvalidGroupName
		}
	}
	return nil
}

// priorityGroup is what a pull request asks of a priority group.
type priorityGroup struct {
	group                     string
	minPending, minAckPending int64
	pinID                     string
	priority                  int
}

// checkPriority answers a pull request that breaks the consumer's
// priority rules with nats-server's status ("" when it may wait), and
// keeps the pin alive for a request from the pinned client.
func (c *consumer) checkPriority(cfg ConsumerConfig, r *pullRequest, now time.Time) string {
	if !r.json {
		return "" // a bare batch size carries no group: nats-server takes it as is
	}
	pg := &r.prio
	switch {
	case (pg.minPending != 0 || pg.minAckPending != 0) && cfg.PriorityPolicy != policyOverflow:
		return "400 Bad Request - Not a Overflow Priority consumer"
	case pg.pinID != "" && cfg.PriorityPolicy != policyPinned:
		return "400 Bad Request - Not a Pinned Client Priority consumer"
	case pg.priority < 0 || pg.priority > 9:
		return "400 Bad Request - Priority must be between 0 and 9"
	case cfg.PriorityPolicy == "":
		return ""
	case pg.group == "":
		return "400 Bad Request - Priority Group missing"
	case !slices.Contains(cfg.PriorityGroups, pg.group):
		return "400 Bad Request - Invalid Priority Group"
	}
	if c.pin != "" {
		if pg.pinID == c.pin {
			c.pinUntil = now.Add(cfg.PinnedTTL)
		} else if pg.pinID != "" {
			return "423 Nats-Pin-Id mismatch"
		}
	}
	return ""
}

// chooseRequest picks the waiting request that gets the next message
// under the consumer's priority policy, ending those that can no longer
// be served (a stale pin id, a no_wait request passed over). It reports
// the request's index, and whether it was pinned just now; -1 when no
// request may take the message now.
func (c *consumer) chooseRequest(cfg ConsumerConfig) (int, bool) {
	if cfg.PriorityPolicy != policyPinned && c.pin != "" {
		c.clearPin() // the policy was changed by an update
	}
	best := -1
	var pendingNow uint64
	if cfg.PriorityPolicy == policyOverflow {
		// The messages pending when this one is taken (nats-server counts
		// it in).
		pendingNow = c.numPending() + 1
	}
	for i := 0; i < len(c.waiting); i++ {
		r := c.waiting[i]
		pg := &r.prio
		switch cfg.PriorityPolicy {
		case policyPinned:
			switch {
			case c.pin == "" && pg.pinID == "":
				c.assignPin(cfg, r)
				return i, true
			case c.pin != "" && pg.pinID == c.pin:
				return i, false
			case pg.pinID != "":
				// A pin that is gone: the client asks again without it.
				c.status(r.reply, "423 Nats-Wrong-Pin-Id", pendingHeaders(r))
				c.removeWaiting(i)
				i--
				continue
			}
		case policyOverflow:
			if (pg.minPending > 0 || pg.minAckPending > 0) &&
				!(pg.minPending > 0 && uint64(pg.minPending) <= pendingNow ||
					pg.minAckPending > 0 && pg.minAckPending <= int64(len(c.pending))) {
				break // below its thresholds: not this one
			}
			return i, false
		case policyPrioritized:
			if best < 0 || pg.priority < c.waiting[best].prio.priority {
				best = i
			}
			continue
		default:
			return i, false
		}
		if r.noWait {
			// Passed over: a no_wait request ends now.
			if r.delivered == 0 {
				c.status(r.reply, "404 No Messages", "")
			}
			c.removeWaiting(i)
			i--
		}
	}
	return best, false
}

// removeWaiting drops waiting request i.
func (c *consumer) removeWaiting(i int) {
	if i == 0 {
		c.waiting[0] = nil
		c.waiting = c.waiting[1:]
		return
	}
	c.waiting = slices.Delete(c.waiting, i, i+1)
}

// pendingHeaders are the Nats-Pending-* lines of a status ending r.
func pendingHeaders(r *pullRequest) string {
	return fmt.Sprintf("Nats-Pending-Messages: %d\r\nNats-Pending-Bytes: %d\r\n", r.batch, max(r.maxBytes, 0))
}

// assignPin pins the client that sent r.
func (c *consumer) assignPin(cfg ConsumerConfig, r *pullRequest) {
	c.pin = nuid.Next()
	c.pinnedAt = time.Now().UTC()
	c.pinUntil = c.pinnedAt.Add(cfg.PinnedTTL)
	r.prio.pinID = c.pin
	c.advisePinned(r.prio.group)
}

// clearPin forgets the pin (no advisory).
func (c *consumer) clearPin() {
	c.pin, c.pinnedAt, c.pinUntil = "", time.Time{}, time.Time{}
}

// unpin lifts the pin of group, for reason "admin" or "timeout". The
// next request without an id is pinned.
func (c *consumer) unpin(group, reason string) {
	c.clearPin()
	c.adviseUnpinned(group, reason)
}

// pinExpired lifts a pin whose client sent no request for
// priority_timeout (on the goroutine's tick).
func (c *consumer) pinExpired(cfg ConsumerConfig, now time.Time) {
	if c.pin != "" && now.After(c.pinUntil) && len(cfg.PriorityGroups) > 0 {
		c.unpin(cfg.PriorityGroups[0], "timeout")
	}
}

// priorityState is ConsumerInfo's priority_groups (nil without groups).
func (c *consumer) priorityState(cfg ConsumerConfig) []PriorityGroupState {
	if len(cfg.PriorityGroups) == 0 {
		return nil
	}
	return []PriorityGroupState{{Group: cfg.PriorityGroups[0], PinnedClientID: c.pin, PinnedTS: c.pinnedAt}}
}

// unpinConsumer serves CONSUMER.UNPIN.<stream>.<consumer>: lift the pin
// of the group named in the request.
func (e *Engine) unpinConsumer(account, streamName, name string, data []byte) []byte {
	const typ = "io.nats.jetstream.api.v1.consumer_unpin_response"
	var req struct {
		Group string `json:"group"`
	}
	if len(data) == 0 {
		return response(typ, nil, errInvalidJSON(errors.New("unexpected end of JSON input")))
	}
	if err := json.Unmarshal(data, &req); err != nil {
		return response(typ, nil, errInvalidJSON(err))
	}
	if req.Group == "" {
		return response(typ, nil, errInvalidJSON(errors.New("consumer group not specified")))
	}
	if !validGroupName(req.Group) {
		return response(typ, nil, errInvalidGroupName)
	}
	c, apiErr := e.lookupConsumer(account, streamName, name)
	if apiErr != nil {
		return response(typ, nil, apiErr)
	}
	if !slices.Contains(c.config().PriorityGroups, req.Group) {
		return response(typ, nil, errInvalidPriorityGroup)
	}
	if !c.call(func() { c.unpin(req.Group, "admin") }) {
		return response(typ, nil, errConsumerNotFound)
	}
	return response(typ, nil, nil)
}
