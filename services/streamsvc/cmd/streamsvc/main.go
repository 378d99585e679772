// Command streamsvc runs Switchyard's JetStream service: streams stored on
// disk, reached by clients of every frontdoor through the router tier.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/switchyard-io/switchyard/pkg/logging"
	"github.com/switchyard-io/switchyard/pkg/service"
	"github.com/switchyard-io/switchyard/services/streamsvc"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	var cfg streamsvc.Config
	fs := flag.NewFlagSet("streamsvc", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	healthcheck := service.HealthCheckFlag(fs)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *healthcheck {
		// The monitoring port listens on the mesh host (-a), as in New.
		return service.RunHealthCheck(os.Stderr, "streamsvc", cfg.Host, cfg.HTTPPort)
	}
	log, err := logging.New(logging.Options{Logtime: true, Debug: cfg.Debug, Name: "streamsvc"})
	if err != nil {
		fmt.Fprintf(os.Stderr, "streamsvc: %v\n", err)
		return 1
	}
	defer log.Close()
	// streamsvc's goroutines mostly wait on fsync and the mesh; with a P
	// per CPU, idle Ps spin looking for work and take CPU from the
	// frontdoors and routers it usually shares a machine with (make run,
	// compose), which costs JetStream latency and throughput (measured in
	// docs/profiling.md). Half the CPUs it may use, unless GOMAXPROCS is set.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)/2))
	}
	log.Infof("GOMAXPROCS %d", runtime.GOMAXPROCS(0))
	s, err := streamsvc.New(cfg, log)
	if err != nil {
		log.Fatalf("%v", err)
		return 2
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	if err := s.Start(); err != nil {
		log.Fatalf("%v", err)
		return 1
	}
	sig := <-sigs
	log.Infof("Trapped %q signal: closing streams", sig)
	s.Stop()
	return 0
}
