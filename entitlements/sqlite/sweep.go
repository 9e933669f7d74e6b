package sqlite

import (
	"context"
	"time"
)

// Expired is what one batch of the expiry sweep wrote off.
type Expired struct {
	Lots    int64
	Credits int64
	Held    time.Duration // how long its SQL held the writer, not counting the wait for it or the shared commit
}

// expireLotsSQL writes the expire entries of up to a batch of lots. The
// WHERE repeats the partial index lots_expiry's condition so that SQLite
// uses it, in its order.
const expireLotsSQL = `INSERT INTO entries (user_id, kind, credits, lot_id, product, reason, actor,
	ref, allowance_day, created_at)
	SELECT user_id, 'expire', -remaining, lot_id, product_id, 'expired', ?, '', '', ? FROM lots
	WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ?
	ORDER BY expires_at LIMIT ?`

// emptyExpiredLotsSQL empties the lots that the entries after an entry_id
// name. Each entry names its lot's user too: one seek of the lots' key per
// lot, not the lot_id index and then the key.
const emptyExpiredLotsSQL = `UPDATE lots SET remaining = 0
	WHERE (user_id, lot_id) IN (SELECT user_id, lot_id FROM entries WHERE entry_id > ?)`

// ExpireLots writes off, in one write transaction, up to limit lots whose
// expiry is at or before asOf and that still have credits: an expire entry
// of minus what remains, and remaining set to 0. Only such lots are read,
// so a second sweep changes nothing. asOf is capped at the database's now:
// a clock ahead of it must not take credits that are still valid.
//
// Balances never depend on this (they ignore expired lots already); it
// makes the ledger say what happened. Keep limit small so that spends,
// which wait for the one writer, are never held up for long.
//
// The batch is set-based: one INSERT … SELECT writes the expire entries,
// and one UPDATE empties exactly the lots those new entries name, instead
// of two statements per lot.
func (db *DB) ExpireLots(ctx context.Context, asOf time.Time, limit int, actor string) (Expired, error) {
	var out Expired
	err := db.update(ctx, func(tx *Tx) error {
		start := time.Now()
		defer func() { out.Held = time.Since(start) }()
		var last int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(entry_id), 0) FROM entries`).Scan(&last); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, expireLotsSQL, actor, millis(tx.now), min(millis(asOf), millis(tx.now)),
			limit); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, emptyExpiredLotsSQL, last); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT count(*), COALESCE(-SUM(credits), 0) FROM entries WHERE entry_id > ?`,
			last).Scan(&out.Lots, &out.Credits)
	})
	if err != nil {
		return Expired{}, err
	}
	return out, nil
}
