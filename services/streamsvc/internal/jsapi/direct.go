package jsapi

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/pkg/node"
	"github.com/switchyard-io/switchyard/services/streamsvc/internal/store"
)

// Direct get (ADR-31): a stream with allow_direct answers
// $JS.API.DIRECT.GET.<stream> (a JSON request) and
// $JS.API.DIRECT.GET.<stream>.<subject> (the subject's last message)
// with the message itself, its headers plus Nats-Stream, Nats-Subject,
// Nats-Sequence and Nats-Time-Stamp, or with a status-only message, as
// nats-server's stream.go (getDirectRequest) does. A stream without
// allow_direct does not subscribe, so the requester gets no responders.

const directPrefix = apiPrefix + "DIRECT.GET."

// Status-only replies, nats-server's exact lines.
var (
	directEmpty     = []byte("NATS/1.0 408 Empty Request\r\n\r\n")
	directMalformed = []byte("NATS/1.0 408 Malformed Request\r\n\r\n")
	directBad       = []byte("NATS/1.0 408 Bad Request\r\n\r\n")
	directNotFound  = []byte("NATS/1.0 404 Message Not Found\r\n\r\n")
	directNoResults = []byte("NATS/1.0 404 No Results\r\n\r\n")
	directTooMany   = []byte("NATS/1.0 413 Too Many Results\r\n\r\n")
)

// msgGetRequest is the JSON body of a direct get and of STREAM.MSG.GET.
type msgGetRequest struct {
	Seq       uint64     `json:"seq,omitempty"`
	LastFor   string     `json:"last_by_subj,omitempty"`
	NextFor   string     `json:"next_by_subj,omitempty"`
	Batch     int        `json:"batch,omitempty"`
	MaxBytes  int        `json:"max_bytes,omitempty"`
	StartTime *time.Time `json:"start_time,omitempty"`
	MultiLast []string   `json:"multi_last,omitempty"`
	UpToSeq   uint64     `json:"up_to_seq,omitempty"`
	UpToTime  *time.Time `json:"up_to_time,omitempty"`
	NoHeaders bool       `json:"no_hdr,omitempty"`
}

// directMsg is one reply to a direct get: headers and data.
type directMsg struct{ hdr, data []byte }

// directSubscribe takes the stream's direct get subjects (called by
// subscribe when the configuration allows direct gets).
func (s *stream) directSubscribe(name string) {
	for _, subj := range []string{directPrefix + name, directPrefix + name + ".>"} {
		s.unsub = append(s.unsub, s.e.srv.SubscribeInternal(s.account, subj, "", s.directRequest))
	}
}

// directRequest answers a direct get on the node's delivering goroutine:
// store reads are safe from any goroutine and a get waits for nothing,
// so it skips the API goroutine's queue (a get costs a mesh round trip
// and a store read, no hand-off). Publishers come from a pool because
// several mesh connections deliver at once.
func (s *stream) directRequest(subj, reply []byte, headerLen int, msg []byte) {
	if len(reply) == 0 {
		return
	}
	if headerLen >= 0 {
		msg = msg[headerLen:]
	}
	p := s.e.directPubs.Get().(*node.Publisher)
	to := string(reply)
	for _, m := range s.directGet(string(subj), msg) {
		p.Publish(s.account, to, "", m.hdr, m.data)
	}
	p.Flush()
	s.e.directPubs.Put(p)
}

