package sqlite

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// The readers' connections are opened here, on the same SQLite that
// modernc.org/sqlite's driver runs (its lib package, with libc for the
// thread state and C memory), but without the connection's own mutex
// (SQLITE_OPEN_NOMUTEX, SQLite's multi-thread mode). The driver opens every
// connection SQLITE_OPEN_FULLMUTEX, with no option to do otherwise, so each
// sqlite3_column_* call of a read locks and unlocks it; SQLite's mutexes were
// 11–13 % of a read's server CPU, most of them that one (BENCHMARKS.md,
// session 23). Without it and the driver's own work around each call, a
// read took ~16 % less of the server's CPU (session 24).
//
// A reader is only ever used by one goroutine at a time (database/sql lends
// a connection to one caller, and the readers' pool to one view), which is
// the whole of what multi-thread mode asks; the one call made from another
// goroutine is sqlite3_interrupt (interrupt), which SQLite allows. SQLite's global mutexes (the
// page cache, the VFS's file locks, the WAL index) stay on.
//
// It implements only what the readers use: one statement a prepare, the
// parameters ? and ?N bound by place, and the answers' integers, reals,
// text, blobs and NULLs, as modernc's driver answers them. The writer stays
// on that driver, whose errors the store maps by code (isUnique) and whose
// Exec runs a migration's many statements.

// readConnector opens read connections to one database file.
type readConnector struct {
	path string
	// onlyReads opens the file SQLITE_OPEN_READONLY, without the pragmas
	// that write (journal_mode), for OpenReadOnly: a read-write connection
	// that is the file's last checkpoints the WAL into it as it closes.
	onlyReads bool
}

func (c readConnector) Connect(context.Context) (driver.Conn, error) {
	return openReadConn(c.path, c.onlyReads)
}

func (c readConnector) Driver() driver.Driver { return readDriver{} }

// readDriver is readConnector's driver, which database/sql asks for but
// the store never opens by name.
type readDriver struct{}

func (readDriver) Open(path string) (driver.Conn, error) { return openReadConn(path, false) }

// readPragmas are the readers' settings, each a statement run at open: the
// writer's (dsn) but for its temp_store and checkpoints, and query_only.
var readPragmas = []string{
	"PRAGMA busy_timeout = 10000",
	"PRAGMA foreign_keys = 1",
	"PRAGMA journal_mode = WAL",
	"PRAGMA synchronous = FULL",
	"PRAGMA query_only = 1",
}

// onlyReadsPragmas are the pragmas of a connection opened read-only: none
// that would write the file (journal_mode) or that only writes need.
var onlyReadsPragmas = []string{
	"PRAGMA busy_timeout = 10000",
	"PRAGMA query_only = 1",
}

// readConn is one SQLite connection without its mutex, and the libc
// thread state every call into SQLite runs on.
type readConn struct {
	tls *libc.TLS
	db  uintptr // sqlite3*
}

// ptrSize is the size of a C pointer, which SQLite writes its answers to.
const ptrSize = strconv.IntSize / 8

func openReadConn(path string, onlyReads bool) (*readConn, error) {
	flags, pragmas := int32(sqlite3.SQLITE_OPEN_READWRITE), readPragmas
	if onlyReads {
		flags, pragmas = sqlite3.SQLITE_OPEN_READONLY, onlyReadsPragmas
	}
	c := &readConn{tls: libc.NewTLS()}
	name, err := libc.CString(path)
	if err != nil {
		c.tls.Close()
		return nil, err
	}
	out := c.tls.Alloc(ptrSize)
	rc := sqlite3.Xsqlite3_open_v2(c.tls, name, out, flags|sqlite3.SQLITE_OPEN_NOMUTEX, 0)
	c.db = readPtr(out)
	c.tls.Free(ptrSize)
	libc.Xfree(c.tls, name)
	if rc != sqlite3.SQLITE_OK {
		err := c.error(rc)
		_ = c.Close()
		return nil, fmt.Errorf("sqlite: open %s for reading: %w", path, err)
	}
	for _, pragma := range pragmas {
		if err := c.exec(pragma); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("sqlite: %s: %w", pragma, err)
		}
	}
	return c, nil
}

