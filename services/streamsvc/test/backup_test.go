package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

// Stream backup and restore (`nats stream backup` / `nats stream
// restore`): within Switchyard, and between Switchyard and nats-server
// v2.15.2 both ways, with the same messages (sequences, subjects,
// headers, payloads, times, deleted sequences) and consumer positions.

// backupReference finds the reference nats-server: $NATS_SERVER_BIN, or
// the repository's .tools/bin. Missing, the test fails under CI (make
// test installs it) and is skipped elsewhere.
func backupReference(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NATS_SERVER_BIN"); p != "" {
		_, err := os.Stat(p)
		require.NoError(t, err, "NATS_SERVER_BIN")
		return p
	}
	p := filepath.Join(testkit.RepoRoot(t), ".tools", "bin", "nats-server")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no reference nats-server at %s (make reference installs v2.15.2): %v", p, err)
		}
		t.Skipf("no reference nats-server: set NATS_SERVER_BIN or run make reference (%v)", err)
	}
	return p
}

// startBackupReference runs nats-server with JetStream and returns its URL.
func startBackupReference(t *testing.T) string {
	t.Helper()
	port := testkit.FreePort(t)
	p := testkit.Start(t, backupReference(t), "-js", "-sd", filepath.Join(t.TempDir(), "js"), "-a", "127.0.0.1", "-p", strconv.Itoa(port))
	p.Port = port
	testkit.WaitForINFO(t, p, wait)
	return p.URL()
}

// backupContent is what a backup must carry over.
type backupContent struct {
	first, last, msgs uint64
	deleted           int
	messages          []*jetstream.RawStreamMsg
	consumer          *jetstream.ConsumerInfo
}

// fillBackupStream makes stream name (subjects <name>.>, storage st):
// ten messages with headers on three subjects, 4 and 7 deleted, and a
// durable consumer C that has acknowledged 1-5 and holds 6 unacknowledged.
func fillBackupStream(t *testing.T, js jetstream.JetStream, name string, st jetstream.StorageType) {
	t.Helper()
	s := createStream(t, js, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: st})
	for i := 1; i <= 10; i++ {
		m := nats.NewMsg(fmt.Sprintf("%s.%d", name, i%3))
		m.Header.Set("X-Seq", strconv.Itoa(i))
		m.Header.Add("X-Multi", "a")
		m.Header.Add("X-Multi", "b")
		m.Data = []byte(fmt.Sprintf("payload %d", i))
		if i == 5 {
			m.Data = nil // an empty payload
		}
		_, err := js.PublishMsg(ctx(t), m)
		require.NoError(t, err)
	}
	require.NoError(t, s.DeleteMsg(ctx(t), 4))
	require.NoError(t, s.DeleteMsg(ctx(t), 7))
	c, err := s.CreateOrUpdateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "C", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	batch, err := c.FetchNoWait(5)
	require.NoError(t, err)
	n := 0
	for m := range batch.Messages() {
		require.NoError(t, m.DoubleAck(ctx(t)))
		n++
	}
	require.Equal(t, 5, n) // 1, 2, 3, 5, 6
	batch, err = c.FetchNoWait(1)
	require.NoError(t, err)
	for range batch.Messages() { // 8, left unacknowledged
	}
	eventually(t, func() bool {
		info, err := c.Info(attempt(t))
		return err == nil && info.NumAckPending == 1 && info.AckFloor.Stream == 6
	}, "the consumer's acks")
}

// readBackupContent reads a stream's messages and consumer C.
func readBackupContent(t *testing.T, js jetstream.JetStream, name string) backupContent {
	t.Helper()
	s, err := js.Stream(ctx(t), name)
	require.NoError(t, err)
	info, err := s.Info(ctx(t))
	require.NoError(t, err)
	bc := backupContent{first: info.State.FirstSeq, last: info.State.LastSeq, msgs: info.State.Msgs, deleted: info.State.NumDeleted}
	for seq := bc.first; seq <= bc.last; seq++ {
		m, err := s.GetMsg(ctx(t), seq)
		if err != nil {
			require.ErrorIs(t, err, jetstream.ErrMsgNotFound, "seq %d", seq)
			continue
		}
		m.Time = m.Time.UTC()
		bc.messages = append(bc.messages, m)
	}
	if c, err := s.Consumer(ctx(t), "C"); err == nil {
		bc.consumer, err = c.Info(ctx(t))
		require.NoError(t, err)
	}
	return bc
}

