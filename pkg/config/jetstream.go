package config

import (
	"strings"
	"time"
)

// JetStream is the jetstream {} block, applied by streamsvc (frontdoors
// ignore it: JetStream API requests reach streamsvc through the routers).
type JetStream struct {
	Enabled  bool
	StoreDir string // "store_dir"; empty: streamsvc's default (./data)
	// MaxMemory ("max_memory_store"/"max_mem") and MaxFile
	// ("max_file_store"/"max_file") bound the bytes of all accounts'
	// memory and file streams together. As on nats-server a positive value
	// is the limit, and so is 0 when the key is given (MaxMemorySet,
	// MaxFileSet: no streams of that storage); no key or a negative value
	// leaves streamsvc's default, 75% of the machine's memory and of the
	// store_dir disk's free space.
	MaxMemory, MaxFile       int64
	MaxMemorySet, MaxFileSet bool
	// SyncAlways ("sync_interval: always", Switchyard's default) fsyncs
	// before each PubAck, with group commit; SyncInterval > 0 instead
	// fsyncs that often in the background, as nats-server's default (2m).
	SyncAlways   bool
	SyncInterval time.Duration
	Domain       string // "domain"
}

func applyJetStream(l *loader, s *Server, v value) {
	js := &s.JetStream
	js.SyncAlways = true
	switch r := v.raw.(type) {
	case bool, string:
		js.Enabled = l.onOff(v, "enabled, disabled or a block { store_dir: ... }")
	case map[string]any:
		js.Enabled = true
		for k, e := range v.keys(r) {
			switch k {
			case "enabled", "enable":
				js.Enabled, _ = l.boolean(e)
			case "store_dir", "storedir", "store":
				js.StoreDir, _ = l.str(e)
			case "max_memory_store", "max_mem_store", "max_mem":
				js.MaxMemory, js.MaxMemorySet = l.size(e)
			case "max_file_store", "max_file":
				js.MaxFile, js.MaxFileSet = l.size(e)
			case "domain":
				js.Domain, _ = l.str(e)
			case "sync_interval", "sync":
				if str, ok := e.raw.(string); ok && strings.EqualFold(str, "always") {
					js.SyncAlways, js.SyncInterval = true, 0
					continue
				}
				if d, ok := l.duration(e); ok {
					js.SyncAlways, js.SyncInterval = false, d
				}
			case "unique_tag", "max_outstanding_catchup", "max_buffered_msgs", "max_buffered_size",
				"request_queue_limit", "limits", "cipher", "key", "prev_key", "strict", "max_ack_pending",
				"max_catchup", "compress_ok", "extension_hint":
				l.bad(e, " is not supported in jetstream {} yet: remove it")
			default:
				l.bad(e, " is not a jetstream {} setting: use store_dir, max_memory_store, max_file_store, sync_interval or domain")
			}
		}
	default:
		l.bad(v, " expected enabled, disabled or a block { store_dir: ... }, got %s", describe(v.raw))
	}
}

func applyStoreDir(l *loader, s *Server, v value) {
	s.JetStream.StoreDir, _ = l.str(v)
}

// JetStreamLimits are an account's JetStream limits, as nats-server reads
// them from the account's jetstream {} block (keys and their aliases
// below); a negative number is no limit, and so is 0 for the counts and
// the per-stream sizes.
type JetStreamLimits struct {
	MaxMemory  int64 // max_mem, max_memory, mem, memory: bytes of the account's memory streams
	MaxStore   int64 // max_file, max_store, max_disk, store, disk: bytes of its file streams
	MaxStreams int   // max_streams, streams
	// MaxConsumers (max_consumers, consumers) bounds the consumers of each
	// stream of the account, not their total: nats-server applies it so.
	MaxConsumers  int
	MaxAckPending int // max_ack_pending: the most a consumer may set
	// MemoryMaxStreamBytes (mem_max_stream_bytes, memory_max_stream_bytes)
	// and StoreMaxStreamBytes (store_max_stream_bytes, disk_max_stream_bytes)
	// bound a stream's max_bytes.
	MemoryMaxStreamBytes int64
	StoreMaxStreamBytes  int64
	// MaxBytesRequired (max_bytes_required, max_stream_bytes, max_bytes)
	// refuses streams without max_bytes.
	MaxBytesRequired bool
}

