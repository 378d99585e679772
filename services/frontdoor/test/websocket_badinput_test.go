package test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Frame-level behaviour and bad input on the WebSocket listener, each
// checked on nats-server too (onBoth). After every refusal the server
// must still serve: alive checks a fresh client.

func alive(t *testing.T, s wsServer) {
	t.Helper()
	rc := newRawWS(t, s.wsURL(), nil)
	rc.expect(t, "INFO ")
	rc.send(t, wsClientFrame(0x82, []byte("CONNECT {\"verbose\":false}\r\nPING\r\n"), true))
	rc.expect(t, "PONG\r\n")
}

// A message split over fragments (with a ping between them) is one
// stream for the parser; a ping is answered with a pong carrying its
// payload; a close frame is answered and ends the connection.
func TestWebSocketFragmentedFrames(t *testing.T) {
	onBoth(t, func(port int) string { return wsConf(port, "no_tls: true") }, func(t *testing.T, s wsServer) {
		rc := newRawWS(t, s.wsURL(), nil)
		rc.expect(t, "INFO ")
		rc.send(t, wsClientFrame(0x82, []byte("CONNECT {\"verbose\":false}\r\nSUB frag 1\r\n"), true))
		var b []byte
		b = append(b, wsClientFrame(0x02, []byte("PUB frag 11\r\nhel"), true)...)             // binary, not final
		b = append(b, wsClientFrame(0x89, []byte("are you there"), true)...)                  // ping between fragments
		b = append(b, wsClientFrame(0x00, []byte("lo "), true)...)                            // continuation
		b = append(b, wsClientFrame(0x80, []byte("world\r\nPING\r\n"), true)...)              // final continuation
		b = append(b, wsClientFrame(0x81, []byte("PUB frag 4\r\ntext\r\nPING\r\n"), true)...) // text frames work too
		rc.send(t, b[:7])
		time.Sleep(50 * time.Millisecond) // a header cut across reads
		rc.send(t, b[7:])
		var pong, data string
		for !strings.Contains(data, "MSG frag 1 4\r\ntext\r\n") {
			b0, p := rc.readFrame(t)
			switch b0 & 0x0f {
			case 0xA:
				pong = string(p)
			case 0x8:
				t.Fatalf("closed: %q (data so far %q)", p, data)
			default:
				data += string(p)
			}
		}
		require.Equal(t, "are you there", pong)
		require.Contains(t, data, "MSG frag 1 11\r\nhello world\r\n")

		rc.send(t, wsClientFrame(0x88, []byte{0x03, 0xe8}, true))
		status, _ := rc.expectClose(t)
		require.Equal(t, 1000, status)
	})
}

// One frame holding a message over max_payload: the parser's limit,
// as over TCP (-ERR 'Maximum Payload Violation').
func TestWebSocketOversizedFrame(t *testing.T) {
	onBoth(t, func(port int) string { return "max_payload: 1024\n" + wsConf(port, "no_tls: true") }, func(t *testing.T, s wsServer) {
		rc := newRawWS(t, s.wsURL(), nil)
		rc.expect(t, "INFO ")
		big := fmt.Sprintf("CONNECT {\"verbose\":false}\r\nPUB x 5000\r\n%s\r\n", strings.Repeat("b", 5000))
		rc.send(t, wsClientFrame(0x82, []byte(big), true))
		got := rc.expect(t, "-ERR")
		require.Contains(t, got, "-ERR 'Maximum Payload Violation'")
		alive(t, s)
	})
}

