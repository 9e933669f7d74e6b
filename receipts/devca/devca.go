// Package devca is a development certificate authority shaped like Apple's
// App Store signing chain: a P-384 root (like Apple Root CA - G3), a P-384
// intermediate with Apple's intermediate marker OID, and a P-256 leaf with
// Apple's leaf marker OID. It signs ES256 JWS the way Apple does, so the
// local profile, simulators, load generators and tests can produce payloads
// that receipts.Verifier accepts once it trusts the CA's root.
//
// Never configure a devca root in production: anyone holding its keys can
// mint purchases.
package devca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"
)

// The extensions receipts requires; Apple's carry an ASN.1 NULL value.
var (
	oidAppleLeaf         = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 11, 1}
	oidAppleIntermediate = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 2, 1}
	asn1Null             = []byte{0x05, 0x00}
)

// CA holds a three-certificate chain and its keys. Keys stay unexported so
// that only Sign and Save ever touch them.
type CA struct {
	Root, Intermediate, Leaf *x509.Certificate

	rootKey, intermediateKey, leafKey *ecdsa.PrivateKey
}

// Options shape the chain. The zero value is a healthy chain valid from an
// hour before now for ten years; the other fields exist to build the broken
// chains that tests need.
type Options struct {
	Now                         time.Time // default time.Now()
	LeafNotBefore, LeafNotAfter time.Time // default Now-1h and Now+10y
	OmitLeafOID                 bool
	OmitIntermediateOID         bool
	LeafKeyCurve                elliptic.Curve // default P-256; others make a leaf receipts refuses
}

// New mints a fresh root, intermediate and leaf.
func New(opts Options) (*CA, error) {
	opts = opts.withDefaults()
	ca := &CA{}
	var err error
	if ca.rootKey, ca.Root, err = issue(rootTemplate(opts), nil, nil, elliptic.P384()); err != nil {
		return nil, fmt.Errorf("devca: root: %w", err)
	}
	if ca.intermediateKey, ca.Intermediate, err = issue(intermediateTemplate(opts), ca.Root, ca.rootKey, elliptic.P384()); err != nil {
		return nil, fmt.Errorf("devca: intermediate: %w", err)
	}
	if ca.leafKey, ca.Leaf, err = issue(leafTemplate(opts), ca.Intermediate, ca.intermediateKey, opts.LeafKeyCurve); err != nil {
		return nil, fmt.Errorf("devca: leaf: %w", err)
	}
	return ca, nil
}

func (o Options) withDefaults() Options {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.LeafNotBefore.IsZero() {
		o.LeafNotBefore = o.Now.Add(-time.Hour)
	}
	if o.LeafNotAfter.IsZero() {
		o.LeafNotAfter = o.Now.AddDate(10, 0, 0)
	}
	if o.LeafKeyCurve == nil {
		o.LeafKeyCurve = elliptic.P256()
	}
	return o
}

// issue makes a key on curve and a certificate for it from tmpl, signed by
// parent (self-signed when parent is nil).
func issue(tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, curve elliptic.Curve) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, err
}

func rootTemplate(o Options) *x509.Certificate {
	return &x509.Certificate{
		Subject:               name("creditsd Development Root CA"),
		NotBefore:             o.Now.Add(-time.Hour),
		NotAfter:              o.Now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

func intermediateTemplate(o Options) *x509.Certificate {
	t := &x509.Certificate{
		Subject:               name("creditsd Development Intermediate CA"),
		NotBefore:             o.Now.Add(-time.Hour),
		NotAfter:              o.Now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	if !o.OmitIntermediateOID {
		t.ExtraExtensions = []pkix.Extension{{Id: oidAppleIntermediate, Value: asn1Null}}
	}
	return t
}

func leafTemplate(o Options) *x509.Certificate {
	t := &x509.Certificate{
		Subject:               name("creditsd Development StoreKit Signing"),
		NotBefore:             o.LeafNotBefore,
		NotAfter:              o.LeafNotAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	if !o.OmitLeafOID {
		t.ExtraExtensions = []pkix.Extension{{Id: oidAppleLeaf, Value: asn1Null}}
	}
	return t
}

func name(cn string) pkix.Name {
	return pkix.Name{CommonName: cn, Organization: []string{"creditsd development"}}
}
