package receipts

import (
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"testing"
	"time"

	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/stretchr/testify/require"
)

func TestVerifyDevCA(t *testing.T) {
	ca := newCA(t, devca.Options{})
	tx, err := verifierFor(ca).VerifyTransaction(sign(t, ca, txPayload(time.Now())))
	require.NoError(t, err)
	require.Equal(t, "2000000000000001", tx.TransactionID)
}

// TestAlgorithm: the signature is genuine ES256; only the header's alg
// lies, so without the exact-match rule these would verify.
func TestAlgorithm(t *testing.T) {
	ca := newCA(t, devca.Options{})
	x5c := chainB64(ca.Leaf, ca.Intermediate, ca.Root)
	for _, alg := range []string{"none", "HS256", "ES384", "ES512", "RS256", "PS256", "es256", "ES256 ", ""} {
		t.Run(alg, func(t *testing.T) {
			s, err := ca.SignWithHeader(map[string]any{"alg": alg, "x5c": x5c}, txPayload(time.Now()))
			require.NoError(t, err)
			_, err = verifierFor(ca).VerifyTransaction(s)
			requireCode(t, err, CodeAlgorithm)
		})
	}
}

func TestChainLength(t *testing.T) {
	ca := newCA(t, devca.Options{})
	for name, x5c := range map[string][]*x509.Certificate{
		"none": {},
		"one":  {ca.Leaf},
		"two":  {ca.Leaf, ca.Intermediate},
		"four": {ca.Leaf, ca.Intermediate, ca.Root, ca.Root},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := ca.SignWithChain(txPayload(time.Now()), x5c)
			require.NoError(t, err)
			_, err = verifierFor(ca).VerifyTransaction(s)
			requireCode(t, err, CodeChainLength)
		})
	}
}

// TestChainAttackerRoot: a complete, self-consistent chain whose x5c[2] is
// the attacker's own root must not verify against the root we trust.
// devca names every root alike, so this also covers a root that matches
// our root's name but not its key.
func TestChainAttackerRoot(t *testing.T) {
	ours, attacker := newCA(t, devca.Options{}), newCA(t, devca.Options{})
	_, err := verifierFor(ours).VerifyTransaction(sign(t, attacker, txPayload(time.Now())))
	requireCode(t, err, CodeChain)

	// The attacker sending our root as x5c[2] changes nothing either.
	s, err := attacker.SignWithChain(txPayload(time.Now()), []*x509.Certificate{attacker.Leaf, attacker.Intermediate, ours.Root})
	require.NoError(t, err)
	_, err = verifierFor(ours).VerifyTransaction(s)
	requireCode(t, err, CodeChain)
}

// TestChainAppleRootByDefault: a Verifier without Roots trusts only Apple.
func TestChainAppleRootByDefault(t *testing.T) {
	ca := newCA(t, devca.Options{})
	v := verifierFor(ca)
	v.Roots = nil
	_, err := v.VerifyTransaction(sign(t, ca, txPayload(time.Now())))
	requireCode(t, err, CodeChain)
}

func TestChainLeafFromOtherIntermediate(t *testing.T) {
	ours, other := newCA(t, devca.Options{}), newCA(t, devca.Options{})
	s, err := other.SignWithChain(txPayload(time.Now()), []*x509.Certificate{other.Leaf, ours.Intermediate, ours.Root})
	require.NoError(t, err)
	_, err = verifierFor(ours).VerifyTransaction(s)
	requireCode(t, err, CodeChain)
}

// TestChainSeveralRoots: any configured root may anchor the chain.
func TestChainSeveralRoots(t *testing.T) {
	a, b := newCA(t, devca.Options{}), newCA(t, devca.Options{})
	v := verifierFor(a)
	v.Roots = []*x509.Certificate{AppleRootCAG3(), a.Root, b.Root}
	for _, ca := range []*devca.CA{a, b} {
		_, err := v.VerifyTransaction(sign(t, ca, txPayload(time.Now())))
		require.NoError(t, err)
	}
}

func TestCertificateProfile(t *testing.T) {
	for name, opts := range map[string]devca.Options{
		"leaf without Apple OID":         {OmitLeafOID: true},
		"intermediate without Apple OID": {OmitIntermediateOID: true},
		"P-384 leaf key":                 {LeafKeyCurve: elliptic.P384()},
		"P-521 leaf key":                 {LeafKeyCurve: elliptic.P521()},
	} {
		t.Run(name, func(t *testing.T) {
			ca := newCA(t, opts)
			_, err := verifierFor(ca).VerifyTransaction(sign(t, ca, txPayload(time.Now())))
			requireCode(t, err, CodeCertificate)
		})
	}
}

func TestCertificateUnparsable(t *testing.T) {
	ca := newCA(t, devca.Options{})
	garbage := base64.StdEncoding.EncodeToString([]byte("not a certificate"))
	for i := range 3 {
		x5c := chainB64(ca.Leaf, ca.Intermediate, ca.Root)
		x5c[i] = garbage
		s, err := ca.SignWithHeader(map[string]any{"alg": "ES256", "x5c": x5c}, txPayload(time.Now()))
		require.NoError(t, err)
		_, err = verifierFor(ca).VerifyTransaction(s)
		requireCode(t, err, CodeCertificate)
	}
}

