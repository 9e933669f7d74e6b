package sqlite

import (
	"context"
	"database/sql"

	"github.com/creditsd/creditsd/entitlements"
)

const lotColumns = `lot_id, source, product_id, COALESCE(transaction_id, ''), environment,
	granted, remaining, granted_at, expires_at`

// liveLotsSQL reads a user's live lots from the lots' key, (user_id,
// lot_id): they sit side by side, on one or two pages, whenever they were
// granted.
const liveLotsSQL = `SELECT ` + lotColumns + ` FROM lots
	WHERE user_id = ? AND remaining > 0 AND (expires_at IS NULL OR expires_at > ?)`

// lotSQL reads one of a user's lots: one seek of the key. A lookup by
// lot_id alone takes two, the lot_id index and then the key.
const lotSQL = `SELECT ` + lotColumns + ` FROM lots WHERE user_id = ? AND lot_id = ?`

// liveLots are userID's unexpired lots with credits left.
func (tx *Tx) liveLots(ctx context.Context, userID string) ([]entitlements.Lot, error) {
	rows, err := tx.QueryContext(ctx, liveLotsSQL, userID, millis(tx.now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var lots []entitlements.Lot
	for rows.Next() {
		l, err := scanLot(rows)
		if err != nil {
			return nil, err
		}
		lots = append(lots, l)
	}
	return lots, rows.Err()
}

type scanner interface{ Scan(dest ...any) error }

func scanLot(s scanner) (entitlements.Lot, error) {
	var l entitlements.Lot
	var grantedAt int64
	var expiresAt sql.NullInt64
	err := s.Scan(&l.LotID, &l.Source, &l.ProductID, &l.TransactionID, &l.Environment,
		&l.Granted, &l.Remaining, &grantedAt, &expiresAt)
	l.GrantedAt = fromMillis(grantedAt)
	l.ExpiresAt = fromNullMillis(expiresAt)
	return l, err
}

// newLot is a lot about to be created, with the entry that creates it.
type newLot struct {
	lot    entitlements.Lot
	userID string
	kind   string // grant, admin_grant, or refund_reversed for a restored lot
	reason string
	actor  string
	ref    string
}

// createLot inserts a lot and the ledger entry that grants it.
func (tx *Tx) createLot(ctx context.Context, n newLot) error {
	l := n.lot
	var txID sql.NullString
	if l.TransactionID != "" {
		txID = sql.NullString{String: l.TransactionID, Valid: true}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO lots (lot_id, user_id, source, product_id, transaction_id,
		environment, granted, remaining, granted_at, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		l.LotID, n.userID, l.Source, l.ProductID, txID, l.Environment, l.Granted, l.Granted,
		millis(l.GrantedAt), ptrMillis(l.ExpiresAt), millis(tx.now))
	if err != nil {
		return err
	}
	return tx.addEntry(ctx, entry{userID: n.userID, kind: n.kind, credits: l.Granted, lotID: l.LotID,
		product: l.ProductID, reason: n.reason, actor: n.actor, ref: n.ref})
}

// entry is one ledger line.
type entry struct {
	userID, kind    string
	credits         int64
	lotID           string
	product, reason string
	actor, ref      string
	day             string // the allowance day, for allowance spends and reversals
}

func (tx *Tx) addEntry(ctx context.Context, e entry) error {
	var lot sql.NullString
	if e.lotID != "" {
		lot = sql.NullString{String: e.lotID, Valid: true}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO entries (user_id, kind, credits, lot_id, product, reason, actor, ref,
		allowance_day, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.userID, e.kind, e.credits, lot, e.product, e.reason, e.actor, e.ref, e.day, millis(tx.now))
	return err
}
