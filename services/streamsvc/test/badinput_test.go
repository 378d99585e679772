package test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Requests a client should not send: each gets nats-server's answer (or
// silence), and the service goes on serving.

// A pull for a million messages is served with what there is, then ends
// at its expiry saying how many it still wanted; max_batch refuses it.
func TestJetStreamHugePullBatch(t *testing.T) {
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "HUGE", Subjects: []string{"huge"}})
	publishN(t, js, "huge", 3)
	cons, err := js.CreateOrUpdateConsumer(ctx(t), "HUGE", jetstream.ConsumerConfig{Durable: "all"})
	require.NoError(t, err)

	got := pullRaw(t, nc, "$JS.API.CONSUMER.MSG.NEXT.HUGE.all", `{"batch":1000000,"expires":1000000000}`)
	require.Len(t, got, 4)
	for i, m := range got[:3] {
		require.Equal(t, []byte{byte('0' + i)}, m.Data)
		require.NoError(t, m.Respond(nil))
	}
	end := got[3]
	require.Equal(t, "408", end.Header.Get("Status"))
	require.Equal(t, "Request Timeout", end.Header.Get("Description"))
	require.Equal(t, "999997", end.Header.Get("Nats-Pending-Messages"))
	require.Equal(t, "0", end.Header.Get("Nats-Pending-Bytes"))

	// nats.go's Fetch of a million: the message there is.
	publishN(t, js, "huge", 1)
	batch := fetchAll(t, cons, 1000000, jetstream.FetchMaxWait(time.Second))
	require.Equal(t, []uint64{4}, streamSeqs(t, batch))

	limited, err := js.CreateOrUpdateConsumer(ctx(t), "HUGE", jetstream.ConsumerConfig{Durable: "limited", MaxRequestBatch: 100})
	require.NoError(t, err)
	for _, body := range []string{`{"batch":1000000,"expires":1000000000}`, `1000000`} {
		got = pullRaw(t, nc, "$JS.API.CONSUMER.MSG.NEXT.HUGE.limited", body)
		require.Len(t, got, 1, body)
		require.Equal(t, "409", got[0].Header.Get("Status"), body)
		require.Equal(t, "Exceeded MaxRequestBatch of 100", got[0].Header.Get("Description"), body)
	}
	batch = fetchAll(t, limited, 100, jetstream.FetchMaxWait(time.Second))
	require.Len(t, batch, 4, "a batch within max_batch is served")
	tg.alive(t)
}

// Bodies that are not JSON: 400 / 10025 with Go's parse error and where
// it happened, in each API's reply type.
func TestJetStreamInvalidJSON(t *testing.T) {
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "BAD", Subjects: []string{"bad"}})
	publishN(t, js, "bad", 1)
	const description = "invalid JSON: invalid character 'b' looking for beginning of object key string at offset 2"
	for subj, typ := range map[string]string{
		"CONSUMER.CREATE.BAD":           "consumer_create_response",
		"CONSUMER.CREATE.BAD.named":     "consumer_create_response",
		"CONSUMER.DURABLE.CREATE.BAD.d": "consumer_create_response",
		"STREAM.PURGE.BAD":              "stream_purge_response",
		"STREAM.MSG.GET.BAD":            "stream_msg_get_response",
		"STREAM.MSG.DELETE.BAD":         "stream_msg_delete_response",
	} {
		r := apiRequest(t, nc, "$JS.API."+subj, "{bad")
		assert.Equal(t, "io.nats.jetstream.api.v1."+typ, r["type"], subj)
		e := apiError(r)
		require.NotNil(t, e, "%s: %v", subj, r)
		assert.Equal(t, []any{float64(400), float64(10025)}, []any{e["code"], e["err_code"]}, subj)
		assert.Equal(t, description, e["description"], subj)
	}
	// Nothing changed.
	info, err := js.Stream(ctx(t), "BAD")
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.CachedInfo().State.Msgs)
	require.Zero(t, info.CachedInfo().State.Consumers)
	tg.alive(t)
}

