package jsapi

import "encoding/json"

// Consumer reset (nats-server v2.15): $JS.API.CONSUMER.RESET.<stream>.
// <consumer> with {"seq": n} moves the consumer to deliver stream
// sequence n next, as if nothing after n-1 had been delivered; without
// a sequence (or 0) it restarts after its ack floor, so whatever awaited
// an ack is delivered again. Pending acks and delivery counts are
// dropped and the consumer sequence starts again at 1. The answer is the
// consumer's info with the sequence it resets to, reset_seq.

// reset moves the consumer before stream sequence seq (0: after its ack
// floor) and returns the sequence it delivers next.
func (c *consumer) reset(seq uint64) uint64 {
	if seq == 0 {
		seq = c.ackFloorS + 1
	}
	c.pmu.Lock()
	clear(c.pending)
	c.pmu.Unlock()
	clear(c.deliveries)
	c.redeliver = c.redeliver[:0]
	c.sseq, c.dseq = seq-1, 0
	c.ackFloorS, c.ackFloorD = seq-1, 0
	c.npCount, c.npTo = 0, c.sseq // recount what is pending
	c.dirty = true
	c.publishPositions()
	c.wake()
	return seq
}

// resetConsumer serves CONSUMER.RESET.
func (e *Engine) resetConsumer(account, streamName, name string, data []byte) []byte {
	typ := "io.nats.jetstream.api.v1.consumer_reset_response"
	var req struct {
		Seq uint64 `json:"seq"`
	}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &req); err != nil {
			b, _ := json.Marshal(map[string]any{"type": typ, "error": errInvalidJSON(err), "reset_seq": 0})
			return b
		}
	}
	c, apiErr := e.lookupConsumer(account, streamName, name)
	if apiErr != nil {
		return response(typ, nil, apiErr)
	}
	var at uint64
	if !c.call(func() { at = c.reset(req.Seq) }) {
		return response(typ, nil, errConsumerNotFound)
	}
	info, ok := c.snapshot()
	if !ok {
		return response(typ, nil, errConsumerNotFound)
	}
	return response(typ, struct {
		ConsumerInfo
		ResetSeq uint64 `json:"reset_seq"`
	}{info, at}, nil)
}
