package config

import (
	"fmt"
	"iter"
	"sort"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/pkg/subject"
)

// Auth is the authorization {} block and no_auth_user, as nats-server reads
// them. authsvc enforces it; a frontdoor only checks that one is configured
// when the file has it (it must never run open by mistake).
type Auth struct {
	Set         bool   // the file has an authorization block
	Token       string // plain or bcrypt ($2a$...)
	User, Pass  string // the single-user form
	Users       []User
	Timeout     time.Duration // time to send CONNECT; 0: the default
	Default     *Permissions  // default_permissions for users without their own
	NoAuthUser  string        // "no_auth_user": the user a client without credentials becomes
	NoAuthWhere string        // file:line of no_auth_user, for messages
}

// User is one entry of authorization { users: [...] }: a user/password pair
// or an NKey.
type User struct {
	User, Password string // password plain or bcrypt
	Nkey           string // public user nkey (U...)
	Permissions    *Permissions
}

// Permissions is a permissions {} block; nil parts allow everything.
type Permissions struct {
	Publish, Subscribe *SubjectPermission
	Response           *ResponsePermission // allow_responses
}

// SubjectPermission lists allowed and denied subjects (wildcards allowed);
// an empty Allow allows everything not denied.
type SubjectPermission struct {
	Allow, Deny []string
}

// ResponsePermission is allow_responses: publishing to the reply subject of
// a received request, MaxMsgs times within Expires (0: forever).
type ResponsePermission struct {
	MaxMsgs int
	Expires time.Duration
}

// nats-server's allow_responses: true.
const (
	DefaultResponseMaxMsgs = 1
	DefaultResponseExpires = 2 * time.Minute
)

func applyAuthorization(l *loader, s *Server, v value) {
	m, ok := v.raw.(map[string]any)
	if !ok {
		l.bad(v, " expected a block { ... }, got %s", describe(v.raw))
		return
	}
	a := &s.Auth
	a.Set = true
	for k, e := range v.keys(m) {
		if l.simpleAuthKey(k, e, &a.User, &a.Pass, &a.Token, &a.Timeout) {
			continue
		}
		switch k {
		case "users":
			a.Users = l.users(e)
		case "default_permissions":
			a.Default = l.permissions(e)
		case "permissions":
			// The single-user form's permissions become default ones, as in
			// nats-server.
			a.Default = l.permissions(e)
		default:
			l.bad(e, " is not supported in authorization: use token, user/password, users, timeout or default_permissions")
		}
	}
	switch {
	case a.Token != "" && (a.User != "" || len(a.Users) > 0):
		l.bad(v, " has a token and users: nats-server refuses that too; keep one way")
	case a.User != "" && len(a.Users) > 0:
		l.bad(v, " has user and users: put the single user into the users list")
	case a.User != "" && a.Pass == "":
		l.bad(v, " has a user without a password")
	}
}

// simpleAuthKey reads k if it is one of the keys the top-level and the
// websocket {} authorization blocks share: user, password, token, timeout.
func (l *loader) simpleAuthKey(k string, e value, user, pass, token *string, timeout *time.Duration) bool {
	switch k {
	case "token":
		*token, _ = l.str(e)
	case "user", "username":
		*user, _ = l.str(e)
	case "pass", "password":
		*pass, _ = l.str(e)
	case "timeout":
		*timeout = l.seconds(e)
	default:
		return false
	}
	return true
}

func applyNoAuthUser(l *loader, s *Server, v value) {
	s.Auth.NoAuthUser, _ = l.str(v)
	s.Auth.NoAuthWhere = v.where(value{})
}

// seconds reads a timeout given as seconds (number) or a duration string.
func (l *loader) seconds(v value) time.Duration {
	switch r := v.raw.(type) {
	case int64:
		return time.Duration(r) * time.Second
	case float64:
		return time.Duration(r * float64(time.Second))
	case string:
		d, err := time.ParseDuration(r)
		if err == nil {
			return d
		}
	}
	l.bad(v, " expected seconds (2 or 0.5) or a duration (\"2s\"), got %s", describe(v.raw))
	return 0
}

func (l *loader) users(v value) []User {
	var out []User
	for _, e := range l.list(v, "users") {
		m, ok := e.raw.(map[string]any)
		if !ok {
			l.bad(e, " expected a user block { user: ..., password: ... } or { nkey: ... }, got %s", describe(e.raw))
			continue
		}
		var u User
		for k, f := range e.keys(m) {
			switch k {
			case "user", "username":
				u.User, _ = l.str(f)
			case "pass", "password":
				u.Password, _ = l.str(f)
			case "nkey":
				u.Nkey, _ = l.str(f)
			case "permissions", "permission":
				u.Permissions = l.permissions(f)
			case "account":
				l.bad(f, " is not supported here: list the user under accounts { NAME: { users: [...] } } instead")
			default:
				l.bad(f, " is not supported in a user: use user, password, nkey or permissions")
			}
		}
		switch {
		case u.Nkey != "" && u.User != "":
			l.bad(e, " has both nkey and user: a user is one or the other")
		case u.Nkey != "" && (len(u.Nkey) != 56 || u.Nkey[0] != 'U'):
			l.bad(e, " nkey %q is not a public user nkey (56 characters starting with U)", u.Nkey)
		case u.Nkey == "" && u.User == "":
			l.bad(e, " has neither user nor nkey")
		}
		out = append(out, u)
	}
	return out
}

