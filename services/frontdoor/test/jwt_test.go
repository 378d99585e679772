package test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

// A user connects with a .creds file exactly as a user of nsc would, on
// either frontdoor; accounts stay apart and the JWT's permissions hold.
func TestJWTCredsAcrossFrontdoors(t *testing.T) {
	env := testkit.NewOperator(t)
	a := env.Account("A", nil)
	b := env.Account("B", nil)
	s := startAuthSuite(t, env.MemoryConf(a, b), 2)
	credsA, _ := env.User(a, nil, nil)
	credsA2, _ := env.User(a, func(uc *jwt.UserClaims) { uc.Pub.Deny.Add("secret.>") }, nil)
	credsB, _ := env.User(b, nil, nil)

	pub := connect(t, s.fds[0], nats.UserCredentials(credsA2))
	subA := mustSyncSub(t, connect(t, s.fds[1], nats.UserCredentials(credsA)), ">")
	subB := mustSyncSub(t, connect(t, s.fds[1], nats.UserCredentials(credsB)), ">")
	awaitRoute(t, pub, "hello", subA)
	collect(subB)
	require.NoError(t, pub.Publish("orders.1", []byte("x")))
	flush(t, pub)
	require.Equal(t, []string{"orders.1=x"}, collect(subA))
	require.Empty(t, collect(subB), "account B sees nothing of A")

	errs := make(chan error, 1)
	denied := connect(t, s.fds[0], nats.UserCredentials(credsA2), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		errs <- err
	}))
	require.NoError(t, denied.Publish("secret.x", nil))
	select {
	case err := <-errs:
		require.Contains(t, err.Error(), `Permissions Violation for Publish to "secret.x"`)
	case <-time.After(waitLong):
		t.Fatal("no permissions violation for a subject the user JWT denies")
	}
}

// Bad credentials of every kind are refused with nats-server's error and
// nothing else happens: no panic, the next good client still connects.
func TestJWTRefusals(t *testing.T) {
	env := testkit.NewOperator(t)
	a := env.Account("A", nil)
	b := env.Account("B", nil)
	signing, _ := nkeys.CreateAccount()
	signingPub, _ := signing.PublicKey()
	a.Claims.SigningKeys.Add(signingPub)
	env.Resign(a)
	unknown := env.Account("Unknown", nil) // never preloaded
	otherOp, _ := nkeys.CreateOperator()
	rogue := env.Account("Rogue", nil)
	rogueToken, err := rogue.Claims.Encode(otherOp) // signed by an untrusted operator
	require.NoError(t, err)
	rogue.Token = rogueToken
	s := startAuthSuite(t, env.MemoryConf(a, b, rogue), 1)
	fd := s.fds[0]

	cases := map[string]string{}
	stranger, _ := nkeys.CreateAccount()
	cases["signed by a key that is not its account's"], _ = env.User(a, func(uc *jwt.UserClaims) { uc.IssuerAccount = a.Pub }, stranger)
	cases["issuer_account it does not belong to"], _ = env.User(a, func(uc *jwt.UserClaims) { uc.IssuerAccount = b.Pub }, signing)
	cases["issuer_account of $SYS without its key"], _ = env.User(env.Sys, func(uc *jwt.UserClaims) { uc.IssuerAccount = env.Sys.Pub }, signing)
	cases["expired"], _ = env.User(a, func(uc *jwt.UserClaims) { uc.Expires = time.Now().Add(-time.Minute).Unix() }, nil)
	cases["not yet valid"], _ = env.User(a, func(uc *jwt.UserClaims) { uc.NotBefore = time.Now().Add(time.Hour).Unix() }, nil)
	cases["unknown account"], _ = env.User(unknown, nil, nil)
	cases["account of an untrusted operator"], _ = env.User(rogue, nil, nil)
	for name, creds := range cases {
		t.Run(name, func(t *testing.T) { refused(t, fd, nats.UserCredentials(creds)) })
	}

	// A signing key with issuer_account set properly is accepted.
	good, _ := env.User(a, func(uc *jwt.UserClaims) { uc.IssuerAccount = a.Pub }, signing)
	connect(t, fd, nats.UserCredentials(good))

	// Malformed, truncated and wrongly signed JWTs and signatures, raw.
	creds, _ := env.User(a, nil, nil)
	raw, err := os.ReadFile(creds)
	require.NoError(t, err)
	userJWT, err := jwt.ParseDecoratedJWT(raw)
	require.NoError(t, err)
	otherUser, _ := nkeys.CreateUser()
	for name, connectLine := range map[string]string{
		"garbage JWT":     `{"jwt":"not-a-jwt","sig":"AAAA"}`,
		"truncated JWT":   fmt.Sprintf(`{"jwt":%q,"sig":"AAAA"}`, userJWT[:len(userJWT)/2]),
		"tampered JWT":    fmt.Sprintf(`{"jwt":%q,"sig":"AAAA"}`, userJWT[:len(userJWT)-3]+"abc"),
		"no signature":    fmt.Sprintf(`{"jwt":%q}`, userJWT),
		"wrong signature": "",
		"nkey only":       `{"nkey":"UABC","sig":"AAAA"}`,
		"nothing":         `{}`,
	} {
		t.Run(name, func(t *testing.T) {
			rc := testkit.DialRaw(t, fd.Addr())
			var info struct{ Nonce string }
			require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(strings.TrimSpace(rc.INFO), "INFO ")), &info))
			require.NotEmpty(t, info.Nonce, "operator mode sends a nonce")
			if connectLine == "" {
				sig, err := otherUser.Sign([]byte(info.Nonce))
				require.NoError(t, err)
				connectLine = fmt.Sprintf(`{"jwt":%q,"sig":%q}`, userJWT, base64.RawURLEncoding.EncodeToString(sig))
			}
			rc.Send("CONNECT " + connectLine + "\r\nPING\r\n")
			require.Equal(t, "-ERR 'Authorization Violation'\r\n", rc.ExpectClosed(waitLong))
		})
	}
	connect(t, fd, nats.UserCredentials(creds)) // still serving
}

