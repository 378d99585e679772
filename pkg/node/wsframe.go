package node

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"
)

// WebSocket framing (RFC 6455) and permessage-deflate (RFC 7692) for the
// client connection code. The framing is our own rather than a library's:
// libraries hand out a message reader per message and want a goroutine
// blocked in it, while a frontdoor connection keeps exactly one goroutine
// (its read loop) and writes from whichever goroutine queued output.
// wsReader is fed the bytes readLoop already read and hands message
// payloads to the NATS parser in place (unmasked, no copy); wsWriter puts
// a frame header in front of the queued chunks and lets the same writev
// send them.

// Frame opcodes and header bits.
const (
	wsOpContinuation = 0x0
	wsOpText         = 0x1
	wsOpBinary       = 0x2
	wsOpClose        = 0x8
	wsOpPing         = 0x9
	wsOpPong         = 0xA

	wsFinBit   = 0x80
	wsRsv1Bit  = 0x40 // "compressed" under permessage-deflate
	wsRsv23    = 0x30
	wsMaskBit  = 0x80
	wsLenMask  = 0x7F
	wsLen16    = 126
	wsLen64    = 127
	wsMaxHdr   = 14 // 2 + 8 (length) + 4 (mask key)
	wsMaxCtrl  = 125
	wsMaxSrvHd = 10 // a server's frames are not masked
)

// Close status codes (RFC 6455 section 7.4.1).
const (
	wsCloseNormal        = 1000
	wsCloseGoingAway     = 1001
	wsCloseProtocol      = 1002
	wsCloseInvalidData   = 1007
	wsClosePolicy        = 1008
	wsCloseTooBig        = 1009
	wsCloseInternalError = 1011
)

// wsDeflateTail ends a permessage-deflate message for Go's inflater: the
// sync-flush marker the sender stripped, then an empty final block so the
// reader sees a clean end of stream.
var wsDeflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// wsProtocolError is a frame the connection cannot go on after; the
// connection answers with a close frame carrying status and text.
type wsProtocolError struct {
	status int
	text   string
}

func (e *wsProtocolError) Error() string { return e.text }

func wsFail(format string, args ...any) error {
	return &wsProtocolError{status: wsCloseProtocol, text: fmt.Sprintf(format, args...)}
}

var (
	// errWSClosed: the client sent a close frame (answered already).
	errWSClosed = errors.New("websocket closed by the client")
	// errWSMaxPayload: a compressed message inflated past max_payload.
	errWSMaxPayload = errors.New("maximum payload exceeded")
)

// wsFrameHandler receives what a wsReader decodes.
type wsFrameHandler interface {
	// wsData gets the next bytes of the message stream: unmasked and
	// inflated, valid only until it returns.
	wsData(p []byte) error
	// wsControl gets a ping, pong or close frame's payload (at most 125
	// bytes, valid until it returns).
	wsControl(op byte, payload []byte) error
}

// wsReader decodes client frames fed to it in whatever pieces the socket
// delivered. Its memory is fixed except for a compressed message, which
// is collected (at most maxDeflated bytes) and then inflated in chunks
// (at most maxPayload bytes in all).
type wsReader struct {
	requireMask bool // clients must mask (unless they asked Nats-No-Masking)
	deflate     bool // permessage-deflate was negotiated
	maxPayload  int  // inflated bytes one compressed message may hold

	hdr    [wsMaxHdr]byte
	hdrLen int // bytes of the current header collected so far

	inFrame   bool   // header done, payload bytes remain
	op        byte   // current frame's opcode
	fin       bool   // current frame is its message's last
	masked    bool   // current frame is masked
	key       uint32 // mask key, rotated to the next payload byte
	remaining uint64 // payload bytes of the current frame still to come

	inMessage  bool // a data message has begun and its final frame not come
	compressed bool // the message being received is compressed

	ctrl    [wsMaxCtrl]byte
	ctrlLen int

	deflated []byte // the compressed message so far
}

