package policy

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/jwt/v2"

	"github.com/switchyard-io/switchyard/pkg/config"
	"github.com/switchyard-io/switchyard/pkg/nonce"
	"github.com/switchyard-io/switchyard/pkg/subject"
	authv1 "github.com/switchyard-io/switchyard/proto/switchyard/auth/v1"
	"github.com/switchyard-io/switchyard/services/authsvc/internal/resolver"
)

// operatorMode is decentralized JWT authentication: trusted operators sign
// account JWTs (kept by the resolver), accounts sign user JWTs, and a user
// proves it holds its key by signing the server's nonce.
type operatorMode struct {
	trusted map[string]bool // operator identity and signing keys
	system  string          // the system account's public key
	store   resolver.Store
	gen     atomic.Uint64 // the store's last generation read without error

	mu       sync.Mutex
	accounts map[string]cachedAccount // decoded account JWTs, by key
}

type cachedAccount struct {
	token  string
	claims *jwt.AccountClaims
}

// loadOperators reads the operator JWTs (files, or the JWTs themselves).
func loadOperators(c *config.Server, store resolver.Store) (*operatorMode, error) {
	om := &operatorMode{trusted: map[string]bool{}, store: store, accounts: map[string]cachedAccount{}}
	for _, o := range c.Operators {
		token := o
		if !strings.HasPrefix(o, "eyJ") {
			b, err := os.ReadFile(o)
			if err != nil {
				return nil, fmt.Errorf("operator: %w", err)
			}
			token = string(b)
		}
		oc, err := jwt.DecodeOperatorClaims(jwtFromFile(token))
		if err != nil {
			return nil, fmt.Errorf("operator %s: not an operator JWT: %w", o, err)
		}
		om.trusted[oc.Subject] = true
		for _, k := range oc.SigningKeys {
			om.trusted[k] = true
		}
		if om.system == "" {
			om.system = oc.SystemAccount
		}
	}
	if c.SystemAccount != "" {
		om.system = c.SystemAccount
	}
	return om, nil
}

// jwtFromFile takes the JWT out of a file that may hold it between the
// ----BEGIN ... JWT----- markers nsc writes, or alone.
func jwtFromFile(s string) string {
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "eyJ") {
			return line
		}
	}
	return strings.TrimSpace(s)
}

// account returns the verified claims of an account JWT from the resolver.
func (om *operatorMode) account(key string) (*jwt.AccountClaims, error) {
	token, ok, err := om.store.Get(key)
	if err != nil {
		return nil, fmt.Errorf("resolver %s: %w", om.store.Kind(), err)
	}
	if !ok {
		return nil, fmt.Errorf("account %s is not known to the %s resolver", key, om.store.Kind())
	}
	om.mu.Lock()
	c, hit := om.accounts[key]
	om.mu.Unlock()
	if hit && c.token == token {
		return c.claims, nil
	}
	ac, err := om.verifyAccount(token)
	if err != nil {
		return nil, err
	}
	if ac.Subject != key {
		return nil, fmt.Errorf("the resolver's JWT for account %s is for account %s", key, ac.Subject)
	}
	om.mu.Lock()
	om.accounts[key] = cachedAccount{token: token, claims: ac}
	om.mu.Unlock()
	return ac, nil
}

// verifyAccount decodes an account JWT (its signature is checked by the
// decoder) and checks that a trusted operator issued it and that it is in
// its validity period.
func (om *operatorMode) verifyAccount(token string) (*jwt.AccountClaims, error) {
	ac, err := jwt.DecodeAccountClaims(token)
	if err != nil {
		return nil, fmt.Errorf("not a valid account JWT: %w", err)
	}
	if !om.trusted[ac.Issuer] {
		return nil, fmt.Errorf("account JWT %s is issued by %s, which is not a trusted operator or operator signing key", ac.Subject, ac.Issuer)
	}
	if err := inPeriod(&ac.ClaimsData); err != nil {
		return nil, fmt.Errorf("account JWT %s %v", ac.Subject, err)
	}
	return ac, nil
}

