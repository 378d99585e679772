package jsapi

import "testing"

// readJSHeaders finds what header finds, key by key: first values, keys
// in any case, other headers skipped, a status line ignored.
func TestReadJSHeaders(t *testing.T) {
	hdr := []byte("NATS/1.0\r\nOwn: x\r\nnats-msg-id:  a1 \r\nNats-Msg-Id: a2\r\nNats-TTL: 5s\r\nNats-Incr: +3\r\n" +
		"Nats-Expected-Stream: S\r\nNats-Expected-Last-Sequence: 4\r\nNats-Expected-Last-Subject-Sequence: 2\r\n" +
		"Nats-Expected-Last-Msg-Id: m\r\nNats-Rollup: sub\r\nNats-Batch-Id: b\r\nNats-Other: y\r\n\r\n")
	h := readJSHeaders(hdr)
	for key, got := range map[string]string{
		"Nats-Msg-Id": h.msgID, "Nats-TTL": h.ttl, "Nats-Incr": h.incr, "Nats-Expected-Stream": h.expStream,
		"Nats-Expected-Last-Sequence": h.expLastSeq, "Nats-Expected-Last-Subject-Sequence": h.expLastSubjSeq,
		"Nats-Expected-Last-Msg-Id": h.expLastMsgID, "Nats-Rollup": h.rollup, "Nats-Batch-Id": h.batchID,
	} {
		if want := header(hdr, key); got != want || got == "" {
			t.Errorf("%s: read %q, header gives %q", key, got, want)
		}
	}
	if h.msgID != "a1" {
		t.Errorf("the first value is kept: %q", h.msgID)
	}
	if (readJSHeaders([]byte("NATS/1.0 503\r\n\r\n")) != jsHeaders{}) || (readJSHeaders(nil) != jsHeaders{}) {
		t.Error("a status line or no headers read as JetStream headers")
	}
}
