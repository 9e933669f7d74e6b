package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/creditsd/creditsd/entitlements"
)

// Reverse reverses a spend of userID, once: allowance parts only if the
// allowance day has not changed, lot parts to their lots with their
// original expiry, if they have not expired since. A repeat answers the
// same reversal and changes nothing (created is false).
func (db *DB) Reverse(ctx context.Context, userID, token, spendID, actor string) (entitlements.Reversal, entitlements.UserState, bool, error) {
	var rv entitlements.Reversal
	var st entitlements.UserState
	created := false
	err := db.update(ctx, func(tx *Tx) (err error) {
		if _, err = tx.ensureUser(ctx, userID, token, actor); err != nil {
			return err
		}
		sp, err := tx.loadSpend(ctx, userID, spendID)
		if err != nil {
			return err
		}
		rv, err = tx.loadReversal(ctx, sp)
		if errors.Is(err, sql.ErrNoRows) {
			created = true
			rv, err = tx.reverse(ctx, userID, sp, actor)
		}
		return err
	})
	if err == nil {
		st, err = db.stateAfter(ctx, userID)
	}
	return rv, st, created, err
}

func (tx *Tx) loadReversal(ctx context.Context, sp entitlements.Spend) (entitlements.Reversal, error) {
	rv := entitlements.Reversal{SpendID: sp.SpendID, LotsReturned: []entitlements.LotPart{}, LotsForfeited: []entitlements.LotPart{}}
	var created int64
	err := tx.QueryRowContext(ctx, `SELECT reversal_id, allowance_returned, allowance_forfeited, created_at
		FROM reversals WHERE spend_id = ?`, sp.SpendID).Scan(&rv.ReversalID, &rv.AllowanceReturned, &rv.AllowanceForfeited, &created)
	if err != nil {
		return rv, err
	}
	rv.CreatedAt = fromMillis(created)
	for _, part := range sp.FromLots {
		var reason sql.NullString
		if err := tx.QueryRowContext(ctx, reversedToLotSQL, part.LotID, sp.SpendID).Scan(&reason); err != nil {
			return rv, err
		}
		// No entry at all is a part that was not given back either.
		file(&rv, part, !reason.Valid || reason.String == forfeitReason)
	}
	return rv, nil
}

// reversedToLotSQL is the reason of the entry by which a reversal gave a
// lot (?1) its part of the spend (?2), NULL for none: forfeitReason for a
// part forfeited, so the ledger keeps the split. One row always, so that
// a missing entry never reads as a missing reversal (sql.ErrNoRows). The
// kinds' IN repeats entries_lot_spent's condition, so that SQLite seeks
// the lot's entries in it.
const reversedToLotSQL = `SELECT (SELECT reason FROM entries WHERE lot_id = ?
	AND kind IN ('spend', 'reverse', 'debt_paid') AND kind = 'reverse' AND ref = ? LIMIT 1)`

// forfeitReason marks the reverse entry of a part forfeited.
const forfeitReason = "failed generation; its lot had expired"

// file puts a lot part of a reversal among the lots given back or the lots
// forfeited.
func file(rv *entitlements.Reversal, part entitlements.LotPart, forfeited bool) {
	if forfeited {
		rv.LotsForfeited = append(rv.LotsForfeited, part)
	} else {
		rv.LotsReturned = append(rv.LotsReturned, part)
	}
}

