package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"github.com/creditsd/creditsd/entitlements"
)

// UserState reads userID's state, creating the user on first sight. A new
// user is given every purchase that reached us with their app_account_token
// before they ever called, in the name of actor, the reader (ensureUser).
// Reading an existing user writes nothing.
func (db *DB) UserState(ctx context.Context, userID, token, actor string) (entitlements.UserState, error) {
	var st entitlements.UserState
	found := false
	err := db.view(ctx, func(tx *Tx) (err error) {
		st, found, err = tx.userState(ctx, userID)
		return err
	})
	if err != nil || found {
		return st, err
	}
	err = db.update(ctx, func(tx *Tx) (err error) {
		if _, err = tx.ensureUser(ctx, userID, token, actor); err != nil {
			return err
		}
		st, _, err = tx.userState(ctx, userID)
		return err
	})
	return st, err
}

// userState reads userID's state: its row, tier and allowance used today
// in one statement, then its live lots.
func (tx *Tx) userState(ctx context.Context, userID string) (entitlements.UserState, bool, error) {
	st := entitlements.UserState{UserID: userID, At: tx.now}
	err := tx.QueryRowContext(ctx, userRowSQL+` FROM users u WHERE u.user_id = ?1`,
		userID, millis(tx.now), entitlements.TierFree, tx.today().Key).
		Scan(&st.AppAccountToken, &st.Debt, &st.Tier, &st.AllowanceUsed)
	st.Tier = tx.bestTier(st.Tier)
	return tx.withLots(ctx, st, err)
}

// userRowSQL selects a user's row, tier and allowance used today for
// ?1 = user, ?2 = now, ?3 = the free tier, ?4 = today, from users u.
const userRowSQL = `SELECT u.app_account_token, u.debt, COALESCE((` + tierSQL + `), ?3),
	COALESCE((SELECT used FROM allowance_usage WHERE day = ?4 AND user_id = ?1), 0)`

// withLots completes a state whose row was read (err from that read) with
// the user's live lots, and says whether the user exists.
func (tx *Tx) withLots(ctx context.Context, st entitlements.UserState, err error) (entitlements.UserState, bool, error) {
	if errors.Is(err, sql.ErrNoRows) {
		return st, false, nil
	}
	if err != nil {
		return st, false, err
	}
	st.Lots, err = tx.liveLots(ctx, st.UserID)
	return st, true, err
}

// priorSpend is a spend already kept under an idempotency key.
type priorSpend struct {
	id, hash sql.NullString
}

// spendState is userState with the spend already kept under key, if any,
// read in the same statement: every spend asks both, in the writer.
func (tx *Tx) spendState(ctx context.Context, userID, key string) (entitlements.UserState, priorSpend, bool, error) {
	st := entitlements.UserState{UserID: userID, At: tx.now}
	var prior priorSpend
	err := tx.QueryRowContext(ctx, userRowSQL+`, s.spend_id, s.request_hash FROM users u
		LEFT JOIN spends s ON s.user_id = u.user_id AND s.idempotency_key = ?5 WHERE u.user_id = ?1`,
		userID, millis(tx.now), entitlements.TierFree, tx.today().Key, key).
		Scan(&st.AppAccountToken, &st.Debt, &st.Tier, &st.AllowanceUsed, &prior.id, &prior.hash)
	st.Tier = tx.bestTier(st.Tier)
	st, found, err := tx.withLots(ctx, st, err)
	return st, prior, found, err
}

// today is the allowance day that contains the transaction's moment.
func (tx *Tx) today() entitlements.Day { return tx.policy.Allowance.Day(tx.now) }

// stateAfter reads the state of a user a write has just ensured, on the
// read pool: the writer's time is the service's scarcest.
func (db *DB) stateAfter(ctx context.Context, userID string) (st entitlements.UserState, err error) {
	err = db.view(ctx, func(tx *Tx) error {
		st, _, err = tx.userState(ctx, userID)
		return err
	})
	return st, err
}

// mustUserState is userState for a user this transaction has ensured.
func (tx *Tx) mustUserState(ctx context.Context, userID string) (entitlements.UserState, error) {
	st, _, err := tx.userState(ctx, userID)
	return st, err
}

// ensureUser creates userID if it is new and assigns it the purchases that
// waited for its token. Their entries name actor, the caller of the call
// that created the user: that call gave her the purchases, and the user
// herself did nothing when a service's spend or grant named her first.
func (tx *Tx) ensureUser(ctx context.Context, userID, token, actor string) (created bool, err error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO users (user_id, app_account_token, created_at) VALUES (?, ?, ?)
		ON CONFLICT (user_id) DO NOTHING`, userID, token, millis(tx.now))
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	pending, err := tx.pendingFor(ctx, token)
	if err != nil {
		return true, err
	}
	adopted := map[string]bool{}
	for _, p := range pending {
		if _, err := tx.assignPurchase(ctx, p.id, userID, actor); err != nil {
			return true, err
		}
		// A subscription's first owner takes the token-less periods the
		// webhook kept before it had one, as a claim or the webhook
		// giving it an owner would (adoptRenewals).
		if key := p.environment + "/" + p.original; p.subscription && !adopted[key] {
			adopted[key] = true
			if _, err := tx.adoptRenewals(ctx, p.original, p.environment); err != nil {
				return true, err
			}
		}
	}
	return true, nil
}

// pendingPurchase is a transaction kept for a token before its user came.
type pendingPurchase struct {
	id, original, environment string
	subscription              bool // a tier product's or a renewal's (ofSubscription)
}

func (tx *Tx) pendingFor(ctx context.Context, token string) ([]pendingPurchase, error) {
	rows, err := tx.QueryContext(ctx, `SELECT transaction_id, original_transaction_id, environment,
		tier != '' OR original_transaction_id != transaction_id FROM apple_transactions
		WHERE user_id IS NULL AND app_account_token = ? ORDER BY purchase_date`, token)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var pending []pendingPurchase
	for rows.Next() {
		var p pendingPurchase
		if err := rows.Scan(&p.id, &p.original, &p.environment, &p.subscription); err != nil {
			return nil, err
		}
		pending = append(pending, p)
	}
	return pending, rows.Err()
}

// userByToken is the user whose app_account_token is token, or "".
func (tx *Tx) userByToken(ctx context.Context, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	var id string
	err := tx.QueryRowContext(ctx, `SELECT user_id FROM users WHERE app_account_token = ?`, token).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// idEncoding keeps byte order in string order (base32hex: digits, then
// letters), so ids sort by the time they lead with.
var idEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// newID is an id with a prefix that says what it names: 48 bits of Unix
// milliseconds, then 72 random bits. Leading with the time puts each new
// row at the end of its primary-key index instead of on a random page of
// it: random ids made every insert into spends and spend_lots touch a cold
// page, more so as the tables grew.
func newID(prefix string) string {
	var b [15]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMilli())<<16)
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails on supported platforms
	return prefix + "_" + strings.ToLower(idEncoding.EncodeToString(b[:]))
}
