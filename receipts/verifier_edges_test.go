package receipts

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/stretchr/testify/require"
)

// TestHeaderCacheKeepsShapeRules: a JWS whose header was seen before takes
// the cached path (headerCache.parse → parseBody); it must get the same
// answer as a first sighting would.
func TestHeaderCacheKeepsShapeRules(t *testing.T) {
	ca := newCA(t, devca.Options{})
	v := verifierFor(ca)
	good := sign(t, ca, txPayload(time.Now()))
	_, err := v.VerifyTransaction(good) // caches the header
	require.NoError(t, err)
	parts := strings.Split(good, ".")

	t.Run("newline in signature", func(t *testing.T) {
		bad := parts[0] + "." + parts[1] + "." + parts[2][:10] + "\n" + parts[2][10:]
		_, err := v.VerifyTransaction(bad)
		requireCode(t, err, CodeMalformed)
	})
	t.Run("too long", func(t *testing.T) {
		_, err := v.VerifyTransaction(good + strings.Repeat("A", maxJWSBytes))
		requireCode(t, err, CodeMalformed)
	})
}

// TestHeaderCacheKeepsAlg: a header naming another alg is refused every
// time, not only before its parse is cached.
func TestHeaderCacheKeepsAlg(t *testing.T) {
	ca := newCA(t, devca.Options{})
	v := verifierFor(ca)
	x5c := chainB64(ca.Leaf, ca.Intermediate, ca.Root)
	s, err := ca.SignWithHeader(map[string]any{"alg": "ES384", "x5c": x5c}, txPayload(time.Now()))
	require.NoError(t, err)
	for range 2 {
		_, err := v.VerifyTransaction(s)
		requireCode(t, err, CodeAlgorithm)
	}
}

// TestRootAndIntermediateValidityAtSignedDate: each of the root and the
// intermediate is judged at signedDate on its own, and the root judged is
// the one that signed the chain, also on a chain-cache hit.
func TestRootAndIntermediateValidityAtSignedDate(t *testing.T) {
	now := time.Now()
	later := now.Add(90 * time.Minute) // past the short-lived cert's NotAfter
	shortRoot := func(root, intermediate, leaf *x509.Certificate) {
		root.NotAfter, intermediate.NotAfter, leaf.NotAfter = now.Add(time.Hour), now.Add(2*time.Hour), now.Add(2*time.Hour)
	}
	t.Run("root expired, intermediate and leaf valid", func(t *testing.T) {
		h := newHandmadeChain(t, shortRoot)
		_, err := h.verifier().VerifyTransaction(h.sign(t, txPayload(later)))
		requireCode(t, err, CodeCertificate)
	})
	t.Run("intermediate expired, root and leaf valid", func(t *testing.T) {
		h := newHandmadeChain(t, func(root, intermediate, leaf *x509.Certificate) {
			root.NotAfter, intermediate.NotAfter, leaf.NotAfter = now.Add(2*time.Hour), now.Add(time.Hour), now.Add(2*time.Hour)
		})
		_, err := h.verifier().VerifyTransaction(h.sign(t, txPayload(later)))
		requireCode(t, err, CodeCertificate)
	})
	t.Run("cache hit judges the chain's own root", func(t *testing.T) {
		other := newCA(t, devca.Options{}) // a second trusted root, valid for years, listed first
		h := newHandmadeChain(t, shortRoot)
		v := h.verifier()
		v.Roots = []*x509.Certificate{other.Root, h.root}
		_, err := v.VerifyTransaction(h.sign(t, txPayload(now))) // caches the chain under h.root
		require.NoError(t, err)
		_, err = v.VerifyTransaction(h.sign(t, txPayload(later)))
		requireCode(t, err, CodeCertificate)
	})
}

// TestExternalPurchaseTokenAppID: the app id of an EXTERNAL_PURCHASE_TOKEN
// notification is read from its token, in Production as in Sandbox.
func TestExternalPurchaseTokenAppID(t *testing.T) {
	ca := newCA(t, devca.Options{})
	now := time.Now()
	token := func(id string, appAppleID int64) map[string]any {
		return withBlock(now, "externalPurchaseToken", map[string]any{
			"externalPurchaseId": id, "bundleId": testBundleID, "appAppleId": appAppleID, "tokenCreationDate": now.UnixMilli()})
	}
	_, err := verifierFor(ca).VerifyNotification(sign(t, ca, token("123", testAppAppleID)))
	require.NoError(t, err, "a Production token naming this app")
	_, err = verifierFor(ca).VerifyNotification(sign(t, ca, token("SANDBOX_123", 42)))
	requireCode(t, err, CodeAppIdentifier)
}

// TestParseCertificatesOtherBlockType: a block that is not CERTIFICATE is
// refused even when its bytes are a certificate.
func TestParseCertificatesOtherBlockType(t *testing.T) {
	ca := newCA(t, devca.Options{})
	in := pem.EncodeToMemory(&pem.Block{Type: "TRUSTED CERTIFICATE", Bytes: ca.Root.Raw})
	_, err := ParseCertificates(in)
	requireCode(t, err, CodeCertificate)
}
