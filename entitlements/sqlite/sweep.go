package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// LotKey is a lot's place in the order the lots are stored: by user, then
// by lot (migration 0012). The zero LotKey comes before every lot.
type LotKey struct{ UserID, LotID string }

// Expired is what one batch of the expiry sweep wrote off, and where it
// stopped.
type Expired struct {
	Lots    int64
	Credits int64
	Held    time.Duration // how long its SQL held the writer, not counting the wait for it or the shared commit
	Next    LotKey        // the last lot the batch walked: the next batch walks on after it (zero when End)
	End     bool          // the batch walked to the last lot: the sweep is done
}

// walkEndSQL finds the last of the next ?3 lots after (?1, ?2) in key order:
// how far a batch walks.
const walkEndSQL = `SELECT user_id, lot_id FROM lots WHERE (user_id, lot_id) > (?1, ?2)
	ORDER BY user_id, lot_id LIMIT 1 OFFSET ?3 - 1`

// expireWalkedSQL writes the expire entries of the due lots after (?4, ?5)
// in key order, for ?1 = actor, ?2 = now, ?3 = asOf. The unary + keeps
// SQLite off any index on expires_at (lots_expiry was one, until
// migration 0013), which would take the due lots in expiry order: each on
// its own page of lots and of entries_user, where consecutive users' lots
// and entries share pages (BENCHMARKS.md, session 12). Each entry's
// foreign key is its lot's own key (migration 0014), so SQLite checks the
// lot on the page the walk has just read.
const expireWalkedSQL = `INSERT INTO entries (user_id, kind, credits, lot_id, product, reason, actor,
	ref, allowance_day, created_at)
	SELECT user_id, 'expire', -remaining, lot_id, product_id, 'expired', ?1, '', '', ?2 FROM lots
	WHERE (user_id, lot_id) > (?4, ?5) AND remaining > 0 AND +expires_at <= ?3`

// The two ends of a batch's walk: up to the lot walkEndSQL found, or, when
// fewer lots are left, to the last one.
const (
	expireWalkSQL      = expireWalkedSQL + ` AND (user_id, lot_id) <= (?6, ?7) ORDER BY user_id, lot_id`
	expireWalkToEndSQL = expireWalkedSQL + ` ORDER BY user_id, lot_id`
)

// emptyExpiredLotsSQL empties the lots that the entries after an entry_id
// name. Each entry names its lot's user too: one seek of the lots' key per
// lot, not the lot_id index and then the key.
const emptyExpiredLotsSQL = `UPDATE lots SET remaining = 0
	WHERE (user_id, lot_id) IN (SELECT user_id, lot_id FROM entries WHERE entry_id > ?)`

// ExpireLots walks, in one write transaction, the next walk lots after
// `after` in key order (counted first on a read connection, walkFrom, so
// a lot granted meanwhile into the stretch is walked too) and writes off
// those whose expiry is at or before asOf and that still have credits: an
// expire entry of minus what remains, and remaining set to 0. A sweep
// walks from the zero LotKey, batch after batch from each one's Next,
// until a batch says End. Only due lots with
// credits are written, so a second sweep changes nothing. asOf is capped
// at the database's now: a clock ahead of it must not take credits that
// are still valid.
//
// Balances never depend on this (they ignore expired lots already); it
// makes the ledger say what happened. Keep walk small so that spends,
// which wait for the one writer, are never held up for long: a batch is
// bounded by the lots it walks, due or not, so a stretch with nothing due
// costs a read of its pages and no more.
//
// The sweep walks the lots in the order they are stored rather than in
// the order they expire: lots due among 10M were written off at ~35 µs a
// lot this way against ~110 µs on their own, and 1M of them beside 32
// spending clients in 122 s against 195 s (BENCHMARKS.md, session 12); a
// walk of all 10M reads for ~3 s.
func (db *DB) ExpireLots(ctx context.Context, asOf time.Time, after LotKey, walk int, actor string) (Expired, error) {
	out, committed, err := db.ExpireLotsAhead(ctx, asOf, after, walk, actor)
	if err == nil {
		err = committed()
	}
	if err != nil {
		return Expired{}, err
	}
	return out, nil
}

