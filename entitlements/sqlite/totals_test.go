package sqlite

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// totalsSQL and entriesTotalsSQL are ledger_totals, and what the entries
// say it should hold, as comparable lines.
const (
	totalsSQL = `SELECT kind || ' ' || product || ' ' || CAST(credits AS INTEGER) || ' ' || entries
		FROM ledger_totals ORDER BY kind, product`
	entriesTotalsSQL = `SELECT kind || ' ' || product || ' ' || SUM(abs(credits)) || ' ' || count(*)
		FROM entries GROUP BY kind, product ORDER BY kind, product`
)

func requireTotalsMatchEntries(t *testing.T, db *DB) []string {
	t.Helper()
	totals := queryStrings(t, db, totalsSQL)
	require.Equal(t, queryStrings(t, db, entriesTotalsSQL), totals, "ledger_totals counts every entry once")
	return totals
}

// A group commit adds what its jobs kept to ledger_totals, in its own
// transaction: of jobs that share one commit, a failed or panicking job's
// entries are not counted, and a poisoned batch counts nothing.
func TestTotalsCountWhatEachCommitKeeps(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	entry := func(tx *Tx, user string, credits int64) error {
		if err := insertUser(tx, user); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO entries (user_id, kind, credits, product, actor, created_at)
			VALUES (?, 'admin_grant', ?, 'sora', 'test', 0)`, user, credits)
		return err
	}
	// Hold the writer with a first job until the rest are queued, so that
	// they share the next commit.
	started, release, first := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		first <- db.update(ctx, func(tx *Tx) error { close(started); <-release; return entry(tx, "first", 1) })
	}()
	<-started
	before := db.WriterStats().Commits
	const jobs = 40
	errs := make([]chan error, jobs)
	for i := range jobs {
		errs[i] = make(chan error, 1)
		go func() {
			errs[i] <- db.update(ctx, func(tx *Tx) error {
				if err := entry(tx, fmt.Sprintf("u%d", i), int64(i+1)); err != nil {
					return err
				}
				switch i % 4 {
				case 1:
					return errors.New("refused")
				case 3:
					panic("boom")
				}
				return nil
			})
		}()
	}
	require.Eventually(t, func() bool { return len(db.jobs) == jobs }, 5*time.Second, time.Millisecond)
	close(release)
	require.NoError(t, <-first)
	kept, credits := int64(1), int64(1)
	for i := range jobs {
		if err := <-errs[i]; i%2 == 0 {
			require.NoError(t, err)
			kept, credits = kept+1, credits+int64(i+1)
		} else {
			require.Error(t, err)
		}
	}
	require.Equal(t, int64(2), db.WriterStats().Commits-before, "the first job's commit, then one for all the rest")
	require.Equal(t, []string{fmt.Sprintf("admin_grant sora %d %d", credits, kept)}, requireTotalsMatchEntries(t, db))

	err := db.update(ctx, func(tx *Tx) error {
		_ = entry(tx, "lost", 1000)
		_, _ = tx.ExecContext(ctx, "ROLLBACK")
		return errors.New("refused")
	})
	require.ErrorContains(t, err, "refused")
	grantAdmin(t, db, "alice", "g1", 7, nil)
	require.Equal(t, []string{"admin_grant  7 1", fmt.Sprintf("admin_grant sora %d %d", credits, kept)},
		requireTotalsMatchEntries(t, db), "the poisoned batch counted nothing")
}

// Migration 0015 drops the trigger that kept ledger_totals: what it
// counted stays, and the writer counts the entries after it, once each.
func TestMigrationKeepsTotalsByCommit(t *testing.T) {
	ctx := context.Background()
	path := oldLedger(t, "0015", lotsBefore0012)
	db, err := Open(ctx, path)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	db.Now = func() time.Time { return testNow }
	require.Empty(t, queryStrings(t, db, `SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'entries'
		AND name NOT IN ('entries_no_update', 'entries_no_delete')`))
	require.Len(t, requireTotalsMatchEntries(t, db), 7, "the trigger's totals of the old entries are kept")

	_, _, _, err = db.Spend(ctx, spendReq("alice", "k-after", 33))
	require.NoError(t, err)
	require.Equal(t, Expired{Lots: 1, Credits: 7}, sweepAll(t, db, testNow, 10))
	require.Contains(t, requireTotalsMatchEntries(t, db), "expire  10 2")
}