// A bearer-token user needs no nonce signature.
func TestJWTBearerToken(t *testing.T) {
	env := testkit.NewOperator(t)
	a := env.Account("A", nil)
	s := startAuthSuite(t, env.MemoryConf(a), 1)
	creds, _ := env.User(a, func(uc *jwt.UserClaims) { uc.BearerToken = true }, nil)
	raw, err := os.ReadFile(creds)
	require.NoError(t, err)
	token, err := jwt.ParseDecoratedJWT(raw)
	require.NoError(t, err)
	rc := testkit.DialRaw(t, s.fds[0].Addr())
	rc.Send(fmt.Sprintf("CONNECT {\"jwt\":%q,\"verbose\":false}\r\nPING\r\n", token))
	rc.Expect("PONG\r\n")
}

// Credentials that expire while connected end the connection with
// nats-server's error.
func TestJWTExpiryDisconnects(t *testing.T) {
	env := testkit.NewOperator(t)
	a := env.Account("A", nil)
	s := startAuthSuite(t, env.MemoryConf(a), 1)
	creds, _ := env.User(a, func(uc *jwt.UserClaims) { uc.Expires = time.Now().Add(2 * time.Second).Unix() }, nil)
	errs := make(chan error, 4)
	nc := connect(t, s.fds[0], nats.UserCredentials(creds), nats.NoReconnect(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	require.True(t, nc.IsConnected())
	select {
	case err := <-errs:
		require.ErrorIs(t, err, nats.ErrAuthExpired, "nats.go's reading of -ERR 'User Authentication Expired'")
	case <-time.After(waitLong):
		t.Fatal("the connection outlived its credentials")
	}
}

// fullConf is an operator-mode configuration with a full resolver, which
// knows only the system account until others are pushed.
// claimsReply is nats-server's answer to a claims update.
type claimsReply struct {
	Data *struct {
		Account string `json:"account"`
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"data"`
	Error *struct {
		Account     string `json:"account"`
		Code        int    `json:"code"`
		Description string `json:"description"`
	} `json:"error"`
}

func push(t *testing.T, sys *nats.Conn, subj, token string) claimsReply {
	t.Helper()
	m, err := sys.Request(subj, []byte(token), waitLong)
	require.NoError(t, err)
	var r claimsReply
	require.NoError(t, json.Unmarshal(m.Data, &r), "reply %q", m.Data)
	return r
}

// The full resolver, as nsc push drives it: an account unknown until its
// JWT is pushed through the system account; looked up again; a user
// revoked by a pushed update is disconnected within seconds; the store
// survives an authsvc restart.
func TestJWTFullResolverDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "jwt")
	testFullResolver(t, fmt.Sprintf("dir: %q", dir), false, func() {
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Len(t, entries, 2, "the system account and the pushed one, one file each")
	})
}

// shared: the store is shared by authsvc replicas, so a second one
// (with its own frontdoor) learns of what was pushed through the first.
func testFullResolver(t *testing.T, store string, shared bool, checkStore func()) {
	env := testkit.NewOperator(t)
	a := env.Account("A", nil)
	s := startAuthSuite(t, env.FullConf(store), 2)
	sysCreds, _ := env.User(env.Sys, nil, nil)
	credsA, userA := env.User(a, nil, nil)
	refused(t, s.fds[0], nats.UserCredentials(credsA))

	sys := connect(t, s.fds[1], nats.UserCredentials(sysCreds))
	// A JWT that no trusted operator signed is refused.
	otherOp, _ := nkeys.CreateOperator()
	forged, err := a.Claims.Encode(otherOp)
	require.NoError(t, err)
	r := push(t, sys, "$SYS.REQ.CLAIMS.UPDATE", forged)
	require.NotNil(t, r.Error, "an untrusted account JWT is refused")
	require.Equal(t, 500, r.Error.Code)
	require.Contains(t, r.Error.Description, "not a trusted operator")
	// The real one is stored.
	r = push(t, sys, "$SYS.REQ.ACCOUNT."+a.Pub+".CLAIMS.UPDATE", a.Token)
	require.NotNil(t, r.Data, "%+v", r.Error)
	require.Equal(t, 200, r.Data.Code)
	require.Equal(t, a.Pub, r.Data.Account)
	require.Equal(t, "jwt updated", r.Data.Message)
	m, err := sys.Request("$SYS.REQ.ACCOUNT."+a.Pub+".CLAIMS.LOOKUP", nil, waitLong)
	require.NoError(t, err)
	require.Equal(t, a.Token, string(m.Data))
	if checkStore != nil {
		checkStore()
	}

	// Now A's users get in, on either frontdoor; the push went through
	// frontdoor 1 and authsvc tells frontdoor 0 on its policy stream.
	var nc *nats.Conn
	eventually(t, waitLong, func() error {
		var err error
		nc, err = nats.Connect(s.fds[0].URL(), nats.UserCredentials(credsA), nats.NoReconnect())
		return err
	})
	t.Cleanup(nc.Close)
	closed := make(chan error, 4)
	nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { closed <- err })
	revokedUsers := 1
	if shared {
		file := filepath.Join(t.TempDir(), "replica.conf")
		require.NoError(t, os.WriteFile(file, []byte(env.FullConf(store)), 0o600))
		replica := testkit.StartAuthsvc(t, file)
		fd := start(t, env.FullConf(store)+fmt.Sprintf("authsvc: %q\n", replica.Addr()))
		onReplica := connect(t, fd, nats.UserCredentials(credsA))
		onReplica.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { closed <- err })
		revokedUsers++
	}

	// An accounts' user that is not A cannot push A.
	credsA2, _ := env.User(a, nil, nil)
	other := connect(t, s.fds[1], nats.UserCredentials(credsA2))
	_, err = other.Request("$SYS.REQ.CLAIMS.UPDATE", []byte(a.Token), 500*time.Millisecond)
	require.ErrorIs(t, err, nats.ErrNoResponders, "only the system account reaches the resolver")

	// Revoke the connected user: pushed through frontdoor 1, the client on
	// frontdoor 0 is disconnected within seconds.
	a.Claims.Revoke(userA)
	a.Claims.IssuedAt = time.Now().Unix() + 1 // newer than the stored one
	env.Resign(a)
	r = push(t, sys, "$SYS.REQ.CLAIMS.UPDATE", a.Token)
	require.NotNil(t, r.Data, "%+v", r.Error)
	began := time.Now()
	for range revokedUsers {
		select {
		case err := <-closed:
			require.ErrorIs(t, err, nats.ErrAuthRevoked, "nats.go's reading of -ERR 'User Authentication Revoked'")
		case <-time.After(waitLong):
			t.Fatal("a revoked user stayed connected")
		}
	}
	require.Less(t, time.Since(began), 10*time.Second)
	t.Logf("revoked users disconnected %v after the push", time.Since(began))
	refused(t, s.fds[1], nats.UserCredentials(credsA))
	refused(t, s.fds[0], nats.UserCredentials(credsA))  // its decision cached there went with the revision
	connect(t, s.fds[1], nats.UserCredentials(credsA2)) // others of A stay welcome

	// The store survives authsvc: a new one, same configuration.
	s.authsvc.Stop()
	file := filepath.Join(t.TempDir(), "again.conf")
	require.NoError(t, os.WriteFile(file, []byte(env.FullConf(store)), 0o600))
	again := testkit.StartAuthsvc(t, file)
	fd := start(t, env.FullConf(store)+fmt.Sprintf("authsvc: %q\n", again.Addr()))
	connect(t, fd, nats.UserCredentials(credsA2))
}

// The same with the account JWTs in PostgreSQL (a throwaway server).
func TestJWTFullResolverPostgres(t *testing.T) {
	url := testkit.StartPostgres(t)
	testFullResolver(t, fmt.Sprintf("postgres: %q", url), true, nil)
}

// Exports and imports from account JWTs: a private service export reached
// through an activation token, answered across frontdoors; a public stream;
// an import without the token it needs is left out.
func TestJWTExportsAndImports(t *testing.T) {
	env := testkit.NewOperator(t)
	var a, b, c *testkit.IssuedAccount
	a = env.Account("A", func(ac *jwt.AccountClaims) {
		ac.Exports.Add(&jwt.Export{Subject: "svc.echo", Type: jwt.Service, TokenReq: true},
			&jwt.Export{Subject: "feed.>", Type: jwt.Stream})
	})
	b = env.Account("B", nil)
	c = env.Account("C", nil)
	act := jwt.NewActivationClaims(b.Pub)
	act.ImportSubject = "svc.echo"
	act.ImportType = jwt.Service
	token, err := act.Encode(a.KP)
	require.NoError(t, err)
	b.Claims.Imports.Add(
		&jwt.Import{Account: a.Pub, Subject: "svc.echo", LocalSubject: "echo", Type: jwt.Service, Token: token},
		&jwt.Import{Account: a.Pub, Subject: "feed.>", LocalSubject: "a.feed.>", Type: jwt.Stream})
	env.Resign(b)
	c.Claims.Imports.Add(&jwt.Import{Account: a.Pub, Subject: "svc.echo", Type: jwt.Service}) // no token
	env.Resign(c)
	s := startAuthSuite(t, env.MemoryConf(a, b, c), 2)
	credsA, _ := env.User(a, nil, nil)
	credsB, _ := env.User(b, nil, nil)
	credsC, _ := env.User(c, nil, nil)

	responder := connect(t, s.fds[0], nats.UserCredentials(credsA))
	_, err = responder.Subscribe("svc.echo", func(m *nats.Msg) { m.Respond(append([]byte("echo: "), m.Data...)) })
	require.NoError(t, err)
	flush(t, responder)
	req := connect(t, s.fds[1], nats.UserCredentials(credsB))
	var reply *nats.Msg
	eventually(t, waitLong, func() error {
		var err error
		reply, err = req.Request("echo", []byte("hi"), time.Second)
		return err
	})
	require.Equal(t, "echo: hi", string(reply.Data))

	feed := mustSyncSub(t, req, "a.feed.>")
	pubA := connect(t, s.fds[0], nats.UserCredentials(credsA))
	awaitRoute(t, pubA, "feed.probe", feed)
	require.NoError(t, pubA.Publish("feed.x", []byte("1")))
	require.Equal(t, "a.feed.x", nextMsgs(t, feed, 1)[0].Subject)

	cc := connect(t, s.fds[1], nats.UserCredentials(credsC))
	_, err = cc.Request("svc.echo", nil, 500*time.Millisecond)
	require.ErrorIs(t, err, nats.ErrNoResponders, "an import of a private export without its activation token is left out")
}

// A user JWT's limits: subscriptions per connection and payload size.
func TestJWTUserLimits(t *testing.T) {
	env := testkit.NewOperator(t)
	a := env.Account("A", func(ac *jwt.AccountClaims) { ac.Limits.Payload = 100 })
	s := startAuthSuite(t, env.MemoryConf(a), 1)
	creds, _ := env.User(a, func(uc *jwt.UserClaims) { uc.Limits.Subs = 2 }, nil)
	rc := dialCreds(t, s.fds[0].Addr(), creds)
	rc.Send(fmt.Sprintf("SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nPUB a 100\r\n%s\r\nPING\r\n", strings.Repeat("x", 100)))
	rc.Expect("-ERR 'maximum subscriptions exceeded'\r\nMSG a 1 100\r\n")
	rc.ReadLine(waitLong)
	rc.Expect("PONG\r\n")
	rc.Send("PUB a 101\r\n" + strings.Repeat("x", 101) + "\r\n")
	require.Equal(t, "-ERR 'Maximum Payload Violation'\r\n", rc.ExpectClosed(waitLong), "the account's payload limit")
}

// dialCreds opens a raw connection and sends CONNECT with the user JWT
// and nonce signature of a .creds file, as nats.go's UserCredentials does.
func dialCreds(t *testing.T, addr, creds string) *testkit.RawConn {
	t.Helper()
	return dialCredsSignedBy(t, addr, creds, nil)
}

// dialCredsSignedBy is dialCreds with the nonce signed by kp instead of
// the creds file's key (nil: that key).
func dialCredsSignedBy(t *testing.T, addr, creds string, kp nkeys.KeyPair) *testkit.RawConn {
	t.Helper()
	raw, err := os.ReadFile(creds)
	require.NoError(t, err)
	token, err := jwt.ParseDecoratedJWT(raw)
	require.NoError(t, err)
	if kp == nil {
		kp, err = jwt.ParseDecoratedNKey(raw)
		require.NoError(t, err)
	}
	rc := testkit.DialRaw(t, addr)
	var info struct{ Nonce string }
	require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(strings.TrimSpace(rc.INFO), "INFO ")), &info))
	sig, err := kp.Sign([]byte(info.Nonce))
	require.NoError(t, err)
	rc.Send(fmt.Sprintf("CONNECT {\"verbose\":false,\"jwt\":%q,\"sig\":%q}\r\n", token, base64.RawURLEncoding.EncodeToString(sig)))
	return rc
}

// An account JWT's subscription limit counts every connection of the
// account on a frontdoor (as each nats-server counts its own), and a
// subscription given up (or a connection closed) makes room again.
func TestJWTAccountSubscriptionLimit(t *testing.T) {
	env := testkit.NewOperator(t)
	a := env.Account("A", func(ac *jwt.AccountClaims) { ac.Limits.Subs = 3 })
	s := startAuthSuite(t, env.MemoryConf(a), 1)
	creds, _ := env.User(a, nil, nil)
	first := dialCreds(t, s.fds[0].Addr(), creds)
	first.Send("SUB a 1\r\nSUB b 2\r\nPING\r\n")
	first.Expect("PONG\r\n")
	second := dialCreds(t, s.fds[0].Addr(), creds)
	second.Send("SUB c 1\r\nSUB d 2\r\nPING\r\n")
	second.Expect("-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n")
	first.Send("UNSUB 1\r\nPING\r\n")
	first.Expect("PONG\r\n")
	second.Send("SUB d 2\r\nPING\r\n")
	second.Expect("PONG\r\n")
	second.Send("SUB e 3\r\nPING\r\n")
	second.Expect("-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n")
	first.Conn.Close()
	eventually(t, waitLong, func() error {
		second.Send("SUB e 3\r\nPING\r\n")
		if line := second.ReadLine(waitLong); line != "PONG\r\n" {
			second.ReadLine(waitLong) // the PONG after the error
			return fmt.Errorf("after the other connection closed: %q", line)
		}
		return nil
	})
	second.Send("PUB d 2\r\nhi\r\nPING\r\n")
	second.Expect("MSG d 2 2\r\nhi\r\nPONG\r\n")
}

// An account JWT's connection limit holds across frontdoors: the nodes
// share their counts in the system account, as nats-server's servers do.
func TestJWTAccountConnectionLimit(t *testing.T) {
	env := testkit.NewOperator(t)
	a := env.Account("A", func(ac *jwt.AccountClaims) { ac.Limits.Conn = 2 })
	s := startAuthSuite(t, env.MemoryConf(a), 2)
	creds, _ := env.User(a, nil, nil)
	first := connect(t, s.fds[0], nats.UserCredentials(creds))
	connect(t, s.fds[1], nats.UserCredentials(creds))
	eventually(t, waitLong, func() error {
		nc, err := nats.Connect(s.fds[0].URL(), nats.UserCredentials(creds), nats.NoReconnect())
		if err == nil {
			nc.Close()
			return fmt.Errorf("a third connection to a 2-connection account was accepted")
		}
		if !errors.Is(err, nats.ErrMaxAccountConnectionsExceeded) {
			return fmt.Errorf("refused with %v, want nats-server's maximum account active connections exceeded", err)
		}
		return nil
	})
	first.Close()
	eventually(t, waitLong, func() error {
		nc, err := nats.Connect(s.fds[1].URL(), nats.UserCredentials(creds), nats.NoReconnect())
		if err != nil {
			return err
		}
		t.Cleanup(nc.Close)
		return nil
	})
}

// A frontdoor reuses authsvc's decision for credentials it has seen under
// the same policy revision, checking the nonce signature itself: with
// authsvc gone, a user seen before still gets in (and a forged signature
// on its JWT does not), a user never seen does not. A user JWT limited by
// src to other addresses is refused.
func TestJWTDecisionCache(t *testing.T) {
	env := testkit.NewOperator(t)
	a := env.Account("A", nil)
	s := startAuthSuite(t, env.MemoryConf(a), 1)
	seen, _ := env.User(a, nil, nil)
	unseen, _ := env.User(a, nil, nil)
	elsewhere, _ := env.User(a, func(uc *jwt.UserClaims) { uc.Src = jwt.CIDRList{"10.0.0.0/8"} }, nil)
	refused(t, s.fds[0], nats.UserCredentials(elsewhere))
	connect(t, s.fds[0], nats.UserCredentials(seen)).Close()

	s.authsvc.Stop()
	nc := connect(t, s.fds[0], nats.UserCredentials(seen))
	sub, err := nc.SubscribeSync("cached.decision")
	require.NoError(t, err)
	require.NoError(t, nc.Publish("cached.decision", []byte("in")))
	nextMsgs(t, sub, 1)
	refused(t, s.fds[0], nats.UserCredentials(unseen))

	other, _ := nkeys.CreateUser()
	rc := dialCredsSignedBy(t, s.fds[0].Addr(), seen, other)
	rc.Send("PING\r\n")
	require.Equal(t, "-ERR 'Authorization Violation'\r\n", rc.ExpectClosed(waitLong), "the JWT of a cached user, signed by another key")
}
