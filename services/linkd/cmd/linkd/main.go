// Command linkd is not built yet: it will provide gateways and leaf-node links.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "linkd: not built yet: gateways and leaf-node links are planned (see the project's issues); a frontdoor alone serves core NATS today")
	os.Exit(3)
}
