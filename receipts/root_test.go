package receipts

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"os"
	"strings"
	"testing"

	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/stretchr/testify/require"
)

// Apple publishes this SHA-256 fingerprint for Apple Root CA - G3.
const appleRootG3SHA256 = "63343ABFB89A6A03EBB57E9B3F5FA7BE7C4F5C756F3017B3A8C488C3653E9179"

func TestAppleRootCAG3Fingerprint(t *testing.T) {
	root := AppleRootCAG3()
	sum := sha256.Sum256(root.Raw)
	require.Equal(t, appleRootG3SHA256, strings.ToUpper(hex.EncodeToString(sum[:])))
	require.Equal(t, "Apple Root CA - G3", root.Subject.CommonName)
	require.True(t, root.IsCA)
}

// TestAppleRootCAG3IsACopy: callers get their own copy, so changing it
// cannot change what default Verifiers trust.
func TestAppleRootCAG3IsACopy(t *testing.T) {
	a := AppleRootCAG3()
	a.Raw[0] ^= 0xff
	require.NotEqual(t, a.Raw[0], AppleRootCAG3().Raw[0])
	require.Equal(t, AppleRootCAG3().Raw, defaultRoots()[0].Raw)
}

func TestParseCertificates(t *testing.T) {
	a, b := newCA(t, devca.Options{}), newCA(t, devca.Options{})
	der := append(append([]byte{}, a.Root.Raw...), b.Root.Raw...)
	for name, tc := range map[string]struct {
		in   []byte
		want int
	}{
		"one PEM":        {a.RootPEM(), 1},
		"two PEM":        {append(a.RootPEM(), b.RootPEM()...), 2},
		"PEM with prose": {append([]byte("Apple root, fetched 2025\n"), appleRootG3PEM...), 1},
		"one DER":        {a.Root.Raw, 1},
		"two DER":        {der, 2},
	} {
		t.Run(name, func(t *testing.T) {
			certs, err := ParseCertificates(tc.in)
			require.NoError(t, err)
			require.Len(t, certs, tc.want)
		})
	}
	damaged := append(a.RootPEM(), []byte("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")...)
	key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})
	for name, in := range map[string][]byte{
		"empty": nil, "garbage": []byte("hello"), "private key": append(a.RootPEM(), key...),
		"damaged PEM": damaged, "bad DER in PEM": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}}),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseCertificates(in)
			requireCode(t, err, CodeCertificate)
		})
	}
}

// TestEmbeddedRootMatchesShared: the embedded copy is the same file Apple
// publishes in the shared vectors.
func TestEmbeddedRootMatchesShared(t *testing.T) {
	loadVectors(t) // skips when shared/ is absent
	shared, err := os.ReadFile(vectorsDir + "/AppleRootCA-G3.pem")
	require.NoError(t, err)
	want, err := ParseCertificates(shared)
	require.NoError(t, err)
	require.Equal(t, want[0].Raw, AppleRootCAG3().Raw)
}
