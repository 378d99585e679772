package test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// incr publishes a counter increment and returns the PubAck's fields.
func incr(t *testing.T, nc *nats.Conn, subj string, hdr map[string]string, data string) map[string]any {
	t.Helper()
	m := nats.NewMsg(subj)
	for k, v := range hdr {
		m.Header.Set(k, v)
	}
	m.Data = []byte(data)
	r, err := nc.RequestMsg(m, wait)
	require.NoError(t, err)
	var ack map[string]any
	require.NoError(t, json.Unmarshal(r.Data, &ack), string(r.Data))
	return ack
}

// Counters: Nats-Incr messages stored as the subject's running total,
// arbitrary precision, with nats-server's refusals.
func TestCounters(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	ncB, _ := tg.connect(t, 1)
	waitForAPI(t, js)

	_, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "BAD", Subjects: []string{"bad"}, AllowMsgCounter: true, Discard: jetstream.DiscardNew})
	requireAPIError(t, err, 500, 10052, "counter stream cannot use discard new")
	_, err = js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "BAD", Subjects: []string{"bad"}, AllowMsgCounter: true, AllowMsgTTL: true})
	requireAPIError(t, err, 500, 10052, "counter stream cannot use message TTLs")

	st := createStream(t, js, jetstream.StreamConfig{Name: "CNT", Subjects: []string{"cnt.>"}, AllowMsgCounter: true})
	createStream(t, js, jetstream.StreamConfig{Name: "PLAIN", Subjects: []string{"plain"}})
	waitForStream(t, js, "plain")
	eventually(t, func() bool {
		_, err := ncB.Request("cnt.probe", nil, time.Second)
		return err == nil
	}, "the counter stream takes nothing")

	for _, c := range []struct {
		incr, want string
	}{{"+5", "5"}, {"-2", "3"}, {"10", "13"}, {"+0", "13"}, {"99999999999999999999999999999", "100000000000000000000000000012"}} {
		ack := incr(t, ncB, "cnt.a", map[string]string{"Nats-Incr": c.incr}, "")
		require.Nil(t, ack["error"], "%v", ack)
		require.Equal(t, c.want, ack["val"], "after %s", c.incr)
	}
	require.Equal(t, "1", incr(t, nc, "cnt.b", map[string]string{"Nats-Incr": "+1"}, "")["val"], "each subject counts alone")

	refused := func(ack map[string]any, code float64, text string) {
		t.Helper()
		e, _ := ack["error"].(map[string]any)
		require.NotNil(t, e, "%v", ack)
		require.Equal(t, code, e["err_code"])
		require.Equal(t, text, e["description"])
	}
	refused(incr(t, nc, "cnt.a", map[string]string{"Nats-Incr": "x"}, ""), 10171, "message counter increment is invalid")
	refused(incr(t, nc, "cnt.a", map[string]string{"Nats-Incr": "+1"}, "body"), 10170, "message counter has payload")
	refused(incr(t, nc, "cnt.a", nil, "plain"), 10169, "message counter increment is missing")
	refused(incr(t, nc, "cnt.a", map[string]string{"Nats-Incr": "+1", "Nats-Rollup": "sub"}, ""), 10171, "message counter increment is invalid")
	refused(incr(t, nc, "cnt.a", map[string]string{"Nats-Incr": "+1", "Nats-TTL": "5s"}, ""), 10166, "per-message TTL is disabled")
	refused(incr(t, nc, "plain", map[string]string{"Nats-Incr": "+1"}, ""), 10168, "message counters is disabled")

	last, err := st.GetLastMsgForSubject(ctx(t), "cnt.a")
	require.NoError(t, err)
	require.JSONEq(t, `{"val":"100000000000000000000000000012"}`, string(last.Data))
	require.Equal(t, "99999999999999999999999999999", last.Header.Get("Nats-Incr"), "the increment is kept")

	cfg := st.CachedInfo().Config
	cfg.AllowMsgCounter = false
	_, err = js.UpdateStream(ctx(t), cfg)
	requireAPIError(t, err, 500, 10052, "stream configuration update can not change message counter setting")
}
