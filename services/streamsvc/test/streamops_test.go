package test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Stream operations: deleting messages, deny_delete / deny_purge,
// sealing, purging, the expected-last-subject-sequence header, updates,
// listing by subject and the account's totals, with nats-server's
// answers and errors.

// assertAPIError checks a raw reply's error object (code, err_code and
// text) against nats-server's.
func assertAPIError(t *testing.T, reply map[string]any, code, errCode int, description string) {
	t.Helper()
	assert.Equal(t, errorObject(code, errCode, description), apiError(reply), "reply %v", reply)
}

// requireAPIError checks an error nats.go returned.
func requireAPIError(t *testing.T, err error, code, errCode int, description string) {
	t.Helper()
	var apiErr *jetstream.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, jetstream.APIError{Code: code, ErrorCode: jetstream.ErrorCode(errCode), Description: description}, *apiErr)
}

// Deleting a message: Get no longer finds it, the stream counts it in
// num_deleted (and lists it with deleted_details); deleting it again, a
// sequence past the end or no sequence are refused.
func TestJetStreamMsgDelete(t *testing.T) {
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	st := createStream(t, js, jetstream.StreamConfig{Name: "DEL", Subjects: []string{"del.*"}})
	for i := range 6 {
		_, err := js.Publish(ctx(t), fmt.Sprintf("del.%d", i%2), []byte(fmt.Sprint(i)))
		require.NoError(t, err)
	}
	require.NoError(t, st.DeleteMsg(ctx(t), 3))
	require.NoError(t, st.SecureDeleteMsg(ctx(t), 4))
	_, err := st.GetMsg(ctx(t), 3)
	require.ErrorIs(t, err, jetstream.ErrMsgNotFound)
	_, err = st.GetMsg(ctx(t), 4)
	require.ErrorIs(t, err, jetstream.ErrMsgNotFound)
	m, err := st.GetMsg(ctx(t), 5)
	require.NoError(t, err)
	require.Equal(t, "4", string(m.Data))
	info, err := st.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(4), info.State.Msgs)
	require.Equal(t, 2, info.State.NumDeleted)
	require.Equal(t, uint64(1), info.State.FirstSeq)
	require.Equal(t, uint64(6), info.State.LastSeq)

	// The first message: the stream now starts after it.
	require.NoError(t, st.DeleteMsg(ctx(t), 1))
	info, err = st.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(3), info.State.Msgs)
	require.Equal(t, uint64(2), info.State.FirstSeq)
	require.Equal(t, 2, info.State.NumDeleted, "3 and 4")
	last, err := st.GetLastMsgForSubject(ctx(t), "del.0")
	require.NoError(t, err)
	require.Equal(t, uint64(5), last.Sequence)

	const typ = "io.nats.jetstream.api.v1.stream_msg_delete_response"
	r := apiRequest(t, nc, "$JS.API.STREAM.MSG.DELETE.DEL", `{"seq":3}`)
	assert.Equal(t, typ, r["type"])
	assertAPIError(t, r, 400, 10043, "sequence 3 not found")
	assertAPIError(t, apiRequest(t, nc, "$JS.API.STREAM.MSG.DELETE.DEL", `{"seq":99}`), 500, 10057, "stream store EOF")
	assertAPIError(t, apiRequest(t, nc, "$JS.API.STREAM.MSG.DELETE.DEL", `{}`), 400, 10003, "bad request")

	info, err = st.Info(ctx(t), jetstream.WithDeletedDetails(true))
	require.NoError(t, err)
	assert.Equal(t, []uint64{3, 4}, info.State.Deleted, "deleted_details")
}

// deny_delete and deny_purge refuse with nats-server's errors, and an
// update can not lift them.
func TestJetStreamDenyDeleteAndPurge(t *testing.T) {
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	cfg := jetstream.StreamConfig{Name: "DENY", Subjects: []string{"deny"}, DenyDelete: true, DenyPurge: true}
	st := createStream(t, js, cfg)
	publishN(t, js, "deny", 3)

	assertAPIError(t, apiRequest(t, nc, "$JS.API.STREAM.MSG.DELETE.DENY", `{"seq":1}`), 500, 10057, "message delete not permitted")
	err := st.DeleteMsg(ctx(t), 2)
	require.ErrorIs(t, err, jetstream.ErrMsgDeleteUnsuccessful)
	requireAPIError(t, st.Purge(ctx(t)), 500, 10110, "stream purge not permitted")
	requireAPIError(t, st.Purge(ctx(t), jetstream.WithPurgeSubject("deny")), 500, 10110, "stream purge not permitted")
	info, err := st.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(3), info.State.Msgs, "nothing was removed")

	lifted := cfg
	lifted.DenyDelete = false
	_, err = js.UpdateStream(ctx(t), lifted)
	requireAPIError(t, err, 500, 10052, "stream configuration update can not cancel deny message deletes")
	lifted = cfg
	lifted.DenyPurge = false
	_, err = js.UpdateStream(ctx(t), lifted)
	requireAPIError(t, err, 500, 10052, "stream configuration update can not cancel deny purge")
}

