package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// kind of store under test, with a reopen that keeps the data (the memory
// store's reopen is the same store).
type kind struct {
	name   string
	open   func(t testing.TB) Store
	reopen func(t testing.TB, s Store) Store
}

func kinds(cfg func(dir string) FileConfig) []kind {
	return []kind{
		{
			name:   "memory",
			open:   func(testing.TB) Store { return NewMemory() },
			reopen: func(_ testing.TB, s Store) Store { return s },
		},
		{
			name: "file",
			open: func(t testing.TB) Store {
				c := cfg(t.TempDir())
				s, err := OpenFile(c)
				require.NoError(t, err)
				t.Cleanup(func() { _ = s.Close() })
				return &reopener{Store: s, cfg: c}
			},
			reopen: func(t testing.TB, s Store) Store {
				r := s.(*reopener)
				require.NoError(t, r.Store.Close())
				n, err := OpenFile(r.cfg)
				require.NoError(t, err)
				t.Cleanup(func() { _ = n.Close() })
				return &reopener{Store: n, cfg: r.cfg}
			},
		},
	}
}

// reopener remembers a file store's config so a test can reopen it.
type reopener struct {
	Store
	cfg FileConfig
}

func smallSegments(dir string) FileConfig {
	return FileConfig{Dir: dir, SegmentBytes: 512, Sync: SyncNever}
}

func forEachKind(t *testing.T, fn func(t *testing.T, k kind)) {
	for _, k := range kinds(smallSegments) {
		t.Run(k.name, func(t *testing.T) { fn(t, k) })
	}
}

func msg(subject, data string) Msg { return Msg{Subject: subject, Data: []byte(data)} }

func appendMsgs(t testing.TB, s Store, msgs ...Msg) []uint64 {
	t.Helper()
	require.NoError(t, s.Append(msgs))
	seqs := make([]uint64, len(msgs))
	for i, m := range msgs {
		seqs[i] = m.Seq
	}
	return seqs
}

// want is the part of State a test pins down exactly.
type want struct {
	msgs, first, last uint64
	deleted           int
}

func checkState(t testing.TB, s Store, w want, live ...Msg) {
	t.Helper()
	st := s.State()
	var bytes uint64
	for _, m := range live {
		bytes += Size(m.Subject, m.Header, m.Data)
	}
	require.Equal(t, w.msgs, st.Msgs, "Msgs")
	require.Equal(t, w.first, st.FirstSeq, "FirstSeq")
	require.Equal(t, w.last, st.LastSeq, "LastSeq")
	require.Equal(t, w.deleted, st.NumDeleted, "NumDeleted")
	if live != nil {
		require.Equal(t, bytes, st.Bytes, "Bytes")
	}
	require.Nil(t, st.Lost)
}

// all reads every live message in order with LoadNext.
func all(t testing.TB, s Store, filter string) []Msg {
	t.Helper()
	var out []Msg
	for seq := uint64(0); ; {
		m, err := s.LoadNext(filter, seq)
		if errors.Is(err, ErrNotFound) {
			return out
		}
		require.NoError(t, err)
		out = append(out, m)
		seq = m.Seq + 1
	}
}

func seqsOf(msgs []Msg) []uint64 {
	out := []uint64{}
	for _, m := range msgs {
		out = append(out, m.Seq)
	}
	return out
}

func TestStoreSubjectMatch(t *testing.T) {
	cases := []struct {
		filter, subject string
		match           bool
	}{
		{"", "a.b", true}, {">", "a", true},
		{"a", "a", true}, {"a", "b", false}, {"a", "a.b", false},
		{"a.*", "a.b", true}, {"a.*", "a", false}, {"a.*", "a.b.c", false},
		{"*.b", "a.b", true}, {"*.*", "a.b", true}, {"*", "a.b", false},
		{"a.>", "a.b", true}, {"a.>", "a.b.c", true}, {"a.>", "a", false},
		{"a.*.>", "a.b.c", true}, {"a.*.>", "a.b", false},
		{"a*", "a*", true}, {"a*", "ab", false}, {"a.b>", "a.b", false},
	}
	for _, c := range cases {
		require.Equal(t, c.match, subjectMatch(c.filter, c.subject), "%q ~ %q", c.filter, c.subject)
	}
	require.True(t, isLiteral("a.b"))
	require.True(t, isLiteral("a*.b>"))
	require.False(t, isLiteral("a.*"))
	require.False(t, isLiteral(">"))
	require.False(t, isLiteral(""))
}

