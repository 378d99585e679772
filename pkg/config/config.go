// Package config loads the frontdoor's configuration from a file in the
// nats-server configuration format, so operators can bring the file they
// already have. Every key in the file is either applied or refused with a
// reason: silently ignoring a nats-server key (say, "cluster" or "tls") would
// leave a broker running without something its operator asked for.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	// The nats-server lexer/parser is the reference for the file format
	// (includes, variables, size suffixes). Only this package of nats-server
	// may be imported: Switchyard implements the broker itself.
	"github.com/nats-io/nats-server/v2/conf"
)

// Mapping is one entry of the "mappings" block: messages published to
// Source are delivered to one of Destinations instead.
type Mapping struct {
	Source       string        // subject pattern, may have * and >
	Destinations []Destination // one for a plain mapping; several for weighted
}

// Destination is one transform of a Mapping. As in nats-server, when the
// weights of a mapping add up to less than 100, the remainder of the
// messages keeps its original subject.
type Destination struct {
	Subject string // destination transform, e.g. "bar.$1" or "bar.{{wildcard(1)}}"
	Weight  uint8  // percent 1..100; plain mapping = 100
}

// Server is the frontdoor configuration. Field comments give the
// nats-server key(s) each one comes from.
type Server struct {
	Host             string        // "host"/"net", or the host of "listen"
	Port             int           // "port", or the port of "listen"; 0 or -1: pick a free port
	ServerName       string        // "server_name"
	ClientAdvertise  string        // "client_advertise"
	NoAdvertise      bool          // "no_advertise"
	HTTPHost         string        // "http_host", or the host of "http"; empty: follow Host (MonitorHost)
	HTTPPort         int           // "http_port"/"monitor_port", or the port of "http"; 0: off, -1: free port
	ProfPort         int           // "prof_port": Go pprof endpoints on the monitoring host; 0: off
	Routers          []string      // "routers" (Switchyard's own): router replicas (host:port) to attach to; none: a lone frontdoor
	MeshListen       string        // "mesh_listen" (Switchyard's own): host:port for other nodes' messages; empty: the client host, a free port
	MeshAdvertise    string        // "mesh_advertise" (Switchyard's own): host:port the other nodes dial; empty: derived from the listener
	AuthService      string        // "authsvc" (Switchyard's own): host:port of authsvc, which decides every CONNECT; empty: no authentication
	TLS              *TLS          // "tls": TLS on the client port; nil: plain TCP
	OCSP             *OCSP         // "ocsp": OCSP stapling for the TLS listeners; nil: auto
	WebSocket        *WebSocket    // "websocket"/"ws": the WebSocket listener; nil (or port 0): none
	Auth             Auth          // "authorization", "no_auth_user": enforced by authsvc
	Accounts         []Account     // "accounts", sorted by name: enforced by authsvc and the frontdoors
	SystemAccount    string        // "system_account"/"system"
	Operators        []string      // "operator": operator JWT files (or JWTs); set: operator (JWT) mode
	Resolver         Resolver      // "resolver", "resolver_preload"
	MaxPayload       int32         // "max_payload": number or size ("1MB")
	MaxControlLine   int32         // "max_control_line"
	MaxConnections   int           // "max_connections"/"max_conn"
	MaxPending       int64         // "max_pending": number or size ("64MB")
	MaxSubscriptions int           // "max_subscriptions"/"max_subs"; 0: unlimited
	PingInterval     time.Duration // "ping_interval": seconds or "2m"
	MaxPingsOut      int           // "ping_max"
	WriteDeadline    time.Duration // "write_deadline": seconds or "10s"

	Debug, Trace, Logtime bool   // "debug", "trace", "logtime"
	LogFile               string // "log_file"/"logfile"; empty: stderr

	LameDuckDuration    time.Duration // "lame_duck_duration"
	LameDuckGracePeriod time.Duration // "lame_duck_grace_period"

	// "client_advertise_probe" (Switchyard's own): host:lo-hi, the range of
	// host ports one of which publishes this frontdoor's client port (a
	// scaled compose replica). The frontdoor dials each to find its own and
	// advertises that port (AdvertiseProbe).
	ClientAdvertiseProbe string

	Mappings []Mapping // "mappings"/"maps"/"subject_mappings", sorted by Source

	JetStream JetStream // "jetstream", "store_dir": applied by streamsvc
}

// Sizes used by defaults and limits.
const (
	kib = 1024
	mib = 1024 * kib

	// maxPayloadLimit matches nats-server's hard limit: a larger max_payload
	// lets one client make every receiver buffer huge messages.
	maxPayloadLimit = 64 * mib
)

// Default returns the configuration used for keys the file does not set.
// The values are nats-server's defaults, so a file tuned for nats-server
// behaves the same here.
func Default() Server {
	return Server{
		Host:                "0.0.0.0",
		Port:                4222,
		HTTPHost:            "",
		MaxPayload:          1 * mib,
		MaxControlLine:      4 * kib,
		MaxConnections:      64 * kib,
		MaxPending:          64 * mib,
		PingInterval:        2 * time.Minute,
		MaxPingsOut:         2,
		WriteDeadline:       10 * time.Second,
		Logtime:             true,
		LameDuckDuration:    2 * time.Minute,
		LameDuckGracePeriod: 10 * time.Second,
	}
}

