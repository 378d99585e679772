package test

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/services/streamsvc/internal/store"
)

// batchMsg publishes one message of an atomic batch; with a reply it
// returns the answer ("" for a staged message's empty one).
func batchMsg(t *testing.T, nc *nats.Conn, subj, id string, seq int, reply bool, extra ...string) string {
	t.Helper()
	m := nats.NewMsg(subj)
	m.Header.Set("Nats-Batch-Id", id)
	if seq > 0 {
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(seq))
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m.Header.Set(extra[i], extra[i+1])
	}
	m.Data = []byte(subj + "#" + strconv.Itoa(seq))
	if !reply {
		require.NoError(t, nc.PublishMsg(m))
		return ""
	}
	r, err := nc.RequestMsg(m, wait)
	require.NoError(t, err)
	return string(r.Data)
}

// requireBatchError checks a refusal's code and text.
func requireBatchError(t *testing.T, answer string, code int, text string) {
	t.Helper()
	var ack struct {
		Error *struct {
			ErrCode int    `json:"err_code"`
			Text    string `json:"description"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(answer), &ack), answer)
	require.NotNil(t, ack.Error, answer)
	require.Equal(t, code, ack.Error.ErrCode, answer)
	require.Equal(t, text, ack.Error.Text)
}

// Atomic batches: staged, then stored whole on commit (or eob), or
// refused whole, with nats-server's answers.
func TestAtomicBatch(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	nc, js := tg.connect(t, 0)
	createStream(t, js, jetstream.StreamConfig{Name: "NOATOM", Subjects: []string{"noatom.>"}})
	st := createStream(t, js, jetstream.StreamConfig{Name: "ATOM", Subjects: []string{"atom.>"}, AllowAtomicPublish: true})
	require.True(t, st.CachedInfo().Config.AllowAtomicPublish)
	waitForStream(t, js, "noatom.probe")
	waitForStream(t, js, "atom.probe") // seq 1

	requireBatchError(t, batchMsg(t, nc, "noatom.1", "x", 1, true), 10174, "atomic publish is disabled")

	require.Equal(t, "", batchMsg(t, nc, "atom.a", "b1", 1, true))
	batchMsg(t, nc, "atom.b", "b1", 2, false)
	var ack struct {
		Stream string `json:"stream"`
		Seq    uint64 `json:"seq"`
		Batch  string `json:"batch"`
		Count  int    `json:"count"`
	}
	require.NoError(t, json.Unmarshal([]byte(batchMsg(t, nc, "atom.c", "b1", 3, true, "Nats-Batch-Commit", "1")), &ack))
	require.Equal(t, "ATOM", ack.Stream)
	require.Equal(t, uint64(4), ack.Seq, "the commit is the batch's last message")
	require.Equal(t, "b1", ack.Batch)
	require.Equal(t, 3, ack.Count)
	for seq, subj := range map[uint64]string{2: "atom.a", 3: "atom.b", 4: "atom.c"} {
		m, err := st.GetMsg(ctx(t), seq)
		require.NoError(t, err)
		require.Equal(t, subj, m.Subject)
		require.Equal(t, "b1", m.Header.Get("Nats-Batch-Id"))
	}
	last, err := st.GetMsg(ctx(t), 4)
	require.NoError(t, err)
	require.Equal(t, "1", last.Header.Get("Nats-Batch-Commit"))

	// eob: the commit message is not stored; the last staged one is
	// marked as the commit.
	require.Equal(t, "", batchMsg(t, nc, "atom.d", "b2", 1, true))
	require.NoError(t, json.Unmarshal([]byte(batchMsg(t, nc, "atom.ignored", "b2", 2, true, "Nats-Batch-Commit", "eob")), &ack))
	require.Equal(t, uint64(5), ack.Seq)
	require.Equal(t, 1, ack.Count)
	eob, err := st.GetMsg(ctx(t), 5)
	require.NoError(t, err)
	require.Equal(t, "atom.d", eob.Subject)
	require.Equal(t, "1", eob.Header.Get("Nats-Batch-Commit"))

	// Refusals; none of them stores anything.
	batchMsg(t, nc, "atom.g", "gap", 1, true)
	requireBatchError(t, batchMsg(t, nc, "atom.g", "gap", 3, true), 10176, "atomic publish batch is incomplete")
	requireBatchError(t, batchMsg(t, nc, "atom.g", "gap", 2, true, "Nats-Batch-Commit", "1"), 10176, "atomic publish batch is incomplete")
	requireBatchError(t, batchMsg(t, nc, "atom.u", "unknown", 2, true), 10176, "atomic publish batch is incomplete")
	requireBatchError(t, batchMsg(t, nc, "atom.n", "noseq", 0, true), 10175, "atomic publish sequence is missing")
	requireBatchError(t, batchMsg(t, nc, "atom.l", strings.Repeat("x", 65), 1, true), 10179, "atomic publish batch ID is invalid")
	requireBatchError(t, batchMsg(t, nc, "atom.c", "badcommit", 1, true, "Nats-Batch-Commit", "x"), 10200, "atomic publish batch commit is invalid")
	batchMsg(t, nc, "atom.dup", "dup", 1, true, "Nats-Msg-Id", "same")
	requireBatchError(t, batchMsg(t, nc, "atom.dup", "dup", 2, true, "Nats-Msg-Id", "same", "Nats-Batch-Commit", "1"), 10201, "atomic publish batch contains duplicate message id")
	// A later message's expected last sequence is checked against the
	// batch's own earlier messages, and refused even when it matches.
	batchMsg(t, nc, "atom.s", "lastseq", 1, true)
	requireBatchError(t, batchMsg(t, nc, "atom.s", "lastseq", 2, true, "Nats-Expected-Last-Sequence", "5", "Nats-Batch-Commit", "1"), 10071, "wrong last sequence: 6")
	batchMsg(t, nc, "atom.s", "lastseq2", 1, true)
	requireBatchError(t, batchMsg(t, nc, "atom.s", "lastseq2", 2, true, "Nats-Expected-Last-Sequence", "6", "Nats-Batch-Commit", "1"), 10164, "wrong last sequence")
	batchMsg(t, nc, "atom.w", "wrong", 1, true, "Nats-Expected-Last-Sequence", "1")
	requireBatchError(t, batchMsg(t, nc, "atom.w", "wrong", 2, true, "Nats-Batch-Commit", "1"), 10071, "wrong last sequence: 5")
	batchMsg(t, nc, "atom.m", "lastmsgid", 1, true, "Nats-Expected-Last-Msg-Id", "z")
	requireBatchError(t, batchMsg(t, nc, "atom.m", "lastmsgid", 2, true, "Nats-Batch-Commit", "1"), 10177, "atomic publish unsupported header used: Nats-Expected-Last-Msg-Id")
	for i := 1; i <= 1000; i++ {
		batchMsg(t, nc, "atom.big", "big", i, false)
	}
	requireBatchError(t, batchMsg(t, nc, "atom.big", "big", 1001, true, "Nats-Batch-Commit", "1"), 10199, "atomic publish batch is too large: 1000")
	info, err := st.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(5), info.State.LastSeq, "a refused batch stored something")

	// A batch of one, committed at once; the first message's expected
	// last sequence is checked against the stream before the batch.
	require.NoError(t, json.Unmarshal([]byte(batchMsg(t, nc, "atom.one", "one", 1, true, "Nats-Expected-Last-Sequence", "5", "Nats-Batch-Commit", "1")), &ack))
	require.Equal(t, uint64(6), ack.Seq)
	require.Equal(t, 1, ack.Count)
	// At most 50 batches are staged per stream.
	for i := range 50 {
		require.Equal(t, "", batchMsg(t, nc, "atom.f", "inflight-"+strconv.Itoa(i), 1, true))
	}
	requireBatchError(t, batchMsg(t, nc, "atom.f", "inflight-50", 1, true), 10210, "atomic publish too many inflight")
}

// natscli's atomic batch benchmark publishes through Switchyard.
func TestAtomicBatchCLI(t *testing.T) {
	t.Parallel()
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	waitForAPI(t, js)
	cli := newNatsCLI(t, tg.urls[1])
	out := cli.run("bench", "js", "pub", "atomic", "atombench", "--create", "--msgs", "2000", "--batch", "100", "--no-progress")
	require.Contains(t, out, "msgs/sec", out)
	st, err := js.Stream(ctx(t), "benchstream")
	require.NoError(t, err)
	info, err := st.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(2000), info.State.Msgs)
	m, err := st.GetMsg(ctx(t), 100)
	require.NoError(t, err)
	require.Equal(t, "1", m.Header.Get("Nats-Batch-Commit"), "each 100th message commits its batch")
}

// A batch cut short by a crash while it was written (messages with its
// id but no commit at the end of the stream) is dropped when the stream
// opens; committed batches stay.
func TestAtomicBatchTornByCrash(t *testing.T) {
	t.Parallel()
	s := startSuite(t)
	nc, js := connect(t, s.fds[0])
	st := createStream(t, js, jetstream.StreamConfig{Name: "TORN", Subjects: []string{"torn.>"}, AllowAtomicPublish: true})
	waitForStream(t, js, "torn.probe")
	batchMsg(t, nc, "torn.a", "whole", 1, true)
	batchMsg(t, nc, "torn.b", "whole", 2, true, "Nats-Batch-Commit", "1")
	info, err := st.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(3), info.State.LastSeq)

	// What a crash in the middle of the next batch's write leaves.
	s.streamsvc.Stop()
	fs, err := store.OpenFile(store.FileConfig{Dir: filepath.Join(s.storeDir, "$G", "streams", "TORN", "msgs")})
	require.NoError(t, err)
	torn := []byte("NATS/1.0\r\nNats-Batch-Id: cut\r\nNats-Batch-Sequence: 1\r\n\r\n")
	require.NoError(t, fs.Append([]store.Msg{{Subject: "torn.c", Header: torn, Data: []byte("1")}, {Subject: "torn.d", Header: torn, Data: []byte("2")}}))
	require.NoError(t, fs.Close())

	s.startStreamsvc(t)
	eventually(t, func() bool {
		st, err = js.Stream(attempt(t), "TORN")
		return err == nil
	}, "the stream did not come back")
	info, err = st.Info(ctx(t))
	require.NoError(t, err)
	require.Equal(t, uint64(3), info.State.Msgs, "the torn batch was kept")
	m, err := st.GetMsg(ctx(t), 3)
	require.NoError(t, err)
	require.Equal(t, "torn.b", m.Subject, "the committed batch was lost")
}
