package testkit

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// RawConn is a plain TCP connection for exact protocol bytes.
type RawConn struct {
	tb   testing.TB
	Conn net.Conn
	r    *bufio.Reader
	INFO string // the first line the server sent
}

// DialRaw connects and reads the server's INFO line.
func DialRaw(tb testing.TB, addr string) *RawConn {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatalf("testkit: dial %s: %v", addr, err)
	}
	rc := &RawConn{tb: tb, Conn: c, r: bufio.NewReader(c)}
	tb.Cleanup(func() { c.Close() })
	rc.INFO = rc.ReadLine(5 * time.Second)
	if !strings.HasPrefix(rc.INFO, "INFO ") {
		tb.Fatalf("testkit: expected INFO, got %q", rc.INFO)
	}
	return rc
}

// Send writes s as is.
func (rc *RawConn) Send(s string) {
	rc.tb.Helper()
	rc.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(rc.Conn, s); err != nil {
		rc.tb.Fatalf("testkit: send: %v", err)
	}
}

// ReadLine reads one line including its CRLF.
func (rc *RawConn) ReadLine(d time.Duration) string {
	rc.tb.Helper()
	rc.Conn.SetReadDeadline(time.Now().Add(d))
	line, err := rc.r.ReadString('\n')
	if err != nil {
		rc.tb.Fatalf("testkit: read line (got %q): %v", line, err)
	}
	return line
}

// Expect reads exactly len(want) bytes and fails unless they equal want.
func (rc *RawConn) Expect(want string) {
	rc.tb.Helper()
	rc.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(want))
	n, err := io.ReadFull(rc.r, got)
	if err != nil || !bytes.Equal(got, []byte(want)) {
		rc.tb.Fatalf("testkit: expected %q, got %q (err %v)", want, got[:n], err)
	}
}

// ReadFor returns everything that arrives within d.
func (rc *RawConn) ReadFor(d time.Duration) string {
	var out []byte
	buf := make([]byte, 4096)
	deadline := time.Now().Add(d)
	for {
		rc.Conn.SetReadDeadline(deadline)
		n, err := rc.r.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return string(out)
		}
	}
}

// ExpectClosed waits up to d for the server to close the connection and
// returns what it sent before closing.
func (rc *RawConn) ExpectClosed(d time.Duration) string {
	rc.tb.Helper()
	var out []byte
	buf := make([]byte, 4096)
	rc.Conn.SetReadDeadline(time.Now().Add(d))
	for {
		n, err := rc.r.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				rc.tb.Fatalf("testkit: connection still open after %v (received %q)", d, out)
			}
			return string(out)
		}
	}
}
