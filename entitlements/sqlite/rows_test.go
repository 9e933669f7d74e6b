package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/creditsd/creditsd/entitlements"
)

// TestRowsReadAsDatabaseSQLReads scans the same columns into the same
// destinations through a reader's stmtConn and through database/sql on the
// read pool, and requires the same values and the same failures: the
// stmtConn's rows replace *sql.Rows for every query in this package.
func TestRowsReadAsDatabaseSQLReads(t *testing.T) {
	db := openTest(t)
	cases := []struct {
		column string
		dest   func() any
	}{
		{"'text'", func() any { return new(string) }},
		{"42", func() any { return new(string) }},
		{"NULL", func() any { return new(string) }},
		{"X'00ff'", func() any { return new(string) }},
		{"42", func() any { return new(int64) }},
		{"'42'", func() any { return new(int64) }},
		{"'forty-two'", func() any { return new(int64) }},
		{"NULL", func() any { return new(int64) }},
		{"4.5", func() any { return new(int64) }},
		{"7", func() any { return new(int) }},
		{"1", func() any { return new(bool) }},
		{"0", func() any { return new(bool) }},
		{"2", func() any { return new(bool) }},
		{"4.5", func() any { return new(float64) }},
		{"X'00ff'", func() any { return new([]byte) }},
		{"'ab'", func() any { return new([]byte) }},
		{"NULL", func() any { return new([]byte) }},
		{"NULL", func() any { return new(any) }},
		{"X'00ff'", func() any { return new(any) }},
		{"NULL", func() any { return new(sql.NullString) }},
		{"'x'", func() any { return new(sql.NullString) }},
		{"NULL", func() any { return new(sql.NullInt64) }},
		{"9", func() any { return new(sql.NullInt64) }},
		{"1", func() any { return new(sql.NullBool) }},
		{"NULL", func() any { return new(int) }},
		{"NULL", func() any { return new(bool) }},
		{"NULL", func() any { return new(float64) }},
		{"'granted'", func() any { return new(entitlements.Outcome) }},
		{"42", func() any { return new(entitlements.Outcome) }},
		{"NULL", func() any { return new(entitlements.Outcome) }},
		{"3000000000", func() any { return new(int32) }},
		{"7", func() any { return new(uint8) }},
		{"-7", func() any { return new(uint8) }},
		{"4.5", func() any { return new(float32) }},
		{"300", func() any { return new(uint8) }},
		{"1e39", func() any { return new(float32) }},
		{"X'00ff'", func() any { return new(json.RawMessage) }},
		{"9", func() any { return new(time.Duration) }},
		{"'x'", func() any { return (*string)(nil) }},
		{"7", func() any { return (*int)(nil) }},
	}
	for _, c := range cases {
		want, got := c.dest(), c.dest()
		t.Run(fmt.Sprintf("%s into %T", c.column, want), func(t *testing.T) {
			wantErr := db.read.QueryRowContext(context.Background(), "SELECT "+c.column).Scan(want)
			gotErr := db.view(context.Background(), func(tx *Tx) error {
				return tx.QueryRowContext(tx.ctx, "SELECT "+c.column).Scan(got)
			})
			require.Equal(t, wantErr != nil, gotErr != nil, "database/sql: %v; stmtConn: %v", wantErr, gotErr)
			require.Equal(t, want, got)
		})
	}
}

