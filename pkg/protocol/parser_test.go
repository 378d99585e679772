package protocol

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// recorder is a Handler that writes down every call, copying the arguments
// (the parser only lends them for the duration of the call).
type recorder struct {
	ops []string
	// failOn makes the handler return errHandler for this operation name.
	failOn string
	// maxPayload is the parser's limit, checked on every PUB.
	maxPayload int
}

var errHandler = fmt.Errorf("handler refused")

func show(b []byte) string {
	if b == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%q", b)
}

func (r *recorder) add(name, s string) error {
	r.ops = append(r.ops, s)
	if name == r.failOn {
		return errHandler
	}
	return nil
}

func (r *recorder) Connect(arg []byte) error { return r.add("CONNECT", "CONNECT "+show(arg)) }
func (r *recorder) Pub(subject, reply []byte, headerLen int, msg []byte) error {
	// What a handler relies on; a violation is recorded as BAD so every
	// test (and the fuzzer) reports it.
	if len(subject) == 0 || (reply != nil && len(reply) == 0) || headerLen < -1 ||
		headerLen > len(msg) || len(msg) > r.maxPayload {
		r.ops = append(r.ops, fmt.Sprintf("BAD PUB %s %s %d %d", show(subject), show(reply), headerLen, len(msg)))
	}
	return r.add("PUB", fmt.Sprintf("PUB %s %s %d %s", show(subject), show(reply), headerLen, show(msg)))
}
func (r *recorder) Sub(subject, queue, sid []byte) error {
	if len(subject) == 0 || len(sid) == 0 || (queue != nil && len(queue) == 0) {
		r.ops = append(r.ops, fmt.Sprintf("BAD SUB %s %s %s", show(subject), show(queue), show(sid)))
	}
	return r.add("SUB", fmt.Sprintf("SUB %s %s %s", show(subject), show(queue), show(sid)))
}
func (r *recorder) Unsub(sid []byte, max int64) error {
	return r.add("UNSUB", fmt.Sprintf("UNSUB %s %d", show(sid), max))
}
func (r *recorder) Ping() error          { return r.add("PING", "PING") }
func (r *recorder) Pong() error          { return r.add("PONG", "PONG") }
func (r *recorder) Err(arg []byte) error { return r.add("ERR", "ERR "+show(arg)) }

// limits configures a parser for one case; zero values mean the defaults.
type limits struct {
	maxControl int
	maxPayload int
	headers    bool
	failOn     string
}

// outcome is what a stream did: the handler calls and the error that ended
// it (nil when the stream was consumed without one).
type outcome struct {
	ops []string
	err error
}

func (o outcome) String() string {
	return fmt.Sprintf("ops=%q err=%v", o.ops, o.err)
}

func newParser(l limits) (*Parser, *recorder) {
	r := &recorder{failOn: l.failOn}
	p := New(r)
	if l.maxControl > 0 {
		p.MaxControlLine = l.maxControl
	}
	if l.maxPayload > 0 {
		p.MaxPayload = l.maxPayload
	}
	p.Headers = l.headers
	r.maxPayload = p.MaxPayload
	return p, r
}

// feed parses stream cut at the given chunk sizes (the last chunk takes what
// is left) and stops at the first error, as a connection would.
func feed(l limits, stream []byte, sizes []int) outcome {
	p, r := newParser(l)
	for len(stream) > 0 {
		n := len(stream)
		if len(sizes) > 0 {
			n = min(sizes[0], n)
			sizes = sizes[1:]
		}
		// Parse must not keep the caller's buffer: hand it a copy and
		// scribble over it afterwards.
		chunk := append([]byte(nil), stream[:n]...)
		err := p.Parse(chunk)
		for i := range chunk {
			chunk[i] = '#'
		}
		stream = stream[n:]
		if err != nil {
			return outcome{r.ops, err}
		}
	}
	return outcome{r.ops, nil}
}

func fixed(n, total int) []int {
	s := make([]int, 0, total/n+1)
	for i := 0; i < total; i += n {
		s = append(s, n)
	}
	return s
}

