package mesh

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

type sample struct {
	account, subject, reply string
	queues                  []string
	plain                   bool
	headerLen               int
	body                    string
}

var samples = []sample{
	{account: "$G", subject: "foo", plain: true, headerLen: -1, body: "hello"},
	{account: "$G", subject: "a.b.c", reply: "_INBOX.x", queues: []string{"q1", "workers"}, headerLen: -1, body: ""},
	{account: "ACC", subject: "h", plain: true, headerLen: 12, body: "NATS/1.0\r\n\r\npayload"},
	{account: "", subject: "x", headerLen: 0, body: ""},
}

func encode(s sample) []byte {
	return AppendMessage(nil, []byte(s.account), []byte(s.subject), []byte(s.reply), s.queues, s.plain, s.headerLen, []byte(s.body))
}

func TestMeshRoundTrip(t *testing.T) {
	var stream []byte
	for _, s := range samples {
		f := encode(s)
		require.Len(t, f, EncodedLen([]byte(s.account), []byte(s.subject), []byte(s.reply), s.queues, []byte(s.body)))
		require.Equal(t, len(f), FrameSize(f))
		stream = append(stream, f...)
	}
	var m Message
	for _, s := range samples {
		n, err := Decode(stream, &m, 1<<20)
		require.NoError(t, err)
		require.Positive(t, n)
		require.Equal(t, s.account, string(m.Account))
		require.Equal(t, s.subject, string(m.Subject))
		require.Equal(t, s.reply, string(m.Reply))
		require.Equal(t, s.plain, m.Plain)
		require.Equal(t, s.headerLen, m.HeaderLen)
		require.Equal(t, s.body, string(m.Body))
		var qs []string
		for _, q := range m.Queues {
			qs = append(qs, string(q))
		}
		require.Equal(t, s.queues, qs)
		stream = stream[n:]
	}
	require.Empty(t, stream)
}

func TestMeshPartialFrameWaits(t *testing.T) {
	f := encode(samples[1])
	var m Message
	for i := range len(f) {
		n, err := Decode(f[:i], &m, 1<<20)
		require.NoError(t, err, "prefix of %d bytes", i)
		require.Zero(t, n)
	}
}

func TestMeshRefusesBadFrames(t *testing.T) {
	var m Message
	big := binary.LittleEndian.AppendUint32(nil, 1<<30)
	_, err := Decode(big, &m, 64<<20)
	require.ErrorIs(t, err, ErrFrameTooLarge, "a huge announced length is refused before any buffering")

	f := encode(samples[0])
	bad := bytes.Clone(f)
	bad[4] = 9 // unknown kind
	_, err = Decode(bad, &m, 1<<20)
	require.ErrorIs(t, err, ErrMalformed)

	bad = bytes.Clone(f)
	binary.LittleEndian.PutUint16(bad[4+5:], 200) // subject longer than the frame
	_, err = Decode(bad, &m, 1<<20)
	require.ErrorIs(t, err, ErrMalformed)

	bad = bytes.Clone(f)
	binary.LittleEndian.PutUint32(bad[4+9:], 3) // header length without the flag
	_, err = Decode(bad, &m, 1<<20)
	require.ErrorIs(t, err, ErrMalformed)

	short := binary.LittleEndian.AppendUint32(nil, 2)
	_, err = Decode(append(short, 1, 0), &m, 1<<20)
	require.ErrorIs(t, err, ErrMalformed, "a frame shorter than its fixed part")
}

func TestMeshFits(t *testing.T) {
	require.True(t, Fits([]byte("$G"), []byte("a"), nil, []string{"q"}))
	require.False(t, Fits(nil, make([]byte, 70000), nil, nil))
	require.False(t, Fits(nil, []byte("a"), nil, make([]string, 256)))
}

