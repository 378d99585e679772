package test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

func TestPubSubBasic(t *testing.T) {
	p := start(t, "")
	sub := connect(t, p)
	pub := connect(t, p)

	s, err := sub.SubscribeSync("greet")
	require.NoError(t, err)
	flush(t, sub)

	require.NoError(t, pub.Publish("greet", []byte("hello")))
	require.NoError(t, pub.PublishMsg(&nats.Msg{Subject: "greet", Reply: "answer.here", Data: []byte("")}))
	flush(t, pub)

	ms := nextMsgs(t, s, 2)
	require.Equal(t, "greet", ms[0].Subject)
	require.Equal(t, "hello", string(ms[0].Data))
	require.Empty(t, ms[0].Reply)
	require.Equal(t, "answer.here", ms[1].Reply)
	require.Empty(t, ms[1].Data)
	expectNoMsg(t, s)
}

func TestPubSubWildcards(t *testing.T) {
	p := start(t, "")
	sub := connect(t, p)
	pub := connect(t, p)

	subjects := []string{"a", "a.b", "a.c", "a.b.c", "a.b.c.d", "x.b.y", "b"}
	patterns := map[string][]string{ // pattern -> subjects it must receive, in publish order
		"a.*":     {"a.b", "a.c"},
		"a.>":     {"a.b", "a.c", "a.b.c", "a.b.c.d"},
		"*.b.*":   {"a.b.c", "x.b.y"},
		"a.*.c":   {"a.b.c"},
		"*":       {"a", "b"},
		">":       subjects,
		"a.b.c":   {"a.b.c"},
		"a.b.*.>": {"a.b.c.d"},
		"nothing": nil,
	}
	subs := map[string]*nats.Subscription{}
	for pat := range patterns {
		s, err := sub.SubscribeSync(pat)
		require.NoError(t, err)
		subs[pat] = s
	}
	flush(t, sub)

	for _, subj := range subjects {
		require.NoError(t, pub.Publish(subj, []byte(subj)))
	}
	flush(t, pub, sub)

	for pat, want := range patterns {
		ms := nextMsgs(t, subs[pat], len(want))
		var got []string
		for _, m := range ms {
			require.Equal(t, m.Subject, string(m.Data), "payload belongs to another subject")
			got = append(got, m.Subject)
		}
		require.Equal(t, want, got, "pattern %q", pat)
		// Each message once, even where a subject matches a pattern in two ways.
		n, _, err := subs[pat].Pending()
		require.NoError(t, err)
		require.Zero(t, n, "pattern %q received extra messages", pat)
	}
}

func TestPubSubManySubjects(t *testing.T) {
	p := start(t, "")
	sub := connect(t, p)
	pub := connect(t, p)

	const n = 2000
	var mu sync.Mutex
	got := map[string][]string{} // subscribed subject -> subjects delivered to it
	for i := range n {
		want := fmt.Sprintf("many.%d.leaf", i)
		_, err := sub.Subscribe(want, func(m *nats.Msg) {
			mu.Lock()
			got[want] = append(got[want], m.Subject+"="+string(m.Data))
			mu.Unlock()
		})
		require.NoError(t, err)
	}
	flush(t, sub)

	for i := range n {
		require.NoError(t, pub.Publish(fmt.Sprintf("many.%d.leaf", i), []byte(fmt.Sprint(i))))
	}
	flush(t, pub)

	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		c := 0
		for _, v := range got {
			c += len(v)
		}
		return c
	}
	eventually(t, waitLong, func() error {
		if got := total(); got < n {
			return fmt.Errorf("received %d of %d", got, n)
		}
		return nil
	})
	flush(t, sub)
	time.Sleep(quietTime)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, n)
	for i := range n {
		subj := fmt.Sprintf("many.%d.leaf", i)
		require.Equal(t, []string{fmt.Sprintf("%s=%d", subj, i)}, got[subj])
	}
}

func TestPubSubOrderingFromOnePublisher(t *testing.T) {
	p := start(t, "")
	sub := connect(t, p)
	pub := connect(t, p)

	const n = 20000
	s, err := sub.SubscribeSync("ordered.>")
	require.NoError(t, err)
	require.NoError(t, s.SetPendingLimits(-1, -1))
	flush(t, sub)

	// Two subjects through one wildcard: order holds per publisher, not
	// per subject.
	for i := range n {
		require.NoError(t, pub.Publish(fmt.Sprintf("ordered.%d", i%2), seqData(i)))
	}
	flush(t, pub)

	for i, m := range nextMsgs(t, s, n) {
		require.Equal(t, string(seqData(i)), string(m.Data), "message %d out of order", i)
		require.Equal(t, fmt.Sprintf("ordered.%d", i%2), m.Subject)
	}
	expectNoMsg(t, s)
}

