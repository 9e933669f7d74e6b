package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// maxStatements bounds the prepared statements kept; the queries are the
// program's own constants, so this is only a guard.
const maxStatements = 512

// stmtConn is a connection kept for one user at a time (the writer, or a
// view) with its prepared statements. Transactions are managed in SQL
// (BEGIN … COMMIT), so statements prepared once on the connection serve
// every transaction.
type stmtConn struct {
	conn  *sql.Conn
	ctx   context.Context
	mu    sync.Mutex // the writer is one goroutine; this guards close
	stmts map[string]*sql.Stmt
}

// inTransaction runs fill between begin (BEGIN IMMEDIATE for the writer,
// BEGIN for a consistent read snapshot) and COMMIT; if fill fails, it rolls
// everything back instead.
func (c *stmtConn) inTransaction(begin string, fill func() error) error {
	if _, err := c.ExecContext(c.ctx, begin); err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	if err := fill(); err != nil {
		_, _ = c.ExecContext(c.ctx, "ROLLBACK") // the error at hand is the one to report
		return err
	}
	if _, err := c.ExecContext(c.ctx, "COMMIT"); err != nil {
		_, _ = c.ExecContext(c.ctx, "ROLLBACK")
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

func newStmtConn(conn *sql.Conn) *stmtConn {
	return &stmtConn{conn: conn, ctx: context.Background(), stmts: map[string]*sql.Stmt{}}
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

// readers is a pool of read connections, each keeping its statements.
type readers chan *stmtConn

// openReaders takes n connections from the read pool for good.
func openReaders(ctx context.Context, pool *sql.DB, n int) (readers, error) {
	r := make(readers, n)
	for range n {
		conn, err := pool.Conn(ctx)
		if err != nil {
			r.close()
			return nil, err
		}
		r <- newStmtConn(conn)
	}
	return r, nil
}

// view runs fn in a read snapshot on a free reader.
func (r readers) view(ctx context.Context, fn func(*stmtConn) error) error {
	var c *stmtConn
	select {
	case c = <-r:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { r <- c }()
	return c.inTransaction("BEGIN", func() error { return fn(c) })
}

func (r readers) close() {
	for {
		select {
		case c := <-r:
			c.close()
		default:
			return
		}
	}
}
