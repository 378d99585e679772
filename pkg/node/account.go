package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-io/switchyard/pkg/config"
	"github.com/switchyard-io/switchyard/pkg/subject"
	authv1 "github.com/switchyard-io/switchyard/proto/switchyard/auth/v1"
)

// account is one NATS account as this frontdoor sees it. Each account has
// its own subject trie, so subscribers of one never see messages published
// in another; the only bridges are the imports authsvc lists (account
// rules). Accounts are made when a client authenticates into one (or one
// imports from it) and are kept for the life of the process.
type account struct {
	srv       *Server
	name      string
	nameBytes []byte
	sublist   *subject.Sublist[subscription]

	// The account's own publish rules; replaced whole, read without locks.
	mappings atomic.Pointer[mappingTable]
	services atomic.Pointer[[]*serviceImport] // this account's service imports
	// Stream imports of other accounts from this one: a message published
	// here is also delivered, remapped, to their subscribers on this node.
	streamsOut atomic.Pointer[[]*streamImport]

	responses responseRoutes // replies owed, through a service import, to another account
	loaded    atomic.Bool    // rules fetched from authsvc at least once
	loadMu    sync.Mutex     // one fetch at a time
	revision  string         // the policy revision the rules are from; guarded by loadMu
	imports   []*authv1.Import
	revoked   map[string]int64 // JWT revocations: user key ("*": all) -> unix seconds; guarded by loadMu

	// Suite-wide connection limit (limits.conn of the account JWT): this
	// node's count, and the other nodes' as their
	// $SYS.ACCOUNT.<account>.SERVER.CONNS events report them.
	maxConns atomic.Int32
	conns    atomic.Int32
	remoteMu sync.Mutex
	remote   map[string]remoteCount // by node id

	// Subscription limit (limits.subs of the account JWT), counted over
	// this node's clients of the account, as each nats-server counts its own.
	maxSubs atomic.Int32
	subs    atomic.Int32
}

// reserveSub counts one more client subscription in the account, or
// reports false when that would pass the account's limit.
func (a *account) reserveSub() bool {
	max := a.maxSubs.Load()
	if a.subs.Add(1) > max && max > 0 {
		a.subs.Add(-1)
		return false
	}
	return true
}

type remoteCount struct {
	n    int32
	seen time.Time
}

// streamImport delivers messages published in its exporter on subject to
// account to, with the subject remapped by tr (nil: unchanged).
type streamImport struct {
	to      *account
	subject string
	tr      *subject.Transform
}

// serviceImport turns a request published in the importing account on
// local into a request in the exporting account, with a reply subject that
// routes the response back.
type serviceImport struct {
	exporter  *account
	local     string
	tr        *subject.Transform // local -> exported subject; nil: unchanged
	stream    bool               // several responses per request (Stream, Chunked)
	threshold time.Duration
}

func newAccount(s *Server, name string) *account {
	return &account{srv: s, name: name, nameBytes: []byte(name), sublist: subject.NewSublist[subscription]()}
}

// account returns the named account, making it when new.
func (s *Server) account(name string) *account {
	s.accMu.Lock()
	defer s.accMu.Unlock()
	a := s.accounts[name]
	if a == nil {
		a = newAccount(s, name)
		s.accounts[name] = a
	}
	return a
}

// lookupAccount returns the named account or nil; used for messages from
// other nodes, which can only be for accounts with local interest.
func (s *Server) lookupAccount(name []byte) *account {
	if string(name) == config.GlobalAccount {
		return s.gacc
	}
	s.accMu.Lock()
	defer s.accMu.Unlock()
	return s.accounts[string(name)]
}

// allAccounts returns the accounts, for monitoring and snapshots.
func (s *Server) allAccounts() []*account {
	s.accMu.Lock()
	defer s.accMu.Unlock()
	out := make([]*account, 0, len(s.accounts))
	for _, a := range s.accounts {
		out = append(out, a)
	}
	return out
}

