package service

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// HealthCheckFlag registers -healthcheck: instead of running, the binary
// asks the copy of itself that runs with the same flags, environment and
// configuration for its /healthz and exits 0 when it is healthy. Images are
// FROM scratch (no shell, no curl), so this is their HEALTHCHECK command.
func HealthCheckFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("healthcheck", false, "Probe the running service's /healthz on its monitoring port (same flags and config) and exit 0 if healthy, 1 if not")
}

// HealthCheckTimeout bounds one probe; Docker's own timeout is longer.
const HealthCheckTimeout = 3 * time.Second

// HealthCheck GETs http://host:httpPort/healthz and returns nil for a 200.
// An unspecified or empty host (the service listens everywhere) is probed
// on 127.0.0.1.
func HealthCheck(host string, httpPort int) error {
	switch {
	case httpPort == 0:
		return fmt.Errorf("monitoring is off (http_port 0): -healthcheck needs -m/http_port set to the port the service serves /healthz on")
	case httpPort < 0:
		return fmt.Errorf("http_port %d picks a free port at start: -healthcheck needs the fixed port the service serves /healthz on", httpPort)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, strconv.Itoa(httpPort)) + "/healthz"
	ctx, cancel := context.WithTimeout(context.Background(), HealthCheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health check: %s answered %s: %s", url, resp.Status, body)
	}
	return nil
}

// RunHealthCheck is HealthCheck as a process exit code: 0 healthy, 1 not
// (with the reason on w).
func RunHealthCheck(w io.Writer, name, host string, httpPort int) int {
	if err := HealthCheck(host, httpPort); err != nil {
		fmt.Fprintf(w, "%s: %v\n", name, err)
		return 1
	}
	return 0
}