// A sealed stream takes no message and allows no delete or purge; it
// can not be created sealed nor unsealed.
func TestJetStreamSealed(t *testing.T) {
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	cfg := jetstream.StreamConfig{Name: "SEAL", Subjects: []string{"seal"}}
	createStream(t, js, cfg)
	publishN(t, js, "seal", 2)
	cfg.Sealed = true
	st, err := js.UpdateStream(ctx(t), cfg)
	require.NoError(t, err)
	got := st.CachedInfo().Config
	require.True(t, got.Sealed)
	assert.True(t, got.DenyDelete, "sealing denies deletes")
	assert.True(t, got.DenyPurge, "sealing denies purges")
	assert.Equal(t, jetstream.DiscardNew, got.Discard, "sealing discards new")

	_, err = js.Publish(ctx(t), "seal", []byte("late"))
	requireAPIError(t, err, 400, 10109, "invalid operation on sealed stream")
	assertAPIError(t, apiRequest(t, nc, "$JS.API.STREAM.MSG.DELETE.SEAL", `{"seq":1}`), 400, 10109, "invalid operation on sealed stream")
	requireAPIError(t, st.Purge(ctx(t)), 400, 10109, "invalid operation on sealed stream")
	info, err := st.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(2), info.State.Msgs)
	m, err := st.GetMsg(ctx(t), 2)
	require.NoError(t, err)
	require.Equal(t, "1", string(m.Data), "a sealed stream is still read")

	cfg.Sealed = false
	_, err = js.UpdateStream(ctx(t), cfg)
	requireAPIError(t, err, 500, 10052, "stream configuration update can not unseal a sealed stream")

	_, err = js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "BORNSEALED", Subjects: []string{"born"}, Sealed: true})
	requireAPIError(t, err, 500, 10052, "stream configuration for create can not be sealed")
}

// Purge keeping the newest n, and up to (not including) a sequence, for
// the whole stream and for one subject; the reply counts what went.
func TestJetStreamPurgeKeepAndSeq(t *testing.T) {
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	st := createStream(t, js, jetstream.StreamConfig{Name: "PK", Subjects: []string{"pk.*"}})
	publish := func(n int) {
		for range n {
			info, err := st.Info(ctx(t))
			require.NoError(t, err)
			_, err = js.Publish(ctx(t), fmt.Sprintf("pk.%c", "ab"[info.State.LastSeq%2]), nil)
			require.NoError(t, err)
		}
	}
	state := func() (msgs, first uint64) {
		info, err := st.Info(ctx(t))
		require.NoError(t, err)
		return info.State.Msgs, info.State.FirstSeq
	}
	publish(10) // odd sequences on pk.a, even on pk.b
	require.NoError(t, st.Purge(ctx(t), jetstream.WithPurgeKeep(3)))
	msgs, first := state()
	require.Equal(t, []uint64{3, 8}, []uint64{msgs, first})
	require.NoError(t, st.Purge(ctx(t), jetstream.WithPurgeSequence(9)))
	msgs, first = state()
	require.Equal(t, []uint64{2, 9}, []uint64{msgs, first})

	const typ = "io.nats.jetstream.api.v1.stream_purge_response"
	r := apiRequest(t, nc, "$JS.API.STREAM.PURGE.PK", `{"seq":9}`)
	require.Equal(t, map[string]any{"type": typ, "success": true, "purged": float64(0)}, r, "nothing below 9 left")

	publish(4) // 11-14
	// pk.a holds 9, 11, 13: keeping one purges two.
	r = apiRequest(t, nc, "$JS.API.STREAM.PURGE.PK", `{"filter":"pk.a","keep":1}`)
	require.Equal(t, map[string]any{"type": typ, "success": true, "purged": float64(2)}, r)
	// pk.b holds 10, 12, 14: below 14 are two.
	r = apiRequest(t, nc, "$JS.API.STREAM.PURGE.PK", `{"filter":"pk.b","seq":14}`)
	require.Equal(t, map[string]any{"type": typ, "success": true, "purged": float64(2)}, r)
	msgs, first = state()
	require.Equal(t, []uint64{2, 13}, []uint64{msgs, first})

	assertAPIError(t, apiRequest(t, nc, "$JS.API.STREAM.PURGE.PK", `{"seq":14,"keep":1}`), 400, 10003, "bad request")
}

