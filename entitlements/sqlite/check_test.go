package sqlite

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// checkedLedger is a ledger with a figure of each kind CheckLedger
// rebuilds: lots spent from, a day's allowance counter, and totals.
func checkedLedger(t *testing.T) (*DB, string) {
	t.Helper()
	db := openTest(t)
	ctx := context.Background()
	lot := grantAdmin(t, db, "alice", "g1", 10, nil)
	grantAdmin(t, db, "bob", "g2", 5, nil)
	for _, req := range []struct {
		user, key string
		credits   int64
	}{{"alice", "s1", 35}, {"bob", "s2", 2}} {
		_, _, _, err := db.Spend(ctx, spendReq(req.user, req.key, req.credits))
		require.NoError(t, err)
	}
	c, err := db.CheckLedger(ctx, "")
	require.NoError(t, err)
	require.Zero(t, c.Found, c.Mismatches)
	require.Equal(t, int64(2), c.Lots)
	require.Equal(t, int64(2), c.Users)
	require.Equal(t, int64(2), c.AllowanceCounters)
	require.NotZero(t, c.Totals)
	return db, lot.LotID
}

// TestCheckLedgerNamesEveryFigureItCannotRebuild: each stored figure the
// entries do not add up to is named, and nothing else.
func TestCheckLedgerNamesEveryFigureItCannotRebuild(t *testing.T) {
	for name, tc := range map[string]struct {
		edit, want string
	}{
		"a lot's remaining":   {`UPDATE lots SET remaining = remaining + 1 WHERE user_id = 'alice'`, "lot %s of user alice: remaining 6, granted 10; its entries sum to 5"},
		"a user's debt":       {`UPDATE users SET debt = 3 WHERE user_id = 'bob'`, "user bob: debt 3; her entries say 0"},
		"a day's counter":     {`UPDATE allowance_usage SET used = 29 WHERE user_id = 'alice'`, "allowance of user alice on 2026-11-25: used 29; her entries say 30"},
		"the ledger's totals": {`UPDATE ledger_totals SET entries = entries + 1 WHERE kind = 'admin_grant'`, `ledger_totals admin_grant "": 15 credits in 3 entries; the entries say 15 in 2`},
	} {
		t.Run(name, func(t *testing.T) {
			db, lot := checkedLedger(t)
			_, err := writeExec(db, `DROP TRIGGER IF EXISTS entries_no_update`) // no entry is edited: the figures beside them are
			require.NoError(t, err)
			_, err = writeExec(db, tc.edit)
			require.NoError(t, err)
			c, err := db.CheckLedger(context.Background(), "")
			require.NoError(t, err)
			want := tc.want
			if name == "a lot's remaining" {
				want = fmt.Sprintf(want, lot)
			}
			require.Equal(t, []string{want}, c.Mismatches)
			require.Equal(t, int64(1), c.Found)
		})
	}
}

// TestCheckLedgerKnowsThePrunedDays: the daily reset prunes the counters
// of the days before the kept ones, a batch at a time, and records the
// first day kept; the entries stay. A missing counter before that day is
// no mismatch, also after keep_days is raised, but one of a kept day is,
// today's too.
func TestCheckLedgerKnowsThePrunedDays(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	for i, user := range []string{"alice", "bob", "carol"} {
		for d := range 3 {
			db.Now = func() time.Time { return testNow.AddDate(0, 0, d) }
			_, _, _, err := db.Spend(ctx, spendReq(user, fmt.Sprintf("s%d-%d", i, d), int64(1+i)))
			require.NoError(t, err)
		}
	}
	days := []string{"2026-11-25", "2026-11-26", "2026-11-27"}
	check := func(keptFrom string) LedgerCheck {
		t.Helper()
		c, err := db.CheckLedger(ctx, keptFrom)
		require.NoError(t, err)
		return c
	}
	c := check("")
	require.Zero(t, c.Found, c.Mismatches)
	require.Equal(t, int64(9), c.AllowanceCounters, "nothing pruned")

	n, err := db.PruneAllowanceUsage(ctx, days[1], 1) // a prune part done: alice's counter of the first day
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	c = check("")
	require.Zero(t, c.Found, c.Mismatches)
	require.Equal(t, int64(8), c.AllowanceCounters)

	_, err = db.PruneAllowanceUsage(ctx, days[0], 10) // keep_days raised: the day stays pruned
	require.NoError(t, err)
	require.Zero(t, check("").Found, "the first day kept only moves later")

	require.Equal(t, []string{"allowance of user alice on 2026-11-25: no counter; her entries say 1"}, check(days[0]).Mismatches,
		"a first day named, before the one recorded")

	_, err = writeExec(db, `DELETE FROM allowance_usage WHERE day = ? AND user_id = 'bob'`, days[2])
	require.NoError(t, err)
	require.Equal(t, []string{"allowance of user bob on 2026-11-27: no counter; her entries say 2"}, check("").Mismatches,
		"today's counter, the one spends read")
}

