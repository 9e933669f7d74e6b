package receipts

import (
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/stretchr/testify/require"
)

func TestSignatureEveryBit(t *testing.T) {
	ca := newCA(t, devca.Options{})
	v := verifierFor(ca)
	s := sign(t, ca, txPayload(time.Now()))
	for bit := range 512 {
		_, err := v.VerifyTransaction(flipSignatureBit(t, s, bit))
		requireCode(t, err, CodeSignature)
	}
}

func TestSignaturePayloadChanged(t *testing.T) {
	ca := newCA(t, devca.Options{})
	v := verifierFor(ca)
	s := sign(t, ca, txPayload(time.Now()))
	_, err := v.VerifyTransaction(changePayloadDigit(t, s))
	requireCode(t, err, CodeSignature)

	// Swapping in another genuinely signed payload under this signature.
	other := strings.Split(sign(t, ca, renewalPayload(time.Now())), ".")
	parts := strings.Split(s, ".")
	_, err = v.VerifyTransaction(parts[0] + "." + other[1] + "." + parts[2])
	requireCode(t, err, CodeSignature)
}

func TestSignatureWrongLength(t *testing.T) {
	ca := newCA(t, devca.Options{})
	parts := strings.Split(sign(t, ca, txPayload(time.Now())), ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	require.NoError(t, err)
	for _, bad := range [][]byte{sig[:63], append(sig, 0), sig[:32], make([]byte, 64)} {
		s := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(bad)
		_, err := verifierFor(ca).VerifyTransaction(s)
		requireCode(t, err, CodeSignature)
	}
}

// TestSignatureByOtherKey: a valid chain presented with a signature made by
// a key that is not its leaf's.
func TestSignatureByOtherKey(t *testing.T) {
	ours, thief := newCA(t, devca.Options{}), newCA(t, devca.Options{})
	s, err := thief.SignWithChain(txPayload(time.Now()), []*x509.Certificate{ours.Leaf, ours.Intermediate, ours.Root})
	require.NoError(t, err)
	_, err = verifierFor(ours).VerifyTransaction(s)
	requireCode(t, err, CodeSignature)
}
