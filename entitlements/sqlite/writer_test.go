package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func countUsers(t testing.TB, db *DB) int {
	var n int
	require.NoError(t, db.read.QueryRow(`SELECT count(*) FROM users`).Scan(&n))
	return n
}

func insertUser(tx *Tx, id string) error {
	_, err := tx.ExecContext(context.Background(), `INSERT INTO users (user_id, app_account_token, created_at) VALUES (?, ?, 0)`, id, "tok-"+id)
	return err
}

// Many writers share commits; each one's failure undoes only its own work.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	db := openTest(t)
	var wg sync.WaitGroup
	errs := make([]error, 200)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.update(context.Background(), func(tx *Tx) error {
				if err := insertUser(tx, fmt.Sprintf("u%d", i)); err != nil {
					return err
				}
				if i%2 == 1 {
					return errors.New("refused")
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 1 {
			require.EqualError(t, err, "refused")
		} else {
			require.NoError(t, err)
		}
	}
	require.Equal(t, 100, countUsers(t, db), "only the jobs that succeeded were committed")
}

func TestGroupCommitSurvivesAPanic(t *testing.T) {
	db := openTest(t)
	err := db.update(context.Background(), func(tx *Tx) error {
		_ = insertUser(tx, "before-panic")
		panic("boom")
	})
	var tp *transactionPanic
	require.ErrorAs(t, err, &tp, "the panic, with the stack where it began")
	require.Equal(t, "boom", tp.value)
	require.Contains(t, string(tp.stack), "TestGroupCommitSurvivesAPanic")
	require.NoError(t, db.update(context.Background(), func(tx *Tx) error { return insertUser(tx, "after") }))
	require.Equal(t, 1, countUsers(t, db), "the panicking job's write was undone; the writer lives on")
}

// endTheBatch is a write that ends the writer's transaction itself and
// fails: the batch's ROLLBACK then fails too, and the writer's connection
// is given up (stmtConn.rollback).
func endTheBatch(tx *Tx) error {
	if _, err := tx.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		return err
	}
	return errors.New("a write that ended its batch")
}

// TestWriterReplacesItsClosedConnection: once a batch's ROLLBACK fails and
// database/sql closes the writer's connection, the next writes run on a
// new one, instead of every write failing before it begins for good.
func TestWriterReplacesItsClosedConnection(t *testing.T) {
	db := openTest(t)
	for i := range 3 {
		require.Error(t, db.update(context.Background(), endTheBatch))
		require.NoError(t, db.update(context.Background(), func(tx *Tx) error { return insertUser(tx, fmt.Sprint("u", i)) }))
		require.NoError(t, db.Ping(context.Background()))
	}
	require.Equal(t, 3, countUsers(t, db))
}

// TestPingReportsAWriterWithNoConnection: while no connection opens in
// place of the writer's closed one, every write fails, and /readyz's Ping
// says so instead of answering ready.
func TestPingReportsAWriterWithNoConnection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "down.db")
	db, err := Open(context.Background(), path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	require.Error(t, db.update(context.Background(), endTheBatch))
	require.NoError(t, db.write.Close()) // no new writer connection can open
	require.Error(t, db.update(context.Background(), func(tx *Tx) error { return insertUser(tx, "lost") }))
	require.ErrorIs(t, db.Ping(context.Background()), errWriterDown)

	// Once connections open again, Ping itself brings the writer back: a
	// server out of rotation gets no writes that would.
	db.write, err = sql.Open("sqlite", dsn(path))
	require.NoError(t, err)
	db.write.SetMaxOpenConns(1)
	require.NoError(t, db.Ping(context.Background()))
	require.NoError(t, db.update(context.Background(), func(tx *Tx) error { return insertUser(tx, "kept") }))
	require.Equal(t, 1, countUsers(t, db))
}

// A caller whose context ends after its job is queued still learns the true
// outcome, and the job is not half-done.
func TestCancelledCallerDoesNotInterruptTheBatch(t *testing.T) {
	db := openTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	err := db.update(ctx, func(tx *Tx) error {
		cancel() // the client goes away mid-transaction
		return insertUser(tx, "kept")
	})
	require.NoError(t, err)
	require.Equal(t, 1, countUsers(t, db))
	require.ErrorIs(t, db.update(ctx, func(*Tx) error { return nil }), context.Canceled, "a cancelled caller is not queued")
}

func TestCloseFinishesQueuedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "close.db")
	db, err := Open(context.Background(), path)
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- db.update(context.Background(), func(tx *Tx) error { return insertUser(tx, fmt.Sprintf("c%d", i)) })
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())
	db, err = Open(context.Background(), path)
	require.NoError(t, err)
	defer db.Close()
	require.Equal(t, 50, countUsers(t, db))
}

