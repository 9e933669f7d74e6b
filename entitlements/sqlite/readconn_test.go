package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sqlite3 "modernc.org/sqlite/lib"
)

// TestReadersHaveNoConnectionMutex: every reader is a readConn, opened
// without the connection's mutex (sqlite3_db_mutex answers NULL for one),
// which is the point of readconn.go; the writer's driver would give it one.
func TestReadersHaveNoConnectionMutex(t *testing.T) {
	db := openTest(t)
	n := cap(db.readers.free)
	for range n {
		c := <-db.readers.free
		err := c.conn.Raw(func(dc any) error {
			rc, ok := dc.(*readConn)
			require.True(t, ok, "a reader is a %T", dc)
			require.Zero(t, sqlite3.Xsqlite3_db_mutex(rc.tls, rc.db), "a reader's connection has a mutex")
			return nil
		})
		db.readers.free <- c
		require.NoError(t, err)
	}
	var queryOnly int
	require.NoError(t, db.read.QueryRow(`PRAGMA query_only`).Scan(&queryOnly))
	require.Equal(t, 1, queryOnly)
}

// TestReadConnAnswersAsTheDriverDoes reads the same values through a
// readConn and through modernc's driver, which the writer still uses, and
// requires the same Go values: every type SQLite stores, and every type of
// argument database/sql passes on.
func TestReadConnAnswersAsTheDriverDoes(t *testing.T) {
	theirs, ours := driverAndReader(t)

	columns := []string{"42", "-9223372036854775808", "4.5", "'text'", "''", "'a' || char(0) || 'b'",
		"'naïve ✓'", "X''", "X'00ff'", "NULL", "1e308", "zeroblob(3)"}
	for _, col := range columns {
		t.Run(col, func(t *testing.T) {
			var want, got any
			require.NoError(t, theirs.QueryRow("SELECT "+col).Scan(&want))
			require.NoError(t, ours.QueryRow("SELECT "+col).Scan(&got))
			require.Equal(t, want, got)
		})
	}
	args := []any{int64(7), int64(-1 << 63), 2.25, "text", "", "a\x00b", []byte{}, []byte(nil), []byte{0, 255}, nil, true, false}
	for _, arg := range args {
		t.Run(fmt.Sprintf("%T %v", arg, arg), func(t *testing.T) {
			var want, got [2]any
			require.NoError(t, theirs.QueryRow("SELECT ?1, typeof(?1)", arg).Scan(&want[0], &want[1]))
			require.NoError(t, ours.QueryRow("SELECT ?1, typeof(?1)", arg).Scan(&got[0], &got[1]))
			require.Equal(t, want, got)
		})
	}
}

// TestReadConnRefuses what a reader does not do, with an error, never a
// wrong answer: writes, more than one statement, arguments by name or of
// the wrong number or type, a statement run again inside its own rows, and
// a context that has ended. Each runs on a reader, as views do.
func TestReadConnRefuses(t *testing.T) {
	db := openTest(t)
	onReader := func(query string, args ...any) error {
		return db.view(context.Background(), func(tx *Tx) error {
			return tx.q.QueryRowContext(tx.ctx, query, args...).Scan(new(any))
		})
	}
	var se interface{ Code() int }
	err := onReader(`INSERT INTO users (user_id, app_account_token, created_at) VALUES ('u', '', 0) RETURNING 1`)
	require.ErrorAs(t, err, &se)
	require.Equal(t, sqlite3.SQLITE_READONLY, se.Code(), "query_only: %v", err)

	for query, want := range map[string]string{
		`SELECT 1; SELECT 2`:       "one statement at a time",
		`  `:                       "no statement",
		`SELECT nope FROM nowhere`: "no such table",
		`SELECT :who`:              "not :who by name",
		`SELECT $2`:                "not $2 by name",
	} {
		require.ErrorContains(t, onReader(query, "x"), want, query)
	}
	require.NoError(t, onReader(`SELECT 1; -- and a comment;`), "a comment compiles to no statement")
	require.ErrorContains(t, onReader(`SELECT ?1 + ?2`, 1), "1 arguments for 2 parameters")
	require.ErrorContains(t, onReader(`SELECT ?1`, time.Now()), "a reader binds no time.Time")

	err = db.view(context.Background(), func(tx *Tx) error {
		const q = `SELECT value FROM json_each(?1)`
		rows, err := tx.q.QueryContext(tx.ctx, q, `[1, 2]`)
		require.NoError(t, err)
		defer rows.Close()
		require.True(t, rows.Next())
		_, err = tx.q.QueryContext(tx.ctx, q, `[7]`)
		require.ErrorContains(t, err, "runs again before its rows were closed")
		var v int
		require.True(t, rows.Next(), "the first run goes on where it was")
		require.NoError(t, rows.Scan(&v))
		require.Equal(t, 2, v)
		require.False(t, rows.Next())
		return rows.Err()
	})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = db.view(context.Background(), func(tx *Tx) error {
		return tx.q.QueryRowContext(ctx, `SELECT 1`).Scan(new(int)) // tx's own would run on tx.ctx
	})
	require.ErrorIs(t, err, context.Canceled)

	// Every reader still answers after the refusals above.
	for range 2 * cap(db.readers.free) {
		var one int
		require.NoError(t, db.view(context.Background(), func(tx *Tx) error {
			return tx.QueryRowContext(tx.ctx, `SELECT ?1`, int64(1)).Scan(&one)
		}))
		require.Equal(t, 1, one)
	}
	requireReadersOpen(t, db)
}

