package test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

// These tests drive several frontdoors attached to router processes, as a
// nats-server cluster would be driven: exact counts under load, a queue
// member's frontdoor dying, client failover between frontdoors, interest
// churn, and a frontdoor carrying on without its router.

// clusterWait bounds the liveness waits of the heavier tests below.
const clusterWait = 30 * time.Second

const probeData = "probe"

// seq16 is a 16-byte payload carrying a sequence number.
func seq16(i int) []byte { return []byte(fmt.Sprintf("%016d", i)) }

// asyncErrs collects a connection's asynchronous errors (slow consumer on
// the client side and the like), so a short count can say why.
type asyncErrs struct {
	mu   sync.Mutex
	errs []string
}

func (a *asyncErrs) opt() nats.Option {
	return nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		subj := ""
		if s != nil {
			subj = s.Subject
		}
		a.errs = append(a.errs, fmt.Sprintf("%s: %v", subj, err))
	})
}

func (a *asyncErrs) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.errs, "; ")
}

// orderedRecv checks that one subscription sees 0, 1, 2, ... with no gap,
// repeat or reordering. Probes are counted apart.
type orderedRecv struct {
	mu     sync.Mutex
	probes int
	count  int
	next   int
	errs   []string
}

func (o *orderedRecv) handle(m *nats.Msg) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if string(m.Data) == probeData {
		o.probes++
		return
	}
	n, err := strconv.Atoi(string(m.Data))
	switch {
	case err != nil:
		o.addErr("bad payload %q", m.Data)
	case n != o.next:
		o.addErr("got sequence %d after %d messages, want %d", n, o.count, o.next)
	}
	o.next = n + 1
	o.count++
}

func (o *orderedRecv) addErr(format string, args ...any) {
	if len(o.errs) < 10 {
		o.errs = append(o.errs, fmt.Sprintf(format, args...))
	}
}

func (o *orderedRecv) state() (probes, count int, errs []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.probes, o.count, append([]string(nil), o.errs...)
}

// queueRecv collects what the members of one queue group receive.
type queueRecv struct {
	mu     sync.Mutex
	probes int
	count  int
	seen   []uint8 // deliveries per sequence number
	dups   int
	per    []int // real messages per member
	last   []int // last sequence per member
	errs   []string
}

func newQueueRecv(n, members int) *queueRecv {
	q := &queueRecv{seen: make([]uint8, n), per: make([]int, members), last: make([]int, members)}
	for i := range q.last {
		q.last[i] = -1
	}
	return q
}

func (q *queueRecv) handler(member int) nats.MsgHandler {
	return func(m *nats.Msg) {
		q.mu.Lock()
		defer q.mu.Unlock()
		if string(m.Data) == probeData {
			q.probes++
			return
		}
		n, err := strconv.Atoi(string(m.Data))
		if err != nil || n < 0 || n >= len(q.seen) {
			if len(q.errs) < 10 {
				q.errs = append(q.errs, fmt.Sprintf("member %d: bad payload %q", member, m.Data))
			}
			return
		}
		if q.seen[n]++; q.seen[n] > 1 {
			q.dups++
		}
		if n <= q.last[member] && len(q.errs) < 10 {
			q.errs = append(q.errs, fmt.Sprintf("member %d: sequence %d after %d (one publisher's order)", member, n, q.last[member]))
		}
		q.last[member] = n
		q.per[member]++
		q.count++
	}
}

