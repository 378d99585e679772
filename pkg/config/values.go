package config

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

// value is one parsed configuration value with where it came from.
type value struct {
	path string // key path for messages, e.g. port or mappings["a.*"][0].weight
	raw  any    // string, int64, float64, bool, time.Time, []any or map[string]any
	file string // empty when parsed from a string
	line int
}

// token is what conf.ParseWithChecks wraps each value in. Declared here
// because the conf package does not export it.
type token interface {
	Value() any
	Line() int
	SourceFile() string
}

// located unwraps raw, taking its file and line from the token when there
// is one (values from an include carry the included file) and from parent
// otherwise.
func located(raw any, parent value) value {
	v := parent
	v.raw = raw
	if t, ok := raw.(token); ok {
		v.raw = t.Value()
		v.line = t.Line()
		if f := t.SourceFile(); f != "" {
			v.file = f
		}
	}
	return v
}

// child locates an element of a block or list.
func (v value) child(path string, raw any) value {
	parent := v
	parent.path = path
	return located(raw, parent)
}

// where says where v is, for a message reported at from: the file is
// named only when it differs (an include).
func (v value) where(from value) string {
	if v.file != from.file && v.file != "" {
		return fmt.Sprintf("%s:%d", v.file, v.line)
	}
	return fmt.Sprintf("line %d", v.line)
}

func isUsedVariable(raw any) bool {
	t, ok := raw.(interface{ IsUsedVariable() bool })
	return ok && t.IsUsedVariable()
}

// describe names a value's kind and content for "expected X, got Y" messages.
func describe(raw any) string {
	switch r := raw.(type) {
	case string:
		return fmt.Sprintf("the string %q", r)
	case int64:
		return fmt.Sprintf("the number %d", r)
	case float64:
		return fmt.Sprintf("the number %v", r)
	case bool:
		return fmt.Sprintf("%v", r)
	case map[string]any:
		return "a block { ... }"
	case []any:
		return "a list [ ... ]"
	case time.Time:
		return "a date"
	default:
		return fmt.Sprintf("%T", raw)
	}
}

func (l *loader) integer(v value) (int64, bool) {
	if n, ok := v.raw.(int64); ok {
		return n, true
	}
	l.bad(v, "expected a whole number, got %s", describe(v.raw))
	return 0, false
}

func (l *loader) boolean(v value) (bool, bool) {
	if b, ok := v.raw.(bool); ok {
		return b, true
	}
	l.bad(v, "expected true or false, got %s", describe(v.raw))
	return false, false
}

func (l *loader) str(v value) (string, bool) {
	if s, ok := v.raw.(string); ok {
		return s, true
	}
	l.bad(v, "expected a string, got %s", describe(v.raw))
	return "", false
}

// size accepts a number of bytes, or a string with a unit ("1MB"). The
// parser already turns an unquoted 1MB into a number; quoted strings go
// through the same unit table so both spellings mean the same size.
func (l *loader) size(v value) (int64, bool) {
	switch r := v.raw.(type) {
	case int64:
		return r, true
	case string:
		n, err := parseSize(r)
		if err != nil {
			l.bad(v, "%v", err)
			return 0, false
		}
		return n, true
	}
	l.bad(v, "expected a size such as 1048576 or 1MB, got %s", describe(v.raw))
	return 0, false
}

// sizeUnits mirrors the conf lexer's integer suffixes: k/m/g/t are powers
// of 1000, kb/ki/kib and friends are powers of 1024.
var sizeUnits = map[string]int64{
	"":  1,
	"k": 1e3, "kb": 1 << 10, "ki": 1 << 10, "kib": 1 << 10,
	"m": 1e6, "mb": 1 << 20, "mi": 1 << 20, "mib": 1 << 20,
	"g": 1e9, "gb": 1 << 30, "gi": 1 << 30, "gib": 1 << 30,
	"t": 1e12, "tb": 1 << 40, "ti": 1 << 40, "tib": 1 << 40,
}

func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	digits := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '-' })
	if digits < 0 {
		digits = len(s)
	}
	n, err := strconv.ParseInt(s[:digits], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: write a whole number of bytes, or one with a unit such as 512KB or 64MB", s)
	}
	unit, ok := sizeUnits[strings.ToLower(strings.TrimSpace(s[digits:]))]
	if !ok {
		return 0, fmt.Errorf("%q has an unknown unit: use K, KB, M, MB, G, GB, T or TB", s)
	}
	if n > math.MaxInt64/unit || n < math.MinInt64/unit {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * unit, nil
}

// duration accepts whole seconds (nats-server's older form) or a Go
// duration string ("2m", "1h30m").
// fractionalDuration is duration that also takes fractional seconds
// (timeout: 0.5), as nats-server's TLS and WebSocket timeouts do.
func (l *loader) fractionalDuration(v value) (time.Duration, bool) {
	if r, ok := v.raw.(float64); ok {
		return time.Duration(r * float64(time.Second)), true
	}
	return l.duration(v)
}

func (l *loader) duration(v value) (time.Duration, bool) {
	switch r := v.raw.(type) {
	case string:
		d, err := time.ParseDuration(r)
		if err != nil {
			l.bad(v, "%q is not a duration: write it like \"10s\", \"2m\" or \"1h30m\"", r)
			return 0, false
		}
		return d, true
	case int64:
		// Unquoted 2m reaches us as 2000000: the parser reads m as the
		// "million" size suffix. Nobody means eleven days of seconds
		// here, so say what happened instead of waiting forever.
		if r != 0 && r%1_000_000 == 0 {
			l.bad(v, "%d seconds looks like an unquoted duration (the parser reads 2m as 2000000): quote it, e.g. \"%dm\"", r, r/1_000_000)
			return 0, false
		}
		if r > math.MaxInt64/int64(time.Second) || r < math.MinInt64/int64(time.Second) {
			l.bad(v, "%d seconds is too long", r)
			return 0, false
		}
		return time.Duration(r) * time.Second, true
	}
	l.bad(v, "expected seconds or a duration such as \"2m\", got %s", describe(v.raw))
	return 0, false
}

// hostPort reads "listen"/"http": a port number, or "host:port".
func (l *loader) hostPort(v value) (host string, port int, hasHost, ok bool) {
	switch r := v.raw.(type) {
	case int64:
		return "", int(r), false, true
	case string:
		h, p, err := net.SplitHostPort(r)
		if err != nil {
			l.bad(v, "%q is not host:port (write IPv6 addresses as \"[::1]:4222\")", r)
			return "", 0, false, false
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			l.bad(v, "%q: port %q is not a number", r, p)
			return "", 0, false, false
		}
		return h, n, true, true
	}
	l.bad(v, "expected a port or \"host:port\", got %s", describe(v.raw))
	return "", 0, false, false
}
