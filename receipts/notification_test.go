package receipts

import (
	"testing"
	"time"

	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/stretchr/testify/require"
)

func TestVerifyNotificationApp(t *testing.T) {
	ca := newCA(t, devca.Options{})
	now := time.Now()
	for name, tc := range map[string]struct {
		payload map[string]any
		code    Code // "" means it verifies
	}{
		"sandbox data":                  {notificationPayload(now, notificationData(Sandbox)), ""},
		"production data":               {notificationPayload(now, notificationData(Production)), ""},
		"production wrong app apple id": {withData(now, Production, "appAppleId", 42), CodeAppIdentifier},
		"production no app apple id":    {withData(now, Production, "appAppleId", nil), CodeAppIdentifier},
		// Apple requires the app id only in Production; Sandbox
		// notifications from TestFlight may carry none, but one naming
		// another app is not ours.
		"sandbox no app apple id":    {withData(now, Sandbox, "appAppleId", nil), ""},
		"sandbox wrong app apple id": {withData(now, Sandbox, "appAppleId", 42), CodeAppIdentifier},
		"summary wrong app apple id": {withBlock(now, "summary", map[string]any{
			"bundleId": testBundleID, "environment": Sandbox, "appAppleId": 42}), CodeAppIdentifier},
		"wrong bundle":         {withData(now, Sandbox, "bundleId", "com.example.other"), CodeAppIdentifier},
		"xcode":                {withData(now, Xcode, "", nil), CodeEnvironment},
		"summary":              {withBlock(now, "summary", notificationData(Production)), ""},
		"summary wrong bundle": {withBlock(now, "summary", map[string]any{"bundleId": "x", "environment": Sandbox}), CodeAppIdentifier},
		"external purchase token": {withBlock(now, "externalPurchaseToken", map[string]any{
			"externalPurchaseId": "SANDBOX_123", "bundleId": testBundleID, "appAppleId": testAppAppleID, "tokenCreationDate": now.UnixMilli(),
		}), ""},
		// RESCIND_CONSENT carries appData instead of data.
		"app data": {withBlock(now, "appData", map[string]any{
			"bundleId": testBundleID, "environment": Production, "appAppleId": testAppAppleID, "signedAppTransactionInfo": "x.y.z",
		}), ""},
		"app data wrong bundle": {withBlock(now, "appData", map[string]any{"bundleId": "x", "environment": Sandbox}), CodeAppIdentifier},
		"app data production no app apple id": {withBlock(now, "appData", map[string]any{
			"bundleId": testBundleID, "environment": Production}), CodeAppIdentifier},
		"neither data nor summary": {withBlock(now, "", nil), CodeAppIdentifier},
		"no notificationUUID":      {without(notificationPayload(now, notificationData(Sandbox)), "notificationUUID"), CodeMalformed},
		"no notificationType":      {without(notificationPayload(now, notificationData(Sandbox)), "notificationType"), CodeMalformed},
		"status as string":         {withData(now, Sandbox, "status", "1"), CodeMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			n, err := verifierFor(ca).VerifyNotification(sign(t, ca, tc.payload))
			if tc.code != "" {
				requireCode(t, err, tc.code)
				return
			}
			require.NoError(t, err)
			require.Equal(t, testBundleID, n.BundleID())
			require.NotEmpty(t, n.Raw)
			require.Nil(t, n.Transaction)
		})
	}
}

// A verifier for Sandbox alone may leave AppAppleID unset (the config
// requires it only with Production); then no app id outside Production is
// refused, whatever it is.
func TestVerifyNotificationNoAppAppleID(t *testing.T) {
	ca := newCA(t, devca.Options{})
	v := verifierFor(ca)
	v.AppAppleID, v.Environments = 0, []string{Sandbox}
	_, err := v.VerifyNotification(sign(t, ca, withData(time.Now(), Sandbox, "appAppleId", 42)))
	require.NoError(t, err)
}

func withData(now time.Time, env, key string, value any) map[string]any {
	d := notificationData(env)
	if key != "" {
		d[key] = value
		if value == nil {
			delete(d, key)
		}
	}
	return notificationPayload(now, d)
}

func withBlock(now time.Time, key string, block map[string]any) map[string]any {
	p := notificationPayload(now, nil)
	delete(p, "data")
	if key != "" {
		p[key] = block
	}
	return p
}

func without(p map[string]any, key string) map[string]any {
	delete(p, key)
	return p
}

// TestVerifyNotificationNested: the nested JWS are verified in full and
// must agree with the envelope.
func TestVerifyNotificationNested(t *testing.T) {
	ca, attacker := newCA(t, devca.Options{}), newCA(t, devca.Options{})
	now := time.Now()
	tx := func(edit func(map[string]any)) string {
		p := txPayload(now)
		if edit != nil {
			edit(p)
		}
		return sign(t, ca, p)
	}
	good := tx(nil)
	for name, tc := range map[string]struct {
		transaction, renewal string
		code                 Code
	}{
		"both good":               {good, sign(t, ca, renewalPayload(now)), ""},
		"transaction other app":   {tx(func(p map[string]any) { p["bundleId"] = "com.example.other" }), "", CodeInnerMismatch},
		"transaction other env":   {tx(func(p map[string]any) { p["environment"] = Production }), "", CodeInnerMismatch},
		"transaction forged":      {sign(t, attacker, txPayload(now)), "", CodeChain},
		"transaction bad sig":     {flipSignatureBit(t, good, 7), "", CodeSignature},
		"transaction garbage":     {"not.a.jws", "", CodeMalformed},
		"transaction expired CA":  {sign(t, ca, txPayload(now.AddDate(-20, 0, 0))), "", CodeCertificate},
		"renewal other env":       {good, sign(t, ca, without(renewalPayload(now), "environment")), CodeInnerMismatch},
		"renewal forged":          {good, sign(t, attacker, renewalPayload(now)), CodeChain},
		"renewal bad signature":   {good, flipSignatureBit(t, sign(t, ca, renewalPayload(now)), 300), CodeSignature},
		"renewal is a stray JSON": {good, b64url("{}") + "." + b64url("{}") + ".AA", CodeMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			d := notificationData(Sandbox)
			d["signedTransactionInfo"] = tc.transaction
			if tc.renewal != "" {
				d["signedRenewalInfo"] = tc.renewal
			}
			n, err := verifierFor(ca).VerifyNotification(sign(t, ca, notificationPayload(now, d)))
			if tc.code != "" {
				requireCode(t, err, tc.code)
				require.Contains(t, err.Error(), "signed", "detail names the nested field")
				require.Nil(t, n)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "2000000000000001", n.Transaction.TransactionID)
			require.Equal(t, tc.transaction, n.Transaction.JWS)
			require.Equal(t, "sub.monthly", n.Renewal.ProductID)
		})
	}
}