// TestReadConnStatementRunsAgain: a statement run to an error, or left
// before its last row, starts afresh at its next run, with that run's
// arguments; and the values a run answered are copies, which the next rows
// and runs do not change.
func TestReadConnStatementRunsAgain(t *testing.T) {
	_, ours := driverAndReader(t)
	conn, err := ours.Conn(context.Background())
	require.NoError(t, err)
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		s, err := dc.(*readConn).prepare(`SELECT value, CAST(value AS BLOB) FROM json_each(?1)`)
		require.NoError(t, err)
		defer s.Close()
		read := func(arg string, max int) ([]any, error) {
			rows, err := s.QueryContext(context.Background(), []driver.NamedValue{{Ordinal: 1, Value: arg}})
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var got []any
			dest := make([]driver.Value, 2)
			for len(got) < 2*max {
				if err := rows.Next(dest); err != nil {
					return got, err
				}
				got = append(got, dest[0], dest[1])
			}
			return got, nil
		}
		got, err := read(`["aa", "bb", "cc"]`, 9)
		require.EqualError(t, err, "EOF")
		require.Equal(t, []any{"aa", []byte("aa"), "bb", []byte("bb"), "cc", []byte("cc")}, got,
			"each row's text and blob kept as it was read")
		_, err = read(`[1,`, 9)
		require.ErrorContains(t, err, "malformed JSON")
		got, err = read(`["dd", "ee"]`, 1) // left after its first row
		require.NoError(t, err)
		require.Equal(t, []any{"dd", []byte("dd")}, got)
		got, err = read(`["ff"]`, 9)
		require.EqualError(t, err, "EOF")
		require.Equal(t, []any{"ff", []byte("ff")}, got)
		return nil
	})
	require.NoError(t, err)
}

// driverAndReader are two pools on one new database: modernc's driver
// with the writer's settings, and a readConnector's.
func driverAndReader(t *testing.T) (theirs, ours *sql.DB) {
	path := filepath.Join(t.TempDir(), "pools.db")
	theirs, err := sql.Open("sqlite", dsn(path))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, theirs.Close()) })
	require.NoError(t, theirs.Ping()) // creates the file, which a reader does not
	ours = sql.OpenDB(readConnector{path: path})
	t.Cleanup(func() { require.NoError(t, ours.Close()) })
	return theirs, ours
}

func TestReadConnOpenFails(t *testing.T) {
	_, err := openReadConn(filepath.Join(t.TempDir(), "no", "such", "dir.db"), false)
	require.ErrorContains(t, err, "unable to open database file")
}

// TestReadStatementsAreNotCompiledAgain: the readers' statements, run many
// times with new arguments, are compiled once. Clearing a statement's
// bindings after each run (sqlite3_clear_bindings) expired the user's row
// statement, whose plan reads a bound value, and SQLite compiled it again
// at every read: 36 % of a read's CPU in process. (The ledger's and the
// job runs' LIMIT ? are compiled again whenever it is bound: SQLite plans
// with a bound LIMIT, on either driver.)
func TestReadStatementsAreNotCompiledAgain(t *testing.T) {
	db := openTest(t)
	for _, user := range []string{"alice", "bob"} {
		grantAdmin(t, db, user, "seed-"+user, 5, nil)
	}
	for i := range 4 * cap(db.readers.free) {
		state(t, db, []string{"alice", "bob"}[i%2])
	}
	requireCompiledOnce(t, db)
}

// requireCompiledOnce: no statement of a reader in the pool has been
// compiled again since it was prepared (sqlite3_stmt_status).
func requireCompiledOnce(t testing.TB, db *DB) {
	t.Helper()
	var taken []*stmtConn
	defer func() {
		for _, c := range taken {
			db.readers.free <- c
		}
	}()
	for range cap(db.readers.free) {
		select {
		case c := <-db.readers.free:
			taken = append(taken, c)
			for q, s := range c.stmts {
				rs, ok := s.(*readStmt)
				if !ok || rs.p == 0 {
					continue // closed with its broken connection
				}
				runs := sqlite3.Xsqlite3_stmt_status(rs.c.tls, rs.p, sqlite3.SQLITE_STMTSTATUS_RUN, 0)
				again := sqlite3.Xsqlite3_stmt_status(rs.c.tls, rs.p, sqlite3.SQLITE_STMTSTATUS_REPREPARE, 0)
				require.Zero(t, again, "a reader compiled a statement again in %d of its %d runs: %.70q", again, runs, q)
			}
		default: // held by a view still running
		}
	}
}
