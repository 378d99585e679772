// Package router is the embeddable router service: it holds the suite-wide
// subject-interest graph fed by every attached node and relays messages
// between nodes (the hub shape: every cross-node message passes through a
// router).
//
//	r, err := router.New(cfg, log)
//	err = r.Start()
//	<-r.Ready()
//	defer r.Stop()
package router

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/switchyard-io/switchyard/pkg/logging"
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
	for _, n := range []string{"a", "addr"} {
		fs.StringVar(&c.Host, n, c.Host, "Network host to listen on for nodes")
	}
	for _, n := range []string{"p", "port"} {
		fs.IntVar(&c.Port, n, c.Port, "Port for nodes (0 or -1: any free port)")
	}
	for _, n := range []string{"m", "http_port"} {
		fs.IntVar(&c.HTTPPort, n, c.HTTPPort, "HTTP port for monitoring (0: off, -1: any free port)")
	}
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

	mu      sync.Mutex
	ln      net.Listener
	httpLn  net.Listener
	httpSrv *http.Server
	ready   chan struct{}
	served  sync.WaitGroup

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
	addr := net.JoinHostPort(r.cfg.Host, strconv.Itoa(max(r.cfg.Port, 0)))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening for nodes on %s: %w (port)", addr, err)
	}
	if r.cfg.HTTPPort != 0 {
		maddr := net.JoinHostPort(r.cfg.Host, strconv.Itoa(max(r.cfg.HTTPPort, 0)))
		hln, err := net.Listen("tcp", maddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listening for monitoring on %s: %w (http_port)", maddr, err)
		}
		srv := &http.Server{Handler: r.hub.Handler(r.cfg.Name), ReadHeaderTimeout: 5 * time.Second}
		r.mu.Lock()
		r.httpLn, r.httpSrv = hln, srv
		r.mu.Unlock()
		r.log.Infof("Starting http monitor on %s", logAddr(r.cfg.Host, hln.Addr()))
		r.served.Add(1)
		go func() {
			defer r.served.Done()
			if err := srv.Serve(hln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.log.Errorf("Monitoring server stopped: %v", err)
			}
		}()
	}
	r.mu.Lock()
	r.ln = ln
	r.mu.Unlock()
	r.log.Infof("Listening for nodes on %s", logAddr(r.cfg.Host, ln.Addr()))
	r.served.Add(1)
	go func() {
		defer r.served.Done()
		if err := r.grpc.Serve(ln); err != nil {
			r.log.Errorf("Node listener stopped: %v", err)
		}
	}()
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
		r.mu.Lock()
		srv := r.httpSrv
		r.mu.Unlock()
		if srv != nil {
			srv.Close()
		}
		r.served.Wait()
		r.hub.Wait()
	})
}

// Addr is the node listener's address (nil before Start).
func (r *Router) Addr() net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln == nil {
		return nil
	}
	return r.ln.Addr()
}

// MonitorAddr is the monitoring listener's address, nil when off.
func (r *Router) MonitorAddr() net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.httpLn == nil {
		return nil
	}
	return r.httpLn.Addr()
}

// NodeInfo describes one attached node.
type NodeInfo = hub.NodeInfo

// AccountStats is the size of one account's interest.
type AccountStats = hub.AccountStats

// Nodes lists the attached nodes (as /nodez does).
func (r *Router) Nodes() []NodeInfo { return r.hub.Nodes() }

// Interest is the interest graph's size per account (as /interestz does).
func (r *Router) Interest() []AccountStats { return r.hub.Interest() }

// logAddr shows the configured host with the bound port, as nats-server
// does ("0.0.0.0:7422" rather than Go's "[::]:7422").
func logAddr(host string, a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return net.JoinHostPort(host, strconv.Itoa(ta.Port))
	}
	return a.String()
}

// newID returns a random upper-case id, as nats-server's ids look.
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return "R" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}