func TestClusterExactCounts100k(t *testing.T) {
	const n = 100_000
	s := startSuite(t, 1, 2)
	var errsA, errsB asyncErrs
	pub := connect(t, s.fds[0], errsA.opt())
	subc := connect(t, s.fds[1], errsB.opt())
	q0c := connect(t, s.fds[1], errsB.opt())
	q1c := connect(t, s.fds[1], errsB.opt())

	var plain, wild orderedRecv
	queue := newQueueRecv(n, 2)
	subs := []*nats.Subscription{}
	sub, err := subc.Subscribe("load.x", plain.handle)
	require.NoError(t, err)
	subs = append(subs, sub)
	sub, err = subc.Subscribe("load.*", wild.handle)
	require.NoError(t, err)
	subs = append(subs, sub)
	for i, nc := range []*nats.Conn{q0c, q1c} {
		sub, err := nc.QueueSubscribe("load.x", "q", queue.handler(i))
		require.NoError(t, err)
		subs = append(subs, sub)
	}
	for _, sub := range subs {
		// Pending limits off on the client: a count short by the client's
		// own drops would say nothing about the servers.
		require.NoError(t, sub.SetPendingLimits(-1, -1))
	}
	flush(t, subc, q0c, q1c)

	// Probe until every kind of subscription is known on A, then let the
	// last probes drain (the handlers count them apart).
	eventually(t, clusterWait, func() error {
		for i := 0; i < 10; i++ {
			require.NoError(t, pub.Publish("load.x", []byte(probeData)))
		}
		flush(t, pub)
		time.Sleep(50 * time.Millisecond)
		pp, _, _ := plain.state()
		wp, _, _ := wild.state()
		queue.mu.Lock()
		qp := queue.probes
		queue.mu.Unlock()
		if pp == 0 || wp == 0 || qp == 0 {
			return fmt.Errorf("probes seen: plain %d, wildcard %d, queue %d", pp, wp, qp)
		}
		return nil
	})
	time.Sleep(quietTime)

	began := time.Now()
	for i := 0; i < n; i++ {
		require.NoError(t, pub.Publish("load.x", seq16(i)))
	}
	flush(t, pub)
	progress := func() string {
		_, pc, _ := plain.state()
		_, wc, _ := wild.state()
		queue.mu.Lock()
		qc := queue.count
		queue.mu.Unlock()
		return fmt.Sprintf("plain %d, wildcard %d, queue %d of %d (async errors A: [%s] B: [%s])",
			pc, wc, qc, n, errsA.String(), errsB.String())
	}
	eventually(t, clusterWait, func() error {
		_, pc, _ := plain.state()
		_, wc, _ := wild.state()
		queue.mu.Lock()
		qc := queue.count
		queue.mu.Unlock()
		if pc < n || wc < n || qc < n {
			return fmt.Errorf("received %s", progress())
		}
		return nil
	})
	t.Logf("100k cross-frontdoor messages to 3 subscription kinds in %v", time.Since(began))
	time.Sleep(quietTime)

	for name, o := range map[string]*orderedRecv{"plain load.x": &plain, "wildcard load.*": &wild} {
		_, count, errs := o.state()
		require.Empty(t, errs, "%s: order errors", name)
		require.Equal(t, n, count, "%s: exactly %d messages", name, n)
	}
	queue.mu.Lock()
	defer queue.mu.Unlock()
	require.Empty(t, queue.errs, "queue group")
	require.Zero(t, queue.dups, "queue group: duplicate deliveries")
	require.Equal(t, n, queue.count, "queue group: members together receive exactly %d", n)
	for i, c := range queue.seen {
		if c != 1 {
			t.Fatalf("queue group: sequence %d delivered %d times", i, c)
		}
	}
	t.Logf("queue members received %v", queue.per)
	require.Empty(t, errsB.String(), "subscriber connections' async errors")
}