// requireSameContent compares what a restore must keep: the messages,
// and the consumer's positions and pending acks exactly.
func requireSameContent(t *testing.T, want, got backupContent) {
	t.Helper()
	require.Equal(t, []uint64{want.first, want.last, want.msgs}, []uint64{got.first, got.last, got.msgs}, "first, last, messages")
	require.Equal(t, want.deleted, got.deleted, "num_deleted")
	require.Equal(t, len(want.messages), len(got.messages))
	for i, w := range want.messages {
		g := got.messages[i]
		require.Equal(t, w.Sequence, g.Sequence)
		require.Equal(t, w.Subject, g.Subject, "seq %d", w.Sequence)
		require.Equal(t, w.Data, g.Data, "seq %d", w.Sequence)
		require.Equal(t, w.Header, g.Header, "seq %d", w.Sequence)
		require.True(t, w.Time.Equal(g.Time), "seq %d: time %v, restored %v", w.Sequence, w.Time, g.Time)
	}
	require.NotNil(t, got.consumer, "consumer C was not restored")
	require.Equal(t, want.consumer.AckFloor.Stream, got.consumer.AckFloor.Stream, "ack floor")
	require.Equal(t, want.consumer.AckFloor.Consumer, got.consumer.AckFloor.Consumer, "ack floor")
	require.Equal(t, want.consumer.Delivered.Stream, got.consumer.Delivered.Stream, "delivered")
	require.Equal(t, want.consumer.Delivered.Consumer, got.consumer.Delivered.Consumer, "delivered")
	require.Equal(t, want.consumer.NumAckPending, got.consumer.NumAckPending, "ack pending")
	require.Equal(t, want.consumer.Config.AckPolicy, got.consumer.Config.AckPolicy)
}

// backupWith saves stream name from url into a new directory with the
// nats CLI.
func backupWith(t *testing.T, url, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "backup")
	out := newNatsCLI(t, url).run("stream", "backup", name, dir, "--no-progress")
	require.Contains(t, out, "Received", out)
	_, err := os.Stat(filepath.Join(dir, "stream.arc.s2"))
	require.NoError(t, err, "the backup holds no stream.arc.s2:\n%s", out)
	return dir
}

func restoreWith(t *testing.T, url, dir string) string {
	t.Helper()
	return newNatsCLI(t, url).run("stream", "restore", dir, "--no-progress")
}

// The restored consumer goes on from its position: the unacknowledged
// message is delivered again, then the ones after it.
func requireConsumerGoesOn(t *testing.T, js jetstream.JetStream, name string) {
	t.Helper()
	// Retried: right after a restart the consumer's interest may not
	// have reached this frontdoor yet.
	c := retryCreate(t, func(ctx context.Context) (jetstream.Consumer, error) { return js.Consumer(ctx, name, "C") })
	var seqs []uint64
	eventually(t, func() bool {
		batch, err := c.Fetch(3, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return false
		}
		for m := range batch.Messages() {
			md, err := m.Metadata()
			require.NoError(t, err)
			seqs = append(seqs, md.Sequence.Stream)
			require.NoError(t, m.Ack())
		}
		return len(seqs) > 0
	}, "the restored consumer delivers nothing")
	// 8 again (at once, or once its ack wait passes), 9, 10 and what was
	// published after the restore.
	require.Subset(t, []uint64{8, 9, 10, 11}, seqs)
}

