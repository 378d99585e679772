package config

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/pkg/subject"
)

// Account is one entry of the accounts {} block: its users (who connect
// into it), what it exports to other accounts, what it imports from them,
// and its own subject mappings. Subjects of different accounts never meet
// except through an export and a matching import.
type Account struct {
	Name     string
	Users    []User
	Default  *Permissions // default_permissions for its users without their own
	Exports  []Export
	Imports  []Import
	Mappings []Mapping
	// JetStream is on for the account ("jetstream: enabled", or a block
	// of limits), bounded by JetStreamLimits.
	JetStream       bool
	JetStreamLimits JetStreamLimits
}

// Export offers a stream (messages published in the account) or a service
// (requests the account answers) to other accounts.
type Export struct {
	Subject  string
	Service  bool     // false: a stream
	Accounts []string // who may import it; empty: every account (public)
	// Services only: Singleton (one reply per request, the default), Stream
	// or Chunked (several), and how long the responder may take.
	ResponseType      string
	ResponseThreshold time.Duration
}

// Import takes an export of another account into this one.
type Import struct {
	Service bool
	Account string // the exporting account
	Subject string // the subject in the exporting account (wildcards allowed)
	// To is the subject in this account: a stream's messages arrive there,
	// a service is requested there. Empty: the same subject. A stream's
	// prefix is stored here as prefix.subject.
	To string
}

// Response types of service exports, as nats-server names them.
const (
	ResponseSingleton = "Singleton"
	ResponseStream    = "Stream"
	ResponseChunked   = "Chunked"
)

// DefaultResponseThreshold is nats-server's time a service import waits for
// responses before it forgets the request.
const DefaultResponseThreshold = 2 * time.Minute

// GlobalAccount is the account of clients that belong to no other: every
// client without accounts {}, and the users of authorization {}.
const GlobalAccount = "$G"

// SystemAccount is the system account's name when system_account does not
// name another.
const SystemAccount = "$SYS"

func applyAccounts(l *loader, s *Server, v value) {
	m, ok := v.raw.(map[string]any)
	if !ok {
		l.bad(v, " expected a block { NAME: { users: [...] } }, got %s", describe(v.raw))
		return
	}
	for name, e := range v.keysAsWritten(m) {
		if name == GlobalAccount {
			l.bad(e, " %s is the global account's reserved name: choose another", name)
			continue
		}
		s.Accounts = append(s.Accounts, l.account(name, e))
	}
	l.checkAccounts(s, v)
}

func applySystemAccount(l *loader, s *Server, v value) {
	s.SystemAccount, _ = l.str(v)
}

func (l *loader) account(name string, v value) Account {
	a := Account{Name: name}
	m, ok := v.raw.(map[string]any)
	if !ok {
		l.bad(v, " expected an account block { users: [...], exports: [...], imports: [...] }, got %s", describe(v.raw))
		return a
	}
	for k, e := range v.keys(m) {
		switch k {
		case "users":
			a.Users = l.users(e)
		case "default_permissions":
			a.Default = l.permissions(e)
		case "exports":
			a.Exports = l.exports(e)
		case "imports":
			a.Imports = l.imports(e)
		case "mappings", "maps":
			a.Mappings = l.mappings(e)
		case "jetstream":
			a.JetStream, a.JetStreamLimits = l.accountJetStream(e)
		default:
			l.bad(e, " is not supported in an account yet: use users, default_permissions, exports, imports, mappings or jetstream")
		}
	}
	return a
}

// list returns a list's entries, each located, or reports that v is not one.
func (l *loader) list(v value, what string) []value {
	items, ok := v.raw.([]any)
	if !ok {
		l.bad(v, " expected a list of %s, got %s", what, describe(v.raw))
		return nil
	}
	out := make([]value, len(items))
	for i, raw := range items {
		out[i] = v.child(fmt.Sprintf("%s[%d]", v.path, i), raw)
	}
	return out
}

