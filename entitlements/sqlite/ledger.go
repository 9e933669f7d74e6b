package sqlite

import (
	"context"
	"database/sql"
	"github.com/creditsd/creditsd/entitlements"
	"strconv"
)

// Ledger lists userID's entries newest first, limit at a time, starting
// below the entry id before (0: from the newest). next is the cursor for
// the following page, 0 when there is none.
func (db *DB) Ledger(ctx context.Context, userID string, before int64, limit int) (entries []entitlements.Entry, next int64, err error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	err = db.view(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT entry_id, kind, credits, lot_id, product, reason, actor, ref, created_at
			FROM entries WHERE user_id = ? AND entry_id < ? ORDER BY entry_id DESC LIMIT ?`, userID, before, limit+1)
		if err != nil {
			return err
		}
		defer rows.Close()
		entries, next, err = scanEntries(rows, limit)
		return err
	})
	return entries, next, err
}

func scanEntries(rows *stmtRows, limit int) ([]entitlements.Entry, int64, error) {
	entries := []entitlements.Entry{}
	var lastID, next int64
	for rows.Next() {
		if len(entries) == limit {
			next = lastID
			break
		}
		var e entitlements.Entry
		var lot sql.NullString
		var created int64
		if err := rows.Scan(&lastID, &e.Kind, &e.Credits, &lot, &e.Product, &e.Reason, &e.Actor, &e.Ref, &created); err != nil {
			return nil, 0, err
		}
		e.EntryID = strconv.FormatInt(lastID, 10)
		if lot.Valid {
			e.LotID = &lot.String
		}
		e.CreatedAt = fromMillis(created)
		entries = append(entries, e)
	}
	return entries, next, rows.Err()
}

// Total is the ledger's running sum for one kind and product.
type Total struct {
	Kind, Product string
	Credits       float64 // sum of |credits| (a metric: approximate past 2^53)
	Entries       int64
}

// Totals reads the running sums the writer keeps (AddTotals).
func (db *DB) Totals(ctx context.Context) ([]Total, error) {
	var out []Total
	err := db.view(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT kind, product, credits, entries FROM ledger_totals ORDER BY kind, product`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var t Total
			if err := rows.Scan(&t.Kind, &t.Product, &t.Credits, &t.Entries); err != nil {
				return err
			}
			out = append(out, t)
		}
		return rows.Err()
	})
	return out, err
}
