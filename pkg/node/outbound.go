package node

import (
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/switchyard-io/switchyard/pkg/mesh"
)

// chunkSize is the unit of outbound buffering. Messages are appended into
// chunks; a writer hands every full and partial chunk to one writev.
const chunkSize = 32 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize); return &b }}

// outbound is a connection's queue of bytes to write. Any goroutine may
// append (publishers delivering to this connection); one writer at a time
// drains it. Publishers never wait for the socket: when a subscriber stops
// reading, its queue grows to max_pending and the connection is cut, while
// everyone else goes on at full speed.
type outbound struct {
	mu      sync.Mutex
	chunks  [][]byte
	spare   [][]byte
	pending int  // bytes queued and not yet written
	writing bool // a writer goroutine owns the socket's write side
	closed  bool // no more appends; queued bytes are dropped
	// drainThenClose asks the active writer to flush what is queued and
	// then close the socket (an -ERR before a close).
	drainThenClose bool

	msgs, bytes int64 // delivered messages and payload bytes (out_msgs, out_bytes)

	// control holds WebSocket control frames (pong, close), framed
	// already; a writer sends them before the next data frame.
	control [][]byte

	// Flow control (see client.waitForSlowSubscribers).
	lastProgress time.Time     // when the socket last took bytes
	stuck        bool          // no progress while a publisher waited
	drained      chan struct{} // closed when pending falls to lowWater
	lowWater     int           // set by the publisher that waits
}

// Flow control between a fast publisher and a slower subscriber: past
// highWater queued bytes the publisher's reader pauses until the queue falls
// to lowWater, so a subscriber that keeps reading sets the pace instead of
// being cut off at max_pending. A subscriber that takes nothing for
// stuckAfter is stuck: nobody waits for it again (until it moves), its queue
// grows to max_pending and it is cut, while every other subscriber goes on
// at full speed.
const (
	maxHighWater  = 4 << 20
	stuckAfter    = 50 * time.Millisecond
	maxWriteBatch = 64 << 10 // bytes per writev, so progress is seen often
)

// watermarks derive the flow-control thresholds from max_pending: pause
// publishers at 3/4 of it (as nats-server stalls them) but never later than
// 4 MB, resume at a quarter of that.
func watermarks(maxPending int64) (high, low int) {
	high = maxHighWater
	if maxPending > 0 && maxPending*3/4 < int64(high) {
		high = int(maxPending * 3 / 4)
	}
	return high, high / 4
}

// progressed records that the socket took bytes. Caller holds mu.
func (o *outbound) progressed(now time.Time) {
	o.lastProgress = now
	o.stuck = false
	if o.drained != nil && (o.pending <= o.lowWater || o.closed) {
		close(o.drained)
		o.drained = nil
	}
}

// waitDrain blocks while the queue is above low and the subscriber is
// neither closed nor stuck.
func (o *outbound) waitDrain(low int) {
	var timer *time.Timer
	o.mu.Lock()
	o.lowWater = low
	for o.pending > low && !o.closed && !o.stuck {
		if o.drained == nil {
			o.drained = make(chan struct{})
		}
		ch := o.drained
		o.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(stuckAfter)
		} else {
			timer.Reset(stuckAfter)
		}
		select {
		case <-ch:
		case <-timer.C:
		}
		o.mu.Lock()
		if time.Since(o.lastProgress) >= stuckAfter {
			o.stuck = true
		}
	}
	o.mu.Unlock()
	if timer != nil {
		timer.Stop()
	}
}

// congested reports whether a publisher should wait for this queue.
// Caller holds mu.
func (o *outbound) congested(pending, high int) bool {
	return pending > high && !o.stuck
}

// tail returns the last chunk with room for n more bytes, adding one if
// needed. Caller holds mu.
func (o *outbound) tail(n int) *[]byte {
	if k := len(o.chunks); k > 0 {
		if last := &o.chunks[k-1]; cap(*last)-len(*last) >= n {
			return last
		}
	}
	var c []byte
	if n <= chunkSize {
		c = (*chunkPool.Get().(*[]byte))[:0]
	} else {
		c = make([]byte, 0, n)
	}
	o.chunks = append(o.chunks, c)
	return &o.chunks[len(o.chunks)-1]
}

// appendRaw queues protocol bytes (PONG, +OK, -ERR, INFO).
func (o *outbound) appendRaw(b []byte) {
	o.mu.Lock()
	if !o.closed {
		t := o.tail(len(b))
		*t = append(*t, b...)
		o.pending += len(b)
	}
	o.mu.Unlock()
}

