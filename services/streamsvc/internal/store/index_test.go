package store

import "testing"

// lowerBound finds the first slot at or after a sequence whether the
// slots are dense (the offset shortcut) or have gaps left by compaction
// (the binary search), and past either end.
func TestLiveIndexLowerBound(t *testing.T) {
	x := newLiveIndex[int]()
	for seq := uint64(10); seq < 20; seq++ {
		x.add(seq, "s", 1, 0, 0)
	}
	for _, c := range []struct {
		seq  uint64
		want int
	}{{1, 0}, {10, 0}, {13, 3}, {19, 9}, {20, 10}, {99, 10}} {
		if got := x.lowerBound(c.seq); got != c.want {
			t.Errorf("dense: lowerBound(%d) = %d, want %d", c.seq, got, c.want)
		}
	}
	// Slots 10, 11, 15..19 after compaction: offsets no longer match.
	x.slots = append(x.slots[:2:2], x.slots[5:]...)
	for _, c := range []struct {
		seq  uint64
		want int
	}{{11, 1}, {12, 2}, {14, 2}, {15, 2}, {17, 4}, {19, 6}, {20, 7}} {
		if got := x.lowerBound(c.seq); got != c.want {
			t.Errorf("with a gap: lowerBound(%d) = %d, want %d", c.seq, got, c.want)
		}
	}
}
