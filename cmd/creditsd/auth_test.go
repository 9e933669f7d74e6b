package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
)

var (
	authNow    = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	authSecret = []byte("0123456789abcdef0123456789abcdef")
)

// authKeys are the signing keys of the test authenticators.
type authKeys struct {
	rsa         *rsa.PrivateKey
	rsaPEM      []byte // the public key, as an attacker would find it
	ecA, ecB    *ecdsa.PrivateKey
	hs, rsaOnly *Authenticator // HS256 only; RS256 only (PEM file)
	jwks        *Authenticator // ES256 keys "a" and "b" from a JWKS
}

func newAuthKeys(t *testing.T) authKeys {
	t.Helper()
	var k authKeys
	var err error
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	k.ecA, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	k.ecB, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	require.NoError(t, err)
	k.rsaPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	dir := t.TempDir()
	rsaFile, jwksFile := filepath.Join(dir, "rsa.pem"), filepath.Join(dir, "jwks.json")
	require.NoError(t, os.WriteFile(rsaFile, k.rsaPEM, 0o600))
	require.NoError(t, os.WriteFile(jwksFile, ecJWKS(t, map[string]*ecdsa.PrivateKey{"a": k.ecA, "b": k.ecB}), 0o600))

	k.hs = testAuthenticator(t, AuthConfig{HS256Secret: string(authSecret), Leeway: "30s"})
	k.rsaOnly = testAuthenticator(t, AuthConfig{PublicKeys: []string{rsaFile}, Leeway: "30s"})
	k.jwks = testAuthenticator(t, AuthConfig{JWKSFile: jwksFile, Leeway: "30s"})
	return k
}

func testAuthenticator(t *testing.T, c AuthConfig) *Authenticator {
	t.Helper()
	a, err := NewAuthenticator(c)
	require.NoError(t, err)
	a.now = func() time.Time { return authNow }
	return a
}

func ecJWKS(t *testing.T, keys map[string]*ecdsa.PrivateKey) []byte {
	t.Helper()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	for kid, k := range keys {
		b, err := k.PublicKey.Bytes()
		require.NoError(t, err)
		enc := base64.RawURLEncoding.EncodeToString
		set.Keys = append(set.Keys, map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "x": enc(b[1:33]), "y": enc(b[33:])})
	}
	data, err := json.Marshal(set)
	require.NoError(t, err)
	return data
}

// signToken signs claims; kid "" leaves the header without one.
func signToken(t *testing.T, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	header := map[string]any{}
	if kid != "" {
		header["kid"] = kid
	}
	return signWithHeader(t, m, key, header, claims)
}

