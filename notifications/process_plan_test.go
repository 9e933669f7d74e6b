package notifications

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/entitlements/sqlite"
	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
)

// recordingStore keeps what Process asked it to record.
type recordingStore struct {
	rec sqlite.Notification
	eff sqlite.Effect
}

func (s *recordingStore) RecordNotification(_ context.Context, n sqlite.Notification, e sqlite.Effect) (sqlite.Recorded, error) {
	s.rec, s.eff = n, e
	return sqlite.Recorded{Outcome: n.Outcome}, nil
}

// TestProcessPlansWhatItRecords: what Process hands the store for each
// shape of notification.
func TestProcessPlansWhatItRecords(t *testing.T) {
	f := newFixture(t)
	sign := func(p any) string {
		s, err := f.ca.Sign(p)
		require.NoError(t, err)
		return s
	}
	tx := devca.Consumable(bundleID, receipts.Sandbox, "credits10", "tx-2", f.tokens.Token("alice"), now.Add(-time.Minute))
	tx.OriginalTransactionID = "tx-1"
	renewal := sign(devca.RenewalPayload{OriginalTransactionID: "tx-1", ProductID: "sub", AutoRenewProductID: "sub",
		AutoRenewStatus: 1, SignedDate: devca.Millis(now), Environment: receipts.Sandbox})
	notification := func(uuid string, data *devca.NotificationData) string {
		data.AppAppleID, data.BundleID, data.Environment = 1, bundleID, receipts.Sandbox
		return sign(devca.NotificationPayload{NotificationType: "DID_RENEW", Subtype: "BILLING_RECOVERY", NotificationUUID: uuid, Version: "2.0",
			SignedDate: devca.Millis(now), Data: data})
	}
	process := func(jws, source string, mutate func(*Processor)) *recordingStore {
		store := &recordingStore{}
		p := f.processor(store)
		if mutate != nil {
			mutate(p)
		}
		_, err := p.Process(t.Context(), jws, source)
		require.NoError(t, err)
		return store
	}

	t.Run("transaction and renewal", func(t *testing.T) {
		s := process(notification("p-1", &devca.NotificationData{SignedTransactionInfo: sign(tx), SignedRenewalInfo: renewal}), SourceReconcile, nil)
		require.Equal(t, "p-1", s.rec.UUID, "idempotency is by notificationUUID alone")
		require.Equal(t, "BILLING_RECOVERY", s.rec.Subtype)
		require.Equal(t, SourceReconcile, s.rec.Source)
		require.Equal(t, receipts.Sandbox, s.rec.Environment)
		require.Equal(t, "tx-2", s.rec.TransactionID)
		require.Equal(t, "tx-1", s.rec.OriginalTransactionID)
		require.NotNil(t, s.eff.Purchase)
		require.NotNil(t, s.eff.Renewal, "the renewal info is applied with the transaction")
		require.Equal(t, entitlements.OutcomeGranted, s.eff.Grant.Outcome)
	})
	t.Run("renewal alone", func(t *testing.T) {
		s := process(notification("p-2", &devca.NotificationData{SignedRenewalInfo: renewal}), SourceWebhook, nil)
		require.Nil(t, s.eff.Purchase)
		require.NotNil(t, s.eff.Renewal)
	})
	t.Run("grant planned at the processor's clock, not the signedDate", func(t *testing.T) {
		s := process(notification("p-3", &devca.NotificationData{SignedTransactionInfo: sign(tx)}), SourceWebhook,
			func(p *Processor) { p.Now = func() time.Time { return now.AddDate(2, 0, 0) } })
		require.Equal(t, entitlements.OutcomeExpired, s.eff.Grant.Outcome)
	})
	t.Run("a transaction that cannot be planned records no purchase", func(t *testing.T) {
		bad := tx
		bad.TransactionID, bad.Quantity = "tx-3", 0
		s := process(notification("p-4", &devca.NotificationData{SignedTransactionInfo: sign(bad), SignedRenewalInfo: renewal}), SourceWebhook, nil)
		require.Equal(t, "invalid_quantity", s.rec.Outcome)
		require.Nil(t, s.eff.Purchase)
		require.NotNil(t, s.eff.Renewal)
	})
}

// The contract caps the webhook body at 64 KiB.
func TestWebhookBodyCapIs64KiB(t *testing.T) {
	f := newFixture(t)
	status, body := f.post(`{"signedPayload":"` + strings.Repeat("a", 64<<10) + `"}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
	require.Equal(t, "body_too_large", body["code"])
}
