package test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

// JetStream resource limits: the server's jetstream { max_memory_store,
// max_file_store } and an account's jetstream { max_mem, max_file, ... }.
// Each test runs against nats-server too (STREAMSVC_REFERENCE).

// limitsAccount is an account of a limits test: its user and password are
// its name; js is its jetstream value ("enabled" or a block of limits).
type limitsAccount struct{ name, js string }

// limitsTarget is a suite (router, authsvc, a frontdoor, streamsvc) or
// nats-server, running one configuration.
type limitsTarget struct {
	url       string
	streamsvc *testkit.Process // nil against nats-server
	restart   func()           // restarts streamsvc (the suite only)
}

// accountsConf writes the accounts {} block; without limits every
// account's jetstream is "enabled" (authsvc and the frontdoors do not
// apply JetStream limits, so they are given the accounts without them).
func accountsConf(accounts []limitsAccount, limits bool) string {
	var b strings.Builder
	b.WriteString("accounts {\n")
	for _, a := range accounts {
		js := "enabled"
		if limits {
			js = a.js
		}
		fmt.Fprintf(&b, "\t%s: { users: [ { user: %s, password: %s } ], jetstream: %s }\n", a.name, a.name, a.name, js)
	}
	b.WriteString("}\n")
	return b.String()
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// startLimits runs the accounts with server, the body of the server's
// jetstream {} block.
func startLimits(t *testing.T, server string, accounts ...limitsAccount) *limitsTarget {
	t.Helper()
	dir := t.TempDir()
	conf := writeFile(t, dir, "js.conf", accountsConf(accounts, true)+"jetstream { "+server+" }\n")
	if bin := os.Getenv(referenceEnv); bin != "" {
		port := testkit.FreePort(t)
		p := testkit.Start(t, bin, "-c", conf, "-sd", filepath.Join(dir, "js"), "-a", "127.0.0.1", "-p", strconv.Itoa(port))
		p.Port = port
		testkit.WaitForINFO(t, p, wait)
		return &limitsTarget{url: p.URL()}
	}
	router := testkit.StartRouter(t, 0)
	auth := testkit.StartAuthsvc(t, writeFile(t, dir, "auth.conf", accountsConf(accounts, false)))
	fd := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{Config: fmt.Sprintf("routers: [%q]\nauthsvc: %q\n", router.Addr(), auth.Addr())})
	lt := &limitsTarget{url: fd.URL()}
	lt.restart = func() {
		if lt.streamsvc != nil {
			lt.streamsvc.Stop()
		}
		lt.streamsvc = testkit.StartStreamsvc(t, router.Addr(), filepath.Join(dir, "js"), "-c", conf)
	}
	lt.restart()
	return lt
}

// connect opens a connection as user and waits until the API answers.
func (lt *limitsTarget) connect(t *testing.T, user string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(lt.url, nats.UserInfo(user, user), nats.Timeout(wait))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	waitForAPI(t, js)
	return nc, js
}

func accountInfo(t *testing.T, js jetstream.JetStream) *jetstream.AccountInfo {
	t.Helper()
	info, err := js.AccountInfo(ctx(t))
	require.NoError(t, err)
	return info
}

func memStream(name string, maxBytes int64) jetstream.StreamConfig {
	return jetstream.StreamConfig{Name: name, Subjects: []string{strings.ToLower(name)}, Storage: jetstream.MemoryStorage, MaxBytes: maxBytes}
}

func fileStream(name string, maxBytes int64) jetstream.StreamConfig {
	return jetstream.StreamConfig{Name: name, Subjects: []string{strings.ToLower(name)}, Storage: jetstream.FileStorage, MaxBytes: maxBytes}
}

