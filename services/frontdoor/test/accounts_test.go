package test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// accountsConf has three accounts: A exports a stream and a service, B
// imports both (the stream under a prefix, the service under another
// name), C imports nothing.
const accountsConf = `
accounts {
	A: {
		users: [ { user: a, password: a } ]
		exports: [ { stream: "feed.>" }, { service: "svc.time" }, { service: "svc.private", accounts: [B] } ]
		mappings { "in.*": "orders.$1" }
	}
	B: {
		users: [ { user: b, password: b } ]
		imports: [
			{ stream: { account: A, subject: "feed.>" }, prefix: "ext" }
			{ service: { account: A, subject: "svc.time" }, to: "time" }
		]
	}
	C: { users: [ { user: c, password: c } ] }
}
`

// collect reads what sub receives until it is quiet.
func collect(sub *nats.Subscription) []string {
	var got []string
	for {
		m, err := sub.NextMsg(quietTime)
		if err != nil {
			return got
		}
		got = append(got, m.Subject+"="+string(m.Data))
	}
}

// Accounts cannot see each other's messages: a ">" subscriber in each
// account, on each of two frontdoors, receives its own account's messages
// and nothing else.
func TestAccountsIsolation(t *testing.T) {
	s := startAuthSuite(t, accountsConf, 2)
	users := []string{"a", "b", "c"}
	subs := map[string][]*nats.Subscription{}
	pubs := map[string]*nats.Conn{}
	for _, u := range users {
		for _, fd := range s.fds {
			nc := connect(t, fd, nats.UserInfo(u, u))
			subs[u] = append(subs[u], mustSyncSub(t, nc, ">"))
		}
		pubs[u] = connect(t, s.fds[0], nats.UserInfo(u, u))
	}
	// Wait until each account's publisher reaches its subscriber on the
	// other frontdoor, then drop the probes everywhere.
	for _, u := range users {
		awaitRoute(t, pubs[u], "probe."+u, subs[u][1])
	}
	for _, u := range users {
		for _, sub := range subs[u] {
			collect(sub)
		}
	}
	for _, u := range users {
		for i := range 3 {
			require.NoError(t, pubs[u].Publish(fmt.Sprintf("data.%d", i), []byte(u)))
		}
		flush(t, pubs[u])
	}
	for _, u := range users {
		for i, sub := range subs[u] {
			require.Equal(t, []string{"data.0=" + u, "data.1=" + u, "data.2=" + u}, collect(sub),
				"account of user %s, frontdoor %d: its own messages only", u, i)
		}
	}

	// Account A's mapping applies to A's publishers only.
	require.NoError(t, pubs["a"].Publish("in.7", []byte("mapped")))
	require.NoError(t, pubs["c"].Publish("in.7", []byte("unmapped")))
	flush(t, pubs["a"], pubs["c"])
	require.Equal(t, []string{"orders.7=mapped"}, collect(subs["a"][1]))
	require.Equal(t, []string{"in.7=unmapped"}, collect(subs["c"][1]))
	require.Empty(t, collect(subs["b"][1]))
}

