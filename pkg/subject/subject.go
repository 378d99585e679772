// Package subject validates NATS subjects and matches them against
// subscription patterns with the `*` (one token) and `>` (one or more
// trailing tokens) wildcards.
package subject

// Separator splits subject tokens.
const Separator = '.'

func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\r' || b == '\n' || b == '\f'
}

// ValidSubscribe reports whether s is a valid subscription subject: no empty
// tokens, no white space, and `>` only as the last token. A token such as
// "foo*" is a literal, as in nats-server.
func ValidSubscribe(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	start := 0
	fwc := false
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != Separator {
			if isSpace(s[i]) {
				return false
			}
			continue
		}
		if fwc || i == start {
			return false
		}
		if i-start == 1 && s[start] == '>' {
			fwc = true
		}
		start = i + 1
	}
	return true
}

// ValidPublish reports whether s is a valid literal subject: a valid
// subscription subject with no wildcard tokens.
func ValidPublish(s []byte) bool {
	if !ValidSubscribe(s) {
		return false
	}
	return !HasWildcard(s)
}

// HasWildcard reports whether any token of s is exactly `*` or `>`.
func HasWildcard(s []byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '*' && s[i] != '>' {
			continue
		}
		if (i == 0 || s[i-1] == Separator) && (i+1 == len(s) || s[i+1] == Separator) {
			return true
		}
	}
	return false
}

// Matches reports whether the literal subject matches the pattern.
func Matches(pattern, literal string) bool {
	for {
		pt, prest, pmore := cut(pattern)
		lt, lrest, lmore := cut(literal)
		switch {
		case pt == ">":
			return lt != ""
		case pt == "*":
			if lt == "" {
				return false
			}
		case pt != lt:
			return false
		}
		if !pmore || !lmore {
			return pmore == lmore
		}
		pattern, literal = prest, lrest
	}
}

func cut(s string) (tok, rest string, more bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == Separator {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// Tokens splits a subject into its tokens.
func Tokens(s string) []string {
	var out []string
	for {
		tok, rest, more := cut(s)
		out = append(out, tok)
		if !more {
			return out
		}
		s = rest
	}
}

// Covers reports whether every subject that sub (a literal or a wildcard
// pattern) can match is matched by pattern: a permission that allows
// pattern allows subscribing to sub.
func Covers(pattern, sub string) bool {
	for {
		pt, prest, pmore := cut(pattern)
		st, srest, smore := cut(sub)
		switch {
		case pt == ">":
			return st != ""
		case st == ">":
			return false // sub spans more tokens than one pattern token can
		case pt == "*":
			if st == "" {
				return false
			}
		case pt != st: // a literal pattern token covers only itself, not *
			return false
		}
		if !pmore || !smore {
			return pmore == smore
		}
		pattern, sub = prest, srest
	}
}

// Overlap reports whether some literal subject matches both patterns (as
// two streams' subjects must not).
func Overlap(a, b string) bool {
	for {
		at, arest, amore := cut(a)
		bt, brest, bmore := cut(b)
		switch {
		case at == "" || bt == "":
			return false
		case at == ">" || bt == ">":
			return true
		case at != "*" && bt != "*" && at != bt:
			return false
		}
		if !amore || !bmore {
			return amore == bmore
		}
		a, b = arest, brest
	}
}
