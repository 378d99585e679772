package jsapi

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/switchyard-io/switchyard/services/streamsvc/internal/store"
)

// JetStream resource limits as nats-server v2.15 applies them on a single
// server (server/jetstream.go, jetstream_api.go, stream.go, consumer.go):
//
//   - the server's max_memory_store / max_file_store bound all accounts
//     together: the streams' max_bytes reservations when a stream is
//     created or grows, and the bytes stored when a message is published;
//   - an account's max_mem / max_file bound its reservations the same way
//     and its bytes stored per message; max_streams its streams;
//     max_consumers the consumers of each of its streams;
//     max_bytes_required and the per-stream max bytes its streams'
//     max_bytes; max_ack_pending its consumers' max_ack_pending.
//
// A stream without max_bytes reserves nothing, but creating one needs a
// byte of room. Bytes stored are counted by meteredStore as each stream's
// goroutine changes its store, so a publish is checked against totals
// without visiting every stream.

// AccountLimits are an account's JetStream limits, with the JSON names of
// nats-server's $JS.API.INFO; a negative number is no limit, and so is 0
// for the counts and the per-stream sizes.
type AccountLimits struct {
	MaxMemory            int64 `json:"max_memory"`
	MaxStore             int64 `json:"max_storage"`
	MaxStreams           int   `json:"max_streams"`
	MaxConsumers         int   `json:"max_consumers"`
	MaxAckPending        int   `json:"max_ack_pending"`
	MemoryMaxStreamBytes int64 `json:"memory_max_stream_bytes"`
	StoreMaxStreamBytes  int64 `json:"storage_max_stream_bytes"`
	MaxBytesRequired     bool  `json:"max_bytes_required"`
}

// Unlimited are the limits of jetstream: enabled.
var Unlimited = AccountLimits{MaxMemory: -1, MaxStore: -1, MaxStreams: -1, MaxConsumers: -1,
	MaxAckPending: -1, MemoryMaxStreamBytes: -1, StoreMaxStreamBytes: -1}

// Account is an account with JetStream and its limits.
type Account struct {
	Name   string
	Limits AccountLimits
}

// storageUsage counts the bytes stored in memory and file streams.
type storageUsage struct{ memory, store atomic.Int64 }

func (u *storageUsage) of(storage string) *atomic.Int64 {
	if storage == storageMemory {
		return &u.memory
	}
	return &u.store
}

// checkAccountsFit refuses accounts whose memory or storage limits add up
// to more than the server's, as nats-server does when it enables
// JetStream for them (it will not start).
func checkAccountsFit(opts Options) error {
	for _, kind := range []struct {
		what, serverKey string
		server          int64
		limit           func(AccountLimits) int64
	}{
		{"max_mem", "max_memory_store", opts.MaxMemory, func(l AccountLimits) int64 { return l.MaxMemory }},
		{"max_file", "max_file_store", opts.MaxStore, func(l AccountLimits) int64 { return l.MaxStore }},
	} {
		var sum int64
		var each []string
		for _, a := range opts.Accounts {
			if n := kind.limit(a.Limits); n > 0 {
				sum += n
				each = append(each, fmt.Sprintf("%s %d", a.Name, n))
			}
		}
		if sum > kind.server {
			sort.Strings(each)
			return fmt.Errorf("JetStream: the accounts' %s limits add up to %d bytes (%s), more than the server's %d (jetstream { %s }): lower them or raise %s",
				kind.what, sum, strings.Join(each, ", "), kind.server, kind.serverKey, kind.serverKey)
		}
	}
	return nil
}

func (e *Engine) accountLimits(account string) AccountLimits {
	e.mu.Lock()
	defer e.mu.Unlock()
	if a := e.accounts[account]; a != nil && a.enabled {
		return a.limits
	}
	return Unlimited
}