func (l *loader) exports(v value) []Export {
	var out []Export
	for _, e := range l.list(v, "exports") {
		m, ok := e.raw.(map[string]any)
		if !ok {
			l.bad(e, " expected {stream: \"subject\"} or {service: \"subject\"}, got %s", describe(e.raw))
			continue
		}
		var x Export
		kinds := 0
		for k, f := range e.keys(m) {
			switch k {
			case "stream", "service":
				kinds++
				x.Service = k == "service"
				x.Subject, _ = l.str(f)
				if !subject.ValidSubscribe([]byte(x.Subject)) {
					l.bad(f, " %q is not a valid subject or wildcard pattern", x.Subject)
				}
			case "accounts":
				for _, a := range l.list(f, "account names") {
					if n, ok := l.str(a); ok {
						x.Accounts = append(x.Accounts, n)
					}
				}
			case "response", "response_type":
				rt, _ := l.str(f)
				switch strings.ToLower(rt) {
				case "single", "singleton":
					x.ResponseType = ResponseSingleton
				case "stream":
					x.ResponseType = ResponseStream
				case "chunked":
					x.ResponseType = ResponseChunked
				default:
					l.bad(f, " %q is not a response type: use singleton, stream or chunked", rt)
				}
			case "threshold", "response_threshold", "response_max_time", "response_time":
				x.ResponseThreshold = l.seconds(f)
			default:
				l.bad(f, " is not supported in an export: use stream or service, accounts, response_type and response_threshold")
			}
		}
		if kinds != 1 {
			l.bad(e, " needs exactly one of stream and service")
			continue
		}
		if x.Service {
			if x.ResponseType == "" {
				x.ResponseType = ResponseSingleton
			}
			if x.ResponseThreshold <= 0 {
				x.ResponseThreshold = DefaultResponseThreshold
			}
		} else if x.ResponseType != "" {
			l.bad(e, " response_type is for service exports only")
		}
		out = append(out, x)
	}
	return out
}

func (l *loader) imports(v value) []Import {
	var out []Import
	for _, e := range l.list(v, "imports") {
		m, ok := e.raw.(map[string]any)
		if !ok {
			l.bad(e, " expected {stream: {account: A, subject: \"x\"}} or {service: {...}}, got %s", describe(e.raw))
			continue
		}
		var im Import
		var prefix string
		kinds := 0
		for k, f := range e.keys(m) {
			switch k {
			case "stream", "service":
				kinds++
				im.Service = k == "service"
				src, ok := f.raw.(map[string]any)
				if !ok {
					l.bad(f, " expected {account: NAME, subject: \"x\"}, got %s", describe(f.raw))
					continue
				}
				for sk, g := range f.keys(src) {
					switch sk {
					case "account":
						im.Account, _ = l.str(g)
					case "subject":
						im.Subject, _ = l.str(g)
					default:
						l.bad(g, " is not allowed here: use account and subject")
					}
				}
			case "to", "local_subject":
				im.To, _ = l.str(f)
			case "prefix":
				prefix, _ = l.str(f)
			default:
				l.bad(f, " is not supported in an import: use stream or service, to (or prefix for a stream)")
			}
		}
		switch {
		case kinds != 1:
			l.bad(e, " needs exactly one of stream and service")
			continue
		case im.Account == "" || im.Subject == "":
			l.bad(e, " needs the exporting account and the subject: {account: NAME, subject: \"x\"}")
			continue
		case !subject.ValidSubscribe([]byte(im.Subject)):
			l.bad(e, " subject %q is not a valid subject or wildcard pattern", im.Subject)
			continue
		case prefix != "" && im.Service:
			l.bad(e, " prefix is for stream imports: a service import uses to")
			continue
		case prefix != "" && im.To != "":
			l.bad(e, " has both prefix and to: keep one")
			continue
		case prefix != "":
			im.To = prefix + "." + im.Subject
		}
		if im.To != "" {
			if _, err := ImportTransform(im); err != nil {
				l.bad(e, " to %q: %v", im.To, err)
				continue
			}
		}
		out = append(out, im)
	}
	return out
}

// ImportTransform maps subjects between the two sides of an import: from
// the exporter's subject to the importer's (To) for a stream, and the other
// way for a service. nil when the subject is kept. Wildcards in To stand
// for the source's wildcards in order, as nats-server reads them.
func ImportTransform(im Import) (*subject.Transform, error) {
	if im.To == "" || im.To == im.Subject {
		return nil, nil
	}
	from, to := im.Subject, im.To
	if im.Service {
		from, to = to, from
	}
	return subject.NewTransform(from, positional(to))
}

