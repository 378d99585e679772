// Package hub is the router's interest exchange: it keeps the interest
// graph fed by every attached node, tells each node what the others want
// and where they take mesh connections. Messages go node to node over the
// mesh (pkg/mesh), never through the router.
//
// Locks: see LOCKS.md.
package hub

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/pkg/logging"
	"github.com/switchyard-io/switchyard/pkg/subject"
	routerv1 "github.com/switchyard-io/switchyard/proto/switchyard/router/v1"
)

// Options tune a Hub.
type Options struct {
	RouterID string
	// MaxPending bounds the bytes queued for one node; past it the node's
	// stream is dropped (it reconnects and resends its snapshot).
	MaxPending int64
}

// Hub implements the Router gRPC service.
type Hub struct {
	routerv1.UnimplementedRouterServer

	opts Options
	log  *logging.Logger

	mu    sync.RWMutex
	nodes map[string]*attachedNode // by node id
	graph InterestGraph

	stopping chan struct{}
	stopOnce sync.Once
	workers  sync.WaitGroup // per-stream reader and sender goroutines
}

// New returns an empty hub.
func New(opts Options, log *logging.Logger) *Hub {
	return &Hub{
		opts:     opts,
		log:      log,
		nodes:    map[string]*attachedNode{},
		graph:    newInterestGraph(),
		stopping: make(chan struct{}),
	}
}

// attachedNode is one node's live Attach stream.
type attachedNode struct {
	id, name, kind string
	clientURLs     []string
	wsURLs         []string
	meshURL        string
	since          time.Time

	// interest and subscriptions are guarded by Hub.mu.
	interest      map[interestKey]*interestEntry
	subscriptions int64
	detached      bool

	out *OutboundQueue

	failOnce sync.Once
	failed   chan struct{}
	failErr  error
}

// fail ends the node's stream with err. It takes no hub lock, so it may be
// called while Hub.mu is held.
func (n *attachedNode) fail(err error) {
	n.failOnce.Do(func() {
		n.failErr = err
		close(n.failed)
		n.out.close()
	})
}

// Stop ends every stream; nodes reconnect to another replica.
func (h *Hub) Stop() {
	h.stopOnce.Do(func() { close(h.stopping) })
}

func (h *Hub) isStopping() bool {
	select {
	case <-h.stopping:
		return true
	default:
		return false
	}
}

// Wait returns once every stream goroutine has ended (after the gRPC server
// has stopped, which unblocks their stream calls).
func (h *Hub) Wait() { h.workers.Wait() }

// Attach serves one node for as long as its stream lasts.
func (h *Hub) Attach(stream routerv1.Router_AttachServer) error {
	first, err := h.recvHello(stream)
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil {
		return status.Error(codes.InvalidArgument, "router: the first frame on Attach must be Hello")
	}
	if !slices.Contains(hello.ApiVersions, APIVersion) {
		return status.Errorf(codes.FailedPrecondition,
			"router: node %q speaks router API versions %v; this router speaks [%s]: upgrade the older side",
			hello.NodeId, hello.ApiVersions, APIVersion)
	}
	if hello.NodeId == "" {
		return status.Error(codes.InvalidArgument, "router: Hello.node_id is empty; each node must send a unique id")
	}
	select {
	case <-h.stopping:
		return status.Error(codes.Unavailable, "router: shutting down; attach to another replica")
	default:
	}
	err = stream.Send(&routerv1.RouterFrame{Frame: &routerv1.RouterFrame_Welcome{
		Welcome: &routerv1.Welcome{RouterId: h.opts.RouterID, ApiVersion: APIVersion},
	}})
	if err != nil {
		return err
	}

	n := &attachedNode{
		id: hello.NodeId, name: hello.NodeName, kind: hello.Kind,
		clientURLs: slices.Clone(hello.ClientUrls),
		wsURLs:     slices.Clone(hello.WsUrls),
		meshURL:    hello.MeshUrl,
		since:      time.Now(),
		interest:   map[interestKey]*interestEntry{},
		out:        newOutboundQueue(h.opts.MaxPending),
		failed:     make(chan struct{}),
	}
	h.attach(n)
	h.log.Infof("Node %q (%s, %s) attached", n.id, n.name, n.kind)

	senderDone := make(chan error, 1)
	readerDone := make(chan error, 1)
	h.workers.Add(2)
	go func() {
		defer h.workers.Done()
		senderDone <- n.out.run(stream.Send)
	}()
	go func() {
		defer h.workers.Done()
		readerDone <- h.read(n, stream)
	}()

	// Returning ends the stream, which unblocks whichever of the two
	// goroutines is still inside Send or Recv.
	var reason error
	select {
	case reason = <-readerDone:
	case reason = <-senderDone:
	case <-n.failed:
		reason = n.failErr
	case <-h.stopping:
		reason = status.Error(codes.Unavailable, "router: shutting down; attach to another replica")
	}
	n.fail(reason)
	h.detach(n)
	switch {
	case reason == nil:
		h.log.Infof("Node %q (%s) detached", n.id, n.name)
		return nil
	case status.Code(reason) == codes.Canceled, h.isStopping():
		h.log.Infof("Node %q (%s) detached: %v", n.id, n.name, reason)
	default:
		h.log.Errorf("Node %q (%s) dropped: %v", n.id, n.name, reason)
	}
	return reason
}

