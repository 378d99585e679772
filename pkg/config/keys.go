package config

import (
	"fmt"
	"math"
	"time"
)

// Owner is the Switchyard service that handles a nats-server key. Keys are
// refused by the frontdoor until their owner exists; when it does, the
// owner's config package takes the entry over.
type Owner string

const (
	Frontdoor Owner = "frontdoor"
	Linkd     Owner = "linkd"     // gateways and leaf nodes
	Streamsvc Owner = "streamsvc" // JetStream
	Authsvc   Owner = "authsvc"   // users, accounts, operators, resolvers
	Nobody    Owner = ""          // not planned, or not decided yet
)

// keySpec is one row of the key table.
type keySpec struct {
	name  string // canonical spelling, used in messages and to catch aliases set twice
	owner Owner
	hint  string // for refused keys: what to do instead
	// apply sets the key on the Server; nil means the frontdoor refuses it.
	apply func(l *loader, s *Server, v value)
}

// reason explains a refusal: the hint, or which service will handle it.
func (k keySpec) reason() string {
	if k.hint != "" {
		return k.hint
	}
	if k.owner == Authsvc {
		return "handled by authsvc, which supports authorization {}, no_auth_user, accounts {}, system_account, operator, resolver and resolver_preload so far"
	}
	if k.owner != Nobody {
		return "handled by " + string(k.owner) + " (not built yet)"
	}
	return "not supported yet"
}

