// Package testkit starts real Switchyard processes for tests and speaks raw
// protocol to them. Helpers take testing.TB and clean up after themselves.
package testkit

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RepoRoot finds the repository root (the folder holding go.work).
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatalf("testkit: no go.work above %s", file)
		}
		dir = parent
	}
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// Binary builds services/<name>/cmd/<name> once per test process and returns
// the binary's path. SWITCHYARD_BIN_DIR points at prebuilt binaries instead.
func Binary(tb testing.TB, name string) string {
	tb.Helper()
	if dir := os.Getenv("SWITCHYARD_BIN_DIR"); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	root := RepoRoot(tb)
	out := filepath.Join(os.TempDir(), fmt.Sprintf("switchyard-test-%d", os.Getpid()), name)
	cmd := exec.Command("go", "build", "-o", out, "./cmd/"+name)
	cmd.Dir = filepath.Join(root, "services", name)
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("testkit: building %s: %v\n%s", name, err, b)
	}
	built[name] = out
	return out
}

// FreePort returns a loopback TCP port that was free a moment ago and
// that no other test (in any test process of this machine) is given until
// this test ends. It picks below the kernel's ephemeral range (32768 and
// up on Linux), where outgoing connections and listeners on port 0 take
// their ports, so none of those can take it before the server binds it.
func FreePort(tb testing.TB) int {
	tb.Helper()
	return FreePortRange(tb, 1)
}

// FreePortRange returns the first of n consecutive ports, each free and
// reserved as FreePort's are (a range Docker publishes a scaled service
// on, a proxy standing in for it).
func FreePortRange(tb testing.TB, n int) int {
	tb.Helper()
	dir := filepath.Join(os.TempDir(), "switchyard-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		tb.Fatalf("testkit: free port: %v", err)
	}
	for range 2000 {
		lo := freePortLow + rand.IntN(freePortHigh-freePortLow-n)
		var held []int
		for p := lo; p < lo+n && reservePort(dir, p); p++ {
			held = append(held, p)
		}
		if len(held) == n {
			tb.Cleanup(func() {
				for _, p := range held {
					os.Remove(filepath.Join(dir, strconv.Itoa(p)))
				}
			})
			return lo
		}
		for _, p := range held {
			os.Remove(filepath.Join(dir, strconv.Itoa(p)))
		}
	}
	tb.Fatalf("testkit: no %d free ports in a row in %d-%d", n, freePortLow, freePortHigh)
	return 0
}

// reservePort takes port's lock file in dir if no test holds it and the
// port can be bound now.
func reservePort(dir string, port int) bool {
	lock := filepath.Join(dir, strconv.Itoa(port))
	f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		// Taken by a running test, or left by one that crashed.
		if info, err := os.Stat(lock); err == nil && time.Since(info.ModTime()) > staleReservation {
			os.Remove(lock)
		}
		return false
	}
	f.Close()
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		os.Remove(lock)
		return false
	}
	l.Close()
	return true
}

// The range FreePort picks from, and when a reservation left by a
// crashed test may be taken again.
const (
	freePortLow      = 10000
	freePortHigh     = 32000
	staleReservation = time.Hour
)

// Process is a started service binary.
type Process struct {
	Cmd      *exec.Cmd
	Port     int // client port
	HTTPPort int // monitoring port (0 when off)
	log      *syncBuffer
	done     chan struct{}
}

// URL is the nats:// URL of the client port.
func (p *Process) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", p.Port) }

// Addr is host:port of the client port.
func (p *Process) Addr() string { return fmt.Sprintf("127.0.0.1:%d", p.Port) }

// MonitorURL is the http:// base of the monitoring port.
func (p *Process) MonitorURL() string { return fmt.Sprintf("http://127.0.0.1:%d", p.HTTPPort) }

// Log returns everything the process wrote so far.
func (p *Process) Log() string { return p.log.String() }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits up to d for the process to exit and reports whether it did.
func (p *Process) Wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Stop kills the process (if still running) and waits for it.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.Cmd.Process.Kill()
	<-p.done
}

// FrontdoorOptions choose how StartFrontdoor runs the binary.
type FrontdoorOptions struct {
	Config   string   // config file contents (written to a temp file), optional
	Args     []string // extra flags
	Port     int      // 0: a free port
	HTTPPort int      // 0: a free port; -1: monitoring off
	// ReadyLog, when set, is the log line that says the frontdoor is ready
	// (for a frontdoor whose INFO a plain client never sees, such as one
	// with TLS handshake_first); otherwise StartFrontdoor waits for INFO.
	ReadyLog string
}