func TestStoreAppendGet(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		checkState(t, s, want{first: 1})
		hdr := []byte("NATS/1.0\r\nA: b\r\n\r\n")
		batch := []Msg{msg("a", "one"), {Subject: "b.c", Header: hdr, Data: []byte("two")}, {Subject: "a", Time: 42}}
		require.Equal(t, []uint64{1, 2, 3}, appendMsgs(t, s, batch...))
		require.Equal(t, []uint64{4}, appendMsgs(t, s, msg("c", "four")))

		m, err := s.Get(2)
		require.NoError(t, err)
		require.Equal(t, "b.c", m.Subject)
		require.Equal(t, hdr, m.Header)
		require.Equal(t, []byte("two"), m.Data)
		require.NotZero(t, m.Time)
		m, err = s.Get(3)
		require.NoError(t, err)
		require.Nil(t, m.Header)
		require.Nil(t, m.Data)
		require.Equal(t, int64(42), m.Time)
		m, err = s.Get(1)
		require.NoError(t, err)
		require.Nil(t, m.Header)
		require.Equal(t, batch[0].Time, m.Time)

		for _, seq := range []uint64{0, 5, 100} {
			_, err = s.Get(seq)
			require.ErrorIs(t, err, ErrNotFound)
		}
		live := append(batch, msg("c", "four"))
		checkState(t, s, want{msgs: 4, first: 1, last: 4}, live...)
		st := s.State()
		require.Equal(t, batch[0].Time, st.FirstTime)
		require.NotZero(t, st.LastTime)

		require.Error(t, s.Append([]Msg{{Subject: ""}}))
		s = k.reopen(t, s)
		checkState(t, s, want{msgs: 4, first: 1, last: 4}, live...)
		require.Equal(t, st, s.State())
		require.Equal(t, []uint64{5}, appendMsgs(t, s, msg("a", "five")))
	})
}

func TestStoreDelete(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		for i := range 6 {
			appendMsgs(t, s, msg("s", fmt.Sprint(i)))
		}
		ok, err := s.Delete(3)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = s.Delete(3)
		require.NoError(t, err)
		require.False(t, ok)
		ok, err = s.Delete(99)
		require.NoError(t, err)
		require.False(t, ok)
		_, err = s.Get(3)
		require.ErrorIs(t, err, ErrNotFound)
		checkState(t, s, want{msgs: 5, first: 1, last: 6, deleted: 1})

		_, err = s.Delete(1)
		require.NoError(t, err)
		checkState(t, s, want{msgs: 4, first: 2, last: 6, deleted: 1})
		_, err = s.Delete(6) // the last: LastSeq stays
		require.NoError(t, err)
		checkState(t, s, want{msgs: 3, first: 2, last: 6, deleted: 2})
		require.Equal(t, []uint64{2, 4, 5}, seqsOf(all(t, s, "")))

		s = k.reopen(t, s)
		checkState(t, s, want{msgs: 3, first: 2, last: 6, deleted: 2})
		for _, seq := range []uint64{2, 4, 5} {
			_, err = s.Delete(seq)
			require.NoError(t, err)
		}
		checkState(t, s, want{first: 7, last: 6})
		require.Equal(t, []uint64{7}, appendMsgs(t, s, msg("s", "x")))
		s = k.reopen(t, s)
		checkState(t, s, want{msgs: 1, first: 7, last: 7})
	})
}

