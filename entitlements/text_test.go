package entitlements

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Audit text prints: letters, marks, numbers, punctuation, symbols and
// spaces, in any script. A service's name and a grant's reason took a
// right-to-left override, a line separator or a private-use character.
func TestPrintable(t *testing.T) {
	for _, s := range []string{"goodwill", "Sora backend (eu-west/2)", "rembourser à l'amiable", "日本語 テスト", "emoji 🎬", "a\u00a0b", ""} {
		require.True(t, Printable(s), "%q", s)
	}
	for _, s := range []string{"a\x00b", "a\nb", "a\tb", "svc\u202e", "svc\u200b", "svc\u2028user:mallory", "svc\u2029",
		"\ue000", "\u0378", "a\xffb", "\ufffd"} {
		require.False(t, Printable(s), "%q", s)
	}
}
