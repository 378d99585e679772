package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// Sides, in the order they are measured within a round.
const (
	SideReference  = "reference"
	SideSwitchyard = "switchyard"
)

var sides = [2]string{SideReference, SideSwitchyard}

// Row holds every round's value of one metric for both servers; NaN marks a
// measurement that failed.
type Row struct {
	Spec   MetricSpec
	Values [2][]float64 // [0] reference, [1] switchyard; one entry per round
}

// Failure records a measurement that produced no value.
type Failure struct {
	Workload string
	Side     string
	Round    int
	Err      error
}

// Results is everything a run measured.
type Results struct {
	Rows     []*Row
	Failures []Failure
}

// Summary condenses a row. The ratio is taken per round (switchyard /
// reference of the same round, measured back to back) before the median, so
// slow drift of the machine over the run cancels out of each ratio; the
// spread shows how much the rounds disagree.
type Summary struct {
	Reference, Switchyard float64 // medians; NaN when no value
	Ratio                 float64 // median of per-round ratios
	RatioMin, RatioMax    float64
}

func (r *Row) Summary() Summary {
	var ratios []float64
	for i := range r.Values[0] {
		a, b := r.Values[0][i], r.Values[1][i]
		if !math.IsNaN(a) && !math.IsNaN(b) && a != 0 {
			ratios = append(ratios, b/a)
		}
	}
	s := Summary{
		Reference:  median(r.Values[0]),
		Switchyard: median(r.Values[1]),
		Ratio:      median(ratios),
		RatioMin:   math.NaN(),
		RatioMax:   math.NaN(),
	}
	if len(ratios) > 0 {
		s.RatioMin, s.RatioMax = slices.Min(ratios), slices.Max(ratios)
	}
	return s
}

// median ignores NaNs; NaN when nothing is left.
func median(vals []float64) float64 {
	var v []float64
	for _, x := range vals {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	if n := len(v); n%2 == 1 {
		return v[n/2]
	} else {
		return (v[n/2-1] + v[n/2]) / 2
	}
}

// tableHeader is shared by the terminal and Markdown tables so they never
// disagree.
var tableHeader = []string{"workload", "better", "reference (median)", "switchyard (median)", "ratio sy/ref (median)", "spread (min–max ratio)"}

func (r *Row) cells() []string {
	s := r.Summary()
	better := "higher"
	if r.Spec.LowerIsBetter {
		better = "lower"
	}
	spread := "–"
	if !math.IsNaN(s.RatioMin) {
		spread = fmt.Sprintf("%.2f–%.2f", s.RatioMin, s.RatioMax)
	}
	return []string{r.Spec.Name, better, formatValue(r.Spec.Unit, s.Reference), formatValue(r.Spec.Unit, s.Switchyard), formatRatio(s.Ratio), spread}
}

// WriteTable prints the results as an aligned text table.
func (res *Results) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(tableHeader, "\t"))
	for _, r := range res.Rows {
		fmt.Fprintln(tw, strings.Join(r.cells(), "\t"))
	}
	tw.Flush()
	res.writeFailures(w, "")
}

// WriteMarkdownTable prints the same table in Markdown.
func (res *Results) WriteMarkdownTable(w io.Writer) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(tableHeader, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(tableHeader)))
	for _, r := range res.Rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r.cells(), " | "))
	}
	res.writeFailures(w, "- ")
}

func (res *Results) writeFailures(w io.Writer, bullet string) {
	if len(res.Failures) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%d measurement(s) failed and are left out of the medians:\n", len(res.Failures))
	for _, f := range res.Failures {
		first, _, _ := strings.Cut(f.Err.Error(), "\n")
		fmt.Fprintf(w, "%s%s, %s, round %d: %s\n", bullet, f.Workload, f.Side, f.Round, first)
	}
}

func formatValue(u Unit, v float64) string {
	if math.IsNaN(v) {
		return "–" // not measured: failed or interrupted, see the failure list
	}
	switch u {
	case UnitRate:
		switch {
		case v >= 1e6:
			return fmt.Sprintf("%.2f M msg/s", v/1e6)
		case v >= 1e4:
			return fmt.Sprintf("%.0f k msg/s", v/1e3)
		case v >= 1e3:
			// Durable JetStream publishing runs at a few thousand a second;
			// "1 k" against "2 k" would hide a 40 % difference.
			return fmt.Sprintf("%.2f k msg/s", v/1e3)
		}
		return fmt.Sprintf("%.0f msg/s", v)
	case UnitConnRate:
		return fmt.Sprintf("%.0f conn/s", v)
	case UnitMicros:
		if v >= 1000 {
			return fmt.Sprintf("%.2f ms", v/1000)
		}
		return fmt.Sprintf("%.0f µs", v)
	case UnitBytes:
		switch {
		case v >= 1<<20:
			return fmt.Sprintf("%.1f MiB", v/(1<<20))
		case v >= 1<<10:
			return fmt.Sprintf("%.1f KiB", v/(1<<10))
		}
		return fmt.Sprintf("%.0f B", v)
	case UnitPercent:
		return fmt.Sprintf("%.1f %%", v)
	}
	return fmt.Sprint(v)
}

func formatRatio(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}
