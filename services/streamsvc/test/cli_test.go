package test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

// natsCLI runs the pinned nats CLI (natscli v0.5.1, make tools) against
// one server URL, with no saved context, and returns its output; a
// failing command fails the test with what it printed.
type natsCLI struct {
	t    *testing.T
	bin  string
	url  string
	home string
}

func newNatsCLI(t *testing.T, url string) *natsCLI {
	t.Helper()
	bin := filepath.Join(testkit.RepoRoot(t), ".tools", "bin", "nats")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no nats CLI at %s (make tools installs natscli v0.5.1): %v", bin, err)
	}
	// Its own HOME: no contexts or settings of the machine's user.
	return &natsCLI{t: t, bin: bin, url: url, home: t.TempDir()}
}

func (c *natsCLI) run(args ...string) string {
	c.t.Helper()
	out, err := c.try(args...)
	if err != nil {
		c.t.Fatalf("nats %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// try runs the CLI and returns its output and how it failed, if it did.
func (c *natsCLI) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all := append([]string{"--no-context", "-s", c.url, "--timeout", "5s"}, args...)
	cmd := exec.CommandContext(ctx, c.bin, all...)
	cmd.Env = []string{"HOME=" + c.home, "PATH=" + os.Getenv("PATH"), "NO_COLOR=1"}
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The nats CLI's everyday JetStream commands: add a stream, publish,
// read its info as JSON, add a pull consumer, take and acknowledge the
// message, list and remove the stream.
func TestJetStreamCLI(t *testing.T) {
	tg := startTarget(t)
	_, js := tg.connect(t, 0)
	nats := newNatsCLI(t, tg.urls[0])
	waitForAPI(t, js)

	out := nats.run("stream", "add", "ORDERS", "--subjects", "orders.>", "--defaults")
	require.Contains(t, out, "Stream ORDERS was created", out)
	out = nats.run("pub", "orders.1", "hello")
	require.Contains(t, out, `Published 5 bytes to "orders.1"`, out)

	var info struct {
		Config struct {
			Name     string   `json:"name"`
			Subjects []string `json:"subjects"`
		} `json:"config"`
		State struct {
			Msgs     uint64 `json:"messages"`
			FirstSeq uint64 `json:"first_seq"`
			LastSeq  uint64 `json:"last_seq"`
		} `json:"state"`
	}
	out = nats.run("stream", "info", "ORDERS", "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &info), out)
	require.Equal(t, "ORDERS", info.Config.Name)
	require.Equal(t, []string{"orders.>"}, info.Config.Subjects)
	require.Equal(t, uint64(1), info.State.Msgs, out)
	require.Equal(t, uint64(1), info.State.LastSeq)

	out = nats.run("consumer", "add", "ORDERS", "worker", "--pull", "--defaults")
	require.Contains(t, out, "Information for Consumer ORDERS > worker", out)
	out = nats.run("consumer", "next", "ORDERS", "worker")
	t.Logf("nats consumer next ORDERS worker:\n%s", out)
	require.Contains(t, out, "hello", out)
	require.Contains(t, out, "Acknowledged message", out)
	var cons struct {
		NumAckPending int `json:"num_ack_pending"`
		NumPending    int `json:"num_pending"`
		AckFloor      struct {
			Stream uint64 `json:"stream_seq"`
		} `json:"ack_floor"`
	}
	out = nats.run("consumer", "info", "ORDERS", "worker", "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &cons), out)
	require.Zero(t, cons.NumAckPending, out)
	require.Zero(t, cons.NumPending, out)
	require.Equal(t, uint64(1), cons.AckFloor.Stream, out)

	out = nats.run("stream", "ls")
	require.Contains(t, out, "ORDERS", out)
	require.Equal(t, "ORDERS", strings.TrimSpace(nats.run("stream", "ls", "--names")))

	nats.run("stream", "rm", "ORDERS", "-f")
	require.Empty(t, strings.TrimSpace(nats.run("stream", "ls", "--names")))
	_, err := js.Stream(ctx(t), "ORDERS")
	require.Error(t, err, "ORDERS is gone")
}
