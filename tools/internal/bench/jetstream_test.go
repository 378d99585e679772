package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBenchJetStreamReferenceTopology checks that the reference gets the
// durability each mode names, in a store that is gone after Stop.
func TestBenchJetStreamReferenceTopology(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	serverBin := installedTool(t, "nats-server")
	for _, c := range []struct {
		mode       JetStreamMode
		syncAlways bool
	}{{JetStreamDefault, false}, {JetStreamSyncAlways, true}} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		topo, err := StartJetStreamSingle(ctx, SideReference, Binaries{Server: serverBin}, c.mode)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		var varz struct {
			JetStream struct {
				Config struct {
					StoreDir   string `json:"store_dir"`
					SyncAlways bool   `json:"sync_always"`
				} `json:"config"`
			} `json:"jetstream"`
		}
		err = getJSON(ctx, topo.Pub.MonitorPort, "/varz", &varz)
		topo.Stop()
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		cfg := varz.JetStream.Config
		if cfg.SyncAlways != c.syncAlways {
			t.Errorf("mode %d: /varz sync_always = %v, want %v", c.mode, cfg.SyncAlways, c.syncAlways)
		}
		if !strings.HasPrefix(cfg.StoreDir, os.TempDir()) {
			t.Errorf("mode %d: store %q is not under %s", c.mode, cfg.StoreDir, os.TempDir())
		}
		if _, err := os.Stat(cfg.StoreDir); !os.IsNotExist(err) {
			t.Errorf("mode %d: store %s still there after Stop (%v)", c.mode, cfg.StoreDir, err)
		}
	}
}

// TestBenchJetStreamSwitchyardTopology starts router, frontdoor and
// streamsvc from <root>/bin as the JetStream rows do and publishes through
// them; it skips when they are not built.
func TestBenchJetStreamSwitchyardTopology(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	root, err := findRoot("")
	if err != nil {
		t.Skip(err)
	}
	bins := Binaries{
		Server:    filepath.Join(root, "bin", "frontdoor"),
		Router:    filepath.Join(root, "bin", "router"),
		Streamsvc: filepath.Join(root, "bin", "streamsvc"),
	}
	for _, p := range []string{bins.Server, bins.Router, bins.Streamsvc} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s not built (make build): %v", p, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topo, err := StartJetStreamSingle(ctx, SideSwitchyard, bins, JetStreamDefault)
	if err != nil {
		t.Fatal(err)
	}
	defer topo.Stop()
	h := &Harness{CLI: CLI{Path: installedTool(t, "nats"), Timeout: 30 * time.Second}}
	vals, err := h.jsPublish(ctx, topo, "async", 1_000)
	if err != nil {
		t.Fatal(err)
	}
	if !(vals[0] > 0) {
		t.Fatalf("rate = %v, want > 0", vals[0])
	}
	topo.Stop()
	if topo.streamsvc == nil || !topo.streamsvc.Exited() || !topo.router.Exited() {
		t.Error("streamsvc or router still running after Stop")
	}
}

// installedTool is a pinned tool from <root>/.tools/bin; the test skips
// without it.
func installedTool(t testing.TB, name string) string {
	t.Helper()
	root, err := findRoot("")
	if err != nil {
		t.Skip(err)
	}
	p := filepath.Join(root, ".tools", "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not installed (run make bench once): %v", p, err)
	}
	return p
}
