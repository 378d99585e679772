package node

import (
	"context"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/switchyard-io/switchyard/pkg/config"
	"github.com/switchyard-io/switchyard/pkg/subject"
	routerv1 "github.com/switchyard-io/switchyard/proto/switchyard/router/v1"
)

// routing attaches the frontdoor to every router replica (see
// docs/architecture.md): it sends each router this frontdoor's interest and
// learns from it the other nodes' interest and mesh addresses. Messages
// some other node wants go to it directly over the mesh (mesh.go), matched
// against the interest reported by the primary router (the first replica
// in the configured order that is up).
type routing struct {
	srv     *Server
	nodeID  string
	targets []string // as configured: host:port, names allowed
	// mu guards links (and each link's nodes) and orders local trie
	// changes with interest deltas and snapshots.
	mu      sync.Mutex
	links   []*routerLink
	primary atomic.Pointer[routerLink]
	members atomic.Pointer[memberURLs]
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	meshLn  net.Listener
	meshURL string                           // what other nodes dial
	peers   atomic.Pointer[map[string]*peer] // by node id; replaced, never modified
	inbound sync.Map                         // *inboundPeer, for monitoring
	replies replyRoutes
	hints   interestHints // subscriptions other nodes announced over the mesh

	// advertiseGen counts changes of ownClientURLs; a router stream that
	// sent an older generation sends Advertise.
	advertiseGen atomic.Uint64

	// Interest this node has on behalf of local stream importers (guarded
	// by mu): counted into snapshots like subscriptions.
	importInterest map[interestKey]int32
}

// routerLink is the stream to one router replica.
type routerLink struct {
	rt     *routing
	addr   string // resolved host:port
	target string // the configured address it came from
	up     atomic.Bool
	cancel context.CancelFunc

	// Remote interest as this router reports it, summed per node, in one
	// trie per account (remotes: name -> *subject.Sublist[remoteSub]).
	remotes sync.Map
	entries map[remoteKey]*remoteSub // recv goroutine only

	nodes []*routerv1.Node // the attached nodes this router lists; guarded by routing.mu

	mu       sync.Mutex
	interest map[interestKey]int32 // local changes not yet sent
	wake     chan struct{}
}

type interestKey struct{ account, subject, queue string }
type remoteKey struct{ node, account, subject, queue string }

// remoteSub is another node's interest in one subject (and queue group)
// of one account.
type remoteSub struct {
	node, account, subject, queue string
	count                         int32
}

// remoteFor returns the remote-interest trie of an account, made empty
// when new so that publishers can cache it before any interest arrives.
func (l *routerLink) remoteFor(account string) *subject.Sublist[remoteSub] {
	if sl, ok := l.remotes.Load(account); ok {
		return sl.(*subject.Sublist[remoteSub])
	}
	sl, _ := l.remotes.LoadOrStore(account, subject.NewSublist[remoteSub]())
	return sl.(*subject.Sublist[remoteSub])
}

// resolveInterval is how often router names are looked up again, so a
// Kubernetes headless Service (one A record per replica) is followed as
// replicas come and go.
const resolveInterval = 30 * time.Second

func newRouting(s *Server, targets []string) *routing {
	rt := &routing{srv: s, nodeID: s.id, targets: targets}
	rt.peers.Store(&map[string]*peer{})
	return rt
}

func (rt *routing) start() error {
	ctx, cancel := context.WithCancel(context.Background())
	rt.ctx, rt.cancel = ctx, cancel
	url, err := rt.startMesh()
	if err != nil {
		cancel()
		return err
	}
	rt.meshURL = url
	rt.srv.log.Infof("Listening for mesh connections from other nodes on %s (advertised as %s)", rt.meshLn.Addr(), url)
	rt.reconcile(ctx)
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		every(ctx, resolveInterval, func() { rt.reconcile(ctx) })
	}()
	return nil
}

func (rt *routing) stop() {
	rt.cancel()
	rt.meshLn.Close()
	rt.wg.Wait()
}