// TestRowsEnd: rows close at their end with no error, Scan needs a row and
// one destination a column, and an empty one-row query is sql.ErrNoRows.
func TestRowsEnd(t *testing.T) {
	db := openTest(t)
	err := db.view(context.Background(), func(tx *Tx) error {
		rs, err := tx.QueryContext(tx.ctx, "SELECT 1, 2")
		require.NoError(t, err)
		var a, b int64
		require.ErrorContains(t, rs.Scan(&a, &b), "call Next first")
		require.True(t, rs.Next())
		require.ErrorContains(t, rs.Scan(&a), "2 columns into 1 destinations")
		require.NoError(t, rs.Scan(&a, &b))
		require.Equal(t, [2]int64{1, 2}, [2]int64{a, b})
		require.False(t, rs.Next())
		require.NoError(t, rs.Err())
		require.False(t, rs.Next(), "still at the end")
		require.ErrorContains(t, rs.Scan(&a, &b), "closed", "closed at the end, as *sql.Rows is")

		err = tx.QueryRowContext(tx.ctx, "SELECT 1 WHERE 0").Scan(&a)
		require.ErrorIs(t, err, sql.ErrNoRows)
		err = tx.QueryRowContext(tx.ctx, "SELECT nope FROM nowhere").Scan(&a)
		require.ErrorContains(t, err, "no such table")
		return nil
	})
	require.NoError(t, err)
}

// TestRowsErrorAfterARow: a row that fails to step ends the rows with its
// error in Err, as *sql.Rows reports it, after the rows before it.
func TestRowsErrorAfterARow(t *testing.T) {
	db := openTest(t)
	err := db.view(context.Background(), func(tx *Tx) error {
		rs, err := tx.QueryContext(tx.ctx, "SELECT abs(x) FROM (SELECT 1 AS x UNION ALL SELECT -9223372036854775807 - 1)")
		require.NoError(t, err)
		var n int64
		require.True(t, rs.Next())
		require.NoError(t, rs.Scan(&n))
		require.Equal(t, int64(1), n)
		require.False(t, rs.Next())
		require.ErrorContains(t, rs.Err(), "integer overflow")
		require.ErrorContains(t, rs.Scan(&n), "closed")
		return nil
	})
	require.NoError(t, err)
}

// TestRowsArguments: arguments reach SQLite as database/sql converts them,
// Valuers and integer kinds included, and one it cannot convert fails.
func TestRowsArguments(t *testing.T) {
	db := openTest(t)
	type label string
	err := db.view(context.Background(), func(tx *Tx) error {
		var s string
		var n int64
		var null sql.NullString
		err := tx.QueryRowContext(tx.ctx, "SELECT ?, ?, ?", label("named"), uint16(7), sql.NullString{}).Scan(&s, &n, &null)
		require.NoError(t, err)
		require.Equal(t, "named", s)
		require.Equal(t, int64(7), n)
		require.False(t, null.Valid)
		err = tx.QueryRowContext(tx.ctx, "SELECT ?", struct{}{}).Scan(&s)
		require.ErrorContains(t, err, "argument 1")
		return nil
	})
	require.NoError(t, err)
}

// TestStatementOutsideATransactionFails: a stmtConn reaches its driver
// connection only inside inTransaction, as database/sql lends it.
func TestStatementOutsideATransactionFails(t *testing.T) {
	db := openTest(t)
	c := <-db.readers.free
	defer func() { db.readers.free <- c }()
	_, err := c.ExecContext(context.Background(), "SELECT 1")
	require.ErrorIs(t, err, errNoTransaction)
	var n int64
	require.ErrorIs(t, c.QueryRowContext(context.Background(), "SELECT 1").Scan(&n), errNoTransaction)
}

// TestViewPanicKeepsTheReader: a view that panics passes the panic on,
// rolled back, and every reader still answers afterwards.
func TestViewPanicKeepsTheReader(t *testing.T) {
	db := openTest(t)
	grantAdmin(t, db, "alice", "seed", 5, nil)
	before := poolReaders(t, db)
	p := panicOf(func() {
		_ = db.view(context.Background(), func(tx *Tx) error {
			var n int64
			require.NoError(t, tx.QueryRowContext(tx.ctx, "SELECT 1").Scan(&n))
			panicWithABug()
			return nil
		})
	})
	tp, ok := p.(*transactionPanic)
	require.True(t, ok, "raised again as a *transactionPanic, not %T", p)
	require.Equal(t, "a bug", tp.value)
	require.Contains(t, string(tp.stack), "panicWithABug", "the stack where it began")
	for range cap(db.readers.free) + 1 {
		require.Equal(t, int64(5), balance(t, db, "alice"))
	}
	require.Equal(t, before, poolReaders(t, db), "the same readers, none broken or replaced")
}

