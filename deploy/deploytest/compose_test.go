package deploytest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// routez is the part of a frontdoor's /routez the tests read.
type routez struct {
	Routes []struct {
		Configured string `json:"configured"`
		Up         bool   `json:"up"`
	} `json:"routes"`
	Peers []struct {
		Name string `json:"name"`
		Up   bool   `json:"up"`
	} `json:"peers"`
}

func connect(t *testing.T, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond), nats.Timeout(5 * time.Second)}, opts...)
	nc, err := nats.Connect(url, opts...)
	require.NoError(t, err, "connecting to %s", url)
	t.Cleanup(nc.Close)
	return nc
}

// flowing publishes on pub until sub receives, proving a path (interest
// propagated, mesh up) between the two connections within d.
func flowing(t *testing.T, pub, sub *nats.Conn, subject string, d time.Duration) {
	t.Helper()
	got := make(chan struct{}, 1)
	s, err := sub.Subscribe(subject, func(*nats.Msg) {
		select {
		case got <- struct{}{}:
		default:
		}
	})
	require.NoError(t, err)
	defer s.Unsubscribe()
	require.NoError(t, sub.Flush())
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := pub.Publish(subject, []byte("ping")); err == nil {
			pub.Flush()
		}
		select {
		case <-got:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("no message on %s from %s to %s within %v", subject, pub.ConnectedUrl(), sub.ConnectedUrl(), d)
}

// TestComposeSuite starts deploy/compose for real (its own project name and
// host ports) and drives it from the host with nats.go: pub/sub across the
// two frontdoors, JetStream, a frontdoor and a router killed, scaling the
// frontdoor service, a rolling restart under load, and down -v leaving
// nothing behind.
func TestComposeSuite(t *testing.T) {
	s := startCompose(t)
	states := s.containers()
	for _, svc := range []string{"router1/1", "router2/1", "authsvc/1", "streamsvc/1", "frontdoor1/1", "frontdoor2/1", "frontdoor/1"} {
		require.Equal(t, "healthy", states[svc], "%s in %v", svc, states)
	}

	sub := connect(t, s.url(0), nats.Name("sub"))
	pub := connect(t, s.url(1), nats.Name("pub"))

	steps := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"AdvertisesHostAddresses", func(t *testing.T) {
			// INFO's connect_urls lead to the host ports, never to a
			// container address: the fixed frontdoors' and the one the
			// scalable frontdoor found it was published on.
			want := []string{
				fmt.Sprintf("nats://127.0.0.1:%d", s.clientPort[0]),
				fmt.Sprintf("nats://127.0.0.1:%d", s.clientPort[1]),
				fmt.Sprintf("nats://127.0.0.1:%d", s.hostPort("frontdoor", 1, 4222)),
			}
			slices.Sort(want)
			for _, nc := range []*nats.Conn{sub, pub} {
				require.Eventually(t, func() bool {
					got := nc.Servers()
					slices.Sort(got)
					return slices.Equal(got, want)
				}, 30*time.Second, 50*time.Millisecond, "%s knows %v, want %v", nc.Opts.Name, nc.Servers(), want)
			}
		}},
		{"PubSubAcrossFrontdoors", func(t *testing.T) {
			flowing(t, pub, sub, "compose.across", 15*time.Second)
			flowing(t, sub, pub, "compose.back", 15*time.Second)
			// Request/reply across the two.
			rs, err := sub.Subscribe("compose.echo", func(m *nats.Msg) { m.Respond(m.Data) })
			require.NoError(t, err)
			defer rs.Unsubscribe()
			require.NoError(t, sub.Flush())
			require.Eventually(t, func() bool {
				m, err := pub.Request("compose.echo", []byte("hi"), time.Second)
				return err == nil && string(m.Data) == "hi"
			}, 10*time.Second, 100*time.Millisecond)
		}},
		{"WebSocket", func(t *testing.T) {
			// A WebSocket client on frontdoor1's published port talks
			// with the TCP client on frontdoor2.
			ws := connect(t, fmt.Sprintf("ws://127.0.0.1:%d", s.wsPort[0]), nats.Name("ws"))
			flowing(t, pub, ws, "compose.ws.in", 15*time.Second)
			flowing(t, ws, pub, "compose.ws.out", 15*time.Second)
			// It learns the other frontdoors' WebSocket addresses on the
			// host, never a container's.
			want := []string{
				fmt.Sprintf("ws://127.0.0.1:%d", s.wsPort[0]),
				fmt.Sprintf("ws://127.0.0.1:%d", s.wsPort[1]),
				fmt.Sprintf("ws://127.0.0.1:%d", s.hostPort("frontdoor", 1, 8080)),
			}
			slices.Sort(want)
			require.Eventually(t, func() bool {
				got := ws.Servers()
				slices.Sort(got)
				return slices.Equal(got, want)
			}, 30*time.Second, 50*time.Millisecond, "the WebSocket client knows %v, want %v", ws.Servers(), want)
			ws.Close()
		}},
		{"JetStream", func(t *testing.T) {
			js, err := jetstream.New(pub)
			require.NoError(t, err)
			ctx := testContext(t, 30*time.Second)
			_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "COMPOSE", Subjects: []string{"compose.js.>"}, Storage: jetstream.FileStorage})
			require.NoError(t, err)
			ack, err := js.Publish(ctx, "compose.js.one", []byte("stored"))
			require.NoError(t, err)
			require.Equal(t, uint64(1), ack.Sequence)
			// Read back through the other frontdoor.
			js2, err := jetstream.New(sub)
			require.NoError(t, err)
			st, err := js2.Stream(ctx, "COMPOSE")
			require.NoError(t, err)
			m, err := st.GetMsg(ctx, 1)
			require.NoError(t, err)
			require.Equal(t, "stored", string(m.Data))
		}},
		{"KillFrontdoorAndRouter", func(t *testing.T) {
			reconnected := make(chan struct{}, 1)
			sub.SetReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} })
			defer sub.SetReconnectHandler(nil)
			s.compose("kill", "frontdoor1", "router1")
			select {
			case <-reconnected:
			case <-time.After(15 * time.Second):
				t.Fatal("the client of frontdoor1 did not reconnect to another frontdoor")
			}
			// To frontdoor2 or the scaled replica: it knows both from INFO.
			require.Contains(t, []string{s.url(1), fmt.Sprintf("nats://127.0.0.1:%d", s.hostPort("frontdoor", 1, 4222))},
				sub.ConnectedUrl())
			flowing(t, pub, sub, "compose.after.kill", 15*time.Second)
			js, err := jetstream.New(pub)
			require.NoError(t, err)
			ack, err := js.Publish(testContext(t, 30*time.Second), "compose.js.two", []byte("after the kill"))
			require.NoError(t, err)
			require.Equal(t, uint64(2), ack.Sequence)
		}},
		{"ScaleFrontdoors", func(t *testing.T) {
			var before routez
			s.monitor(1, "/routez", &before)
			// up also starts frontdoor1 and router1 again.
			s.compose("up", "-d", "--scale", "frontdoor=3")
			states := s.waitHealthy(90 * time.Second)
			for _, svc := range []string{"frontdoor/1", "frontdoor/2", "frontdoor/3", "frontdoor1/1", "router1/1"} {
				require.Equal(t, "healthy", states[svc], "%s in %v", svc, states)
			}
			// The suite learns of the new frontdoors: frontdoor2 peers with
			// them over the mesh (router membership).
			require.Eventually(t, func() bool {
				var now routez
				s.monitor(1, "/routez", &now)
				up := 0
				for _, p := range now.Peers {
					if p.Up {
						up++
					}
				}
				return up >= len(before.Peers)+3
			}, 30*time.Second, 200*time.Millisecond, "frontdoor2 does not peer with the scaled frontdoors")
			// Each replica found the port of the range Docker gave it and
			// advertises it: the clients of the fixed frontdoors learn all
			// three, and no container address.
			var scaled []string
			for i := 1; i <= 3; i++ {
				port := s.hostPort("frontdoor", i, 4222)
				require.True(t, port >= s.scalePorts[0] && port <= s.scalePorts[1], "replica %d published on %d, outside %v", i, port, s.scalePorts)
				scaled = append(scaled, fmt.Sprintf("nats://127.0.0.1:%d", port))
			}
			for _, nc := range []*nats.Conn{pub, sub} {
				require.Eventually(t, func() bool {
					known := nc.Servers()
					for _, u := range scaled {
						if !slices.Contains(known, u) {
							return false
						}
					}
					return true
				}, 30*time.Second, 200*time.Millisecond, "%s does not learn of the scaled frontdoors %v: knows %v", nc.Opts.Name, scaled, nc.Servers())
				for _, u := range nc.Servers() {
					require.NotContains(t, u, "172.", "a container address was advertised: %s", u)
				}
			}
			// What a client learnt leads to a working frontdoor: a client
			// of the third replica exchanges messages with the others.
			third := connect(t, scaled[2], nats.Name("scaled"))
			flowing(t, pub, third, "compose.scaled.in", 15*time.Second)
			flowing(t, third, sub, "compose.scaled.out", 15*time.Second)
		}},
		{"RollingRestart", func(t *testing.T) { rollingRestart(t, s) }},
		{"DownLeavesNothing", func(t *testing.T) {
			sub.Close()
			pub.Close()
			s.compose("down", "-v", "-t", "1", "--remove-orphans")
			require.Empty(t, s.leftovers(), "containers, volumes or networks left after down -v")
		}},
	}
	for _, st := range steps {
		if !t.Run(st.name, st.fn) {
			return // later steps build on earlier ones
		}
	}
}