func TestClusterQueueMemberFrontdoorKilled(t *testing.T) {
	s := startSuite(t, 1, 4)
	pub := connect(t, s.fds[0])

	var mu sync.Mutex
	seen := map[int]int{} // sequence -> deliveries across all members
	perMember := make([]int, 4)
	probes := make([]int, 4)
	for i := 1; i <= 3; i++ {
		// No reconnect: the member on the killed frontdoor just goes away.
		nc := connect(t, s.fds[i], nats.NoReconnect())
		_, err := nc.QueueSubscribe("ha.work", "workers", func(m *nats.Msg) {
			mu.Lock()
			defer mu.Unlock()
			if string(m.Data) == probeData {
				probes[i]++
				return
			}
			n, err := strconv.Atoi(string(m.Data))
			if err != nil {
				return
			}
			seen[n]++
			perMember[i]++
		})
		require.NoError(t, err)
		flush(t, nc)
	}
	// Every member's frontdoor must be known before the run.
	eventually(t, waitLong, func() error {
		for i := 0; i < 30; i++ {
			require.NoError(t, pub.Publish("ha.work", []byte(probeData)))
		}
		flush(t, pub)
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		if probes[1] == 0 || probes[2] == 0 || probes[3] == 0 {
			return fmt.Errorf("probes per member (fd1..fd3): %v", probes[1:])
		}
		return nil
	})
	time.Sleep(quietTime)

	// Publish one message a millisecond until told to stop.
	var published atomic.Int64
	stop := make(chan struct{})
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := pub.Publish("ha.work", seqData(i)); err != nil {
				t.Errorf("publish %d: %v", i, err)
				return
			}
			published.Store(int64(i + 1))
			time.Sleep(time.Millisecond)
		}
	}()
	stopPublishing := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-pubDone
	}
	t.Cleanup(stopPublishing)

	time.Sleep(time.Second)
	steady := int(published.Load()) // published well before the kill
	time.Sleep(500 * time.Millisecond)
	atKill := int(published.Load())
	mu.Lock()
	killedHad := perMember[2]
	mu.Unlock()
	require.NotZero(t, killedHad, "the member on fd2 received nothing before the kill")
	s.fds[2].Stop()
	killedAt := time.Now()
	time.Sleep(time.Second)
	settled := int(published.Load())
	// Keep going for 2 s after the kill and at least 500 messages after the
	// settle point.
	for time.Since(killedAt) < 2*time.Second || int(published.Load())-settled < 500 {
		time.Sleep(10 * time.Millisecond)
	}
	stopPublishing()
	flush(t, pub)
	total := int(published.Load())

	lastFrom := total - 500
	eventually(t, waitLong, func() error {
		mu.Lock()
		defer mu.Unlock()
		missing := 0
		for i := lastFrom; i < total; i++ {
			if seen[i] == 0 {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of the last 500 messages (%d..%d) not delivered yet", missing, lastFrom, total-1)
		}
		return nil
	})
	time.Sleep(quietTime)

	mu.Lock()
	defer mu.Unlock()
	var dups []int
	for n, c := range seen {
		if c > 1 {
			dups = append(dups, n)
		}
	}
	require.Empty(t, dups, "sequence numbers delivered more than once")
	for i := lastFrom; i < total; i++ {
		require.Equal(t, 1, seen[i], "sequence %d (published after the kill and settle)", i)
	}
	lostSteady, lostAround, lostAfterSettle := 0, 0, 0
	for i := 0; i < total; i++ {
		if seen[i] != 0 {
			continue
		}
		switch {
		case i < steady:
			lostSteady++
		case i < settled:
			lostAround++
		default:
			lostAfterSettle++
		}
	}
	t.Logf("published %d (kill at #%d, settle at #%d); per member fd1..fd3 %v; lost: %d before the kill window, %d around the kill, %d after settle",
		total, atKill, settled, perMember[1:], lostSteady, lostAround, lostAfterSettle)
	require.Zero(t, lostSteady, "messages published more than 500 ms before the kill must all be delivered")
	require.Zero(t, lostAfterSettle, "messages published 1 s after the kill must all be delivered")
}

func TestClusterClientFailsOverToAnotherFrontdoor(t *testing.T) {
	s := startSuite(t, 1, 2)
	a, b := s.fds[0], s.fds[1]
	// A third frontdoor that is not advertised to clients (so the client
	// can only fail over to B) publishes across the router tier.
	c := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{
		Config: fmt.Sprintf("routers: [%q]\n", s.routers[0].Addr()),
		Args:   []string{"--no_advertise"},
	})

	reconnected := make(chan string, 4)
	nc := connect(t, a, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.ReconnectHandler(func(nc *nats.Conn) { reconnected <- nc.ConnectedUrl() }))
	eventually(t, waitLong, func() error {
		for _, u := range nc.DiscoveredServers() {
			if strings.Contains(u, b.Addr()) {
				return nil
			}
		}
		return fmt.Errorf("discovered servers %v do not include B %s", nc.DiscoveredServers(), b.Addr())
	})
	sub, err := nc.SubscribeSync("fo.x")
	require.NoError(t, err)
	flush(t, nc)
	pubB, pubC := connect(t, b), connect(t, c)
	awaitRoute(t, pubB, "fo.x", sub)
	awaitRoute(t, pubC, "fo.x", sub)

	a.Stop()
	killed := time.Now()
	eventually(t, 10*time.Second, func() error {
		if !nc.IsConnected() || !strings.Contains(nc.ConnectedUrl(), b.Addr()) {
			return fmt.Errorf("client connected %v to %q, want B %s (servers %v)",
				nc.IsConnected(), nc.ConnectedUrl(), b.Addr(), nc.Servers())
		}
		return nil
	})
	t.Logf("client reconnected to B after %v", time.Since(killed))

	// The subscription is resent on reconnect: it works locally on B...
	eventually(t, 10*time.Second, func() error {
		require.NoError(t, pubB.Publish("fo.x", []byte(probeData)))
		flush(t, pubB)
		if _, err := sub.NextMsg(100 * time.Millisecond); err != nil {
			return fmt.Errorf("no message from a publisher on B after failover: %v", err)
		}
		return nil
	})
	// ...and across the router from C.
	awaitRoute(t, pubC, "fo.x", sub)
	for i := 0; i < 100; i++ {
		require.NoError(t, pubB.Publish("fo.x", seqData(i)))
	}
	flush(t, pubB)
	for i, m := range nextMsgs(t, sub, 100) {
		require.Equal(t, string(seqData(i)), string(m.Data))
	}
	for i := 0; i < 100; i++ {
		require.NoError(t, pubC.Publish("fo.x", seqData(i)))
	}
	flush(t, pubC)
	for i, m := range nextMsgs(t, sub, 100) {
		require.Equal(t, string(seqData(i)), string(m.Data))
	}
	expectNoMsg(t, sub)
}

