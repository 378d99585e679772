// Package policy decides CONNECTs from an authorization {} and accounts {}
// configuration the way nats-server does: a token, one user/password, or
// users with passwords (plain or bcrypt) or NKeys (nonce signature), each
// with optional permissions and in one account, and no_auth_user for
// clients without credentials. It also tells frontdoors how each account
// routes (imports, mappings).
package policy

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/switchyard-io/switchyard/pkg/config"
	"github.com/switchyard-io/switchyard/pkg/nonce"
	"github.com/switchyard-io/switchyard/pkg/subject"
	authv1 "github.com/switchyard-io/switchyard/proto/switchyard/auth/v1"
	"github.com/switchyard-io/switchyard/services/authsvc/internal/resolver"
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
	accounts map[string]*authv1.AccountConfig
	op       *operatorMode // operator (JWT) mode; nil otherwise
	system   string        // the system account
	certMap  bool          // tls { verify_and_map }: the client certificate names the user
	ws       wsAuth        // websocket {}'s override for WebSocket clients
}

// wsAuth is websocket {}'s authentication for WebSocket clients, in force
// when override is set: its no_auth_user, or its one user or token (only
// without users lists), as nats-server has it.
type wsAuth struct {
	override          bool
	noAuth            *user
	user, pass, token string
	timeout           time.Duration
}

type user struct {
	single         bool // authorization { user, password }, not a users list
	name, password string
	nkey           string
	account        string
	perms          *authv1.Permissions
}

// New compiles the authorization, no_auth_user and accounts of c, or its
// operators (JWT mode, with store as the account resolver). It fails when
// no_auth_user names nobody or an operator JWT cannot be read.
func New(c *config.Server, store resolver.Store) (*Policy, error) {
	a := c.Auth
	p := &Policy{
		required: a.Set || a.NoAuthUser != "",
		timeout:  a.Timeout,
		token:    a.Token,
		users:    map[string]*user{},
		nkeys:    map[string]*user{},
		accounts: map[string]*authv1.AccountConfig{config.GlobalAccount: {Name: config.GlobalAccount}},
	}
	if p.timeout <= 0 {
		p.timeout = DefaultAuthTimeout
	}
	if a.User != "" {
		p.users[a.User] = &user{single: true, name: a.User, password: a.Pass, account: config.GlobalAccount, perms: permissions(a.Default)}
	}
	p.addUsers(config.GlobalAccount, a.Users, a.Default)
	exports := map[string][]config.Export{}
	for _, acc := range c.Accounts {
		p.addUsers(acc.Name, acc.Users, acc.Default)
		if len(acc.Users) > 0 {
			p.required = true
		}
		exports[acc.Name] = acc.Exports
	}
	p.system = c.SystemAccount
	if p.system == "" {
		p.system = config.SystemAccount
	}
	if _, ok := p.accounts[p.system]; !ok {
		p.accounts[p.system] = &authv1.AccountConfig{Name: p.system} // nats-server always has one
	}
	for _, acc := range c.Accounts {
		p.accounts[acc.Name] = accountConfig(acc, exports)
	}
	if c.TLS != nil && c.TLS.VerifyAndMap {
		p.certMap, p.required = true, true
	}
	if len(c.Operators) > 0 {
		if store == nil {
			return nil, fmt.Errorf("operator mode needs a resolver")
		}
		op, err := loadOperators(c, store)
		if err != nil {
			return nil, err
		}
		p.op, p.required, p.nonce = op, true, true
		p.system = op.system
	}
	if a.NoAuthUser != "" {
		p.noAuth = p.users[a.NoAuthUser]
		if p.noAuth == nil {
			return nil, fmt.Errorf("no_auth_user %q (%s) is not a user with a password in authorization {} or accounts {}", a.NoAuthUser, a.NoAuthWhere)
		}
	}
	if w := c.WebSocket; w.AuthOverride() {
		p.ws = wsAuth{override: true, user: w.User, pass: w.Pass, token: w.Token, timeout: w.AuthTimeout}
		if p.ws.timeout <= 0 {
			p.ws.timeout = p.timeout
		}
		if w.NoAuthUser != "" {
			if p.ws.noAuth = p.users[w.NoAuthUser]; p.ws.noAuth == nil || p.ws.noAuth.single {
				return nil, fmt.Errorf("websocket {} no_auth_user %q is not a user with a password in authorization { users } or accounts {}", w.NoAuthUser)
			}
		}
	}
	p.revision = revision(c)
	return p, nil
}

