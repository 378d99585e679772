package subject

import (
	"fmt"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSubjectValidity(t *testing.T) {
	for _, c := range []struct {
		s        string
		sub, pub bool
	}{
		{"foo", true, true},
		{"foo.bar", true, true},
		{"foo.*", true, false},
		{"foo.>", true, false},
		{">", true, false},
		{"*", true, false},
		{"foo*", true, true}, // a literal token, as in nats-server
		{"foo.>.bar", false, false},
		{"foo..bar", false, false},
		{".foo", false, false},
		{"foo.", false, false},
		{"", false, false},
		{"foo bar", false, false},
		{"foo\tbar", false, false},
	} {
		require.Equal(t, c.sub, ValidSubscribe([]byte(c.s)), "subscribe %q", c.s)
		require.Equal(t, c.pub, ValidPublish([]byte(c.s)), "publish %q", c.s)
	}
}

func TestSubjectMatches(t *testing.T) {
	for _, c := range []struct {
		pattern, literal string
		want             bool
	}{
		{"foo", "foo", true},
		{"foo", "bar", false},
		{"foo.*", "foo.bar", true},
		{"foo.*", "foo", false},
		{"foo.*", "foo.bar.baz", false},
		{"foo.>", "foo.bar.baz", true},
		{"foo.>", "foo", false},
		{">", "a.b.c", true},
		{"*.b.*", "a.b.c", true},
		{"*.b.*", "a.x.c", false},
	} {
		require.Equal(t, c.want, Matches(c.pattern, c.literal), "%s ~ %s", c.pattern, c.literal)
	}
}

type sub struct{ name string }

func names(r *Result[sub]) []string {
	var out []string
	for _, s := range r.Plain {
		out = append(out, s.name)
	}
	for _, q := range r.Queues {
		for _, s := range q.Members {
			out = append(out, q.Name+":"+s.name)
		}
	}
	sort.Strings(out)
	return out
}

func TestSublistMatchAndRemove(t *testing.T) {
	sl := NewSublist[sub]()
	a, b, c, d, e := &sub{"a"}, &sub{"b"}, &sub{"c"}, &sub{"d"}, &sub{"e"}
	sl.Insert("foo.bar", "", a)
	sl.Insert("foo.*", "", b)
	sl.Insert("foo.>", "", c)
	sl.Insert("foo.bar", "q", d)
	sl.Insert("*.bar", "q", e) // same queue name on another pattern: one group
	require.Equal(t, 5, sl.Count())

	r := sl.Match("foo.bar")
	require.Equal(t, []string{"a", "b", "c", "q:d", "q:e"}, names(r))
	require.Len(t, r.Queues, 1, "queue members across patterns form one group")
	require.Equal(t, []string{"c"}, names(sl.Match("foo.bar.baz")))
	require.Empty(t, names(sl.Match("bar")))
	all := NewSublist[sub]()
	all.Insert(">", "", &sub{"all"})
	all.Insert("*.*", "", &sub{"two"})
	for _, bad := range []string{"foo..bar", ".foo", "foo.", ".", ""} {
		require.Empty(t, names(all.Match(bad)), "empty tokens match nothing: %q", bad)
	}

	require.True(t, sl.Remove("foo.bar", "", a))
	require.False(t, sl.Remove("foo.bar", "", a), "second remove reports absence")
	require.False(t, sl.Remove("no.such", "", a))
	require.True(t, sl.Remove("foo.bar", "q", d))
	require.Equal(t, []string{"b", "c", "q:e"}, names(sl.Match("foo.bar")))
	for _, x := range []struct {
		p, q string
		s    *sub
	}{{"foo.*", "", b}, {"foo.>", "", c}, {"*.bar", "q", e}} {
		require.True(t, sl.Remove(x.p, x.q, x.s))
	}
	require.Equal(t, 0, sl.Count())
	require.True(t, sl.root.empty(), "removing everything prunes the trie")
}

func TestSublistCacheSeesChanges(t *testing.T) {
	sl := NewSublist[sub]()
	cache := NewCache(sl)
	require.True(t, cache.Match([]byte("a.b")).Empty())
	s := &sub{"x"}
	sl.Insert("a.*", "", s)
	require.Equal(t, []string{"x"}, names(cache.Match([]byte("a.b"))), "insert invalidates the cache")
	require.Equal(t, []string{"x"}, names(cache.Match([]byte("a.b"))))
	require.Equal(t, uint64(1), cache.Hits)
	sl.Remove("a.*", "", s)
	require.True(t, cache.Match([]byte("a.b")).Empty(), "remove invalidates the cache")
}

func TestSublistCacheBounded(t *testing.T) {
	sl := NewSublist[sub]()
	cache := NewCache(sl)
	for i := 0; i < 5*maxCacheEntries; i++ {
		cache.Match([]byte(fmt.Sprintf("s.%d", i)))
	}
	require.LessOrEqual(t, len(cache.m), maxCacheEntries)
}

func TestTransform(t *testing.T) {
	for _, c := range []struct{ src, dst, in, out string }{
		{">", "uno.>", "one.two.three", "uno.one.two.three"},
		{"one.>", "uno.>", "one.two.three", "uno.two.three"},
		{"one", "uno", "one", "uno"},
		{"one.*.three.*.five", "uno.$2.$1", "one.two.three.four.five", "uno.four.two"},
		{"one.*.three.*.five", "uno.{{wildcard(2)}}.{{Wildcard(1)}}", "one.two.three.four.five", "uno.four.two"},
		{"*.two.three.>", "uno.$1.>", "one.two.three.four.five", "uno.one.four.five"},
		{"*", "{{split(1,-)}}", "-abc-def--ghi-", "abc.def.ghi"},
		{"*", "{{splitfromleft(1,3)}}", "12345", "123.45"},
		{"*", "{{SplitFromRight(1,3)}}", "12345", "12.345"},
		{"*", "{{SliceFromLeft(1,3)}}", "1234567890", "123.456.789.0"},
		{"*", "{{SliceFromRight(1,3)}}", "1234567890", "1.234.567.890"},
		{"*", "{{left(1,3)}}", "1234567890", "123"},
		{"*", "{{Right(1,3)}}", "1234567890", "890"},
	} {
		tr, err := NewTransform(c.src, c.dst)
		require.NoError(t, err, "%s -> %s", c.src, c.dst)
		got, ok := tr.Apply(c.in)
		require.True(t, ok)
		require.Equal(t, c.out, got, "%s -> %s on %s", c.src, c.dst, c.in)
	}
	tr, err := NewTransform("foo.*", "bar.$1")
	require.NoError(t, err)
	_, ok := tr.Apply("baz.x")
	require.False(t, ok, "a subject outside the source is not mapped")
}

func TestTransformPartitionIsStable(t *testing.T) {
	tr, err := NewTransform("orders.*", "orders.{{partition(4,1)}}.$1")
	require.NoError(t, err)
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		in := fmt.Sprintf("orders.%d", i)
		a, _ := tr.Apply(in)
		b, _ := tr.Apply(in)
		require.Equal(t, a, b, "same key, same partition")
		seen[Tokens(a)[1]] = true
	}
	require.Len(t, seen, 4, "keys spread over every partition")
}