// TestViewErrorKeepsTheReader: a view's own error that wraps
// sql.ErrConnDone is not a closed reader: the view ran once, and every
// reader is kept.
func TestViewErrorKeepsTheReader(t *testing.T) {
	db := openTest(t)
	before := poolReaders(t, db)
	runs := 0
	err := db.view(context.Background(), func(*Tx) error {
		runs++
		return fmt.Errorf("a view's own failure: %w", sql.ErrConnDone)
	})
	require.ErrorIs(t, err, sql.ErrConnDone)
	require.Equal(t, 1, runs, "the view ran once")
	require.Equal(t, before, poolReaders(t, db), "the same readers, none broken or replaced")
}

// poolReaders is the set of readers in the pool, each required unbroken.
func poolReaders(t *testing.T, db *DB) map[*stmtConn]bool {
	t.Helper()
	require.Len(t, db.readers.free, cap(db.readers.free), "every reader is back in the pool")
	set := map[*stmtConn]bool{}
	for range cap(db.readers.free) {
		c := <-db.readers.free
		set[c] = true
		require.False(t, c.broken)
	}
	for c := range set {
		db.readers.free <- c
	}
	return set
}

// TestClosedReadersAreReplaced: a reader database/sql has closed without
// its being marked broken (as a driver.ErrBadConn outside inTransaction
// would) fails before its view begins; the view runs on the next reader,
// and each closed one is replaced when taken again.
func TestClosedReadersAreReplaced(t *testing.T) {
	db := openTest(t)
	grantAdmin(t, db, "alice", "seed", 5, nil)
	var closed []*stmtConn
	for range cap(db.readers.free) {
		c := <-db.readers.free
		err := c.conn.Raw(func(any) error { c.finalize(); return driver.ErrBadConn })
		require.ErrorIs(t, err, driver.ErrBadConn)
		closed = append(closed, c)
	}
	for _, c := range closed {
		db.readers.free <- c
	}
	for range 2*cap(db.readers.free) + 1 {
		require.Equal(t, int64(5), balance(t, db, "alice"))
	}
	requireReadersOpen(t, db)
}

// TestFailedRollbackReplacesTheReader: a view whose ROLLBACK fails (here
// its connection's context ends first, so the driver never runs it) may
// leave its connection inside the transaction, where every later BEGIN
// would fail; the reader is replaced instead, and every view answers.
func TestFailedRollbackReplacesTheReader(t *testing.T) {
	db := openTest(t)
	grantAdmin(t, db, "alice", "seed", 5, nil)
	for range cap(db.readers.free) {
		c := <-db.readers.free
		ctx, cancel := context.WithCancel(context.Background())
		c.ctx = ctx
		err := c.inTransaction("BEGIN", func() error {
			cancel()
			return errors.New("a view's own failure")
		})
		require.ErrorContains(t, err, "a view's own failure")
		c.ctx = context.Background()
		db.readers.free <- c
	}
	for range 2*cap(db.readers.free) + 1 {
		require.Equal(t, int64(5), balance(t, db, "alice"))
	}
	requireReadersOpen(t, db)
}

