package node

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-io/switchyard/pkg/protocol"
	"github.com/switchyard-io/switchyard/pkg/subject"
	authv1 "github.com/switchyard-io/switchyard/proto/switchyard/auth/v1"
)

// connectOpts is the CONNECT JSON. verbose and pedantic default to true when
// absent, as in nats-server.
type connectOpts struct {
	Verbose      bool   `json:"verbose"`
	Pedantic     bool   `json:"pedantic"`
	TLSRequired  bool   `json:"tls_required"`
	Echo         bool   `json:"echo"`
	Headers      bool   `json:"headers"`
	NoResponders bool   `json:"no_responders"`
	Name         string `json:"name"`
	Lang         string `json:"lang"`
	Version      string `json:"version"`
	Protocol     int    `json:"protocol"`
	User         string `json:"user,omitempty"`
	Pass         string `json:"pass,omitempty"`
	AuthToken    string `json:"auth_token,omitempty"`
	JWT          string `json:"jwt,omitempty"`
	Nkey         string `json:"nkey,omitempty"`
	Sig          string `json:"sig,omitempty"`
}

func defaultConnectOpts() connectOpts {
	return connectOpts{Verbose: true, Pedantic: true, Echo: true}
}

// subscription is one SUB of one client.
type subscription struct {
	client *client
	acc    *account
	// internal handles the frontdoor's own subscriptions (system requests,
	// a node's service) instead of a socket: it gets the subject, reply and
	// message (headers first, headerLen bytes; -1: none), runs on the
	// publisher's goroutine (so blocking paces the publisher) and must
	// copy what it keeps.
	internal  func(subj, reply []byte, headerLen int, msg []byte)
	subject   string
	queue     string
	sid       string
	max       atomic.Int64 // auto-unsubscribe after this many (0: never)
	delivered atomic.Int64
}

// client is one client connection. Its reader goroutine is the only
// goroutine it owns; writes happen on a short-lived writer goroutine that
// exists only while output is queued (see outbound).
type client struct {
	srv   *Server
	id    uint64
	conn  net.Conn
	start time.Time
	host  string
	port  int

	// Reader-owned state.
	parser *protocol.Parser
	acc    *account                     // the client's account: $G until authsvc says otherwise
	cache  *subject.Cache[subscription] // matches in acc
	// Remote interest in acc of the primary router link, cached like cache.
	remoteLink  *routerLink
	remoteCache *subject.Cache[remoteSub]
	// Caches for other accounts this client's messages reach (imports, and
	// every account for the mesh's delivering client); reader-owned.
	otherCaches  map[*account]*subject.Cache[subscription]
	otherRemotes map[*account]*subject.Cache[remoteSub]
	meshAcc      *account // the mesh's delivering client: the account of the last frame
	meshCache    *subject.Cache[subscription]
	opts         connectOpts
	connectd     bool
	sentPong     bool
	pcd          map[*client]struct{} // clients (and peers) this read delivered to
	stallOn      []*client            // congested subscribers and peers to wait for after this read
	// shownAs, while set, is the subject MSG shows for what this client
	// delivers, the subject matched being another (Publisher.PublishAs, or
	// a mesh frame with FlagTo).
	shownAs    []byte
	meshDests  []meshDest // scratch: the peers one message goes to
	candidates []string   // scratch: nodes with a member of one queue group
	lastPcd    *client
	inMsgs     int64
	inBytes    int64
	cfgGen     uint64

	mu          sync.Mutex // guards subs and the fields monitoring reads
	subs        map[string]*subscription
	name, lang  string
	version     string
	lastActive  time.Time
	closeReason string
	rtt         time.Duration
	pingSent    time.Time
	tlsVersion  string // after a TLS handshake, for /connz
	tlsCipher   string
	// certIDs are the verified client certificate's names, for
	// verify_and_map (authsvc maps them to a user); nil otherwise.
	certIDs []string

	out outbound
	raw *rawWriter // non-blocking writes on plain TCP; nil otherwise
	// ws is set for a WebSocket client: its bytes travel in frames, in
	// both directions (websocket.go); nil on the client port.
	ws *wsConn
	// A TLS connection (conn itself) is handshaken first thing by
	// readLoop, within tlsWait: before INFO (tlsFirst: handshake_first) or
	// after the plain-text INFO.
	tlsConn  *tls.Conn
	tlsFirst bool
	tlsWait  time.Duration

	// Authentication (auth.go): authPending until authsvc accepts CONNECT;
	// perms then holds what the client may do (nil: everything).
	authPending  bool
	authRequired bool        // set at accept, read by timers
	authDone     atomic.Bool // set before authTimer is stopped, so a late timer does nothing
	authTimer    *time.Timer
	nonce        string
	perms        atomic.Pointer[perms] // replaced when a reload changes them
	identity     string                // user name or nkey authsvc named; never a secret
	// JWT users: the user's key and its JWT's issue time (checked against
	// account revocations; guarded by mu, with authAcc, the account they
	// authenticated into), its limits, and the timer that ends the
	// connection when the credentials expire.
	authAcc   *account
	counted   bool // counted in authAcc's connections (an account with a limit)
	userKey   string
	issuedAt  int64
	jwtLimits *authv1.Limits
	expTimer  *time.Timer
	expires   time.Time // when the credentials expire (zero: never); guarded by mu

	// peer is set on the sending side of a mesh connection to another
	// node (mesh.go); such a client has no subscriptions and no reader.
	peer *peer

	headers atomic.Bool // opts.Headers, read by publishers
	// infoUpdates: send INFO when connect_urls change. Set (for protocol
	// >= 1) once the first PONG is queued, as nats-server does: an INFO
	// between CONNECT and that PONG breaks a client's connect handshake.
	infoUpdates atomic.Bool
	statInMsgs  atomic.Int64
	statInBytes atomic.Int64
	pingsOut    atomic.Int32
	closed      atomic.Bool
	pingTimer   *time.Timer
}

