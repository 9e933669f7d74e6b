package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
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
	if _, err := NewAuthenticator(c); err == nil {
		t.Fatal("a 6m leeway was accepted")
	}
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "p384.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	c = DefaultConfig().Auth
	c.PublicKeys = []string{path}
	if _, err := NewAuthenticator(c); err == nil || !strings.Contains(err.Error(), "P-256") {
		t.Fatalf("a P-384 key: %v", err)
	}
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
	if err := os.WriteFile(path, []byte(`{"keys":[`+jwk(sigKey, "s", "sig")+`,`+jwk(encKey, "e", "enc")+`]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig().Auth
	c.JWKSFile = path
	a := testAuthenticator(t, c)
	claims := userClaims("alice", nil)
	checkAuthenticate(t, a, "Bearer "+signToken(t, jwt.SigningMethodES256, sigKey, "s", claims), authWant{sub: "alice"})
	checkAuthenticate(t, a, "Bearer "+signToken(t, jwt.SigningMethodES256, encKey, "e", claims), authWant{code: "invalid_token"})
}
