package test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// The Key/Value store: nats.go's jetstream.KeyValue and the nats CLI's
// kv commands on a bucket (a stream KV_<bucket> with rollups, direct
// gets and discard new), and the stream features underneath with
// nats-server's exact replies.

func createKV(t *testing.T, js jetstream.JetStream, cfg jetstream.KeyValueConfig) jetstream.KeyValue {
	t.Helper()
	return retryCreate(t, func(c context.Context) (jetstream.KeyValue, error) { return js.CreateKeyValue(c, cfg) })
}

// openKV binds to a bucket through js and waits until the bucket answers
// there: its direct get interest (taken after its subjects) reached that
// entry point.
func openKV(t *testing.T, js jetstream.JetStream, bucket string) jetstream.KeyValue {
	t.Helper()
	kv, err := js.KeyValue(ctx(t), bucket)
	require.NoError(t, err)
	eventually(t, func() bool {
		_, err := kv.Get(attempt(t), "no.such.key")
		return errors.Is(err, jetstream.ErrKeyNotFound)
	}, "bucket %s does not answer", bucket)
	return kv
}

// kvThroughBoth creates a bucket through entry point 0 and opens it
// through entry point 1.
func kvThroughBoth(t *testing.T, tg *target, cfg jetstream.KeyValueConfig) (a, b jetstream.KeyValue, jsB jetstream.JetStream) {
	t.Helper()
	_, jsA := tg.connect(t, 0)
	_, jsB = tg.connect(t, 1)
	a = createKV(t, jsA, cfg)
	return a, openKV(t, jsB, cfg.Bucket), jsB
}

// nextUpdate takes the next entry from a watcher (nil marks the end of
// the initial values).
func nextUpdate(t *testing.T, w jetstream.KeyWatcher) jetstream.KeyValueEntry {
	t.Helper()
	select {
	case e, ok := <-w.Updates():
		require.True(t, ok, "watcher closed")
		return e
	case <-time.After(wait):
		t.Fatal("no update within the wait")
		return nil
	}
}

// requireUpdate takes the next entry and checks its key, value and
// operation.
func requireUpdate(t *testing.T, w jetstream.KeyWatcher, key, value string, op jetstream.KeyValueOp) jetstream.KeyValueEntry {
	t.Helper()
	e := nextUpdate(t, w)
	require.NotNil(t, e, "expected %s %s, got the end of initial values", op, key)
	require.Equal(t, key, e.Key())
	require.Equal(t, value, string(e.Value()), "value of %s", key)
	require.Equal(t, op, e.Operation(), "operation on %s", key)
	return e
}

// watchKV starts a watcher on keys (a pattern) that lasts the test: not
// ctx(t), as a watcher ends with its context.
func watchKV(t *testing.T, kv jetstream.KeyValue, keys string, opts ...jetstream.WatchOpt) jetstream.KeyWatcher {
	t.Helper()
	w, err := kv.Watch(t.Context(), keys, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Stop() })
	return w
}

// requireInitial checks a watcher's initial values, puts given as
// key=value, and the nil that ends them.
func requireInitial(t *testing.T, w jetstream.KeyWatcher, puts ...string) {
	t.Helper()
	for _, p := range puts {
		key, value, _ := strings.Cut(p, "=")
		requireUpdate(t, w, key, value, jetstream.KeyValuePut)
	}
	require.Nil(t, nextUpdate(t, w), "end of initial values")
}

// requireNoUpdate checks nothing more arrives for a moment.
func requireNoUpdate(t *testing.T, w jetstream.KeyWatcher) {
	t.Helper()
	select {
	case e := <-w.Updates():
		if e == nil {
			t.Fatal("unexpected end of initial values")
		}
		t.Fatalf("unexpected update %s %s=%q", e.Operation(), e.Key(), e.Value())
	case <-time.After(200 * time.Millisecond):
	}
}