// newInternalClient is a connection-less client: it delivers messages from
// other nodes to local subscribers, or (newPeerClient) queues messages for
// another node.
func newInternalClient(s *Server) *client {
	c := &client{srv: s, start: time.Now(), opts: defaultConnectOpts()}
	c.setAccount(s.gacc)
	c.subs = map[string]*subscription{}
	return c
}

func newClient(s *Server, conn net.Conn, id uint64) *client {
	c := &client{srv: s, id: id, conn: conn, start: time.Now(), opts: defaultConnectOpts()}
	c.lastActive = c.start
	c.out.lastProgress = c.start
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		c.host, c.port = a.IP.String(), a.Port
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		c.raw = newRawWriter(tc)
	}
	c.parser = protocol.New(c)
	c.setAccount(s.gacc)
	c.cfgGen = s.cfgGen.Load()
	c.applyLimits(s.Config())
	c.subs = map[string]*subscription{}
	return c
}

func (c *client) applyLimits(cfg *Config) {
	c.parser.MaxControlLine = int(cfg.MaxControlLine)
	c.parser.MaxPayload = int(cfg.MaxPayload)
	if l := c.jwtLimits; l != nil && l.MaxPayload > 0 && int(l.MaxPayload) < c.parser.MaxPayload {
		c.parser.MaxPayload = int(l.MaxPayload)
	}
	if c.ws != nil {
		c.ws.r.maxPayload = c.parser.MaxPayload
	}
}

// maxSubs is the connection's subscription limit (0: none): the smaller of
// max_subscriptions and its JWT's.
func (c *client) maxSubs(cfg *Config) int {
	n := cfg.MaxSubscriptions
	if l := c.jwtLimits; l != nil && l.MaxSubscriptions > 0 && (n == 0 || int(l.MaxSubscriptions) < n) {
		n = int(l.MaxSubscriptions)
	}
	return n
}

// Read buffers: a small one of its own keeps an idle connection cheap; a
// busy connection borrows a big one from a pool and returns it after
// shortReadsToShrink reads in a row that the small one could have held.
const (
	minReadBuf         = 512
	maxReadBuf         = 64 << 10
	shortReadsToShrink = 64
)

var readBufPool = sync.Pool{New: func() any { b := make([]byte, maxReadBuf); return &b }}

