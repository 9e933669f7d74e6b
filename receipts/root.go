package receipts

import (
	"bytes"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"sync"
)

// appleRootG3PEM is Apple Root CA - G3, the root of every App Store Server
// JWS chain. Embedded so a default Verifier needs no files and no network;
// its fingerprint is pinned by TestAppleRootCAG3Fingerprint.
//
//go:embed AppleRootCA-G3.pem
var appleRootG3PEM []byte

// defaultRoots is parsed once: every Verifier without Roots shares it.
var defaultRoots = sync.OnceValue(func() []*x509.Certificate {
	return []*x509.Certificate{AppleRootCAG3()}
})

// AppleRootCAG3 returns a fresh copy of the embedded Apple Root CA - G3, so
// a caller that changes it cannot change what other Verifiers trust.
func AppleRootCAG3() *x509.Certificate {
	certs, err := ParseCertificates(appleRootG3PEM)
	if err != nil || len(certs) != 1 {
		panic("receipts: embedded Apple Root CA - G3 is unreadable") // a broken build, not an input
	}
	return certs[0]
}

// ParseCertificates reads certificates from configuration: one or more PEM
// CERTIFICATE blocks, or DER (one or several concatenated). A PEM file with
// any other block type (a private key pasted by mistake) is refused rather
// than silently skipped.
func ParseCertificates(pemOrDER []byte) ([]*x509.Certificate, error) {
	if bytes.Contains(pemOrDER, []byte("-----BEGIN")) {
		return parsePEM(pemOrDER)
	}
	certs, err := x509.ParseCertificates(pemOrDER)
	if err != nil {
		return nil, newError(CodeCertificate, err, "not a DER certificate")
	}
	if len(certs) == 0 {
		return nil, newError(CodeCertificate, nil, "no certificate found")
	}
	return certs, nil
}

func parsePEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, newError(CodeCertificate, nil, "PEM block %q is not a CERTIFICATE", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, newError(CodeCertificate, err, "PEM certificate %d is unparsable", len(certs)+1)
		}
		certs = append(certs, cert)
	}
	// pem.Decode stops quietly at a damaged block; a config file with one
	// must fail, not lose the certificates after it.
	if bytes.Contains(data, []byte("-----BEGIN")) {
		return nil, newError(CodeCertificate, nil, "PEM block %d is damaged", len(certs)+1)
	}
	if len(certs) == 0 {
		return nil, newError(CodeCertificate, nil, "no PEM certificate found")
	}
	return certs, nil
}
