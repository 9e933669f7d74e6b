package sqlite

import (
	"context"
	"database/sql"

	"github.com/creditsd/creditsd/entitlements"
)

// stateSQL reads a user's state in one statement, and so in one snapshot
// with no transaction around it: the first arm is the user's row with its
// tier, its allowance used today and the prior columns, the second a row
// for each live lot, and each arm is NULL in the other's columns. A lot's
// lot_id is never NULL, which tells the rows apart in any order. Its
// parameters: ?1 = user, ?2 = now (milliseconds), ?3 = the free tier,
// ?4 = today, and what join names.
//
// One statement instead of two (the row, then the lots) spares every read
// BEGIN and COMMIT and every spend a statement in the writer.
func stateSQL(prior, join string) string {
	return `SELECT u.app_account_token, u.debt, COALESCE((` + tierSQL + `), ?3),
		COALESCE((SELECT used FROM allowance_usage WHERE day = ?4 AND user_id = ?1), 0),
		` + prior + `, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
	FROM users u ` + join + ` WHERE u.user_id = ?1
	UNION ALL
	SELECT NULL, NULL, NULL, NULL, NULL, NULL, ` + lotColumns + ` FROM lots
	WHERE user_id = ?1 AND remaining > 0 AND (expires_at IS NULL OR expires_at > ?2)`
}

var (
	// userStateSQL reads a user's state.
	userStateSQL = stateSQL("NULL, NULL", "")
	// spendStateSQL reads it with the spend kept under idempotency key ?5.
	spendStateSQL = stateSQL("s.spend_id, s.request_hash",
		"LEFT JOIN spends s ON s.user_id = u.user_id AND s.idempotency_key = ?5")
)

// priorSpend is a spend already kept under an idempotency key.
type priorSpend struct {
	id, hash sql.NullString
}

// userState reads userID's state (userStateSQL), and says whether the user
// exists.
func (tx *Tx) userState(ctx context.Context, userID string) (entitlements.UserState, bool, error) {
	st, _, found, err := tx.readState(ctx, userStateSQL, userID)
	return st, found, err
}

// spendState is userState with the spend already kept under key, if any,
// read in the same statement: every spend asks both, in the writer.
func (tx *Tx) spendState(ctx context.Context, userID, key string) (entitlements.UserState, priorSpend, bool, error) {
	return tx.readState(ctx, spendStateSQL, userID, key)
}

// readState runs query, a stateSQL, for userID with the arguments after ?4.
func (tx *Tx) readState(ctx context.Context, query, userID string, more ...any) (entitlements.UserState, priorSpend, bool, error) {
	st := entitlements.UserState{UserID: userID, At: tx.now}
	var prior priorSpend
	rows, err := tx.QueryContext(ctx, query,
		append([]any{userID, millis(tx.now), entitlements.TierFree, tx.today().Key}, more...)...)
	if err != nil {
		return st, prior, false, err
	}
	defer rows.Close()
	var r stateRow
	dest := r.dest()
	found := false
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return st, prior, false, err
		}
		if r.lot.id.Valid {
			st.Lots = append(st.Lots, r.liveLot())
			continue
		}
		found = true
		st.AppAccountToken, st.Debt, st.Tier, st.AllowanceUsed = r.token.String, r.debt.Int64, r.tier.String, r.used.Int64
		prior = r.prior
	}
	return st, prior, found, rows.Err()
}

// stateRow is a row of a stateSQL: every column may be NULL.
type stateRow struct {
	token, tier sql.NullString
	debt, used  sql.NullInt64
	prior       priorSpend
	lot         struct {
		id, source, product, transaction, environment sql.NullString
		granted, remaining, grantedAt, expiresAt      sql.NullInt64
	}
}

// dest is where a row scans to, in the statement's column order.
func (r *stateRow) dest() []any {
	l := &r.lot
	return []any{&r.token, &r.debt, &r.tier, &r.used, &r.prior.id, &r.prior.hash,
		&l.id, &l.source, &l.product, &l.transaction, &l.environment, &l.granted, &l.remaining, &l.grantedAt, &l.expiresAt}
}

// liveLot is the lot in a row of the second arm.
func (r *stateRow) liveLot() entitlements.Lot {
	l := &r.lot
	return entitlements.Lot{LotID: l.id.String, Source: l.source.String, ProductID: l.product.String,
		TransactionID: l.transaction.String, Environment: l.environment.String, Granted: l.granted.Int64,
		Remaining: l.remaining.Int64, GrantedAt: fromMillis(l.grantedAt.Int64), ExpiresAt: fromNullMillis(l.expiresAt)}
}
