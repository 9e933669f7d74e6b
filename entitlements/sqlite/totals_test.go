package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
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

// queueBehind holds the writer with a first job until every fn is queued
// behind it, in order, so that they share the next commit; it returns
// each one's outcome, once committed.
func queueBehind(t *testing.T, db *DB, fns ...func(*Tx) error) []<-chan error {
	t.Helper()
	started, release := make(chan struct{}), make(chan struct{})
	first, err := db.submit(context.Background(), func(*Tx) error { close(started); <-release; return nil })
	require.NoError(t, err)
	<-started
	done := make([]<-chan error, len(fns))
	for i, fn := range fns {
		done[i], err = db.submit(context.Background(), fn)
		require.NoError(t, err)
	}
	close(release)
	require.NoError(t, <-first)
	return done
}

// entryJob inserts an admin_grant entry of credits for a new user.
func entryJob(user string, credits int64, then func() error) func(*Tx) error {
	return func(tx *Tx) error {
		if err := insertUser(tx, user); err != nil {
			return err
		}
		_, err := tx.ExecContext(context.Background(), `INSERT INTO entries (user_id, kind, credits, product, actor, created_at)
			VALUES (?, 'admin_grant', ?, 'sora', 'test', 0)`, user, credits)
		if err != nil || then == nil {
			return err
		}
		return then()
	}
}

// A group commit adds what its jobs kept to ledger_totals, in its own
// transaction: of jobs that share one commit, a failed or panicking job's
// entries are not counted, and the rest once each.
func TestTotalsCountWhatEachCommitKeeps(t *testing.T) {
	db := openTest(t)
	const jobs = 40
	fns := make([]func(*Tx) error, jobs)
	for i := range fns {
		fns[i] = entryJob(fmt.Sprintf("u%d", i), int64(i+1), func() error {
			switch i % 4 {
			case 1:
				return errors.New("refused")
			case 3:
				panic("boom")
			}
			return nil
		})
	}
	before := db.WriterStats().Commits
	done := queueBehind(t, db, fns...)
	kept, credits := 0, 0
	for i := range jobs {
		if err := <-done[i]; i%2 == 0 {
			require.NoError(t, err)
			kept, credits = kept+1, credits+i+1
		} else {
			require.Error(t, err)
		}
	}
	require.Equal(t, int64(2), db.WriterStats().Commits-before, "the holding job's commit, then one for all the rest")
	require.Equal(t, []string{fmt.Sprintf("admin_grant sora %d %d", credits, kept)}, requireTotalsMatchEntries(t, db))
}

// A poisoned batch counts nothing, not even the entries of the jobs that
// ran before the poison in it, and the writer counts the next batch.
func TestTotalsOfAPoisonedBatch(t *testing.T) {
	db := openTest(t)
	grantAdmin(t, db, "alice", "g1", 7, nil)
	poison := func(tx *Tx) error { // as SQLite does on a full disk: the transaction ends behind the writer
		if err := entryJob("lost", 1000, nil)(tx); err != nil {
			return err
		}
		_, _ = tx.ExecContext(context.Background(), "ROLLBACK")
		return errors.New("refused")
	}
	done := queueBehind(t, db, entryJob("a", 1, nil), entryJob("b", 2, nil), poison, entryJob("c", 3, nil))
	for _, d := range done {
		require.Error(t, <-d, "a poisoned batch fails every job in it")
	}
	require.Equal(t, []string{"admin_grant  7 1"}, requireTotalsMatchEntries(t, db))
	grantAdmin(t, db, "bob", "g2", 5, nil)
	require.Equal(t, []string{"admin_grant  12 2"}, requireTotalsMatchEntries(t, db))
}

// Two processes on one database (the server and `creditsd jobs run`) each
// count only their own commits' entries: each writer takes its mark once
// it holds the write lock.
func TestTotalsWithTwoWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "two.db")
	var dbs [2]*DB
	for i := range dbs {
		db, err := Open(context.Background(), path)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, db.Close()) })
		db.Now = func() time.Time { return testNow }
		dbs[i] = db
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				user := fmt.Sprintf("w%d-%d", w, i)
				_, _, _, err := dbs[w%2].AdminGrant(context.Background(), entitlements.GrantRequest{UserID: user,
					Token: tokens.Token(user), Key: user, Hash: user, Credits: 1, Reason: "test", Actor: "service:ops"})
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, []string{"admin_grant  200 200"}, requireTotalsMatchEntries(t, dbs[0]))
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
