package sqlite

import (
	"context"
	"database/sql"
	"github.com/creditsd/creditsd/entitlements"
	"strconv"
)

// Ledger lists userID's entries newest first, limit at a time, starting
// below the entry id before (0: from the newest). next is the cursor for
// the following page, 0 when there is none. A user unknown so far is
// created by the read, as by any call that names her, and given the
// purchases that waited for her token in actor's name (ensureUser): her
// first page shows their grants. Only a page with no entries asks whether
// she exists, and only a new user's read writes.
func (db *DB) Ledger(ctx context.Context, userID, token, actor string, before int64, limit int) (entries []entitlements.Entry, next int64, err error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	found := false
	err = db.view(ctx, func(tx *Tx) (err error) {
		entries, next, found, err = tx.ledgerPage(ctx, userID, before, limit)
		return err
	})
	if err != nil || found {
		return entries, next, err
	}
	err = db.update(ctx, func(tx *Tx) (err error) {
		if _, err = tx.ensureUser(ctx, userID, token, actor); err != nil {
			return err
		}
		entries, next, err = tx.entries(ctx, userID, before, limit)
		return err
	})
	return entries, next, err
}

// ledgerPage is a page of userID's entries (entries), and whether the user
// exists: one with entries does, so only an empty page asks.
func (tx *Tx) ledgerPage(ctx context.Context, userID string, before int64, limit int) (entries []entitlements.Entry, next int64, found bool, err error) {
	entries, next, err = tx.entries(ctx, userID, before, limit)
	if err != nil || len(entries) > 0 {
		return entries, next, true, err
	}
	err = tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE user_id = ?)`, userID).Scan(&found)
	return entries, next, found, err
}

// entries reads a page of userID's entries below the entry id before.
func (tx *Tx) entries(ctx context.Context, userID string, before int64, limit int) ([]entitlements.Entry, int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT entry_id, kind, credits, lot_id, product, reason, actor, ref, created_at
		FROM entries WHERE user_id = ? AND entry_id < ? ORDER BY entry_id DESC LIMIT ?`, userID, before, limit+1)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	return scanEntries(rows, limit)
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

// addTotalsSQL adds the entries after ?1 to ledger_totals. total(), not
// sum(): a metric must never fail a ledger write (0002), and sum() of
// integers raises on overflow where total() goes on as a REAL.
const addTotalsSQL = `INSERT INTO ledger_totals (kind, product, credits, entries)
	SELECT kind, product, total(abs(credits)), count(*) FROM entries WHERE entry_id > ?1 GROUP BY kind, product
	ON CONFLICT (kind, product) DO UPDATE SET credits = credits + excluded.credits, entries = entries + excluded.entries`

// Execer runs a statement in a transaction: the writer's connection, or a
// *sql.Tx.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// AddTotals counts the entries after last in ledger_totals, in ex's
// transaction: what a trigger on every entry did until migration 0015, in
// one statement a commit. The writer calls it before each group commit,
// where only the entries the batch keeps are there to count (a failed
// job's savepoint took its own back). Whatever else writes entries in
// transactions of its own, such as the load tool's bulk seed, calls it
// before each of its commits too, with the last entry_id it began with.
func AddTotals(ctx context.Context, ex Execer, last int64) error {
	_, err := ex.ExecContext(ctx, addTotalsSQL, last)
	return err
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