// readLoop is the connection's goroutine: read, parse, deliver, then flush
// every connection this read delivered to.
func (c *client) readLoop() {
	if c.tlsConn != nil {
		if !c.handshake(c.tlsConn, c.tlsWait) {
			return
		}
		if c.tlsFirst {
			c.flush() // INFO, now that it goes over TLS
		}
	}
	small := make([]byte, minReadBuf)
	buf := small
	var big *[]byte // pooled while this connection is busy
	short := 0
	defer func() {
		if big != nil {
			readBufPool.Put(big)
		}
	}()
	for {
		n, err := c.conn.Read(buf)
		if n > 0 {
			if g := c.srv.cfgGen.Load(); g != c.cfgGen {
				c.cfgGen = g
				c.applyLimits(c.srv.Config())
			}
			now := time.Now()
			c.mu.Lock()
			c.lastActive = now
			c.mu.Unlock()
			var perr error
			if c.ws != nil {
				perr = c.ws.r.feed(buf[:n], c)
			} else {
				perr = c.parser.Parse(buf[:n])
			}
			if c.inMsgs > 0 {
				c.statInMsgs.Add(c.inMsgs)
				c.statInBytes.Add(c.inBytes)
				c.inMsgs, c.inBytes = 0, 0
			}
			c.flushDelivered()
			c.waitForSlowSubscribers()
			if perr != nil {
				c.protocolError(perr)
				return
			}
			// Two sizes, no allocation: a full small read switches to a
			// pooled big buffer; a long run of short reads gives it back.
			switch {
			case big == nil && n == len(buf):
				big = readBufPool.Get().(*[]byte)
				buf = *big
				short = 0
			case big != nil && n <= minReadBuf:
				if short++; short >= shortReadsToShrink {
					readBufPool.Put(big)
					big, buf = nil, small
					short = 0
				}
			default:
				short = 0
			}
		}
		if err != nil {
			reason := "Client Closed"
			if !errors.Is(err, net.ErrClosed) && !isEOF(err) {
				reason = "Read Error"
			}
			c.closeConnection(reason, false)
			return
		}
	}
}

// protocolError reports a parse error the way nats-server does.
func (c *client) protocolError(err error) {
	switch err {
	case protocol.ErrUnknownOp:
		c.sendErrAndClose("Unknown Protocol Operation", "Parse Error")
	case protocol.ErrControlLineTooLong:
		c.sendErrAndClose("maximum control line exceeded", "Maximum Control Line Exceeded")
	case protocol.ErrMaxPayload:
		c.sendErrAndClose("Maximum Payload Violation", "Maximum Message Payload Exceeded")
	case errCloseQuietly:
		c.closeConnection("Protocol Violation", true)
	case errNoRespondersNoHeaders:
		c.sendErrAndClose("no responders requires headers support", "No Responders Requires Headers")
	case errAuthViolation:
		c.sendErrAndClose("Authorization Violation", "Authentication Failure")
	case errMaxAccountConns:
		c.sendErrAndClose("maximum account active connections exceeded", "Maximum Account Connections Exceeded")
	case errWSClosed:
		c.closeConnection("Client Closed", true)
	case errWSMaxPayload:
		// As nats-server: no -ERR, a Read Error; the close frame says why.
		c.srv.log.Errorf("%s - websocket read error: a compressed message inflates past max_payload (%d bytes), closing", c, c.parser.MaxPayload)
		c.wsQueueClose(wsCloseFrame(wsCloseTooBig, "maximum payload exceeded"))
		c.closeConnection("Read Error", true)
	default:
		var pe *wsProtocolError
		if errors.As(err, &pe) {
			c.srv.log.Errorf("%s - websocket protocol error: %s, closing", c, pe.text)
			c.wsQueueClose(wsCloseFrame(pe.status, pe.text))
			c.closeConnection("Read Error", true)
			return
		}
		c.srv.log.Debugf("%s - closing: %v", c, err)
		c.closeConnection("Protocol Violation", true)
	}
}

var (
	errCloseQuietly          = errors.New("close")
	errNoRespondersNoHeaders = errors.New("no responders requires headers")
	errAuthViolation         = errors.New("authorization violation")
	errMaxAccountConns       = errors.New("maximum account active connections exceeded")
)

func (c *client) String() string {
	return c.host + ":" + strconv.Itoa(c.port) + " - cid:" + strconv.FormatUint(c.id, 10)
}

// queueSelf queues protocol bytes to this client; they go out at the end of
// the current read.
func (c *client) queueSelf(b []byte) {
	c.out.appendRaw(b)
	c.markDelivered(c)
}

func (c *client) sendErr(msg string) {
	c.queueSelf([]byte("-ERR '" + msg + "'\r\n"))
}

