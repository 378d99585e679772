package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigWebSocket(t *testing.T) {
	c, err := Parse(`websocket {
		listen: "127.0.0.1:8080", advertise: "ws.example.com:443"
		tls { cert_file: "s.pem", key_file: "s.key" }
		compression: true, same_origin: true, allowed_origins: ["https://app.example.com", "http://localhost:3000"]
		handshake_timeout: "3s", user_cookie: "u", pass_cookie: "p", token_cookie: "t"
	}`)
	require.NoError(t, err)
	require.Equal(t, &WebSocket{Host: "127.0.0.1", Port: 8080, Advertise: "ws.example.com:443",
		TLS: &TLS{CertFile: "s.pem", KeyFile: "s.key"}, Compression: true, SameOrigin: true,
		AllowedOrigins:   []string{"https://app.example.com", "http://localhost:3000"},
		HandshakeTimeout: 3 * time.Second, UserCookie: "u", PassCookie: "p", TokenCookie: "t"}, c.WebSocket)
	require.True(t, c.WebSocket.Enabled())

	c, err = Parse(`ws { port: -1, no_tls: true, handshake_timeout: 0.5 }`)
	require.NoError(t, err)
	require.True(t, c.WebSocket.NoTLS)
	require.Equal(t, 500*time.Millisecond, c.WebSocket.Timeout())

	c, err = Parse(`websocket { no_tls: true }`)
	require.NoError(t, err)
	require.False(t, c.WebSocket.Enabled(), "no port: no listener, as on nats-server")
	require.Equal(t, DefaultWebSocketHandshakeTimeout, c.WebSocket.Timeout())

	c, err = Parse(`port: 4222`)
	require.NoError(t, err)
	require.False(t, c.WebSocket.Enabled())
}

// Refusals say what nats-server says, and what to do.
func TestConfigWebSocketRefusals(t *testing.T) {
	for conf, want := range map[string]string{
		`websocket { port: 8080 }`: `"websocket" requires TLS configuration (nats-server: "websocket requires TLS configuration")`,
		`websocket { port: 8080, no_tls: true, allowed_origins: ["%zz"] }`:                                                                  `"websocket" unable to parse allowed origin: parse "%zz": invalid URI for request`,
		`websocket { port: 8080, no_tls: true, jwt_cookie: "jwt" }`:                                                                         `"websocket" trusted operators or trusted keys configuration is required for JWT authentication via cookie "jwt"`,
		`websocket { port: 8080, no_tls: true, compression: "yes" }`:                                                                        `"websocket.compression": expected true or false, got the string "yes"`,
		`websocket { port: 8080, no_tls: true, handshake_timeout: "abc" }`:                                                                  `"websocket.handshake_timeout": "abc" is not a duration`,
		`websocket { port: 8080, no_tls: true, foo: 1 }`:                                                                                    `"websocket.foo" is not a websocket {} setting`,
		`websocket { port: 8080, no_tls: true, no_auth_user: "a" }`:                                                                         `"websocket" no_auth_user: "a" present, but users/nkeys are not defined`,
		`websocket { port: 8080, no_tls: true, authorization { users: [] } }`:                                                               `"websocket.authorization.users" is not a websocket authorization setting`,
		"websocket { port: 8080, no_tls: true, authorization { user: w, password: p } }\nauthorization { users: [{user: a, password: b}] }": `"websocket" authentication username not compatible with presence of users/nkeys`,
		`websocket { port: 70000, no_tls: true }`:                                                                                           `"websocket" port 70000 is out of range`,
		`websocket { port: 8080, tls { cert_file: "a" } }`:                                                                                  `"websocket.tls" needs cert_file and key_file`,
		`websocket: 8080`: `"websocket" expected a block`,
	} {
		_, err := Parse(conf)
		require.Error(t, err, conf)
		require.Contains(t, err.Error(), "line 1: "+want, conf)
	}
}