// keys maps every top-level nats-server key we know (lower case, aliases
// included) to how it is handled. A key missing here is unknown.
var keys = table(
	// Listening and identity.
	apply("listen", applyListen),
	apply("host", stringKey(func(s *Server) *string { return &s.Host }), "net"),
	apply("port", intKey(func(s *Server) *int { return &s.Port })),
	apply("server_name", stringKey(func(s *Server) *string { return &s.ServerName })),
	apply("client_advertise", stringKey(func(s *Server) *string { return &s.ClientAdvertise })),
	apply("no_advertise", boolKey(func(s *Server) *bool { return &s.NoAdvertise })),
	apply("client_advertise_probe", stringKey(func(s *Server) *string { return &s.ClientAdvertiseProbe })),

	// Monitoring.
	apply("http", applyHTTP),
	apply("http_host", applyHTTPHost),
	apply("http_port", intKey(func(s *Server) *int { return &s.HTTPPort }), "monitor_port"),

	// Limits.
	apply("max_payload", int32SizeKey(func(s *Server) *int32 { return &s.MaxPayload })),
	apply("max_control_line", int32SizeKey(func(s *Server) *int32 { return &s.MaxControlLine })),
	apply("max_connections", intKey(func(s *Server) *int { return &s.MaxConnections }), "max_conn"),
	apply("max_pending", sizeKey(func(s *Server) *int64 { return &s.MaxPending })),
	apply("max_subscriptions", intKey(func(s *Server) *int { return &s.MaxSubscriptions }), "max_subs"),

	// Liveness.
	apply("ping_interval", durationKey(func(s *Server) *time.Duration { return &s.PingInterval })),
	apply("ping_max", intKey(func(s *Server) *int { return &s.MaxPingsOut })),
	apply("write_deadline", durationKey(func(s *Server) *time.Duration { return &s.WriteDeadline })),
	apply("lame_duck_duration", durationKey(func(s *Server) *time.Duration { return &s.LameDuckDuration })),
	apply("lame_duck_grace_period", durationKey(func(s *Server) *time.Duration { return &s.LameDuckGracePeriod })),

	// Logging.
	apply("debug", boolKey(func(s *Server) *bool { return &s.Debug })),
	apply("trace", boolKey(func(s *Server) *bool { return &s.Trace })),
	apply("logtime", boolKey(func(s *Server) *bool { return &s.Logtime })),
	apply("log_file", stringKey(func(s *Server) *string { return &s.LogFile }), "logfile"),

	// Subject mappings. subject_mappings is our own spelling, kept because
	// it says what the block is; nats-server knows mappings and maps.
	apply("mappings", applyMappings, "maps", "subject_mappings"),

	// Clustering and links between deployments.
	refuse(Nobody, "Switchyard does not cluster frontdoors with nats-server routes: run several frontdoors against the router tier (services/router), see docs/architecture.md", "cluster"),
	refuse(Linkd, "", "gateway", "leafnodes", "leaf"),
	refuse(Nobody, "route, gateway and leaf node connections are not made by the frontdoor: remove it",
		"connect_error_reports", "reconnect_error_reports"),

	// Persistence.
	apply("jetstream", applyJetStream),
	apply("store_dir", applyStoreDir, "storedir"),
	refuse(Streamsvc, "not supported yet: set domain in jetstream {}", "default_js_domain"),

	// Security.
	apply("authorization", applyAuthorization),
	apply("no_auth_user", applyNoAuthUser),
	apply("authsvc", stringKey(func(s *Server) *string { return &s.AuthService })),
	apply("accounts", applyAccounts),
	apply("system_account", applySystemAccount, "system"),
	apply("operator", applyOperator, "operators", "root_operators", "root_operator"),
	apply("resolver", applyResolver, "account_resolver", "accounts_resolver"),
	apply("resolver_preload", applyResolverPreload),
	refuse(Authsvc, "",
		"roots", "root", "resolver_tls", "resolver_pinned_accounts",
		"no_system_account", "no_system", "no_sys_acc",
		"trusted", "trusted_keys", "default_sentinel"),
	apply("tls", applyTLS),
	refuse(Nobody, "not supported yet: clients of a TLS frontdoor must use TLS", "allow_non_tls"),
	apply("ocsp", applyOCSP),
	refuse(Nobody, "not supported yet: ocsp_cache caches the OCSP checks of client certificates (tls { ocsp_peer }), which are not supported; OCSP stapling (ocsp) needs no cache", "ocsp_cache"),
	apply("websocket", applyWebSocket, "ws"),
	refuse(Nobody, "MQTT is not supported: remove the block", "mqtt"),
	refuse(Nobody, "the monitoring endpoint is plain HTTP only for now: use http / http_port behind a TLS proxy",
		"https", "https_port"),
	refuse(Nobody, "not supported yet: serve the monitoring endpoint at the root path", "http_base_path"),
	refuse(Nobody, "not supported yet: connect clients directly, without a PROXY-protocol load balancer", "proxy_protocol", "proxies"),

	// Logging and process management.
	refuse(Nobody, "not supported yet: use trace", "trace_verbose", "trace_headers", "max_traced_msg_len"),
	refuse(Nobody, "not supported yet: timestamps are in local time", "logtime_utc"),
	refuse(Nobody, "log rotation is not built in: rotate log_file with logrotate (copytruncate), or log to stderr and let the supervisor rotate",
		"logfile_size_limit", "log_size_limit", "logfile_max_num", "log_max_num"),
	refuse(Nobody, "syslog output is not built in: log to stderr or log_file and forward with your log shipper", "syslog", "remote_syslog"),
	refuse(Nobody, "not supported yet: let the service manager track the process and read the listening address from the logs",
		"pidfile", "pid_file", "ports_file_dir"),
	apply("prof_port", intKey(func(s *Server) *int { return &s.ProfPort })),

	// Switchyard's own: the router replicas a frontdoor attaches to, and
	// where it takes messages from the other nodes (the mesh).
	apply("routers", applyRouters),
	apply("mesh_listen", stringKey(func(s *Server) *string { return &s.MeshListen })),
	apply("mesh_advertise", stringKey(func(s *Server) *string { return &s.MeshAdvertise })),
	refuse(Nobody, "block profiling is not supported yet: use prof_port's CPU and heap profiles", "prof_block_rate"),

	// Tuning knobs the frontdoor does not have.
	refuse(Nobody, "the frontdoor's match cache is not configurable: remove it", "disable_sublist_cache", "no_sublist_cache"),
	refuse(Nobody, "not supported yet: subjects are limited by max_control_line only", "max_sub_tokens", "max_subscription_tokens"),
	refuse(Nobody, "not supported yet: slow consumers are handled by write_deadline and max_pending", "write_timeout", "no_fast_producer_stall"),
	refuse(Nobody, "headers are always supported: remove it", "no_header_support"),
	refuse(Nobody, "not supported yet: the monitoring endpoint does not list closed connections", "max_closed_clients"),
	refuse(Nobody, "not supported yet", "server_tags", "server_metadata", "feature_flags"),
)

