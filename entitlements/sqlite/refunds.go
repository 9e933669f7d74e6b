package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/creditsd/creditsd/entitlements"
)

// lotOwnerSQL finds a lot by lot_id alone, for a caller that does not know
// its user yet: the lot_id index, then the lots' key; and the quantity of
// its purchase, whose units a prorated refund may name (1 for a lot no
// App Store purchase made).
const lotOwnerSQL = `SELECT lots.user_id, lots.granted, lots.remaining, lots.expires_at,
	COALESCE(apple_transactions.quantity, 1) FROM lots LEFT JOIN apple_transactions USING (transaction_id)
	WHERE lots.lot_id = ?`

// refundLot applies Apple's revocation of a granted pack: the unspent part
// is removed; the already-spent part becomes debt or is written off, as the
// refund policy says. It takes effect once per revocation.
// percentMilli is the share revoked, in milliunits (Purchase.RefundPercent).
func (tx *Tx) refundLot(ctx context.Context, transactionID string, percentMilli int64, lotID, actor string) error {
	return tx.applyRefund(ctx, transactionID, percentMilli, lotID, actor, refundTerms{policy: tx.policy.Refund})
}

// refundTerms are what a refund applies besides Apple's revocation: the
// refund policy, and a lot that pays its debt first whatever its expiry
// (in a revision, the restored credits that paid the revised refund's).
type refundTerms struct {
	policy string
	payer  entitlements.Lot // LotID "" for none
}

// applyRefund takes back the share percentMilli of the lot lotID, as
// terms say, and records the refund in force.
func (tx *Tx) applyRefund(ctx context.Context, transactionID string, percentMilli int64, lotID, actor string, terms refundTerms) error {
	l, err := tx.refundedLot(ctx, lotID)
	if err != nil {
		return err
	}
	plan := l.plan(percentMilli, terms.policy)
	if err := tx.insertRefund(ctx, transactionID, l, plan, terms.policy, percentMilli); err != nil {
		return err
	}
	if err := tx.applyRefundPlan(ctx, l.userID, lotID, transactionID, plan, actor); err != nil {
		return err
	}
	return tx.payDebtAfterRefund(ctx, l.userID, terms, actor)
}

// refundedLot is what a refund plans with: the lot, its owner, the units
// its purchase bought, and what left it, spent or written off by the
// expiry sweep.
type refundedLot struct {
	lotID, userID      string
	granted, remaining int64
	quantity           int64
	spent, expired     int64
}

// refundedLot reads the lot lotID for a refund of it.
func (tx *Tx) refundedLot(ctx context.Context, lotID string) (refundedLot, error) {
	l := refundedLot{lotID: lotID}
	var expiresAt sql.NullInt64
	if err := tx.QueryRowContext(ctx, lotOwnerSQL, lotID).
		Scan(&l.userID, &l.granted, &l.remaining, &expiresAt, &l.quantity); err != nil {
		return refundedLot{}, err
	}
	var err error
	if l.spent, err = tx.spentFrom(ctx, lotID); err != nil {
		return refundedLot{}, err
	}
	// Before its expiry the sweep has written none of the lot off (unless
	// the clock was put back since it ran: then the refund plans without
	// what the sweep wrote off, a rare case not worth a read of every
	// refund).
	if expiresAt.Valid && expiresAt.Int64 <= millis(tx.now) {
		if l.expired, err = tx.expiredFrom(ctx, l.userID, lotID); err != nil {
			return refundedLot{}, err
		}
	}
	return l, nil
}

// plan is what refunding the share percentMilli of l takes back. Credits
// the sweep wrote off were never spent: the refund plans with them as it
// would before the sweep came, so that what a refund bills never depends
// on when the sweep ran. What it removes of them, the sweep has already
// taken from the lot.
func (l refundedLot) plan(percentMilli int64, policy string) entitlements.RefundPlan {
	plan := entitlements.PlanRefund(l.granted, l.quantity, l.remaining+l.expired, l.spent, percentMilli, policy)
	plan.Removed = min(plan.Removed, l.remaining)
	return plan
}

