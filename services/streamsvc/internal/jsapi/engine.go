package jsapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-io/switchyard/pkg/logging"
	"github.com/switchyard-io/switchyard/pkg/node"
	"github.com/switchyard-io/switchyard/pkg/subject"
	"github.com/switchyard-io/switchyard/services/streamsvc/internal/store"
)

const (
	storageFile   = "file"
	storageMemory = "memory"
	discardOld    = "old"
	discardNew    = "new"

	retentionLimits    = "limits"
	retentionInterest  = "interest"
	retentionWorkQueue = "workqueue"
	apiPrefix          = "$JS.API."
	// defaultDuplicates is nats-server's duplicate window.
	defaultDuplicates = 2 * time.Minute
	// apiQueue bounds the API requests waiting for the API goroutine.
	apiQueue = 1024
)

// apiSubjects are the $JS.API requests the engine answers (direct gets
// are each allow_direct stream's own subscription, see direct.go); anything else
// (and a pull request for a consumer that does not exist, see
// consumer.nextRequest) gets no responders, as on a server without it.
//
// The engine takes the whole API but for CONSUMER.MSG.NEXT, as nats-server
// does: a request it cannot make sense of (STREAM.CREATE.A.B) goes
// unanswered, while a pull request for a consumer that does not exist
// finds no one.
var apiSubjects = []string{"*", "STREAM.>", "ACCOUNT.>", "META.>", "SERVER.>",
	"CONSUMER.CREATE.>", "CONSUMER.DURABLE.>", "CONSUMER.INFO.>", "CONSUMER.DELETE.>",
	"CONSUMER.NAMES.>", "CONSUMER.LIST.>", "CONSUMER.PAUSE.>", "CONSUMER.UNPIN.>", "CONSUMER.RESET.>"}

// Options configure the engine.
type Options struct {
	Dir      string           // where streams live: <Dir>/<account>/streams/<name>
	Sync     store.SyncPolicy // file streams' fsync policy
	Interval time.Duration    // for store.SyncInterval
	Domain   string
	Accounts []Account // accounts with JetStream
	// Others are accounts without JetStream: their API requests are
	// answered "JetStream not enabled for account" (10039), as on
	// nats-server, rather than left to time out.
	Others []string
	// MaxMemory and MaxStore bound the bytes of all accounts' memory and
	// file streams (max_memory_store, max_file_store).
	MaxMemory, MaxStore int64
}

// Engine serves JetStream for its accounts through a node attached to the
// suite: API requests on one goroutine, each stream on its own.
type Engine struct {
	srv      *node.Server
	log      *logging.Logger
	dir      string
	sync     store.SyncPolicy
	interval time.Duration
	domain   string

	mu      sync.Mutex
	streams map[string]map[string]*stream // account -> name -> stream

	// accounts are the accounts the engine answers, with JetStream or
	// not (guarded by mu; SetAccounts changes them, one call at a time).
	accounts map[string]*jsAccount
	setMu    sync.Mutex

	// Resource limits (limits.go).
	maxMemory, maxStore int64
	total               storageUsage          // every account's bytes stored
	limitWarned         atomic.Int64          // when a refused publish was last logged (unix ns)
	apiStats            map[string]*apiCounts // owned by the API goroutine

	api  chan apiRequest
	quit chan struct{}
	done chan struct{}
	pub  *node.Publisher // the API goroutine's
	// directPubs answer direct gets on the delivering goroutines (one
	// Publisher per concurrent get; see stream.directRequest).
	directPubs sync.Pool
	restoring  restores // streams being restored (restore.go)
}

// jsAccount is an account the engine answers.
type jsAccount struct {
	enabled bool // JetStream is on; otherwise requests get 10039
	limits  AccountLimits
	used    storageUsage // bytes its open streams hold
	unsub   []func()     // its API subscriptions
}

type apiRequest struct {
	account, subject, reply string
	data                    []byte
}

