package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// hsPayload signs payload, a claims object written by hand, with HS256 and
// authSecret: jwt.MapClaims cannot write a name twice or in two cases.
func hsPayload(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	input := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(payload))
	mac := hmac.New(sha256.New, authSecret)
	mac.Write([]byte(input))
	return input + "." + enc(mac.Sum(nil))
}

// A claim is read by its exact name (RFC 7519 §4): encoding/json matched
// names in any case, the last winning, so an issuer's signed custom claim
// "SUB", "Scope", "EXP", "Aud" or "ISS" overrode the real one: another
// user's entitlement, an admin's scope, a token an hour past its exp.
func TestClaimNamesAreCaseSensitive(t *testing.T) {
	k := newAuthKeys(t)
	checked := testAuthenticator(t, AuthConfig{HS256Secret: string(authSecret), Leeway: "0s",
		Issuer: "https://id.example.com", Audience: "creditsd"})
	exp, old := authNow.Add(time.Hour).Unix(), authNow.Add(-time.Hour).Unix()
	for _, tt := range []struct {
		a       *Authenticator
		payload string
		want    authWant
	}{
		{k.hs, fmt.Sprintf(`{"sub":"alice","SUB":"victim","exp":%d}`, exp), authWant{sub: "alice"}},
		{k.hs, fmt.Sprintf(`{"sub":"svc","Scope":"credits:admin","exp":%d}`, exp), authWant{sub: "svc"}},
		{k.hs, fmt.Sprintf(`{"sub":"alice","exp":%d,"EXP":%d}`, old, exp), authWant{code: "token_expired"}},
		{k.hs, fmt.Sprintf(`{"sub":"alice","exp":%d,"EXP":%d}`, exp, old), authWant{sub: "alice"}},
		{checked, fmt.Sprintf(`{"sub":"alice","iss":"https://id.example.com","aud":"other-app","Aud":"creditsd","exp":%d}`, exp),
			authWant{code: "invalid_token"}},
		{checked, fmt.Sprintf(`{"sub":"alice","iss":"https://evil.example","ISS":"https://id.example.com","aud":"creditsd","exp":%d}`, exp),
			authWant{code: "invalid_token"}},
		{checked, fmt.Sprintf(`{"sub":"alice","iss":"https://id.example.com","aud":"creditsd","exp":%d}`, exp), authWant{sub: "alice"}},
		{k.hs, fmt.Sprintf(`{"sub":"bob","sub":"alice","exp":%d}`, exp), authWant{sub: "alice"}}, // a name twice: the last
		{k.hs, fmt.Sprintf(`{"sub":"alice","exp":%d,"nbf":"soon"}`, exp), authWant{code: "invalid_token"}},
	} {
		t.Run(tt.payload, func(t *testing.T) { checkAuthenticate(t, tt.a, "Bearer "+hsPayload(tt.payload), tt.want) })
	}
}

// A scope is split on spaces alone, and holds only what RFC 6749 §3.3
// allows: split on any Unicode space, "profile\u00a0credits:admin", which an
// issuer signed as one scope of its own, read as credits:admin.
func TestScopeIsSplitOnSpacesOnly(t *testing.T) {
	k := newAuthKeys(t)
	exp := authNow.Add(time.Hour).Unix()
	for _, sep := range []string{`\u00a0`, `\t`, `\u2003`, `\n`} {
		payload := fmt.Sprintf(`{"sub":"svc","scope":"profile%scredits:admin","exp":%d}`, sep, exp)
		t.Run(payload, func(t *testing.T) {
			checkAuthenticate(t, k.hs, "Bearer "+hsPayload(payload), authWant{code: "invalid_token"})
		})
	}
	payload := fmt.Sprintf(`{"sub":"svc","scope":"profile  credits:admin","exp":%d}`, exp)
	checkAuthenticate(t, k.hs, "Bearer "+hsPayload(payload), authWant{sub: "svc", service: true})
	_, err := k.hs.Mint("svc", "profile\u00a0credits:admin", time.Minute, authNow)
	require.ErrorContains(t, err, "RFC 6749")
}

// A service token's sub is the ledger's actor: 1 to 128 characters of
// printable ASCII. A NUL, a newline or a right-to-left override in it
// forged what the audit trail showed, and a zero-width space or a
// look-alike letter let one service pose as another.
func TestServiceSubjectPrints(t *testing.T) {
	k := newAuthKeys(t)
	claims := func(sub string) jwt.MapClaims {
		return userClaims(sub, jwt.MapClaims{"scope": "credits:admin"})
	}
	for _, sub := range []string{"sora-backend\u202e", "sora\x00backend", "sora\nuser:mallory", "svc\u2028user:mallory", "\ue000",
		"sora-backend\u200b", "ѕora-backend", "\xff", strings.Repeat("a", 129)} {
		t.Run(fmt.Sprintf("%q", sub), func(t *testing.T) {
			token := signToken(t, jwt.SigningMethodHS256, authSecret, "", claims(sub))
			checkAuthenticate(t, k.hs, "Bearer "+token, authWant{code: "invalid_token"})
			_, err := k.hs.Mint(sub, "credits:admin", time.Minute, authNow)
			require.ErrorContains(t, err, "1 to 128 printable ASCII characters")
		})
	}
	for _, sub := range []string{strings.Repeat("a", 128), "Sora backend (eu-west/2)"} {
		token := signToken(t, jwt.SigningMethodHS256, authSecret, "", claims(sub))
		checkAuthenticate(t, k.hs, "Bearer "+token, authWant{sub: sub, service: true})
	}
}

// A minted token lives at least as long as asked: exp, written in whole
// seconds, was rounded down, and a --ttl of 100ms printed a token that
// had already expired.
func TestMintRoundsExpUp(t *testing.T) {
	k := newAuthKeys(t)
	now := authNow.Add(300 * time.Millisecond)
	token, err := k.hs.Mint("alice", "", 100*time.Millisecond, now)
	require.NoError(t, err)
	var claims jwt.RegisteredClaims
	_, _, err = jwt.NewParser().ParseUnverified(token, &claims)
	require.NoError(t, err)
	require.True(t, authNow.Add(time.Second).Equal(claims.ExpiresAt.Time), "exp %s", claims.ExpiresAt)
	checkAuthenticate(t, k.hs, "Bearer "+token, authWant{sub: "alice"})

	token, err = k.hs.Mint("alice", "", time.Hour, authNow)
	require.NoError(t, err)
	_, _, err = jwt.NewParser().ParseUnverified(token, &claims)
	require.NoError(t, err)
	require.True(t, authNow.Add(time.Hour).Equal(claims.ExpiresAt.Time), "a whole second stays: %s", claims.ExpiresAt)
}

// With public keys (an identity provider's, shared with other apps), serve
// warns when no auth.audience binds the tokens to creditsd; an HS256
// secret is creditsd's own.
func TestUnboundPublicKeysWarn(t *testing.T) {
	require.Empty(t, AuthConfig{HS256Secret: string(authSecret)}.unboundWarning())
	require.Contains(t, AuthConfig{JWKSFile: "idp.json"}.unboundWarning(), "auth.audience is not set")
	require.Contains(t, AuthConfig{PublicKeys: []string{"idp.pem"}}.unboundWarning(), "auth.audience is not set")
	require.Empty(t, AuthConfig{JWKSFile: "idp.json", Audience: "creditsd"}.unboundWarning())
}
