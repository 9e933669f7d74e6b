package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// TestExpiredAtExpExactlyWithLeeway: at exp itself a token is expired on
// its first sight too, whatever the leeway (the parser's leeway would
// still take it).
func TestExpiredAtExpExactlyWithLeeway(t *testing.T) {
	c := DefaultConfig().Auth
	c.HS256Secret, c.Leeway = string(authSecret), "30s"
	a := testAuthenticator(t, c)
	atExp := userClaims("alice", jwt.MapClaims{"exp": authNow.Unix()})
	checkAuthenticate(t, a, "Bearer "+signToken(t, jwt.SigningMethodHS256, authSecret, "", atExp), authWant{code: "token_expired"})
}

// TestOverlongTokenRefused: a token over maxTokenLen is refused unparsed,
// even one that would verify.
func TestOverlongTokenRefused(t *testing.T) {
	c := DefaultConfig().Auth
	c.HS256Secret = string(authSecret)
	a := testAuthenticator(t, c)
	long := userClaims("alice", jwt.MapClaims{"exp": authNow.Add(time.Hour).Unix(), "pad": strings.Repeat("x", maxTokenLen)})
	checkAuthenticate(t, a, "Bearer "+signToken(t, jwt.SigningMethodHS256, authSecret, "", long), authWant{code: "invalid_token"})
}

// TestAuthConfigRefusals: a leeway over 5m, and an EC key on a curve other
// than P-256, are configuration errors.
func TestAuthConfigRefusals(t *testing.T) {
	c := DefaultConfig().Auth
	c.HS256Secret, c.Leeway = string(authSecret), "6m"
	_, err := NewAuthenticator(c)
	require.Error(t, err, "a 6m leeway")
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "p384.pem")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600))
	c = DefaultConfig().Auth
	c.PublicKeys = []string{path}
	_, err = NewAuthenticator(c)
	require.ErrorContains(t, err, "P-256", "a P-384 key")
}

// TestNumericDateBeforeYear1: an exp before the year 1 is refused as not a
// time, like one past 9999, not wrapped into another date.
func TestNumericDateBeforeYear1(t *testing.T) {
	c := DefaultConfig().Auth
	c.HS256Secret = string(authSecret)
	a := testAuthenticator(t, c)
	for _, exp := range []float64{-1e30, minNumericDate - 1} {
		tok := userClaims("alice", jwt.MapClaims{"exp": exp})
		checkAuthenticate(t, a, "Bearer "+signToken(t, jwt.SigningMethodHS256, authSecret, "", tok), authWant{code: "invalid_token"})
	}
}

// TestJWKSEncryptionKeyDoesNotVerify: a JWKS key marked "use": "enc" is
// skipped; a token signed with it is refused.
func TestJWKSEncryptionKeyDoesNotVerify(t *testing.T) {
	sigKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	encKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwk := func(k *ecdsa.PrivateKey, kid, use string) string {
		b, _ := k.PublicKey.Bytes() // 0x04 || X || Y
		enc := base64.RawURLEncoding.EncodeToString
		return `{"kty":"EC","crv":"P-256","kid":"` + kid + `","use":"` + use + `","x":"` + enc(b[1:33]) + `","y":"` + enc(b[33:]) + `"}`
	}
	path := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"keys":[`+jwk(sigKey, "s", "sig")+`,`+jwk(encKey, "e", "enc")+`]}`), 0o600))
	c := DefaultConfig().Auth
	c.JWKSFile = path
	a := testAuthenticator(t, c)
	claims := userClaims("alice", nil)
	checkAuthenticate(t, a, "Bearer "+signToken(t, jwt.SigningMethodES256, sigKey, "s", claims), authWant{sub: "alice"})
	checkAuthenticate(t, a, "Bearer "+signToken(t, jwt.SigningMethodES256, encKey, "e", claims), authWant{code: "invalid_token"})
}

// TestNumericDateExact: a claim's time counts to the nanosecond as written
// in decimal, a fraction of one rounding up; a float64 would put an exp of
// x.00000015 at x.000000238 and accept the token 50 ns after it expired.
func TestNumericDateExact(t *testing.T) {
	base := authNow.Unix()
	for _, tc := range []struct {
		claim, value string
		at           time.Duration // past authNow
		code         string
	}{
		{"exp", fmt.Sprintf("%d.00000015", base), 149 * time.Nanosecond, ""},
		{"exp", fmt.Sprintf("%d.00000015", base), 150 * time.Nanosecond, "token_expired"},
		{"exp", fmt.Sprintf("%d.00000015", base), 200 * time.Nanosecond, "token_expired"},
		{"exp", fmt.Sprintf("%d.0000001501", base), 150 * time.Nanosecond, ""}, // 150.1 ns rounds up to 151
		{"exp", fmt.Sprintf("%d00000015e-8", base), 149 * time.Nanosecond, ""},
		{"exp", fmt.Sprintf("%d00000015e-8", base), 150 * time.Nanosecond, "token_expired"},
		{"nbf", fmt.Sprintf("%d.0000001501", base), 150 * time.Nanosecond, "invalid_token"},
		{"nbf", fmt.Sprintf("%d.0000001501", base), 151 * time.Nanosecond, ""},
		{"exp", "1e1001", 0, "invalid_token"}, // an exponent past any time's: refused unread
		{"exp", "253402300799.5", 0, ""},      // 9999's last second, a fraction into it
		{"exp", "253402300800", 0, "invalid_token"},
		{"exp", fmt.Sprintf("%d.%s", base+3600, strings.Repeat("0", 53)), 0, ""},              // 64 characters
		{"exp", fmt.Sprintf("%d.%s", base+3600, strings.Repeat("0", 54)), 0, "invalid_token"}, // 65: more than any time needs
	} {
		t.Run(tc.claim+"="+tc.value+"@"+tc.at.String(), func(t *testing.T) {
			a := testAuthenticator(t, AuthConfig{HS256Secret: string(authSecret), Leeway: "0s"})
			a.now = func() time.Time { return authNow.Add(tc.at) }
			claims := userClaims("alice", jwt.MapClaims{"exp": base + 3600})
			claims[tc.claim] = json.Number(tc.value)
			want := authWant{code: tc.code}
			if tc.code == "" {
				want.sub = "alice"
			}
			checkAuthenticate(t, a, "Bearer "+signToken(t, jwt.SigningMethodHS256, authSecret, "", claims), want)
		})
	}
}
