package serverapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Apple's base URLs: the domains Apple has recommended since its server
// update of 2026-05-05 (the older api.storekit[-sandbox].itunes.apple.com
// still answer).
const (
	DefaultProductionURL = "https://api.storekit.apple.com"
	DefaultSandboxURL    = "https://api.storekit-sandbox.apple.com"
)

const (
	defaultTimeout      = 30 * time.Second
	defaultMaxRetries   = 3
	defaultRetryBackoff = 500 * time.Millisecond
)

// Config configures a Client. Optional fields left zero take the default
// their comment names.
type Config struct {
	// KeyID is the id of the App Store Connect In-App Purchase key (the
	// JWT's kid); IssuerID is the team's issuer id (iss); BundleID is the
	// app's bundle id (bid). Apple answers only for that app.
	KeyID, IssuerID, BundleID string
	// PrivateKey is the key's P-256 private half, from the .p8 file; see
	// LoadPrivateKey.
	PrivateKey *ecdsa.PrivateKey
	// ProductionURL and SandboxURL are the API's base URLs; default
	// DefaultProductionURL and DefaultSandboxURL. Tests point both at a
	// fakeappstore.Server.
	ProductionURL string
	SandboxURL    string
	// HTTPClient sends the requests; default a client with a 30 s timeout.
	HTTPClient *http.Client
	// Now is the clock for the JWT's iat and exp, for Retry-After headers
	// that name a time, and for the time left before a context's deadline;
	// default time.Now.
	Now func() time.Time
	// MaxRetries is how often a request is retried after a 429, a 5xx,
	// one of Apple's retryable 404s or a transport error: 0 means 3,
	// negative means never.
	MaxRetries int
	// RetryBackoff is the first wait before retrying a 5xx, a 404 or a
	// transport error (a 429 waits for its Retry-After instead); it doubles per
	// retry, with jitter, up to 10 s. Default 500 ms.
	RetryBackoff time.Duration

	// sleep waits between retries; tests swap it to run instantly.
	sleep func(ctx context.Context, d time.Duration) error
}

// withDefaults fills the optional fields and validates all of them, so a
// misconfiguration stops the program at start rather than at the first
// refund request.
func (c Config) withDefaults() (Config, error) {
	for _, f := range []struct{ name, value string }{
		{"KeyID", c.KeyID}, {"IssuerID", c.IssuerID}, {"BundleID", c.BundleID},
	} {
		if strings.TrimSpace(f.value) == "" {
			return c, fmt.Errorf("serverapi: Config.%s is required", f.name)
		}
	}
	if err := checkKey(c.PrivateKey); err != nil {
		return c, err
	}
	var err error
	if c.ProductionURL, err = baseURL("ProductionURL", c.ProductionURL, DefaultProductionURL); err != nil {
		return c, err
	}
	if c.SandboxURL, err = baseURL("SandboxURL", c.SandboxURL, DefaultSandboxURL); err != nil {
		return c, err
	}
	if c.RetryBackoff < 0 {
		return c, errors.New("serverapi: Config.RetryBackoff is negative")
	}
	c.applyDefaults()
	return c, nil
}

func (c *Config) applyDefaults() {
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: defaultTimeout}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = defaultMaxRetries
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = defaultRetryBackoff
	}
	if c.sleep == nil {
		c.sleep = sleep
	}
}

// baseURL checks an absolute http(s) URL without query or fragment and
// drops a trailing slash, so paths can simply be appended.
func baseURL(field, raw, def string) (string, error) {
	if raw == "" {
		return def, nil
	}
	if err := CheckBaseURL(raw); err != nil {
		return "", fmt.Errorf("serverapi: Config.%s %w", field, err)
	}
	return strings.TrimRight(raw, "/"), nil
}

// CheckBaseURL refuses what cannot be an API's base URL: anything but an
// absolute http(s) URL without query or fragment. A configuration checks
// its own keys with it, to name the key that is wrong.
func CheckBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an absolute http(s) base URL", raw)
	}
	return nil
}

func checkKey(k *ecdsa.PrivateKey) error {
	if k == nil {
		return errors.New("serverapi: Config.PrivateKey is required")
	}
	if k.Curve != elliptic.P256() {
		return errors.New("serverapi: Config.PrivateKey must be a P-256 key (ES256)")
	}
	return nil
}

// LoadPrivateKey parses the .p8 file App Store Connect gives out: a PEM
// "PRIVATE KEY" block holding a PKCS#8 ECDSA P-256 key. Errors describe
// the shape, never the content.
func LoadPrivateKey(p8PEM []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(p8PEM)
	if block == nil {
		return nil, errors.New("serverapi: private key is not PEM (expected the .p8 file from App Store Connect)")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("serverapi: private key PEM block is %q, expected \"PRIVATE KEY\" (PKCS#8, as in a .p8 file)", block.Type)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("serverapi: private key is not a valid PKCS#8 key")
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("serverapi: private key is %T, expected ECDSA P-256", parsed)
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	return key, nil
}
