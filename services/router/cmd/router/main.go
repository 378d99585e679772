// Command router is not built yet: it will provide the router tier (subject interest and relay between frontdoors).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "router: not built yet: the router tier (subject interest and relay between frontdoors) is planned (see the project's issues); a frontdoor alone serves core NATS today")
	os.Exit(3)
}
