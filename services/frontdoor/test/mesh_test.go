package test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

// meshInfo is what /routez says about a frontdoor's mesh side.
type meshInfo struct {
	ID      string `json:"server_id"`
	MeshURL string `json:"mesh_url"`
	Peers   []struct {
		NodeID string `json:"node_id"`
		Up     bool   `json:"up"`
		Msgs   int64  `json:"msgs"`
	} `json:"peers"`
}

func getMesh(t *testing.T, fd *testkit.Process) meshInfo {
	t.Helper()
	var mi meshInfo
	getJSON(t, fd, "/routez", &mi)
	require.NotEmpty(t, mi.MeshURL, "a frontdoor with routers listens for mesh connections")
	return mi
}

// dialMesh opens a raw connection to a frontdoor's mesh port.
func dialMesh(t *testing.T, fd *testkit.Process) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", getMesh(t, fd).MeshURL, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn, bufio.NewReader(conn)
}

// Every bad start of a mesh connection is refused with a line that says
// why, and the frontdoor goes on serving.
func TestMeshRefusesBadHandshakes(t *testing.T) {
	s := startSuite(t, 1, 1)
	fd := s.fds[0]
	id := getMesh(t, fd).ID
	for _, tc := range []struct{ send, want string }{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "-ERR 'not a Switchyard mesh connection (no SYMESH hello)'\r\n"},
		{"SYMESH v9 NODEX " + id + "\r\n", "-ERR 'mesh protocol v9 is not spoken here: this node speaks v1; upgrade the older node'\r\n"},
		{"SYMESH v1 NODEX\r\n", "-ERR 'malformed SYMESH hello: want SYMESH <version> <from> <to>'\r\n"},
		{"SYMESH v1 NODEX NOTME\r\n", "-ERR 'this is node " + id + ", not NOTME: the dialing node has stale membership and will retry'\r\n"},
		{string(make([]byte, 600)), "-ERR 'no hello line within 512 bytes: not a Switchyard mesh connection'\r\n"},
	} {
		conn, r := dialMesh(t, fd)
		_, err := io.WriteString(conn, tc.send)
		require.NoError(t, err)
		line, _ := r.ReadString('\n')
		require.Equal(t, tc.want, line, "after %.30q", tc.send)
		_, err = r.ReadByte()
		require.Error(t, err, "the connection is closed after the refusal")
	}
	nc := connect(t, fd)
	require.NoError(t, nc.FlushTimeout(5*time.Second), "the frontdoor still serves clients")
}

// After a good hello, a frame that announces more than any message can
// be, or whose lengths do not add up, ends that connection without the
// frontdoor buffering it; other traffic goes on.
func TestMeshRefusesBadFrames(t *testing.T) {
	s := startSuite(t, 1, 2)
	pub, sub := subscribeAcross(t, s.fds[1], s.fds[0], "mf.>", "mf.probe")
	id := getMesh(t, s.fds[0]).ID

	huge := binary.LittleEndian.AppendUint32(nil, 1<<31) // 2 GiB announced
	garbage := append(binary.LittleEndian.AppendUint32(nil, 13), 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	for _, frame := range [][]byte{huge, garbage} {
		conn, r := dialMesh(t, s.fds[0])
		_, err := io.WriteString(conn, "SYMESH v1 NODEX "+id+"\r\n")
		require.NoError(t, err)
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, "+OK\r\n", line)
		_, err = conn.Write(frame)
		require.NoError(t, err)
		_, err = r.ReadByte()
		require.Error(t, err, "the frontdoor closes a connection that sent %x", frame[:4])
	}
	for i := 0; i < 100; i++ {
		require.NoError(t, pub.Publish("mf.x", seqData(i)))
	}
	flush(t, pub)
	for i, m := range nextMsgs(t, sub, 100) {
		require.Equal(t, string(seqData(i)), string(m.Data), "the real mesh link is unaffected")
	}
}

// A request from a brand-new connection reaches a responder on another
// frontdoor and the reply comes back at once, although the requester's
// reply subscription reaches the responder's frontdoor through the router
// and the request does not.
func TestMeshReplyBeatsInterest(t *testing.T) {
	s := startSuite(t, 1, 2)
	a, b := s.fds[0], s.fds[1]
	svc := connect(t, a)
	_, err := svc.Subscribe("mr.svc", func(m *nats.Msg) { m.Respond(append([]byte("re: "), m.Data...)) })
	require.NoError(t, err)
	flush(t, svc)
	awaitRoute(t, connect(t, b), "mr.svc", mustSyncSub(t, connect(t, a), "mr.svc"))

	for i := 0; i < 30; i++ {
		nc := connect(t, b) // a fresh inbox each time
		m, err := nc.Request("mr.svc", seqData(i), 5*time.Second)
		require.NoError(t, err, "request %d", i)
		require.Equal(t, "re: "+string(seqData(i)), string(m.Data))
		nc.Close()
	}
}

func mustSyncSub(t *testing.T, nc *nats.Conn, subj string) *nats.Subscription {
	t.Helper()
	sub, err := nc.SubscribeSync(subj)
	require.NoError(t, err)
	flush(t, nc)
	return sub
}

// Killing the primary router does not interrupt cross-frontdoor delivery:
// messages go over the mesh, and the other replica already has the same
// interest. No message of a steady stream is lost.
func TestMeshRouterLossLosesNothing(t *testing.T) {
	s := startSuite(t, 2, 2)
	pub, sub := subscribeAcross(t, s.fds[0], s.fds[1], "rl.>", "rl.probe")

	const total = 3000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < total; i++ {
			if err := pub.Publish("rl.x", seqData(i)); err != nil {
				t.Errorf("publish %d: %v", i, err)
				return
			}
			if i == total/3 {
				s.routers[0].Stop()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	var maxGap time.Duration
	last := time.Now()
	for i := 0; i < total; i++ {
		m, err := sub.NextMsg(waitLong)
		require.NoError(t, err, "message %d of %d", i, total)
		require.Equal(t, string(seqData(i)), string(m.Data), "in order, none lost")
		if gap := time.Since(last); gap > maxGap {
			maxGap = gap
		}
		last = time.Now()
	}
	wg.Wait()
	t.Logf("longest pause between messages while the primary router died: %v", maxGap)
	mi := getMesh(t, s.fds[0])
	require.Len(t, mi.Peers, 1)
	require.True(t, mi.Peers[0].Up)
	require.Equal(t, getMesh(t, s.fds[1]).ID, mi.Peers[0].NodeID)
}

// The mesh listener follows mesh_listen and mesh_advertise.
func TestMeshListenAndAdvertise(t *testing.T) {
	r := testkit.StartRouter(t, 0)
	port := testkit.FreePort(t)
	conf := fmt.Sprintf("routers: [%q]\nmesh_listen: \"127.0.0.1:%d\"\nmesh_advertise: \"127.0.0.1:%d\"\n", r.Addr(), port, port)
	a, b := start(t, conf), start(t, fmt.Sprintf("routers: [%q]\n", r.Addr()))
	require.Equal(t, fmt.Sprintf("127.0.0.1:%d", port), getMesh(t, a).MeshURL)
	subscribeAcross(t, b, a, "ml", "ml")
}