// A stream export reaches the importing account under its prefix, on both
// frontdoors, and reaches no account that did not import it.
func TestAccountsStreamImport(t *testing.T) {
	s := startAuthSuite(t, accountsConf, 2)
	pub := connect(t, s.fds[0], nats.UserInfo("a", "a"))
	bFar := connect(t, s.fds[1], nats.UserInfo("b", "b"))
	bNear := connect(t, s.fds[0], nats.UserInfo("b", "b"))
	c := connect(t, s.fds[1], nats.UserInfo("c", "c"))
	far := mustSyncSub(t, bFar, "ext.feed.>")
	near := mustSyncSub(t, bNear, "ext.>")
	unprefixed := mustSyncSub(t, bFar, "feed.>")
	other := mustSyncSub(t, c, ">")
	awaitRoute(t, pub, "feed.probe", far)
	collect(near)

	require.NoError(t, pub.Publish("feed.prices", []byte("42")))
	require.NoError(t, pub.Publish("notexported", []byte("x")))
	flush(t, pub)
	require.Equal(t, []string{"ext.feed.prices=42"}, collect(far), "imported across frontdoors")
	require.Equal(t, []string{"ext.feed.prices=42"}, collect(near), "imported on the publisher's frontdoor")
	require.Empty(t, collect(unprefixed), "the importer sees the stream under its prefix only")
	require.Empty(t, collect(other), "an account without the import sees nothing")

	// The importer cannot publish into the exporter through the import.
	aSub := mustSyncSub(t, connect(t, s.fds[1], nats.UserInfo("a", "a")), "feed.>")
	require.NoError(t, bNear.Publish("ext.feed.prices", []byte("back")))
	require.NoError(t, bNear.Publish("feed.prices", []byte("back")))
	flush(t, bNear)
	expectNoMsg(t, aSub)
}

// A service import answered across frontdoors: B requests "time", A's
// responder on the other frontdoor gets "svc.time" with B's identity in
// Nats-Request-Info (a forged one is replaced), and the reply comes back.
func TestAccountsServiceImport(t *testing.T) {
	s := startAuthSuite(t, accountsConf, 2)
	responder := connect(t, s.fds[0], nats.UserInfo("a", "a"))
	seen := make(chan *nats.Msg, 10)
	_, err := responder.Subscribe("svc.time", func(m *nats.Msg) {
		seen <- m
		// Not require: this runs on nats.go's goroutine, not the test's.
		for _, answer := range []string{"noon", "a second answer"} { // a singleton gets one
			if err := m.Respond([]byte(answer)); err != nil {
				t.Errorf("responding: %v", err)
			}
		}
	})
	require.NoError(t, err)
	flush(t, responder)

	for i, fd := range s.fds {
		req := connect(t, fd, nats.UserInfo("b", "b"), nats.Name("requester"))
		var reply *nats.Msg
		eventually(t, waitLong, func() error {
			msg := nats.NewMsg("time")
			msg.Header.Set("Nats-Request-Info", `{"acc":"A","user":"forged"}`)
			var err error
			reply, err = req.RequestMsg(msg, time.Second)
			return err
		})
		require.Equal(t, "noon", string(reply.Data), "frontdoor %d", i)
		var m *nats.Msg
		for len(seen) > 0 {
			m = <-seen
		}
		require.NotNil(t, m)
		require.Equal(t, "svc.time", m.Subject)
		require.Regexp(t, `^_R_\.`, m.Reply, "the exporter sees its own reply subject, not the importer's inbox")
		require.Len(t, m.Header.Values("Nats-Request-Info"), 1)
		var info struct {
			Acc  string `json:"acc"`
			User string `json:"user"`
			Name string `json:"name"`
		}
		require.NoError(t, json.Unmarshal([]byte(m.Header.Get("Nats-Request-Info")), &info))
		require.Equal(t, "B", info.Acc, "the requester's real account")
		require.Equal(t, "b", info.User)
		require.Equal(t, "requester", info.Name)

		// One answer per request for a singleton service.
		inbox := nats.NewInbox()
		sub := mustSyncSub(t, req, inbox)
		require.NoError(t, req.PublishRequest("time", inbox, nil))
		require.Equal(t, "noon", string(nextMsgs(t, sub, 1)[0].Data))
		expectNoMsg(t, sub)
	}

	// C has no import: its request finds no responder.
	c := connect(t, s.fds[1], nats.UserInfo("c", "c"))
	_, err = c.Request("time", nil, 500*time.Millisecond)
	require.ErrorIs(t, err, nats.ErrNoResponders)
	_, err = c.Request("svc.time", nil, 500*time.Millisecond)
	require.ErrorIs(t, err, nats.ErrNoResponders)
}
