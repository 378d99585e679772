package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
)

// Unit says how a metric is printed.
type Unit int

const (
	UnitRate     Unit = iota // messages per second
	UnitMicros               // microseconds
	UnitBytes                // bytes
	UnitPercent              // percent of a baseline measured in the same run
	UnitConnRate             // connections per second
)

// MetricSpec is one row of the results table.
type MetricSpec struct {
	Name          string
	Unit          Unit
	LowerIsBetter bool
}

// Workload is one kind of measurement. Run gets a freshly started topology
// (one server, or a two-node cluster when Cluster is set) and returns one
// value per metric, in the order of Metrics.
type Workload struct {
	Key     string // stable id, matched by -only
	Metrics []MetricSpec
	How     string // how it is measured, for docs/benchmarks.md
	Cluster bool   // publisher and subscriber on different nodes of a cluster
	Auth    bool   // one server in operator (JWT) mode; Topology.Creds is the user
	TLS     bool   // one server requiring TLS on its client port; Topology.CA signed its certificate
	// WebSocket: one server with a ws:// listener (Topology.WebSocketURL).
	WebSocket bool
	// JetStream: one server with JetStream on a fresh store (Switchyard:
	// with streamsvc), the reference syncing as the mode says.
	JetStream JetStreamMode
	Run       func(ctx context.Context, h *Harness, t *Topology) ([]float64, error)
}

// Harness carries what every workload needs.
type Harness struct {
	CLI CLI
	Log io.Writer
}

// Plan holds the sizes of each workload. The defaults keep a 5-round run
// (both servers) under 15 minutes on a 2-core machine (the JetStream rows
// take about 4 of them) while making each measurement last about a second
// or more, long enough to be above timer and scheduling noise.
type Plan struct {
	PubMsgs16, PubMsgs1K       int
	PubSubMsgs16, PubSubMsgs1K int
	// Cross-node pub → sub. nats-server does not slow a publisher down to a
	// subscriber on another node (on one server it stalls a publisher whose
	// subscriber is behind), so a slower subscriber's backlog piles up in
	// its node's buffer and past 64 MiB is cut as a slow consumer. At 1 KiB
	// the single-node count (500 MiB) overran that on a busy 2-core machine,
	// so that row sends what fits in it. (Switchyard's mesh paces the
	// publisher across nodes too.)
	XPubSubMsgs16, XPubSubMsgs1K int
	FanoutMsgs, QueueMsgs        int
	StuckSubMsgs                 int
	Requests                     int
	IdleConns                    int
	IdleSettle                   time.Duration
	JWTConnects                  int // authenticated connections opened and closed
	PermPubMsgs16                int
	// JetStream, 128 B messages. A synchronous publisher waits for each
	// PubAck, so with an fsync per message it manages about a thousand a
	// second here; the others run at tens of thousands a second.
	JSPubAsyncMsgs, JSPubSyncMsgs int
	JSConsumeMsgs, JSFetchMsgs    int
	JSOrderedMsgs                 int
	// Key/Value, 128 B values: each put or get is awaited.
	KVPutMsgs, KVGetMsgs int
	// TLS on the client port.
	TLSPubSubMsgs16, TLSConnects int
	// WebSocket (ws://).
	WSPubSubMsgs16 int
}

// DefaultPlan returns the full-size plan, or a small one for -quick.
func DefaultPlan(quick bool) Plan {
	if quick {
		return Plan{
			PubMsgs16: 200_000, PubMsgs1K: 100_000,
			PubSubMsgs16: 200_000, PubSubMsgs1K: 100_000,
			XPubSubMsgs16: 200_000, XPubSubMsgs1K: 50_000,
			FanoutMsgs: 100_000, QueueMsgs: 200_000, StuckSubMsgs: 300_000,
			Requests:  5_000,
			IdleConns: 10_000, IdleSettle: 3 * time.Second,
			JWTConnects: 500, PermPubMsgs16: 200_000,
			JSPubAsyncMsgs: 50_000, JSPubSyncMsgs: 500,
			JSConsumeMsgs: 50_000, JSFetchMsgs: 50_000,
			TLSPubSubMsgs16: 200_000, TLSConnects: 500,
			WSPubSubMsgs16: 200_000,
			JSOrderedMsgs:  50_000, KVPutMsgs: 500, KVGetMsgs: 2_000,
		}
	}
	return Plan{
		PubMsgs16: 5_000_000, PubMsgs1K: 1_000_000,
		PubSubMsgs16: 2_000_000, PubSubMsgs1K: 500_000,
		XPubSubMsgs16: 2_000_000, XPubSubMsgs1K: 50_000,
		FanoutMsgs: 1_000_000, QueueMsgs: 2_000_000, StuckSubMsgs: 4_000_000,
		Requests:  20_000,
		IdleConns: 10_000, IdleSettle: 3 * time.Second,
		JWTConnects: 5_000, PermPubMsgs16: 5_000_000,
		JSPubAsyncMsgs: 200_000, JSPubSyncMsgs: 3_000,
		JSConsumeMsgs: 150_000, JSFetchMsgs: 150_000,
		TLSPubSubMsgs16: 2_000_000, TLSConnects: 3_000,
		WSPubSubMsgs16: 2_000_000,
		JSOrderedMsgs:  150_000, KVPutMsgs: 2_000, KVGetMsgs: 5_000,
	}
}

