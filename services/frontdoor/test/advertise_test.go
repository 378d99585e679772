package test

import (
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

// publishedPort stands in for a port Docker publishes: it listens on a
// host port and relays each connection to a frontdoor's client port. Like
// docker-proxy before its container listens, it accepts and closes at once
// while it has no backend.
type publishedPort struct {
	ln      net.Listener
	backend atomic.Pointer[string]
	garbage bool // answers every connection with a line that is not INFO
	wg      sync.WaitGroup
}

func publishPort(t *testing.T, port int) *publishedPort { return publish(t, port, false) }

// publishGarbage stands in for another service on a port of the range.
func publishGarbage(t *testing.T, port int) *publishedPort { return publish(t, port, true) }

func publish(t *testing.T, port int, garbage bool) *publishedPort {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	require.NoError(t, err)
	pp := &publishedPort{ln: ln, garbage: garbage}
	pp.wg.Add(1)
	go pp.serve()
	t.Cleanup(func() { ln.Close(); pp.wg.Wait() })
	return pp
}

func (pp *publishedPort) to(addr string) *publishedPort { pp.backend.Store(&addr); return pp }

func (pp *publishedPort) serve() {
	defer pp.wg.Done()
	for {
		c, err := pp.ln.Accept()
		if err != nil {
			return
		}
		backend := pp.backend.Load()
		switch {
		case pp.garbage:
			io.WriteString(c, "HTTP/1.0 400 Bad Request\r\n\r\n")
			c.Close()
		case backend == nil:
			c.Close()
		default:
			pp.wg.Add(1)
			go func() {
				defer pp.wg.Done()
				defer c.Close()
				b, err := net.Dial("tcp", *backend)
				if err != nil {
					return
				}
				defer b.Close()
				go func() { io.Copy(b, c); b.Close() }()
				io.Copy(c, b)
			}()
		}
	}
}

// discovered is the set of host:port a client learnt from INFO.
func discovered(nc *nats.Conn) []string {
	var out []string
	for _, u := range nc.DiscoveredServers() {
		out = append(out, strings.TrimPrefix(u, "nats://"))
	}
	slices.Sort(out)
	return out
}

// probeConf is a frontdoor's configuration: attached to router, told to
// find its published client port among lo..hi.
func probeConf(router *testkit.Process, lo, hi int) string {
	return fmt.Sprintf("routers: [%q]\nclient_advertise: \"127.0.0.1\"\nclient_advertise_probe: \"127.0.0.1:%d-%d\"\n",
		router.Addr(), lo, hi)
}

// Scaled compose replicas learn their published port by dialling the
// range: each advertises the one port that leads back to itself, never its
// container port, and one whose port comes later is advertised then.
func TestAdvertiseProbeFindsPublishedPort(t *testing.T) {
	router := testkit.StartRouter(t, 0)
	lo := testkit.FreePortRange(t, 4)
	aPort, bPort := testkit.FreePort(t), testkit.FreePort(t)
	publishPort(t, lo)                                          // Docker's proxy, nothing behind it yet
	bPub := publishPort(t, lo+1)                                // b's, switched on later
	publishGarbage(t, lo+2)                                     // something else on the host
	publishPort(t, lo+3).to(fmt.Sprintf("127.0.0.1:%d", aPort)) // a's
	conf := probeConf(router, lo, lo+3)
	a := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: conf, Port: aPort})
	b := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: conf, Port: bPort})
	aURL, bURL := fmt.Sprintf("127.0.0.1:%d", lo+3), fmt.Sprintf("127.0.0.1:%d", lo+1)

	testkit.WaitForLog(t, a, fmt.Sprintf("client_advertise_probe: 127.0.0.1:%d leads back to this frontdoor", lo+3), waitLong)
	nc := connect(t, b) // b's clients learn of a at its published port
	eventually(t, waitLong, func() error {
		if got := discovered(nc); !slices.Equal(got, []string{aURL}) {
			return fmt.Errorf("discovered %v, want only a's published %s", got, aURL)
		}
		return nil
	})
	// b has found nothing yet, so it advertises nothing: not its
	// container port, not a port of someone else.
	require.NotContains(t, b.Log(), "leads back to this frontdoor")

	bPub.to(fmt.Sprintf("127.0.0.1:%d", bPort))
	testkit.WaitForLog(t, b, fmt.Sprintf("client_advertise_probe: 127.0.0.1:%d leads back to this frontdoor", lo+1), waitLong)
	viaA, err := nats.Connect("nats://"+aURL, nats.Timeout(waitLong))
	require.NoError(t, err)
	defer viaA.Close()
	// nc, connected to b's own port, learns both published addresses;
	// viaA, connected through a's, learns b's.
	for c, want := range map[*nats.Conn][]string{nc: {bURL, aURL}, viaA: {bURL}} {
		eventually(t, waitLong, func() error {
			if got := discovered(c); !slices.Equal(got, want) {
				return fmt.Errorf("discovered %v, want %v", got, want)
			}
			return nil
		})
	}
	// What was learnt works: a client of a reaches b at the address it
	// was told, and messages flow between them.
	viaB, err := nats.Connect("nats://" + bURL)
	require.NoError(t, err)
	defer viaB.Close()
	sub, err := viaB.SubscribeSync("probe.>")
	require.NoError(t, err)
	flush(t, viaB)
	awaitRoute(t, viaA, "probe.x", sub)
}

