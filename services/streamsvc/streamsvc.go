// Package streamsvc is the embeddable JetStream service: a node attached
// to the suite through the routers (like a frontdoor without clients)
// that stores what is published to its streams' subjects and answers the
// $JS.API.> requests of the official clients.
//
//	s, err := streamsvc.New(cfg, log)
//	err = s.Start()
//	defer s.Stop()
package streamsvc

import (
	"context"
	"flag"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/pkg/config"
	"github.com/switchyard-io/switchyard/pkg/logging"
	"github.com/switchyard-io/switchyard/pkg/node"
	authv1 "github.com/switchyard-io/switchyard/proto/switchyard/auth/v1"
	"github.com/switchyard-io/switchyard/services/streamsvc/internal/jsapi"
	"github.com/switchyard-io/switchyard/services/streamsvc/internal/store"
)

// DefaultStoreDir is where streams live unless store_dir says otherwise.
const DefaultStoreDir = "./data"

// Config is streamsvc's configuration: a nats-server format file (its
// jetstream {} block, routers and mesh settings apply) and overrides.
type Config struct {
	ConfigFile string
	Routers    string // comma-separated router replicas; overrides the file's routers
	StoreDir   string // overrides jetstream { store_dir }
	Host       string // where the mesh listens (other nodes send messages there)
	HTTPPort   int    // monitoring; 0: off, -1: a free port
	Debug      bool
}

// RegisterFlags binds the flags to c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	for _, n := range []string{"c", "config"} {
		fs.StringVar(&c.ConfigFile, n, c.ConfigFile, "Configuration file (nats-server format): jetstream {}, routers and mesh_listen apply")
	}
	fs.StringVar(&c.Routers, "routers", c.Routers, "Router replicas to attach to (host:port, comma-separated)")
	fs.StringVar(&c.StoreDir, "store_dir", c.StoreDir, "Directory for streams (default: jetstream { store_dir }, else "+DefaultStoreDir+")")
	for _, n := range []string{"a", "addr"} {
		fs.StringVar(&c.Host, n, c.Host, "Host the mesh listens on (the other nodes send stream messages there)")
	}
	for _, n := range []string{"m", "http_port"} {
		fs.IntVar(&c.HTTPPort, n, c.HTTPPort, "HTTP port for monitoring (0: off, -1: any free port)")
	}
	for _, n := range []string{"D", "debug"} {
		fs.BoolVar(&c.Debug, n, c.Debug, "Enable debug logging")
	}
}

// Service is a running (or ready to run) streamsvc.
type Service struct {
	cfg    Config
	log    *logging.Logger
	server config.Server
	node   *node.Server
	engine *jsapi.Engine
}

// New reads the configuration; nothing runs until Start.
func New(cfg Config, log *logging.Logger) (*Service, error) {
	sc := config.Default()
	if cfg.ConfigFile != "" {
		loaded, err := config.Load(cfg.ConfigFile)
		if err != nil {
			return nil, err
		}
		sc = *loaded
	}
	if cfg.Routers != "" {
		sc.Routers = nil
		for _, r := range strings.Split(cfg.Routers, ",") {
			if r = strings.TrimSpace(r); r != "" {
				sc.Routers = append(sc.Routers, r)
			}
		}
	}
	if cfg.ConfigFile == "" {
		sc.JetStream = config.JetStream{Enabled: true, SyncAlways: true}
	}
	if cfg.StoreDir != "" {
		sc.JetStream.StoreDir = cfg.StoreDir
	}
	if sc.JetStream.StoreDir == "" {
		sc.JetStream.StoreDir = DefaultStoreDir
	}
	if cfg.Host != "" {
		sc.Host = cfg.Host
	}
	sc.HTTPPort = cfg.HTTPPort
	if !sc.JetStream.Enabled {
		return nil, fmt.Errorf("JetStream is not enabled in %s: add jetstream { store_dir: %q } (or jetstream: enabled)", cfg.ConfigFile, DefaultStoreDir)
	}
	if len(sc.Operators) > 0 && sc.AuthService == "" {
		return nil, fmt.Errorf("operator mode: the account JWTs say which accounts have JetStream, and authsvc holds them: set authsvc: \"host:port\" in %s", cfg.ConfigFile)
	}
	if len(sc.Routers) == 0 {
		return nil, fmt.Errorf("no routers: streamsvc reaches clients through the router tier; set routers: [\"host:port\"] or --routers")
	}
	n, err := node.NewNode(sc, log, "streamsvc")
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, log: log, server: sc, node: n}, nil
}