// Nats-Expected-Last-Subject-Sequence: the last sequence stored on the
// message's subject, 0 for a subject with none.
func TestJetStreamExpectedLastSubjectSequence(t *testing.T) {
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "ELS", Subjects: []string{"els.*"}})
	publishN(t, js, "els.a", 1) // 1
	publishN(t, js, "els.b", 1) // 2
	ack, err := js.Publish(ctx(t), "els.a", []byte("next"), jetstream.WithExpectLastSequencePerSubject(1))
	require.NoError(t, err)
	require.Equal(t, uint64(3), ack.Sequence)
	_, err = js.Publish(ctx(t), "els.a", []byte("stale"), jetstream.WithExpectLastSequencePerSubject(1))
	requireAPIError(t, err, 400, 10071, "wrong last sequence: 3")
	ack, err = js.Publish(ctx(t), "els.c", []byte("first"), jetstream.WithExpectLastSequencePerSubject(0))
	require.NoError(t, err)
	require.Equal(t, uint64(4), ack.Sequence)
	_, err = js.Publish(ctx(t), "els.b", []byte("not first"), jetstream.WithExpectLastSequencePerSubject(0))
	requireAPIError(t, err, 400, 10071, "wrong last sequence: 2")
	// The stream's last sequence does not matter, only the subject's.
	ack, err = js.Publish(ctx(t), "els.b", []byte("ok"), jetstream.WithExpectLastSequencePerSubject(2))
	require.NoError(t, err)
	require.Equal(t, uint64(5), ack.Sequence)
}

// An update adding a subject and raising max_msgs keeps the messages and
// takes the new subject at once.
func TestJetStreamStreamUpdate(t *testing.T) {
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	cfg := jetstream.StreamConfig{Name: "UPD", Subjects: []string{"upd.a"}, MaxMsgs: 3}
	st := createStream(t, js, cfg)
	publishN(t, js, "upd.a", 5)
	info, err := st.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(3), info.State.Msgs)

	cfg.Subjects = []string{"upd.a", "upd.b"}
	cfg.MaxMsgs = 10
	st, err = js.UpdateStream(ctx(t), cfg)
	require.NoError(t, err)
	require.Equal(t, []string{"upd.a", "upd.b"}, st.CachedInfo().Config.Subjects)
	require.Equal(t, int64(10), st.CachedInfo().Config.MaxMsgs)
	require.Equal(t, uint64(3), st.CachedInfo().State.Msgs)
	require.Equal(t, uint64(3), st.CachedInfo().State.FirstSeq)

	ack, err := js.Publish(ctx(t), "upd.b", []byte("new subject"))
	require.NoError(t, err)
	require.Equal(t, "UPD", ack.Stream)
	require.Equal(t, uint64(6), ack.Sequence)
	publishN(t, js, "upd.a", 4)
	info, err = st.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(8), info.State.Msgs, "max_msgs 10 now")
	require.Equal(t, uint64(3), info.State.FirstSeq)
	m, err := st.GetMsg(ctx(t), 3)
	require.NoError(t, err)
	require.Equal(t, "2", string(m.Data), "the first kept message is unchanged")

	// Changing the storage is refused.
	cfg.Storage = jetstream.MemoryStorage
	_, err = js.UpdateStream(ctx(t), cfg)
	var apiErr *jetstream.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, jetstream.ErrorCode(10052), apiErr.ErrorCode, "%v", apiErr)
	require.Equal(t, "stream configuration update can not change storage type", apiErr.Description)
}

