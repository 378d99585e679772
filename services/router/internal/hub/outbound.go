package hub

import (
	"sync"

	routerv1 "github.com/switchyard-io/switchyard/proto/switchyard/router/v1"
)

// outItem is one thing queued for a node: a whole frame (interest, members)
// or a single message that the sender batches with its neighbours.
type outItem struct {
	frame *routerv1.RouterFrame
	msg   *routerv1.Message
	size  int64
}

// OutboundQueue is what the router still has to send to one node. Producers
// (other nodes' readers, interest updates) only append under mu and never
// touch the stream, so a slow node slows nobody else; one sender goroutine
// per node drains it, which keeps each producer's order.
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

// pushFrame queues a control frame. It reports false when the queue is over
// its limit: the caller then drops the node.
func (q *OutboundQueue) pushFrame(f *routerv1.RouterFrame, size int64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return true // the node is going away; nothing to report twice
	}
	q.items = append(q.items, outItem{frame: f, size: size})
	return q.added(size)
}

// pushMessages queues messages in order; see pushFrame for the result.
func (q *OutboundQueue) pushMessages(msgs []*routerv1.Message) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return true
	}
	var size int64
	for _, m := range msgs {
		s := messageSize(m)
		q.items = append(q.items, outItem{msg: m, size: s})
		size += s
	}
	return q.added(size)
}

// added must be called with mu held.
func (q *OutboundQueue) added(size int64) bool {
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

// run sends until the queue is closed or send fails. Each wake-up takes
// everything queued and packs consecutive messages into Messages frames of
// up to maxBatch bytes, so a busy node gets few, large frames.
func (q *OutboundQueue) run(send func(*routerv1.RouterFrame) error, maxBatch int64) error {
	for range q.wake {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil
		}
		items := q.items
		q.items, q.spare = q.spare[:0], nil
		q.mu.Unlock()

		if err := q.sendAll(items, send, maxBatch); err != nil {
			return err
		}
		clear(items) // let the sent messages be collected
		q.mu.Lock()
		if q.spare == nil && !q.closed {
			q.spare = items[:0]
		}
		q.mu.Unlock()
	}
	return nil
}

func (q *OutboundQueue) sendAll(items []outItem, send func(*routerv1.RouterFrame) error, maxBatch int64) error {
	var (
		batch      []*routerv1.Message
		batchBytes int64
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		// A fresh slice per frame: gRPC may read a sent message lazily
		// (stats handlers), so it is never reused.
		err := send(&routerv1.RouterFrame{Frame: &routerv1.RouterFrame_Messages{
			Messages: &routerv1.Messages{Messages: batch},
		}})
		q.sent(batchBytes)
		batch, batchBytes = nil, 0
		return err
	}
	for _, it := range items {
		if it.msg == nil {
			if err := flush(); err != nil {
				return err
			}
			err := send(it.frame)
			q.sent(it.size)
			if err != nil {
				return err
			}
			continue
		}
		batch = append(batch, it.msg)
		batchBytes += it.size
		if batchBytes >= maxBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

func (q *OutboundQueue) sent(size int64) {
	q.mu.Lock()
	if !q.closed {
		q.pending -= size
	}
	q.mu.Unlock()
}

// messageSize approximates a message's memory and wire cost; the per-message
// constant stands for the struct and framing so that floods of tiny
// messages are bounded too.
func messageSize(m *routerv1.Message) int64 {
	return int64(len(m.Subject)+len(m.Reply)+len(m.Header)+len(m.Payload)+len(m.Account)+len(m.OriginNode)) + 64
}

// interestSize is the same estimate for an interest frame.
func interestSize(entries []*routerv1.InterestEntry) int64 {
	var n int64
	for _, e := range entries {
		n += int64(len(e.Account)+len(e.Subject)+len(e.Queue)+len(e.NodeId)) + 32
	}
	return n
}
