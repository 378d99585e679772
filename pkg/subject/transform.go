package subject

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Transform rewrites subjects matching a source pattern into a destination
// built from literal tokens and mapping functions, as NATS subject mappings
// define them (ADR-30): $N / {{wildcard(N)}}, {{partition(n,a,b...)}},
// {{random(n)}}, {{split(N,sep)}}, {{splitFromLeft(N,k)}},
// {{splitFromRight(N,k)}}, {{sliceFromLeft(N,k)}}, {{sliceFromRight(N,k)}},
// {{left(N,k)}}, {{right(N,k)}}, and a trailing `>`.
type Transform struct {
	Source      string
	Destination string
	// srcWild[i] is the position in the source of the i-th `*` (1-based
	// in destinations).
	srcWild []int
	srcFWC  bool // the source ends in `>`
	srcLen  int
	dst     []dstToken
}

type fnKind uint8

const (
	fnLiteral fnKind = iota
	fnWildcard
	fnPartition
	fnRandom
	fnSplit
	fnSplitLeft
	fnSplitRight
	fnSliceLeft
	fnSliceRight
	fnLeft
	fnRight
	fnRest // the `>` of the destination
)

type dstToken struct {
	kind fnKind
	lit  string
	args []int // wildcard numbers (1-based)
	n    int   // partition count, split position, slice width
	sep  string
}

// NewTransform compiles a mapping. Errors name the offending token.
func NewTransform(src, dst string) (*Transform, error) {
	if !ValidSubscribe([]byte(src)) {
		return nil, fmt.Errorf("invalid mapping source subject %q", src)
	}
	t := &Transform{Source: src, Destination: dst}
	stoks := Tokens(src)
	t.srcLen = len(stoks)
	for i, tok := range stoks {
		switch tok {
		case "*":
			t.srcWild = append(t.srcWild, i)
		case ">":
			t.srcFWC = true
		}
	}
	if dst == "" {
		return nil, fmt.Errorf("empty mapping destination for %q", src)
	}
	for _, tok := range splitDestination(dst) {
		d, err := t.parseToken(tok)
		if err != nil {
			return nil, fmt.Errorf("mapping %q -> %q: %w", src, dst, err)
		}
		t.dst = append(t.dst, d)
	}
	return t, nil
}

// splitDestination splits on '.' outside of {{ }} (split's separator may be
// a dot).
func splitDestination(dst string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(dst); i++ {
		switch {
		case strings.HasPrefix(dst[i:], "{{"):
			depth++
			i++
		case strings.HasPrefix(dst[i:], "}}") && depth > 0:
			depth--
			i++
		case dst[i] == '.' && depth == 0:
			out = append(out, dst[start:i])
			start = i + 1
		}
	}
	return append(out, dst[start:])
}

func (t *Transform) parseToken(tok string) (dstToken, error) {
	if tok == "" {
		return dstToken{}, fmt.Errorf("empty destination token")
	}
	if strings.ContainsAny(tok, " \t\r\n\f") {
		return dstToken{}, fmt.Errorf("destination token %q contains white space", tok)
	}
	if tok == ">" {
		if !t.srcFWC {
			return dstToken{}, fmt.Errorf("destination uses '>' but the source has none")
		}
		return dstToken{kind: fnRest}, nil
	}
	if tok == "*" {
		return dstToken{}, fmt.Errorf("destination may not contain '*': use $N or {{wildcard(N)}}")
	}
	if tok[0] == '$' {
		if n, err := strconv.Atoi(tok[1:]); err == nil {
			return t.wildcard(fnWildcard, []int{n}, tok)
		}
		return dstToken{kind: fnLiteral, lit: tok}, nil
	}
	if !strings.HasPrefix(tok, "{{") || !strings.HasSuffix(tok, "}}") {
		return dstToken{kind: fnLiteral, lit: tok}, nil
	}
	body := strings.TrimSpace(tok[2 : len(tok)-2])
	open := strings.IndexByte(body, '(')
	if open < 0 || !strings.HasSuffix(body, ")") {
		return dstToken{}, fmt.Errorf("malformed mapping function %q", tok)
	}
	name := strings.ToLower(strings.TrimSpace(body[:open]))
	rawArgs := strings.Split(body[open+1:len(body)-1], ",")
	for i := range rawArgs {
		rawArgs[i] = strings.TrimSpace(rawArgs[i])
	}
	ints := func(from int) ([]int, error) {
		var out []int
		for _, a := range rawArgs[from:] {
			n, err := strconv.Atoi(a)
			if err != nil {
				return nil, fmt.Errorf("mapping function %q: argument %q is not a number", tok, a)
			}
			out = append(out, n)
		}
		return out, nil
	}
	switch name {
	case "wildcard":
		a, err := ints(0)
		if err != nil || len(a) != 1 {
			return dstToken{}, fmt.Errorf("%q takes one wildcard number", tok)
		}
		return t.wildcard(fnWildcard, a, tok)
	case "partition":
		a, err := ints(0)
		if err != nil || len(a) < 1 || a[0] <= 0 {
			return dstToken{}, fmt.Errorf("%q takes a partition count and wildcard numbers", tok)
		}
		d, err := t.wildcard(fnPartition, a[1:], tok)
		d.n = a[0]
		return d, err
	case "random":
		a, err := ints(0)
		if err != nil || len(a) != 1 || a[0] <= 0 {
			return dstToken{}, fmt.Errorf("%q takes one positive number", tok)
		}
		return dstToken{kind: fnRandom, n: a[0]}, nil
	case "split":
		if len(rawArgs) != 2 || rawArgs[1] == "" {
			return dstToken{}, fmt.Errorf("%q takes a wildcard number and a separator", tok)
		}
		a, err := strconv.Atoi(rawArgs[0])
		if err != nil {
			return dstToken{}, fmt.Errorf("%q: bad wildcard number", tok)
		}
		d, err := t.wildcard(fnSplit, []int{a}, tok)
		d.sep = rawArgs[1]
		return d, err
	case "splitfromleft", "splitfromright", "slicefromleft", "slicefromright", "left", "right":
		a, err := ints(0)
		if err != nil || len(a) != 2 || a[1] <= 0 {
			return dstToken{}, fmt.Errorf("%q takes a wildcard number and a positive width", tok)
		}
		kind := map[string]fnKind{"splitfromleft": fnSplitLeft, "splitfromright": fnSplitRight,
			"slicefromleft": fnSliceLeft, "slicefromright": fnSliceRight, "left": fnLeft, "right": fnRight}[name]
		d, err := t.wildcard(kind, a[:1], tok)
		d.n = a[1]
		return d, err
	}
	return dstToken{}, fmt.Errorf("unknown mapping function %q", tok)
}

