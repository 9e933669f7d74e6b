package entitlements

import (
	"unicode"
	"unicode/utf8"
)

// Printable reports whether every character of s prints: a letter, mark,
// number, punctuation, symbol or space. Audit text (a grant's reason, a
// service's name) is read by people and tools, so it holds no control or
// format character (a newline forges a line, a right-to-left override
// reverses what follows), no line separator, no private-use or unassigned
// code point, and no U+FFFD, which invalid UTF-8 decodes to.
func Printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsGraphic(r) {
			return false
		}
	}
	return true
}
