// Package node is a Switchyard node: the NATS server a frontdoor runs (the
// accept loop, client connections, accounts, the subject trie and
// delivery) and its attachment to the suite (router links, the mesh). A
// frontdoor serves clients with it; streamsvc and linkd attach with it in
// node mode (NewNode) and subscribe and publish through internal
// subscriptions. See LOCKS.md for lock order.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/switchyard-io/switchyard/pkg/config"
	"github.com/switchyard-io/switchyard/pkg/logging"
	"github.com/switchyard-io/switchyard/pkg/nonce"
)

// Config is the frontdoor's configuration: the nats-server keys it owns.
type Config = config.Server

// maxClosedConns bounds the closed-connection history /connz?state=closed
// shows, as nats-server's default does.
const maxClosedConns = 10000

// firstPingInterval: nats-server pings a new client after at most 2 s so a
// dead peer is found quickly, then every ping_interval.
const firstPingInterval = 2 * time.Second

// Server is one frontdoor's client-facing NATS server.
type Server struct {
	log       *logging.Logger
	cfg       atomic.Pointer[Config]
	tls       atomic.Pointer[tls.Config] // the client port's, from cfg.TLS; nil: plain
	tlsStamp  atomic.Pointer[string]     // the TLS files as last loaded (tlsFilesStamp)
	wsStamp   atomic.Pointer[string]     // the same for websocket {}'s tls
	wsTLS     atomic.Pointer[tls.Config] // websocket {}'s, from cfg.WebSocket.TLS; nil: ws://
	stopWatch chan struct{}              // closed by Shutdown: ends watchTLS and the advertise probe
	staplers  staplers                   // OCSP staples of tls and wss's certificates
	done      chan struct{}              // closed when Shutdown is complete
	id        string
	name      string
	start     time.Time

	accMu    sync.Mutex          // guards accounts
	accounts map[string]*account // by name; never removed
	gacc     *account            // the global account ($G)
	importMu sync.Mutex          // serializes rebuildStreamImports
	sys      sysPublisher        // the frontdoor's own messages (system replies)
	sysState sysState            // the system account's request handlers

	mu           sync.Mutex // guards clients, closed, listeners
	clients      map[uint64]*client
	closed       []*ClosedConn
	listener     net.Listener
	wsListener   net.Listener // websocket {}; nil without one
	httpListener net.Listener
	httpServer   *http.Server
	reqStats     httpStats
	loadedAt     atomic.Pointer[time.Time]
	cfgGen       atomic.Uint64 // bumped by Reload; readers re-apply limits

	nextCID          atomic.Uint64
	wg               sync.WaitGroup
	ready            chan struct{}
	shutdown         atomic.Bool
	lameDuck         atomic.Bool
	slowConsumers    atomic.Int64
	staleConnections atomic.Int64
	totals           totals
	routing          *routing     // nil without routers
	probedPort       atomic.Int32 // client_advertise_probe's find; 0: not yet
	probedWSPort     atomic.Int32 // websocket {} advertise_probe's find; 0: not yet
	auth             *authLink    // nil without authsvc: no authentication
	kind             string       // "frontdoor", or the service embedding a node (NewNode)
}

// totals keeps the traffic of closed connections so /varz counts all time.
type totals struct {
	inMsgs, inBytes, outMsgs, outBytes atomic.Int64
}

// New validates cfg and prepares a server; Start opens the port.
func New(cfg Config, log *logging.Logger) (*Server, error) { return newServer(cfg, log, "") }

// NewNode prepares a server for another service (kind, e.g. "streamsvc")
// to attach to the suite with: it joins the routers and the mesh like a
// frontdoor, but has no client port and advertises none; the service
// subscribes and publishes through SubscribeInternal and Publisher.
func NewNode(cfg Config, log *logging.Logger, kind string) (*Server, error) {
	return newServer(cfg, log, kind)
}

