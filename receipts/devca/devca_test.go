package devca_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/stretchr/testify/require"
)

var (
	oidLeaf         = []int{1, 2, 840, 113635, 100, 6, 11, 1}
	oidIntermediate = []int{1, 2, 840, 113635, 100, 6, 2, 1}
)

func hasOID(c *x509.Certificate, oid []int) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(oid) {
			return true
		}
	}
	return false
}

func TestNewDefaults(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ca, err := devca.New(devca.Options{Now: now})
	require.NoError(t, err)
	for _, c := range []*x509.Certificate{ca.Root, ca.Intermediate, ca.Leaf} {
		require.Equal(t, now.Add(-time.Hour), c.NotBefore)
		require.Equal(t, now.AddDate(10, 0, 0), c.NotAfter)
	}
	require.Equal(t, elliptic.P384(), ca.Root.PublicKey.(*ecdsa.PublicKey).Curve, "like Apple Root CA - G3")
	require.Equal(t, elliptic.P256(), ca.Leaf.PublicKey.(*ecdsa.PublicKey).Curve, "ES256 needs P-256")
	require.True(t, ca.Root.IsCA)
	require.True(t, ca.Intermediate.IsCA)
	require.False(t, ca.Leaf.IsCA)
	require.True(t, hasOID(ca.Leaf, oidLeaf))
	require.True(t, hasOID(ca.Intermediate, oidIntermediate))
	require.NoError(t, ca.Intermediate.CheckSignatureFrom(ca.Root))
	require.NoError(t, ca.Leaf.CheckSignatureFrom(ca.Intermediate))
}

func TestNewOptions(t *testing.T) {
	nb, na := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	ca, err := devca.New(devca.Options{LeafNotBefore: nb, LeafNotAfter: na, OmitLeafOID: true, OmitIntermediateOID: true, LeafKeyCurve: elliptic.P384()})
	require.NoError(t, err)
	require.Equal(t, nb, ca.Leaf.NotBefore)
	require.Equal(t, na, ca.Leaf.NotAfter)
	require.False(t, hasOID(ca.Leaf, oidLeaf))
	require.False(t, hasOID(ca.Intermediate, oidIntermediate))
	require.Equal(t, elliptic.P384(), ca.Leaf.PublicKey.(*ecdsa.PublicKey).Curve)

	// A P-384 leaf signs with its own size (96 bytes), which receipts refuses.
	s, err := ca.Sign(map[string]any{"signedDate": 1})
	require.NoError(t, err)
	require.NotEmpty(t, s)
}

// TestSignVerifies: what devca signs, receipts accepts once it trusts the
// root, whatever form the payload takes.
func TestSignVerifies(t *testing.T) {
	ca, err := devca.New(devca.Options{})
	require.NoError(t, err)
	v := verifier(t, ca)
	payload := map[string]any{"transactionId": "1", "bundleId": "com.example", "environment": "Sandbox",
		"purchaseDate": time.Now().UnixMilli(), "signedDate": time.Now().UnixMilli()}
	raw, err := json.Marshal(payload)
	require.NoError(t, err)
	for name, p := range map[string]any{"map": payload, "bytes": raw, "raw message": json.RawMessage(raw)} {
		t.Run(name, func(t *testing.T) {
			s, err := ca.Sign(p)
			require.NoError(t, err)
			tx, err := v.VerifyTransaction(s)
			require.NoError(t, err)
			require.JSONEq(t, string(raw), string(tx.Raw))
		})
	}
}

func verifier(t *testing.T, ca *devca.CA) *receipts.Verifier {
	roots, err := receipts.ParseCertificates(ca.RootPEM())
	require.NoError(t, err)
	return &receipts.Verifier{Roots: roots, BundleID: "com.example", Environments: []string{receipts.Sandbox}}
}

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := devca.New(devca.Options{})
	require.NoError(t, err)
	require.NoError(t, ca.Save(dir))

	info, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), info.Mode().Perm())
	for _, key := range []string{"root-key.pem", "intermediate-key.pem", "leaf-key.pem"} {
		info, err := os.Stat(filepath.Join(dir, key))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), key)
	}

	loaded, err := devca.Load(dir)
	require.NoError(t, err)
	require.Equal(t, ca.Root.Raw, loaded.Root.Raw)
	require.Equal(t, ca.Leaf.Raw, loaded.Leaf.Raw)
	// The loaded keys sign: verify with the original's root.
	s, err := loaded.Sign(map[string]any{"transactionId": "1", "bundleId": "com.example", "environment": "Sandbox",
		"purchaseDate": time.Now().UnixMilli(), "signedDate": time.Now().UnixMilli()})
	require.NoError(t, err)
	_, err = verifier(t, ca).VerifyTransaction(s)
	require.NoError(t, err)
}

func TestLoadRefusesMixedUpFiles(t *testing.T) {
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, dir := range []string{a, b} {
		ca, err := devca.New(devca.Options{})
		require.NoError(t, err)
		require.NoError(t, ca.Save(dir))
	}
	key, err := os.ReadFile(filepath.Join(b, "leaf-key.pem"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(a, "leaf-key.pem"), key, 0o600))
	_, err = devca.Load(a)
	require.ErrorContains(t, err, "does not match")

	leaf, err := os.ReadFile(filepath.Join(b, "leaf.pem"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(a, "leaf.pem"), leaf, 0o644))
	_, err = devca.Load(a) // key and cert match now, but b's leaf is not a's intermediate's
	require.ErrorContains(t, err, "not signed")

	require.NoError(t, os.WriteFile(filepath.Join(a, "root.pem"), []byte("junk"), 0o644))
	_, err = devca.Load(a)
	require.Error(t, err)
}

func TestLoadOrCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	first, created, err := devca.LoadOrCreate(dir, now)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, now.Add(-time.Hour), first.Leaf.NotBefore)

	again, created, err := devca.LoadOrCreate(dir, now.Add(time.Hour))
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, first.Root.Raw, again.Root.Raw)

	require.NoError(t, os.Remove(filepath.Join(dir, "leaf.pem")))
	_, _, err = devca.LoadOrCreate(dir, now)
	require.ErrorContains(t, err, "5 of the 6")
}
