package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Binaries is what one side runs.
type Binaries struct {
	Server string // nats-server compatible broker (-a/-p/-m)
	// Router is Switchyard's router, which the two nodes of a cross-node
	// workload attach to (--routers). Empty: the server clusters itself the
	// nats-server way (--cluster, --cluster_name, --routes).
	Router string
	// Authsvc is Switchyard's authsvc, started beside the server for the
	// authenticated workloads. Empty: the server authenticates itself.
	Authsvc string
	// Streamsvc is Switchyard's JetStream service, attached with the server
	// to a Router for the JetStream workloads. Empty: the server runs
	// JetStream itself (-js).
	Streamsvc string
}

// Topology is what one measurement runs against: a single server, or two
// nodes of a cluster with publishers and requesters on node A and
// subscribers and responders on node B. A single-server topology has
// Pub == Sub, so every workload is written once, against Pub and Sub.
type Topology struct {
	Side string
	Pub  *Server // where publishers and requesters connect
	Sub  *Server // where subscribers and responders connect
	// Authenticated topologies: the user's .creds file and Switchyard's
	// authsvc.
	Creds   string
	authsvc *Process
	// TLS topologies: the CA that signed the server's certificate.
	CA string
	// WebSocket topologies: the ws:// URL of the server's WebSocket
	// listener.
	WebSocketURL string
	// JetStream topologies: Switchyard's streamsvc.
	streamsvc *Process
	// cleanup removes what the topology wrote to disk (credentials, a
	// JetStream store) once every process is gone.
	cleanup func()

	router      *Process // Switchyard's router, when the topology has one
	routerMonit int      // its monitoring port
}

// Cross reports whether publisher and subscriber are on different nodes.
func (t *Topology) Cross() bool { return t.Pub != t.Sub }

// Stop kills every process of the topology; safe on a half-built one.
func (t *Topology) Stop() {
	for _, s := range t.servers() {
		s.Stop()
	}
	for _, p := range t.services() {
		p.Kill()
	}
	if t.cleanup != nil {
		t.cleanup()
	}
}

