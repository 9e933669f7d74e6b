package serverapi

import (
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewRefusesURLWithoutHost(t *testing.T) {
	cfg := validConfig(t)
	cfg.ProductionURL = "https:///inApps"
	_, err := New(cfg)
	require.ErrorContains(t, err, "ProductionURL")
}

// Only a "PRIVATE KEY" block is a .p8, even when another label holds
// PKCS#8 bytes.
func TestLoadPrivateKeyBlockType(t *testing.T) {
	der, err := x509.MarshalPKCS8PrivateKey(testKey(t))
	require.NoError(t, err)
	_, err = LoadPrivateKey(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	require.ErrorContains(t, err, `expected "PRIVATE KEY"`)
}