// Creating, reading, updating and deleting a bucket.
func TestKVBucketLifecycle(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	_, jsA := tg.connect(t, 0)
	_, jsB := tg.connect(t, 1)
	kv := createKV(t, jsA, jetstream.KeyValueConfig{Bucket: "LIFE", History: 3, Description: "settings"})
	require.Equal(t, "LIFE", kv.Bucket())

	st, err := jsB.Stream(ctx(t), "KV_LIFE")
	require.NoError(t, err)
	cfg := st.CachedInfo().Config
	require.Equal(t, []string{"$KV.LIFE.>"}, cfg.Subjects)
	require.True(t, cfg.AllowRollup)
	require.True(t, cfg.AllowDirect)
	require.True(t, cfg.DenyDelete)
	require.Equal(t, jetstream.DiscardNew, cfg.Discard)
	require.Equal(t, int64(3), cfg.MaxMsgsPerSubject)

	b := openKV(t, jsB, "LIFE")
	_, err = b.PutString(ctx(t), "a", "1")
	require.NoError(t, err)
	_, err = b.PutString(ctx(t), "b", "2")
	require.NoError(t, err)
	status, err := b.Status(ctx(t))
	require.NoError(t, err)
	require.Equal(t, "LIFE", status.Bucket())
	require.Equal(t, uint64(2), status.Values())
	require.Equal(t, int64(3), status.History())
	require.Zero(t, status.TTL())
	require.Equal(t, "JetStream", status.BackingStore())
	require.NotZero(t, status.Bytes())

	kv, err = jsA.UpdateKeyValue(ctx(t), jetstream.KeyValueConfig{Bucket: "LIFE", History: 5, Description: "more history"})
	require.NoError(t, err)
	status, err = kv.Status(ctx(t))
	require.NoError(t, err)
	require.Equal(t, int64(5), status.History())
	require.Equal(t, uint64(2), status.Values(), "an update keeps the values")

	names := jsB.KeyValueStoreNames(ctx(t))
	var all []string
	for n := range names.Name() {
		all = append(all, n)
	}
	require.NoError(t, names.Error())
	require.Equal(t, []string{"LIFE"}, all)

	require.NoError(t, jsB.DeleteKeyValue(ctx(t), "LIFE"))
	_, err = jsA.KeyValue(ctx(t), "LIFE")
	require.ErrorIs(t, err, jetstream.ErrBucketNotFound)
}

