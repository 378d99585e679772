// Package bench is the `make bench` harness: it installs pinned natscli and
// nats-server binaries, runs the same workloads against the reference server
// and Switchyard in alternating rounds (a fresh server per measurement), and
// reports medians and per-round ratios as a table and as docs/benchmarks.md.
//
// Linux only: it reads /proc for RSS and machine details and relies on
// Pdeathsig to reap children.
package bench

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"
)

// Config is everything `make bench` can be told.
type Config struct {
	Root       string // repository root; found from the working directory when empty
	Switchyard string // server under test; <root>/bin/frontdoor when empty
	Router     string // Switchyard's router for cross-node and JetStream workloads; "router" beside Switchyard when empty
	Streamsvc  string // Switchyard's JetStream service; "streamsvc" beside Switchyard when empty
	Reference  string // reference server; the pinned nats-server in <root>/.tools/bin when empty
	NatsCLI    string // natscli; the pinned one in Tools when empty
	Tools      string // where pinned tools are installed; <root>/.tools/bin when empty
	Runs       int
	Quick      bool
	WriteDoc   string // Markdown file to write the results to; none when empty
	Timeout    time.Duration
	Only       string // regexp over workload keys
}

// RegisterFlags binds the flags of tools/cmd/bench.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Root, "root", "", "repository root (default: nearest parent directory holding go.work)")
	fs.StringVar(&c.Switchyard, "switchyard", "", "Switchyard server binary, taking nats-server's -a/-p/-m flags (default <root>/bin/frontdoor)")
	fs.StringVar(&c.Router, "router", "", "Switchyard router binary the two nodes of the cross-node workloads, and the frontdoor and streamsvc of the JetStream workloads, attach to (default: router in the -switchyard binary's directory; unused when -switchyard is the reference binary, which then clusters itself)")
	fs.StringVar(&c.Streamsvc, "streamsvc", "", "Switchyard JetStream service binary for the js-* workloads (default: streamsvc in the -switchyard binary's directory; unused when -switchyard is the reference binary, which then runs JetStream itself)")
	fs.StringVar(&c.Reference, "reference", "", "reference server binary (default: nats-server "+NatsServer.Version+" installed into -tools)")
	fs.StringVar(&c.NatsCLI, "nats", "", "natscli binary (default: natscli "+NatsCLI.Version+" installed into -tools)")
	fs.StringVar(&c.Tools, "tools", "", "directory the pinned natscli and nats-server are installed into with go install (default <root>/.tools/bin)")
	fs.IntVar(&c.Runs, "runs", 5, "rounds per workload; each round measures both servers, alternating which goes first")
	fs.BoolVar(&c.Quick, "quick", false, "one round with small message counts (overrides -runs)")
	fs.StringVar(&c.WriteDoc, "write-doc", "", "also write the results, command and machine as Markdown to this file (make bench: docs/benchmarks.md)")
	fs.DurationVar(&c.Timeout, "timeout", 120*time.Second, "limit for each single nats bench run")
	fs.StringVar(&c.Only, "only", "", "run only workloads whose key matches this regexp (pub-16B, pub-1KB, pubsub-16B, pubsub-1KB, fanout4-16B, queue4-16B, stuck-sub, reqrep-16B, idle-conns, jwt-connect, perm-pub-16B, npubsub-16B, xpubsub-16B, xpubsub-1KB, xreqrep-16B, tls-pubsub-16B, tls-connect, ws-pubsub-16B, js-pub-async, js-pub-sync, js-pub-sync-lazy, js-consume, js-fetch, js-ordered, kv-put, kv-put-always, kv-get)")
}

// Validate names the bad flag.
func (c *Config) Validate() error {
	if c.Runs < 1 {
		return fmt.Errorf("-runs must be at least 1, got %d", c.Runs)
	}
	if c.Timeout < time.Second {
		return fmt.Errorf("-timeout must be at least 1s, got %s", c.Timeout)
	}
	if _, err := regexp.Compile(c.Only); err != nil {
		return fmt.Errorf("-only: %w", err)
	}
	return nil
}

