package test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// Consumer priority groups (ADR-42): overflow, pinned_client and
// prioritized pull consumers, the unpin API and the advisories. Every
// test here runs against nats-server too (STREAMSVC_REFERENCE).

// fetchData fetches up to n messages from c with opts, acking none, and
// returns their payloads, their Nats-Pin-Id headers and the fetch's error.
func fetchData(t *testing.T, c jetstream.Consumer, n int, opts ...jetstream.FetchOpt) ([]string, []string, error) {
	t.Helper()
	batch, err := c.Fetch(n, opts...)
	require.NoError(t, err)
	var data, pins []string
	for m := range batch.Messages() {
		data = append(data, string(m.Data()))
		pins = append(pins, m.Headers().Get("Nats-Pin-Id"))
	}
	return data, pins, batch.Error()
}

// pullStatus sends a raw pull request and returns the status line of the
// first reply ("<code> <description>").
func pullStatus(t *testing.T, nc *nats.Conn, stream, consumer, body string) string {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	require.NoError(t, err)
	defer sub.Unsubscribe()
	require.NoError(t, nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT."+stream+"."+consumer, inbox, []byte(body)))
	m, err := sub.NextMsg(wait)
	require.NoError(t, err, body)
	return m.Header.Get("Status") + " " + m.Header.Get("Description")
}

// The configuration rules and errors of nats-server, the priority group
// state in consumer info, and the pull requests a priority consumer
// refuses.
func TestPriorityConfigAndBadRequests(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "PRIO", Subjects: []string{"prio.>"}})
	waitForStream(t, js, "prio.probe")

	create := func(cfg string) map[string]any {
		return apiRequest(t, nc, "$JS.API.CONSUMER.CREATE.PRIO.C", `{"stream_name":"PRIO","config":{"name":"C","ack_policy":"explicit",`+cfg+`}}`)
	}
	for cfg, want := range map[string]map[string]any{
		`"priority_policy":"pinned_client"`:                   errorObject(400, 10159, "Setting PriorityPolicy requires at least one PriorityGroup to be set"),
		`"priority_groups":["g"]`:                             errorObject(400, 10196, "consumer can not have priority groups when policy is none"),
		`"priority_timeout":1000000000`:                       errorObject(400, 10197, "PinnedTTL cannot be set when PriorityPolicy is none"),
		`"priority_policy":"overflow","priority_groups":[""]`: errorObject(400, 10161, "Group name cannot be an empty string"),
		`"priority_policy":"overflow","priority_groups":["a.b"]`: errorObject(400, 10162,
			"Valid priority group name must match A-Z, a-z, 0-9, -_/=)+ and may not exceed 16 characters"),
		`"priority_policy":"overflow","priority_groups":["seventeen-chars-x"]`: errorObject(400, 10162,
			"Valid priority group name must match A-Z, a-z, 0-9, -_/=)+ and may not exceed 16 characters"),
		`"priority_policy":"overflow","priority_groups":["g"],"deliver_subject":"deliver.prio"`: errorObject(400, 10178, "priority groups can not be used with push consumers"),
		`"priority_policy":"bogus","priority_groups":["g"]`:                                     errorObject(400, 10025, `invalid JSON: unknown priority policy: "bogus"`),
	} {
		require.Equal(t, want, apiError(create(cfg)), cfg)
	}

	// "none" with no groups is no policy at all.
	reply := create(`"priority_policy":"none","priority_groups":[]`)
	require.Nil(t, apiError(reply))
	require.NotContains(t, reply["config"], "priority_policy")
	require.NotContains(t, reply, "priority_groups")

	// pinned_client defaults priority_timeout to 2 minutes; info reports
	// the first group, with nobody pinned yet.
	reply = apiRequest(t, nc, "$JS.API.CONSUMER.CREATE.PRIO.P",
		`{"stream_name":"PRIO","config":{"durable_name":"P","ack_policy":"explicit","filter_subject":"prio.p","priority_policy":"pinned_client","priority_groups":["g","h"]}}`)
	require.Nil(t, apiError(reply))
	cfg := reply["config"].(map[string]any)
	require.Equal(t, "pinned_client", cfg["priority_policy"])
	require.Equal(t, []any{"g", "h"}, cfg["priority_groups"])
	require.Equal(t, float64(2*time.Minute), cfg["priority_timeout"])
	require.Equal(t, []any{map[string]any{"group": "g", "pinned_ts": "0001-01-01T00:00:00Z"}}, reply["priority_groups"])

	reply = apiRequest(t, nc, "$JS.API.CONSUMER.CREATE.PRIO.O",
		`{"stream_name":"PRIO","config":{"durable_name":"O","ack_policy":"explicit","priority_policy":"overflow","priority_groups":["g"]}}`)
	require.Nil(t, apiError(reply))
	require.NotContains(t, reply["config"], "priority_timeout")
	reply = apiRequest(t, nc, "$JS.API.CONSUMER.CREATE.PRIO.N", `{"stream_name":"PRIO","config":{"durable_name":"N","ack_policy":"explicit","filter_subject":"prio.n"}}`)
	require.Nil(t, apiError(reply))

	// Pull requests the consumer refuses at once.
	for _, c := range []struct{ consumer, body, want string }{
		{"O", `{"batch":1,"expires":2000000000}`, "400 Bad Request - Priority Group missing"},
		{"O", `{"batch":1,"expires":2000000000,"group":"zz"}`, "400 Bad Request - Invalid Priority Group"},
		{"O", `{"batch":1,"expires":2000000000,"group":"g","id":"x"}`, "400 Bad Request - Not a Pinned Client Priority consumer"},
		{"O", `{"batch":1,"expires":2000000000,"group":"g","priority":12}`, "400 Bad Request - Priority must be between 0 and 9"},
		{"P", `{"batch":1,"expires":2000000000,"group":"g","min_pending":3}`, "400 Bad Request - Not a Overflow Priority consumer"},
		{"N", `{"batch":1,"expires":2000000000,"group":"g","min_ack_pending":1}`, "400 Bad Request - Not a Overflow Priority consumer"},
		// A group on a consumer without groups is ignored.
		{"N", `{"batch":1,"expires":300000000,"group":"g"}`, "408 Request Timeout"},
		{"P", `{"batch":1,"no_wait":true,"group":"g"}`, "404 No Messages"},
	} {
		require.Equal(t, c.want, pullStatus(t, nc, "PRIO", c.consumer, c.body), "%s %s", c.consumer, c.body)
	}

	// The unpin API's errors.
	for _, c := range []struct {
		subj, body string
		want       map[string]any
	}{
		{"PRIO.P", ``, errorObject(400, 10025, "invalid JSON: unexpected end of JSON input")},
		{"PRIO.P", `{}`, errorObject(400, 10025, "invalid JSON: consumer group not specified")},
		{"PRIO.P", `{"group":"a.b"}`, errorObject(400, 10162, "Valid priority group name must match A-Z, a-z, 0-9, -_/=)+ and may not exceed 16 characters")},
		{"PRIO.P", `{"group":"zz"}`, errorObject(400, 10160, "Provided priority group does not exist for this consumer")},
		{"PRIO.N", `{"group":"g"}`, errorObject(400, 10160, "Provided priority group does not exist for this consumer")},
		{"PRIO.X", `{"group":"g"}`, errorObject(404, 10014, "consumer not found")},
		{"NOPE.P", `{"group":"g"}`, errorObject(404, 10059, "stream not found")},
	} {
		reply := apiRequest(t, nc, "$JS.API.CONSUMER.UNPIN."+c.subj, c.body)
		require.Equal(t, "io.nats.jetstream.api.v1.consumer_unpin_response", reply["type"])
		require.Equal(t, c.want, apiError(reply), "%s %s", c.subj, c.body)
	}
	// Unpinning a group nobody is pinned in (or of an overflow consumer)
	// succeeds.
	require.Equal(t, map[string]any{"type": "io.nats.jetstream.api.v1.consumer_unpin_response"},
		apiRequest(t, nc, "$JS.API.CONSUMER.UNPIN.PRIO.O", `{"group":"g"}`))

	// Priority settings may be updated.
	reply = apiRequest(t, nc, "$JS.API.CONSUMER.CREATE.PRIO.N",
		`{"stream_name":"PRIO","config":{"durable_name":"N","ack_policy":"explicit","filter_subject":"prio.n","priority_policy":"overflow","priority_groups":["g"]}}`)
	require.Nil(t, apiError(reply))
	require.Equal(t, "overflow", reply["config"].(map[string]any)["priority_policy"])
	tg.alive(t)
}

