package jsapi

import (
	"strings"
	"testing"
)

// countAPI tells an error answer by its first field: response must keep
// putting "error" first, and no payload may have a field of that name.
func TestCountAPIErrors(t *testing.T) {
	e := &Engine{apiStats: map[string]*apiCounts{}}
	e.countAPI("A", response("t", nil, errStreamNotFound))
	e.countAPI("A", response("t", StreamInfo{Config: StreamConfig{Name: "S", Metadata: map[string]string{"error": "x"}}}, nil))
	e.countAPI("A", response("t", map[string]any{"success": true}, nil))
	e.countAPI("B", response("t", nil, errMaxStreams))
	if got := *e.apiStats["A"]; got != (apiCounts{total: 3, errors: 1}) {
		t.Errorf("A: %+v, want 3 answers, 1 error", got)
	}
	if got := *e.apiStats["B"]; got != (apiCounts{total: 1, errors: 1}) {
		t.Errorf("B: %+v, want 1 answer, 1 error", got)
	}
}

// Accounts may not be promised more than the server has.
func TestCheckAccountsFit(t *testing.T) {
	opts := Options{MaxMemory: 2000, MaxStore: 1 << 30, Accounts: []Account{
		{"B", AccountLimits{MaxMemory: 1500, MaxStore: -1}}, {"A", AccountLimits{MaxMemory: 1500, MaxStore: 1 << 30}},
		{"C", Unlimited}}}
	err := checkAccountsFit(opts)
	want := "the accounts' max_mem limits add up to 3000 bytes (A 1500, B 1500), more than the server's 2000 (jetstream { max_memory_store })"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
	opts.MaxMemory = 3000
	if err := checkAccountsFit(opts); err != nil {
		t.Fatalf("3000 of 3000 and 1GB of 1GB fit: %v", err)
	}
}