// Workloads lists the measurements in the order they appear in the table.
func Workloads(p Plan) []Workload {
	rate := func(name string) []MetricSpec { return []MetricSpec{{Name: name, Unit: UnitRate}} }
	return []Workload{
		{
			Key: "pub-16B", Metrics: rate("publish only, 16 B"),
			How: fmt.Sprintf("`nats bench pub bench.pub --size 16 --msgs %d`, no subscriber; publisher's msgs/sec", p.PubMsgs16),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.publishOnly(ctx, t, "16", p.PubMsgs16)
			},
		},
		{
			Key: "pub-1KB", Metrics: rate("publish only, 1 KiB"),
			How: fmt.Sprintf("`nats bench pub bench.pub --size 1KB --msgs %d` (natscli's KB is 1024 B), no subscriber", p.PubMsgs1K),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.publishOnly(ctx, t, "1KB", p.PubMsgs1K)
			},
		},
		{
			Key: "pubsub-16B", Metrics: rate("pub → sub 1:1, 16 B"),
			How: fmt.Sprintf("`nats bench sub bench.sub --size 16 --msgs %d` running, then `nats bench pub` of the same; subscriber's received msgs/sec", p.PubSubMsgs16),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.publishSubscribe(ctx, t, 1, "16", p.PubSubMsgs16)
			},
		},
		{
			Key: "pubsub-1KB", Metrics: rate("pub → sub 1:1, 1 KiB"),
			How: fmt.Sprintf("as above with `--size 1KB --msgs %d`", p.PubSubMsgs1K),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.publishSubscribe(ctx, t, 1, "1KB", p.PubSubMsgs1K)
			},
		},
		{
			Key: "fanout4-16B", Metrics: rate("fan-out 1 → 4 subs, 16 B (delivered)"),
			How: fmt.Sprintf("`nats bench sub --clients 4 --size 16 --msgs %d` (every subscriber gets every message) and one `nats bench pub`; natscli's aggregated delivered msgs/sec over the 4 subscribers", p.FanoutMsgs),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.publishSubscribe(ctx, t, 4, "16", p.FanoutMsgs)
			},
		},
		{
			Key: "queue4-16B", Metrics: rate("queue group 1 → 4 members, 16 B"),
			How: fmt.Sprintf("natscli v0.5.1 has no queue-group subscriber, so 4 nats.go v1.55.0 connections in the harness join one queue group; `nats bench pub --size 16 --msgs %d`; messages / (last receipt − first receipt) over the group", p.QueueMsgs),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.queueGroup(ctx, t, 4, "16", p.QueueMsgs)
			},
		},
		{
			Key: "stuck-sub",
			Metrics: []MetricSpec{
				{Name: "healthy subscriber beside a stuck one, % of its rate alone", Unit: UnitPercent},
			},
			How: fmt.Sprintf("on one server, pub → sub 1:1 as above (`--size 16 --msgs %d`) twice: alone (rate R0), then with a second subscriber of the same subject on a raw TCP connection (64 KiB SO_RCVBUF) that sends `CONNECT`, `SUB`, `PING`, reads the `PONG` and never reads again (rate R1); value = 100 × R1 / R0, so the ratio column compares the two servers' percentages. The healthy subscriber must still get every message", p.StuckSubMsgs),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.besideStuck(ctx, t, p.StuckSubMsgs)
			},
		},
		{
			Key: "reqrep-16B",
			Metrics: []MetricSpec{
				{Name: "request/reply p50 latency, 16 B", Unit: UnitMicros, LowerIsBetter: true},
				{Name: "request/reply p99 latency, 16 B", Unit: UnitMicros, LowerIsBetter: true},
			},
			How: fmt.Sprintf("`nats bench service serve bench.svc` (a micro service, queue group `q`) and `nats bench service request bench.svc --size 16 --msgs %d`: one client, sequential requests; natscli's P50/P99", p.Requests),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.requestReply(ctx, t, p.Requests)
			},
		},
		{
			Key: "idle-conns",
			Metrics: []MetricSpec{
				{Name: fmt.Sprintf("RSS with %s idle connections", thousands(p.IdleConns)), Unit: UnitBytes, LowerIsBetter: true},
				{Name: "RSS per idle connection", Unit: UnitBytes, LowerIsBetter: true},
			},
			How: fmt.Sprintf("raw TCP clients from the harness each send `CONNECT {\"verbose\":false}` + `PING` and wait for `PONG`; after %s, VmRSS of the server from /proc; per connection = (RSS − RSS before connecting) / %d", p.IdleSettle, p.IdleConns),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.idleConnections(ctx, t, p.IdleConns, p.IdleSettle)
			},
		},
		{
			Key: "jwt-connect", Metrics: []MetricSpec{{Name: "connect + close with a user JWT (.creds)", Unit: UnitConnRate}},
			Auth: true,
			How:  fmt.Sprintf("operator mode with a MEMORY resolver (Switchyard: authsvc beside the frontdoor, same file); %d nats.go connections with `nats.UserCredentials`, 4 at a time, each connected (nonce signed, JWT checked, PING/PONG) and closed; connections / elapsed", p.JWTConnects),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.connectRate(ctx, t, 4, p.JWTConnects, nats.UserCredentials(t.Creds))
			},
		},
		{
			Key: "perm-pub-16B", Metrics: rate("publish only, 16 B, JWT user with publish permissions"),
			Auth: true,
			How:  fmt.Sprintf("as publish only, 16 B (`--msgs %d`), connected with `--creds` as a JWT user whose publish permissions allow `bench.>` and `_INBOX.>` and deny `bench.denied.>`", p.PermPubMsgs16),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				hc := *h
				hc.CLI.Creds = t.Creds
				return hc.publishOnly(ctx, t, "16", p.PermPubMsgs16)
			},
		},
		{
			Key: "tls-pubsub-16B", Metrics: rate("pub → sub 1:1 over TLS, 16 B"),
			TLS: true,
			How: fmt.Sprintf("as pub → sub 1:1, 16 B (`--msgs %d`), against a server whose client port requires TLS (`tls { cert_file, key_file }`, an ECDSA P-256 certificate; TLS 1.3), natscli trusting its CA with `--tlsca`", p.TLSPubSubMsgs16),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				hc := *h
				hc.CLI.CA = t.CA
				return hc.publishSubscribe(ctx, t, 1, "16", p.TLSPubSubMsgs16)
			},
		},
		{
			Key: "tls-connect", Metrics: []MetricSpec{{Name: "connect + close over TLS (handshakes)", Unit: UnitConnRate}},
			TLS: true,
			How: fmt.Sprintf("the TLS server above; %d nats.go connections with `nats.RootCAs`, 4 at a time, each connected (TLS handshake, INFO, CONNECT, PING/PONG) and closed; connections / elapsed", p.TLSConnects),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.connectRate(ctx, t, 4, p.TLSConnects, nats.RootCAs(t.CA))
			},
		},
		{
			Key: "ws-pubsub-16B", Metrics: rate("pub → sub 1:1 over WebSocket, 16 B"),
			WebSocket: true,
			How:       fmt.Sprintf("as pub → sub 1:1, 16 B (`--msgs %d`), both natscli clients connected to the server's WebSocket listener with a ws:// URL (`websocket { port, no_tls: true }`, no compression)", p.WSPubSubMsgs16),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.publishSubscribe(ctx, t.overWebSocket(), 1, "16", p.WSPubSubMsgs16)
			},
		},
		{
			Key: "npubsub-16B", Metrics: rate("pub → sub 1:1, 16 B, both on node A of a cluster"),
			Cluster: true,
			How:     fmt.Sprintf("as pub → sub 1:1, 16 B (`--msgs %d`), with publisher and subscriber both connected to node A of a two-node cluster: what same-node traffic costs once the node is clustered (Switchyard: attached to a router, with a mesh peer)", p.PubSubMsgs16),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				local := *t
				local.Sub = t.Pub
				return h.publishSubscribe(ctx, &local, 1, "16", p.PubSubMsgs16)
			},
		},
		{
			Key: "xpubsub-16B", Metrics: rate("cross-node pub → sub 1:1, 16 B"),
			Cluster: true,
			How:     fmt.Sprintf("on a two-node cluster, `nats bench sub bench.sub --size 16 --msgs %d` connected to node B, then `nats bench pub` of the same connected to node A; subscriber's received msgs/sec", p.XPubSubMsgs16),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.publishSubscribe(ctx, t, 1, "16", p.XPubSubMsgs16)
			},
		},
		{
			Key: "xpubsub-1KB", Metrics: rate("cross-node pub → sub 1:1, 1 KiB"),
			Cluster: true,
			How:     fmt.Sprintf("as above with `--size 1KB --msgs %d` (about 50 MiB: nats-server does not pace a publisher to a subscriber on another node and cuts a backlog past 64 MiB)", p.XPubSubMsgs1K),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.publishSubscribe(ctx, t, 1, "1KB", p.XPubSubMsgs1K)
			},
		},
		{
			Key: "xreqrep-16B",
			Metrics: []MetricSpec{
				{Name: "cross-node request/reply p50 latency, 16 B", Unit: UnitMicros, LowerIsBetter: true},
				{Name: "cross-node request/reply p99 latency, 16 B", Unit: UnitMicros, LowerIsBetter: true},
			},
			Cluster: true,
			How:     fmt.Sprintf("on a two-node cluster, `nats bench service serve bench.svc` connected to node B and `nats bench service request bench.svc --size 16 --msgs %d` connected to node A: one client, sequential requests; natscli's P50/P99", p.Requests),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.requestReply(ctx, t, p.Requests)
			},
		},
		{
			Key: "js-pub-async", Metrics: rate("JetStream async publish, 128 B (Switchyard: fsync before ack; nats-server: default 2 min sync)"),
			JetStream: JetStreamDefault,
			How:       fmt.Sprintf("`nats bench js pub async bench.js --create --storage file --size 128 --msgs %d --purge` (natscli's default: up to 500 PubAcks outstanding) into a new file-backed stream; nats-server with `-js -sd DIR`, whose default `sync_interval` fsyncs every 2 minutes, so it acknowledges before the disk has the message and Switchyard after; publisher's msgs/sec", p.JSPubAsyncMsgs),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.jsPublish(ctx, t, "async", p.JSPubAsyncMsgs)
			},
		},
		{
			Key: "js-pub-sync", Metrics: rate("JetStream sync publish, 128 B (both fsync before ack: nats-server sync_interval: always)"),
			JetStream: JetStreamSyncAlways,
			How:       fmt.Sprintf("`nats bench js pub sync bench.js --create --storage file --size 128 --msgs %d --purge`: one publish at a time, each waiting for its PubAck; nats-server configured with `jetstream { store_dir: DIR, sync_interval: always }`, so both sides fsync before every acknowledgement; publisher's msgs/sec", p.JSPubSyncMsgs),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.jsPublish(ctx, t, "sync", p.JSPubSyncMsgs)
			},
		},
		{
			Key: "js-pub-sync-lazy", Metrics: rate("JetStream sync publish, 128 B (Switchyard: fsync before ack; nats-server: default 2 min sync)"),
			JetStream: JetStreamDefault,
			How:       fmt.Sprintf("as above (`--msgs %d`) against nats-server's default `-js -sd DIR` (fsync every 2 minutes): what Switchyard's per-ack fsync costs against the reference as most deploy it", p.JSPubSyncMsgs),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.jsPublish(ctx, t, "sync", p.JSPubSyncMsgs)
			},
		},
		{
			Key: "js-consume", Metrics: rate("JetStream durable consumer, callback, explicit ack, 128 B (nats-server: default 2 min sync)"),
			JetStream: JetStreamDefault,
			How:       fmt.Sprintf("a new file-backed stream filled with %d messages of 128 B by `nats bench js pub async` (not measured), then `nats bench js consume --acks explicit --msgs %d`: natscli's durable consumer `nats-bench`, delivering to a callback (up to 500 buffered) and acknowledging each message; consumer's msgs/sec; nats-server with `-js -sd DIR`", p.JSConsumeMsgs, p.JSConsumeMsgs),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.jsConsume(ctx, t, "consume", p.JSConsumeMsgs)
			},
		},
		{
			Key: "js-fetch", Metrics: rate("JetStream durable consumer, fetch, explicit ack, 128 B (nats-server: default 2 min sync)"),
			JetStream: JetStreamDefault,
			How:       fmt.Sprintf("as above with `nats bench js fetch --acks explicit --msgs %d`: the durable consumer pulled in fetches of 500", p.JSFetchMsgs),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.jsConsume(ctx, t, "fetch", p.JSFetchMsgs)
			},
		},
		{
			Key: "js-ordered", Metrics: rate("JetStream ordered consumer, 128 B (nats-server: default 2 min sync)"),
			JetStream: JetStreamDefault,
			How:       fmt.Sprintf("a new file-backed stream filled with %d messages of 128 B by `nats bench js pub async` (not measured), then `nats bench js ordered --msgs %d`: natscli's ordered ephemeral consumer; consumer's msgs/sec", p.JSOrderedMsgs, p.JSOrderedMsgs),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.jsOrdered(ctx, t, p.JSOrderedMsgs)
			},
		},
		{
			Key: "kv-put", Metrics: rate("KV put, 128 B (Switchyard: fsync before ack; nats-server: default 2 min sync)"),
			JetStream: JetStreamDefault,
			How:       fmt.Sprintf("`nats bench kv put --size 128 --msgs %d`: natscli creates the file-backed bucket and puts one key after another, each awaited; nats-server with `-js -sd DIR`", p.KVPutMsgs),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.kvBench(ctx, t, "put", p.KVPutMsgs)
			},
		},
		{
			Key: "kv-put-always", Metrics: rate("KV put, 128 B (both fsync before ack: nats-server sync_interval: always)"),
			JetStream: JetStreamSyncAlways,
			How:       fmt.Sprintf("as above (`--msgs %d`) against nats-server with `sync_interval: always`", p.KVPutMsgs),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.kvBench(ctx, t, "put", p.KVPutMsgs)
			},
		},
		{
			Key: "kv-get", Metrics: rate("KV get, 128 B"),
			JetStream: JetStreamDefault,
			How:       fmt.Sprintf("`nats bench kv put --msgs %d` (not measured), then `nats bench kv get --size 128 --msgs %d`: one get after another, each awaited (nats.go gets by direct get)", p.KVGetMsgs, p.KVGetMsgs),
			Run: func(ctx context.Context, h *Harness, t *Topology) ([]float64, error) {
				return h.kvBench(ctx, t, "get", p.KVGetMsgs)
			},
		},
	}
}