func (p *Policy) addUsers(account string, users []config.User, def *config.Permissions) {
	for _, u := range users {
		perms := u.Permissions
		if perms == nil {
			perms = def
		}
		if u.Nkey != "" {
			p.nkeys[u.Nkey] = &user{nkey: u.Nkey, account: account, perms: permissions(perms)}
			p.nonce = true
		} else {
			p.users[u.User] = &user{name: u.User, password: u.Password, account: account, perms: permissions(perms)}
		}
	}
}

// accountConfig is what frontdoors need of an account: its mappings, and
// its imports with the exporter's response settings (config.Load already
// checked that each import is allowed).
func accountConfig(acc config.Account, exports map[string][]config.Export) *authv1.AccountConfig {
	out := &authv1.AccountConfig{Name: acc.Name}
	for _, m := range acc.Mappings {
		pm := &authv1.Mapping{Source: m.Source}
		for _, d := range m.Destinations {
			pm.Destinations = append(pm.Destinations, &authv1.Destination{Subject: d.Subject, Weight: int32(d.Weight)})
		}
		out.Mappings = append(out.Mappings, pm)
	}
	for _, im := range acc.Imports {
		pi := &authv1.Import{Service: im.Service, Account: im.Account, Subject: im.Subject, To: im.To}
		for _, x := range exports[im.Account] {
			if x.Service && im.Service && subject.Covers(x.Subject, im.Subject) {
				pi.ResponseType, pi.ResponseThresholdNanos = x.ResponseType, int64(x.ResponseThreshold)
				break
			}
		}
		out.Imports = append(out.Imports, pi)
	}
	return out
}