// wsMaxDeflated bounds a compressed message before inflating: deflate
// never grows data by more than a few bytes per 16 KB block, so a message
// that inflates to at most maxPayload arrives in well under this.
func wsMaxDeflated(maxPayload int) int { return maxPayload + maxPayload/64 + 1024 }

// feed decodes buf (unmasking it in place) and hands payloads and control
// frames to h. An error ends the connection: a *wsProtocolError to be
// answered with a close frame, errWSClosed, errWSMaxPayload, or h's own.
func (r *wsReader) feed(buf []byte, h wsFrameHandler) error {
	for len(buf) > 0 {
		if !r.inFrame {
			n, done, err := r.header(buf)
			buf = buf[n:]
			if err != nil {
				return err
			}
			if !done {
				return nil
			}
			if r.remaining == 0 {
				if err := r.frameDone(h); err != nil {
					return err
				}
				continue
			}
			r.inFrame = true
			continue
		}
		n := len(buf)
		if uint64(n) > r.remaining {
			n = int(r.remaining)
		}
		p := buf[:n]
		buf = buf[n:]
		r.remaining -= uint64(n)
		if r.masked {
			r.unmask(p)
		}
		switch {
		case r.op >= wsOpClose:
			r.ctrlLen += copy(r.ctrl[r.ctrlLen:], p)
		case r.compressed:
			if len(r.deflated)+n > wsMaxDeflated(r.maxPayload) {
				return errWSMaxPayload
			}
			r.deflated = append(r.deflated, p...)
		default:
			if err := h.wsData(p); err != nil {
				return err
			}
		}
		if r.remaining == 0 {
			r.inFrame = false
			if err := r.frameDone(h); err != nil {
				return err
			}
		}
	}
	return nil
}

// header collects and checks a frame header from the front of buf. It
// returns how many bytes it took and whether the header is complete.
// Bad frames are refused as soon as their first two bytes are in.
func (r *wsReader) header(buf []byte) (int, bool, error) {
	took := 0
	if r.hdrLen < 2 {
		n := copy(r.hdr[r.hdrLen:2], buf)
		r.hdrLen += n
		took += n
		if r.hdrLen < 2 {
			return took, false, nil
		}
		if err := r.check(r.hdr[0], r.hdr[1]); err != nil {
			return took, false, err
		}
	}
	b1 := r.hdr[1]
	need := 2
	switch b1 & wsLenMask {
	case wsLen16:
		need += 2
	case wsLen64:
		need += 8
	}
	if b1&wsMaskBit != 0 {
		need += 4
	}
	if r.hdrLen < need {
		n := copy(r.hdr[r.hdrLen:need], buf[took:])
		r.hdrLen += n
		took += n
		if r.hdrLen < need {
			return took, false, nil
		}
	}
	h := r.hdr[:need]
	r.hdrLen = 0
	r.op = h[0] & 0x0F
	r.fin = h[0]&wsFinBit != 0
	r.masked = b1&wsMaskBit != 0
	pos := 2
	switch b1 & wsLenMask {
	case wsLen16:
		r.remaining = uint64(binary.BigEndian.Uint16(h[2:]))
		pos = 4
	case wsLen64:
		r.remaining = binary.BigEndian.Uint64(h[2:])
		pos = 10
		if r.remaining>>63 != 0 {
			return took, false, wsFail("invalid frame length %d", r.remaining)
		}
	default:
		r.remaining = uint64(b1 & wsLenMask)
	}
	if r.masked {
		// Kept little-endian so that XOR-ing 8 bytes at a time lines up.
		r.key = binary.LittleEndian.Uint32(h[pos:])
	}
	if r.op < wsOpClose && r.compressed && r.remaining > uint64(wsMaxDeflated(r.maxPayload)) {
		return took, false, errWSMaxPayload
	}
	return took, true, nil
}

