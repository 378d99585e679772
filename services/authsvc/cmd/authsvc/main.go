// Command authsvc runs Switchyard's auth service: frontdoors ask it, over
// gRPC, who each CONNECT is and what it may do.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // JWT users' times in their locale, also in FROM scratch images

	"github.com/switchyard-io/switchyard/pkg/logging"
	"github.com/switchyard-io/switchyard/pkg/service"
	"github.com/switchyard-io/switchyard/services/authsvc"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg := authsvc.DefaultConfig()
	fs := flag.NewFlagSet("authsvc", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	healthcheck := service.HealthCheckFlag(fs)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *healthcheck {
		return service.RunHealthCheck(os.Stderr, "authsvc", cfg.Host, cfg.HTTPPort)
	}
	log, err := logging.New(logging.Options{Logtime: true, Debug: cfg.Debug, Name: "authsvc"})
	if err != nil {
		fmt.Fprintf(os.Stderr, "authsvc: %v\n", err)
		return 1
	}
	defer log.Close()
	s, err := authsvc.New(cfg, log)
	if err != nil {
		log.Fatalf("%v", err)
		return 2
	}
	// Trapped before the port opens, so an early signal is handled.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	if err := s.Start(); err != nil {
		log.Fatalf("%v", err)
		return 1
	}
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			log.Infof("Trapped %q signal: reloading %s", sig, cfg.ConfigFile)
			if err := s.Reload(); err != nil {
				log.Errorf("Reload failed, the previous configuration stays in force: %v", err)
			}
			continue
		}
		log.Infof("Trapped %q signal", sig)
		break
	}
	s.Stop()
	return 0
}