// directGet answers one direct get request.
func (s *stream) directGet(subj string, data []byte) []directMsg {
	name := strings.TrimPrefix(subj, directPrefix+s.config().Name)
	var req msgGetRequest
	if name != "" {
		// The subject's last message; the body may only be empty or
		// name nothing else.
		if len(data) > 0 && json.Unmarshal(data, &req) != nil {
			return status(directMalformed)
		}
		key := strings.TrimPrefix(name, ".")
		if key == "" || req.LastFor != "" || req.NextFor != "" || len(req.MultiLast) > 0 || req.Seq != 0 ||
			req.Batch != 0 || req.StartTime != nil || req.UpToSeq != 0 || req.UpToTime != nil {
			return status(directBad)
		}
		req.LastFor = key
		return s.directLoad(req)
	}
	if len(data) == 0 {
		return status(directEmpty)
	}
	if json.Unmarshal(data, &req) != nil {
		return status(directMalformed)
	}
	switch {
	case req.Seq == 0 && req.LastFor == "" && req.NextFor == "" && len(req.MultiLast) == 0 && req.StartTime == nil:
		return status(directEmpty)
	case req.Seq > 0 && req.LastFor != "", req.Seq > 0 && req.StartTime != nil,
		req.StartTime != nil && req.LastFor != "", req.LastFor != "" && req.NextFor != "",
		req.LastFor != "" && req.Batch > 0, req.LastFor != "" && len(req.MultiLast) > 0,
		req.NextFor != "" && len(req.MultiLast) > 0, req.UpToSeq > 0 && req.UpToTime != nil:
		return status(directBad)
	}
	if len(req.MultiLast) > 0 {
		return s.directMultiLast(req)
	}
	return s.directLoad(req)
}

func status(line []byte) []directMsg { return []directMsg{{hdr: line}} }

// directLoad answers by sequence, next by subject (optionally a batch,
// ended by a 204 EOB status) or last by subject.
func (s *stream) directLoad(req msgGetRequest) []directMsg {
	name := s.config().Name
	seq := req.Seq
	if req.StartTime != nil {
		seq = s.seqFromTime(req.StartTime.UnixNano())
	}
	batch, isBatch := req.Batch, req.Batch > 0
	filter := req.NextFor
	if filter == "" {
		filter = ">"
	}
	var pending uint64
	if isBatch {
		pending = s.countFrom(filter, seq)
	} else {
		batch = 1
	}
	var out []directMsg
	var lastSeq uint64
	sent := 0
	for i := 0; i < batch; i++ {
		var m store.Msg
		var err error
		switch {
		case seq > 0 && req.NextFor == "" && i == 0 && !isBatch:
			m, err = s.store.Get(seq)
		case req.LastFor != "":
			m, err = s.store.LoadLast(req.LastFor)
		default:
			m, err = s.store.LoadNext(filter, seq)
		}
		if err != nil {
			if isBatch && i > 0 {
				break
			}
			return status(directNotFound)
		}
		seq = m.Seq + 1
		var hdr []byte
		if !req.NoHeaders {
			hdr = directHeaders(m, name)
			if isBatch {
				pending = max(pending, 1) - 1
				hdr = addHeader(hdr, "Nats-Num-Pending", strconv.FormatUint(pending, 10))
				hdr = addHeader(hdr, "Nats-Last-Sequence", strconv.FormatUint(lastSeq, 10))
			}
		}
		lastSeq = m.Seq
		out = append(out, directMsg{hdr: hdr, data: m.Data})
		sent += len(m.Subject) + len(m.Header) + len(m.Data)
		if sent >= directMaxBytes(req) {
			break
		}
	}
	if isBatch {
		pending = s.countFrom(filter, seq)
		out = append(out, directMsg{hdr: []byte("NATS/1.0 204 EOB\r\nNats-Num-Pending: " + strconv.FormatUint(pending, 10) +
			"\r\nNats-Last-Sequence: " + strconv.FormatUint(lastSeq, 10) + "\r\n\r\n")})
	}
	return out
}