// StartFrontdoor starts the frontdoor binary on free loopback ports and
// waits until it sends INFO. It is stopped when the test ends.
func StartFrontdoor(tb testing.TB, o FrontdoorOptions) *Process {
	tb.Helper()
	bin := Binary(tb, "frontdoor")
	port := o.Port
	if port == 0 {
		port = FreePort(tb)
	}
	args := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port)}
	httpPort := o.HTTPPort
	if httpPort == 0 {
		httpPort = FreePort(tb)
	}
	if httpPort > 0 {
		args = append(args, "-m", strconv.Itoa(httpPort))
	} else {
		httpPort = 0
	}
	if o.Config != "" {
		f := filepath.Join(tb.TempDir(), "frontdoor.conf")
		if err := os.WriteFile(f, []byte(o.Config), 0o600); err != nil {
			tb.Fatal(err)
		}
		args = append(args, "-c", f)
	}
	args = append(args, o.Args...)
	p := Start(tb, bin, args...)
	p.Port, p.HTTPPort = port, httpPort
	if o.ReadyLog != "" {
		WaitForLog(tb, p, o.ReadyLog, 10*time.Second)
		return p
	}
	WaitForINFO(tb, p, 10*time.Second)
	return p
}

// WaitForLog waits until the process has logged line (a substring).
func WaitForLog(tb testing.TB, p *Process, line string, d time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			tb.Fatalf("testkit: process exited before it logged %q:\n%s", line, p.Log())
		default:
		}
		if strings.Contains(p.Log(), line) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("testkit: no %q logged after %v:\n%s", line, d, p.Log())
}

// Start runs bin with args, capturing its output; it is killed when the test
// ends.
func Start(tb testing.TB, bin string, args ...string) *Process {
	tb.Helper()
	cmd := exec.Command(bin, args...)
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		tb.Fatalf("testkit: starting %s: %v", bin, err)
	}
	p := &Process{Cmd: cmd, log: log, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() {
		p.Stop()
		if tb.Failed() {
			tb.Logf("%s output:\n%s", filepath.Base(bin), p.Log())
		}
	})
	return p
}

// WaitForINFO dials until the process answers with INFO.
func WaitForINFO(tb testing.TB, p *Process, d time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			tb.Fatalf("testkit: process exited before it was ready:\n%s", p.Log())
		default:
		}
		c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
		if err == nil {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil && strings.HasPrefix(line, "INFO ") {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("testkit: %s not ready after %v:\n%s", p.Addr(), d, p.Log())
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartRouter starts the router binary on free loopback ports and waits
// until its port accepts connections. Port 0 picks a free port.
func StartRouter(tb testing.TB, port int, args ...string) *Process {
	tb.Helper()
	return startService(tb, "router", port, args...)
}

// StartAuthsvc starts authsvc on 127.0.0.1 with monitoring, reading the
// nats-server format configuration file conf ("" for none), and waits
// until it accepts connections.
func StartAuthsvc(tb testing.TB, conf string, args ...string) *Process {
	tb.Helper()
	if conf != "" {
		args = append([]string{"-c", conf}, args...)
	}
	return startService(tb, "authsvc", 0, args...)
}

// startService starts a gRPC service binary (-a -p -m flags) and waits
// until its port accepts connections.
func startService(tb testing.TB, name string, port int, args ...string) *Process {
	tb.Helper()
	bin := Binary(tb, name)
	if port == 0 {
		port = FreePort(tb)
	}
	httpPort := FreePort(tb)
	all := append([]string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(httpPort)}, args...)
	p := Start(tb, bin, all...)
	p.Port, p.HTTPPort = port, httpPort
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			tb.Fatalf("testkit: %s exited before it was ready:\n%s", name, p.Log())
		default:
		}
		if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
			c.Close()
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("testkit: %s %s not ready:\n%s", name, p.Addr(), p.Log())
	return nil
}

// StartStreamsvc starts streamsvc attached to routers (host:port, comma
// separated) with its streams in storeDir, and waits until it is ready.
func StartStreamsvc(tb testing.TB, routers, storeDir string, args ...string) *Process {
	tb.Helper()
	httpPort := FreePort(tb)
	all := append([]string{"-a", "127.0.0.1", "-m", strconv.Itoa(httpPort), "--routers", routers, "--store_dir", storeDir}, args...)
	p := Start(tb, Binary(tb, "streamsvc"), all...)
	p.HTTPPort = httpPort
	WaitForLog(tb, p, "streamsvc is ready", 10*time.Second)
	return p
}