// purgeFixture: seq 1..9 on subjects a.1 a.2 b a.1 a.2 b a.1 a.2 b.
func purgeFixture(t testing.TB, k kind) Store {
	s := k.open(t)
	subjects := []string{"a.1", "a.2", "b"}
	for i := range 9 {
		appendMsgs(t, s, msg(subjects[i%3], fmt.Sprint(i+1)))
	}
	return s
}

func TestStorePurge(t *testing.T) {
	cases := []struct {
		name       string
		filter     string
		upTo, keep uint64
		gone       uint64
		left       []uint64
		first      uint64
		numDeleted int
	}{
		{name: "all", gone: 9, left: []uint64{}, first: 10},
		{name: "all by >", filter: ">", gone: 9, left: []uint64{}, first: 10},
		{name: "all upTo", upTo: 5, gone: 4, left: []uint64{5, 6, 7, 8, 9}, first: 5},
		{name: "all keep", keep: 3, gone: 6, left: []uint64{7, 8, 9}, first: 7},
		{name: "all upTo keep", upTo: 6, keep: 2, gone: 3, left: []uint64{4, 5, 6, 7, 8, 9}, first: 4},
		{name: "all keep more than there", keep: 20, gone: 0, left: []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}, first: 1},
		{name: "literal", filter: "b", gone: 3, left: []uint64{1, 2, 4, 5, 7, 8}, first: 1, numDeleted: 3},
		{name: "literal keep", filter: "a.1", keep: 1, gone: 2, left: []uint64{2, 3, 5, 6, 7, 8, 9}, first: 2, numDeleted: 1},
		{name: "literal upTo", filter: "a.2", upTo: 6, gone: 2, left: []uint64{1, 3, 4, 6, 7, 8, 9}, first: 1, numDeleted: 2},
		{name: "wildcard", filter: "a.*", gone: 6, left: []uint64{3, 6, 9}, first: 3, numDeleted: 4},
		{name: "wildcard keep upTo", filter: "a.>", upTo: 8, keep: 1, gone: 4, left: []uint64{3, 6, 7, 8, 9}, first: 3, numDeleted: 2},
		{name: "no match", filter: "zz", gone: 0, left: []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}, first: 1},
	}
	forEachKind(t, func(t *testing.T, k kind) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				s := purgeFixture(t, k)
				n, err := s.Purge(c.filter, c.upTo, c.keep)
				require.NoError(t, err)
				require.Equal(t, c.gone, n)
				check := func(s Store) {
					require.Equal(t, c.left, seqsOf(all(t, s, "")))
					checkState(t, s, want{msgs: uint64(len(c.left)), first: c.first, last: 9, deleted: c.numDeleted}, all(t, s, "")...)
					var counted uint64
					for _, v := range s.SubjectCounts("") {
						counted += v
					}
					require.Equal(t, uint64(len(c.left)), counted)
				}
				check(s)
				s = k.reopen(t, s)
				check(s)
				seqs := appendMsgs(t, s, msg("b", "new"))
				require.Equal(t, []uint64{10}, seqs)
			})
		}
	})
}

func TestStoreCompact(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := purgeFixture(t, k)
		n, err := s.Compact(1)
		require.NoError(t, err)
		require.Zero(t, n)
		n, err = s.Compact(4)
		require.NoError(t, err)
		require.Equal(t, uint64(3), n)
		checkState(t, s, want{msgs: 6, first: 4, last: 9})
		_, err = s.Delete(6)
		require.NoError(t, err)
		n, err = s.Compact(7) // 4, 5 (6 already gone)
		require.NoError(t, err)
		require.Equal(t, uint64(2), n)
		checkState(t, s, want{msgs: 3, first: 7, last: 9})
		s = k.reopen(t, s)
		checkState(t, s, want{msgs: 3, first: 7, last: 9})
		require.Equal(t, map[string]uint64{"a.1": 1, "a.2": 1, "b": 1}, s.SubjectCounts(""))

		n, err = s.Compact(10) // everything
		require.NoError(t, err)
		require.Equal(t, uint64(3), n)
		checkState(t, s, want{first: 10, last: 9})
		n, err = s.Compact(20) // past the end: the next message is 20
		require.NoError(t, err)
		require.Zero(t, n)
		checkState(t, s, want{first: 20, last: 19})
		s = k.reopen(t, s)
		checkState(t, s, want{first: 20, last: 19})
		require.Equal(t, []uint64{20, 21}, appendMsgs(t, s, msg("a", "x"), msg("a", "y")))
		checkState(t, s, want{msgs: 2, first: 20, last: 21})
		s = k.reopen(t, s)
		checkState(t, s, want{msgs: 2, first: 20, last: 21})
	})
}