func TestTransformErrors(t *testing.T) {
	for _, c := range []struct{ src, dst string }{
		{"foo.*", "bar.$2"},
		{"foo", "bar.>"},
		{"foo.*", "bar.*"},
		{"foo.*", "{{nosuch(1)}}"},
		{"foo.*", "{{partition(x,1)}}"},
		{"foo..bar", "x"},
		{"foo", ""},
	} {
		_, err := NewTransform(c.src, c.dst)
		require.Error(t, err, "%s -> %s", c.src, c.dst)
	}
}

func BenchmarkCacheHit(b *testing.B) {
	sl := NewSublist[sub]()
	sl.Insert("foo.bar", "", &sub{"a"})
	cache := NewCache(sl)
	subj := []byte("foo.bar")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		cache.Match(subj)
	}
}

func TestSubjectCovers(t *testing.T) {
	for _, c := range []struct {
		pattern, sub string
		want         bool
	}{
		{"foo.>", "foo.bar", true},
		{"foo.>", "foo.*", true},
		{"foo.>", "foo.>", true},
		{"foo.*", "foo.*", true},
		{"foo.*", "foo.>", false},
		{"foo.bar", "foo.*", false},
		{"foo.*", "foo.bar.baz", false},
		{">", "anything.*.>", true},
		{"foo", "foo", true},
		{"foo", "foo.bar", false},
	} {
		if got := Covers(c.pattern, c.sub); got != c.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", c.pattern, c.sub, got, c.want)
		}
	}
}

func TestOverlap(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"foo", "foo", true},
		{"foo", "bar", false},
		{"foo.*", "foo.bar", true},
		{"foo.*", "*.bar", true},
		{"foo.*", "bar.*", false},
		{"foo.>", "foo.bar.baz", true},
		{"foo.>", "foo", false},
		{">", "anything.at.all", true},
		{"foo.*", "foo.bar.baz", false},
		{"*.*", "foo", false},
		{"foo.*.baz", "foo.>", true},
		{"foo.*.baz", "foo.bar.qux", false},
	} {
		if got := Overlap(tc.a, tc.b); got != tc.want {
			t.Errorf("Overlap(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := Overlap(tc.b, tc.a); got != tc.want {
			t.Errorf("Overlap(%q, %q) = %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}

// A publisher of ever-new subjects stops filling the cache, and caching
// resumes once it repeats a subject.
func TestCacheMissStreak(t *testing.T) {
	sl := NewSublist[int]()
	one := 1
	sl.Insert("a.>", "", &one)
	c := NewCache(sl)
	for i := range 3 * cacheMissStreak {
		require.Len(t, c.Match([]byte(fmt.Sprintf("a.%d", i))).Plain, 1)
	}
	require.Len(t, c.m, cacheMissStreak, "entries stop being added after the streak")
	require.Len(t, c.Match([]byte("a.hot")).Plain, 1)
	require.Len(t, c.Match([]byte("a.hot")).Plain, 1)
	require.Zero(t, c.misses, "a repeated subject hits and resets the streak")
	require.Len(t, c.Match([]byte("a.new")).Plain, 1)
	_, cached := c.m["a.new"]
	require.True(t, cached, "caching resumed")
}