// TestFirstDayKeptBackFilled: migration 0021 records, for a database the
// daily reset has run on, its earliest counter's day as the first kept,
// or, with no counter left, the day after the last day summarised.
func TestFirstDayKeptBackFilled(t *testing.T) {
	for name, tc := range map[string]struct{ fill, want string }{
		"counters kept": {`INSERT INTO allowance_usage (day, user_id, used) VALUES ('2026-11-20', 'alice', 3), ('2026-11-22', 'alice', 1);
			INSERT INTO allowance_daily_days (day, summarised_at) VALUES ('2026-11-19', 1), ('2026-11-21', 1);`, "2026-11-20"},
		"none kept":   {`INSERT INTO allowance_daily_days (day, summarised_at) VALUES ('2026-11-19', 1), ('2026-11-30', 1);`, "2026-12-01"},
		"never reset": {`INSERT INTO allowance_usage (day, user_id, used) VALUES ('2026-11-20', 'alice', 3);`, ""},
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "old.db")
			oldDatabase(t, file, migrationsBefore(t, "0021"),
				`INSERT INTO users (user_id, app_account_token, created_at) VALUES ('alice', 't', 1); `+tc.fill)
			db, err := Open(context.Background(), file)
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, db.Close()) })
			require.NoError(t, db.view(context.Background(), func(tx *Tx) error {
				day, err := tx.keptFrom()
				require.Equal(t, tc.want, day)
				return err
			}))
		})
	}
}

// TestOpenReadOnlyWritesNothing: a missing file is refused, not created; a
// database at another schema is refused, not migrated; writes answer
// ErrClosed.
func TestOpenReadOnlyWritesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "typo.db")
	_, err := OpenReadOnly(ctx, missing)
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.NoFileExists(t, missing)

	old := filepath.Join(dir, "old.db")
	var names []string
	for _, name := range migrationList[:len(migrationList)-1] {
		names = append(names, path.Base(name))
	}
	oldDatabase(t, old, names, "")
	_, err = OpenReadOnly(ctx, old)
	require.ErrorIs(t, err, ErrOlderSchema)
	require.ErrorContains(t, err, path.Base(migrationList[len(migrationList)-1]))

	current := filepath.Join(dir, "current.db")
	db, err := Open(ctx, current)
	require.NoError(t, err)
	grantAdmin(t, db, "alice", "g", 5, nil)
	require.NoError(t, db.Close())
	ro, err := OpenReadOnly(ctx, current)
	require.NoError(t, err)
	c, err := ro.CheckLedger(ctx, "")
	require.NoError(t, err)
	require.Equal(t, int64(1), c.Lots)
	require.ErrorIs(t, ro.update(ctx, func(*Tx) error { return nil }), ErrClosed)
	require.NoError(t, ro.Close())

	empty := filepath.Join(dir, "empty.db")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	_, err = OpenReadOnly(ctx, empty)
	require.ErrorIs(t, err, errNotOurs)
	info, err := os.Stat(empty)
	require.NoError(t, err)
	require.Zero(t, info.Size(), "an empty file stays empty")
}