type row struct {
	names []string // canonical spelling first, then aliases
	spec  keySpec
}

func apply(name string, fn func(*loader, *Server, value), aliases ...string) row {
	return row{names: append([]string{name}, aliases...), spec: keySpec{owner: Frontdoor, apply: fn}}
}

func refuse(owner Owner, hint string, names ...string) row {
	return row{names: names, spec: keySpec{owner: owner, hint: hint}}
}

func table(rows ...row) map[string]keySpec {
	m := make(map[string]keySpec)
	for _, r := range rows {
		for _, n := range r.names {
			if _, dup := m[n]; dup {
				panic("config: key " + n + " is in the table twice")
			}
			spec := r.spec
			spec.name = r.names[0]
			if spec.apply == nil {
				// Refused keys are independent: "leaf" is not an alias of
				// "gateway", so messages name the key as written.
				spec.name = n
			}
			m[n] = spec
		}
	}
	return m
}

// The helpers below build apply functions for plain fields; a value of the
// wrong type leaves the default in place and records a problem.

func stringKey(field func(*Server) *string) func(*loader, *Server, value) {
	return func(l *loader, s *Server, v value) {
		if x, ok := l.str(v); ok {
			*field(s) = x
		}
	}
}

func boolKey(field func(*Server) *bool) func(*loader, *Server, value) {
	return func(l *loader, s *Server, v value) {
		if x, ok := l.boolean(v); ok {
			*field(s) = x
		}
	}
}

// applyRouters reads `routers: ["host:port", ...]` (or one string).
func applyRouters(l *loader, s *Server, v value) {
	var items []any
	switch raw := v.raw.(type) {
	case []any:
		items = raw
	case string:
		items = []any{raw}
	default:
		l.bad(v, "expected a list of router addresses (host:port), got %s", describe(v.raw))
		return
	}
	s.Routers = nil
	for i, it := range items {
		e := v.child(fmt.Sprintf("routers[%d]", i), it)
		if addr, ok := l.str(e); ok {
			s.Routers = append(s.Routers, addr)
		}
	}
}

func intKey(field func(*Server) *int) func(*loader, *Server, value) {
	return func(l *loader, s *Server, v value) {
		if x, ok := l.integer(v); ok {
			*field(s) = int(x)
		}
	}
}

func sizeKey(field func(*Server) *int64) func(*loader, *Server, value) {
	return func(l *loader, s *Server, v value) {
		if x, ok := l.size(v); ok {
			*field(s) = x
		}
	}
}

// int32SizeKey is sizeKey for fields the wire protocol keeps in 32 bits;
// the range check happens here because the value would not fit the field
// for Validate to see it.
func int32SizeKey(field func(*Server) *int32) func(*loader, *Server, value) {
	return func(l *loader, s *Server, v value) {
		x, ok := l.size(v)
		if !ok {
			return
		}
		if x > math.MaxInt32 || x < math.MinInt32 {
			l.bad(v, "%d is too large (at most %d)", x, math.MaxInt32)
			return
		}
		*field(s) = int32(x)
	}
}

func durationKey(field func(*Server) *time.Duration) func(*loader, *Server, value) {
	return func(l *loader, s *Server, v value) {
		if x, ok := l.duration(v); ok {
			*field(s) = x
		}
	}
}

// applyListen sets Host and Port from "host:port", or only Port from a
// number. An empty host (":4222") keeps the default, as in nats-server.
func applyListen(l *loader, s *Server, v value) {
	host, port, hasHost, ok := l.hostPort(v)
	if !ok {
		return
	}
	if hasHost && host != "" {
		s.Host = host
	}
	s.Port = port
}

func applyHTTP(l *loader, s *Server, v value) {
	host, port, hasHost, ok := l.hostPort(v)
	if !ok {
		return
	}
	if hasHost && host != "" {
		s.HTTPHost = host
	}
	s.HTTPPort = port
}

func applyHTTPHost(l *loader, s *Server, v value) {
	if x, ok := l.str(v); ok {
		s.HTTPHost = x
	}
}
