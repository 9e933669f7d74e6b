package entitlements

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Audit text cannot forge or hide what is read of it, and any language or
// emoji is text. A service's name and a grant's reason took a
// right-to-left override or a line separator; a first rule
// (unicode.IsGraphic) then refused the joiners of Persian, Devanagari and
// emoji, the soft hyphen, flags' tags and emoji newer than Go's tables; a
// second let invisible format characters, tag smuggling, variation
// selector runs, mark floods and blank-only text through.
func TestPrintable(t *testing.T) {
	for _, s := range []string{"goodwill", "Sora backend (eu-west/2)", "rembourser à l'amiable", "日本語 テスト", "emoji 🎬",
		"a\u00a0b", "", "👨\u200d👩\u200d👧", "🏳️\u200d🌈", "می\u200cخواهم", "क्\u200dष",
		"🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f", "soft\u00adhyphen", "🫩", "e\u0301", "👍🏽", "❤️",
		"\u0378", "ᄀ\u1160", "a" + strings.Repeat("\u0301", 30), "한국어 환불"} {
		require.True(t, Printable(s), "%q", s)
	}
	for _, s := range []string{"a\x00b", "a\nb", "a\tb", "a\u0085b", "a\vb", "a\fb", "svc\u202e", "svc\u202a", "svc\u2066",
		"svc\u200f", "svc\u061c", "svc\u2028user:mallory", "svc\u2029", "\ue000", "\U000f0000", "a\xffb", "\ufffd",
		"svc\u200b", "svc\u2060", "\ufeffsvc", "pay\ufff9hidden\ufffaann\ufffb", "goodwill\U000e0069\U000e0067\U000e006e",
		"x\U000e0100\U000e0141", "x\ufe0f\ufe0f", "a" + strings.Repeat("\u0301", 31), "\ufffe", "\ufdd0", "\U0010ffff",
		"\u3164", "\u200d", "\u2800\u2800", " "} {
		require.False(t, Printable(s), "%q", s)
	}
}
