// Package cli turns the frontdoor's flags, environment and configuration
// file into a Config: defaults, then the file, then SWITCHYARD_* variables,
// then flags (nats-server's flag names where they overlap).
package cli

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/switchyard-io/switchyard/pkg/config"
	"github.com/switchyard-io/switchyard/pkg/node"
)

// SwitchyardVersion is this build's version.
func SwitchyardVersion() string { return node.SwitchyardVersion }

// Options is the parsed command line.
type Options struct {
	Config      config.Server
	ConfigFile  string
	ShowVersion bool
	// HealthCheck probes the running frontdoor's /healthz instead of
	// running one (the image's HEALTHCHECK: FROM scratch has no curl).
	HealthCheck bool
	// Signal is nats-server's --signal: send a running frontdoor
	// ldm|quit|stop|term|reload, optionally =pid (a preStop hook's lame duck).
	Signal string
	// overlay re-applies environment and flags over a freshly read file.
	overlay func(*config.Server) error
}

// Reload reads the configuration file again with the same environment and
// flags on top (SIGHUP).
func (o *Options) Reload() (config.Server, error) {
	cfg := config.Default()
	if o.ConfigFile != "" {
		loaded, err := config.Load(o.ConfigFile)
		if err != nil {
			return cfg, err
		}
		cfg = *loaded
	}
	if err := o.overlay(&cfg); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// envKeys maps SWITCHYARD_* variables to the flag they stand for.
var envKeys = []struct{ env, flag string }{
	{"SWITCHYARD_HOST", "addr"},
	{"SWITCHYARD_PORT", "port"},
	{"SWITCHYARD_SERVER_NAME", "server_name"},
	{"SWITCHYARD_HTTP_PORT", "http_port"},
	{"SWITCHYARD_CLIENT_ADVERTISE", "client_advertise"},
	{"SWITCHYARD_CLIENT_ADVERTISE_PROBE", "client_advertise_probe"},
	{"SWITCHYARD_WS_ADVERTISE", "ws_advertise"},
	{"SWITCHYARD_WS_ADVERTISE_PROBE", "ws_advertise_probe"},
	{"SWITCHYARD_LOG_FILE", "log"},
	{"SWITCHYARD_DEBUG", "debug"},
	{"SWITCHYARD_TRACE", "trace"},
	{"SWITCHYARD_ROUTERS", "routers"},
	{"SWITCHYARD_MESH_LISTEN", "mesh_listen"},
	{"SWITCHYARD_MESH_ADVERTISE", "mesh_advertise"},
	{"SWITCHYARD_AUTHSVC", "authsvc"},
}

// stringSettings are the plain string settings that a flag and a
// SWITCHYARD_* variable (envKeys, by key) set the same way.
var stringSettings = []struct {
	key   string   // the envKeys flag name
	names []string // flag spellings
	usage string
	field func(*config.Server) *string
}{
	{"addr", []string{"a", "addr", "net"}, "client listen host", func(c *config.Server) *string { return &c.Host }},
	{"server_name", []string{"n", "name", "server_name"}, "server name", func(c *config.Server) *string { return &c.ServerName }},
	{"client_advertise", []string{"client_advertise"}, "client URL to advertise to other frontdoors", func(c *config.Server) *string { return &c.ClientAdvertise }},
	{"client_advertise_probe", []string{"client_advertise_probe"}, "host:lo-hi: find the port of the range that publishes the client port at host (a scaled compose replica) and advertise it", func(c *config.Server) *string { return &c.ClientAdvertiseProbe }},
	{"ws_advertise", []string{"ws_advertise"}, "websocket {} advertise: host[:port] shown to WebSocket clients (needs a websocket {} block)", func(c *config.Server) *string {
		return wsField(c, func(w *config.WebSocket) *string { return &w.Advertise })
	}},
	{"ws_advertise_probe", []string{"ws_advertise_probe"}, "websocket {} advertise_probe: client_advertise_probe for the WebSocket port", func(c *config.Server) *string {
		return wsField(c, func(w *config.WebSocket) *string { return &w.AdvertiseProbe })
	}},
	{"mesh_listen", []string{"mesh_listen"}, "host:port for messages from other nodes (default: client host, free port)", func(c *config.Server) *string { return &c.MeshListen }},
	{"mesh_advertise", []string{"mesh_advertise"}, "host:port other nodes dial for mesh messages", func(c *config.Server) *string { return &c.MeshAdvertise }},
	{"authsvc", []string{"authsvc"}, "authsvc host:port, which decides every CONNECT (default: no authentication)", func(c *config.Server) *string { return &c.AuthService }},
	{"log", []string{"l", "log", "log_file"}, "log file", func(c *config.Server) *string { return &c.LogFile }},
}

// Parse reads args and the environment (through getenv).
func Parse(args []string, getenv func(string) string) (*Options, error) {
	o := &Options{}
	fs := flag.NewFlagSet("frontdoor", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		routers                   string
		port, httpPort            int
		debug, trace, dv, logtime bool
		noAdvertise               bool
		strs                      = make([]string, len(stringSettings))
	)
	str := func(p *string, usage string, names ...string) {
		for _, n := range names {
			fs.StringVar(p, n, "", usage)
		}
	}
	num := func(p *int, usage string, names ...string) {
		for _, n := range names {
			fs.IntVar(p, n, 0, usage)
		}
	}
	boolean := func(p *bool, usage string, names ...string) {
		for _, n := range names {
			fs.BoolVar(p, n, false, usage)
		}
	}
	str(&o.ConfigFile, "configuration file (nats-server format)", "c", "config")
	num(&port, "client port (-1 for a random port)", "p", "port")
	num(&httpPort, "monitoring port", "m", "http_port")
	str(&routers, "router replicas to attach to, comma-separated host:port", "routers")
	for i, st := range stringSettings {
		str(&strs[i], st.usage, st.names...)
	}
	boolean(&noAdvertise, "do not advertise this frontdoor to clients", "no_advertise")
	boolean(&debug, "debug logging", "D", "debug")
	boolean(&trace, "protocol tracing", "V", "trace")
	boolean(&dv, "debug and trace", "DV")
	boolean(&logtime, "timestamps in logs", "T", "logtime")
	boolean(&o.ShowVersion, "print the version", "v", "version")
	boolean(&o.HealthCheck, "probe the running frontdoor's /healthz (same flags and config) and exit 0 if healthy", "healthcheck")
	str(&o.Signal, "send a signal to a running frontdoor: ldm, quit, stop, term or reload, optionally =pid", "sl", "signal")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w (flags follow nats-server: -c file, -a host, -p port, -m http_port, -n name, -D, -V)", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	any := func(names ...string) bool {
		for _, n := range names {
			if set[n] {
				return true
			}
		}
		return false
	}
	if o.ConfigFile == "" {
		o.ConfigFile = getenv("SWITCHYARD_CONFIG")
	}

	o.overlay = func(cfg *config.Server) error {
		for _, e := range envKeys {
			v := getenv(e.env)
			if v == "" {
				continue
			}
			if err := applyEnv(cfg, e.flag, v); err != nil {
				return fmt.Errorf("%s=%q: %w", e.env, v, err)
			}
		}
		for i, st := range stringSettings {
			if any(st.names...) {
				*st.field(cfg) = strs[i]
			}
		}
		if any("p", "port") {
			cfg.Port = port
		}
		if any("m", "http_port") {
			cfg.HTTPPort = httpPort
		}
		if any("routers") {
			cfg.Routers = splitList(routers)
		}
		if any("no_advertise") {
			cfg.NoAdvertise = noAdvertise
		}
		if any("D", "debug") {
			cfg.Debug = debug
		}
		if any("V", "trace") {
			cfg.Trace = trace
		}
		if dv {
			cfg.Debug, cfg.Trace = true, true
		}
		if any("T", "logtime") {
			cfg.Logtime = logtime
		}
		return nil
	}
	cfg, err := o.Reload()
	if err != nil {
		return nil, err
	}
	o.Config = cfg
	return o, nil
}

// wsField is a websocket {} setting; without the block there is no
// WebSocket listener for it to apply to, and it goes nowhere.
func wsField(c *config.Server, f func(*config.WebSocket) *string) *string {
	if c.WebSocket == nil {
		return new(string)
	}
	return f(c.WebSocket)
}

func applyEnv(cfg *config.Server, key, v string) error {
	for _, st := range stringSettings {
		if st.key == key {
			*st.field(cfg) = v
			return nil
		}
	}
	switch key {
	case "routers":
		cfg.Routers = splitList(v)
	case "port", "http_port":
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("not a port number")
		}
		if key == "port" {
			cfg.Port = n
		} else {
			cfg.HTTPPort = n
		}
	case "debug", "trace":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("not true/false")
		}
		if key == "debug" {
			cfg.Debug = b
		} else {
			cfg.Trace = b
		}
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
