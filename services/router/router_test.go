package router_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	routerv1 "github.com/switchyard-io/switchyard/proto/switchyard/router/v1"
	"github.com/switchyard-io/switchyard/services/router"
)

// attachAll attaches nodes in order and consumes the snapshot each gets.
func attachAll(tb testing.TB, r *router.Router, ids ...string) []*fakeNode {
	tb.Helper()
	var out []*fakeNode
	for _, id := range ids {
		n := attach(tb, r, id)
		require.True(tb, n.nextInterest().Snapshot)
		out = append(out, n)
	}
	return out
}

// lines renders interest entries so tests compare them regardless of order.
func lines(in *routerv1.Interest) []string {
	var out []string
	for _, e := range in.Entries {
		out = append(out, fmt.Sprintf("%s %s q=%s %+d @%s", e.Account, e.Subject, e.Queue, e.Delta, e.NodeId))
	}
	return out
}

func TestRouterInterestSnapshotAndDeltas(t *testing.T) {
	r := startRouter(t)
	nodes := attachAll(t, r, "A", "B")
	a, b := nodes[0], nodes[1]

	a.sendInterest(true, sub("$G", "foo", "", 3), sub("$G", "bar", "g", 1))
	in := b.nextInterest()
	require.False(t, in.Snapshot, "a node's changes reach the others as deltas")
	require.ElementsMatch(t, []string{"$G foo q= +3 @A", "$G bar q=g +1 @A"}, lines(in))

	a.sendInterest(false, sub("$G", "foo", "", -1))
	require.Equal(t, []string{"$G foo q= -1 @A"}, lines(b.nextInterest()))
	a.sendInterest(false, sub("$G", "foo", "", -2))
	require.Equal(t, []string{"$G foo q= -2 @A"}, lines(b.nextInterest()))
	require.Equal(t, []router.AccountStats{{Account: "$G", Entries: 1, Subscriptions: 1}}, r.Interest())

	// A newcomer learns everything others have, as counts, in one snapshot.
	c := attach(t, r, "C")
	in = c.nextInterest()
	require.True(t, in.Snapshot)
	require.Equal(t, []string{"$G bar q=g +1 @A"}, lines(in))

	// A node's new snapshot replaces what it had: the others get the diff.
	a.sendInterest(true, sub("$G", "baz", "", 2))
	want := []string{"$G bar q=g -1 @A", "$G baz q= +2 @A"}
	require.ElementsMatch(t, want, lines(b.nextInterest()))
	require.ElementsMatch(t, want, lines(c.nextInterest()))

	b.sendInterest(false, sub("ACC", "x.>", "", 1))
	require.Equal(t, []string{"ACC x.> q= +1 @B"}, lines(a.nextInterest()))
	require.Equal(t, []string{"ACC x.> q= +1 @B"}, lines(c.nextInterest()))
	require.Empty(t, b.interest, "a node never hears its own interest back")
}

func TestRouterWildcardRouting(t *testing.T) {
	r := startRouter(t)
	nodes := attachAll(t, r, "A", "B")
	a, b := nodes[0], nodes[1]
	b.sendInterest(true,
		sub("$G", "orders.*.created", "", 1),
		sub("$G", "metrics.>", "", 1),
		sub("OTHER", "x", "", 1))
	a.nextInterest()

	other := plainMsg("x", "4")
	other.Account = "OTHER"
	a.publish(
		plainMsg("orders.eu.created", "1"),
		plainMsg("orders.eu.x.created", "no"),
		plainMsg("metrics.cpu.host1", "2"),
		plainMsg("metrics", "no"),
		plainMsg("x", "no: another account"),
		other,
	)
	got := b.nextMessages(3)
	require.Equal(t, "orders.eu.created", got[0].Subject)
	require.Equal(t, "metrics.cpu.host1", got[1].Subject)
	require.Equal(t, "x", got[2].Subject)
	require.Equal(t, "OTHER", got[2].Account)
	for _, m := range got {
		require.Equal(t, "A", m.OriginNode)
		require.True(t, m.DeliverPlain)
		require.Empty(t, m.Queues)
	}
	b.noMessages()
}