// New opens the streams stored under opts.Dir and subscribes to the API
// in every account of opts.Accounts.
func New(srv *node.Server, log *logging.Logger, opts Options) (*Engine, error) {
	if err := checkAccountsFit(opts); err != nil {
		return nil, err
	}
	e := &Engine{srv: srv, log: log, dir: opts.Dir, sync: opts.Sync, interval: opts.Interval, domain: opts.Domain,
		streams: map[string]map[string]*stream{}, accounts: map[string]*jsAccount{}, api: make(chan apiRequest, apiQueue),
		quit: make(chan struct{}), done: make(chan struct{}), pub: srv.NewPublisher(),
		maxMemory: opts.MaxMemory, maxStore: opts.MaxStore, apiStats: map[string]*apiCounts{}}
	e.directPubs.New = func() any { return srv.NewPublisher() }
	if err := os.MkdirAll(e.dir, 0o750); err != nil {
		return nil, fmt.Errorf("JetStream store_dir %s: %w", e.dir, err)
	}
	for _, acc := range opts.Accounts {
		if err := e.enable(acc); err != nil {
			e.Stop()
			return nil, err
		}
	}
	for _, name := range opts.Others {
		e.disable(name)
	}
	go e.serveAPI()
	return e, nil
}

// SetAccounts puts in force the accounts JetStream serves now (operator
// mode: what the account JWTs say): accounts gain JetStream, with their
// streams opened from disk, or lose it, with their streams closed (their
// files stay, as on nats-server), or get new limits. Accounts that are in
// neither list keep what they had. An account whose limits do not fit in
// the server's beside the others is left without JetStream and logged.
func (e *Engine) SetAccounts(with []Account, without []string) {
	e.setMu.Lock()
	defer e.setMu.Unlock()
	for _, name := range without {
		e.disable(name)
	}
	for _, acc := range with {
		if err := e.checkFits(acc); err != nil {
			e.log.Errorf("%v; JetStream stays off for account %s", err, acc.Name)
			e.disable(acc.Name)
			continue
		}
		if err := e.enable(acc); err != nil {
			e.log.Errorf("%v; JetStream stays off for account %s", err, acc.Name)
			e.disable(acc.Name)
		}
	}
}

// enable turns JetStream on for an account (new limits when it is on),
// opening its streams, and subscribes to its API.
func (e *Engine) enable(acc Account) error {
	e.mu.Lock()
	a := e.accounts[acc.Name]
	if a == nil {
		a = &jsAccount{}
		e.accounts[acc.Name] = a
	}
	was := a.enabled
	a.limits = acc.Limits
	e.mu.Unlock()
	e.subscribeAPI(acc.Name, a)
	if was {
		return nil
	}
	if err := e.recover(acc.Name); err != nil {
		e.closeStreams(acc.Name)
		return err
	}
	e.mu.Lock()
	a.enabled = true
	e.mu.Unlock()
	e.log.Infof("JetStream enabled for account %s", acc.Name)
	return nil
}

// disable turns JetStream off for an account (or notes one without it):
// its streams close and its API requests get 10039 from now on.
func (e *Engine) disable(name string) {
	e.mu.Lock()
	a := e.accounts[name]
	if a == nil {
		a = &jsAccount{}
		e.accounts[name] = a
	}
	was := a.enabled
	a.enabled = false
	e.mu.Unlock()
	e.subscribeAPI(name, a)
	if was {
		e.closeStreams(name)
		e.log.Infof("JetStream disabled for account %s: its streams are closed, their files kept", name)
	}
}

// subscribeAPI takes the API subjects in the account, once.
func (e *Engine) subscribeAPI(name string, a *jsAccount) {
	e.mu.Lock()
	done := len(a.unsub) > 0
	e.mu.Unlock()
	if done {
		return
	}
	var unsub []func()
	for _, api := range apiSubjects {
		unsub = append(unsub, e.srv.SubscribeInternal(name, apiPrefix+api, "", e.request(name)))
	}
	e.mu.Lock()
	a.unsub = unsub
	e.mu.Unlock()
}

// enabled reports whether JetStream is on for the account.
func (e *Engine) enabled(account string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.accounts[account]
	return a != nil && a.enabled
}

// closeStreams stops an account's streams, leaving their files.
func (e *Engine) closeStreams(account string) {
	e.mu.Lock()
	streams := e.streams[account]
	delete(e.streams, account)
	e.mu.Unlock()
	for _, s := range streams {
		e.closeStream(s)
	}
}

// closeStream stops a stream that is out of the engine's map and
// uncounts its bytes.
func (e *Engine) closeStream(s *stream) {
	s.stop()
	if m, ok := s.store.(*meteredStore); ok {
		m.release()
	}
}

