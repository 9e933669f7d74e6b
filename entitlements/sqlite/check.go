package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// LedgerCheck is what CheckLedger read, and every stored figure the ledger
// does not rebuild.
type LedgerCheck struct {
	Lots, Users, AllowanceCounters, Totals int64 // the stored figures checked
	// Mismatches name each figure that differs from what its entries add
	// up to, the first maxMismatches of them; Found counts them all.
	Mismatches []string
	Found      int64
}

// maxMismatches bounds the mismatches a check lists: a bug repeats.
const maxMismatches = 50

func (c *LedgerCheck) mismatch(format string, args ...any) {
	c.Found++
	if len(c.Mismatches) < maxMismatches {
		c.Mismatches = append(c.Mismatches, fmt.Sprintf(format, args...))
	}
}

// CheckLedger rebuilds, from the append-only entries, every figure stored
// beside them, and names each one that differs (README, "Rebuilding"):
//   - a lot's remaining is the sum of its entries, within 0..granted;
//   - a user's debt is minus her debt entries, less debt_paid and the
//     lot-less refund_reversed ones;
//   - a day's allowance counter is minus that day's lot-less spend and
//     reverse entries; from the first day the daily reset has kept whole
//     on (allowance_kept, or every day if it has pruned none), every day
//     with such entries has its counters. keptFrom, a YYYY-MM-DD key, names
//     another first day instead ("" for the recorded one);
//   - ledger_totals is the entries' sums by kind and product.
//
// It reads one snapshot on a read connection, so it runs beside a live
// server and writes nothing; it reads every entry several times.
func (db *DB) CheckLedger(ctx context.Context, keptFrom string) (LedgerCheck, error) {
	var c LedgerCheck
	err := db.view(ctx, func(tx *Tx) error {
		return tx.interruptible(ctx, func() error {
			err := tx.checkLots(ctx, &c)
			if err == nil {
				err = tx.checkDebts(ctx, &c)
			}
			if err == nil {
				err = tx.checkTotals(ctx, &c)
			}
			if err == nil && keptFrom == "" {
				keptFrom, err = tx.keptFrom()
			}
			if err == nil {
				err = tx.checkAllowance(ctx, &c, keptFrom)
			}
			return err
		})
	})
	return c, err
}

// interruptEvery is how often an ended check interrupts its connection
// again, until its statements return.
const interruptEvery = 10 * time.Millisecond

