package receipts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// handmadeChain builds certificates devca refuses to make, such as an
// intermediate that is not a CA.
type handmadeChain struct {
	root, intermediate, leaf *x509.Certificate
	leafKey, rootKey, intKey *ecdsa.PrivateKey
}

// newHandmadeChain builds a chain; edit may change the intermediate's and
// the leaf's templates before they are signed.
func newHandmadeChain(t *testing.T, edit func(root, intermediate, leaf *x509.Certificate)) *handmadeChain {
	t.Helper()
	now := time.Now()
	intTmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: "handmade intermediate"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		ExtraExtensions: []pkix.Extension{{Id: oidAppleIntermediate, Value: []byte{5, 0}}},
	}
	leafTmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: "handmade leaf"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: oidAppleLeaf, Value: []byte{5, 0}}},
	}
	rootTmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: "handmade root"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	if edit != nil {
		edit(rootTmpl, intTmpl, leafTmpl)
	}
	rootKey, root := handmadeCert(t, rootTmpl, nil, nil, nil)
	intKey, intermediate := handmadeCert(t, intTmpl, root, rootKey, nil)
	leafKey, leaf := handmadeCert(t, leafTmpl, intermediate, intKey, nil)
	return &handmadeChain{root, intermediate, leaf, leafKey, rootKey, intKey}
}

// handmadeCert signs tmpl with parentKey (self-signed when parent is nil)
// for key, or a fresh P-256 key when key is nil.
func handmadeCert(t *testing.T, tmpl, parent *x509.Certificate, parentKey, key *ecdsa.PrivateKey) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	if key == nil {
		var err error
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return key, cert
}

func (h *handmadeChain) verifier() *Verifier {
	return &Verifier{Roots: []*x509.Certificate{h.root}, BundleID: testBundleID, Environments: []string{Sandbox}}
}

// sign uses golang-jwt, an implementation independent of devca's.
func (h *handmadeChain) sign(t *testing.T, payload any) string {
	t.Helper()
	head, err := json.Marshal(map[string]any{"alg": "ES256", "x5c": chainB64(h.leaf, h.intermediate, h.root)})
	require.NoError(t, err)
	body, err := json.Marshal(payload)
	require.NoError(t, err)
	signing := base64.RawURLEncoding.EncodeToString(head) + "." + base64.RawURLEncoding.EncodeToString(body)
	sig, err := jwt.SigningMethodES256.Sign(signing, h.leafKey)
	require.NoError(t, err)
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}
