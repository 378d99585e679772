package jsapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nuid"

	"github.com/switchyard-io/switchyard/pkg/node"
	"github.com/switchyard-io/switchyard/services/streamsvc/internal/archive"
	"github.com/switchyard-io/switchyard/services/streamsvc/internal/store"
)

// Stream restores (`nats stream restore`), as nats-server v2.15 takes
// them: STREAM.RESTORE carries the configuration (and the backup's
// state); the answer names a deliver subject, to which the client sends
// the archive in chunks as requests, each answered (empty) once taken; an
// empty message ends it, answered with a stream create response: the
// restored stream's info, or why it failed.
//
// The archive is read as it arrives, into a store no one else sees (file
// streams: a directory under <account>/restoring/; memory streams: a
// memory store), and becomes a stream only at the end, complete: a
// failed, stalled or cut-short restore leaves nothing behind. Nothing of
// the archive is used as a path: consumer names are checked as consumer
// names, subjects go into the store.

const (
	// restoreStall is how long a restore waits for the client's next
	// chunk before giving up (nats-server's activity interval).
	restoreStall = 5 * time.Second
	// restoreQueue bounds the chunks received but not yet taken (a client
	// sends the next one when the last is answered).
	restoreQueue = 8
	// restoreMaxEntry bounds one archive entry (a message's headers and
	// payload, or a consumer's state): memory stays bounded by it.
	restoreMaxEntry = 64 << 20
	// restoreBatch bounds the messages stored at once.
	restoreBatch      = 1024
	restoreBatchBytes = 4 << 20
)

var errStreamNameExistRestore = &ApiError{400, 10130, "stream name already in use, cannot restore"}

// errRestore is nats-server's JSStreamRestoreErrF, or err itself when it
// is an API error already.
func errRestore(err error) *ApiError {
	var apiErr *ApiError
	if errors.As(err, &apiErr) {
		return apiErr
	}
	return &ApiError{500, 10062, "restore failed: " + err.Error()}
}

// restores are the streams being restored, by account and name (a name
// is taken from the request until the restore ends).
type restores struct {
	mu    sync.Mutex
	names map[string]bool
}

func (r *restores) take(account, name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names == nil {
		r.names = map[string]bool{}
	}
	k := account + "\x00" + name
	if r.names[k] {
		return false
	}
	r.names[k] = true
	return true
}

func (r *restores) release(account, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.names, account+"\x00"+name)
}

