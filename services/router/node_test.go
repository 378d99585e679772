package router_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/switchyard-io/switchyard/pkg/logging"
	routerv1 "github.com/switchyard-io/switchyard/proto/switchyard/router/v1"
	"github.com/switchyard-io/switchyard/services/router"
)

const waitFor = 5 * time.Second

// startRouter runs a router on free ports with monitoring on.
func startRouter(tb testing.TB, edit ...func(*router.Config)) *router.Router {
	tb.Helper()
	cfg := router.DefaultConfig()
	cfg.Host, cfg.Port, cfg.HTTPPort, cfg.Name = "127.0.0.1", -1, -1, "test-router"
	for _, e := range edit {
		e(&cfg)
	}
	r, err := router.New(cfg, testLogger())
	require.NoError(tb, err)
	require.NoError(tb, r.Start())
	<-r.Ready()
	tb.Cleanup(r.Stop)
	return r
}

// fakeNode is a node's side of Attach, with what the router sent sorted by
// kind so tests can wait for each independently.
type fakeNode struct {
	tb       testing.TB
	id       string
	stream   routerv1.Router_AttachClient
	cancel   context.CancelFunc
	welcome  *routerv1.Welcome
	interest chan *routerv1.Interest
	members  chan *routerv1.Members
	done     chan error // the stream's end
}

type nodeOption func(*routerv1.Hello, *bool)

func withURLs(urls ...string) nodeOption {
	return func(h *routerv1.Hello, _ *bool) { h.ClientUrls = urls }
}

func withMesh(addr string) nodeOption {
	return func(h *routerv1.Hello, _ *bool) { h.MeshUrl = addr }
}

// notReading leaves the router's frames unread after Welcome (slow node).
func notReading() nodeOption { return func(_ *routerv1.Hello, read *bool) { *read = false } }

func attach(tb testing.TB, r *router.Router, id string, opts ...nodeOption) *fakeNode {
	tb.Helper()
	conn, err := grpc.NewClient(r.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(tb, err)
	tb.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	stream, err := routerv1.NewRouterClient(conn).Attach(ctx)
	require.NoError(tb, err)
	hello := &routerv1.Hello{NodeId: id, NodeName: id + "-name", Kind: "frontdoor", ApiVersions: []string{"v1"},
		MeshUrl: id + "-mesh:6222"}
	read := true
	for _, o := range opts {
		o(hello, &read)
	}
	require.NoError(tb, stream.Send(&routerv1.NodeFrame{Frame: &routerv1.NodeFrame_Hello{Hello: hello}}))
	first, err := stream.Recv()
	require.NoError(tb, err)
	require.NotNil(tb, first.GetWelcome(), "first frame from the router must be Welcome")
	n := &fakeNode{
		tb: tb, id: id, stream: stream, cancel: cancel, welcome: first.GetWelcome(),
		interest: make(chan *routerv1.Interest, 1024),
		members:  make(chan *routerv1.Members, 1024),
		done:     make(chan error, 1),
	}
	if read {
		go n.receive()
	}
	return n
}

func (n *fakeNode) receive() {
	for {
		f, err := n.stream.Recv()
		if err != nil {
			n.done <- err
			return
		}
		switch fr := f.Frame.(type) {
		case *routerv1.RouterFrame_Interest:
			n.interest <- fr.Interest
		case *routerv1.RouterFrame_Members:
			n.members <- fr.Members
		}
	}
}

func (n *fakeNode) sendInterest(snapshot bool, entries ...*routerv1.InterestEntry) {
	n.tb.Helper()
	require.NoError(n.tb, n.stream.Send(&routerv1.NodeFrame{Frame: &routerv1.NodeFrame_Interest{
		Interest: &routerv1.Interest{Snapshot: snapshot, Entries: entries},
	}}))
}

// detach ends the stream as a node that goes away does.
func (n *fakeNode) detach() { n.cancel() }

func (n *fakeNode) nextInterest() *routerv1.Interest {
	n.tb.Helper()
	select {
	case in := <-n.interest:
		return in
	case <-time.After(waitFor):
		require.FailNow(n.tb, "no interest frame", "node %s", n.id)
		return nil
	}
}

// membersEventually waits for a Members frame listing exactly want as
// client URLs, and returns it.
func (n *fakeNode) membersEventually(want ...string) *routerv1.Members {
	n.tb.Helper()
	want = slices.Sorted(slices.Values(want)) // the router sends them sorted
	deadline := time.After(waitFor)
	for {
		select {
		case m := <-n.members:
			if slices.Equal(m.ClientUrls, want) {
				return m
			}
		case <-deadline:
			require.FailNow(n.tb, "members never became", "%v at node %s (%d frames pending)", want, n.id, len(n.members))
			return nil
		}
	}
}

func sub(account, subject, queue string, delta int32) *routerv1.InterestEntry {
	return &routerv1.InterestEntry{Account: account, Subject: subject, Queue: queue, Delta: delta}
}

func getJSON(tb testing.TB, r *router.Router, path string, v any) {
	tb.Helper()
	resp, err := http.Get("http://" + r.MonitorAddr().String() + path)
	require.NoError(tb, err)
	defer resp.Body.Close()
	require.Equal(tb, http.StatusOK, resp.StatusCode)
	require.NoError(tb, json.NewDecoder(resp.Body).Decode(v))
}

// testLogger shows the router's log with -v when ROUTER_TEST_LOG is set.
func testLogger() *logging.Logger {
	if os.Getenv("ROUTER_TEST_LOG") != "" {
		return logging.NewWriter(os.Stderr, true)
	}
	return logging.Discard()
}