// $JS.API.INFO reports an account's limits under nats-server's JSON names
// (keys as the account's jetstream {} block spells them, which are not
// all the same), what its streams reserve with max_bytes, and how many API
// requests it made and how many were refused.
func TestLimitsAccountInfo(t *testing.T) {
	lt := startLimits(t, "max_memory_store: 1MB, max_file_store: 10MB",
		limitsAccount{"A", "{ max_mem: 100KB, max_file: 1MB, max_streams: 5, max_consumers: 3, max_ack_pending: 50, " +
			"mem_max_stream_bytes: 50KB, store_max_stream_bytes: 500KB, max_bytes_required: true }"},
		limitsAccount{"B", "enabled"})
	ncA, jsA := lt.connect(t, "A")
	_, jsB := lt.connect(t, "B")

	info := apiRequest(t, ncA, "$JS.API.INFO", "")
	require.Equal(t, map[string]any{"max_memory": float64(100 << 10), "max_storage": float64(1 << 20),
		"max_streams": float64(5), "max_consumers": float64(3), "max_ack_pending": float64(50),
		"memory_max_stream_bytes": float64(50 << 10), "storage_max_stream_bytes": float64(500 << 10),
		"max_bytes_required": true}, info["limits"])
	require.Equal(t, jetstream.AccountLimits{MaxMemory: -1, MaxStore: -1, MaxStreams: -1, MaxConsumers: -1,
		MaxAckPending: -1, MemoryMaxStreamBytes: -1, StoreMaxStreamBytes: -1}, accountInfo(t, jsB).Limits,
		"jetstream: enabled has no limits")

	before := accountInfo(t, jsA)
	_, err := jsA.CreateStream(ctx(t), memStream("MEM", 10<<10))
	require.NoError(t, err)
	_, err = jsA.CreateStream(ctx(t), fileStream("FILE", 200<<10))
	require.NoError(t, err)
	_, err = jsA.CreateStream(ctx(t), fileStream("UNBOUNDED", 0))
	requireAPIError(t, err, 400, 10113, "account requires a stream config to have max bytes set")
	_, err = jsA.Stream(ctx(t), "NONE")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
	after := accountInfo(t, jsA)
	require.Equal(t, uint64(10<<10), after.ReservedMemory)
	require.Equal(t, uint64(200<<10), after.ReservedStore)
	require.Equal(t, 2, after.Streams)
	require.Equal(t, before.API.Total+5, after.API.Total, "the first info request, four more and not yet the second")
	require.Equal(t, before.API.Errors+2, after.API.Errors, "max bytes required and stream not found")
	require.Equal(t, uint64(0), accountInfo(t, jsB).ReservedMemory, "B reserves nothing of A's")
}