// Malformed, truncated and hostile frames end the connection (with a
// close frame saying why, on Switchyard), in bounded memory; the server
// goes on serving.
func TestWebSocketBadFrames(t *testing.T) {
	connect := wsClientFrame(0x82, []byte("CONNECT {\"verbose\":false}\r\n"), true)
	for name, tc := range map[string]struct {
		frames []byte
		reason string // Switchyard's close frame text
	}{
		"unmasked client frame": {wsClientFrame(0x82, []byte("PING\r\n"), false), "mask bit missing"},
		"control frame over 125 bytes": {wsClientFrame(0x89, bytes.Repeat([]byte("p"), 126), true),
			"control frame length bigger than maximum allowed of 125 bytes"},
		"fragmented control frame": {wsClientFrame(0x09, []byte("p"), true), "control frame does not have final bit set"},
		"unknown opcode":           {wsClientFrame(0x83, []byte("PING\r\n"), true), "unknown opcode 3"},
		"continuation first":       {wsClientFrame(0x80, []byte("PING\r\n"), true), "invalid continuation frame"},
		"two messages interleaved": {append(wsClientFrame(0x02, []byte("PI"), true), wsClientFrame(0x82, []byte("NG\r\n"), true)...),
			"new message started before final frame"},
		"huge length (64-bit, top bit set)": {[]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, "invalid frame length"},
		"huge length, then garbage": {append([]byte{0x82, 0xff, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "\x00\x01garbage\r\n"...),
			""}, // streamed to the parser, which refuses the bytes: Unknown Protocol Operation
	} {
		t.Run(name, func(t *testing.T) {
			onBoth(t, func(port int) string { return wsConf(port, "no_tls: true") }, func(t *testing.T, s wsServer) {
				rc := newRawWS(t, s.wsURL(), nil)
				rc.expect(t, "INFO ")
				rc.send(t, connect)
				rc.send(t, tc.frames)
				ended := waitEnded(t, rc)
				if s.name == "switchyard" && tc.reason != "" {
					require.Contains(t, ended, "close 1002 ")
					require.Contains(t, ended, tc.reason)
				}
				alive(t, s)
			})
		})
	}
}

// waitEnded reads until the connection ends (a close frame, or EOF)
// and describes how; it fails if that takes longer than 5 s.
func waitEnded(t *testing.T, rc *rawWS) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var seen []string
	for {
		b0, p, err := rc.tryFrame(t, time.Until(deadline))
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("still open after 5s; got %v", seen)
			}
			return strings.Join(append(seen, "EOF"), ", ")
		}
		if b0&0x0f == 0x8 && len(p) >= 2 {
			seen = append(seen, fmt.Sprintf("close %d %q", int(p[0])<<8|int(p[1]), p[2:]))
			continue
		}
		seen = append(seen, fmt.Sprintf("%q", p))
	}
}

// A truncated frame (the client goes away mid-frame) and a client that
// never finishes a fragmented message leave nothing behind.
func TestWebSocketTruncatedFrames(t *testing.T) {
	onBoth(t, func(port int) string { return wsConf(port, "no_tls: true") }, func(t *testing.T, s wsServer) {
		// The start-up check's connection may not be gone yet (nats-server
		// counted it in /varz once, in CI): nothing else is connected.
		waitForConnections(t, s.p, 0)
		for _, cut := range []int{1, 5, 12} {
			rc := newRawWS(t, s.wsURL(), nil)
			rc.expect(t, "INFO ")
			f := wsClientFrame(0x82, []byte("CONNECT {\"verbose\":false}\r\nPING\r\n"), true)
			rc.send(t, f[:cut])
			rc.conn.Close()
		}
		rc := newRawWS(t, s.wsURL(), nil)
		rc.expect(t, "INFO ")
		rc.send(t, wsClientFrame(0x02, []byte("CONNECT {\"verbose\":false}\r\n"), true))
		rc.conn.Close()
		waitForConnections(t, s.p, 0)
		alive(t, s)
	})
}

