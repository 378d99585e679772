package jsapi

import (
	"strconv"
	"time"

	"github.com/switchyard-io/switchyard/pkg/subject"
	"github.com/switchyard-io/switchyard/services/streamsvc/internal/store"
)

// Stream subject transforms and republish, as nats-server v2.15 has them:
//
//   - subject_transform rewrites the subject of a message published to
//     the stream before anything else sees it (a subject it does not
//     match is kept).
//   - republish publishes every stored message whose subject matches src
//     to dest (transformed like a mapping) once it is stored, with
//     Nats-Stream, Nats-Subject, Nats-Sequence, Nats-Time-Stamp and
//     Nats-Last-Sequence (the subject's previous sequence, 0 for none)
//     added to its headers; headers_only sends no payload but
//     Nats-Msg-Size.

// SubjectTransform is a stream's subject_transform.
type SubjectTransform struct {
	Source      string `json:"src"`
	Destination string `json:"dest"`
}

// RePublish is a stream's republish.
type RePublish struct {
	Source      string `json:"src,omitempty"`
	Destination string `json:"dest"`
	HeadersOnly bool   `json:"headers_only,omitempty"`
}

var errStreamTransform = &ApiError{400, 10156, "stream transform: invalid subject"}

// checkTransforms validates subject_transform and republish and fills
// republish's default source (normalize calls it).
func checkTransforms(cfg *StreamConfig) *ApiError {
	if t := cfg.SubjectTransform; t != nil {
		if _, err := compileTransform(t.Source, t.Destination); err != nil {
			return errStreamTransform
		}
	}
	rp := cfg.RePublish
	if rp == nil {
		return nil
	}
	if rp.Source == "" {
		rp.Source = ">"
	}
	if rp.Destination == "" {
		return nil // nats-server takes it and republishes nothing
	}
	for _, own := range cfg.Subjects {
		if subject.Overlap(own, rp.Destination) {
			return errInvalidConfig("stream configuration for republish destination forms a cycle")
		}
	}
	if _, err := compileTransform(rp.Source, rp.Destination); err != nil {
		return errInvalidConfig("stream configuration for republish with transform from '%s' to '%s' not valid", rp.Source, rp.Destination)
	}
	return nil
}

// streamTransforms are a stream's compiled subject_transform and
// republish (nil for none), swapped whole on update.
type streamTransforms struct {
	in        *subject.Transform
	republish *subject.Transform
	rp        RePublish
}

func newStreamTransforms(cfg StreamConfig) *streamTransforms {
	t := &streamTransforms{}
	if st := cfg.SubjectTransform; st != nil {
		t.in, _ = compileTransform(st.Source, st.Destination) // checked at create
	}
	if rp := cfg.RePublish; rp != nil && rp.Destination != "" {
		t.republish, _ = compileTransform(rp.Source, rp.Destination)
		t.rp = *rp
	}
	return t
}

// transformIn applies subject_transform to a published subject.
func (t *streamTransforms) transformIn(subj string) string {
	if t.in == nil {
		return subj
	}
	if out, ok := t.in.Apply(subj); ok {
		return out
	}
	return subj
}

// previousSeqs finds, for republish, each message's subject's sequence
// before it (msgs not yet stored; the batch's own earlier messages count).
func (s *stream) previousSeqs(msgs []store.Msg, firstSeq uint64) []uint64 {
	prev := make([]uint64, len(msgs))
	last := map[string]uint64{}
	for i := range msgs {
		subj := msgs[i].Subject
		seq, ok := last[subj]
		if !ok {
			if m, err := s.store.LoadLast(subj); err == nil {
				seq = m.Seq
			}
		}
		prev[i] = seq
		last[subj] = firstSeq + uint64(i)
	}
	return prev
}

// republishStored publishes the stored msgs that republish matches.
func (s *stream) republishStored(t *streamTransforms, stream string, msgs []store.Msg, prev []uint64) {
	for i := range msgs {
		m := &msgs[i]
		dest, ok := t.republish.Apply(m.Subject)
		if !ok {
			continue
		}
		hdr := m.Header
		if len(hdr) == 0 {
			hdr = []byte("NATS/1.0\r\n\r\n")
		}
		b := make([]byte, 0, len(hdr)+160)
		b = append(b, hdr[:len(hdr)-2]...)
		b = append(b, "Nats-Stream: "+stream+"\r\nNats-Subject: "+m.Subject+"\r\nNats-Sequence: "...)
		b = strconv.AppendUint(b, m.Seq, 10)
		b = append(b, "\r\nNats-Time-Stamp: "...)
		b = time.Unix(0, m.Time).UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, "\r\nNats-Last-Sequence: "...)
		b = strconv.AppendUint(b, prev[i], 10)
		data := m.Data
		if t.rp.HeadersOnly {
			b = append(b, "\r\nNats-Msg-Size: "...)
			b = strconv.AppendInt(b, int64(len(m.Data)), 10)
			data = nil
		}
		b = append(b, "\r\n\r\n"...)
		s.pub.Publish(s.account, dest, "", b, data)
	}
}
