package node

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nuid"

	authv1 "github.com/switchyard-io/switchyard/proto/switchyard/auth/v1"
)

// The system account's claims requests, which frontdoors pass to authsvc:
// pushing and looking up account JWTs, as nsc push and the nats CLI do
// against nats-server's full resolver. Every frontdoor subscribes to them
// in one queue group, so each request is served once suite-wide.
const (
	claimsUpdateSubject  = "$SYS.REQ.CLAIMS.UPDATE"
	accountClaimsPrefix  = "$SYS.REQ.ACCOUNT."
	accountClaimsUpdate  = ".CLAIMS.UPDATE"
	accountClaimsLookup  = ".CLAIMS.LOOKUP"
	claimsQueue          = "switchyard-claims"
	systemRequestTimeout = 5 * time.Second
)

// parseClaimsSubject recognises the claims requests.
func parseClaimsSubject(subj string) (op authv1.ClaimsRequest_Op, account string, ok bool) {
	if subj == claimsUpdateSubject {
		return authv1.ClaimsRequest_OP_UPDATE, "", true
	}
	rest, found := strings.CutPrefix(subj, accountClaimsPrefix)
	if !found {
		return 0, "", false
	}
	if acc, found := strings.CutSuffix(rest, accountClaimsUpdate); found && acc != "" && !strings.Contains(acc, ".") {
		return authv1.ClaimsRequest_OP_UPDATE, acc, true
	}
	if acc, found := strings.CutSuffix(rest, accountClaimsLookup); found && acc != "" && !strings.Contains(acc, ".") {
		return authv1.ClaimsRequest_OP_LOOKUP, acc, true
	}
	return 0, "", false
}

// sysServerInfo is the "server" object of nats-server's system messages.
type sysServerInfo struct {
	Name    string    `json:"name"`
	Host    string    `json:"host"`
	ID      string    `json:"id"`
	Version string    `json:"ver"`
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
}

// claimsRequest serves a claims request (an internal subscription's
// handler). The answer comes from authsvc on another goroutine, never
// holding up the delivering reader.
func (s *Server) claimsRequest(subj, reply, payload []byte) {
	op, account, ok := parseClaimsSubject(string(subj))
	if !ok || s.auth == nil {
		return
	}
	req := &authv1.ClaimsRequest{Op: op, Account: account, Jwt: string(payload), NodeId: s.id}
	replyTo := string(reply)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), systemRequestTimeout)
		resp, err := s.auth.client.Claims(ctx, req)
		cancel()
		if err != nil {
			resp = &authv1.ClaimsResponse{Code: 503, Account: account, Message: "authsvc did not answer: " + err.Error()}
		}
		switch {
		case replyTo == "":
		case op == authv1.ClaimsRequest_OP_LOOKUP && resp.Code == 200:
			s.replyRaw(replyTo, []byte(resp.Jwt))
		default:
			// nats-server's answer: data on success, error otherwise.
			m := map[string]any{"code": resp.Code}
			if resp.Account != "" {
				m["account"] = resp.Account
			}
			if resp.Code == 200 {
				m["message"] = resp.Message
				s.replyServerAPI(replyTo, m, nil)
			} else {
				m["description"] = resp.Message
				s.replyServerAPI(replyTo, nil, m)
			}
		}
	}()
}

// sysPublisher publishes the frontdoor's own messages (system replies)
// from any goroutine, one at a time. It never waits for slow subscribers.
type sysPublisher struct {
	mu sync.Mutex
	c  *client
}

func (s *Server) sysPublish(acc *account, subj string, payload []byte) {
	p := &s.sys
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.c == nil {
		p.c = newInternalClient(s)
	}
	p.c.publish(acc, []byte(subj), nil, -1, payload)
	p.c.flushDelivered()
	clear(p.c.stallOn)
	p.c.stallOn = p.c.stallOn[:0]
}

// The system account's server requests, as nats-server answers them: every
// frontdoor subscribes (in the system account, so the router tier spreads
// the interest) to $SYS.REQ.SERVER.PING[.<endpoint>] and
// $SYS.REQ.SERVER.<its id>.<endpoint>, so `nats server list`, `nats server
// info` and `nats server report connections` see the whole suite.
const (
	serverPingSubject = "$SYS.REQ.SERVER.PING"
	serverReqPrefix   = "$SYS.REQ.SERVER."
)

// sysState is the frontdoor's presence in the system account.
type sysState struct {
	mu     sync.Mutex
	acc    *account // nil until authsvc names the system account
	client *client  // owns the internal subscriptions
	seq    atomic.Uint64
}