// TestPanicInTheDriverReplacesTheReader: a panic outside a view's own work
// (here in the driver's BEGIN) passes on, and its reader is closed with
// its statements finalized, so that SQLite lets go of its files, and
// replaced: the next views answer, and the database's open files do not
// grow however often it happens.
func TestPanicInTheDriverReplacesTheReader(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(context.Background(), filepath.Join(dir, "test.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	db.Now = func() time.Time { return testNow }
	grantAdmin(t, db, "alice", "seed", 5, nil)
	requireReadersOpen(t, db) // every reader has run a transaction and opened its files
	files := openFiles(t, dir)
	for range 5 {
		c := <-db.readers.free
		c.ctx = panickyContext{c.ctx}
		db.readers.free <- c
		panicked := false
		for range cap(db.readers.free) { // the view that takes c panics; the others answer
			if p := panicOf(func() { balance(t, db, "alice") }); p != nil {
				tp, ok := p.(*transactionPanic)
				require.True(t, ok, "raised again as a *transactionPanic, not %T", p)
				require.Equal(t, "a bug in the driver's path", tp.value)
				panicked = true
				break
			}
		}
		require.True(t, panicked, "the view on the panicking reader panicked")
		for range 2*cap(db.readers.free) + 1 {
			require.Equal(t, int64(5), balance(t, db, "alice"))
		}
		requireReadersOpen(t, db)
	}
	require.Equal(t, files, openFiles(t, dir), "the closed readers' files were let go")
}

// requireReadersOpen: every reader is in the pool and runs a transaction,
// so none is a closed connection kept (which views would skip, one try
// each).
func requireReadersOpen(t *testing.T, db *DB) {
	t.Helper()
	require.Len(t, db.readers.free, cap(db.readers.free), "every reader is back in the pool")
	var all []*stmtConn
	for range cap(db.readers.free) {
		c := <-db.readers.free
		all = append(all, c)
		require.NoError(t, c.inTransaction("BEGIN", func() error { return nil }))
	}
	for _, c := range all {
		db.readers.free <- c
	}
}

// openFiles counts this process's open descriptors of files under dir.
func openFiles(t *testing.T, dir string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd to count open files: %v", err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(target, dir) {
			n++
		}
	}
	return n
}

// panickyContext panics where the driver asks for Done.
type panickyContext struct{ context.Context }

func (panickyContext) Done() <-chan struct{} { panic("a bug in the driver's path") }

// Err panics too: the readers' driver asks for Err, not Done (readconn.go).
func (panickyContext) Err() error { panic("a bug in the driver's path") }

// panicWithABug is a frame that only the first panic's stack holds.
func panicWithABug() { panic("a bug") }

// panicOf is what fn panics with, or nil.
func panicOf(fn func()) (v any) {
	defer func() { v = recover() }()
	fn()
	return nil
}

// TestStatementsPastTheCache: past maxStatements a query still runs, on a
// statement prepared for it alone and finalized after it: the memory
// SQLite holds for prepared statements stays where the full cache left it.
func TestStatementsPastTheCache(t *testing.T) {
	db := openTest(t)
	err := db.view(context.Background(), func(tx *Tx) error {
		c := tx.q
		run := func(i int) {
			var n int
			require.NoError(t, tx.QueryRowContext(tx.ctx, fmt.Sprintf("SELECT %d", i)).Scan(&n))
			require.Equal(t, i, n)
			_, err := tx.ExecContext(tx.ctx, fmt.Sprintf("SELECT %d + 0", i))
			require.NoError(t, err)
		}
		for i := 0; len(c.stmts) < maxStatements; i++ {
			run(i)
		}
		before := stmtMemory(t, c)
		for i := range 100 {
			run(maxStatements + i)
		}
		require.Len(t, c.stmts, maxStatements)
		require.Equal(t, before, stmtMemory(t, c), "statements past the cache were finalized")
		return nil
	})
	require.NoError(t, err)
}

// stmtMemory is what SQLite holds for c's prepared statements, in bytes.
func stmtMemory(t *testing.T, c *stmtConn) int {
	rc, ok := c.dc.(*readConn)
	require.True(t, ok, "a reader is a readConn, not %T", c.dc)
	out := rc.tls.Alloc(8) // two C ints: what is used now, and its high mark
	defer rc.tls.Free(8)
	require.Equal(t, int32(sqlite3.SQLITE_OK), sqlite3.Xsqlite3_db_status(rc.tls, rc.db, sqlite3.SQLITE_DBSTATUS_STMT_USED, out, out+4, 0))
	return int(int32(binary.NativeEndian.Uint32(libc.GoBytes(out, 4))))
}
