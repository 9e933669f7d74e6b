package serverapi

import (
	"crypto/ecdsa"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// Audience is the aud every App Store Server API token carries.
	Audience = "appstoreconnect-v1"
	// tokenLifetime is well under Apple's 60-minute ceiling: a token
	// serves one attempt of one request, and a leaked one is worth little.
	tokenLifetime = 5 * time.Minute
)

// tokenSource signs the bearer JWT, a new one for each request, as Apple
// asks ("Generate a new signed JWT for each new request"; its own
// libraries do): signing costs microseconds next to the request, and no
// token outlives a rotated key or a clock that stepped back. Safe for
// concurrent use.
type tokenSource struct {
	keyID, issuerID, bundleID string
	key                       *ecdsa.PrivateKey
	now                       func() time.Time
}

func newTokenSource(c Config) *tokenSource {
	return &tokenSource{keyID: c.KeyID, issuerID: c.IssuerID, bundleID: c.BundleID, key: c.PrivateKey, now: c.Now}
}

// get signs a token issued now.
func (s *tokenSource) get() (string, error) {
	iat := time.Unix(s.now().Unix(), 0) // JWT times are whole seconds
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
	return signed, nil
}
