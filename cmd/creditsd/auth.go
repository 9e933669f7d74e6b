package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/creditsd/creditsd/entitlements"
)

// Authenticator verifies the bearer JWTs of API calls with the keys of
// AuthConfig. Each key type admits exactly one algorithm, and only the
// algorithms of configured keys are accepted: an HS256 token never meets
// an RSA key, which defeats alg confusion, and alg none never verifies.
type Authenticator struct {
	secret   []byte  // HS256; nil when public keys are configured
	keys     keyring // ES256 and RS256 keys
	issuer   string
	audience string
	parser   *jwt.Parser
	leeway   time.Duration
	verified *verifiedTokens
	now      func() time.Time // the parser's clock; tests replace it
}

// maxTokenLen bounds what we hand the JWT parser.
const maxTokenLen = 8 << 10

// minSecretLen is the contract's minimum HS256 secret: 256 bits.
const minSecretLen = 32

// NewAuthenticator loads the keys c names. Its errors are *ConfigError
// naming the auth key at fault.
func NewAuthenticator(c AuthConfig) (*Authenticator, error) {
	leeway, err := time.ParseDuration(c.Leeway)
	if err != nil || leeway < 0 || leeway > 5*time.Minute {
		// A long leeway would accept tokens minted far in the future.
		return nil, keyErrorf("auth.leeway", "%q: want a duration from 0s to 5m", c.Leeway)
	}
	asymmetric := len(c.PublicKeys) > 0 || c.JWKSFile != ""
	if countTrue(c.HS256Secret != "", c.HS256SecretFile != "", asymmetric) != 1 {
		return nil, keyErrorf("auth", "set exactly one of hs256_secret, hs256_secret_file, or public_keys and/or jwks_file")
	}
	a := &Authenticator{issuer: c.Issuer, audience: c.Audience, leeway: leeway, verified: newVerifiedTokens(),
		now: time.Now}
	var methods []string
	if asymmetric {
		if a.keys, err = loadKeyring(c.PublicKeys, c.JWKSFile); err != nil {
			return nil, err
		}
		methods = a.keys.methods()
	} else {
		if a.secret, err = loadSecret(c); err != nil {
			return nil, err
		}
		methods = []string{jwt.SigningMethodHS256.Alg()}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		// One spelling a token: base64url's unused bits must be zero, as
		// for Apple's JWS (receipts), so a token has one text to remember.
		jwt.WithStrictDecoding(),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(func() time.Time { return a.now() }),
	}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience))
	}
	a.parser = jwt.NewParser(opts...)
	return a, nil
}

func countTrue(conds ...bool) int {
	n := 0
	for _, c := range conds {
		if c {
			n++
		}
	}
	return n
}

// loadSecret reads the HS256 secret. A file's trailing newline is not part
// of the secret: editors and `echo` add one.
func loadSecret(c AuthConfig) ([]byte, error) {
	key, secret := "auth.hs256_secret", c.HS256Secret
	if c.HS256SecretFile != "" {
		key = "auth.hs256_secret_file"
		data, err := readSecretFile(key, c.HS256SecretFile)
		if err != nil {
			return nil, err
		}
		secret = strings.TrimRight(string(data), "\r\n")
	}
	if len(secret) < minSecretLen {
		return nil, keyErrorf(key, "the secret is %d bytes; want at least %d", len(secret), minSecretLen)
	}
	return []byte(secret), nil
}

