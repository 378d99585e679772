package bench

import "testing"

func TestBenchCommandLineMakesRepoPathsRelative(t *testing.T) {
	got := commandLine("/repo", []string{"-switchyard", "/repo/bin/frontdoor", "-doc=/repo/docs/x.md", "-reference=/opt/nats-server", "-quick", "-only", "pub|sub"})
	want := "go run ./tools/cmd/bench -switchyard bin/frontdoor -doc=docs/x.md -reference=/opt/nats-server -quick -only 'pub|sub'"
	if got != want {
		t.Fatalf("commandLine =\n  %s\nwant\n  %s", got, want)
	}
}

func TestBenchBusyNote(t *testing.T) {
	if note := busyNote(Machine{CPUs: 2, LoadAvg: "0.40 0.30 0.20"}); note != "" {
		t.Fatalf("quiet machine flagged: %q", note)
	}
	if note := busyNote(Machine{CPUs: 2, LoadAvg: "3.10 2.00 1.00"}); note == "" {
		t.Fatal("busy machine not flagged")
	}
}