// loadRules fetches the account's imports and mappings from authsvc when
// they are missing or from an older policy revision. The global account's
// mappings come from this frontdoor's own configuration.
func (a *account) loadRules(revision string) error {
	changed, err := a.fetchRules(revision)
	if changed {
		a.srv.rebuildStreamImports()
		a.srv.disconnectRevoked(a, a.revocations())
	}
	return err
}

// fetchRules does loadRules' fetch; it reports whether the rules changed.
func (a *account) fetchRules(revision string) (bool, error) {
	a.loadMu.Lock()
	defer a.loadMu.Unlock()
	if a.loaded.Load() && a.revision == revision {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), authCallTimeout)
	defer cancel()
	resp, err := a.srv.auth.client.Account(ctx, &authv1.AccountRequest{NodeId: a.srv.id, Name: a.name})
	if err != nil {
		return false, fmt.Errorf("fetching account %s from authsvc: %w", a.name, err)
	}
	if !resp.Found {
		return false, fmt.Errorf("authsvc does not know account %s", a.name)
	}
	cfg := resp.Account
	if a.name != config.GlobalAccount {
		m, err := compileMappings(mappingsFromProto(cfg.Mappings))
		if err != nil {
			return false, fmt.Errorf("account %s: %w", a.name, err)
		}
		a.mappings.Store(m)
	}
	var services []*serviceImport
	for _, im := range cfg.Imports {
		if !im.Service {
			continue
		}
		tr, err := config.ImportTransform(config.Import{Service: true, Account: im.Account, Subject: im.Subject, To: im.To})
		if err != nil {
			return false, fmt.Errorf("account %s: service import of %q: %w", a.name, im.Subject, err)
		}
		local := im.To
		if local == "" {
			local = im.Subject
		}
		threshold := time.Duration(im.ResponseThresholdNanos)
		if threshold <= 0 {
			threshold = config.DefaultResponseThreshold
		}
		services = append(services, &serviceImport{exporter: a.srv.account(im.Account), local: local, tr: tr,
			stream: im.ResponseType == config.ResponseStream || im.ResponseType == config.ResponseChunked, threshold: threshold})
	}
	if len(services) > 0 {
		a.services.Store(&services)
	} else {
		a.services.Store(nil)
	}
	a.imports = cfg.Imports
	a.revoked = cfg.Revocations
	a.maxConns.Store(cfg.MaxConnections)
	a.maxSubs.Store(cfg.MaxSubscriptions)
	a.revision = revision
	a.loaded.Store(true)
	return true, nil
}

func (a *account) revocations() map[string]int64 {
	a.loadMu.Lock()
	defer a.loadMu.Unlock()
	return a.revoked
}

func mappingsFromProto(ms []*authv1.Mapping) []config.Mapping {
	var out []config.Mapping
	for _, m := range ms {
		cm := config.Mapping{Source: m.Source}
		for _, d := range m.Destinations {
			cm.Destinations = append(cm.Destinations, config.Destination{Subject: d.Subject, Weight: uint8(d.Weight)})
		}
		out = append(out, cm)
	}
	return out
}

// rebuildStreamImports recomputes, for every exporter, which accounts on
// this node import its streams, and tells the router tier that this node
// wants those subjects in the exporter's account (so messages published
// in it on another node come here).
func (s *Server) rebuildStreamImports() {
	s.importMu.Lock()
	defer s.importMu.Unlock()
	out := map[*account][]*streamImport{}
	want := map[interestKey]int32{}
	for _, a := range s.allAccounts() {
		a.loadMu.Lock()
		imports := a.imports
		a.loadMu.Unlock()
		for _, im := range imports {
			if im.Service {
				continue
			}
			tr, err := config.ImportTransform(config.Import{Account: im.Account, Subject: im.Subject, To: im.To})
			if err != nil {
				s.log.Errorf("Account %s: stream import of %q from %s: %v; not delivering it", a.name, im.Subject, im.Account, err)
				continue
			}
			exp := s.account(im.Account)
			out[exp] = append(out[exp], &streamImport{to: a, subject: im.Subject, tr: tr})
			want[interestKey{exp.name, im.Subject, ""}]++
		}
	}
	for _, a := range s.allAccounts() {
		if list := out[a]; len(list) > 0 {
			a.streamsOut.Store(&list)
		} else {
			a.streamsOut.Store(nil)
		}
	}
	if s.routing != nil {
		s.routing.setImportInterest(want)
	}
}