// readPtr is the C pointer stored at p.
func readPtr(p uintptr) uintptr {
	b := libc.GoBytes(p, ptrSize)
	if ptrSize == 8 {
		return uintptr(binary.NativeEndian.Uint64(b))
	}
	return uintptr(binary.NativeEndian.Uint32(b))
}

// exec runs one statement that answers no rows.
func (c *readConn) exec(query string) error {
	s, err := c.prepare(query)
	if err != nil {
		return err
	}
	_, err = s.ExecContext(context.Background(), nil)
	return errors.Join(err, s.Close())
}

func (c *readConn) Prepare(query string) (driver.Stmt, error) { return c.prepare(query) }

func (c *readConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.prepare(query)
}

// prepare compiles query, which must be one statement.
func (c *readConn) prepare(query string) (*readStmt, error) {
	q, err := libc.CString(query)
	if err != nil {
		return nil, err
	}
	defer libc.Xfree(c.tls, q)
	out := c.tls.Alloc(2 * ptrSize) // the statement, then where the SQL after it begins
	defer c.tls.Free(2 * ptrSize)
	if rc := sqlite3.Xsqlite3_prepare_v3(c.tls, c.db, q, -1, sqlite3.SQLITE_PREPARE_PERSISTENT, out, out+ptrSize); rc != sqlite3.SQLITE_OK {
		return nil, c.error(rc)
	}
	s := &readStmt{c: c, p: readPtr(out)}
	if s.p == 0 {
		return nil, fmt.Errorf("sqlite: no statement in %q", query)
	}
	if err := c.nothingAfter(readPtr(out + ptrSize)); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	s.inputs = int(sqlite3.Xsqlite3_bind_parameter_count(c.tls, s.p))
	for i := 1; i <= s.inputs; i++ {
		// ?NNN is named "?NNN", and a plain ? not at all; :a, @a and $a
		// would be numbered by where they first appear, not by name.
		if name := libc.GoString(sqlite3.Xsqlite3_bind_parameter_name(c.tls, s.p, int32(i))); name != "" && name[0] != '?' {
			return nil, errors.Join(fmt.Errorf("sqlite: a reader binds ? and ?N by place, not %s by name", name), s.Close())
		}
	}
	s.columns = make([]string, sqlite3.Xsqlite3_column_count(c.tls, s.p))
	for i := range s.columns {
		s.columns[i] = libc.GoString(sqlite3.Xsqlite3_column_name(c.tls, s.p, int32(i)))
	}
	return s, nil
}

// nothingAfter fails if the SQL at tail, which follows a prepared
// statement, holds another: a reader runs one statement at a time.
// Comments, spaces and semicolons compile to none.
func (c *readConn) nothingAfter(tail uintptr) error {
	if strings.TrimSpace(libc.GoString(tail)) == "" {
		return nil
	}
	out := c.tls.Alloc(ptrSize)
	defer c.tls.Free(ptrSize)
	if rc := sqlite3.Xsqlite3_prepare_v3(c.tls, c.db, tail, -1, 0, out, 0); rc != sqlite3.SQLITE_OK {
		return c.error(rc)
	}
	if next := readPtr(out); next != 0 {
		sqlite3.Xsqlite3_finalize(c.tls, next)
		return fmt.Errorf("sqlite: a reader prepares one statement at a time, and %q follows the first",
			strings.TrimSpace(libc.GoString(tail)))
	}
	return nil
}

// Close closes the connection once its statements are finalized, and
// frees its thread state.
func (c *readConn) Close() error {
	var err error
	if c.db != 0 {
		if rc := sqlite3.Xsqlite3_close_v2(c.tls, c.db); rc != sqlite3.SQLITE_OK {
			err = c.error(rc)
		}
		c.db = 0
	}
	c.tls.Close()
	return err
}

// interrupt stops the statement running on c (sqlite3_interrupt, the
// one call SQLite allows from another goroutine than the connection's
// user), on its own libc thread state. c must stay open until it returns.
func (c *readConn) interrupt() {
	tls := libc.NewTLS()
	defer tls.Close()
	sqlite3.Xsqlite3_interrupt(tls, c.db)
}

