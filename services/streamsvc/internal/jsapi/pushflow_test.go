package jsapi

import (
	"strconv"
	"testing"
	"time"
)

// Deliveries of 1058 bytes each (about what a 1000-byte message weighs
// to nats-server, with its deliver and ack subjects): a request once
// more than 1 MiB is outstanding, a stall past 2 MiB, and after the
// answer a window of 4 MiB whose request comes past 2 MiB again.
func TestFlowControlWindows(t *testing.T) {
	const size = 1058
	f := newFlowControl()
	n := 0
	// deliver delivers until the consumer stalls or asks.
	deliver := func() (asked bool) {
		for !f.stalled() {
			n++
			if f.delivered(size) {
				f.asking("req" + strconv.Itoa(n))
				return true
			}
		}
		return false
	}
	if !deliver() || n != 992 {
		t.Fatalf("first request after %d deliveries, want 992", n)
	}
	first := f.request
	if deliver() || n != 1983 {
		t.Fatalf("stalled after %d deliveries, want 1983", n)
	}
	if f.answered("other") || !f.stalled() {
		t.Fatal("an answer to another subject resumed delivery")
	}
	if !f.answered(first) || f.stalled() || f.window != 2*flowControlStart || f.pending != (1983-992)*size {
		t.Fatalf("after the answer: window %d pending %d stalled %v", f.window, f.pending, f.stalled())
	}
	if !deliver() || f.asked <= 2<<20 || f.asked-size > 2<<20 {
		t.Fatalf("second request with %d bytes outstanding, want just over 2 MiB", f.asked)
	}
	// The window grows to its ceiling and no further.
	for range 10 {
		f.answered(f.request)
		f.asking("again")
	}
	if f.window != flowControlCeiling {
		t.Fatalf("window %d, want %d", f.window, flowControlCeiling)
	}
}

func TestRateLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newRateLimiter(80000, 1024) // 10000 bytes a second
	for i, size := range []int{446, 446} {
		if wait := r.take(now, size); wait != 0 {
			t.Fatalf("delivery %d within the burst waits %v", i, wait)
		}
	}
	// 132 bytes left: 446 needs 31.4 ms more.
	if wait := r.take(now, 446); wait < 31*time.Millisecond || wait > 32*time.Millisecond {
		t.Fatalf("wait %v, want 31.4ms", wait)
	}
	now = now.Add(32 * time.Millisecond)
	if wait := r.take(now, 446); wait != 0 {
		t.Fatalf("still waits %v once the bucket refilled", wait)
	}
	// Larger than the bucket: goes when it is full, leaving a debt.
	now = now.Add(time.Second)
	if wait := r.take(now, 2048); wait != 0 {
		t.Fatalf("an oversized message waits %v on a full bucket", wait)
	}
	if wait := r.take(now, 1); wait < 102*time.Millisecond {
		t.Fatalf("the debt is not paid: wait %v", wait)
	}
}