// responseRoutes are the reply subjects this (exporting) account made for
// requests that came in through a service import: a response published
// here to one of them goes to the requester's reply subject in the
// importing account.
type responseRoutes struct {
	mu      sync.Mutex
	routes  map[string]*responseRoute
	pruned  time.Time
	present atomic.Bool // the hot path skips the lock when there are none
}

type responseRoute struct {
	to      *account
	reply   string
	stream  bool // keep for more responses until expires
	expires time.Time
}

// maxResponseRoutes bounds the pending requests per exporting account;
// past it the oldest half is dropped (their late replies are lost, as
// they would be after the response threshold).
const maxResponseRoutes = 100_000

// responsePrefix starts every reply subject a service import makes, as
// nats-server's do.
const responsePrefix = "_R_."

// add makes a reply subject in this account for a request whose requester
// waits on reply in account to.
func (r *responseRoutes) add(to *account, reply []byte, si *serviceImport) []byte {
	var b [12]byte
	_, _ = rand.Read(b[:])
	subj := responsePrefix + base64.RawURLEncoding.EncodeToString(b[:6]) + "." + base64.RawURLEncoding.EncodeToString(b[6:])
	now := time.Now()
	r.mu.Lock()
	if r.routes == nil {
		r.routes = map[string]*responseRoute{}
	}
	if len(r.routes) >= maxResponseRoutes || now.Sub(r.pruned) > time.Second {
		r.prune(now)
	}
	r.routes[subj] = &responseRoute{to: to, reply: string(reply), stream: si.stream, expires: now.Add(si.threshold)}
	r.present.Store(true)
	r.mu.Unlock()
	return []byte(subj)
}

// prune drops expired routes, and the oldest half when still full. Caller
// holds mu.
func (r *responseRoutes) prune(now time.Time) {
	r.pruned = now
	for k, rr := range r.routes {
		if now.After(rr.expires) {
			delete(r.routes, k)
		}
	}
	if len(r.routes) >= maxResponseRoutes {
		n := 0
		for k := range r.routes {
			if n++; n > maxResponseRoutes/2 {
				break
			}
			delete(r.routes, k)
		}
	}
}

