package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a child started by the harness (a server or a nats bench run).
// Every child gets its own process group and a parent-death signal, so that
// it dies with us even if we are killed with SIGKILL and never run defers;
// Kill is the normal path and is safe to call more than once.
type Process struct {
	name    string
	cmd     *exec.Cmd
	stdout  *tailBuffer
	stderr  *tailBuffer
	done    chan struct{}
	waitErr error
	started time.Time
}

// startProcess starts bin with args. Output is kept in bounded buffers: a
// server may log a lot over a run and we only ever show the tail.
func startProcess(name, bin string, args []string, env []string) (*Process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	p := &Process{
		name:   name,
		cmd:    cmd,
		stdout: newTailBuffer(256 << 10),
		stderr: newTailBuffer(64 << 10),
		done:   make(chan struct{}),
	}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own group: a terminal Ctrl-C reaches only us, and we decide the
		// order of shutdown (kill children, then print what we have).
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s (%s): %w", name, bin, err)
	}
	p.started = time.Now()
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the child's process id (used to read its RSS from /proc).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the child has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the child has already exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill ends the child's whole process group and waits for it to be reaped.
func (p *Process) Kill() {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Wait waits for the child to exit on its own within limit; past that, or
// when ctx ends, the child is killed and an error says which.
func (p *Process) Wait(ctx context.Context, limit time.Duration) error {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-p.done:
		if p.waitErr != nil {
			return fmt.Errorf("%s failed: %v%s", p.name, p.waitErr, p.stderrTail())
		}
		return nil
	case <-timer.C:
		p.Kill()
		return fmt.Errorf("%s did not finish within %s; killed it%s", p.name, limit.Round(time.Second), p.stderrTail())
	case <-ctx.Done():
		p.Kill()
		return ctx.Err()
	}
}

// Stdout is everything the child printed on stdout (up to the buffer size).
func (p *Process) Stdout() string { return p.stdout.String() }

// stderrTail formats the end of stderr for an error message.
func (p *Process) stderrTail() string {
	s := strings.TrimSpace(p.stderr.String())
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "\n  stderr of " + p.name + ":\n    " + strings.Join(lines, "\n    ")
}

// childEnv drops NATS_* variables (NATS_URL, NATS_CONTEXT, credentials...) so
// that a developer's own natscli setup cannot redirect or alter a benchmark.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NATS_") {
			env = append(env, kv)
		}
	}
	return env
}

// tailBuffer keeps the last max bytes written to it; safe for concurrent use
// because exec copies stdout and stderr from separate goroutines.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(b)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
