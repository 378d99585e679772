// Command streamsvc is not built yet: it will provide JetStream.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "streamsvc: not built yet: JetStream is planned (see the project's issues); a frontdoor alone serves core NATS today")
	os.Exit(3)
}