func newServer(cfg Config, log *logging.Logger, kind string) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	kp, err := nkeys.CreateServer()
	if err != nil {
		return nil, fmt.Errorf("creating server identity: %w", err)
	}
	id, _ := kp.PublicKey()
	s := &Server{
		log:       log,
		id:        id,
		name:      cfg.ServerName,
		start:     time.Now(),
		accounts:  map[string]*account{},
		clients:   map[uint64]*client{},
		ready:     make(chan struct{}),
		kind:      "frontdoor",
		stopWatch: make(chan struct{}),
		done:      make(chan struct{}),
	}
	s.gacc = s.account(config.GlobalAccount)
	if s.name == "" {
		s.name = id
	}
	if kind != "" {
		s.kind = kind
	}
	if err := s.setConfig(&cfg); err != nil {
		return nil, err
	}
	if len(cfg.Routers) > 0 {
		s.routing = newRouting(s, cfg.Routers)
	}
	if cfg.AuthService != "" {
		if s.auth, err = newAuthLink(s, cfg.AuthService); err != nil {
			return nil, fmt.Errorf("authsvc %s: %w", cfg.AuthService, err)
		}
	} else if kind == "" && (cfg.Auth.Set || cfg.Auth.NoAuthUser != "" || len(cfg.Accounts) > 0 || len(cfg.Operators) > 0 || cfg.WebSocket.AuthOverride()) {
		// Never serve open by mistake when the file asks for authorization.
		return nil, fmt.Errorf("authorization {}, accounts {}, operator and no_auth_user (and websocket {}'s) are enforced by authsvc: run authsvc with this configuration file and set authsvc: \"host:port\" (or --authsvc) for this frontdoor")
	}
	return s, nil
}

func (s *Server) setConfig(cfg *Config) error {
	m, err := compileMappings(cfg.Mappings)
	if err != nil {
		return err
	}
	// Stamps before reading: a change meanwhile is read again.
	stamp, wsStamp := tlsFilesStamp(cfg.TLS), ""
	if w := cfg.WebSocket; w.Enabled() {
		wsStamp = tlsFilesStamp(w.TLS)
	}
	tc, st, err := s.loadTLS(cfg.TLS, cfg.OCSP)
	if err != nil {
		return err
	}
	var wtc *tls.Config
	var wst *ocspStapler
	if w := cfg.WebSocket; w.Enabled() && w.TLS != nil {
		if wtc, wst, err = s.loadTLS(w.TLS, cfg.OCSP); err != nil {
			if st != nil {
				st.stop()
			}
			return fmt.Errorf("websocket: %w", err)
		}
	}
	s.tls.Store(tc) // a reload (SIGHUP) takes new certificate files
	s.wsTLS.Store(wtc)
	s.staplers.replace("client", st)
	s.staplers.replace("websocket", wst)
	s.tlsStamp.Store(&stamp)
	s.wsStamp.Store(&wsStamp)
	s.cfg.Store(cfg)
	s.gacc.mappings.Store(m) // the top-level mappings are the global account's
	now := time.Now()
	s.loadedAt.Store(&now)
	return nil
}

func (s *Server) configLoadTime() time.Time { return *s.loadedAt.Load() }

// Config returns the configuration in force.
func (s *Server) Config() *Config { return s.cfg.Load() }

// ID is the server's NKey-style id.
func (s *Server) ID() string { return s.id }

// Name is server_name (the id when unset).
func (s *Server) Name() string { return s.name }

