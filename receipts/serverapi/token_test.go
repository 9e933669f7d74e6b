package serverapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

func testKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// clock is a settable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock    { return &clock{t: t} }
func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func testTokens(t testing.TB, now func() time.Time) (*tokenSource, *ecdsa.PrivateKey) {
	key := testKey(t)
	return newTokenSource(Config{KeyID: "KEY123", IssuerID: "issuer-uuid", BundleID: "com.example.credits", PrivateKey: key, Now: now}), key
}

// The header and claims are exactly Apple's: nothing missing, nothing extra.
func TestTokenHeaderAndClaims(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	ts, key := testTokens(t, func() time.Time { return now })
	raw, err := ts.get()
	require.NoError(t, err)

	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return &key.PublicKey, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(func() time.Time { return now }))
	require.NoError(t, err)
	require.Equal(t, map[string]any{"alg": "ES256", "kid": "KEY123", "typ": "JWT"}, tok.Header)
	require.Equal(t, jwt.MapClaims{
		"iss": "issuer-uuid",
		"iat": float64(now.Unix()),
		"exp": float64(now.Add(5 * time.Minute).Unix()),
		"aud": "appstoreconnect-v1", // a string, not ["appstoreconnect-v1"]
		"bid": "com.example.credits",
	}, claims)
}

// Each request has a token of its own, issued at that request's time.
func TestTokenEachRequest(t *testing.T) {
	c := newClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ts, key := testTokens(t, c.now)
	issued := func() (string, float64) {
		raw, err := ts.get()
		require.NoError(t, err)
		claims := jwt.MapClaims{}
		_, err = jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return &key.PublicKey, nil },
			jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(c.now))
		require.NoError(t, err)
		return raw, claims["iat"].(float64)
	}
	first, iat := issued()
	again, iatAgain := issued()
	require.NotEqual(t, first, again, "signed again, not reused")
	require.Equal(t, iat, iatAgain)

	c.add(-time.Hour) // the clock stepped back: Apple refuses iat in the future
	_, back := issued()
	require.Equal(t, iat-3600, back)
}

// Many goroutines share one token source; run with -race.
func TestTokenConcurrent(t *testing.T) {
	c := newClock(time.Now())
	ts, _ := testTokens(t, c.now)
	const workers, gets = 16, 50
	errs := make(chan error, workers*gets)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for range gets {
				if i == 0 {
					c.add(10 * time.Second)
				}
				_, err := ts.get()
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}
