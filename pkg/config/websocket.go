package config

import (
	"fmt"
	"net/url"
	"time"
)

// WebSocket is the websocket {} block: a second client listener that
// speaks the NATS protocol inside WebSocket frames (browsers, nats.ws,
// nats.go with ws:// and wss:// URLs).
type WebSocket struct {
	Host      string // "host", or the host of "listen"; empty: the client port's host
	Port      int    // "port", or the port of "listen"; 0: no listener, -1: a free port
	Advertise string // "advertise": host:port shown to clients instead of the listener's
	// AdvertiseProbe ("advertise_probe", Switchyard's own) is
	// client_advertise_probe for the WebSocket port: host:lo-hi, the range
	// one port of which publishes it (a scaled compose replica).
	AdvertiseProbe string
	// TLS ("tls") makes the listener wss://; nats-server requires it
	// unless NoTLS ("no_tls") says plain ws:// is meant.
	TLS   *TLS
	NoTLS bool
	// Compression ("compression") accepts permessage-deflate when the
	// client offers it (no context takeover in either direction).
	Compression bool
	// SameOrigin ("same_origin") and AllowedOrigins ("allowed_origins")
	// check a browser's Origin header; requests without one pass.
	SameOrigin     bool
	AllowedOrigins []string
	// Cookies whose value stands in for CONNECT's field when the client
	// sends none: "jwt_cookie" (needs operator mode), "user_cookie",
	// "pass_cookie", "token_cookie".
	JWTCookie, UserCookie, PassCookie, TokenCookie string
	// HandshakeTimeout ("handshake_timeout") bounds the TLS handshake and
	// the HTTP upgrade request together; 0: DefaultWebSocketHandshakeTimeout.
	HandshakeTimeout time.Duration
	// WebSocket clients' own authentication, instead of the client port's
	// (nats-server's override): "no_auth_user", and "authorization" {
	// user, password, token, timeout }. The users lists still apply.
	NoAuthUser        string
	User, Pass, Token string
	AuthTimeout       time.Duration
}

// AuthOverride reports whether WebSocket clients authenticate by this
// block's settings rather than the client port's, as nats-server decides
// it: a user, a token or a no_auth_user set here.
func (w *WebSocket) AuthOverride() bool {
	return w.Enabled() && (w.User != "" || w.Token != "" || w.NoAuthUser != "")
}

// DefaultWebSocketHandshakeTimeout bounds a WebSocket handshake when
// handshake_timeout is not set. nats-server waits forever then, which
// lets a client that never finishes its request hold a connection (a
// slow-loris); Switchyard cuts it, as the client port does with TLS.
const DefaultWebSocketHandshakeTimeout = 2 * time.Second

// Enabled reports whether a WebSocket listener is configured.
func (w *WebSocket) Enabled() bool { return w != nil && w.Port != 0 }

// Timeout is the handshake's time limit.
func (w *WebSocket) Timeout() time.Duration {
	if w.HandshakeTimeout > 0 {
		return w.HandshakeTimeout
	}
	return DefaultWebSocketHandshakeTimeout
}

func applyWebSocket(l *loader, s *Server, v value) {
	m, ok := v.raw.(map[string]any)
	if !ok {
		l.bad(v, " expected a block { port: ..., tls { ... } }, got %s", describe(v.raw))
		return
	}
	w := &WebSocket{}
	for k, e := range v.keys(m) {
		switch k {
		case "listen":
			if host, port, hasHost, ok := l.hostPort(e); ok {
				if hasHost {
					w.Host = host
				}
				w.Port = port
			}
		case "host", "net":
			w.Host, _ = l.str(e)
		case "port":
			if n, ok := l.integer(e); ok {
				w.Port = int(n)
			}
		case "advertise":
			w.Advertise, _ = l.str(e)
		case "advertise_probe":
			w.AdvertiseProbe, _ = l.str(e)
		case "tls":
			w.TLS = l.tlsBlock(e)
		case "no_tls":
			w.NoTLS, _ = l.boolean(e)
		case "compression":
			w.Compression, _ = l.boolean(e)
		case "same_origin":
			w.SameOrigin, _ = l.boolean(e)
		case "allowed_origins", "allowed_origin", "allow_origins", "allow_origin", "origins", "origin":
			if str, ok := e.raw.(string); ok {
				w.AllowedOrigins = []string{str}
				continue
			}
			for _, o := range l.list(e, "origins such as \"https://app.example.com\"") {
				if str, ok := l.str(o); ok {
					w.AllowedOrigins = append(w.AllowedOrigins, str)
				}
			}
		case "jwt_cookie":
			w.JWTCookie, _ = l.str(e)
		case "user_cookie":
			w.UserCookie, _ = l.str(e)
		case "pass_cookie":
			w.PassCookie, _ = l.str(e)
		case "token_cookie":
			w.TokenCookie, _ = l.str(e)
		case "handshake_timeout":
			w.HandshakeTimeout, _ = l.fractionalDuration(e)
		case "no_auth_user":
			w.NoAuthUser, _ = l.str(e)
		case "authorization", "authentication":
			l.wsAuthorization(w, e)
		default:
			l.bad(e, " is not a websocket {} setting: use host, port, listen, advertise, advertise_probe, tls, no_tls, compression, same_origin, allowed_origins, jwt_cookie, user_cookie, pass_cookie, token_cookie, handshake_timeout, no_auth_user or authorization")
		}
	}
	s.WebSocket = w
}

