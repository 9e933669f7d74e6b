package sqlite

import (
	"context"
	"sort"
)

// AllowanceUse is one day's allowance use by one tier for one product.
type AllowanceUse struct {
	Day, Tier, Product string
	Users              int64 // users whose net use was above zero
	Credits            int64 // spent from the allowance, net of reversals
}

// SummariseAllowanceDay computes day's allowance use per tier and product
// from the ledger (allowance spends, net of their reversals) and replaces
// that day's rows in allowance_daily, so running it again is harmless.
//
// A user counts under their tier at the time of summarising, not the one
// they had on the day: the ledger does not keep tiers, and the nightly run
// is minutes after the day ends. The reading happens in a read transaction
// so that the writer is held only for the few rows written.
func (db *DB) SummariseAllowanceDay(ctx context.Context, day string) ([]AllowanceUse, error) {
	var uses []AllowanceUse
	err := db.view(ctx, func(tx *Tx) (err error) {
		uses, err = tx.allowanceUse(ctx, day)
		return err
	})
	if err != nil {
		return nil, err
	}
	return uses, db.update(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM allowance_daily WHERE day = ?`, day); err != nil {
			return err
		}
		for _, u := range uses {
			if _, err := tx.ExecContext(ctx, `INSERT INTO allowance_daily (day, tier, product, users, credits)
				VALUES (?, ?, ?, ?, ?)`, u.Day, u.Tier, u.Product, u.Users, u.Credits); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO allowance_daily_days (day, summarised_at) VALUES (?, ?)
			ON CONFLICT (day) DO UPDATE SET summarised_at = excluded.summarised_at`, day, millis(tx.now))
		return err
	})
}

type userUse struct {
	user, product string
	credits       int64
}

func (tx *Tx) allowanceUse(ctx context.Context, day string) ([]AllowanceUse, error) {
	perUser, err := tx.allowanceUseByUser(ctx, day)
	if err != nil {
		return nil, err
	}
	type key struct{ tier, product string }
	totals := map[key]*AllowanceUse{}
	tiers := map[string]string{}
	for _, u := range perUser {
		tier, ok := tiers[u.user]
		if !ok {
			if tier, err = tx.tier(ctx, u.user); err != nil {
				return nil, err
			}
			tiers[u.user] = tier
		}
		k := key{tier, u.product}
		if totals[k] == nil {
			totals[k] = &AllowanceUse{Day: day, Tier: tier, Product: u.product}
		}
		totals[k].Users++
		totals[k].Credits += u.credits
	}
	uses := make([]AllowanceUse, 0, len(totals))
	for _, u := range totals {
		uses = append(uses, *u)
	}
	sort.Slice(uses, func(i, j int) bool {
		return uses[i].Tier < uses[j].Tier || uses[i].Tier == uses[j].Tier && uses[i].Product < uses[j].Product
	})
	return uses, nil
}

// allowanceUseQuery nets each user's allowance spends and reversals of a
// day per product. entries_allowance_day finds the day's entries, in entry
// order; SQLite sorts them by user for the GROUP BY. The WHERE repeats the
// partial index's condition: without it SQLite cannot use the index (the
// parameter might be the empty string) and scanned the whole ledger.
const allowanceUseQuery = `SELECT user_id, product, -SUM(credits) FROM entries
	WHERE allowance_day = ? AND allowance_day != '' AND lot_id IS NULL AND kind IN ('spend', 'reverse')
	GROUP BY user_id, product HAVING -SUM(credits) > 0`

func (tx *Tx) allowanceUseByUser(ctx context.Context, day string) ([]userUse, error) {
	rows, err := tx.QueryContext(ctx, allowanceUseQuery, day)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var uses []userUse
	for rows.Next() {
		var u userUse
		if err := rows.Scan(&u.user, &u.product, &u.credits); err != nil {
			return nil, err
		}
		uses = append(uses, u)
	}
	return uses, rows.Err()
}

// SummarisedAllowanceDays are the days in [from, to] already summarised.
func (db *DB) SummarisedAllowanceDays(ctx context.Context, from, to string) (map[string]bool, error) {
	return db.stringSet(ctx, `SELECT day FROM allowance_daily_days WHERE day BETWEEN ? AND ?`, from, to)
}

// stringSet is the set of the one text column query selects, read on the
// read pool.
func (db *DB) stringSet(ctx context.Context, query string, args ...any) (map[string]bool, error) {
	set := map[string]bool{}
	err := db.view(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return err
			}
			set[s] = true
		}
		return rows.Err()
	})
	return set, err
}

// AllowanceDaily reads day's summary rows.
func (db *DB) AllowanceDaily(ctx context.Context, day string) ([]AllowanceUse, error) {
	var uses []AllowanceUse
	err := db.view(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT day, tier, product, users, credits FROM allowance_daily
			WHERE day = ? ORDER BY tier, product`, day)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var u AllowanceUse
			if err := rows.Scan(&u.Day, &u.Tier, &u.Product, &u.Users, &u.Credits); err != nil {
				return err
			}
			uses = append(uses, u)
		}
		return rows.Err()
	})
	return uses, err
}

// pruneAllowanceSQL deletes up to ?2 counters of days before ?1 from the
// front of allowance_usage, which is keyed by day first (migration 0011).
const pruneAllowanceSQL = `DELETE FROM allowance_usage WHERE (day, user_id) IN
	(SELECT day, user_id FROM allowance_usage WHERE day < ?1 LIMIT ?2)`

// keptFromSQL moves the first day whose counters are all kept to ?1, if
// that is later (migration 0021).
const keptFromSQL = `INSERT INTO allowance_kept (one, kept_from) VALUES (1, ?1)
	ON CONFLICT (one) DO UPDATE SET kept_from = max(kept_from, excluded.kept_from)`

// PruneAllowanceUsage deletes up to limit allowance counters of days before
// before (a YYYY-MM-DD key) in one write transaction, and says how many.
// Only today's counter is ever read; old ones are history the ledger keeps.
// The same transaction records before as the first day kept, so that no
// snapshot has a day's counters pruned and the day still counted as kept.
func (db *DB) PruneAllowanceUsage(ctx context.Context, before string, limit int) (int64, error) {
	var n int64
	err := db.update(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, keptFromSQL, before); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, pruneAllowanceSQL, before, limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
