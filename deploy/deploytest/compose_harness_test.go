package deploytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

// services are the images `make images` builds and compose.yaml runs.
var services = []string{"frontdoor", "router", "authsvc", "streamsvc"}

// composeSuite is one compose project started from deploy/compose with its
// own name and host ports, so it runs beside a developer's `make
// compose-up` (and `make run`) without touching them.
type composeSuite struct {
	t       testing.TB
	project string
	file    string
	cmd     []string // "docker compose" or "docker-compose"
	env     []string
	// Host ports of the two fixed frontdoors.
	clientPort, wsPort, monitorPort [2]int
	// The ranges the scalable frontdoor's client and WebSocket ports are
	// published on.
	scalePorts, scaleWSPorts [2]int
}

// composeCommand finds Compose v2 (docker compose) or the older
// docker-compose; compose.yaml works with both. Without Docker the test is
// skipped with the reason; with Docker but no engine answering it fails.
func composeCommand(t testing.TB) []string {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("deploy: docker is not installed on this machine; the compose tests need a Docker engine")
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Fatalf("deploy: docker is installed but no engine answers (docker info: %v: %s); start dockerd", err, out)
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	t.Skip("deploy: neither `docker compose` nor `docker-compose` is installed")
	return nil
}

// requireImages checks that `make images` ran (make test runs it first).
func requireImages(t testing.TB) {
	t.Helper()
	for _, s := range services {
		ref := "switchyard/" + s + ":latest"
		if err := exec.Command("docker", "image", "inspect", ref).Run(); err != nil {
			t.Fatalf("deploy: image %s is missing: run make images (make test builds them)", ref)
		}
	}
}

// scaleRange is how many client ports the scalable frontdoor may take: the
// test scales it to 3.
const scaleRange = 5

func startCompose(t *testing.T) *composeSuite {
	t.Helper()
	cmd := composeCommand(t)
	requireImages(t)
	s := &composeSuite{
		t:       t,
		project: fmt.Sprintf("sytest%d%04d", os.Getpid()%100000, rand.IntN(10000)),
		file:    filepath.Join(testkit.RepoRoot(t), "deploy", "compose", "compose.yaml"),
		cmd:     cmd,
	}
	for i := range 2 {
		s.clientPort[i], s.wsPort[i], s.monitorPort[i] = testkit.FreePort(t), testkit.FreePort(t), testkit.FreePort(t)
	}
	s.scalePorts[0] = testkit.FreePortRange(t, scaleRange)
	s.scalePorts[1] = s.scalePorts[0] + scaleRange - 1
	s.scaleWSPorts[0] = testkit.FreePortRange(t, scaleRange)
	s.scaleWSPorts[1] = s.scaleWSPorts[0] + scaleRange - 1
	s.env = append(os.Environ(),
		fmt.Sprintf("SWITCHYARD_SCALE_PORTS=%d-%d", s.scalePorts[0], s.scalePorts[1]),
		fmt.Sprintf("SWITCHYARD_SCALE_WS_PORTS=%d-%d", s.scaleWSPorts[0], s.scaleWSPorts[1]),
		"SWITCHYARD_SCALE_PUBLISH_IP=0.0.0.0",
		"SWITCHYARD_FRONTDOOR1_PORT="+strconv.Itoa(s.clientPort[0]),
		"SWITCHYARD_FRONTDOOR1_MONITOR_PORT="+strconv.Itoa(s.monitorPort[0]),
		"SWITCHYARD_FRONTDOOR1_WS_PORT="+strconv.Itoa(s.wsPort[0]),
		"SWITCHYARD_FRONTDOOR2_WS_PORT="+strconv.Itoa(s.wsPort[1]),
		"SWITCHYARD_FRONTDOOR2_PORT="+strconv.Itoa(s.clientPort[1]),
		"SWITCHYARD_FRONTDOOR2_MONITOR_PORT="+strconv.Itoa(s.monitorPort[1]),
		"SWITCHYARD_PUBLISH_IP=127.0.0.1",
		"SWITCHYARD_ADVERTISE_HOST=127.0.0.1",
		"SWITCHYARD_TAG=latest",
	)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("compose logs:\n%s", s.tryCompose("logs", "--no-color", "--tail", "60"))
		}
		s.down()
	})
	s.compose("up", "-d")
	s.waitHealthy(90 * time.Second)
	return s
}

// compose runs a compose command for this project and fails the test if it
// fails.
func (s *composeSuite) compose(args ...string) string {
	s.t.Helper()
	out, err := s.run(2*time.Minute, args...)
	require.NoError(s.t, err, "%s %s:\n%s", strings.Join(s.cmd, " "), strings.Join(args, " "), out)
	return out
}

func (s *composeSuite) tryCompose(args ...string) string {
	out, err := s.run(2*time.Minute, args...)
	if err != nil {
		return fmt.Sprintf("%s(%v)", out, err)
	}
	return out
}

func (s *composeSuite) run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append(append(append([]string{}, s.cmd[1:]...), "-p", s.project, "-f", s.file), args...)
	c := exec.CommandContext(ctx, s.cmd[0], full...)
	c.Env = s.env
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	return out.String(), err
}