func (h *Harness) publishOnly(ctx context.Context, t *Topology, size string, msgs int) ([]float64, error) {
	out, _, err := h.CLI.Run(ctx, t.Pub.URL(), "pub", "bench.pub", "--size", size, "--msgs", countArg(msgs))
	if err != nil {
		return nil, err
	}
	r, err := ParseRate(out)
	return []float64{r}, err
}

// publishSubscribe runs one natscli subscriber process with `clients`
// connections on the subscriber's node, waits until that node has their
// subscriptions (and, across nodes, until the interest has reached the
// publisher's node), then publishes from the publisher's node. The
// subscriber's rate is measured from its first to its last message, so it
// is the rate the servers delivered.
func (h *Harness) publishSubscribe(ctx context.Context, t *Topology, clients int, size string, msgs int) ([]float64, error) {
	const subject = pubSubSubject
	base, baseErr := t.Sub.Subscriptions(ctx)
	sub, err := h.CLI.Start(t.Sub.URL(), "sub", subject, "--clients", countArg(clients), "--size", size, "--msgs", countArg(msgs))
	if err != nil {
		return nil, err
	}
	defer sub.Kill()
	if err := h.waitForInterest(ctx, t.Sub, base, baseErr, clients, sub); err != nil {
		return nil, err
	}
	if err := t.awaitCrossInterest(ctx); err != nil {
		return nil, err
	}
	_, took, err := h.CLI.Run(ctx, t.Pub.URL(), "pub", subject, "--size", size, "--msgs", countArg(msgs))
	if err != nil {
		return nil, err
	}
	if err := sub.Wait(ctx, drainGrace(took, h.CLI.Timeout)); err != nil {
		return nil, fmt.Errorf("subscriber did not receive all %d messages (lost messages? slow-consumer disconnect?): %w%s%s", msgs, err, t.aliveNote(), t.slowConsumerNote())
	}
	r, err := ParseRate(sub.Stdout())
	return []float64{r}, err
}

