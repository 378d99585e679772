package node

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/config"
	"github.com/switchyard-io/switchyard/pkg/logging"
)

func TestCoreAdvance(t *testing.T) {
	bufs := [][]byte{[]byte("abc"), []byte("defg"), []byte("h")}
	require.Equal(t, [][]byte{[]byte("abc"), []byte("defg"), []byte("h")}, advance(bufs, 0))
	require.Equal(t, [][]byte{[]byte("bc"), []byte("defg"), []byte("h")}, advance(bufs, 1))
	require.Equal(t, [][]byte{[]byte("defg"), []byte("h")}, advance(bufs, 3))
	require.Equal(t, [][]byte{[]byte("g"), []byte("h")}, advance(bufs, 6))
	require.Empty(t, advance(bufs, 8))
}

func TestCoreWatermarks(t *testing.T) {
	high, low := watermarks(64 << 20)
	require.Equal(t, 4<<20, high, "capped at 4 MB")
	require.Equal(t, 1<<20, low)
	high, low = watermarks(1 << 20)
	require.Equal(t, 3<<18, high, "3/4 of a small max_pending")
	require.Equal(t, high/4, low)
}

func TestCoreTakeBatchKeepsOrder(t *testing.T) {
	var o outbound
	for i := 0; i < 5; i++ {
		o.chunks = append(o.chunks, make([]byte, maxWriteBatch/2))
		o.chunks[i][0] = byte(i)
	}
	first := o.takeBatch()
	require.Len(t, first, 2, "a batch stops at maxWriteBatch")
	require.Equal(t, byte(0), first[0][0])
	require.Len(t, o.chunks, 3)
	require.Equal(t, byte(2), o.chunks[0][0], "the rest stays queued in order")
}

func TestCoreAppendMsgLimitTripsOnce(t *testing.T) {
	var o outbound
	msg := make([]byte, 100)
	require.Positive(t, o.appendMsg([]byte("s"), "1", nil, -1, msg, 250))
	require.Positive(t, o.appendMsg([]byte("s"), "1", nil, -1, msg, 250))
	require.Equal(t, -1, o.appendMsg([]byte("s"), "1", nil, -1, msg, 250), "crossing the limit reports once")
	require.Equal(t, 0, o.appendMsg([]byte("s"), "1", nil, -1, msg, 250), "then the queue is closed")
}

func TestCoreAppendMsgFormat(t *testing.T) {
	var o outbound
	o.appendMsg([]byte("foo"), "7", []byte("_INBOX.x"), -1, []byte("hi"), 0)
	o.appendMsg([]byte("bar"), "8", nil, 12, []byte("NATS/1.0\r\n\r\nhi"), 0)
	require.Equal(t, "MSG foo 7 _INBOX.x 2\r\nhi\r\nHMSG bar 8 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", string(o.chunks[0]))
	require.Equal(t, int64(2), o.msgs)
}

func TestCoreWeightedMappings(t *testing.T) {
	tbl, err := compileMappings([]config.Mapping{
		{Source: "w", Destinations: []config.Destination{{Subject: "a", Weight: 30}, {Subject: "b", Weight: 50}}},
		{Source: "orders.*", Destinations: []config.Destination{{Subject: "new.$1", Weight: 100}}},
	})
	require.NoError(t, err)
	counts := map[string]int{}
	for i := 0; i < 10000; i++ {
		out, ok := tbl.apply([]byte("w"))
		if !ok {
			out = []byte("unmapped")
		}
		counts[string(out)]++
	}
	require.InDelta(t, 3000, counts["a"], 400)
	require.InDelta(t, 5000, counts["b"], 400)
	require.InDelta(t, 2000, counts["unmapped"], 400, "weights below 100%% leave the rest on the original subject")
	out, ok := tbl.apply([]byte("orders.42"))
	require.True(t, ok)
	require.Equal(t, "new.42", string(out))
	_, ok = tbl.apply([]byte("other"))
	require.False(t, ok)
}

func TestCoreHumanDuration(t *testing.T) {
	require.Equal(t, "0s", humanDuration(300*time.Millisecond))
	require.Equal(t, "1m27s", humanDuration(87*time.Second))
	require.Equal(t, "2h3m0s", humanDuration(2*time.Hour+3*time.Minute))
	require.Equal(t, "1d2h0m0s", humanDuration(26*time.Hour))
}

// An embedded server answers a raw client, and Shutdown closes it.
func TestCoreEmbeddedServer(t *testing.T) {
	cfg := config.Default()
	cfg.Host, cfg.Port = "127.0.0.1", -1
	s, err := New(cfg, logging.Discard())
	require.NoError(t, err)
	require.NoError(t, s.Start())
	<-s.Ready()
	c, err := net.Dial("tcp", s.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("CONNECT {\"verbose\":false}\r\nSUB a 1\r\nPUB a 2\r\nhi\r\nPING\r\n"))
	require.NoError(t, err)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(got.String(), "PONG\r\n") {
		n, err := c.Read(buf)
		require.NoError(t, err)
		got.Write(buf[:n])
	}
	require.Contains(t, got.String(), "MSG a 1 2\r\nhi\r\n")
	require.Equal(t, 1, s.NumClients())
	s.Shutdown()
	_, err = c.Read(buf)
	require.Error(t, err, "shutdown closes client connections")
}

// A run of replies from one node shares one reply route: a client's mux
// inbox and a consumer's ack subjects; other replies keep their own.
func TestReplyRouteKeys(t *testing.T) {
	for subj, want := range map[string]string{
		"_INBOX.abc.17": "_INBOX.abc.",
		"_INBOX.abc":    "_INBOX.abc",
		"$JS.ACK.ORDERS.worker.1.42.7.1700000000.3": "$JS.ACK.ORDERS.worker.",
		"$JS.ACK.hub.ACCHASH.S.C.1.2.3.4.5.tok":     "$JS.ACK.hub.ACCHASH.S.C.1.",
		"$JS.ACK.1.2.3":                             "$JS.ACK.1.2.3",
		"reply.for.me":                              "reply.for.me",
	} {
		if got := string(routeKey([]byte(subj))); got != want {
			t.Errorf("routeKey(%q) = %q, want %q", subj, got, want)
		}
	}
	var r replyRoutes
	r.add([]byte("_INBOX.abc.1"), "A")
	r.add([]byte("$JS.ACK.S.C.1.1.1.1.0"), "S")
	r.add([]byte("reply.1"), "B")
	for subj, want := range map[string]string{"_INBOX.abc.99": "A", "$JS.ACK.S.C.1.7.7.7.3": "S", "reply.1": "B", "reply.2": "", "_INBOX.xyz.1": ""} {
		if got := r.lookup([]byte(subj)); got != want {
			t.Errorf("lookup(%q) = %q, want %q", subj, got, want)
		}
	}
	if len(r.cur) != 3 {
		t.Errorf("%d entries, want 3", len(r.cur))
	}
}
