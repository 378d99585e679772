package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Server is one broker process started for a single measurement. A fresh
// process per measurement keeps state (heap growth, buffers, caches) from one
// workload or round from colouring the next.
type Server struct {
	Side        string
	Name        string // "reference server", "switchyard node A", ... for messages
	Port        int
	MonitorPort int
	proc        *Process
	url         string // the client URL when not nats:// on Port (a ws:// listener)
}

// startupTimeout bounds how long a server may take to greet its first client
// (and each further step of bringing a cluster up).
const startupTimeout = 15 * time.Second

// StartServer launches bin with nats-server style flags on free loopback
// ports and returns once it answers a TCP connection with INFO.
func StartServer(ctx context.Context, side, bin string) (*Server, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	return startServer(ctx, side, side+" server", bin, ports[0], ports[1], nil)
}

// startServer launches bin listening for clients on port and for monitoring
// on monitorPort, with extra flags (cluster settings) after those, and
// returns once it answers a TCP connection with INFO.
func startServer(ctx context.Context, side, name, bin string, port, monitorPort int, extra []string) (*Server, error) {
	args := append([]string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(monitorPort)}, extra...)
	proc, err := startProcess(name, bin, args, childEnv())
	if err != nil {
		return nil, err
	}
	s := &Server{Side: side, Name: name, Port: port, MonitorPort: monitorPort, proc: proc}
	if err := s.waitReady(ctx); err != nil {
		proc.Kill()
		return nil, fmt.Errorf("%s %s %s did not start: %w%s",
			name, bin, strings.Join(args, " "), err, proc.stderrTail())
	}
	return s, nil
}

// URL is the client URL natscli and nats.go connect to.
func (s *Server) URL() string {
	if s.url != "" {
		return s.url
	}
	return fmt.Sprintf("nats://127.0.0.1:%d", s.Port)
}

// Addr is the client address for raw TCP clients.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Stop kills the server; nothing it holds needs a graceful shutdown.
func (s *Server) Stop() { s.proc.Kill() }

// checkAlive turns "the server died mid-measurement" into an error with its
// stderr, instead of a confusing client-side connection error.
func (s *Server) checkAlive() error {
	if s.proc.Exited() {
		return fmt.Errorf("%s exited during the measurement%s", s.Name, s.proc.stderrTail())
	}
	return nil
}

// waitReady dials the client port until the server sends its INFO line; a
// listening socket alone is not proof the server will talk protocol.
func (s *Server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(startupTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		if s.proc.Exited() {
			return fmt.Errorf("process exited early (%v)", s.proc.waitErr)
		}
		if lastErr = readInfo(s.Addr()); lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("no INFO on %s within %s (last error: %v)", s.Addr(), startupTimeout, lastErr)
}

func readInfo(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "INFO ") {
		return fmt.Errorf("first line is %q, want INFO", clip(line))
	}
	return nil
}

// RSS reads the server's resident set size in bytes from /proc.
func (s *Server) RSS() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.proc.Pid()))
	if err != nil {
		return 0, fmt.Errorf("reading RSS of the %s: %w", s.Name, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "12345 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseFloat(f[0], 64)
				if err == nil {
					return kb * 1024, nil
				}
			}
			return 0, fmt.Errorf("unexpected VmRSS line %q", line)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", s.proc.Pid())
}

// Subscriptions returns the "subscriptions" counter of the monitoring
// endpoint /varz. It is how we learn that a natscli subscriber (a separate
// process that prints nothing until it is done) has registered interest.
func (s *Server) Subscriptions(ctx context.Context) (int, error) {
	var varz struct {
		Subscriptions *int `json:"subscriptions"`
	}
	if err := getJSON(ctx, s.MonitorPort, "/varz", &varz); err != nil {
		return 0, err
	}
	if varz.Subscriptions == nil {
		return 0, fmt.Errorf("GET /varz on port %d: no \"subscriptions\" field", s.MonitorPort)
	}
	return *varz.Subscriptions, nil
}

// getJSON decodes the monitoring endpoint path on 127.0.0.1:port into v.
func getJSON(ctx context.Context, port int, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// freePorts asks the kernel for n distinct free loopback ports. All listeners
// stay open until every port is picked, so the same port cannot come back
// twice; another process could still take one before the server binds it,
// which StartServer reports as a start failure.
func freePorts(n int) ([]int, error) {
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