// ExpireLotsAhead is ExpireLots returning as soon as the batch has run,
// before the commit it shares with the writes queued beside it; committed
// waits for that commit and says whether it held (call it once). Until it
// returns nil, the batch may yet be undone. It queues the batch once a
// read connection is free to find how far the batch walks (walkFrom).
//
// A sweep that waits for each commit before it queues its next batch
// finds the writer already into the writes that queued meanwhile: its
// batches ride every other commit (beside 32 spending clients, 17 ms a
// batch of ~5 ms of SQL). Queued while the last one commits, they ride
// every commit (11–13 ms a batch; BENCHMARKS.md, session 20).
func (db *DB) ExpireLotsAhead(ctx context.Context, asOf time.Time, after LotKey, walk int, actor string) (Expired, func() error, error) {
	w, err := db.walkFrom(ctx, after, walk)
	if err != nil {
		return Expired{}, nil, err
	}
	ran := make(chan Expired, 1)
	done, err := db.submit(ctx, func(tx *Tx) error {
		out, err := tx.expireLots(ctx, asOf, w, actor)
		if err == nil {
			ran <- out
		}
		return err
	})
	if err != nil {
		return Expired{}, nil, err
	}
	select {
	case out := <-ran:
		return out, func() error { return <-done }, nil
	case err := <-done:
		if err == nil { // it ran and committed before this select looked
			return <-ran, func() error { return nil }, nil
		}
		return Expired{}, nil, err
	}
}

// batchWalk is the stretch of lots one batch walks: those after after, up
// to and including end, or every one after after when last.
type batchWalk struct {
	after, end LotKey
	last       bool
}

// walkFrom finds where a batch that walks the next walk lots after after
// ends. It reads on a read connection, off the one writer whose turns the
// sweep shares with every spend: finding the end steps through the walk's
// rows, ~8 % of a batch's SQL (BENCHMARKS.md, session 21). The end only
// bounds the batch, so a snapshot some commits behind the writer's serves:
// lots are never deleted or re-keyed, and one granted into the stretch
// since is walked with it.
func (db *DB) walkFrom(ctx context.Context, after LotKey, walk int) (batchWalk, error) {
	w := batchWalk{after: after}
	err := db.view(ctx, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, walkEndSQL, after.UserID, after.LotID, max(walk, 1)).Scan(&w.end.UserID, &w.end.LotID)
		if errors.Is(err, sql.ErrNoRows) {
			w.last, err = true, nil
		}
		return err
	})
	return w, err
}

// expireLots is one batch of ExpireLots, in tx: the due lots of w.
func (tx *Tx) expireLots(ctx context.Context, asOf time.Time, w batchWalk, actor string) (Expired, error) {
	var out Expired
	start := time.Now()
	last, err := lastEntry(tx.q) // its own mark: jobs before it in the batch may have written entries
	if err != nil {
		return out, err
	}
	due := min(millis(asOf), millis(tx.now))
	if w.last {
		out.End = true
		_, err = tx.ExecContext(ctx, expireWalkToEndSQL, actor, millis(tx.now), due, w.after.UserID, w.after.LotID)
	} else {
		out.Next = w.end
		_, err = tx.ExecContext(ctx, expireWalkSQL, actor, millis(tx.now), due, w.after.UserID, w.after.LotID,
			w.end.UserID, w.end.LotID)
	}
	if err != nil {
		return out, err
	}
	if _, err := tx.ExecContext(ctx, emptyExpiredLotsSQL, last); err != nil {
		return out, err
	}
	err = tx.QueryRowContext(ctx, `SELECT count(*), COALESCE(-SUM(credits), 0) FROM entries WHERE entry_id > ?`,
		last).Scan(&out.Lots, &out.Credits)
	out.Held = time.Since(start)
	return out, err
}