// Authenticate verifies the request's bearer token and returns its caller.
// Failures are *entitlements.Error of KindUnauthenticated with code
// missing_token, invalid_token or token_expired; their details never
// repeat the token.
func (a *Authenticator) Authenticate(r *http.Request) (entitlements.Caller, error) {
	if len(r.Header["Authorization"]) > 1 {
		// A proxy that reads the last one and we the first would not agree
		// on who is calling.
		return entitlements.Caller{}, unauthenticated("invalid_token", "send one Authorization header, not several")
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return entitlements.Caller{}, unauthenticated("missing_token", "an Authorization: Bearer token is required")
	}
	if len(token) > maxTokenLen {
		return entitlements.Caller{}, unauthenticated("invalid_token", "the bearer token is too long")
	}
	key, now := sha256.Sum256([]byte(token)), a.now()
	if caller, ok := a.verified.caller(key, now); ok {
		return caller, nil
	}
	var claims receivedClaims
	if _, err := a.parser.ParseWithClaims(token, &claims, a.key); err != nil {
		return entitlements.Caller{}, tokenError(err)
	}
	until := a.validUntil(&claims)
	if !now.Before(until) { // the parser's one leeway covers exp too; ours does not
		return entitlements.Caller{}, tokenError(jwt.ErrTokenExpired)
	}
	caller, err := newCaller(claims.Subject, claims.Scope)
	if err != nil {
		return entitlements.Caller{}, unauthenticated("invalid_token", "%s", err)
	}
	a.verified.remember(key, verifiedToken{caller: caller, from: a.validFrom(&claims), until: until}, now)
	return caller, nil
}

// validFrom and validUntil bound the times at which a token with these
// claims is accepted: not before nbf or iat less the leeway (an issuer's
// clock may run ahead of ours), and strictly before exp. The contract
// refuses an expired token, so the leeway never extends exp.
func (a *Authenticator) validFrom(c *receivedClaims) time.Time {
	var from time.Time
	bounded := false
	for _, d := range []*jwt.NumericDate{c.NotBefore.date, c.IssuedAt.date} {
		if d != nil && (!bounded || d.Add(-a.leeway).After(from)) {
			from, bounded = d.Add(-a.leeway), true
		}
	}
	return from
}

func (a *Authenticator) validUntil(c *receivedClaims) time.Time {
	return c.ExpiresAt.date.Time // exp is required: the parser refused a token without it
}

// newCaller is the caller a token's sub and scope name, if both follow
// the contract's rules.
func newCaller(sub, scope string) (entitlements.Caller, error) {
	if err := checkScope(scope); err != nil {
		return entitlements.Caller{}, err
	}
	c := entitlements.NewCaller(sub, scope)
	return c, checkSubject(c)
}

// checkSubject applies the contract's rules to sub: a user token's sub is
// a user id; a service token's names the service for the audit trail, in
// 1 to 128 characters of printable ASCII: a control or format character (a
// NUL, a newline, a right-to-left override) forged the trail's lines, and
// an invisible or look-alike one let a name pose as another.
func checkSubject(c entitlements.Caller) error {
	if c.Service() {
		if len(c.Subject) > entitlements.MaxUserIDLen || !entitlements.ServiceName(c.Subject) { // ServiceName refuses ""
			return errors.New("a service token's sub must be 1 to 128 printable ASCII characters")
		}
		return nil
	}
	if !entitlements.ValidUserID(c.Subject) {
		return errors.New("the token's sub is not a valid user id")
	}
	return nil
}

// key picks the verification key by the token's algorithm family, and
// among public keys by kid. A token whose header has crit gets none.
func (a *Authenticator) key(t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		// RFC 7515 §4.1.11: a recipient must refuse a JWS whose crit lists
		// extensions it does not understand, and we understand none. The
		// library ignores crit, so a token relying on one would pass.
		return nil, errCritHeader
	}
	kid, _ := t.Header["kid"].(string)
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if a.secret != nil {
			return a.secret, nil
		}
	case *jwt.SigningMethodECDSA:
		return pickKey(a.keys.ec, kid)
	case *jwt.SigningMethodRSA:
		return pickKey(a.keys.rsa, kid)
	}
	return nil, errNoKey
}

var (
	errNoKey      = errors.New("no key for this token")
	errCritHeader = errors.New("a crit header")
)