// services are the processes beside the servers: router, authsvc,
// streamsvc, whichever the topology has.
func (t *Topology) services() []*Process {
	var out []*Process
	for _, p := range []*Process{t.authsvc, t.streamsvc, t.router} {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

func (t *Topology) servers() []*Server {
	var out []*Server
	if t.Pub != nil {
		out = append(out, t.Pub)
	}
	if t.Sub != nil && t.Sub != t.Pub {
		out = append(out, t.Sub)
	}
	return out
}

// checkAlive turns "a server (or a service beside it) died mid-measurement"
// into an error with its stderr.
func (t *Topology) checkAlive() error {
	var errs []error
	for _, s := range t.servers() {
		errs = append(errs, s.checkAlive())
	}
	for _, p := range t.services() {
		if p.Exited() {
			errs = append(errs, fmt.Errorf("%s exited during the measurement%s", p.name, p.stderrTail()))
		}
	}
	return errors.Join(errs...)
}

// aliveNote adds the stderr of whatever died to an error.
func (t *Topology) aliveNote() string {
	if err := t.checkAlive(); err != nil {
		return "\n  " + err.Error()
	}
	return ""
}

// slowConsumerNote quotes the last lines in which a server (or the router)
// said it cut a slow consumer, so a failed delivery says who dropped what.
func (t *Topology) slowConsumerNote() string {
	procs := []*Process{}
	for _, s := range t.servers() {
		procs = append(procs, s.proc)
	}
	if t.router != nil {
		procs = append(procs, t.router)
	}
	var note []string
	for _, p := range procs {
		var hits []string
		for _, line := range strings.Split(p.stderr.String()+"\n"+p.stdout.String(), "\n") {
			if strings.Contains(strings.ToLower(line), "slow consumer") {
				hits = append(hits, strings.TrimSpace(line))
			}
		}
		if len(hits) > 3 {
			hits = hits[len(hits)-3:]
		}
		if len(hits) > 0 {
			note = append(note, "\n  "+p.name+" reported:\n    "+strings.Join(hits, "\n    "))
		}
	}
	return strings.Join(note, "")
}

// StartSingle starts one server; it is both Pub and Sub.
func StartSingle(ctx context.Context, side, bin string) (*Topology, error) {
	s, err := StartServer(ctx, side, bin)
	if err != nil {
		return nil, err
	}
	return &Topology{Side: side, Pub: s, Sub: s}, nil
}

// StartCluster starts a two-node cluster on free loopback ports and returns
// once the nodes are connected to each other (or to the router) and their
// start-up interest exchange has settled.
func StartCluster(ctx context.Context, side string, bins Binaries) (*Topology, error) {
	t := &Topology{Side: side}
	var err error
	if bins.Router == "" {
		err = t.startRouted(ctx, bins.Server)
	} else {
		err = t.startWithRouter(ctx, bins)
	}
	if err == nil {
		err = t.settle(ctx)
	}
	if err != nil {
		t.Stop()
		return nil, err
	}
	return t, nil
}

// startRouted starts two servers routed to each other, nats-server style,
// and waits until each reports a route to the other in /routez.
func (t *Topology) startRouted(ctx context.Context, bin string) error {
	ports, err := freePorts(6) // client, monitoring and cluster port per node
	if err != nil {
		return err
	}
	nodeURL := func(i int) string { return "nats://127.0.0.1:" + strconv.Itoa(ports[3*i+2]) }
	node := func(i int, name string) (*Server, error) {
		extra := []string{"--cluster", nodeURL(i), "--cluster_name", "bench", "--routes", nodeURL(1 - i)}
		return startServer(ctx, t.Side, t.Side+" node "+name, bin, ports[3*i], ports[3*i+1], extra)
	}
	if t.Pub, err = node(0, "A"); err != nil {
		return err
	}
	if t.Sub, err = node(1, "B"); err != nil {
		return err
	}
	for _, s := range t.servers() {
		err := poll(ctx, startupTimeout, func() (bool, error) {
			if err := t.checkAlive(); err != nil {
				return false, err
			}
			var routez struct {
				NumRoutes int `json:"num_routes"`
			}
			return getJSON(ctx, s.MonitorPort, "/routez", &routez) == nil && routez.NumRoutes >= 1, nil
		})
		if err != nil {
			return fmt.Errorf("%s reports no route to the other node in /routez: %w", s.Name, err)
		}
	}
	return nil
}

// startWithRouter starts Switchyard's router and two nodes attached to it,
// and waits until the router's /nodez lists both.
func (t *Topology) startWithRouter(ctx context.Context, bins Binaries) error {
	routerAddr, err := t.startRouter(ctx, bins.Router)
	if err != nil {
		return err
	}
	ports, err := freePorts(4) // client and monitoring per node
	if err != nil {
		return err
	}
	extra := []string{"--routers", routerAddr}
	if t.Pub, err = startServer(ctx, t.Side, t.Side+" node A", bins.Server, ports[0], ports[1], extra); err != nil {
		return err
	}
	if t.Sub, err = startServer(ctx, t.Side, t.Side+" node B", bins.Server, ports[2], ports[3], extra); err != nil {
		return err
	}
	var nodez struct {
		NumNodes int `json:"num_nodes"`
	}
	err = poll(ctx, startupTimeout, func() (bool, error) {
		if err := t.checkAlive(); err != nil {
			return false, err
		}
		return getJSON(ctx, t.routerMonit, "/nodez", &nodez) == nil && nodez.NumNodes >= 2, nil
	})
	if err != nil {
		return fmt.Errorf("%s: /nodez lists %d of 2 nodes: %w%s", t.router.name, nodez.NumNodes, err, t.router.stderrTail())
	}
	return nil
}

// startRouter starts Switchyard's router on free loopback ports, waits
// until its /healthz says ok and returns the address nodes attach to.
func (t *Topology) startRouter(ctx context.Context, bin string) (string, error) {
	ports, err := freePorts(2) // for nodes, monitoring
	if err != nil {
		return "", err
	}
	args := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(ports[0]), "-m", strconv.Itoa(ports[1])}
	t.router, err = startProcess(t.Side+" router", bin, args, childEnv())
	if err != nil {
		return "", err
	}
	t.routerMonit = ports[1]
	err = poll(ctx, startupTimeout, func() (bool, error) {
		if t.router.Exited() {
			return false, fmt.Errorf("exited early (%v)", t.router.waitErr)
		}
		var health struct {
			Status string `json:"status"`
		}
		return getJSON(ctx, t.routerMonit, "/healthz", &health) == nil && health.Status == "ok", nil
	})
	if err != nil {
		return "", fmt.Errorf("%s %s %s: not healthy on /healthz: %w%s", t.router.name, bin, strings.Join(args, " "), err, t.router.stderrTail())
	}
	return "127.0.0.1:" + strconv.Itoa(ports[0]), nil
}

// settle waits until both nodes' /varz subscription counts hold still:
// nodes that have just met exchange their existing (system) interest, and a
// count still moving would fool waitForInterest's before/after comparison.
func (t *Topology) settle(ctx context.Context) error {
	const quiet = 300 * time.Millisecond
	last, since := "", time.Now()
	err := poll(ctx, startupTimeout, func() (bool, error) {
		if err := t.checkAlive(); err != nil {
			return false, err
		}
		var now []string
		for _, s := range t.servers() {
			n, err := s.Subscriptions(ctx)
			if err != nil {
				// No usable /varz: preflight has warned; nothing to settle on.
				return true, nil
			}
			now = append(now, strconv.Itoa(n))
		}
		cur := strings.Join(now, ",")
		if cur != last {
			last, since = cur, time.Now()
		}
		return time.Since(since) >= quiet, nil
	})
	if err != nil {
		return fmt.Errorf("%s cluster's /varz subscription counts did not settle (last %s): %w", t.Side, last, err)
	}
	return nil
}

// awaitCrossInterest blocks until interest registered on the subscriber's
// node has reached the publisher's node; it returns at once on a single
// server. Call it after the subscriber's subscription is confirmed on Sub.
//
// A probe subscriber on Sub subscribes to a subject of its own, after the
// workload's subscriber, and probes published on Pub go until one arrives.
// Both nodes propagate interest in order (one route or router stream per
// account), so the probe's interest reaching Pub means the workload's
// interest, registered earlier, has too. The workload's subscriber never
// sees a probe.
func (t *Topology) awaitCrossInterest(ctx context.Context) error {
	if !t.Cross() {
		return nil
	}
	subNC, err := nats.Connect(t.Sub.URL(), nats.Name("bench-probe-sub"), nats.NoReconnect())
	if err != nil {
		return fmt.Errorf("interest probe subscriber connecting to %s: %w", t.Sub.Name, err)
	}
	defer subNC.Close()
	subject := "bench.probe." + nats.NewInbox()[len(nats.InboxPrefix):]
	got := make(chan *nats.Msg, 1)
	sub, err := subNC.ChanSubscribe(subject, got)
	if err == nil {
		defer sub.Unsubscribe()
		err = subNC.FlushTimeout(5 * time.Second)
	}
	if err != nil {
		return fmt.Errorf("interest probe subscribing on %s: %w", t.Sub.Name, err)
	}
	pubNC, err := nats.Connect(t.Pub.URL(), nats.Name("bench-probe-pub"), nats.NoReconnect())
	if err != nil {
		return fmt.Errorf("interest probe publisher connecting to %s: %w", t.Pub.Name, err)
	}
	defer pubNC.Close()
	const limit = 10 * time.Second
	deadline := time.Now().Add(limit)
	for {
		if err := pubNC.Publish(subject, nil); err != nil {
			return fmt.Errorf("interest probe publishing on %s: %w", t.Pub.Name, err)
		}
		select {
		case <-got:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("interest on %s did not reach %s within %s (probes published on %s never arrived)%s",
				t.Sub.Name, t.Pub.Name, limit, subject, t.aliveNote())
		}
	}
}

// poll calls check every 20ms until it reports done, returns an error, ctx
// ends or limit passes.
func poll(ctx context.Context, limit time.Duration, check func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %s", limit)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}
