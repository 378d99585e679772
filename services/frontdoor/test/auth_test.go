package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

// authSuite is authsvc, a router and frontdoors sharing one nats-server
// format configuration file, as an operator would run them.
type authSuite struct {
	authsvc *testkit.Process
	fds     []*testkit.Process
	file    string // authsvc's configuration file
}

func startAuthSuite(t *testing.T, conf string, frontdoors int) *authSuite {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "auth.conf")
	require.NoError(t, os.WriteFile(file, []byte(conf), 0o600))
	s := &authSuite{authsvc: testkit.StartAuthsvc(t, file), file: file}
	var routers string
	if frontdoors > 1 {
		routers = fmt.Sprintf("routers: [%q]\n", testkit.StartRouter(t, 0).Addr())
	}
	for i := 0; i < frontdoors; i++ {
		s.fds = append(s.fds, start(t, conf+"\n"+routers+fmt.Sprintf("authsvc: %q\n", s.authsvc.Addr())))
	}
	return s
}

// refused connects with opts and expects nats-server's refusal.
func refused(t *testing.T, fd *testkit.Process, opts ...nats.Option) {
	t.Helper()
	nc, err := nats.Connect(fd.URL(), append(opts, nats.NoReconnect(), nats.Timeout(5*time.Second))...)
	if err == nil {
		nc.Close()
		t.Fatalf("connected to %s with wrong credentials", fd.URL())
	}
	require.Contains(t, strings.ToLower(err.Error()), "authorization violation")
}

func TestAuthToken(t *testing.T) {
	s := startAuthSuite(t, `authorization { token: "s3cret-token" }`, 2)
	a, b := s.fds[0], s.fds[1]
	refused(t, a)
	refused(t, a, nats.Token("wrong"))
	pub := connect(t, a, nats.Token("s3cret-token"))
	subc := connect(t, b, nats.Token("s3cret-token"))
	sub := mustSyncSub(t, subc, "tok.x")
	awaitRoute(t, pub, "tok.x", sub)
	require.NoError(t, pub.Publish("tok.x", []byte("across")))
	require.Equal(t, "across", string(nextMsgs(t, sub, 1)[0].Data), "authenticated clients work across frontdoors")

	rc := testkit.DialRaw(t, a.Addr())
	require.Contains(t, rc.INFO, `"auth_required":true`)
}

func TestAuthUsersPlainAndBcrypt(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("bob-pass"), bcrypt.MinCost)
	require.NoError(t, err)
	s := startAuthSuite(t, fmt.Sprintf(`authorization { users = [
		{ user: alice, password: "alice-pass" }
		{ user: bob, password: %q }
	] }`, hash), 1)
	fd := s.fds[0]
	connect(t, fd, nats.UserInfo("alice", "alice-pass"))
	connect(t, fd, nats.UserInfo("bob", "bob-pass"))
	refused(t, fd, nats.UserInfo("alice", "bob-pass"))
	refused(t, fd, nats.UserInfo("bob", string(hash)), nats.Name("the hash is not the password"))
	refused(t, fd, nats.UserInfo("carol", "alice-pass"))
	refused(t, fd)

	// Secrets never reach a log.
	time.Sleep(100 * time.Millisecond)
	for _, p := range []*testkit.Process{fd, s.authsvc} {
		for _, secret := range []string{"alice-pass", "bob-pass"} {
			require.NotContains(t, p.Log(), secret)
		}
	}
	require.Contains(t, s.authsvc.Log(), `wrong password for user "alice"`, "the operator learns why")
}

func TestAuthNkey(t *testing.T) {
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	pub, err := kp.PublicKey()
	require.NoError(t, err)
	other, err := nkeys.CreateUser()
	require.NoError(t, err)
	s := startAuthSuite(t, fmt.Sprintf(`authorization { users = [ { nkey: %q } ] }`, pub), 1)
	fd := s.fds[0]

	rc := testkit.DialRaw(t, fd.Addr())
	require.Contains(t, rc.INFO, `"nonce":"`, "NKey users need a nonce to sign")
	connect(t, fd, nats.Nkey(pub, kp.Sign))
	refused(t, fd, nats.Nkey(pub, other.Sign)) // claims the key, cannot sign for it
	otherPub, _ := other.PublicKey()
	refused(t, fd, nats.Nkey(otherPub, other.Sign)) // not a configured user
}