// directMultiLast answers multi_last: the last message of each subject
// matching the filters (at or before up_to_seq, and not before seq),
// oldest first, then EOB.
func (s *stream) directMultiLast(req msgGetRequest) []directMsg {
	const maxResults = 1024 // nats-server's limit
	name := s.config().Name
	upTo := req.UpToSeq
	if req.UpToTime != nil {
		upTo = s.seqFromTime(req.UpToTime.UnixNano())
		if upTo <= s.store.State().FirstSeq {
			return status(directNoResults)
		}
		upTo--
	}
	if upTo == 0 {
		upTo = s.store.State().LastSeq
	}
	var seqs []uint64
	seen := map[string]bool{}
	for _, f := range req.MultiLast {
		for subj := range s.store.SubjectCounts(f) {
			if seen[subj] {
				continue
			}
			seen[subj] = true
			if seq, ok := s.lastAtOrBefore(subj, upTo); ok {
				seqs = append(seqs, seq)
			}
		}
	}
	if len(seqs) > maxResults {
		return status(directTooMany)
	}
	if len(seqs) == 0 {
		return status(directNoResults)
	}
	slices.Sort(seqs)
	// Those before seq count in Nats-Num-Pending but are not sent.
	var out []directMsg
	var lastSeq uint64
	pending, sent := uint64(len(seqs)), 0
	for _, seq := range seqs {
		pending--
		if seq < req.Seq {
			continue
		}
		m, err := s.store.Get(seq)
		if err != nil {
			return status(directNotFound)
		}
		hdr := directHeaders(m, name)
		hdr = addHeader(hdr, "Nats-Num-Pending", strconv.FormatUint(pending, 10))
		hdr = addHeader(hdr, "Nats-Last-Sequence", strconv.FormatUint(lastSeq, 10))
		lastSeq = m.Seq
		out = append(out, directMsg{hdr: hdr, data: m.Data})
		sent += len(m.Subject) + len(m.Header) + len(m.Data)
		if sent >= directMaxBytes(req) || req.Batch > 0 && len(out) >= req.Batch {
			break
		}
	}
	out = append(out, directMsg{hdr: []byte("NATS/1.0 204 EOB\r\nNats-Num-Pending: " + strconv.FormatUint(pending, 10) +
		"\r\nNats-Last-Sequence: " + strconv.FormatUint(lastSeq, 10) +
		"\r\nNats-UpTo-Sequence: " + strconv.FormatUint(upTo, 10) + "\r\n\r\n")})
	return out
}

// directHeaders are a stored message's headers plus where it is stored.
func directHeaders(m store.Msg, stream string) []byte {
	hdr := addHeader(m.Header, "Nats-Stream", stream)
	hdr = addHeader(hdr, "Nats-Subject", m.Subject)
	hdr = addHeader(hdr, "Nats-Sequence", strconv.FormatUint(m.Seq, 10))
	return addHeader(hdr, "Nats-Time-Stamp", time.Unix(0, m.Time).UTC().Format(time.RFC3339Nano))
}

// directMaxBytes is where a batch stops: the request's max_bytes, else
// nats-server's default max_pending (64 MiB).
func directMaxBytes(req msgGetRequest) int {
	if req.MaxBytes > 0 {
		return req.MaxBytes
	}
	return 64 << 20
}

// countFrom counts the live messages matching filter at or after seq.
func (s *stream) countFrom(filter string, seq uint64) uint64 {
	var n uint64
	for at, ok := s.store.NextSeq(filter, seq); ok; at, ok = s.store.NextSeq(filter, at+1) {
		n++
	}
	return n
}

// seqFromTime is the first sequence stored at or after t (unix ns), or
// the next sequence when there is none.
func (s *stream) seqFromTime(t int64) uint64 {
	for seq := s.store.State().FirstSeq; ; {
		m, err := s.store.LoadNext(">", seq)
		if err != nil {
			return s.store.State().LastSeq + 1
		}
		if m.Time >= t {
			return m.Seq
		}
		seq = m.Seq + 1
	}
}

// lastAtOrBefore is the newest sequence of subject at or before upTo.
func (s *stream) lastAtOrBefore(subj string, upTo uint64) (uint64, bool) {
	if m, err := s.store.LoadLast(subj); err == nil && m.Seq <= upTo {
		return m.Seq, true
	}
	best, found := uint64(0), false
	for at, ok := s.store.NextSeq(subj, 0); ok && at <= upTo; at, ok = s.store.NextSeq(subj, at+1) {
		best, found = at, true
	}
	return best, found
}