// recover opens the file streams an account had.
func (e *Engine) recover(account string) error {
	dir := filepath.Join(e.dir, account, "streams")
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("JetStream: reading %s: %w", dir, err)
	}
	for _, de := range entries {
		b, err := os.ReadFile(filepath.Join(dir, de.Name(), metaFile))
		if err != nil {
			e.log.Errorf("JetStream: stream directory %s has no readable %s (%v); left alone", filepath.Join(dir, de.Name()), metaFile, err)
			continue
		}
		var m streamMeta
		if err := json.Unmarshal(b, &m); err != nil || m.Config.Name != de.Name() {
			e.log.Errorf("JetStream: %s is damaged (%v); stream %s left alone", filepath.Join(dir, de.Name(), metaFile), err, de.Name())
			continue
		}
		s, err := e.openStream(account, m.Config, m.Created)
		if err != nil {
			return fmt.Errorf("JetStream: opening stream %s > %s: %w", account, m.Config.Name, err)
		}
		e.add(account, s)
		st := s.store.State()
		e.log.Infof("Stream %s > %s recovered: %d message(s), %d byte(s), sequences %d-%d", account, m.Config.Name, st.Msgs, st.Bytes, st.FirstSeq, st.LastSeq)
	}
	return nil
}

func (e *Engine) add(account string, s *stream) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.streams[account] == nil {
		e.streams[account] = map[string]*stream{}
	}
	e.streams[account][s.cfg.Name] = s
}

func (e *Engine) lookup(account, name string) *stream {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.streams[account][name]
}

// Stop stops every stream and the API.
func (e *Engine) Stop() {
	e.mu.Lock()
	var unsub []func()
	for _, a := range e.accounts {
		unsub = append(unsub, a.unsub...)
		a.unsub = nil
	}
	e.mu.Unlock()
	for _, u := range unsub {
		u()
	}
	select {
	case <-e.quit:
	default:
		close(e.quit)
	}
	e.mu.Lock()
	var all []*stream
	for _, m := range e.streams {
		for _, s := range m {
			all = append(all, s)
		}
	}
	e.mu.Unlock()
	for _, s := range all {
		s.stop()
	}
}

// request queues an API request of account (on the delivering goroutine).
func (e *Engine) request(account string) func(subj, reply []byte, headerLen int, msg []byte) {
	return func(subj, reply []byte, headerLen int, msg []byte) {
		if len(reply) == 0 {
			return // nats-server ignores API requests nobody waits for
		}
		if headerLen >= 0 {
			msg = msg[headerLen:]
		}
		r := apiRequest{account: account, subject: string(subj), reply: string(reply), data: bytes.Clone(msg)}
		select {
		case e.api <- r:
		case <-e.quit:
		}
	}
}

func (e *Engine) serveAPI() {
	for {
		select {
		case <-e.quit:
			return
		case r := <-e.api:
			if resp := e.handle(r); resp != nil {
				e.countAPI(r.account, resp)
				e.pub.Publish(r.account, r.reply, "", nil, resp)
				e.pub.Flush()
				e.adviseAPI(r, resp)
			}
		}
	}
}