// down removes everything the project made; -t 1 because lame duck on
// every frontdoor is not what a test teardown is about.
func (s *composeSuite) down() {
	if out, err := s.run(2*time.Minute, "down", "-v", "-t", "1", "--remove-orphans"); err != nil {
		s.t.Logf("compose down: %v\n%s", err, out)
	}
}

// leftovers lists the containers, volumes and networks that still carry the
// project's label.
func (s *composeSuite) leftovers() []string {
	label := "label=com.docker.compose.project=" + s.project
	var left []string
	for _, args := range [][]string{
		{"ps", "-a", "--filter", label, "--format", "container {{.Names}}"},
		{"volume", "ls", "--filter", label, "--format", "volume {{.Name}}"},
		{"network", "ls", "--filter", label, "--format", "network {{.Name}}"},
	} {
		out, err := exec.Command("docker", args...).CombinedOutput()
		require.NoError(s.t, err, "docker %v: %s", args, out)
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l != "" {
				left = append(left, l)
			}
		}
	}
	return left
}

// containers maps each running container of the project (by service and
// number) to its health: "healthy", "starting", "unhealthy" or "" (none).
func (s *composeSuite) containers() map[string]string {
	s.t.Helper()
	ids, err := exec.Command("docker", "ps", "-q", "--filter", "label=com.docker.compose.project="+s.project).Output()
	require.NoError(s.t, err, "docker ps")
	states := map[string]string{}
	if len(bytes.TrimSpace(ids)) == 0 {
		return states
	}
	args := append([]string{"inspect", "-f",
		`{{index .Config.Labels "com.docker.compose.service"}}/{{index .Config.Labels "com.docker.compose.container-number"}} {{if .State.Health}}{{.State.Health.Status}}{{end}}`},
		strings.Fields(string(ids))...)
	out, err := exec.Command("docker", args...).Output()
	if err != nil {
		return states // a container went away between ps and inspect: ask again
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, health, _ := strings.Cut(l, " ")
		states[name] = health
	}
	return states
}

// replicas lists the container ids of a service's replicas, by number.
func (s *composeSuite) replicas(service string) []string {
	s.t.Helper()
	out, err := exec.Command("docker", "ps", "-q",
		"--filter", "label=com.docker.compose.project="+s.project,
		"--filter", "label=com.docker.compose.service="+service).Output()
	require.NoError(s.t, err, "docker ps")
	ids := strings.Fields(string(out))
	require.NotEmpty(s.t, ids, "no running replica of %s", service)
	out, err = exec.Command("docker", append([]string{"inspect", "-f",
		`{{index .Config.Labels "com.docker.compose.container-number"}} {{.Id}}`}, ids...)...).Output()
	require.NoError(s.t, err, "docker inspect")
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	slices.SortFunc(lines, func(a, b string) int {
		na, _ := strconv.Atoi(strings.Fields(a)[0])
		nb, _ := strconv.Atoi(strings.Fields(b)[0])
		return na - nb
	})
	for i, l := range lines {
		lines[i] = strings.Fields(l)[1]
	}
	return lines
}

// waitHealthy waits until every container of the project reports healthy
// (what `docker compose up --wait` does in Compose v2; docker-compose 1.x
// has no --wait).
func (s *composeSuite) waitHealthy(d time.Duration) map[string]string {
	s.t.Helper()
	deadline := time.Now().Add(d)
	var states map[string]string
	for time.Now().Before(deadline) {
		states = s.containers()
		ok := len(states) > 0
		for _, h := range states {
			ok = ok && h == "healthy"
		}
		if ok {
			return states
		}
		time.Sleep(500 * time.Millisecond)
	}
	s.t.Fatalf("compose project %s not healthy after %v: %v", s.project, d, states)
	return nil
}

// url is the host-side client URL of fixed frontdoor i (0 or 1).
func (s *composeSuite) url(i int) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", s.clientPort[i])
}

// hostPort asks compose which host port the index-th replica of service
// publishes for port (the scalable frontdoor's ephemeral ports).
func (s *composeSuite) hostPort(service string, index, port int) int {
	s.t.Helper()
	out := strings.TrimSpace(s.compose("port", "--index", strconv.Itoa(index), service, strconv.Itoa(port)))
	_, p, ok := strings.Cut(out, ":")
	require.True(s.t, ok, "compose port %s %d: %q", service, port, out)
	n, err := strconv.Atoi(p)
	require.NoError(s.t, err, "compose port %s %d: %q", service, port, out)
	return n
}

// monitor GETs a monitoring endpoint of fixed frontdoor i into v.
func (s *composeSuite) monitor(i int, path string, v any) {
	s.t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", s.monitorPort[i], path))
	require.NoError(s.t, err)
	defer resp.Body.Close()
	require.Equal(s.t, http.StatusOK, resp.StatusCode, path)
	require.NoError(s.t, json.NewDecoder(resp.Body).Decode(v))
}

// logs returns a service's container output.
func (s *composeSuite) logs(service string) string {
	return s.tryCompose("logs", "--no-color", service)
}