// appendMsg queues one MSG or HMSG. headerLen < 0 means no headers. It
// returns the queue length afterwards, 0 when the connection is closed, and
// -1 exactly once: when this message pushed the queue past limit (then the
// queue is closed and the caller cuts the slow consumer).
func (o *outbound) appendMsg(subj []byte, sid string, reply []byte, headerLen int, msg []byte, limit int64) int {
	n := len(subj) + len(sid) + len(reply) + len(msg) + 40
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return 0
	}
	t := o.tail(n)
	b := *t
	start := len(b)
	if headerLen >= 0 {
		b = append(b, "HMSG "...)
	} else {
		b = append(b, "MSG "...)
	}
	b = append(b, subj...)
	b = append(b, ' ')
	b = append(b, sid...)
	b = append(b, ' ')
	if len(reply) > 0 {
		b = append(b, reply...)
		b = append(b, ' ')
	}
	if headerLen >= 0 {
		b = strconv.AppendInt(b, int64(headerLen), 10)
		b = append(b, ' ')
	}
	b = strconv.AppendInt(b, int64(len(msg)), 10)
	b = append(b, '\r', '\n')
	b = append(b, msg...)
	b = append(b, '\r', '\n')
	return o.appended(t, b, start, len(msg), limit)
}

// appendFrame queues one mesh frame (pkg/mesh) for another node; the
// result is appendMsg's.
// A shown subject (not nil) makes the frame addressed to subj but shown
// as shown (mesh.FlagTo).
func (o *outbound) appendFrame(account, subj, shown, reply []byte, queues []string, plain bool, headerLen int, msg []byte, limit int64) int {
	to := []byte(nil)
	if shown != nil {
		subj, to = shown, subj
	}
	n := mesh.EncodedLenTo(account, subj, to, reply, queues, msg)
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return 0
	}
	t := o.tail(n)
	start := len(*t)
	b := mesh.AppendMessageTo(*t, account, subj, to, reply, queues, plain, headerLen, msg)
	return o.appended(t, b, start, len(msg), limit)
}

// appended stores the grown tail chunk, counts the message and applies the
// limit; it unlocks mu, which the appender took.
func (o *outbound) appended(t *[]byte, b []byte, start, msgLen int, limit int64) int {
	*t = b
	o.pending += len(b) - start
	o.msgs++
	o.bytes += int64(msgLen)
	p := o.pending
	if limit > 0 && int64(p) > limit {
		o.closed = true
		p = -1
	}
	o.mu.Unlock()
	return p
}

// take hands the queued chunks to a writer. Caller holds mu.
func (o *outbound) take() [][]byte {
	bufs := o.chunks
	o.chunks = o.spare[:0]
	o.spare = nil
	return bufs
}

// takeControl hands a writer the queued WebSocket control frames. The
// close frame must be the last thing sent, so it stays queued until no
// data does. Caller holds mu.
func (o *outbound) takeControl() [][]byte {
	ctrl := o.control
	o.control = nil
	if len(o.chunks) > 0 {
		for i, f := range ctrl {
			if f[0]&0x0F == wsOpClose {
				o.control = append(o.control, f)
				ctrl = append(ctrl[:i:i], ctrl[i+1:]...)
				break
			}
		}
	}
	return ctrl
}

// idle reports whether nothing is queued. Caller holds mu.
func (o *outbound) idle() bool { return len(o.chunks) == 0 && len(o.control) == 0 }

// takeBatch hands the writer up to maxWriteBatch bytes of chunks (at least
// one chunk). Caller holds mu.
func (o *outbound) takeBatch() [][]byte {
	k, size := 0, 0
	for k < len(o.chunks) && (k == 0 || size+len(o.chunks[k]) <= maxWriteBatch) {
		size += len(o.chunks[k])
		k++
	}
	if k == len(o.chunks) {
		return o.take()
	}
	bufs := append(o.spare[:0], o.chunks[:k]...)
	o.spare = nil
	n := copy(o.chunks, o.chunks[k:])
	clear(o.chunks[n:])
	o.chunks = o.chunks[:n]
	return bufs
}

// recycle returns written chunks to the pool and keeps the slice for
// reuse. Caller holds mu.
func (o *outbound) recycle(bufs [][]byte, written int) {
	o.pending -= written
	recycleChunks(bufs)
	o.spare = bufs[:0]
}

// inlineWriteMax is the most queued output a publisher's goroutine writes
// itself (non-blocking) before leaving it to a writer goroutine; above it
// the hand-off lets reading and writing run on different cores.
const inlineWriteMax = 8 << 10

func recycleChunks(bufs [][]byte) {
	for i, c := range bufs {
		if cap(c) == chunkSize {
			c = c[:0]
			chunkPool.Put(&c)
		}
		bufs[i] = nil
	}
}

// advance drops the first n written bytes from bufs, returning what is left
// (a new slice; the partly written chunk is resliced and leaves the pool).
func advance(bufs [][]byte, n int) [][]byte {
	var rest [][]byte
	for _, b := range bufs {
		switch {
		case n >= len(b):
			n -= len(b)
		case n > 0:
			rest = append(rest, b[n:])
			n = 0
		default:
			rest = append(rest, b)
		}
	}
	return rest
}

// writeBuffers writes bufs with one writev and reports the bytes written.
func writeBuffers(conn net.Conn, bufs [][]byte) (int, error) {
	var local [16][]byte
	nb := net.Buffers(append(local[:0], bufs...))
	n, err := nb.WriteTo(conn)
	return int(n), err
}
