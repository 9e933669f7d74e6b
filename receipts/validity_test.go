package receipts

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/stretchr/testify/require"
)

// TestValidityAtSignedDate: certificates are judged at the payload's
// signedDate, never at the wall clock.
func TestValidityAtSignedDate(t *testing.T) {
	now := time.Now()
	signedAt := now.Add(-10 * time.Minute)
	for name, tc := range map[string]struct {
		opts devca.Options
		ok   bool
	}{
		// Expired long before verification, but valid when signed: Apple's
		// rule keeps such payloads verifiable.
		"leaf expired after signedDate":  {devca.Options{LeafNotAfter: signedAt.Add(time.Second)}, true},
		"leaf expired before signedDate": {devca.Options{LeafNotAfter: signedAt.Add(-time.Second)}, false},
		"leaf not yet valid":             {devca.Options{LeafNotBefore: signedAt.Add(time.Second)}, false},
		// The CA was created after the payload claims to be signed: the
		// leaf alone is valid, the intermediate and root are not yet.
		"intermediate and root not yet valid": {devca.Options{Now: signedAt.Add(2 * time.Hour), LeafNotBefore: signedAt.Add(-time.Hour)}, false},
		"intermediate and root expired":       {devca.Options{Now: signedAt.AddDate(-11, 0, 0), LeafNotAfter: signedAt.Add(time.Hour)}, false},
	} {
		t.Run(name, func(t *testing.T) {
			ca := newCA(t, tc.opts)
			_, err := verifierFor(ca).VerifyTransaction(sign(t, ca, txPayload(signedAt)))
			if tc.ok {
				require.NoError(t, err)
				return
			}
			requireCode(t, err, CodeCertificate)
		})
	}
}

// TestValidityBoundsInclusive: RFC 5280 makes NotBefore and NotAfter part
// of the window.
func TestValidityBoundsInclusive(t *testing.T) {
	ca := newCA(t, devca.Options{})
	c := &chain{leaf: ca.Leaf, intermediate: ca.Intermediate, root: ca.Root}
	require.NoError(t, c.checkValidity(ca.Leaf.NotAfter))
	require.NoError(t, c.checkValidity(ca.Leaf.NotBefore))
	requireCode(t, c.checkValidity(ca.Leaf.NotAfter.Add(time.Millisecond)), CodeCertificate)
	requireCode(t, c.checkValidity(ca.Leaf.NotBefore.Add(-time.Millisecond)), CodeCertificate)
}

func TestSignedDateRequired(t *testing.T) {
	ca := newCA(t, devca.Options{})
	for name, literal := range map[string]string{
		"absent": "", "null": "null", "zero": "0", "string": `"1759302518835"`,
		"fraction": "1759302518835.5", "exponent": "1.7e12", "negative": "-1", "bool": "true",
	} {
		t.Run(name, func(t *testing.T) {
			p := txPayload(time.Now())
			delete(p, "signedDate")
			raw, err := json.Marshal(p)
			require.NoError(t, err)
			if literal != "" {
				raw = append(raw[:len(raw)-1], `,"signedDate":`+literal+`}`...)
			}
			_, err = verifierFor(ca).VerifyTransaction(sign(t, ca, json.RawMessage(raw)))
			requireCode(t, err, CodeMalformed)
		})
	}
}
