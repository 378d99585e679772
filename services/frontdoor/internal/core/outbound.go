package core

import (
	"net"
	"strconv"
	"sync"
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
// returns the queue length afterwards (0 when the connection is closed).
func (o *outbound) appendMsg(subj []byte, sid string, reply []byte, headerLen int, msg []byte) int {
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
	*t = b
	o.pending += len(b) - start
	o.msgs++
	o.bytes += int64(len(msg))
	p := o.pending
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

// recycle returns written chunks to the pool and keeps the slice for
// reuse. Caller holds mu.
func (o *outbound) recycle(bufs [][]byte, written int) {
	o.pending -= written
	for i, c := range bufs {
		if cap(c) == chunkSize {
			c = c[:0]
			chunkPool.Put(&c)
		}
		bufs[i] = nil
	}
	o.spare = bufs[:0]
}

// writeBuffers writes bufs with one writev and reports the bytes written.
func writeBuffers(conn net.Conn, bufs [][]byte) (int, error) {
	var local [16][]byte
	nb := net.Buffers(append(local[:0], bufs...))
	n, err := nb.WriteTo(conn)
	return int(n), err
}