// Main runs the whole benchmark: install tools, measure, print, write docs.
// It returns an error when setup fails or any measurement failed, after the
// table has been printed.
func Main(ctx context.Context, cfg Config, args []string, out, log io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	started := time.Now()
	root, err := findRoot(cfg.Root)
	if err != nil {
		return err
	}
	plan := DefaultPlan(cfg.Quick)
	runs := cfg.Runs
	if cfg.Quick {
		runs = 1
	}
	if limit, err := raiseFileLimit(65536); err != nil || limit < uint64(plan.IdleConns)+1024 {
		return fmt.Errorf("open-file limit is %d (%v); %d idle connections need at least %d: raise `ulimit -Hn`",
			limit, err, plan.IdleConns, plan.IdleConns+1024)
	}

	binDir := cfg.Tools
	if binDir != "" {
		// go install rejects a relative GOBIN.
		if binDir, err = filepath.Abs(binDir); err != nil {
			return err
		}
	} else {
		binDir = filepath.Join(root, ".tools", "bin")
		if err := ensureIgnored(filepath.Dir(binDir)); err != nil {
			return err
		}
	}
	natsPath, refPath := cfg.NatsCLI, cfg.Reference
	if natsPath == "" {
		if natsPath, err = NatsCLI.Ensure(ctx, binDir, log); err != nil {
			return err
		}
	}
	if refPath == "" {
		if refPath, err = NatsServer.Ensure(ctx, binDir, log); err != nil {
			return err
		}
	}
	syPath := cfg.Switchyard
	if syPath == "" {
		syPath = filepath.Join(root, "bin", "frontdoor")
	}
	if st, err := os.Stat(syPath); err != nil || st.IsDir() {
		return fmt.Errorf("Switchyard server binary %s not found: build it first, or pass -switchyard PATH", syPath)
	}

	only := regexp.MustCompile(cfg.Only)
	var workloads []Workload
	for _, w := range Workloads(plan) {
		if only.MatchString(w.Key) {
			workloads = append(workloads, w)
		}
	}
	if len(workloads) == 0 {
		return fmt.Errorf("-only %q matches no workload", cfg.Only)
	}

	info := RunInfo{
		Command:        commandLine(root, args),
		ViaMake:        os.Getenv("MAKELEVEL") != "", // make exports it to recipes
		Started:        started,
		Machine:        describeMachine(),
		Runs:           runs,
		Quick:          cfg.Quick,
		NatsCLIVersion: Version(ctx, natsPath),
		ReferenceVer:   Version(ctx, refPath),
		GoVersion:      runtime.Version(),
		SwitchyardPath: syPath,
		SwitchyardSHA:  fileDigest(syPath),
		GitHead:        gitHead(ctx, root),
	}
	info.SwitchyardIsRef = info.SwitchyardSHA == fileDigest(refPath)
	info.SwitchyardPath = relToRoot(root, syPath)
	bins := [2]Binaries{{Server: refPath}, {Server: syPath}}
	if (needsCluster(workloads) || needsJetStream(workloads)) && !info.SwitchyardIsRef {
		// The reference clusters itself and runs JetStream inside; Switchyard's
		// nodes and its streamsvc attach to a router.
		routerPath := cfg.Router
		if routerPath == "" {
			routerPath = filepath.Join(filepath.Dir(syPath), "router")
		}
		if st, err := os.Stat(routerPath); err != nil || st.IsDir() {
			return fmt.Errorf("Switchyard router binary %s not found (the cross-node and JetStream workloads need it): build it first, pass -router PATH, or leave them out with -only", routerPath)
		}
		bins[1].Router = routerPath
		info.RouterPath, info.RouterSHA = relToRoot(root, routerPath), fileDigest(routerPath)
	}
	if needsJetStream(workloads) && !info.SwitchyardIsRef {
		streamsvcPath := cfg.Streamsvc
		if streamsvcPath == "" {
			streamsvcPath = filepath.Join(filepath.Dir(syPath), "streamsvc")
		}
		if st, err := os.Stat(streamsvcPath); err != nil || st.IsDir() {
			return fmt.Errorf("Switchyard streamsvc binary %s not found (the JetStream workloads need it): build it first, pass -streamsvc PATH, or leave them out with -only", streamsvcPath)
		}
		bins[1].Streamsvc = streamsvcPath
		info.StreamsvcPath, info.StreamsvcSHA = relToRoot(root, streamsvcPath), fileDigest(streamsvcPath)
	}
	if needsAuth(workloads) && !info.SwitchyardIsRef {
		authPath := filepath.Join(filepath.Dir(syPath), "authsvc")
		if st, err := os.Stat(authPath); err != nil || st.IsDir() {
			return fmt.Errorf("Switchyard authsvc binary %s not found (the authenticated workloads need it): build it first, or leave them out with -only", authPath)
		}
		bins[1].Authsvc = authPath
	}
	fmt.Fprintf(log, "natscli %s, reference %s (%s), switchyard %s; %d round(s), %d CPUs, load %s\n",
		info.NatsCLIVersion, info.ReferenceVer, refPath, syPath, runs, info.Machine.CPUs, info.Machine.LoadAvg)

	if busy := busyNote(info.Machine); busy != "" {
		fmt.Fprintln(log, "warning: "+busy)
	}
	if needsJetStream(workloads) {
		if note := tmpfsNote(); note != "" {
			fmt.Fprintln(log, "warning: "+note)
		}
	}

	// Wall time covers the measurements only, not a first-time tool install.
	measureStart := time.Now()
	h := &Harness{CLI: CLI{Path: natsPath, Timeout: cfg.Timeout}, Log: log}
	if err := preflight(ctx, h, bins, needsCluster(workloads), needsJetStream(workloads)); err != nil {
		return err
	}
	res, err := measure(ctx, h, workloads, runs, bins, log)
	if err != nil {
		if res != nil && len(res.Rows) > 0 {
			// Interrupted: show what was measured, but never put a partial run
			// into the docs.
			fmt.Fprintln(out, "\nPartial results:")
			res.WriteTable(out)
		}
		return err
	}
	info.Elapsed = time.Since(measureStart)
	info.LoadAvgEnd = loadAvg()

	fmt.Fprintln(out)
	res.WriteTable(out)
	fmt.Fprintf(out, "\n%d round(s) in %s; ratio = switchyard/reference per round, median over rounds.\n", runs, info.Elapsed.Round(time.Second))

	if docPath := cfg.WriteDoc; docPath != "" {
		var b bytes.Buffer
		WriteDoc(&b, info, workloads, res)
		if old, err := os.ReadFile(docPath); err == nil {
			b.Write(KeptSection(old))
		}
		if err := os.WriteFile(docPath, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", docPath, err)
		}
		fmt.Fprintf(out, "wrote %s\n", docPath)
	}
	if len(res.Failures) > 0 {
		return fmt.Errorf("%d measurement(s) failed (listed under the table)", len(res.Failures))
	}
	return nil
}

