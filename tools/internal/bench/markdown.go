package bench

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"
)

// RunInfo is the context printed with the table in docs/benchmarks.md.
type RunInfo struct {
	Command         string
	ViaMake         bool
	Started         time.Time
	Elapsed         time.Duration
	Machine         Machine
	LoadAvgEnd      string
	Runs            int
	Quick           bool
	NatsCLIVersion  string
	ReferenceVer    string
	GoVersion       string
	SwitchyardPath  string
	SwitchyardSHA   string
	RouterPath      string // Switchyard's router, when cross-node or JetStream workloads ran with one
	RouterSHA       string
	StreamsvcPath   string // Switchyard's streamsvc, when JetStream workloads ran
	StreamsvcSHA    string
	GitHead         string
	SwitchyardIsRef bool // the reference binary stood in for Switchyard
}

// KeepMarker starts the part of docs/benchmarks.md that make bench keeps
// as it is: figures measured by other commands (each section names its
// command), such as failover times from the integration tests.
const KeepMarker = "<!-- Everything below is kept as it is by make bench. -->"

// KeptSection returns the part of an existing document from KeepMarker on,
// or nothing.
func KeptSection(doc []byte) []byte {
	if i := bytes.Index(doc, []byte(KeepMarker)); i >= 0 {
		return append([]byte("\n"), doc[i:]...)
	}
	return nil
}

// WriteDoc renders docs/benchmarks.md up to KeepMarker: figures and the
// command that made them must never drift apart.
func WriteDoc(w io.Writer, info RunInfo, workloads []Workload, res *Results) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# Benchmarks\n\n")
	p("Switchyard against the reference nats-server on the same machine, with the same\n")
	p("client tool and the same workloads. This file is written by `make bench`\n")
	p("(`tools/cmd/bench`); rerun it rather than editing the figures.\n\n")
	if info.SwitchyardIsRef {
		p("> **Note:** in this run the reference nats-server stood in for Switchyard\n")
		p("> (harness self-check): ratios near 1.00 show the noise floor, not Switchyard.\n\n")
	}
	if info.Quick {
		p("> **Note:** `-quick` run: one round with small message counts; indicative only.\n\n")
	}
	p("## Results\n\n")
	res.WriteMarkdownTable(w)
	p("\nRatio = switchyard / reference, computed per round and then the median over rounds.\n")
	p("For throughput higher is better (ratio > 1 means Switchyard is faster); for latency and\n")
	p("memory lower is better (ratio < 1 means Switchyard is lower). A row in %% is a percentage of\n")
	p("a baseline each server set in the same run, and its ratio compares the two percentages. Spread\n")
	p("is the smallest and largest per-round ratio.\n\n")

	p("## Run\n\n")
	if info.ViaMake {
		p("- Command: `make bench`, which runs (from the repository root) `%s`\n", info.Command)
	} else {
		p("- Command (from the repository root): `%s`\n", info.Command)
	}
	p("- Date: %s\n", info.Started.UTC().Format("2006-01-02 15:04 MST"))
	p("- Wall time: %s for %d round(s) of every workload on both servers\n", info.Elapsed.Round(time.Second), info.Runs)
	p("- Machine: %d CPUs (nproc), %s, %s RAM, %s\n", info.Machine.CPUs, info.Machine.CPUModel, info.Machine.Memory, info.Machine.Kernel)
	p("- Load average at start / end: %s / %s\n", info.Machine.LoadAvg, info.LoadAvgEnd)
	if busy := busyNote(info.Machine); busy != "" {
		p("- **Warning:** %s\n", busy)
	}
	p("- Client tool: natscli %s (`nats bench`); queue-group subscribers and readiness probes: nats.go v1.55.0; harness built with %s\n", info.NatsCLIVersion, info.GoVersion)
	p("- Reference: %s\n", info.ReferenceVer)
	p("- Switchyard: `%s` (sha256 %s), tree at %s\n", info.SwitchyardPath, info.SwitchyardSHA, info.GitHead)
	if info.RouterPath != "" {
		p("- Switchyard router (cross-node and JetStream rows): `%s` (sha256 %s)\n", info.RouterPath, info.RouterSHA)
	}
	if info.StreamsvcPath != "" {
		p("- Switchyard streamsvc (JetStream rows): `%s` (sha256 %s)\n", info.StreamsvcPath, info.StreamsvcSHA)
	}
	p("\n")

	p("## Method\n\n")
	p("Each measurement starts a fresh server process on free 127.0.0.1 ports (`-a 127.0.0.1 -p PORT\n")
	p("-m MONITOR_PORT`), runs one workload against it and kills it. Within a round the reference\n")
	p("is measured first and Switchyard right after, and rounds alternate reference, Switchyard,\n")
	p("reference, Switchyard... so both see the same machine state. Only one side runs at a time,\n")
	p("but clients and servers share the same %d cores, as they do in every single-machine benchmark.\n\n", info.Machine.CPUs)
	for _, wl := range workloads {
		var names []string
		for _, m := range wl.Metrics {
			names = append(names, m.Name)
		}
		p("- **%s**: %s.\n", strings.Join(names, "; "), wl.How)
	}
	if needsCluster(workloads) {
		p("\nA cross-node row gets a fresh two-node cluster per measurement, on loopback like the rest:\n")
		p("the reference runs two nats-server processes routed to each other (`--cluster`, `--cluster_name`,\n")
		p("`--routes`; ready when each lists a route in `/routez`); Switchyard runs one router (`-a 127.0.0.1\n")
		p("-p PORT -m MONITOR_PORT`) and two frontdoors attached to it with `--routers` (ready when the\n")
		p("router's `/nodez` lists both). Both then wait until the nodes' `/varz` subscription counts hold\n")
		p("still. Publishers and requesters connect to node A, subscribers and responders to node B. Once\n")
		p("node B counts the subscriber's subscription, a nats.go probe subscriber joins node B on a subject\n")
		p("of its own and probes are published on node A until one arrives: interest travels in order, so\n")
		p("the subscriber's interest has then reached node A too. The request/reply probe requests are sent\n")
		p("from node A.\n")
	}
	if needsJetStream(workloads) {
		p("\nA JetStream row gets one server with a fresh, empty store directory per measurement, in\n")
		p("the system's temporary directory (the same for both sides). The reference runs JetStream\n")
		p("inside nats-server (`-js -sd DIR`, or the configuration file the row names); Switchyard runs a\n")
		p("router, the frontdoor (`--routers`, taking the clients) and streamsvc (`--routers`, `--store_dir\n")
		p("DIR`), which fsyncs before every PubAck, several publishes sharing one fsync when they arrive\n")
		p("together. Both are ready once a `$JS.API.INFO` request on the client port is answered without\n")
		p("an error; natscli then creates its stream `benchstream` (file storage, one replica).\n")
	}
	p("\nSubscribers are known to be ready when the server's `/varz` `subscriptions` count has risen\n")
	p("(natscli's subscriber prints nothing until done); the request/reply responder is probed with\n")
	p("requests until it answers. A subscriber still short of messages long after the publisher has\n")
	p("finished counts as a failed measurement (lost messages), not a slow one.\n")
}
