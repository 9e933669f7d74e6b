package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"runtime/debug"
)

// maxStatements bounds the prepared statements kept; the queries are the
// program's own constants, so this is only a guard.
const maxStatements = 512

// stmtConn is a connection kept for one user at a time (the writer, or a
// view) with its prepared statements. Transactions are managed in SQL
// (BEGIN … COMMIT), so statements prepared once on the connection serve
// every transaction. It has one owner at a time, the writer goroutine or
// the view that took it from the readers' pool, and so takes no locks.
//
// Its statements run on the driver's connection, not through database/sql:
// a connection that one goroutine holds for good needs none of the pool's
// locks or per-call bookkeeping, which cost a user's state read 16 % of its
// time in process and a spend 10 % (BENCHMARKS.md, session 18). database/sql
// still opens, configures and closes the connection, and its conversions
// still turn arguments and columns into Go values (rows.go).
type stmtConn struct {
	conn  *sql.Conn
	ctx   context.Context
	dc    driverConn // the driver's connection, inside inTransaction only
	stmts map[string]driverStmt
	// broken is a connection database/sql has closed, which it does after
	// a driver.ErrBadConn or a panic outside fill (inTransaction). Every
	// later transaction on it would fail with sql.ErrConnDone before it
	// began (errNotBegun); the readers' pool replaces it instead.
	broken bool
}

// driverConn is what stmtConn needs of the driver's connection.
type driverConn interface {
	driver.Conn
	driver.ConnPrepareContext
}

// driverStmt is what stmtConn needs of the driver's prepared statement.
type driverStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// errNoTransaction is a statement run outside inTransaction: a bug.
var errNoTransaction = errors.New("sqlite: a statement outside a transaction")

// inTransaction runs fill between begin (BEGIN IMMEDIATE for the writer,
// BEGIN for a consistent read snapshot) and COMMIT; if fill fails, it rolls
// everything back instead. The statements fill runs reach the driver's
// connection, which database/sql lends only for the length of Raw. A
// panic in fill is rolled back too, and goes on once the connection is
// back in database/sql's hands: database/sql would close a connection
// that a panic leaves, and the bug should cost one request, not a reader.
//
// A panic outside fill (in the driver's BEGIN, COMMIT or ROLLBACK), or a
// driver.ErrBadConn, leaves a connection nothing can trust: its statements
// are finalized while the driver's connection is still lent, and Raw
// returns driver.ErrBadConn, so that database/sql closes it. SQLite closes
// a connection only once its statements are finalized; otherwise it would
// linger, with its files and any open read snapshot, which would keep
// checkpoints from ever emptying the WAL. The connection is then broken
// (see readers.take), and the panic goes on as one in fill does.
func (c *stmtConn) inTransaction(begin string, fill func() error) error {
	var panicked *transactionPanic
	began := false
	err := c.conn.Raw(func(dc any) (err error) {
		began = true
		d, ok := dc.(driverConn)
		if !ok {
			return fmt.Errorf("sqlite: the driver's connection %T prepares no statements with a context", dc)
		}
		c.dc = d
		defer func() { c.dc = nil }()
		defer func() {
			if v := recover(); v != nil {
				if panicked == nil { // fill's own panic, if any, is the bug to report
					panicked = &transactionPanic{value: v, stack: debug.Stack()}
				}
				err = driver.ErrBadConn
			}
			if errors.Is(err, driver.ErrBadConn) {
				c.finalize()
			}
		}()
		return c.run(begin, fill, &panicked)
	})
	c.broken = !began || errors.Is(err, driver.ErrBadConn) // what database/sql has closed
	if panicked != nil {
		panic(panicked)
	}
	if !began && err != nil {
		return fmt.Errorf("%w: %w", errNotBegun, err)
	}
	return err
}

// errNotBegun is a transaction Raw never began: the connection was closed
// (sql.ErrConnDone). Nothing of fill ran, so it may run on another.
var errNotBegun = errors.New("sqlite: the transaction did not begin")

// run is inTransaction's work on the lent connection. A panic in fill is
// set in *panicked before the ROLLBACK, so that one in the ROLLBACK does
// not hide it.
func (c *stmtConn) run(begin string, fill func() error, panicked **transactionPanic) error {
	if _, err := c.ExecContext(c.ctx, begin); err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	var err error
	if *panicked, err = recovering(fill); err != nil || *panicked != nil {
		return c.rollback(err)
	}
	if _, err := c.ExecContext(c.ctx, "COMMIT"); err != nil {
		return c.rollback(fmt.Errorf("sqlite: commit: %w", err))
	}
	return nil
}

// rollback ends a failed transaction, answering err, the failure at hand.
// A ROLLBACK that fails may leave the connection inside the transaction,
// where every later BEGIN would fail and an open read snapshot would keep
// checkpoints from emptying the WAL; SQLite does not say which. So the
// connection is given up (driver.ErrBadConn) and replaced: the cost, when
// SQLite had already rolled back itself (a full disk, an I/O error), is
// one reconnection.
func (c *stmtConn) rollback(err error) error {
	if _, rerr := c.ExecContext(c.ctx, "ROLLBACK"); rerr != nil {
		return errors.Join(err, fmt.Errorf("sqlite: rollback: %w", rerr), driver.ErrBadConn)
	}
	return err
}

// finalize closes the cached statements, for a connection about to close.
// A statement prepared past the cache is closed with its rows; one whose
// rows fill leaked open is not, and keeps SQLite from freeing the
// connection at once.
func (c *stmtConn) finalize() {
	for q, s := range c.stmts {
		_ = s.Close()
		delete(c.stmts, q)
	}
}

