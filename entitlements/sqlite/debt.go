package sqlite

import (
	"context"

	"github.com/creditsd/creditsd/entitlements"
)

// settleDebt pays the user's debt from their spendable lots, soonest-
// expiring first: credits that arrive while a user owes are used to pay.
func (tx *Tx) settleDebt(ctx context.Context, userID, actor string) error {
	var debt int64
	if err := tx.QueryRowContext(ctx, `SELECT debt FROM users WHERE user_id = ?`, userID).Scan(&debt); err != nil || debt == 0 {
		return err // almost every grant: nothing owed, no lots to read
	}
	lots, err := tx.liveLots(ctx, userID)
	if err != nil {
		return err
	}
	for _, l := range entitlements.SpendableLots(lots, tx.now) {
		paid, err := tx.payDebtFrom(ctx, userID, l.LotID, l.Remaining, actor)
		if err != nil || paid < l.Remaining {
			return err
		}
	}
	return nil
}

// payDebtFrom pays up to limit of the user's debt from one lot.
func (tx *Tx) payDebtFrom(ctx context.Context, userID, lotID string, limit int64, actor string) (int64, error) {
	var debt int64
	if err := tx.QueryRowContext(ctx, `SELECT debt FROM users WHERE user_id = ?`, userID).Scan(&debt); err != nil {
		return 0, err
	}
	pay := min(debt, limit)
	if pay <= 0 {
		return 0, nil
	}
	if err := tx.moveLot(ctx, userID, lotID, -pay); err != nil {
		return 0, err
	}
	if err := tx.addDebt(ctx, userID, -pay); err != nil {
		return 0, err
	}
	// No ref: these credits left the lot for good (spentFromSQL).
	return pay, tx.addEntry(ctx, entry{userID: userID, kind: "debt_paid", credits: -pay, lotID: lotID,
		reason: "paid debt from a refund", actor: actor})
}

func (tx *Tx) addDebt(ctx context.Context, userID string, delta int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE users SET debt = debt + ? WHERE user_id = ?`, delta, userID)
	return err
}
