package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var errPowerCut = errors.New("crashfs: the power is off")

// crashFS is a file system that remembers what is durable: per file, the
// content as of its last Sync; for the namespace (creations, renames,
// removals), the state as of the last SyncDir. powerCut returns the file
// system a machine would find after losing power now.
type crashFS struct {
	mu      sync.Mutex
	names   map[string]*inode // what a running process sees
	durable map[string]*inode // the namespace as of the last SyncDir
	budget  int               // mutating calls before the power goes; < 0 never
	dead    bool
	// The next write lands in part and fails, with the power still on (a
	// full disk, say).
	failWrite bool
	rng       *rand.Rand
}

type inode struct {
	data   []byte // current content
	synced []byte // content as of the last Sync
}

func newCrashFS(rng *rand.Rand) *crashFS {
	return &crashFS{names: map[string]*inode{}, durable: map[string]*inode{}, budget: -1, rng: rng}
}

// arm cuts the power at the n-th mutating call from now: that call does not
// happen, except a write, of which a random prefix lands.
func (c *crashFS) arm(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.budget = n
}

// step accounts one mutating call: false means the power is off, cut
// reports whether it went at this very call.
func (c *crashFS) step() (alive, cut bool) {
	if c.dead {
		return false, false
	}
	if c.budget == 0 {
		c.dead = true
		return false, true
	}
	if c.budget > 0 {
		c.budget--
	}
	return true, false
}

func (c *crashFS) isDead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

func (c *crashFS) alive() bool {
	ok, _ := c.step()
	return ok
}

type tailMode int

const (
	tailDropped tailMode = iota // unsynced data is gone
	tailTorn                    // a random prefix of unsynced appends survived
	tailZeros                   // the file grew but the new blocks read as zeros
)

// powerCut returns what is left after losing power: the durable namespace,
// each file with its synced content and, per mode, some of the rest.
func (c *crashFS) powerCut(mode tailMode) *crashFS {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dead = true
	n := newCrashFS(c.rng)
	kept := map[*inode]*inode{}
	for name, ino := range c.durable {
		if k, ok := kept[ino]; ok {
			n.names[name], n.durable[name] = k, k
			continue
		}
		data := slices.Clone(ino.synced)
		if extra := len(ino.data) - len(ino.synced); extra > 0 && bytes.HasPrefix(ino.data, ino.synced) {
			keep := c.rng.IntN(extra + 1)
			switch mode {
			case tailTorn:
				data = append(data, ino.data[len(ino.synced):len(ino.synced)+keep]...)
			case tailZeros:
				data = append(data, make([]byte, keep)...)
			}
		}
		k := &inode{data: data, synced: slices.Clone(data)}
		kept[ino] = k
		n.names[name], n.durable[name] = k, k
	}
	return n
}

