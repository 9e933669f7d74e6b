package sqlite

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// maxBatch bounds how many write transactions share one commit.
const maxBatch = 128

// writeJob is one caller's write transaction, waiting for the writer.
type writeJob struct {
	fn   func(*Tx) error
	done chan error
}

// writer is the one goroutine that writes, on one connection it keeps. It
// runs each job in a SAVEPOINT of a shared transaction and commits once for
// every job that was waiting: group commit. SQLite has one writer anyway;
// sharing the commit makes one fsync (synchronous=FULL) cover many
// acknowledged writes. A job's failure rolls back its savepoint only; a
// failed commit fails every job in it, so nothing is acknowledged that is
// not durable. The connection keeps its statements prepared: parsing SQL
// was most of a spend's cost.
func (db *DB) writer(conn *stmtConn) {
	defer close(db.writerDone)
	defer func() { conn.close() }() // the one in use at the end
	for first := range db.jobs {
		batch := append(make([]writeJob, 0, maxBatch), first)
	gather:
		for len(batch) < maxBatch {
			select {
			case j, ok := <-db.jobs:
				if !ok {
					break gather
				}
				batch = append(batch, j)
			default:
				break gather
			}
		}
		conn = db.writerConn(conn)
		db.commitBatch(conn, batch)
	}
}

// writerConn is conn, or a new connection in its place once database/sql
// has closed it (a driver.ErrBadConn, a panic in the driver, a ROLLBACK
// that failed): on a closed one every later write would fail before it
// began. If none opens, the batch fails on the closed one, the next batch
// tries again, and Ping reports the writer down meanwhile.
func (db *DB) writerConn(conn *stmtConn) *stmtConn {
	if !conn.broken {
		return conn
	}
	fresh, err := db.write.Conn(context.Background())
	if err != nil {
		db.writerDown.Store(true)
		return conn
	}
	_ = conn.conn.Close() // database/sql has closed it, its statements finalized first (inTransaction)
	db.writerDown.Store(false)
	db.schema = -1 // a new connection checks the migrations again, as at start
	return newStmtConn(fresh)
}

func (db *DB) commitBatch(conn *stmtConn, batch []writeJob) {
	results := make([]error, len(batch))
	asked := time.Now()
	var began, ran time.Time
	err := conn.inTransaction("BEGIN IMMEDIATE", func() error {
		began = time.Now() // after BEGIN: waiting for another process's lock is a phase of its own
		defer func() { ran = time.Now() }()
		if err := db.sameSchema(conn); err != nil {
			return err
		}
		last, err := lastEntry(conn)
		if err != nil {
			return err
		}
		for i, j := range batch {
			var poison error
			if results[i], poison = db.runJob(conn, j.fn); poison != nil {
				return poison // the batch cannot be trusted: roll it all back
			}
		}
		return AddTotals(conn.ctx, conn, last)
	})
	if began.IsZero() { // BEGIN failed: another process held the lock past the busy timeout, say
		began = time.Now()
	}
	db.stats.lockWait.Add(int64(began.Sub(asked)))
	if err == nil {
		db.stats.add(len(batch), ran.Sub(began), time.Since(ran))
	}
	for i, j := range batch {
		if err != nil {
			results[i] = err
		}
		j.done <- results[i]
	}
}

// sameSchema refuses to write once another process has migrated the
// database past this binary's migrations (a newer binary's `jobs run`
// beside this `serve`): its statements would fail on a dropped column, or
// succeed and leave tables a newer migration keeps in step behind (after
// 0015, ledger_totals). Open checks only at start. The schema's version
// is one read of the database's header a commit; only when it changed are
// the migrations read (ANALYZE, say, changes it too).
func (db *DB) sameSchema(conn *stmtConn) error {
	var version int64
	if err := conn.QueryRowContext(conn.ctx, `PRAGMA schema_version`).Scan(&version); err != nil {
		return err
	}
	if version == db.schema {
		return nil
	}
	applied, err := appliedMigrations(conn)
	if err == nil {
		err = newerSchema(applied, migrationList)
	}
	if err == nil {
		db.schema = version
	}
	return err
}

// appliedMigrations are the names schema_migrations holds, read in the
// writer's transaction.
func appliedMigrations(conn *stmtConn) ([]string, error) {
	rows, err := conn.QueryContext(conn.ctx, migrationsSQL)
	if err != nil {
		return nil, err
	}
	return scanNames(rows)
}

// lastEntry is the ledger's last entry_id, 0 when it is empty.
func lastEntry(conn *stmtConn) (int64, error) {
	var last int64
	err := conn.QueryRowContext(conn.ctx, `SELECT COALESCE(MAX(entry_id), 0) FROM entries`).Scan(&last)
	return last, err
}