// restoreStream serves STREAM.RESTORE.<name>, checking what nats-server
// checks before it answers with the deliver subject.
func (e *Engine) restoreStream(account, name string, data []byte) []byte {
	const typ = "io.nats.jetstream.api.v1.stream_restore_response"
	fail := func(apiErr *ApiError) []byte {
		b, _ := json.Marshal(map[string]any{"type": typ, "error": apiErr, "deliver_subject": ""})
		return b
	}
	if isEmptyRequest(data) {
		return fail(errBadRequest)
	}
	var req struct {
		Config json.RawMessage `json:"config"`
	}
	var cfg StreamConfig
	err := json.Unmarshal(data, &req)
	if err == nil && len(req.Config) > 0 {
		err = json.Unmarshal(req.Config, &cfg)
	}
	if err != nil {
		return fail(errInvalidJSON(err))
	}
	if cfg.Name == "" {
		cfg.Name = name
	}
	if cfg.Name != name {
		return fail(errStreamMismatch)
	}
	if strings.ContainsAny(name, `/\`) {
		return fail(errNameSeparators)
	}
	if key := unsupportedKey(req.Config, unsupportedStreamKeys); key != "" {
		return fail(errInvalidConfig("%s is not supported by Switchyard's streamsvc yet", key))
	}
	if apiErr := e.checkNewStream(account, cfg); apiErr != nil {
		return fail(apiErr)
	}
	if apiErr := normalize(&cfg); apiErr != nil {
		return fail(apiErr)
	}
	for _, check := range []func(string, StreamConfig) *ApiError{e.checkStreamBytes, e.checkStreamReservation, e.checkOverlap} {
		if apiErr := check(account, cfg); apiErr != nil {
			return fail(apiErr)
		}
	}
	if e.lookup(account, name) != nil || !e.restoring.take(account, name) {
		return fail(errStreamNameExistRestore)
	}
	r := &restore{e: e, account: account, cfg: cfg, started: time.Now(),
		subject: "$JS.SNAPSHOT.RESTORE." + name + "." + nuid.Next(),
		chunks:  make(chan restoreChunk, restoreQueue), overflow: make(chan struct{}), pub: e.srv.NewPublisher()}
	r.unsub = e.srv.SubscribeInternal(account, r.subject, "", r.receive)
	e.log.Infof("Starting restore for stream %s > %s", account, name)
	go r.run()
	b, _ := json.Marshal(map[string]any{"type": typ, "deliver_subject": r.subject})
	return b
}

// restore is one restore in progress.
type restore struct {
	e        *Engine
	account  string
	cfg      StreamConfig
	subject  string
	started  time.Time
	unsub    func()
	chunks   chan restoreChunk
	overflow chan struct{} // closed when a chunk found the queue full
	overOnce sync.Once
	pub      *node.Publisher // the run goroutine's

	// What the archive filled (run goroutine).
	dir       string      // file streams: the directory being filled
	filling   store.Store // the store being filled
	consumers []restoredConsumer
	received  int
}

type restoreChunk struct {
	reply string
	data  []byte
}

type restoredConsumer struct {
	name      string
	ephemeral bool
	state     consumerState
}

// receive queues a chunk (on the delivering goroutine: never blocks).
func (r *restore) receive(_, reply []byte, headerLen int, msg []byte) {
	if headerLen >= 0 {
		msg = msg[headerLen:]
	}
	select {
	case r.chunks <- restoreChunk{reply: string(reply), data: bytes.Clone(msg)}:
	default:
		r.overOnce.Do(func() { close(r.overflow) })
	}
}

// chunkReader is the archive as it arrives: each chunk is answered when
// it is taken, the empty message ends it (final keeps its reply).
type chunkReader struct {
	r     *restore
	cur   []byte
	final *string
	err   error
}

var errStalled = errors.New("stalled")

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.cur) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		c.err = c.next()
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

// next takes the next chunk.
func (c *chunkReader) next() error {
	t := time.NewTimer(restoreStall)
	defer t.Stop()
	select {
	case ch := <-c.r.chunks:
		if ch.reply == "" {
			return fmt.Errorf("restore for stream '%s > %s' requires reply subject for each chunk", c.r.account, c.r.cfg.Name)
		}
		if len(ch.data) == 0 {
			c.final = &ch.reply
			return io.EOF
		}
		c.r.received += len(ch.data)
		c.r.pub.Publish(c.r.account, ch.reply, "", nil, nil)
		c.r.pub.Flush()
		c.cur = ch.data
		return nil
	case <-c.r.overflow:
		return fmt.Errorf("restore for stream '%s > %s' received chunks faster than it could take them: send each chunk after the last one is answered", c.r.account, c.r.cfg.Name)
	case <-t.C:
		return errStalled
	case <-c.r.e.quit:
		return errors.New("JetStream is stopping")
	}
}

// run reads the archive, then waits for the end of the input, then makes
// the stream (or cleans up) and answers the final message.
func (r *restore) run() {
	defer r.e.restoring.release(r.account, r.cfg.Name)
	defer r.unsub()
	src := &chunkReader{r: r}
	err := r.load(src)
	// Take (and answer) what the client still sends, up to its final
	// message: after a failure nats-server answers the rest alike.
	if _, derr := io.Copy(io.Discard, src); derr != nil && err == nil {
		err = derr
	}
	var s *stream
	if err == nil {
		s, err = r.commit()
	}
	if err != nil {
		r.discard()
	}
	name, took := r.cfg.Name, time.Since(r.started).Round(time.Millisecond)
	if src.final == nil {
		// No final message to answer: the client is gone.
		if errors.Is(src.err, errStalled) {
			r.e.log.Warnf("Restore for stream %s > %s is stalled: no chunk for %v after %d bytes; nothing was restored", r.account, name, restoreStall, r.received)
		} else {
			r.e.log.Warnf("Restore for stream %s > %s ended after %d bytes, nothing restored: %v", r.account, name, r.received, src.err)
		}
		return
	}
	const typ = "io.nats.jetstream.api.v1.stream_create_response"
	var resp []byte
	if err != nil {
		r.e.log.Warnf("Restore failed for stream %s > %s after %d bytes in %v: %v", r.account, name, r.received, took, err)
		resp = response(typ, nil, errRestore(err))
	} else {
		st := s.info()
		r.e.log.Infof("Completed restore of stream %s > %s: %d message(s), sequences %d-%d, %d bytes received in %v", r.account, name, st.State.Msgs, st.State.FirstSeq, st.State.LastSeq, r.received, took)
		resp = response(typ, st, nil)
	}
	r.pub.Publish(r.account, *src.final, "", nil, resp)
	r.pub.Flush()
}

// load reads the archive into the hidden store and r.consumers.
func (r *restore) load(src io.Reader) error {
	ar := archive.NewReader(src, restoreMaxEntry)
	first, err := ar.Next()
	if err != nil {
		return err
	}
	if first.Name != archive.StateName {
		return errors.New("expected state.json first")
	}
	var state StreamState
	if err := json.Unmarshal(first.Data, &state); err != nil {
		return fmt.Errorf("error in state.json: %w", err)
	}
	room := r.room()
	if room >= 0 && int64(state.Bytes) > room {
		return r.noRoom()
	}
	for range state.Consumers {
		e, err := ar.Next()
		if err != nil {
			return err
		}
		if err := r.addConsumer(e); err != nil {
			return err
		}
	}
	dst, err := r.target()
	if err != nil {
		return err
	}
	var (
		batch   []store.Msg
		arena   []byte
		lastSeq = state.FirstSeq - min(state.FirstSeq, 1)
		used    int64
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := dst.AppendAt(batch)
		batch, arena = batch[:0], arena[:0]
		return err
	}
	for {
		e, err := ar.Next()
		if err != nil {
			return err
		}
		if e.End() {
			break
		}
		if e.Seq == 0 {
			return errors.New("expected message sequence")
		}
		if e.Seq <= lastSeq {
			return fmt.Errorf("message sequence %d out of order", e.Seq)
		}
		lastSeq = e.Seq
		if e.Name == "" || len(e.Name) > 1<<16-1 {
			return fmt.Errorf("message sequence %d has no valid subject", e.Seq)
		}
		if max := r.cfg.MaxMsgSize; max >= 0 && len(e.Header)+len(e.Data) > int(max) {
			return fmt.Errorf("message sequence %d exceeds maximum message size", e.Seq)
		}
		used += int64(store.Size(e.Name, e.Header, e.Data))
		if room >= 0 && used > room {
			return r.noRoom()
		}
		// The reader reuses its buffer: copy into the batch's arena,
		// stored first when full (the stores copy what they keep), so
		// appending never moves what the batch points into.
		if need := len(e.Header) + len(e.Data); cap(arena)-len(arena) < need {
			if err := flush(); err != nil {
				return err
			}
			if cap(arena) < need {
				arena = make([]byte, 0, max(restoreBatchBytes, need))
			}
		}
		m := store.Msg{Subject: e.Name, Seq: e.Seq, Time: e.Time}
		if len(e.Header) > 0 {
			arena = append(arena, e.Header...)
			m.Header = arena[len(arena)-len(e.Header):]
		}
		if len(e.Data) > 0 {
			arena = append(arena, e.Data...)
			m.Data = arena[len(arena)-len(e.Data):]
		}
		batch = append(batch, m)
		if len(batch) >= restoreBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	// Trailing deleted messages keep their sequences used.
	return dst.SkipTo(state.LastSeq, state.LastTime.UnixNano())
}

// room is what the account and the server still let the restored stream
// hold (-1: no limit). The stream's own max_bytes is not a bound: as on
// nats-server, a backup larger than it is restored whole and the stream's
// limits discard the oldest messages from the next publish on.
func (r *restore) room() int64 {
	e, storage := r.e, r.cfg.Storage
	room := int64(-1)
	serverMax, accountMax := e.maxStore, e.accountLimits(r.account).MaxStore
	if storage == storageMemory {
		serverMax, accountMax = e.maxMemory, e.accountLimits(r.account).MaxMemory
	}
	if serverMax > 0 {
		room = max(serverMax-e.total.of(storage).Load(), 0)
	}
	if accountMax >= 0 {
		left := max(accountMax-e.usage(r.account).of(storage).Load(), 0)
		if room < 0 || left < room {
			room = left
		}
	}
	return room
}

func (r *restore) noRoom() error {
	if r.cfg.Storage == storageMemory {
		return errMemoryResources
	}
	return errStorageResources
}

// addConsumer checks a consumer entry and keeps it for commit.
func (r *restore) addConsumer(e archive.Entry) error {
	name, ok := strings.CutPrefix(e.Name, archive.ConsumerPrefix)
	if !ok {
		return fmt.Errorf("expected consumer, found %q", e.Name)
	}
	var raw struct {
		Config json.RawMessage `json:"config"`
	}
	var sc snapshotConsumer
	if err := json.Unmarshal(e.Data, &raw); err != nil {
		return fmt.Errorf("failed to decode consumer %q state: %w", name, err)
	}
	if err := json.Unmarshal(e.Data, &sc); err != nil {
		return fmt.Errorf("failed to decode consumer %q state: %w", name, err)
	}
	if len(raw.Config) == 0 || bytes.Equal(raw.Config, []byte("null")) {
		return fmt.Errorf("consumer %q is missing config", name)
	}
	cfg := sc.Config
	if name == "" || len(name) > 255 || cfg.Name != "" && cfg.Name != name || cfg.Durable != "" && cfg.Durable != name {
		return fmt.Errorf("consumer entry %q does not match the consumer it holds", e.Name)
	}
	if key := unsupportedKey(raw.Config, unsupportedConsumerKeys); key != "" {
		return fmt.Errorf("failed to add consumer %q: %s is not supported by Switchyard's streamsvc yet", name, key)
	}
	ephemeral := cfg.Durable == ""
	cfg.Name = name
	// nats-server keeps a consumer's replicas at 0 (the stream's).
	cfg.Replicas = max(cfg.Replicas, 0)
	if apiErr := normalizeConsumer(&cfg, r.cfg, ephemeral); apiErr != nil {
		return fmt.Errorf("failed to add consumer %q: %s", name, apiErr.Description)
	}
	for _, c := range r.consumers {
		if c.name == name {
			return fmt.Errorf("consumer %q appears twice", name)
		}
	}
	st := consumerState{Config: cfg, Created: time.Now().UTC(),
		Delivered: [2]uint64{sc.State.Delivered.Stream, sc.State.Delivered.Consumer},
		AckFloor:  [2]uint64{sc.State.AckFloor.Stream, sc.State.AckFloor.Consumer}}
	for sseq, p := range sc.State.Pending {
		if st.Pending == nil {
			st.Pending = map[uint64][2]int64{}
		}
		st.Pending[sseq] = [2]int64{int64(p.Sequence), p.Timestamp}
	}
	for sseq, n := range sc.State.Redelivered {
		if st.Counts == nil {
			st.Counts = map[uint64]int{}
		}
		st.Counts[sseq] = int(min(n, 1<<30))
	}
	r.consumers = append(r.consumers, restoredConsumer{name: name, ephemeral: ephemeral, state: st})
	return nil
}

// target opens the store the messages go into.
func (r *restore) target() (store.Restorer, error) {
	if r.cfg.Storage == storageMemory {
		r.filling = store.NewMemory()
		return r.filling.(store.Restorer), nil
	}
	base := filepath.Join(r.e.dir, r.account, "restoring")
	if err := os.MkdirAll(base, 0o750); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(base, r.cfg.Name+"-")
	if err != nil {
		return nil, err
	}
	r.dir = dir
	// Synced when a segment is sealed and when the store is closed
	// (before the directory becomes the stream's), not per batch:
	// nothing depends on it until the stream exists.
	st, err := store.OpenFile(store.FileConfig{Dir: filepath.Join(dir, "msgs"), Sync: store.SyncInterval, Interval: time.Hour})
	if err != nil {
		return nil, err
	}
	r.filling = st
	return st.(store.Restorer), nil
}

// commit makes the restored stream: the filled directory or memory store
// becomes the stream's, its consumers start, and it is added.
func (r *restore) commit() (*stream, error) {
	e, cfg := r.e, r.cfg
	if e.lookup(r.account, cfg.Name) != nil {
		return nil, errStreamNameExistRestore
	}
	if apiErr := e.checkNewStream(r.account, cfg); apiErr != nil {
		return nil, apiErr
	}
	if apiErr := e.checkOverlap(r.account, cfg); apiErr != nil {
		return nil, apiErr
	}
	var mem store.Store
	durableFiles := cfg.Storage == storageFile
	if cfg.Storage == storageFile {
		if r.filling == nil {
			return nil, errors.New("no messages were read")
		}
		// Durable consumers' states go beside the messages, where the
		// stream finds them when it opens (before it takes publishes).
		for _, c := range r.consumers {
			if c.ephemeral || c.state.Config.MemoryStorage {
				continue
			}
			b, err := json.Marshal(c.state)
			if err == nil {
				err = os.MkdirAll(filepath.Join(r.dir, "consumers"), 0o750)
			}
			if err == nil {
				err = writeSynced(filepath.Join(r.dir, "consumers", c.name+".json"), b)
			}
			if err != nil {
				return nil, fmt.Errorf("saving consumer %q: %w", c.name, err)
			}
		}
		if err := r.filling.Close(); err != nil {
			return nil, err
		}
		r.filling = nil
		final := filepath.Join(e.dir, r.account, "streams", cfg.Name)
		if err := os.MkdirAll(filepath.Dir(final), 0o750); err != nil {
			return nil, err
		}
		if _, err := os.Stat(final); err == nil {
			return nil, fmt.Errorf("directory %s exists already: remove it if no stream uses it", final)
		}
		if err := os.Rename(r.dir, final); err != nil {
			return nil, err
		}
		r.dir = ""
	} else {
		mem, r.filling = r.filling, nil
	}
	s, err := e.openStreamOn(r.account, cfg, time.Now().UTC(), mem)
	if err != nil {
		if cfg.Storage == storageFile {
			_ = os.RemoveAll(filepath.Join(e.dir, r.account, "streams", cfg.Name))
		}
		return nil, err
	}
	for _, c := range r.consumers {
		if durableFiles && !c.ephemeral && !c.state.Config.MemoryStorage {
			continue // opened with the stream
		}
		rc := newConsumer(s, c.name, c.state.Config, c.state.Created, c.ephemeral)
		rc.restore(c.state)
		rc.dirty = true
		rc.saveState()
		s.startConsumer(rc)
	}
	e.add(r.account, s)
	return s, nil
}

// discard removes what a failed restore filled.
func (r *restore) discard() {
	if r.filling != nil {
		_ = r.filling.Close()
		r.filling = nil
	}
	if r.dir != "" {
		if err := os.RemoveAll(r.dir); err != nil {
			r.e.log.Errorf("Restore of stream %s > %s: removing %s failed: %v", r.account, r.cfg.Name, r.dir, err)
		}
		r.dir = ""
	}
}