// Put, get (latest and by revision), create, update with the expected
// revision, delete, purge, history and the key listings, each change
// made through one entry point and read through the other.
func TestKVOperations(t *testing.T) {
	t.Parallel()
	a, b, jsB := kvThroughBoth(t, startTarget(t), jetstream.KeyValueConfig{Bucket: "OPS", History: 10})

	r1, err := a.PutString(ctx(t), "color", "blue")
	require.NoError(t, err)
	r2, err := a.PutString(ctx(t), "color", "red")
	require.NoError(t, err)
	require.Greater(t, r2, r1)
	e, err := b.Get(ctx(t), "color")
	require.NoError(t, err)
	require.Equal(t, "red", string(e.Value()))
	require.Equal(t, r2, e.Revision())
	require.Equal(t, jetstream.KeyValuePut, e.Operation())
	e, err = b.GetRevision(ctx(t), "color", r1)
	require.NoError(t, err)
	require.Equal(t, "blue", string(e.Value()))
	_, err = b.Get(ctx(t), "missing")
	require.ErrorIs(t, err, jetstream.ErrKeyNotFound)

	// Create only when absent; Update only at the expected revision.
	_, err = b.Create(ctx(t), "color", []byte("green"))
	require.ErrorIs(t, err, jetstream.ErrKeyExists)
	rs, err := b.Create(ctx(t), "size", []byte("L"))
	require.NoError(t, err)
	_, err = a.Update(ctx(t), "size", []byte("XL"), rs+100)
	require.ErrorIs(t, err, jetstream.ErrKeyExists)
	rs2, err := a.Update(ctx(t), "size", []byte("XL"), rs)
	require.NoError(t, err)
	_, err = b.Update(ctx(t), "size", []byte("S"), rs)
	require.ErrorIs(t, err, jetstream.ErrKeyExists, "the revision moved on")

	// Delete leaves a marker: Get says not found, Create works again.
	require.NoError(t, b.Delete(ctx(t), "size"))
	_, err = a.Get(ctx(t), "size")
	require.ErrorIs(t, err, jetstream.ErrKeyNotFound)
	_, err = a.Create(ctx(t), "size", []byte("M"))
	require.NoError(t, err)
	hist, err := b.History(ctx(t), "size")
	require.NoError(t, err)
	var ops []string
	for _, h := range hist {
		ops = append(ops, h.Operation().String()+":"+string(h.Value()))
	}
	require.Equal(t, []string{"KeyValuePutOp:L", "KeyValuePutOp:XL", "KeyValueDeleteOp:", "KeyValuePutOp:M"}, ops)
	require.Equal(t, rs2, hist[1].Revision())

	// Purge rolls the key up to one marker.
	require.NoError(t, a.Purge(ctx(t), "color"))
	hist, err = b.History(ctx(t), "color")
	require.NoError(t, err)
	require.Len(t, hist, 1)
	require.Equal(t, jetstream.KeyValuePurge, hist[0].Operation())
	_, err = b.Get(ctx(t), "color")
	require.ErrorIs(t, err, jetstream.ErrKeyNotFound)

	for _, k := range []string{"app.x", "app.y", "db.z"} {
		_, err := a.PutString(ctx(t), k, "v")
		require.NoError(t, err)
	}
	keys, err := b.Keys(ctx(t))
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"size", "app.x", "app.y", "db.z"}, keys, "deleted and purged keys are not listed")
	lister, err := b.ListKeysFiltered(ctx(t), "app.*", "size")
	require.NoError(t, err)
	var listed []string
	for k := range lister.Keys() {
		listed = append(listed, k)
	}
	require.ElementsMatch(t, []string{"size", "app.x", "app.y"}, listed)
	lister, err = a.ListKeys(ctx(t))
	require.NoError(t, err)
	listed = listed[:0]
	for k := range lister.Keys() {
		listed = append(listed, k)
	}
	require.ElementsMatch(t, keys, listed)

	status, err := a.Status(ctx(t))
	require.NoError(t, err)
	info, err := jsB.Stream(ctx(t), "KV_OPS")
	require.NoError(t, err)
	require.Equal(t, uint64(5), uint64(info.CachedInfo().State.NumSubjects), "color, size, app.x, app.y, db.z")
	require.Equal(t, info.CachedInfo().State.Msgs, status.Values())
}

