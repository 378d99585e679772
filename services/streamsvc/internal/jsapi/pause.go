package jsapi

import (
	"encoding/json"
	"time"
)

// Consumer pause (nats-server v2.11+): a consumer with pause_until in the
// future delivers nothing until then. Pull requests wait (and expire)
// and heartbeats go on meanwhile. The time is part of the configuration
// (set at creation, by an update, or by $JS.API.CONSUMER.PAUSE), so it
// survives restarts; each change, and the pause running out, is
// advised on $JS.EVENT.ADVISORY.CONSUMER.PAUSE.<stream>.<consumer>.

// pauseTime is when a consumer's pause ends (zero: not paused).
func pauseTime(cfg ConsumerConfig) time.Time {
	if cfg.PauseUntil == nil {
		return time.Time{}
	}
	return *cfg.PauseUntil
}

// paused reports whether the consumer holds its deliveries now.
func (c *consumer) paused(cfg ConsumerConfig) bool {
	return cfg.PauseUntil != nil && time.Now().Before(*cfg.PauseUntil)
}

// resumeWhenDue advises, once, that a pause ran out (on the goroutine's
// tick, which also delivers what waited).
func (c *consumer) resumeWhenDue(now time.Time) {
	until := pauseTime(c.config())
	if until.IsZero() || now.Before(until) || c.resumed.Equal(until) {
		return
	}
	c.resumed = until
	c.advisePause(c.pub, until)
}

// lookupConsumer finds a consumer for a consumer API request.
func (e *Engine) lookupConsumer(account, streamName, name string) (*consumer, *ApiError) {
	s := e.lookup(account, streamName)
	if s == nil {
		return nil, errStreamNotFound
	}
	c := s.consumer(name)
	if c == nil {
		return nil, errConsumerNotFound
	}
	return c, nil
}

// pauseConsumer serves CONSUMER.PAUSE.<stream>.<consumer>: pause until
// the time given, or resume at once without one.
func (e *Engine) pauseConsumer(account, streamName, name string, data []byte) []byte {
	typ := "io.nats.jetstream.api.v1.consumer_pause_response"
	var req struct {
		PauseUntil time.Time `json:"pause_until"`
	}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &req); err != nil {
			return response(typ, nil, errInvalidJSON(err))
		}
	}
	c, apiErr := e.lookupConsumer(account, streamName, name)
	if apiErr != nil {
		return response(typ, nil, apiErr)
	}
	cfg := c.config()
	cfg.PauseUntil = nil
	if !req.PauseUntil.IsZero() {
		until := req.PauseUntil.UTC()
		cfg.PauseUntil = &until
	}
	if apiErr := c.update(cfg); apiErr != nil {
		return response(typ, nil, apiErr)
	}
	resp := map[string]any{"paused": false, "pause_until": time.Time{}}
	if remaining := time.Until(req.PauseUntil); remaining > 0 {
		resp["paused"], resp["pause_until"], resp["pause_remaining"] = true, req.PauseUntil.UTC(), remaining
	}
	return response(typ, resp, nil)
}