func (l *loader) permissions(v value) *Permissions {
	m, ok := v.raw.(map[string]any)
	if !ok {
		l.bad(v, " expected a block { publish: ..., subscribe: ... }, got %s", describe(v.raw))
		return nil
	}
	p := &Permissions{}
	for k, e := range v.keys(m) {
		switch k {
		case "publish", "pub", "import":
			p.Publish = l.subjectPermission(e)
		case "subscribe", "sub", "export":
			p.Subscribe = l.subjectPermission(e)
		case "allow_responses", "allow_response", "responses":
			p.Response = l.responsePermission(e)
		default:
			l.bad(e, " is not a permission: use publish, subscribe or allow_responses")
		}
	}
	return p
}

// subjectPermission reads "subj", ["a", "b"] or { allow: ..., deny: ... }.
func (l *loader) subjectPermission(v value) *SubjectPermission {
	switch r := v.raw.(type) {
	case string, []any:
		return &SubjectPermission{Allow: l.subjects(v)}
	case map[string]any:
		sp := &SubjectPermission{}
		for k, e := range v.keys(r) {
			switch k {
			case "allow":
				sp.Allow = l.subjects(e)
			case "deny":
				sp.Deny = l.subjects(e)
			default:
				l.bad(e, " is not allowed here: use allow and deny")
			}
		}
		return sp
	}
	l.bad(v, " expected a subject, a list of subjects or { allow: ..., deny: ... }, got %s", describe(v.raw))
	return nil
}

func (l *loader) subjects(v value) []string {
	var items []any
	switch r := v.raw.(type) {
	case string:
		items = []any{r}
	case []any:
		items = r
	default:
		l.bad(v, " expected a subject or a list of subjects, got %s", describe(v.raw))
		return nil
	}
	var out []string
	for i, raw := range items {
		e := v.child(fmt.Sprintf("%s[%d]", v.path, i), raw)
		if s, ok := l.str(e); ok {
			if !subject.ValidSubscribe([]byte(s)) {
				l.bad(e, " %q is not a valid subject or wildcard pattern", s)
				continue
			}
			out = append(out, s)
		}
	}
	return out
}

func (l *loader) responsePermission(v value) *ResponsePermission {
	rp := &ResponsePermission{MaxMsgs: DefaultResponseMaxMsgs, Expires: DefaultResponseExpires}
	switch r := v.raw.(type) {
	case bool:
		if !r {
			return nil
		}
		return rp
	case map[string]any:
		for k, e := range v.keys(r) {
			switch k {
			case "max", "max_msgs", "max_messages", "max_responses":
				if n, ok := l.integer(e); ok {
					rp.MaxMsgs = int(n)
				}
			case "expires", "expiration", "ttl":
				rp.Expires = l.seconds(e)
			default:
				l.bad(e, " is not allowed here: use max and expires")
			}
		}
		return rp
	}
	l.bad(v, " expected true or { max: 1, expires: \"2m\" }, got %s", describe(v.raw))
	return nil
}

// keys returns a block's entries in file order, each located, with its
// key in lower case (nats-server keys are case-insensitive).
func (v value) keys(m map[string]any) iter.Seq2[string, value] {
	return v.entries(m, strings.ToLower)
}

// keysAsWritten is keys for blocks whose keys are names (accounts).
func (v value) keysAsWritten(m map[string]any) iter.Seq2[string, value] {
	return v.entries(m, func(k string) string { return k })
}

func (v value) entries(m map[string]any, key func(string) string) iter.Seq2[string, value] {
	return func(yield func(string, value) bool) {
		type entry struct {
			key string
			v   value
		}
		entries := make([]entry, 0, len(m))
		for k, raw := range m {
			lk := key(k)
			entries = append(entries, entry{lk, v.child(v.path+"."+lk, raw)})
		}
		sort.Slice(entries, func(i, j int) bool {
			if entries[i].v.line != entries[j].v.line {
				return entries[i].v.line < entries[j].v.line
			}
			return entries[i].key < entries[j].key
		})
		for _, e := range entries {
			if !yield(e.key, e.v) {
				return
			}
		}
	}
}