// wsAuthorization reads websocket {}'s authorization block: one user or a
// token (nats-server allows no users list here).
func (l *loader) wsAuthorization(w *WebSocket, v value) {
	m, ok := v.raw.(map[string]any)
	if !ok {
		l.bad(v, " expected a block { user: ..., password: ... } or { token: ... }, got %s", describe(v.raw))
		return
	}
	for k, e := range v.keys(m) {
		if !l.simpleAuthKey(k, e, &w.User, &w.Pass, &w.Token, &w.AuthTimeout) {
			l.bad(e, " is not a websocket authorization setting: use user, password, token or timeout (users lists go in the top-level authorization {} or accounts {})")
		}
	}
}

// checkWebSocket adds the websocket {} block's findings; nats-server's
// wording is kept where it has one.
func (s *Server) checkWebSocket(bad func(key, format string, args ...any)) {
	w := s.WebSocket
	if w == nil {
		return
	}
	if w.Port < -1 || w.Port > 65535 {
		bad("websocket", " port %d is out of range: use 1..65535, or -1 for a free port", w.Port)
	}
	if !w.Enabled() {
		return // nats-server ignores a block without a port
	}
	if w.TLS == nil && !w.NoTLS {
		bad("websocket", " requires TLS configuration (nats-server: \"websocket requires TLS configuration\"): add tls { cert_file: ..., key_file: ... }, or set no_tls: true if clients' credentials may cross the network in clear text")
	}
	for _, o := range w.AllowedOrigins {
		if _, err := url.ParseRequestURI(o); err != nil {
			bad("websocket", " unable to parse allowed origin: %v (write origins as scheme://host[:port], e.g. \"https://app.example.com\")", err)
		}
	}
	if w.JWTCookie != "" && len(s.Operators) == 0 {
		bad("websocket", " trusted operators or trusted keys configuration is required for JWT authentication via cookie %q: set operator and resolver, or remove jwt_cookie", w.JWTCookie)
	}
	if w.HandshakeTimeout < 0 {
		bad("websocket", " handshake_timeout %v must not be negative", w.HandshakeTimeout)
	}
	if w.Advertise != "" {
		if _, _, err := splitAdvertise(w.Advertise); err != nil {
			bad("websocket", " advertise %q: %v", w.Advertise, err)
		}
	}
	lists := len(s.Auth.Users) > 0
	for _, a := range s.Accounts {
		lists = lists || len(a.Users) > 0
	}
	if w.Enabled() && w.NoAuthUser != "" && !lists && len(s.Operators) == 0 {
		bad("websocket", " no_auth_user: %q present, but users/nkeys are not defined: name a user of authorization { users } or accounts {}", w.NoAuthUser)
	}
	if w.Enabled() && (w.User != "" || w.Token != "") {
		// nats-server's words: a client naming a user is looked up in the
		// users lists first, so this user could never log in.
		if lists && w.User != "" {
			bad("websocket", " authentication username not compatible with presence of users/nkeys: give WebSocket clients a user in the users lists, or no_auth_user")
		}
		if lists && w.Token != "" {
			bad("websocket", " authentication token not compatible with presence of users/nkeys: give WebSocket clients a user in the users lists, or no_auth_user")
		}
	}
	if w.AuthOverride() && len(s.Operators) > 0 {
		bad("websocket", " authorization and no_auth_user are not supported in operator mode yet: WebSocket clients present user JWTs (or jwt_cookie)")
	}
	if w.AdvertiseProbe != "" {
		if _, _, _, err := ParseProbe(w.AdvertiseProbe); err != nil {
			bad("websocket", " advertise_probe: %v", err)
		}
		if _, port, _ := splitAdvertise(w.Advertise); port != "" {
			bad("websocket", " advertise %q names a port, but advertise_probe finds the port: give the host only", w.Advertise)
		}
	}
}

// splitAdvertise reads "host" or "host:port".
func splitAdvertise(a string) (string, string, error) {
	u, err := url.Parse("ws://" + a)
	if err != nil || u.Host != a || u.Hostname() == "" {
		return "", "", fmt.Errorf("give host or host:port")
	}
	return u.Hostname(), u.Port(), nil
}
