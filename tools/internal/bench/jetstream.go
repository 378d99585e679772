package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

// JetStream workloads run against one server with a fresh, empty store. On
// the Switchyard side JetStream is a separate service: a router, the
// frontdoor and streamsvc attached to it, with the frontdoor taking the
// clients. The reference runs JetStream inside nats-server.
//
// The two do not make the same durability promise by default: streamsvc
// fsyncs before every PubAck (with group commit), nats-server fsyncs every
// two minutes. The publish rows say which promise each side kept.

// JetStreamMode says whether a workload needs JetStream and, for the
// reference, how it syncs. Switchyard's streamsvc always fsyncs before it
// acknowledges.
type JetStreamMode int

const (
	JetStreamOff JetStreamMode = iota
	// JetStreamDefault: `-js -sd DIR`, nats-server's default sync_interval
	// of two minutes.
	JetStreamDefault
	// JetStreamSyncAlways: a configuration file with `jetstream { store_dir:
	// DIR, sync_interval: always }`, so nats-server fsyncs every write before
	// it acknowledges, as streamsvc does.
	JetStreamSyncAlways
)

// jsSubject is the subject the benchmark stream ("benchstream", natscli's
// default) is created on.
const jsSubject = "bench.js"

// StartJetStreamSingle starts one server with JetStream on a fresh store
// directory (for Switchyard: router, frontdoor and streamsvc) and returns once
// a JetStream API request through the client port succeeds.
func StartJetStreamSingle(ctx context.Context, side string, bins Binaries, mode JetStreamMode) (*Topology, error) {
	t, dir, err := scratchTopology(side, "js")
	if err != nil {
		return nil, err
	}
	store := filepath.Join(dir, "store")
	if err := t.startJetStream(ctx, bins, mode, dir, store); err != nil {
		t.Stop()
		return nil, err
	}
	if err := t.awaitJetStream(ctx); err != nil {
		t.Stop()
		return nil, err
	}
	return t, nil
}

func (t *Topology) startJetStream(ctx context.Context, bins Binaries, mode JetStreamMode, dir, store string) error {
	ports, err := freePorts(3) // client, monitoring, streamsvc monitoring
	if err != nil {
		return err
	}
	var extra []string
	switch {
	case bins.Streamsvc != "":
		if bins.Router == "" {
			return fmt.Errorf("%s: streamsvc needs a router to reach the frontdoor, and none was given", t.Side)
		}
		routerAddr, err := t.startRouter(ctx, bins.Router)
		if err != nil {
			return err
		}
		args := []string{"-a", "127.0.0.1", "-m", strconv.Itoa(ports[2]), "--routers", routerAddr, "--store_dir", store}
		if t.streamsvc, err = startProcess(t.Side+" streamsvc", bins.Streamsvc, args, childEnv()); err != nil {
			return err
		}
		extra = []string{"--routers", routerAddr}
	case mode == JetStreamSyncAlways:
		conf := filepath.Join(dir, "js.conf")
		data := fmt.Sprintf("jetstream {\n  store_dir: %q\n  sync_interval: always\n}\n", store)
		if err := os.WriteFile(conf, []byte(data), 0o600); err != nil {
			return err
		}
		extra = []string{"-c", conf}
	default:
		extra = []string{"-js", "-sd", store}
	}
	s, err := startServer(ctx, t.Side, t.Side+" server", bins.Server, ports[0], ports[1], extra)
	if err != nil {
		return err
	}
	t.Pub, t.Sub = s, s
	return nil
}