// enableSystem subscribes this frontdoor's request handlers in the named
// system account (moving them when the name changes).
func (s *Server) enableSystem(name string) {
	st := &s.sysState
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.acc != nil && st.acc.name == name {
		return
	}
	if st.client != nil {
		st.client.mu.Lock()
		subs := st.client.subs
		st.client.subs = map[string]*subscription{}
		st.client.mu.Unlock()
		for _, sub := range subs {
			s.trieRemove(sub)
		}
	}
	acc := s.account(name)
	if s.auth != nil {
		if err := acc.loadRules(s.auth.revision()); err != nil {
			s.log.Warnf("System account %s: %v", name, err)
		}
	}
	ic := newInternalClient(s)
	ic.setAccount(acc)
	serve := func(subj, reply, payload []byte) { s.serverRequest(string(subj), string(reply), payload) }
	for i, h := range []struct {
		subject, queue string
		handler        func(subj, reply, payload []byte)
	}{
		{serverPingSubject, "", serve},
		{serverPingSubject + ".*", "", serve},
		{serverReqPrefix + s.id + ".*", "", serve},
		{accountConnsSubject("*"), "", s.remoteConns},
		{claimsUpdateSubject, claimsQueue, s.claimsRequest},
		{accountClaimsPrefix + "*" + accountClaimsUpdate, claimsQueue, s.claimsRequest},
		{accountClaimsPrefix + "*" + accountClaimsLookup, claimsQueue, s.claimsRequest},
	} {
		sub := &subscription{client: ic, acc: acc, subject: h.subject, queue: h.queue, sid: strconv.Itoa(i + 1), internal: payloadOnly(h.handler)}
		ic.subs[sub.sid] = sub
		s.trieInsert(sub)
	}
	st.acc, st.client = acc, ic
	s.log.Debugf("Answering $SYS.REQ.SERVER requests in system account %s", name)
}

// sysInfo is the "server" object of system messages, with the next
// sequence number.
func (s *Server) sysInfo() sysServerInfo {
	host, _ := s.advertise()
	return sysServerInfo{Name: s.name, Host: host, ID: s.id, Version: Version,
		Seq: s.sysState.seq.Add(1), Time: time.Now().UTC()}
}

// eventFilter is the part of a request body that selects servers.
type eventFilter struct {
	Name    string `json:"server_name"`
	Host    string `json:"host"`
	Cluster string `json:"cluster"`
}

// serverRequest answers one $SYS.REQ.SERVER request on its own goroutine.
func (s *Server) serverRequest(subj, reply string, payload []byte) {
	if reply == "" {
		return
	}
	body := append([]byte(nil), payload...)
	go func() {
		endpoint := "STATSZ"
		if rest, ok := strings.CutPrefix(subj, serverPingSubject+"."); ok {
			endpoint = rest
		} else if rest, ok := strings.CutPrefix(subj, serverReqPrefix+s.id+"."); ok {
			endpoint = rest
		}
		var f eventFilter
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &f); err != nil {
				s.replyServerAPI(reply, nil, apiError(400, "bad request: "+err.Error()))
				return
			}
		}
		host, _ := s.advertise()
		if (f.Name != "" && !strings.Contains(s.name, f.Name)) || (f.Host != "" && f.Host != host) || f.Cluster != "" {
			return // a filtered ping this server does not match stays silent
		}
		switch endpoint {
		case "STATSZ":
			s.replyJSON(reply, map[string]any{"server": s.sysInfo(), "statsz": s.statsz()})
		case "VARZ":
			s.replyServerAPI(reply, s.Varz(), nil)
		case "CONNZ":
			s.replyServerAPI(reply, s.Connz(connzFromRequest(body)), nil)
		case "SUBSZ":
			var o struct {
				Subs   bool   `json:"subscriptions"`
				Test   string `json:"test"`
				Offset int    `json:"offset"`
				Limit  int    `json:"limit"`
			}
			_ = json.Unmarshal(body, &o)
			s.replyServerAPI(reply, s.Subsz(o.Subs, o.Test, o.Offset, o.Limit), nil)
		case "HEALTHZ":
			s.replyServerAPI(reply, map[string]string{"status": "ok"}, nil)
		case "IDZ":
			s.replyJSON(reply, map[string]string{"server_id": s.id, "server_name": s.name})
		default:
			s.replyServerAPI(reply, nil, apiError(404, "endpoint "+endpoint+" is not served by Switchyard"))
		}
	}()
}