// usage is what the account's open streams hold.
func (e *Engine) usage(account string) *storageUsage {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.accounts[account]
	if a == nil {
		a = &jsAccount{}
		e.accounts[account] = a
	}
	return &a.used
}

// checkFits is checkAccountsFit for an account gaining JetStream (or new
// limits) beside the accounts that have it.
func (e *Engine) checkFits(acc Account) error {
	all := []Account{acc}
	e.mu.Lock()
	for name, a := range e.accounts {
		if a.enabled && name != acc.Name {
			all = append(all, Account{Name: name, Limits: a.limits})
		}
	}
	e.mu.Unlock()
	return checkAccountsFit(Options{Accounts: all, MaxMemory: e.maxMemory, MaxStore: e.maxStore})
}

// reserved is what the streams of one storage reserve with max_bytes: the
// account's, leaving out the stream named except (being created again or
// updated), and every account's (nats-server's server-wide reservation
// counts every stream).
func (e *Engine) reserved(account, storage, except string) (ofAccount, all int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for acc, streams := range e.streams {
		for name, s := range streams {
			cfg := s.config()
			if cfg.Storage != storage || cfg.MaxBytes <= 0 {
				continue
			}
			all += cfg.MaxBytes
			if acc == account && name != except {
				ofAccount += cfg.MaxBytes
			}
		}
	}
	return ofAccount, all
}

// checkBytes is nats-server's checkBytesLimits: may add more bytes of
// storage be reserved on top of the account's and the server's
// reservations? A stream without max_bytes (add < 0) needs one byte.
func (e *Engine) checkBytes(lim AccountLimits, storage string, add, ofAccount, all int64) *ApiError {
	if add < 0 {
		add = 1
	}
	accountMax, serverMax, refusal := lim.MaxStore, e.maxStore, errStorageResources
	if storage == storageMemory {
		accountMax, serverMax, refusal = lim.MaxMemory, e.maxMemory, errMemoryResources
	}
	if accountMax >= 0 && (ofAccount > accountMax || add > accountMax-ofAccount) {
		return refusal
	}
	if all > serverMax || add > serverMax-all {
		return refusal
	}
	return nil
}

// checkConsumerLimit refuses a stream allowing more consumers than its
// account does.
func checkConsumerLimit(cfg StreamConfig, lim AccountLimits) *ApiError {
	if cfg.MaxConsumers > 0 && lim.MaxConsumers > 0 && cfg.MaxConsumers > lim.MaxConsumers {
		return errMaxConsumers
	}
	return nil
}

// checkNewStream is nats-server's check of a create request as sent,
// before any default is filled: the account's stream count (a stream
// created again does not count twice), its consumer limit, and the bytes
// max_bytes asks for when the request names its storage.
func (e *Engine) checkNewStream(account string, cfg StreamConfig) *ApiError {
	lim := e.accountLimits(account)
	if lim.MaxStreams > 0 {
		e.mu.Lock()
		n := len(e.streams[account])
		if e.streams[account][cfg.Name] != nil {
			n--
		}
		e.mu.Unlock()
		if n >= lim.MaxStreams {
			return errMaxStreams
		}
	}
	if apiErr := checkConsumerLimit(cfg, lim); apiErr != nil {
		return apiErr
	}
	if cfg.Storage != storageFile && cfg.Storage != storageMemory {
		return nil
	}
	ofAccount, all := e.reserved(account, cfg.Storage, cfg.Name)
	return e.checkBytes(lim, cfg.Storage, cfg.MaxBytes, ofAccount, all)
}

// checkStreamBytes applies the account's max_bytes_required and per-stream
// max bytes to a complete configuration (create or update).
func (e *Engine) checkStreamBytes(account string, cfg StreamConfig) *ApiError {
	lim := e.accountLimits(account)
	limit := lim.StoreMaxStreamBytes
	if cfg.Storage == storageMemory {
		limit = lim.MemoryMaxStreamBytes
	}
	switch {
	case lim.MaxBytesRequired && cfg.MaxBytes <= 0:
		return errMaxBytesRequired
	case limit > 0 && cfg.MaxBytes > limit:
		return errMaxStreamBytes
	}
	return nil
}

