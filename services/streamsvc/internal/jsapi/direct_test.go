package jsapi

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/services/streamsvc/internal/store"
)

// directStream is a stream with only what directGet reads: its name and
// a memory store holding a.1 a.2 b.1 a.1 b.1 (sequences 1-5), stored
// one second apart from base.
func directStream(t *testing.T, base time.Time) *stream {
	t.Helper()
	st := store.NewMemory()
	for i, subj := range []string{"a.1", "a.2", "b.1", "a.1", "b.1"} {
		require.NoError(t, st.Append([]store.Msg{{Subject: subj, Data: []byte(fmt.Sprint(i + 1)),
			Time: base.Add(time.Duration(i) * time.Second).UnixNano()}}))
	}
	return &stream{cfg: StreamConfig{Name: "D"}, store: st}
}

// summary is each reply as status|Nats-Sequence|Nats-Num-Pending|data.
func summary(replies []directMsg) []string {
	var out []string
	for _, r := range replies {
		status := ""
		if line, _, _ := strings.Cut(string(r.hdr), "\r\n"); strings.HasPrefix(line, "NATS/1.0 ") {
			status = strings.TrimPrefix(line, "NATS/1.0 ")
		}
		out = append(out, status+"|"+header(r.hdr, "Nats-Sequence")+"|"+header(r.hdr, "Nats-Num-Pending")+"|"+string(r.data))
	}
	return out
}

func TestDirectGet(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := directStream(t, base)
	for _, c := range []struct {
		subj, body string
		want       []string
	}{
		{"$JS.API.DIRECT.GET.D", `{"seq":2}`, []string{"|2||2"}},
		{"$JS.API.DIRECT.GET.D.a.1", ``, []string{"|4||4"}},
		{"$JS.API.DIRECT.GET.D", `{"last_by_subj":"a.*"}`, []string{"|4||4"}},
		{"$JS.API.DIRECT.GET.D", `{"next_by_subj":"b.1","seq":4}`, []string{"|5||5"}},
		{"$JS.API.DIRECT.GET.D", `{"start_time":"` + base.Add(1500*time.Millisecond).Format(time.RFC3339Nano) + `"}`, []string{"|3||3"}},
		{"$JS.API.DIRECT.GET.D", `{"next_by_subj":"a.>","batch":5}`, []string{"|1|2|1", "|2|1|2", "|4|0|4", "204 EOB||0|"}},
		{"$JS.API.DIRECT.GET.D", `{"seq":2,"batch":9,"max_bytes":3}`, []string{"|2|3|2", "204 EOB||3|"}},
		{"$JS.API.DIRECT.GET.D", `{"multi_last":["a.*","b.1"]}`, []string{"|2|2|2", "|4|1|4", "|5|0|5", "204 EOB||0|"}},
		{"$JS.API.DIRECT.GET.D", `{"multi_last":[">"],"up_to_seq":3}`, []string{"|1|2|1", "|2|1|2", "|3|0|3", "204 EOB||0|"}},
		{"$JS.API.DIRECT.GET.D", `{"multi_last":[">"],"batch":1}`, []string{"|2|2|2", "204 EOB||2|"}},
		{"$JS.API.DIRECT.GET.D", `{"multi_last":[">"],"seq":4}`, []string{"|4|1|4", "|5|0|5", "204 EOB||0|"}},
		{"$JS.API.DIRECT.GET.D", `{"multi_last":[">"],"seq":9}`, []string{"204 EOB||0|"}},
		{"$JS.API.DIRECT.GET.D", `{"multi_last":["c"]}`, []string{"404 No Results|||"}},
		{"$JS.API.DIRECT.GET.D", `{"seq":6}`, []string{"404 Message Not Found|||"}},
		{"$JS.API.DIRECT.GET.D", `{"last_by_subj":"a.1","batch":2}`, []string{"408 Bad Request|||"}},
		{"$JS.API.DIRECT.GET.D", `{"next_by_subj":"a.1","multi_last":["a.1"]}`, []string{"408 Bad Request|||"}},
		{"$JS.API.DIRECT.GET.D", `{"no_hdr":true}`, []string{"408 Empty Request|||"}},
		{"$JS.API.DIRECT.GET.D", `[`, []string{"408 Malformed Request|||"}},
		{"$JS.API.DIRECT.GET.D.a.1", `[`, []string{"408 Malformed Request|||"}},
		{"$JS.API.DIRECT.GET.D.a.1", `{"batch":2}`, []string{"408 Bad Request|||"}},
	} {
		require.Equal(t, c.want, summary(s.directGet(c.subj, []byte(c.body))), "%s %s", c.subj, c.body)
	}
}

// The reply's headers: the stored ones first, then where it is stored,
// in nats-server's order and time format.
func TestDirectGetHeaders(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	s := directStream(t, base)
	require.NoError(t, s.store.Append([]store.Msg{{Subject: "h", Header: []byte("NATS/1.0\r\nOwn: x\r\n\r\n"), Time: base.UnixNano()}}))
	got := s.directGet("$JS.API.DIRECT.GET.D", []byte(`{"seq":6}`))
	require.Equal(t, "NATS/1.0\r\nOwn: x\r\nNats-Stream: D\r\nNats-Subject: h\r\nNats-Sequence: 6\r\nNats-Time-Stamp: 2026-01-02T03:04:05.0000006Z\r\n\r\n", string(got[0].hdr))
	got = s.directGet("$JS.API.DIRECT.GET.D", []byte(`{"seq":1,"no_hdr":true}`))
	require.Nil(t, got[0].hdr)
	require.Equal(t, "1", string(got[0].data))
}
