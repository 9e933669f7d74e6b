package entitlements

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Free audit text cannot forge a line or reorder what follows, and every
// language and emoji is text. A grant's reason took a right-to-left
// override or a line separator; stricter rules then refused the joiners of
// Persian, Devanagari and emoji, Thai and Khmer word breaks, Mongolian's
// vowel separator and Arabic's signs.
func TestPrintable(t *testing.T) {
	for _, s := range []string{"goodwill", "rembourser à l'amiable", "日本語 テスト", "emoji 🎬", "a\u00a0b", "a\u202fb", "",
		"👨\u200d👩\u200d👧", "🏳️\u200d🌈", "می\u200cخواهم", "क्\u200dष", "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
		"soft\u00adhyphen", "🫩", "e\u0301", "👍🏽", "❤️", "1️⃣", "ภาษา\u200bไทย", "ខ្មែរ\u200bភាសា", "ᠬᠠᠷ\u180eᠠ", "\u0600١٢",
		"עברית\u200f (123)", "Tiếng Việt", "한국어 환불", strings.Repeat("é", 500)} {
		require.True(t, Printable(s), "%q", s)
	}
	for _, s := range []string{"a\x00b", "a\nb", "a\tb", "a\u0085b", "a\vb", "a\fb", "refund \u202egnp.exe", "svc\u202a", "svc\u2066",
		"svc\u2069", "line\u2028two", "para\u2029", "pay\ufff9hidden\ufffaann\ufffb", "pua \ue000", "\U000f0000", "a\xffb", "\ufffd", "\ufffe", "\ufdd0", "\U0010ffff"} {
		require.False(t, Printable(s), "%q", s)
	}
}

// A service's name is printable ASCII: none can pose as another with an
// invisible character (a zero-width space, a Hangul filler) or a
// look-alike letter.
func TestServiceName(t *testing.T) {
	for _, s := range []string{"sora-backend", "Sora backend (eu-west/2)", "svc@project.iam", "~!"} {
		require.True(t, ServiceName(s), "%q", s)
	}
	for _, s := range []string{"sora-backend\u200b", "svc\u3164", "ѕora-backend", "svc\x00", "svc\n", "svc\x7f", "é",
		"", " ", "ops ", " ops"} {
		require.False(t, ServiceName(s), "%q", s)
	}
}
