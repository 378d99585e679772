package bench

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// CLI runs natscli (`nats bench ...`) against one server.
type CLI struct {
	Path string
	// Timeout bounds every single nats bench run: a subscriber that never
	// gets all its messages would otherwise wait forever (it has no timeout
	// of its own and, in v0.5.1, even ignores SIGINT).
	Timeout time.Duration
	// Creds is a .creds file to connect with; empty: none.
	Creds string
	// CA is the CA file to trust for a TLS server (--tlsca); empty: none.
	CA string
}

// args builds a natscli command line. --no-context keeps a developer's
// selected natscli context (server, credentials) out of the measurement, and
// --no-progress keeps progress bars out of the output we parse.
func (c CLI) args(url string, benchArgs []string) []string {
	a := []string{"--no-context", "--server", url}
	if c.Creds != "" {
		a = append(a, "--creds", c.Creds)
	}
	if c.CA != "" {
		a = append(a, "--tlsca", c.CA)
	}
	a = append(a, "bench")
	a = append(a, benchArgs...)
	return append(a, "--no-progress")
}

// Start runs `nats bench <args>` in the background (subscribers, servers of
// the service benchmark).
func (c CLI) Start(url string, benchArgs ...string) (*Process, error) {
	name := "nats bench " + strings.Join(benchArgs, " ")
	return startProcess(name, c.Path, c.args(url, benchArgs), childEnv())
}

// Run runs `nats bench <args>` to completion and returns its stdout and how
// long it took.
func (c CLI) Run(ctx context.Context, url string, benchArgs ...string) (string, time.Duration, error) {
	p, err := c.Start(url, benchArgs...)
	if err != nil {
		return "", 0, err
	}
	defer p.Kill()
	if err := p.Wait(ctx, c.Timeout); err != nil {
		return "", 0, err
	}
	return p.Stdout(), time.Since(p.started), nil
}

// Version returns the first line of `<bin> --version`, or "" if bin does not
// answer it (Switchyard's binary may not support the flag).
func Version(ctx context.Context, bin string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p, err := startProcess(bin+" --version", bin, []string{"--version"}, childEnv())
	if err != nil {
		return ""
	}
	defer p.Kill()
	if err := p.Wait(ctx, 5*time.Second); err != nil {
		return ""
	}
	// natscli prints its version on stdout, nats-server too; accept either.
	out := strings.TrimSpace(p.Stdout() + "\n" + p.stderr.String())
	first, _, _ := strings.Cut(out, "\n")
	return strings.TrimSpace(first)
}

// countArg formats a message count for natscli flags.
func countArg(n int) string { return fmt.Sprint(n) }
