package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// max_memory_store / max_file_store: a value given, even 0, is the limit;
// without the key streamsvc picks its default.
func TestConfigJetStreamServerLimits(t *testing.T) {
	js := mustParse(t, "jetstream { max_memory_store: 0, max_file: 2MB }").JetStream
	require.Equal(t, JetStream{Enabled: true, SyncAlways: true, MaxMemorySet: true, MaxFile: 2 << 20, MaxFileSet: true}, js)
	js = mustParse(t, "jetstream { }").JetStream
	require.False(t, js.MaxMemorySet || js.MaxFileSet, "no key: the default")
}

// An account's jetstream {} block takes nats-server's keys and aliases.
func TestConfigJetStreamAccountLimits(t *testing.T) {
	s := mustParse(t, `accounts {
		A: { jetstream: { max_mem: 1MB, max_file: 1GB, max_streams: 10, max_consumers: 5, max_ack_pending: 100,
			memory_max_stream_bytes: 1KB, store_max_stream_bytes: 2KB, max_bytes_required: true } }
		B: { jetstream: { Memory: 1, disk: 2, streams: 3, consumers: 4, mem_max_stream_bytes: 5, disk_max_stream_bytes: 6,
			max_bytes: true, cluster_traffic: owner } }
		C: { jetstream: { max_memory: 7, max_store: 8, max_stream_bytes: false } }
		D: { jetstream: { max_disk: 9, store: 10, mem: 11 } }
		E: { jetstream: {} }
		F: { jetstream: enabled }
		G: { jetstream: disabled }
	}`)
	require.Len(t, s.Accounts, 7)
	want := []JetStreamLimits{
		{MaxMemory: 1 << 20, MaxStore: 1 << 30, MaxStreams: 10, MaxConsumers: 5, MaxAckPending: 100,
			MemoryMaxStreamBytes: 1 << 10, StoreMaxStreamBytes: 2 << 10, MaxBytesRequired: true},
		{MaxMemory: 1, MaxStore: 2, MaxStreams: 3, MaxConsumers: 4, MaxAckPending: -1,
			MemoryMaxStreamBytes: 5, StoreMaxStreamBytes: 6, MaxBytesRequired: true},
		{MaxMemory: 7, MaxStore: 8, MaxStreams: -1, MaxConsumers: -1, MaxAckPending: -1, MemoryMaxStreamBytes: -1, StoreMaxStreamBytes: -1},
		{MaxMemory: 11, MaxStore: 10, MaxStreams: -1, MaxConsumers: -1, MaxAckPending: -1, MemoryMaxStreamBytes: -1, StoreMaxStreamBytes: -1},
		NoJetStreamLimits,
		NoJetStreamLimits,
	}
	for i, w := range want {
		a := s.Accounts[i]
		require.True(t, a.JetStream, a.Name)
		require.Equal(t, w, a.JetStreamLimits, a.Name)
	}
	require.False(t, s.Accounts[6].JetStream)
	require.Equal(t, JetStreamLimits{-1, -1, -1, -1, -1, -1, -1, false}, NoJetStreamLimits, "nats-server's dynamic account limits")
}

// What nats-server refuses in an account's jetstream {} is refused, by
// name; so are the spellings of $JS.API.INFO, which its file does not take.
func TestConfigJetStreamAccountLimitRefusals(t *testing.T) {
	for block, want := range map[string]string{
		`{ max_foo: 1 }`:                  `"accounts.A.jetstream.max_foo" is not an account jetstream {} setting: use max_mem, max_file, max_streams`,
		`{ tiers: {} }`:                   `"accounts.A.jetstream.tiers" is not an account jetstream {} setting`,
		`{ enabled: true }`:               `"accounts.A.jetstream.enabled" is not an account jetstream {} setting: a block of limits turns JetStream on by itself`,
		`{ storage_max_stream_bytes: 1 }`: `"accounts.A.jetstream.storage_max_stream_bytes" is not an account jetstream {} setting: nats-server calls it store_max_stream_bytes`,
		`{ max_storage: 1 }`:              `"accounts.A.jetstream.max_storage" is not an account jetstream {} setting: nats-server calls it max_file`,
		`{ max_mem: "1G" }`:               `"accounts.A.jetstream.max_mem": expected a number or a size such as 1GB (unquoted), got the string "1G"`,
		`{ max_streams: 1.5 }`:            `"accounts.A.jetstream.max_streams": expected a number or a size such as 1GB (unquoted), got the number 1.5`,
		`{ max_bytes: 1 }`:                `"accounts.A.jetstream.max_bytes": expected true or false, got the number 1`,
		`{ cluster_traffic: both }`:       `"accounts.A.jetstream.cluster_traffic": expected system or owner, got the string "both"`,
		`sometimes`:                       `"accounts.A.jetstream" "sometimes" is not a choice: use enabled, disabled or a block of limits`,
		`5`:                               `"accounts.A.jetstream": expected enabled, disabled or a block of limits, got the number 5`,
	} {
		_, err := Parse("accounts { A: { jetstream: " + block + " } }")
		lines := requireErrLines(t, err, "line 1: "+want)
		require.Len(t, lines, 1, block)
	}
}