// Overflow: a request with min_pending gets messages only while at least
// that many are pending (counting the one it is about to get), one with
// min_ack_pending only while at least that many await their ack; one
// with neither always does.
func TestPriorityOverflow(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	_, jsB := tg.connect(t, 1)
	st := createStream(t, js, jetstream.StreamConfig{Name: "OVER", Subjects: []string{"over.>"}})
	waitForStream(t, js, "over.probe")
	_, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "W", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "over.a",
		PriorityPolicy: jetstream.PriorityPolicyOverflow, PriorityGroups: []string{"jobs"}})
	require.NoError(t, err)
	c, err := jsB.Consumer(ctx(t), "OVER", "W")
	require.NoError(t, err)
	group := jetstream.FetchPriorityGroup("jobs")

	// Nothing pending: below a min_pending of 5.
	got, _, err := fetchData(t, c, 5, group, jetstream.FetchMinPending(5), jetstream.FetchMaxWait(500*time.Millisecond))
	require.NoError(t, err)
	require.Empty(t, got, "an overflow request below its threshold got messages")

	// 12 pending: a min_pending of 10 takes 3 (12, 11 and 10 pending).
	publishN(t, js, "over.a", 12)
	got, _, err = fetchData(t, c, 5, group, jetstream.FetchMinPending(10), jetstream.FetchMaxWait(time.Second))
	require.NoError(t, err)
	require.Equal(t, []string{"0", "1", "2"}, got)

	// Without thresholds a request is served as usual.
	got, _, err = fetchData(t, c, 2, group, jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	require.Equal(t, []string{"3", "4"}, got)

	// 5 await their ack: a min_ack_pending of 5 is served (and it stays
	// served, as each message it takes also waits), one of 20 is not.
	got, _, err = fetchData(t, c, 2, group, jetstream.FetchMinAckPending(20), jetstream.FetchMaxWait(500*time.Millisecond))
	require.NoError(t, err)
	require.Empty(t, got)
	got, _, err = fetchData(t, c, 2, group, jetstream.FetchMinAckPending(5), jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	require.Equal(t, []string{"5", "6"}, got)

	// Either threshold passed is enough.
	got, _, err = fetchData(t, c, 1, group, jetstream.FetchMinPending(100), jetstream.FetchMinAckPending(7), jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	require.Equal(t, []string{"7"}, got)

	info, err := c.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, []jetstream.PriorityGroupState{{Group: "jobs"}}, info.PriorityGroups)
	tg.alive(t)
}

// pinEvents collects the PINNED and UNPINNED advisories of a consumer.
func pinEvents(t *testing.T, nc *nats.Conn, stream, consumer string) *nats.Subscription {
	t.Helper()
	sub, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.*." + stream + "." + consumer)
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	return sub
}

// nextPinEvent is the next pin advisory: its kind and fields.
func nextPinEvent(t *testing.T, sub *nats.Subscription) (string, map[string]any) {
	t.Helper()
	for {
		m, err := sub.NextMsg(wait)
		require.NoError(t, err, "no pin advisory")
		var ev map[string]any
		require.NoError(t, json.Unmarshal(m.Data, &ev))
		switch ev["type"] {
		case "io.nats.jetstream.advisory.v1.consumer_group_pinned":
			return "pinned", ev
		case "io.nats.jetstream.advisory.v1.consumer_group_unpinned":
			return "unpinned", ev
		}
	}
}

// Pinned client: the first client served is pinned and alone gets
// messages, each with its Nats-Pin-Id; another gets nothing, and a stale
// id is refused. Unpinning (the API, or priority_timeout without a
// request) lets the next client be pinned, with a new id.
func TestPriorityPinnedClient(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	ncA, js := tg.connect(t, 0)
	_, jsB := tg.connect(t, 1)
	st := createStream(t, js, jetstream.StreamConfig{Name: "PIN", Subjects: []string{"pin.>"}})
	waitForStream(t, js, "pin.probe")
	events := pinEvents(t, ncA, "PIN", "C")
	_, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "C", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "pin.a",
		PriorityPolicy: jetstream.PriorityPolicyPinned, PriorityGroups: []string{"g"}, PinnedTTL: 1500 * time.Millisecond})
	require.NoError(t, err)
	publishN(t, js, "pin.a", 20)
	clientA, err := js.Consumer(ctx(t), "PIN", "C")
	require.NoError(t, err)
	clientB, err := jsB.Consumer(ctx(t), "PIN", "C")
	require.NoError(t, err)
	group := jetstream.FetchPriorityGroup("g")

	got, pins, err := fetchData(t, clientA, 2, group, jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	require.Equal(t, []string{"0", "1"}, got)
	pinA := pins[0]
	require.NotEmpty(t, pinA)
	require.Equal(t, []string{pinA, pinA}, pins)
	kind, ev := nextPinEvent(t, events)
	require.Equal(t, "pinned", kind)
	require.Equal(t, pinA, ev["pinned_id"])
	require.Equal(t, "g", ev["group"])
	require.Equal(t, "PIN", ev["stream"])
	require.Equal(t, "C", ev["consumer"])

	info, err := clientB.Info(ctx(t))
	require.NoError(t, err)
	require.Len(t, info.PriorityGroups, 1)
	require.Equal(t, pinA, info.PriorityGroups[0].PinnedClientID)
	require.WithinDuration(t, time.Now(), info.PriorityGroups[0].PinnedTS, time.Minute)

	// B is not pinned: it gets nothing while A keeps asking.
	gotB, _, err := fetchData(t, clientB, 1, group, jetstream.FetchMaxWait(700*time.Millisecond))
	require.NoError(t, err)
	require.Empty(t, gotB, "a client that is not pinned got messages")
	got, pins, err = fetchData(t, clientA, 1, group, jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	require.Equal(t, []string{"2"}, got)
	require.Equal(t, []string{pinA}, pins)

	// A stale pin id is refused at once.
	nc, _ := tg.connect(t, 1)
	require.Equal(t, "423 Nats-Pin-Id mismatch", pullStatus(t, nc, "PIN", "C", `{"batch":1,"expires":2000000000,"group":"g","id":"stale"}`))

	// Unpinned by the API: B is pinned next, with a new id.
	require.NoError(t, st.UnpinConsumer(ctx(t), "C", "g"))
	kind, ev = nextPinEvent(t, events)
	require.Equal(t, "unpinned", kind)
	require.Equal(t, "admin", ev["reason"])
	require.Equal(t, "g", ev["group"])
	info, err = clientB.Info(ctx(t))
	require.NoError(t, err)
	require.Empty(t, info.PriorityGroups[0].PinnedClientID)
	gotB, pins, err = fetchData(t, clientB, 1, group, jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	require.Equal(t, []string{"3"}, gotB)
	pinB := pins[0]
	require.NotEmpty(t, pinB)
	require.NotEqual(t, pinA, pinB)
	kind, ev = nextPinEvent(t, events)
	require.Equal(t, "pinned", kind)
	require.Equal(t, pinB, ev["pinned_id"])

	// A's old id is refused; the client then asks without one, and waits.
	_, _, err = fetchData(t, clientA, 1, group, jetstream.FetchMaxWait(wait))
	require.ErrorIs(t, err, jetstream.ErrPinIDMismatch)
	got, _, err = fetchData(t, clientA, 1, group, jetstream.FetchMaxWait(300*time.Millisecond))
	require.NoError(t, err)
	require.Empty(t, got)

	// B asks no more: after priority_timeout the pin lapses and A gets
	// pinned.
	got, pins, err = fetchData(t, clientA, 1, group, jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	require.Equal(t, []string{"4"}, got)
	require.NotContains(t, []string{"", pinA, pinB}, pins[0])
	kind, ev = nextPinEvent(t, events)
	require.Equal(t, "unpinned", kind)
	require.Equal(t, "timeout", ev["reason"])
	kind, ev = nextPinEvent(t, events)
	require.Equal(t, "pinned", kind)
	require.Equal(t, pins[0], ev["pinned_id"])
	tg.alive(t)
}

// Consume with a pinned group: of two clients consuming, one gets every
// message; when it stops, the other takes over after priority_timeout.
func TestPriorityPinnedConsume(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	_, jsB := tg.connect(t, 1)
	st := createStream(t, js, jetstream.StreamConfig{Name: "PINC", Subjects: []string{"pinc.>"}})
	waitForStream(t, js, "pinc.probe")
	_, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "C", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "pinc.a",
		PriorityPolicy: jetstream.PriorityPolicyPinned, PriorityGroups: []string{"g"}, PinnedTTL: time.Second})
	require.NoError(t, err)

	type delivery struct{ client, data string }
	got := make(chan delivery, 100)
	consume := func(js jetstream.JetStream, name string) jetstream.ConsumeContext {
		c, err := js.Consumer(ctx(t), "PINC", "C")
		require.NoError(t, err)
		cc, err := c.Consume(func(m jetstream.Msg) {
			_ = m.Ack()
			got <- delivery{name, string(m.Data())}
		}, jetstream.PullPriorityGroup("g"), jetstream.PullExpiry(time.Second))
		require.NoError(t, err)
		return cc
	}
	ccA := consume(js, "A")
	publishN(t, js, "pinc.a", 1)
	var first delivery
	select {
	case first = <-got:
	case <-time.After(wait):
		t.Fatal("the first message did not arrive")
	}
	ccB := consume(jsB, "B")
	defer ccB.Stop()
	time.Sleep(200 * time.Millisecond)
	publishN(t, js, "pinc.a", 10)
	for i := range 10 {
		select {
		case d := <-got:
			require.Equal(t, first.client, d.client, "message %d went to the client not pinned", i)
		case <-time.After(wait):
			t.Fatalf("only %d of 10 messages arrived", i)
		}
	}
	if first.client == "B" {
		ccA, ccB = ccB, ccA
	}
	ccA.Stop()
	<-ccA.Closed()
	// Once the stopped client's last requests have expired (nats-server
	// also drops those whose inbox lost interest; streamsvc does not yet)
	// and its pin has lapsed, the other client is pinned.
	time.Sleep(2500 * time.Millisecond)
	publishN(t, js, "pinc.a", 3)
	for i := range 3 {
		select {
		case d := <-got:
			require.NotEqual(t, first.client, d.client, "message %d went to the stopped client", i)
		case <-time.After(wait):
			t.Fatalf("only %d of 3 messages arrived after the pinned client stopped", i)
		}
	}
	tg.alive(t)
}

// Prioritized: the waiting request with the lowest priority is served
// first.
func TestPriorityPrioritized(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	st := createStream(t, js, jetstream.StreamConfig{Name: "PRI", Subjects: []string{"pri.>"}})
	waitForStream(t, js, "pri.probe")
	c, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "C", AckPolicy: jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverNewPolicy, PriorityPolicy: jetstream.PriorityPolicyPrioritized, PriorityGroups: []string{"g"}})
	require.NoError(t, err)

	low, err := c.Fetch(1, jetstream.FetchPriorityGroup("g"), jetstream.FetchPrioritized(5), jetstream.FetchMaxWait(2*time.Second))
	require.NoError(t, err)
	eventually(t, func() bool {
		info, err := c.Info(attempt(t))
		return err == nil && info.NumWaiting == 1
	})
	high, err := c.Fetch(1, jetstream.FetchPriorityGroup("g"), jetstream.FetchPrioritized(1), jetstream.FetchMaxWait(2*time.Second))
	require.NoError(t, err)
	eventually(t, func() bool {
		info, err := c.Info(attempt(t))
		return err == nil && info.NumWaiting == 2
	})
	_, err = js.Publish(ctx(t), "pri.x", []byte("first"))
	require.NoError(t, err)
	var gotHigh, gotLow []string
	for m := range high.Messages() {
		gotHigh = append(gotHigh, string(m.Data()))
	}
	for m := range low.Messages() {
		gotLow = append(gotLow, string(m.Data()))
	}
	require.Equal(t, []string{"first"}, gotHigh)
	require.Empty(t, gotLow)
	tg.alive(t)
}