// interruptible runs fn on tx's reader and, once ctx ends, interrupts the
// statement it runs, so that fn's error is ctx's. The store's statements
// otherwise run to their end, and each of the check's reads the whole
// ledger before its first row: an operator's Ctrl-C would wait minutes.
// SQLite drops an interrupt that arrives between two statements as the
// next one begins, so it is repeated until fn returns.
func (tx *Tx) interruptible(ctx context.Context, fn func() error) error {
	c, ok := tx.q.dc.(interface{ interrupt() })
	if !ok {
		return fn()
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		tick := time.NewTicker(interruptEvery)
		defer tick.Stop()
		for {
			c.interrupt()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() {
		close(done)
		<-stopped // no interrupt reaches the connection's next user, after a panic too
	}()
	err := fn()
	if err != nil && ctx.Err() != nil {
		return ctx.Err() // the interrupt's own error says only that
	}
	return err
}

// eachRow runs query and fn on each row it answers, unless ctx has ended.
func (tx *Tx) eachRow(ctx context.Context, query string, fn func(*stmtRows) error, args ...any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// checkLotsSQL is each lot beside the sum of its entries.
const checkLotsSQL = `SELECT l.user_id, l.lot_id, l.granted, l.remaining, COALESCE(e.credits, 0)
	FROM lots l LEFT JOIN (SELECT user_id, lot_id, SUM(credits) AS credits FROM entries
		WHERE lot_id IS NOT NULL GROUP BY user_id, lot_id) e ON e.user_id = l.user_id AND e.lot_id = l.lot_id`

func (tx *Tx) checkLots(ctx context.Context, c *LedgerCheck) error {
	return tx.eachRow(ctx, checkLotsSQL, func(rows *stmtRows) error {
		var user, lot string
		var granted, remaining, sum int64
		if err := rows.Scan(&user, &lot, &granted, &remaining, &sum); err != nil {
			return err
		}
		c.Lots++
		if remaining != sum || remaining < 0 || remaining > granted {
			c.mismatch("lot %s of user %s: remaining %d, granted %d; its entries sum to %d", lot, user, remaining, granted, sum)
		}
		return nil
	})
}

const checkDebtsSQL = `SELECT u.user_id, u.debt, COALESCE(e.debt, 0)
	FROM users u LEFT JOIN (SELECT user_id,
		-total(CASE WHEN kind = 'debt' THEN credits END)
		+ total(CASE WHEN kind = 'debt_paid' THEN credits END)
		- total(CASE WHEN kind = 'refund_reversed' AND lot_id IS NULL THEN credits END) AS debt
		FROM entries WHERE kind IN ('debt', 'debt_paid', 'refund_reversed') GROUP BY user_id) e ON e.user_id = u.user_id`

func (tx *Tx) checkDebts(ctx context.Context, c *LedgerCheck) error {
	return tx.eachRow(ctx, checkDebtsSQL, func(rows *stmtRows) error {
		var user string
		var debt int64
		var rebuilt float64 // total(): exact for sums below 2^53 credits
		if err := rows.Scan(&user, &debt, &rebuilt); err != nil {
			return err
		}
		c.Users++
		if float64(debt) != rebuilt {
			c.mismatch("user %s: debt %d; her entries say %.0f", user, debt, rebuilt)
		}
		return nil
	})
}

// keptFrom is the first day whose allowance counters the daily reset has
// kept whole, "" if it has pruned none.
func (tx *Tx) keptFrom() (string, error) {
	var day string
	err := tx.q.QueryRowContext(tx.ctx, `SELECT kept_from FROM allowance_kept`).Scan(&day)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return day, err
}

// checkAllowance compares each day's counters with that day's allowance
// entries, a day at a time, through the entries' index by day: every
// counter kept, and every user with entries on a day from keptFrom on.
func (tx *Tx) checkAllowance(ctx context.Context, c *LedgerCheck, keptFrom string) error {
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT day FROM allowance_usage
		UNION SELECT DISTINCT allowance_day FROM entries WHERE allowance_day >= ?1 AND allowance_day != ''
		ORDER BY 1`, keptFrom)
	if err != nil {
		return err
	}
	days, err := scanNames(rows)
	if err != nil {
		return err
	}
	for _, day := range days {
		counters, err := tx.dayUsage(ctx, `SELECT user_id, used FROM allowance_usage WHERE day = ?`, day)
		if err != nil {
			return err
		}
		spent, err := tx.dayUsage(ctx, `SELECT user_id, -SUM(credits) FROM entries
			WHERE allowance_day = ? AND lot_id IS NULL AND kind IN ('spend', 'reverse') GROUP BY user_id`, day)
		if err != nil {
			return err
		}
		c.AllowanceCounters += int64(len(counters))
		for user, used := range counters {
			if used != spent[user] {
				c.mismatch("allowance of user %s on %s: used %d; her entries say %d", user, day, used, spent[user])
			}
		}
		if day < keptFrom {
			continue // pruned, or being pruned: its missing counters are expected
		}
		for user, n := range spent {
			if _, kept := counters[user]; !kept && n != 0 {
				c.mismatch("allowance of user %s on %s: no counter; her entries say %d", user, day, n)
			}
		}
	}
	return nil
}

// dayUsage is query's (user_id, credits) rows for day, by user.
func (tx *Tx) dayUsage(ctx context.Context, query, day string) (map[string]int64, error) {
	by := map[string]int64{}
	err := tx.eachRow(ctx, query, func(rows *stmtRows) error {
		var user string
		var n int64
		err := rows.Scan(&user, &n)
		by[user] = n
		return err
	}, day)
	return by, err
}

const checkTotalsSQL = `SELECT COALESCE(t.kind, e.kind), COALESCE(t.product, e.product),
		COALESCE(t.credits, 0), COALESCE(t.entries, 0), COALESCE(e.credits, 0), COALESCE(e.entries, 0)
	FROM (SELECT kind, product, total(abs(credits)) AS credits, count(*) AS entries FROM entries GROUP BY kind, product) e
	FULL JOIN ledger_totals t ON t.kind = e.kind AND t.product = e.product`

func (tx *Tx) checkTotals(ctx context.Context, c *LedgerCheck) error {
	return tx.eachRow(ctx, checkTotalsSQL, func(rows *stmtRows) error {
		var kind, product string
		var credits, sum float64
		var entries, counted int64
		if err := rows.Scan(&kind, &product, &credits, &entries, &sum, &counted); err != nil {
			return err
		}
		c.Totals++
		if credits != sum || entries != counted {
			c.mismatch("ledger_totals %s %q: %.0f credits in %d entries; the entries say %.0f in %d",
				kind, product, credits, entries, sum, counted)
		}
		return nil
	})
}
