package bench

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"time"
)

// handshake opens one client connection and completes the protocol greeting:
// read INFO, send CONNECT (non-verbose, so no +OK) and PING, wait for PONG.
// A PONG proves the server has fully registered the client, so the
// connection's memory is in the RSS we read afterwards.
func handshake(addr string) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("CONNECT {\"verbose\":false}\r\nPING\r\n")); err != nil {
		conn.Close()
		return nil, err
	}
	r := bufio.NewReaderSize(conn, 4096)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("waiting for PONG: %w", err)
		}
		switch {
		case strings.HasPrefix(line, "PONG"):
			_ = conn.SetDeadline(time.Time{})
			return conn, nil
		case strings.HasPrefix(line, "-ERR"):
			conn.Close()
			return nil, fmt.Errorf("server said %q", strings.TrimSpace(line))
		}
		// INFO (and anything else informational) is skipped.
	}
}
