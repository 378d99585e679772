//go:build !linux

package streamsvc

// Elsewhere streamsvc does not measure the machine: nats-server's
// fallbacks apply unless max_memory_store / max_file_store are set.
func systemMemory() int64 { return 0 }

func diskAvailable(string) int64 { return 0 }