func TestAuthPermissions(t *testing.T) {
	s := startAuthSuite(t, `authorization { users = [
		{ user: alice, password: pw, permissions: {
			publish: { allow: ["pub.>"], deny: ["pub.secret"] }
			subscribe: { allow: ["sub.>", "_INBOX.>"], deny: ["sub.secret.>"] }
		} }
		{ user: admin, password: pw }
	] }`, 2)
	a, b := s.fds[0], s.fds[1]

	// nats-server's exact errors; the connection stays open.
	rc := testkit.DialRaw(t, a.Addr())
	rc.Send("CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"pw\"}\r\nPUB pub.secret 2\r\nhi\r\nSUB other 1\r\nSUB other q 2\r\nSUB sub.secret.x 4\r\nPING\r\n")
	rc.Expect("-ERR 'Permissions Violation for Publish to \"pub.secret\"'\r\n" +
		"-ERR 'Permissions Violation for Subscription to \"other\"'\r\n" +
		"-ERR 'Permissions Violation for Subscription to \"other\" using queue \"q\"'\r\n" +
		"-ERR 'Permissions Violation for Subscription to \"sub.secret.x\"'\r\n" +
		"PONG\r\n")

	// A wildcard subscription overlapping a deny rule is allowed and gets
	// nothing denied, whichever frontdoor the publisher is on.
	alice := connect(t, a, nats.UserInfo("alice", "pw"))
	wild := mustSyncSub(t, alice, "sub.>")
	admin := connect(t, b, nats.UserInfo("admin", "pw"))
	awaitRoute(t, admin, "sub.probe", wild)
	for _, subj := range []string{"sub.a", "sub.secret.x", "sub.b", "sub.secret.y.z", "sub.c"} {
		require.NoError(t, admin.Publish(subj, []byte(subj)))
	}
	flush(t, admin)
	for i, m := range nextMsgs(t, wild, 3) {
		require.Equal(t, []string{"sub.a", "sub.b", "sub.c"}[i], m.Subject)
	}
	expectNoMsg(t, wild)

	// A refused publish is dropped; an allowed one is delivered.
	adminSub := mustSyncSub(t, connect(t, a, nats.UserInfo("admin", "pw")), "pub.>")
	require.NoError(t, alice.Publish("pub.secret", []byte("no")))
	require.NoError(t, alice.Publish("pub.ok", []byte("yes")))
	flush(t, alice)
	require.Equal(t, "pub.ok", nextMsgs(t, adminSub, 1)[0].Subject)
	expectNoMsg(t, adminSub)
}

func TestAuthAllowResponses(t *testing.T) {
	s := startAuthSuite(t, `authorization { users = [
		{ user: svc, password: pw, permissions: { publish: { deny: [">"] }, subscribe: "svc.>", allow_responses: true } }
		{ user: client, password: pw }
	] }`, 2)
	svc := connect(t, s.fds[0], nats.UserInfo("svc", "pw"))
	sub := mustSyncSub(t, svc, "svc.echo")
	client := connect(t, s.fds[1], nats.UserInfo("client", "pw"))
	awaitRoute(t, client, "svc.echo", sub)

	reply := nats.NewInbox()
	replies := mustSyncSub(t, client, reply)
	awaitRoute(t, connect(t, s.fds[0], nats.UserInfo("client", "pw")), reply, replies)
	require.NoError(t, client.PublishRequest("svc.echo", reply, []byte("q")))
	flush(t, client)
	req := nextMsgs(t, sub, 1)[0]
	require.NoError(t, svc.Publish(req.Reply, []byte("first")))
	require.NoError(t, svc.Publish(req.Reply, []byte("second: over max 1")))
	flush(t, svc)
	require.Equal(t, "first", string(nextMsgs(t, replies, 1)[0].Data))
	expectNoMsg(t, replies)
}

func TestAuthRefusesBeforeConnectAndTimesOut(t *testing.T) {
	s := startAuthSuite(t, `authorization { timeout: 0.5, token: "t" }`, 1)
	for _, op := range []string{"PING\r\n", "SUB foo 1\r\n", "PUB foo 1\r\nx\r\n"} {
		rc := testkit.DialRaw(t, s.fds[0].Addr())
		rc.Send(op)
		require.Equal(t, "-ERR 'Authorization Violation'\r\n", rc.ExpectClosed(5*time.Second), "after %q", op)
	}
	rc := testkit.DialRaw(t, s.fds[0].Addr())
	began := time.Now()
	require.Equal(t, "-ERR 'Authentication Timeout'\r\n", rc.ExpectClosed(5*time.Second))
	require.Less(t, time.Since(began), 3*time.Second)
}