func TestPubSubLargePayload(t *testing.T) {
	p := start(t, "")
	sub := connect(t, p)
	pub := connect(t, p)
	require.EqualValues(t, 1<<20, pub.MaxPayload(), "default max_payload is 1MB")

	s, err := sub.SubscribeSync("large")
	require.NoError(t, err)
	flush(t, sub)

	sizes := []int{512 << 10, 1 << 20, 0, 1, 100 << 10}
	for i, size := range sizes {
		require.NoError(t, pub.Publish("large", payload(size, i)))
	}
	flush(t, pub)
	for i, m := range nextMsgs(t, s, len(sizes)) {
		require.Len(t, m.Data, sizes[i])
		require.True(t, bytes.Equal(payload(sizes[i], i), m.Data), "message %d (%d bytes) corrupted", i, sizes[i])
	}
}

func TestPubSubMaxPayloadViolation(t *testing.T) {
	p := start(t, "max_payload: 1KB\n")
	sub := connect(t, p)
	pub := connect(t, p)
	require.EqualValues(t, 1024, pub.MaxPayload(), "INFO max_payload")

	s, err := sub.SubscribeSync("limit")
	require.NoError(t, err)
	flush(t, sub)

	// nats.go refuses locally what INFO says the server would refuse.
	require.ErrorIs(t, pub.Publish("limit", payload(1025, 0)), nats.ErrMaxPayload)
	require.NoError(t, pub.Publish("limit", payload(1024, 0)), "exactly max_payload is allowed")
	flush(t, pub)
	m := nextMsgs(t, s, 1)[0]
	require.Len(t, m.Data, 1024)

	// A client that ignores INFO is cut off as soon as the size is read,
	// before the payload arrives.
	rc := testkit.DialRaw(t, p.Addr())
	rc.Send("CONNECT {\"verbose\":false}\r\nPUB limit 1025\r\n")
	got := rc.ExpectClosed(5 * time.Second)
	require.Equal(t, "-ERR 'Maximum Payload Violation'\r\n", got)

	// The same through HPUB: headers count toward the total.
	rc = testkit.DialRaw(t, p.Addr())
	rc.Send("CONNECT {\"verbose\":false,\"headers\":true}\r\nHPUB limit 12 1030\r\n")
	require.Equal(t, "-ERR 'Maximum Payload Violation'\r\n", rc.ExpectClosed(5*time.Second))

	// Other connections are unaffected.
	expectNoMsg(t, s)
	require.NoError(t, pub.Publish("limit", []byte("still here")))
	flush(t, pub)
	require.Equal(t, "still here", string(nextMsgs(t, s, 1)[0].Data))
}

func TestPubSubUnsubscribe(t *testing.T) {
	p := start(t, "")
	sub := connect(t, p)
	pub := connect(t, p)

	keep, err := sub.SubscribeSync("unsub")
	require.NoError(t, err)
	drop, err := sub.SubscribeSync("unsub")
	require.NoError(t, err)
	flush(t, sub)

	require.NoError(t, pub.Publish("unsub", []byte("1")))
	flush(t, pub)
	nextMsgs(t, keep, 1)
	nextMsgs(t, drop, 1)

	require.NoError(t, drop.Unsubscribe())
	flush(t, sub)
	before := sub.Stats().InMsgs
	require.NoError(t, pub.Publish("unsub", []byte("2")))
	flush(t, pub, sub)
	require.Equal(t, "2", string(nextMsgs(t, keep, 1)[0].Data))
	// The server, not just nats.go, stopped delivering to the dropped sid.
	require.Equal(t, before+1, sub.Stats().InMsgs, "server still delivers to the unsubscribed sid")
}

func TestPubSubNoEcho(t *testing.T) {
	p := start(t, "")
	quiet := connect(t, p, nats.NoEcho())
	other := connect(t, p)

	own, err := quiet.SubscribeSync("echo")
	require.NoError(t, err)
	theirs, err := other.SubscribeSync("echo")
	require.NoError(t, err)
	ownQueue, err := quiet.QueueSubscribeSync("echo", "q")
	require.NoError(t, err)
	flush(t, quiet, other)

	require.NoError(t, quiet.Publish("echo", []byte("from quiet")))
	flush(t, quiet, other)
	require.Equal(t, "from quiet", string(nextMsgs(t, theirs, 1)[0].Data))
	expectNoMsg(t, own)
	expectNoMsg(t, ownQueue)
	require.Zero(t, quiet.Stats().InMsgs, "the server sent a no-echo client its own message")

	// No echo is about the publisher only: others still reach it.
	require.NoError(t, other.Publish("echo", []byte("from other")))
	flush(t, other)
	require.Equal(t, "from other", string(nextMsgs(t, own, 1)[0].Data))
	require.Equal(t, "from other", string(nextMsgs(t, ownQueue, 1)[0].Data))
	require.Equal(t, "from other", string(nextMsgs(t, theirs, 1)[0].Data))
}

func TestPubSubEchoByDefault(t *testing.T) {
	p := start(t, "")
	nc := connect(t, p)
	s, err := nc.SubscribeSync("self")
	require.NoError(t, err)
	require.NoError(t, nc.Publish("self", []byte("me")))
	flush(t, nc)
	require.Equal(t, "me", string(nextMsgs(t, s, 1)[0].Data))
}