// routerInterest is the part of the router's /interestz the tests read
// (field names from services/router/internal/hub/http.go).
type routerInterest struct {
	NumAccounts   int   `json:"num_accounts"`
	Entries       int   `json:"total_entries"`
	Subscriptions int64 `json:"total_subscriptions"`
	Accounts      []struct {
		Account       string `json:"account"`
		Entries       int    `json:"entries"`
		Subscriptions int64  `json:"subscriptions"`
	} `json:"accounts"`
}

func getInterest(t *testing.T, r *testkit.Process) routerInterest {
	t.Helper()
	var ri routerInterest
	getJSON(t, r, "/interestz", &ri)
	return ri
}

// meshMsgs sums what a frontdoor's /routez counts on its mesh
// connections: messages sent to other nodes and received from them.
func meshMsgs(t *testing.T, fd *testkit.Process) (sent, received int64) {
	t.Helper()
	var rz struct {
		Peers []struct {
			Msgs int64 `json:"msgs"`
		} `json:"peers"`
		Inbound []struct {
			Msgs int64 `json:"msgs"`
		} `json:"inbound"`
	}
	getJSON(t, fd, "/routez", &rz)
	for _, p := range rz.Peers {
		sent += p.Msgs
	}
	for _, p := range rz.Inbound {
		received += p.Msgs
	}
	return sent, received
}