// Watchers through one entry point see the changes made through the
// other: everything with history, a key pattern, without deletes, and
// updates only.
func TestKVWatch(t *testing.T) {
	t.Parallel()
	a, b, jsB := kvThroughBoth(t, startTarget(t), jetstream.KeyValueConfig{Bucket: "WATCH", History: 5})
	_, err := a.PutString(ctx(t), "x.1", "one")
	require.NoError(t, err)
	_, err = a.PutString(ctx(t), "x.1", "uno")
	require.NoError(t, err)
	_, err = a.PutString(ctx(t), "y", "why")
	require.NoError(t, err)

	all := watchKV(t, b, jetstream.AllKeys, jetstream.IncludeHistory())
	requireInitial(t, all, "x.1=one", "x.1=uno", "y=why")
	latest := watchKV(t, b, "x.*")
	requireInitial(t, latest, "x.1=uno")
	noDeletes := watchKV(t, b, jetstream.AllKeys, jetstream.IgnoreDeletes())
	requireInitial(t, noDeletes, "x.1=uno", "y=why")
	// Keys' way: headers only, each value's size in Nats-Msg-Size.
	requireInitial(t, watchKV(t, b, jetstream.AllKeys, jetstream.MetaOnly()), "x.1=", "y=")
	oc, err := jsB.OrderedConsumer(ctx(t), "KV_WATCH", jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"$KV.WATCH.y"}, HeadersOnly: true})
	require.NoError(t, err)
	m, err := oc.Next(jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	require.Empty(t, m.Data())
	require.Equal(t, "3", m.Headers().Get("Nats-Msg-Size"))

	updates := watchKV(t, b, jetstream.AllKeys, jetstream.UpdatesOnly())

	_, err = a.PutString(ctx(t), "x.2", "two")
	require.NoError(t, err)
	require.NoError(t, a.Delete(ctx(t), "y"))
	require.NoError(t, a.Purge(ctx(t), "x.1"))

	requireUpdate(t, all, "x.2", "two", jetstream.KeyValuePut)
	requireUpdate(t, all, "y", "", jetstream.KeyValueDelete)
	requireUpdate(t, all, "x.1", "", jetstream.KeyValuePurge)
	requireUpdate(t, latest, "x.2", "two", jetstream.KeyValuePut)
	requireUpdate(t, latest, "x.1", "", jetstream.KeyValuePurge)
	requireNoUpdate(t, latest)
	requireUpdate(t, noDeletes, "x.2", "two", jetstream.KeyValuePut)
	requireNoUpdate(t, noDeletes)
	requireUpdate(t, updates, "x.2", "two", jetstream.KeyValuePut)
	requireUpdate(t, updates, "y", "", jetstream.KeyValueDelete)
	requireUpdate(t, updates, "x.1", "", jetstream.KeyValuePurge)
}

// A bucket's TTL (the stream's max_age) expires its values.
func TestKVBucketTTL(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	kv := createKV(t, js, jetstream.KeyValueConfig{Bucket: "TTL", TTL: time.Second})
	_, err := kv.PutString(ctx(t), "k", "v")
	require.NoError(t, err)
	status, err := kv.Status(ctx(t))
	require.NoError(t, err)
	require.Equal(t, time.Second, status.TTL())
	_, err = kv.Get(ctx(t), "k")
	require.NoError(t, err, "not expired yet")
	eventually(t, func() bool {
		_, err := kv.Get(attempt(t), "k")
		return errors.Is(err, jetstream.ErrKeyNotFound)
	}, "the value did not expire")
	status, err = kv.Status(ctx(t))
	require.NoError(t, err)
	require.Zero(t, status.Values())
}

// A watcher keeps receiving updates across a streamsvc restart: its
// ordered consumer, gone with the restart, misses heartbeats and nats.go
// recreates it where it was. (nats.go checks for heartbeats every 10 s,
// and a delivery counts as one, so the watcher starts on an empty
// bucket: the first check after the restart finds it idle. The KV
// tests run in parallel to overlap that wait.)
func TestKVWatchSurvivesRestart(t *testing.T) {
	t.Parallel()
	if os.Getenv(referenceEnv) != "" {
		t.Skip("restarts the suite's streamsvc")
	}
	s := startSuite(t)
	a, b, _ := kvThroughBoth(t, &target{urls: [2]string{s.fds[0].URL(), s.fds[1].URL()}, suite: s},
		jetstream.KeyValueConfig{Bucket: "RESTART"})
	w := watchKV(t, b, jetstream.AllKeys)
	requireInitial(t, w)

	s.streamsvc.Stop()
	s.startStreamsvc(t)
	eventually(t, func() bool {
		_, err := a.PutString(attempt(t), "after", "1")
		return err == nil
	}, "no put after the restart")
	select {
	case e, ok := <-w.Updates():
		require.True(t, ok, "the watcher ended")
		require.NotNil(t, e)
		require.Equal(t, "after", e.Key())
		require.Equal(t, "1", string(e.Value()))
	case <-time.After(25 * time.Second):
		t.Fatal("the watcher received nothing after the restart")
	}
	_, err := a.PutString(ctx(t), "again", "2")
	require.NoError(t, err)
	requireUpdate(t, w, "again", "2", jetstream.KeyValuePut)
}

