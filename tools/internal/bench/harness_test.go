package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHarnessAgainstReference runs every workload, scaled down, against the
// pinned nats-server with the pinned natscli (the cross-node ones against a
// two-node nats-server cluster), so process handling, readiness checks and
// parsing are exercised end to end. It needs the binaries that
// `make bench` installs into .tools/bin and skips without them.
func TestBenchHarnessAgainstReference(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	root, err := findRoot("")
	if err != nil {
		t.Skip(err)
	}
	natsBin := filepath.Join(root, ".tools", "bin", "nats")
	serverBin := filepath.Join(root, ".tools", "bin", "nats-server")
	for _, p := range []string{natsBin, serverBin} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s not installed (run make bench once): %v", p, err)
		}
	}
	if _, err := raiseFileLimit(4096); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	plan := Plan{
		PubMsgs16: 20_000, PubMsgs1K: 5_000,
		PubSubMsgs16: 20_000, PubSubMsgs1K: 5_000,
		XPubSubMsgs16: 20_000, XPubSubMsgs1K: 5_000,
		FanoutMsgs: 10_000, QueueMsgs: 20_000, StuckSubMsgs: 20_000,
		Requests:  500,
		IdleConns: 200, IdleSettle: 200 * time.Millisecond,
		JWTConnects: 50, PermPubMsgs16: 20_000,
		JSPubAsyncMsgs: 5_000, JSPubSyncMsgs: 200,
		JSConsumeMsgs: 5_000, JSFetchMsgs: 5_000,
		TLSPubSubMsgs16: 20_000, TLSConnects: 50, WSPubSubMsgs16: 20_000,
		JSOrderedMsgs: 5_000, KVPutMsgs: 100, KVGetMsgs: 200,
	}
	var log strings.Builder
	h := &Harness{CLI: CLI{Path: natsBin, Timeout: 30 * time.Second}, Log: &log}
	var cluster int
	for _, w := range Workloads(plan) {
		if w.Cluster {
			cluster++
		}
		t.Run(w.Key, func(t *testing.T) {
			vals, err := measureOnce(ctx, h, w, SideReference, Binaries{Server: serverBin})
			if err != nil {
				t.Fatalf("%v\nlog: %s", err, log.String())
			}
			if len(vals) != len(w.Metrics) {
				t.Fatalf("got %d values for %d metrics", len(vals), len(w.Metrics))
			}
			for i, v := range vals {
				if !(v > 0) {
					t.Errorf("%s = %v, want > 0", w.Metrics[i].Name, v)
				}
			}
		})
	}
	if cluster == 0 {
		t.Error("no cross-node workload was exercised")
	}
}

// TestBenchReferenceClusterTopology checks the two-node reference cluster:
// two distinct nodes, interest probed across them, and every process gone
// after Stop.
func TestBenchReferenceClusterTopology(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	root, err := findRoot("")
	if err != nil {
		t.Skip(err)
	}
	serverBin := filepath.Join(root, ".tools", "bin", "nats-server")
	if _, err := os.Stat(serverBin); err != nil {
		t.Skipf("%s not installed (run make bench once): %v", serverBin, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topo, err := StartCluster(ctx, SideReference, Binaries{Server: serverBin})
	if err != nil {
		t.Fatal(err)
	}
	defer topo.Stop()
	if !topo.Cross() || topo.Pub.Port == topo.Sub.Port {
		t.Fatalf("cluster nodes are not distinct: pub %s, sub %s", topo.Pub.URL(), topo.Sub.URL())
	}
	if err := topo.awaitCrossInterest(ctx); err != nil {
		t.Fatal(err)
	}
	topo.Stop()
	for _, s := range topo.servers() {
		if !s.proc.Exited() {
			t.Errorf("%s still running after Stop", s.Name)
		}
	}
	if err := topo.checkAlive(); err == nil {
		t.Error("checkAlive after Stop reports nothing")
	}
}

// TestServerStartFailureShowsStderr checks that a server that cannot start
// is reported with its own words.
func TestBenchServerStartFailureShowsStderr(t *testing.T) {
	script := filepath.Join(t.TempDir(), "broken-server")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'cannot bind: permission denied' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := StartServer(context.Background(), SideSwitchyard, script)
	if err == nil {
		t.Fatal("expected a start error")
	}
	if !strings.Contains(err.Error(), "cannot bind: permission denied") {
		t.Fatalf("error does not show the server's stderr: %v", err)
	}
}
