package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/creditsd/creditsd/entitlements"
)

// Spend charges a spend in one transaction: today's allowance first, then
// lots soonest-expiring first, all or nothing. A replay of the key with the
// same body answers the first spend and changes nothing; with another body
// it is a conflict. A refused spend is not kept under its key.
func (db *DB) Spend(ctx context.Context, req entitlements.SpendRequest) (entitlements.Spend, entitlements.UserState, bool, error) {
	var sp entitlements.Spend
	var st entitlements.UserState
	replayed := false
	err := db.update(ctx, func(tx *Tx) (err error) {
		var prior priorSpend
		if st, prior, err = tx.ensuredSpendState(ctx, req); err != nil {
			return err
		}
		if prior.id.Valid {
			sp, err = tx.replaySpend(ctx, req, prior)
			replayed = err == nil
			return err
		}
		if req.Refused != nil {
			return req.Refused
		}
		if sp, err = tx.charge(ctx, req, st); err != nil {
			return err
		}
		// The answer is the state it planned with, less the plan: reading
		// the user again would cost a second round of queries per spend.
		st = st.After(entitlements.SpendPlan{FromAllowance: sp.FromAllowance, FromLots: sp.FromLots})
		return nil
	})
	return sp, st, replayed, err
}

// ensuredSpendState reads the user's state and the spend kept under the
// request's key, creating the user first if new (a new user has kept no
// spends). An existing user, nearly every spend, costs one statement and
// the lots: the writer's time is the service's scarcest.
func (tx *Tx) ensuredSpendState(ctx context.Context, req entitlements.SpendRequest) (entitlements.UserState, priorSpend, error) {
	st, prior, found, err := tx.spendState(ctx, req.UserID, req.Key)
	if err != nil || found {
		return st, prior, err
	}
	if _, err := tx.ensureUser(ctx, req.UserID, req.Token, req.Actor); err != nil {
		return st, prior, err
	}
	st, err = tx.mustUserState(ctx, req.UserID)
	return st, prior, err
}

// replaySpend answers the spend kept under the request's key, or a
// conflict if the key was used for another body.
func (tx *Tx) replaySpend(ctx context.Context, req entitlements.SpendRequest, prior priorSpend) (entitlements.Spend, error) {
	if prior.hash.String != req.Hash {
		return entitlements.Spend{}, entitlements.Errorf(entitlements.KindConflict, "idempotency_key_reused",
			"idempotency key %q was used for a different spend", req.Key)
	}
	return tx.loadSpend(ctx, req.UserID, prior.id.String)
}

func (tx *Tx) charge(ctx context.Context, req entitlements.SpendRequest, st entitlements.UserState) (entitlements.Spend, error) {
	day := tx.today()
	remaining := tx.policy.Allowance.Limit(st.Tier, day) - st.AllowanceUsed
	plan, err := entitlements.PlanSpend(req.Credits, remaining, st.Debt, st.Lots, tx.now)
	if err != nil {
		return entitlements.Spend{}, err
	}
	sp := entitlements.Spend{SpendID: newID("sp"), Product: req.Product, Credits: req.Credits, FromAllowance: plan.FromAllowance,
		AllowanceDay: day.Key, FromLots: plan.FromLots, CreatedAt: tx.now}
	if _, err := tx.ExecContext(ctx, `INSERT INTO spends (spend_id, user_id, idempotency_key, request_hash, product,
		credits, from_allowance, allowance_day, actor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sp.SpendID, req.UserID, req.Key, req.Hash, sp.Product, sp.Credits, sp.FromAllowance, sp.AllowanceDay,
		req.Actor, millis(tx.now)); err != nil {
		return entitlements.Spend{}, err
	}
	if err := tx.useAllowance(ctx, req.UserID, day.Key, plan.FromAllowance, sp, req.Actor); err != nil {
		return entitlements.Spend{}, err
	}
	for _, part := range plan.FromLots {
		if err := tx.takeFromLot(ctx, req.UserID, sp, part, req.Actor); err != nil {
			return entitlements.Spend{}, err
		}
	}
	return sp, nil
}

func (tx *Tx) useAllowance(ctx context.Context, userID, day string, credits int64, sp entitlements.Spend, actor string) error {
	if credits == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO allowance_usage (day, user_id, used) VALUES (?, ?, ?)
		ON CONFLICT (day, user_id) DO UPDATE SET used = used + excluded.used`, day, userID, credits); err != nil {
		return err
	}
	return tx.addEntry(ctx, entry{userID: userID, kind: "spend", credits: -credits, product: sp.Product,
		reason: "allowance", actor: actor, ref: sp.SpendID, day: day})
}

