package config

import "strings"

// Resolver is the resolver {} setting of operator (JWT) mode: where
// account JWTs come from.
type Resolver struct {
	// Type is ResolverMemory (the accounts in Preload, fixed) or
	// ResolverFull (pushed account JWTs stored durably: in Dir, or in
	// PostgreSQL when Postgres is set).
	Type        string
	Dir         string // full: directory of <account>.jwt files
	AllowDelete bool   // full: $SYS.REQ.CLAIMS.DELETE may remove accounts
	// Postgres (Switchyard's own key in resolver {}): a PostgreSQL URL; the
	// full resolver stores account JWTs there instead of Dir.
	Postgres string
	Preload  map[string]string // account public key -> account JWT ("resolver_preload")
}

// Resolver types.
const (
	ResolverMemory = "MEMORY"
	ResolverFull   = "full"
)

// DefaultResolverDir is where the full resolver stores account JWTs when
// resolver {} names no dir.
const DefaultResolverDir = "./jwt"

func applyOperator(l *loader, s *Server, v value) {
	switch r := v.raw.(type) {
	case string:
		s.Operators = append(s.Operators, r)
	case []any:
		for _, e := range l.list(v, "operator JWTs or files") {
			if o, ok := l.str(e); ok {
				s.Operators = append(s.Operators, o)
			}
		}
	default:
		l.bad(v, " expected an operator JWT file (or the JWT itself), or a list of them, got %s", describe(v.raw))
	}
}

func applyResolver(l *loader, s *Server, v value) {
	switch r := v.raw.(type) {
	case string:
		if strings.EqualFold(r, ResolverMemory) {
			s.Resolver.Type = ResolverMemory
			return
		}
		l.bad(v, " %q is not supported: use MEMORY (with resolver_preload) or a full resolver { type: full, dir: \"./jwt\" }", r)
	case map[string]any:
		for k, e := range v.keys(r) {
			switch k {
			case "type":
				t, _ := l.str(e)
				switch strings.ToLower(t) {
				case "full":
					s.Resolver.Type = ResolverFull
				case "memory":
					s.Resolver.Type = ResolverMemory
				case "cache":
					l.bad(e, " the cache resolver is not supported yet: use type: full (authsvc replicas share a Postgres store)")
				default:
					l.bad(e, " %q is not a resolver type: use full or memory", t)
				}
			case "dir":
				s.Resolver.Dir, _ = l.str(e)
			case "allow_delete":
				s.Resolver.AllowDelete, _ = e.raw.(bool)
			case "postgres":
				s.Resolver.Postgres, _ = l.str(e)
			case "interval", "timeout", "limit", "ttl":
				// Synchronisation between resolver servers: authsvc replicas
				// share one store instead, so these have nothing to tune.
			default:
				l.bad(e, " is not supported in resolver {}: use type, dir, allow_delete or postgres")
			}
		}
		if s.Resolver.Type == "" {
			l.bad(v, " needs a type: full")
		}
		if s.Resolver.Type == ResolverFull && s.Resolver.Dir == "" {
			s.Resolver.Dir = DefaultResolverDir
		}
	default:
		l.bad(v, " expected MEMORY or a block { type: full, dir: \"./jwt\" }, got %s", describe(v.raw))
	}
}

func applyResolverPreload(l *loader, s *Server, v value) {
	m, ok := v.raw.(map[string]any)
	if !ok {
		l.bad(v, " expected a block { ACCOUNT_PUBLIC_KEY: \"account JWT\" }, got %s", describe(v.raw))
		return
	}
	if s.Resolver.Preload == nil {
		s.Resolver.Preload = map[string]string{}
	}
	for k, e := range v.keysAsWritten(m) {
		if j, ok := l.str(e); ok {
			s.Resolver.Preload[k] = j
		}
	}
}