// Begin is refused: the store begins its transactions in SQL (stmtConn).
func (c *readConn) Begin() (driver.Tx, error) {
	return nil, errors.New("sqlite: a reader's transactions are begun in SQL")
}

// readError is an error SQLite returned to a reader, with its extended code.
type readError struct {
	code int
	msg  string
}

func (e *readError) Error() string { return fmt.Sprintf("sqlite: %s (%d)", e.msg, e.code) }

// Code is SQLite's extended result code.
func (e *readError) Code() int { return e.code }

// error is SQLite's error for rc: with the connection's extended code and
// message when they are rc's (the call that returned rc set them), else
// SQLite's words for rc alone.
func (c *readConn) error(rc int32) error {
	if c.db != 0 {
		if ext := sqlite3.Xsqlite3_extended_errcode(c.tls, c.db); ext&0xff == rc&0xff {
			return &readError{code: int(ext), msg: libc.GoString(sqlite3.Xsqlite3_errmsg(c.tls, c.db))}
		}
	}
	return &readError{code: int(rc), msg: libc.GoString(sqlite3.Xsqlite3_errstr(c.tls, rc))}
}

// readStmt is a prepared statement of a readConn.
type readStmt struct {
	c       *readConn
	p       uintptr // sqlite3_stmt*
	inputs  int
	columns []string
}

func (s *readStmt) NumInput() int { return s.inputs }

func (s *readStmt) Close() error {
	if s.p == 0 {
		return nil
	}
	rc := sqlite3.Xsqlite3_finalize(s.c.tls, s.p)
	s.p = 0
	if rc != sqlite3.SQLITE_OK {
		return s.c.error(rc)
	}
	return nil
}

func (s *readStmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), positional(args))
}

func (s *readStmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), positional(args))
}

// ExecContext runs the statement to its end. A reader changes no rows.
func (s *readStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	rows, err := s.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for {
		switch rc := sqlite3.Xsqlite3_step(s.c.tls, s.p); rc {
		case sqlite3.SQLITE_ROW:
		case sqlite3.SQLITE_DONE:
			return driver.RowsAffected(0), nil
		default:
			return nil, s.c.error(rc)
		}
	}
}

// QueryContext binds args; the rows step the statement. A context that
// has ended is refused before the statement runs; one that ends during it
// does not stop it, where modernc's driver would interrupt it. The store
// runs its statements on a context that never ends (Tx), so that no caller
// that goes away can cut one short, and a read takes microseconds.
func (s *readStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if sqlite3.Xsqlite3_stmt_busy(s.c.tls, s.p) != 0 {
		// Its rows are still being read: a reset here would start them over.
		return nil, errors.New("sqlite: a reader's statement runs again before its rows were closed")
	}
	if err := s.bind(args); err != nil {
		s.reset()
		return nil, err
	}
	return &readRows{s: s}, nil
}

// positional is args as the numbered arguments of the legacy calls.
func positional(args []driver.Value) []driver.NamedValue {
	named := make([]driver.NamedValue, len(args))
	for i, v := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return named
}

// bind binds each argument to its place: ?N takes the Nth.
func (s *readStmt) bind(args []driver.NamedValue) error {
	if len(args) != s.inputs {
		return fmt.Errorf("sqlite: %d arguments for %d parameters", len(args), s.inputs)
	}
	for _, a := range args {
		if a.Name != "" {
			return fmt.Errorf("sqlite: a reader binds arguments by place, not by name (%s)", a.Name)
		}
		if err := s.bindOne(int32(a.Ordinal), a.Value); err != nil {
			return err
		}
	}
	return nil
}

