// Package resolver stores account JWTs for operator (JWT) mode, as
// nats-server's account resolvers do: MEMORY holds the preloaded accounts
// and never changes; the full resolver keeps every pushed account JWT
// durably, in a directory (one <account>.jwt file each) or in PostgreSQL.
package resolver

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nkeys"
)

// Store holds account JWTs by account public key.
type Store interface {
	// Get returns the account's JWT; ok is false when there is none.
	Get(account string) (jwt string, ok bool, err error)
	// Put stores an account JWT (already verified by the caller).
	Put(account, jwt string) error
	// List names every account the store holds a JWT for, sorted.
	List() ([]string, error)
	// Generation changes whenever the stored JWTs change.
	Generation() (uint64, error)
	// Kind names the store for logs: "MEMORY", "dir /path", "postgres".
	Kind() string
	Close()
}

// ErrReadOnly is returned by Put on the MEMORY resolver.
var ErrReadOnly = errors.New("the MEMORY resolver is read-only: use resolver { type: full } to accept pushed account JWTs")

// checkKey refuses anything that is not an account public key, so that a
// name can never reach outside the store (a path, say).
func checkKey(account string) error {
	if !nkeys.IsValidPublicAccountKey(account) {
		return fmt.Errorf("%q is not an account public key", account)
	}
	return nil
}

// Memory is the MEMORY resolver: the preloaded accounts, fixed.
type Memory struct{ jwts map[string]string }

// NewMemory returns a MEMORY resolver holding preload.
func NewMemory(preload map[string]string) *Memory {
	m := &Memory{jwts: map[string]string{}}
	for k, v := range preload {
		m.jwts[k] = v
	}
	return m
}

func (m *Memory) Get(account string) (string, bool, error) {
	j, ok := m.jwts[account]
	return j, ok, nil
}
func (m *Memory) List() ([]string, error) {
	return slices.Sorted(maps.Keys(m.jwts)), nil
}
func (m *Memory) Put(string, string) error    { return ErrReadOnly }
func (m *Memory) Generation() (uint64, error) { return 0, nil }
func (m *Memory) Kind() string                { return "MEMORY" }
func (m *Memory) Close()                      {}

// Dir is the full resolver on a directory: <dir>/<account>.jwt, each
// written to a temporary file, synced and renamed, so a crash leaves the
// old JWT or the new one, never a torn file.
type Dir struct {
	dir string
	mu  sync.Mutex // serializes writes
	gen atomic.Uint64
}

// NewDir opens (creating) the directory and adds the preloaded accounts
// that it does not hold yet.
func NewDir(dir string, preload map[string]string) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("resolver dir: %w", err)
	}
	d := &Dir{dir: dir}
	for k, v := range preload {
		if _, ok, err := d.Get(k); err != nil {
			return nil, err
		} else if !ok {
			if err := d.Put(k, v); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

func (d *Dir) path(account string) string { return filepath.Join(d.dir, account+".jwt") }

func (d *Dir) Get(account string) (string, bool, error) {
	if err := checkKey(account); err != nil {
		return "", false, nil
	}
	b, err := os.ReadFile(d.path(account))
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return string(b), true, nil
}

// List names the accounts of the directory's <account>.jwt files (the
// temporary files of unfinished writes are not accounts).
func (d *Dir) List() ([]string, error) {
	des, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("resolver dir: %w", err)
	}
	var out []string
	for _, de := range des {
		if name, ok := strings.CutSuffix(de.Name(), ".jwt"); ok && checkKey(name) == nil {
			out = append(out, name)
		}
	}
	return out, nil
}

func (d *Dir) Put(account, jwt string) error {
	if err := checkKey(account); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	tmp, err := os.CreateTemp(d.dir, ".tmp-"+account+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(jwt); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), d.path(account)); err != nil {
		return err
	}
	if f, err := os.Open(d.dir); err == nil {
		f.Sync() // the rename itself
		f.Close()
	}
	d.gen.Add(1)
	return nil
}

// Generation counts this process's writes; other processes do not share a
// directory store (authsvc replicas share the Postgres store instead).
func (d *Dir) Generation() (uint64, error) { return d.gen.Load(), nil }
func (d *Dir) Kind() string                { return "dir " + d.dir }
func (d *Dir) Close()                      {}