// NoJetStreamLimits are the limits of an account with jetstream: enabled
// (or the global account's).
var NoJetStreamLimits = JetStreamLimits{MaxMemory: -1, MaxStore: -1, MaxStreams: -1, MaxConsumers: -1,
	MaxAckPending: -1, MemoryMaxStreamBytes: -1, StoreMaxStreamBytes: -1}

// accountJetStream reads an account's jetstream: enabled / disabled, or a
// block of limits, which turns it on; every limit the block leaves out is
// none.
func (l *loader) accountJetStream(v value) (bool, JetStreamLimits) {
	lim := NoJetStreamLimits
	switch r := v.raw.(type) {
	case bool, string:
		return l.onOff(v, "enabled, disabled or a block of limits { max_mem: 1GB, max_file: 10GB, ... }"), lim
	case map[string]any:
		for k, e := range v.keys(r) {
			switch k {
			case "max_memory", "max_mem", "mem", "memory":
				lim.MaxMemory = l.limit(e)
			case "max_store", "max_file", "max_disk", "store", "disk":
				lim.MaxStore = l.limit(e)
			case "max_streams", "streams":
				lim.MaxStreams = int(l.limit(e))
			case "max_consumers", "consumers":
				lim.MaxConsumers = int(l.limit(e))
			case "max_ack_pending":
				lim.MaxAckPending = int(l.limit(e))
			case "mem_max_stream_bytes", "memory_max_stream_bytes":
				lim.MemoryMaxStreamBytes = l.limit(e)
			case "disk_max_stream_bytes", "store_max_stream_bytes":
				lim.StoreMaxStreamBytes = l.limit(e)
			case "max_bytes_required", "max_stream_bytes", "max_bytes":
				lim.MaxBytesRequired, _ = l.boolean(e)
			case "cluster_traffic":
				// Where a clustered account's Raft traffic goes: streamsvc
				// has no Raft groups, so nothing to route; the value is
				// still checked, as nats-server does.
				if s, ok := e.raw.(string); !ok || s != "system" && s != "owner" && s != "" {
					l.bad(e, "expected system or owner, got %s", describe(e.raw))
				}
			case "storage_max_stream_bytes", "max_storage":
				// The names $JS.API.INFO reports, which nats-server's file
				// does not take.
				l.bad(e, " is not an account jetstream {} setting: nats-server calls it %s", map[string]string{
					"storage_max_stream_bytes": "store_max_stream_bytes", "max_storage": "max_file"}[k])
			case "enabled", "enable":
				l.bad(e, " is not an account jetstream {} setting: a block of limits turns JetStream on by itself (or write jetstream: enabled)")
			default:
				l.bad(e, " is not an account jetstream {} setting: use max_mem, max_file, max_streams, max_consumers, "+
					"max_ack_pending, mem_max_stream_bytes, store_max_stream_bytes or max_bytes_required")
			}
		}
		return true, lim
	default:
		l.bad(v, "expected enabled, disabled or a block of limits, got %s", describe(v.raw))
	}
	return false, lim
}

// limit reads a number (a size such as 1GB is one): nats-server takes no
// quoted "1GB" in an account's limits.
func (l *loader) limit(v value) int64 {
	n, ok := v.raw.(int64)
	if !ok {
		l.bad(v, "expected a number or a size such as 1GB (unquoted), got %s", describe(v.raw))
	}
	return n
}

// onOff reads jetstream's switch: a boolean, or enabled / disabled (and
// the other spellings nats-server takes); choices says what else the key
// may be, for the error.
func (l *loader) onOff(v value, choices string) bool {
	switch r := v.raw.(type) {
	case bool:
		return r
	case string:
		switch strings.ToLower(r) {
		case "enabled", "enable", "true", "on", "yes":
			return true
		case "disabled", "disable", "false", "off", "no":
			return false
		}
		l.bad(v, " %q is not a choice: use %s", r, choices)
	}
	return false
}