// resolve expands the configured targets into one address per replica: a
// name resolving to several addresses (a headless Service) is several
// replicas. A name that does not resolve now keeps the addresses it had
// (current maps address to target).
func (rt *routing) resolve(ctx context.Context, current map[string]string) map[string]string {
	out := map[string]string{}
	for _, target := range rt.targets {
		host, port, err := net.SplitHostPort(target)
		if err != nil || net.ParseIP(host) != nil {
			out[target] = target
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ips, err := net.DefaultResolver.LookupHost(lctx, host)
		cancel()
		if err != nil || len(ips) == 0 {
			rt.srv.log.Warnf("Router address %s does not resolve now (%v); keeping its current links", target, err)
			for a, t := range current {
				if t == target {
					out[a] = t
				}
			}
			continue
		}
		for _, ip := range ips {
			out[net.JoinHostPort(ip, port)] = target
		}
	}
	return out
}

// reconcile starts links to new router addresses and stops links to
// addresses that are gone. Links keep the order of the configured targets,
// which decides the primary.
func (rt *routing) reconcile(ctx context.Context) {
	rt.mu.Lock()
	current := map[string]string{}
	for _, l := range rt.links {
		current[l.addr] = l.target
	}
	rt.mu.Unlock()
	want := rt.resolve(ctx, current)

	rt.mu.Lock()
	var kept []*routerLink
	for _, l := range rt.links {
		if _, ok := want[l.addr]; ok {
			kept = append(kept, l)
			continue
		}
		rt.srv.log.Infof("Router %s (%s) is gone; detaching", l.addr, l.target)
		l.cancel()
	}
	rt.links = kept
	var added []string
	for a := range want {
		if _, ok := current[a]; !ok {
			added = append(added, a)
		}
	}
	sort.Strings(added)
	for _, a := range added {
		l := &routerLink{rt: rt, addr: a, target: want[a],
			entries: map[remoteKey]*remoteSub{}, interest: map[interestKey]int32{}, wake: make(chan struct{}, 1)}
		lctx, cancel := context.WithCancel(ctx)
		l.cancel = cancel
		rt.links = append(rt.links, l)
		rt.wg.Add(1)
		go func() { defer rt.wg.Done(); l.run(lctx) }()
	}
	order := map[string]int{}
	for i, t := range rt.targets {
		order[t] = i
	}
	sort.SliceStable(rt.links, func(i, j int) bool { return order[rt.links[i].target] < order[rt.links[j].target] })
	rt.mu.Unlock()
	rt.choosePrimary()
}

// choosePrimary makes the first link that is up the message path.
func (rt *routing) choosePrimary() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, l := range rt.links {
		if l.up.Load() {
			if rt.primary.Swap(l) != l {
				rt.srv.log.Infof("Using router %s for remote interest (primary)", l.addr)
			}
			return
		}
	}
	rt.primary.Store(nil)
}

// subChanged records a local subscription change for every router; the
// trie change itself happens inside, under rt.mu, so a snapshot never
// counts a subscription twice or misses one.
func (rt *routing) subChanged(sub *subscription, delta int32, apply func() bool) {
	rt.mu.Lock()
	if !apply() {
		rt.mu.Unlock()
		return
	}
	rt.interestChanged(interestKey{sub.acc.name, sub.subject, sub.queue}, delta)
	rt.mu.Unlock()
}

// interestChanged queues one change for every router. Caller holds mu.
func (rt *routing) interestChanged(k interestKey, delta int32) {
	for _, l := range rt.links {
		l.mu.Lock()
		if l.interest[k] += delta; l.interest[k] == 0 {
			delete(l.interest, k)
		}
		l.mu.Unlock()
		l.signal()
	}
}

// setImportInterest replaces the interest held for local stream importers.
func (rt *routing) setImportInterest(want map[interestKey]int32) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for k, n := range rt.importInterest {
		if d := want[k] - n; d != 0 {
			rt.interestChanged(k, d)
		}
	}
	for k, n := range want {
		if _, had := rt.importInterest[k]; !had {
			rt.interestChanged(k, n)
		}
	}
	rt.importInterest = want
}

// snapshot counts local interest and resets l's pending changes, atomically
// with respect to subChanged.
func (rt *routing) snapshot(l *routerLink) *routerv1.Interest {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	counts := map[interestKey]int32{}
	for _, a := range rt.srv.allAccounts() {
		a.sublist.All(func(s *subscription) { counts[interestKey{a.name, s.subject, s.queue}]++ })
	}
	for k, n := range rt.importInterest {
		counts[k] += n
	}
	l.mu.Lock()
	clear(l.interest)
	l.mu.Unlock()
	in := &routerv1.Interest{Snapshot: true}
	for k, n := range counts {
		in.Entries = append(in.Entries, &routerv1.InterestEntry{Account: k.account, Subject: k.subject, Queue: k.queue, Delta: n})
	}
	return in
}