// Direct gets as raw requests: the message with its headers plus
// Nats-Stream, Nats-Subject, Nats-Sequence and Nats-Time-Stamp, batches
// ended by EOB, and nats-server's status-only replies; a stream without
// allow_direct has no one answering.
func TestKVDirectGet(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	nc1, _ := tg.connect(t, 1)
	createStream(t, js, jetstream.StreamConfig{Name: "DG", Subjects: []string{"dg.>"}, AllowDirect: true})
	createStream(t, js, jetstream.StreamConfig{Name: "NODG", Subjects: []string{"nodg"}})
	waitForStream(t, js, "nodg")
	m := nats.NewMsg("dg.a")
	m.Header.Set("Own", "yes")
	m.Data = []byte("first")
	_, err := js.PublishMsg(ctx(t), m)
	require.NoError(t, err)
	_, err = js.Publish(ctx(t), "dg.b", []byte("second"))
	require.NoError(t, err)
	_, err = js.Publish(ctx(t), "dg.a", []byte("third"))
	require.NoError(t, err)

	var reply *nats.Msg
	eventually(t, func() bool {
		reply, err = nc1.Request("$JS.API.DIRECT.GET.DG", []byte(`{"seq":1}`), time.Second)
		return err == nil
	}, "direct get does not answer")
	require.Equal(t, "first", string(reply.Data))
	require.Equal(t, "yes", reply.Header.Get("Own"))
	require.Equal(t, "DG", reply.Header.Get("Nats-Stream"))
	require.Equal(t, "dg.a", reply.Header.Get("Nats-Subject"))
	require.Equal(t, "1", reply.Header.Get("Nats-Sequence"))
	ts, err := time.Parse(time.RFC3339Nano, reply.Header.Get("Nats-Time-Stamp"))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now(), ts, time.Minute)

	get := func(subj, body string) *nats.Msg {
		t.Helper()
		r, err := nc.Request(subj, []byte(body), wait)
		require.NoError(t, err, "%s %s", subj, body)
		return r
	}
	r := get("$JS.API.DIRECT.GET.DG", `{"last_by_subj":"dg.a"}`)
	require.Equal(t, "third", string(r.Data))
	require.Equal(t, "3", r.Header.Get("Nats-Sequence"))
	r = get("$JS.API.DIRECT.GET.DG.dg.b", "")
	require.Equal(t, "second", string(r.Data))
	require.Equal(t, "dg.b", r.Header.Get("Nats-Subject"))
	r = get("$JS.API.DIRECT.GET.DG", `{"next_by_subj":"dg.a","seq":2}`)
	require.Equal(t, "third", string(r.Data))

	for _, c := range []struct{ subj, body, status, desc string }{
		{"$JS.API.DIRECT.GET.DG", `{"seq":99}`, "404", "Message Not Found"},
		{"$JS.API.DIRECT.GET.DG.dg.none", "", "404", "Message Not Found"},
		{"$JS.API.DIRECT.GET.DG", "", "408", "Empty Request"},
		{"$JS.API.DIRECT.GET.DG", `{}`, "408", "Empty Request"},
		{"$JS.API.DIRECT.GET.DG", `{"seq":`, "408", "Malformed Request"},
		{"$JS.API.DIRECT.GET.DG", `{"seq":1,"last_by_subj":"dg.a"}`, "408", "Bad Request"},
		{"$JS.API.DIRECT.GET.DG.dg.a", `{"seq":1}`, "408", "Bad Request"},
	} {
		r := get(c.subj, c.body)
		require.Empty(t, r.Data, "%s %s", c.subj, c.body)
		require.Equal(t, c.status, r.Header.Get("Status"), "%s %s", c.subj, c.body)
		require.Equal(t, c.desc, r.Header.Get("Description"), "%s %s", c.subj, c.body)
	}

	// A batch, and multi_last (the last message of each matching subject,
	// oldest first): each message with Nats-Num-Pending and
	// Nats-Last-Sequence, then 204 EOB (with Nats-UpTo-Sequence for
	// multi_last).
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	require.NoError(t, err)
	replies := func(body string) []string {
		t.Helper()
		require.NoError(t, nc.PublishRequest("$JS.API.DIRECT.GET.DG", inbox, []byte(body)))
		var got []string
		for range 3 {
			m, err := sub.NextMsg(wait)
			require.NoError(t, err)
			got = append(got, strings.Join([]string{m.Header.Get("Status"), m.Header.Get("Nats-Sequence"),
				m.Header.Get("Nats-Num-Pending"), m.Header.Get("Nats-Last-Sequence"), m.Header.Get("Nats-UpTo-Sequence"), string(m.Data)}, "|"))
		}
		return got
	}
	require.Equal(t, []string{"|1|2|0||first", "|2|1|1||second", "204||1|2||"}, replies(`{"seq":1,"batch":2}`))
	require.Equal(t, []string{"|2|1|0||second", "|3|0|2||third", "204||0|3|3|"}, replies(`{"multi_last":["dg.*"]}`))
	r = get("$JS.API.DIRECT.GET.DG", `{"multi_last":["dg.none"]}`)
	require.Equal(t, "404", r.Header.Get("Status"))
	require.Equal(t, "No Results", r.Header.Get("Description"))

	_, err = nc.Request("$JS.API.DIRECT.GET.NODG", []byte(`{"seq":1}`), wait)
	require.ErrorIs(t, err, nats.ErrNoResponders, "no direct get without allow_direct")
}

