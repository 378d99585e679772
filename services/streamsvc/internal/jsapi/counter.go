package jsapi

import (
	"encoding/json"
	"math/big"
)

// Counters (ADR-49, nats-server v2.12+): a stream with allow_msg_counter
// takes only messages with a Nats-Incr header ("+5", "-2", "10") and no
// payload, and stores each as the subject's new total, {"val":"<total>"},
// keeping the increment in its header. Totals are arbitrary-precision
// integers; the PubAck carries the total as "val". The running total is
// the subject's last message, so nothing else keeps state. (Counters
// aggregated across sources, Nats-Counter-Sources, are not kept.)

const hdrIncr = "Nats-Incr"

var (
	errCounterDisabled = &ApiError{400, 10168, "message counters is disabled"}
	errCounterMissing  = &ApiError{400, 10169, "message counter increment is missing"}
	errCounterPayload  = &ApiError{400, 10170, "message counter has payload"}
	errCounterInvalid  = &ApiError{400, 10171, "message counter increment is invalid"}
)

// checkCounter applies the counter rules to a published message.
func checkCounter(cfg StreamConfig, in *inbound) *ApiError {
	incr := in.js.incr
	if !cfg.AllowMsgCounter {
		if incr != "" {
			return errCounterDisabled
		}
		return nil
	}
	switch {
	case incr == "":
		return errCounterMissing
	case len(in.data) > 0:
		return errCounterPayload
	case in.js.expLastSubjSeq != "", in.js.rollup != "":
		return errCounterInvalid
	}
	if _, ok := new(big.Int).SetString(incr, 10); !ok {
		return errCounterInvalid
	}
	return nil
}

// counterTotal is a subject's total after adding the message's increment:
// totals holds the batch's totals so far; otherwise the subject's last
// stored message has it.
func (s *stream) counterTotal(subj, incrBy string, totals map[string]*big.Int) *big.Int {
	cur, ok := totals[subj]
	if !ok {
		cur = new(big.Int)
		if m, err := s.store.LoadLast(subj); err == nil {
			var v struct {
				Val string `json:"val"`
			}
			if json.Unmarshal(m.Data, &v) == nil {
				if n, ok := new(big.Int).SetString(v.Val, 10); ok {
					cur = n
				}
			}
		}
	}
	incr, _ := new(big.Int).SetString(incrBy, 10) // checked
	return new(big.Int).Add(cur, incr)
}

// counterBody is what a counter message stores.
func counterBody(total *big.Int) []byte {
	return []byte(`{"val":"` + total.String() + `"}`)
}