// APIVersion is the router API version this router speaks.
const APIVersion = "v1"

// helloTimeout bounds how long a connection may hold a stream without
// saying who it is.
const helloTimeout = 10 * time.Second

func (h *Hub) recvHello(stream routerv1.Router_AttachServer) (*routerv1.NodeFrame, error) {
	type result struct {
		f   *routerv1.NodeFrame
		err error
	}
	// Recv cannot be interrupted except by ending the stream, which
	// returning from Attach does; the goroutine then ends too.
	ch := make(chan result, 1)
	h.workers.Add(1)
	go func() {
		defer h.workers.Done()
		f, err := stream.Recv()
		ch <- result{f, err}
	}()
	select {
	case r := <-ch:
		return r.f, r.err
	case <-time.After(helloTimeout):
		return nil, status.Errorf(codes.DeadlineExceeded, "router: no Hello within %v of opening Attach", helloTimeout)
	case <-h.stopping:
		return nil, status.Error(codes.Unavailable, "router: shutting down; attach to another replica")
	}
}

// read handles the node's frames until the stream ends.
func (h *Hub) read(n *attachedNode, stream routerv1.Router_AttachServer) error {
	for {
		f, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch fr := f.Frame.(type) {
		case *routerv1.NodeFrame_Interest:
			h.updateInterest(n, fr.Interest)
		case *routerv1.NodeFrame_Advertise:
			h.advertise(n, fr.Advertise)
		case *routerv1.NodeFrame_Hello:
			return status.Error(codes.InvalidArgument, "router: Hello sent twice on one Attach stream")
		default:
			return status.Errorf(codes.InvalidArgument, "router: unknown frame %T; the node speaks a newer API", f.Frame)
		}
	}
}

// attach registers n, gives it every other node's interest and tells
// everyone the new membership.
func (h *Hub) attach(n *attachedNode) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if old := h.nodes[n.id]; old != nil {
		// The node reconnected before its old stream was noticed dead: the
		// new stream's snapshot is the truth.
		h.detachLocked(old)
		old.fail(status.Error(codes.Aborted, "router: replaced by a newer stream from the same node"))
	}
	h.nodes[n.id] = n
	var entries []*routerv1.InterestEntry
	for _, o := range h.nodes {
		if o != n {
			entries = entriesOf(o, entries)
		}
	}
	// Sent even when empty: a reconnecting node must drop what it knew.
	h.push(n, &routerv1.RouterFrame{Frame: &routerv1.RouterFrame_Interest{
		Interest: &routerv1.Interest{Snapshot: true, Entries: entries},
	}}, interestSize(entries))
	h.broadcastMembersLocked()
}

// detach removes n and cancels its interest at the others. Safe to call
// more than once.
func (h *Hub) detach(n *attachedNode) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.detachLocked(n)
}