// A pull request for a consumer that does not exist reaches no one:
// nats-server has no subscriber for it, so the client gets "no
// responders" (status 503), and nats.go's Fetch and Next report
// nats.ErrNoResponders.
func TestJetStreamPullUnknownConsumer(t *testing.T) {
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	st := createStream(t, js, jetstream.StreamConfig{Name: "PU", Subjects: []string{"pu"}})
	publishN(t, js, "pu", 1)
	for _, subj := range []string{"$JS.API.CONSUMER.MSG.NEXT.PU.nobody", "$JS.API.CONSUMER.MSG.NEXT.NOSTREAM.nobody"} {
		for _, body := range []string{`{"batch":1,"expires":1000000000}`, `1`, ``} {
			m, err := nc.Request(subj, []byte(body), wait)
			assert.ErrorIs(t, err, nats.ErrNoResponders, "%s %q: answered %v %q", subj, body, headerOf(m), dataOf(m))
		}
	}

	// A consumer deleted under a client's feet.
	cons, err := st.CreateOrUpdateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "gone"})
	require.NoError(t, err)
	require.NoError(t, st.DeleteConsumer(ctx(t), "gone"))
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
	require.NoError(t, err)
	for m := range batch.Messages() {
		t.Fatalf("a deleted consumer delivered %q", m.Data())
	}
	assert.ErrorIs(t, batch.Error(), nats.ErrNoResponders, "Fetch")
	_, err = cons.Next(jetstream.FetchMaxWait(time.Second))
	assert.ErrorIs(t, err, nats.ErrNoResponders, "Next: %v", err)
	tg.alive(t)
}

func headerOf(m *nats.Msg) nats.Header {
	if m == nil {
		return nil
	}
	return m.Header
}

func dataOf(m *nats.Msg) []byte {
	if m == nil {
		return nil
	}
	return m.Data
}

// Stream names with a path separator or a wildcard are refused with
// nats-server's errors; a dot puts the name in two subject tokens, which
// no API answers (nats.go refuses such a name before sending).
func TestJetStreamBadStreamNames(t *testing.T) {
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "GOOD", Subjects: []string{"good"}}) // the API is up
	const wildcards = "stream name is required and can not contain '.', '*', '>', '\\', '/'"
	for name, want := range map[string]map[string]any{
		"A/B":  errorObject(400, 10128, "Stream name can not contain path separators"),
		`A\B`:  errorObject(400, 10128, "Stream name can not contain path separators"),
		"A*B":  errorObject(500, 10052, wildcards),
		"A>B":  errorObject(500, 10052, wildcards),
		"GOOD": nil,
	} {
		r := apiRequest(t, nc, "$JS.API.STREAM.CREATE."+name, `{"name":"`+jsonEscape(name)+`"}`)
		if want == nil {
			assert.Equal(t, errorObject(400, 10058, "stream name already in use with a different configuration"), apiError(r), name)
			continue
		}
		assert.Equal(t, want, apiError(r), name)
		assert.Equal(t, "io.nats.jetstream.api.v1.stream_create_response", r["type"], name)
	}

	_, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "A.B", Subjects: []string{"ab"}})
	require.ErrorIs(t, err, jetstream.ErrInvalidStreamName)
	m, err := nc.Request("$JS.API.STREAM.CREATE.A.B", []byte(`{"name":"A.B","subjects":["ab"]}`), time.Second)
	assert.ErrorIs(t, err, nats.ErrTimeout, "STREAM.CREATE.A.B is answered by nobody; got %q", dataOf(m))
	r := apiRequest(t, nc, "$JS.API.STREAM.CREATE.AB", `{"name":"A.B","subjects":["ab"]}`)
	assert.Equal(t, errorObject(400, 10056, "stream name in subject does not match request"), apiError(r))

	var names []string
	l := js.StreamNames(ctx(t))
	for n := range l.Name() {
		names = append(names, n)
	}
	require.Equal(t, []string{"GOOD"}, names, "nothing else was created")
	tg.alive(t)
}