// check applies RFC 6455's rules to a frame's first two bytes.
func (r *wsReader) check(b0, b1 byte) error {
	op := b0 & 0x0F
	fin := b0&wsFinBit != 0
	rsv1 := b0&wsRsv1Bit != 0
	if r.requireMask && b1&wsMaskBit == 0 {
		return wsFail("mask bit missing")
	}
	if b0&wsRsv23 != 0 {
		return wsFail("reserved bits set (no extension defines them)")
	}
	switch op {
	case wsOpClose, wsOpPing, wsOpPong:
		if b1&wsLenMask > wsMaxCtrl {
			return wsFail("control frame length bigger than maximum allowed of %d bytes", wsMaxCtrl)
		}
		if !fin {
			return wsFail("control frame does not have final bit set")
		}
		if rsv1 {
			return wsFail("control frames cannot be compressed")
		}
		r.ctrlLen = 0
	case wsOpText, wsOpBinary:
		if r.inMessage {
			return wsFail("new message started before final frame for previous message was received")
		}
		if rsv1 && !r.deflate {
			return wsFail("compressed frame but compression was not negotiated")
		}
		r.inMessage, r.compressed = !fin, rsv1
	case wsOpContinuation:
		if !r.inMessage || rsv1 {
			return wsFail("invalid continuation frame")
		}
		r.inMessage = !fin
	default:
		return wsFail("unknown opcode %d", op)
	}
	return nil
}

// frameDone finishes a frame whose payload is all in: a control frame is
// handed over; the last frame of a compressed message is inflated.
func (r *wsReader) frameDone(h wsFrameHandler) error {
	if r.op >= wsOpClose {
		return h.wsControl(r.op, r.ctrl[:r.ctrlLen])
	}
	if r.compressed && r.fin {
		r.compressed = false
		return r.inflate(h)
	}
	return nil
}

// wsInflaters pools inflaters: each holds a 32 KB window, too much to keep
// per idle connection.
var wsInflaters sync.Pool

// inflate decompresses the collected message in chunks into the handler,
// refusing it once it passes maxPayload (as nats-server does).
func (r *wsReader) inflate(h wsFrameHandler) error {
	r.deflated = append(r.deflated, wsDeflateTail...)
	src := bytes.NewReader(r.deflated)
	fr, _ := wsInflaters.Get().(io.ReadCloser)
	if fr == nil {
		fr = flate.NewReader(src)
	} else if err := fr.(flate.Resetter).Reset(src, nil); err != nil {
		return wsFail("invalid compressed data: %v", err)
	}
	defer wsInflaters.Put(fr)
	out := readBufPool.Get().(*[]byte)
	defer readBufPool.Put(out)
	total := 0
	var err error
	for err == nil {
		var n int
		n, err = fr.Read(*out)
		if n > 0 {
			if total += n; total > r.maxPayload {
				err = errWSMaxPayload
				break
			}
			if herr := h.wsData((*out)[:n]); herr != nil {
				err = herr
				break
			}
		}
	}
	// Keep a small buffer for the next message; let a big one go.
	if cap(r.deflated) > 64<<10 {
		r.deflated = nil
	} else {
		r.deflated = r.deflated[:0]
	}
	if err == io.EOF {
		return nil
	}
	var ce flate.CorruptInputError
	if errors.As(err, &ce) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &wsProtocolError{status: wsCloseInvalidData, text: "invalid compressed data: " + err.Error()}
	}
	return err
}

// unmask XORs p with the mask key, 8 bytes at a time where it can.
func (r *wsReader) unmask(p []byte) {
	k := r.key
	if len(p) >= 8 {
		k64 := uint64(k) | uint64(k)<<32
		for len(p) >= 8 {
			binary.LittleEndian.PutUint64(p, binary.LittleEndian.Uint64(p)^k64)
			p = p[8:]
		}
	}
	for i := range p {
		p[i] ^= byte(k)
		k = k>>8 | k<<24
	}
	r.key = k
}

