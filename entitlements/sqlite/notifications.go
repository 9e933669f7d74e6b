package sqlite

import (
	"context"
	"time"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/receipts"
)

// Notification is a verified App Store Server Notification as recorded.
type Notification struct {
	UUID                  string
	Type, Subtype         string
	Environment           string
	SignedDate            time.Time
	TransactionID         string
	OriginalTransactionID string
	JWS                   string
	Decoded               []byte
	Source                string // webhook or reconcile
	Outcome               string // what applying it did
}

// Effect is what a notification does to the ledger, decided by package
// notifications before any storage.
type Effect struct {
	Purchase *entitlements.Purchase // the verified transaction it carries, if any
	Grant    entitlements.Grant
	Renewal  *receipts.RenewalInfo // the verified renewal info it carries, if any
}

// RecordNotification stores n, once by its UUID, and applies its effect in
// the same transaction: either both are durable or neither is. A duplicate
// changes nothing and reports duplicate.
func (db *DB) RecordNotification(ctx context.Context, n Notification, eff Effect) (duplicate bool, err error) {
	err = db.update(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO notifications (notification_uuid, notification_type, subtype,
			environment, signed_date, transaction_id, original_transaction_id, jws, decoded, source, outcome, received_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (notification_uuid) DO NOTHING`,
			n.UUID, n.Type, n.Subtype, n.Environment, millis(n.SignedDate), n.TransactionID, n.OriginalTransactionID,
			n.JWS, string(n.Decoded), n.Source, n.Outcome, millis(tx.now))
		if err != nil {
			return err
		}
		if rows, err := res.RowsAffected(); err != nil || rows == 0 {
			duplicate = true
			return err
		}
		if eff.Renewal != nil {
			if err := tx.recordRenewal(ctx, eff.Renewal); err != nil {
				return err
			}
		}
		if eff.Purchase == nil {
			return nil
		}
		return tx.recordPurchase(ctx, *eff.Purchase, eff.Grant, "apple:"+n.Source)
	})
	return duplicate, err
}