// Streams reserve their max_bytes from the account's max_mem / max_file
// and from the server's max_memory_store / max_file_store; a stream
// without max_bytes reserves nothing but needs one byte free. The account
// also bounds its number of streams, each stream's max_bytes and
// max_consumers.
func TestLimitsStreamReservations(t *testing.T) {
	lt := startLimits(t, "max_memory_store: 2000, max_file_store: 10MB",
		limitsAccount{"A", "{ max_mem: 1000, max_file: 2MB, max_streams: 4, max_consumers: 2, mem_max_stream_bytes: 800 }"},
		limitsAccount{"B", "enabled"})
	_, jsA := lt.connect(t, "A")
	_, jsB := lt.connect(t, "B")
	create := func(js jetstream.JetStream, cfg jetstream.StreamConfig) error {
		_, err := js.CreateStream(ctx(t), cfg)
		return err
	}
	update := func(js jetstream.JetStream, cfg jetstream.StreamConfig) error {
		_, err := js.UpdateStream(ctx(t), cfg)
		return err
	}
	const noMemory, noStorage = "insufficient memory resources available", "insufficient storage resources available"

	const tooBig = "stream max bytes exceeds account limit max stream bytes"
	requireAPIError(t, create(jsA, memStream("M1", 801)), 400, 10122, tooBig)
	require.NoError(t, create(jsA, memStream("M1", 800)))
	requireAPIError(t, create(jsA, memStream("M2", 201)), 500, 10028, noMemory) // 800 + 201 > max_mem 1000
	require.NoError(t, create(jsA, memStream("M2", 200)))
	requireAPIError(t, create(jsA, memStream("M3", 0)), 500, 10028, noMemory) // no max_bytes needs a byte
	info := accountInfo(t, jsA)
	require.Equal(t, uint64(1000), info.ReservedMemory)
	require.Equal(t, 2, info.Streams, "refused streams are not created")

	// Updates reserve only what max_bytes grows by.
	require.NoError(t, update(jsA, memStream("M1", 700)))
	requireAPIError(t, update(jsA, memStream("M1", 801)), 400, 10122, tooBig)
	require.NoError(t, update(jsA, memStream("M1", 800)), "back to 800: 200 + 800 fits")
	requireAPIError(t, update(jsA, memStream("M2", 201)), 500, 10028, noMemory)

	requireAPIError(t, create(jsA, fileStream("F1", 2<<20+1)), 500, 10047, noStorage)
	require.NoError(t, create(jsA, fileStream("F1", 1<<20)))
	require.NoError(t, create(jsA, fileStream("F2", 0)))
	requireAPIError(t, update(jsA, fileStream("F1", 2<<20+1)), 500, 10047, noStorage)
	require.NoError(t, update(jsA, fileStream("F1", 2<<20-10)))
	require.Equal(t, uint64(2<<20-10), accountInfo(t, jsA).ReservedStore)

	// Four streams: a fifth is refused, the fourth created again is not.
	requireAPIError(t, create(jsA, fileStream("F3", 0)), 400, 10027, "maximum number of streams reached")
	require.NoError(t, create(jsA, fileStream("F2", 0)), "creating an existing stream again is no new stream")
	require.NoError(t, jsA.DeleteStream(ctx(t), "F2"))
	// A stream may not allow more consumers than its account.
	consumers := jetstream.StreamConfig{Name: "C", Subjects: []string{"c"}, MaxConsumers: 3, MaxBytes: 10}
	requireAPIError(t, create(jsA, consumers), 400, 10026, "maximum consumers limit reached")
	consumers.MaxConsumers, consumers.MaxBytes = 2, 11
	requireAPIError(t, create(jsA, consumers), 500, 10047, noStorage)
	consumers.MaxBytes = 10
	require.NoError(t, create(jsA, consumers), "the last 10 bytes of max_file")

	// B has no limits of its own, but the server's 2000 bytes of memory are
	// shared: A reserves 1000.
	requireAPIError(t, create(jsB, memStream("M", 1001)), 500, 10028, noMemory) // the server's max_memory_store
	require.NoError(t, create(jsB, memStream("M", 1000)))
	requireAPIError(t, create(jsB, memStream("N", 0)), 500, 10028, noMemory) // the server's memory is all reserved
	require.NoError(t, jsA.DeleteStream(ctx(t), "M2"))
	require.NoError(t, create(jsB, memStream("N", 0)), "A's deleted stream gave its reservation back")
	info = accountInfo(t, jsB)
	require.Equal(t, uint64(1000), info.ReservedMemory)
	require.Equal(t, uint64(0), info.ReservedStore)
}