func TestBackupRoundTripSwitchyard(t *testing.T) {
	for _, st := range []jetstream.StorageType{jetstream.FileStorage, jetstream.MemoryStorage} {
		t.Run(st.String(), func(t *testing.T) {
			tg := startTarget(t)
			_, js := tg.connect(t, 0)
			waitForAPI(t, js)
			fillBackupStream(t, js, "ORDERS", st)
			want := readBackupContent(t, js, "ORDERS")

			dir := backupWith(t, tg.urls[0], "ORDERS")
			require.NoError(t, js.DeleteStream(ctx(t), "ORDERS"))
			out := restoreWith(t, tg.urls[1], dir)
			require.Contains(t, out, `Restored stream "ORDERS"`, out)
			requireSameContent(t, want, readBackupContent(t, js, "ORDERS"))

			// New messages follow the restored ones.
			ack, err := js.Publish(ctx(t), "ORDERS.new", []byte("after"))
			require.NoError(t, err)
			require.Equal(t, want.last+1, ack.Sequence)

			if tg.suite != nil && st == jetstream.FileStorage {
				// The restored stream and its consumer survive a restart.
				tg.suite.streamsvc.Stop()
				tg.suite.startStreamsvc(t)
				waitForAPI(t, js)
				after := readBackupContent(t, js, "ORDERS")
				require.Equal(t, want.last+1, after.last)
				require.NotNil(t, after.consumer, "consumer C is gone after the restart")
				require.Equal(t, want.consumer.AckFloor, after.consumer.AckFloor)
			}
			requireConsumerGoesOn(t, js, "ORDERS")
			tg.alive(t)
		})
	}
}

// A backup of nats-server restores into Switchyard, and one of
// Switchyard into nats-server, with the same content.
func TestBackupInterop(t *testing.T) {
	ref := startBackupReference(t)
	tg := startTarget(t)
	if tg.reference {
		t.Skip("runs Switchyard against the reference itself")
	}
	_, js := tg.connect(t, 0)
	waitForAPI(t, js)
	rnc, err := nats.Connect(ref, nats.Timeout(wait))
	require.NoError(t, err)
	t.Cleanup(rnc.Close)
	rjs, err := jetstream.New(rnc)
	require.NoError(t, err)

	t.Run("nats-server to Switchyard", func(t *testing.T) {
		fillBackupStream(t, rjs, "FROMREF", jetstream.FileStorage)
		want := readBackupContent(t, rjs, "FROMREF")
		dir := backupWith(t, ref, "FROMREF")
		out := restoreWith(t, tg.urls[0], dir)
		require.Contains(t, out, `Restored stream "FROMREF"`, out)
		requireSameContent(t, want, readBackupContent(t, js, "FROMREF"))
		requireConsumerGoesOn(t, js, "FROMREF")
	})
	t.Run("Switchyard to nats-server", func(t *testing.T) {
		fillBackupStream(t, js, "FROMSY", jetstream.FileStorage)
		want := readBackupContent(t, js, "FROMSY")
		dir := backupWith(t, tg.urls[1], "FROMSY")
		out := newNatsCLI(t, ref).run("backup", "validate", dir)
		t.Log(out)
		out = restoreWith(t, ref, dir)
		require.Contains(t, out, `Restored stream "FROMSY"`, out)
		requireSameContent(t, want, readBackupContent(t, rjs, "FROMSY"))
		requireConsumerGoesOn(t, rjs, "FROMSY")
	})
	tg.alive(t)
}