func (s *readStmt) bindOne(i int32, v driver.Value) error {
	tls, p := s.c.tls, s.p
	var rc int32
	switch v := v.(type) {
	case nil:
		rc = sqlite3.Xsqlite3_bind_null(tls, p, i)
	case int64:
		rc = sqlite3.Xsqlite3_bind_int64(tls, p, i, v)
	case float64:
		rc = sqlite3.Xsqlite3_bind_double(tls, p, i, v)
	case bool:
		n := int64(0)
		if v {
			n = 1
		}
		rc = sqlite3.Xsqlite3_bind_int64(tls, p, i, n)
	case string:
		rc = s.bindBytes(i, v, false)
	case []byte:
		if v == nil { // NULL, as modernc's driver binds it; an empty blob is X''
			rc = sqlite3.Xsqlite3_bind_null(tls, p, i)
		} else {
			rc = s.bindBytes(i, string(v), true)
		}
	default:
		// database/sql's default conversion leaves only time.Time; the
		// store passes times as milliseconds (millis).
		return fmt.Errorf("sqlite: a reader binds no %T", v)
	}
	if rc != sqlite3.SQLITE_OK {
		return s.c.error(rc)
	}
	return nil
}

// bindBytes binds v as text or a blob. SQLite copies it (SQLITE_TRANSIENT),
// so the C copy made here is freed at once.
func (s *readStmt) bindBytes(i int32, v string, blob bool) int32 {
	tls := s.c.tls
	c, err := libc.CString(v)
	if err != nil {
		return sqlite3.SQLITE_NOMEM
	}
	defer libc.Xfree(tls, c)
	if blob {
		return sqlite3.Xsqlite3_bind_blob(tls, s.p, i, c, int32(len(v)), sqlite3.SQLITE_TRANSIENT)
	}
	return sqlite3.Xsqlite3_bind_text(tls, s.p, i, c, int32(len(v)), sqlite3.SQLITE_TRANSIENT)
}

// reset readies the statement for its next run. Its arguments stay bound
// until that run binds them all again (bind), as modernc's driver leaves
// them: sqlite3_clear_bindings expires any statement whose plan may read a
// bound value, and SQLite compiled the user's row statement (userRowSQL)
// again at every read. (One whose plan does read a value, such as a bound
// LIMIT, is compiled again whenever that argument is bound, on either
// driver.) Its result code repeats the last step's error, already returned.
func (s *readStmt) reset() { sqlite3.Xsqlite3_reset(s.c.tls, s.p) }

// readRows steps a bound statement, one row a Next.
type readRows struct {
	s      *readStmt
	closed bool
}

func (r *readRows) Columns() []string { return r.s.columns }

func (r *readRows) Close() error {
	if !r.closed {
		r.closed = true
		r.s.reset()
	}
	return nil
}

func (r *readRows) Next(dest []driver.Value) error {
	if r.closed {
		return io.EOF
	}
	tls, p := r.s.c.tls, r.s.p
	switch rc := sqlite3.Xsqlite3_step(tls, p); rc {
	case sqlite3.SQLITE_ROW:
	case sqlite3.SQLITE_DONE:
		return io.EOF
	default:
		return r.s.c.error(rc)
	}
	for i := range dest {
		col := int32(i)
		switch sqlite3.Xsqlite3_column_type(tls, p, col) {
		case sqlite3.SQLITE_INTEGER:
			dest[i] = sqlite3.Xsqlite3_column_int64(tls, p, col)
		case sqlite3.SQLITE_FLOAT:
			dest[i] = sqlite3.Xsqlite3_column_double(tls, p, col)
		case sqlite3.SQLITE_TEXT:
			// The text before its length: sqlite3_column_bytes' rule. NULL is out of memory.
			text := sqlite3.Xsqlite3_column_text(tls, p, col)
			if text == 0 {
				return r.s.c.error(sqlite3.Xsqlite3_errcode(tls, r.s.c.db))
			}
			dest[i] = string(libc.GoBytes(text, int(sqlite3.Xsqlite3_column_bytes(tls, p, col))))
		case sqlite3.SQLITE_BLOB: // nil when empty, as modernc's driver answers
			blob := sqlite3.Xsqlite3_column_blob(tls, p, col)
			n := int(sqlite3.Xsqlite3_column_bytes(tls, p, col))
			if blob == 0 && n > 0 { // NULL for an empty blob, else out of memory
				return r.s.c.error(sqlite3.Xsqlite3_errcode(tls, r.s.c.db))
			}
			dest[i] = bytes.Clone(libc.GoBytes(blob, n))
		default:
			dest[i] = nil
		}
	}
	return nil
}