func randomSizes(rng *rand.Rand, total, maxChunk int) []int {
	var s []int
	for total > 0 {
		n := 1 + rng.IntN(maxChunk)
		s = append(s, n)
		total -= n
	}
	return s
}

// parseEveryWay parses stream whole, then cut at every byte boundary, in 1-,
// 2- and 3-byte chunks and in random chunks, requires every way to give the
// same outcome and returns it.
func parseEveryWay(t testing.TB, l limits, stream []byte) outcome {
	t.Helper()
	want := feed(l, stream, nil)
	check := func(how string, sizes []int) {
		t.Helper()
		got := feed(l, stream, sizes)
		if got.String() != want.String() {
			t.Fatalf("stream %q parsed %s:\n got  %v\n want %v (whole)", stream, how, got, want)
		}
	}
	for i := 1; i < len(stream); i++ {
		check(fmt.Sprintf("cut at %d", i), []int{i})
	}
	for _, n := range []int{1, 2, 3} {
		check(fmt.Sprintf("in %d-byte chunks", n), fixed(n, len(stream)))
	}
	rng := rand.New(rand.NewPCG(uint64(len(stream)), 42))
	for i := 0; i < 20; i++ {
		sizes := randomSizes(rng, len(stream), 1+len(stream)/3)
		check(fmt.Sprintf("in chunks %v", sizes), sizes)
	}
	return want
}

type parseCase struct {
	name   string
	limits limits
	stream string
	ops    []string
	err    error
}

func runCases(t *testing.T, cases []parseCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := parseEveryWay(t, tc.limits, []byte(tc.stream))
			require.Equal(t, tc.ops, got.ops, "stream %q", tc.stream)
			require.Equal(t, tc.err, got.err, "stream %q", tc.stream)
		})
	}
}

var headersOn = limits{headers: true}

func TestParserOperations(t *testing.T) {
	runCases(t, []parseCase{
		{name: "pub", stream: "PUB foo 5\r\nhello\r\n",
			ops: []string{`PUB "foo" <nil> -1 "hello"`}},
		{name: "pub with reply", stream: "PUB foo _INBOX.1 5\r\nhello\r\n",
			ops: []string{`PUB "foo" "_INBOX.1" -1 "hello"`}},
		{name: "pub empty payload", stream: "PUB foo 0\r\n\r\n",
			ops: []string{`PUB "foo" <nil> -1 ""`}},
		{name: "pub payload holding CRLF and ops", stream: "PUB foo 12\r\nPING\r\nPONG\r\n\r\n",
			ops: []string{`PUB "foo" <nil> -1 "PING\r\nPONG\r\n"`}},
		{name: "hpub", limits: headersOn, stream: "HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
			ops: []string{`PUB "foo" <nil> 12 "NATS/1.0\r\n\r\nhi"`}},
		{name: "hpub with reply", limits: headersOn, stream: "HPUB foo r 12 12\r\nNATS/1.0\r\n\r\n\r\n",
			ops: []string{`PUB "foo" "r" 12 "NATS/1.0\r\n\r\n"`}},
		// nats-server delivers these as MSG: no header block is no header.
		{name: "hpub zero header", limits: headersOn, stream: "HPUB foo 0 2\r\nhi\r\n",
			ops: []string{`PUB "foo" <nil> -1 "hi"`}},
		{name: "sub", stream: "SUB foo 1\r\n", ops: []string{`SUB "foo" <nil> "1"`}},
		{name: "sub with queue", stream: "SUB foo.* workers 22\r\n", ops: []string{`SUB "foo.*" "workers" "22"`}},
		{name: "unsub", stream: "UNSUB 1\r\n", ops: []string{`UNSUB "1" 0`}},
		{name: "unsub with max", stream: "UNSUB 1 10\r\n", ops: []string{`UNSUB "1" 10`}},
		{name: "unsub max zero", stream: "UNSUB 1 0\r\n", ops: []string{`UNSUB "1" 0`}},
		// nats-server reads a bad max as none: the subscription ends now.
		{name: "unsub bad max", stream: "UNSUB 1 ten\r\nUNSUB 2 1234567890\r\n",
			ops: []string{`UNSUB "1" 0`, `UNSUB "2" 0`}},
		{name: "ping pong", stream: "PING\r\nPONG\r\n", ops: []string{"PING", "PONG"}},
		{name: "connect", stream: "CONNECT {\"verbose\":false}\r\n", ops: []string{`CONNECT "{\"verbose\":false}"`}},
		{name: "connect without blank", stream: "CONNECT{}\r\n", ops: []string{`CONNECT "{}"`}},
		{name: "connect alone", stream: "CONNECT\r\n", ops: []string{`CONNECT ""`}},
		{name: "+OK ignored", stream: "+OK\r\nPING\r\n", ops: []string{"PING"}},
		{name: "-ERR", stream: "-ERR 'Slow Consumer'\r\n", ops: []string{`ERR "'Slow Consumer'"`}},
		{name: "INFO ignored", stream: "INFO {\"server_id\":\"x\"}\r\nINFO null\r\nPING\r\n", ops: []string{"PING"}},
		{name: "all in one read", limits: headersOn,
			stream: "CONNECT {}\r\nSUB a 1\r\nSUB a q 2\r\nPUB a 1\r\nx\r\nHPUB a r 4 5\r\n\r\n\r\ny\r\nUNSUB 1 3\r\nUNSUB 2\r\nPING\r\nPONG\r\n+OK\r\n-ERR 'x'\r\n",
			ops: []string{`CONNECT "{}"`, `SUB "a" <nil> "1"`, `SUB "a" "q" "2"`, `PUB "a" <nil> -1 "x"`,
				`PUB "a" "r" 4 "\r\n\r\ny"`, `UNSUB "1" 3`, `UNSUB "2" 0`, "PING", "PONG", `ERR "'x'"`}},
	})
}