// A pinned consumer survives a streamsvc restart with its configuration;
// the pin does not (nats-server keeps it in memory only): the old
// client's id is refused once, and the next request is pinned afresh.
func TestPriorityPinnedRestart(t *testing.T) {
	t.Parallel()
	s := startSuite(t)
	_, js := connect(t, s.fds[0])
	st := createStream(t, js, jetstream.StreamConfig{Name: "PINR", Subjects: []string{"pinr.>"}})
	waitForStream(t, js, "pinr.probe")
	_, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "C", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "pinr.a",
		PriorityPolicy: jetstream.PriorityPolicyPinned, PriorityGroups: []string{"g"}})
	require.NoError(t, err)
	publishN(t, js, "pinr.a", 3)
	c, err := js.Consumer(ctx(t), "PINR", "C")
	require.NoError(t, err)
	group := jetstream.FetchPriorityGroup("g")
	got, pins, err := fetchData(t, c, 1, group, jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	require.Equal(t, []string{"0"}, got)
	before := pins[0]

	s.streamsvc.Stop()
	s.startStreamsvc(t)
	waitForAPI(t, js)
	info, err := c.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, jetstream.PriorityPolicyPinned, info.Config.PriorityPolicy)
	require.Equal(t, []string{"g"}, info.Config.PriorityGroups)
	require.Equal(t, 2*time.Minute, info.Config.PinnedTTL)
	require.Empty(t, info.PriorityGroups[0].PinnedClientID)

	// (A request may be lost while the consumer's subscription reaches
	// the frontdoor: ask again.)
	refused := false
	eventually(t, func() bool {
		got, pins, err = fetchData(t, c, 1, group, jetstream.FetchMaxWait(time.Second))
		if errors.Is(err, jetstream.ErrPinIDMismatch) {
			refused = true
			return false
		}
		require.NoError(t, err)
		return len(got) > 0
	})
	require.True(t, refused, "the pin from before the restart was taken")
	require.Len(t, got, 1)
	require.NotEqual(t, before, pins[0])
	require.NotEmpty(t, pins[0])
}
