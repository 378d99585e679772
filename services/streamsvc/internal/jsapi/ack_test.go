package jsapi

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAckStreamSeq(t *testing.T) {
	for subj, want := range map[string]uint64{
		"$JS.ACK.ORDERS.worker.1.42.7.1700000000000000000.3": 42,
		"$JS.ACK.S.C.2.1.1.1.0":                              1,
	} {
		if got, ok := ackStreamSeq(subj); !ok || got != want {
			t.Errorf("%s: %d %v, want %d", subj, got, ok, want)
		}
	}
	for _, bad := range []string{"", "$JS.ACK.S.C.1.x.1.1.0", "$JS.ACK.S.C.1.2.3.4", "$JS.ACK.S.C.1.2.3.4.5.6", "$JS.ACK.S.C.1..1.1.0"} {
		if _, ok := ackStreamSeq(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParsePullRequest(t *testing.T) {
	for body, want := range map[string]int{"": 1, "5": 5, `{"batch":10,"expires":1000000000}`: 10, `{"no_wait":true}`: 1} {
		r, err := parsePullRequest([]byte(body))
		if err != nil || r.batch != want {
			t.Errorf("%q: batch %d err %v, want %d", body, r.batch, err, want)
		}
	}
	for _, bad := range []string{"x", `{"batch":`} {
		if _, err := parsePullRequest([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestHeader(t *testing.T) {
	hdr := []byte("NATS/1.0\r\nNats-Msg-Id: abc\r\nnats-expected-stream:  S \r\n\r\n")
	if got := header(hdr, "Nats-Msg-Id"); got != "abc" {
		t.Errorf("Nats-Msg-Id = %q", got)
	}
	if got := header(hdr, "Nats-Expected-Stream"); got != "S" {
		t.Errorf("case-insensitive key: %q", got)
	}
	if got := header(hdr, "Missing"); got != "" {
		t.Errorf("missing: %q", got)
	}
	if got := string(addHeader(nil, "K", "v")); got != "NATS/1.0\r\nK: v\r\n\r\n" {
		t.Errorf("addHeader(nil) = %q", got)
	}
	if got := string(addHeader(hdr, "K", "v")); got != string(hdr[:len(hdr)-2])+"K: v\r\n\r\n" {
		t.Errorf("addHeader = %q", got)
	}
}

// A hand-written PubAck is what json.Marshal writes, with or without a
// domain; an error PubAck names the stream as nats-server's does.
func TestPubAckBytes(t *testing.T) {
	for _, domain := range []string{"", "hub"} {
		want, err := json.Marshal(PubAck{Stream: `S"1`, Seq: 1234567, Domain: domain})
		require.NoError(t, err)
		require.Equal(t, string(want), string(newPubAcks(`S"1`, domain).ack(1234567)))
	}
	require.Equal(t, `{"error":{"code":400,"err_code":10060,"description":"expected stream does not match"},"stream":"S","seq":0}`,
		string(pubAckError("S", errExpectedStream)))
}
