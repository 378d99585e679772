// Package router is the embeddable router service: it holds the suite-wide
// subject-interest graph fed by every attached node, and tells every node
// the others' interest and where they take mesh connections (messages then
// go node to node; see docs/architecture.md).
//
//	r, err := router.New(cfg, log)
//	err = r.Start()
//	<-r.Ready()
//	defer r.Stop()
package router

import (
	"crypto/rand"
	"encoding/base32"
	"flag"
	"fmt"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/switchyard-io/switchyard/pkg/logging"
	"github.com/switchyard-io/switchyard/pkg/service"
	routerv1 "github.com/switchyard-io/switchyard/proto/switchyard/router/v1"
	"github.com/switchyard-io/switchyard/services/router/internal/hub"
)

// DefaultPort is where nodes attach unless told otherwise.
const DefaultPort = 7422

// Config is the router's configuration.
type Config struct {
	Host string `yaml:"host"`
	// Port for nodes; 0 or -1 picks a free port.
	Port int `yaml:"port"`
	// HTTPPort serves monitoring; 0 is off, -1 picks a free port.
	HTTPPort int    `yaml:"http_port"`
	Name     string `yaml:"name"`
	Debug    bool   `yaml:"debug"`
	// MaxPendingBytes bounds what may wait for one node before its stream
	// is dropped as too slow.
	MaxPendingBytes int64 `yaml:"max_pending"`
	// MaxFrameBytes is the largest frame accepted from a node.
	MaxFrameBytes int `yaml:"max_frame"`
}

// DefaultConfig is the configuration with nothing set.
func DefaultConfig() Config {
	return Config{
		Host:            "0.0.0.0",
		Port:            DefaultPort,
		MaxPendingBytes: 64 << 20,
		MaxFrameBytes:   64 << 20,
	}
}

// RegisterFlags binds the flags to c, with c's current values as defaults
// (so defaults and environment come first, flags last).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	service.RegisterFlags(fs, &c.Host, &c.Port, &c.HTTPPort, "nodes")
	for _, n := range []string{"n", "name"} {
		fs.StringVar(&c.Name, n, c.Name, "Router name, for operators")
	}
	for _, n := range []string{"D", "debug"} {
		fs.BoolVar(&c.Debug, n, c.Debug, "Enable debug logging")
	}
	fs.Int64Var(&c.MaxPendingBytes, "max_pending", c.MaxPendingBytes, "Bytes that may wait for one node before it is dropped as slow")
}

// envKeys maps SWITCHYARD_ROUTER_* variables to the flag they stand for.
var envKeys = []struct{ env, flag string }{
	{"SWITCHYARD_ROUTER_HOST", "addr"},
	{"SWITCHYARD_ROUTER_PORT", "port"},
	{"SWITCHYARD_ROUTER_HTTP_PORT", "http_port"},
	{"SWITCHYARD_ROUTER_NAME", "name"},
	{"SWITCHYARD_ROUTER_DEBUG", "debug"},
	{"SWITCHYARD_ROUTER_MAX_PENDING", "max_pending"},
}

// ApplyEnv sets c from SWITCHYARD_ROUTER_* variables (read through getenv).
func (c *Config) ApplyEnv(getenv func(string) string) error {
	fs := flag.NewFlagSet("env", flag.ContinueOnError)
	c.RegisterFlags(fs)
	for _, k := range envKeys {
		if v := getenv(k.env); v != "" {
			if err := fs.Set(k.flag, v); err != nil {
				return fmt.Errorf("%s=%q: %w", k.env, v, err)
			}
		}
	}
	return nil
}

// Validate names the first bad setting.
func (c Config) Validate() error {
	switch {
	case c.Port < -1 || c.Port > 65535:
		return fmt.Errorf("port %d: want 1-65535, or 0 / -1 for any free port", c.Port)
	case c.HTTPPort < -1 || c.HTTPPort > 65535:
		return fmt.Errorf("http_port %d: want 1-65535, 0 for off or -1 for any free port", c.HTTPPort)
	case c.MaxPendingBytes <= 0:
		return fmt.Errorf("max_pending %d: must be positive", c.MaxPendingBytes)
	case c.MaxFrameBytes <= 0:
		return fmt.Errorf("max_frame %d: must be positive", c.MaxFrameBytes)
	}
	return nil
}

// Router is a running (or ready to run) router.
type Router struct {
	cfg  Config
	log  *logging.Logger
	id   string
	hub  *hub.Hub
	grpc *grpc.Server

	ports service.Listeners
	ready chan struct{}

	stopOnce sync.Once
}

// New validates cfg; nothing listens until Start.
func New(cfg Config, log *logging.Logger) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	id := newID()
	r := &Router{
		cfg:   cfg,
		log:   log,
		id:    id,
		ready: make(chan struct{}),
		hub: hub.New(hub.Options{
			RouterID:   id,
			MaxPending: cfg.MaxPendingBytes,
		}, log),
	}
	r.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(cfg.MaxFrameBytes),
		// Large HTTP/2 windows: a node's snapshot (every subject it wants)
		// arrives in one frame, and the default 64 KB window slows it.
		grpc.InitialWindowSize(4<<20),
		grpc.InitialConnWindowSize(8<<20),
		// Pings find a node that vanished without closing its socket, so
		// its interest is withdrawn within seconds.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 10 * time.Second, Timeout: 5 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	routerv1.RegisterRouterServer(r.grpc, r.hub)
	return r, nil
}

// ID is this replica's router_id (sent in Welcome).
func (r *Router) ID() string { return r.id }

// Start opens the node port and, when http_port is set, monitoring.
func (r *Router) Start() error {
	r.log.Infof("Starting Switchyard router, id %s, name %q", r.id, r.cfg.Name)
	err := r.ports.Start(service.Options{Host: r.cfg.Host, Port: r.cfg.Port, HTTPPort: r.cfg.HTTPPort,
		Peers: "nodes", Monitor: r.hub.Handler(r.cfg.Name), Serve: r.grpc.Serve, Log: r.log})
	if err != nil {
		return err
	}
	r.log.Infof("Router is ready")
	close(r.ready)
	return nil
}

// Ready is closed once nodes can attach.
func (r *Router) Ready() <-chan struct{} { return r.ready }

// Stop ends every node stream (nodes fail over to other replicas), closes
// the listeners and waits for everything started here.
func (r *Router) Stop() {
	r.stopOnce.Do(func() {
		r.log.Infof("Router is shutting down")
		r.hub.Stop()
		done := make(chan struct{})
		go func() {
			r.grpc.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			// A node that stopped reading keeps GracefulStop waiting on
			// its send; cut it.
			r.grpc.Stop()
			<-done
		}
		r.ports.CloseMonitor()
		r.ports.Wait()
		r.hub.Wait()
	})
}

// Addr is the node listener's address (nil before Start).
func (r *Router) Addr() net.Addr { return r.ports.Addr() }

// MonitorAddr is the monitoring listener's address, nil when off.
func (r *Router) MonitorAddr() net.Addr { return r.ports.MonitorAddr() }

// NodeInfo describes one attached node.
type NodeInfo = hub.NodeInfo

// AccountStats is the size of one account's interest.
type AccountStats = hub.AccountStats

// Nodes lists the attached nodes (as /nodez does).
func (r *Router) Nodes() []NodeInfo { return r.hub.Nodes() }

// Interest is the interest graph's size per account (as /interestz does).
func (r *Router) Interest() []AccountStats { return r.hub.Interest() }

// newID returns a random upper-case id, as nats-server's ids look.
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return "R" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}
