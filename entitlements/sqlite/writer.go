package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// maxBatch bounds how many write transactions share one commit.
const maxBatch = 128

// writeJob is one caller's write transaction, waiting for the writer.
type writeJob struct {
	fn   func(*Tx) error
	done chan error
}

// writer is the one goroutine that writes. It runs each job in a SAVEPOINT
// of a shared transaction and commits once for every job that was waiting:
// group commit. SQLite has one writer anyway; sharing the commit makes one
// fsync (synchronous=FULL) cover many acknowledged writes. A job's failure
// rolls back its savepoint only; a failed commit fails every job in it, so
// nothing is acknowledged that is not durable.
func (db *DB) writer() {
	defer close(db.writerDone)
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
		db.commitBatch(batch)
	}
}

func (db *DB) commitBatch(batch []writeJob) {
	// Statements run on a context of their own: a caller that goes away must
	// not interrupt a statement, which would roll back the whole batch.
	ctx := context.Background()
	results := make([]error, len(batch))
	err := db.inBatch(ctx, func(tx *sql.Tx) {
		for i, j := range batch {
			results[i] = db.runJob(ctx, tx, j.fn)
		}
	})
	for i, j := range batch {
		if err != nil {
			results[i] = err
		}
		j.done <- results[i]
	}
}

// inBatch runs fill in one transaction and commits it.
func (db *DB) inBatch(ctx context.Context, fill func(*sql.Tx)) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	fill(tx)
	if err := tx.Commit(); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// runJob runs fn inside a savepoint, undoing only its own work on failure
// (or panic, which it turns into an error so the writer lives on).
func (db *DB) runJob(ctx context.Context, tx *sql.Tx, fn func(*Tx) error) (err error) {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT job"); err != nil {
		return err
	}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("sqlite: write transaction panicked: %v", v)
		}
		if err != nil {
			_, _ = tx.ExecContext(ctx, "ROLLBACK TO job")
		}
		_, _ = tx.ExecContext(ctx, "RELEASE job")
	}()
	return fn(&Tx{Tx: tx, ctx: ctx, now: db.Now().UTC(), policy: db.Policy})
}

// update runs fn as one write transaction, committed (with whatever else
// was waiting) before it returns nil. Once queued it runs to the end even
// if ctx is cancelled, so the caller learns the true outcome.
func (db *DB) update(ctx context.Context, fn func(*Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j := writeJob{fn: fn, done: make(chan error, 1)}
	db.jobs <- j
	return <-j.done
}

// startWriter starts the writer goroutine.
func (db *DB) startWriter() {
	db.jobs = make(chan writeJob, maxBatch)
	db.writerDone = make(chan struct{})
	go db.writer()
}

// stopWriter lets queued jobs finish and stops the writer.
func (db *DB) stopWriter() {
	close(db.jobs)
	select {
	case <-db.writerDone:
	case <-time.After(30 * time.Second):
	}
}