// runJob runs fn inside a savepoint, undoing only its own work on failure
// (or panic, which it turns into an error so the writer lives on). If its
// work cannot be undone, or SQLite already rolled the whole transaction
// back (a full disk, an I/O error), poison says so and the batch fails.
func (db *DB) runJob(conn *stmtConn, fn func(*Tx) error) (err, poison error) {
	ctx := conn.ctx
	if _, err := conn.ExecContext(ctx, "SAVEPOINT job"); err != nil {
		return err, err
	}
	defer func() {
		if v := recover(); v != nil {
			err = &transactionPanic{value: v, stack: debug.Stack()} // logged by the caller with where it began
		}
		if err != nil {
			if _, rerr := conn.ExecContext(ctx, "ROLLBACK TO job"); rerr != nil {
				poison = fmt.Errorf("sqlite: undoing a failed write (%v): %w", err, rerr)
			}
		}
		if _, rerr := conn.ExecContext(ctx, "RELEASE job"); rerr != nil && poison == nil {
			poison = fmt.Errorf("sqlite: releasing a write: %w", rerr)
		}
	}()
	return fn(&Tx{q: conn, ctx: ctx, now: db.now(), policy: db.Policy}), nil
}

// update runs fn as one write transaction, committed (with whatever else
// was waiting) before it returns nil. Once queued it runs to the end even
// if ctx is cancelled, so the caller learns the true outcome.
func (db *DB) update(ctx context.Context, fn func(*Tx) error) error {
	done, err := db.submit(ctx, fn)
	if err != nil {
		return err
	}
	return <-done
}

// submit queues fn for the writer and returns at once; done receives
// fn's outcome, or its commit's, once the commit is over.
func (db *DB) submit(ctx context.Context, fn func(*Tx) error) (done <-chan error, err error) {
	return db.enqueue(ctx, fn, true)
}

// errQueueFull is enqueue's answer, when told not to wait, to a full queue.
var errQueueFull = errors.New("sqlite: the writer's queue is full")

// enqueue queues fn for the writer; with wait false it gives up at once
// (errQueueFull) when the queue is full, rather than wait for room.
func (db *DB) enqueue(ctx context.Context, fn func(*Tx) error, wait bool) (done <-chan error, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	j := writeJob{fn: fn, done: make(chan error, 1)}
	db.closing.RLock()
	defer db.closing.RUnlock()
	if db.closed {
		return nil, ErrClosed
	}
	if wait {
		db.jobs <- j
		return j.done, nil
	}
	select {
	case db.jobs <- j:
		return j.done, nil
	default:
		return nil, errQueueFull
	}
}

// WriterStats is what the writer has committed since Open. Writes/Commits is
// the group commit's batch size; Run and Commit, divided by the wall time
// they cover, are how busy the one writer is: its SQL, and the COMMIT that
// writes the WAL and fsyncs it. Together near 1 means writes queue for it.
type WriterStats struct {
	Commits  int64
	Writes   int64
	Run      time.Duration
	Commit   time.Duration
	LockWait time.Duration // waiting in BEGIN IMMEDIATE for another process's write lock
}

// writerStats is kept by the writer goroutine and read by /metrics.
type writerStats struct {
	commits, writes, run, commit, lockWait atomic.Int64
}

func (s *writerStats) add(writes int, run, commit time.Duration) {
	s.commits.Add(1)
	s.writes.Add(int64(writes))
	s.run.Add(int64(run))
	s.commit.Add(int64(commit))
}

// WriterStats reads the writer's counters.
func (db *DB) WriterStats() WriterStats {
	return WriterStats{Commits: db.stats.commits.Load(), Writes: db.stats.writes.Load(),
		Run: time.Duration(db.stats.run.Load()), Commit: time.Duration(db.stats.commit.Load()),
		LockWait: time.Duration(db.stats.lockWait.Load())}
}

// ErrClosed is a write asked of a closed database.
var ErrClosed = errors.New("sqlite: the database is closed")

// startWriter takes the write pool's one connection and starts the writer.
func (db *DB) startWriter(ctx context.Context) error {
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return err
	}
	// No version yet: the first commit reads the migrations, since a newer
	// binary waiting for the write lock may have migrated the database as
	// soon as Open's migrations committed.
	db.schema = -1
	db.jobs = make(chan writeJob, maxBatch)
	db.writerDone = make(chan struct{})
	go db.writer(newStmtConn(conn))
	return nil
}

// stopWriter lets queued jobs finish and stops the writer; a write asked
// after this gets ErrClosed.
func (db *DB) stopWriter() {
	db.closing.Lock()
	if db.closed {
		db.closing.Unlock()
		return
	}
	db.closed = true
	close(db.jobs)
	db.closing.Unlock()
	select {
	case <-db.writerDone:
	case <-time.After(30 * time.Second):
	}
}