func TestAuthNoAuthUser(t *testing.T) {
	s := startAuthSuite(t, `
		authorization { users = [
			{ user: guest, password: pw, permissions: { publish: "public.>", subscribe: "public.>" } }
			{ user: admin, password: pw }
		] }
		no_auth_user: guest
	`, 1)
	fd := s.fds[0]
	rc := testkit.DialRaw(t, fd.Addr())
	rc.Send("CONNECT {\"verbose\":false}\r\nPUB private.x 1\r\nx\r\nPING\r\n")
	rc.Expect("-ERR 'Permissions Violation for Publish to \"private.x\"'\r\nPONG\r\n")
	connect(t, fd, nats.UserInfo("admin", "pw"))
	refused(t, fd, nats.UserInfo("admin", "wrong"))
}

// A frontdoor never serves open when its file asks for authorization but
// no authsvc is configured; with authsvc unreachable it refuses clients.
func TestAuthFailsClosed(t *testing.T) {
	conf := `authorization { token: "t" }`
	dir := t.TempDir()
	file := filepath.Join(dir, "fd.conf")
	require.NoError(t, os.WriteFile(file, []byte(conf), 0o600))
	p := testkit.Start(t, testkit.Binary(t, "frontdoor"), "-c", file, "-p", "-1")
	require.True(t, p.Wait(10*time.Second), "the frontdoor must refuse to start")
	require.Contains(t, p.Log(), "enforced by authsvc")

	dead := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	fd := start(t, conf+fmt.Sprintf("\nauthsvc: %q\n", dead))
	refused(t, fd, nats.Token("t"))
	eventually(t, waitLong, func() error {
		if !strings.Contains(fd.Log(), "did not answer") {
			return fmt.Errorf("no log line saying authsvc did not answer:\n%s", fd.Log())
		}
		return nil
	})
}

// Passwords, tokens and nonce signatures never reach a log or a monitoring
// page, even with tracing on and with refused attempts.
func TestAuthSecretsNeverShown(t *testing.T) {
	const secret = "pw-S3CRET-7d1f"
	s := startAuthSuite(t, `trace: true
debug: true
authorization { users = [ { user: alice, password: "`+secret+`" } ] }`, 1)
	fd := s.fds[0]
	nc := connect(t, fd, nats.UserInfo("alice", secret), nats.Name("secretive"))
	refused(t, fd, nats.UserInfo("alice", secret+"-wrong"))
	refused(t, fd, nats.Token(secret))
	flush(t, nc)
	for _, path := range []string{"/connz?auth=true&subs=detail", "/connz?state=any&auth=true", "/varz", "/subsz?subs=1"} {
		body := getBody(t, fd, path)
		require.NotContains(t, body, secret, "GET %s", path)
	}
	require.Contains(t, getBody(t, fd, "/connz?auth=true"), `"authorized_user": "alice"`)
	require.Contains(t, fd.Log(), "[REDACTED]", "the traced CONNECT is shown, redacted")
	require.NotContains(t, fd.Log(), secret)
	require.NotContains(t, s.authsvc.Log(), secret)
}

// A queue subscription overlapping a deny rule gets nothing denied either.
func TestAuthQueueSubscriptionOverlappingDeny(t *testing.T) {
	s := startAuthSuite(t, `authorization { users = [
		{ user: worker, password: pw, permissions: { subscribe: { allow: ["jobs.>"], deny: ["jobs.secret.>"] } } }
		{ user: admin, password: pw }
	] }`, 2)
	w1 := connect(t, s.fds[0], nats.UserInfo("worker", "pw"))
	w2 := connect(t, s.fds[1], nats.UserInfo("worker", "pw"))
	q1, err := w1.QueueSubscribeSync("jobs.>", "workers")
	require.NoError(t, err)
	q2, err := w2.QueueSubscribeSync("jobs.>", "workers")
	require.NoError(t, err)
	flush(t, w1, w2)
	admin := connect(t, s.fds[0], nats.UserInfo("admin", "pw"))
	eventually(t, waitLong, func() error {
		require.NoError(t, admin.Publish("jobs.probe", nil))
		flush(t, admin)
		if n1, _, _ := q1.Pending(); n1 > 0 {
			return nil
		}
		if n2, _, _ := q2.Pending(); n2 > 0 {
			return nil
		}
		return fmt.Errorf("no probe yet")
	})
	time.Sleep(quietTime)
	for _, q := range []*nats.Subscription{q1, q2} {
		for {
			if _, err := q.NextMsg(50 * time.Millisecond); err != nil {
				break
			}
		}
	}
	for i := 0; i < 20; i++ {
		require.NoError(t, admin.Publish("jobs.secret.x", nil))
		require.NoError(t, admin.Publish("jobs.ok", nil))
	}
	flush(t, admin)
	time.Sleep(quietTime)
	total := 0
	for _, q := range []*nats.Subscription{q1, q2} {
		for {
			m, err := q.NextMsg(50 * time.Millisecond)
			if err != nil {
				break
			}
			require.Equal(t, "jobs.ok", m.Subject, "a denied subject reached a queue member")
			total++
		}
	}
	require.Equal(t, 20, total, "each allowed message to exactly one member")
}

