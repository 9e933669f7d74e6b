package receipts

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/stretchr/testify/require"
)

func TestVerifyTransactionApp(t *testing.T) {
	ca := newCA(t, devca.Options{})
	for name, tc := range map[string]struct {
		edit func(map[string]any)
		code Code
	}{
		"other bundle":       {func(p map[string]any) { p["bundleId"] = "com.example.other" }, CodeAppIdentifier},
		"no bundle":          {func(p map[string]any) { delete(p, "bundleId") }, CodeAppIdentifier},
		"bundle other case":  {func(p map[string]any) { p["bundleId"] = "COM.example.credits" }, CodeAppIdentifier},
		"Xcode not accepted": {func(p map[string]any) { p["environment"] = Xcode }, CodeEnvironment},
		"no environment":     {func(p map[string]any) { delete(p, "environment") }, CodeEnvironment},
		"no transactionId":   {func(p map[string]any) { delete(p, "transactionId") }, CodeMalformed},
		"no purchaseDate":    {func(p map[string]any) { delete(p, "purchaseDate") }, CodeMalformed},
		"purchaseDate 0":     {func(p map[string]any) { p["purchaseDate"] = 0 }, CodeMalformed},
		"price as string":    {func(p map[string]any) { p["price"] = "990" }, CodeMalformed},
		"date as string":     {func(p map[string]any) { p["purchaseDate"] = "1759302552000" }, CodeMalformed},
		"quantity as float":  {func(p map[string]any) { p["quantity"] = 1.5 }, CodeMalformed},
		"id as number":       {func(p map[string]any) { p["transactionId"] = 2000000000000001 }, CodeMalformed},
		"payload is array":   {nil, CodeMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			var payload any = []any{txPayload(time.Now())}
			if tc.edit != nil {
				p := txPayload(time.Now())
				tc.edit(p)
				payload = p
			}
			_, err := verifierFor(ca).VerifyTransaction(sign(t, ca, payload))
			requireCode(t, err, tc.code)
		})
	}
}

// TestUnknownFieldsTolerated: Apple adds fields; they must not break us and
// must survive in Raw.
func TestUnknownFieldsTolerated(t *testing.T) {
	ca := newCA(t, devca.Options{})
	p := txPayload(time.Now())
	p["someFutureField"] = map[string]any{"nested": []int{1, 2}}
	tx, err := verifierFor(ca).VerifyTransaction(sign(t, ca, p))
	require.NoError(t, err)
	require.Contains(t, string(tx.Raw), "someFutureField")
}

func TestVerifyRenewalInfoEnvironment(t *testing.T) {
	ca := newCA(t, devca.Options{})
	r, err := verifierFor(ca).VerifyRenewalInfo(sign(t, ca, renewalPayload(time.Now())))
	require.NoError(t, err)
	require.Equal(t, "sub.monthly", r.ProductID)

	p := renewalPayload(time.Now())
	p["environment"] = LocalTesting
	_, err = verifierFor(ca).VerifyRenewalInfo(sign(t, ca, p))
	requireCode(t, err, CodeEnvironment)

	delete(p, "originalTransactionId")
	p["environment"] = Sandbox
	_, err = verifierFor(ca).VerifyRenewalInfo(sign(t, ca, p))
	requireCode(t, err, CodeMalformed)
}

func TestVerifierConfig(t *testing.T) {
	ca := newCA(t, devca.Options{})
	s := sign(t, ca, txPayload(time.Now()))
	for name, edit := range map[string]func(*Verifier){
		"no bundle id":                    func(v *Verifier) { v.BundleID = "" },
		"no environments":                 func(v *Verifier) { v.Environments = nil },
		"unknown environment":             func(v *Verifier) { v.Environments = []string{"sandbox"} },
		"production without app apple id": func(v *Verifier) { v.AppAppleID = 0 },
		"nil root":                        func(v *Verifier) { v.Roots = []*x509.Certificate{nil} },
	} {
		t.Run(name, func(t *testing.T) {
			v := verifierFor(ca)
			edit(v)
			_, err := v.VerifyTransaction(s)
			requireCode(t, err, CodeConfig)
			require.True(t, err.(*Error).Retryable())
			_, err = v.VerifyRenewalInfo(s)
			requireCode(t, err, CodeConfig)
			_, err = v.VerifyNotification(s)
			requireCode(t, err, CodeConfig)
		})
	}
}
