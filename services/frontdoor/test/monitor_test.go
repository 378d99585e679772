package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

func TestMonitorHealthz(t *testing.T) {
	p := start(t, "")
	resp, err := httpClient.Get(p.MonitorURL() + "/healthz")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "application/json")
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(body, &got), "%q", body)
	require.Equal(t, map[string]any{"status": "ok"}, got)
}

// varzKeys are /varz fields that dashboards and prometheus-nats-exporter
// read, with the JSON type nats-server gives them.
var varzKeys = map[string]string{
	"server_id": "string", "server_name": "string", "version": "string", "proto": "number",
	"go": "string", "host": "string", "port": "number", "max_connections": "number",
	"ping_interval": "number", "ping_max": "number", "http_host": "string", "http_port": "number",
	"auth_timeout": "number", "max_control_line": "number", "max_payload": "number",
	"max_pending": "number", "tls_timeout": "number", "write_deadline": "number",
	"start": "string", "now": "string", "uptime": "string", "mem": "number", "cores": "number",
	"gomaxprocs": "number", "cpu": "number", "connections": "number", "total_connections": "number",
	"routes": "number", "remotes": "number", "leafnodes": "number", "in_msgs": "number",
	"out_msgs": "number", "in_bytes": "number", "out_bytes": "number", "slow_consumers": "number",
	"stale_connections": "number", "subscriptions": "number", "http_req_stats": "object",
	"config_load_time": "string", "slow_consumer_stats": "object",
}

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case bool:
		return "bool"
	}
	return "null"
}

func TestMonitorVarzFields(t *testing.T) {
	p := start(t, "")
	var raw map[string]any
	getJSON(t, p, "/varz", &raw)
	for key, typ := range varzKeys {
		v, ok := raw[key]
		if !ok {
			t.Errorf("/varz has no %q", key)
			continue
		}
		if got := jsonType(v); got != typ {
			t.Errorf("/varz %q is a %s (%v), nats-server has a %s", key, got, v, typ)
		}
	}

	nc := connect(t, p)
	v := getVarz(t, p)
	require.Equal(t, nc.ConnectedServerId(), v.ServerID, "server_id matches INFO")
	require.Equal(t, "2.15.2", v.Version)
	require.Equal(t, nc.ConnectedServerVersion(), v.Version)
	require.Equal(t, 1<<20, v.MaxPayload)
	require.EqualValues(t, 64<<20, v.MaxPending)
	require.Equal(t, 65536, v.MaxConnections)
	require.Equal(t, p.Port, v.Port)
	require.Equal(t, p.HTTPPort, v.HTTPPort)
	require.Equal(t, float64(2*time.Minute), raw["ping_interval"], "ping_interval is in nanoseconds")
}

func TestMonitorVarzCounts(t *testing.T) {
	p := start(t, "max_payload: 512KB\n")
	waitForConnections(t, p, 0)
	base := getVarz(t, p)
	require.Equal(t, 512<<10, base.MaxPayload, "max_payload from the file")

	pub := connect(t, p)
	s1 := connect(t, p)
	s2 := connect(t, p)
	for _, nc := range []*nats.Conn{s1, s2} {
		_, err := nc.SubscribeSync("count.>")
		require.NoError(t, err)
		flush(t, nc)
	}
	require.Equal(t, 3, getVarz(t, p).Connections)
	require.GreaterOrEqual(t, getVarz(t, p).TotalConnections, base.TotalConnections+3)

	const n, size = 10, 5
	for i := range n {
		require.NoError(t, pub.Publish(fmt.Sprint("count.", i), payload(size, i)))
	}
	require.NoError(t, pub.Publish("count.nobody.else", nil)) // 0 bytes, 2 deliveries
	flush(t, pub, s1, s2)

	// The PONG can overtake the counters by a moment (nats-server too
	// writes from another goroutine), so poll; the values are still exact.
	var v varz
	eventually(t, waitLong, func() error {
		v = getVarz(t, p)
		got := [4]int64{v.InMsgs - base.InMsgs, v.InBytes - base.InBytes, v.OutMsgs - base.OutMsgs, v.OutBytes - base.OutBytes}
		if want := [4]int64{n + 1, n * size, 2 * (n + 1), 2 * n * size}; got != want {
			return fmt.Errorf("in_msgs, in_bytes, out_msgs, out_bytes grew by %v, want %v", got, want)
		}
		return nil
	})
	require.GreaterOrEqual(t, v.Subscriptions-base.Subscriptions, 2)

	// Closed connections still count toward the totals.
	s1.Close()
	s2.Close()
	waitForConnections(t, p, 1)
	after := getVarz(t, p)
	require.Equal(t, v.InMsgs, after.InMsgs, "in_msgs after clients closed")
	require.Equal(t, v.OutMsgs, after.OutMsgs, "out_msgs after clients closed")
	require.Equal(t, v.OutBytes, after.OutBytes, "out_bytes after clients closed")
}

