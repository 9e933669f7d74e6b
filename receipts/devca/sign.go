package devca

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
)

// Sign returns an ES256 compact JWS of payload with the header Apple uses:
// {"alg":"ES256","x5c":[leaf,intermediate,root]}. payload is marshalled with
// encoding/json unless it is already JSON ([]byte or json.RawMessage).
func (ca *CA) Sign(payload any) (string, error) {
	return ca.SignWithChain(payload, []*x509.Certificate{ca.Leaf, ca.Intermediate, ca.Root})
}

// SignWithChain signs with the CA's leaf key but puts x5c in the header, so
// tests can present chains of the wrong length or with foreign certificates.
func (ca *CA) SignWithChain(payload any, x5c []*x509.Certificate) (string, error) {
	chain := make([]string, len(x5c))
	for i, c := range x5c {
		chain[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	return ca.SignWithHeader(map[string]any{"alg": "ES256", "x5c": chain}, payload)
}

// SignWithHeader signs payload under an arbitrary protected header with the
// leaf key, ES256-style (SHA-256, raw R||S). It exists for tests of header
// tampering: the signature is genuine, only the header lies.
func (ca *CA) SignWithHeader(header map[string]any, payload any) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("devca: header: %w", err)
	}
	p, err := payloadJSON(payload)
	if err != nil {
		return "", err
	}
	signing := b64(h) + "." + b64(p)
	sig, err := signRaw(ca.leafKey, []byte(signing))
	if err != nil {
		return "", err
	}
	return signing + "." + b64(sig), nil
}

func payloadJSON(payload any) ([]byte, error) {
	switch p := payload.(type) {
	case []byte:
		return p, nil
	case json.RawMessage:
		return p, nil
	}
	p, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("devca: payload: %w", err)
	}
	return p, nil
}

// signRaw signs SHA-256(msg) and encodes R||S at the curve's size, as JWS
// does; with a P-256 key that is exactly ES256.
func signRaw(key *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	digest := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("devca: sign: %w", err)
	}
	size := (key.Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*size)
	r.FillBytes(out[:size])
	s.FillBytes(out[size:])
	return out, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// RootPEM is the root certificate in PEM, for receipts.ParseCertificates
// or a config file.
func (ca *CA) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root.Raw})
}