func TestClusterInterestChurnLeavesRouterEmpty(t *testing.T) {
	s := startSuite(t, 1, 2)
	r := s.routers[0]
	a, b := connect(t, s.fds[0]), connect(t, s.fds[1])
	ri := getInterest(t, r)
	require.Zero(t, ri.Entries, "router interest before the churn: %+v", ri)

	// subscribe makes subscription i of a batch: plain, queue and wildcard
	// subscriptions over overlapping subjects, so router entries count
	// several subscriptions and several groups share a subject.
	subscribe := func(i int) (*nats.Subscription, string) {
		k := i % 50
		var sub *nats.Subscription
		var err error
		var key string
		switch i % 5 {
		case 0, 1:
			key = fmt.Sprintf("churn.%d", k)
			sub, err = a.SubscribeSync(key)
		case 2:
			subj, q := fmt.Sprintf("churn.%d", k), fmt.Sprintf("g%d", i%3)
			key = subj + " " + q
			sub, err = a.QueueSubscribeSync(subj, q)
		case 3:
			key = fmt.Sprintf("churn.*.%d", k)
			sub, err = a.SubscribeSync(key)
		case 4:
			subj, q := fmt.Sprintf("churn.%d.>", k), "wq"
			key = subj + " " + q
			sub, err = a.QueueSubscribeSync(subj, q)
		}
		require.NoError(t, err)
		return sub, key
	}

	const cycles, batch = 10_000, 500
	for done := 0; done < cycles; done += batch {
		subs := make([]*nats.Subscription, 0, batch)
		keys := map[string]bool{}
		for i := 0; i < batch; i++ {
			sub, key := subscribe(done + i)
			subs = append(subs, sub)
			keys[key] = true
		}
		flush(t, a)
		if done == cycles/2 {
			// Midway, hold one batch until the router has it exactly: the
			// churn does reach the router.
			eventually(t, waitLong, func() error {
				ri := getInterest(t, r)
				if ri.Entries != len(keys) || ri.Subscriptions != batch {
					return fmt.Errorf("router has %d entries / %d subscriptions, want %d / %d",
						ri.Entries, ri.Subscriptions, len(keys), batch)
				}
				return nil
			})
		}
		// Unsubscribe in a different order from subscribing.
		for i := len(subs) - 1; i >= 0; i-- {
			require.NoError(t, subs[i].Unsubscribe())
		}
		flush(t, a)
	}

	// Two other ways subscriptions end: a connection closing with its
	// subscriptions still open, and auto-unsubscribe after a message that
	// crossed from another frontdoor.
	closer := connect(t, s.fds[0])
	for i := 0; i < batch; i++ {
		subj := fmt.Sprintf("churn.%d", i%50)
		var err error
		if i%2 == 0 {
			_, err = closer.SubscribeSync(subj)
		} else {
			_, err = closer.QueueSubscribeSync(subj, "closing")
		}
		require.NoError(t, err)
	}
	flush(t, closer)
	closer.Close()
	const autos = 200
	autoSubs := make([]*nats.Subscription, autos)
	for i := range autoSubs {
		sub, err := a.SubscribeSync(fmt.Sprintf("churn.auto.%d", i))
		require.NoError(t, err)
		require.NoError(t, sub.AutoUnsubscribe(1))
		autoSubs[i] = sub
	}
	flush(t, a)
	eventually(t, waitLong, func() error {
		ri := getInterest(t, r)
		if ri.Subscriptions != autos {
			return fmt.Errorf("router has %d subscriptions, want the %d auto-unsubscribing ones (the closed connection's gone)", ri.Subscriptions, autos)
		}
		return nil
	})
	// B learns A's interest asynchronously; publish until each has its one
	// message (any extra is dropped by A's frontdoor, the maximum reached).
	eventually(t, waitLong, func() error {
		for i, sub := range autoSubs {
			if sub != nil {
				require.NoError(t, b.Publish(fmt.Sprintf("churn.auto.%d", i), []byte("once")))
			}
		}
		flush(t, b)
		time.Sleep(50 * time.Millisecond)
		left := 0
		for i, sub := range autoSubs {
			if sub == nil {
				continue
			}
			if _, err := sub.NextMsg(time.Millisecond); err == nil {
				autoSubs[i] = nil
			} else {
				left++
			}
		}
		if left > 0 {
			return fmt.Errorf("%d auto-unsubscribing subscriptions have had no message from B yet", left)
		}
		return nil
	})

	eventually(t, waitLong, func() error {
		ri := getInterest(t, r)
		if ri.Entries != 0 || ri.Subscriptions != 0 {
			return fmt.Errorf("router /interestz after the churn: %d entries, %d subscriptions (%+v)",
				ri.Entries, ri.Subscriptions, ri.Accounts)
		}
		return nil
	})
	// Nothing on the subscribing frontdoor either.
	require.Zero(t, numSubs(t, s.fds[0]), "frontdoor A /subsz after the churn")

	// A message on B to a churned subject crosses nothing and reaches no
	// one. A sentinel subscription on A, published after them by the same
	// publisher, marks when B has handled them.
	sentinel, err := a.SubscribeSync("sentinel")
	require.NoError(t, err)
	flush(t, a)
	awaitRoute(t, b, "sentinel", sentinel)
	bSent, _ := meshMsgs(t, s.fds[1])
	_, aReceived := meshMsgs(t, s.fds[0])
	aOut := getVarz(t, s.fds[0]).OutMsgs
	for _, subj := range []string{"churn.0", "churn.7", "churn.x.3", "churn.9.a.b", "churn.49"} {
		require.NoError(t, b.Publish(subj, []byte("stale")))
	}
	require.NoError(t, b.Publish("sentinel", []byte("end")))
	flush(t, b)
	require.Equal(t, "end", string(nextMsgs(t, sentinel, 1)[0].Data))
	time.Sleep(quietTime)
	bSent2, _ := meshMsgs(t, s.fds[1])
	_, aReceived2 := meshMsgs(t, s.fds[0])
	require.Equal(t, bSent+1, bSent2, "B's mesh messages sent: only the sentinel crosses")
	require.Equal(t, aReceived+1, aReceived2, "A's mesh messages received: only the sentinel crosses")
	require.Equal(t, aOut+1, getVarz(t, s.fds[0]).OutMsgs, "frontdoor A out_msgs: only the sentinel is delivered")
}

