package config

import (
	"strings"
	"time"
)

// JetStream is the jetstream {} block, applied by streamsvc (frontdoors
// ignore it: JetStream API requests reach streamsvc through the routers).
type JetStream struct {
	Enabled   bool
	StoreDir  string // "store_dir"; empty: streamsvc's default (./data)
	MaxMemory int64  // "max_memory_store"/"max_mem"; 0: streamsvc's default
	MaxFile   int64  // "max_file_store"/"max_file"; 0: streamsvc's default
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
				js.MaxMemory, _ = l.size(e)
			case "max_file_store", "max_file":
				js.MaxFile, _ = l.size(e)
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

// accountJetStream reads an account's jetstream: enabled / disabled, or a
// block of limits (max_mem, max_file, max_streams, max_consumers), which
// turns it on; the limits themselves are refused until streamsvc applies
// them, so nobody believes a stream is bounded when it is not.
func (l *loader) accountJetStream(v value) bool {
	switch r := v.raw.(type) {
	case bool, string:
		return l.onOff(v, "enabled or disabled")
	case map[string]any:
		if len(r) > 0 {
			l.bad(v, " account JetStream limits are not supported yet: use jetstream: enabled")
		}
		return true
	default:
		l.bad(v, " expected enabled or disabled, got %s", describe(v.raw))
	}
	return false
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