func TestParserLenientSyntax(t *testing.T) {
	runCases(t, []parseCase{
		{name: "lower case", limits: headersOn,
			stream: "connect {}\r\nsub a 1\r\npub a 1\r\nx\r\nhpub a 0 1\r\ny\r\nunsub 1\r\nping\r\npong\r\n+ok\r\n-err 'e'\r\n",
			ops: []string{`CONNECT "{}"`, `SUB "a" <nil> "1"`, `PUB "a" <nil> -1 "x"`, `PUB "a" <nil> -1 "y"`,
				`UNSUB "1" 0`, "PING", "PONG", `ERR "'e'"`}},
		{name: "mixed case", stream: "Pub a 1\r\nx\r\nsUb a 1\r\nPiNg\r\n",
			ops: []string{`PUB "a" <nil> -1 "x"`, `SUB "a" <nil> "1"`, "PING"}},
		{name: "tabs", stream: "PUB\ta\t1\r\nx\r\nSUB\ta\tq\t1\r\nUNSUB\t1\t2\r\n",
			ops: []string{`PUB "a" <nil> -1 "x"`, `SUB "a" "q" "1"`, `UNSUB "1" 2`}},
		{name: "runs of blanks", stream: "PUB  \t a \t\t r   1  \r\nx\r\nSUB   a    1   \r\nCONNECT \t {}\r\n",
			ops: []string{`PUB "a" "r" -1 "x"`, `SUB "a" <nil> "1"`, `CONNECT "{}"`}},
		{name: "bare LF", limits: headersOn, stream: "CONNECT {}\nSUB a 1\nPUB a 1\nx\r\nHPUB a 0 1\ny\r\nPING\nPONG\n",
			ops: []string{`CONNECT "{}"`, `SUB "a" <nil> "1"`, `PUB "a" <nil> -1 "x"`, `PUB "a" <nil> -1 "y"`, "PING", "PONG"}},
		{name: "text after PING PONG +OK", stream: "PINGxyz\r\nPING more stuff\r\nPONG!\r\n+OKAY\r\n+OK then\r\n",
			ops: []string{"PING", "PING", "PONG"}},
		// nats-server drops the last byte before the newline once it has
		// seen a CR; a PUB size with a second CR left is not a number.
		{name: "pub CR inside size", stream: "PUB foo 1\r\r\nx\r\n", err: ErrBadArgs},
		{name: "sub CR is a blank", stream: "SUB foo\r1\r\n", ops: []string{`SUB "foo" <nil> "1"`}},
	})
}

