package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/switchyard-io/switchyard/pkg/subject"
)

// applyMappings reads the nats-server mappings block:
//
//	mappings {
//	  "foo": "bar"                  # plain
//	  "src.*": "dst.$1"             # with wildcard reference
//	  "w": [ {destination: "a", weight: "50%"}, {destination: "b", weight: 50} ]
//	  "one": {destination: "c", weight: 10}   # single weighted destination
//	}
//
// Subject syntax and weight sums are checked by Validate, so mappings built
// in code get the same checks.
func applyMappings(l *loader, s *Server, v value) {
	s.Mappings = append(s.Mappings, l.mappings(v)...)
}

// mappings reads one mappings block (top level or an account's).
func (l *loader) mappings(v value) []Mapping {
	block, ok := v.raw.(map[string]any)
	if !ok {
		l.bad(v, "expected a block { \"source\": \"destination\", ... }, got %s", describe(v.raw))
		return nil
	}
	var out []Mapping
	sources := make([]string, 0, len(block))
	for src := range block {
		sources = append(sources, src)
	}
	// The parser returns a Go map, so file order is lost anyway; sorting
	// makes the result, and the error order, reproducible.
	sort.Strings(sources)

	for _, src := range sources {
		ev := v.child(mappingPath(src), block[src])
		l.set[ev.path] = ev
		if dests, ok := l.destinations(ev); ok {
			out = append(out, Mapping{Source: src, Destinations: dests})
		}
	}
	return out
}

func mappingPath(src string) string { return fmt.Sprintf("mappings[%q]", src) }

func (l *loader) destinations(v value) ([]Destination, bool) {
	switch r := v.raw.(type) {
	case string:
		return []Destination{{Subject: r, Weight: 100}}, true
	case map[string]any:
		d, ok := l.weighted(v)
		return []Destination{d}, ok
	case []any:
		if len(r) == 0 {
			l.bad(v, "the list of destinations is empty: give at least one {destination: \"...\", weight: 100}")
			return nil, false
		}
		dests := make([]Destination, 0, len(r))
		good := true
		for i, raw := range r {
			d, ok := l.weighted(v.child(fmt.Sprintf("%s[%d]", v.path, i), raw))
			good = good && ok
			dests = append(dests, d)
		}
		return dests, good
	}
	l.bad(v, "expected a destination subject or a list of {destination, weight}, got %s", describe(v.raw))
	return nil, false
}

// weighted reads one {destination: "a", weight: "50%"} entry.
func (l *loader) weighted(v value) (Destination, bool) {
	m, ok := v.raw.(map[string]any)
	if !ok {
		l.bad(v, "expected {destination: \"...\", weight: N}, got %s", describe(v.raw))
		return Destination{}, false
	}
	v.line = firstLine(m, v)

	var d Destination
	var haveDest, haveWeight bool
	good := true
	fields := make([]string, 0, len(m))
	for k := range m {
		fields = append(fields, k)
	}
	sort.Strings(fields)
	for _, k := range fields {
		fv := v.child(v.path+"."+k, m[k])
		switch strings.ToLower(k) {
		case "destination", "dest":
			if haveDest {
				l.bad(fv, " repeats the destination: keep one of destination and dest")
				good = false
				continue
			}
			subject, ok := l.str(fv)
			d.Subject, haveDest, good = subject, ok, good && ok
		case "weight":
			w, ok := l.weight(fv)
			d.Weight, haveWeight, good = w, ok, good && ok
		case "cluster":
			l.bad(fv, " is not supported: cluster-scoped mappings need nats-server clusters, which frontdoors do not form; remove it")
			good = false
		default:
			l.bad(fv, " is not a field of a mapping destination: use destination and weight")
			good = false
		}
	}
	if !haveDest && good {
		l.bad(v, "missing destination: write {destination: \"subject\", weight: N}")
		good = false
	}
	if !haveWeight && good {
		l.bad(v, "missing weight for destination %q: add weight: 1 to 100", d.Subject)
		good = false
	}
	return d, good
}

// firstLine points a list element at its first field rather than its
// closing brace, which is where the parser puts it.
func firstLine(m map[string]any, v value) int {
	line := v.line
	for _, raw := range m {
		if f := v.child("", raw); f.file == v.file && f.line > 0 && f.line < line {
			line = f.line
		}
	}
	return line
}

// weight accepts 50 or "50%".
func (l *loader) weight(v value) (uint8, bool) {
	var n int64
	switch r := v.raw.(type) {
	case int64:
		n = r
	case string:
		var err error
		n, err = strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(r), "%")), 10, 64)
		if err != nil {
			l.bad(v, "%q is not a weight: write a percentage such as 50 or \"50%%\"", r)
			return 0, false
		}
	default:
		l.bad(v, "expected a percentage such as 50 or \"50%%\", got %s", describe(v.raw))
		return 0, false
	}
	if n < 1 || n > 100 {
		l.bad(v, "%d is not a weight: it is a percentage from 1 to 100", n)
		return 0, false
	}
	return uint8(n), true
}

// checkMapping validates one mapping the way the frontdoor will use it.
func checkMapping(m Mapping) []problem {
	key := mappingPath(m.Source)
	var ps []problem
	bad := func(format string, args ...any) {
		ps = append(ps, problem{key: key, msg: fmt.Sprintf(format, args...)})
	}
	if !subject.ValidSubscribe([]byte(m.Source)) {
		bad("source %q is not a valid subject", m.Source)
		return ps
	}
	if len(m.Destinations) == 0 {
		bad("has no destination")
		return ps
	}
	total := 0
	seen := make(map[string]bool)
	for _, d := range m.Destinations {
		if d.Weight < 1 || d.Weight > 100 {
			bad("destination %q has weight %d: weights are percentages from 1 to 100", d.Subject, d.Weight)
		}
		total += int(d.Weight)
		if seen[d.Subject] {
			bad("destination %q is listed twice: merge the entries and add their weights", d.Subject)
		}
		seen[d.Subject] = true
		// The frontdoor compiles the same transform; compiling it here
		// refuses a mapping that could never apply at start-up.
		if _, err := subject.NewTransform(m.Source, d.Subject); err != nil {
			bad("%v", err)
		}
	}
	if total > 100 {
		bad("weights add up to %d%%, more than 100%%: lower them", total)
	}
	return ps
}