// handle answers one API request; nil: no answer (an API we do not serve
// yet stays unanswered, as on a server without it, so the client reports
// no responders instead of a made-up error).
func (e *Engine) handle(r apiRequest) []byte {
	op := strings.TrimPrefix(r.subject, apiPrefix)
	if !e.enabled(r.account) {
		return response(responseType(op), nil, errNotEnabledForAccount)
	}
	if strings.HasPrefix(op, "CONSUMER.") {
		return e.handleConsumer(r, op)
	}
	if name, ok := strings.CutPrefix(op, "STREAM.SNAPSHOT."); ok && !strings.Contains(name, ".") {
		return e.snapshotStream(r.account, name, r.data) // snapshot.go
	}
	if name, ok := strings.CutPrefix(op, "STREAM.RESTORE."); ok && !strings.Contains(name, ".") {
		return e.restoreStream(r.account, name, r.data) // restore.go
	}
	verb, name := op, ""
	for _, p := range []string{"STREAM.CREATE.", "STREAM.UPDATE.", "STREAM.INFO.", "STREAM.DELETE.",
		"STREAM.PURGE.", "STREAM.MSG.GET.", "STREAM.MSG.DELETE."} {
		if strings.HasPrefix(op, p) {
			verb, name = strings.TrimSuffix(p, "."), op[len(p):]
			break
		}
	}
	if strings.Contains(name, ".") {
		return nil // not a stream name: no such API
	}
	switch verb {
	case "INFO":
		return e.accountInfo(r.account)
	case "STREAM.NAMES":
		return e.streamNames(r.account, r.data)
	case "STREAM.LIST":
		return e.streamList(r.account, r.data)
	case "STREAM.CREATE":
		return e.createStream(r.account, name, r.data, false)
	case "STREAM.UPDATE":
		return e.createStream(r.account, name, r.data, true)
	}
	if verb == op {
		return nil // none of the stream APIs
	}
	typ := responseType(op)
	s := e.lookup(r.account, name)
	if s == nil {
		return response(typ, nil, errStreamNotFound)
	}
	var payload any
	var apiErr *ApiError
	switch verb {
	case "STREAM.INFO":
		payload, apiErr = s.infoRequest(r.data)
	case "STREAM.DELETE":
		payload, apiErr = e.deleteStream(r.account, s)
	case "STREAM.PURGE":
		payload, apiErr = s.purge(r.data)
	case "STREAM.MSG.GET":
		payload, apiErr = s.getMsg(r.data)
	case "STREAM.MSG.DELETE":
		payload, apiErr = s.deleteMsg(r.data)
	}
	return response(typ, payload, apiErr)
}

// responseTypes name the answer of each API (by its subject's prefix,
// after $JS.API.), for the answers the engine gives before it looks
// further, such as 10039.
var responseTypes = []struct{ prefix, typ string }{
	{"INFO", "account_info_response"},
	{"STREAM.CREATE.", "stream_create_response"}, {"STREAM.UPDATE.", "stream_update_response"},
	{"STREAM.INFO.", "stream_info_response"}, {"STREAM.DELETE.", "stream_delete_response"},
	{"STREAM.PURGE.", "stream_purge_response"}, {"STREAM.NAMES", "stream_names_response"},
	{"STREAM.LIST", "stream_list_response"}, {"STREAM.MSG.GET.", "stream_msg_get_response"},
	{"STREAM.MSG.DELETE.", "stream_msg_delete_response"},
	{"STREAM.SNAPSHOT.", "stream_snapshot_response"}, {"STREAM.RESTORE.", "stream_restore_response"},
	{"CONSUMER.CREATE.", "consumer_create_response"}, {"CONSUMER.DURABLE.CREATE.", "consumer_create_response"},
	{"CONSUMER.INFO.", "consumer_info_response"}, {"CONSUMER.DELETE.", "consumer_delete_response"},
	{"CONSUMER.NAMES.", "consumer_names_response"}, {"CONSUMER.LIST.", "consumer_list_response"},
	{"CONSUMER.PAUSE.", "consumer_pause_response"}, {"CONSUMER.UNPIN.", "consumer_unpin_response"},
	{"CONSUMER.RESET.", "consumer_reset_response"},
}

// responseType is the type of the answer to API op (its subject after
// $JS.API.); nats-server's generic error type when the API is not one
// of responseTypes.
func responseType(op string) string {
	for _, t := range responseTypes {
		if op == t.prefix || strings.HasSuffix(t.prefix, ".") && strings.HasPrefix(op, t.prefix) {
			return "io.nats.jetstream.api.v1." + t.typ
		}
	}
	return "io.nats.jetstream.api.v1.error_response"
}

func (e *Engine) accountInfo(account string) []byte {
	e.mu.Lock()
	streams := make([]*stream, 0, len(e.streams[account]))
	for _, s := range e.streams[account] {
		streams = append(streams, s)
	}
	e.mu.Unlock()
	consumers := 0
	for _, s := range streams {
		s.cmu.Lock()
		consumers += len(s.consumers)
		s.cmu.Unlock()
	}
	u := e.usage(account)
	memory, storage := u.memory.Load(), u.store.Load()
	reservedMemory, reservedStorage := e.accountReserved(account)
	api := apiCounts{}
	if c := e.apiStats[account]; c != nil {
		api = *c
	}
	// This request counts once answered, as on nats-server.
	info := map[string]any{"memory": memory, "storage": storage,
		"reserved_memory": reservedMemory, "reserved_storage": reservedStorage,
		"streams": len(streams), "consumers": consumers, "limits": e.accountLimits(account),
		"api": map[string]any{"level": apiLevel, "total": api.total, "errors": api.errors}}
	if e.domain != "" {
		info["domain"] = e.domain
	}
	return response("io.nats.jetstream.api.v1.account_info_response", info, nil)
}