// A backup keeps a purged start and trailing deleted sequences: the
// restored stream starts and ends where it did (within Switchyard or
// nats-server, and from nats-server into Switchyard).
func TestBackupPurgedAndTrailingGaps(t *testing.T) {
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	waitForAPI(t, js)
	fill := func(js jetstream.JetStream, name string) {
		s := createStream(t, js, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}})
		for i := range 7 {
			_, err := js.Publish(ctx(t), name+".x", []byte(strconv.Itoa(i)))
			require.NoError(t, err)
			if i == 4 {
				require.NoError(t, s.Purge(ctx(t)))
			}
		}
		require.NoError(t, s.DeleteMsg(ctx(t), 7))
	}
	check := func(nc *nats.Conn, js jetstream.JetStream, name string, meta, data []byte) {
		final, _ := rawRestore(t, nc, name, meta, data, 1024)
		require.Nil(t, apiError(final), "%v", final)
		state := final["state"].(map[string]any)
		require.Equal(t, []any{float64(1), float64(6), float64(7)}, []any{state["messages"], state["first_seq"], state["last_seq"]}, "%v", state)
		ack, err := js.Publish(ctx(t), name+".x", []byte("next"))
		require.NoError(t, err)
		require.Equal(t, uint64(8), ack.Sequence)
	}
	fill(js, "GAPS")
	meta, data := rawBackup(t, nc, "GAPS")
	require.NoError(t, js.DeleteStream(ctx(t), "GAPS"))
	check(nc, js, "GAPS", meta, data)

	if tg.reference {
		return
	}
	rnc, err := nats.Connect(startBackupReference(t), nats.Timeout(wait))
	require.NoError(t, err)
	t.Cleanup(rnc.Close)
	rjs, err := jetstream.New(rnc)
	require.NoError(t, err)
	fill(rjs, "REFGAPS")
	meta, data = rawBackup(t, rnc, "REFGAPS")
	check(nc, js, "REFGAPS", meta, data)
	// And back.
	require.NoError(t, rjs.DeleteStream(ctx(t), "REFGAPS"))
	meta, data = rawBackup(t, nc, "REFGAPS")
	final, _ := rawRestore(t, rnc, "REFGAPS", meta, data, 1024)
	require.Nil(t, apiError(final), "%v", final)
	state := final["state"].(map[string]any)
	require.Equal(t, []any{float64(2), float64(6), float64(8)}, []any{state["messages"], state["first_seq"], state["last_seq"]}, "%v", state)
}

// A client that stops answering chunks gets "408 No Flow Response" after
// 5 s, as from nats-server.
func TestBackupSnapshotNoFlowResponse(t *testing.T) {
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	waitForAPI(t, js)
	createStream(t, js, jetstream.StreamConfig{Name: "FLOW", Subjects: []string{"flow.>"}})
	rng := rand.New(rand.NewPCG(1, 2))
	payload := make([]byte, 1000)
	for range 20 {
		for j := range payload {
			payload[j] = byte(rng.Uint32()) // incompressible
		}
		_, err := js.Publish(ctx(t), "flow.x", payload)
		require.NoError(t, err)
	}
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	require.NoError(t, err)
	resp := apiRequest(t, nc, "$JS.API.STREAM.SNAPSHOT.FLOW", fmt.Sprintf(`{"deliver_subject":%q,"chunk_size":1024,"window_size":2048}`, inbox))
	require.Nil(t, apiError(resp), "%v", resp)
	chunks := 0
	for {
		m, err := sub.NextMsg(wait)
		require.NoError(t, err)
		if len(m.Data) == 0 {
			require.Equal(t, "408", m.Header.Get("Status"))
			require.Equal(t, "No Flow Response", m.Header.Get("Description"))
			break
		}
		require.NotEmpty(t, m.Reply) // a full chunk, never answered
		chunks++
	}
	require.Equal(t, 2, chunks, "the window holds two chunks")
	tg.alive(t)
}

// rawRestore sends a restore request for meta (backup.json) and then
// data in chunks, and returns the answer to the final message (nil when
// there is none) and the answers to the request and the chunks.
func rawRestore(t *testing.T, nc *nats.Conn, name string, meta, data []byte, chunk int) (final map[string]any, first map[string]any) {
	t.Helper()
	first = apiRequest(t, nc, "$JS.API.STREAM.RESTORE."+name, string(meta))
	deliver, _ := first["deliver_subject"].(string)
	if deliver == "" {
		return nil, first
	}
	for len(data) > 0 {
		n := min(chunk, len(data))
		m, err := nc.Request(deliver, data[:n], wait)
		require.NoError(t, err)
		if len(m.Data) > 0 { // a failure answered early
			require.NoError(t, json.Unmarshal(m.Data, &final))
			return final, first
		}
		data = data[n:]
	}
	m, err := nc.Request(deliver, nil, wait)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(m.Data, &final))
	return final, first
}