// awaitJetStream asks $JS.API.INFO through the client port until it answers
// without an error. On Switchyard this proves that streamsvc's interest in
// the API subjects has reached the frontdoor, a few milliseconds after it
// says it is ready; a natscli run started before that fails with "no
// responders".
func (t *Topology) awaitJetStream(ctx context.Context) error {
	nc, err := nats.Connect(t.Pub.URL(), nats.Name("bench-js-probe"), nats.NoReconnect())
	if err != nil {
		return fmt.Errorf("JetStream probe connecting to %s: %w%s", t.Pub.Name, err, t.aliveNote())
	}
	defer nc.Close()
	var last error
	err = poll(ctx, startupTimeout, func() (bool, error) {
		if err := t.checkAlive(); err != nil {
			return false, err
		}
		msg, err := nc.Request("$JS.API.INFO", nil, time.Second)
		if err != nil {
			if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) {
				last = err
				return false, nil
			}
			return false, err
		}
		var info struct {
			Error *struct {
				Code        int    `json:"code"`
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(msg.Data, &info); err != nil {
			return false, fmt.Errorf("$JS.API.INFO reply %q: %w", clip(string(msg.Data)), err)
		}
		if info.Error != nil {
			last = fmt.Errorf("$JS.API.INFO: %d %s", info.Error.Code, info.Error.Description)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		note := ""
		if t.streamsvc != nil {
			note = t.streamsvc.stderrTail()
		}
		return fmt.Errorf("%s: JetStream did not answer $JS.API.INFO (last: %v): %w%s%s", t.Pub.Name, last, err, note, t.aliveNote())
	}
	return nil
}

// jsOrdered fills a new file-backed stream with msgs messages of 128 B
// (not measured), then reads them with natscli's ordered ephemeral
// consumer (flow control and heartbeats, no acks).
func (h *Harness) jsOrdered(ctx context.Context, t *Topology, msgs int) ([]float64, error) {
	if _, err := h.jsRun(ctx, t, "pub", "async", jsSubject, "--create", "--storage", "file", "--size", "128", "--msgs", countArg(msgs), "--purge"); err != nil {
		return nil, fmt.Errorf("filling the stream: %w", err)
	}
	out, err := h.jsRun(ctx, t, "ordered", "--msgs", countArg(msgs))
	if err != nil {
		return nil, err
	}
	r, err := ParseRate(out)
	return []float64{r}, err
}

// kvBench runs natscli's KV putter (which creates its file-backed bucket
// benchbucket, history 1) or, after a put of the same count (not
// measured), its getter; one client, each operation awaited.
func (h *Harness) kvBench(ctx context.Context, t *Topology, op string, msgs int) ([]float64, error) {
	if op == "get" {
		if _, err := h.jsOrKVRun(ctx, t, "kv", "put", "--size", "128", "--msgs", countArg(msgs)); err != nil {
			return nil, fmt.Errorf("filling the bucket: %w", err)
		}
	}
	out, err := h.jsOrKVRun(ctx, t, "kv", op, "--size", "128", "--msgs", countArg(msgs))
	if err != nil {
		return nil, err
	}
	r, err := ParseRate(out)
	return []float64{r}, err
}

// jsPublish runs natscli's JetStream publisher ("sync": one PubAck awaited
// per message; "async": up to natscli's default batch of 500 in flight)
// into a freshly created file-backed stream.
func (h *Harness) jsPublish(ctx context.Context, t *Topology, mode string, msgs int) ([]float64, error) {
	out, err := h.jsRun(ctx, t, "pub", mode, jsSubject, "--create", "--storage", "file", "--size", "128", "--msgs", countArg(msgs), "--purge")
	if err != nil {
		return nil, err
	}
	r, err := ParseRate(out)
	return []float64{r}, err
}

// jsConsume fills the stream with msgs 128-byte messages (not measured),
// then runs natscli's durable consumer ("consume": callback; "fetch": pull
// batches), which acknowledges every message explicitly and stops after
// msgs. The consumer is natscli's default durable, which a fresh store
// never has, so every message is delivered once.
func (h *Harness) jsConsume(ctx context.Context, t *Topology, kind string, msgs int) ([]float64, error) {
	if _, err := h.jsRun(ctx, t, "pub", "async", jsSubject, "--create", "--storage", "file", "--size", "128", "--msgs", countArg(msgs), "--purge"); err != nil {
		return nil, fmt.Errorf("filling the stream: %w", err)
	}
	out, err := h.jsRun(ctx, t, kind, "--acks", "explicit", "--msgs", countArg(msgs))
	if err != nil {
		return nil, err
	}
	r, err := ParseRate(out)
	return []float64{r}, err
}

// jsRun runs `nats bench js <args>`. natscli waits forever for messages that
// never come, so CLI.Timeout bounds it; on failure the streamsvc's words and
// any process that died are added.
func (h *Harness) jsRun(ctx context.Context, t *Topology, args ...string) (string, error) {
	return h.jsOrKVRun(ctx, t, "js", args...)
}

// jsOrKVRun runs `nats bench js|kv <args>` as jsRun describes.
func (h *Harness) jsOrKVRun(ctx context.Context, t *Topology, kind string, args ...string) (string, error) {
	out, _, err := h.CLI.Run(ctx, t.Pub.URL(), append([]string{kind}, args...)...)
	if err != nil {
		note := ""
		if t.streamsvc != nil && !t.streamsvc.Exited() {
			note = t.streamsvc.stderrTail()
		}
		return "", fmt.Errorf("%w%s%s", err, note, t.aliveNote())
	}
	return out, nil
}

// needsJetStream reports whether any workload uses JetStream.
func needsJetStream(workloads []Workload) bool {
	for _, w := range workloads {
		if w.JetStream != JetStreamOff {
			return true
		}
	}
	return false
}

// tmpfsNote warns when JetStream stores would land on tmpfs, where fsync
// costs nothing and the durable rows would measure neither side's disk.
func tmpfsNote() string {
	const tmpfsMagic = 0x01021994
	var st syscall.Statfs_t
	dir := os.TempDir()
	if err := syscall.Statfs(dir, &st); err != nil || st.Type != tmpfsMagic {
		return ""
	}
	return fmt.Sprintf("JetStream stores go to %s, which is tmpfs: fsync is free there, so the durable rows do not measure a disk (set TMPDIR to a directory on disk)", dir)
}