func TestMonitorConnz(t *testing.T) {
	p := start(t, "")
	waitForConnections(t, p, 0)
	a := connect(t, p, nats.Name("conn-a"))
	b := connect(t, p, nats.Name("conn-b"))
	_, err := a.SubscribeSync("connz.one")
	require.NoError(t, err)
	_, err = a.QueueSubscribeSync("connz.two", "workers")
	require.NoError(t, err)
	flush(t, a)
	for range 3 {
		require.NoError(t, b.Publish("connz.one", []byte("abc")))
	}
	flush(t, b, a)

	aID, err := a.GetClientID()
	require.NoError(t, err)
	bID, err := b.GetClientID()
	require.NoError(t, err)

	// Counters may trail the PONG by a moment (see TestMonitorVarzCounts).
	var c connz
	eventually(t, waitLong, func() error {
		c = getConnz(t, p, "")
		ca, _ := findConn(c, aID)
		cb, _ := findConn(c, bID)
		if ca.OutMsgs != 3 || cb.InMsgs != 3 {
			return fmt.Errorf("conn-a out_msgs %d, conn-b in_msgs %d, want 3 and 3", ca.OutMsgs, cb.InMsgs)
		}
		return nil
	})
	require.Equal(t, a.ConnectedServerId(), c.ServerID)
	require.Equal(t, 2, c.NumConns)
	require.Equal(t, 2, c.Total)
	ca, ok := findConn(c, aID)
	require.True(t, ok, "cid %d not in /connz: %+v", aID, c.Connections)
	cb, ok := findConn(c, bID)
	require.True(t, ok, "cid %d not in /connz", bID)

	require.Equal(t, "conn-a", ca.Name)
	require.Equal(t, "go", ca.Lang)
	require.Equal(t, nats.Version, ca.Version)
	require.Equal(t, "Client", ca.Kind)
	require.Equal(t, "nats", ca.Type)
	require.Equal(t, "127.0.0.1", ca.IP)
	require.Positive(t, ca.Port)
	require.Equal(t, 2, ca.NumSubs)
	require.EqualValues(t, 3, ca.OutMsgs)
	require.EqualValues(t, 3, cb.InMsgs)
	require.Equal(t, "conn-b", cb.Name)
	require.Nil(t, ca.Subs, "subscriptions_list only with ?subs=1")
	require.Nil(t, ca.SubsDetail)

	// ?subs=1: subjects only.
	ca, _ = findConn(getConnz(t, p, "?subs=1"), aID)
	subs := append([]string(nil), ca.Subs...)
	sort.Strings(subs)
	require.Equal(t, []string{"connz.one", "connz.two"}, subs)
	require.Nil(t, ca.SubsDetail)

	// ?subs=detail: subject, queue, sid, delivered count, cid.
	ca, _ = findConn(getConnz(t, p, "?subs=detail"), aID)
	require.Len(t, ca.SubsDetail, 2)
	sort.Slice(ca.SubsDetail, func(i, j int) bool { return ca.SubsDetail[i].Subject < ca.SubsDetail[j].Subject })
	one, two := ca.SubsDetail[0], ca.SubsDetail[1]
	require.Equal(t, "connz.one", one.Subject)
	require.Empty(t, one.Queue)
	require.EqualValues(t, 3, one.Msgs)
	require.Equal(t, aID, one.Cid)
	require.NotEmpty(t, one.Sid)
	require.Equal(t, "connz.two", two.Subject)
	require.Equal(t, "workers", two.Queue)
	require.Zero(t, two.Msgs)
	require.NotEqual(t, one.Sid, two.Sid)

	// ?cid= selects one connection.
	only := getConnz(t, p, fmt.Sprintf("?cid=%d", bID))
	require.Len(t, only.Connections, 1)
	require.Equal(t, bID, only.Connections[0].Cid)

	// A closed connection moves to ?state=closed with its reason.
	b.Close()
	eventually(t, waitLong, func() error {
		if _, ok := findConn(getConnz(t, p, "?state=closed"), bID); !ok {
			return fmt.Errorf("cid %d not among closed connections", bID)
		}
		return nil
	})
	closed, _ := findConn(getConnz(t, p, "?state=closed"), bID)
	require.Equal(t, "Client Closed", closed.Reason)
	require.Equal(t, "conn-b", closed.Name)
	require.NotNil(t, closed.Stop)
	_, stillOpen := findConn(getConnz(t, p, ""), bID)
	require.False(t, stillOpen)
	_, inAny := findConn(getConnz(t, p, "?state=any"), bID)
	require.True(t, inAny)
}

