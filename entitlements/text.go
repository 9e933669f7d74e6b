package entitlements

import (
	"unicode"
	"unicode/utf8"
)

// Printable reports whether s is audit text (a grant's reason, a
// service's name) that cannot forge or hide what people and tools read of
// it: no control character (a newline forges a line), no line or paragraph
// separator, no bidirectional control (a right-to-left override reverses
// what follows), no private-use character, and no U+FFFD, which invalid
// UTF-8 decodes to. Other format characters stay: the joiners that spell
// Persian and Devanagari and join emoji, the soft hyphen, a flag's tags;
// and so do characters newer than Go's Unicode tables, which today's
// keyboards already offer.
func Printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Co) || bidiControl(r) {
			return false
		}
	}
	return true
}

// bidiControl reports whether r is one of Unicode's explicit directional
// formatting characters (UAX #9): the marks, embeddings, overrides and
// isolates.
func bidiControl(r rune) bool {
	switch {
	case r == '\u061c', r == '\u200e', r == '\u200f':
		return true
	case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}