// revision fingerprints the configuration so frontdoors can tell a change.
func revision(c *config.Server) string {
	var ws config.WebSocket // its authentication only: the rest is not authsvc's
	if w := c.WebSocket; w.AuthOverride() {
		ws = config.WebSocket{NoAuthUser: w.NoAuthUser, User: w.User, Pass: w.Pass, Token: w.Token, AuthTimeout: w.AuthTimeout}
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%#v %#v %q %q %#v %#v", c.Auth, c.Accounts, c.SystemAccount, c.Operators, c.Resolver, ws))
	return base64.RawURLEncoding.EncodeToString(h[:9])
}

// Account returns how an account routes, or nil when it does not exist.
// skipped lists JWT imports left out because they do not check out.
func (p *Policy) Account(name string) (acc *authv1.AccountConfig, skipped []string, err error) {
	if p.op != nil {
		return p.op.accountConfig(name)
	}
	return p.accounts[name], nil, nil
}

// JetStreamAccounts lists, in operator mode, the accounts whose JWT grants
// JetStream, with the revision the list belongs to; outside operator mode
// streamsvc reads the accounts' jetstream settings from its own
// configuration file, and the list is empty. skipped names accounts left
// out because their JWT does not verify.
func (p *Policy) JetStreamAccounts() (resp *authv1.JetStreamAccountsResponse, skipped []string, err error) {
	resp = &authv1.JetStreamAccountsResponse{Revision: p.Info().Revision}
	if p.op != nil {
		resp.Accounts, resp.Without, skipped, err = p.op.jetStreamAccounts()
	}
	return resp, skipped, err
}

// Recheck decides again about connections authenticated under an earlier
// policy: a user that still exists in the same account keeps its
// connection, with the permissions it has now; anyone else is closed.
// Secrets are not kept, so a token or password that changed is not
// noticed (nats-server would close such clients too).
func (p *Policy) Recheck(conns []*authv1.Connection) []*authv1.Verdict {
	out := make([]*authv1.Verdict, 0, len(conns))
	for _, c := range conns {
		v := &authv1.Verdict{Cid: c.Cid}
		var u *user
		// A WebSocket client under websocket {}'s override: its token or
		// user stand in for the client port's.
		ws := c.ConnectionType == connTypeWebSocket && p.ws.override
		token := p.token
		if ws {
			token = p.ws.token
		}
		switch {
		case p.op != nil:
			// JWT users: revocations and expiry are enforced per account.
			v.Keep, v.SamePermissions = c.UserKey != "", true
			if !v.Keep {
				v.Reason = "the suite is now in operator (JWT) mode"
			}
		case !p.required && !ws:
			v.Keep = true
		case c.Identity == "":
			v.Reason = "authentication is now required"
		case c.Identity == "token":
			v.Keep = token != ""
			if !v.Keep {
				v.Reason = "token authentication was removed"
			}
		case ws && p.ws.user != "" && c.Identity == p.ws.user && p.users[c.Identity] == nil:
			v.Keep = true
		default:
			if u = p.users[c.Identity]; u == nil {
				u = p.nkeys[c.Identity]
			}
			switch {
			case u == nil:
				v.Reason = fmt.Sprintf("user %q no longer exists", c.Identity)
			case u.account != c.Account:
				v.Reason = fmt.Sprintf("user %q moved from account %s to %s", c.Identity, c.Account, u.account)
			default:
				v.Keep, v.Permissions = true, u.perms
			}
		}
		out = append(out, v)
	}
	return out
}

// Claims stores or looks up an account JWT ($SYS.REQ.CLAIMS.*).
func (p *Policy) Claims(req *authv1.ClaimsRequest) *authv1.ClaimsResponse {
	if p.op == nil {
		return &authv1.ClaimsResponse{Code: 400, Account: req.Account, Message: "this suite is not in operator (JWT) mode"}
	}
	switch req.Op {
	case authv1.ClaimsRequest_OP_LOOKUP:
		token, ok, err := p.op.store.Get(req.Account)
		if err != nil {
			return &authv1.ClaimsResponse{Code: 500, Account: req.Account, Message: err.Error()}
		}
		if !ok {
			return &authv1.ClaimsResponse{Code: 404, Account: req.Account, Message: "account not found"}
		}
		return &authv1.ClaimsResponse{Code: 200, Account: req.Account, Jwt: token}
	case authv1.ClaimsRequest_OP_UPDATE:
		key, err := p.op.update(req.Account, strings.TrimSpace(req.Jwt))
		if err != nil {
			return &authv1.ClaimsResponse{Code: 500, Account: key, Message: "jwt update resulted in error - " + err.Error()}
		}
		return &authv1.ClaimsResponse{Code: 200, Account: key, Message: "jwt updated"}
	}
	return &authv1.ClaimsResponse{Code: 400, Account: req.Account, Message: "unknown claims operation"}
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

// Info is what frontdoors announce. In operator mode the revision also
// changes when the resolver stores a pushed account JWT (a store that
// cannot be read keeps the revision it had).
func (p *Policy) Info() *authv1.PolicyResponse {
	rev := p.revision
	if p.op != nil {
		if gen, err := p.op.store.Generation(); err == nil {
			p.op.gen.Store(gen)
		}
		rev = fmt.Sprintf("%s.%d", rev, p.op.gen.Load())
	}
	r := &authv1.PolicyResponse{AuthRequired: p.required, NonceRequired: p.nonce,
		AuthTimeoutNanos: int64(p.timeout), Revision: rev, SystemAccount: p.system,
		WsAuthRequired: p.required, WsAuthTimeoutNanos: int64(p.timeout)}
	if p.ws.override {
		r.WsAuthRequired, r.WsAuthTimeoutNanos = true, int64(p.ws.timeout)
	}
	return r
}

// Authenticate decides one CONNECT. A refusal's reason is for the
// operator's log and never contains a secret.
func (p *Policy) Authenticate(req *authv1.AuthenticateRequest) *authv1.AuthenticateResponse {
	c := req.GetCredentials()
	if c == nil {
		c = &authv1.Credentials{}
	}
	ok := func(u *user, identity string) *authv1.AuthenticateResponse {
		r := &authv1.AuthenticateResponse{Ok: true, Account: config.GlobalAccount, Identity: identity, Cacheable: true}
		if u != nil {
			r.Account, r.Permissions = u.account, u.perms
		}
		return r
	}
	refuse := func(format string, a ...any) *authv1.AuthenticateResponse {
		return &authv1.AuthenticateResponse{Reason: fmt.Sprintf(format, a...)}
	}
	if req.GetClient().GetConnectionType() == connTypeWebSocket && p.ws.override {
		return p.authenticateWS(req, c, ok, refuse)
	}
	if !p.required {
		return ok(nil, "")
	}
	if p.certMap && p.op == nil {
		// The certificate names the user; what CONNECT says is not used.
		ids := req.GetClient().GetCertIdentities()
		for _, id := range ids {
			if u := p.users[id]; u != nil {
				r := ok(u, id)
				r.Cacheable = false // the decision rests on the certificate, not the credentials
				return r
			}
		}
		if len(ids) == 0 {
			return refuse("verify_and_map: the client presented no certificate")
		}
		return refuse("verify_and_map: no configured user matches the client certificate (tried %s)", strings.Join(ids, ", "))
	}
	if noCredentials(c) && p.noAuth != nil {
		return ok(p.noAuth, p.noAuth.name)
	}
	switch {
	case p.op != nil:
		if c.Jwt == "" {
			return refuse("no user JWT in CONNECT: this suite is in operator (JWT) mode")
		}
		r, err := p.op.authenticate(c, req.GetNonce(), req.GetClient())
		if err != nil {
			return refuse("%v", err)
		}
		return r
	case c.Jwt != "":
		return refuse("a user JWT was presented, but no operator is configured")
	case p.token != "":
		if !secretMatches(p.token, c.AuthToken) {
			return refuse("wrong or missing token")
		}
		return ok(nil, "token")
	case c.Nkey != "":
		return p.nkeyLogin(req, c, ok, refuse)
	case c.User != "":
		return p.userLogin(p.users[c.User], c, ok, refuse)
	}
	return refuse("no credentials in CONNECT")
}

// noCredentials reports a CONNECT that proves nothing: no_auth_user's case.
func noCredentials(c *authv1.Credentials) bool {
	return c.User == "" && c.Pass == "" && c.AuthToken == "" && c.Nkey == "" && c.Jwt == ""
}

// connTypeWebSocket is a WebSocket client's connection type.
const connTypeWebSocket = "WEBSOCKET"

type (
	admit   func(u *user, identity string) *authv1.AuthenticateResponse
	refusal func(format string, a ...any) *authv1.AuthenticateResponse
)

// authenticateWS decides a WebSocket client's CONNECT under websocket {}'s
// override: its no_auth_user for a client without credentials; the users
// lists (nkeys, users) as for any client; else its token or its user.
func (p *Policy) authenticateWS(req *authv1.AuthenticateRequest, c *authv1.Credentials, ok admit, refuse refusal) *authv1.AuthenticateResponse {
	if noCredentials(c) && p.ws.noAuth != nil {
		return ok(p.ws.noAuth, p.ws.noAuth.name)
	}
	switch {
	case c.Jwt != "":
		return refuse("a user JWT was presented, but no operator is configured")
	case c.Nkey != "":
		return p.nkeyLogin(req, c, ok, refuse)
	case c.User != "" && p.users[c.User] != nil && !p.users[c.User].single:
		return p.userLogin(p.users[c.User], c, ok, refuse)
	case p.ws.token != "":
		if !secretMatches(p.ws.token, c.AuthToken) {
			return refuse("WebSocket client: wrong or missing token (websocket { authorization })")
		}
		return ok(nil, "token")
	case p.ws.user != "":
		if c.User != p.ws.user || !secretMatches(p.ws.pass, c.Pass) {
			return refuse("WebSocket client: wrong user or password (websocket { authorization })")
		}
		return ok(nil, c.User)
	case c.User != "":
		return refuse("user %q is not configured", c.User)
	}
	return refuse("no credentials in CONNECT")
}

// nkeyLogin checks an nkey user's signature of the nonce.
func (p *Policy) nkeyLogin(req *authv1.AuthenticateRequest, c *authv1.Credentials, ok admit, refuse refusal) *authv1.AuthenticateResponse {
	u := p.nkeys[c.Nkey]
	if u == nil {
		return refuse("nkey %s is not a configured user", c.Nkey)
	}
	if err := nonce.Verify(c.Nkey, req.GetNonce(), c.Sig); err != nil {
		return refuse("nkey %s: %v", c.Nkey, err)
	}
	r := ok(u, c.Nkey)
	r.VerifyKey = c.Nkey
	return r
}

// userLogin checks a configured user's password (u nil: no such user).
func (p *Policy) userLogin(u *user, c *authv1.Credentials, ok admit, refuse refusal) *authv1.AuthenticateResponse {
	if u == nil {
		return refuse("user %q is not configured", c.User)
	}
	if !secretMatches(u.password, c.Pass) {
		return refuse("wrong password for user %q", c.User)
	}
	return ok(u, u.name)
}

// secretMatches compares a presented secret with a configured one, plain
// or bcrypt, in constant time for plain ones.
func secretMatches(configured, presented string) bool {
	if strings.HasPrefix(configured, "$2") {
		return bcrypt.CompareHashAndPassword([]byte(configured), []byte(presented)) == nil
	}
	return subtle.ConstantTimeCompare([]byte(configured), []byte(presented)) == 1
}