// listRequest is the paging (and filter) of NAMES and LIST.
type listRequest struct {
	Offset  int    `json:"offset"`
	Subject string `json:"subject"`
}

const listLimit = 1024

func (e *Engine) sortedStreams(account string, data []byte) ([]*stream, listRequest, *ApiError) {
	var req listRequest
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &req); err != nil {
			return nil, req, errInvalidJSON(err)
		}
	}
	e.mu.Lock()
	var all []*stream
	for _, s := range e.streams[account] {
		if req.Subject != "" && !s.covers(req.Subject) {
			continue
		}
		all = append(all, s)
	}
	e.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].cfg.Name < all[j].cfg.Name })
	return all, req, nil
}

func page[T any](all []T, offset int) []T {
	if offset > len(all) {
		offset = len(all)
	}
	return all[offset:min(len(all), offset+listLimit)]
}

func (e *Engine) streamNames(account string, data []byte) []byte {
	const typ = "io.nats.jetstream.api.v1.stream_names_response"
	all, req, apiErr := e.sortedStreams(account, data)
	if apiErr != nil {
		return response(typ, nil, apiErr)
	}
	var names []string // null when none, as nats-server answers
	for _, s := range page(all, req.Offset) {
		names = append(names, s.config().Name)
	}
	return response(typ, map[string]any{"total": len(all), "offset": req.Offset, "limit": listLimit, "streams": names}, nil)
}

func (e *Engine) streamList(account string, data []byte) []byte {
	const typ = "io.nats.jetstream.api.v1.stream_list_response"
	all, req, apiErr := e.sortedStreams(account, data)
	if apiErr != nil {
		return response(typ, nil, apiErr)
	}
	infos := []StreamInfo{}
	for _, s := range page(all, req.Offset) {
		infos = append(infos, s.info())
	}
	return response(typ, map[string]any{"total": len(all), "offset": req.Offset, "limit": listLimit, "streams": infos}, nil)
}

// covers reports whether the stream takes messages on subj (a filter).
func (s *stream) covers(subj string) bool {
	for _, own := range s.config().Subjects {
		if subject.Overlap(own, subj) {
			return true
		}
	}
	return false
}