// signWithHeader is signToken with extra header parameters.
func signWithHeader(t *testing.T, m jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// userClaims are valid user claims for sub, with changes applied.
func userClaims(sub string, changes jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{"sub": sub, "iat": authNow.Unix(), "exp": authNow.Add(time.Hour).Unix()}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func TestAuthenticate(t *testing.T) {
	k := newAuthKeys(t)
	hs := func(c jwt.MapClaims) string {
		return "Bearer " + signToken(t, jwt.SigningMethodHS256, authSecret, "", c)
	}
	es := func(key *ecdsa.PrivateKey, kid string) string {
		return "Bearer " + signToken(t, jwt.SigningMethodES256, key, kid, userClaims("alice", nil))
	}
	// crit signs valid claims under a header with crit, which RFC 7515
	// §4.1.11 has a recipient refuse unless it understands every listed
	// extension: creditsd understands none.
	crit := func(m jwt.SigningMethod, key any, header map[string]any) string {
		return "Bearer " + signWithHeader(t, m, key, header, userClaims("alice", nil))
	}
	issued := testAuthenticator(t, AuthConfig{HS256Secret: string(authSecret), Leeway: "0s", Issuer: "https://id.example.com", Audience: "creditsd"})
	tests := []struct {
		name     string
		auth     *Authenticator
		header   string
		wantSub  string // "" when the call must fail
		service  bool
		wantCode string
	}{
		{"UserToken", k.hs, hs(userClaims("alice@example.com", nil)), "alice@example.com", false, ""},
		{"ServiceToken", k.hs, hs(userClaims("generation-backend/1", jwt.MapClaims{"scope": "credits:spend"})), "generation-backend/1", true, ""},
		{"LowerCaseScheme", k.hs, strings.Replace(hs(userClaims("alice", nil)), "Bearer", "bearer", 1), "alice", false, ""},
		{"ExpiredWithinLeeway", k.hs, hs(userClaims("alice", jwt.MapClaims{"exp": authNow.Add(-20 * time.Second).Unix()})), "", false, "token_expired"},
		{"IssuedAheadWithinLeeway", k.hs, hs(userClaims("alice", jwt.MapClaims{"iat": authNow.Add(20 * time.Second).Unix()})), "alice", false, ""},
		{"ValidFromAheadWithinLeeway", k.hs, hs(userClaims("alice", jwt.MapClaims{"nbf": authNow.Add(20 * time.Second).Unix()})), "alice", false, ""},
		{"Expired", k.hs, hs(userClaims("alice", jwt.MapClaims{"exp": authNow.Add(-time.Minute).Unix()})), "", false, "token_expired"},
		{"NoExp", k.hs, hs(userClaims("alice", jwt.MapClaims{"exp": nil})), "", false, "invalid_token"},
		{"HugeExp", k.hs, hs(userClaims("alice", jwt.MapClaims{"exp": 1e30})), "", false, "invalid_token"},
		{"MaxInt64Exp", k.hs, hs(userClaims("alice", jwt.MapClaims{"exp": int64(math.MaxInt64)})), "", false, "invalid_token"},
		{"LastExp", k.hs, hs(userClaims("alice", jwt.MapClaims{"exp": int64(253402300799)})), "alice", false, ""},
		{"NullExp", k.hs, hs(userClaims("alice", jwt.MapClaims{"exp": json.RawMessage("null")})), "", false, "invalid_token"},
		{"QuotedExp", k.hs, hs(userClaims("alice", jwt.MapClaims{"exp": strconv.FormatInt(authNow.Add(time.Hour).Unix(), 10)})), "", false, "invalid_token"},
		{"QuotedIat", k.hs, hs(userClaims("alice", jwt.MapClaims{"iat": strconv.FormatInt(authNow.Unix(), 10)})), "", false, "invalid_token"},
		{"QuotedNbf", k.hs, hs(userClaims("alice", jwt.MapClaims{"nbf": strconv.FormatInt(authNow.Unix(), 10)})), "", false, "invalid_token"},
		{"ValidFromPastLeewayByAFraction", k.hs, hs(userClaims("alice", jwt.MapClaims{"nbf": float64(authNow.Unix()) + 30.5})), "", false, "invalid_token"},
		{"IssuedPastLeewayByAFraction", k.hs, hs(userClaims("alice", jwt.MapClaims{"iat": float64(authNow.Unix()) + 30.5})), "", false, "invalid_token"},
		{"ExpiresInAFraction", k.hs, hs(userClaims("alice", jwt.MapClaims{"exp": float64(authNow.Unix()) + 0.5})), "alice", false, ""},
		{"ExpiredAFractionAgo", k.hs, hs(userClaims("alice", jwt.MapClaims{"exp": float64(authNow.Unix()) - 0.5})), "", false, "token_expired"},
		{"FractionalExp", k.hs, hs(userClaims("alice", jwt.MapClaims{"exp": float64(authNow.Add(time.Hour).Unix()) + 0.5})), "alice", false, ""},
		{"NotBeforeInFuture", k.hs, hs(userClaims("alice", jwt.MapClaims{"nbf": authNow.Add(time.Hour).Unix()})), "", false, "invalid_token"},
		{"IssuedInFuture", k.hs, hs(userClaims("alice", jwt.MapClaims{"iat": authNow.Add(time.Hour).Unix()})), "", false, "invalid_token"},
		{"AlgNone", k.hs, "Bearer " + signToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", userClaims("alice", nil)), "", false, "invalid_token"},
		{"WrongSecret", k.hs, "Bearer " + signToken(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-00"), "", userClaims("alice", nil)), "", false, "invalid_token"},
		{"HS384", k.hs, "Bearer " + signToken(t, jwt.SigningMethodHS384, authSecret, "", userClaims("alice", nil)), "", false, "invalid_token"},
		{"RS256AgainstSecret", k.hs, "Bearer " + signToken(t, jwt.SigningMethodRS256, k.rsa, "", userClaims("alice", nil)), "", false, "invalid_token"},
		{"RS256", k.rsaOnly, "Bearer " + signToken(t, jwt.SigningMethodRS256, k.rsa, "", userClaims("alice", nil)), "alice", false, ""},
		{"HS256AgainstRSA", k.rsaOnly, hs(userClaims("alice", nil)), "", false, "invalid_token"},
		{"AlgConfusion", k.rsaOnly, "Bearer " + signToken(t, jwt.SigningMethodHS256, k.rsaPEM, "", userClaims("alice", nil)), "", false, "invalid_token"},
		{"ES256ByKid", k.jwks, es(k.ecB, "b"), "alice", false, ""},
		{"ES256WithoutKid", k.jwks, es(k.ecB, ""), "alice", false, ""},
		{"ES256WrongKid", k.jwks, es(k.ecB, "a"), "", false, "invalid_token"},
		{"ES256UnknownKid", k.jwks, es(k.ecA, "c"), "", false, "invalid_token"},
		{"CritHeader", k.hs, crit(jwt.SigningMethodHS256, authSecret, map[string]any{"crit": []string{"urn:example:ext"}, "urn:example:ext": true}), "", false, "invalid_token"},
		{"CritEmpty", k.hs, crit(jwt.SigningMethodHS256, authSecret, map[string]any{"crit": []string{}}), "", false, "invalid_token"},
		{"CritNull", k.hs, crit(jwt.SigningMethodHS256, authSecret, map[string]any{"crit": nil}), "", false, "invalid_token"},
		{"CritHeaderES256", k.jwks, crit(jwt.SigningMethodES256, k.ecA, map[string]any{"kid": "a", "crit": []string{"b64"}, "b64": false}), "", false, "invalid_token"},
		{"Malformed", k.hs, "Bearer not.a.jwt", "", false, "invalid_token"},
		{"SignatureRespelled", k.hs, respell(hs(userClaims("alice", nil))), "", false, "invalid_token"},
		{"ES256SignatureRespelled", k.jwks, respell(es(k.ecB, "b")), "", false, "invalid_token"},
		{"TooLong", k.hs, "Bearer " + strings.Repeat("a", maxTokenLen+1), "", false, "invalid_token"},
		{"MissingHeader", k.hs, "", "", false, "missing_token"},
		{"BasicScheme", k.hs, "Basic YWxpY2U6c2VjcmV0", "", false, "missing_token"},
		{"EmptyBearer", k.hs, "Bearer ", "", false, "missing_token"},
		{"BadUserID", k.hs, hs(userClaims("alice smith", nil)), "", false, "invalid_token"},
		{"NoSub", k.hs, hs(userClaims("", jwt.MapClaims{"sub": nil})), "", false, "invalid_token"},
		{"ServiceSubTooLong", k.hs, hs(userClaims(strings.Repeat("s", 129), jwt.MapClaims{"scope": "credits:admin"})), "", false, "invalid_token"},
		{"ScopeNotString", k.hs, hs(userClaims("alice", jwt.MapClaims{"scope": []string{"credits:admin"}})), "", false, "invalid_token"},
		{"IssuerAndAudience", issued, hs(userClaims("alice", jwt.MapClaims{"iss": "https://id.example.com", "aud": "creditsd"})), "alice", false, ""},
		{"WrongIssuer", issued, hs(userClaims("alice", jwt.MapClaims{"iss": "https://evil.example.com", "aud": "creditsd"})), "", false, "invalid_token"},
		{"WrongAudience", issued, hs(userClaims("alice", jwt.MapClaims{"iss": "https://id.example.com", "aud": "other-app"})), "", false, "invalid_token"},
	}
	// The second pass meets the tokens the first one verified remembered:
	// it must answer every one of them as the full check did.
	for _, pass := range []string{"Parsed", "Remembered"} {
		for _, tt := range tests {
			t.Run(pass+"/"+tt.name, func(t *testing.T) {
				checkAuthenticate(t, tt.auth, tt.header, authWant{tt.wantSub, tt.service, tt.wantCode})
			})
		}
	}
}

// respell writes a token's signature another way that decodes to the same
// bytes, in the bits its last base64url character does not use. Only the
// one spelling a signer writes is accepted: a second would be a second
// token for the same grant (to the remembered tokens, and to any list kept
// by the token's text).
func respell(bearer string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, bearer[len(bearer)-1])
	return bearer[:len(bearer)-1] + string(alphabet[last^1])
}

// Two Authorization headers are refused, even when the first is valid.
func TestAuthenticateOneHeader(t *testing.T) {
	k := newAuthKeys(t)
	r := httptest.NewRequest("GET", "/v1/me/entitlement", nil)
	r.Header.Add("Authorization", "Bearer "+signToken(t, jwt.SigningMethodHS256, authSecret, "", userClaims("alice", nil)))
	_, err := k.hs.Authenticate(r)
	require.NoError(t, err)
	r.Header.Add("Authorization", "Bearer x")
	_, err = k.hs.Authenticate(r)
	require.Equal(t, "invalid_token", entitlements.ErrorCode(err))
}

// An RSA key in a JWKS needs a modulus of 2048 bits: a shorter one stops
// the start, naming its kid. 2041 bits fill the same 256 bytes as 2048.
func TestJWKSRefusesShortRSAKeys(t *testing.T) {
	modulus := func(bits uint) string {
		n := new(big.Int).Lsh(big.NewInt(1), bits-1)
		return base64.RawURLEncoding.EncodeToString(n.Add(n, big.NewInt(1)).Bytes())
	}
	load := func(keys ...map[string]string) error {
		data, err := json.Marshal(map[string]any{"keys": keys})
		require.NoError(t, err)
		path := filepath.Join(t.TempDir(), "jwks.json")
		require.NoError(t, os.WriteFile(path, data, 0o600))
		_, err = NewAuthenticator(AuthConfig{JWKSFile: path, Leeway: "30s"})
		return err
	}
	full := map[string]string{"kty": "RSA", "kid": "full", "n": modulus(2048), "e": "AQAB"}
	short := map[string]string{"kty": "RSA", "kid": "short", "n": modulus(2041), "e": "AQAB"}
	require.NoError(t, load(full))
	err := load(full, short)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "auth.jwks_file", ce.Key)
	require.ErrorContains(t, err, `keys[1] (kid "short"): a 2041-bit RSA key; want at least 2048 bits`)
}

// TestDefaultLeewayRefusesExpiredTokens: with auth as DefaultConfig leaves
// it, a token whose exp passed a second ago is refused at once. The
// contract gives expired tokens 401; the leeway tolerates an issuer's
// clock running ahead (iat, nbf), never a token past its exp.
func TestDefaultLeewayRefusesExpiredTokens(t *testing.T) {
	c := DefaultConfig().Auth
	c.HS256Secret = string(authSecret)
	a := testAuthenticator(t, c)
	expired := userClaims("alice", jwt.MapClaims{"exp": authNow.Add(-time.Second).Unix()})
	checkAuthenticate(t, a, "Bearer "+signToken(t, jwt.SigningMethodHS256, authSecret, "", expired), authWant{code: "token_expired"})
}

// authWant is what a call should authenticate as: sub, and whether it is
// a service; or, when code is set, the 401's code.
type authWant struct {
	sub     string
	service bool
	code    string
}

// checkAuthenticate: a call to a with header gets want.
func checkAuthenticate(t *testing.T, a *Authenticator, header string, want authWant) {
	t.Helper()
	wantSub, service, wantCode := want.sub, want.service, want.code
	r := httptest.NewRequest(http.MethodGet, "/v1/me/entitlement", nil)
	if header != "" {
		r.Header.Set("Authorization", header)
	}
	caller, err := a.Authenticate(r)
	if wantCode == "" {
		require.NoError(t, err)
		require.Equal(t, wantSub, caller.Subject)
		require.Equal(t, service, caller.Service())
		return
	}
	var e *entitlements.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, entitlements.KindUnauthenticated, e.Kind)
	require.Equal(t, wantCode, e.Code, e.Detail)
	if _, token, ok := strings.Cut(header, " "); ok && len(token) > 8 {
		require.NotContains(t, e.Error(), token, "an error must not echo the token")
	}
}

// TestRememberedTokensKeepTheirWindow: a token verified once and then
// presented at any other time gets the answer a full check gives then,
// up to the nanosecond at each edge of nbf and iat (less the leeway) and
// exp (exact).
func TestRememberedTokensKeepTheirWindow(t *testing.T) {
	at := func(d time.Duration) int64 { return authNow.Add(d).Unix() }
	for _, leeway := range []time.Duration{0, 30 * time.Second} {
		for _, tc := range []struct {
			name   string
			claims jwt.MapClaims
			edges  []time.Time // each probed 1 ns before, at, and 1 ns after
		}{
			{"IatAndExp", userClaims("alice", jwt.MapClaims{"iat": at(-time.Minute), "exp": at(time.Hour)}),
				[]time.Time{authNow.Add(-time.Minute - leeway), authNow.Add(time.Hour)}},
			{"NbfAfterIat", userClaims("alice", jwt.MapClaims{"iat": at(-time.Hour), "nbf": at(-time.Minute), "exp": at(time.Hour)}),
				[]time.Time{authNow.Add(-time.Hour - leeway), authNow.Add(-time.Minute - leeway), authNow.Add(time.Hour)}},
			{"IatAfterNbf", userClaims("alice", jwt.MapClaims{"iat": at(-time.Minute), "nbf": at(-time.Hour), "exp": at(time.Hour)}),
				[]time.Time{authNow.Add(-time.Hour - leeway), authNow.Add(-time.Minute - leeway), authNow.Add(time.Hour)}},
			{"ExpOnly", userClaims("alice", jwt.MapClaims{"iat": nil, "exp": at(time.Hour)}), []time.Time{authNow.Add(time.Hour)}},
			{"FractionalExp", userClaims("alice", jwt.MapClaims{"exp": float64(at(time.Hour)) + 0.5}), []time.Time{authNow.Add(time.Hour)}},
		} {
			t.Run(tc.name+"/leeway="+leeway.String(), func(t *testing.T) {
				config := AuthConfig{HS256Secret: string(authSecret), Leeway: leeway.String()}
				header := "Bearer " + signToken(t, jwt.SigningMethodHS256, authSecret, "", tc.claims)
				remembering := testAuthenticator(t, config)
				checkAuthenticate(t, remembering, header, authWant{sub: "alice"}) // verified at authNow, remembered
				for _, edge := range tc.edges {
					for _, now := range []time.Time{edge.Add(-time.Nanosecond), edge, edge.Add(time.Nanosecond)} {
						fresh := testAuthenticator(t, config)
						fresh.now = func() time.Time { return now }
						remembering.now = fresh.now
						want, wantErr := fresh.Authenticate(bearerRequest(header))
						got, gotErr := remembering.Authenticate(bearerRequest(header))
						require.Equal(t, want, got, "at %s", now)
						require.Equal(t, wantErr, gotErr, "at %s", now)
					}
				}
			})
		}
	}
}

// TestRememberedTokenWithAnotherSignature: a token is remembered whole, so
// the same claims under a signature that does not verify still fail.
func TestRememberedTokenWithAnotherSignature(t *testing.T) {
	a := testAuthenticator(t, AuthConfig{HS256Secret: string(authSecret), Leeway: "30s"})
	token := signToken(t, jwt.SigningMethodHS256, authSecret, "", userClaims("alice", nil))
	checkAuthenticate(t, a, "Bearer "+token, authWant{sub: "alice"})
	dot := strings.LastIndex(token, ".") // before the signature
	forged := token[:dot+1] + strings.Repeat("A", len(token)-dot-1)
	require.NotEqual(t, token, forged)
	checkAuthenticate(t, a, "Bearer "+forged, authWant{code: "invalid_token"})
}

// TestRememberedTokenSkipsTheParse: a token sent again is answered from
// memory: with the key it was signed with gone, it still passes, where a
// fresh authenticator refuses it.
func TestRememberedTokenSkipsTheParse(t *testing.T) {
	a := testAuthenticator(t, AuthConfig{HS256Secret: string(authSecret), Leeway: "30s"})
	header := "Bearer " + signToken(t, jwt.SigningMethodHS256, authSecret, "", userClaims("alice", nil))
	checkAuthenticate(t, a, header, authWant{sub: "alice"})
	a.secret = []byte("another-secret-another-secret-00")
	checkAuthenticate(t, a, header, authWant{sub: "alice"})
	fresh := testAuthenticator(t, AuthConfig{HS256Secret: "another-secret-another-secret-00", Leeway: "30s"})
	checkAuthenticate(t, fresh, header, authWant{code: "invalid_token"})
}

// TestVerifiedTokensStayBounded: past maxVerifiedTokens, remembering one
// more forgets another, an expired one when there is one among those it
// looks at.
func TestVerifiedTokensStayBounded(t *testing.T) {
	v := newVerifiedTokens()
	key := func(i int) [sha256.Size]byte { return sha256.Sum256([]byte(strconv.Itoa(i))) }
	for i := range maxVerifiedTokens + 100 {
		v.remember(key(i), verifiedToken{until: authNow.Add(time.Hour)}, authNow)
	}
	require.Len(t, v.tokens, maxVerifiedTokens)
	_, ok := v.caller(key(maxVerifiedTokens+99), authNow)
	require.True(t, ok, "the newest is kept")

	// Fewer live ones than a sample, the rest expired: every sample holds
	// an expired one, so no live one may go, however many more come (each
	// of them expired too). Forgetting at random would lose one nearly
	// always.
	live := map[[sha256.Size]byte]bool{}
	for k := range v.tokens {
		if len(live) < evictionSample-1 {
			live[k] = true
		} else {
			v.tokens[k] = verifiedToken{until: authNow}
		}
	}
	for i := range maxVerifiedTokens {
		v.remember(key(-1-i), verifiedToken{until: authNow}, authNow)
	}
	require.Len(t, v.tokens, maxVerifiedTokens)
	for k := range live {
		_, ok := v.caller(k, authNow)
		require.True(t, ok, "a live token was forgotten while expired ones were kept")
	}
}

func bearerRequest(header string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/me/entitlement", nil)
	r.Header.Set("Authorization", header)
	return r
}

func TestMiddleware(t *testing.T) {
	a := testAuthenticator(t, AuthConfig{HS256Secret: string(authSecret), Leeway: "30s"})
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := entitlements.CallerFrom(r.Context())
		require.True(t, ok)
		_, _ = w.Write([]byte(c.Subject))
	}))
	serve := func(header string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/v1/me/entitlement", nil)
		r.Header.Set("Authorization", header)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	t.Run("OK", func(t *testing.T) {
		token, err := a.Mint("alice", "", time.Minute, authNow)
		require.NoError(t, err)
		w := serve("Bearer " + token)
		require.Equal(t, http.StatusOK, w.Code)
		require.Equal(t, "alice", w.Body.String())
	})
	for _, tt := range []struct{ name, header, code, challenge string }{
		{"Missing", "", "missing_token", `Bearer realm="creditsd"`},
		{"Invalid", "Bearer x.y.z", "invalid_token", `Bearer realm="creditsd", error="invalid_token"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(tt.header)
			require.Equal(t, http.StatusUnauthorized, w.Code)
			require.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
			require.Equal(t, tt.challenge, w.Header().Get("WWW-Authenticate"))
			var p entitlements.Problem
			require.NoError(t, json.NewDecoder(w.Body).Decode(&p))
			require.Equal(t, tt.code, p.Code)
			require.Equal(t, http.StatusUnauthorized, p.Status)
		})
	}
}

func TestMint(t *testing.T) {
	k := newAuthKeys(t)
	t.Run("RoundTripWithIssuerAndAudience", func(t *testing.T) {
		a := testAuthenticator(t, AuthConfig{HS256Secret: string(authSecret), Leeway: "0s", Issuer: "creditsd-test", Audience: "creditsd"})
		token, err := a.Mint("billing", "credits:admin", time.Minute, authNow)
		require.NoError(t, err)
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		c, err := a.Authenticate(r)
		require.NoError(t, err)
		require.Equal(t, entitlements.NewCaller("billing", "credits:admin"), c)
	})
	for _, tt := range []struct {
		name    string
		a       *Authenticator
		sub     string
		ttl     time.Duration
		wantErr string
	}{
		{"NoSecret", k.rsaOnly, "alice", time.Minute, "needs auth.hs256_secret"},
		{"ZeroTTL", k.hs, "alice", 0, "want a positive duration"},
		{"BadUserID", k.hs, "alice smith", time.Minute, "not a valid user id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.a.Mint(tt.sub, "", tt.ttl, authNow)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}
