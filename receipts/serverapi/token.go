package serverapi

import (
	"crypto/ecdsa"
	"errors"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// Audience is the aud every App Store Server API token carries.
	Audience = "appstoreconnect-v1"
	// tokenLifetime is well under Apple's 60-minute ceiling: a leaked
	// token is worth little, and re-signing costs microseconds.
	tokenLifetime = 5 * time.Minute
	// tokenRefreshBefore re-signs a minute early, so a token never
	// expires in flight, across a retry wait or a skewed clock.
	tokenRefreshBefore = time.Minute
)

// tokenSource signs the bearer JWT and caches it until shortly before it
// expires. Safe for concurrent use.
type tokenSource struct {
	keyID, issuerID, bundleID string
	key                       *ecdsa.PrivateKey
	now                       func() time.Time

	mu       sync.Mutex
	token    string
	iat, exp time.Time
}

func newTokenSource(c Config) *tokenSource {
	return &tokenSource{keyID: c.KeyID, issuerID: c.IssuerID, bundleID: c.BundleID, key: c.PrivateKey, now: c.Now}
}

// get returns the cached token while now lies in [iat, exp-1min), else a
// fresh one. A clock that stepped back before iat also re-signs, since
// Apple refuses tokens issued in the future.
func (s *tokenSource) get() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.token != "" && !now.Before(s.iat) && now.Before(s.exp.Add(-tokenRefreshBefore)) {
		return s.token, nil
	}
	iat := time.Unix(now.Unix(), 0) // JWT times are whole seconds
	exp := iat.Add(tokenLifetime)
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": s.issuerID,
		"iat": iat.Unix(),
		"exp": exp.Unix(),
		// A plain string: jwt.RegisteredClaims would encode a one-element
		// array, which is not what Apple documents.
		"aud": Audience,
		"bid": s.bundleID,
	})
	t.Header["kid"] = s.keyID // NewWithClaims already sets alg ES256 and typ JWT
	signed, err := t.SignedString(s.key)
	if err != nil {
		// The library's error could describe the key; say only what failed.
		return "", errors.New("serverapi: signing the API token failed")
	}
	s.token, s.iat, s.exp = signed, iat, exp
	return signed, nil
}
