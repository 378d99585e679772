// Package authsvc is the embeddable auth service: it reads the
// authorization {} block of a nats-server configuration file and answers
// frontdoors' questions over gRPC (proto/switchyard/auth/v1): must clients
// authenticate, and who is this CONNECT and what may it do. It is asked once
// per CONNECT, never per message.
//
//	a, err := authsvc.New(cfg, log)
//	err = a.Start()
//	<-a.Ready()
//	defer a.Stop()
package authsvc

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/pkg/config"
	"github.com/switchyard-io/switchyard/pkg/logging"
	"github.com/switchyard-io/switchyard/pkg/service"
	authv1 "github.com/switchyard-io/switchyard/proto/switchyard/auth/v1"
	"github.com/switchyard-io/switchyard/services/authsvc/internal/policy"
	"github.com/switchyard-io/switchyard/services/authsvc/internal/resolver"
)

// DefaultPort is where frontdoors reach authsvc unless told otherwise.
const DefaultPort = 7522

// Config is authsvc's configuration.
type Config struct {
	Host string
	// Port for frontdoors; 0 or -1 picks a free port.
	Port int
	// HTTPPort serves monitoring; 0 is off, -1 picks a free port.
	HTTPPort int
	// ConfigFile is a nats-server format file; its authorization {} and
	// no_auth_user apply. Empty: no authentication (every CONNECT is
	// accepted).
	ConfigFile string
	Debug      bool
}

// DefaultConfig is the configuration with nothing set.
func DefaultConfig() Config {
	return Config{Host: "0.0.0.0", Port: DefaultPort}
}

// RegisterFlags binds the flags to c, with c's current values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	service.RegisterFlags(fs, &c.Host, &c.Port, &c.HTTPPort, "frontdoors")
	for _, n := range []string{"c", "config"} {
		fs.StringVar(&c.ConfigFile, n, c.ConfigFile, "Configuration file (nats-server format): authorization {} and no_auth_user apply")
	}
	for _, n := range []string{"D", "debug"} {
		fs.BoolVar(&c.Debug, n, c.Debug, "Enable debug logging")
	}
}

// Validate names the first bad setting.
func (c Config) Validate() error {
	switch {
	case c.Port < -1 || c.Port > 65535:
		return fmt.Errorf("port %d: want 1-65535, or 0 / -1 for any free port", c.Port)
	case c.HTTPPort < -1 || c.HTTPPort > 65535:
		return fmt.Errorf("http_port %d: want 1-65535, 0 for off or -1 for any free port", c.HTTPPort)
	}
	return nil
}

// Service is a running (or ready to run) authsvc.
type Service struct {
	authv1.UnimplementedAuthServer

	cfg    Config
	log    *logging.Logger
	policy atomic.Pointer[policy.Policy]
	grpc   *grpc.Server

	storeMu  sync.Mutex     // guards store and storeCfg (Reload)
	store    resolver.Store // operator mode's account resolver; nil otherwise
	storeCfg string         // the resolver settings store was opened with

	accepted, refused atomic.Int64

	infoMu  sync.Mutex
	info    *authv1.PolicyResponse // what Watch streams last announced
	changed chan struct{}          // closed (and replaced) when info changes
	done    chan struct{}          // closed by Stop

	ports service.Listeners
	ready chan struct{}
	stop  sync.Once
}

// New validates cfg and loads the configuration file.
func New(cfg Config, log *logging.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: log, ready: make(chan struct{}), changed: make(chan struct{}), done: make(chan struct{})}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	s.grpc = grpc.NewServer(
		// Frontdoors ping every 10 s to notice a replica gone silent.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}))
	authv1.RegisterAuthServer(s.grpc, s)
	return s, nil
}

// Reload re-reads the configuration file; on error the policy in force
// stays.
func (s *Service) Reload() error {
	c := &config.Server{}
	if s.cfg.ConfigFile != "" {
		var err error
		if c, err = config.Load(s.cfg.ConfigFile); err != nil {
			return err
		}
	}
	store, err := s.openStore(c)
	if err != nil {
		return fmt.Errorf("config file %s: %w", s.cfg.ConfigFile, err)
	}
	p, err := policy.New(c, store)
	if err != nil {
		return fmt.Errorf("config file %s: %w", s.cfg.ConfigFile, err)
	}
	s.policy.Store(p)
	info := s.announce()
	s.log.Infof("Authorization: required %v, nkey nonce %v, revision %s", info.AuthRequired, info.NonceRequired, info.Revision)
	return nil
}