// tokenError maps a parse failure to a safe client error.
func tokenError(err error) error {
	detail := "the bearer token is not valid"
	switch {
	case errors.Is(err, errCritHeader): // before ErrTokenUnverifiable, which wraps it
		detail = "the bearer token's header lists critical extensions (crit), which are not supported"
	case errors.Is(err, jwt.ErrTokenExpired):
		return unauthenticated("token_expired", "the bearer token has expired")
	case errors.Is(err, jwt.ErrTokenMalformed):
		detail = "the bearer token is malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		detail = "the bearer token's signature or algorithm is not accepted"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		detail = "the bearer token has no exp claim"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		detail = "the bearer token is not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer), errors.Is(err, jwt.ErrTokenInvalidAudience):
		detail = "the bearer token is for another issuer or audience"
	}
	return unauthenticated("invalid_token", "%s", detail)
}

func unauthenticated(code, format string, args ...any) *entitlements.Error {
	return entitlements.Errorf(entitlements.KindUnauthenticated, code, format, args...)
}

// Middleware lets through requests with a valid bearer token, with the
// caller in their context, and answers the others 401 problem+json.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, err := a.Authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", challenge(err))
			entitlements.WriteError(w, r, nil, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(entitlements.WithCaller(r.Context(), caller)))
	})
}

// challenge follows RFC 6750: no error code when no token was sent.
func challenge(err error) string {
	if entitlements.ErrorCode(err) == "missing_token" {
		return `Bearer realm="creditsd"`
	}
	return `Bearer realm="creditsd", error="invalid_token"`
}

// Mint signs an HS256 token for sub with scope ("" for a user token),
// valid for ttl from now. It is for `creditsd token` and tests; it needs
// the HS256 secret.
func (a *Authenticator) Mint(sub, scope string, ttl time.Duration, now time.Time) (string, error) {
	if a.secret == nil {
		return "", errors.New("auth: minting a token needs auth.hs256_secret or auth.hs256_secret_file")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("auth: token lifetime %s: want a positive duration", ttl)
	}
	if _, err := newCaller(sub, scope); err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	claims := tokenClaims{Scope: scope, RegisteredClaims: jwt.RegisteredClaims{
		Subject:   sub,
		Issuer:    a.issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(ceilSecond(now.Add(ttl))),
	}}
	if a.audience != "" {
		claims.Audience = jwt.ClaimStrings{a.audience}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(a.secret)
}

// unboundWarning is what serve warns at start when public keys verify the
// tokens and no auth.audience binds them to creditsd: public keys are
// usually an identity provider's, shared by other apps and APIs, and then
// a token it signs for any of them (an ID token, a third party's access
// token) is a creditsd token for its sub.
func (c AuthConfig) unboundWarning() string {
	if len(c.PublicKeys) == 0 && c.JWKSFile == "" || c.Audience != "" {
		return ""
	}
	return "auth.audience is not set, so a token the identity provider signed for any audience is accepted: " +
		"set it to the aud your issuer puts in creditsd's tokens"
}

// ceilSecond is t rounded up to a whole second: a NumericDate is written
// in whole seconds, and rounded down a token lived up to a second less
// than asked (a --ttl of 100ms minted one already expired).
func ceilSecond(t time.Time) time.Time {
	if s := t.Truncate(time.Second); s.Before(t) {
		return s.Add(time.Second)
	}
	return t
}

// keyring holds the public keys, by the one algorithm each admits.
type keyring struct {
	ec, rsa []publicKey // ES256 (P-256), RS256
}

type publicKey struct {
	kid string // from the JWKS; "" for a PEM file
	key any    // *ecdsa.PublicKey or *rsa.PublicKey
}

func loadKeyring(pemFiles []string, jwksFile string) (keyring, error) {
	var k keyring
	for i, path := range pemFiles {
		if err := k.addPEM(path); err != nil {
			return k, keyErrorf(fmt.Sprintf("auth.public_keys[%d]", i), "%s: %w", path, err)
		}
	}
	if jwksFile != "" {
		if err := k.addJWKS(jwksFile); err != nil {
			return k, keyErrorf("auth.jwks_file", "%s: %w", jwksFile, err)
		}
	}
	return k, nil
}

func (k keyring) methods() []string {
	var m []string
	if len(k.ec) > 0 {
		m = append(m, jwt.SigningMethodES256.Alg())
	}
	if len(k.rsa) > 0 {
		m = append(m, jwt.SigningMethodRS256.Alg())
	}
	return m
}

// minRSABits is the smallest RSA modulus that verifies RS256 tokens.
const minRSABits = 2048

// add files key under its algorithm, refusing curves and sizes that are
// not ES256 or a safe RS256.
func (k *keyring) add(key any, kid string) error {
	switch key := key.(type) {
	case *ecdsa.PublicKey:
		if key.Curve != elliptic.P256() {
			return fmt.Errorf("an EC key on %s; want P-256", key.Curve.Params().Name)
		}
		k.ec = append(k.ec, publicKey{kid, key})
	case *rsa.PublicKey:
		// By the modulus's bits: Size rounds up to whole bytes, so it
		// would take a 2041-bit key for 2048.
		if bits := key.N.BitLen(); bits < minRSABits {
			return fmt.Errorf("a %d-bit RSA key; want at least %d bits", bits, minRSABits)
		}
		k.rsa = append(k.rsa, publicKey{kid, key})
	default:
		return fmt.Errorf("a %T; want an ECDSA P-256 or RSA public key", key)
	}
	return nil
}

// pickKey returns the key whose kid the token names, else every key without
// a kid (PEM files), or all keys when the token names none.
func pickKey(keys []publicKey, kid string) (any, error) {
	var set jwt.VerificationKeySet
	for _, k := range keys {
		if kid != "" && k.kid == kid {
			return k.key, nil
		}
		if kid == "" || k.kid == "" {
			set.Keys = append(set.Keys, k.key)
		}
	}
	if len(set.Keys) == 0 {
		return nil, errNoKey
	}
	return set, nil
}

// addPEM reads PUBLIC KEY (PKIX) and RSA PUBLIC KEY (PKCS #1) blocks. Any
// other block, a private key above all, is refused, not skipped.
func (k *keyring) addPEM(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	found := false
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		var key any
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		default:
			return fmt.Errorf("a PEM %q block; want PUBLIC KEY", block.Type)
		}
		if err == nil {
			err = k.add(key, "")
		}
		if err != nil {
			return err
		}
		found = true
	}
	if !found {
		return errors.New("no PEM public key found")
	}
	return nil
}

