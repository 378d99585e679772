package router_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
	a := attach(t, r, "A", withURLs("nats://a:4222"), withMesh("10.0.0.1:6222"))
	a.membersEventually("nats://a:4222")
	b := attach(t, r, "B", withURLs("nats://b:4222", "nats://b2:4222"), withMesh("10.0.0.2:6222"))
	all := []string{"nats://a:4222", "nats://b:4222", "nats://b2:4222"}
	b.membersEventually(all...)
	m := a.membersEventually(all...)
	require.Len(t, m.Nodes, 2, "every node learns where every node takes mesh connections")
	require.Equal(t, "A", m.Nodes[0].NodeId)
	require.Equal(t, "10.0.0.1:6222", m.Nodes[0].MeshUrl)
	require.Equal(t, "B-name", m.Nodes[1].NodeName)
	require.Equal(t, "10.0.0.2:6222", m.Nodes[1].MeshUrl)

	b.detach()
	m = a.membersEventually("nats://a:4222")
	require.Len(t, m.Nodes, 1)
}

func TestRouterMonitoring(t *testing.T) {
	r := startRouter(t)
	nodes := attachAll(t, r, "A", "B")
	a, b := nodes[0], nodes[1]
	a.sendInterest(true, sub("$G", "foo", "", 10_000), sub("$G", "bar", "q", 2), sub("ACC", "x.*", "", 1))
	b.nextInterest()
	b.sendInterest(true, sub("$G", "foo", "", 1))
	a.nextInterest()

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
	require.Equal(t, int64(10_003), nodez.Nodes[0].Subscriptions)
	require.Equal(t, "A-mesh:6222", nodez.Nodes[0].MeshURL)
	require.Equal(t, 1, nodez.Nodes[1].InterestEntries)
}

func TestRouterSlowNodeDropped(t *testing.T) {
	r := startRouter(t, func(c *router.Config) { c.MaxPendingBytes = 1 << 20 })
	a := attachAll(t, r, "A")[0]
	slow := attach(t, r, "SLOW", notReading())
	slow.sendInterest(true, sub("$G", "big", "", 1))
	a.nextInterest()

	// A's interest changes pile up unread at SLOW: 20 frames of 1,000
	// entries of about 130 bytes each, 2.6 MB against a 1 MB limit.
	long := strings.Repeat("x", 100)
	for f := range 20 {
		var entries []*routerv1.InterestEntry
		for i := range 1000 {
			entries = append(entries, sub("$G", long+"."+strconv.Itoa(f*1000+i), "", 1))
		}
		a.sendInterest(false, entries...)
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
