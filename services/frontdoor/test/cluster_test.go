package test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

// suite is frontdoors attached to router replicas.
type suite struct {
	routers []*testkit.Process
	fds     []*testkit.Process
}

func startSuite(t *testing.T, routers, frontdoors int) *suite {
	t.Helper()
	s := &suite{}
	var addrs []string
	for i := 0; i < routers; i++ {
		r := testkit.StartRouter(t, 0)
		s.routers = append(s.routers, r)
		addrs = append(addrs, fmt.Sprintf("%q", r.Addr()))
	}
	conf := fmt.Sprintf("routers: [%s]\n", strings.Join(addrs, ", "))
	for i := 0; i < frontdoors; i++ {
		s.fds = append(s.fds, start(t, conf))
	}
	return s
}

// awaitRoute publishes probes on from until sub (on another frontdoor)
// receives one: interest propagates asynchronously, as in a nats-server
// cluster. The probes are drained from sub.
func awaitRoute(t *testing.T, from *nats.Conn, subj string, sub *nats.Subscription) {
	t.Helper()
	eventually(t, waitLong, func() error {
		require.NoError(t, from.Publish(subj, []byte("probe")))
		flush(t, from)
		if _, err := sub.NextMsg(50 * time.Millisecond); err != nil {
			return fmt.Errorf("no probe on %q across frontdoors yet: %v", subj, err)
		}
		return nil
	})
	for {
		if _, err := sub.NextMsg(100 * time.Millisecond); err != nil {
			return
		}
	}
}

// subscribeAcross subscribes to pattern on frontdoor b and waits until a
// publisher on frontdoor a reaches it (probing with probe); it returns that
// publisher and the subscription.
func subscribeAcross(t *testing.T, a, b *testkit.Process, pattern, probe string) (*nats.Conn, *nats.Subscription) {
	t.Helper()
	pub, subc := connect(t, a), connect(t, b)
	sub, err := subc.SubscribeSync(pattern)
	require.NoError(t, err)
	flush(t, subc)
	awaitRoute(t, pub, probe, sub)
	return pub, sub
}

func TestClusterPubSubAcrossFrontdoors(t *testing.T) {
	s := startSuite(t, 1, 2)
	pub, sub := subscribeAcross(t, s.fds[0], s.fds[1], "orders.>", "orders.probe")

	const n = 5000
	for i := 0; i < n; i++ {
		require.NoError(t, pub.Publish(fmt.Sprintf("orders.%d", i%7), seqData(i)))
	}
	flush(t, pub)
	for i, m := range nextMsgs(t, sub, n) {
		require.Equal(t, string(seqData(i)), string(m.Data), "messages from one publisher arrive in order")
	}
	expectNoMsg(t, sub)

	// Headers cross the router too.
	hm := nats.NewMsg("orders.h")
	hm.Header.Set("Trace", "abc")
	hm.Data = []byte("with header")
	require.NoError(t, pub.PublishMsg(hm))
	got := nextMsgs(t, sub, 1)[0]
	require.Equal(t, "abc", got.Header.Get("Trace"))
	require.Equal(t, "with header", string(got.Data))
}

func TestClusterQueueGroupExactlyOnce(t *testing.T) {
	s := startSuite(t, 1, 3)
	pub := connect(t, s.fds[0])
	var mu sync.Mutex
	counts := map[string]int{}
	seen := map[string]int{}
	for i, fd := range s.fds[1:] {
		nc := connect(t, fd)
		for k := 0; k < 2; k++ {
			name := fmt.Sprintf("fd%d-m%d", i+1, k)
			_, err := nc.QueueSubscribe("work", "workers", func(m *nats.Msg) {
				mu.Lock()
				counts[name]++
				seen[string(m.Data)]++
				mu.Unlock()
			})
			require.NoError(t, err)
		}
		flush(t, nc)
	}
	// Wait until both remote frontdoors' groups are known.
	eventually(t, waitLong, func() error {
		mu.Lock()
		clear(counts)
		clear(seen)
		mu.Unlock()
		for i := 0; i < 50; i++ {
			require.NoError(t, pub.Publish("work", []byte("probe")))
		}
		flush(t, pub)
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		if seen["probe"] != 50 {
			return fmt.Errorf("probes delivered %d times, want 50", seen["probe"])
		}
		return nil
	})
	mu.Lock()
	clear(counts)
	clear(seen)
	mu.Unlock()

	const n = 2000
	for i := 0; i < n; i++ {
		require.NoError(t, pub.Publish("work", seqData(i)))
	}
	flush(t, pub)
	eventually(t, waitLong, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != n {
			return fmt.Errorf("%d distinct messages delivered, want %d", len(seen), n)
		}
		return nil
	})
	time.Sleep(quietTime)
	mu.Lock()
	defer mu.Unlock()
	for d, c := range seen {
		require.Equal(t, 1, c, "message %s delivered %d times", d, c)
	}
	fds := map[string]int{}
	for name, c := range counts {
		fds[name[:3]] += c
	}
	require.Len(t, fds, 2, "both remote frontdoors serve the group: %v", counts)
}

