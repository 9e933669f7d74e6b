package sqlite

import (
	"context"
	"time"
)

// Expired is what one batch of the expiry sweep wrote off.
type Expired struct {
	Lots    int64
	Credits int64
}

type expiringLot struct {
	lotID, userID, product string
	remaining              int64
}

// ExpireLots writes off, in one write transaction, up to limit lots whose
// expiry is at or before asOf and that still have credits: an expire entry
// of minus what remains, and remaining set to 0. Only such lots are read,
// so a second sweep changes nothing. asOf is capped at the database's now:
// a clock ahead of it must not take credits that are still valid.
//
// Balances never depend on this (they ignore expired lots already); it
// makes the ledger say what happened. Keep limit small so that spends,
// which wait for the one writer, are never held up for long.
func (db *DB) ExpireLots(ctx context.Context, asOf time.Time, limit int, actor string) (Expired, error) {
	var out Expired
	err := db.update(ctx, func(tx *Tx) error {
		lots, err := tx.expiringLots(ctx, min(millis(asOf), millis(tx.now)), limit)
		if err != nil {
			return err
		}
		for _, l := range lots {
			if err := tx.moveLot(ctx, l.lotID, -l.remaining); err != nil {
				return err
			}
			if err := tx.addEntry(ctx, entry{userID: l.userID, kind: "expire", credits: -l.remaining, lotID: l.lotID,
				product: l.product, reason: "expired", actor: actor}); err != nil {
				return err
			}
			out.Lots++
			out.Credits += l.remaining
		}
		return nil
	})
	if err != nil {
		return Expired{}, err
	}
	return out, nil
}

// expiringLots reads the batch first: the statements that change the lots
// must not run while the query that finds them is still open. The WHERE
// repeats the partial index lots_expiry's condition so that SQLite uses it.
func (tx *Tx) expiringLots(ctx context.Context, asOf int64, limit int) ([]expiringLot, error) {
	rows, err := tx.QueryContext(ctx, `SELECT lot_id, user_id, product_id, remaining FROM lots
		WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ?
		ORDER BY expires_at LIMIT ?`, asOf, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var lots []expiringLot
	for rows.Next() {
		var l expiringLot
		if err := rows.Scan(&l.lotID, &l.userID, &l.product, &l.remaining); err != nil {
			return nil, err
		}
		lots = append(lots, l)
	}
	return lots, rows.Err()
}
