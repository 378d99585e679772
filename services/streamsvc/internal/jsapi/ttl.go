package jsapi

import (
	"container/heap"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/services/streamsvc/internal/store"
)

// Per-message TTLs and subject delete markers, as nats-server v2.15 has
// them (ADR-43, and ADR-48 for what KV builds on them):
//
//   - A stream with allow_msg_ttl takes a Nats-TTL header: whole seconds
//     ("30") or a Go duration of at least a second ("1h"), or "never". The
//     message is removed that long after its stream timestamp. max_age
//     still applies to it, except to "never", which max_age leaves alone.
//   - With subject_delete_marker_ttl, a message that max_age or its own
//     TTL removes, and that was the last on its subject, is followed by a
//     marker: an empty message on the subject with Nats-Marker-Reason:
//     MaxAge, Nats-TTL (the marker's own lifetime) and Nats-Rollup: sub.
//     A marker that expires leaves no marker. Deletes, purges and the
//     count limits leave none either.
//
// The ingest goroutine owns the index of TTL deadlines (a heap, rebuilt
// from the store when the stream opens) and the timer of the next one.

const (
	hdrTTL          = "Nats-TTL"
	hdrMarkerReason = "Nats-Marker-Reason"
	ttlNever        = "never"
)

var (
	errMsgTTLDisabled = &ApiError{400, 10166, "per-message TTL is disabled"}
	errMsgTTLInvalid  = &ApiError{400, 10165, "invalid per-message TTL"}
)

// parseMsgTTL reads a Nats-TTL value: a positive whole number of seconds,
// or -1 for "never".
func parseMsgTTL(v string) (time.Duration, error) {
	if strings.EqualFold(v, ttlNever) {
		return -1, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d < time.Second {
			return 0, errMsgTTLInvalid
		}
		return d.Truncate(time.Second), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 || n > int64(time.Duration(1<<63-1)/time.Second) {
		return 0, errMsgTTLInvalid
	}
	return time.Duration(n) * time.Second, nil
}

// checkMsgTTL applies the stream's TTL rules to a message's Nats-TTL.
func checkMsgTTL(cfg StreamConfig, v string) *ApiError {
	if v == "" {
		return nil
	}
	if !cfg.AllowMsgTTL {
		return errMsgTTLDisabled
	}
	if _, err := parseMsgTTL(v); err != nil {
		return errMsgTTLInvalid
	}
	return nil
}

// msgTTL is a stored message's TTL: 0 none, -1 never.
func msgTTL(hdr []byte) time.Duration {
	if hdr == nil {
		return 0
	}
	v := header(hdr, hdrTTL)
	if v == "" {
		return 0
	}
	d, _ := parseMsgTTL(v)
	return d
}

// ttlDeadline is when a message with a TTL goes.
type ttlDeadline struct {
	at  int64 // unix nanoseconds
	seq uint64
}

type ttlHeap []ttlDeadline

func (h ttlHeap) Len() int           { return len(h) }
func (h ttlHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h ttlHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *ttlHeap) Push(x any)        { *h = append(*h, x.(ttlDeadline)) }
func (h *ttlHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// trackTTLs notes the deadlines of stored messages that carry a TTL and
// sets the timer when one comes sooner than the next known.
func (s *stream) trackTTLs(msgs []store.Msg) {
	soonest := int64(0)
	if len(s.ttls) > 0 {
		soonest = s.ttls[0].at
	}
	for i := range msgs {
		ttl := msgTTL(msgs[i].Header)
		if ttl <= 0 {
			continue
		}
		heap.Push(&s.ttls, ttlDeadline{at: msgs[i].Time + int64(ttl), seq: msgs[i].Seq})
	}
	if len(s.ttls) > 0 && s.ttls[0].at != soonest {
		s.ttlTimer.Reset(time.Until(time.Unix(0, s.ttls[0].at)))
	}
}

// loadTTLs rebuilds the deadlines from the stored messages (when the
// stream opens).
func (s *stream) loadTTLs() {
	if !s.config().AllowMsgTTL {
		return
	}
	var batch []store.Msg
	for seq := s.store.State().FirstSeq; ; {
		m, err := s.store.LoadNext(">", seq)
		if err != nil && m.Seq == 0 {
			break
		}
		seq = m.Seq + 1
		if err == nil && m.Header != nil {
			batch = append(batch, store.Msg{Seq: m.Seq, Time: m.Time, Header: m.Header})
		}
	}
	s.trackTTLs(batch)
}

// expireTTLs removes the messages whose TTL has passed, then places the
// subject delete markers their removal calls for.
func (s *stream) expireTTLs() {
	now := time.Now().UnixNano()
	var gone []store.Msg
	for len(s.ttls) > 0 && s.ttls[0].at <= now {
		d := heap.Pop(&s.ttls).(ttlDeadline)
		m, err := s.store.Get(d.seq)
		if err != nil {
			continue // purged, deleted or expired by max_age before its TTL
		}
		if ok, _ := s.store.Delete(d.seq); ok {
			gone = append(gone, m)
		}
	}
	if len(s.ttls) > 0 {
		s.ttlTimer.Reset(time.Until(time.Unix(0, s.ttls[0].at)))
	}
	if len(gone) > 0 {
		s.removed()
		s.placeMarkers(s.config(), gone)
	}
}

// placeMarkers stores a subject delete marker for each subject that the
// removal of gone (by max_age or TTL, in sequence order) left empty.
func (s *stream) placeMarkers(cfg StreamConfig, gone []store.Msg) {
	ttl := cfg.SubjectDeleteMarkerTTL.Truncate(time.Second)
	if ttl <= 0 {
		return
	}
	hdr := []byte("NATS/1.0\r\n" + hdrMarkerReason + ": MaxAge\r\n" + hdrTTL + ": " + ttl.String() + "\r\nNats-Rollup: sub\r\n\r\n")
	var markers []store.Msg
	placed := map[string]bool{}
	for i := range gone {
		subj := gone[i].Subject
		if placed[subj] || header(gone[i].Header, hdrMarkerReason) != "" || s.store.SubjectMsgs(subj) > 0 {
			continue
		}
		placed[subj] = true
		markers = append(markers, store.Msg{Subject: subj, Header: hdr})
	}
	if len(markers) == 0 {
		return
	}
	if err := s.store.Append(markers); err != nil {
		s.e.log.Errorf("Stream %s > %s: storing %d subject delete marker(s) failed: %v", s.account, cfg.Name, len(markers), err)
		return
	}
	s.stored(cfg, markers)
}