// Rollups and discard_new_per_subject, with nats-server's errors.
func TestKVRollupAndDiscardNewPerSubject(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "PLAIN", Subjects: []string{"plain"}})
	rollupMsg := func(subj, value, rollup string) *nats.Msg {
		m := nats.NewMsg(subj)
		m.Header.Set("Nats-Rollup", rollup)
		m.Data = []byte(value)
		return m
	}
	_, err := js.PublishMsg(ctx(t), rollupMsg("plain", "x", "sub"))
	requireAPIError(t, err, 500, 10111, "rollup not permitted")

	reply := apiRequest(t, nc, "$JS.API.STREAM.CREATE.BAD", `{"name":"BAD","subjects":["bad"],"allow_rollup_hdrs":true,"deny_purge":true}`)
	assertAPIError(t, reply, 500, 10052, "roll-ups require the purge permission")

	st := createStream(t, js, jetstream.StreamConfig{Name: "ROLL", Subjects: []string{"roll.*"}, AllowRollup: true})
	for _, s := range []string{"roll.a", "roll.a", "roll.b", "roll.a"} {
		_, err := js.Publish(ctx(t), s, []byte("v"))
		require.NoError(t, err)
	}
	_, err = js.PublishMsg(ctx(t), rollupMsg("roll.a", "latest", "sub"))
	require.NoError(t, err)
	info, err := st.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(2), info.State.Msgs, "roll.b and the rollup")
	last, err := st.GetLastMsgForSubject(ctx(t), "roll.a")
	require.NoError(t, err)
	require.Equal(t, "latest", string(last.Data))
	require.Equal(t, uint64(5), last.Sequence)

	_, err = js.PublishMsg(ctx(t), rollupMsg("roll.c", "x", "bogus"))
	requireAPIError(t, err, 500, 10111, `rollup value invalid: "bogus"`)
	_, err = js.PublishMsg(ctx(t), rollupMsg("roll.c", "everything", "all"))
	require.NoError(t, err)
	info, err = st.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Msgs)
	require.Equal(t, uint64(6), info.State.FirstSeq)

	for _, c := range []struct{ body, desc string }{
		{`{"name":"DN","subjects":["dn.*"],"discard_new_per_subject":true,"max_msgs_per_subject":2}`,
			"discard new per subject requires discard new policy to be set"},
		{`{"name":"DN","subjects":["dn.*"],"discard_new_per_subject":true,"discard":"new"}`,
			"discard new per subject requires max msgs per subject > 0"},
	} {
		assertAPIError(t, apiRequest(t, nc, "$JS.API.STREAM.CREATE.DN", c.body), 500, 10052, c.desc)
	}
	dn := createStream(t, js, jetstream.StreamConfig{Name: "DN", Subjects: []string{"dn.*"}, AllowRollup: true,
		Discard: jetstream.DiscardNew, DiscardNewPerSubject: true, MaxMsgsPerSubject: 2})
	for range 2 {
		_, err := js.Publish(ctx(t), "dn.a", nil)
		require.NoError(t, err)
	}
	_, err = js.Publish(ctx(t), "dn.a", nil)
	requireAPIError(t, err, 503, 10077, "maximum messages per subject exceeded")
	_, err = js.Publish(ctx(t), "dn.b", nil)
	require.NoError(t, err, "another subject has room")
	// A rollup gets through: it leaves its subject one message.
	_, err = js.PublishMsg(ctx(t), rollupMsg("dn.a", "rolled", "sub"))
	require.NoError(t, err)
	info, err = dn.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(2), info.State.Msgs, "dn.b and the rollup")
}