// Two ports that both answer with a frontdoor's id (something relaying to
// it) are refused: advertising either could send clients elsewhere.
func TestAdvertiseProbeAmbiguousAdvertisesNothing(t *testing.T) {
	router := testkit.StartRouter(t, 0)
	lo := testkit.FreePortRange(t, 2)
	port := testkit.FreePort(t)
	publishPort(t, lo).to(fmt.Sprintf("127.0.0.1:%d", port))
	publishPort(t, lo+1).to(fmt.Sprintf("127.0.0.1:%d", port))
	a := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: probeConf(router, lo, lo+1), Port: port})
	testkit.WaitForLog(t, a, fmt.Sprintf("client_advertise_probe: ports [%d %d] at 127.0.0.1 all answer with this frontdoor's id", lo, lo+1), waitLong)
	nc := connect(t, a)
	flush(t, nc)
	require.Empty(t, discovered(nc))
}

// client_advertise reloads (SIGHUP) and the other frontdoors' clients
// learn the new address; a host without a port takes the client port, as
// in nats-server.
func TestAdvertiseReloadClientAdvertise(t *testing.T) {
	router := testkit.StartRouter(t, 0)
	dir := t.TempDir()
	conf := func(advertise string) string {
		return fmt.Sprintf("routers: [%q]\nclient_advertise: %q\n", router.Addr(), advertise)
	}
	path := writeConfig(t, dir, conf("127.0.0.1"))
	a := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Args: []string{"-c", path}})
	b := start(t, fmt.Sprintf("routers: [%q]\nno_advertise: true\n", router.Addr()))
	nc := connect(t, b)
	eventually(t, waitLong, func() error {
		if got, want := discovered(nc), []string{a.Addr()}; !slices.Equal(got, want) {
			return fmt.Errorf("discovered %v, want %v (client_advertise host and the client port)", got, want)
		}
		return nil
	})

	writeConfig(t, dir, conf("fd-a.example:4999"))
	require.NoError(t, a.Signal(syscall.SIGHUP))
	eventually(t, waitLong, func() error {
		if got := discovered(nc); !slices.Contains(got, "fd-a.example:4999") {
			return fmt.Errorf("discovered %v after the reload, want fd-a.example:4999", got)
		}
		return nil
	})
}

func TestAdvertiseProbeConfigRefused(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{`client_advertise_probe: "4230-4239"`, `"client_advertise_probe": "4230-4239" is not host:port or host:lo-hi`},
		{`client_advertise_probe: "h:4239-4230"`, `the ports must run up within 1..65535`},
		{`client_advertise_probe: "h:1-5000"`, `5000 ports are more than the 1024`},
		{"client_advertise_probe: \"h:4230-4239\"\nclient_advertise: \"h:4222\"", `names a port, but client_advertise_probe finds the port`},
	} {
		code, out := runFrontdoor(t, "-c", writeConfig(t, t.TempDir(), tc.conf))
		require.NotZero(t, code, "%s: started", tc.conf)
		require.Contains(t, out, tc.want, tc.conf)
	}
}

// websocket {}'s advertise_probe finds the published WebSocket port the
// same way, through a WebSocket upgrade, and WebSocket clients of the
// other frontdoors learn it.
func TestAdvertiseProbeWebSocket(t *testing.T) {
	router := testkit.StartRouter(t, 0)
	lo := testkit.FreePortRange(t, 3)
	aWS, bWS := testkit.FreePort(t), testkit.FreePort(t)
	publishPort(t, lo)
	publishGarbage(t, lo+1)
	publishPort(t, lo+2).to(fmt.Sprintf("127.0.0.1:%d", aWS))
	routers := fmt.Sprintf("routers: [%q]\n", router.Addr())
	a := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: routers +
		wsConf(aWS, fmt.Sprintf(`no_tls: true, advertise: "127.0.0.1", advertise_probe: "127.0.0.1:%d-%d"`, lo, lo+2))})
	b := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: routers + wsConf(bWS, "no_tls: true")})
	testkit.WaitForLog(t, a, fmt.Sprintf("websocket advertise_probe: 127.0.0.1:%d leads back to this frontdoor", lo+2), waitLong)

	ws := wsConnect(t, wsServer{p: b, wsPort: bWS}.wsURL())
	eventually(t, waitLong, func() error {
		if got, want := ws.DiscoveredServers(), []string{fmt.Sprintf("ws://127.0.0.1:%d", lo+2)}; !slices.Equal(got, want) {
			return fmt.Errorf("discovered %v, want %v", got, want)
		}
		return nil
	})
	// Through the published port, a WebSocket client reaches a.
	viaA := wsConnect(t, fmt.Sprintf("ws://127.0.0.1:%d", lo+2))
	exerciseCore(t, viaA, ws)
}