func (h *Hub) detachLocked(n *attachedNode) {
	if n.detached {
		return
	}
	n.detached = true
	if h.nodes[n.id] == n {
		delete(h.nodes, n.id)
	}
	h.forwardLocked(n, h.graph.removeAll(n))
	h.broadcastMembersLocked()
}

// advertise replaces the URLs n advertises and tells everyone.
func (h *Hub) advertise(n *attachedNode, a *routerv1.Advertise) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n.detached {
		return
	}
	h.log.Infof("Node %q (%s) advertises client URLs %v, WebSocket URLs %v (was %v, %v)",
		n.id, n.name, a.ClientUrls, a.WsUrls, n.clientURLs, n.wsURLs)
	n.clientURLs, n.wsURLs = slices.Clone(a.ClientUrls), slices.Clone(a.WsUrls)
	h.broadcastMembersLocked()
}

// updateInterest applies a node's Interest frame and forwards the changes.
func (h *Hub) updateInterest(n *attachedNode, in *routerv1.Interest) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n.detached {
		return
	}
	valid := func(e *routerv1.InterestEntry) bool {
		if !subject.ValidSubscribe([]byte(e.Subject)) {
			h.log.Warnf("Node %q: ignoring interest in invalid subject %q (account %q)", n.id, e.Subject, e.Account)
			return false
		}
		return true
	}
	var changes []*routerv1.InterestEntry
	if in.Snapshot {
		changes = h.graph.replace(n, in.Entries, valid)
	} else {
		for _, e := range in.Entries {
			if valid(e) {
				changes = h.graph.add(n, e, changes)
			}
		}
	}
	if h.log.DebugOn() {
		h.log.Debugf("Node %q: interest frame (snapshot %v, %d entries): %d changes forwarded to %d nodes",
			n.id, in.Snapshot, len(in.Entries), len(changes), len(h.nodes)-1)
	}
	h.forwardLocked(n, changes)
}

// forwardLocked sends n's interest changes to every other node. One frame
// is shared: marshalling only reads it.
func (h *Hub) forwardLocked(n *attachedNode, changes []*routerv1.InterestEntry) {
	if len(changes) == 0 {
		return
	}
	f := &routerv1.RouterFrame{Frame: &routerv1.RouterFrame_Interest{
		Interest: &routerv1.Interest{Entries: changes},
	}}
	size := interestSize(changes)
	for _, o := range h.nodes {
		if o != n {
			h.push(o, f, size)
		}
	}
}

func (h *Hub) broadcastMembersLocked() {
	var urls, wsURLs []string
	var nodes []*routerv1.Node
	var size int64
	for _, o := range h.nodes {
		urls = append(urls, o.clientURLs...)
		wsURLs = append(wsURLs, o.wsURLs...)
		nodes = append(nodes, &routerv1.Node{NodeId: o.id, NodeName: o.name, MeshUrl: o.meshURL})
		size += int64(len(o.id)+len(o.name)+len(o.meshURL)) + 16
	}
	slices.Sort(urls)
	urls = slices.Compact(urls)
	slices.Sort(wsURLs)
	wsURLs = slices.Compact(wsURLs)
	slices.SortFunc(nodes, func(a, b *routerv1.Node) int { return strings.Compare(a.NodeId, b.NodeId) })
	f := &routerv1.RouterFrame{Frame: &routerv1.RouterFrame_Members{
		Members: &routerv1.Members{ClientUrls: urls, Nodes: nodes, WsUrls: wsURLs},
	}}
	for _, u := range append(urls, wsURLs...) {
		size += int64(len(u))
	}
	for _, o := range h.nodes {
		h.push(o, f, size)
	}
}

func (h *Hub) push(n *attachedNode, f *routerv1.RouterFrame, size int64) {
	if !n.out.pushFrame(f, size) {
		n.fail(h.slowError(n))
	}
}

func (h *Hub) slowError(n *attachedNode) error {
	return status.Error(codes.ResourceExhausted, fmt.Sprintf(
		"router: node %q (%s) is not reading: more than %d bytes queued for it; dropping its stream (it should reconnect and resend its interest)",
		n.id, n.name, h.opts.MaxPending))
}