func (tx *Tx) takeFromLot(ctx context.Context, userID string, sp entitlements.Spend, part entitlements.LotPart, actor string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO spend_lots (spend_id, lot_id, credits) VALUES (?, ?, ?)`,
		sp.SpendID, part.LotID, part.Credits); err != nil {
		return err
	}
	if err := tx.moveLot(ctx, userID, part.LotID, -part.Credits); err != nil {
		return err
	}
	return tx.addEntry(ctx, entry{userID: userID, kind: "spend", credits: -part.Credits, lotID: part.LotID,
		product: sp.Product, reason: "generation", actor: actor, ref: sp.SpendID})
}

const moveLotSQL = `UPDATE lots SET remaining = remaining + ? WHERE user_id = ? AND lot_id = ?`

// moveLot adds delta to userID's lot's remaining; the schema's CHECK
// refuses any result outside 0..granted, so a bug cannot create or overdraw
// credits. Naming the user makes it one seek of the lots' key instead of
// two (the lot_id index, then the key); a lot that is not the user's is an
// error, not a silent no-op.
func (tx *Tx) moveLot(ctx context.Context, userID, lotID string, delta int64) error {
	res, err := tx.ExecContext(ctx, moveLotSQL, delta, userID, lotID)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err == nil && n != 1 {
		err = fmt.Errorf("sqlite: user %s has no lot %s", userID, lotID)
	}
	return err
}

// loadSpend reads a spend of userID; another user's spend is not found.
func (tx *Tx) loadSpend(ctx context.Context, userID, spendID string) (entitlements.Spend, error) {
	sp := entitlements.Spend{SpendID: spendID}
	var created int64
	err := tx.QueryRowContext(ctx, `SELECT s.product, s.credits, s.from_allowance, s.allowance_day, s.created_at,
		COALESCE(r.reversal_id, '') FROM spends s LEFT JOIN reversals r ON r.spend_id = s.spend_id
		WHERE s.spend_id = ? AND s.user_id = ?`, spendID, userID).
		Scan(&sp.Product, &sp.Credits, &sp.FromAllowance, &sp.AllowanceDay, &created, &sp.ReversalID)
	if errors.Is(err, sql.ErrNoRows) {
		return sp, entitlements.Errorf(entitlements.KindNotFound, "spend_not_found", "user %s has no spend %s", userID, spendID)
	}
	if err != nil {
		return sp, err
	}
	sp.CreatedAt = fromMillis(created)
	sp.FromLots, err = tx.spendLots(ctx, spendID)
	return sp, err
}

func (tx *Tx) spendLots(ctx context.Context, spendID string) ([]entitlements.LotPart, error) {
	rows, err := tx.QueryContext(ctx, `SELECT sl.lot_id, sl.credits FROM spend_lots sl JOIN lots l ON l.lot_id = sl.lot_id
		WHERE sl.spend_id = ? ORDER BY l.expires_at IS NULL, l.expires_at, l.granted_at, l.lot_id`, spendID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	parts := []entitlements.LotPart{}
	for rows.Next() {
		var p entitlements.LotPart
		if err := rows.Scan(&p.LotID, &p.Credits); err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	return parts, rows.Err()
}

// SpendKept reads the request hash of the spend kept under userID's key,
// on the read pool: a refused request asks, and must not cost the writer.
func (db *DB) SpendKept(ctx context.Context, userID, key string) (hash string, found bool, err error) {
	err = db.view(ctx, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT request_hash FROM spends WHERE user_id = ? AND idempotency_key = ?`,
			userID, key).Scan(&hash)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		found = err == nil
		return err
	})
	return hash, found, err
}