func inPeriod(c *jwt.ClaimsData) error {
	now := time.Now().Unix()
	if c.Expires > 0 && now > c.Expires {
		return fmt.Errorf("expired at %s", time.Unix(c.Expires, 0).UTC().Format(time.RFC3339))
	}
	if c.NotBefore > 0 && now < c.NotBefore {
		return fmt.Errorf("is not valid before %s", time.Unix(c.NotBefore, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// authenticate decides a CONNECT that carries a user JWT.
func (om *operatorMode) authenticate(c *authv1.Credentials, serverNonce string, client *authv1.ClientInfo) (*authv1.AuthenticateResponse, error) {
	uc, err := jwt.DecodeUserClaims(c.Jwt)
	if err != nil {
		return nil, fmt.Errorf("not a valid user JWT: %v", err)
	}
	if err := inPeriod(&uc.ClaimsData); err != nil {
		return nil, fmt.Errorf("user JWT %s %v", uc.Subject, err)
	}
	accKey := uc.Issuer
	if uc.IssuerAccount != "" {
		accKey = uc.IssuerAccount
	}
	ac, err := om.account(accKey)
	if err != nil {
		return nil, fmt.Errorf("user %s: %v", uc.Subject, err)
	}
	// The user must be signed by its account, or by one of the account's
	// signing keys naming the account as issuer_account.
	var scope jwt.Scope
	switch {
	case uc.IssuerAccount == "" && uc.Issuer == ac.Subject:
	case uc.IssuerAccount == ac.Subject && ac.SigningKeys.Contains(uc.Issuer):
		scope, _ = ac.SigningKeys.GetScope(uc.Issuer)
	case uc.IssuerAccount != "":
		return nil, fmt.Errorf("user %s claims issuer_account %s, but its issuer %s is not a signing key of that account", uc.Subject, uc.IssuerAccount, uc.Issuer)
	default:
		return nil, fmt.Errorf("user %s is issued by %s, which is not an account", uc.Subject, uc.Issuer)
	}
	if scope != nil {
		if err := scope.ValidateScopedSigner(uc); err != nil {
			return nil, fmt.Errorf("user %s: scoped signing key: %v", uc.Subject, err)
		}
	}
	if !uc.BearerToken {
		if err := nonce.Verify(uc.Subject, serverNonce, c.Sig); err != nil {
			return nil, fmt.Errorf("user %s: %v", uc.Subject, err)
		}
	}
	if ac.IsClaimRevoked(uc) {
		return nil, fmt.Errorf("user %s: user authentication revoked by account %s", uc.Subject, ac.Subject)
	}
	limits := uc.UserPermissionLimits
	if us, ok := scope.(*jwt.UserScope); ok {
		limits = us.Template // a scoped key's users get the scope's permissions
	}
	windowEnd, err := checkUserLimits(&limits, client, time.Now())
	if err != nil {
		return nil, fmt.Errorf("user %s: %v", uc.Subject, err)
	}
	resp := &authv1.AuthenticateResponse{Ok: true, Account: ac.Subject, Identity: uc.Subject,
		Permissions: jwtPermissions(limits.Permissions), UserKey: uc.Subject, IssuedAtUnix: uc.IssuedAt,
		Limits:    connLimits(limits.NatsLimits, ac.Limits.NatsLimits),
		Cacheable: len(limits.Src) == 0 && len(limits.Times) == 0}
	if !uc.BearerToken {
		resp.VerifyKey = uc.Subject
	}
	exp := earliest(uc.Expires, ac.Expires)
	if !windowEnd.IsZero() {
		exp = earliest(exp, windowEnd.Unix())
	}
	if exp > 0 {
		resp.ExpiresUnixNanos = time.Unix(exp, 0).UnixNano()
	}
	return resp, nil
}

// checkUserLimits applies a user JWT's connection restrictions as
// nats-server does: the client's address within src, the connection
// type among allowed_connection_types, and now within one of the times
// (in locale's time zone, else the server's). It returns when the time
// window in force ends (zero: no times restriction).
func checkUserLimits(l *jwt.UserPermissionLimits, client *authv1.ClientInfo, now time.Time) (time.Time, error) {
	if len(l.Src) > 0 {
		ip := net.ParseIP(client.GetHost())
		ok := false
		for _, cidr := range l.Src {
			if _, n, err := net.ParseCIDR(cidr); err == nil && ip != nil && n.Contains(ip) {
				ok = true
				break
			}
		}
		if !ok {
			return time.Time{}, fmt.Errorf("client address %s is not in the JWT's src %v", client.GetHost(), []string(l.Src))
		}
	}
	if len(l.AllowedConnectionTypes) > 0 {
		kind := client.GetConnectionType()
		if kind == "" {
			kind = jwt.ConnectionTypeStandard
		}
		if !l.AllowedConnectionTypes.Contains(kind) {
			return time.Time{}, fmt.Errorf("connection type %s is not in the JWT's allowed_connection_types %v", kind, []string(l.AllowedConnectionTypes))
		}
	}
	if len(l.Times) == 0 {
		return time.Time{}, nil
	}
	loc := time.Local
	if l.Locale != "" {
		var err error
		if loc, err = time.LoadLocation(l.Locale); err != nil {
			return time.Time{}, fmt.Errorf("JWT locale %q: %v", l.Locale, err)
		}
	}
	now = now.In(loc)
	for _, r := range l.Times {
		if end, ok := inTimeRange(r, now); ok {
			return end, nil
		}
	}
	return time.Time{}, fmt.Errorf("connecting outside the JWT's allowed times %v (locale %q)", l.Times, l.Locale)
}

// inTimeRange reports whether now (in its own location) falls within the
// daily range r ("15:04:05" start and end; an end before the start spans
// midnight), and when that occurrence ends.
func inTimeRange(r jwt.TimeRange, now time.Time) (time.Time, bool) {
	clock := func(s string, day time.Time) (time.Time, bool) {
		t, err := time.Parse("15:04:05", s)
		if err != nil {
			return time.Time{}, false
		}
		y, m, d := day.Date()
		return time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), 0, now.Location()), true
	}
	for _, day := range []time.Time{now.AddDate(0, 0, -1), now} {
		start, ok1 := clock(r.Start, day)
		end, ok2 := clock(r.End, day)
		if !ok1 || !ok2 {
			return time.Time{}, false
		}
		if !end.After(start) {
			end = end.AddDate(0, 0, 1)
		}
		if !now.Before(start) && now.Before(end) {
			return end, true
		}
	}
	return time.Time{}, false
}

func earliest(a, b int64) int64 {
	switch {
	case a == 0:
		return b
	case b == 0 || a < b:
		return a
	}
	return b
}

// connLimits are one connection's limits: the user's subscriptions, and
// the smaller of the user's and the account's payload (jwt uses -1, or 0
// for the user, for unlimited). The account's subscription and connection
// limits count the whole account: AccountConfig carries them.
func connLimits(user, account jwt.NatsLimits) *authv1.Limits {
	pick := func(u, a int64) int32 {
		var v int64
		for _, x := range []int64{u, a} {
			if x > 0 && (v == 0 || x < v) {
				v = x
			}
		}
		return int32(min(v, 1<<30))
	}
	l := &authv1.Limits{MaxPayload: pick(user.Payload, account.Payload), MaxSubscriptions: pick(user.Subs, -1)}
	if l.MaxPayload == 0 && l.MaxSubscriptions == 0 {
		return nil
	}
	return l
}

func jwtPermissions(p jwt.Permissions) *authv1.Permissions {
	out := &authv1.Permissions{}
	if len(p.Pub.Allow) > 0 || len(p.Pub.Deny) > 0 {
		out.Publish = &authv1.SubjectPermission{Allow: p.Pub.Allow, Deny: p.Pub.Deny}
	}
	if len(p.Sub.Allow) > 0 || len(p.Sub.Deny) > 0 {
		out.Subscribe = &authv1.SubjectPermission{Allow: p.Sub.Allow, Deny: p.Sub.Deny}
	}
	if p.Resp != nil {
		out.Response = &authv1.ResponsePermission{MaxMsgs: int32(max(p.Resp.MaxMsgs, 1)), ExpiresNanos: int64(p.Resp.Expires)}
	}
	if out.Publish == nil && out.Subscribe == nil && out.Response == nil {
		return nil
	}
	return out
}

// accountConfig builds what frontdoors need of a JWT account: its imports
// (each checked against the exporter's JWT, activation tokens included),
// mappings and revocations. Imports that do not check out are left out
// and reported in skipped.
func (om *operatorMode) accountConfig(key string) (*authv1.AccountConfig, []string, error) {
	ac, err := om.account(key)
	if err != nil {
		return nil, nil, err
	}
	out := &authv1.AccountConfig{Name: key, Revocations: map[string]int64{}}
	if ac.Limits.Conn > 0 {
		out.MaxConnections = int32(min(ac.Limits.Conn, 1<<30))
	}
	if ac.Limits.Subs > 0 {
		out.MaxSubscriptions = int32(min(ac.Limits.Subs, 1<<30))
	}
	for k, t := range ac.Revocations {
		out.Revocations[k] = t
	}
	for src, dests := range ac.Mappings {
		m := &authv1.Mapping{Source: string(src)}
		for _, d := range dests {
			m.Destinations = append(m.Destinations, &authv1.Destination{Subject: string(d.Subject), Weight: int32(d.GetWeight())})
		}
		out.Mappings = append(out.Mappings, m)
	}
	var skipped []string
	for _, im := range ac.Imports {
		pi, err := om.checkImport(key, im)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("import %q from %s: %v", im.Subject, im.Account, err))
			continue
		}
		out.Imports = append(out.Imports, pi)
	}
	return out, skipped, nil
}

