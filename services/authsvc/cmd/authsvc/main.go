// Command authsvc is not built yet: it will provide authentication and accounts.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "authsvc: not built yet: authentication and accounts is planned (see the project's issues); a frontdoor alone serves core NATS today")
	os.Exit(3)
}
