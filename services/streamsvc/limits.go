package streamsvc

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"

	"github.com/switchyard-io/switchyard/pkg/config"
	"github.com/switchyard-io/switchyard/pkg/logging"
)

// nats-server's fallbacks when it cannot tell the machine's memory or the
// store_dir disk's free space.
const (
	defaultMaxMemory = 256 << 20
	defaultMaxStore  = 1 << 40
)

// serverLimits are the bytes all accounts' memory and file streams may
// hold: max_memory_store and max_file_store when given (0 included), else
// nats-server's defaults: 75% of the machine's memory (or of GOMEMLIMIT
// when lower) and 75% of the free space on store_dir's disk.
func serverLimits(js config.JetStream, log *logging.Logger) (maxMemory, maxStore int64) {
	maxMemory, maxStore = js.MaxMemory, js.MaxFile
	if maxMemory < 0 || maxMemory == 0 && !js.MaxMemorySet {
		maxMemory = defaultMaxMemory
		if mem := systemMemory(); mem > 0 {
			if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64 && limit < mem {
				mem = limit
			}
			maxMemory = mem / 4 * 3
		}
	}
	if maxStore < 0 || maxStore == 0 && !js.MaxFileSet {
		maxStore = defaultMaxStore
		if err := os.MkdirAll(js.StoreDir, 0o750); err != nil {
			log.Warnf("JetStream store_dir %s: %v; assuming %s of disk", js.StoreDir, err, friendlyBytes(maxStore))
		} else if free := diskAvailable(js.StoreDir); free > 0 {
			maxStore = free / 4 * 3
		}
	}
	return maxMemory, maxStore
}

// friendlyBytes writes a size as nats-server's log does ("1.00 GB").
func friendlyBytes(n int64) string {
	f := float64(n)
	const base = 1024
	if f < base {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"K", "M", "G", "T", "P", "E"}
	exp := int(math.Log(f) / math.Log(base))
	exp = min(exp, len(units))
	return fmt.Sprintf("%.2f %sB", f/math.Pow(base, float64(exp)), units[exp-1])
}