// pubSubSubject is where publishSubscribe publishes.
const pubSubSubject = "bench.sub"

// besideStuck measures how much a subscriber that never reads slows a healthy
// subscriber of the same subject: the healthy rate beside the stuck one as a
// percentage of the rate alone, both on the same server. A server that lets
// the stuck consumer's backlog stall the publisher scores low; the run stays
// bounded because publishSubscribe fails a publisher past -timeout and a
// subscriber still short of messages after the drain grace.
func (h *Harness) besideStuck(ctx context.Context, t *Topology, msgs int) ([]float64, error) {
	alone, err := h.publishSubscribe(ctx, t, 1, "16", msgs)
	if err != nil {
		return nil, fmt.Errorf("subscriber alone: %w", err)
	}
	stuck, err := stuckSubscriber(t.Sub.Addr(), pubSubSubject)
	if err != nil {
		return nil, fmt.Errorf("%w%s", err, t.aliveNote())
	}
	defer stuck.Close()
	beside, err := h.publishSubscribe(ctx, t, 1, "16", msgs)
	if err != nil {
		return nil, fmt.Errorf("subscriber beside a stuck one: %w", err)
	}
	fmt.Fprintf(h.Log, "  %s: healthy subscriber alone %s, beside a stuck one %s\n", t.Side,
		formatValue(UnitRate, alone[0]), formatValue(UnitRate, beside[0]))
	return []float64{100 * beside[0] / alone[0]}, nil
}