// rawBackup takes a backup of name by hand: the archive and backup.json.
func rawBackup(t *testing.T, nc *nats.Conn, name string) (meta, data []byte) {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	require.NoError(t, err)
	defer sub.Unsubscribe()
	resp := apiRequest(t, nc, "$JS.API.STREAM.SNAPSHOT."+name, fmt.Sprintf(`{"deliver_subject":%q,"chunk_size":1024}`, inbox))
	require.Nil(t, apiError(resp), "%v", resp)
	meta, err = json.Marshal(map[string]any{"config": resp["config"], "state": resp["state"]})
	require.NoError(t, err)
	var buf bytes.Buffer
	for {
		m, err := sub.NextMsg(wait)
		require.NoError(t, err)
		if len(m.Data) == 0 {
			status := m.Header.Get("Status")
			require.True(t, status == "" || status == "204", "end of backup: %v", m.Header)
			return meta, buf.Bytes()
		}
		buf.Write(m.Data)
		if m.Reply != "" {
			require.NoError(t, m.Respond(nil))
		}
	}
}

// restoreFailed checks the answer of a failed restore of stream SRC,
// and that the stream is not there: nats-server keeps what it restored
// before the failure (deleted here so the next case starts clean);
// Switchyard keeps nothing.
func restoreFailed(t *testing.T, tg *target, js jetstream.JetStream, final map[string]any, want string) {
	t.Helper()
	if tg.reference {
		t.Cleanup(func() { _ = js.DeleteStream(context.Background(), "SRC") })
	}
	require.NotNil(t, final, "no answer to the final message")
	e := apiError(final)
	require.NotNil(t, e, "restore did not fail: %v", final)
	require.Equal(t, "io.nats.jetstream.api.v1.stream_create_response", final["type"])
	require.Contains(t, e["description"], want)
	if tg.reference {
		return
	}
	_, err := js.Stream(ctx(t), "SRC")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
}