// Start listens on the client port and accepts in the background (a
// node: only joins the routers).
func (s *Server) Start() error {
	if s.isNode() {
		if s.routing != nil {
			if err := s.routing.start(); err != nil {
				return err
			}
		}
		s.log.Infof("Attached to the suite as a %s node", s.kind)
		close(s.ready)
		return nil
	}
	cfg := s.Config()
	port := cfg.Port
	if port == -1 {
		port = 0
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening for clients on %s: %w", addr, err)
	}
	if s.routing != nil {
		if err := s.routing.start(); err != nil {
			l.Close()
			return err
		}
	}
	if s.auth != nil {
		// The first clients' INFO must already say whether to
		// authenticate: wait briefly for authsvc's policy.
		ctx := s.auth.start(2*time.Second, s.auth.apply)
		s.auth.wg.Add(1)
		go func() { defer s.auth.wg.Done(); s.repeatConns(ctx) }()
	}
	s.mu.Lock()
	s.listener = l
	s.mu.Unlock()
	if cfg.WebSocket.Enabled() {
		if err := s.startWebSocket(cfg); err != nil {
			l.Close()
			return err
		}
	}
	s.log.Infof("Listening for client connections on %s", l.Addr())
	if s.tls.Load() != nil {
		s.log.Infof("TLS required for client connections")
	}
	s.staplers.run()
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.watchTLS(s.stopWatch) }()
	s.log.Infof("Server is ready")
	s.wg.Add(1)
	go s.acceptLoop(l, s.accept)
	if probes := s.advertiseProbes(cfg); len(probes) > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		s.wg.Add(1 + len(probes))
		go func() { defer s.wg.Done(); <-s.stopWatch; cancel() }()
		for _, p := range probes {
			go func() { defer s.wg.Done(); s.runAdvertiseProbe(ctx, p) }()
		}
	}
	close(s.ready)
	return nil
}

// Ready is closed once the client port is open.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the client listener's address.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return nil
	}
	return s.listener.Addr()
}

// acceptLoop accepts connections on l and hands each to serve.
func (s *Server) acceptLoop(l net.Listener, serve func(net.Conn)) {
	defer s.wg.Done()
	var delay time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, keep serving.
			if delay = max(2*delay, 5*time.Millisecond); delay > time.Second {
				delay = time.Second
			}
			s.log.Errorf("Temporary client accept error (%v), sleeping %v", err, delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		serve(conn)
	}
}

// accept starts a client on the client port.
func (s *Server) accept(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if c := s.startClient(conn, nil, ""); c != nil {
		go c.readLoop()
	}
}

// startClient registers a new client connection and queues its INFO; the
// caller runs its readLoop. ws is set for a WebSocket client (upgraded
// already), clientIP when a proxy named the client. It returns nil when
// the connection was refused.
func (s *Server) startClient(conn net.Conn, ws *wsConn, clientIP string) *client {
	cfg := s.Config()
	c := newClient(s, conn, s.nextCID.Add(1))
	if clientIP != "" {
		c.host = clientIP
	}
	c.ws = ws
	info := s.baseInfo()
	info.ClientID, info.ClientIP = c.id, c.host
	tlsConf := s.tls.Load()
	upgradeTLS := false
	switch {
	case ws != nil:
		c.applyLimits(cfg)
		c.adjustInfo(&info)
	case tlsConf != nil && cfg.TLS != nil:
		info.TLSRequired, info.TLSVerify = true, cfg.TLS.Verify
		c.tlsWait = tlsTimeout(cfg.TLS)
		upgradeTLS = true
	}
	if s.auth != nil {
		if auth, wantNonce := s.auth.required(ws != nil); auth {
			info.AuthRequired, c.authPending, c.authRequired = true, true, true
			if wantNonce {
				c.nonce = nonce.New()
				info.Nonce = c.nonce
			}
			c.authTimer = time.AfterFunc(s.auth.timeout(ws != nil), func() {
				if !c.authDone.Load() {
					c.sendErrAndClose("Authentication Timeout", "Authentication Timeout")
				}
			})
		}
	}
	c.out.appendRaw(infoLine(&info))

	s.mu.Lock()
	if s.shutdown.Load() || s.lameDuck.Load() {
		s.mu.Unlock()
		conn.Close()
		return nil
	}
	if cfg.MaxConnections > 0 && len(s.clients) >= cfg.MaxConnections {
		s.mu.Unlock()
		s.log.Warnf("%s - refused: maximum connections (%d) exceeded; raise max_connections or add frontdoors", c, cfg.MaxConnections)
		c.out.appendRaw([]byte("-ERR 'maximum connections exceeded'\r\n"))
		c.closed.Store(true)
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		out := c.out.take()
		if ws != nil {
			out = ws.w.frame([][]byte{wsCloseFrame(wsClosePolicy, "Maximum Connections Exceeded")}, out)
		}
		writeBuffers(conn, out)
		conn.Close()
		return nil
	}
	s.clients[c.id] = c
	s.wg.Add(1)
	s.mu.Unlock()
	s.log.Debugf("%s - client connection created", c)

	c.pingTimer = time.AfterFunc(min(cfg.PingInterval, firstPingInterval), c.pingTimerFired)
	if upgradeTLS {
		c.startTLS(conn, tlsConf, cfg.TLS.HandshakeFirst)
	} else {
		c.flush()
	}
	return c
}