// Publishing stops at the account's max_mem / max_file (10002) and, over
// all accounts, once the server's max_memory_store is passed (10023);
// purging, deleting messages or streams gives the room back.
func TestLimitsPublish(t *testing.T) {
	lt := startLimits(t, "max_memory_store: 2000",
		limitsAccount{"A", "{ max_mem: 1000, max_file: 10KB }"}, limitsAccount{"B", "enabled"})
	_, jsA := lt.connect(t, "A")
	_, jsB := lt.connect(t, "B")
	payload := []byte(strings.Repeat("x", 100)) // 117 bytes stored with the subject "m": 100 + 1 + 16
	publishUntilRefused := func(js jetstream.JetStream, subj string, want jetstream.ErrorCode) int {
		t.Helper()
		for n := 0; n < 100; n++ {
			if _, err := js.Publish(ctx(t), subj, payload); err != nil {
				var apiErr *jetstream.APIError
				require.True(t, errors.As(err, &apiErr), "publish %d: %v", n+1, err)
				require.Equal(t, want, apiErr.ErrorCode, "publish %d: %v", n+1, err)
				return n
			}
		}
		t.Fatalf("100 publishes to %s, none refused", subj)
		return 0
	}

	_, err := jsA.CreateStream(ctx(t), memStream("M", 0))
	require.NoError(t, err)
	require.Equal(t, 8, publishUntilRefused(jsA, "m", 10002), "8 × 117 = 936 bytes; a ninth would make 1053 > 1000")
	_, err = jsA.Publish(ctx(t), "m", payload)
	requireAPIError(t, err, 400, 10002, "resource limits exceeded for account") // still full
	require.Equal(t, uint64(936), accountInfo(t, jsA).Memory)

	st, err := jsA.Stream(ctx(t), "M")
	require.NoError(t, err)
	require.NoError(t, st.DeleteMsg(ctx(t), 1))
	_, err = jsA.Publish(ctx(t), "m", payload)
	require.NoError(t, err, "a deleted message gave its room back")
	require.NoError(t, st.Purge(ctx(t)))
	require.Equal(t, uint64(0), accountInfo(t, jsA).Memory)

	// Published at once (streamsvc stores them as a batch), still only 8.
	var futures []jetstream.PubAckFuture
	for range 20 {
		f, err := jsA.PublishAsync("m", payload)
		require.NoError(t, err)
		futures = append(futures, f)
	}
	select {
	case <-jsA.PublishAsyncComplete():
	case <-time.After(wait):
		t.Fatal("PubAcks did not all arrive")
	}
	stored := 0
	for _, f := range futures {
		select {
		case <-f.Ok():
			stored++
		case err := <-f.Err():
			requireAPIError(t, err, 400, 10002, "resource limits exceeded for account")
		}
	}
	require.Equal(t, 8, stored, "a purge gave the room back, and a batch counts its own messages")

	// B has no limits, but the server stops taking memory once the total
	// passed 2000 bytes: 936 of A's and ten of B's messages (2106).
	_, err = jsB.CreateStream(ctx(t), jetstream.StreamConfig{Name: "N", Subjects: []string{"m"}, Storage: jetstream.MemoryStorage})
	require.NoError(t, err)
	require.Equal(t, 10, publishUntilRefused(jsB, "m", 10023))
	_, err = jsB.Publish(ctx(t), "m", payload)
	requireAPIError(t, err, 503, 10023, "insufficient resources")
	require.NoError(t, jsA.DeleteStream(ctx(t), "M"))
	require.Equal(t, uint64(0), accountInfo(t, jsA).Memory, "a deleted stream's bytes are no longer counted")
	require.Equal(t, 8, publishUntilRefused(jsB, "m", 10023), "A's deleted stream gave the server room")

	// File storage counts record overhead differently on nats-server, so
	// only the account's limit is asserted, not the exact count.
	_, err = jsA.CreateStream(ctx(t), fileStream("F", 0))
	require.NoError(t, err)
	n := publishUntilRefused(jsA, "f", 10002)
	used := accountInfo(t, jsA).Store
	require.LessOrEqual(t, used, uint64(10<<10))
	require.Greater(t, used+150, uint64(10<<10), "refused only when the next message would not fit (%d stored)", n)
	if lt.restart == nil {
		return
	}
	lt.restart() // streamsvc counts what it recovers
	waitForAPI(t, jsA)
	require.Equal(t, used, accountInfo(t, jsA).Store)
	eventually(t, func() bool { // the stream's interest reaches the frontdoor again
		_, err = jsA.Publish(attempt(t), "f", payload)
		return !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, jetstream.ErrNoStreamResponse)
	})
	requireAPIError(t, err, 400, 10002, "resource limits exceeded for account") // still full after a restart
}