func TestStoreLoadLastNext(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		for _, subj := range []string{"orders.eu.new", "orders.us.new", "orders.eu.paid", "audit", "orders.us.new", "audit"} {
			appendMsgs(t, s, msg(subj, subj))
		}
		last := func(filter string) uint64 {
			m, err := s.LoadLast(filter)
			if errors.Is(err, ErrNotFound) {
				return 0
			}
			require.NoError(t, err)
			require.True(t, subjectMatch(filter, m.Subject))
			require.Equal(t, m.Subject, string(m.Data))
			return m.Seq
		}
		next := func(filter string, start uint64) uint64 {
			seq, ok := s.NextSeq(filter, start)
			m, err := s.LoadNext(filter, start)
			if errors.Is(err, ErrNotFound) {
				require.False(t, ok, "NextSeq agrees with LoadNext")
				return 0
			}
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, m.Seq, seq, "NextSeq agrees with LoadNext")
			return m.Seq
		}
		require.Equal(t, uint64(6), last(""))
		require.Equal(t, uint64(6), last(">"))
		require.Equal(t, uint64(5), last("orders.>"))
		require.Equal(t, uint64(3), last("orders.eu.*"))
		require.Equal(t, uint64(5), last("*.*.new"))
		require.Equal(t, uint64(5), last("orders.us.new"))
		require.Zero(t, last("nope"))
		require.Zero(t, last("orders.*"))

		require.Equal(t, uint64(1), next("", 0))
		require.Equal(t, uint64(4), next("audit", 2))
		require.Equal(t, uint64(6), next("audit", 5))
		require.Equal(t, uint64(2), next("orders.us.*", 1))
		require.Equal(t, uint64(5), next("*.us.>", 3))
		require.Zero(t, next("orders.>", 6))
		require.Zero(t, next("", 7))

		_, err := s.Delete(5)
		require.NoError(t, err)
		require.Equal(t, uint64(2), last("orders.us.new"))
		require.Equal(t, uint64(3), last("orders.>"))
		require.Zero(t, next("orders.us.new", 3))
		require.Equal(t, []uint64{5}, s.Deleted())
		_, err = s.Purge("audit", 0, 0)
		require.NoError(t, err)
		require.Zero(t, last("audit"))
		require.Equal(t, uint64(3), last(""))
		s = k.reopen(t, s)
		require.Equal(t, uint64(2), last("orders.us.new"))
		require.Equal(t, uint64(3), last(""))
	})
}

func TestStoreSubjectCounts(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := purgeFixture(t, k)
		require.Equal(t, map[string]uint64{"a.1": 3, "a.2": 3, "b": 3}, s.SubjectCounts(""))
		require.Equal(t, map[string]uint64{"a.1": 3, "a.2": 3}, s.SubjectCounts("a.*"))
		require.Equal(t, map[string]uint64{"b": 3}, s.SubjectCounts("b"))
		require.Equal(t, uint64(3), s.SubjectMsgs("b"))
		require.Zero(t, s.SubjectMsgs("nope"))
		require.Empty(t, s.SubjectCounts("c"))
		_, err := s.Delete(1)
		require.NoError(t, err)
		_, err = s.Purge("b", 0, 1)
		require.NoError(t, err)
		require.Equal(t, map[string]uint64{"a.1": 2, "a.2": 3, "b": 1}, s.SubjectCounts(">"))
		s = k.reopen(t, s)
		require.Equal(t, map[string]uint64{"a.1": 2, "a.2": 3, "b": 1}, s.SubjectCounts(">"))
	})
}

