package node

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-io/switchyard/pkg/config"
)

// The WebSocket listener (websocket {}): nats-server's second client
// port. A connection is upgraded here — TLS handshake for wss, then one
// HTTP/1.1 upgrade request read with net/http's parser — and then handed
// to the same client code as the TCP port (startClient), which reads and
// writes through wsReader / wsWriter (wsframe.go). Everything after the
// upgrade (CONNECT, auth, subscriptions, JetStream) is the client port's
// code, so no feature is WebSocket-specific.

// wsConn is a client's WebSocket state.
type wsConn struct {
	r wsReader // read side: readLoop's
	w wsWriter // write side: the connection's current writer's
	// closeSent: a close frame is queued; no other may follow. Guarded by
	// the client's outbound.mu.
	closeSent bool
	// Credentials from cookies (jwt_cookie, user_cookie, ...), used when
	// CONNECT carries none.
	cookieJWT, cookieUser, cookiePass, cookieToken string
	tls                                            bool // wss
}

// wsMaxRequest bounds the upgrade request's size (request line and
// headers, cookies included), so a client cannot make us buffer more.
const wsMaxRequest = 32 << 10

// wsGUID is RFC 6455's key suffix for Sec-WebSocket-Accept.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// startWebSocket opens the websocket {} listener.
func (s *Server) startWebSocket(cfg *Config) error {
	w := cfg.WebSocket
	host := w.Host
	if host == "" {
		host = cfg.Host
	}
	port := w.Port
	if port == -1 {
		port = 0
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening for websocket clients on %s: %w", addr, err)
	}
	s.mu.Lock()
	s.wsListener = l
	s.mu.Unlock()
	scheme := "ws"
	if s.wsTLS.Load() != nil {
		scheme = "wss"
	}
	s.log.Infof("Listening for websocket clients on %s://%s", scheme, l.Addr())
	if scheme == "ws" {
		s.log.Warnf("Websocket not configured with TLS. DO NOT USE IN PRODUCTION!")
	}
	s.wg.Add(1)
	go s.acceptLoop(l, func(conn net.Conn) { go s.upgradeWebSocket(conn) })
	return nil
}

// WebSocketAddr is the WebSocket listener's address (nil without one).
func (s *Server) WebSocketAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wsListener == nil {
		return nil
	}
	return s.wsListener.Addr()
}

// wsAdvertise is the host and port INFO shows WebSocket clients: the
// websocket {} advertise address, or its listener's.
func (s *Server) wsAdvertise() (string, int) {
	w := s.Config().WebSocket
	if w == nil {
		return "", 0
	}
	host, port := w.Host, w.Port
	if host == "" {
		host = s.Config().Host
	}
	if a, ok := s.WebSocketAddr().(*net.TCPAddr); ok {
		port = a.Port
	}
	if w.Advertise != "" {
		// "host" or "host:port"; without a port, the listener's.
		if h, p, err := net.SplitHostPort(w.Advertise); err == nil {
			n, _ := strconv.Atoi(p)
			return h, n
		}
		return strings.Trim(w.Advertise, "[]"), port
	}
	return host, port
}

// wsHTTPError answers a bad upgrade request the way nats-server's HTTP
// server does (status text as the body) and logs why.
func (s *Server) wsHTTPError(conn net.Conn, status int, reason string) {
	s.log.Errorf("%s - websocket handshake error: %s", conn.RemoteAddr(), reason)
	body := http.StatusText(status) + "\n"
	resp := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nSec-Websocket-Version: 13\r\n"+
		"X-Content-Type-Options: nosniff\r\nDate: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), time.Now().UTC().Format(http.TimeFormat), len(body), body)
	io.WriteString(conn, resp)
	conn.Close()
}

