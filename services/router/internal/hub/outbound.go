package hub

import (
	"sync"

	routerv1 "github.com/switchyard-io/switchyard/proto/switchyard/router/v1"
)

// outItem is one frame queued for a node.
type outItem struct {
	frame *routerv1.RouterFrame
	size  int64
}

// OutboundQueue is what the router still has to send to one node. Producers
// (other nodes' interest changes, membership) only append under mu and
// never touch the stream, so a slow node slows nobody else; one sender
// goroutine per node drains it in order.
type OutboundQueue struct {
	mu      sync.Mutex
	items   []outItem
	spare   []outItem // the previous drain's backing array, reused
	pending int64     // bytes queued or being sent
	max     int64
	closed  bool
	wake    chan struct{}
}

func newOutboundQueue(maxPending int64) *OutboundQueue {
	return &OutboundQueue{max: maxPending, wake: make(chan struct{}, 1)}
}

// pushFrame queues a frame. It reports false when the queue is over its
// limit: the caller then drops the node.
func (q *OutboundQueue) pushFrame(f *routerv1.RouterFrame, size int64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return true // the node is going away; nothing to report twice
	}
	q.items = append(q.items, outItem{frame: f, size: size})
	q.pending += size
	select {
	case q.wake <- struct{}{}:
	default: // the sender is already due to wake
	}
	return q.pending <= q.max
}

// Pending is the number of bytes queued or in flight.
func (q *OutboundQueue) Pending() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pending
}

// close drops whatever is queued (the memory is the point of cutting a slow
// node) and makes the sender return.
func (q *OutboundQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.items, q.spare = nil, nil
	q.pending = 0
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run sends until the queue is closed or send fails.
func (q *OutboundQueue) run(send func(*routerv1.RouterFrame) error) error {
	for range q.wake {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil
		}
		items := q.items
		q.items, q.spare = q.spare[:0], nil
		q.mu.Unlock()

		for _, it := range items {
			err := send(it.frame)
			q.sent(it.size)
			if err != nil {
				return err
			}
		}
		clear(items) // let the sent frames be collected
		q.mu.Lock()
		if q.spare == nil && !q.closed {
			q.spare = items[:0]
		}
		q.mu.Unlock()
	}
	return nil
}

func (q *OutboundQueue) sent(size int64) {
	q.mu.Lock()
	if !q.closed {
		q.pending -= size
	}
	q.mu.Unlock()
}

// interestSize approximates an interest frame's memory and wire cost.
func interestSize(entries []*routerv1.InterestEntry) int64 {
	var n int64
	for _, e := range entries {
		n += int64(len(e.Account)+len(e.Subject)+len(e.Queue)+len(e.NodeId)) + 32
	}
	return n
}
