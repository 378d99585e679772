package node

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// wsRecorder is a wsFrameHandler that keeps what it is given.
type wsRecorder struct {
	data []byte
	ctrl []string
}

func (r *wsRecorder) wsData(p []byte) error { r.data = append(r.data, p...); return nil }

func (r *wsRecorder) wsControl(op byte, payload []byte) error {
	r.ctrl = append(r.ctrl, fmt.Sprintf("%d:%q", op, payload))
	if op == wsOpClose {
		return errWSClosed
	}
	return nil
}

// clientFrame builds a frame as a client sends it: masked with key (nil:
// unmasked), with the given first byte (FIN, RSV and opcode).
func clientFrame(b0 byte, payload []byte, key []byte) []byte {
	f := []byte{b0}
	var lb byte
	if key != nil {
		lb = wsMaskBit
	}
	switch n := len(payload); {
	case n <= 125:
		f = append(f, lb|byte(n))
	case n < 1<<16:
		f = append(f, lb|wsLen16, byte(n>>8), byte(n))
	default:
		f = append(f, lb|wsLen64)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	if key == nil {
		return append(f, payload...)
	}
	f = append(f, key...)
	for i, b := range payload {
		f = append(f, b^key[i%4])
	}
	return f
}

// deflateMsg compresses p as permessage-deflate does (trailer stripped).
func deflateMsg(t testing.TB, p []byte) []byte {
	var b bytes.Buffer
	testDeflater.Lock()
	defer testDeflater.Unlock()
	if testDeflater.w == nil {
		fw, err := flate.NewWriter(&b, flate.BestSpeed)
		require.NoError(t, err)
		testDeflater.w = fw
	}
	testDeflater.w.Reset(&b) // a new writer per message made each fuzz input cost ~1 MB of allocation
	testDeflater.w.Write(p)
	testDeflater.w.Flush()
	out := b.Bytes()
	return out[:len(out)-4]
}

var testDeflater struct {
	sync.Mutex
	w *flate.Writer
}

// feedIn feeds stream to a reader in pieces of the given sizes (cycled).
func feedIn(r *wsReader, h wsFrameHandler, stream []byte, sizes []int) error {
	buf := append([]byte(nil), stream...) // feed unmasks in place
	for i := 0; len(buf) > 0; i++ {
		n := min(len(buf), sizes[i%len(sizes)])
		if err := r.feed(buf[:n], h); err != nil {
			return err
		}
		buf = buf[n:]
	}
	return nil
}

func newTestReader(maxPayload int) *wsReader {
	return &wsReader{requireMask: true, deflate: true, maxPayload: maxPayload}
}

// Frames decode the same however the socket cuts them: fragmented
// messages, control frames between fragments, 16- and 64-bit lengths,
// compressed messages over several frames.
func TestWebSocketReaderFrames(t *testing.T) {
	key := []byte{1, 2, 3, 4}
	big := bytes.Repeat([]byte("PUB x 3\r\nabc\r\n"), 5000) // > 64 KB: a 64-bit length
	var stream []byte
	stream = append(stream, clientFrame(wsOpBinary, []byte("PUB a 5\r\nhel"), key)...)
	stream = append(stream, clientFrame(wsFinBit|wsOpPing, []byte("p1"), key)...)
	stream = append(stream, clientFrame(wsOpContinuation, []byte("lo"), key)...)
	stream = append(stream, clientFrame(wsFinBit|wsOpContinuation, []byte("\r\n"), key)...)
	stream = append(stream, clientFrame(wsFinBit|wsOpText, bytes.Repeat([]byte("x"), 300), key)...)
	stream = append(stream, clientFrame(wsFinBit|wsOpBinary, big, key)...)
	z := deflateMsg(t, []byte("PING\r\nPING\r\n"))
	stream = append(stream, clientFrame(wsRsv1Bit|wsOpBinary, z[:3], key)...)
	stream = append(stream, clientFrame(wsFinBit|wsOpContinuation, z[3:], key)...)
	stream = append(stream, clientFrame(wsFinBit|wsOpBinary, nil, key)...)
	stream = append(stream, clientFrame(wsFinBit|wsOpClose, []byte{0x03, 0xe8, 'b', 'y', 'e'}, key)...)
	want := "PUB a 5\r\nhello\r\n" + string(bytes.Repeat([]byte("x"), 300)) + string(big) + "PING\r\nPING\r\n"

	for _, sizes := range [][]int{{len(stream)}, {1}, {2, 3, 5, 7}, {13}, {4096}} {
		rec := &wsRecorder{}
		err := feedIn(newTestReader(1<<20), rec, stream, sizes)
		require.ErrorIs(t, err, errWSClosed, "sizes %v", sizes)
		require.Equal(t, want, string(rec.data), "sizes %v", sizes)
		require.Equal(t, []string{`9:"p1"`, `8:"\x03\xe8bye"`}, rec.ctrl)
	}
}

// Every refusal: each is a protocol error (answered with a close frame),
// decided from the frame header without reading the payload.
func TestWebSocketReaderRefusals(t *testing.T) {
	key := []byte{9, 8, 7, 6}
	for name, tc := range map[string]struct {
		stream []byte
		want   string
	}{
		"unmasked":            {clientFrame(wsFinBit|wsOpBinary, []byte("PING\r\n"), nil), "mask bit missing"},
		"control too long":    {clientFrame(wsFinBit|wsOpPing, make([]byte, 126), key), "control frame length bigger than maximum allowed of 125 bytes"},
		"fragmented control":  {clientFrame(wsOpPing, []byte("x"), key), "control frame does not have final bit set"},
		"compressed control":  {clientFrame(wsFinBit|wsRsv1Bit|wsOpPing, []byte("x"), key), "control frames cannot be compressed"},
		"reserved bits":       {clientFrame(wsFinBit|0x20|wsOpBinary, []byte("x"), key), "reserved bits set"},
		"unknown opcode":      {clientFrame(wsFinBit|0x3, []byte("x"), key), "unknown opcode 3"},
		"lone continuation":   {clientFrame(wsFinBit|wsOpContinuation, []byte("x"), key), "invalid continuation frame"},
		"interleaved message": {append(clientFrame(wsOpBinary, []byte("x"), key), clientFrame(wsFinBit|wsOpBinary, []byte("y"), key)...), "new message started before final frame"},
		"huge length":         {[]byte{wsFinBit | wsOpBinary, wsMaskBit | wsLen64, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, "invalid frame length"},
		"corrupt deflate":     {clientFrame(wsFinBit|wsRsv1Bit|wsOpBinary, []byte{0xff, 0xff, 0xff, 0xff}, key), "invalid compressed data"},
	} {
		t.Run(name, func(t *testing.T) {
			rec := &wsRecorder{}
			err := feedIn(newTestReader(1<<20), rec, tc.stream, []int{1})
			var pe *wsProtocolError
			require.True(t, errors.As(err, &pe), "got %v", err)
			require.Contains(t, pe.text, tc.want)
		})
	}
	rec := &wsRecorder{}
	r := &wsReader{requireMask: true, maxPayload: 1 << 20}
	err := feedIn(r, rec, clientFrame(wsFinBit|wsRsv1Bit|wsOpBinary, deflateMsg(t, []byte("PING\r\n")), key), []int{64})
	require.ErrorContains(t, err, "compression was not negotiated")
}

// A compressed message may not inflate past max_payload (a compression
// bomb), nor arrive larger than such a message could be compressed; the
// reader's memory stays bounded either way.
func TestWebSocketReaderCompressionBomb(t *testing.T) {
	key := []byte{1, 1, 1, 1}
	bomb := deflateMsg(t, make([]byte, 10<<20)) // 10 MB of zeros: about 10 KB
	require.Less(t, len(bomb), 64<<10)
	rec := &wsRecorder{}
	err := feedIn(newTestReader(1<<20), rec, clientFrame(wsFinBit|wsRsv1Bit|wsOpBinary, bomb, key), []int{4096})
	require.ErrorIs(t, err, errWSMaxPayload)
	require.LessOrEqual(t, len(rec.data), 1<<20, "never more than max_payload handed on")

	// A compressed frame announcing more than max_payload could need is
	// refused from its header.
	r := newTestReader(1 << 10)
	hdr := []byte{wsRsv1Bit | wsOpBinary | wsFinBit, wsMaskBit | wsLen64, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4}
	require.ErrorIs(t, r.feed(hdr, rec), errWSMaxPayload)

	// Fragments that add up to too much are refused as they come.
	r = newTestReader(1 << 10)
	var stream []byte
	stream = append(stream, clientFrame(wsRsv1Bit|wsOpBinary, make([]byte, 1000), key)...)
	for range 5 {
		stream = append(stream, clientFrame(wsOpContinuation, make([]byte, 1000), key)...)
	}
	require.ErrorIs(t, feedIn(r, rec, stream, []int{512}), errWSMaxPayload)
	require.LessOrEqual(t, cap(r.deflated), 4<<10)
}

// An uncompressed frame is a stream: a header announcing a huge length
// costs nothing until bytes come, and they go straight to the parser.
func TestWebSocketReaderHugeFrameStreams(t *testing.T) {
	r := newTestReader(1 << 10)
	rec := &wsRecorder{}
	hdr := []byte{wsFinBit | wsOpBinary, wsMaskBit | wsLen64, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	require.NoError(t, r.feed(hdr, rec))
	require.NoError(t, r.feed([]byte("PING\r\n"), rec))
	require.Equal(t, "PING\r\n", string(rec.data))
	require.Equal(t, uint64(1<<40-6), r.remaining)
}

// The writer frames queued chunks without copying them, splits for
// browsers, compresses past the threshold, and sends a close frame last.
func TestWebSocketWriter(t *testing.T) {
	data := [][]byte{[]byte("MSG a 1 5\r\nhello\r\n"), []byte("PONG\r\n")}
	w := &wsWriter{}
	out := w.frame([][]byte{wsControlFrame(wsOpPong, []byte("p")), wsCloseFrame(wsCloseNormal, "bye")}, data)
	got := bytes.Join(out, nil)
	require.Equal(t, "\x8a\x01p\x82\x18MSG a 1 5\r\nhello\r\nPONG\r\n\x88\x05\x03\xe8bye", string(got))
	w.release()

	w = &wsWriter{frameMax: 10}
	got = bytes.Join(w.frame(nil, data), nil)
	require.Equal(t, "\x02\x0aMSG a 1 5\r\x00\x0a\nhello\r\nPO\x80\x04NG\r\n", string(got))
	w.release()

	w = &wsWriter{compress: true}
	payload := bytes.Repeat([]byte("MSG a 1 5\r\nhello\r\n"), 100)
	got = bytes.Join(w.frame(nil, [][]byte{payload}), nil)
	require.Equal(t, byte(wsFinBit|wsRsv1Bit|wsOpBinary), got[0])
	require.Less(t, len(got), len(payload)/4)
	// Our own reader inflates it back (the client side does the same).
	r := &wsReader{deflate: true, maxPayload: 1 << 20}
	rec := &wsRecorder{}
	require.NoError(t, r.feed(got, rec))
	require.Equal(t, payload, rec.data)
	w.release()

	w = &wsWriter{compress: true}
	got = bytes.Join(w.frame(nil, [][]byte{[]byte("PONG\r\n")}), nil)
	require.Equal(t, "\x82\x06PONG\r\n", string(got), "small output is not compressed")
}

// FuzzWebSocketFrames feeds arbitrary bytes, cut into arbitrary reads, to
// the frame reader: it must not panic, must decode the same however the
// stream is cut, and must keep its memory within the limits. The
// second half frames the input as a client would (fragments, masks,
// compression) and checks it comes back unchanged.
func FuzzWebSocketFrames(f *testing.F) {
	f.Add(clientFrame(wsFinBit|wsOpBinary, []byte("PING\r\n"), []byte{1, 2, 3, 4}), []byte{3, 1}, false, uint8(7))
	f.Add(append(clientFrame(wsOpBinary, []byte("PU"), []byte{1, 2, 3, 4}), clientFrame(wsFinBit, []byte("B a 1\r\nx\r\n"), []byte{5, 6, 7, 8})...), []byte{1}, true, uint8(3))
	f.Add(clientFrame(wsFinBit|wsRsv1Bit|wsOpBinary, deflateMsg(f, make([]byte, 5000)), []byte{0, 0, 0, 0}), []byte{200}, true, uint8(0))
	f.Add([]byte{wsFinBit | wsOpBinary, wsMaskBit | wsLen64, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, []byte{}, false, uint8(1))
	f.Fuzz(func(t *testing.T, stream, cuts []byte, mask bool, frag uint8) {
		const maxPayload = 4096
		decode := func(sizes []int) (string, []string, error) {
			r := &wsReader{requireMask: mask, deflate: true, maxPayload: maxPayload}
			rec := &wsRecorder{}
			err := feedIn(r, rec, stream, sizes)
			if cap(r.deflated) > wsMaxDeflated(maxPayload)+len(wsDeflateTail)+4096 {
				t.Fatalf("reader holds %d compressed bytes", cap(r.deflated))
			}
			return string(rec.data), rec.ctrl, err
		}
		data, ctrl, err := decode([]int{len(stream) + 1})
		sizes := []int{1}
		if len(cuts) > 0 {
			sizes = sizes[:0]
			for _, c := range cuts {
				sizes = append(sizes, 1+int(c%64))
			}
		}
		data2, ctrl2, err2 := decode(sizes)
		if data != data2 || fmt.Sprint(ctrl) != fmt.Sprint(ctrl2) || fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Fatalf("cut differently, decoded differently:\n%q %v %v\n%q %v %v", data, ctrl, err, data2, ctrl2, err2)
		}

		// Round trip: stream as a message, split into fragments of frag
		// bytes (0: one frame), compressed when mask is false.
		var framed []byte
		msg := stream
		b0 := byte(wsOpBinary)
		if !mask {
			msg = deflateMsg(t, stream)
			b0 |= wsRsv1Bit
		}
		step := int(frag)
		if step == 0 {
			step = len(msg) + 1
		}
		for first := true; first || len(msg) > 0; first = false {
			n := min(step, len(msg))
			b := b0
			if !first {
				b = wsOpContinuation
			}
			if n == len(msg) {
				b |= wsFinBit
			}
			framed = append(framed, clientFrame(b, msg[:n], []byte{byte(n), 0x5a, 0xa5, 7})...)
			msg = msg[n:]
		}
		r := &wsReader{requireMask: true, deflate: true, maxPayload: 1 << 20}
		rec := &wsRecorder{}
		if err := feedIn(r, rec, framed, sizes); err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if !bytes.Equal(rec.data, stream) {
			t.Fatalf("round trip: got %q, want %q", rec.data, stream)
		}
	})
}

type discardHandler struct{ n int }

func (d *discardHandler) wsData(p []byte) error        { d.n += len(p); return nil }
func (d *discardHandler) wsControl(byte, []byte) error { return nil }

// The read and write paths allocate nothing per frame.
func BenchmarkWebSocketRead(b *testing.B) {
	frame := clientFrame(wsFinBit|wsOpBinary, bytes.Repeat([]byte("PUB bench.sub 16\r\n0123456789abcdef\r\n"), 900), []byte{1, 2, 3, 4})
	buf := make([]byte, len(frame))
	r := &wsReader{requireMask: true, maxPayload: 1 << 20}
	h := &discardHandler{}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, frame)
		if err := r.feed(buf, h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWebSocketWrite(b *testing.B) {
	chunk := bytes.Repeat([]byte("MSG bench.sub 1 16\r\n0123456789abcdef\r\n"), 800)
	data := [][]byte{chunk, chunk}
	w := &wsWriter{}
	b.SetBytes(int64(2 * len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		if out := w.frame(nil, data); len(out) != 3 {
			b.Fatal(len(out))
		}
		w.release()
	}
}