func (c *client) sendErrAndClose(msg, reason string) {
	c.srv.log.Debugf("%s - %s", c, msg)
	c.out.appendRaw([]byte("-ERR '" + msg + "'\r\n"))
	c.closeConnection(reason, true)
}

var (
	okBytes   = []byte("+OK\r\n")
	pongBytes = []byte("PONG\r\n")
	pingBytes = []byte("PING\r\n")
)

// markDelivered records that dst has new output to flush after this read.
func (c *client) markDelivered(dst *client) {
	if dst == c.lastPcd {
		return
	}
	c.lastPcd = dst
	if c.pcd == nil {
		c.pcd = make(map[*client]struct{}, 4)
	}
	c.pcd[dst] = struct{}{}
}

// waitForSlowSubscribers pauses this publisher's reading until congested
// subscribers catch up (or prove stuck); see outbound's flow control.
func (c *client) waitForSlowSubscribers() {
	if len(c.stallOn) == 0 {
		return
	}
	_, low := watermarks(c.srv.Config().MaxPending)
	for i, dst := range c.stallOn {
		dst.out.waitDrain(low)
		c.stallOn[i] = nil
	}
	c.stallOn = c.stallOn[:0]
}

func (c *client) flushDelivered() {
	for dst := range c.pcd {
		dst.flush()
		delete(c.pcd, dst)
	}
	c.lastPcd = nil
}

// flush starts a writer for queued output unless one is running.
func (c *client) flush() {
	o := &c.out
	o.mu.Lock()
	if o.writing || o.closed || o.idle() {
		o.mu.Unlock()
		return
	}
	o.writing = true
	if c.raw != nil && c.ws != nil && o.pending <= inlineWriteMax {
		c.flushWebSocketInline()
		return
	}
	if c.raw != nil && o.pending <= inlineWriteMax {
		// Small output (a reply, a few messages): try to write it right
		// here without blocking, saving the hand-off to a writer goroutine.
		// Whatever the socket does not take goes to the writer.
		bufs := o.take()
		o.mu.Unlock()
		n := c.raw.tryWritev(bufs)
		o.mu.Lock()
		rest := advance(bufs, n)
		o.pending -= n
		if n > 0 {
			o.progressed(time.Now())
		}
		if len(rest) == 0 && len(o.chunks) == 0 {
			o.writing = false
			closeNow := o.drainThenClose
			recycleChunks(bufs)
			o.mu.Unlock()
			if closeNow {
				c.conn.Close()
			}
			return
		}
		o.chunks = append(rest, o.chunks...)
		o.mu.Unlock()
		go c.writeLoop()
		return
	}
	o.mu.Unlock()
	go c.writeLoop()
}

// writeLoop drains the outbound queue and exits when it is empty, so an idle
// connection keeps no writer goroutine.
func (c *client) writeLoop() {
	o := &c.out
	for {
		o.mu.Lock()
		idle := o.idle() && (c.ws == nil || c.ws.w.leftover == nil)
		if idle || (o.closed && !o.drainThenClose) {
			o.writing = false
			closeNow := o.drainThenClose
			o.mu.Unlock()
			if closeNow {
				c.conn.Close()
			}
			return
		}
		bufs := o.takeBatch()
		var ctrl [][]byte
		if c.ws != nil {
			ctrl = o.takeControl()
		}
		o.mu.Unlock()

		wd := c.srv.Config().WriteDeadline
		if wd > 0 {
			c.conn.SetWriteDeadline(time.Now().Add(wd))
		}
		var n int
		var err error
		if c.ws != nil {
			// Frames go out whole or the connection fails, so the queued
			// bytes count as written once the writev returns.
			if _, err = writeBuffers(c.conn, c.ws.w.frame(ctrl, bufs)); err == nil {
				n = buffersLen(bufs)
			}
			c.ws.w.release()
		} else {
			n, err = writeBuffers(c.conn, bufs)
		}

		o.mu.Lock()
		o.recycle(bufs, n)
		if n > 0 {
			o.progressed(time.Now())
		}
		o.mu.Unlock()
		if err != nil {
			o.mu.Lock()
			o.writing = false
			o.mu.Unlock()
			reason := "Write Error"
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				reason = "Slow Consumer (Write Deadline)"
				c.srv.log.Warnf("%s - slow consumer: write deadline %v exceeded, closing", c, wd)
			}
			c.closeConnection(reason, false)
			c.conn.Close()
			return
		}
	}
}

