package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/creditsd/creditsd/entitlements"
)

// AdminGrant creates a lot for a goodwill grant, once per idempotency key.
// A replay with the same body answers the same lot (replayed is true), even
// after the lot's expiry has passed; a new grant must expire in the future.
func (db *DB) AdminGrant(ctx context.Context, req entitlements.GrantRequest) (entitlements.Lot, entitlements.UserState, bool, error) {
	var lot entitlements.Lot
	var st entitlements.UserState
	replayed := false
	err := db.update(ctx, func(tx *Tx) (err error) {
		if _, err = tx.ensureUser(ctx, req.UserID, req.Token, req.Actor); err != nil {
			return err
		}
		if lot, replayed, err = tx.replayGrant(ctx, req); err != nil || replayed {
			return err
		}
		if err = req.CheckNew(tx.now); err != nil {
			return err
		}
		lot, err = tx.adminGrant(ctx, req)
		return err
	})
	if err == nil {
		st, err = db.stateAfter(ctx, req.UserID)
	}
	return lot, st, replayed, err
}

func (tx *Tx) replayGrant(ctx context.Context, req entitlements.GrantRequest) (entitlements.Lot, bool, error) {
	var hash, lotID string
	err := tx.QueryRowContext(ctx, `SELECT request_hash, lot_id FROM admin_grants WHERE user_id = ? AND idempotency_key = ?`,
		req.UserID, req.Key).Scan(&hash, &lotID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return entitlements.Lot{}, false, nil
	case err != nil:
		return entitlements.Lot{}, false, err
	case hash != req.Hash:
		return entitlements.Lot{}, false, entitlements.Errorf(entitlements.KindConflict, "idempotency_key_reused",
			"idempotency key %q was used for a different grant", req.Key)
	}
	lot, err := scanLot(tx.QueryRowContext(ctx, lotSQL, req.UserID, lotID))
	return lot, true, err
}

func (tx *Tx) adminGrant(ctx context.Context, req entitlements.GrantRequest) (entitlements.Lot, error) {
	lot := entitlements.Lot{LotID: newID("lot"), Source: entitlements.SourceAdmin, Granted: req.Credits,
		Remaining: req.Credits, GrantedAt: tx.now, ExpiresAt: req.ExpiresAt}
	if err := tx.createLot(ctx, newLot{lot: lot, userID: req.UserID, kind: "admin_grant", reason: req.Reason,
		actor: req.Actor, ref: req.Key}); err != nil {
		return lot, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO admin_grants (user_id, idempotency_key, request_hash, lot_id)
		VALUES (?, ?, ?, ?)`, req.UserID, req.Key, req.Hash, lot.LotID); err != nil {
		return lot, err
	}
	if err := tx.settleDebt(ctx, req.UserID, req.Actor); err != nil {
		return lot, err
	}
	return lot, tx.QueryRowContext(ctx, `SELECT remaining FROM lots WHERE user_id = ? AND lot_id = ?`,
		req.UserID, lot.LotID).Scan(&lot.Remaining)
}
