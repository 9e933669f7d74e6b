package entitlements

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTokenIsUUIDv5(t *testing.T) {
	// RFC 4122 / Python's uuid.uuid5(uuid.NAMESPACE_DNS, "www.example.com").
	d, err := NewTokenDeriver("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
	require.NoError(t, err)
	require.Equal(t, "2ed6657d-e927-568b-95e1-2665a8aea6a2", d.Token("www.example.com"))

	def, err := NewTokenDeriver(DefaultTokenNamespace)
	require.NoError(t, err)
	require.Equal(t, def.Token("alice"), def.Token("alice"), "stable")
	require.NotEqual(t, def.Token("alice"), def.Token("bob"))
	require.NotEqual(t, def.Token("alice"), d.Token("alice"), "the namespace matters")

	_, err = NewTokenDeriver("not-a-uuid")
	require.Error(t, err)
}

func TestNormalizeToken(t *testing.T) {
	require.Equal(t, "2ed6657d-e927-568b-95e1-2665a8aea6a2", NormalizeToken("2ED6657D-E927-568B-95E1-2665A8AEA6A2"))
	require.Equal(t, "", NormalizeToken(""))
	for _, bad := range []string{"2ed6657d-e927-568b-95e1-2665a8aea6aZ", "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaa-a-", "not-a-uuid"} {
		require.Equal(t, bad, NormalizeToken(bad), "a malformed token matches no user, and is not token-less")
	}
}

func TestValidUserID(t *testing.T) {
	for _, ok := range []string{"alice", "a", "user-1_2.3@x:y", strings.Repeat("a", 128)} {
		require.True(t, ValidUserID(ok), ok)
	}
	for _, bad := range []string{"", strings.Repeat("a", 129), "a b", "a/b", "é", "a\x00", "../x"} {
		require.False(t, ValidUserID(bad), bad)
	}
}

// FuzzNormalizeToken: the token comes from signed data and from the network;
// it never panics, and what it gives back is the canonical form of a UUID or
// the input itself.
func FuzzNormalizeToken(f *testing.F) {
	for _, s := range []string{"", "2ED6657D-E927-568B-95E1-2665A8AEA6A2", "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaa-a-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := NormalizeToken(s)
		if got != s && got != strings.ToLower(s) {
			t.Fatalf("NormalizeToken(%q) = %q: neither the input nor its lower case", s, got)
		}
		if again := NormalizeToken(got); again != got {
			t.Fatalf("NormalizeToken(%q) = %q, then %q", s, got, again)
		}
	})
}
