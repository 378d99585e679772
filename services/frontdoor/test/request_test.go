package test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

// serveEcho answers every request on subj with "re:" + the request.
func serveEcho(t *testing.T, p *testkit.Process, subj string) {
	t.Helper()
	nc := connect(t, p)
	_, err := nc.Subscribe(subj, func(m *nats.Msg) {
		m.Respond(append([]byte("re:"), m.Data...))
	})
	require.NoError(t, err)
	flush(t, nc)
}

func TestRequestReply(t *testing.T) {
	p := start(t, "")
	serveEcho(t, p, "echo.svc")
	nc := connect(t, p)

	m, err := nc.Request("echo.svc", []byte("ping"), waitLong)
	require.NoError(t, err)
	require.Equal(t, "re:ping", string(m.Data))

	// Concurrent requests share one response subscription in nats.go; each
	// must get its own answer.
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := fmt.Sprint("q", i)
			m, err := nc.Request("echo.svc", []byte(q), waitLong)
			switch {
			case err != nil:
				errs <- fmt.Errorf("request %d: %w", i, err)
			case string(m.Data) != "re:"+q:
				errs <- fmt.Errorf("request %d answered %q", i, m.Data)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRequestOldStyle(t *testing.T) {
	p := start(t, "")
	serveEcho(t, p, "old.svc")
	nc := connect(t, p, nats.UseOldRequestStyle())

	for i := range 20 {
		q := fmt.Sprint("old", i)
		m, err := nc.Request("old.svc", []byte(q), waitLong)
		require.NoError(t, err)
		require.Equal(t, "re:"+q, string(m.Data))
	}
	// Old-style requests subscribe to a fresh inbox with a max of one
	// message each: none of them may stay behind on the server.
	cid, err := nc.GetClientID()
	require.NoError(t, err)
	eventually(t, waitLong, func() error {
		ci, ok := findConn(getConnz(t, p, "?subs=1"), cid)
		if !ok || ci.NumSubs != 0 {
			return fmt.Errorf("old-style requester (cid %d, listed %v) has subscriptions %v", cid, ok, ci.Subs)
		}
		return nil
	})
}

func TestRequestNoResponders(t *testing.T) {
	p := start(t, "")
	for _, style := range []struct {
		name string
		opts []nats.Option
	}{{"new", nil}, {"old", []nats.Option{nats.UseOldRequestStyle()}}} {
		t.Run(style.name, func(t *testing.T) {
			nc := connect(t, p, style.opts...)
			began := time.Now()
			_, err := nc.Request("nobody.home", []byte("?"), waitLong)
			require.ErrorIs(t, err, nats.ErrNoResponders)
			// "Promptly": the server answers at once instead of letting
			// the request time out; a second is far more than a round trip.
			require.Less(t, time.Since(began), time.Second)
		})
	}
}

func TestRequestNoRespondersRaw(t *testing.T) {
	// The exact 503 nats-server sends (see NATS-FACTS.md).
	p := start(t, "")
	rc := testkit.DialRaw(t, p.Addr())
	rc.Send("CONNECT {\"verbose\":false,\"headers\":true,\"no_responders\":true}\r\nSUB _INBOX.x 7\r\nPUB nobody.here _INBOX.x 2\r\nhi\r\nPING\r\n")
	want := "HMSG _INBOX.x 7 43 43\r\nNATS/1.0 503\r\nNats-Subject: nobody.here\r\n\r\n\r\nPONG\r\n"
	rc.Expect(want)

	// Without headers, no_responders is refused.
	rc = testkit.DialRaw(t, p.Addr())
	rc.Send("CONNECT {\"verbose\":false,\"no_responders\":true}\r\n")
	require.Equal(t, "-ERR 'no responders requires headers support'\r\n", rc.ExpectClosed(5*time.Second))
}

func TestRequestWithResponderThatIsSilent(t *testing.T) {
	// A subscriber that does not answer is still interest: the request
	// times out instead of failing with no responders.
	p := start(t, "")
	silent := connect(t, p)
	_, err := silent.SubscribeSync("silent.svc")
	require.NoError(t, err)
	flush(t, silent)

	nc := connect(t, p)
	_, err = nc.Request("silent.svc", nil, 300*time.Millisecond)
	require.ErrorIs(t, err, nats.ErrTimeout)
}

func TestRequestResponderOnQueueGroupAndWildcard(t *testing.T) {
	p := start(t, "")
	resp := connect(t, p)
	_, err := resp.QueueSubscribe("calc.*", "calc", func(m *nats.Msg) {
		m.Respond([]byte(m.Subject))
	})
	require.NoError(t, err)
	flush(t, resp)

	nc := connect(t, p)
	m, err := nc.Request("calc.add", nil, waitLong)
	require.NoError(t, err)
	require.Equal(t, "calc.add", string(m.Data))
}
