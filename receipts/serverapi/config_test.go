package serverapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func validConfig(t testing.TB) Config {
	return Config{KeyID: "KEY123", IssuerID: "issuer", BundleID: "com.example.credits", PrivateKey: testKey(t)}
}

func TestNewDefaults(t *testing.T) {
	c, err := New(validConfig(t))
	require.NoError(t, err)
	require.Equal(t, DefaultProductionURL, c.cfg.ProductionURL)
	require.Equal(t, DefaultSandboxURL, c.cfg.SandboxURL)
	require.Equal(t, 30*time.Second, c.cfg.HTTPClient.Timeout)
	require.Equal(t, 3, c.cfg.MaxRetries)
	require.Equal(t, 500*time.Millisecond, c.cfg.RetryBackoff)
	require.NotNil(t, c.cfg.Now)

	cfg := validConfig(t)
	cfg.MaxRetries, cfg.ProductionURL, cfg.HTTPClient = -1, "http://127.0.0.1:1/", http.DefaultClient
	c, err = New(cfg)
	require.NoError(t, err)
	require.Equal(t, 0, c.cfg.MaxRetries, "negative means no retries")
	require.Equal(t, "http://127.0.0.1:1", c.cfg.ProductionURL, "trailing slash dropped")
	require.Same(t, http.DefaultClient, c.cfg.HTTPClient)
}

func TestNewValidates(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		mutate func(*Config)
		field  string
	}{
		"ErrNoKeyID":       {func(c *Config) { c.KeyID = "" }, "KeyID"},
		"ErrNoIssuerID":    {func(c *Config) { c.IssuerID = " " }, "IssuerID"},
		"ErrNoBundleID":    {func(c *Config) { c.BundleID = "" }, "BundleID"},
		"ErrNoPrivateKey":  {func(c *Config) { c.PrivateKey = nil }, "PrivateKey"},
		"ErrP384Key":       {func(c *Config) { c.PrivateKey = p384 }, "P-256"},
		"ErrRelativeURL":   {func(c *Config) { c.ProductionURL = "/inApps" }, "ProductionURL"},
		"ErrFTPURL":        {func(c *Config) { c.SandboxURL = "ftp://example.com" }, "SandboxURL"},
		"ErrURLWithQuery":  {func(c *Config) { c.SandboxURL = "https://example.com?a=b" }, "SandboxURL"},
		"ErrNegativeRetry": {func(c *Config) { c.RetryBackoff = -time.Second }, "RetryBackoff"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := validConfig(t)
			tc.mutate(&cfg)
			_, err := New(cfg)
			require.ErrorContains(t, err, tc.field)
		})
	}
}

func TestLoadPrivateKey(t *testing.T) {
	key := testKey(t)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	p8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	got, err := LoadPrivateKey(p8)
	require.NoError(t, err)
	require.True(t, key.Equal(got))

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	rsaDER, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	require.NoError(t, err)
	sec1, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	p384DER, err := x509.MarshalPKCS8PrivateKey(p384)
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		pem  []byte
		want string
	}{
		"ErrNotPEM":   {[]byte("not a key"), "not PEM"},
		"ErrSEC1":     {pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), "PKCS#8"},
		"ErrGarbage":  {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), "not a valid PKCS#8"},
		"ErrRSA":      {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER}), "expected ECDSA"},
		"ErrP384":     {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384DER}), "P-256"},
		"ErrTruncate": {p8[:len(p8)/2], "not PEM"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := LoadPrivateKey(tc.pem)
			require.ErrorContains(t, err, tc.want)
			require.False(t, strings.Contains(err.Error(), string(p8[30:60])), "error echoes key material")
		})
	}
}