func (t *Transform) wildcard(kind fnKind, nums []int, tok string) (dstToken, error) {
	for _, n := range nums {
		if n < 1 || n > len(t.srcWild) {
			return dstToken{}, fmt.Errorf("%q refers to wildcard %d but the source has %d", tok, n, len(t.srcWild))
		}
	}
	return dstToken{kind: kind, args: nums}, nil
}

// Apply returns the transformed subject and true when literal matches the
// source pattern.
func (t *Transform) Apply(literal string) (string, bool) {
	if !Matches(t.Source, literal) {
		return "", false
	}
	toks := Tokens(literal)
	var b strings.Builder
	b.Grow(len(literal) + len(t.Destination))
	for i, d := range t.dst {
		if i > 0 {
			b.WriteByte('.')
		}
		switch d.kind {
		case fnLiteral:
			b.WriteString(d.lit)
		case fnWildcard:
			b.WriteString(toks[t.srcWild[d.args[0]-1]])
		case fnRest:
			b.WriteString(strings.Join(toks[t.srcLen-1:], "."))
		case fnRandom:
			b.WriteString(strconv.Itoa(rand.IntN(d.n)))
		case fnPartition:
			h := fnv.New32a()
			if len(d.args) == 0 {
				h.Write([]byte(literal))
			}
			for _, a := range d.args {
				h.Write([]byte(toks[t.srcWild[a-1]]))
			}
			b.WriteString(strconv.Itoa(int(h.Sum32() % uint32(d.n))))
		default:
			b.WriteString(reshape(d, toks[t.srcWild[d.args[0]-1]]))
		}
	}
	return b.String(), true
}

// reshape applies the token-splitting functions.
func reshape(d dstToken, v string) string {
	var parts []string
	switch d.kind {
	case fnLeft:
		return v[:min(d.n, len(v))]
	case fnRight:
		return v[len(v)-min(d.n, len(v)):]
	case fnSplit:
		for _, p := range strings.Split(v, d.sep) {
			if p != "" {
				parts = append(parts, p)
			}
		}
	case fnSplitLeft:
		if d.n >= len(v) {
			return v
		}
		parts = []string{v[:d.n], v[d.n:]}
	case fnSplitRight:
		if d.n >= len(v) {
			return v
		}
		parts = []string{v[:len(v)-d.n], v[len(v)-d.n:]}
	case fnSliceLeft:
		for len(v) > d.n {
			parts = append(parts, v[:d.n])
			v = v[d.n:]
		}
		parts = append(parts, v)
	case fnSliceRight:
		first := len(v) % d.n
		if first > 0 {
			parts = append(parts, v[:first])
			v = v[first:]
		}
		for len(v) > 0 {
			parts = append(parts, v[:d.n])
			v = v[d.n:]
		}
	}
	return strings.Join(parts, ".")
}
