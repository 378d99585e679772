package testkit

import (
	"testing"

	"github.com/switchyard-io/switchyard/pkg/certs"
)

// Certs is a throwaway CA and the certificates it signed, as PEM files,
// for TLS tests (see certs.Set).
type Certs = certs.Set

// NewCerts makes a CA named name and its certificates in a temporary
// directory.
func NewCerts(tb testing.TB, name string) *Certs {
	tb.Helper()
	c, err := certs.Write(tb.TempDir(), name)
	if err != nil {
		tb.Fatalf("testkit: making certificates: %v", err)
	}
	return c
}
