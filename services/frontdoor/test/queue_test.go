package test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// tally counts deliveries per receiver and remembers every payload seen, so
// a test can check both the split and that nothing was delivered twice.
type tally struct {
	mu    sync.Mutex
	per   map[string]int
	seen  map[string]int // payload -> deliveries, within one group
	total int
}

func newTally() *tally { return &tally{per: map[string]int{}, seen: map[string]int{}} }

func (ta *tally) handler(name string) nats.MsgHandler {
	return func(m *nats.Msg) {
		ta.mu.Lock()
		ta.per[name]++
		ta.seen[string(m.Data)]++
		ta.total++
		ta.mu.Unlock()
	}
}

func (ta *tally) count() int {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return ta.total
}

// waitTotal waits for want deliveries, then watches a little longer so
// extra deliveries are caught too.
func (ta *tally) waitTotal(t *testing.T, want int, ncs ...*nats.Conn) {
	t.Helper()
	eventually(t, waitLong, func() error {
		if got := ta.count(); got < want {
			return fmt.Errorf("%d of %d delivered", got, want)
		}
		return nil
	})
	flush(t, ncs...)
	require.Equal(t, want, ta.count(), "delivered more than published")
}

func TestQueueOneMemberPerMessage(t *testing.T) {
	p := start(t, "")
	pub := connect(t, p)

	const n = 3000
	ta := newTally()
	var members []*nats.Conn
	for i := range 3 {
		nc := connect(t, p)
		s, err := nc.QueueSubscribe("work", "workers", ta.handler(fmt.Sprint("m", i)))
		require.NoError(t, err)
		require.NoError(t, s.SetPendingLimits(-1, -1))
		flush(t, nc)
		members = append(members, nc)
	}
	for i := range n {
		require.NoError(t, pub.Publish("work", seqData(i)))
	}
	flush(t, pub)
	ta.waitTotal(t, n, members...)

	ta.mu.Lock()
	defer ta.mu.Unlock()
	require.Len(t, ta.seen, n, "some messages never delivered")
	for data, k := range ta.seen {
		require.Equal(t, 1, k, "message %s delivered to %d members", data, k)
	}
	for i := range 3 {
		name := fmt.Sprint("m", i)
		// Even a poor spread gives every member far more than 100 of 3000.
		require.Greater(t, ta.per[name], 100, "member %s got %d of %d: %v", name, ta.per[name], n, ta.per)
	}
}

func TestQueueMembersOnOneConnection(t *testing.T) {
	// nats-server picks among subscriptions, not connections: two members
	// on one connection still get one copy between them.
	p := start(t, "")
	nc := connect(t, p)
	pub := connect(t, p)

	const n = 1000
	ta := newTally()
	for i := range 2 {
		s, err := nc.QueueSubscribe("same", "g", ta.handler(fmt.Sprint("m", i)))
		require.NoError(t, err)
		require.NoError(t, s.SetPendingLimits(-1, -1))
	}
	flush(t, nc)
	for i := range n {
		require.NoError(t, pub.Publish("same", seqData(i)))
	}
	flush(t, pub)
	ta.waitTotal(t, n, nc)
	ta.mu.Lock()
	defer ta.mu.Unlock()
	require.Len(t, ta.seen, n)
	require.Positive(t, ta.per["m0"])
	require.Positive(t, ta.per["m1"])
}

func TestQueueMixedWithPlainSubscribers(t *testing.T) {
	p := start(t, "")
	pub := connect(t, p)

	const n = 1000
	groupA, groupB := newTally(), newTally()
	plain := []*tally{newTally(), newTally()}
	var conns []*nats.Conn
	sub := func(nc *nats.Conn, subj, queue string, h nats.MsgHandler) {
		var s *nats.Subscription
		var err error
		if queue == "" {
			s, err = nc.Subscribe(subj, h)
		} else {
			s, err = nc.QueueSubscribe(subj, queue, h)
		}
		require.NoError(t, err)
		require.NoError(t, s.SetPendingLimits(-1, -1))
	}
	for i := range 3 {
		nc := connect(t, p)
		conns = append(conns, nc)
		sub(nc, "mixed.*", "a", groupA.handler(fmt.Sprint("a", i)))
		if i < 2 {
			// Group b shares connections with group a and uses a
			// different (literal) subject.
			sub(nc, "mixed.x", "b", groupB.handler(fmt.Sprint("b", i)))
			sub(nc, "mixed.>", "", plain[i].handler("plain"))
		}
	}
	for _, nc := range conns {
		flush(t, nc)
	}

	for i := range n {
		require.NoError(t, pub.Publish("mixed.x", seqData(i)))
	}
	flush(t, pub)

	groupA.waitTotal(t, n, conns...)
	groupB.waitTotal(t, n, conns...)
	for i, pl := range plain {
		pl.waitTotal(t, n, conns...)
		require.Len(t, pl.seen, n, "plain subscriber %d", i)
	}
	for _, g := range []*tally{groupA, groupB} {
		require.Len(t, g.seen, n, "a message reached no member or two members of a group")
	}
	require.Positive(t, groupA.per["a0"])
	require.Positive(t, groupA.per["a1"])
	require.Positive(t, groupA.per["a2"])
}

func TestQueueMemberLeaves(t *testing.T) {
	p := start(t, "")
	pub := connect(t, p)
	ta := newTally()

	stay := connect(t, p)
	_, err := stay.QueueSubscribe("leave", "g", ta.handler("stay"))
	require.NoError(t, err)
	gone := connect(t, p)
	_, err = gone.QueueSubscribe("leave", "g", ta.handler("gone"))
	require.NoError(t, err)
	flush(t, stay, gone)

	gone.Close()
	// The server notices the close asynchronously.
	eventually(t, waitLong, func() error {
		if c := getVarz(t, p).Connections; c != 2 {
			return fmt.Errorf("%d connections, want 2", c)
		}
		return nil
	})

	const n = 200
	for i := range n {
		require.NoError(t, pub.Publish("leave", seqData(i)))
	}
	flush(t, pub)
	ta.waitTotal(t, n, stay)
	ta.mu.Lock()
	defer ta.mu.Unlock()
	require.Equal(t, n, ta.per["stay"], "messages went to a member that left")
}

func TestQueueRequestReply(t *testing.T) {
	// A request to a queue group is answered once.
	p := start(t, "")
	for i := range 3 {
		nc := connect(t, p)
		name := fmt.Sprint("r", i)
		_, err := nc.QueueSubscribe("svc", "svc", func(m *nats.Msg) { m.Respond([]byte(name)) })
		require.NoError(t, err)
		flush(t, nc)
	}
	client := connect(t, p)
	inbox := nats.NewInbox()
	s, err := client.SubscribeSync(inbox)
	require.NoError(t, err)
	for range 30 {
		require.NoError(t, client.PublishRequest("svc", inbox, []byte("?")))
	}
	flush(t, client)
	nextMsgs(t, s, 30)
	expectNoMsg(t, s)
}
