package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/switchyard-io/switchyard/pkg/certs"
)

// StartTLSSingle starts one server whose client port requires TLS, with a
// fresh CA and server certificate (ECDSA P-256, TLS 1.3 negotiated by
// both sides); Topology.CA is what clients trust.
func StartTLSSingle(ctx context.Context, side string, bin string) (*Topology, error) {
	t, dir, err := scratchTopology(side, "tls")
	if err != nil {
		return nil, err
	}
	set, err := certs.Write(dir, "bench")
	if err != nil {
		t.Stop()
		return nil, err
	}
	conf := filepath.Join(dir, "tls.conf")
	data := fmt.Sprintf("tls {\n  cert_file: %q\n  key_file: %q\n}\n", set.ServerCert, set.ServerKey)
	if err := os.WriteFile(conf, []byte(data), 0o600); err != nil {
		t.Stop()
		return nil, err
	}
	t.CA = set.CA
	ports, err := freePorts(2)
	if err != nil {
		t.Stop()
		return nil, err
	}
	s, err := startServer(ctx, side, side+" server", bin, ports[0], ports[1], []string{"-c", conf})
	if err != nil {
		t.Stop()
		return nil, err
	}
	t.Pub, t.Sub = s, s
	return t, nil
}