// connzFromRequest reads nats-server's CONNZ request options.
func connzFromRequest(body []byte) ConnzOptions {
	var o struct {
		Sort   string `json:"sort"`
		Subs   bool   `json:"subscriptions"`
		Detail bool   `json:"subscriptions_detail"`
		State  int    `json:"state"`
		CID    uint64 `json:"cid"`
		Offset int    `json:"offset"`
		Limit  int    `json:"limit"`
	}
	_ = json.Unmarshal(body, &o)
	state := "open"
	switch o.State {
	case 1:
		state = "closed"
	case 2:
		state = "any"
	}
	return ConnzOptions{Sort: o.Sort, Subs: o.Subs || o.Detail, Detail: o.Detail, State: state, CID: o.CID, Offset: o.Offset, Limit: o.Limit}
}

// statsz is nats-server's server statistics message body.
func (s *Server) statsz() map[string]any {
	v := s.Varz()
	return map[string]any{
		"start": v.Start, "mem": v.Mem, "cores": v.Cores, "cpu": 0,
		"connections": v.Connections, "total_connections": v.TotalConnections,
		"active_accounts": len(s.allAccounts()), "subscriptions": v.Subscriptions,
		"sent":           map[string]int64{"msgs": v.OutMsgs, "bytes": v.OutBytes},
		"received":       map[string]int64{"msgs": v.InMsgs, "bytes": v.InBytes},
		"slow_consumers": v.SlowConsumers,
	}
}

// replyServerAPI sends nats-server's ServerAPIResponse: the server, then
// data or an error.
// errObj, when set, holds at least code and description.
func (s *Server) replyServerAPI(reply string, data any, errObj map[string]any) {
	out := map[string]any{"server": s.sysInfo()}
	if errObj != nil {
		out["error"] = errObj
	} else {
		out["data"] = data
	}
	s.replyJSON(reply, out)
}

// apiError is the error object of a ServerAPIResponse.
func apiError(code int, desc string) map[string]any {
	return map[string]any{"code": code, "description": desc}
}

func (s *Server) replyJSON(reply string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Errorf("System reply on %s: %v", reply, err)
		return
	}
	s.replyRaw(reply, b)
}

// replyRaw publishes payload in the system account.
func (s *Server) replyRaw(reply string, payload []byte) {
	if acc := s.systemAccount(); acc != nil {
		s.sysPublish(acc, reply, payload)
	}
}

// systemAccount is the system account, nil until authsvc names it.
func (s *Server) systemAccount() *account {
	s.sysState.mu.Lock()
	defer s.sysState.mu.Unlock()
	return s.sysState.acc
}

// userInfoSubject is asked, from any account, "who am I": nats-server
// answers it for every account (nats account info shows the answer).
const userInfoSubject = "$SYS.REQ.USER.INFO"

// userInfo is nats-server's answer to $SYS.REQ.USER.INFO.
type userInfo struct {
	User        string        `json:"user"`
	Account     string        `json:"account"`
	AccountName string        `json:"account_name,omitempty"`
	Permissions *publicPerms  `json:"permissions,omitempty"`
	Expires     time.Duration `json:"expires,omitempty"`
}

// publicPerms is a connection's permissions as nats-server shows them.
type publicPerms struct {
	Publish   *subjectPerms  `json:"publish,omitempty"`
	Subscribe *subjectPerms  `json:"subscribe,omitempty"`
	Responses *responsePerms `json:"responses,omitempty"`
}

type subjectPerms struct {
	Allow []string `json:"allow,omitempty"`
	Deny  []string `json:"deny,omitempty"`
}

type responsePerms struct {
	MaxMsgs int           `json:"max"`
	Expires time.Duration `json:"ttl"`
}

// userInfo answers the client's $SYS.REQ.USER.INFO on reply, in its own
// account.
func (c *client) userInfo(reply string) {
	c.mu.Lock()
	ui := userInfo{User: c.identity, Account: c.acc.name}
	if c.userKey == "" {
		ui.AccountName = c.acc.name // a JWT account's name tag is not known here
	}
	if !c.expires.IsZero() {
		ui.Expires = time.Until(c.expires)
	}
	c.mu.Unlock()
	if p := c.perms.Load(); p != nil {
		pp := &publicPerms{}
		if p.pubLimited {
			pp.Publish = &subjectPerms{Allow: p.pubAllow, Deny: p.pubDeny}
		}
		if p.subLimited {
			pp.Subscribe = &subjectPerms{Allow: p.subAllow, Deny: p.subDeny}
		}
		if p.resp != nil {
			pp.Responses = &responsePerms{MaxMsgs: int(p.resp.MaxMsgs), Expires: time.Duration(p.resp.ExpiresNanos)}
		}
		ui.Permissions = pp
	}
	b, err := json.Marshal(map[string]any{"data": ui, "server": c.srv.sysInfo()})
	if err != nil {
		return
	}
	acc := c.acc
	go c.srv.sysPublish(acc, reply, b)
}

