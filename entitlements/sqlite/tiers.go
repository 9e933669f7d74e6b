package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/receipts"
)

// tierSQL selects the tier that holds for user ?1 at ?2 (milliseconds), if
// any but free. Pro holds while an unrevoked subscription transaction of a
// tier product covers now, while the newest renewal info of such a
// subscription shows a grace period that has not ended, or while an admin
// override lasts. Each transaction row holds its newest signed version, so
// arrival order never matters. Both arms on apple_transactions repeat the
// condition of the partial index apple_transactions_user (migration 0010:
// only transactions that set a tier), so that SQLite uses it.
const tierSQL = `
	SELECT tier FROM tier_overrides WHERE user_id = ?1 AND (expires_at IS NULL OR expires_at > ?2)
	UNION ALL
	SELECT tier FROM apple_transactions
	WHERE user_id = ?1 AND tier != '' AND revocation_date IS NULL AND purchase_date <= ?2 AND expires_date > ?2
	UNION ALL
	SELECT t.tier FROM apple_transactions t JOIN renewal_infos r ON r.original_transaction_id = t.original_transaction_id
	WHERE t.user_id = ?1 AND t.tier != '' AND t.revocation_date IS NULL AND r.grace_period_expires_date > ?2
	LIMIT 1`

// tier is the user's tier now (see tierSQL).
func (tx *Tx) tier(ctx context.Context, userID string) (string, error) {
	var tier string
	err := tx.QueryRowContext(ctx, tierSQL, userID, millis(tx.now)).Scan(&tier)
	if errors.Is(err, sql.ErrNoRows) {
		return entitlements.TierFree, nil
	}
	return tier, err
}

// SetTier sets (or, with tier free, clears) a tier granted outside the App
// Store until expiresAt (nil: until changed).
func (db *DB) SetTier(ctx context.Context, userID, token, tier string, expiresAt *time.Time, reason, actor string) (entitlements.UserState, error) {
	var st entitlements.UserState
	err := db.update(ctx, func(tx *Tx) error {
		if _, err := tx.ensureUser(ctx, userID, token); err != nil {
			return err
		}
		var err error
		if tier == entitlements.TierFree {
			_, err = tx.ExecContext(ctx, `DELETE FROM tier_overrides WHERE user_id = ?`, userID)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO tier_overrides (user_id, tier, expires_at, reason, actor, updated_at)
				VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET tier = excluded.tier,
				expires_at = excluded.expires_at, reason = excluded.reason, actor = excluded.actor, updated_at = excluded.updated_at`,
				userID, tier, ptrMillis(expiresAt), reason, actor, millis(tx.now))
		}
		return err
	})
	if err == nil {
		st, err = db.stateAfter(ctx, userID)
	}
	return st, err
}

// recordRenewal keeps the newest signed renewal info per subscription.
func (tx *Tx) recordRenewal(ctx context.Context, r *receipts.RenewalInfo) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO renewal_infos (original_transaction_id, product_id, auto_renew_status,
		grace_period_expires_date, environment, signed_date, jws, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (original_transaction_id) DO UPDATE SET product_id = excluded.product_id,
		auto_renew_status = excluded.auto_renew_status, grace_period_expires_date = excluded.grace_period_expires_date,
		environment = excluded.environment, signed_date = excluded.signed_date, jws = excluded.jws,
		updated_at = excluded.updated_at
		WHERE excluded.signed_date > renewal_infos.signed_date`,
		r.OriginalTransactionID, r.ProductID, r.AutoRenewStatus, nullMillis(r.GracePeriodExpiresDate), r.Environment,
		millis(r.SignedDate), r.JWS, millis(tx.now))
	return err
}
