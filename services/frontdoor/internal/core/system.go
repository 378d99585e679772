package core

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	authv1 "github.com/switchyard-io/switchyard/proto/switchyard/auth/v1"
)

// The system account's requests that the frontdoor serves itself, passing
// them to authsvc: pushing and looking up account JWTs, as nsc push and
// the nats CLI do against nats-server's full resolver.
const (
	claimsUpdateSubject  = "$SYS.REQ.CLAIMS.UPDATE"
	accountClaimsPrefix  = "$SYS.REQ.ACCOUNT."
	accountClaimsUpdate  = ".CLAIMS.UPDATE"
	accountClaimsLookup  = ".CLAIMS.LOOKUP"
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

// sysServerInfo is the "server" object of nats-server's system responses.
type sysServerInfo struct {
	Name    string    `json:"name"`
	Host    string    `json:"host"`
	ID      string    `json:"id"`
	Version string    `json:"ver"`
	Time    time.Time `json:"time"`
}

func (s *Server) sysInfo() sysServerInfo {
	host, _ := s.advertise()
	return sysServerInfo{Name: s.name, Host: host, ID: s.id, Version: Version, Time: time.Now().UTC()}
}

// systemRequest serves a claims request published by a client of the
// system account; it reports whether subj was one. The answer comes from
// authsvc on another goroutine, never holding up this reader.
func (c *client) systemRequest(subj, reply []byte, headerLen int, msg []byte) bool {
	op, account, ok := parseClaimsSubject(string(subj))
	if !ok || c.srv.auth == nil {
		return false
	}
	body := msg
	if headerLen >= 0 {
		body = msg[headerLen:]
	}
	req := &authv1.ClaimsRequest{Op: op, Account: account, Jwt: string(body), NodeId: c.srv.id}
	s, acc, replyTo := c.srv, c.acc, string(reply)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), systemRequestTimeout)
		resp, err := s.auth.client.Claims(ctx, req)
		cancel()
		if err != nil {
			resp = &authv1.ClaimsResponse{Code: 503, Account: account, Message: "authsvc did not answer: " + err.Error()}
		}
		if op == authv1.ClaimsRequest_OP_UPDATE && resp.Code == 200 {
			s.auth.refresh() // frontdoors re-read the account now (the others within authPolicyInterval)
		}
		if replyTo == "" {
			return
		}
		var payload []byte
		if op == authv1.ClaimsRequest_OP_LOOKUP && resp.Code == 200 {
			payload = []byte(resp.Jwt)
		} else {
			payload = claimsReply(s.sysInfo(), resp)
		}
		s.sysPublish(acc, replyTo, payload)
	}()
	return true
}

// claimsReply is nats-server's answer to a claims update: data on
// success, error otherwise.
func claimsReply(si sysServerInfo, resp *authv1.ClaimsResponse) []byte {
	m := map[string]any{"code": resp.Code}
	if resp.Account != "" {
		m["account"] = resp.Account
	}
	out := map[string]any{"server": si}
	if resp.Code == 200 {
		m["message"] = resp.Message
		out["data"] = m
	} else {
		m["description"] = resp.Message
		out["error"] = m
	}
	b, _ := json.Marshal(out)
	return b
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