func (e *Engine) createStream(account, name string, data []byte, update bool) []byte {
	typ := "io.nats.jetstream.api.v1.stream_create_response"
	if update {
		typ = "io.nats.jetstream.api.v1.stream_update_response"
	}
	var cfg StreamConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return response(typ, nil, errInvalidJSON(err))
	}
	if cfg.Name == "" {
		cfg.Name = name
	}
	if cfg.Name != name {
		return response(typ, nil, errStreamMismatch)
	}
	if key := unsupportedKey(data, unsupportedStreamKeys); key != "" {
		return response(typ, nil, errInvalidConfig("%s is not supported by Switchyard's streamsvc yet", key))
	}
	if !update {
		// nats-server refuses these, then checks the limits against the
		// request as sent, before filling its defaults.
		switch {
		case strings.ContainsAny(cfg.Name, `/\`):
			return response(typ, nil, errNameSeparators)
		case cfg.Sealed:
			return response(typ, nil, errInvalidConfig("stream configuration for create can not be sealed"))
		}
		if apiErr := e.checkNewStream(account, cfg); apiErr != nil {
			return response(typ, nil, apiErr)
		}
	}
	if apiErr := normalize(&cfg); apiErr != nil {
		return response(typ, nil, apiErr)
	}
	if apiErr := e.checkStreamBytes(account, cfg); apiErr != nil {
		return response(typ, nil, apiErr)
	}
	existing := e.lookup(account, name)
	switch {
	case update && existing == nil:
		return response(typ, nil, errStreamNotFound)
	case update:
		if apiErr := e.checkOverlap(account, cfg); apiErr != nil {
			return response(typ, nil, apiErr)
		}
		if apiErr := existing.update(cfg); apiErr != nil {
			return response(typ, nil, apiErr)
		}
		e.log.Infof("Stream %s > %s updated", account, name)
		e.adviseStream(account, name, "modify")
		return response(typ, existing.info(), nil)
	case existing != nil:
		if !sameJSON(existing.config(), cfg) {
			return response(typ, nil, errStreamNameExist)
		}
		return response(typ, existing.info(), nil) // creating it again is allowed
	}
	if apiErr := e.checkStreamReservation(account, cfg); apiErr != nil {
		return response(typ, nil, apiErr)
	}
	if apiErr := e.checkOverlap(account, cfg); apiErr != nil {
		return response(typ, nil, apiErr)
	}
	s, err := e.openStream(account, cfg, time.Now().UTC())
	if err != nil {
		e.log.Errorf("Stream %s > %s: create failed: %v", account, name, err)
		return response(typ, nil, errStreamCreate(err))
	}
	e.add(account, s)
	e.log.Infof("Stream %s > %s created (subjects %v, %s storage)", account, name, cfg.Subjects, cfg.Storage)
	e.adviseStream(account, name, "create")
	return response(typ, s.info(), nil)
}

// checkOverlap refuses subjects another stream of the account takes.
func (e *Engine) checkOverlap(account string, cfg StreamConfig) *ApiError {
	e.mu.Lock()
	defer e.mu.Unlock()
	for other, s := range e.streams[account] {
		if other == cfg.Name {
			continue
		}
		for _, a := range cfg.Subjects {
			for _, b := range s.cfg.Subjects {
				if subject.Overlap(a, b) {
					return errSubjectOverlap
				}
			}
		}
	}
	return nil
}

// sameJSON reports whether two configurations say the same (nats-server
// lets a create or update repeat what exists).
func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// unsupportedStreamKeys are stream settings of nats-server v2.15 that
// streamsvc does not implement yet. A request that sets one is refused:
// accepting it would create a stream that silently behaves otherwise.
var unsupportedStreamKeys = []string{"allow_msg_schedules"}

// apiLevel is the JetStream API level $JS.API.INFO reports: 2 is
// nats-server v2.12's (atomic batches, counters, ...); clients check it
// before they use those. allow_batched (fast batches, level 4) is taken
// but a fast batch's messages are refused (see stream.check).
const apiLevel = 2

// unsupportedKey names the first of keys a JSON configuration sets to
// anything but its zero value ("" when none does).
func unsupportedKey(data []byte, keys []string) string {
	var raw map[string]json.RawMessage
	if json.Unmarshal(data, &raw) != nil {
		return "" // the typed decode already accepted it
	}
	for _, k := range keys {
		switch v := string(bytes.TrimSpace(raw[k])); v {
		case "", "null", "false", "0", `""`, "[]", "{}", `"none"`, `"0001-01-01T00:00:00Z"`: // zero values as clients send them
		default:
			return k
		}
	}
	return ""
}

// normalize checks a requested configuration and fills nats-server's
// defaults.
func normalize(cfg *StreamConfig) *ApiError {
	if cfg.Name == "" {
		return errInvalidConfig("stream name is required")
	}
	if strings.ContainsAny(cfg.Name, `/\`) {
		return errNameSeparators
	}
	if strings.ContainsAny(cfg.Name, ".*> \t\r\n") || len(cfg.Name) > 255 {
		return errInvalidConfig(`stream name is required and can not contain '.', '*', '>', '\', '/'`)
	}
	if cfg.Replicas > 1 {
		return errReplicas
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	switch cfg.Storage {
	case "":
		cfg.Storage = storageFile
	case storageFile, storageMemory:
	default:
		return errInvalidJSON(fmt.Errorf("can not unmarshal %q into storage type", cfg.Storage))
	}
	switch cfg.Retention {
	case "":
		cfg.Retention = retentionLimits
	case retentionLimits, retentionInterest, retentionWorkQueue:
	default:
		return errInvalidJSON(fmt.Errorf("can not unmarshal %q into retention policy", cfg.Retention))
	}
	switch cfg.Discard {
	case "":
		cfg.Discard = discardOld
	case discardOld, discardNew:
	default:
		return errInvalidJSON(fmt.Errorf("can not unmarshal %q into discard policy", cfg.Discard))
	}
	if cfg.Compression == "" {
		cfg.Compression = "none"
	} else if cfg.Compression != "none" {
		return errInvalidConfig("compression %s is not supported yet", cfg.Compression)
	}
	for _, p := range []*int64{&cfg.MaxMsgs, &cfg.MaxBytes, &cfg.MaxMsgsPerSubject} {
		if *p == 0 {
			*p = -1
		}
	}
	if cfg.MaxConsumers == 0 {
		cfg.MaxConsumers = -1
	}
	if cfg.MaxMsgSize == 0 {
		cfg.MaxMsgSize = -1
	}
	if cfg.MaxAge < 0 {
		return errInvalidConfig("max age needs to be >= 0")
	}
	if cfg.Duplicates == 0 && cfg.Mirror == nil && len(cfg.Sources) == 0 {
		cfg.Duplicates = defaultDuplicates
		if cfg.MaxAge > 0 && cfg.MaxAge < cfg.Duplicates {
			cfg.Duplicates = cfg.MaxAge
		}
	}
	if cfg.MaxAge > 0 && cfg.Duplicates > cfg.MaxAge {
		return errInvalidConfig("duplicates window can not be larger then max age")
	}
	if cfg.SubjectDeleteMarkerTTL != 0 {
		if cfg.SubjectDeleteMarkerTTL < time.Second {
			return errInvalidConfig("subject delete marker TTL must be at least 1 second")
		}
		// Markers are TTL messages that roll up their subject: nats-server
		// turns both on with them.
		cfg.AllowMsgTTL, cfg.AllowRollup = true, true
	}
	if cfg.AllowMsgCounter {
		switch {
		case cfg.Discard == discardNew:
			return errInvalidConfig("counter stream cannot use discard new")
		case cfg.AllowMsgTTL:
			return errInvalidConfig("counter stream cannot use message TTLs")
		}
	}
	if cfg.DenyPurge && cfg.AllowRollup {
		return errInvalidConfig("roll-ups require the purge permission")
	}
	if cfg.DiscardNewPerSubject {
		if cfg.Discard != discardNew {
			return errInvalidConfig("discard new per subject requires discard new policy to be set")
		}
		if cfg.MaxMsgsPerSubject <= 0 {
			return errInvalidConfig("discard new per subject requires max msgs per subject > 0")
		}
	}
	if apiErr := checkSources(cfg); apiErr != nil {
		return apiErr
	}
	if apiErr := checkTransforms(cfg); apiErr != nil {
		return apiErr
	}
	if len(cfg.Subjects) == 0 && cfg.Mirror == nil && len(cfg.Sources) == 0 {
		cfg.Subjects = []string{cfg.Name}
	}
	for i, a := range cfg.Subjects {
		if !subject.ValidSubscribe([]byte(a)) {
			return errInvalidConfig("invalid subject")
		}
		if strings.HasPrefix(a, "$JS.API") || a == ">" {
			return errInvalidConfig("subjects that overlap with jetstream api require no-ack to be true")
		}
		for _, b := range cfg.Subjects[i+1:] {
			if subject.Overlap(a, b) {
				return errInvalidConfig("duplicate subjects detected")
			}
		}
	}
	return nil
}

// update applies a new configuration to a running stream.
func (s *stream) update(cfg StreamConfig) *ApiError {
	old := s.config()
	switch {
	case old.Storage != cfg.Storage:
		return errInvalidConfig("stream configuration update can not change storage type")
	case old.Retention != cfg.Retention && (old.Retention == retentionWorkQueue || cfg.Retention == retentionWorkQueue):
		return errInvalidConfig("stream configuration update can not change retention policy to/from workqueue")
	case old.Sealed && !cfg.Sealed:
		return errInvalidConfig("stream configuration update can not unseal a sealed stream")
	case old.DenyDelete && !cfg.DenyDelete:
		return errInvalidConfig("stream configuration update can not cancel deny message deletes")
	case old.DenyPurge && !cfg.DenyPurge:
		return errInvalidConfig("stream configuration update can not cancel deny purge")
	case old.AllowMsgTTL && !cfg.AllowMsgTTL:
		return errInvalidConfig("message TTL status can not be disabled")
	case old.AllowMsgCounter != cfg.AllowMsgCounter:
		return errInvalidConfig("stream configuration update can not change message counter setting")
	case !sameJSON(old.Mirror, cfg.Mirror):
		return errMirrorUpdate
	}
	if apiErr := s.e.checkStreamUpdate(s.account, old, cfg); apiErr != nil {
		return apiErr
	}
	if cfg.Sealed {
		// A sealed stream never changes again, as nats-server records.
		cfg.DenyDelete, cfg.DenyPurge, cfg.Discard, cfg.AllowRollup = true, true, discardNew, false
	}
	s.mu.Lock()
	s.cfg = cfg
	s.mu.Unlock()
	s.xf.Store(newStreamTransforms(cfg))
	s.retires.Store(cfg.Retention != retentionLimits)
	if !sameJSON(old.Sources, cfg.Sources) {
		s.restartSources(cfg)
	}
	if cfg.Storage == storageFile {
		if err := s.writeMeta(); err != nil {
			return errStreamUpdate("%v", err)
		}
	}
	s.subscribe()
	return nil
}

func (e *Engine) deleteStream(account string, s *stream) (any, *ApiError) {
	e.mu.Lock()
	delete(e.streams[account], s.cfg.Name)
	e.mu.Unlock()
	e.closeStream(s)
	if err := os.RemoveAll(s.dir); err != nil {
		return nil, errStreamDelete(err)
	}
	e.log.Infof("Stream %s > %s deleted", account, s.cfg.Name)
	e.adviseStream(account, s.cfg.Name, "delete")
	return map[string]any{"success": true}, nil
}

// purge serves STREAM.PURGE: all, by subject filter, up to a sequence,
// or keeping the newest.
func (s *stream) purge(data []byte) (any, *ApiError) {
	cfg := s.config()
	if cfg.Sealed {
		return nil, errSealed
	}
	if cfg.DenyPurge {
		return nil, &ApiError{500, 10110, "stream purge not permitted"}
	}
	var req struct {
		Filter string `json:"filter"`
		Seq    uint64 `json:"seq"`
		Keep   uint64 `json:"keep"`
	}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &req); err != nil {
			return nil, errInvalidJSON(err)
		}
	}
	if req.Seq > 0 && req.Keep > 0 {
		return nil, errBadRequest
	}
	var n uint64
	var err error
	s.do(func() { n, err = s.store.Purge(req.Filter, req.Seq, req.Keep) })
	s.removed()
	if err != nil {
		return nil, errPurgeFailed(err)
	}
	return map[string]any{"success": true, "purged": n}, nil
}