func (c *crashFS) OpenFile(name string, flag int, _ os.FileMode) (File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ino, ok := c.names[name]
	if flag&os.O_CREATE != 0 || flag&os.O_TRUNC != 0 {
		if !c.alive() {
			return nil, errPowerCut
		}
	} else if c.dead {
		return nil, errPowerCut
	}
	if !ok {
		if flag&os.O_CREATE == 0 {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		ino = &inode{}
		c.names[name] = ino
	}
	if flag&os.O_TRUNC != 0 {
		ino.data = nil
	}
	return &crashFile{fs: c, ino: ino, name: name, readOnly: flag&(os.O_WRONLY|os.O_RDWR) == 0}, nil
}

func (c *crashFS) Remove(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.alive() {
		return errPowerCut
	}
	if _, ok := c.names[name]; !ok {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(c.names, name)
	return nil
}

func (c *crashFS) Rename(oldname, newname string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.alive() {
		return errPowerCut
	}
	ino, ok := c.names[oldname]
	if !ok {
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	}
	delete(c.names, oldname)
	c.names[newname] = ino
	return nil
}

func (c *crashFS) ReadDirNames(dir string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return nil, errPowerCut
	}
	var out []string
	for name := range c.names {
		if path.Dir(name) == dir {
			out = append(out, path.Base(name))
		}
	}
	slices.Sort(out)
	return out, nil
}

func (c *crashFS) MkdirAll(string, os.FileMode) error { return nil }

func (c *crashFS) Stat(name string) (os.FileInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ino, ok := c.names[name]
	if !ok {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return fileInfo{name: path.Base(name), size: int64(len(ino.data))}, nil
}

// SyncDir makes the whole namespace durable (the store uses one directory).
func (c *crashFS) SyncDir(string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.alive() {
		return errPowerCut
	}
	c.durable = maps(c.names)
	return nil
}

func maps(m map[string]*inode) map[string]*inode {
	out := make(map[string]*inode, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

type crashFile struct {
	fs       *crashFS
	ino      *inode
	name     string
	readOnly bool
	closed   bool
}

func (f *crashFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, os.ErrClosed
	}
	if f.fs.dead {
		return 0, errPowerCut
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *crashFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed || f.readOnly {
		return 0, os.ErrClosed
	}
	n := len(p)
	if alive, cut := f.fs.step(); !alive {
		if !cut {
			return 0, errPowerCut
		}
		n = f.fs.rng.IntN(len(p) + 1) // the power went during this write
	}
	var err error
	if f.fs.failWrite {
		f.fs.failWrite = false
		n, err = len(p)/2, errors.New("crashfs: no space left on device")
	}
	if end := off + int64(n); end > int64(len(f.ino.data)) {
		f.ino.data = append(f.ino.data, make([]byte, end-int64(len(f.ino.data)))...)
	}
	copy(f.ino.data[off:], p[:n])
	if err != nil {
		return n, err
	}
	if n < len(p) {
		return n, errPowerCut
	}
	return n, nil
}

func (f *crashFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return os.ErrClosed
	}
	if !f.fs.alive() {
		return errPowerCut
	}
	f.ino.synced = slices.Clone(f.ino.data)
	return nil
}

func (f *crashFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return os.ErrClosed
	}
	if !f.fs.alive() {
		return errPowerCut
	}
	if size <= int64(len(f.ino.data)) {
		f.ino.data = f.ino.data[:size:size]
	} else {
		f.ino.data = append(f.ino.data, make([]byte, size-int64(len(f.ino.data)))...)
	}
	return nil
}

func (f *crashFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return os.ErrClosed
	}
	f.closed = true
	return nil
}

func (f *crashFile) Stat() (os.FileInfo, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.fs.dead {
		return nil, errPowerCut
	}
	return fileInfo{name: path.Base(f.name), size: int64(len(f.ino.data))}, nil
}

type fileInfo struct {
	name string
	size int64
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) Mode() os.FileMode  { return 0o640 }
func (i fileInfo) ModTime() time.Time { return time.Time{} }
func (i fileInfo) IsDir() bool        { return false }
func (i fileInfo) Sys() any           { return nil }

// durability is what the test knows must hold after any crash: the
// messages whose Append returned nil (unless a removal of them since
// returned, or failed and so may have happened), and the sequences whose
// removal was acknowledged.
type durability struct {
	acked map[uint64]string // seq -> payload
	gone  map[uint64]bool
	floor uint64 // nothing below is live, ever again
	ids   int
}

func (d *durability) payload(rng *rand.Rand) string {
	d.ids++
	return fmt.Sprintf("id-%06d-%s", d.ids, strings.Repeat("x", rng.IntN(60)))
}

func subjectOf(payload string) string { return "p." + payload[8:9] }

// check requires what must have survived, and adopts what the store holds
// as the new truth (messages of unacknowledged appends may have survived;
// once recovered they are on disk like any other).
func (d *durability) check(t *testing.T, s Store, iter, cycle int) {
	t.Helper()
	where := fmt.Sprintf("iteration %d, cycle %d", iter, cycle)
	st := s.State()
	require.Nil(t, st.Lost, "%s: a power cut is not damage", where)
	live := map[uint64]string{}
	seen := map[string]uint64{}
	prev := uint64(0)
	for seq := uint64(0); ; {
		m, err := s.LoadNext("", seq)
		if errors.Is(err, ErrNotFound) {
			break
		}
		// Plain ifs, not require, in the per-message loops: this runs a
		// hundred thousand times.
		if err != nil {
			t.Fatalf("%s: LoadNext(%d): %v", where, seq, err)
		}
		if m.Seq <= prev {
			t.Fatalf("%s: seq %d after %d", where, m.Seq, prev)
		}
		prev = m.Seq
		p := string(m.Data)
		if !strings.HasPrefix(p, "id-") || m.Subject != subjectOf(p) {
			t.Fatalf("%s: seq %d holds %q on %q", where, m.Seq, p, m.Subject)
		}
		if other, dup := seen[p]; dup {
			t.Fatalf("%s: %s stored twice, at %d and %d", where, p, other, m.Seq)
		}
		seen[p] = m.Seq
		live[m.Seq] = p
		seq = m.Seq + 1
	}
	for seq, p := range d.acked {
		if live[seq] != p {
			t.Fatalf("%s: acknowledged seq %d holds %q, not %q", where, seq, live[seq], p)
		}
	}
	for seq := range live {
		if d.gone[seq] || seq < d.floor {
			t.Fatalf("%s: seq %d was removed, and is back", where, seq)
		}
	}
	require.Equal(t, uint64(len(live)), st.Msgs, where)
	// What is not live now may never be again, up to LastSeq: beyond it
	// nothing was acknowledged, and the sequences will be used again.
	d.acked = live
	d.floor = max(d.floor, st.FirstSeq)
	for seq := st.FirstSeq; seq <= st.LastSeq; seq++ {
		if _, ok := live[seq]; !ok {
			d.gone[seq] = true
		}
	}
	for seq := range d.gone {
		if seq > st.LastSeq {
			delete(d.gone, seq)
		}
	}
}

// removal applies a removal's outcome: acknowledged, the sequences are gone
// for good; failed, they may or may not be.
func (d *durability) removal(seqs []uint64, err error) bool {
	for _, seq := range seqs {
		delete(d.acked, seq)
		if err == nil {
			d.gone[seq] = true
		}
	}
	return err == nil
}

// run does random work until the power goes.
func (d *durability) run(s Store, rng *rand.Rand) {
	for {
		var seqs []uint64
		switch r := rng.IntN(100); {
		case r < 70:
			batch := make([]Msg, 1+rng.IntN(8))
			for i := range batch {
				p := d.payload(rng)
				batch[i] = Msg{Subject: subjectOf(p), Data: []byte(p)}
			}
			if s.Append(batch) != nil {
				return
			}
			for _, m := range batch {
				d.acked[m.Seq] = string(m.Data)
			}
		case r < 85:
			for seq := range d.acked {
				seqs = append(seqs, seq)
			}
			if len(seqs) == 0 {
				continue
			}
			seqs = seqs[rng.IntN(len(seqs)):][:1]
			ok, err := s.Delete(seqs[0])
			if err == nil && !ok {
				panic("acknowledged message not there to delete")
			}
			if !d.removal(seqs, err) {
				return
			}
		case r < 92:
			subj := fmt.Sprintf("p.%d", rng.IntN(10))
			for seq, p := range d.acked {
				if subjectOf(p) == subj {
					seqs = append(seqs, seq)
				}
			}
			if _, err := s.Purge(subj, 0, 0); !d.removal(seqs, err) {
				return
			}
		default:
			st := s.State()
			span := 0
			if st.Msgs > 0 {
				span = int(st.LastSeq - st.FirstSeq)
			}
			to := st.FirstSeq + uint64(rng.IntN(span/3+2))
			for seq := range d.acked {
				if seq < to {
					seqs = append(seqs, seq)
				}
			}
			_, err := s.Compact(to)
			if err == nil {
				d.floor = max(d.floor, to)
			}
			if !d.removal(seqs, err) {
				return
			}
		}
	}
}

// TestStorePowerLoss: with SyncAlways, whatever Append, Delete, Purge and
// Compact acknowledged survives a power cut at any point (including in the
// middle of a write, of an index, of a segment roll or removal, and of the
// recovery itself), and what they removed stays removed.
func TestStorePowerLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(20240601, 7))
	iterations := 300
	if testing.Short() {
		iterations = 50
	}
	for iter := range iterations {
		cfs := newCrashFS(rng)
		cfg := FileConfig{Dir: "/stream", SegmentBytes: int64(300 + rng.IntN(3000)), FS: cfs}
		d := &durability{acked: map[uint64]string{}, gone: map[uint64]bool{}}
		for cycle := range 6 {
			if rng.IntN(5) == 0 {
				cfs.arm(rng.IntN(12)) // during recovery
			}
			s, err := OpenFile(cfg)
			// Recovery may have lost power in a step it can do without
			// (rewriting an index) and still opened.
			if err == nil && !cfs.isDead() {
				d.check(t, s, iter, cycle)
				cfs.arm(rng.IntN(120))
				d.run(s, rng)
			}
			cfs = cfs.powerCut(tailMode(rng.IntN(3)))
			cfg.FS = cfs
		}
		s, err := OpenFile(cfg)
		require.NoError(t, err)
		d.check(t, s, iter, -1)
		require.NoError(t, s.Close())
	}
}

// TestStoreFileWriteErrorIsUndone: a write that fails part way (the power
// still on) is cut back off, so the next append does not land behind
// garbage.
func TestStoreFileWriteErrorIsUndone(t *testing.T) {
	cfs := newCrashFS(rand.New(rand.NewPCG(1, 2)))
	logs := &logSink{}
	cfg := FileConfig{Dir: "/stream", FS: cfs, Log: logs.logf}
	s := openFS(t, cfg)
	fill(t, s, 3, bySix)
	cfs.failWrite = true
	failed := make([]Msg, 10) // half of it lands: five whole records
	for i := range failed {
		failed[i] = msg("s.0", "not stored")
	}
	require.ErrorContains(t, s.Append(failed), "no space left")
	fill(t, s, 1, bySix)
	before := snap(t, s)
	require.Len(t, before.msgs, 4)
	require.Equal(t, uint64(4), before.state.LastSeq)
	reopenSame(t, s, cfg)
	require.Empty(t, logs.text())
}
