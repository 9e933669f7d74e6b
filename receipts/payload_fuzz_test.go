package receipts

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzPayloadJSON decodes arbitrary JSON as each of Apple's decoded
// payloads (what a verified JWS, or a stored one, holds). Nothing may
// panic; what decodes must encode again (so a stored payload can always be
// answered), encode the same again, and carry no date past the year
// 9999, which time.Time's MarshalJSON refuses.
func FuzzPayloadJSON(f *testing.F) {
	for _, s := range []string{
		`{"transactionId":"1","purchaseDate":1700000000000,"revocationReason":0,"quantity":1,"price":990}`,
		`{"transactionId":"1","purchaseDate":253402300799999,"expiresDate":null,"signedDate":1}`,
		`{"transactionId":"1","purchaseDate":-1}`, `{"purchaseDate":1.5}`, `{"purchaseDate":"1"}`, `{"PURCHASEDATE":5}`,
		`{"autoRenewStatus":1,"renewalDate":1700000000000,"isInBillingRetryPeriod":false}`,
		`{"notificationType":"ONE_TIME_CHARGE","notificationUUID":"u","signedDate":1,"data":{"bundleId":"b","status":1}}`,
		`{"notificationType":"EXTERNAL_PURCHASE_TOKEN","externalPurchaseToken":{"externalPurchaseId":"SANDBOX1","tokenCreationDate":7}}`,
		`{"summary":{"storefrontCountryCodes":["USA"]},"appData":{"appAppleId":1}}`, `null`, `{}`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		roundTrip[Transaction](t, b, func(v *Transaction) []any {
			return []any{v.PurchaseDate, v.OriginalPurchaseDate, v.ExpiresDate, v.SignedDate, v.RevocationDate}
		})
		roundTrip[RenewalInfo](t, b, func(v *RenewalInfo) []any {
			return []any{v.GracePeriodExpiresDate, v.RecentSubscriptionStartDate, v.RenewalDate, v.SignedDate}
		})
		roundTrip[Notification](t, b, func(v *Notification) []any {
			out := []any{v.SignedDate}
			if v.ExternalPurchaseToken != nil {
				out = append(out, v.ExternalPurchaseToken.TokenCreationDate)
			}
			return out
		})
	})
}

func roundTrip[T any](t *testing.T, b []byte, dates func(*T) []any) {
	t.Helper()
	var v T
	if json.Unmarshal(b, &v) != nil {
		return
	}
	for _, d := range dates(&v) {
		_, err := json.Marshal(d)
		require.NoError(t, err, "%T date from %q", v, b)
	}
	out, err := json.Marshal(v)
	require.NoError(t, err, "%T from %q", v, b)
	var again T
	require.NoError(t, json.Unmarshal(out, &again), "%T: %s", v, out)
	// An empty list and none both encode to nothing (omitempty), so the
	// encodings are compared, not the values.
	out2, err := json.Marshal(again)
	require.NoError(t, err)
	require.Equal(t, string(out), string(out2), "%T from %q", v, b)
}