func jsonEscape(s string) string {
	out := ""
	for _, c := range s {
		if c == '\\' || c == '"' {
			out += `\`
		}
		out += string(c)
	}
	return out
}

// A consumer on a stream that does not exist: 404 / 10059 from every
// consumer API, nats.go's ErrStreamNotFound.
func TestJetStreamConsumerUnknownStream(t *testing.T) {
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "KNOWN", Subjects: []string{"known"}}) // the API is up
	_, err := js.CreateOrUpdateConsumer(ctx(t), "NOPE", jetstream.ConsumerConfig{Durable: "c"})
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
	_, err = js.CreateConsumer(ctx(t), "NOPE", jetstream.ConsumerConfig{})
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
	_, err = js.Consumer(ctx(t), "NOPE", "c")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
	for subj, body := range map[string]string{
		"CONSUMER.CREATE.NOPE":           `{"stream_name":"NOPE","config":{}}`,
		"CONSUMER.CREATE.NOPE.c":         `{"stream_name":"NOPE","config":{"name":"c"}}`,
		"CONSUMER.DURABLE.CREATE.NOPE.c": `{"stream_name":"NOPE","config":{"durable_name":"c"}}`,
		"CONSUMER.INFO.NOPE.c":           ``,
		"CONSUMER.DELETE.NOPE.c":         ``,
	} {
		r := apiRequest(t, nc, "$JS.API."+subj, body)
		assert.Equal(t, errorObject(404, 10059, "stream not found"), apiError(r), subj)
	}
	ojs, err := nc.JetStream()
	require.NoError(t, err)
	_, err = ojs.PullSubscribe("nope", "c", nats.BindStream("NOPE"))
	require.ErrorIs(t, err, nats.ErrStreamNotFound)
	tg.alive(t)
}

// Stream settings streamsvc does not implement yet are refused with a
// clear error (invalid configuration, 10052) rather than accepted and
// silently ignored: message schedules.
func TestJetStreamUnsupportedStreamSettings(t *testing.T) {
	s := startSuite(t)
	nc, js := connect(t, s.fds[0])
	createStream(t, js, jetstream.StreamConfig{Name: "ORIGIN", Subjects: []string{"origin"}})
	for key, body := range map[string]string{
		"allow_msg_schedules": `{"name":"M","subjects":["m"],"allow_msg_schedules":true}`,
	} {
		out := apiRequest(t, nc, "$JS.API.STREAM.CREATE.M", body)
		e, _ := out["error"].(map[string]any)
		require.NotNil(t, e, "%s: %v", key, out)
		assert.Equal(t, float64(10052), e["err_code"], key)
		assert.Contains(t, e["description"], key+" is not supported", key)
	}
	_, err := js.Stream(ctx(t), "M")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound, "nothing was created")
	// Zero values of those settings, as clients send them, are fine.
	createStream(t, js, jetstream.StreamConfig{Name: "PLAIN", Subjects: []string{"plain"}, AllowMsgCounter: false})

	// allow_batched is taken (natscli's bench js --create sets it), but a
	// fast batch's message is refused, never stored as a lone one.
	out := apiRequest(t, nc, "$JS.API.STREAM.CREATE.FAST", `{"name":"FAST","subjects":["fast"],"allow_batched":true}`)
	require.Nil(t, out["error"], "%v", out)
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox + ".>")
	require.NoError(t, err)
	m := nats.NewMsg("fast")
	m.Reply = inbox + ".b1.10.ok.1.0.$FI"
	m.Data = []byte("x")
	require.NoError(t, nc.PublishMsg(m))
	reply, err := sub.NextMsg(wait)
	require.NoError(t, err)
	assert.Contains(t, string(reply.Data), `"err_code":10174`)
	info, err := js.Stream(ctx(t), "FAST")
	require.NoError(t, err)
	assert.Zero(t, info.CachedInfo().State.Msgs, "nothing of the batch was stored")
}
