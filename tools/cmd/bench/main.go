// Command bench compares Switchyard with the reference nats-server on the
// same machine using natscli's `nats bench`; `make bench` runs it. See
// docs/benchmarks.md for the method and the latest figures.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/switchyard-io/switchyard/tools/internal/bench"
)

func main() {
	var cfg bench.Config
	cfg.RegisterFlags(flag.CommandLine)
	flag.Parse()
	if flag.NArg() > 0 {
		// A stray word usually means a flag value went missing and Go's flag
		// parsing stopped there, silently ignoring every flag after it.
		fmt.Fprintf(os.Stderr, "bench: unexpected argument %q; every option is a -flag (see -h)\n", flag.Arg(0))
		os.Exit(2)
	}

	// On Ctrl-C or SIGTERM the context ends, the measurement in flight is
	// abandoned and every child process is killed before we exit.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := bench.Main(ctx, cfg, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		stop()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
