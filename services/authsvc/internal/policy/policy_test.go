package policy

import (
	"encoding/base64"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/config"
	authv1 "github.com/switchyard-io/switchyard/proto/switchyard/auth/v1"
)

func mustPolicy(t *testing.T, conf string) *Policy {
	t.Helper()
	c, err := config.Parse(conf)
	require.NoError(t, err)
	p, err := New(c, nil)
	require.NoError(t, err)
	return p
}

func auth(p *Policy, nonce string, c *authv1.Credentials) *authv1.AuthenticateResponse {
	return p.Authenticate(&authv1.AuthenticateRequest{Nonce: nonce, Credentials: c})
}

func TestPolicyOpenWithoutAuthorization(t *testing.T) {
	p := mustPolicy(t, "")
	require.False(t, p.Info().AuthRequired)
	require.True(t, auth(p, "", nil).Ok)
}

func TestPolicyUsersAndPermissions(t *testing.T) {
	p := mustPolicy(t, `
		authorization {
			timeout: 1.5
			default_permissions: { publish: "pub.>" }
			users = [
				{ user: a, password: pa }
				{ user: b, password: pb, permissions: { subscribe: { allow: ["x.>"], deny: ["x.y"] }, allow_responses: { max: 3, expires: "1s" } } }
			]
		}
		no_auth_user: a
	`)
	info := p.Info()
	require.True(t, info.AuthRequired)
	require.False(t, info.NonceRequired)
	require.Equal(t, int64(1500*time.Millisecond), info.AuthTimeoutNanos)

	r := auth(p, "", &authv1.Credentials{User: "a", Pass: "pa"})
	require.True(t, r.Ok)
	require.Equal(t, "a", r.Identity)
	require.Equal(t, []string{"pub.>"}, r.Permissions.Publish.Allow, "default permissions")

	r = auth(p, "", &authv1.Credentials{User: "b", Pass: "pb"})
	require.Equal(t, []string{"x.y"}, r.Permissions.Subscribe.Deny)
	require.Nil(t, r.Permissions.Publish, "own permissions replace the defaults")
	require.Equal(t, int32(3), r.Permissions.Response.MaxMsgs)

	r = auth(p, "", &authv1.Credentials{User: "b", Pass: "pa"})
	require.False(t, r.Ok)
	require.Equal(t, `wrong password for user "b"`, r.Reason)
	require.NotContains(t, r.Reason, "pa\"", "no secret in the reason")

	r = auth(p, "", nil)
	require.True(t, r.Ok, "no credentials: no_auth_user")
	require.Equal(t, "a", r.Identity)
	require.False(t, auth(p, "", &authv1.Credentials{AuthToken: "x"}).Ok, "credentials given: no fallback to no_auth_user")
}

func TestPolicyNoAuthUserMustExist(t *testing.T) {
	c, err := config.Parse("authorization { users = [ { user: a, password: b } ] }\nno_auth_user: ghost\n")
	require.NoError(t, err)
	_, err = New(c, nil)
	require.ErrorContains(t, err, `no_auth_user "ghost"`)
}

func TestPolicyNkeyNonce(t *testing.T) {
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	pub, _ := kp.PublicKey()
	p := mustPolicy(t, `authorization { users = [ { nkey: "`+pub+`" } ] }`)
	require.True(t, p.Info().NonceRequired)
	sig, err := kp.Sign([]byte("nonce-1"))
	require.NoError(t, err)
	good := base64.RawURLEncoding.EncodeToString(sig)
	require.True(t, auth(p, "nonce-1", &authv1.Credentials{Nkey: pub, Sig: good}).Ok)
	require.True(t, auth(p, "nonce-1", &authv1.Credentials{Nkey: pub, Sig: base64.StdEncoding.EncodeToString(sig)}).Ok)
	require.False(t, auth(p, "nonce-2", &authv1.Credentials{Nkey: pub, Sig: good}).Ok, "a signature of another nonce")
	require.False(t, auth(p, "", &authv1.Credentials{Nkey: pub, Sig: good}).Ok, "no nonce sent")
	require.False(t, auth(p, "nonce-1", &authv1.Credentials{Nkey: pub, Sig: "!!!"}).Ok)
	require.False(t, auth(p, "nonce-1", &authv1.Credentials{Jwt: "eyJ..."}).Ok, "JWTs need an operator")
}