// Stream names and list filtered by subject: the streams whose subjects
// overlap the filter.
func TestJetStreamListBySubject(t *testing.T) {
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "LA", Subjects: []string{"list.a.*"}})
	createStream(t, js, jetstream.StreamConfig{Name: "LB", Subjects: []string{"list.b.>", "other.b"}})
	createStream(t, js, jetstream.StreamConfig{Name: "LC", Subjects: []string{"elsewhere"}})
	names := func(filter string) []string {
		var out []string
		l := js.StreamNames(ctx(t), jetstream.WithStreamListSubject(filter))
		for n := range l.Name() {
			out = append(out, n)
		}
		require.NoError(t, l.Err())
		slices.Sort(out)
		return out
	}
	require.Equal(t, []string{"LA"}, names("list.a.1"))
	require.Equal(t, []string{"LA", "LB"}, names("list.>"))
	require.Equal(t, []string{"LB"}, names("other.b"))
	require.Equal(t, []string{"LA", "LB", "LC"}, names(">"))
	require.Empty(t, names("nothing.here"))
	name, err := js.StreamNameBySubject(ctx(t), "list.b.x.y")
	require.NoError(t, err)
	require.Equal(t, "LB", name)
	_, err = js.StreamNameBySubject(ctx(t), "nothing.here")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)

	var listed []string
	l := js.ListStreams(ctx(t), jetstream.WithStreamListSubject("list.*.x"))
	for info := range l.Info() {
		listed = append(listed, info.Config.Name)
	}
	require.NoError(t, l.Err())
	slices.Sort(listed)
	require.Equal(t, []string{"LA", "LB"}, listed)
}

// STREAM.INFO with subjects_filter answers the message count of each
// matching subject (nats.go: StreamInfo.State.Subjects).
func TestJetStreamInfoSubjectsFilter(t *testing.T) {
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	st := createStream(t, js, jetstream.StreamConfig{Name: "SF", Subjects: []string{"sf.>"}})
	publishN(t, js, "sf.a", 3)
	publishN(t, js, "sf.b", 2)
	publishN(t, js, "sf.c.x", 1)
	info, err := st.Info(ctx(t), jetstream.WithSubjectFilter("sf.*"))
	require.NoError(t, err)
	require.Equal(t, uint64(6), info.State.Msgs)
	require.Equal(t, uint64(3), info.State.NumSubjects)
	require.Equal(t, map[string]uint64{"sf.a": 3, "sf.b": 2}, info.State.Subjects)
	info, err = st.Info(ctx(t), jetstream.WithSubjectFilter(">"))
	require.NoError(t, err)
	require.Equal(t, map[string]uint64{"sf.a": 3, "sf.b": 2, "sf.c.x": 1}, info.State.Subjects)
	info, err = st.Info(ctx(t))
	require.NoError(t, err)
	require.Empty(t, info.State.Subjects, "only with a filter")
}

// Account info counts the account's streams, consumers and stored bytes.
func TestJetStreamAccountInfoCounts(t *testing.T) {
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	waitForAPI(t, js)
	before, err := js.AccountInfo(ctx(t))
	require.NoError(t, err)
	require.Zero(t, before.Streams)
	require.Zero(t, before.Consumers)
	require.Zero(t, before.Store)
	require.Zero(t, before.Memory)

	file := createStream(t, js, jetstream.StreamConfig{Name: "AF", Subjects: []string{"af"}})
	mem := createStream(t, js, jetstream.StreamConfig{Name: "AM", Subjects: []string{"am"}, Storage: jetstream.MemoryStorage})
	publishN(t, js, "af", 10)
	publishN(t, js, "am", 4)
	for _, name := range []string{"c1", "c2"} {
		_, err := file.CreateOrUpdateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: name})
		require.NoError(t, err)
	}
	_, err = mem.CreateOrUpdateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "c3"})
	require.NoError(t, err)

	fi, err := file.Info(ctx(t))
	require.NoError(t, err)
	mi, err := mem.Info(ctx(t))
	require.NoError(t, err)
	acc, err := js.AccountInfo(ctx(t))
	require.NoError(t, err)
	require.Equal(t, 2, acc.Streams)
	require.Equal(t, 3, acc.Consumers)
	require.Equal(t, fi.State.Bytes, acc.Store)
	require.Equal(t, mi.State.Bytes, acc.Memory)
	require.NotZero(t, acc.Store)
	require.NotZero(t, acc.Memory)

	require.NoError(t, js.DeleteStream(ctx(t), "AM"))
	acc, err = js.AccountInfo(ctx(t))
	require.NoError(t, err)
	require.Equal(t, 1, acc.Streams)
	require.Equal(t, 2, acc.Consumers)
	require.Zero(t, acc.Memory)
}