// measure runs every workload for every round, reference and Switchyard in
// alternating order, each on a fresh server. A failed measurement is recorded and the run goes
// on; a server that does not start, or an interrupt, stops everything (on an
// interrupt the results so far are returned with the error).
func measure(ctx context.Context, h *Harness, workloads []Workload, runs int, bins [2]Binaries, log io.Writer) (*Results, error) {
	res := &Results{}
	for _, w := range workloads {
		rows := make([]*Row, len(w.Metrics))
		for i, spec := range w.Metrics {
			rows[i] = &Row{Spec: spec}
			for s := range rows[i].Values {
				rows[i].Values[s] = nanSlice(runs)
			}
			res.Rows = append(res.Rows, rows[i])
		}
		for round := 0; round < runs; round++ {
			// Alternate which server goes first so that neither always
			// meets a machine still busy with (or warmed by) the other.
			order := [2]int{0, 1}
			if round%2 == 1 {
				order = [2]int{1, 0}
			}
			for _, side := range order {
				vals, err := measureOnce(ctx, h, w, sides[side], bins[side])
				if ctx.Err() != nil {
					return res, fmt.Errorf("interrupted: %w", ctx.Err())
				}
				var startErr *serverStartError
				if errors.As(err, &startErr) {
					return nil, startErr.err
				}
				if err == nil && len(vals) != len(w.Metrics) {
					err = fmt.Errorf("workload returned %d values for %d metrics", len(vals), len(w.Metrics))
				}
				if err != nil {
					res.Failures = append(res.Failures, Failure{Workload: w.Key, Side: sides[side], Round: round + 1, Err: err})
					fmt.Fprintf(log, "%-16s round %d/%d %-10s FAILED: %v\n", w.Key, round+1, runs, sides[side], err)
					continue
				}
				var shown []string
				for i, v := range vals {
					rows[i].Values[side][round] = v
					shown = append(shown, formatValue(w.Metrics[i].Unit, v))
				}
				fmt.Fprintf(log, "%-16s round %d/%d %-10s %s\n", w.Key, round+1, runs, sides[side], strings.Join(shown, ", "))
			}
		}
	}
	return res, nil
}

// serverStartError separates "the server would not start" (fatal: every
// further measurement would fail the same way) from a failed measurement.
type serverStartError struct{ err error }

func (e *serverStartError) Error() string { return e.err.Error() }