// Start attaches to the suite and opens the stored streams.
func (s *Service) Start() error {
	js := s.server.JetStream
	sync, what := store.SyncAlways, "fsync before every PubAck (group commit)"
	if !js.SyncAlways {
		sync, what = store.SyncInterval, fmt.Sprintf("fsync every %v (acknowledged messages can be lost on power failure)", js.SyncInterval)
	}
	s.log.Infof("Starting Switchyard streamsvc: store %s, %s", js.StoreDir, what)
	if err := s.node.StartMonitoring(); err != nil {
		return err
	}
	if err := s.node.StartProfiling(); err != nil {
		return err
	}
	if err := s.node.Start(); err != nil {
		return err
	}
	maxMemory, maxStore := serverLimits(js, s.log)
	s.log.Infof("JetStream limits: max memory %s, max storage %s (all accounts together)", friendlyBytes(maxMemory), friendlyBytes(maxStore))
	with, without := jetStreamAccounts(&s.server)
	e, err := jsapi.New(s.node, s.log, jsapi.Options{Dir: js.StoreDir, Sync: sync, Interval: js.SyncInterval,
		Domain: js.Domain, Accounts: with, Others: without, MaxMemory: maxMemory, MaxStore: maxStore})
	if err != nil {
		s.node.Shutdown()
		return err
	}
	s.engine = e
	if len(s.server.Operators) > 0 {
		// Operator mode: the account JWTs say which accounts have
		// JetStream, and authsvc holds them; follow its policy.
		s.node.FollowAuth(s.followAccounts)
	}
	s.log.Infof("streamsvc is ready")
	return nil
}

// followAccounts asks authsvc which accounts have JetStream now (a new
// policy revision: a pushed account JWT, a reload) and puts the answer in
// force.
func (s *Service) followAccounts(ctx context.Context, auth authv1.AuthClient, p *authv1.PolicyResponse) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := auth.JetStreamAccounts(cctx, &authv1.PolicyRequest{NodeId: s.node.ID()})
	if err != nil {
		return fmt.Errorf("listing the accounts with JetStream: %w", err)
	}
	with := make([]jsapi.Account, 0, len(resp.Accounts))
	for _, a := range resp.Accounts {
		l := a.GetLimits()
		with = append(with, jsapi.Account{Name: a.Name, Limits: jsapi.AccountLimits{MaxMemory: l.GetMaxMemory(), MaxStore: l.GetMaxStorage(),
			MaxStreams: int(l.GetMaxStreams()), MaxConsumers: int(l.GetMaxConsumers()), MaxAckPending: int(l.GetMaxAckPending()),
			MemoryMaxStreamBytes: l.GetMemoryMaxStreamBytes(), StoreMaxStreamBytes: l.GetStorageMaxStreamBytes(),
			MaxBytesRequired: l.GetMaxBytesRequired()}})
	}
	s.engine.SetAccounts(with, resp.Without)
	return nil
}

// jetStreamAccounts are the accounts with JetStream and their limits (the
// global account, unlimited, when the file defines none, else those with
// jetstream: enabled or a block of limits, as on nats-server) and the
// accounts without it, which are told so. In operator mode both are empty
// here: authsvc tells them (followAccounts).
func jetStreamAccounts(c *config.Server) (with []jsapi.Account, without []string) {
	if len(c.Operators) > 0 {
		return nil, nil
	}
	if len(c.Accounts) == 0 {
		return []jsapi.Account{{Name: config.GlobalAccount, Limits: jsapi.Unlimited}}, nil
	}
	without = []string{config.GlobalAccount}
	for _, a := range c.Accounts {
		if !a.JetStream {
			if a.Name != c.SystemAccount && a.Name != config.SystemAccount {
				without = append(without, a.Name)
			}
			continue
		}
		// The same limits, field for field, with $JS.API.INFO's JSON names.
		with = append(with, jsapi.Account{Name: a.Name, Limits: jsapi.AccountLimits(a.JetStreamLimits)})
	}
	return with, without
}

// Stop closes the streams (their stores synced) and leaves the suite.
func (s *Service) Stop() {
	if s.engine != nil {
		s.engine.Stop()
	}
	s.node.Shutdown()
}

// MonitorAddr is the monitoring listener's address, nil when off.
func (s *Service) MonitorAddr() net.Addr { return s.node.MonitorAddr() }