// closeConnection ends the connection once. With flush, queued output (an
// -ERR) is written before the socket closes.
func (c *client) closeConnection(reason string, flush bool) {
	if !c.closed.CompareAndSwap(false, true) {
		return
	}
	c.mu.Lock()
	c.closeReason = reason
	c.mu.Unlock()
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	if c.authTimer != nil {
		c.authTimer.Stop()
	}
	if c.expTimer != nil {
		c.expTimer.Stop()
	}

	o := &c.out
	o.mu.Lock()
	o.closed = true
	if o.drained != nil {
		close(o.drained)
		o.drained = nil
	}
	var bufs, ctrl [][]byte
	conn := c.conn // nil for a mesh peer still dialing
	closeSocket := conn != nil
	if flush && conn != nil {
		if c.ws != nil && !c.ws.closeSent {
			c.ws.closeSent = true
			o.control = append(o.control, wsCloseFrame(wsCloseStatus(reason), reason))
		}
		if o.writing {
			o.drainThenClose = true
			closeSocket = false
		} else {
			bufs, ctrl = o.take(), o.takeControl()
		}
	}
	o.mu.Unlock()
	if len(bufs) > 0 || len(ctrl) > 0 {
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		if c.ws != nil {
			writeBuffers(conn, c.ws.w.frame(ctrl, bufs))
			c.ws.w.release()
		} else {
			writeBuffers(conn, bufs)
		}
	}
	if closeSocket {
		conn.Close()
	}

	c.mu.Lock()
	subs := c.subs
	c.subs = map[string]*subscription{}
	c.mu.Unlock()
	for _, sub := range subs {
		c.unsubscribed(sub)
	}
	c.srv.removeClient(c, reason)
}

// --- protocol.Handler ---

func (c *client) Connect(arg []byte) error {
	opts := defaultConnectOpts()
	if err := json.Unmarshal(arg, &opts); err != nil {
		return errCloseQuietly
	}
	if opts.NoResponders && !opts.Headers {
		return errNoRespondersNoHeaders
	}
	authenticated := false
	if c.ws != nil {
		c.ws.applyCookies(&opts)
	}
	if c.authPending {
		if err := c.authenticate(&opts); err != nil {
			return err
		}
		authenticated = true
	}
	c.opts = opts
	c.connectd = true
	c.parser.Headers = opts.Headers
	c.headers.Store(opts.Headers)
	c.mu.Lock()
	c.name, c.lang, c.version = opts.Name, opts.Lang, opts.Version
	c.mu.Unlock()
	if authenticated {
		c.srv.connectionEvent(c, "")
	}
	if c.srv.log.TraceOn() {
		c.srv.log.Tracef("%s - <<- [CONNECT %s]", c, redactConnect(arg))
	}
	if opts.Verbose {
		c.queueSelf(okBytes)
	}
	return nil
}

func (c *client) Ping() error {
	if c.authPending {
		return errAuthViolation
	}
	c.queueSelf(pongBytes)
	if c.opts.Protocol >= 1 && c.connectd && !c.sentPong {
		// nats-server follows the first PONG with an INFO that confirms
		// the connection's account (clients use it to learn they are in).
		c.sentPong = true
		c.infoUpdates.Store(true) // before the snapshot below, so no change is missed
		info := c.srv.baseInfo()
		info.ClientID, info.ClientIP = c.id, c.host
		info.ConnectInfo, info.RemoteAccount = true, c.acc.name
		c.adjustInfo(&info)
		c.queueSelf(infoLine(&info))
	}
	return nil
}

func (c *client) Pong() error {
	if c.authPending {
		return errAuthViolation
	}
	c.pingsOut.Store(0)
	c.mu.Lock()
	if !c.pingSent.IsZero() {
		c.rtt = time.Since(c.pingSent)
		c.pingSent = time.Time{}
	}
	c.mu.Unlock()
	return nil
}

func (c *client) Err(arg []byte) error {
	c.srv.log.Debugf("%s - client sent -ERR %s", c, arg)
	return errCloseQuietly
}

