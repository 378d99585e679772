package bench

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// natscli v0.5.1 has no --json for `nats bench`; its only machine-readable
// output is --csv, which holds per-client rows but not the aggregated rate
// natscli computes over the whole group (sum of messages / (latest end -
// earliest start)). So we parse the text report printed on stdout. Samples
// captured from real runs live in testdata/.
//
// Shapes of the report (stdout; the banner and per-client progress go to stderr):
//
//	NATS Core NATS subscriber stats: 1,299,250 msgs/sec ~ 20 MiB/sec
//	NATS Core NATS service requester stats: 4,370 msgs/sec ~ ... ~ P50: 219.11us ~ P90: ... ~ P99: 420.62us ~ P99.9: 1,916.80us
//	NATS JetStream asynchronous publisher stats: 80,814 msgs/sec ~ 9.9 MiB/sec ~ min: ... ~ P99.9: 41,784.16us
//	NATS JetStream durable consumer (callback) stats: 111,007 msgs/sec ~ 14 MiB/sec
//	NATS JetStream durable consumer (fetch) stats: 92,128 msgs/sec ~ 11 MiB/sec ~ min: ... ~ P99.9: 3,668.64us
//
// and, with --clients > 1:
//
//	  [1] 644,337 msgs/sec ~ 9.8 MiB/sec (2,000,000 msgs)
//	  ...
//	 NATS Core NATS subscriber aggregated stats: 2,535,170 msgs/sec ~ 39 MiB/sec
//	 message rates min 634,715 | avg 642,050 | max 650,324 | stddev 5,871 msgs
//	 latencies per operation min 89.37us | ... | P50 358.61us | P90 585.38us | P99 945.56us | P99.9: 2,566.65us

var (
	rateRe = regexp.MustCompile(`([0-9][0-9,]*) msgs/sec`)
	// "P99:? " must not match "P99.9:", hence the mandatory space after the
	// optional colon.
	p50Re = regexp.MustCompile(`P50:? ([0-9][0-9,]*(?:\.[0-9]+)?)us`)
	p99Re = regexp.MustCompile(`P99:? ([0-9][0-9,]*(?:\.[0-9]+)?)us`)
)

// summaryLine picks the line that describes the whole run: the
// "aggregated stats" line when there were several clients, otherwise the
// single "stats:" line. Per-client lines ("  [1] ...") are never chosen.
func summaryLine(out string) (string, bool) {
	var single string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.Contains(line, " aggregated stats: "):
			return line, true
		case single == "" && strings.Contains(line, " stats: ") && !strings.HasPrefix(line, "["):
			single = line
		}
	}
	return single, single != ""
}

// ParseRate returns the messages per second that nats bench reports for the
// whole run (aggregated over clients when there are several).
func ParseRate(out string) (float64, error) {
	line, ok := summaryLine(out)
	if !ok {
		return 0, fmt.Errorf("no stats line in nats bench output: %q", clip(out))
	}
	m := rateRe.FindStringSubmatch(line)
	if m == nil {
		return 0, fmt.Errorf("no msgs/sec in nats bench stats line: %q", line)
	}
	return parseHumanNumber(m[1])
}

// ParseLatency returns the p50 and p99 latencies in microseconds from a
// `nats bench service request` report. With several clients the figures come
// from the "latencies per operation" line, which merges all clients' samples.
func ParseLatency(out string) (p50, p99 float64, err error) {
	line := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "latencies per operation") {
			line = l
			break
		}
	}
	if line == "" {
		var ok bool
		if line, ok = summaryLine(out); !ok {
			return 0, 0, fmt.Errorf("no stats line in nats bench output: %q", clip(out))
		}
	}
	m50, m99 := p50Re.FindStringSubmatch(line), p99Re.FindStringSubmatch(line)
	if m50 == nil || m99 == nil {
		return 0, 0, fmt.Errorf("no P50/P99 latency in nats bench line: %q", line)
	}
	if p50, err = parseHumanNumber(m50[1]); err != nil {
		return 0, 0, err
	}
	if p99, err = parseHumanNumber(m99[1]); err != nil {
		return 0, 0, err
	}
	return p50, p99, nil
}

// parseHumanNumber undoes go-humanize's thousands separators ("1,916.80").
func parseHumanNumber(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64)
	if err != nil {
		return 0, fmt.Errorf("parsing number %q: %w", s, err)
	}
	return v, nil
}

// clip keeps error messages readable when a tool prints something unexpected.
func clip(s string) string {
	const max = 600
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