// upgradeWebSocket runs on a new connection's own goroutine, which goes
// on as its read loop: TLS (wss), the HTTP upgrade, all within
// handshake_timeout, then the NATS protocol.
func (s *Server) upgradeWebSocket(conn net.Conn) {
	cfg := s.Config()
	wcfg := cfg.WebSocket
	if wcfg == nil || s.shutdown.Load() {
		conn.Close()
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	timeout := wcfg.Timeout()
	conn.SetDeadline(time.Now().Add(timeout))
	var tlsState *tls.ConnectionState
	if tc := s.wsTLS.Load(); tc != nil {
		t := tls.Server(conn, tc)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := t.HandshakeContext(ctx)
		cancel()
		if err != nil {
			s.log.Errorf("%s - websocket TLS handshake error: %v", conn.RemoteAddr(), err)
			conn.Close()
			return
		}
		st := t.ConnectionState()
		tlsState, conn = &st, t
	}

	br := bufio.NewReaderSize(&io.LimitedReader{R: conn, N: wsMaxRequest}, 4096)
	req, err := http.ReadRequest(br)
	if err != nil {
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			s.log.Errorf("%s - websocket handshake error: no complete upgrade request within handshake_timeout (%v), closing", conn.RemoteAddr(), timeout)
			conn.Close()
		case isEOF(err) || errors.Is(err, io.ErrUnexpectedEOF):
			s.log.Debugf("%s - websocket handshake: the client closed before its upgrade request ended", conn.RemoteAddr())
			conn.Close()
		default:
			s.wsHTTPError(conn, http.StatusBadRequest, fmt.Sprintf("malformed upgrade request (%v)", err))
		}
		return
	}
	ws, status, reason := s.checkUpgrade(req, tlsState != nil)
	if status == 0 && br.Buffered() > 0 {
		status, reason = http.StatusBadRequest, "client sent data before handshake is complete"
	}
	if status != 0 {
		s.wsHTTPError(conn, status, reason)
		return
	}
	resp := make([]byte, 0, 256)
	resp = append(resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	resp = append(resp, wsAcceptKey(req.Header.Get("Sec-Websocket-Key"))...)
	resp = append(resp, "\r\n"...)
	if ws.r.deflate {
		resp = append(resp, "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"...)
	}
	if !ws.r.requireMask {
		resp = append(resp, "Nats-No-Masking: true\r\n"...)
	}
	resp = append(resp, "\r\n"...)
	if _, err := conn.Write(resp); err != nil {
		s.log.Debugf("%s - websocket handshake: writing the upgrade response: %v", conn.RemoteAddr(), err)
		conn.Close()
		return
	}
	conn.SetDeadline(time.Time{})

	clientIP := ""
	if xff := req.Header.Get("X-Forwarded-For"); xff != "" && net.ParseIP(strings.TrimSpace(xff)) != nil {
		clientIP = strings.TrimSpace(xff) // a proxy in front says who the client is
	}
	c := s.startClient(conn, ws, clientIP)
	if c == nil {
		return
	}
	if tlsState != nil {
		c.mu.Lock()
		c.tlsVersion, c.tlsCipher = tlsVersionName(tlsState.Version), tls.CipherSuiteName(tlsState.CipherSuite)
		c.mu.Unlock()
		if wcfg.TLS != nil && wcfg.TLS.VerifyAndMap && len(tlsState.PeerCertificates) > 0 {
			c.certIDs = certIdentities(tlsState.PeerCertificates[0]) // read by this goroutine's CONNECT
		}
	}
	c.readLoop()
}

// checkUpgrade validates an upgrade request in RFC 6455's order, as
// nats-server does; a refusal returns the HTTP status and the reason to
// log. On success it returns the connection's WebSocket state.
func (s *Server) checkUpgrade(r *http.Request, secure bool) (*wsConn, int, string) {
	cfg := s.Config()
	w := cfg.WebSocket
	switch {
	case r.Method != http.MethodGet:
		return nil, http.StatusMethodNotAllowed, "request method must be GET"
	case r.Host == "":
		return nil, http.StatusBadRequest, "'Host' missing in request"
	case !wsHeaderHas(r.Header, "Upgrade", "websocket"):
		return nil, http.StatusBadRequest, "invalid value for header 'Upgrade'"
	case !wsHeaderHas(r.Header, "Connection", "Upgrade"):
		return nil, http.StatusBadRequest, "invalid value for header 'Connection'"
	case r.Header.Get("Sec-Websocket-Key") == "":
		return nil, http.StatusBadRequest, "key missing"
	case !wsHeaderHas(r.Header, "Sec-Websocket-Version", "13"):
		return nil, http.StatusBadRequest, "invalid version"
	}
	if err := checkOrigin(w, r, secure); err != nil {
		return nil, http.StatusForbidden, "origin not allowed: " + err.Error()
	}
	ws := &wsConn{tls: secure}
	ws.r.requireMask = r.Header.Get("Nats-No-Masking") != "true"
	ws.r.maxPayload = int(cfg.MaxPayload)
	if w.Compression && wsOffersDeflate(r.Header) {
		ws.r.deflate, ws.w.compress = true, true
	}
	if ua := r.Header.Get("User-Agent"); strings.HasPrefix(ua, "Mozilla/") {
		// A browser: small frames, and no fragmented compressed message
		// for Safari (whose agent string has Version/ and Safari/).
		ws.w.frameMax = wsBrowserFrameMax
		ws.w.noFragCompressed = ws.w.compress && strings.Contains(ua, "Version/") && strings.Contains(ua, "Safari/")
	}
	for name, dst := range map[string]*string{w.JWTCookie: &ws.cookieJWT, w.UserCookie: &ws.cookieUser,
		w.PassCookie: &ws.cookiePass, w.TokenCookie: &ws.cookieToken} {
		if name == "" {
			continue
		}
		if ck, err := r.Cookie(name); err == nil {
			*dst = ck.Value
		}
	}
	return ws, 0, ""
}

// wsHeaderHas reports whether one of the comma-separated tokens of header
// name is value (case-insensitive).
func wsHeaderHas(h http.Header, name, value string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), value) {
				return true
			}
		}
	}
	return false
}