func TestClusterQueueGroupPrefersLocalMember(t *testing.T) {
	s := startSuite(t, 1, 2)
	a, b := connect(t, s.fds[0]), connect(t, s.fds[1])
	remote, err := b.QueueSubscribeSync("jobs", "q")
	require.NoError(t, err)
	flush(t, b)
	awaitRoute(t, a, "jobs", remote)
	local, err := a.QueueSubscribeSync("jobs", "q")
	require.NoError(t, err)
	flush(t, a)
	for i := 0; i < 200; i++ {
		require.NoError(t, a.Publish("jobs", seqData(i)))
	}
	flush(t, a)
	nextMsgs(t, local, 200)
	expectNoMsg(t, remote)

	// When the local member leaves, the rest of the suite takes over.
	require.NoError(t, local.Unsubscribe())
	flush(t, a)
	require.NoError(t, a.Publish("jobs", []byte("after")))
	flush(t, a)
	require.Equal(t, "after", string(nextMsgs(t, remote, 1)[0].Data))
}

func TestClusterRequestReplyAndNoResponders(t *testing.T) {
	s := startSuite(t, 1, 2)
	req, rep := connect(t, s.fds[0]), connect(t, s.fds[1])
	_, err := rep.Subscribe("svc.echo", func(m *nats.Msg) { m.Respond(append([]byte("echo: "), m.Data...)) })
	require.NoError(t, err)
	flush(t, rep)
	eventually(t, waitLong, func() error {
		_, err := req.Request("svc.echo", []byte("ping"), 200*time.Millisecond)
		return err
	})
	for i := 0; i < 100; i++ {
		m, err := req.Request("svc.echo", seqData(i), 5*time.Second)
		require.NoError(t, err)
		require.Equal(t, "echo: "+string(seqData(i)), string(m.Data))
	}
	began := time.Now()
	_, err = req.Request("svc.nobody", nil, 5*time.Second)
	require.True(t, errors.Is(err, nats.ErrNoResponders), "want no responders, got %v", err)
	require.Less(t, time.Since(began), 2*time.Second)
}

func TestClusterConnectURLs(t *testing.T) {
	s := startSuite(t, 1, 2)
	nc := connect(t, s.fds[0])
	want := s.fds[1].Addr()
	eventually(t, waitLong, func() error {
		for _, u := range nc.DiscoveredServers() {
			if strings.Contains(u, want) {
				return nil
			}
		}
		return fmt.Errorf("discovered servers %v do not include %s", nc.DiscoveredServers(), want)
	})
}

func TestClusterRouterFailover(t *testing.T) {
	s := startSuite(t, 2, 2)
	pub, sub := subscribeAcross(t, s.fds[0], s.fds[1], "fo.>", "fo.probe")

	type routez struct {
		NumRoutes int `json:"num_routes"`
		Routes    []struct {
			Router  string `json:"router"`
			Up      bool   `json:"up"`
			Primary bool   `json:"primary"`
		} `json:"routes"`
	}
	var rz routez
	getJSON(t, s.fds[0], "/routez", &rz)
	require.Equal(t, 2, rz.NumRoutes)
	require.True(t, rz.Routes[0].Primary && rz.Routes[0].Up, "the first configured router is primary: %+v", rz)
	require.Equal(t, s.routers[0].Addr(), rz.Routes[0].Router)

	s.routers[0].Stop()
	eventually(t, waitLong, func() error {
		getJSON(t, s.fds[0], "/routez", &rz)
		if rz.Routes[0].Up || !rz.Routes[1].Primary {
			return fmt.Errorf("/routez after the primary died: %+v", rz)
		}
		return nil
	})
	began := time.Now()
	awaitRoute(t, pub, "fo.after", sub)
	require.Less(t, time.Since(began), waitLong)
	for i := 0; i < 100; i++ {
		require.NoError(t, pub.Publish("fo.x", seqData(i)))
	}
	flush(t, pub)
	nextMsgs(t, sub, 100)
}

// Router names are resolved; each address is one replica.
func TestClusterRouterByName(t *testing.T) {
	r := testkit.StartRouter(t, 0)
	conf := fmt.Sprintf("routers: [\"localhost:%d\"]\n", r.Port)
	a, b := start(t, conf), start(t, conf)
	subscribeAcross(t, a, b, "byname", "byname")

	var rz struct {
		Routes []struct {
			Router     string `json:"router"`
			Configured string `json:"configured"`
			Up         bool   `json:"up"`
		} `json:"routes"`
	}
	getJSON(t, a, "/routez", &rz)
	up := false
	for _, l := range rz.Routes {
		require.Equal(t, fmt.Sprintf("localhost:%d", r.Port), l.Configured)
		if l.Up {
			up = true
			require.Equal(t, r.Addr(), l.Router, "the link that is up is the resolved loopback address")
		}
	}
	require.True(t, up, "%+v", rz)
}