// measureOnce starts a fresh topology for one measurement: a single server,
// or a two-node cluster for a cross-node workload.
func measureOnce(ctx context.Context, h *Harness, w Workload, side string, bins Binaries) ([]float64, error) {
	var (
		t   *Topology
		err error
	)
	switch {
	case w.JetStream != JetStreamOff:
		t, err = StartJetStreamSingle(ctx, side, bins, w.JetStream)
	case w.Auth:
		t, err = StartAuthSingle(ctx, side, bins)
	case w.TLS:
		t, err = StartTLSSingle(ctx, side, bins.Server)
	case w.WebSocket:
		t, err = StartWebSocketSingle(ctx, side, bins.Server)
	case w.Cluster:
		t, err = StartCluster(ctx, side, bins)
	default:
		t, err = StartSingle(ctx, side, bins.Server)
	}
	if err != nil {
		return nil, &serverStartError{err}
	}
	defer t.Stop()
	vals, err := w.Run(ctx, h, t)
	if err == nil {
		// A value measured against a server that crashed at the end is suspect.
		err = t.checkAlive()
	}
	return vals, err
}

// needsAuth reports whether any workload runs in operator (JWT) mode.
func needsAuth(workloads []Workload) bool {
	for _, w := range workloads {
		if w.Auth {
			return true
		}
	}
	return false
}

// needsCluster reports whether any workload runs across two nodes.
func needsCluster(workloads []Workload) bool {
	for _, w := range workloads {
		if w.Cluster {
			return true
		}
	}
	return false
}

// preflight starts each server once before any measurement (and each
// cluster, or JetStream set-up, when such a workload is selected), so a
// binary that cannot start (or lacks /varz) is reported in seconds, not
// after the first reference measurements have run.
func preflight(ctx context.Context, h *Harness, bins [2]Binaries, cluster, jetStream bool) error {
	for i, b := range bins {
		srv, err := StartServer(ctx, sides[i], b.Server)
		if err != nil {
			return err
		}
		_, err = srv.Subscriptions(ctx)
		srv.Stop()
		if err != nil {
			fmt.Fprintf(h.Log, "warning: %s server's /varz is unusable (%v); subscribers will get a fixed 1s to subscribe instead of a confirmed subscription\n", sides[i], err)
		}
		if cluster {
			t, err := StartCluster(ctx, sides[i], b)
			if err != nil {
				return err
			}
			t.Stop()
		}
		if jetStream {
			t, err := StartJetStreamSingle(ctx, sides[i], b, JetStreamSyncAlways)
			if err != nil {
				return err
			}
			t.Stop()
		}
	}
	return nil
}

// busyNote warns when other work is loading the machine: on a small machine
// a background job moves the figures more than most optimisations do.
func busyNote(m Machine) string {
	var load1 float64
	if _, err := fmt.Sscan(m.LoadAvg, &load1); err != nil || load1 < 0.5*float64(m.CPUs) {
		return ""
	}
	return fmt.Sprintf("load average is %s on %d CPUs: other work is running, figures will be noisy", m.LoadAvg, m.CPUs)
}

func nanSlice(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = math.NaN()
	}
	return s
}

// commandLine is how the docs quote the run: from the repository root, with
// paths inside the repository made relative so no one's home directory ends
// up in a committed file.
func commandLine(root string, args []string) string {
	parts := []string{"go", "run", "./tools/cmd/bench"}
	for _, a := range args {
		prefix, path := "", a
		if flagName, value, ok := strings.Cut(a, "="); ok && strings.HasPrefix(flagName, "-") {
			prefix, path = flagName+"=", value
		}
		if filepath.IsAbs(path) {
			if rel, err := filepath.Rel(root, path); err == nil && !strings.HasPrefix(rel, "..") {
				a = prefix + rel
			}
		}
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

// shellQuote makes an argument such as `-only pub|sub` safe to paste.
func shellQuote(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t|&;<>()$`\\\"'*?[]{}~!#") {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}

// findRoot returns dir, or the nearest directory at or above the working
// directory holding go.work, so the tool runs the same from the root (make)
// and from tools/ (go run ./cmd/bench).
func findRoot(dir string) (string, error) {
	if dir != "" {
		return filepath.Abs(dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.work in %s or any parent; pass -root", wd)
		}
	}
}

// relToRoot makes a path inside the repository relative to its root, for
// the docs; a path outside stays as it is.
func relToRoot(root, path string) string {
	if rel, err := filepath.Rel(root, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}
