package bench

import (
	"os"
	"path/filepath"
	"testing"
)

// The fixtures are the stdout of real natscli v0.5.1 runs against
// nats-server v2.15.2; if a natscli upgrade changes the report, recapture them.
func readFixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBenchParseRate(t *testing.T) {
	cases := []struct {
		file string
		want float64
	}{
		{"pub_16b_1client.txt", 1295822},
		{"sub_16b_1client.txt", 1299250},
		{"sub_1kb_1client.txt", 270216},
		// Several clients: the aggregated line wins over the per-client ones.
		{"sub_16b_4clients.txt", 2535170},
		{"pub_1kb_2clients.txt", 1322680},
		{"request_1client.txt", 4370},
		{"request_2clients.txt", 5047},
		// JetStream reports: the publishers' and fetch's lines go on with
		// latencies after the rate.
		{"js_pub_async.txt", 80814},
		{"js_pub_sync.txt", 6975},
		{"js_consume.txt", 111007},
		{"js_fetch.txt", 92128},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			got, err := ParseRate(readFixture(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("rate = %v, want %v", got, c.want)
			}
		})
	}
}

func TestBenchParseRateRejectsEmptyReport(t *testing.T) {
	// What natscli prints when no client produced a sample.
	if _, err := ParseRate("\nNo publisher or subscribers. Nothing to report.\n"); err == nil {
		t.Fatal("expected an error")
	}
	if _, err := ParseRate(""); err == nil {
		t.Fatal("expected an error for empty output")
	}
}

func TestBenchParseLatency(t *testing.T) {
	cases := []struct {
		file     string
		p50, p99 float64
	}{
		// P99.9 (1,916.80us) must not be mistaken for P99.
		{"request_1client.txt", 219.11, 420.62},
		// Several clients: the merged "latencies per operation" line is used.
		{"request_2clients.txt", 358.61, 945.56},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			p50, p99, err := ParseLatency(readFixture(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if p50 != c.p50 || p99 != c.p99 {
				t.Fatalf("p50, p99 = %v, %v; want %v, %v", p50, p99, c.p50, c.p99)
			}
		})
	}
}

func TestBenchParseLatencyNeedsPercentiles(t *testing.T) {
	if _, _, err := ParseLatency(readFixture(t, "sub_16b_1client.txt")); err == nil {
		t.Fatal("subscriber report has no latencies; expected an error")
	}
}

func TestBenchParseHumanNumber(t *testing.T) {
	for in, want := range map[string]float64{"1,916.80": 1916.8, "0.07": 0.07, "3,164,142": 3164142} {
		got, err := parseHumanNumber(in)
		if err != nil || got != want {
			t.Errorf("parseHumanNumber(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}