// wsCloseStatus picks the close frame status for a connection closed for
// reason, as nats-server maps its closed states.
func wsCloseStatus(reason string) int {
	switch reason {
	case "Client Closed":
		return wsCloseNormal
	case "Server Shutdown":
		return wsCloseGoingAway
	case "Parse Error", "Protocol Violation":
		return wsCloseProtocol
	case "Maximum Message Payload Exceeded":
		return wsCloseTooBig
	case "Authentication Timeout", "Authentication Failure", "Authentication Expired",
		"Slow Consumer (Pending Bytes)", "Slow Consumer (Write Deadline)",
		"Maximum Account Connections Exceeded", "Maximum Connections Exceeded",
		"Maximum Control Line Exceeded", "Maximum Subscriptions Exceeded", "Revocation":
		return wsClosePolicy
	}
	return wsCloseInternalError
}

// wsControlFrame builds an unmasked control frame (payload at most 125).
func wsControlFrame(op byte, payload []byte) []byte {
	f := make([]byte, 2, 2+len(payload))
	f[0] = wsFinBit | op
	f[1] = byte(len(payload))
	return append(f, payload...)
}

// wsCloseFrame builds a close frame with status and text (cut to fit,
// ending in "..." as nats-server does, and kept valid UTF-8).
func wsCloseFrame(status int, text string) []byte {
	if len(text) > wsMaxCtrl-2 {
		text = text[:wsMaxCtrl-5]
		for !utf8.ValidString(text) {
			text = text[:len(text)-1]
		}
		text += "..."
	}
	p := make([]byte, 2, 2+len(text))
	binary.BigEndian.PutUint16(p, uint16(status))
	return wsControlFrame(wsOpClose, append(p, text...))
}

// wsCloseReply is the close frame that answers a client's close frame:
// its status echoed (1000 when it gave none or an invalid body).
func wsCloseReply(payload []byte) []byte {
	status := wsCloseNormal
	if len(payload) >= 2 {
		status = int(binary.BigEndian.Uint16(payload))
		if !utf8.Valid(payload[2:]) {
			return wsCloseFrame(wsCloseInvalidData, "invalid utf8 body in close frame")
		}
	}
	return wsCloseFrame(status, "")
}

// wsCompressThreshold: output this small goes out uncompressed (as on
// nats-server), deflate would not win anything.
const wsCompressThreshold = 64

// wsBrowserFrameMax bounds the frames sent to browsers, which nats-server
// found to cope better with small frames.
const wsBrowserFrameMax = 4096

// wsWriter frames a connection's outgoing bytes. Only the goroutine that
// owns the connection's write side (outbound.writing, or closeConnection
// once no writer runs) uses it.
type wsWriter struct {
	compress bool // permessage-deflate negotiated
	frameMax int  // largest frame payload; 0: one frame per write
	// noFragCompressed keeps a compressed message in one frame (Safari
	// does not accept fragmented compressed messages).
	noFragCompressed bool
	// leftover is framed bytes a partial non-blocking write left over;
	// they go out before anything else.
	leftover [][]byte
	out      [][]byte   // frame's result, reused
	held     []*[]byte  // pooled buffers the frames in flight point into
	sink     appendSink // the deflater's output
}

var (
	wsScratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}
	wsDeflaters   sync.Pool // *flate.Writer: each holds about 1 MB of tables
)

// appendSink is an io.Writer that appends to a slice.
type appendSink struct{ b []byte }

func (s *appendSink) Write(p []byte) (int, error) { s.b = append(s.b, p...); return len(p), nil }

// frame returns what goes on the wire for control frames ctrl (already
// framed) and data (NATS protocol bytes): any leftover first, then the
// control frames, then data as binary frames. The result stays valid
// until release.
func (w *wsWriter) frame(ctrl, data [][]byte) [][]byte {
	out := append(w.out[:0], w.leftover...)
	w.leftover = nil
	var closing []byte // a close frame goes after the data
	for _, f := range ctrl {
		if f[0]&0x0F == wsOpClose {
			closing = f
		} else {
			out = append(out, f)
		}
	}
	size := buffersLen(data)
	switch {
	case size == 0:
	case w.compress && size > wsCompressThreshold:
		p := w.deflate(data, size)
		out = w.appendFrames(out, [][]byte{p}, len(p), true)
	default:
		out = w.appendFrames(out, data, size, false)
	}
	w.out = out
	if closing != nil {
		w.out = append(w.out, closing)
	}
	return w.out
}