// adjustInfo makes an INFO right for this client's listener: WebSocket
// clients see the WebSocket port (and wss's TLS), as on nats-server, and
// no connect_urls, which name the other frontdoors' client ports, not
// their WebSocket ports (clients keep the URL they were given).
func (c *client) adjustInfo(info *serverInfo) {
	if c.ws == nil {
		return
	}
	c.srv.wsInfo(info, c.ws.tls)
}

// wsInfo makes info what a WebSocket client (over TLS or not) is sent.
// It takes s.mu: not for callers holding it.
func (s *Server) wsInfo(info *serverInfo, tls bool) {
	info.Host, info.Port = s.wsAdvertise()
	info.ConnectURLs = s.wsConnectURLs()
	info.TLSRequired, info.TLSVerify, info.TLSAvailable = tls, false, tls
}

// startTLS makes a new connection a TLS one before its goroutines run:
// the INFO queued so far goes out in plain text now unless the handshake
// comes first (then readLoop sends it once the handshake is done).
func (c *client) startTLS(conn net.Conn, tc *tls.Config, first bool) {
	if !first {
		o := &c.out
		o.mu.Lock()
		info := o.take()
		o.pending = 0
		o.mu.Unlock()
		conn.SetWriteDeadline(time.Now().Add(c.tlsWait))
		writeBuffers(conn, info)
		conn.SetWriteDeadline(time.Time{})
		recycleChunks(info)
	}
	t := tls.Server(conn, tc)
	c.conn, c.raw, c.tlsConn, c.tlsFirst = t, nil, t, first
}

// pingTimerFired sends a server PING, closing connections that left too
// many unanswered.
func (c *client) pingTimerFired() {
	if c.closed.Load() {
		return
	}
	cfg := c.srv.Config()
	if c.authRequired && !c.authDone.Load() {
		// Not authenticated yet: the auth timeout deals with silence, and
		// nats-server sends nothing before CONNECT either.
		c.pingTimer.Reset(cfg.PingInterval)
		return
	}
	if int(c.pingsOut.Load())+1 > cfg.MaxPingsOut {
		c.srv.log.Debugf("%s - stale connection: %d pings unanswered, closing", c, c.pingsOut.Load())
		c.srv.staleConnections.Add(1)
		c.out.appendRaw([]byte("-ERR 'Stale Connection'\r\n"))
		c.closeConnection("Stale Connection", true)
		return
	}
	c.pingsOut.Add(1)
	c.mu.Lock()
	c.pingSent = time.Now()
	c.mu.Unlock()
	c.out.appendRaw(pingBytes)
	c.flush()
	c.pingTimer.Reset(cfg.PingInterval)
}