func TestMonitorConnzPaging(t *testing.T) {
	p := start(t, "")
	waitForConnections(t, p, 0)
	for range 5 {
		connect(t, p)
	}
	c := getConnz(t, p, "?limit=2&offset=1")
	require.Equal(t, 5, c.Total)
	require.Equal(t, 2, c.NumConns)
	require.Len(t, c.Connections, 2)
	all := getConnz(t, p, "")
	require.Len(t, all.Connections, 5)
	// Default sort is by cid, so the page is connections 2 and 3.
	require.Equal(t, all.Connections[1].Cid, c.Connections[0].Cid)
	require.Equal(t, all.Connections[2].Cid, c.Connections[1].Cid)
}

func TestMonitorSubsz(t *testing.T) {
	p := start(t, "")
	base := numSubs(t, p)

	nc := connect(t, p)
	var subs []*nats.Subscription
	for _, subj := range []string{"subsz.a", "subsz.b", "subsz.*", "subsz.>", "other"} {
		s, err := nc.SubscribeSync(subj)
		require.NoError(t, err)
		subs = append(subs, s)
	}
	_, err := nc.QueueSubscribeSync("subsz.a", "q")
	require.NoError(t, err)
	flush(t, nc)
	require.Equal(t, 6, numSubs(t, p)-base)

	require.NoError(t, subs[0].Unsubscribe())
	require.NoError(t, subs[1].Unsubscribe())
	flush(t, nc)
	require.Equal(t, 4, numSubs(t, p)-base)

	var raw map[string]any
	getJSON(t, p, "/subsz", &raw)
	for _, key := range []string{"server_id", "now", "num_subscriptions", "num_cache", "num_inserts",
		"num_removes", "num_matches", "cache_hit_rate", "max_fanout", "avg_fanout"} {
		require.Contains(t, raw, key, "/subsz field")
	}

	nc.Close()
	eventually(t, waitLong, func() error {
		if got := numSubs(t, p) - base; got != 0 {
			return fmt.Errorf("%d subscriptions left after the connection closed", got)
		}
		return nil
	})
}

func TestMonitorHTTPReqStats(t *testing.T) {
	p := start(t, "")
	var tmp map[string]any
	for range 3 {
		getJSON(t, p, "/connz", &tmp)
	}
	var v struct {
		Stats map[string]uint64 `json:"http_req_stats"`
	}
	getJSON(t, p, "/varz", &v)
	require.EqualValues(t, 3, v.Stats["/connz"])
	require.EqualValues(t, 1, v.Stats["/varz"])
}

func TestMonitorListensOnClientHost(t *testing.T) {
	// With -a 127.0.0.1 and no http_host, nats-server serves monitoring on
	// 127.0.0.1 too: a server bound to loopback must not expose /connz
	// (client addresses, names) on the machine's other interfaces.
	p := start(t, "")
	v := getVarz(t, p)
	var raw map[string]any
	getJSON(t, p, "/varz", &raw)
	if raw["http_host"] != "127.0.0.1" {
		t.Errorf("/varz http_host is %v with -a 127.0.0.1, want 127.0.0.1", raw["http_host"])
	}

	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.To4() == nil {
			continue
		}
		addr := net.JoinHostPort(ipn.IP.String(), strconv.Itoa(v.HTTPPort))
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("monitoring port reachable on %s although the server was started with -a 127.0.0.1", addr)
		}
	}
}