func TestStoreClosed(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		appendMsgs(t, s, msg("a", "x"))
		require.NoError(t, s.Close())
		require.NoError(t, s.Close())
		require.ErrorIs(t, s.Append([]Msg{msg("a", "y")}), ErrClosed)
		_, err := s.Get(1)
		require.ErrorIs(t, err, ErrClosed)
		_, err = s.Delete(1)
		require.ErrorIs(t, err, ErrClosed)
		_, err = s.Purge("", 0, 0)
		require.ErrorIs(t, err, ErrClosed)
		_, err = s.Compact(1)
		require.ErrorIs(t, err, ErrClosed)
	})
}

// model is the obvious, slow store the real ones must agree with.
type model struct {
	msgs    map[uint64]Msg
	lastSeq uint64
}

func (m *model) live(filter string) []Msg {
	var out []Msg
	for _, v := range m.msgs {
		if subjectMatch(filter, v.Subject) {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b Msg) int { return int(int64(a.Seq) - int64(b.Seq)) })
	return out
}

func (m *model) purge(filter string, upTo, keep uint64) uint64 {
	var cand []Msg
	for _, v := range m.live(filter) {
		if upTo == 0 || v.Seq < upTo {
			cand = append(cand, v)
		}
	}
	if uint64(len(cand)) <= keep {
		return 0
	}
	cand = cand[:uint64(len(cand))-keep]
	for _, v := range cand {
		delete(m.msgs, v.Seq)
	}
	return uint64(len(cand))
}