// take returns where a response on subj goes, spending a singleton route.
func (r *responseRoutes) take(subj []byte) *responseRoute {
	if !r.present.Load() || len(subj) <= len(responsePrefix) || string(subj[:len(responsePrefix)]) != responsePrefix {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rr := r.routes[string(subj)]
	if rr == nil {
		return nil
	}
	if time.Now().After(rr.expires) {
		delete(r.routes, string(subj))
		return nil
	}
	if !rr.stream {
		delete(r.routes, string(subj))
	}
	return rr
}

// requestInfoHeader is nats-server's header that tells a service which
// client, in which account, sent a request through a service import.
const requestInfoHeader = "Nats-Request-Info"

// clientInfo is nats-server's description of a client, with its field
// names: the Nats-Request-Info header's JSON and the "client" of
// connection events.
type clientInfo struct {
	Start      time.Time     `json:"start"`
	Host       string        `json:"host,omitempty"`
	ID         uint64        `json:"id"`
	Account    string        `json:"acc"`
	User       string        `json:"user,omitempty"`
	Name       string        `json:"name,omitempty"`
	Lang       string        `json:"lang,omitempty"`
	Version    string        `json:"ver,omitempty"`
	RTT        time.Duration `json:"rtt,omitempty"`
	Server     string        `json:"server"`
	Stop       *time.Time    `json:"stop,omitempty"`
	Kind       string        `json:"kind"`
	ClientType string        `json:"client_type"`
}

// info describes the client in acc. Caller holds mu.
func (c *client) info(acc *account) clientInfo {
	return clientInfo{Start: c.start, Host: c.host, ID: c.id, Account: acc.name, User: c.identity,
		Name: c.name, Lang: c.lang, Version: c.version, RTT: c.rtt, Server: c.srv.name, Kind: "Client", ClientType: "nats"}
}

// withRequestInfo returns the message with its Nats-Request-Info header
// (any the client sent is dropped: it is never trusted) set to this
// client's identity.
func (c *client) withRequestInfo(headerLen int, msg []byte) (int, []byte) {
	c.mu.Lock()
	info := c.info(c.acc)
	c.mu.Unlock()
	js, _ := json.Marshal(info)
	out := make([]byte, 0, len(msg)+len(js)+64)
	var payload []byte
	if headerLen < 0 {
		out = append(out, "NATS/1.0\r\n"...)
		payload = msg
	} else {
		hdr := msg[:headerLen]
		payload = msg[headerLen:]
		lines := bytes.Split(bytes.TrimSuffix(hdr, []byte("\r\n\r\n")), []byte("\r\n"))
		out = append(out, lines[0]...)
		out = append(out, "\r\n"...)
		for _, l := range lines[1:] {
			if k, _, ok := bytes.Cut(l, []byte(":")); ok && strings.EqualFold(string(bytes.TrimSpace(k)), requestInfoHeader) {
				continue
			}
			out = append(out, l...)
			out = append(out, "\r\n"...)
		}
	}
	out = append(out, requestInfoHeader+": "...)
	out = append(out, js...)
	out = append(out, "\r\n\r\n"...)
	n := len(out)
	return n, append(out, payload...)
}

// remoteCountTTL is how long another node's connection count stands
// without a refresh (nodes repeat theirs every connsInterval).
const (
	connsInterval  = 10 * time.Second
	remoteCountTTL = 3 * connsInterval
)

// totalConns is the account's connections suite-wide, as far as known.
func (a *account) totalConns() int32 {
	n := a.conns.Load()
	now := time.Now()
	a.remoteMu.Lock()
	for node, rc := range a.remote {
		if now.Sub(rc.seen) > remoteCountTTL {
			delete(a.remote, node)
			continue
		}
		n += rc.n
	}
	a.remoteMu.Unlock()
	return n
}

// setRemoteConns records another node's count.
func (a *account) setRemoteConns(node string, n int32) {
	a.remoteMu.Lock()
	if a.remote == nil {
		a.remote = map[string]remoteCount{}
	}
	a.remote[node] = remoteCount{n: n, seen: time.Now()}
	a.remoteMu.Unlock()
}

// admit counts a client into an account with a connection limit (counted
// reports that), or refuses it when the account is full suite-wide.
func (c *client) admit(acc *account) (counted bool, err error) {
	max := acc.maxConns.Load()
	if max <= 0 {
		return false, nil
	}
	if acc.totalConns() >= max {
		c.srv.log.Warnf("%s - account %s is at its limit of %d connections", c, acc.name, max)
		return false, errMaxAccountConns
	}
	acc.conns.Add(1)
	c.srv.publishConns(acc)
	return true, nil
}

// release takes a closed client out of its account's count.
func (s *Server) release(c *client) {
	c.mu.Lock()
	acc, counted := c.authAcc, c.counted
	c.counted = false
	c.mu.Unlock()
	if counted {
		acc.conns.Add(-1)
		s.publishConns(acc)
	}
}