// TestHandmadeChains covers certificates devca will not make. The
// baseline, unedited, verifies; each edit alone must give its answer.
func TestHandmadeChains(t *testing.T) {
	unknown := pkix.Extension{Id: []int{1, 2, 3, 4}, Critical: true, Value: []byte{5, 0}}
	for name, tc := range map[string]struct {
		edit func(root, intermediate, leaf *x509.Certificate)
		code Code
	}{
		"baseline": {nil, ""},
		// RFC 5280: a leaf with no key usage extension is not restricted.
		"leaf without key usage": {func(_, _, l *x509.Certificate) { l.KeyUsage = 0 }, ""},
		// Another role's marker, critical, is an unknown critical extension here.
		"intermediate carries the leaf marker, critical": {func(_, i, _ *x509.Certificate) {
			i.ExtraExtensions = append(i.ExtraExtensions, pkix.Extension{Id: oidAppleLeaf, Critical: true, Value: []byte{5, 0}})
		}, CodeCertificate},
		// CheckSignatureFrom refuses a parent that is not a CA, even one
		// carrying Apple's intermediate OID and chaining to our root.
		"intermediate not a CA": {func(_, i, _ *x509.Certificate) { i.IsCA, i.KeyUsage = false, x509.KeyUsageDigitalSignature }, CodeChain},
		"leaf critical unknown extension": {func(_, _, l *x509.Certificate) {
			l.ExtraExtensions = append(l.ExtraExtensions, unknown)
		}, CodeCertificate},
		"intermediate critical unknown extension": {func(_, i, _ *x509.Certificate) {
			i.ExtraExtensions = append(i.ExtraExtensions, unknown)
		}, CodeCertificate},
		"leaf key usage without signatures": {func(_, _, l *x509.Certificate) { l.KeyUsage = x509.KeyUsageKeyEncipherment }, CodeCertificate},
		// Apple's markers may be critical: they are what we check for.
		"markers critical": {func(_, i, l *x509.Certificate) {
			i.ExtraExtensions[0].Critical, l.ExtraExtensions[0].Critical = true, true
		}, ""},
		// RFC 5280's limits a CA puts on what it signs (checkPath).
		"root allows no intermediate (path length 0)": {func(r, _, _ *x509.Certificate) {
			r.MaxPathLen, r.MaxPathLenZero = 0, true
		}, CodeChain},
		"leaf name outside the intermediate's name constraints": {func(_, i, l *x509.Certificate) {
			i.PermittedDNSDomains, i.PermittedDNSDomainsCritical = []string{"apple.com"}, true
			l.DNSNames = []string{"store.example.net"}
		}, CodeChain},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHandmadeChain(t, tc.edit)
			_, err := h.verifier().VerifyTransaction(h.sign(t, txPayload(time.Now())))
			if tc.code == "" {
				require.NoError(t, err)
				return
			}
			requireCode(t, err, tc.code)
		})
	}
}

// TestChainIssuerNameMustMatch: a twin certificate with the same key but
// another name passes the signature check, yet is not the issuer named in
// its child. Both links of the chain are checked by name.
func TestChainIssuerNameMustMatch(t *testing.T) {
	h := newHandmadeChain(t, nil)
	_, twinIntermediate := handmadeCert(t, caTemplate("handmade twin", oidAppleIntermediate), h.root, h.rootKey, h.intKey)
	require.NoError(t, h.leaf.CheckSignatureFrom(twinIntermediate), "the signature alone would pass")
	leafLink := *h
	leafLink.intermediate = twinIntermediate
	_, err := leafLink.verifier().VerifyTransaction(leafLink.sign(t, txPayload(time.Now())))
	requireCode(t, err, CodeChain)

	_, twinRoot := handmadeCert(t, caTemplate("handmade twin root", nil), nil, nil, h.rootKey)
	_, reissued := handmadeCert(t, caTemplate("handmade intermediate", oidAppleIntermediate), twinRoot, h.rootKey, h.intKey)
	require.NoError(t, reissued.CheckSignatureFrom(h.root), "the signature alone would pass")
	rootLink := *h
	rootLink.intermediate = reissued
	_, err = rootLink.verifier().VerifyTransaction(rootLink.sign(t, txPayload(time.Now())))
	requireCode(t, err, CodeChain)
}

func caTemplate(cn string, marker []int) *x509.Certificate {
	now := time.Now()
	c := &x509.Certificate{
		Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	if marker != nil {
		c.ExtraExtensions = []pkix.Extension{{Id: marker, Value: []byte{5, 0}}}
	}
	return c
}

func chainB64(certs ...*x509.Certificate) []string {
	out := make([]string, len(certs))
	for i, c := range certs {
		out[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	return out
}