func TestWriteAfterCloseIsRefused(t *testing.T) {
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "closed.db"))
	require.NoError(t, err)
	require.NoError(t, db.Close())
	require.ErrorIs(t, db.update(context.Background(), func(*Tx) error { return nil }), ErrClosed,
		"a handler still running after shutdown gets an error, not a panic")
	require.NotPanics(t, func() { _ = db.Close() })
}

// A job that ends the shared transaction behind the writer's back (as
// SQLite does on a full disk or an I/O error) poisons its batch: it fails,
// nothing of the batch is kept, and the writer goes on.
func TestPoisonedBatchFailsAndTheWriterGoesOn(t *testing.T) {
	db := openTest(t)
	err := db.update(context.Background(), func(tx *Tx) error {
		_ = insertUser(tx, "lost")
		_, _ = tx.ExecContext(context.Background(), "ROLLBACK")
		return errors.New("refused")
	})
	require.ErrorContains(t, err, "refused")
	require.NoError(t, db.update(context.Background(), func(tx *Tx) error { return insertUser(tx, "after") }))
	require.Equal(t, 1, countUsers(t, db))
}

func TestWriterStatsCountEveryWrite(t *testing.T) {
	db := openTest(t)
	before := db.WriterStats()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			grantAdmin(t, db, "alice", fmt.Sprintf("k%d", i), 1, nil)
		}()
	}
	wg.Wait()
	s := db.WriterStats()
	require.Equal(t, int64(20), s.Writes-before.Writes, "every write transaction is counted once")
	require.Positive(t, s.Commits-before.Commits)
	require.LessOrEqual(t, s.Commits-before.Commits, int64(20), "a commit holds one write or more")
	require.Positive(t, s.Run-before.Run)
	require.Positive(t, s.Commit-before.Commit)
}

// TestPingWaitsForTheWriterBriefly: while the writer's probe cannot get
// a connection yet (here the pool's one is taken), Ping answers within
// probeWait, and a second Ping queues no second probe; once a connection
// opens, the probe's is the writer's.
func TestPingWaitsForTheWriterBriefly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.db")
	db, err := Open(context.Background(), path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	require.Error(t, db.update(context.Background(), endTheBatch))
	require.NoError(t, db.write.Close())
	require.Error(t, db.update(context.Background(), func(*Tx) error { return nil })) // down: no connection opens
	db.write, err = sql.Open("sqlite", dsn(path))
	require.NoError(t, err)
	db.write.SetMaxOpenConns(1)
	held, err := db.write.Conn(context.Background()) // the writer's probe waits for it
	require.NoError(t, err)

	for range 2 {
		start := time.Now()
		require.ErrorIs(t, db.Ping(context.Background()), errWriterDown)
		require.Less(t, time.Since(start), probeWait+time.Second, "the probe waits; Ping does not")
	}
	require.Len(t, db.jobs, 0, "one probe, taken by the writer; the second Ping queued none")

	// With the queue full behind the stuck probe, a Ping queues nothing and
	// does not wait for room.
	var writes sync.WaitGroup
	for range cap(db.jobs) + 1 {
		writes.Go(func() { _ = db.update(context.Background(), func(*Tx) error { return nil }) })
	}
	require.Eventually(t, func() bool { return len(db.jobs) == cap(db.jobs) }, 5*time.Second, 10*time.Millisecond)
	db.probing.Store(false) // as if the first probe had ended and the writer had gone down again
	start := time.Now()
	require.ErrorIs(t, db.Ping(context.Background()), errWriterDown)
	require.Less(t, time.Since(start), probeWait, "no room in the queue: no probe, no wait")
	require.False(t, db.probing.Load(), "no probe in flight")
	require.NoError(t, held.Close())
	writes.Wait()
	require.Eventually(t, func() bool { return db.Ping(context.Background()) == nil }, 5*time.Second, 20*time.Millisecond)
	require.NoError(t, db.update(context.Background(), func(tx *Tx) error { return insertUser(tx, "kept") }))
}

// Waiting for another process's write lock (a jobs run's batch) is counted
// as a phase of its own: a writer whose writes take seconds while it only
// waits must not look idle. It counts for a batch whose BEGIN gives up too.
func TestWriterStatsCountTheLockWait(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	db, err := Open(context.Background(), path)
	require.NoError(t, err)
	defer db.Close()
	db.Now = func() time.Time { return testNow }
	other, err := sql.Open("sqlite", dsn(path))
	require.NoError(t, err)
	defer other.Close()
	conn, err := other.Conn(context.Background())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`)
	require.NoError(t, err)
	time.AfterFunc(300*time.Millisecond, func() { conn.ExecContext(context.Background(), `COMMIT`) })

	before := db.WriterStats()
	grantAdmin(t, db, "alice", "k", 1, nil)
	s := db.WriterStats()
	require.GreaterOrEqual(t, s.LockWait-before.LockWait, 250*time.Millisecond)
	require.Less(t, s.Run-before.Run, 250*time.Millisecond, "the wait is not the transaction's run")
}
