package sqlite

import (
	"context"
	"database/sql"
	"errors"
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
	JWS                   string // as Apple signed it: its payload holds every field, also ones added later
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

// Recorded is what recording a notification did.
type Recorded struct {
	Outcome   string // what applying it did, e.g. granted, pending_user, revoked, recorded
	Duplicate bool   // it was recorded before: nothing changed, Outcome is the first one's
}

// RecordNotification stores n, once by its UUID, and applies its effect in
// the same transaction: either both are durable or neither is. The
// notification is recorded with what applying it actually did.
func (db *DB) RecordNotification(ctx context.Context, n Notification, eff Effect) (Recorded, error) {
	var rec Recorded
	jws := splitJWS(n.JWS).cutInner(eff.innerJWS()) // before the writer: hashing and searching ~7 KiB
	err := db.update(ctx, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT outcome FROM notifications WHERE notification_uuid = ?`, n.UUID).Scan(&rec.Outcome)
		if err == nil {
			rec.Duplicate = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if rec.Outcome, err = tx.applyEffect(ctx, n, eff); err != nil {
			return err
		}
		if err := tx.keep(ctx, jws); err != nil {
			return err
		}
		inner, innerAt := jws.innerArgs()
		_, err = tx.ExecContext(ctx, `INSERT INTO notifications (notification_uuid, notification_type, subtype,
			environment, signed_date, transaction_id, original_transaction_id, jws_header, jws, jws_inner, jws_inner_at,
			source, outcome, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			n.UUID, n.Type, n.Subtype, n.Environment, millis(n.SignedDate), n.TransactionID, n.OriginalTransactionID,
			jws.headerArg(), jws.rest, inner, innerAt, n.Source, rec.Outcome, millis(tx.now))
		return err
	})
	return rec, err
}

// innerJWS is the signed document the notification's payload carries
// whose certificate chain is worth storing once: its transaction's, else
// its renewal info's ("" for neither). Subscription notifications carry
// both, under the same chain; only the one is cut (migration 0009).
func (eff Effect) innerJWS() string {
	switch {
	case eff.Purchase != nil:
		return eff.Purchase.JWS
	case eff.Renewal != nil:
		return eff.Renewal.JWS
	}
	return ""
}

// applyEffect applies a new notification's effect and says what it did.
func (tx *Tx) applyEffect(ctx context.Context, n Notification, eff Effect) (string, error) {
	outcome := n.Outcome
	if eff.Purchase != nil {
		granted, err := tx.recordPurchase(ctx, *eff.Purchase, eff.Grant, "apple:"+n.Source)
		switch {
		case errors.Is(err, errAnotherTransaction):
			// Kept, and applied to nothing: its renewal info is of the other
			// transaction too. The outcome is the refusal's code.
			return entitlements.ErrorCode(err), nil
		case err != nil:
			return "", err
		case granted:
			outcome = string(entitlements.OutcomeGranted)
		default:
			if outcome, err = tx.purchaseOutcome(ctx, eff.Purchase.TransactionID); err != nil {
				return "", err
			}
		}
	}
	if eff.Renewal != nil {
		if err := tx.recordRenewal(ctx, eff.Renewal); err != nil {
			return "", err
		}
	}
	return outcome, nil
}
