package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
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
	if err := greet(conn, ""); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// greet sends CONNECT, then the protocol lines in extra (e.g. a SUB), then
// PING, and reads until PONG: the server has processed everything before it.
func greet(conn net.Conn, extra string) error {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("CONNECT {\"verbose\":false}\r\n" + extra + "PING\r\n")); err != nil {
		return err
	}
	r := bufio.NewReaderSize(conn, 4096)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("waiting for PONG: %w", err)
		}
		switch {
		case strings.HasPrefix(line, "PONG"):
			_ = conn.SetDeadline(time.Time{})
			return nil
		case strings.HasPrefix(line, "-ERR"):
			return fmt.Errorf("server said %q", strings.TrimSpace(line))
		}
		// INFO (and anything else informational) is skipped.
	}
}

// stuckSubscriber subscribes to subject on a raw connection that will never
// read again: a consumer that has hung. Its small receive buffer makes the
// kernel stop taking the server's bytes after a few dozen KiB, so the
// server's own buffering is what holds its backlog, on either server.
func stuckSubscriber(addr, subject string) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	err = conn.(*net.TCPConn).SetReadBuffer(64 << 10)
	if err == nil {
		err = greet(conn, "SUB "+subject+" 1\r\n")
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("stuck subscriber: %w", err)
	}
	return conn, nil
}

// idleConnections opens n raw client connections, each completing the
// CONNECT/PING/PONG handshake, lets the server settle, and reads its RSS.
// Raw TCP rather than nats.go keeps the clients' own cost out of the harness
// and sends exactly the same bytes to both servers.
func (h *Harness) idleConnections(ctx context.Context, t *Topology, n int, settle time.Duration) ([]float64, error) {
	if t.Cross() {
		return nil, fmt.Errorf("idle connections are measured on a single server")
	}
	s := t.Pub
	// Let start-up allocations finish before taking the baseline.
	if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
		return nil, err
	}
	baseline, err := s.RSS()
	if err != nil {
		return nil, err
	}
	conns, err := openIdle(ctx, s.Addr(), n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		return nil, fmt.Errorf("%w%s", err, s.aliveNote())
	}
	if err := sleepCtx(ctx, settle); err != nil {
		return nil, err
	}
	if err := s.checkAlive(); err != nil {
		return nil, err
	}
	rss, err := s.RSS()
	if err != nil {
		return nil, err
	}
	return []float64{rss, (rss - baseline) / float64(n)}, nil
}

// openIdle dials n connections with a few dozen workers: fast, without
// overrunning the server's accept backlog.
func openIdle(ctx context.Context, addr string, n int) ([]net.Conn, error) {
	const workers = 32
	var (
		mu       sync.Mutex
		conns    = make([]net.Conn, 0, n)
		firstErr error
		next     atomic.Int64
		wg       sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				c, err := handshake(addr)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d of %d: %w", len(conns)+1, n, err)
					}
					mu.Unlock()
					return
				}
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return conns, firstErr
}
