package entitlements

import (
	"unicode"
	"unicode/utf8"
)

// Printable reports whether s is free audit text (a grant's or a tier
// change's reason) that cannot forge or reorder what people and tools read
// of it: no control character (a newline forges a line), no line or
// paragraph separator, no bidirectional embedding, override or isolate (a
// right-to-left override reverses what follows), no interlinear
// annotation (which hides the text it annotates), no private-use character
// or noncharacter, and no U+FFFD, which invalid UTF-8 decodes to. Every
// language and emoji is text, with the format characters their spelling
// needs: the joiners of Persian, Indic scripts and emoji, the zero-width
// space that breaks Thai and Khmer words, Mongolian's vowel separator,
// Arabic's signs, the direction marks of Hebrew. (Two reviews found that
// a stricter rule refused those, and still let invisible text through:
// where a name must not pose as another, see ServiceName.)
func Printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Co) ||
			noncharacter(r) || bidiEmbedding(r) || r >= '\ufff9' && r <= '\ufffb' {
			return false
		}
	}
	return true
}

// ServiceName reports whether s may name a calling service in the ledger's
// actor: printable ASCII, with spaces only between words, so that no name
// can pose as another with an invisible or look-alike character, or with
// a space before or after it ("ops " shows as ops), and none is blank.
func ServiceName(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// bidiEmbedding reports whether r is one of Unicode's explicit
// directional embeddings, overrides and isolates (UAX #9), which reorder
// the text after them; the marks (LRM, RLM, ALM) reorder nothing.
func bidiEmbedding(r rune) bool {
	return r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069'
}

// noncharacter reports whether r is one of Unicode's 66 noncharacters.
func noncharacter(r rune) bool {
	return r >= 0xfdd0 && r <= 0xfdef || r&0xfffe == 0xfffe
}