func TestParserErrors(t *testing.T) {
	runCases(t, []parseCase{
		{name: "unknown op", stream: "PING\r\nFOO bar\r\n", ops: []string{"PING"}, err: ErrUnknownOp},
		{name: "unknown op without newline", stream: "PING\r\nX", ops: []string{"PING"}, err: ErrUnknownOp},
		{name: "MSG from a client", stream: "MSG foo 1 1\r\nx\r\n", err: ErrUnknownOp},
		{name: "empty line", stream: "PING\r\n\r\n", ops: []string{"PING"}, err: ErrUnknownOp},
		{name: "bare newline", stream: "\n", err: ErrUnknownOp},
		{name: "leading blank", stream: " PING\r\n", err: ErrUnknownOp},
		{name: "op without blank", stream: "PUBfoo 1\r\nx\r\n", err: ErrUnknownOp},
		{name: "op alone", stream: "PUB\r\n", err: ErrUnknownOp},
		{name: "hpub alone", limits: headersOn, stream: "HPUB\r\n", err: ErrUnknownOp},
		{name: "-ERR alone", stream: "-ERR\r\n", err: ErrUnknownOp},
		{name: "truncated op", stream: "PIN\r\n", err: ErrUnknownOp},
		{name: "payload longer than size", stream: "PUB foo 2\r\nabc\r\n", err: ErrUnknownOp},
		{name: "payload shorter than size", stream: "PUB foo 4\r\nab\r\nPING\r\n", err: ErrUnknownOp},
		{name: "payload mismatch found early", stream: "PUB foo 2\r\nabX", err: ErrUnknownOp},
		{name: "payload missing LF", stream: "PUB foo 2\r\nab\rX", err: ErrUnknownOp},
		{name: "pub no args", stream: "PUB \r\n", err: ErrBadArgs},
		{name: "pub missing size", stream: "PUB foo\r\n", err: ErrBadArgs},
		{name: "pub too many args", stream: "PUB foo bar baz 1\r\nx\r\n", err: ErrBadArgs},
		{name: "pub non-numeric size", stream: "PUB foo bar\r\n", err: ErrBadArgs},
		{name: "pub negative size", stream: "PUB foo -1\r\n", err: ErrBadArgs},
		{name: "pub size with 10 digits", stream: "PUB foo 1234567890\r\n", err: ErrBadArgs},
		{name: "hpub too few args", limits: headersOn, stream: "HPUB foo 1\r\nx\r\n", err: ErrBadArgs},
		{name: "hpub too many args", limits: headersOn, stream: "HPUB a b c 1 2\r\nxy\r\n", err: ErrBadArgs},
		{name: "hpub bad header size", limits: headersOn, stream: "HPUB foo x 2\r\nxy\r\n", err: ErrBadArgs},
		{name: "hpub header larger than total", limits: headersOn, stream: "HPUB foo 3 2\r\nxy\r\n", err: ErrBadArgs},
		{name: "hpub without headers", stream: "HPUB foo 0 2\r\nxy\r\n", err: ErrHeadersNotEnabled},
		{name: "sub one arg", stream: "SUB foo\r\n", err: ErrBadArgs},
		{name: "sub four args", stream: "SUB a b c d\r\n", err: ErrBadArgs},
		{name: "unsub no args", stream: "UNSUB \r\n", err: ErrBadArgs},
		{name: "unsub three args", stream: "UNSUB 1 2 3\r\n", err: ErrBadArgs},
		{name: "info not JSON", stream: "INFO foo\r\n", err: ErrBadArgs},
		{name: "info array", stream: "INFO []\r\n", err: ErrBadArgs},
		{name: "info alone", stream: "INFO\r\n", err: ErrBadArgs},
		{name: "max payload", limits: limits{maxPayload: 10}, stream: "PUB foo 11\r\n", err: ErrMaxPayload},
		{name: "max payload before args are used", limits: limits{maxPayload: 10, headers: true},
			stream: "HPUB foo 2 11\r\n", err: ErrMaxPayload},
		{name: "handler error stops", limits: limits{failOn: "SUB"}, stream: "SUB a 1\r\nSUB b 2\r\n",
			ops: []string{`SUB "a" <nil> "1"`}, err: errHandler},
		{name: "handler error on split pub", limits: limits{failOn: "PUB"}, stream: "PUB a 3\r\nabc\r\nPING\r\n",
			ops: []string{`PUB "a" <nil> -1 "abc"`}, err: errHandler},
	})
}

