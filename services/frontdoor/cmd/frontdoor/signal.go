package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// signalsByName are the commands of nats-server's --signal that a frontdoor
// acts on (reopen is left out: the frontdoor does not trap SIGUSR1, which
// would kill it).
var signalsByName = map[string]syscall.Signal{
	"ldm":    syscall.SIGUSR2, // lame duck: stop accepting, move clients away, exit
	"quit":   syscall.SIGINT,
	"term":   syscall.SIGTERM,
	"stop":   syscall.SIGKILL,
	"reload": syscall.SIGHUP,
}

// parseSignal splits "ldm", "ldm=1234" or "ldm=/run/frontdoor.pid" into the
// signal and the pid (0: find the running frontdoor).
func parseSignal(arg string) (syscall.Signal, int, error) {
	name, target, hasTarget := strings.Cut(arg, "=")
	sig, ok := signalsByName[strings.ToLower(name)]
	if !ok {
		return 0, 0, fmt.Errorf("unknown signal %q: want ldm, quit, term, stop or reload (optionally =pid or =pid file)", name)
	}
	if !hasTarget {
		return sig, 0, nil
	}
	if pid, err := strconv.Atoi(target); err == nil && pid > 0 {
		return sig, pid, nil
	}
	data, err := os.ReadFile(target)
	if err != nil {
		return 0, 0, fmt.Errorf("signal %s: %q is neither a pid nor a readable pid file: %w", name, target, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, 0, fmt.Errorf("signal %s: pid file %s holds no pid", name, target)
	}
	return sig, pid, nil
}

// findFrontdoors lists the pids of the other processes named frontdoor,
// read from procDir (/proc): inside a container the frontdoor is usually
// pid 1, but it need not be (an init process, a shared pid namespace).
func findFrontdoors(procDir string, self int) []int {
	entries, _ := os.ReadDir(procDir)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(procDir, e.Name(), "comm"))
		if err == nil && strings.TrimSpace(string(comm)) == "frontdoor" {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

// sendSignal carries out --signal; a Kubernetes preStop hook runs
// "frontdoor --signal ldm" in the frontdoor's own container.
func sendSignal(arg string) error {
	sig, pid, err := parseSignal(arg)
	if err != nil {
		return err
	}
	if pid == 0 {
		pids := findFrontdoors("/proc", os.Getpid())
		switch len(pids) {
		case 0:
			return fmt.Errorf("signal %s: no running frontdoor found; give its pid: --signal %s=<pid>", arg, arg)
		case 1:
			pid = pids[0]
		default:
			return fmt.Errorf("signal %s: several frontdoors run (pids %v); choose one: --signal %s=<pid>", arg, pids, arg)
		}
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal %s to pid %d: %w", arg, pid, err)
	}
	return nil
}