// Connection events: $SYS.ACCOUNT.<account>.CONNECT and .DISCONNECT, as
// nats-server publishes them in the system account. They are built only
// when someone (on any node) listens.

type dataStats struct {
	Msgs  int64 `json:"msgs"`
	Bytes int64 `json:"bytes"`
}

// connectionEvent publishes a client's connect (reason "") or disconnect.
func (s *Server) connectionEvent(c *client, reason string) {
	s.sysState.mu.Lock()
	sys := s.sysState.acc
	s.sysState.mu.Unlock()
	c.mu.Lock()
	acc := c.authAcc
	c.mu.Unlock()
	if sys == nil || acc == nil {
		return
	}
	kind, typ := "CONNECT", "io.nats.server.advisory.v1.client_connect"
	if reason != "" {
		kind, typ = "DISCONNECT", "io.nats.server.advisory.v1.client_disconnect"
	}
	subj := "$SYS.ACCOUNT." + acc.name + "." + kind
	if !s.hasInterest(sys, subj) {
		return
	}
	c.mu.Lock()
	ec := c.info(acc)
	c.mu.Unlock()
	ev := map[string]any{"type": typ, "id": nuid.Next(), "timestamp": time.Now().UTC(), "server": s.sysInfo(), "client": &ec}
	if reason != "" {
		now := time.Now().UTC()
		ec.Stop = &now
		ev["reason"] = reason
		ev["received"] = dataStats{c.statInMsgs.Load(), c.statInBytes.Load()}
		c.out.mu.Lock()
		ev["sent"] = dataStats{c.out.msgs, c.out.bytes}
		c.out.mu.Unlock()
	}
	b, err := json.Marshal(ev)
	if err == nil {
		s.sysPublish(sys, subj, b)
	}
}

// hasInterest reports whether a subscriber here or on another node wants
// subj in acc.
func (s *Server) hasInterest(acc *account, subj string) bool {
	if !acc.sublist.Match(subj).Empty() {
		return true
	}
	if s.routing != nil {
		if l := s.routing.primary.Load(); l != nil && !l.remoteFor(acc.name).Match(subj).Empty() {
			return true
		}
	}
	return false
}

// Account connection counts, as nats-server's servers share them: each
// node publishes its count of an account with a connection limit on every
// change and every connsInterval; the others add them up (admit).

func accountConnsSubject(account string) string { return "$SYS.ACCOUNT." + account + ".SERVER.CONNS" }

type accountConns struct {
	Server     sysServerInfo `json:"server"`
	Account    string        `json:"acc"`
	Conns      int32         `json:"conns"`
	TotalConns int32         `json:"total_conns"`
}

// publishConns tells the other nodes this node's count for acc.
func (s *Server) publishConns(acc *account) {
	s.sysState.mu.Lock()
	sys := s.sysState.acc
	s.sysState.mu.Unlock()
	if sys == nil || acc.maxConns.Load() <= 0 {
		return
	}
	n := acc.conns.Load()
	b, err := json.Marshal(accountConns{Server: s.sysInfo(), Account: acc.name, Conns: n, TotalConns: n})
	if err == nil {
		s.sysPublish(sys, accountConnsSubject(acc.name), b)
	}
}

// remoteConns records another node's count from its event.
func (s *Server) remoteConns(_, _, payload []byte) {
	var ev accountConns
	if json.Unmarshal(payload, &ev) != nil || ev.Server.ID == s.id || ev.Account == "" {
		return
	}
	s.account(ev.Account).setRemoteConns(ev.Server.ID, ev.Conns)
}

// repeatConns republishes the counts of limited accounts with clients
// here, so other nodes' figures stay fresh (they expire unrefreshed ones:
// a node that died stops counting).
func (s *Server) repeatConns(ctx context.Context) {
	every(ctx, connsInterval, func() {
		for _, a := range s.allAccounts() {
			if a.maxConns.Load() > 0 && a.conns.Load() > 0 {
				s.publishConns(a)
			}
		}
	})
}