// jwk is the part of an RFC 7517 key we read.
type jwk struct {
	Kty, Crv, X, Y, N, E, Kid, Use, Alg string
}

// addJWKS reads {"keys": [...]} of EC P-256 and RSA keys. Keys marked for
// encryption are skipped; an IdP's JWKS may hold them.
func (k *keyring) addJWKS(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var set struct{ Keys []jwk }
	if err := json.Unmarshal(data, &set); err != nil {
		return fmt.Errorf("not a JWKS: %w", err)
	}
	n := 0
	for i, j := range set.Keys {
		if j.Use == "enc" {
			continue
		}
		key, err := j.publicKey()
		if err == nil {
			err = k.add(key, j.Kid)
		}
		if err != nil {
			return fmt.Errorf("keys[%d] (kid %q): %w", i, j.Kid, err)
		}
		n++
	}
	if n == 0 {
		return errors.New("no signing key found")
	}
	return nil
}

func (j jwk) publicKey() (any, error) {
	b64 := base64.RawURLEncoding
	switch {
	case j.Kty == "EC" && j.Crv == "P-256" && (j.Alg == "" || j.Alg == "ES256"):
		x, errX := b64.DecodeString(j.X)
		y, errY := b64.DecodeString(j.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, errors.New("x and y must be 32 bytes of base64url")
		}
		return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	case j.Kty == "RSA" && (j.Alg == "" || j.Alg == "RS256"):
		n, errN := b64.DecodeString(j.N)
		e, errE := b64.DecodeString(j.E)
		if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("n and e must be base64url big-endian integers")
		}
		exp := new(big.Int).SetBytes(e)
		if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > 1<<31-1 {
			return nil, errors.New("e is not a usable RSA exponent")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}, nil
	}
	return nil, fmt.Errorf("kty %q crv %q alg %q: want EC P-256 (ES256) or RSA (RS256)", j.Kty, j.Crv, j.Alg)
}
