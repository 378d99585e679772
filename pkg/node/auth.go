package node

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/switchyard-io/switchyard/pkg/config"
	"github.com/switchyard-io/switchyard/pkg/nonce"
	"github.com/switchyard-io/switchyard/pkg/subject"
	authv1 "github.com/switchyard-io/switchyard/proto/switchyard/auth/v1"
)

// authLink is the frontdoor's connection to authsvc (the "authsvc" key).
// authsvc decides every CONNECT; the frontdoor enforces the answer. Until
// authsvc has answered once, the frontdoor fails closed: it asks clients
// to authenticate and refuses them while authsvc cannot be reached.
type authLink struct {
	srv    *Server
	addr   string
	conn   *grpc.ClientConn
	client authv1.AuthClient
	policy atomic.Pointer[authv1.PolicyResponse]
	// CONNECT decisions authsvc said may be reused, for the policy revision.
	decisions decisionCache
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// authCallTimeout bounds one CONNECT's wait for authsvc.
const authCallTimeout = 5 * time.Second

// defaultAuthTimeout is nats-server's time to authenticate.
const defaultAuthTimeout = 2 * time.Second

// authServiceConfig spreads calls over the authsvc replicas and retries a
// call that found its replica gone on another.
const authServiceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [{"service": "switchyard.auth.v1.Auth"}],
    "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.02s", "maxBackoff": "0.5s",
                    "backoffMultiplier": 3, "retryableStatusCodes": ["UNAVAILABLE"]}
  }]
}`

// newAuthLink dials authsvc: one host:port (a name resolving to several
// addresses, such as a Kubernetes headless Service, is several replicas)
// or a comma-separated list of replicas. Replicas are interchangeable.
func newAuthLink(s *Server, addr string) (*authLink, error) {
	var addrs []resolver.Address
	for _, a := range strings.Split(addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, resolver.Address{Addr: a})
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no address")
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(authServiceConfig),
		// A replica gone silent (not closed) breaks the policy stream
		// within 15 s, and the stream is re-opened on another.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second})}
	target := "dns:///" + addrs[0].Addr
	if len(addrs) > 1 {
		r := manual.NewBuilderWithScheme("authsvc-replicas")
		r.InitialState(resolver.State{Addresses: addrs})
		opts = append(opts, grpc.WithResolvers(r))
		target = r.Scheme() + ":///authsvc"
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, err
	}
	return &authLink{srv: s, addr: addr, conn: conn, client: authv1.NewAuthClient(conn)}, nil
}

// start follows authsvc's policy (a Watch stream, re-opened when it
// breaks) in the background, handing each policy to apply (a frontdoor's
// is authLink.apply); it returns after the first answer, or after wait,
// with the context that ends when the link stops.
func (a *authLink) start(wait time.Duration, apply func(ctx context.Context, p *authv1.PolicyResponse, reconnected bool)) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	first := make(chan struct{})
	var once sync.Once
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer once.Do(func() { close(first) })
		reachable := true
		for ctx.Err() == nil {
			err := a.watch(ctx, func(p *authv1.PolicyResponse) {
				apply(ctx, p, !reachable)
				reachable = true
				once.Do(func() { close(first) })
			})
			if ctx.Err() != nil {
				return
			}
			if reachable {
				a.srv.log.Errorf("authsvc %s: %v; clients are asked to authenticate and refused until it answers", a.addr, err)
			}
			reachable = false
			once.Do(func() { close(first) })
			select {
			case <-ctx.Done():
			case <-time.After(authRetryInterval):
			}
		}
	}()
	select {
	case <-first:
	case <-time.After(wait):
	}
	return ctx
}

// authRetryInterval is the wait before the policy stream is re-opened.
const authRetryInterval = time.Second

// watch follows one Watch stream until it breaks.
func (a *authLink) watch(ctx context.Context, fn func(*authv1.PolicyResponse)) error {
	stream, err := a.client.Watch(ctx, &authv1.PolicyRequest{NodeId: a.srv.id})
	if err != nil {
		return err
	}
	for {
		p, err := stream.Recv()
		if err != nil {
			return err
		}
		fn(p)
	}
}

// apply puts a policy from authsvc in force: accounts loaded here fetch
// their rules again and connections are re-checked when its revision
// changed.
func (a *authLink) apply(_ context.Context, p *authv1.PolicyResponse, reconnected bool) {
	old := a.policy.Swap(p)
	if old != nil && old.Revision == p.Revision && !reconnected {
		return
	}
	a.srv.log.Infof("authsvc %s: authentication required %v, nonce %v, policy revision %s",
		a.addr, p.AuthRequired, p.NonceRequired, p.Revision)
	a.reloadAccounts(p.Revision)
	if old != nil && old.Revision != p.Revision {
		a.recheckClients()
	}
	if p.SystemAccount != "" {
		a.srv.enableSystem(p.SystemAccount)
	}
}

// FollowAuth is for a service node (streamsvc): when the configuration
// names authsvc, it follows authsvc's policy and calls fn, on the policy's
// goroutine, with authsvc's client whenever the revision changes or the
// stream was re-opened, until the node shuts down; a failing fn is called
// again a second later. It reports whether there is an authsvc to follow.
func (s *Server) FollowAuth(fn func(ctx context.Context, auth authv1.AuthClient, p *authv1.PolicyResponse) error) bool {
	a := s.auth
	if a == nil {
		return false
	}
	last := ""
	a.start(2*time.Second, func(ctx context.Context, p *authv1.PolicyResponse, reconnected bool) {
		if p.Revision == last && !reconnected {
			return
		}
		for {
			err := fn(ctx, a.client, p)
			if err == nil {
				last = p.Revision
				return
			}
			s.log.Errorf("authsvc %s: policy revision %s: %v; trying again in %v", a.addr, p.Revision, err, authRetryInterval)
			select {
			case <-ctx.Done():
				return
			case <-time.After(authRetryInterval):
			}
		}
	})
	return true
}

// revision is the policy revision in force ("" before the first answer).
func (a *authLink) revision() string {
	if p := a.policy.Load(); p != nil {
		return p.Revision
	}
	return ""
}

// reloadAccounts fetches again the rules of the accounts loaded so far,
// after the policy changed.
func (a *authLink) reloadAccounts(revision string) {
	for _, acc := range a.srv.allAccounts() {
		if !acc.loaded.Load() {
			continue
		}
		if err := acc.loadRules(revision); err != nil {
			a.srv.log.Errorf("authsvc %s: %v; keeping the account's previous imports and mappings", a.addr, err)
		}
	}
}

// recheckBatch bounds the connections sent to authsvc in one Recheck.
const recheckBatch = 1000

// recheckClients asks authsvc, after its policy changed, about every
// authenticated connection: users that no longer exist (or moved account)
// are closed with nats-server's "Authorization Violation", the others get
// their permissions now, losing the subscriptions those deny.
func (a *authLink) recheckClients() {
	s := a.srv
	s.mu.Lock()
	var conns []*authv1.Connection
	byCID := map[uint64]*client{}
	for _, c := range s.clients {
		c.mu.Lock()
		acc, identity, userKey := c.authAcc, c.identity, c.userKey
		c.mu.Unlock()
		switch {
		case acc != nil:
			conns = append(conns, &authv1.Connection{Cid: c.id, Account: acc.name, Identity: identity, UserKey: userKey,
				ConnectionType: c.connectionType()})
		case !c.authRequired:
			// Accepted while authentication was off.
			conns = append(conns, &authv1.Connection{Cid: c.id, Account: config.GlobalAccount, ConnectionType: c.connectionType()})
		default:
			continue // still authenticating: decided under the new policy
		}
		byCID[c.id] = c
	}
	s.mu.Unlock()
	for len(conns) > 0 {
		batch := conns[:min(len(conns), recheckBatch)]
		conns = conns[len(batch):]
		ctx, cancel := context.WithTimeout(context.Background(), authCallTimeout)
		resp, err := a.client.Recheck(ctx, &authv1.RecheckRequest{NodeId: s.id, Connections: batch})
		cancel()
		if err != nil {
			s.log.Errorf("authsvc %s: re-checking %d connections after a policy change: %v; they keep what they had", a.addr, len(batch), err)
			return
		}
		for _, v := range resp.Verdicts {
			c := byCID[v.Cid]
			switch {
			case c == nil:
			case !v.Keep:
				s.log.Warnf("%s - authorization violation after a reload: %s", c, v.Reason)
				c.sendErrAndClose("Authorization Violation", "Authentication Failure")
			case !v.SamePermissions:
				c.setPermissions(compilePerms(v.Permissions))
			}
		}
	}
}

// setPermissions replaces the client's permissions (from any goroutine)
// and drops the subscriptions they no longer allow, telling the client as
// nats-server does.
func (c *client) setPermissions(p *perms) {
	c.perms.Store(p)
	if p == nil || !p.subLimited {
		return
	}
	c.mu.Lock()
	var denied []*subscription
	for _, sub := range c.subs {
		if !p.canSubscribe(sub.subject) {
			denied = append(denied, sub)
		}
	}
	c.mu.Unlock()
	for _, sub := range denied {
		c.removeSub(sub)
		c.out.appendRaw([]byte(fmt.Sprintf("-ERR 'Permissions Violation for Subscription to %q'\r\n", sub.subject)))
	}
	if len(denied) > 0 {
		c.flush()
	}
}

func (a *authLink) stop() {
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	a.conn.Close()
}

// required reports whether INFO must ask a client (a WebSocket one: ws)
// to authenticate, and whether with a nonce; unknown (authsvc not reached
// yet) means both.
func (a *authLink) required(ws bool) (auth, nonce bool) {
	p := a.policy.Load()
	if p == nil {
		return true, true
	}
	if ws {
		return p.WsAuthRequired, p.NonceRequired
	}
	return p.AuthRequired, p.NonceRequired
}

// timeout is how long a client (a WebSocket one: ws) has to authenticate.
func (a *authLink) timeout(ws bool) time.Duration {
	if p := a.policy.Load(); p != nil {
		n := p.AuthTimeoutNanos
		if ws {
			n = p.WsAuthTimeoutNanos
		}
		if n > 0 {
			return time.Duration(n)
		}
	}
	return defaultAuthTimeout
}

// authenticate decides this client's CONNECT: from a decision authsvc
// made earlier for the same credentials under the same policy revision
// (checking the nonce signature here), else by asking authsvc.
func (a *authLink) authenticate(c *client, opts *connectOpts) (*authv1.AuthenticateResponse, error) {
	rev := a.revision()
	key := decisionKey(opts, c.connectionType())
	if resp := a.decisions.get(rev, key); c.certIDs == nil && resp != nil &&
		(resp.ExpiresUnixNanos == 0 || time.Now().UnixNano() < resp.ExpiresUnixNanos) &&
		(resp.VerifyKey == "" || nonce.Verify(resp.VerifyKey, c.nonce, opts.Sig) == nil) {
		return resp, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), authCallTimeout)
	defer cancel()
	resp, err := a.client.Authenticate(ctx, &authv1.AuthenticateRequest{
		NodeId: a.srv.id,
		Client: &authv1.ClientInfo{Cid: c.id, Host: c.host, Port: int32(c.port),
			Name: opts.Name, Lang: opts.Lang, Version: opts.Version, ConnectionType: c.connectionType(),
			CertIdentities: c.certIDs},
		Nonce: c.nonce,
		Credentials: &authv1.Credentials{User: opts.User, Pass: opts.Pass, AuthToken: opts.AuthToken,
			Nkey: opts.Nkey, Sig: opts.Sig, Jwt: opts.JWT},
	})
	if err == nil && resp.Ok && resp.Cacheable && c.certIDs == nil && a.revision() == rev {
		a.decisions.put(rev, key, resp)
	}
	return resp, err
}

// connTypeStandard is a TCP client's connection type, as user JWTs'
// allowed_connection_types name it.
const connTypeStandard = "STANDARD"

// connectionType is the client's type for allowed_connection_types.
func (c *client) connectionType() string {
	if c.ws != nil {
		return "WEBSOCKET"
	}
	return connTypeStandard
}

// decisionKey identifies a CONNECT's credentials (never stored in clear:
// it is a hash), without the nonce signature, which differs every time.
func decisionKey(opts *connectOpts, connType string) [sha256.Size]byte {
	h := sha256.New()
	for _, f := range []string{connType, opts.User, opts.Pass, opts.AuthToken, opts.Nkey, opts.JWT} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// decisionCache keeps authsvc's reusable CONNECT decisions for one policy
// revision; a new revision (a reload, a pushed JWT, a revocation) empties it.
type decisionCache struct {
	mu  sync.Mutex
	rev string
	m   map[[sha256.Size]byte]*authv1.AuthenticateResponse
}

// maxDecisions bounds the cache; when full it starts again empty.
const maxDecisions = 16384

func (d *decisionCache) get(rev string, key [sha256.Size]byte) *authv1.AuthenticateResponse {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rev != rev {
		return nil
	}
	return d.m[key]
}

func (d *decisionCache) put(rev string, key [sha256.Size]byte, resp *authv1.AuthenticateResponse) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rev != rev || len(d.m) >= maxDecisions {
		d.rev, d.m = rev, map[[sha256.Size]byte]*authv1.AuthenticateResponse{}
	}
	d.m[key] = resp
}

// perms is one client's permissions, compiled from authsvc's answer. nil
// on a client means everything is allowed.
type perms struct {
	pubAllow, pubDeny []string // nil allow: all
	subAllow, subDeny []string
	pubLimited        bool // some publish rule exists
	subLimited        bool
	resp              *authv1.ResponsePermission

	// Reader-owned cache of publish decisions (nats-server keeps one too),
	// and the last subject allowed, which a publisher mostly repeats.
	pubCache map[string]bool
	lastOK   string

	mu      sync.Mutex           // guards replies
	replies map[string]*respPerm // allow_responses: reply subjects this client may answer
}

type respPerm struct {
	left    int32
	expires time.Time // zero: never
}

// maxPubCache bounds the per-client publish decision cache.
const maxPubCache = 256

func compilePerms(p *authv1.Permissions) *perms {
	if p == nil || (p.Publish == nil && p.Subscribe == nil && p.Response == nil) {
		return nil
	}
	out := &perms{resp: p.Response}
	if p.Publish != nil {
		out.pubAllow, out.pubDeny = p.Publish.Allow, p.Publish.Deny
		out.pubLimited = len(out.pubAllow) > 0 || len(out.pubDeny) > 0
	}
	if p.Subscribe != nil {
		out.subAllow, out.subDeny = p.Subscribe.Allow, p.Subscribe.Deny
		out.subLimited = len(out.subAllow) > 0 || len(out.subDeny) > 0
	}
	if out.resp != nil {
		out.replies = map[string]*respPerm{}
	}
	return out
}

func matchesAny(patterns []string, subj string) bool {
	for _, p := range patterns {
		if subject.Matches(p, subj) {
			return true
		}
	}
	return false
}

// canPublish applies publish allow / deny, then allow_responses.
func (p *perms) canPublish(subj []byte) bool {
	if !p.pubLimited || (p.lastOK != "" && string(subj) == p.lastOK) {
		return true
	}
	ok, cached := p.pubCache[string(subj)]
	if !cached {
		s := string(subj)
		ok = (len(p.pubAllow) == 0 || matchesAny(p.pubAllow, s)) && !matchesAny(p.pubDeny, s)
		if p.pubCache == nil || len(p.pubCache) >= maxPubCache {
			p.pubCache = make(map[string]bool)
		}
		p.pubCache[s] = ok
		if ok {
			p.lastOK = s // no copy beyond the cache's own
		}
	}
	return ok || p.useReply(subj)
}

// canSubscribe follows nats-server: the subject (a wildcard one must be
// covered by an allowed pattern) must be allowed and not denied. A wildcard
// subscription overlapping a deny rule is allowed, and the denied subjects
// are filtered out on delivery (deniedDelivery).
func (p *perms) canSubscribe(subj string) bool {
	if !p.subLimited {
		return true
	}
	if len(p.subAllow) > 0 {
		allowed := false
		for _, a := range p.subAllow {
			if subject.Covers(a, subj) {
				allowed = true
				break
			}
		}
		if !allowed {
			return false
		}
	}
	for _, d := range p.subDeny {
		if subject.Covers(d, subj) {
			return false
		}
	}
	return true
}

// deniedDelivery reports whether a message on subj must not reach a
// subscription of this client (a wildcard one overlapping a deny rule).
func (p *perms) deniedDelivery(subj []byte) bool {
	return len(p.subDeny) > 0 && matchesAny(p.subDeny, string(subj))
}

// noteRequest records that this client received a request it may answer
// (allow_responses).
func (p *perms) noteRequest(reply []byte) {
	if p.resp == nil || len(reply) == 0 {
		return
	}
	rp := &respPerm{left: max(p.resp.MaxMsgs, 1)}
	if p.resp.ExpiresNanos > 0 {
		rp.expires = time.Now().Add(time.Duration(p.resp.ExpiresNanos))
	}
	p.mu.Lock()
	if len(p.replies) >= maxReplyPerms {
		p.pruneReplies()
	}
	p.replies[string(reply)] = rp
	p.mu.Unlock()
}

// maxReplyPerms bounds the reply subjects remembered per client.
const maxReplyPerms = 10_000

// pruneReplies drops expired entries, or everything when none expired.
// Caller holds mu.
func (p *perms) pruneReplies() {
	now := time.Now()
	for k, rp := range p.replies {
		if !rp.expires.IsZero() && now.After(rp.expires) {
			delete(p.replies, k)
		}
	}
	if len(p.replies) >= maxReplyPerms {
		clear(p.replies)
	}
}

// useReply spends one allowed response to subj.
func (p *perms) useReply(subj []byte) bool {
	if p.resp == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rp := p.replies[string(subj)]
	if rp == nil {
		return false
	}
	if !rp.expires.IsZero() && time.Now().After(rp.expires) {
		delete(p.replies, string(subj))
		return false
	}
	if rp.left--; rp.left <= 0 {
		delete(p.replies, string(subj))
	}
	return true
}

// authenticate settles a pending CONNECT with authsvc: on success the client
// gets its permissions; otherwise the CONNECT fails with nats-server's
// "Authorization Violation".
func (c *client) authenticate(opts *connectOpts) error {
	resp, err := c.srv.auth.authenticate(c, opts)
	if err != nil {
		c.srv.log.Errorf("%s - authorization violation: authsvc %s did not answer (%v); the client is refused until it does",
			c, c.srv.auth.addr, err)
		return errAuthViolation
	}
	if !resp.Ok {
		c.srv.log.Warnf("%s - authorization violation: %s", c, resp.Reason)
		return errAuthViolation
	}
	acc := c.srv.account(resp.Account)
	if err := acc.loadRules(c.srv.auth.revision()); err != nil {
		c.srv.log.Errorf("%s - authorization violation: %v; the client is refused until its account can be loaded", c, err)
		return errAuthViolation
	}
	counted, err := c.admit(acc)
	if err != nil {
		return err
	}
	c.authDone.Store(true)
	c.authTimer.Stop()
	c.authPending = false
	c.setAccount(acc)
	c.perms.Store(compilePerms(resp.Permissions))
	if resp.Limits != nil {
		c.jwtLimits = resp.Limits
		c.applyLimits(c.srv.Config())
	}
	if resp.ExpiresUnixNanos > 0 {
		c.expTimer = time.AfterFunc(time.Until(time.Unix(0, resp.ExpiresUnixNanos)), func() {
			c.srv.log.Infof("%s - user %s: credentials expired, closing", c, resp.Identity)
			c.sendErrAndClose("User Authentication Expired", "Authentication Expired")
		})
	}
	c.mu.Lock()
	c.identity = resp.Identity
	c.authAcc, c.counted, c.userKey, c.issuedAt = acc, counted, resp.UserKey, resp.IssuedAtUnix
	if resp.ExpiresUnixNanos > 0 {
		c.expires = time.Unix(0, resp.ExpiresUnixNanos)
	}
	c.mu.Unlock()
	return nil
}

// revoked reports whether an account revocation covers this client's JWT.
// Caller holds c.mu.
func (c *client) revoked(acc *account, revocations map[string]int64) bool {
	if c.authAcc != acc || c.userKey == "" {
		return false
	}
	for _, k := range []string{c.userKey, "*"} {
		if t, ok := revocations[k]; ok && c.issuedAt <= t {
			return true
		}
	}
	return false
}

// disconnectRevoked closes the clients of acc whose JWTs the account has
// revoked since they connected, as nats-server does.
func (s *Server) disconnectRevoked(acc *account, revocations map[string]int64) {
	if len(revocations) == 0 {
		return
	}
	s.mu.Lock()
	var victims []*client
	for _, c := range s.clients {
		c.mu.Lock()
		if c.revoked(acc, revocations) {
			victims = append(victims, c)
		}
		c.mu.Unlock()
	}
	s.mu.Unlock()
	for _, c := range victims {
		s.log.Infof("%s - user %s revoked by account %s, closing", c, c.userKey, acc.name)
		c.sendErrAndClose("User Authentication Revoked", "Authentication Revoked")
	}
}

// publishViolation reports a refused PUB as nats-server does; the
// connection stays open.
func (c *client) publishViolation(subj []byte) {
	c.srv.log.Warnf("%s - publish permissions violation for subject %q (user %q)", c, subj, c.identity)
	c.sendErr(fmt.Sprintf("Permissions Violation for Publish to %q", subj))
}

// subscribeViolation reports a refused SUB as nats-server does.
func (c *client) subscribeViolation(subj, queue []byte) {
	c.srv.log.Warnf("%s - subscription permissions violation for subject %q (user %q)", c, subj, c.identity)
	if queue != nil {
		c.sendErr(fmt.Sprintf("Permissions Violation for Subscription to %q using queue %q", subj, queue))
		return
	}
	c.sendErr(fmt.Sprintf("Permissions Violation for Subscription to %q", subj))
}
