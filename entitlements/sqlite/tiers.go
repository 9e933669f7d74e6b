package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/receipts"
)

// tierSQL selects the tiers that hold for user ?1 at ?2 (milliseconds),
// if any but free, joined by tierSep (bestTier picks one). A tier holds
// while an admin override lasts; while an unrevoked subscription period of
// a tier product, not upgraded to another (isUpgraded), covers now; or
// while the newest renewal info of such a subscription, of the period's
// own environment, shows a grace period that has not ended and the
// subscription's newest period there is neither revoked nor upgraded (a refund
// of the period that lapsed ends the grace an earlier one would keep).
// Each transaction row holds its newest signed version, so arrival order
// never matters. The arms on apple_transactions repeat the condition of
// the partial index apple_transactions_user (migration 0010: only
// transactions that set a tier), so that SQLite uses it. Every arm runs,
// so that a user holding two tiers gets the better, not the first found;
// for the many users with none they are three seeks that find nothing.
const tierSQL = `
	SELECT group_concat(tier, char(31)) FROM (
	SELECT tier FROM tier_overrides WHERE user_id = ?1 AND (expires_at IS NULL OR expires_at > ?2)
	UNION ALL
	SELECT tier FROM apple_transactions
	WHERE user_id = ?1 AND tier != '' AND revocation_date IS NULL AND NOT upgraded AND purchase_date <= ?2 AND expires_date > ?2
	UNION ALL
	SELECT t.tier FROM apple_transactions t JOIN renewal_infos r ON r.original_transaction_id = t.original_transaction_id
		AND r.environment = t.environment
	WHERE t.user_id = ?1 AND t.tier != '' AND t.revocation_date IS NULL AND NOT t.upgraded AND r.grace_period_expires_date > ?2
	AND NOT EXISTS (SELECT 1 FROM apple_transactions n WHERE n.original_transaction_id = t.original_transaction_id
		AND n.environment = t.environment AND n.purchase_date > t.purchase_date))`

// tierSep joins the tiers tierSQL finds (the unit separator: no tier name
// in a config holds it).
const tierSep = "\x1f"

// bestTier is the tier of those tierSQL joined that gives the most
// allowance today; most users hold one or none.
func (tx *Tx) bestTier(joined string) string {
	if !strings.Contains(joined, tierSep) {
		return joined
	}
	return tx.policy.Allowance.Best(strings.Split(joined, tierSep), tx.today())
}

// tier is the user's tier now (see tierSQL).
func (tx *Tx) tier(ctx context.Context, userID string) (string, error) {
	var tier sql.NullString
	err := tx.QueryRowContext(ctx, tierSQL, userID, millis(tx.now)).Scan(&tier)
	if err != nil || !tier.Valid {
		return entitlements.TierFree, err
	}
	return tx.bestTier(tier.String), nil
}

// SetTier sets (or, with tier free, clears) a tier granted outside the App
// Store until expiresAt (nil: until changed), and keeps the change in
// tier_changes, the overrides' audit trail.
func (db *DB) SetTier(ctx context.Context, userID, token, tier string, expiresAt *time.Time, reason, actor string) (entitlements.UserState, error) {
	var st entitlements.UserState
	err := db.update(ctx, func(tx *Tx) error {
		if _, err := tx.ensureUser(ctx, userID, token, actor); err != nil {
			return err
		}
		var err error
		if tier == entitlements.TierFree {
			expiresAt = nil // a removal has no end
			_, err = tx.ExecContext(ctx, `DELETE FROM tier_overrides WHERE user_id = ?`, userID)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO tier_overrides (user_id, tier, expires_at, reason, actor, updated_at)
				VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET tier = excluded.tier,
				expires_at = excluded.expires_at, reason = excluded.reason, actor = excluded.actor, updated_at = excluded.updated_at`,
				userID, tier, ptrMillis(expiresAt), reason, actor, millis(tx.now))
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO tier_changes (user_id, tier, expires_at, reason, actor, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`, userID, tier, ptrMillis(expiresAt), reason, actor, millis(tx.now))
		return err
	})
	if err == nil {
		st, err = db.stateAfter(ctx, userID)
	}
	return st, err
}

// recordRenewal keeps the newest signed renewal info per subscription: per
// original id and environment (migration 0019), so that another
// environment's under the same original id never replaces it.
func (tx *Tx) recordRenewal(ctx context.Context, r *receipts.RenewalInfo) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO renewal_infos (original_transaction_id, product_id, auto_renew_status,
		grace_period_expires_date, environment, signed_date, jws, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (original_transaction_id, environment) DO UPDATE SET product_id = excluded.product_id,
		auto_renew_status = excluded.auto_renew_status, grace_period_expires_date = excluded.grace_period_expires_date,
		signed_date = excluded.signed_date, jws = excluded.jws,
		updated_at = excluded.updated_at
		WHERE excluded.signed_date > renewal_infos.signed_date`,
		r.OriginalTransactionID, r.ProductID, r.AutoRenewStatus, nullMillis(r.GracePeriodExpiresDate), r.Environment,
		millis(r.SignedDate), r.JWS, millis(tx.now))
	return err
}