func TestRouterPlainFanOutNeverToOrigin(t *testing.T) {
	r := startRouter(t)
	nodes := attachAll(t, r, "A", "B", "C")
	for i, n := range nodes {
		n.sendInterest(true, sub("$G", "foo", "", 1))
		for j, o := range nodes {
			if j != i {
				o.nextInterest()
			}
		}
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	var batch []*routerv1.Message
	for i := range 100 {
		batch = append(batch, plainMsg("foo", strconv.Itoa(i)))
	}
	a.publish(batch...)
	require.Len(t, b.nextMessages(100), 100)
	require.Len(t, c.nextMessages(100), 100)
	a.noMessages()

	// Not for plain subscribers and no queue groups: nobody gets it.
	m := plainMsg("foo", "x")
	m.DeliverPlain = false
	a.publish(m)
	b.noMessages()
	c.noMessages()
}

func TestRouterQueueGroupOneNodePerMessage(t *testing.T) {
	r := startRouter(t)
	nodes := attachAll(t, r, "A", "B", "C")
	a, b, c := nodes[0], nodes[1], nodes[2]
	a.sendInterest(true, sub("$G", "jobs.*", "workers", 1)) // the origin's own member must not count
	b.nextInterest()
	c.nextInterest()
	b.sendInterest(true, sub("$G", "jobs.>", "workers", 1))
	a.nextInterest()
	c.nextInterest()
	// Two patterns on C match: it must still be one candidate, one copy.
	c.sendInterest(true, sub("$G", "jobs.*", "workers", 2), sub("$G", "jobs.>", "workers", 1), sub("$G", "jobs.>", "", 1))
	a.nextInterest()
	b.nextInterest()

	const total = 1000
	publish := func(plain bool) {
		var batch []*routerv1.Message
		for i := range total {
			batch = append(batch, &routerv1.Message{
				Account: "$G", Subject: "jobs." + strconv.Itoa(i), Payload: []byte(strconv.Itoa(i)),
				Queues: []string{"workers"}, DeliverPlain: plain,
			})
		}
		a.publish(batch...)
	}

	// Queue only: every message lands on exactly one of B and C.
	publish(false)
	seen := map[string]string{}
	deadline := time.After(waitFor)
	var onB, onC int
	for len(seen) < total {
		select {
		case m := <-b.msgs:
			require.Equal(t, []string{"workers"}, m.Queues)
			require.False(t, m.DeliverPlain)
			require.NotContains(t, seen, string(m.Payload))
			seen[string(m.Payload)] = "B"
			onB++
		case m := <-c.msgs:
			require.Equal(t, []string{"workers"}, m.Queues)
			require.False(t, m.DeliverPlain)
			require.NotContains(t, seen, string(m.Payload))
			seen[string(m.Payload)] = "C"
			onC++
		case <-deadline:
			t.Fatalf("only %d of %d messages arrived", len(seen), total)
		}
	}
	require.Positive(t, onB, "the group is spread over both nodes")
	require.Positive(t, onC)
	b.noMessages()
	c.noMessages()
	a.noMessages()

	// Plain too: C gets every message for its plain subscriber, with the
	// group attached when C was picked; B gets only the group's share.
	publish(true)
	var cServes int
	for _, m := range c.nextMessages(total) {
		require.True(t, m.DeliverPlain)
		if len(m.Queues) > 0 {
			cServes++
		}
	}
	for _, m := range b.nextMessages(total - cServes) {
		require.False(t, m.DeliverPlain)
		require.Equal(t, []string{"workers"}, m.Queues)
	}
	b.noMessages()
	a.noMessages()
}

func TestRouterDetachCancelsInterest(t *testing.T) {
	r := startRouter(t)
	nodes := attachAll(t, r, "A", "B")
	a, b := nodes[0], nodes[1]
	a.sendInterest(true, sub("$G", "foo", "", 2), sub("$G", "bar", "q", 1))
	b.nextInterest()

	a.detach()
	require.ElementsMatch(t, []string{"$G foo q= -2 @A", "$G bar q=q -1 @A"}, lines(b.nextInterest()))
	require.Empty(t, r.Interest(), "the graph holds nothing of a detached node")
	require.Len(t, r.Nodes(), 1)
}

func TestRouterMembersBroadcast(t *testing.T) {
	r := startRouter(t)
	a := attach(t, r, "A", withURLs("nats://a:4222"))
	a.membersEventually("nats://a:4222")
	b := attach(t, r, "B", withURLs("nats://b:4222", "nats://b2:4222"))
	all := []string{"nats://a:4222", "nats://b:4222", "nats://b2:4222"}
	b.membersEventually(all...)
	a.membersEventually(all...)

	b.detach()
	a.membersEventually("nats://a:4222")
}

func TestRouterOrderingPreserved(t *testing.T) {
	r := startRouter(t)
	nodes := attachAll(t, r, "A", "B")
	a, b := nodes[0], nodes[1]
	b.sendInterest(true, sub("$G", "seq", "", 1))
	a.nextInterest()

	const total, perFrame = 10_000, 100
	for i := 0; i < total; i += perFrame {
		batch := make([]*routerv1.Message, 0, perFrame)
		for j := i; j < i+perFrame; j++ {
			batch = append(batch, plainMsg("seq", strconv.Itoa(j)))
		}
		a.publish(batch...)
	}
	for i, m := range b.nextMessages(total) {
		require.Equal(t, strconv.Itoa(i), string(m.Payload))
	}
	b.noMessages()
}

func TestRouterMonitoring(t *testing.T) {
	r := startRouter(t)
	nodes := attachAll(t, r, "A", "B")
	a, b := nodes[0], nodes[1]
	a.sendInterest(true, sub("$G", "foo", "", 10_000), sub("$G", "bar", "q", 2), sub("ACC", "x.*", "", 1))
	b.nextInterest()
	b.sendInterest(true, sub("$G", "foo", "", 1))
	a.nextInterest()
	a.publish(plainMsg("foo", "to B"))
	b.nextMessages(1)
	b.publish(plainMsg("foo", "to A"))
	a.nextMessages(1)

	var health map[string]string
	getJSON(t, r, "/healthz", &health)
	require.Equal(t, "ok", health["status"])

	var interest struct {
		RouterID      string                `json:"router_id"`
		Subscriptions int64                 `json:"total_subscriptions"`
		Accounts      []router.AccountStats `json:"accounts"`
	}
	getJSON(t, r, "/interestz", &interest)
	require.Equal(t, r.ID(), interest.RouterID)
	require.Equal(t, int64(10_004), interest.Subscriptions)
	require.Equal(t, []router.AccountStats{
		{Account: "$G", Entries: 3, Subscriptions: 10_003},
		{Account: "ACC", Entries: 1, Subscriptions: 1},
	}, interest.Accounts)

	var nodez struct {
		NumNodes int               `json:"num_nodes"`
		Nodes    []router.NodeInfo `json:"nodes"`
	}
	getJSON(t, r, "/nodez", &nodez)
	require.Equal(t, 2, nodez.NumNodes)
	require.Equal(t, "A", nodez.Nodes[0].ID)
	require.Equal(t, "A-name", nodez.Nodes[0].Name)
	require.Equal(t, "frontdoor", nodez.Nodes[0].Kind)
	require.Equal(t, 3, nodez.Nodes[0].InterestEntries)
	require.Equal(t, uint64(1), nodez.Nodes[0].MsgsIn)
	require.Equal(t, uint64(1), nodez.Nodes[0].MsgsOut)
	require.Equal(t, uint64(1), nodez.Nodes[1].MsgsIn)
	require.Equal(t, uint64(1), nodez.Nodes[1].MsgsOut)
}

func TestRouterSlowNodeDropped(t *testing.T) {
	r := startRouter(t, func(c *router.Config) { c.MaxPendingBytes = 1 << 20 })
	a := attachAll(t, r, "A")[0]
	slow := attach(t, r, "SLOW", notReading())
	slow.sendInterest(true, sub("$G", "big", "", 1))
	a.nextInterest()

	payload := make([]byte, 64<<10)
	for range 200 { // 12.8 MB against a 1 MB limit
		a.publish(&routerv1.Message{Account: "$G", Subject: "big", Payload: payload, DeliverPlain: true})
	}
	// The slow node is cut and its interest withdrawn; A is unaffected.
	require.Equal(t, []string{"$G big q= -1 @SLOW"}, lines(a.nextInterest()))
	require.Len(t, r.Nodes(), 1)
	require.Equal(t, "A", r.Nodes()[0].ID)
}

// rawAttach opens an Attach stream and sends nothing on it.
func rawAttach(t *testing.T, r *router.Router) grpc.BidiStreamingClient[routerv1.NodeFrame, routerv1.RouterFrame] {
	t.Helper()
	conn, err := grpc.NewClient(r.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	stream, err := routerv1.NewRouterClient(conn).Attach(context.Background())
	require.NoError(t, err)
	return stream
}

func TestRouterRequiresHelloFirst(t *testing.T) {
	stream := rawAttach(t, startRouter(t))
	require.NoError(t, stream.Send(&routerv1.NodeFrame{Frame: &routerv1.NodeFrame_Interest{Interest: &routerv1.Interest{}}}))
	_, err := stream.Recv()
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

func TestRouterRefusesUnknownAPIVersion(t *testing.T) {
	stream := rawAttach(t, startRouter(t))
	hello := &routerv1.Hello{NodeId: "old", Kind: "frontdoor", ApiVersions: []string{"v0"}}
	require.NoError(t, stream.Send(&routerv1.NodeFrame{Frame: &routerv1.NodeFrame_Hello{Hello: hello}}))
	_, err := stream.Recv()
	require.Equal(t, codes.FailedPrecondition, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), "[v0]", "names the node's versions")
	require.Contains(t, status.Convert(err).Message(), "[v1]", "and the router's")
}

func TestRouterStopEndsStreams(t *testing.T) {
	r := startRouter(t)
	a := attachAll(t, r, "A")[0]
	r.Stop()
	select {
	case err := <-a.done:
		require.Equal(t, codes.Unavailable, status.Code(err))
	case <-time.After(waitFor):
		t.Fatal("the node's stream did not end when the router stopped")
	}
}

func TestRouterInterestChurnLeavesGraphEmpty(t *testing.T) {
	r := startRouter(t)
	nodes := attachAll(t, r, "A", "B")
	a, b := nodes[0], nodes[1]
	for i := range 10_000 {
		subj := "_INBOX." + strconv.Itoa(i)
		a.sendInterest(false, sub("$G", subj, "", 1))
		a.sendInterest(false, sub("$G", subj, "", -1))
	}
	// Fence: once B hears this, every earlier frame from A is applied.
	a.sendInterest(false, sub("$G", "fence", "", 1))
	deadline := time.After(waitFor)
	for {
		select {
		case in := <-b.interest:
			if slices.Contains(lines(in), "$G fence q= +1 @A") {
				require.Equal(t, []router.AccountStats{{Account: "$G", Entries: 1, Subscriptions: 1}}, r.Interest())
				return
			}
		case <-deadline:
			t.Fatal("the fence never arrived")
		}
	}
}

func TestRouterConfigEnvAndValidate(t *testing.T) {
	cfg := router.DefaultConfig()
	env := map[string]string{"SWITCHYARD_ROUTER_PORT": "7500", "SWITCHYARD_ROUTER_NAME": "r1", "SWITCHYARD_ROUTER_DEBUG": "true"}
	require.NoError(t, cfg.ApplyEnv(func(k string) string { return env[k] }))
	require.Equal(t, 7500, cfg.Port)
	require.Equal(t, "r1", cfg.Name)
	require.True(t, cfg.Debug)

	env["SWITCHYARD_ROUTER_PORT"] = "seven"
	require.ErrorContains(t, cfg.ApplyEnv(func(k string) string { return env[k] }), "SWITCHYARD_ROUTER_PORT")

	cfg.HTTPPort = 70000
	require.ErrorContains(t, cfg.Validate(), "http_port")
}