func TestParserMaxPayloadExact(t *testing.T) {
	l := limits{maxPayload: 16}
	pay := strings.Repeat("p", 16)
	got := parseEveryWay(t, l, []byte("PUB foo 16\r\n"+pay+"\r\n"))
	require.NoError(t, got.err)
	require.Equal(t, []string{`PUB "foo" <nil> -1 "` + pay + `"`}, got.ops)

	got = parseEveryWay(t, l, []byte("PUB foo 17\r\n"+pay+"p\r\n"))
	require.Equal(t, ErrMaxPayload, got.err)
	require.Empty(t, got.ops)
}

// The limit counts the arguments after the operation name and its blanks,
// without the CR: 4096 bytes pass, 4097 fail, whole or split.
func TestParserMaxControlLine(t *testing.T) {
	arg := func(n int) string { return "s" + strings.Repeat("x", n-3) + " 0" } // subject + " 0"
	for _, tc := range []struct {
		name, stream string
		err          error
	}{
		{"pub 4096", "PUB " + arg(4096) + "\r\n\r\n", nil},
		{"pub 4096 blanks", "PUB \t  " + arg(4096) + "\r\n\r\n", nil},
		{"pub 4096 bare LF", "PUB " + arg(4096) + "\n\r\n", nil},
		{"pub 4097", "PUB " + arg(4097) + "\r\n\r\n", ErrControlLineTooLong},
		{"pub 4097 without newline yet", "PUB " + arg(4097), ErrControlLineTooLong},
		{"connect 4096", "CONNECT {" + strings.Repeat(" ", 4094) + "}\r\n", nil},
		{"connect 4097", "CONNECT {" + strings.Repeat(" ", 4095) + "}\r\n", ErrControlLineTooLong},
		{"sub 4097", "SUB " + strings.Repeat("a", 4095) + " 1\r\n", ErrControlLineTooLong},
		// An unknown operation is refused at its first byte, before the
		// length is known.
		{"unknown and long", "XUB " + arg(5000) + "\r\n", ErrUnknownOp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseEveryWayCoarse(t, limits{}, []byte(tc.stream))
			require.Equal(t, tc.err, got.err)
		})
	}
	// PING, PONG and +OK ignore what follows them, however long.
	got := parseEveryWayCoarse(t, limits{}, []byte("PING "+strings.Repeat("x", 10000)+"\r\n+OK "+strings.Repeat("y", 10000)+"\r\n"))
	require.NoError(t, got.err)
	require.Equal(t, []string{"PING"}, got.ops)
}

// parseEveryWayCoarse is parseEveryWay for long streams: every cut near the
// interesting ends, and a sample of the rest.
func parseEveryWayCoarse(t testing.TB, l limits, stream []byte) outcome {
	t.Helper()
	want := feed(l, stream, nil)
	check := func(how string, sizes []int) {
		t.Helper()
		got := feed(l, stream, sizes)
		if got.String() != want.String() {
			t.Fatalf("stream of %d bytes parsed %s:\n got  %.300v\n want %.300v (whole)", len(stream), how, got, want)
		}
	}
	for i := 1; i < len(stream); i++ {
		if i < 16 || len(stream)-i < 16 || i%97 == 0 {
			check(fmt.Sprintf("cut at %d", i), []int{i})
		}
	}
	for _, n := range []int{1, 7, 512} {
		check(fmt.Sprintf("in %d-byte chunks", n), fixed(n, len(stream)))
	}
	rng := rand.New(rand.NewPCG(uint64(len(stream)), 7))
	for i := 0; i < 10; i++ {
		sizes := randomSizes(rng, len(stream), 1+len(stream)/4)
		check(fmt.Sprintf("in chunks %v", sizes), sizes)
	}
	return want
}

