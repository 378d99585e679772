package jsapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/nats-io/nuid"

	"github.com/switchyard-io/switchyard/pkg/subject"
	"github.com/switchyard-io/switchyard/services/streamsvc/internal/archive"
	"github.com/switchyard-io/switchyard/services/streamsvc/internal/store"
)

// Stream backups (`nats stream backup`), as nats-server v2.15 sends them:
// STREAM.SNAPSHOT answers with the stream's configuration and state, then
// streams the archive (package archive) to the request's deliver_subject
// in chunks. Each full chunk carries a reply subject the client answers
// (flow control: at most window_size bytes unanswered); the last, short
// chunk carries none; an empty message ends the backup, with the status
// header "204" when a full chunk went before it, "408 No Flow Response"
// when the client stopped answering for 5 s, or "500 <error>".

const (
	snapshotChunk      = 128 << 10 // default chunk_size
	snapshotWindow     = 8 << 20   // default window_size
	snapshotAckTimeout = 5 * time.Second
	// snapshotInterestWait is how long the first chunk waits for the
	// client's subscription to exactly the deliver subject to reach
	// streamsvc: the client (jsm.go) subscribes after the answer, and
	// until then its request inbox _INBOX.x.* matches the subject and
	// would swallow the chunks.
	snapshotInterestWait = 10 * time.Second
)

var errSnapshotDeliverSubject = &ApiError{400, 10015, "deliver subject not valid"}

type snapshotRequest struct {
	DeliverSubject string `json:"deliver_subject"`
	NoConsumers    bool   `json:"no_consumers"`
	ChunkSize      int    `json:"chunk_size"`
	WindowSize     int    `json:"window_size"`
	CheckMsgs      bool   `json:"jsck"`
}

// isEmptyRequest is nats-server's test: nothing, or a JSON object with
// no field.
func isEmptyRequest(data []byte) bool {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return true
	}
	var v map[string]json.RawMessage
	return json.Unmarshal(data, &v) == nil && len(v) == 0
}

// snapshotStream serves STREAM.SNAPSHOT.<name>: the answer, then the
// archive from a goroutine of its own.
func (e *Engine) snapshotStream(account, name string, data []byte) []byte {
	const typ = "io.nats.jetstream.api.v1.stream_snapshot_response"
	if isEmptyRequest(data) {
		return response(typ, nil, errBadRequest)
	}
	s := e.lookup(account, name)
	if s == nil {
		return response(typ, nil, errStreamNotFound)
	}
	var req snapshotRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return response(typ, nil, errInvalidJSON(err))
	}
	if req.DeliverSubject == "" || !subject.ValidPublish([]byte(req.DeliverSubject)) {
		return response(typ, nil, errSnapshotDeliverSubject)
	}
	info := s.info()
	go s.sendSnapshot(req, info.State)
	return response(typ, map[string]any{"config": info.Config, "state": info.State}, nil)
}

// sendSnapshot streams the archive of s as it was at state to the
// client, paced by its acknowledgements.
func (s *stream) sendSnapshot(req snapshotRequest, state StreamState) {
	start := time.Now()
	e, name := s.e, s.config().Name
	chunkSize := req.ChunkSize
	if chunkSize == 0 {
		chunkSize = snapshotChunk
	}
	window := req.WindowSize
	if window == 0 {
		window = snapshotWindow
	}
	chunkSize = min(max(chunkSize, 1<<10), 1<<20)
	window = max(min(max(window, 1<<10), 32<<20), chunkSize)

	pub := e.srv.NewPublisher()
	for wait := time.Now().Add(snapshotInterestWait); !pub.HasSubscriber(s.account, req.DeliverSubject) && time.Now().Before(wait); {
		time.Sleep(10 * time.Millisecond)
	}

	slots := make(chan struct{}, window/chunkSize)
	for range cap(slots) {
		slots <- struct{}{}
	}
	ackSubject := "$JS.SNAPSHOT.ACK." + name + "." + nuid.Next()
	unsub := e.srv.SubscribeInternal(s.account, ackSubject+".>", "", func(_, _ []byte, _ int, _ []byte) {
		select {
		case slots <- struct{}{}:
		default: // an answer too many
		}
	})
	defer unsub()

	pr, pw := io.Pipe()
	defer pr.Close() // stops the writer when the client is gone
	go func() { pw.CloseWithError(s.writeArchive(pw, state, !req.NoConsumers)) }()

	var status []byte
	var failed error
	chunk := make([]byte, chunkSize)
	timer := time.NewTimer(snapshotAckTimeout)
	defer timer.Stop()
	sent := 0
	for index := 1; ; {
		select {
		case <-slots:
		case <-timer.C:
			failed = errors.New("no flow response")
			status = []byte("NATS/1.0 408 No Flow Response\r\n\r\n")
		case <-e.quit:
			failed = errors.New("JetStream is stopping")
			status = []byte("NATS/1.0 500 " + failed.Error() + "\r\n\r\n")
		}
		if failed != nil {
			break
		}
		n, err := io.ReadFull(pr, chunk)
		sent += n
		if err != nil {
			if n > 0 {
				pub.Publish(s.account, req.DeliverSubject, "", nil, chunk[:n])
			}
			if err != io.EOF && err != io.ErrUnexpectedEOF {
				failed = err
				status = []byte("NATS/1.0 500 " + oneLine(err.Error()) + "\r\n\r\n")
			}
			break
		}
		if status == nil {
			status = []byte("NATS/1.0 204\r\n\r\n")
		}
		pub.Publish(s.account, req.DeliverSubject, ackSubject+"."+strconv.Itoa(n)+"."+strconv.Itoa(index), nil, chunk[:n])
		pub.Flush()
		timer.Reset(snapshotAckTimeout)
		index++
	}
	pub.Publish(s.account, req.DeliverSubject, "", status, nil)
	pub.Flush()
	if failed != nil {
		e.log.Warnf("Snapshot of stream %s > %s failed after %v (%d bytes sent): %v", s.account, name, time.Since(start).Round(time.Millisecond), sent, failed)
		return
	}
	e.log.Infof("Snapshot of stream %s > %s sent: %d message(s), %d bytes compressed, in %v", s.account, name, state.Msgs, sent, time.Since(start).Round(time.Millisecond))
}