// checkStreamReservation checks a new stream's complete configuration
// against the account's and the server's reservations.
func (e *Engine) checkStreamReservation(account string, cfg StreamConfig) *ApiError {
	lim := e.accountLimits(account)
	if apiErr := checkConsumerLimit(cfg, lim); apiErr != nil {
		return apiErr
	}
	ofAccount, all := e.reserved(account, cfg.Storage, cfg.Name)
	return e.checkBytes(lim, cfg.Storage, cfg.MaxBytes, ofAccount, all)
}

// checkStreamUpdate checks an update as nats-server does: only what
// max_bytes grows by is reserved anew (a stream shrinking, or without
// max_bytes, needs no room).
func (e *Engine) checkStreamUpdate(account string, old, cfg StreamConfig) *ApiError {
	lim := e.accountLimits(account)
	if apiErr := checkConsumerLimit(cfg, lim); apiErr != nil {
		return apiErr
	}
	grow := max(max(cfg.MaxBytes, 0)-max(old.MaxBytes, 0), 0)
	ofAccount, all := e.reserved(account, cfg.Storage, cfg.Name)
	return e.checkBytes(lim, cfg.Storage, grow, ofAccount+max(cfg.MaxBytes, 0)-grow, all)
}

// accountReserved is an account's reserved_memory and reserved_storage.
func (e *Engine) accountReserved(account string) (memory, storage int64) {
	memory, _ = e.reserved(account, storageMemory, "")
	storage, _ = e.reserved(account, storageFile, "")
	return memory, storage
}

// consumerRoom refuses a new consumer past max_consumers: the stream's,
// or its account's when lower. nats-server applies the account's limit
// to each stream, not to the account's total.
func (s *stream) consumerRoom() *ApiError {
	limit := s.config().MaxConsumers
	if acc := s.e.accountLimits(s.account).MaxConsumers; limit <= 0 || acc > 0 && acc < limit {
		limit = acc
	}
	s.cmu.Lock()
	n := len(s.consumers)
	s.cmu.Unlock()
	if limit > 0 && n >= limit {
		return errMaxConsumers
	}
	return nil
}

// limitAckPending applies the account's max_ack_pending to a consumer's
// configuration: the default when the request (asked) set none, and a
// refusal above it.
func (e *Engine) limitAckPending(account string, asked int, cfg *ConsumerConfig) *ApiError {
	limit := e.accountLimits(account).MaxAckPending
	if limit <= 0 {
		return nil
	}
	if asked == 0 && cfg.AckPolicy != "none" && limit < cfg.MaxAckPending {
		cfg.MaxAckPending = limit
	}
	if cfg.MaxAckPending > limit {
		return errAckPendingExceeds(limit)
	}
	return nil
}

// meteredStore keeps its account's and the server's byte counts current
// as the stream's goroutine changes the store.
type meteredStore struct {
	store.Store
	account, server *atomic.Int64
	bytes           atomic.Uint64 // what this store last added to them
}

// meter counts what st holds now and from now on.
func (e *Engine) meter(account, storage string, st store.Store) store.Store {
	m := &meteredStore{Store: st, account: e.usage(account).of(storage), server: e.total.of(storage)}
	m.settle()
	return m
}

func (m *meteredStore) settle() {
	now := m.Store.State().Bytes
	delta := int64(now) - int64(m.bytes.Swap(now))
	m.account.Add(delta)
	m.server.Add(delta)
}

// release uncounts a deleted stream.
func (m *meteredStore) release() {
	gone := int64(m.bytes.Swap(0))
	m.account.Add(-gone)
	m.server.Add(-gone)
}

func (m *meteredStore) Append(msgs []store.Msg) error {
	defer m.settle()
	return m.Store.Append(msgs)
}