// storePollInterval is how often authsvc looks for account JWTs another
// replica stored in a shared resolver (Postgres), to tell its watchers.
const storePollInterval = time.Second

// announce computes the policy frontdoors must know and wakes the Watch
// streams when it changed.
func (s *Service) announce() *authv1.PolicyResponse {
	info := s.policy.Load().Info()
	s.infoMu.Lock()
	defer s.infoMu.Unlock()
	if s.info != nil && proto.Equal(s.info, info) {
		return s.info
	}
	s.info = info
	close(s.changed)
	s.changed = make(chan struct{})
	return info
}

// Watch streams the policy to a frontdoor as it changes.
func (s *Service) Watch(req *authv1.PolicyRequest, stream authv1.Auth_WatchServer) error {
	var sent *authv1.PolicyResponse
	for {
		s.infoMu.Lock()
		info, changed := s.info, s.changed
		s.infoMu.Unlock()
		if info != sent {
			if err := stream.Send(info); err != nil {
				return err
			}
			sent = info
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return nil
		case <-s.done:
			return status.Error(codes.Unavailable, "authsvc is shutting down")
		}
	}
}

// Policy answers frontdoors' start-up question.
func (s *Service) Policy(context.Context, *authv1.PolicyRequest) (*authv1.PolicyResponse, error) {
	return s.policy.Load().Info(), nil
}

// Authenticate decides one CONNECT and logs refusals (never secrets).
func (s *Service) Authenticate(_ context.Context, req *authv1.AuthenticateRequest) (*authv1.AuthenticateResponse, error) {
	resp := s.policy.Load().Authenticate(req)
	c := req.GetClient()
	if resp.Ok {
		s.accepted.Add(1)
		s.log.Debugf("Node %s cid:%d (%s:%d): authenticated as %q", req.NodeId, c.GetCid(), c.GetHost(), c.GetPort(), resp.Identity)
	} else {
		s.refused.Add(1)
		s.log.Warnf("Node %s cid:%d (%s:%d, name %q): authorization refused: %s", req.NodeId, c.GetCid(), c.GetHost(), c.GetPort(), c.GetName(), resp.Reason)
	}
	return resp, nil
}

// openStore returns the account resolver the configuration asks for,
// keeping the open one when its settings did not change.
func (s *Service) openStore(c *config.Server) (resolver.Store, error) {
	s.storeMu.Lock()
	defer s.storeMu.Unlock()
	r := c.Resolver
	key := fmt.Sprintf("%#v", r)
	if len(c.Operators) == 0 || r.Type == "" {
		return nil, nil
	}
	if s.store != nil && key == s.storeCfg {
		return s.store, nil
	}
	var store resolver.Store
	var err error
	switch {
	case r.Type == config.ResolverMemory:
		store = resolver.NewMemory(r.Preload)
	case r.Postgres != "":
		store, err = resolver.NewPostgres(context.Background(), r.Postgres, r.Preload)
	default:
		store, err = resolver.NewDir(r.Dir, r.Preload)
	}
	if err != nil {
		return nil, err
	}
	if s.store != nil {
		s.store.Close()
	}
	s.store, s.storeCfg = store, key
	s.log.Infof("Account resolver: %s", store.Kind())
	return store, nil
}

// Account tells a frontdoor how an account routes.
func (s *Service) Account(_ context.Context, req *authv1.AccountRequest) (*authv1.AccountResponse, error) {
	a, skipped, err := s.policy.Load().Account(req.Name)
	for _, sk := range skipped {
		s.log.Warnf("Account %s: %s; the import is left out", req.Name, sk)
	}
	if err != nil {
		s.log.Warnf("Node %s asked for account %s: %v", req.NodeId, req.Name, err)
	}
	return &authv1.AccountResponse{Found: a != nil, Account: a}, nil
}

