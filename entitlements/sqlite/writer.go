package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
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
	err := conn.inTransaction(func() {
		for i, j := range batch {
			results[i] = db.runJob(conn, j.fn)
		}
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
	go db.writer(&stmtConn{conn: conn, ctx: context.Background(), stmts: map[string]*sql.Stmt{}})
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

// maxStatements bounds the prepared statements kept; the queries are the
// program's own constants, so this is only a guard.
const maxStatements = 512

// stmtConn is the writer's connection and its prepared statements. The
// transaction is managed in SQL (BEGIN IMMEDIATE … COMMIT), so statements
// prepared once on the connection serve every transaction.
type stmtConn struct {
	conn  *sql.Conn
	ctx   context.Context
	mu    sync.Mutex // the writer is one goroutine; this guards close
	stmts map[string]*sql.Stmt
}

func (c *stmtConn) inTransaction(fill func()) error {
	if _, err := c.ExecContext(c.ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	fill()
	if _, err := c.ExecContext(c.ctx, "COMMIT"); err != nil {
		_, _ = c.ExecContext(c.ctx, "ROLLBACK")
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// stmt is query prepared on the connection, from the cache.
func (c *stmtConn) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.stmts[query]; ok {
		return s, nil
	}
	s, err := c.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if len(c.stmts) < maxStatements {
		c.stmts[query] = s
	}
	return s, nil
}

func (c *stmtConn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

func (c *stmtConn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

func (c *stmtConn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := c.stmt(ctx, query)
	if err != nil {
		// A *sql.Row carries its error only through Scan; run the query
		// unprepared so Scan reports the same failure.
		return c.conn.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

func (c *stmtConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.stmts {
		_ = s.Close()
	}
	_ = c.conn.Close()
}
