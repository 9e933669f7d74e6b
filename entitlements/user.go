package entitlements

import (
	"crypto/sha1"
	"fmt"
	"strings"
)

// DefaultTokenNamespace is the UUID namespace under which app_account_token
// is derived from a user id unless the config names another. Changing it
// changes every user's token, so it is fixed for the life of a deployment.
const DefaultTokenNamespace = "5c2a4f6e-6f0b-4d59-9a3e-1f6a3c2b9d10"

// MaxUserIDLen bounds a user id, as the contract says.
const MaxUserIDLen = 128

// ValidUserID reports whether id is 1–128 letters, digits, '-', '_', '.', '@' or ':'.
func ValidUserID(id string) bool {
	if len(id) == 0 || len(id) > MaxUserIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == '@' || c == ':':
		default:
			return false
		}
	}
	return true
}

// TokenDeriver derives a user's app_account_token: a UUID v5 of the user id
// under a namespace. The app passes it to StoreKit when it buys, so a purchase
// names its buyer even if it reaches us before the user ever called creditsd.
type TokenDeriver struct{ ns [16]byte }

// NewTokenDeriver parses the namespace UUID.
func NewTokenDeriver(namespace string) (TokenDeriver, error) {
	ns, err := parseUUID(namespace)
	if err != nil {
		return TokenDeriver{}, fmt.Errorf("token namespace: %w", err)
	}
	return TokenDeriver{ns: ns}, nil
}

// Token is the app_account_token of userID, in lower case.
func (d TokenDeriver) Token(userID string) string {
	h := sha1.New()
	h.Write(d.ns[:])
	h.Write([]byte(userID))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return formatUUID(u)
}

// NormalizeToken lower-cases a UUID the way Token writes it; StoreKit may send
// upper case. A malformed token is kept as sent: it matches no user's token,
// so its transaction is nobody's to claim. Normalizing it to "" would make
// it token-less, which its first claimant may take.
func NormalizeToken(s string) string {
	u, err := parseUUID(s)
	if err != nil {
		return s
	}
	return formatUUID(u)
}

// IsToken says whether s is a UUID as NormalizeToken keeps it: a token
// some user may hold, now or at their first call.
func IsToken(s string) bool {
	_, err := parseUUID(s)
	return err == nil
}

func parseUUID(s string) ([16]byte, error) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("%q is not a UUID", s)
	}
	hex := strings.ReplaceAll(s, "-", "")
	if len(hex) != 32 { // a dash elsewhere too: indexing 32 digits would panic
		return u, fmt.Errorf("%q is not a UUID", s)
	}
	for i := range u {
		hi, ok1 := hexVal(hex[2*i])
		lo, ok2 := hexVal(hex[2*i+1])
		if !ok1 || !ok2 {
			return u, fmt.Errorf("%q is not a UUID", s)
		}
		u[i] = hi<<4 | lo
	}
	return u, nil
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func formatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