// checkImport resolves one JWT import: the exporter must export it (to
// everyone, or with an activation token for this account that it signed).
func (om *operatorMode) checkImport(importer string, im *jwt.Import) (*authv1.Import, error) {
	exp, err := om.account(im.Account)
	if err != nil {
		return nil, err
	}
	service := im.Type == jwt.Service
	// Normalise to the exporter's subject and the importer's local one.
	pi := &authv1.Import{Service: service, Account: im.Account, Subject: string(im.Subject)}
	//lint:ignore SA1019 account JWTs issued by older nsc versions still carry "to"
	legacyTo := string(im.To)
	switch {
	case im.LocalSubject != "":
		pi.To = string(im.LocalSubject)
	case service && legacyTo != "":
		pi.Subject, pi.To = legacyTo, string(im.Subject)
	case !service && legacyTo != "":
		pi.To = legacyTo + "." + string(im.Subject) // the old stream prefix
	}
	for _, x := range exp.Exports {
		if (x.Type == jwt.Service) != service || !subject.Covers(string(x.Subject), pi.Subject) {
			continue
		}
		if x.TokenReq {
			if err := om.checkActivation(importer, exp, x, im); err != nil {
				return nil, err
			}
		}
		if x.Revocations.IsRevoked(importer, time.Now()) {
			return nil, errors.New("the exporter revoked this account's access")
		}
		if service {
			pi.ResponseType = string(x.ResponseType)
			if pi.ResponseType == "" {
				pi.ResponseType = config.ResponseSingleton
			}
			pi.ResponseThresholdNanos = int64(x.ResponseThreshold)
		}
		return pi, nil
	}
	return nil, errors.New("the account exports nothing of that kind covering the subject")
}

