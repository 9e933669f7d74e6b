package sqlite

import (
	"context"
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
	defer conn.close()
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
		db.commitBatch(conn, batch)
	}
}

func (db *DB) commitBatch(conn *stmtConn, batch []writeJob) {
	results := make([]error, len(batch))
	err := conn.inTransaction("BEGIN IMMEDIATE", func() error {
		for i, j := range batch {
			results[i] = db.runJob(conn, j.fn)
		}
		return nil
	})
	for i, j := range batch {
		if err != nil {
			results[i] = err
		}
		j.done <- results[i]
	}
}

// runJob runs fn inside a savepoint, undoing only its own work on failure
// (or panic, which it turns into an error so the writer lives on).
func (db *DB) runJob(conn *stmtConn, fn func(*Tx) error) (err error) {
	ctx := conn.ctx
	if _, err := conn.ExecContext(ctx, "SAVEPOINT job"); err != nil {
		return err
	}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("sqlite: write transaction panicked: %v", v)
		}
		if err != nil {
			_, _ = conn.ExecContext(ctx, "ROLLBACK TO job")
		}
		_, _ = conn.ExecContext(ctx, "RELEASE job")
	}()
	return fn(&Tx{q: conn, ctx: ctx, now: db.Now().UTC(), policy: db.Policy})
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

// startWriter takes the write pool's one connection and starts the writer.
func (db *DB) startWriter(ctx context.Context) error {
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return err
	}
	db.jobs = make(chan writeJob, maxBatch)
	db.writerDone = make(chan struct{})
	go db.writer(newStmtConn(conn))
	return nil
}

// stopWriter lets queued jobs finish and stops the writer.
func (db *DB) stopWriter() {
	close(db.jobs)
	select {
	case <-db.writerDone:
	case <-time.After(30 * time.Second):
	}
}
