package entitlements

import (
	"unicode"
	"unicode/utf8"
)

// Printable reports whether s is audit text (a grant's reason, a tier
// change's, a service's name) that cannot forge or hide what people and
// tools read of it, in any language, emoji included:
//   - no control character (a newline forges a line), line or paragraph
//     separator, private-use character, noncharacter, or U+FFFD (what
//     invalid UTF-8 decodes to);
//   - no format character (a right-to-left override reverses what
//     follows; a zero-width space or a word joiner hides in a name; tag
//     characters smuggle invisible ASCII) but the joiners that spell
//     Persian and Devanagari and join emoji, the soft hyphen, and the tags
//     of a subdivision flag;
//   - no variation selector after another, nor more than 30 combining
//     marks in a row (Unicode's stream-safe bound), which hide bytes
//     behind one glyph;
//   - something visible, not blanks alone (Hangul fillers, the braille
//     blank).
//
// Characters newer than Go's Unicode tables stay, as today's keyboards
// offer them. The empty string is Printable; callers bound the length.
func Printable(s string) bool {
	var prev rune
	marks, visible := 0, false
	for _, r := range s {
		switch {
		case r == utf8.RuneError, unicode.IsControl(r), unicode.In(r, unicode.Zl, unicode.Zp, unicode.Co), noncharacter(r):
			return false
		case unicode.Is(unicode.Cf, r) && !joiningFormat(r, prev):
			return false
		case variationSelector(r) && variationSelector(prev):
			return false
		}
		if !unicode.In(r, unicode.Mn, unicode.Me) {
			marks = 0
		} else if marks++; marks > 30 {
			return false
		}
		visible = visible || !blank(r)
		prev = r
	}
	return visible || s == ""
}

// joiningFormat reports whether r, a format character after prev, is one
// text needs: the zero-width non-joiner and joiner, the soft hyphen, and a
// tag that continues a black flag's subdivision sequence.
func joiningFormat(r, prev rune) bool {
	switch {
	case r == '\u200c', r == '\u200d', r == '\u00ad':
		return true
	case r >= 0xe0020 && r <= 0xe007f:
		return prev == 0x1f3f4 || prev >= 0xe0020 && prev < 0xe007f
	}
	return false
}

// variationSelector reports whether r selects a glyph's variant.
func variationSelector(r rune) bool {
	return r >= 0xfe00 && r <= 0xfe0f || r >= 0xe0100 && r <= 0xe01ef
}

// noncharacter reports whether r is one of Unicode's 66 noncharacters.
func noncharacter(r rune) bool {
	return r >= 0xfdd0 && r <= 0xfdef || r&0xfffe == 0xfffe
}

// blank reports whether r shows nothing: a space, a mark or format
// character alone, or a filler.
func blank(r rune) bool {
	switch r {
	case '\u3164', '\u115f', '\u1160', '\uffa0', '\u2800':
		return true
	}
	return unicode.IsSpace(r) || unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf)
}
