package test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

func TestHeadersRoundTrip(t *testing.T) {
	p := start(t, "")
	sub := connect(t, p)
	pub := connect(t, p)
	require.True(t, pub.HeadersSupported(), "INFO headers:true")

	s, err := sub.SubscribeSync("hdr.>")
	require.NoError(t, err)
	flush(t, sub)

	msg := nats.NewMsg("hdr.one")
	msg.Header.Set("X-Single", "v1")
	msg.Header.Add("X-Multi", "a")
	msg.Header.Add("X-Multi", "b")
	msg.Header.Set("X-Empty-Body", "yes")
	msg.Data = []byte("body")
	require.NoError(t, pub.PublishMsg(msg))

	// Header without body, and a header on a message with a reply.
	only := nats.NewMsg("hdr.two")
	only.Header.Set("Only", "header")
	only.Reply = "hdr.reply"
	require.NoError(t, pub.PublishMsg(only))
	flush(t, pub)

	ms := nextMsgs(t, s, 2)
	require.Equal(t, "hdr.one", ms[0].Subject)
	require.Equal(t, "body", string(ms[0].Data))
	require.Equal(t, "v1", ms[0].Header.Get("X-Single"))
	require.Equal(t, []string{"a", "b"}, ms[0].Header.Values("X-Multi"))
	require.Equal(t, "yes", ms[0].Header.Get("X-Empty-Body"))

	require.Equal(t, "hdr.two", ms[1].Subject)
	require.Empty(t, ms[1].Data)
	require.Equal(t, "header", ms[1].Header.Get("Only"))
	require.Equal(t, "hdr.reply", ms[1].Reply)
}

func TestHeadersRequestReply(t *testing.T) {
	p := start(t, "")
	resp := connect(t, p)
	_, err := resp.Subscribe("hdr.svc", func(m *nats.Msg) {
		out := nats.NewMsg(m.Reply)
		out.Header.Set("Echo", m.Header.Get("Ask"))
		out.Data = []byte("done")
		m.RespondMsg(out)
	})
	require.NoError(t, err)
	flush(t, resp)

	nc := connect(t, p)
	req := nats.NewMsg("hdr.svc")
	req.Header.Set("Ask", "value 42")
	m, err := nc.RequestMsg(req, waitLong)
	require.NoError(t, err)
	require.Equal(t, "value 42", m.Header.Get("Echo"))
	require.Equal(t, "done", string(m.Data))
}

func TestHeadersLargeHeaderBlock(t *testing.T) {
	p := start(t, "")
	sub := connect(t, p)
	pub := connect(t, p)
	s, err := sub.SubscribeSync("hdr.big")
	require.NoError(t, err)
	flush(t, sub)

	msg := nats.NewMsg("hdr.big")
	big := string(payload(60<<10, 3))
	msg.Header.Set("Big", big)
	msg.Data = payload(100<<10, 4)
	require.NoError(t, pub.PublishMsg(msg))
	flush(t, pub)
	m := nextMsgs(t, s, 1)[0]
	require.Equal(t, big, m.Header.Get("Big"))
	require.Equal(t, payload(100<<10, 4), m.Data)
}

func TestHeadersStrippedForClientsWithoutHeaders(t *testing.T) {
	// A subscriber that did not ask for headers gets the payload only,
	// as a plain MSG.
	p := start(t, "")
	rc := testkit.DialRaw(t, p.Addr())
	rc.Send("CONNECT {\"verbose\":false,\"headers\":false}\r\nSUB hdr.plain 1\r\nPING\r\n")
	rc.Expect("PONG\r\n")

	pub := connect(t, p)
	msg := nats.NewMsg("hdr.plain")
	msg.Header.Set("X-A", "1")
	msg.Data = []byte("hello")
	require.NoError(t, pub.PublishMsg(msg))
	flush(t, pub)

	rc.Expect("MSG hdr.plain 1 5\r\nhello\r\n")
}

func TestHeadersHPUBRefusedWithoutHeaders(t *testing.T) {
	// nats-server closes, without -ERR, a client that sends HPUB after
	// declaring it does not do headers (NATS-FACTS.md).
	p := start(t, "")
	rc := testkit.DialRaw(t, p.Addr())
	rc.Send("CONNECT {\"verbose\":false,\"headers\":false}\r\nHPUB x 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
	require.Empty(t, rc.ExpectClosed(5*time.Second))
}