func (c *client) Sub(subj, queue, sid []byte) error {
	if c.authPending {
		return errAuthViolation
	}
	if !subject.ValidSubscribe(subj) || (queue != nil && !validQueue(queue)) {
		c.sendErr("Invalid Subject")
		return nil
	}
	if p := c.perms.Load(); p != nil && !p.canSubscribe(string(subj)) {
		c.subscribeViolation(subj, queue)
		return nil
	}
	cfg := c.srv.Config()
	c.mu.Lock()
	if _, dup := c.subs[string(sid)]; dup {
		c.mu.Unlock() // nats-server ignores a SUB that reuses a live sid
		if c.opts.Verbose {
			c.queueSelf(okBytes)
		}
		return nil
	}
	if max := c.maxSubs(cfg); (max > 0 && len(c.subs) >= max) || !c.acc.reserveSub() {
		c.mu.Unlock()
		c.sendErr("maximum subscriptions exceeded")
		return nil
	}
	sub := &subscription{client: c, acc: c.acc, subject: string(subj), queue: string(queue), sid: string(sid)}
	c.subs[sub.sid] = sub
	c.mu.Unlock()
	c.srv.trieInsert(sub)
	if c.opts.Verbose {
		c.queueSelf(okBytes)
	}
	return nil
}

func validQueue(q []byte) bool {
	for _, b := range q {
		if b == ' ' || b == '\t' || b == '\r' || b == '\n' {
			return false
		}
	}
	return len(q) > 0
}

func (c *client) Unsub(sid []byte, max int64) error {
	if c.authPending {
		return errAuthViolation
	}
	c.mu.Lock()
	sub := c.subs[string(sid)]
	c.mu.Unlock()
	if sub != nil {
		if max > 0 && sub.delivered.Load() < max {
			sub.max.Store(max)
		} else {
			c.removeSub(sub)
		}
	}
	if c.opts.Verbose {
		c.queueSelf(okBytes)
	}
	return nil
}

// removeSub drops a subscription; safe from any goroutine and idempotent.
func (c *client) removeSub(sub *subscription) {
	c.mu.Lock()
	cur, ok := c.subs[sub.sid]
	if ok && cur == sub {
		delete(c.subs, sub.sid)
	}
	c.mu.Unlock()
	if ok && cur == sub {
		c.unsubscribed(sub)
	}
}

// unsubscribed takes a subscription, already out of c.subs, out of the
// trie and its account's count.
func (c *client) unsubscribed(sub *subscription) {
	c.srv.trieRemove(sub)
	sub.acc.subs.Add(-1)
}

// setAccount puts the client into acc (at accept, and when authsvc names
// its account); it has no subscriptions yet.
func (c *client) setAccount(acc *account) {
	c.acc = acc
	c.cache = subject.NewCache(acc.sublist)
	c.remoteLink, c.remoteCache = nil, nil
}

// cacheFor returns the match cache for acc.
func (c *client) cacheFor(acc *account) *subject.Cache[subscription] {
	if acc == c.acc {
		return c.cache
	}
	sc := c.otherCaches[acc]
	if sc == nil {
		if c.otherCaches == nil {
			c.otherCaches = map[*account]*subject.Cache[subscription]{}
		}
		sc = subject.NewCache(acc.sublist)
		c.otherCaches[acc] = sc
	}
	return sc
}

// remoteMatch returns the other nodes' interest in subj within acc, as the
// primary router link reports it.
func (c *client) remoteMatch(link *routerLink, acc *account, subj []byte) *subject.Result[remoteSub] {
	if c.remoteLink != link {
		c.remoteLink, c.remoteCache = link, nil
		clear(c.otherRemotes)
	}
	if acc == c.acc {
		if c.remoteCache == nil {
			c.remoteCache = subject.NewCache(link.remoteFor(acc.name))
		}
		return c.remoteCache.Match(subj)
	}
	rc := c.otherRemotes[acc]
	if rc == nil {
		if c.otherRemotes == nil {
			c.otherRemotes = map[*account]*subject.Cache[remoteSub]{}
		}
		rc = subject.NewCache(link.remoteFor(acc.name))
		c.otherRemotes[acc] = rc
	}
	return rc.Match(subj)
}

// redactConnect hides CONNECT's secrets for the trace log, as nats-server
// does: the password, token and nonce signature become [REDACTED].
func redactConnect(arg []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(arg, &m) != nil {
		return []byte("[unparsable CONNECT, not shown]")
	}
	for _, k := range []string{"pass", "auth_token", "sig"} {
		if _, ok := m[k]; ok {
			m[k] = json.RawMessage(`"[REDACTED]"`)
		}
	}
	out, _ := json.Marshal(m)
	return out
}
