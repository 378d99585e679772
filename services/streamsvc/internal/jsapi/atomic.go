package jsapi

import (
	"fmt"
	"strconv"
	"time"
)

// Atomic batch publishing (ADR-50, nats-server v2.12+), on streams with
// allow_atomic: a publisher sends messages with Nats-Batch-Id and
// Nats-Batch-Sequence 1, 2, ...; the ingest goroutine stages them (each
// with a reply gets an empty answer) until one carries
// Nats-Batch-Commit: 1 (stored as the last) or eob (not stored; the last
// staged message gets Nats-Batch-Commit: 1). The batch is then checked
// as a whole, as nats-server checks it, and stored in one append (one
// group commit), or refused as a whole with the commit's PubAck error.
// A stored batch always ends with a Nats-Batch-Commit header, so a batch
// torn by a crash in the middle of its write is recognised and dropped
// when the stream opens (dropTornBatch).

const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"

	maxBatchID        = 64
	maxBatchMsgs      = 1000
	maxBatchesPerStr  = 50
	batchIdleTimeout  = 10 * time.Second
	expectedLastMsgID = "Nats-Expected-Last-Msg-Id"
)

var (
	errAtomicDisabled     = &ApiError{400, 10174, "atomic publish is disabled"}
	errAtomicSeqMissing   = &ApiError{400, 10175, "atomic publish sequence is missing"}
	errAtomicIncomplete   = &ApiError{400, 10176, "atomic publish batch is incomplete"}
	errAtomicUnsupHeader  = &ApiError{400, 10177, "atomic publish unsupported header used: Nats-Expected-Last-Msg-Id"}
	errAtomicInvalidID    = &ApiError{400, 10179, "atomic publish batch ID is invalid"}
	errAtomicTooLarge     = &ApiError{400, 10199, fmt.Sprintf("atomic publish batch is too large: %d", maxBatchMsgs)}
	errAtomicBadCommit    = &ApiError{400, 10200, "atomic publish batch commit is invalid"}
	errAtomicDuplicateID  = &ApiError{400, 10201, "atomic publish batch contains duplicate message id"}
	errAtomicTooMany      = &ApiError{429, 10210, "atomic publish too many inflight"}
	errAtomicLastSeqLater = &ApiError{400, 10164, "wrong last sequence"}
)

// atomicBatch is a batch being staged (ingest goroutine).
type atomicBatch struct {
	msgs []inbound
	last time.Time
}

// atomicCommit is the batch storeRun stores: its id, and the reply its
// PubAck goes to.
type atomicCommit struct {
	id, reply string
}

// refuse answers the commit with a PubAck error.
func (c *atomicCommit) refuse(s *stream, ack []byte) {
	if c.reply != "" {
		s.pub.Publish(s.account, c.reply, "", nil, ack)
	}
}