// JetStreamAccounts tells streamsvc which operator-mode accounts have
// JetStream.
func (s *Service) JetStreamAccounts(_ context.Context, req *authv1.PolicyRequest) (*authv1.JetStreamAccountsResponse, error) {
	resp, skipped, err := s.policy.Load().JetStreamAccounts()
	for _, sk := range skipped {
		s.log.Warnf("Node %s asked for the JetStream accounts: %s; that account is left out", req.NodeId, sk)
	}
	if err != nil {
		s.log.Errorf("Node %s asked for the JetStream accounts: %v", req.NodeId, err)
		return nil, status.Errorf(codes.Unavailable, "listing the JetStream accounts: %v", err)
	}
	return resp, nil
}

// Recheck decides again about a frontdoor's connections after a reload.
func (s *Service) Recheck(_ context.Context, req *authv1.RecheckRequest) (*authv1.RecheckResponse, error) {
	verdicts := s.policy.Load().Recheck(req.Connections)
	for i, v := range verdicts {
		if !v.Keep {
			c := req.Connections[i]
			s.log.Infof("Node %s cid:%d (%q in %s): no longer authorized: %s", req.NodeId, c.Cid, c.Identity, c.Account, v.Reason)
		}
	}
	return &authv1.RecheckResponse{Verdicts: verdicts}, nil
}

// Claims stores or looks up account JWTs for the system account's
// $SYS.REQ.CLAIMS.* requests, which frontdoors pass on.
func (s *Service) Claims(_ context.Context, req *authv1.ClaimsRequest) (*authv1.ClaimsResponse, error) {
	resp := s.policy.Load().Claims(req)
	if resp.Code == 200 {
		if req.Op == authv1.ClaimsRequest_OP_UPDATE {
			s.log.Infof("Account %s: JWT updated (pushed through node %s)", resp.Account, req.NodeId)
			s.announce()
		}
	} else {
		s.log.Warnf("Account %s: claims %v through node %s: %s", resp.Account, req.Op, req.NodeId, resp.Message)
	}
	return resp, nil
}

// Start listens for frontdoors (and monitoring) in the background.
func (s *Service) Start() error {
	s.log.Infof("Starting Switchyard authsvc")
	err := s.ports.Start(service.Options{Host: s.cfg.Host, Port: s.cfg.Port, HTTPPort: s.cfg.HTTPPort,
		Peers: "frontdoors", Monitor: s.handler(), Serve: s.grpc.Serve, Log: s.log})
	if err != nil {
		return err
	}
	s.log.Infof("authsvc is ready")
	close(s.ready)
	go s.pollStore()
	return nil
}

// pollStore announces account JWTs that other replicas stored in a
// shared resolver (the revision includes the store's generation).
func (s *Service) pollStore() {
	t := time.NewTicker(storePollInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.announce()
		}
	}
}

// handler serves /healthz and /authz (policy summary and counters; never
// a secret).
func (s *Service) handler() http.Handler {
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(v)
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/authz", func(w http.ResponseWriter, _ *http.Request) {
		info := s.policy.Load().Info()
		writeJSON(w, map[string]any{
			"auth_required": info.AuthRequired, "nonce_required": info.NonceRequired,
			"auth_timeout": time.Duration(info.AuthTimeoutNanos).Seconds(), "revision": info.Revision,
			"connects_accepted": s.accepted.Load(), "connects_refused": s.refused.Load(),
		})
	})
	return mux
}

// Ready is closed once frontdoors can connect.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Stop closes the listeners and waits for everything started here.
func (s *Service) Stop() {
	s.stop.Do(func() {
		close(s.done)
		s.grpc.Stop()
		s.storeMu.Lock()
		if s.store != nil {
			s.store.Close()
		}
		s.storeMu.Unlock()
		s.ports.CloseMonitor()
		s.ports.Wait()
	})
}

// Addr is the listener's address (nil before Start).
func (s *Service) Addr() net.Addr { return s.ports.Addr() }

// MonitorAddr is the monitoring listener's address, nil when off.
func (s *Service) MonitorAddr() net.Addr { return s.ports.MonitorAddr() }
