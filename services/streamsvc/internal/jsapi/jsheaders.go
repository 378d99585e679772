package jsapi

import (
	"bytes"
	"iter"
)

// jsHeaders are the JetStream headers of a published message, read from
// its header block in one pass when the ingest goroutine takes it (the
// checks used to scan the block once per header they asked about).
// Each holds the first value of its key, keys matched as header does.
type jsHeaders struct {
	batchID        string // Nats-Batch-Id
	ttl            string // Nats-TTL
	incr           string // Nats-Incr
	expStream      string // Nats-Expected-Stream
	expLastSeq     string // Nats-Expected-Last-Sequence
	expLastSubjSeq string // Nats-Expected-Last-Subject-Sequence
	expLastMsgID   string // Nats-Expected-Last-Msg-Id
	msgID          string // Nats-Msg-Id
	rollup         string // Nats-Rollup
}

// readJSHeaders reads hdr's JetStream headers.
func readJSHeaders(hdr []byte) jsHeaders {
	var h jsHeaders
	for key, value := range headerFields(hdr) {
		if len(key) < 5 || !bytes.EqualFold(key[:5], []byte("Nats-")) {
			continue // not a JetStream header: no comparisons
		}
		var dst *string
		switch {
		case bytes.EqualFold(key, []byte(hdrBatchID)):
			dst = &h.batchID
		case bytes.EqualFold(key, []byte(hdrTTL)):
			dst = &h.ttl
		case bytes.EqualFold(key, []byte(hdrIncr)):
			dst = &h.incr
		case bytes.EqualFold(key, []byte("Nats-Expected-Stream")):
			dst = &h.expStream
		case bytes.EqualFold(key, []byte("Nats-Expected-Last-Sequence")):
			dst = &h.expLastSeq
		case bytes.EqualFold(key, []byte("Nats-Expected-Last-Subject-Sequence")):
			dst = &h.expLastSubjSeq
		case bytes.EqualFold(key, []byte(expectedLastMsgID)):
			dst = &h.expLastMsgID
		case bytes.EqualFold(key, []byte("Nats-Msg-Id")):
			dst = &h.msgID
		case bytes.EqualFold(key, []byte("Nats-Rollup")):
			dst = &h.rollup
		default:
			continue
		}
		if *dst == "" {
			*dst = string(value)
		}
	}
	return h
}

// headerFields yields each field of a NATS header block (after the status
// line, which has no colon), key and value trimmed.
func headerFields(hdr []byte) iter.Seq2[[]byte, []byte] {
	return func(yield func(key, value []byte) bool) {
		for len(hdr) > 0 {
			i := bytes.Index(hdr, []byte("\r\n"))
			if i < 0 {
				i = len(hdr)
			}
			line := hdr[:i]
			hdr = hdr[min(i+2, len(hdr)):]
			c := bytes.IndexByte(line, ':')
			if c <= 0 {
				continue
			}
			if !yield(bytes.TrimSpace(line[:c]), bytes.TrimSpace(line[c+1:])) {
				return
			}
		}
	}
}