// Load reads the configuration file at path over Default(), and validates
// the result. The error lists every problem found, one per line, each with
// the file and line it comes from.
func Load(path string) (*Server, error) {
	m, err := conf.ParseFileWithChecks(path)
	var pathErr *fs.PathError
	switch {
	case errors.As(err, &pathErr) && pathErr.Path == path:
		// Already names the file: "open /etc/fd.conf: no such file or directory".
		return nil, fmt.Errorf("config: %w", err)
	case err != nil:
		// Syntax errors carry only a line number.
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return fromMap(m, path)
}

// Parse is Load for configuration text held in memory; errors give line
// numbers without a file name. Relative includes resolve from the working
// directory.
func Parse(data string) (*Server, error) {
	m, err := conf.ParseWithChecks(data)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return fromMap(m, "")
}

// Validate checks ranges and relations between fields. Load and Parse call
// it already; call it again after overriding fields from flags or the
// environment.
func (s *Server) Validate() error {
	return joinProblems(s.check())
}

// problem is one thing wrong with the configuration, located when it comes
// from a file so the operator can go straight to it.
type problem struct {
	file string
	line int    // 0 when not from a file (Validate on a struct built in code)
	key  string // key path, e.g. port or mappings["a.*"][1].weight
	msg  string
	// related is a second key the finding is about; its line is used when
	// key was left at its default (max_payload vs a small max_pending).
	related string
}

func (p problem) Error() string {
	var b strings.Builder
	switch {
	case p.file != "":
		fmt.Fprintf(&b, "%s:%d: ", p.file, p.line)
	case p.line > 0:
		fmt.Fprintf(&b, "line %d: ", p.line)
	}
	b.WriteString(showKey(p.key))
	// A message starting with a space continues a sentence about the key
	// (`"cluster" is not supported`); others describe its value.
	if !strings.HasPrefix(p.msg, " ") {
		b.WriteString(": ")
	}
	b.WriteString(p.msg)
	return b.String()
}

// showKey quotes plain keys ("port") the way operators see them in the file,
// and leaves paths (mappings["a.*"][0].weight) as they are, since they carry
// their own quotes.
func showKey(key string) string {
	if strings.ContainsAny(key, `["`) {
		return key
	}
	return `"` + key + `"`
}

func joinProblems(ps []problem) error {
	if len(ps) == 0 {
		return nil
	}
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// loader collects problems while applying a parsed file, instead of stopping
// at the first one, so the operator fixes the whole file in one pass.
type loader struct {
	problems []problem
	// set holds, per canonical key (or mapping path), the value that set
	// it: its location is attached to Validate's findings, and a second
	// spelling of the same key is refused.
	set map[string]value
}

func fromMap(m map[string]any, file string) (*Server, error) {
	s := Default()
	l := &loader{set: make(map[string]value)}

	// Sorted so errors, and which of two aliases counts as the duplicate,
	// do not depend on map order.
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)

	for _, k := range names {
		raw := m[k]
		v := located(raw, value{path: strings.ToLower(k), file: file})
		spec, known := keys[strings.ToLower(k)]
		switch {
		case known && spec.apply != nil:
			if prev, dup := l.set[spec.name]; dup {
				l.bad(v, " sets the same thing as %s (%s): keep one of them", showKey(prev.path), prev.where(v))
				continue
			}
			l.set[spec.name] = v
			spec.apply(l, &s, v)
		case isUsedVariable(raw):
			// A variable definition ("limit = 10") referenced elsewhere as
			// $limit: nats-server accepts these at the top level.
		case known:
			l.bad(v, " is not supported: %s", spec.reason())
		default:
			l.bad(v, " is an unknown configuration key: check its spelling, or remove it")
		}
	}

	l.refuseBoth("listen", "host")
	l.refuseBoth("listen", "port")
	l.refuseBoth("http", "http_host")
	l.refuseBoth("http", "http_port")

	// Range checks live in one place (check); point each finding at the
	// line that set the value.
	for _, p := range s.check() {
		for _, k := range []string{p.key, setVia[p.key], p.related} {
			if v, ok := l.set[k]; ok && k != "" {
				p.file, p.line = v.file, v.line
				switch k {
				case setVia[p.key]:
					p.msg = fmt.Sprintf("%s (set by %s)", p.msg, showKey(v.path))
				case p.related:
					p.msg = fmt.Sprintf("%s (see %s)", p.msg, showKey(v.path))
				}
				break
			}
		}
		l.problems = append(l.problems, p)
	}

	if len(l.problems) > 0 {
		sort.SliceStable(l.problems, func(i, j int) bool {
			a, b := l.problems[i], l.problems[j]
			if a.file != b.file {
				return a.file < b.file
			}
			return a.line < b.line
		})
		return nil, joinProblems(l.problems)
	}
	return &s, nil
}

// setVia names the combined key that may have set a field instead of its
// own key.
var setVia = map[string]string{"host": "listen", "port": "listen", "http_host": "http", "http_port": "http"}

func (l *loader) bad(v value, format string, args ...any) {
	l.problems = append(l.problems, problem{file: v.file, line: v.line, key: v.path, msg: fmt.Sprintf(format, args...)})
}

// refuseBoth rejects a file that sets the same setting two ways (listen and
// port): nats-server applies them in map order, which is random.
func (l *loader) refuseBoth(combined, single string) {
	c, ok1 := l.set[combined]
	s, ok2 := l.set[single]
	if ok1 && ok2 {
		l.bad(c, " and %s (%s) both set the %s: keep one of them", showKey(s.path), s.where(c), single)
	}
}

// MonitorHost is the host the monitoring port listens on: http_host, or the
// client host (after flags are applied) when http_host is unset, as in
// nats-server.
func (s *Server) MonitorHost() string {
	if s.HTTPHost == "" {
		return s.Host
	}
	return s.HTTPHost
}