// AppendAt and SkipTo keep sequences from elsewhere (a mirror's origin,
// a restored backup): store.Restorer.
func (m *meteredStore) AppendAt(msgs []store.Msg) error {
	defer m.settle()
	return m.Store.(store.Restorer).AppendAt(msgs)
}

func (m *meteredStore) SkipTo(last uint64, t int64) error {
	return m.Store.(store.Restorer).SkipTo(last, t)
}

func (m *meteredStore) Delete(seq uint64) (bool, error) {
	defer m.settle()
	return m.Store.Delete(seq)
}

func (m *meteredStore) Purge(filter string, upTo, keep uint64) (uint64, error) {
	defer m.settle()
	return m.Store.Purge(filter, upTo, keep)
}

func (m *meteredStore) Compact(seq uint64) (uint64, error) {
	defer m.settle()
	return m.Store.Compact(seq)
}

// storageBudget is what a batch of one stream may still store, checked
// per message as nats-server does: the server refuses once its bytes
// stored are already past max_memory_store / max_file_store (10023), the
// account when the message would take its bytes past max_mem / max_file
// (10002). Messages stored earlier in the batch count; messages the
// stream's own limits discard after the batch do not give room back
// within it.
type storageBudget struct {
	e                       *Engine
	account, storage        string
	serverUsed, serverMax   int64
	accountUsed, accountMax int64 // accountMax < 0: no limit
}

func (e *Engine) storageBudget(account, storage string) storageBudget {
	b := storageBudget{e: e, account: account, storage: storage,
		serverUsed: e.total.of(storage).Load(), serverMax: e.maxStore,
		accountUsed: e.usage(account).of(storage).Load(), accountMax: e.accountLimits(account).MaxStore}
	if storage == storageMemory {
		b.serverMax, b.accountMax = e.maxMemory, e.accountLimits(account).MaxMemory
	}
	return b
}

// admit says why a message of size bytes may not be stored (nil: it may).
func (b *storageBudget) admit(size uint64) *ApiError {
	if b.serverUsed > b.serverMax {
		b.e.warnLimit("JetStream %s resources exceeded for server (%d of %d bytes stored): publishes to %s streams are refused",
			b.storage, b.serverUsed, b.serverMax, b.storage)
		return errInsufficientResources
	}
	if b.accountMax >= 0 && b.accountUsed+int64(size) > b.accountMax {
		b.e.warnLimit("JetStream %s resource limits exceeded for account %q (%d of %d bytes stored)",
			b.storage, b.account, b.accountUsed, b.accountMax)
		return errAccountResources
	}
	return nil
}

// take counts a message the batch stores.
func (b *storageBudget) take(size uint64) {
	b.serverUsed += int64(size)
	b.accountUsed += int64(size)
}

// limitWarnEvery spaces the warnings about refused publishes (one refused
// publisher can send thousands a second).
const limitWarnEvery = 10 * time.Second

func (e *Engine) warnLimit(format string, a ...any) {
	now := time.Now().UnixNano()
	last := e.limitWarned.Load()
	if now-last < int64(limitWarnEvery) || !e.limitWarned.CompareAndSwap(last, now) {
		return
	}
	e.log.Warnf(format, a...)
}

// apiCounts are an account's API requests answered and how many of the
// answers were errors ($JS.API.INFO "api").
type apiCounts struct{ total, errors uint64 }

// countAPI counts an answer of the API goroutine (which owns the counts).
// An error answer is {"error":...}: response puts no other field before
// "type" then, and a payload has no "error" field.
func (e *Engine) countAPI(account string, resp []byte) {
	c := e.apiStats[account]
	if c == nil {
		c = &apiCounts{}
		e.apiStats[account] = c
	}
	c.total++
	if bytes.HasPrefix(resp, []byte(`{"error":`)) {
		c.errors++
	}
}
