package devca

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
)

// Load reads a CA written by Save. It checks that each key belongs to its
// certificate and that the chain's signatures hold, so a mixed-up directory
// fails here rather than as mysterious invalid_signature errors later.
func Load(dir string) (*CA, error) {
	ca := &CA{}
	var err error
	for _, p := range []struct {
		cert     **x509.Certificate
		key      **ecdsa.PrivateKey
		certFile string
		keyFile  string
	}{
		{&ca.Root, &ca.rootKey, rootCertFile, rootKeyFile},
		{&ca.Intermediate, &ca.intermediateKey, intermediateCertFile, intermediateKeyFile},
		{&ca.Leaf, &ca.leafKey, leafCertFile, leafKeyFile},
	} {
		if *p.cert, *p.key, err = loadPair(dir, p.certFile, p.keyFile); err != nil {
			return nil, err
		}
	}
	if err := ca.Intermediate.CheckSignatureFrom(ca.Root); err != nil {
		return nil, fmt.Errorf("devca: intermediate not signed by root: %w", err)
	}
	if err := ca.Leaf.CheckSignatureFrom(ca.Intermediate); err != nil {
		return nil, fmt.Errorf("devca: leaf not signed by intermediate: %w", err)
	}
	return ca, nil
}

func loadPair(dir, certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certDER, err := readPEM(filepath.Join(dir, certFile), "CERTIFICATE")
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, nil, fmt.Errorf("devca: %s: %w", certFile, err)
	}
	keyDER, err := readPEM(filepath.Join(dir, keyFile), "PRIVATE KEY")
	if err != nil {
		return nil, nil, err
	}
	parsed, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, nil, fmt.Errorf("devca: %s: %w", keyFile, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("devca: %s does not match %s", keyFile, certFile)
	}
	return cert, key, nil
}

func readPEM(path, blockType string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devca: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != blockType {
		return nil, fmt.Errorf("devca: %s is not a PEM %s", filepath.Base(path), blockType)
	}
	return block.Bytes, nil
}