// max_consumers bounds each stream's consumers (the account's limit, or
// the stream's own when lower); max_ack_pending is the default and the
// most a consumer may ask for.
func TestLimitsConsumers(t *testing.T) {
	lt := startLimits(t, "", limitsAccount{"A", "{ max_consumers: 2, max_ack_pending: 5 }"})
	_, js := lt.connect(t, "A")
	for _, cfg := range []jetstream.StreamConfig{
		{Name: "S1", Subjects: []string{"s1"}}, {Name: "S2", Subjects: []string{"s2"}},
		{Name: "S3", Subjects: []string{"s3"}, MaxConsumers: 1},
	} {
		_, err := js.CreateStream(ctx(t), cfg)
		require.NoError(t, err)
	}
	add := func(stream, name string, maxAckPending int) (*jetstream.ConsumerInfo, error) {
		c, err := js.CreateConsumer(ctx(t), stream, jetstream.ConsumerConfig{Durable: name, MaxAckPending: maxAckPending})
		if err != nil {
			return nil, err
		}
		return c.CachedInfo(), nil
	}

	info, err := add("S1", "C1", 0)
	require.NoError(t, err)
	require.Equal(t, 5, info.Config.MaxAckPending, "the account's max_ack_pending is the default")
	_, err = add("S1", "C2", 6)
	requireAPIError(t, err, 400, 10121, "consumer max ack pending exceeds system limit of 5")
	info, err = add("S1", "C2", 3)
	require.NoError(t, err)
	require.Equal(t, 3, info.Config.MaxAckPending)
	_, err = add("S1", "C3", 0)
	requireAPIError(t, err, 400, 10026, "maximum consumers limit reached")
	_, err = add("S1", "C1", 0)
	require.NoError(t, err, "an existing consumer created again is no new consumer")

	// The limit is per stream.
	for _, name := range []string{"D1", "D2"} {
		_, err = add("S2", name, 0)
		require.NoError(t, err)
	}
	_, err = add("S2", "D3", 0)
	requireAPIError(t, err, 400, 10026, "maximum consumers limit reached")
	require.NoError(t, js.DeleteConsumer(ctx(t), "S2", "D1"))
	_, err = add("S2", "D3", 0)
	require.NoError(t, err, "a deleted consumer made room")

	_, err = add("S3", "E1", 0)
	require.NoError(t, err)
	_, err = add("S3", "E2", 0)
	requireAPIError(t, err, 400, 10026, "maximum consumers limit reached") // the stream's own max_consumers 1
	require.Equal(t, 5, accountInfo(t, js).Consumers)
}

// Accounts whose memory limits add up to more than the server's
// max_memory_store are refused at start, as nats-server refuses them.
func TestLimitsAccountsExceedServer(t *testing.T) {
	accounts := []limitsAccount{{"A", "{ max_mem: 1500 }"}, {"B", "{ max_mem: 1500 }"}}
	dir := t.TempDir()
	conf := writeFile(t, dir, "js.conf", accountsConf(accounts, true)+"jetstream { max_memory_store: 2000 }\n")
	var p *testkit.Process
	want := "the accounts' max_mem limits add up to 3000 bytes (A 1500, B 1500), more than the server's 2000"
	if bin := os.Getenv(referenceEnv); bin != "" {
		p = testkit.Start(t, bin, "-c", conf, "-sd", filepath.Join(dir, "js"), "-a", "127.0.0.1", "-p", strconv.Itoa(testkit.FreePort(t)))
		want = "insufficient memory resources available"
	} else {
		router := testkit.StartRouter(t, 0)
		p = testkit.Start(t, testkit.Binary(t, "streamsvc"), "-a", "127.0.0.1", "--routers", router.Addr(),
			"--store_dir", filepath.Join(dir, "js"), "-c", conf)
	}
	select {
	case <-p.Done():
	case <-time.After(wait):
		t.Fatalf("still running with accounts over the server's memory:\n%s", p.Log())
	}
	require.Contains(t, p.Log(), want)
}