func TestPubSubAutoUnsubscribe(t *testing.T) {
	p := start(t, "")
	sub := connect(t, p)
	pub := connect(t, p)
	base := numSubs(t, p)

	s, err := sub.SubscribeSync("auto")
	require.NoError(t, err)
	require.NoError(t, s.AutoUnsubscribe(5))
	other, err := sub.SubscribeSync("auto.other")
	require.NoError(t, err)
	flush(t, sub)

	for i := range 20 {
		require.NoError(t, pub.Publish("auto", seqData(i)))
	}
	flush(t, pub, sub)

	ms := nextMsgs(t, s, 5)
	for i, m := range ms {
		require.Equal(t, string(seqData(i)), string(m.Data))
	}
	_, err = s.NextMsg(quietTime)
	require.ErrorIs(t, err, nats.ErrMaxMessages, "nats.go closes the subscription after its max")
	// nats.go would hide extra messages; the connection's counter does not.
	require.EqualValues(t, 5, sub.Stats().InMsgs, "the server delivered more than the UNSUB max")

	// The server forgot the subscription; the other one is still there.
	eventually(t, waitLong, func() error {
		if got := numSubs(t, p) - base; got != 1 {
			return fmt.Errorf("/subsz num_subscriptions grew by %d, want 1", got)
		}
		return nil
	})
	require.NoError(t, pub.Publish("auto.other", []byte("x")))
	flush(t, pub)
	nextMsgs(t, other, 1)
}

func TestPubSubAutoUnsubscribeAfterDeliveries(t *testing.T) {
	// UNSUB <sid> <max> where max is below what was already delivered
	// removes the subscription at once.
	p := start(t, "")
	sub := connect(t, p)
	pub := connect(t, p)

	s, err := sub.SubscribeSync("late")
	require.NoError(t, err)
	flush(t, sub)
	for i := range 3 {
		require.NoError(t, pub.Publish("late", seqData(i)))
	}
	flush(t, pub, sub)
	nextMsgs(t, s, 3)

	require.NoError(t, s.AutoUnsubscribe(2))
	flush(t, sub)
	before := sub.Stats().InMsgs
	require.NoError(t, pub.Publish("late", []byte("after")))
	flush(t, pub, sub)
	require.Equal(t, before, sub.Stats().InMsgs, "delivered after UNSUB with a max already reached")
}

func TestPubSubDrainSubscription(t *testing.T) {
	p := start(t, "")
	sub := connect(t, p)
	pub := connect(t, p)

	const n = 500
	var mu sync.Mutex
	var got []string
	s, err := sub.Subscribe("drain.sub", func(m *nats.Msg) {
		time.Sleep(200 * time.Microsecond) // a handler slower than the wire, so messages queue
		mu.Lock()
		got = append(got, string(m.Data))
		mu.Unlock()
	})
	require.NoError(t, err)
	require.NoError(t, s.SetPendingLimits(-1, -1))
	flush(t, sub)

	for i := range n {
		require.NoError(t, pub.Publish("drain.sub", seqData(i)))
	}
	flush(t, pub)
	require.NoError(t, s.Drain())
	eventually(t, waitLong, func() error {
		if s.IsValid() {
			return fmt.Errorf("subscription still draining")
		}
		return nil
	})

	mu.Lock()
	require.Len(t, got, n, "drain dropped pending messages")
	for i := range n {
		require.Equal(t, string(seqData(i)), got[i])
	}
	mu.Unlock()

	// After the drain the server no longer delivers to it.
	require.NoError(t, pub.Publish("drain.sub", []byte("late")))
	flush(t, pub, sub)
	require.EqualValues(t, n, sub.Stats().InMsgs)
}

func TestPubSubFlushAndRTT(t *testing.T) {
	p := start(t, "")
	nc := connect(t, p)
	s, err := nc.SubscribeSync("flush")
	require.NoError(t, err)
	for i := range 1000 {
		require.NoError(t, nc.Publish("flush", seqData(i)))
	}
	// Flush returns after the PONG, which the server sends after the
	// messages it queued for the same connection.
	require.NoError(t, nc.FlushTimeout(waitLong))
	n, _, err := s.Pending()
	require.NoError(t, err)
	require.Equal(t, 1000, n, "messages published before PING arrive before PONG")

	rtt, err := nc.RTT()
	require.NoError(t, err)
	require.Positive(t, rtt)
	require.Less(t, rtt, time.Second, "loopback RTT")
}

func TestPubSubManySubscribersFanOut(t *testing.T) {
	p := start(t, "")
	pub := connect(t, p)

	const conns, n = 10, 200
	subs := make([]*nats.Subscription, conns)
	for i := range subs {
		nc := connect(t, p)
		s, err := nc.SubscribeSync("fan.*")
		require.NoError(t, err)
		require.NoError(t, s.SetPendingLimits(-1, -1))
		flush(t, nc)
		subs[i] = s
	}
	for i := range n {
		require.NoError(t, pub.Publish("fan.out", seqData(i)))
	}
	flush(t, pub)
	for k, s := range subs {
		for i, m := range nextMsgs(t, s, n) {
			require.Equal(t, string(seqData(i)), string(m.Data), "subscriber %d, message %d", k, i)
		}
		expectNoMsg(t, s)
	}
}