// checkActivation verifies the activation token of a private export.
func (om *operatorMode) checkActivation(importer string, exp *jwt.AccountClaims, x *jwt.Export, im *jwt.Import) error {
	if im.Token == "" {
		return errors.New("the export is private and the import has no activation token")
	}
	act, err := jwt.DecodeActivationClaims(im.Token)
	if err != nil {
		return fmt.Errorf("activation token: %v", err)
	}
	switch {
	case act.Subject != importer && act.Subject != "*":
		return fmt.Errorf("activation token is for account %s", act.Subject)
	case act.Issuer != exp.Subject && !(act.IssuerAccount == exp.Subject && exp.SigningKeys.Contains(act.Issuer)):
		return fmt.Errorf("activation token is not signed by the exporter or its signing keys")
	case !subject.Covers(string(x.Subject), string(act.ImportSubject)):
		return fmt.Errorf("activation token is for %q, outside the export", act.ImportSubject)
	}
	if err := inPeriod(&act.ClaimsData); err != nil {
		return fmt.Errorf("activation token %v", err)
	}
	return nil
}

// update stores a pushed account JWT after verifying it; it returns the
// account's key.
func (om *operatorMode) update(claimed, token string) (string, error) {
	ac, err := om.verifyAccount(token)
	if err != nil {
		return "", err
	}
	if claimed != "" && claimed != ac.Subject {
		return ac.Subject, fmt.Errorf("the subject names account %s but the JWT is for %s", claimed, ac.Subject)
	}
	if old, err := om.account(ac.Subject); err == nil && old.IssuedAt > ac.IssuedAt {
		return ac.Subject, fmt.Errorf("the stored JWT is newer (issued %s)", time.Unix(old.IssuedAt, 0).UTC().Format(time.RFC3339))
	}
	if err := om.store.Put(ac.Subject, token); err != nil {
		return ac.Subject, err
	}
	return ac.Subject, nil
}

// jetStreamAccounts lists the resolver's accounts whose JWT grants
// JetStream (the system account never has it), with their limits: the
// JWT's limits, or its tiered limits' R1 tier (a single streamsvc serves
// one replica). without lists the others; accounts whose JWT does not
// verify are in neither and reported in skipped.
func (om *operatorMode) jetStreamAccounts() (out []*authv1.JetStreamAccount, without, skipped []string, err error) {
	keys, err := om.store.List()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("resolver %s: %w", om.store.Kind(), err)
	}
	for _, key := range keys {
		if key == om.system {
			continue
		}
		ac, err := om.account(key)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("account %s: %v", key, err))
			continue
		}
		if !ac.Limits.IsJSEnabled() {
			without = append(without, key)
			continue
		}
		l := ac.Limits.JetStreamLimits
		if len(ac.Limits.JetStreamTieredLimits) > 0 {
			l = ac.Limits.JetStreamTieredLimits["R1"]
		}
		out = append(out, &authv1.JetStreamAccount{Name: key, Limits: &authv1.JetStreamLimits{
			MaxMemory: l.MemoryStorage, MaxStorage: l.DiskStorage, MaxStreams: l.Streams, MaxConsumers: l.Consumer,
			MaxAckPending: l.MaxAckPending, MemoryMaxStreamBytes: l.MemoryMaxStreamBytes,
			StorageMaxStreamBytes: l.DiskMaxStreamBytes, MaxBytesRequired: l.MaxBytesRequired,
		}})
	}
	return out, without, skipped, nil
}