func TestPolicyBadConfigRefused(t *testing.T) {
	for conf, want := range map[string]string{
		`authorization { token: t, users = [ { user: a, password: b } ] }`:            "has a token and users",
		`authorization { users = [ { nkey: "UBAD" } ] }`:                              "is not a public user nkey",
		`authorization { users = [ { password: x } ] }`:                               "has neither user nor nkey",
		`authorization { users = [ { user: a, permissions: { publish: "a..b" } } ] }`: "is not a valid subject",
		`authorization { bogus: 1 }`:                                                  "is not supported in authorization",
	} {
		_, err := config.Parse(conf)
		require.ErrorContains(t, err, want, conf)
	}
}

func TestPolicyAccounts(t *testing.T) {
	p := mustPolicy(t, `
		authorization { users = [ { user: g, password: g } ] }
		accounts {
			A: {
				users: [ { user: a, password: a } ]
				default_permissions: { publish: "a.>" }
				exports: [ { service: "svc.>", response_type: stream, response_threshold: "3s" }, { stream: "feed.>" } ]
				mappings { "x": "y" }
			}
			B: {
				users: [ { user: b, password: b, permissions: { publish: "b" } } ]
				imports: [ { service: { account: A, subject: "svc.time" }, to: "time" }, { stream: { account: A, subject: "feed.>" } } ]
			}
		}
		no_auth_user: b
	`)
	require.True(t, p.Info().AuthRequired)
	r := auth(p, "", &authv1.Credentials{User: "a", Pass: "a"})
	require.True(t, r.Ok)
	require.Equal(t, "A", r.Account)
	require.Equal(t, []string{"a.>"}, r.Permissions.Publish.Allow, "the account's default_permissions")
	r = auth(p, "", &authv1.Credentials{User: "g", Pass: "g"})
	require.Equal(t, "$G", r.Account)
	r = auth(p, "", nil)
	require.True(t, r.Ok)
	require.Equal(t, "B", r.Account, "no_auth_user lands in its account")
	require.Equal(t, []string{"b"}, r.Permissions.Publish.Allow)
	require.False(t, auth(p, "", &authv1.Credentials{User: "a", Pass: "b"}).Ok)

	b, _, _ := p.Account("B")
	require.Len(t, b.Imports, 2)
	require.Equal(t, "Stream", b.Imports[0].ResponseType, "the exporter's response type is copied in")
	require.Equal(t, int64(3*time.Second), b.Imports[0].ResponseThresholdNanos)
	require.Equal(t, "time", b.Imports[0].To)
	require.Empty(t, b.Imports[1].ResponseType)
	a, _, _ := p.Account("A")
	require.Equal(t, "y", a.Mappings[0].Destinations[0].Subject)
	g, _, _ := p.Account("$G")
	require.NotNil(t, g)
	c, _, _ := p.Account("C")
	require.Nil(t, c)

	// Accounts with users require authentication even without authorization {}.
	require.True(t, mustPolicy(t, `accounts { A: { users: [ {user: a, password: a} ] } }`).Info().AuthRequired)
}

// The examples in deploy/examples/auth load, and those without external
// files compile into a policy.
func TestPolicyDeployExamples(t *testing.T) {
	files, err := filepath.Glob("../../../../deploy/examples/auth/*.conf")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		c, err := config.Load(f)
		require.NoError(t, err, f)
		if len(c.Operators) > 0 {
			require.NotEmpty(t, c.Resolver.Type, f)
			continue // they name an operator file the user provides
		}
		_, err = New(c, nil)
		require.NoError(t, err, f)
	}
}

func TestPolicyRecheck(t *testing.T) {
	p := mustPolicy(t, `
		authorization { users = [ { user: a, password: x, permissions: { publish: "p" } } ] }
		accounts { B: { users: [ { user: b, password: x } ] } }
	`)
	v := p.Recheck([]*authv1.Connection{
		{Cid: 1, Account: "$G", Identity: "a"},
		{Cid: 2, Account: "$G", Identity: "b"},   // moved
		{Cid: 3, Account: "$G", Identity: "zed"}, // gone
		{Cid: 4, Account: "$G"},                  // connected while open
		{Cid: 5, Account: "$G", Identity: "token"},
	})
	require.Len(t, v, 5)
	require.True(t, v[0].Keep)
	require.Equal(t, []string{"p"}, v[0].Permissions.Publish.Allow)
	require.False(t, v[1].Keep)
	require.Contains(t, v[1].Reason, "moved from account $G to B")
	require.False(t, v[2].Keep)
	require.Contains(t, v[2].Reason, `"zed" no longer exists`)
	require.False(t, v[3].Keep)
	require.False(t, v[4].Keep)
	require.True(t, mustPolicy(t, "").Recheck([]*authv1.Connection{{Cid: 1}})[0].Keep, "open: everyone stays")
}