func (l *routerLink) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run keeps the stream to one router up, reconnecting with backoff.
func (l *routerLink) run(ctx context.Context) {
	log := l.rt.srv.log
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := l.session(ctx)
		if ctx.Err() != nil {
			return
		}
		log.Warnf("Router %s: %v; retrying in %v", l.addr, err, backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// session runs one Attach stream until it fails.
func (l *routerLink) session(ctx context.Context) error {
	conn, err := grpc.NewClient(l.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		// One relayed message may be as large as max_payload (up to 64 MB).
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)),
		// Large HTTP/2 windows: this one stream carries all cross-frontdoor
		// traffic, and the default 64 KB window stalls it.
		grpc.WithInitialWindowSize(4<<20), grpc.WithInitialConnWindowSize(8<<20))
	if err != nil {
		return err
	}
	defer conn.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := routerv1.NewRouterClient(conn).Attach(sctx)
	if err != nil {
		return err
	}
	advertised := l.rt.advertiseGen.Load()
	hello := &routerv1.Hello{NodeId: l.rt.nodeID, NodeName: l.rt.srv.name, Kind: l.rt.srv.kind,
		ClientUrls: l.rt.srv.ownClientURLs(), WsUrls: l.rt.srv.ownWSURLs(), ApiVersions: []string{"v1"}, MeshUrl: l.rt.meshURL}
	if err := stream.Send(&routerv1.NodeFrame{Frame: &routerv1.NodeFrame_Hello{Hello: hello}}); err != nil {
		return err
	}
	if err := stream.Send(&routerv1.NodeFrame{Frame: &routerv1.NodeFrame_Interest{Interest: l.rt.snapshot(l)}}); err != nil {
		return err
	}
	recvErr := make(chan error, 1)
	go func() { recvErr <- l.receive(stream) }()
	receiving := true
	defer func() {
		// Stop the receiver before touching what it owns (the remote table).
		cancel()
		if receiving {
			<-recvErr
		}
		l.up.Store(false)
		l.rt.choosePrimary()
		l.rt.syncPeers()
		l.clearRemote()
	}()
	for {
		select {
		case err := <-recvErr:
			receiving = false
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-l.wake:
		}
		if gen := l.rt.advertiseGen.Load(); gen != advertised {
			advertised = gen
			adv := &routerv1.Advertise{ClientUrls: l.rt.srv.ownClientURLs(), WsUrls: l.rt.srv.ownWSURLs()}
			if err := stream.Send(&routerv1.NodeFrame{Frame: &routerv1.NodeFrame_Advertise{Advertise: adv}}); err != nil {
				return err
			}
		}
		if err := l.sendPending(stream); err != nil {
			return err
		}
	}
}

func (l *routerLink) sendPending(stream grpc.BidiStreamingClient[routerv1.NodeFrame, routerv1.RouterFrame]) error {
	l.mu.Lock()
	if len(l.interest) == 0 {
		l.mu.Unlock()
		return nil
	}
	in := &routerv1.Interest{}
	for k, d := range l.interest {
		in.Entries = append(in.Entries, &routerv1.InterestEntry{Account: k.account, Subject: k.subject, Queue: k.queue, Delta: d})
	}
	clear(l.interest)
	l.mu.Unlock()
	return stream.Send(&routerv1.NodeFrame{Frame: &routerv1.NodeFrame_Interest{Interest: in}})
}

func (l *routerLink) receive(stream grpc.BidiStreamingClient[routerv1.NodeFrame, routerv1.RouterFrame]) error {
	for {
		f, err := stream.Recv()
		if err != nil {
			return err
		}
		switch fr := f.Frame.(type) {
		case *routerv1.RouterFrame_Welcome:
			l.rt.srv.log.Infof("Attached to router %s (%s)", l.addr, fr.Welcome.RouterId)
			l.up.Store(true)
			l.rt.choosePrimary()
		case *routerv1.RouterFrame_Interest:
			l.applyInterest(fr.Interest)
		case *routerv1.RouterFrame_Members:
			l.rt.mu.Lock()
			l.nodes = fr.Members.Nodes
			l.rt.mu.Unlock()
			l.rt.syncPeers()
			l.rt.setMembers(fr.Members)
		}
	}
}