// atomicMsg takes one message of an atomic batch: it starts, extends,
// commits or abandons its batch.
func (s *stream) atomicMsg(cfg StreamConfig, in *inbound) {
	id, reply := in.js.batchID, in.reply
	refuse := func(e *ApiError) {
		if reply != "" {
			s.pub.Publish(s.account, reply, "", nil, pubAckError(cfg.Name, e))
		}
	}
	if !cfg.AllowAtomicPublish {
		refuse(errAtomicDisabled)
		return
	}
	if len(id) > maxBatchID {
		refuse(errAtomicInvalidID)
		return
	}
	seq, err := strconv.ParseUint(header(in.hdr, hdrBatchSeq), 10, 64)
	if err != nil || seq == 0 {
		delete(s.batches, id)
		refuse(errAtomicSeqMissing)
		return
	}
	commit := header(in.hdr, hdrBatchCommit)
	if commit != "" && commit != "1" && commit != "eob" {
		delete(s.batches, id)
		refuse(errAtomicBadCommit)
		return
	}
	b := s.batches[id]
	switch {
	case seq == 1:
		if b == nil && len(s.batches) >= maxBatchesPerStr {
			refuse(errAtomicTooMany)
			return
		}
		b = &atomicBatch{}
		if s.batches == nil {
			s.batches = map[string]*atomicBatch{}
		}
		s.batches[id] = b
	case b == nil || seq != uint64(len(b.msgs))+1:
		delete(s.batches, id) // a gap, or a batch not started (or abandoned)
		refuse(errAtomicIncomplete)
		return
	}
	if seq > maxBatchMsgs {
		delete(s.batches, id)
		refuse(errAtomicTooLarge)
		return
	}
	b.last = time.Now()
	staged := *in
	staged.reply = "" // answered here, or through the commit
	if commit == "" {
		b.msgs = append(b.msgs, staged)
		if reply != "" {
			s.pub.Publish(s.account, reply, "", nil, nil)
		}
		return
	}
	delete(s.batches, id)
	msgs := b.msgs
	if commit == "1" {
		msgs = append(msgs, staged)
	} else {
		if len(msgs) == 0 {
			refuse(errAtomicIncomplete)
			return
		}
		last := &msgs[len(msgs)-1]
		last.hdr = appendHeader(last.hdr, hdrBatchCommit, "1")
	}
	if apiErr := s.checkAtomic(msgs); apiErr != nil {
		refuse(apiErr)
		return
	}
	s.storeRun(cfg, msgs, &atomicCommit{id: id, reply: reply})
}

// checkAtomic applies the rules that hold for a batch as a whole, before
// its messages are checked one by one: no Nats-Expected-Last-Msg-Id, and
// no message id seen before (in the stream's duplicate window or the
// batch). (A later message's Nats-Expected-Last-Sequence is checked in
// storeRun, against the batch's own sequences.)
func (s *stream) checkAtomic(msgs []inbound) *ApiError {
	seen := map[string]bool{}
	for i := range msgs {
		hdr := msgs[i].hdr
		if header(hdr, expectedLastMsgID) != "" {
			return errAtomicUnsupHeader
		}
		if id := header(hdr, "Nats-Msg-Id"); id != "" {
			if _, dup := s.msgIDs[id]; dup || seen[id] {
				return errAtomicDuplicateID
			}
			seen[id] = true
		}
	}
	return nil
}

// expireBatches abandons batches idle for batchIdleTimeout (the ingest
// goroutine's tick).
func (s *stream) expireBatches(now time.Time) {
	for id, b := range s.batches {
		if now.Sub(b.last) > batchIdleTimeout {
			delete(s.batches, id)
			s.e.log.Warnf("Stream %s > %s: atomic batch %q abandoned after %v without messages (%d staged, none stored)",
				s.account, s.cfg.Name, id, batchIdleTimeout, len(b.msgs))
		}
	}
}

// dropTornBatch removes the start of an atomic batch left at the end of
// the stream without its commit (a crash while it was written).
func (s *stream) dropTornBatch() {
	st := s.store.State()
	if st.Msgs == 0 {
		return
	}
	last, err := s.store.Get(st.LastSeq)
	if err != nil {
		return
	}
	id := header(last.Header, hdrBatchID)
	if id == "" || header(last.Header, hdrBatchCommit) != "" {
		return
	}
	n := 0
	for seq := st.LastSeq; seq >= st.FirstSeq && seq > 0; seq-- {
		m, err := s.store.Get(seq)
		if err != nil {
			continue
		}
		if header(m.Header, hdrBatchID) != id {
			break
		}
		s.store.Delete(seq)
		n++
	}
	s.e.log.Warnf("Stream %s > %s: dropped %d message(s) of atomic batch %q that was cut short by a crash before its commit was written",
		s.account, s.cfg.Name, n, id)
}

// appendHeader adds one header line to a NATS header block.
func appendHeader(hdr []byte, key, value string) []byte {
	if len(hdr) == 0 {
		hdr = []byte("NATS/1.0\r\n\r\n")
	}
	out := make([]byte, 0, len(hdr)+len(key)+len(value)+4)
	out = append(out, hdr[:len(hdr)-2]...)
	out = append(out, key+": "+value+"\r\n\r\n"...)
	return out
}