func TestClusterDegradedMode(t *testing.T) {
	s := startSuite(t, 1, 2)
	r := s.routers[0]
	port := r.Port
	a, b := s.fds[0], s.fds[1]
	pubA, subB := connect(t, a), connect(t, b)
	cross, err := subB.SubscribeSync("dm.x")
	require.NoError(t, err)
	flush(t, subB)
	awaitRoute(t, pubA, "dm.x", cross)

	r.Stop()
	// Give A time to notice: its remote interest goes with the stream.
	time.Sleep(300 * time.Millisecond)

	// A keeps serving its own clients.
	subA, reqA := connect(t, a), connect(t, a)
	local, err := subA.SubscribeSync("local.>")
	require.NoError(t, err)
	var qmu sync.Mutex
	qseen := map[string]int{}
	for k := 0; k < 2; k++ {
		_, err := subA.QueueSubscribe("local.work", "workers", func(m *nats.Msg) {
			qmu.Lock()
			qseen[string(m.Data)]++
			qmu.Unlock()
		})
		require.NoError(t, err)
	}
	_, err = subA.Subscribe("local.svc", func(m *nats.Msg) { m.Respond(append([]byte("re: "), m.Data...)) })
	require.NoError(t, err)
	flush(t, subA)

	for i := 0; i < 100; i++ {
		require.NoError(t, pubA.Publish("local.x", seqData(i)))
	}
	flush(t, pubA)
	for i, m := range nextMsgs(t, local, 100) {
		require.Equal(t, string(seqData(i)), string(m.Data), "local pub/sub without a router")
	}
	for i := 0; i < 100; i++ {
		require.NoError(t, pubA.Publish("local.work", seqData(i)))
	}
	flush(t, pubA)
	eventually(t, waitLong, func() error {
		qmu.Lock()
		defer qmu.Unlock()
		if len(qseen) != 100 {
			return fmt.Errorf("queue group received %d distinct messages, want 100", len(qseen))
		}
		return nil
	})
	nextMsgs(t, local, 100) // local.> saw local.work too
	for i := 0; i < 20; i++ {
		m, err := reqA.Request("local.svc", seqData(i), 5*time.Second)
		require.NoError(t, err, "request/reply without a router")
		require.Equal(t, "re: "+string(seqData(i)), string(m.Data))
	}
	nextMsgs(t, local, 20) // and the requests
	// The subject only B serves has no responders now, promptly.
	began := time.Now()
	_, err = reqA.Request("dm.x", nil, 5*time.Second)
	require.ErrorIs(t, err, nats.ErrNoResponders, "request to a subject only the unreachable frontdoor wants")
	require.Less(t, time.Since(began), 2*time.Second)
	qmu.Lock()
	for d, c := range qseen {
		require.Equal(t, 1, c, "queue message %s delivered %d times", d, c)
	}
	qmu.Unlock()
	expectNoMsg(t, local)

	// A new router on the same address: both frontdoors reattach and
	// cross-frontdoor delivery resumes (backoff is at most 2 s).
	testkit.StartRouter(t, port)
	restarted := time.Now()
	eventually(t, 10*time.Second, func() error {
		require.NoError(t, pubA.Publish("dm.x", []byte(probeData)))
		flush(t, pubA)
		if _, err := cross.NextMsg(50 * time.Millisecond); err != nil {
			return fmt.Errorf("A -> B not delivered since the router restarted: %v", err)
		}
		return nil
	})
	t.Logf("cross-frontdoor delivery resumed %v after the router restarted", time.Since(restarted))
	for {
		if _, err := cross.NextMsg(100 * time.Millisecond); err != nil {
			break
		}
	}
	// And the other way, for a subscription made while the router was down.
	awaitRoute(t, subB, "local.back", local)
	for i := 0; i < 100; i++ {
		require.NoError(t, pubA.Publish("dm.x", seqData(i)))
	}
	flush(t, pubA)
	for i, m := range nextMsgs(t, cross, 100) {
		require.Equal(t, string(seqData(i)), string(m.Data))
	}
	m, err := connect(t, b).Request("local.svc", []byte("from B"), 5*time.Second)
	require.NoError(t, err, "request from B to A's responder after the router restarted")
	require.Equal(t, "re: from B", string(m.Data))
}