// oneLine keeps a status text on the header's line.
func oneLine(s string) string {
	return string(bytes.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, []byte(s)))
}

// writeArchive writes the backup of s: its state, its consumers (when
// asked), its messages up to state.LastSeq (publishes go on meanwhile)
// and the end marker.
func (s *stream) writeArchive(w io.Writer, state StreamState, withConsumers bool) error {
	aw := archive.NewWriter(w)
	now := time.Now().UnixNano()
	var consumers []snapshotConsumer
	if withConsumers {
		consumers = s.snapshotConsumers(state.LastSeq)
	}
	state.Consumers = len(consumers)
	state.Deleted, state.Lost = nil, nil
	b, err := json.Marshal(state)
	if err != nil {
		return err
	}
	if err := aw.Write(archive.Entry{Name: archive.StateName, Time: now, Data: b}); err != nil {
		return err
	}
	for _, c := range consumers {
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		if err := aw.Write(archive.Entry{Name: archive.ConsumerPrefix + c.Config.Name, Time: now, Data: b}); err != nil {
			return err
		}
	}
	for seq := state.FirstSeq; seq <= state.LastSeq; {
		m, err := s.store.LoadNext(">", seq)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			return fmt.Errorf("couldn't load next message after seq %d: %w", seq, err)
		}
		if m.Seq > state.LastSeq {
			break
		}
		if err := aw.Write(archive.Entry{Name: m.Subject, Time: m.Time, Seq: m.Seq, Header: m.Header, Data: m.Data}); err != nil {
			return err
		}
		seq = m.Seq + 1
	}
	if err := aw.WriteEnd(); err != nil {
		return err
	}
	return aw.Close()
}

// snapshotConsumer is a consumer as a backup holds it (nats-server's
// {"config", "state"}).
type snapshotConsumer struct {
	Config ConsumerConfig      `json:"config"`
	State  snapshotConsumerPos `json:"state"`
}

type snapshotConsumerPos struct {
	Delivered   SequenceInfo               `json:"delivered"`
	AckFloor    SequenceInfo               `json:"ack_floor"`
	Pending     map[uint64]snapshotPending `json:"pending,omitempty"`
	Redelivered map[uint64]uint64          `json:"redelivered,omitempty"`
}

// snapshotPending is a delivered, unacknowledged message: its consumer
// sequence and when it was delivered (unix ns); nats-server's JSON names.
type snapshotPending struct {
	Sequence  uint64 `json:"Sequence"`
	Timestamp int64  `json:"Timestamp"`
}

// snapshotConsumers collects the consumers' positions as their
// goroutines hold them now (delivered, ack floor, pending acks and
// delivery counts), bounded by the snapshot's last sequence.
func (s *stream) snapshotConsumers(lastSeq uint64) []snapshotConsumer {
	s.cmu.Lock()
	all := make([]*consumer, 0, len(s.consumers))
	for _, c := range s.consumers {
		all = append(all, c)
	}
	s.cmu.Unlock()
	var out []snapshotConsumer
	for _, c := range all {
		sc := snapshotConsumer{Config: c.config()}
		if sc.Config.Name == "" {
			sc.Config.Name = c.name
		}
		st, ok := c.livePositions()
		if !ok {
			continue // deleted meanwhile
		}
		sc.State = snapshotConsumerPos{
			Delivered: SequenceInfo{Stream: st.Delivered[0], Consumer: st.Delivered[1]},
			AckFloor:  SequenceInfo{Stream: st.AckFloor[0], Consumer: st.AckFloor[1]},
		}
		for sseq, p := range st.Pending {
			if sc.State.Pending == nil {
				sc.State.Pending = map[uint64]snapshotPending{}
			}
			sc.State.Pending[sseq] = snapshotPending{Sequence: uint64(p[0]), Timestamp: p[1]}
		}
		for sseq, n := range st.Counts {
			if n > 1 {
				if sc.State.Redelivered == nil {
					sc.State.Redelivered = map[uint64]uint64{}
				}
				sc.State.Redelivered[sseq] = uint64(n)
			}
		}
		sc.State.Delivered.Stream = min(sc.State.Delivered.Stream, lastSeq)
		sc.State.AckFloor.Stream = min(sc.State.AckFloor.Stream, lastSeq)
		for sseq := range sc.State.Pending {
			if sseq > lastSeq {
				delete(sc.State.Pending, sseq)
			}
		}
		for sseq := range sc.State.Redelivered {
			if sseq > lastSeq {
				delete(sc.State.Redelivered, sseq)
			}
		}
		out = append(out, sc)
	}
	return out
}