// A compression bomb — a small compressed frame inflating past
// max_payload — is cut off once max_payload bytes came out of it.
func TestWebSocketCompressionBomb(t *testing.T) {
	onBoth(t, func(port int) string { return wsConf(port, "no_tls: true, compression: true") }, func(t *testing.T, s wsServer) {
		rc := newRawWS(t, s.wsURL(), http.Header{"Sec-Websocket-Extensions": {"permessage-deflate"}})
		rc.expect(t, "INFO ")
		rc.send(t, wsClientFrame(0x82, []byte("CONNECT {\"verbose\":false}\r\n"), true))
		bomb := wsDeflate(t, bytes.Repeat([]byte("PUB nobody 1\r\nx\r\n"), 64<<20/17)) // 64 MB
		require.Less(t, len(bomb), 1<<20)
		rc.send(t, wsClientFrame(0xc2, bomb, true))
		ended := waitEnded(t, rc)
		if s.name == "switchyard" {
			require.Contains(t, ended, `close 1009 "maximum payload exceeded"`)
		}
		var v struct {
			Mem      int64 `json:"mem"`
			InMsgs   int64 `json:"in_msgs"`
			InClient int64 `json:"in_client_msgs"`
		}
		getJSON(t, s.p, "/varz", &v)
		require.Less(t, v.InMsgs, int64(1<<20/17+1), "no more than max_payload inflated")
		alive(t, s)
	})
}

// A client that opens a connection and sends its upgrade request slowly
// (or not at all) is cut at handshake_timeout.
func TestWebSocketSlowLorisHandshake(t *testing.T) {
	onBoth(t, func(port int) string { return wsConf(port, `no_tls: true, handshake_timeout: "1s"`) }, func(t *testing.T, s wsServer) {
		for _, partial := range []string{"", "GET / HTTP/1.1\r\nHost: x\r\n"} {
			conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.wsPort), time.Second)
			require.NoError(t, err)
			defer conn.Close()
			start := time.Now()
			io.WriteString(conn, partial)
			for i := 0; i < 3; i++ { // dribble, a byte now and then
				time.Sleep(200 * time.Millisecond)
				conn.Write([]byte("X"))
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = io.ReadAll(conn)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("partial %q: still open after 5 s", partial)
			} // EOF, or a reset: the server closed with our bytes unread

			require.Less(t, time.Since(start), 4*time.Second, "partial %q", partial)
		}
		alive(t, s)
	})
}

// Upgrade requests that are not WebSocket handshakes get nats-server's
// HTTP statuses.
func TestWebSocketBadUpgrade(t *testing.T) {
	onBoth(t, func(port int) string { return wsConf(port, "no_tls: true") }, func(t *testing.T, s wsServer) {
		do := func(method string, h map[string]string) int {
			req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d/", s.wsPort), nil)
			require.NoError(t, err)
			for k, v := range h {
				req.Header.Set(k, v)
			}
			resp, err := httpClient.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, http.StatusText(resp.StatusCode)+"\n", string(body))
			return resp.StatusCode
		}
		good := map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
		without := func(k string) map[string]string {
			m := map[string]string{}
			for kk, v := range good {
				if kk != k {
					m[kk] = v
				}
			}
			return m
		}
		require.Equal(t, http.StatusMethodNotAllowed, do(http.MethodPost, good))
		require.Equal(t, http.StatusBadRequest, do(http.MethodGet, nil))
		require.Equal(t, http.StatusBadRequest, do(http.MethodGet, without("Upgrade")))
		require.Equal(t, http.StatusBadRequest, do(http.MethodGet, without("Connection")))
		require.Equal(t, http.StatusBadRequest, do(http.MethodGet, without("Sec-WebSocket-Key")))
		old := without("Sec-WebSocket-Version")
		old["Sec-WebSocket-Version"] = "8"
		require.Equal(t, http.StatusBadRequest, do(http.MethodGet, old))
		eventually(t, waitLong, func() error {
			if !strings.Contains(s.p.Log(), "websocket handshake error: invalid version") {
				return errors.New("refusal not logged")
			}
			return nil
		})
		alive(t, s)
	})
}