// TestStoreRandomOpsMatchModel runs random operations on both stores (the
// file store with tiny segments, reopened now and then) against model.
func TestStoreRandomOpsMatchModel(t *testing.T) {
	subjects := []string{"a", "a.b", "a.c", "b.x.y", "c.d", "c.e.f"}
	filters := []string{"", ">", "a", "a.*", "a.>", "*.x.*", "c.>", "*", "zz", "b.x.y"}
	forEachKind(t, func(t *testing.T, k kind) {
		rng := rand.New(rand.NewPCG(7, 11))
		s := k.open(t)
		m := &model{msgs: map[uint64]Msg{}}
		for op := range 1500 {
			switch r := rng.IntN(100); {
			case r < 50:
				batch := make([]Msg, 1+rng.IntN(5))
				for i := range batch {
					batch[i] = msg(subjects[rng.IntN(len(subjects))], fmt.Sprintf("op %d msg %d %s", op, i, string(make([]byte, rng.IntN(40)))))
				}
				require.NoError(t, s.Append(batch))
				for _, b := range batch {
					require.Equal(t, m.lastSeq+1, b.Seq)
					m.lastSeq = b.Seq
					m.msgs[b.Seq] = b
				}
			case r < 70:
				seq := uint64(rng.IntN(int(m.lastSeq) + 2))
				ok, err := s.Delete(seq)
				require.NoError(t, err)
				_, want := m.msgs[seq]
				require.Equal(t, want, ok)
				delete(m.msgs, seq)
			case r < 80:
				f := filters[rng.IntN(len(filters))]
				upTo, keep := uint64(0), uint64(0)
				if rng.IntN(2) == 0 {
					upTo = uint64(rng.IntN(int(m.lastSeq) + 2))
				}
				if rng.IntN(3) == 0 {
					keep = uint64(rng.IntN(5))
				}
				if rng.IntN(4) != 0 && f == "" {
					f = subjects[rng.IntN(len(subjects))] // whole purges empty the store too often
				}
				n, err := s.Purge(f, upTo, keep)
				require.NoError(t, err)
				require.Equal(t, m.purge(f, upTo, keep), n, "Purge(%q, %d, %d)", f, upTo, keep)
			case r < 85:
				seq := m.lastSeq - uint64(rng.IntN(20))
				if rng.IntN(10) == 0 {
					seq = m.lastSeq + 1 + uint64(rng.IntN(3))
				}
				n, err := s.Compact(seq)
				require.NoError(t, err)
				var want uint64
				for q := range m.msgs {
					if q < seq {
						delete(m.msgs, q)
						want++
					}
				}
				if seq > m.lastSeq+1 {
					m.lastSeq = seq - 1
				}
				require.Equal(t, want, n)
			case r < 88:
				s = k.reopen(t, s)
			default:
				f := filters[rng.IntN(len(filters))]
				live := m.live(f)
				got, err := s.LoadLast(f)
				if len(live) == 0 {
					require.ErrorIs(t, err, ErrNotFound)
				} else {
					require.NoError(t, err)
					require.Equal(t, live[len(live)-1].Seq, got.Seq)
				}
				start := uint64(rng.IntN(int(m.lastSeq) + 2))
				got, err = s.LoadNext(f, start)
				i := slices.IndexFunc(live, func(v Msg) bool { return v.Seq >= start })
				if i < 0 {
					require.ErrorIs(t, err, ErrNotFound)
				} else {
					require.NoError(t, err)
					require.Equal(t, live[i], got)
				}
				counts := map[string]uint64{}
				for _, v := range live {
					counts[v.Subject]++
				}
				require.Equal(t, counts, s.SubjectCounts(f))
			}
			live := m.live("")
			st := s.State()
			require.Equal(t, uint64(len(live)), st.Msgs, "op %d", op)
			require.Equal(t, m.lastSeq, st.LastSeq, "op %d", op)
			var bytes uint64
			if len(live) > 0 {
				require.Equal(t, live[0].Seq, st.FirstSeq, "op %d", op)
				require.Equal(t, int(m.lastSeq-live[0].Seq+1)-len(live), st.NumDeleted)
			} else {
				require.Equal(t, m.lastSeq+1, st.FirstSeq, "op %d", op)
				require.Zero(t, st.NumDeleted)
			}
			for _, v := range live {
				bytes += Size(v.Subject, v.Header, v.Data)
			}
			require.Equal(t, bytes, st.Bytes)
			require.Nil(t, st.Lost)
		}
		require.Equal(t, m.live(""), all(t, s, ""))
	})
}

// TestStoreConcurrentReads reads while the writer appends, deletes and
// compacts (run with -race).
func TestStoreConcurrentReads(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		s := k.open(t)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for r := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(r), 3))
				for {
					select {
					case <-stop:
						return
					default:
					}
					st := s.State()
					seq := st.FirstSeq + uint64(rng.IntN(int(st.LastSeq-st.FirstSeq+2)))
					if m, err := s.Get(seq); err == nil {
						if m.Seq != seq || string(m.Data) != fmt.Sprint(seq) {
							t.Errorf("Get(%d) = %d %q", seq, m.Seq, m.Data)
						}
					} else if !errors.Is(err, ErrNotFound) {
						t.Errorf("Get(%d): %v", seq, err)
					}
					if m, err := s.LoadNext("s.*", seq); err == nil && string(m.Data) != fmt.Sprint(m.Seq) {
						t.Errorf("LoadNext: %d %q", m.Seq, m.Data)
					}
					_, _ = s.LoadLast("s.1")
					_ = s.SubjectCounts("s.>")
				}
			}()
		}
		for i := 1; i <= 600; i++ {
			require.NoError(t, s.Append([]Msg{msg(fmt.Sprintf("s.%d", i%3), fmt.Sprint(i))}))
			if i%7 == 0 {
				_, err := s.Delete(uint64(i - 3))
				require.NoError(t, err)
			}
			if i%50 == 0 {
				_, err := s.Compact(uint64(i - 30))
				require.NoError(t, err)
			}
		}
		close(stop)
		wg.Wait()
	})
}
