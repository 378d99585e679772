package bench

import (
	"math"
	"strings"
	"testing"
)

func TestBenchRowSummary(t *testing.T) {
	nan := math.NaN()
	r := &Row{
		Spec: MetricSpec{Name: "x", Unit: UnitRate},
		Values: [2][]float64{
			{100, 200, 100, nan},
			{110, 180, 100, 50}, // last round has no reference: no ratio
		},
	}
	s := r.Summary()
	if s.Reference != 100 || s.Switchyard != 105 {
		t.Fatalf("medians = %v, %v; want 100, 105", s.Reference, s.Switchyard)
	}
	// ratios 1.1, 0.9, 1.0
	if math.Abs(s.Ratio-1.0) > 1e-9 || math.Abs(s.RatioMin-0.9) > 1e-9 || math.Abs(s.RatioMax-1.1) > 1e-9 {
		t.Fatalf("ratio %v spread %v–%v; want 1.0, 0.9–1.1", s.Ratio, s.RatioMin, s.RatioMax)
	}
}

func TestBenchRowSummaryAllFailed(t *testing.T) {
	nan := math.NaN()
	r := &Row{Spec: MetricSpec{Name: "x"}, Values: [2][]float64{{nan}, {nan}}}
	cells := r.cells()
	if cells[2] != "–" || cells[3] != "–" || cells[4] != "–" || cells[5] != "–" {
		t.Fatalf("cells = %q", cells)
	}
}

func TestBenchFormatValue(t *testing.T) {
	cases := []struct {
		u    Unit
		v    float64
		want string
	}{
		{UnitRate, 3_164_142, "3.16 M msg/s"},
		{UnitRate, 270_216, "270 k msg/s"},
		{UnitRate, 1_614, "1.61 k msg/s"},
		{UnitRate, 825, "825 msg/s"},
		{UnitMicros, 219.11, "219 µs"},
		{UnitMicros, 1916.8, "1.92 ms"},
		{UnitBytes, 48 * 1024, "48.0 KiB"},
		{UnitBytes, 500 << 20, "500.0 MiB"},
		{UnitPercent, 9.84, "9.8 %"},
	}
	for _, c := range cases {
		if got := formatValue(c.u, c.v); got != c.want {
			t.Errorf("formatValue(%v, %v) = %q, want %q", c.u, c.v, got, c.want)
		}
	}
}

func TestBenchMarkdownTableHasOneLinePerRow(t *testing.T) {
	res := &Results{Rows: []*Row{
		{Spec: MetricSpec{Name: "a", Unit: UnitRate}, Values: [2][]float64{{1}, {2}}},
		{Spec: MetricSpec{Name: "b", Unit: UnitMicros, LowerIsBetter: true}, Values: [2][]float64{{1}, {2}}},
	}}
	var b strings.Builder
	res.WriteMarkdownTable(&b)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines:\n%s", len(lines), b.String())
	}
	if !strings.Contains(lines[3], "| lower |") || !strings.Contains(lines[3], "| 2.00 |") {
		t.Fatalf("row b = %q", lines[3])
	}
}

func TestBenchThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 10000: "10,000", 2000000: "2,000,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestBenchKeptSection(t *testing.T) {
	doc := []byte("# Benchmarks\n\ngenerated\n\n" + KeepMarker + "\n\n## Failover\n\nkept\n")
	if got, want := string(KeptSection(doc)), "\n"+KeepMarker+"\n\n## Failover\n\nkept\n"; got != want {
		t.Fatalf("kept %q, want %q", got, want)
	}
	if got := KeptSection([]byte("# Benchmarks\n\nno marker\n")); got != nil {
		t.Fatalf("kept %q from a document without the marker", got)
	}
}