// positional turns the plain wildcards of dst into references to the
// source's wildcards in order ("a.*.>" onto "b.*.>" becomes "b.$1.>").
func positional(dst string) string {
	if strings.Contains(dst, "$") || strings.Contains(dst, "{{") {
		return dst
	}
	n := 0
	toks := strings.Split(dst, ".")
	for i, t := range toks {
		if t == "*" {
			n++
			toks[i] = fmt.Sprintf("$%d", n)
		}
	}
	return strings.Join(toks, ".")
}

// checkAccounts resolves what accounts refer to: import sources exist and
// export what is imported to the importer, service imports form no cycle,
// user names are unique across all accounts and authorization {}.
func (l *loader) checkAccounts(s *Server, v value) {
	byName := map[string]*Account{}
	for i := range s.Accounts {
		byName[s.Accounts[i].Name] = &s.Accounts[i]
	}
	seenUser := map[string]string{}
	for _, u := range s.Auth.Users {
		seenUser[u.User+u.Nkey] = GlobalAccount
	}
	if s.Auth.User != "" {
		seenUser[s.Auth.User] = GlobalAccount
	}
	sort.Slice(s.Accounts, func(i, j int) bool { return s.Accounts[i].Name < s.Accounts[j].Name })
	for _, a := range s.Accounts {
		for _, u := range a.Users {
			id := u.User + u.Nkey
			if other, dup := seenUser[id]; dup {
				l.bad(v, " user %q is in accounts %s and %s: a user belongs to one account", id, other, a.Name)
			}
			seenUser[id] = a.Name
		}
		for _, im := range a.Imports {
			src := byName[im.Account]
			if src == nil {
				l.bad(v, " account %s imports %q from account %s, which is not defined", a.Name, im.Subject, im.Account)
				continue
			}
			if err := src.exportsTo(im, a.Name); err != nil {
				l.bad(v, " account %s imports %q from %s: %v", a.Name, im.Subject, im.Account, err)
			}
		}
	}
	if cyc := serviceCycle(s.Accounts); cyc != "" {
		l.bad(v, " service imports form a cycle (%s): a request would go round forever; remove one import", cyc)
	}
}

// exportsTo reports why im may not take from a; nil when an export of the
// right kind covers the imported subject and is open to the importer.
func (a *Account) exportsTo(im Import, importer string) error {
	for _, x := range a.Exports {
		if x.Service != im.Service || !subject.Covers(x.Subject, im.Subject) {
			continue
		}
		if len(x.Accounts) == 0 {
			return nil
		}
		for _, n := range x.Accounts {
			if n == importer {
				return nil
			}
		}
		return fmt.Errorf("the export %q is private to %s", x.Subject, strings.Join(x.Accounts, ", "))
	}
	kind := "stream"
	if im.Service {
		kind = "service"
	}
	return fmt.Errorf("it has no %s export covering that subject", kind)
}

// serviceCycle finds service imports that lead a request back to where it
// started, naming the chain ("A \"x\" -> B \"y\" -> A"), or returns "": a
// request published in A on an import's local subject lands in B on the
// exported subject; it goes on when one of B's service imports takes that
// subject. (The frontdoor applies one service import per message, so a
// cycle could not loop; it is refused because it can only be a mistake.)
func serviceCycle(accounts []Account) string {
	type hop struct {
		account, local, remote, to string // local: the subject requested in account
	}
	var hops []hop
	for _, a := range accounts {
		for _, im := range a.Imports {
			if im.Service {
				local := im.To
				if local == "" {
					local = im.Subject
				}
				hops = append(hops, hop{a.Name, local, im.Subject, im.Account})
			}
		}
	}
	overlap := func(x, y string) bool { return subject.Covers(x, y) || subject.Covers(y, x) }
	var walk func(start, at int, seen []int) string
	walk = func(start, at int, seen []int) string {
		h := hops[at]
		for next, n := range hops {
			if n.account != h.to || !overlap(n.local, h.remote) {
				continue
			}
			if next == start {
				var b strings.Builder
				for _, i := range append(seen, at) {
					fmt.Fprintf(&b, "%s %q -> ", hops[i].account, hops[i].local)
				}
				b.WriteString(hops[start].account)
				return b.String()
			}
			if slices.Contains(seen, next) || next == at {
				continue
			}
			if c := walk(start, next, append(seen, at)); c != "" {
				return c
			}
		}
		return ""
	}
	for i := range hops {
		if c := walk(i, i, nil); c != "" {
			return c
		}
	}
	return ""
}