// removeClient is called once per connection as it closes.
func (s *Server) removeClient(c *client, reason string) {
	s.mu.Lock()
	_, ok := s.clients[c.id]
	delete(s.clients, c.id)
	if ok {
		s.closed = append(s.closed, c.closedSnapshot(reason))
		if len(s.closed) > maxClosedConns {
			s.closed = s.closed[len(s.closed)-maxClosedConns:]
		}
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	s.totals.inMsgs.Add(c.statInMsgs.Load())
	s.totals.inBytes.Add(c.statInBytes.Load())
	c.out.mu.Lock()
	s.totals.outMsgs.Add(c.out.msgs)
	s.totals.outBytes.Add(c.out.bytes)
	c.out.mu.Unlock()
	if len(reason) > 13 && reason[:13] == "Slow Consumer" {
		s.slowConsumers.Add(1)
	}
	s.connectionEvent(c, reason)
	s.release(c)
	s.log.Debugf("%s - client connection closed: %s", c, reason)
	s.wg.Done()
}

// stopAccepting closes the client listener and returns the clients
// connected at that moment.
func (s *Server) stopAccepting() []*client {
	s.mu.Lock()
	l, wl := s.listener, s.wsListener
	clients := make([]*client, 0, len(s.clients))
	for _, c := range s.clients {
		clients = append(clients, c)
	}
	s.mu.Unlock()
	if l != nil {
		l.Close()
	}
	if wl != nil {
		wl.Close()
	}
	return clients
}

// Shutdown closes the listener and every client, and waits for them.
func (s *Server) Shutdown() {
	if !s.shutdown.CompareAndSwap(false, true) {
		return
	}
	close(s.stopWatch)
	s.staplers.stopAll()
	clients := s.stopAccepting()
	s.mu.Lock()
	hs := s.httpServer
	s.mu.Unlock()
	if hs != nil {
		hs.Close()
	}
	for _, c := range clients {
		c.closeConnection("Server Shutdown", true)
	}
	s.wg.Wait()
	if s.routing != nil {
		s.routing.stop()
	}
	if s.auth != nil {
		s.auth.stop()
	}
	s.log.Infof("Server Exiting..")
	close(s.done)
}

// Done is closed once the server has shut down: by Shutdown, or by
// itself (ocsp mode must or always seeing its certificate revoked).
func (s *Server) Done() <-chan struct{} { return s.done }

// NumClients is the number of open client connections.
func (s *Server) NumClients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

func (s *Server) advertise() (string, int) {
	cfg := s.Config()
	port := cfg.Port
	if a, ok := s.Addr().(*net.TCPAddr); ok {
		port = a.Port
	}
	return cfg.Host, port
}

// connectURLs lists the client URLs of every frontdoor attached to the
// router tier (nats.go learns the others from it); a lone frontdoor has none.
func (s *Server) connectURLs() []string {
	if m := s.memberURLs(); m != nil {
		return m.client
	}
	return nil
}

// wsConnectURLs is connectURLs for WebSocket clients: every frontdoor's
// WebSocket URL, as nats-server tells its WebSocket clients.
func (s *Server) wsConnectURLs() []string {
	if m := s.memberURLs(); m != nil {
		return m.ws
	}
	return nil
}

func (s *Server) memberURLs() *memberURLs {
	if s.routing == nil {
		return nil
	}
	return s.routing.members.Load()
}

// trieInsert and trieRemove change the local subject trie, telling the
// router tier when there is one.
func (s *Server) trieInsert(sub *subscription) {
	sl := sub.acc.sublist
	if s.routing == nil {
		sl.Insert(sub.subject, sub.queue, sub)
		return
	}
	s.routing.subChanged(sub, 1, func() bool { sl.Insert(sub.subject, sub.queue, sub); return true })
}

func (s *Server) trieRemove(sub *subscription) {
	sl := sub.acc.sublist
	if s.routing == nil {
		sl.Remove(sub.subject, sub.queue, sub)
		return
	}
	s.routing.subChanged(sub, -1, func() bool { return sl.Remove(sub.subject, sub.queue, sub) })
}

// sendInfoToClients tells clients that asked for updates (protocol 1)
// about changed connect_urls with an async INFO, as nats-server does.
func (s *Server) sendInfoToClients() {
	info := s.baseInfo()
	line := infoLine(&info)
	var wsLine []byte
	if s.Config().WebSocket.Enabled() {
		wi := info
		s.wsInfo(&wi, s.wsTLS.Load() != nil) // before s.mu, which it takes
		wsLine = infoLine(&wi)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clients {
		if !c.infoUpdates.Load() {
			continue
		}
		if c.ws == nil {
			c.out.appendRaw(line)
		} else {
			c.out.appendRaw(wsLine)
		}
		c.flush()
	}
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }
