package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Authenticated workloads run both servers in operator (JWT) mode with the
// same configuration file: an operator, a system account and an account
// whose user (a .creds file) has publish permissions, all preloaded into a
// MEMORY resolver. Switchyard gets an authsvc reading the same file.

// authFiles are the configuration and the user's credentials.
type authFiles struct{ conf, creds string }

// writeAuthFiles issues the operator, accounts and user into dir as nsc
// would.
func writeAuthFiles(dir string) (authFiles, error) {
	op, err := nkeys.CreateOperator()
	if err != nil {
		return authFiles{}, err
	}
	opPub, _ := op.PublicKey()
	account := func(name string) (nkeys.KeyPair, string, string, error) {
		kp, _ := nkeys.CreateAccount()
		pub, _ := kp.PublicKey()
		ac := jwt.NewAccountClaims(pub)
		ac.Name = name
		token, err := ac.Encode(op)
		return kp, pub, token, err
	}
	_, sysPub, sysJWT, err := account("SYS")
	if err != nil {
		return authFiles{}, err
	}
	appKP, appPub, appJWT, err := account("APP")
	if err != nil {
		return authFiles{}, err
	}
	oc := jwt.NewOperatorClaims(opPub)
	oc.SystemAccount = sysPub
	opJWT, err := oc.Encode(op)
	if err != nil {
		return authFiles{}, err
	}
	ukp, _ := nkeys.CreateUser()
	uPub, _ := ukp.PublicKey()
	uc := jwt.NewUserClaims(uPub)
	uc.Pub.Allow.Add("bench.>", "_INBOX.>")
	uc.Pub.Deny.Add("bench.denied.>")
	uc.Sub.Allow.Add("bench.>", "_INBOX.>")
	userJWT, err := uc.Encode(appKP)
	if err != nil {
		return authFiles{}, err
	}
	seed, _ := ukp.Seed()
	creds, err := jwt.FormatUserConfig(userJWT, seed)
	if err != nil {
		return authFiles{}, err
	}
	f := authFiles{conf: filepath.Join(dir, "auth.conf"), creds: filepath.Join(dir, "user.creds")}
	opFile := filepath.Join(dir, "op.jwt")
	conf := fmt.Sprintf("operator: %q\nsystem_account: %s\nresolver: MEMORY\nresolver_preload: {\n  %s: %q\n  %s: %q\n}\n",
		opFile, sysPub, sysPub, sysJWT, appPub, appJWT)
	for path, data := range map[string][]byte{opFile: []byte(opJWT), f.conf: []byte(conf), f.creds: creds} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return authFiles{}, err
		}
	}
	return f, nil
}

// StartAuthSingle starts one server in operator mode (and, for Switchyard,
// its authsvc) with a fresh operator, account and user.
func StartAuthSingle(ctx context.Context, side string, bins Binaries) (*Topology, error) {
	dir, err := os.MkdirTemp("", "switchyard-bench-auth-")
	if err != nil {
		return nil, err
	}
	files, err := writeAuthFiles(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	t := &Topology{Side: side, Creds: files.creds, cleanup: func() { os.RemoveAll(dir) }}
	extra := []string{"-c", files.conf}
	if bins.Authsvc != "" {
		ports, err := freePorts(1)
		if err != nil {
			t.Stop()
			return nil, err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		t.authsvc, err = startProcess(side+" authsvc", bins.Authsvc,
			[]string{"-a", "127.0.0.1", "-p", strconv.Itoa(ports[0]), "-c", files.conf}, childEnv())
		if err != nil {
			t.Stop()
			return nil, err
		}
		if err := waitListening(ctx, addr, t.authsvc); err != nil {
			t.Stop()
			return nil, fmt.Errorf("%s authsvc did not start: %w%s", side, err, t.authsvc.stderrTail())
		}
		extra = append(extra, "--authsvc", addr)
	}
	ports, err := freePorts(2)
	if err != nil {
		t.Stop()
		return nil, err
	}
	s, err := startServer(ctx, side, side+" server", bins.Server, ports[0], ports[1], extra)
	if err != nil {
		t.Stop()
		return nil, err
	}
	t.Pub, t.Sub = s, s
	return t, nil
}

// waitListening dials addr until it accepts a connection.
func waitListening(ctx context.Context, addr string, p *Process) error {
	return poll(ctx, startupTimeout, func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("process exited early (%v)", p.waitErr)
		}
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	})
}

// connectRate opens and closes n nats.go connections (with opts: the
// benchmark user's credentials, or the CA of a TLS server) from workers
// goroutines and returns connections per second: the whole handshake of
// each (a TLS handshake; INFO, with a nonce for a JWT user; CONNECT, with
// the user JWT and the nonce signature; PING, PONG).
func (h *Harness) connectRate(ctx context.Context, t *Topology, workers, n int, opts ...nats.Option) ([]float64, error) {
	url := t.Pub.URL()
	opts = append(opts, nats.NoReconnect(), nats.Timeout(10*time.Second))
	// One connection first: proves the credentials work (and warms the
	// server's account cache, as the first client of a real account does).
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w%s", err, t.aliveNote())
	}
	nc.Close()
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				nc, err := nats.Connect(url, opts...)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				nc.Close()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return nil, fmt.Errorf("connect failed: %w%s", firstErr, t.aliveNote())
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return []float64{float64(n) / elapsed.Seconds()}, nil
}