// storedMsg is a message as STREAM.MSG.GET returns it.
type storedMsg struct {
	Subject string    `json:"subject"`
	Seq     uint64    `json:"seq"`
	Header  []byte    `json:"hdrs,omitempty"`
	Data    []byte    `json:"data,omitempty"`
	Time    time.Time `json:"time"`
}

func (s *stream) getMsg(data []byte) (any, *ApiError) {
	var req msgGetRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, errInvalidJSON(err)
	}
	var m store.Msg
	var err error
	switch {
	case req.Seq > 0 && req.LastFor != "", req.Seq == 0 && req.LastFor == "" && req.NextFor == "":
		return nil, errBadRequest
	case req.LastFor != "":
		m, err = s.store.LoadLast(req.LastFor)
	case req.NextFor != "":
		m, err = s.store.LoadNext(req.NextFor, req.Seq)
	default:
		m, err = s.store.Get(req.Seq)
	}
	if err != nil {
		if err == store.ErrNotFound {
			return nil, errNoMessageFound
		}
		return nil, &ApiError{500, 10037, err.Error()}
	}
	out := storedMsg{Subject: m.Subject, Seq: m.Seq, Header: m.Header, Data: m.Data, Time: time.Unix(0, m.Time).UTC()}
	if req.NoHeaders {
		out.Header = nil
	}
	return map[string]any{"message": out}, nil
}

func (s *stream) deleteMsg(data []byte) (any, *ApiError) {
	cfg := s.config()
	if cfg.Sealed {
		return nil, errSealed
	}
	if cfg.DenyDelete {
		return nil, &ApiError{500, 10057, "message delete not permitted"}
	}
	var req struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, errInvalidJSON(err)
	}
	if req.Seq == 0 {
		return nil, errBadRequest
	}
	if req.Seq > s.lastSeq.Load() {
		return nil, errMsgDelete(fmt.Errorf("stream store EOF"))
	}
	var ok bool
	var err error
	s.do(func() { ok, err = s.store.Delete(req.Seq) })
	s.removed()
	if err != nil {
		return nil, errMsgDelete(err)
	}
	if !ok {
		return nil, &ApiError{400, 10043, fmt.Sprintf("sequence %d not found", req.Seq)}
	}
	return map[string]any{"success": true}, nil
}