// transactionPanic is a panic in a transaction, raised again after the
// rollback with the stack where it began, which the second panic's own
// stack would not show.
type transactionPanic struct {
	value any
	stack []byte
}

func (p *transactionPanic) Error() string {
	return fmt.Sprintf("sqlite: a transaction panicked: %v\n\n%s", p.value, p.stack)
}

// Unwrap is the panic's value, when it was an error.
func (p *transactionPanic) Unwrap() error {
	err, _ := p.value.(error)
	return err
}

// recovering runs fn, turning a panic into a *transactionPanic.
func recovering(fn func() error) (panicked *transactionPanic, err error) {
	defer func() {
		if v := recover(); v != nil {
			panicked = &transactionPanic{value: v, stack: debug.Stack()}
		}
	}()
	return nil, fn()
}

func newStmtConn(conn *sql.Conn) *stmtConn {
	return &stmtConn{conn: conn, ctx: context.Background(), stmts: map[string]driverStmt{}}
}

// stmt is query prepared on the connection, from the cache; kept is false
// when the cache is full, and the caller closes the statement after use.
func (c *stmtConn) stmt(ctx context.Context, query string) (s driverStmt, kept bool, err error) {
	if c.dc == nil {
		return nil, false, errNoTransaction
	}
	if s, ok := c.stmts[query]; ok {
		return s, true, nil
	}
	ds, err := c.dc.PrepareContext(ctx, query)
	if err != nil {
		return nil, false, err
	}
	s, ok := ds.(driverStmt)
	if !ok {
		_ = ds.Close()
		return nil, false, fmt.Errorf("sqlite: the driver's statement %T takes no context", ds)
	}
	if len(c.stmts) >= maxStatements {
		return s, false, nil
	}
	c.stmts[query] = s
	return s, true, nil
}

func (c *stmtConn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, kept, nargs, err := c.prepare(ctx, query, args)
	if err != nil {
		return nil, err
	}
	if !kept {
		defer s.Close()
	}
	return s.ExecContext(ctx, nargs)
}

func (c *stmtConn) QueryContext(ctx context.Context, query string, args ...any) (*stmtRows, error) {
	s, kept, nargs, err := c.prepare(ctx, query, args)
	if err != nil {
		return nil, err
	}
	dr, err := s.QueryContext(ctx, nargs)
	if err != nil {
		if !kept {
			_ = s.Close()
		}
		return nil, err
	}
	rs := &stmtRows{dr: dr, vals: make([]driver.Value, len(dr.Columns()))}
	if !kept {
		rs.stmt = s
	}
	return rs, nil
}

func (c *stmtConn) QueryRowContext(ctx context.Context, query string, args ...any) *stmtRow {
	rs, err := c.QueryContext(ctx, query, args...)
	return &stmtRow{rows: rs, err: err}
}

// prepare is query's statement and args as the driver takes them.
func (c *stmtConn) prepare(ctx context.Context, query string, args []any) (driverStmt, bool, []driver.NamedValue, error) {
	s, kept, err := c.stmt(ctx, query)
	if err != nil {
		return nil, false, nil, err
	}
	nargs, err := namedValues(args)
	if err != nil && !kept {
		_ = s.Close()
	}
	return s, kept, nargs, err
}

// close finalizes the statements and closes the connection, at shutdown.
// A connection database/sql has already closed cannot finalize them; the
// driver's closing of it is then all there is.
func (c *stmtConn) close() {
	_ = c.conn.Raw(func(any) error {
		c.finalize()
		return nil
	})
	_ = c.conn.Close()
}

// readers is a pool of read connections, each keeping its statements.
type readers struct {
	free chan *stmtConn
	pool *sql.DB // where a broken reader's replacement comes from
}

// openReaders takes n connections from the read pool for good.
func openReaders(ctx context.Context, pool *sql.DB, n int) (*readers, error) {
	r := &readers{free: make(chan *stmtConn, n), pool: pool}
	for range n {
		conn, err := pool.Conn(ctx)
		if err != nil {
			r.close()
			return nil, err
		}
		r.free <- newStmtConn(conn)
	}
	return r, nil
}

// view runs fn in a read snapshot on a free reader. A reader closed in a
// way that did not mark it broken fails before fn runs (errNotBegun), and
// is marked then; fn runs on the next reader. Within as many tries as there
// are readers, a broken one taken again has been replaced.
func (r *readers) view(ctx context.Context, fn func(*stmtConn) error) error {
	var err error
	for range cap(r.free) + 1 {
		if err = r.viewOnce(ctx, fn); !errors.Is(err, errNotBegun) {
			break
		}
	}
	return err
}

func (r *readers) viewOnce(ctx context.Context, fn func(*stmtConn) error) error {
	c, err := r.take(ctx)
	if err != nil {
		return err
	}
	defer func() { r.free <- c }() // after a panic too: take replaces it if it is broken
	return c.inTransaction("BEGIN", func() error { return fn(c) })
}

// take is a free reader, replaced first if it is broken. If no new
// connection opens, the broken one goes back for a later view to replace,
// so that the pool never shrinks.
func (r *readers) take(ctx context.Context) (*stmtConn, error) {
	var c *stmtConn
	select {
	case c = <-r.free:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if !c.broken {
		return c, nil
	}
	_ = c.conn.Close() // database/sql has closed it, its statements finalized first (inTransaction)
	conn, err := r.pool.Conn(ctx)
	if err != nil {
		r.free <- c
		return nil, fmt.Errorf("sqlite: replacing a broken reader: %w", err)
	}
	return newStmtConn(conn), nil
}

func (r *readers) close() {
	for {
		select {
		case c := <-r.free:
			c.close()
		default:
			return
		}
	}
}