// scratch takes a pooled buffer of at least n bytes, held until release.
func (w *wsWriter) scratch(n int) *[]byte {
	b := wsScratchPool.Get().(*[]byte)
	if cap(*b) < n {
		*b = make([]byte, 0, n)
	}
	w.held = append(w.held, b)
	return b
}

// release returns the buffers of frames that have been written.
func (w *wsWriter) release() {
	for _, b := range w.held {
		if cap(*b) <= 1<<20 {
			*b = (*b)[:0]
			wsScratchPool.Put(b)
		}
	}
	clear(w.held)
	w.held = w.held[:0]
	clear(w.out)
	w.out = w.out[:0]
}

// deflate compresses data as one permessage-deflate message (no context
// takeover: every message starts afresh).
func (w *wsWriter) deflate(data [][]byte, size int) []byte {
	buf := w.scratch(size + size/8 + 64)
	w.sink.b = (*buf)[:0]
	fw, _ := wsDeflaters.Get().(*flate.Writer)
	if fw == nil {
		fw, _ = flate.NewWriter(&w.sink, flate.BestSpeed) // BestSpeed is a valid level
	} else {
		fw.Reset(&w.sink)
	}
	for _, b := range data {
		fw.Write(b) // writes to a slice cannot fail
	}
	fw.Flush()
	wsDeflaters.Put(fw)
	*buf = w.sink.b
	w.sink.b = nil
	p := *buf
	// Flush ends with an empty stored block, 00 00 ff ff, which RFC 7692
	// has the sender strip.
	if len(p) >= 4 && p[len(p)-4] == 0 && p[len(p)-3] == 0 && p[len(p)-2] == 0xff && p[len(p)-1] == 0xff {
		p = p[:len(p)-4]
	}
	return p
}

// appendFrames appends payload (size bytes over several slices) to out
// as one binary message: one frame, or frames of at most frameMax bytes.
func (w *wsWriter) appendFrames(out, payload [][]byte, size int, compressed bool) [][]byte {
	max := w.frameMax
	if max <= 0 || (compressed && w.noFragCompressed) {
		max = size
	}
	frames := (size + max - 1) / max
	hb := w.scratch(frames * wsMaxSrvHd)
	hdrs := (*hb)[:0] // sized up front: the headers never move
	first := true
	i, off := 0, 0 // next payload byte: payload[i][off]; payload itself is the caller's
	for size > 0 {
		n := min(size, max)
		size -= n
		start := len(hdrs)
		hdrs = wsAppendHeader(hdrs, first, size == 0, compressed && first, n)
		out = append(out, hdrs[start:])
		first = false
		for n > 0 {
			b := payload[i][off:]
			if len(b) > n {
				out = append(out, b[:n])
				off += n
				break
			}
			if len(b) > 0 {
				out = append(out, b)
			}
			n -= len(b)
			i, off = i+1, 0
		}
	}
	*hb = hdrs
	return out
}

// wsAppendHeader appends an unmasked binary (or continuation) frame
// header for n payload bytes.
func wsAppendHeader(b []byte, first, final, compressed bool, n int) []byte {
	var b0 byte
	if first {
		b0 = wsOpBinary
		if compressed {
			b0 |= wsRsv1Bit
		}
	}
	if final {
		b0 |= wsFinBit
	}
	switch {
	case n <= wsMaxCtrl:
		return append(b, b0, byte(n))
	case n < 1<<16:
		return append(b, b0, wsLen16, byte(n>>8), byte(n))
	default:
		b = append(b, b0, wsLen64)
		return binary.BigEndian.AppendUint64(b, uint64(n))
	}
}

// buffersLen is the total length of bufs.
func buffersLen(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}