func (l *routerLink) applyInterest(in *routerv1.Interest) {
	if in.Snapshot {
		l.clearRemote()
	}
	for _, e := range in.Entries {
		k := remoteKey{e.NodeId, e.Account, e.Subject, e.Queue}
		rs := l.entries[k]
		if rs == nil {
			if e.Delta <= 0 || !subject.ValidSubscribe([]byte(e.Subject)) || e.Account == "" {
				continue
			}
			rs = &remoteSub{node: e.NodeId, account: e.Account, subject: e.Subject, queue: e.Queue}
			l.entries[k] = rs
			l.remoteFor(rs.account).Insert(rs.subject, rs.queue, rs)
		}
		if rs.count += e.Delta; rs.count <= 0 {
			delete(l.entries, k)
			l.remoteFor(rs.account).Remove(rs.subject, rs.queue, rs)
		}
	}
}

func (l *routerLink) clearRemote() {
	for k, rs := range l.entries {
		l.remoteFor(rs.account).Remove(rs.subject, rs.queue, rs)
		delete(l.entries, k)
	}
}

// memberURLs are the URLs of every frontdoor, as the primary router
// lists them: for TCP clients and for WebSocket clients.
type memberURLs struct{ client, ws []string }

func (rt *routing) setMembers(m *routerv1.Members) {
	rt.members.Store(&memberURLs{client: slices.Clone(m.ClientUrls), ws: slices.Clone(m.WsUrls)})
	rt.srv.sendInfoToClients()
}

// ownClientURLs is what this frontdoor advertises to clients of the others.
// client_advertise without a port takes the client port, as in
// nats-server; with client_advertise_probe the port is the one the probe
// found, and nothing is advertised before it has.
func (s *Server) ownClientURLs() []string {
	cfg := s.Config()
	if cfg.NoAdvertise || s.isNode() {
		return nil
	}
	host, port := s.advertise()
	host, port, known := probed(host, port, cfg.ClientAdvertise, cfg.ClientAdvertiseProbe, &s.probedPort)
	if !known {
		return nil
	}
	if cfg.ClientAdvertise != "" {
		if _, _, err := net.SplitHostPort(cfg.ClientAdvertise); err == nil {
			return []string{cfg.ClientAdvertise}
		}
		host = strings.Trim(cfg.ClientAdvertise, "[]")
	}
	return []string{advertisable(host, port)}
}

// ownWSURLs is what this frontdoor advertises to WebSocket clients of the
// others: websocket {}'s advertise, else its listener; with advertise_probe
// the port found, and nothing before it is.
func (s *Server) ownWSURLs() []string {
	cfg := s.Config()
	if cfg.NoAdvertise || s.isNode() || !cfg.WebSocket.Enabled() {
		return nil
	}
	host, port := s.wsAdvertise()
	host, port, known := probed(host, port, cfg.WebSocket.Advertise, cfg.WebSocket.AdvertiseProbe, &s.probedWSPort)
	if !known {
		return nil
	}
	return []string{advertisable(host, port)}
}

// probed applies an advertise probe (spec; none: host and port stand): the
// port it found, and its host when advertise names none; known is false
// until it has found one.
func probed(host string, port int, advertise, spec string, found *atomic.Int32) (string, int, bool) {
	if spec == "" {
		return host, port, true
	}
	p := found.Load()
	if p == 0 {
		return "", 0, false
	}
	if advertise == "" {
		host, _, _, _ = config.ParseProbe(spec)
	}
	return host, int(p), true
}

// advertisable is host:port as other machines reach it: a listener on
// every interface is shown at the first address that is not loopback.
func advertisable(host string, port int) string {
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = firstNonLoopbackIP()
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// readvertise has every router link send this frontdoor's client URLs
// again (they changed: a reload, or the advertise probe found the port).
func (rt *routing) readvertise() {
	rt.advertiseGen.Add(1)
	rt.mu.Lock()
	links := rt.links
	rt.mu.Unlock()
	for _, l := range links {
		l.signal()
	}
}

func firstNonLoopbackIP() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	return "127.0.0.1"
}

// every calls fn each interval until ctx ends.
func every(ctx context.Context, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