func (tx *Tx) reverse(ctx context.Context, userID string, sp entitlements.Spend, actor string) (entitlements.Reversal, error) {
	rv := entitlements.Reversal{ReversalID: newID("rv"), SpendID: sp.SpendID, CreatedAt: tx.now,
		LotsReturned: []entitlements.LotPart{}, LotsForfeited: []entitlements.LotPart{}}
	if sp.AllowanceDay == tx.today().Key {
		rv.AllowanceReturned = sp.FromAllowance
	} else {
		rv.AllowanceForfeited = sp.FromAllowance
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO reversals (spend_id, reversal_id, allowance_returned,
		allowance_forfeited, actor, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		sp.SpendID, rv.ReversalID, rv.AllowanceReturned, rv.AllowanceForfeited, actor, millis(tx.now)); err != nil {
		return rv, err
	}
	if err := tx.returnAllowance(ctx, userID, sp, rv.AllowanceReturned, actor); err != nil {
		return rv, err
	}
	for _, part := range sp.FromLots {
		forfeit, product, err := tx.forfeits(ctx, part.LotID)
		if err != nil {
			return rv, err
		}
		file(&rv, part, forfeit)
		if forfeit {
			err = tx.forfeitToLot(ctx, userID, sp, part, product, actor)
		} else {
			err = tx.returnToLot(ctx, userID, sp, part, actor)
		}
		if err != nil {
			return rv, err
		}
	}
	return rv, tx.settleDebt(ctx, userID, actor)
}

// forfeits reports whether a part of a spend stays spent because its lot
// has expired since (Lot.Expired's instant): given back, it would only
// expire, as the allowance of a day that is over would not be given back
// either; and the lot's product, which its expiry names. A refund in force
// on the lot still settles the part (returnToLot): had the spend never
// been, the refund would have removed those credits rather than billed
// them, and what other credits paid of its debt goes back to them.
func (tx *Tx) forfeits(ctx context.Context, lotID string) (bool, string, error) {
	var expired bool
	var product string
	if err := tx.QueryRowContext(ctx, `SELECT expires_at IS NOT NULL AND expires_at <= ?, COALESCE(product_id, '')
		FROM lots WHERE lot_id = ?`, millis(tx.now), lotID).Scan(&expired, &product); err != nil || !expired {
		return false, product, err
	}
	_, refunded, err := tx.activeRefundOf(ctx, lotID)
	return !refunded, product, err
}

// forfeitToLot records a part forfeited as given back and written off at
// once, the lot's remaining unchanged. The pair keeps what the lot's
// entries say true: nothing of the part was consumed (spentFrom nets the
// spend out, so a later refund of the pack bills no debt for it, and a
// consumption answer counts it unused), and it expired (expiredFrom counts
// it, as it counts the sweep's).
func (tx *Tx) forfeitToLot(ctx context.Context, userID string, sp entitlements.Spend, part entitlements.LotPart,
	product, actor string) error {
	if err := tx.addEntry(ctx, entry{userID: userID, kind: "reverse", credits: part.Credits, lotID: part.LotID,
		product: sp.Product, reason: forfeitReason, actor: actor, ref: sp.SpendID}); err != nil {
		return err
	}
	return tx.addEntry(ctx, entry{userID: userID, kind: "expire", credits: -part.Credits, lotID: part.LotID,
		product: product, reason: "expired", actor: actor, ref: sp.SpendID})
}

func (tx *Tx) returnAllowance(ctx context.Context, userID string, sp entitlements.Spend, credits int64, actor string) error {
	if credits == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE allowance_usage SET used = used - ? WHERE day = ? AND user_id = ?`,
		credits, sp.AllowanceDay, userID); err != nil {
		return err
	}
	return tx.addEntry(ctx, entry{userID: userID, kind: "reverse", credits: credits, product: sp.Product,
		reason: "failed generation", actor: actor, ref: sp.SpendID, day: sp.AllowanceDay})
}

// returnToLot gives a part back to its lot. If a refund in force has
// revoked that lot since, the returned credits are no longer spent, so the
// refund takes them as far as it billed credits already spent: the debt it
// created that is still owed, what it wrote off (forgive), and the debt
// others paid, which they get back (refundTakesBack). The rest stays in
// the lot: the refund already has all Apple revoked.
func (tx *Tx) returnToLot(ctx context.Context, userID string, sp entitlements.Spend, part entitlements.LotPart, actor string) error {
	if err := tx.moveLot(ctx, userID, part.LotID, part.Credits); err != nil {
		return err
	}
	if err := tx.addEntry(ctx, entry{userID: userID, kind: "reverse", credits: part.Credits, lotID: part.LotID,
		product: sp.Product, reason: "failed generation", actor: actor, ref: sp.SpendID}); err != nil {
		return err
	}
	r, found, err := tx.activeRefundOf(ctx, part.LotID)
	if err != nil || !found {
		return err
	}
	return tx.refundTakesBack(ctx, r, part.Credits, actor, sp.SpendID)
}
