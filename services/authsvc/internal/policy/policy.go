// Package policy decides CONNECTs from an authorization {} configuration the
// way nats-server does: a token, one user/password, or a list of users with
// passwords (plain or bcrypt) or NKeys (nonce signature), each with optional
// permissions, and no_auth_user for clients without credentials.
package policy

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"

	"github.com/switchyard-io/switchyard/pkg/config"
	authv1 "github.com/switchyard-io/switchyard/proto/switchyard/auth/v1"
)

// DefaultAuthTimeout is nats-server's time to authenticate when the
// configuration gives none.
const DefaultAuthTimeout = 2 * time.Second

// Policy is a compiled authorization configuration. It is immutable; a
// reload builds a new one.
type Policy struct {
	required bool
	nonce    bool
	timeout  time.Duration
	token    string
	users    map[string]*user // by user name
	nkeys    map[string]*user // by public nkey
	noAuth   *user
	revision string
}

type user struct {
	name, password string
	nkey           string
	perms          *authv1.Permissions
}

// New compiles a. It fails when no_auth_user names nobody.
func New(a config.Auth) (*Policy, error) {
	p := &Policy{
		required: a.Set || a.NoAuthUser != "",
		timeout:  a.Timeout,
		token:    a.Token,
		users:    map[string]*user{},
		nkeys:    map[string]*user{},
	}
	if p.timeout <= 0 {
		p.timeout = DefaultAuthTimeout
	}
	def := permissions(a.Default)
	if a.User != "" {
		p.users[a.User] = &user{name: a.User, password: a.Pass, perms: def}
	}
	for _, u := range a.Users {
		perms := def
		if u.Permissions != nil {
			perms = permissions(u.Permissions)
		}
		if u.Nkey != "" {
			p.nkeys[u.Nkey] = &user{nkey: u.Nkey, perms: perms}
			p.nonce = true
		} else {
			p.users[u.User] = &user{name: u.User, password: u.Password, perms: perms}
		}
	}
	if a.NoAuthUser != "" {
		p.noAuth = p.users[a.NoAuthUser]
		if p.noAuth == nil {
			return nil, fmt.Errorf("no_auth_user %q (%s) is not a user of authorization { users }", a.NoAuthUser, a.NoAuthWhere)
		}
	}
	p.revision = revision(a)
	return p, nil
}

// revision fingerprints the configuration so frontdoors can tell a change.
func revision(a config.Auth) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%#v", a))
	return base64.RawURLEncoding.EncodeToString(h[:9])
}

func permissions(p *config.Permissions) *authv1.Permissions {
	if p == nil {
		return nil
	}
	out := &authv1.Permissions{}
	if p.Publish != nil {
		out.Publish = &authv1.SubjectPermission{Allow: p.Publish.Allow, Deny: p.Publish.Deny}
	}
	if p.Subscribe != nil {
		out.Subscribe = &authv1.SubjectPermission{Allow: p.Subscribe.Allow, Deny: p.Subscribe.Deny}
	}
	if p.Response != nil {
		out.Response = &authv1.ResponsePermission{MaxMsgs: int32(p.Response.MaxMsgs), ExpiresNanos: int64(p.Response.Expires)}
	}
	return out
}

// Info is what frontdoors announce.
func (p *Policy) Info() *authv1.PolicyResponse {
	return &authv1.PolicyResponse{AuthRequired: p.required, NonceRequired: p.nonce,
		AuthTimeoutNanos: int64(p.timeout), Revision: p.revision}
}

// Authenticate decides one CONNECT. A refusal's reason is for the
// operator's log and never contains a secret.
func (p *Policy) Authenticate(req *authv1.AuthenticateRequest) *authv1.AuthenticateResponse {
	c := req.GetCredentials()
	if c == nil {
		c = &authv1.Credentials{}
	}
	ok := func(u *user, identity string) *authv1.AuthenticateResponse {
		r := &authv1.AuthenticateResponse{Ok: true, Account: globalAccount, Identity: identity}
		if u != nil {
			r.Permissions = u.perms
		}
		return r
	}
	refuse := func(format string, a ...any) *authv1.AuthenticateResponse {
		return &authv1.AuthenticateResponse{Reason: fmt.Sprintf(format, a...)}
	}
	if !p.required {
		return ok(nil, "")
	}
	if c.User == "" && c.Pass == "" && c.AuthToken == "" && c.Nkey == "" && c.Jwt == "" && p.noAuth != nil {
		return ok(p.noAuth, p.noAuth.name)
	}
	switch {
	case c.Jwt != "":
		return refuse("a user JWT was presented, but no operator is configured")
	case p.token != "":
		if !secretMatches(p.token, c.AuthToken) {
			return refuse("wrong or missing token")
		}
		return ok(nil, "token")
	case c.Nkey != "":
		u := p.nkeys[c.Nkey]
		if u == nil {
			return refuse("nkey %s is not a configured user", c.Nkey)
		}
		if err := verifyNonce(c.Nkey, req.GetNonce(), c.Sig); err != nil {
			return refuse("nkey %s: %v", c.Nkey, err)
		}
		return ok(u, c.Nkey)
	case c.User != "":
		u := p.users[c.User]
		if u == nil {
			return refuse("user %q is not configured", c.User)
		}
		if !secretMatches(u.password, c.Pass) {
			return refuse("wrong password for user %q", c.User)
		}
		return ok(u, u.name)
	}
	return refuse("no credentials in CONNECT")
}

// globalAccount is where every user lives until accounts are supported.
const globalAccount = "$G"

// secretMatches compares a presented secret with a configured one, plain
// or bcrypt, in constant time for plain ones.
func secretMatches(configured, presented string) bool {
	if strings.HasPrefix(configured, "$2") {
		return bcrypt.CompareHashAndPassword([]byte(configured), []byte(presented)) == nil
	}
	return subtle.ConstantTimeCompare([]byte(configured), []byte(presented)) == 1
}

// verifyNonce checks that sig is nonce signed by the nkey's seed. Clients
// encode it base64url without padding; nats-server also accepts standard
// encoding.
func verifyNonce(pub, nonce, sig string) error {
	if nonce == "" {
		return fmt.Errorf("no nonce was sent to this client")
	}
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		raw, err = base64.StdEncoding.DecodeString(sig)
	}
	if err != nil {
		return fmt.Errorf("signature is not base64")
	}
	kp, err := nkeys.FromPublicKey(pub)
	if err != nil {
		return fmt.Errorf("not a valid public nkey")
	}
	if err := kp.Verify([]byte(nonce), raw); err != nil {
		return fmt.Errorf("signature does not verify")
	}
	return nil
}