// A reload of authsvc's file (SIGHUP) keeps the clients it still permits,
// with their permissions now, and closes the others, as nats-server does.
func TestAuthReloadRechecksConnectedClients(t *testing.T) {
	s := startAuthSuite(t, `authorization { users = [
		{ user: alice, password: pw, permissions: { publish: "a.>", subscribe: ["x.>", "y.>"] } }
		{ user: bob, password: pw }
	] }`, 2)
	errs := make(chan error, 8)
	onErr := nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err })
	alice := connect(t, s.fds[0], nats.UserInfo("alice", "pw"), onErr)
	bobClosed := make(chan error, 1)
	bob := connect(t, s.fds[1], nats.UserInfo("bob", "pw"), nats.NoReconnect(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { bobClosed <- err }))
	xs := mustSyncSub(t, alice, "x.>")
	ys := mustSyncSub(t, alice, "y.>")

	require.NoError(t, os.WriteFile(s.file, []byte(`authorization { users = [
		{ user: alice, password: pw, permissions: { publish: ["b.>", "x.>", "y.>"], subscribe: "y.>" } }
	] }`), 0o600))
	require.NoError(t, s.authsvc.Signal(syscall.SIGHUP))

	select {
	case err := <-bobClosed:
		require.ErrorIs(t, err, nats.ErrAuthorization, "a removed user is closed")
	case <-time.After(waitLong):
		t.Fatal("a user removed by the reload stayed connected")
	}
	eventually(t, waitLong, func() error {
		if bob.IsConnected() {
			return fmt.Errorf("bob still connected after the -ERR")
		}
		return nil
	})
	select {
	case err := <-errs:
		require.Contains(t, err.Error(), `Permissions Violation for Subscription to "x.>"`)
	case <-time.After(waitLong):
		t.Fatal("the subscription the new permissions deny was kept")
	}
	require.True(t, alice.IsConnected(), "a user the reload still permits stays")
	require.NoError(t, alice.Publish("a.1", nil))
	select {
	case err := <-errs:
		require.Contains(t, err.Error(), `Permissions Violation for Publish to "a.1"`)
	case <-time.After(waitLong):
		t.Fatal("the old publish permission still applies")
	}
	require.NoError(t, alice.Publish("b.1", nil))
	flush(t, alice)
	select {
	case err := <-errs:
		t.Fatalf("an allowed publish was refused: %v", err)
	default:
	}
	// y.> is still allowed and still delivered; x.> is gone.
	require.NoError(t, alice.Publish("x.1", nil))
	require.NoError(t, alice.Publish("y.1", nil))
	flush(t, alice)
	require.Equal(t, "y.1", nextMsgs(t, ys, 1)[0].Subject)
	expectNoMsg(t, xs)
}

// authsvc replicas are interchangeable: a frontdoor given two keeps
// authenticating clients when one dies.
func TestAuthReplicas(t *testing.T) {
	conf := `authorization { users = [ { user: alice, password: pw } ] }`
	file := filepath.Join(t.TempDir(), "auth.conf")
	require.NoError(t, os.WriteFile(file, []byte(conf), 0o600))
	r1, r2 := testkit.StartAuthsvc(t, file), testkit.StartAuthsvc(t, file)
	fd := start(t, conf+fmt.Sprintf("\nauthsvc: \"%s,%s\"\n", r1.Addr(), r2.Addr()))
	for i := 0; i < 5; i++ {
		connect(t, fd, nats.UserInfo("alice", "pw")).Close()
	}
	r1.Stop()
	for i := 0; i < 10; i++ {
		nc, err := nats.Connect(fd.URL(), nats.UserInfo("alice", "pw"), nats.NoReconnect())
		require.NoError(t, err, "connect %d after one replica died", i)
		nc.Close()
	}
	refused(t, fd, nats.UserInfo("alice", "wrong"))
}