// TestOpenReadOnlyLeavesTheWAL: with no server running, a read-only
// check, the file's last connection, neither checkpoints the WAL into the
// database nor deletes it, as a read-write connection closing last does:
// a copy being checked (a backup) is read, never changed.
func TestOpenReadOnlyLeavesTheWAL(t *testing.T) {
	ctx := context.Background()
	live := filepath.Join(t.TempDir(), "live.db")
	db, err := Open(ctx, live)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	grantAdmin(t, db, "alice", "g", 5, nil)
	dir := t.TempDir()
	copyFile := func(suffix string) string {
		b, err := os.ReadFile(live + suffix)
		require.NoError(t, err)
		to := filepath.Join(dir, "copy.db"+suffix)
		require.NoError(t, os.WriteFile(to, b, 0o600))
		return to
	}
	file, wal := copyFile(""), copyFile("-wal")
	before, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NotZero(t, len(before))

	ro, err := OpenReadOnly(ctx, file)
	require.NoError(t, err)
	c, err := ro.CheckLedger(ctx, "")
	require.NoError(t, err)
	require.Equal(t, int64(1), c.Lots, "the grant, which only the WAL holds")
	require.NoError(t, ro.Close())

	after, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, before, after, "the database file is untouched")
	require.FileExists(t, wal)
}

// TestCheckLedgerStopsWhenItsContextEnds: an operator's Ctrl-C stops the
// check within its scan, not after it (each statement reads the whole
// ledger before it answers), and the reader it used serves the next view.
func TestCheckLedgerStopsWhenItsContextEnds(t *testing.T) {
	db, _ := checkedLedger(t)
	const spent = 20_000 // spent lots, which add up: the lots' scan is most of a check
	_, err := writeExec(db, `WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?)
		INSERT INTO lots (lot_id, user_id, source, granted, remaining, granted_at, created_at)
		SELECT 'spent-' || x, 'alice', 'admin', 1, 0, 0, 0 FROM n`, spent)
	require.NoError(t, err)
	began := time.Now()
	c, err := db.CheckLedger(context.Background(), "")
	require.NoError(t, err)
	require.Zero(t, c.Found, c.Mismatches)
	require.Equal(t, int64(spent+2), c.Lots)
	whole := time.Since(began) // the machine's pace, with or without -race

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(whole/5, cancel)
	c, err = db.CheckLedger(ctx, "")
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, c.Lots, int64(spent), "stopped inside the lots' scan")

	for range cap(db.readers.free) { // every reader, the interrupted one among them
		require.NoError(t, db.view(context.Background(), func(tx *Tx) error {
			var lots int64
			err := tx.q.QueryRowContext(tx.ctx, `SELECT count(*) FROM lots`).Scan(&lots)
			require.Equal(t, int64(spent+2), lots)
			return err
		}))
	}
}

// TestInterruptibleStopsEachStatement: an interrupt that lands between two
// statements is dropped as the next begins, so it is repeated until fn
// returns; and once fn has returned, by a panic too, no interrupt reaches
// the reader's next user.
func TestInterruptibleStopsEachStatement(t *testing.T) {
	db := openTest(t)
	const endless = `WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100000000)
		SELECT count(*) FROM n` // minutes of work, uninterrupted
	ctx, cancel := context.WithCancel(context.Background())
	err := db.view(context.Background(), func(tx *Tx) error {
		return tx.interruptible(ctx, func() error {
			cancel()
			time.Sleep(5 * interruptEvery / 2) // the first interrupt finds no statement
			var n int64
			return tx.q.QueryRowContext(tx.ctx, endless).Scan(&n)
		})
	})
	require.ErrorIs(t, err, context.Canceled)

	ctx, cancel = context.WithCancel(context.Background())
	require.Panics(t, func() {
		_ = db.view(context.Background(), func(tx *Tx) error {
			return tx.interruptible(ctx, func() error { panic("a bug in a check") })
		})
	})
	cancel()
	time.Sleep(5 * interruptEvery / 2) // a goroutine left behind would interrupt by now
	for range cap(db.readers.free) {   // every reader, the panicked one among them
		require.NoError(t, db.view(context.Background(), func(tx *Tx) error {
			var n int64
			return tx.q.QueryRowContext(tx.ctx, `WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100000)
				SELECT count(*) FROM n`).Scan(&n)
		}))
	}
}