// wsOffersDeflate reports whether the client offers permessage-deflate.
// The server always answers with no context takeover both ways, which
// every client that offers the extension must accept (RFC 7692 7.1.1).
func wsOffersDeflate(h http.Header) bool {
	for _, v := range h.Values("Sec-Websocket-Extensions") {
		for ext := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(ext, ";")
			if strings.EqualFold(strings.TrimSpace(name), "permessage-deflate") {
				return true
			}
		}
	}
	return false
}

func wsAcceptKey(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// checkOrigin applies same_origin and allowed_origins to a browser's
// Origin header; requests without one (non-browser clients, which could
// claim any origin anyway) pass, as on nats-server.
func checkOrigin(w *config.WebSocket, r *http.Request, secure bool) error {
	if !w.SameOrigin && len(w.AllowedOrigins) == 0 {
		return nil
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		origin = r.Header.Get("Sec-Websocket-Origin")
	}
	if origin == "" {
		return nil
	}
	u, err := url.ParseRequestURI(origin)
	if err != nil {
		return err
	}
	oh, op, err := hostPortOf(u.Host, u.Scheme == "https")
	if err != nil {
		return err
	}
	if w.SameOrigin {
		rh, rp, err := hostPortOf(r.Host, secure)
		if err != nil {
			return err
		}
		if oh != rh || op != rp {
			return errors.New("not same origin")
		}
	}
	if len(w.AllowedOrigins) > 0 {
		for _, a := range w.AllowedOrigins {
			au, err := url.ParseRequestURI(a)
			if err != nil {
				continue // refused by the configuration check already
			}
			ah, ap, _ := hostPortOf(au.Host, au.Scheme == "https")
			if ah == oh && ap == op && au.Scheme == u.Scheme {
				return nil
			}
		}
		return errors.New("not in the allowed list")
	}
	return nil
}

// hostPortOf splits host[:port], defaulting the port by scheme.
func hostPortOf(hostport string, secure bool) (string, string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		var ae *net.AddrError
		if !errors.As(err, &ae) || !strings.Contains(ae.Err, "missing port") {
			return "", "", err
		}
		host, port = hostport, "80"
		if secure {
			port = "443"
		}
	}
	return strings.ToLower(host), port, nil
}

// applyCookies fills CONNECT's missing credentials from the cookies the
// upgrade request carried.
func (ws *wsConn) applyCookies(opts *connectOpts) {
	if opts.JWT == "" {
		opts.JWT = ws.cookieJWT
	}
	if opts.User == "" && opts.Pass == "" {
		opts.User, opts.Pass = ws.cookieUser, ws.cookiePass
	}
	if opts.AuthToken == "" {
		opts.AuthToken = ws.cookieToken
	}
}

// --- wsFrameHandler: readLoop feeds frames to c.ws.r with c as handler.

func (c *client) wsData(p []byte) error { return c.parser.Parse(p) }

func (c *client) wsControl(op byte, payload []byte) error {
	switch op {
	case wsOpPing:
		o := &c.out
		o.mu.Lock()
		if !o.closed {
			o.control = append(o.control, wsControlFrame(wsOpPong, payload))
		}
		o.mu.Unlock()
		c.markDelivered(c) // flushed with the rest of this read's output
	case wsOpClose:
		c.wsQueueClose(wsCloseReply(payload))
		return errWSClosed
	}
	return nil
}

// wsQueueClose queues the connection's one close frame.
func (c *client) wsQueueClose(frame []byte) {
	o := &c.out
	o.mu.Lock()
	if !o.closed && !c.ws.closeSent {
		c.ws.closeSent = true
		o.control = append(o.control, frame)
	}
	o.mu.Unlock()
}

// flushWebSocketInline is flush's non-blocking write for a plain ws://
// client: frame what is queued, write what the socket takes now, and
// leave the rest (already framed) to a writer goroutine. Called with
// o.mu held and o.writing just set; it unlocks.
func (c *client) flushWebSocketInline() {
	o := &c.out
	bufs, ctrl := o.take(), o.takeControl()
	o.mu.Unlock()
	out := c.ws.w.frame(ctrl, bufs)
	total := buffersLen(out)
	n := c.raw.tryWritev(out)
	o.mu.Lock()
	o.pending -= buffersLen(bufs)
	if n > 0 {
		o.progressed(time.Now())
	}
	if n < total {
		// The frames must go out intact: keep the unwritten part as it
		// is (a copy of the slice list; the bytes stay where they are).
		c.ws.w.leftover = append([][]byte(nil), advance(out, n)...)
		o.mu.Unlock()
		go c.writeLoop()
		return
	}
	c.ws.w.release()
	recycleChunks(bufs)
	if !o.idle() {
		o.mu.Unlock()
		go c.writeLoop()
		return
	}
	o.writing = false
	closeNow := o.drainThenClose
	o.mu.Unlock()
	if closeNow {
		c.conn.Close()
	}
}
