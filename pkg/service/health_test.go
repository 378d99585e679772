package service

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func healthServer(t *testing.T, status int) int {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		w.Write([]byte(`{"status":"x"}`))
	}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	return p
}

func TestHealthCheckHealthy(t *testing.T) {
	port := healthServer(t, http.StatusOK)
	require.NoError(t, HealthCheck("0.0.0.0", port), "an unspecified host is probed on loopback")
	require.NoError(t, HealthCheck("", port))
	var out bytes.Buffer
	require.Equal(t, 0, RunHealthCheck(&out, "router", "127.0.0.1", port))
	require.Empty(t, out.String())
}

func TestHealthCheckUnhealthy(t *testing.T) {
	port := healthServer(t, http.StatusServiceUnavailable)
	var out bytes.Buffer
	require.Equal(t, 1, RunHealthCheck(&out, "frontdoor", "127.0.0.1", port))
	require.Contains(t, out.String(), "frontdoor: health check:")
	require.Contains(t, out.String(), "503")
}

func TestHealthCheckNeedsAFixedPort(t *testing.T) {
	require.ErrorContains(t, HealthCheck("", 0), "monitoring is off")
	require.ErrorContains(t, HealthCheck("", -1), "picks a free port")
	// Nothing listening: refused, not a hang.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	require.Error(t, HealthCheck("127.0.0.1", port))
}
