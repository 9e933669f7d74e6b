package receipts

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/stretchr/testify/require"
)

// FuzzVerifySigned signs arbitrary payloads with a development chain the
// Verifier trusts, so that everything past the signature is reached:
// payload decoding, signedDate and validity, app and environment checks,
// and a notification's nested JWS ({tx} and {renewal} in a payload stand
// for genuinely signed ones). Nothing may panic; every failure is a
// *Error; whatever verifies is this app's, in an accepted environment,
// with the ids callers key on, and encodes again.
func FuzzVerifySigned(f *testing.F) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ca, err := devca.New(devca.Options{Now: now})
	require.NoError(f, err)
	roots, err := ParseCertificates(ca.RootPEM())
	require.NoError(f, err)
	const bundle = "com.example"
	v := &Verifier{Roots: roots, BundleID: bundle, Environments: []string{Sandbox, Xcode}, AppAppleID: 42}
	sign := func(t testing.TB, p any) string {
		s, err := ca.Sign(p)
		require.NoError(t, err)
		return s
	}
	ms := now.Add(time.Hour).UnixMilli()
	tx := devca.Consumable(bundle, Sandbox, "p", "2000000000000001", "", now.Add(time.Hour))
	expand := strings.NewReplacer(
		"{tx}", sign(f, tx),
		"{renewal}", sign(f, devca.RenewalPayload{OriginalTransactionID: "1", SignedDate: ms, Environment: Sandbox}),
		"{tx-prod}", sign(f, devca.Consumable(bundle, Production, "p", "3", "", now.Add(time.Hour))),
	)
	txJSON, _ := json.Marshal(tx)
	f.Add(txJSON, byte(0))
	f.Add([]byte(`{"originalTransactionId":"1","signedDate":1767229200000,"environment":"Sandbox","autoRenewStatus":1}`), byte(1))
	f.Add([]byte(`{"notificationType":"ONE_TIME_CHARGE","notificationUUID":"u","signedDate":1767229200000,"data":{"bundleId":"com.example","environment":"Sandbox","signedTransactionInfo":"{tx}","signedRenewalInfo":"{renewal}"}}`), byte(2))
	f.Add([]byte(`{"notificationType":"X","notificationUUID":"u","signedDate":1767229200000,"data":{"bundleId":"com.example","environment":"Sandbox","appAppleId":7,"signedTransactionInfo":"{tx-prod}"}}`), byte(2))
	f.Add([]byte(`{"notificationType":"X","notificationUUID":"u","signedDate":1767229200000,"externalPurchaseToken":{"externalPurchaseId":"SANDBOX_1","bundleId":"com.example","appAppleId":42}}`), byte(2))
	f.Add([]byte(`{"notificationType":"X","notificationUUID":"u","signedDate":1767229200000,"summary":{"bundleId":"com.example","environment":"Xcode"}}`), byte(2))
	f.Fuzz(func(t *testing.T, payload []byte, kind byte) {
		payload = []byte(expand.Replace(string(payload)))
		s := sign(t, payload)
		var got any
		switch kind % 3 {
		case 0:
			tr, err := v.VerifyTransaction(s)
			if requireTyped(t, err) {
				return
			}
			require.NotEmpty(t, tr.TransactionID)
			require.Equal(t, bundle, tr.BundleID)
			require.Contains(t, v.Environments, tr.Environment)
			require.False(t, tr.SignedDate.IsZero())
			got = tr
		case 1:
			r, err := v.VerifyRenewalInfo(s)
			if requireTyped(t, err) {
				return
			}
			require.NotEmpty(t, r.OriginalTransactionID)
			require.Contains(t, v.Environments, r.Environment)
			got = r
		default:
			n, err := v.VerifyNotification(s)
			if requireTyped(t, err) {
				return
			}
			require.NotEmpty(t, n.NotificationType)
			require.NotEmpty(t, n.NotificationUUID)
			require.Equal(t, bundle, n.BundleID())
			require.Contains(t, v.Environments, n.Environment())
			require.True(t, n.AppAppleID() == 0 || n.AppAppleID() == v.AppAppleID, "appAppleId %d", n.AppAppleID())
			if n.Data != nil && n.Data.SignedTransactionInfo != "" {
				require.NotNil(t, n.Transaction)
				require.Equal(t, bundle, n.Transaction.BundleID)
				require.Equal(t, n.Environment(), n.Transaction.Environment)
			}
			if n.Data != nil && n.Data.SignedRenewalInfo != "" {
				require.NotNil(t, n.Renewal)
				require.Equal(t, n.Environment(), n.Renewal.Environment)
			}
			got = n
		}
		_, err := json.Marshal(got)
		require.NoError(t, err, "%s", payload)
	})
}

// requireTyped reports whether err is set, requiring it to be a *Error.
func requireTyped(t *testing.T, err error) bool {
	t.Helper()
	if err == nil {
		return false
	}
	var e *Error
	require.True(t, errors.As(err, &e), "not a *Error: %v", err)
	return true
}
