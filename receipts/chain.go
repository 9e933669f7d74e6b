package receipts

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"slices"
	"time"
)

// Apple marks the certificates of its App Store signing chain with these
// extensions; Apple's SignedDataVerifier requires both, so do we. Without
// them any certificate Apple's root ever issued would do.
var (
	oidAppleLeaf         = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 11, 1}
	oidAppleIntermediate = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 2, 1}
)

// chain is a JWS's x5c after the trusted root has been found for it.
type chain struct {
	leaf, intermediate *x509.Certificate
	root               *x509.Certificate // the configured root, never x5c[2]
}

// parseChain parses all three certificates. x5c[2] must parse, because
// Apple's libraries parse it too, but it is then dropped: the root we trust
// comes from configuration, never from the input.
func parseChain(x5c [][]byte) (*chain, error) {
	certs := make([]*x509.Certificate, len(x5c))
	for i, der := range x5c {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, newError(CodeCertificate, err, "x5c[%d] is not a certificate", i)
		}
		certs[i] = c
	}
	return &chain{leaf: certs[0], intermediate: certs[1]}, nil
}

// checkProfile checks what makes a certificate Apple's App Store signer
// rather than any certificate: the marker OIDs, no critical extension we
// cannot interpret, and a P-256 leaf key (ES256 means P-256).
func (c *chain) checkProfile() error {
	if err := checkCert(c.leaf, "leaf", oidAppleLeaf); err != nil {
		return err
	}
	if err := checkCert(c.intermediate, "intermediate", oidAppleIntermediate); err != nil {
		return err
	}
	key, ok := c.leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		return newError(CodeCertificate, nil, "leaf key is not ECDSA P-256")
	}
	if c.leaf.KeyUsage != 0 && c.leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return newError(CodeCertificate, nil, "leaf key usage does not allow signatures")
	}
	return nil
}

func checkCert(cert *x509.Certificate, role string, marker asn1.ObjectIdentifier) error {
	if !hasExtension(cert, marker) {
		return newError(CodeCertificate, nil, "%s lacks Apple extension %s", role, marker)
	}
	for _, oid := range cert.UnhandledCriticalExtensions {
		if !oid.Equal(marker) {
			return newError(CodeCertificate, nil, "%s has unknown critical extension %s", role, oid)
		}
	}
	return nil
}

func hasExtension(cert *x509.Certificate, oid asn1.ObjectIdentifier) bool {
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oid) {
			return true
		}
	}
	return false
}

// findRoot sets c.root to the configured root that signed the intermediate,
// after checking that the intermediate signed the leaf. Chains that passed
// before are remembered by the exact DER of all three certificates.
func (c *chain) findRoot(roots []*x509.Certificate, cache *chainCache) error {
	for _, root := range roots {
		if cache.has(newChainKey(c.leaf.Raw, c.intermediate.Raw, root.Raw)) {
			c.root = root
			return nil
		}
	}
	var lastErr error
	for _, root := range roots {
		if err := checkSignedBy(c.leaf, c.intermediate, root); err != nil {
			lastErr = err
			continue
		}
		cache.add(newChainKey(c.leaf.Raw, c.intermediate.Raw, root.Raw))
		c.root = root
		return nil
	}
	return newError(CodeChain, lastErr, "chain does not lead to a trusted root")
}

// checkSignedBy checks names and signatures of leaf <- intermediate <- root.
// The names are compared here, so that a twin certificate with another
// name is refused whatever path x509.Verify would try; checkPath's
// x509.Verify checks the signatures, and that each parent is a CA allowed
// to sign certificates, so a leaf cannot pose as an intermediate.
func checkSignedBy(leaf, intermediate, root *x509.Certificate) error {
	if !bytes.Equal(intermediate.RawIssuer, root.RawSubject) || !bytes.Equal(leaf.RawIssuer, intermediate.RawSubject) {
		return errIssuerName
	}
	return checkPath(leaf, intermediate, root)
}

var errIssuerName = errors.New("issuer name does not match the parent's subject")

// checkPath runs RFC 5280's path validation over the chain, as Apple's
// Java, Swift and Python verifiers do: the signatures, the limits a CA puts
// on what it signs (path length, name constraints) and critical
// extensions. checkProfile has already allowed Apple's markers critical,
// so copies without them go to x509.Verify, which knows no marker.
// Validity is checked per payload at its signedDate (checkValidity), so
// here the time is one at which all three certificates are valid.
func checkPath(leaf, intermediate, root *x509.Certificate) error {
	l, i := *leaf, *intermediate // copies: the chain cache keeps the originals
	l.UnhandledCriticalExtensions = withoutOID(l.UnhandledCriticalExtensions, oidAppleLeaf)
	i.UnhandledCriticalExtensions = withoutOID(i.UnhandledCriticalExtensions, oidAppleIntermediate)
	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	intermediates.AddCert(&i)
	at := leaf.NotBefore
	for _, c := range []*x509.Certificate{intermediate, root} {
		if c.NotBefore.After(at) {
			at = c.NotBefore
		}
	}
	_, err := l.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

func withoutOID(oids []asn1.ObjectIdentifier, drop asn1.ObjectIdentifier) []asn1.ObjectIdentifier {
	return slices.DeleteFunc(slices.Clone(oids), drop.Equal)
}

// checkValidity checks every certificate at the payload's signedDate, as
// Apple's verifier does with online checks off: a transaction signed while
// the leaf was valid stays verifiable after the leaf expires, and one
// signed outside a certificate's window never is. Bounds are inclusive
// (RFC 5280 4.1.2.5).
func (c *chain) checkValidity(at time.Time) error {
	for _, cert := range []struct {
		role string
		*x509.Certificate
	}{{"leaf", c.leaf}, {"intermediate", c.intermediate}, {"root", c.root}} {
		if at.Before(cert.NotBefore) || at.After(cert.NotAfter) {
			return newError(CodeCertificate, nil, "%s not valid at signedDate %s", cert.role, at.UTC().Format(time.RFC3339))
		}
	}
	return nil
}