// A held partial line stays bounded whatever the peer streams without a
// newline: blanks are folded, PING's tail is dropped.
func TestParserPartialLineBounded(t *testing.T) {
	for _, tc := range []struct{ name, head, fill string }{
		{"blanks after PUB", "PUB", " "},
		{"blanks after CONNECT", "CONNECT", "\t"},
		{"tail of PING", "PING", "x"},
		{"tail of +OK", "+OK", "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newParser(limits{})
			require.NoError(t, p.Parse([]byte(tc.head)))
			chunk := []byte(strings.Repeat(tc.fill, 1000))
			for i := 0; i < 1000; i++ {
				require.NoError(t, p.Parse(chunk))
			}
			require.LessOrEqual(t, len(p.line), 16)
		})
	}
}

// Payloads split across reads, including splits inside the CRLF that ends
// them, and the parser's own copies must not alias the caller's buffer.
func TestParserSplitPayload(t *testing.T) {
	pay := strings.Repeat("0123456789", 100)
	stream := "SUB a 1\r\nPUB a r " + fmt.Sprint(len(pay)) + "\r\n" + pay + "\r\nPUB b 3\r\nxyz\r\nPING\r\n"
	got := parseEveryWayCoarse(t, limits{}, []byte(stream))
	require.NoError(t, got.err)
	require.Equal(t, []string{`SUB "a" <nil> "1"`, `PUB "a" "r" -1 "` + pay + `"`, `PUB "b" <nil> -1 "xyz"`, "PING"}, got.ops)
}

// The parser can be reused after a large split message, and a large one
// does not stay pinned.
func TestParserLargeSplitMessageReleased(t *testing.T) {
	p, r := newParser(limits{})
	size := 100 << 10
	require.NoError(t, p.Parse([]byte(fmt.Sprintf("PUB a %d\r\n", size))))
	require.NoError(t, p.Parse(make([]byte, size)))
	require.NoError(t, p.Parse([]byte("\r\nPING\r\n")))
	require.Len(t, r.ops, 2)
	require.Nil(t, p.msg)
}

type nopHandler struct{ pubs int }

func (h *nopHandler) Connect([]byte) error                   { return nil }
func (h *nopHandler) Pub(_, _ []byte, _ int, _ []byte) error { h.pubs++; return nil }
func (h *nopHandler) Sub(_, _, _ []byte) error               { return nil }
func (h *nopHandler) Unsub([]byte, int64) error              { return nil }
func (h *nopHandler) Ping() error                            { return nil }
func (h *nopHandler) Pong() error                            { return nil }
func (h *nopHandler) Err([]byte) error                       { return nil }

// The hot path allocates nothing, whole or split across reads.
func TestParserNoAllocs(t *testing.T) {
	h := &nopHandler{}
	p := New(h)
	p.Headers = true
	whole := []byte("PUB foo.bar 16\r\n0123456789abcdef\r\nHPUB foo r 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n")
	parts := [][]byte{[]byte("PUB foo.bar _INBOX.abc 1"), []byte("6\r\n0123456"), []byte("789abcdef\r"), []byte("\nPI"), []byte("NG xyz\r\n")}
	run := func() {
		if err := p.Parse(whole); err != nil {
			t.Fatal(err)
		}
		for _, b := range parts {
			if err := p.Parse(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	run() // warm the scratch buffers
	require.Zero(t, testing.AllocsPerRun(200, run))
}

func BenchmarkParsePub16(b *testing.B) {
	h := &nopHandler{}
	p := New(h)
	const one = "PUB foo.bar 16\r\n0123456789abcdef\r\n"
	buf := []byte(strings.Repeat(one, 64))
	b.SetBytes(int64(len(one)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 64 {
		if err := p.Parse(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// The same with a read boundary inside every message.
func BenchmarkParsePub16Split(b *testing.B) {
	h := &nopHandler{}
	p := New(h)
	const one = "PUB foo.bar 16\r\n0123456789abcdef\r\n"
	buf := []byte(strings.Repeat(one, 64))
	cut := len(buf) - 20
	b.SetBytes(int64(len(one)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 64 {
		if err := p.Parse(buf[:cut]); err != nil {
			b.Fatal(err)
		}
		if err := p.Parse(buf[cut:]); err != nil {
			b.Fatal(err)
		}
	}
}