func TestMeshHello(t *testing.T) {
	line := AppendHello(nil, "NODEA", "NODEB")
	require.Equal(t, "SYMESH v1 NODEA NODEB\r\n", string(line))
	v, from, to, err := ParseHello(bytes.TrimRight(line, "\r\n"))
	require.NoError(t, err)
	require.Equal(t, []string{"v1", "NODEA", "NODEB"}, []string{v, from, to})

	v, _, _, err = ParseHello([]byte("SYMESH v9 A B"))
	require.Equal(t, "v9", v)
	require.ErrorContains(t, err, "mesh protocol v9 is not spoken here: this node speaks v1")

	_, _, _, err = ParseHello([]byte("GET / HTTP/1.1"))
	require.ErrorContains(t, err, "not a Switchyard mesh connection")
	_, _, _, err = ParseHello([]byte("SYMESH v1 onlyone"))
	require.ErrorContains(t, err, "malformed")
	require.Equal(t, "-ERR 'no'\r\n", string(AppendRefusal(nil, "no")))
}

func BenchmarkMeshEncodeDecode16B(b *testing.B) {
	acc, subj, body := []byte("$G"), []byte("bench.sub"), make([]byte, 16)
	buf := make([]byte, 0, 64<<10)
	var m Message
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMessage(buf[:0], acc, subj, nil, nil, true, -1, body)
		if _, err := Decode(buf, &m, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}

// An interest hint round-trips, and a hint carrying anything else is
// refused.
func TestMeshInterestHint(t *testing.T) {
	var m Message
	for i, q := range []string{"", "workers"} {
		b := AppendInterest(nil, []byte("ACC"), []byte("orders.>"), q, i == 1)
		n, err := Decode(b, &m, 1<<20)
		if err != nil || n != len(b) {
			t.Fatalf("decode: %d %v", n, err)
		}
		if !m.Interest || m.Plain || string(m.Account) != "ACC" || string(m.Subject) != "orders.>" || len(m.Body) != 0 {
			t.Fatalf("decoded %+v", m)
		}
		if q != "" && (len(m.Queues) != 1 || string(m.Queues[0]) != q) {
			t.Fatalf("queue: %q", m.Queues)
		}
		if m.Gone != (i == 1) {
			t.Fatalf("gone: %v", m.Gone)
		}
	}
	withBody := AppendMessage(nil, []byte("A"), []byte("s"), nil, nil, false, -1, []byte("x"))
	withBody[lenPrefix+1] = FlagInterest
	if _, err := Decode(withBody, &m, 1<<20); err == nil {
		t.Fatal("a hint with a body was accepted")
	}
	lone := AppendMessage(nil, []byte("A"), []byte("s"), nil, nil, false, -1, nil)
	lone[lenPrefix+1] = FlagGone
	if _, err := Decode(lone, &m, 1<<20); err == nil {
		t.Fatal("FlagGone without FlagInterest was accepted")
	}
	mixed := AppendInterest(nil, []byte("A"), []byte("s"), "", false)
	mixed[lenPrefix+1] |= FlagPlain
	if _, err := Decode(mixed, &m, 1<<20); err == nil {
		t.Fatal("a hint with other flags was accepted")
	}
}

// A message addressed to one subject and shown as another round-trips.
func TestMeshAddressedTo(t *testing.T) {
	b := AppendMessageTo(nil, []byte("A"), []byte("orders.1"), []byte("_INBOX.abc"), []byte("ack"), []string{"q"}, true, 2, []byte("hibody"))
	if len(b) != EncodedLenTo([]byte("A"), []byte("orders.1"), []byte("_INBOX.abc"), []byte("ack"), []string{"q"}, []byte("hibody")) {
		t.Fatal("EncodedLenTo disagrees")
	}
	var m Message
	n, err := Decode(b, &m, 1<<20)
	if err != nil || n != len(b) {
		t.Fatalf("decode: %d %v", n, err)
	}
	if string(m.Subject) != "orders.1" || string(m.To) != "_INBOX.abc" || string(m.Body) != "hibody" || m.HeaderLen != 2 || string(m.Reply) != "ack" {
		t.Fatalf("decoded %+v", m)
	}
	plain := AppendMessage(nil, []byte("A"), []byte("s"), nil, nil, true, -1, []byte("x"))
	if _, err := Decode(plain, &m, 1<<20); err != nil || m.To != nil {
		t.Fatalf("an ordinary message has no To: %v %q", err, m.To)
	}
	bad := append([]byte{}, b...)
	bad = bad[:len(bad)-len("hibody")-len("_INBOX.abc")]
	bad[0] = byte(len(bad) - lenPrefix)
	if _, err := Decode(bad, &m, 1<<20); err == nil {
		t.Fatal("a truncated To was accepted")
	}
}