// Bad backups are refused with nats-server's codes, leave no stream and
// nothing on disk, and streamsvc goes on.
func TestBackupRestoreBadInput(t *testing.T) {
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	waitForAPI(t, js)
	fillBackupStream(t, js, "SRC", jetstream.FileStorage)
	meta, data := rawBackup(t, nc, "SRC")
	require.NoError(t, js.DeleteStream(ctx(t), "SRC"))

	// The backup itself restores (the cases below differ from it only
	// in what they break).
	final, _ := rawRestore(t, nc, "SRC", meta, data, 512)
	require.Nil(t, apiError(final), "%v", final)
	require.NoError(t, js.DeleteStream(ctx(t), "SRC"))

	t.Run("name in use", func(t *testing.T) {
		createStream(t, js, jetstream.StreamConfig{Name: "SRC", Subjects: []string{"SRC.>"}})
		defer js.DeleteStream(ctx(t), "SRC")
		_, first := rawRestore(t, nc, "SRC", meta, data, 512)
		require.Equal(t, errorObject(400, 10130, "stream name already in use, cannot restore"), apiError(first))
		require.Equal(t, "", first["deliver_subject"])
	})
	t.Run("requests", func(t *testing.T) {
		resp := apiRequest(t, nc, "$JS.API.STREAM.RESTORE.SRC", "")
		require.Equal(t, errorObject(400, 10003, "bad request"), apiError(resp))
		resp = apiRequest(t, nc, "$JS.API.STREAM.RESTORE.OTHER", string(meta))
		require.Equal(t, errorObject(400, 10056, "stream name in subject does not match request"), apiError(resp))
		resp = apiRequest(t, nc, "$JS.API.STREAM.SNAPSHOT.NOPE", `{"deliver_subject":"x"}`)
		require.Equal(t, errorObject(404, 10059, "stream not found"), apiError(resp))
		require.Equal(t, "io.nats.jetstream.api.v1.stream_snapshot_response", resp["type"])
		createStream(t, js, jetstream.StreamConfig{Name: "SNAP"})
		resp = apiRequest(t, nc, "$JS.API.STREAM.SNAPSHOT.SNAP", `{"deliver_subject":"a.*"}`)
		require.Equal(t, errorObject(400, 10015, "deliver subject not valid"), apiError(resp))
		resp = apiRequest(t, nc, "$JS.API.STREAM.SNAPSHOT.SNAP", `{}`)
		require.Equal(t, errorObject(400, 10003, "bad request"), apiError(resp))
	})
	t.Run("corrupt compression", func(t *testing.T) {
		bad := bytes.Clone(data)
		bad[len(bad)/2] ^= 0xff // the s2 block's checksum no longer matches
		final, _ := rawRestore(t, nc, "SRC", meta, bad, 512)
		restoreFailed(t, tg, js, final, "restore failed: s2: corrupt input")
		final, _ = rawRestore(t, nc, "SRC", meta, bytes.Repeat([]byte("garbage!"), 5000), 8192)
		restoreFailed(t, tg, js, final, "restore failed: s2: corrupt input")
	})
	t.Run("truncated", func(t *testing.T) {
		final, _ := rawRestore(t, nc, "SRC", meta, data[:len(data)-10], 512)
		restoreFailed(t, tg, js, final, "restore failed:")
		final, _ = rawRestore(t, nc, "SRC", meta, archiveOf(t, archiveEntry{name: "state.json", data: `{"messages":1,"first_seq":1,"last_seq":1}`}, archiveEntry{name: "SRC.1", seq: 1, data: "x"}), 512)
		// nats-server words it "restore failed: EOF".
		restoreFailed(t, tg, js, final, "restore failed: ")
	})
	t.Run("malformed entries", func(t *testing.T) {
		state := archiveEntry{name: "state.json", data: `{"messages":2,"first_seq":1,"last_seq":2,"consumer_count":1}`}
		for _, c := range []struct {
			entries []archiveEntry
			want    string
		}{
			{[]archiveEntry{{name: "SRC.1", seq: 1}}, "restore failed: expected state.json first"},
			{[]archiveEntry{state, {name: "consumers/../../../x", data: `{"config":{"durable_name":"../../../x"},"state":{}}`}, archiveEnd}, `failed to add consumer "../../../x"`},
			// nats-server takes this one as consumer x; Switchyard refuses
			// an entry that names another consumer than it holds.
			{[]archiveEntry{state, {name: "consumers/../../../x", data: `{"config":{"durable_name":"x"},"state":{}}`}, archiveEnd}, `consumer entry "consumers/../../../x" does not match`},
			{[]archiveEntry{state, {name: "consumers/..", data: `{"config":{"durable_name":".."},"state":{}}`}, archiveEnd}, "durable name can not contain"},
			{[]archiveEntry{state, {name: "consumers/a/b", data: `{"config":{"durable_name":"a/b"},"state":{}}`}, archiveEnd}, `failed to add consumer "a/b"`},
			{[]archiveEntry{state, {name: "/etc/passwd", data: `{}`}, archiveEnd}, `expected consumer, found "/etc/passwd"`},
			{[]archiveEntry{state, {name: "consumers/C", data: `{"state":{}}`}, archiveEnd}, "missing config"},
			{[]archiveEntry{{name: "state.json", data: `{"first_seq":1,"last_seq":9}`}, {name: "SRC.1", seq: 5}, {name: "SRC.1", seq: 5}, archiveEnd}, "message sequence 5 out of order"},
			{[]archiveEntry{{name: "state.json", data: `{"first_seq":1,"last_seq":9}`}, {name: "../../x", data: "zip"}, archiveEnd}, "expected message sequence"},
			// An entry claiming 1 GB is refused before anything is read
			// into memory (nats-server: over its max_payload).
			{[]archiveEntry{{name: "state.json", data: `{"first_seq":1,"last_seq":9}`}, {name: "SRC.1", seq: 1, declared: 1 << 30}}, "restore failed: "},
		} {
			t.Run(c.want, func(t *testing.T) {
				if tg.reference && strings.Contains(c.want, "does not match") {
					t.Skip("nats-server restores it")
				}
				final, _ := rawRestore(t, nc, "SRC", meta, archiveOf(t, c.entries...), 512)
				restoreFailed(t, tg, js, final, c.want)
			})
		}
	})
	t.Run("stalled", func(t *testing.T) {
		first := apiRequest(t, nc, "$JS.API.STREAM.RESTORE.SRC", string(meta))
		deliver := first["deliver_subject"].(string)
		_, err := nc.Request(deliver, data[:100], wait)
		require.NoError(t, err)
		// nats-server gives up after 5 s without a chunk: the rest finds
		// no one.
		time.Sleep(6 * time.Second)
		_, err = nc.Request(deliver, data[100:], 2*time.Second)
		require.ErrorIs(t, err, nats.ErrNoResponders)
		_, err = js.Stream(ctx(t), "SRC")
		require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
	})
	// None of it left a stream, or files outside the streams that exist.
	names := js.StreamNames(ctx(t))
	var got []string
	for n := range names.Name() {
		got = append(got, n)
	}
	require.Equal(t, []string{"SNAP"}, got)
	if tg.suite != nil {
		eventually(t, func() bool {
			entries, _ := os.ReadDir(filepath.Join(tg.suite.storeDir, "$G", "restoring"))
			return len(entries) == 0
		}, "a failed restore left files in restoring/")
		entries, err := os.ReadDir(filepath.Join(tg.suite.storeDir, "$G", "streams"))
		require.NoError(t, err)
		require.Len(t, entries, 1)
		var all []string
		require.NoError(t, filepath.Walk(filepath.Dir(tg.suite.storeDir), func(path string, info os.FileInfo, err error) error {
			if filepath.Base(path) == "x" || filepath.Base(path) == "passwd" {
				all = append(all, path)
			}
			return nil
		}))
		require.Empty(t, all)
	}
	tg.alive(t)
}