// insertRefund records the refund of l as the one in force, marked with
// the ledger's last entry: its reversal finds the debt payments made since
// from there (restoredExpiry).
func (tx *Tx) insertRefund(ctx context.Context, transactionID string, l refundedLot, plan entitlements.RefundPlan, policy string, percentMilli int64) error {
	last, err := lastEntry(tx.q)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO refunds (transaction_id, lot_id, user_id, removed, debt, written_off,
		policy, status, created_at, after_entry, percent) VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?)`,
		transactionID, l.lotID, l.userID, plan.Removed, plan.Debt, plan.WrittenOff, policy, millis(tx.now),
		last, percentMilli)
	return err
}

// payDebtAfterRefund pays the debt a refund left: from terms' payer first,
// whatever its expiry, then from the credits the user already holds, so
// that spendable and the 402 debt_outstanding never disagree.
func (tx *Tx) payDebtAfterRefund(ctx context.Context, userID string, terms refundTerms, actor string) error {
	if terms.payer.LotID != "" {
		if _, err := tx.payDebtFrom(ctx, userID, terms.payer.LotID, terms.payer.Remaining, actor); err != nil {
			return err
		}
	}
	return tx.settleDebt(ctx, userID, actor)
}

func (tx *Tx) applyRefundPlan(ctx context.Context, userID, lotID, ref string, plan entitlements.RefundPlan, actor string) error {
	if err := tx.moveLot(ctx, userID, lotID, -plan.Removed); err != nil {
		return err
	}
	reason := fmt.Sprintf("Apple refunded %d credits", plan.Revoked)
	if plan.WrittenOff > 0 {
		reason += fmt.Sprintf("; %d already spent were written off (refund_policy forgive)", plan.WrittenOff)
	}
	if err := tx.addEntry(ctx, entry{userID: userID, kind: "refund", credits: -plan.Removed, lotID: lotID,
		reason: reason, actor: actor, ref: ref}); err != nil || plan.Debt == 0 {
		return err
	}
	if err := tx.addDebt(ctx, userID, plan.Debt); err != nil {
		return err
	}
	return tx.addEntry(ctx, entry{userID: userID, kind: "debt", credits: -plan.Debt,
		reason: fmt.Sprintf("%d refunded credits were already spent", plan.Debt), actor: actor, ref: ref})
}

// spentFromSQL sums what left a lot for good: its spends net of their
// reversals, and the debt it paid by settleDebt (payDebtFrom, whose entries
// name no ref). It leaves out the debt_paid entries of refundTakesBack,
// which name the reversed spend: credits a reversal returned to a refunded
// lot, paying that refund's own debt. Reversing the refund gives them back
// to the lot, and a lot is refunded again only after that, so counting
// them would bill the next refund for credits nobody consumed. Its kinds
// are the condition of the partial index entries_lot_spent (migration
// 0013), word for word, so that SQLite seeks it.
const spentFromSQL = `SELECT COALESCE(-SUM(credits), 0) FROM entries
	WHERE lot_id = ? AND kind IN ('spend', 'reverse', 'debt_paid') AND NOT (kind = 'debt_paid' AND ref != '')`

// spentFrom is what generations (and debt payments) consumed from a lot,
// net of reversals.
func (tx *Tx) spentFrom(ctx context.Context, lotID string) (int64, error) {
	var sum int64
	err := tx.QueryRowContext(ctx, spentFromSQL, lotID).Scan(&sum)
	return sum, err
}

// expiredFrom is what the expiry sweep wrote off of a lot. A lot's expire
// entries are found among its user's (entries_user), every one of which is
// read: an index for them would cost every sweep's write, and only a
// refund of a lot that has expired, rare, asks.
func (tx *Tx) expiredFrom(ctx context.Context, userID, lotID string) (int64, error) {
	var sum int64
	err := tx.QueryRowContext(ctx, `SELECT COALESCE(-SUM(credits), 0) FROM entries
		WHERE user_id = ? AND lot_id = ? AND kind = 'expire'`, userID, lotID).Scan(&sum)
	return sum, err
}

// refund is a refund in force and what it took.
type refund struct {
	id                           int64
	transactionID, lotID, userID string
	removed, debt, writtenOff    int64         // debt: created and not cancelled since
	owed                         int64         // the user's whole debt now
	createdAt                    int64         // Unix ms
	afterEntry, percent          sql.NullInt64 // migration 0016; NULL for refunds made before it
	policy                       string
}

func (tx *Tx) activeRefund(ctx context.Context, where string, arg any) (refund, bool, error) {
	var r refund
	err := tx.QueryRowContext(ctx, `SELECT r.refund_id, r.transaction_id, r.lot_id, r.user_id, r.removed, r.debt,
		r.written_off, u.debt, r.created_at, r.after_entry, r.percent, r.policy FROM refunds r
		JOIN users u ON u.user_id = r.user_id WHERE `+where+` AND r.status = 'active'`, arg).
		Scan(&r.id, &r.transactionID, &r.lotID, &r.userID, &r.removed, &r.debt, &r.writtenOff, &r.owed, &r.createdAt,
			&r.afterEntry, &r.percent, &r.policy)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	return r, err == nil, err
}

func (tx *Tx) activeRefundOf(ctx context.Context, lotID string) (refund, bool, error) {
	return tx.activeRefund(ctx, "r.lot_id = ?", lotID)
}

// refundTakesBack settles credits just returned to refund r's lot as if
// the spend had never taken them, when the refund would have removed them
// instead of billing them: its unpaid debt first (paid from the lot), then
// what it wrote off (removed again), then the debt that other credits have
// paid, which goes to a restored lot that lives as long as they would
// have (restoredExpiry): left in the refunded pack, they expired with it,
// while the lots that paid would have kept them. All three now count as
// removed by r, so that reversing r restores them to the pack, and none
// of its debt is still to give back.
func (tx *Tx) refundTakesBack(ctx context.Context, r refund, credits int64, actor, ref string) error {
	owed := min(r.debt, r.owed)
	pay := min(credits, owed)
	if pay > 0 {
		if err := tx.moveLot(ctx, r.userID, r.lotID, -pay); err != nil {
			return err
		}
		if err := tx.addDebt(ctx, r.userID, -pay); err != nil {
			return err
		}
		// ref, the reversed spend, marks it as the refund's own (spentFromSQL).
		if err := tx.addEntry(ctx, entry{userID: r.userID, kind: "debt_paid", credits: -pay, lotID: r.lotID,
			reason: "returned credits pay the refund's debt", actor: actor, ref: ref}); err != nil {
			return err
		}
	}
	take := min(credits-pay, r.writtenOff)
	if take > 0 {
		if err := tx.moveLot(ctx, r.userID, r.lotID, -take); err != nil {
			return err
		}
		if err := tx.addEntry(ctx, entry{userID: r.userID, kind: "refund", credits: -take, lotID: r.lotID,
			reason: "returned credits of a refunded pack", actor: actor, ref: ref}); err != nil {
			return err
		}
	}
	back := min(credits-pay-take, r.debt-owed)
	if back > 0 {
		if err := tx.giveBackPaidDebt(ctx, r, back, actor, ref); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `UPDATE refunds SET removed = removed + ?, debt = debt - ?, written_off = written_off - ?
		WHERE refund_id = ?`, pay+take+back, pay+back, take, r.id)
	return err
}

// giveBackPaidDebt moves credits returned to refund r's lot, which other
// credits had paid r's debt for, to a restored lot.
func (tx *Tx) giveBackPaidDebt(ctx context.Context, r refund, credits int64, actor, spendID string) error {
	if err := tx.moveLot(ctx, r.userID, r.lotID, -credits); err != nil {
		return err
	}
	if err := tx.addEntry(ctx, entry{userID: r.userID, kind: "refund", credits: -credits, lotID: r.lotID,
		reason: "returned credits of a refunded pack, whose debt other credits paid", actor: actor, ref: spendID}); err != nil {
		return err
	}
	pack, err := scanLot(tx.QueryRowContext(ctx, lotSQL, r.userID, r.lotID))
	if err != nil {
		return err
	}
	_, err = tx.restoredLot(ctx, r, pack, credits, newLot{userID: r.userID, kind: "refund_reversed",
		reason: "a failed generation's credits went to the refund: debt that other credits paid comes back", actor: actor,
		ref: r.transactionID})
	return err
}

// reverseRefund undoes the refund in force for a transaction, restoring
// exactly what it took: first it cancels what is still owed of the debt it
// created; what it removed from the lot goes back to the lot with its
// original expiry; the debt that other credits paid comes back as a
// restored lot that lives as long as they did (restoredExpiry; the lot
// keeps room for its own spends, which may still be reversed). It reports
// whether a refund was in force.
func (tx *Tx) reverseRefund(ctx context.Context, transactionID, actor string) (bool, error) {
	r, found, err := tx.activeRefund(ctx, "r.transaction_id = ?", transactionID)
	if err != nil || !found {
		return false, err
	}
	if _, err := tx.undoRefund(ctx, r, actor); err != nil {
		return false, err
	}
	// Restored credits pay what another refund left owed, as in refundLot,
	// so that spendable and a 402 debt_outstanding never disagree.
	return true, tx.settleDebt(ctx, r.userID, actor)
}

// undoRefund is reverseRefund's work, without the settling of other debt
// after it; it returns the restored lot it made, if any (LotID "").
func (tx *Tx) undoRefund(ctx context.Context, r refund, actor string) (restored entitlements.Lot, err error) {
	transactionID := r.transactionID
	if _, err := tx.ExecContext(ctx, `UPDATE refunds SET status = 'reversed', reversed_at = ? WHERE refund_id = ?`,
		millis(tx.now), r.id); err != nil {
		return restored, err
	}
	cancel := min(r.debt, r.owed)
	if cancel > 0 {
		if err := tx.addDebt(ctx, r.userID, -cancel); err != nil {
			return restored, err
		}
		if err := tx.addEntry(ctx, entry{userID: r.userID, kind: "refund_reversed", credits: cancel,
			reason: "refund reversed: debt cancelled", actor: actor, ref: transactionID}); err != nil {
			return restored, err
		}
	}
	return tx.restore(ctx, r, r.removed, r.debt-cancel, actor)
}

// lotUnitsSQL is a lot's credits and the quantity of its purchase, as
// lotOwnerSQL reads them, for a caller that knows its user.
const lotUnitsSQL = `SELECT lots.granted, COALESCE(apple_transactions.quantity, 1)
	FROM lots LEFT JOIN apple_transactions USING (transaction_id) WHERE lots.user_id = ? AND lots.lot_id = ?`

// reviseRefund applies a newer version of a refunded pack's transaction
// that revokes another number of its credits (another
// revocationPercentage, for REFUND_PRORATED): the refund in force is
// undone and the new share applied under the same refund policy, in this
// transaction. The credits that had paid the old refund's debt, restored
// by the undoing, pay the new one first whatever their expiry, so the user
// ends with the credits and debt a refund of the new share would have
// left; what they give back lives as a restored lot does (restoredExpiry).
// A refund made before migration 0016 does not know its share, and stays.
func (tx *Tx) reviseRefund(ctx context.Context, p entitlements.Purchase, lotID, actor string) error {
	r, found, err := tx.activeRefundOf(ctx, lotID)
	if err != nil || !found || !r.percent.Valid {
		return err
	}
	var granted, quantity int64
	if err := tx.QueryRowContext(ctx, lotUnitsSQL, r.userID, lotID).Scan(&granted, &quantity); err != nil {
		return err
	}
	if entitlements.Revoked(granted, quantity, r.percent.Int64) == entitlements.Revoked(granted, quantity, p.RefundPercent()) {
		return nil // another percentage, the same credits: nothing to redo
	}
	restored, err := tx.undoRefund(ctx, r, actor)
	if err != nil {
		return err
	}
	return tx.applyRefund(ctx, p.TransactionID, p.RefundPercent(), lotID, actor, refundTerms{policy: r.policy, payer: restored})
}

// restore gives back what a reversed refund took: toLot to its lot (up to
// what the lot can hold), the rest and toRestored to a restored lot, so
// nothing is lost. It returns the restored lot, if it made one.
func (tx *Tx) restore(ctx context.Context, r refund, toLot, toRestored int64, actor string) (entitlements.Lot, error) {
	lot, err := scanLot(tx.QueryRowContext(ctx, lotSQL, r.userID, r.lotID))
	if err != nil {
		return entitlements.Lot{}, err
	}
	back := min(toLot, lot.Granted-lot.Remaining)
	if back > 0 {
		if err := tx.moveLot(ctx, r.userID, r.lotID, back); err != nil {
			return entitlements.Lot{}, err
		}
		if err := tx.addEntry(ctx, entry{userID: r.userID, kind: "refund_reversed", credits: back, lotID: r.lotID,
			reason: "refund reversed: credits restored", actor: actor, ref: r.transactionID}); err != nil {
			return entitlements.Lot{}, err
		}
	}
	over := toLot - back + toRestored
	if over <= 0 {
		return entitlements.Lot{}, nil
	}
	return tx.restoredLot(ctx, r, lot, over, newLot{userID: r.userID, kind: "refund_reversed",
		reason: "refund reversed: debt that other credits paid comes back", actor: actor, ref: r.transactionID})
}

// restoredLot creates a lot of credits that give back what other lots paid
// of refund r's debt, with the entry n describes: the refunded pack's
// product, and restoredExpiry's life.
func (tx *Tx) restoredLot(ctx context.Context, r refund, pack entitlements.Lot, credits int64, n newLot) (entitlements.Lot, error) {
	expires, err := tx.restoredExpiry(ctx, r, pack.ExpiresAt)
	if err != nil {
		return entitlements.Lot{}, err
	}
	n.lot = entitlements.Lot{LotID: newID("lot"), Source: entitlements.SourceRestored, ProductID: pack.ProductID,
		Environment: pack.Environment, Granted: credits, Remaining: credits, GrantedAt: tx.now, ExpiresAt: expires}
	return n.lot, tx.createLot(ctx, n)
}

// restoredPayersSQL finds, for ?1 = user and ?2 = the refunded lot, among
// the debt payments since the refund began (the condition appended),
// whether a lot that never expires paid, and the latest expiry of those
// that do. settleDebt's payments name no ref; refundTakesBack's name the
// reversed spend, and pay a refund's debt from its own pack, which gives
// them back when that refund is reversed: they are left out, on this
// refund's lot (?2) and on any other's.
const restoredPayersSQL = `SELECT count(*) FILTER (WHERE l.expires_at IS NULL) > 0, max(l.expires_at)
	FROM entries e JOIN lots l ON l.user_id = e.user_id AND l.lot_id = e.lot_id
	WHERE e.user_id = ?1 AND e.kind = 'debt_paid' AND e.ref = '' AND e.lot_id != ?2`

// The refund's start: after its last entry before it (?3), a seek of
// entries_user; for a refund made before migration 0016, by time, which
// filters every entry the user has.
const (
	restoredExpirySQL       = restoredPayersSQL + ` AND e.entry_id > ?3`
	restoredExpiryByTimeSQL = restoredPayersSQL + ` AND e.created_at >= ?3`
)

// restoredExpiry is when the lot a reversed refund restores expires. Its
// credits give back what other lots paid of the refund's debt: had Apple
// never refunded, they would still be in those lots. So it lasts as long
// as the longest-lived lot that paid the user's debt since the refund
// began (never, if one never expires), and no less than the refunded lot.
// Debt is one number per user, so when refunds overlap their payments cannot
// be told apart: the user gets the longer life, never a lot born expired
// that its payers were not.
func (tx *Tx) restoredExpiry(ctx context.Context, r refund, refunded *time.Time) (*time.Time, error) {
	query, since := restoredExpirySQL, r.afterEntry.Int64
	if !r.afterEntry.Valid {
		query, since = restoredExpiryByTimeSQL, r.createdAt
	}
	var never bool
	var latest sql.NullInt64
	if err := tx.QueryRowContext(ctx, query, r.userID, r.lotID, since).Scan(&never, &latest); err != nil {
		return nil, err
	}
	switch {
	case never || refunded == nil:
		return nil, nil
	case latest.Valid && latest.Int64 > millis(*refunded):
		return fromNullMillis(latest), nil
	}
	return refunded, nil
}
