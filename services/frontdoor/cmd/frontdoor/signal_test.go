package main

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/pkg/testkit"
)

func TestSignalParse(t *testing.T) {
	sig, pid, err := parseSignal("ldm")
	require.NoError(t, err)
	require.Equal(t, syscall.SIGUSR2, sig)
	require.Zero(t, pid)

	sig, pid, err = parseSignal("reload=1234")
	require.NoError(t, err)
	require.Equal(t, syscall.SIGHUP, sig)
	require.Equal(t, 1234, pid)

	pidFile := filepath.Join(t.TempDir(), "frontdoor.pid")
	require.NoError(t, os.WriteFile(pidFile, []byte("42\n"), 0o600))
	sig, pid, err = parseSignal("term=" + pidFile)
	require.NoError(t, err)
	require.Equal(t, syscall.SIGTERM, sig)
	require.Equal(t, 42, pid)

	_, _, err = parseSignal("reopen")
	require.ErrorContains(t, err, "unknown signal")
	_, _, err = parseSignal("ldm=/no/such/file")
	require.ErrorContains(t, err, "neither a pid nor a readable pid file")
}

func TestSignalFindsFrontdoorsInProc(t *testing.T) {
	proc := t.TempDir()
	for pid, comm := range map[string]string{"1": "frontdoor\n", "7": "frontdoor\n", "9": "router\n", "self": "frontdoor\n"} {
		require.NoError(t, os.MkdirAll(filepath.Join(proc, pid), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(proc, pid, "comm"), []byte(comm), 0o600))
	}
	require.Equal(t, []int{1, 7}, findFrontdoors(proc, 0))
	require.Equal(t, []int{1}, findFrontdoors(proc, 7), "the caller itself is not a target")
}

// TestSignalLameDuckFromPreStop plays Kubernetes' sequence: a preStop hook
// runs "frontdoor --signal ldm=<pid>", then the kubelet sends SIGTERM. The
// frontdoor must finish lame duck (clients closed over the duration, not at
// once) rather than stop at the SIGTERM; the pod's grace period covers it.
func TestSignalLameDuckFromPreStop(t *testing.T) {
	const duration, grace = 3 * time.Second, time.Second
	p := testkit.StartFrontdoor(t, testkit.FrontdoorOptions{
		Config: "lame_duck_duration: \"3s\"\nlame_duck_grace_period: \"1s\"\n",
	})
	require.Equal(t, 0, run([]string{"-healthcheck", "-m", strconv.Itoa(p.HTTPPort)}), "healthcheck of a running frontdoor")

	ldm, closed := make(chan struct{}, 1), make(chan time.Time, 1)
	nc, err := nats.Connect(p.URL(), nats.NoReconnect(),
		nats.LameDuckModeHandler(func(*nats.Conn) { ldm <- struct{}{} }),
		nats.ClosedHandler(func(*nats.Conn) { closed <- time.Now() }))
	require.NoError(t, err)
	defer nc.Close()

	t0 := time.Now()
	require.Equal(t, 0, run([]string{"--signal", "ldm=" + strconv.Itoa(p.Cmd.Process.Pid)}))
	select {
	case <-ldm:
	case <-time.After(grace):
		t.Fatal("no lame duck INFO within the grace period")
	}
	require.Equal(t, 1, run([]string{"-healthcheck", "-m", strconv.Itoa(p.HTTPPort)}), "healthz must fail in lame duck (readiness)")
	require.NoError(t, p.Signal(syscall.SIGTERM), "the kubelet's SIGTERM after preStop")

	select {
	case at := <-closed:
		require.GreaterOrEqual(t, at.Sub(t0), grace-200*time.Millisecond, "SIGTERM cut lame duck short")
	case <-time.After(duration + 2*time.Second):
		t.Fatal("client not closed within lame_duck_duration")
	}
	require.True(t, p.Wait(duration+2*time.Second), "frontdoor did not exit after lame duck")
	require.Equal(t, 0, p.Cmd.ProcessState.ExitCode())
	require.Contains(t, p.Log(), "lame duck mode")
}
