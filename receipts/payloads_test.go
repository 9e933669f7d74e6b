package receipts

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMillis(t *testing.T) {
	for in, want := range map[string]time.Time{
		`null`:            {},
		`0`:               {},
		`1759302518835`:   time.Date(2025, 10, 1, 7, 8, 38, 835e6, time.UTC),
		`253402300799999`: time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC),
	} {
		var m millis
		require.NoError(t, json.Unmarshal([]byte(in), &m), in)
		require.Equal(t, want, m.time(), in)
		require.Equal(t, m, toMillis(want), in)
	}
	for _, in := range []string{`"1759302518835"`, `1.5`, `1e12`, `-1`, `true`, `{}`, `99999999999999999999`,
		`253402300800000`} { // the year 10000: no answer could write it
		var m millis
		require.Error(t, json.Unmarshal([]byte(in), &m), in)
	}
}

func TestTransactionJSON(t *testing.T) {
	var tx Transaction
	require.NoError(t, json.Unmarshal([]byte(`{
		"transactionId":"1","signedDate":1759302518835,"purchaseDate":1759302552000,
		"appAccountToken":"5B3A7C1E-0F43-4E1B-9C6E-2F0B3E5A8D11","revocationReason":0,"isUpgraded":true}`), &tx))
	require.Equal(t, "5B3A7C1E-0F43-4E1B-9C6E-2F0B3E5A8D11", tx.AppAccountToken, "kept as sent")
	require.True(t, tx.ExpiresDate.IsZero(), "absent date is zero")
	require.Equal(t, int64(1759302552000), tx.PurchaseDate.UnixMilli())
	require.NotNil(t, tx.RevocationReason)
	require.Equal(t, 0, *tx.RevocationReason)
	require.True(t, tx.Revoked(), "reason 0 (other) is still a revocation")

	out, err := json.Marshal(tx)
	require.NoError(t, err)
	require.JSONEq(t, `{"transactionId":"1","signedDate":1759302518835,"purchaseDate":1759302552000,
		"appAccountToken":"5B3A7C1E-0F43-4E1B-9C6E-2F0B3E5A8D11","revocationReason":0,"isUpgraded":true}`, string(out))
}

func TestTransactionRevoked(t *testing.T) {
	require.False(t, (&Transaction{}).Revoked())
	require.True(t, (&Transaction{RevocationDate: time.Now()}).Revoked())
	reason := 1
	require.True(t, (&Transaction{RevocationReason: &reason}).Revoked())
}

// TestRealPayloadsRoundTrip: every real payload decodes, re-encodes and
// decodes to the same value; fields we type lose nothing on the way.
func TestRealPayloadsRoundTrip(t *testing.T) {
	for _, v := range loadVectors(t) {
		payload, err := base64.RawURLEncoding.DecodeString(strings.Split(v.JWS, ".")[1])
		require.NoError(t, err)
		switch v.Kind {
		case "transaction":
			requireJSONRoundTrip[Transaction](t, payload)
		case "renewal":
			requireJSONRoundTrip[RenewalInfo](t, payload)
		default:
			requireJSONRoundTrip[Notification](t, payload)
		}
	}
}

func requireJSONRoundTrip[T any](t *testing.T, payload []byte) {
	t.Helper()
	var first, second T
	require.NoError(t, json.Unmarshal(payload, &first))
	out, err := json.Marshal(first)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(out, &second))
	require.Equal(t, first, second)
	// Every key we wrote was in Apple's payload with the same value.
	var orig, ours map[string]any
	require.NoError(t, json.Unmarshal(payload, &orig))
	require.NoError(t, json.Unmarshal(out, &ours))
	for k, v := range ours {
		require.Equal(t, orig[k], v, k)
	}
}

func TestRenewalInfoJSON(t *testing.T) {
	var r RenewalInfo
	require.NoError(t, json.Unmarshal([]byte(`{"originalTransactionId":"1","autoRenewStatus":0,
		"isInBillingRetryPeriod":false,"gracePeriodExpiresDate":1759302732000,"signedDate":1}`), &r))
	require.NotNil(t, r.IsInBillingRetryPeriod)
	require.False(t, *r.IsInBillingRetryPeriod)
	require.Equal(t, int64(1759302732000), r.GracePeriodExpiresDate.UnixMilli())
	require.Error(t, json.Unmarshal([]byte(`{"autoRenewStatus":"1"}`), &r))
	require.Error(t, json.Unmarshal([]byte(`{"isInBillingRetryPeriod":"false"}`), &r))
}

func TestNotificationHelpers(t *testing.T) {
	n := &Notification{Summary: &NotificationSummary{BundleID: "b", Environment: Sandbox, AppAppleID: 7}}
	require.Equal(t, "b", n.BundleID())
	require.Equal(t, Sandbox, n.Environment())
	require.Equal(t, int64(7), n.AppAppleID())

	n = &Notification{ExternalPurchaseToken: &ExternalPurchaseToken{ExternalPurchaseID: "abc", BundleID: "b", AppAppleID: 7}}
	require.Equal(t, Production, n.Environment())
	n.ExternalPurchaseToken.ExternalPurchaseID = "SANDBOX_abc"
	require.Equal(t, Sandbox, n.Environment())

	n = &Notification{AppData: &AppData{BundleID: "b", Environment: Sandbox, AppAppleID: 7}}
	require.Equal(t, "b", n.BundleID())
	require.Equal(t, Sandbox, n.Environment())
	require.Equal(t, int64(7), n.AppAppleID())

	n = &Notification{}
	require.Empty(t, n.BundleID())
	require.Empty(t, n.Environment())
	require.Zero(t, n.AppAppleID())
}