// drainGrace is how long subscribers may keep receiving after the publisher
// is done: a server may buffer a lot for a slower subscriber, but a
// subscriber that is still short of messages well after that has lost some
// and would wait forever.
func drainGrace(publishTook, limit time.Duration) time.Duration {
	return min(max(15*time.Second, 3*publishTook), limit)
}

// waitForInterest blocks until the server counts `want` more subscriptions
// than before the subscriber started. natscli's subscriber prints nothing
// until it is done, so the server's /varz is the only witness. Without a
// usable /varz we fall back to a fixed pause and say so once.
func (h *Harness) waitForInterest(ctx context.Context, s *Server, base int, baseErr error, want int, sub *Process) error {
	if baseErr != nil {
		// preflight already warned about this server's /varz.
		return sleepCtx(ctx, time.Second)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := s.Subscriptions(ctx)
		if err == nil && n >= base+want {
			return nil
		}
		if sub.Exited() {
			return fmt.Errorf("%s exited before subscribing: %v%s", sub.name, sub.waitErr, sub.stderrTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server did not report %d new subscription(s) within 10s (/varz subscriptions %d → %d, err %v)", want, base, n, err)
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

// requestReply runs natscli's service on the subscriber's node and its
// sequential requester on the publisher's node.
func (h *Harness) requestReply(ctx context.Context, t *Topology, requests int) ([]float64, error) {
	const subject = "bench.svc"
	serve, err := h.CLI.Start(t.Sub.URL(), "service", "serve", subject)
	if err != nil {
		return nil, err
	}
	defer serve.Kill()
	// Probing from the requester's node also proves, across nodes, that the
	// service's interest has reached it.
	if err := waitForResponder(ctx, t.Pub, subject, serve); err != nil {
		return nil, fmt.Errorf("%w%s", err, t.aliveNote())
	}
	// natscli's per-request timeout defaults to 5s; on a busy 2-core machine we
	// saw a rare request exceed it and fail the whole round, so allow 20s: a
	// truly lost reply still fails, a slow one only moves the tail.
	out, _, err := h.CLI.Run(ctx, t.Pub.URL(), "service", "request", subject, "--size", "16", "--msgs", countArg(requests), "--timeout", "20s")
	if err != nil {
		// A timed-out request may be the responder's fault: show its side too.
		return nil, fmt.Errorf("%w%s%s", err, serve.stderrTail(), t.aliveNote())
	}
	p50, p99, err := ParseLatency(out)
	return []float64{p50, p99}, err
}

// aliveNote adds the server's stderr to an error when the server itself died.
func (s *Server) aliveNote() string {
	if err := s.checkAlive(); err != nil {
		return "\n  " + err.Error()
	}
	return ""
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// thousands formats 10000 as "10,000" for row names.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