// The nats CLI's kv commands.
func TestKVCLI(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	cli := newNatsCLI(t, tg.urls[1])
	waitForAPI(t, js)

	out := cli.run("kv", "add", "CFG", "--history", "5")
	require.Contains(t, out, "Information for Key-Value Store Bucket CFG", out)
	require.Contains(t, out, "History Kept: 5", out)
	eventually(t, func() bool {
		_, err := exec.Command(cli.bin, "--no-context", "-s", cli.url, "--timeout", "1s", "kv", "put", "CFG", "color", "blue").CombinedOutput()
		return err == nil
	}, "the bucket takes no put")
	require.Equal(t, "red", strings.TrimSpace(cli.run("kv", "put", "CFG", "color", "red")))
	out = cli.run("kv", "get", "CFG", "color")
	require.Contains(t, out, "CFG > color revision: 2", out)
	require.Equal(t, "red", strings.TrimSpace(cli.run("kv", "get", "CFG", "color", "--raw")))
	cli.run("kv", "del", "CFG", "color", "-f")
	out = cli.run("kv", "history", "CFG", "color")
	require.Regexp(t, `color\s+│\s+1\s+│\s+PUT`, out)
	require.Regexp(t, `color\s+│\s+2\s+│\s+PUT`, out)
	require.Regexp(t, `color\s+│\s+3\s+│\s+DELETE`, out)
	cli.run("kv", "put", "CFG", "size", "L")
	require.Equal(t, "CFG", strings.TrimSpace(cli.run("kv", "ls", "--names")))
	require.Contains(t, cli.run("kv", "ls"), "CFG")
	require.Equal(t, []string{"size"}, strings.Fields(cli.run("kv", "ls", "CFG")))

	// watch runs until stopped: it prints the latest of each key.
	c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cmd := exec.CommandContext(c, cli.bin, "--no-context", "-s", cli.url, "kv", "watch", "CFG")
	cmd.Env = []string{"HOME=" + cli.home, "PATH=" + os.Getenv("PATH"), "NO_COLOR=1"}
	watched, _ := cmd.CombinedOutput()
	require.Contains(t, string(watched), "DELETE CFG > color", string(watched))
	require.Contains(t, string(watched), "PUT CFG > size: L", string(watched))
}