// A restore beyond the account's storage is refused (10047), as on
// nats-server.
func TestBackupRestoreOverLimits(t *testing.T) {
	lt := startLimits(t, "max_file_store: 10MB", limitsAccount{"A", "{ max_file: 3000 }"})
	nc, js := lt.connect(t, "A")
	waitForAPI(t, js)
	s := createStream(t, js, jetstream.StreamConfig{Name: "BIG", Subjects: []string{"big.>"}})
	for i := range 20 {
		_, err := js.Publish(ctx(t), "big."+strconv.Itoa(i), bytes.Repeat([]byte("x"), 100))
		require.NoError(t, err)
	}
	meta, data := rawBackup(t, nc, "BIG")
	_ = s
	require.NoError(t, js.DeleteStream(ctx(t), "BIG"))
	// Another stream takes most of the room.
	createStream(t, js, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}})
	for i := range 15 {
		_, err := js.Publish(ctx(t), "other."+strconv.Itoa(i), bytes.Repeat([]byte("y"), 100))
		require.NoError(t, err)
	}
	final, _ := rawRestore(t, nc, "BIG", meta, data, 512)
	restoreFailed(t, &target{reference: os.Getenv(referenceEnv) != ""}, js, final, "insufficient storage resources available")
	require.Equal(t, errorObject(500, 10047, "insufficient storage resources available"), apiError(final))
	_, err := js.Stream(ctx(t), "BIG")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
}

// archiveEntry is an entry of a hand-made archive.
type archiveEntry struct {
	name     string
	seq      uint64
	data     string
	declared uint64 // the payload size written, when not len(data)
}

// archiveEnd is the end marker.
var archiveEnd = archiveEntry{}

// archiveOf writes entries as a NATSARC1 archive, compressed, by hand
// (the format as nats-server v2.15 writes it).
func archiveOf(t *testing.T, entries ...archiveEntry) []byte {
	t.Helper()
	var raw []byte
	raw = append(raw, "NATSARC1"...)
	for _, e := range entries {
		raw = appendUvarint(raw, uint64(len(e.name)))
		ts := uint64(0)
		if e.seq > 0 {
			ts = uint64(time.Now().UnixNano()) << 1 // zigzag of a positive time
		}
		raw = appendUvarint(raw, ts)
		raw = appendUvarint(raw, e.seq)
		raw = appendUvarint(raw, 0)
		size := uint64(len(e.data))
		if e.declared > 0 {
			size = e.declared
		}
		raw = appendUvarint(raw, size)
		raw = append(raw, e.name...)
		raw = append(raw, e.data...)
	}
	return s2Compress(t, raw)
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func s2Compress(t *testing.T, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := s2.NewWriter(&buf)
	_, err := w.Write(raw)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}
