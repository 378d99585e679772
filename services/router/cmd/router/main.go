// Command router runs a Switchyard router replica: nodes (frontdoors)
// attach to it over gRPC, share their subject interest and relay messages
// through it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/switchyard-io/switchyard/pkg/logging"
	"github.com/switchyard-io/switchyard/pkg/service"
	"github.com/switchyard-io/switchyard/services/router"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	// defaults, then SWITCHYARD_ROUTER_* variables, then flags.
	cfg := router.DefaultConfig()
	if err := cfg.ApplyEnv(os.Getenv); err != nil {
		fmt.Fprintf(os.Stderr, "router: %v\n", err)
		return 2
	}
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	healthcheck := service.HealthCheckFlag(fs)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "router: %v\n", err)
		return 2
	}
	if *healthcheck {
		return service.RunHealthCheck(os.Stderr, "router", cfg.Host, cfg.HTTPPort)
	}
	log, err := logging.New(logging.Options{Logtime: true, Debug: cfg.Debug, Name: "router"})
	if err != nil {
		fmt.Fprintf(os.Stderr, "router: %v\n", err)
		return 1
	}
	defer log.Close()
	r, err := router.New(cfg, log)
	if err != nil {
		log.Fatalf("%v", err)
		return 1
	}
	// Trapped before the port opens, so an early SIGTERM is handled.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	if err := r.Start(); err != nil {
		log.Fatalf("%v", err)
		return 1
	}
	sig := <-sigs
	log.Infof("Trapped %q signal", sig)
	r.Stop()
	return 0
}
