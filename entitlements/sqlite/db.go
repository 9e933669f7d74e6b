// Package sqlite owns creditsd's database: the DSN and its pragmas, the
// embedded migrations, the Tx type and every SQL statement. The ledger, the
// notification inbox and the job runs share its transactions; the domain
// packages above it stay free of SQL.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite" // registers the database/sql driver "sqlite", without cgo
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/creditsd/creditsd/entitlements"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is the database: one writer connection, so write transactions never
// fight over the lock inside this process, and a pool of read-only
// connections that WAL lets run beside it.
type DB struct {
	write  *sql.DB
	read   *sql.DB
	Now    func() time.Time
	Policy Policy

	jobs       chan writeJob // to the writer goroutine (writer.go)
	writerDone chan struct{}
	readers    *readers // read connections with prepared statements (conn.go)
	closing    sync.RWMutex
	closed     bool
	stats      writerStats
	writerDown atomic.Bool // the writer's connection closed and none opens in its place (writer.go)
	probing    atomic.Bool // a probe of the writer is queued (Ping)
	schema     int64       // PRAGMA schema_version the writer last checked (writer.go)
}

// now is the clock in the ledger's unit: milliseconds, as stored, so that
// what a write answers and what a replay reads back are the same.
func (db *DB) now() time.Time { return db.Now().UTC().Truncate(time.Millisecond) }

// Policy is the business configuration the ledger applies inside its
// transactions.
type Policy struct {
	Allowance entitlements.AllowancePolicy
	Refund    string // entitlements.RefundDebt or entitlements.RefundForgive
}

// defaultPolicy is a new DB's Policy until its owner sets the configured one.
func defaultPolicy() Policy {
	return Policy{Allowance: entitlements.DefaultAllowance(), Refund: entitlements.RefundDebt}
}

// Open opens (creating if needed) and migrates the database at path.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	if err := refuseForeign(ctx, path); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	write, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	db := &DB{write: write, Now: time.Now, Policy: defaultPolicy()}
	if err := db.migrate(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: migrate %s: %w", path, err)
	}
	db.read = sql.OpenDB(readConnector{path: path}) // without the connection's mutex (readconn.go)
	n := readerCount()
	db.read.SetMaxOpenConns(n + 1) // n kept by the readers, one for Ping
	if db.readers, err = openReaders(ctx, db.read, n); err != nil {
		db.read.Close()
		write.Close()
		return nil, err
	}
	if err := db.startWriter(ctx); err != nil {
		db.readers.close()
		db.read.Close()
		write.Close()
		return nil, err
	}
	return db, nil
}

// ErrOlderSchema is returned by OpenReadOnly for a database that lacks
// migrations this binary has: reading it with this binary's statements
// would need them, and applying them is a write.
var ErrOlderSchema = errors.New("the database lacks migrations this creditsd has")

// errNotAFile is a database path that names a FIFO, a device or a socket.
var errNotAFile = errors.New("not a regular file: a database is one")

// notAFile reports whether st is neither a regular file nor a directory
// (which SQLite refuses, and says so). Opened for reading, a FIFO blocks
// until a writer comes, for ever, and a signal does not end it: serve hung
// at start; a device would have had -wal and -shm made beside it, in /dev.
func notAFile(st fs.FileInfo) bool { return !st.Mode().IsRegular() && !st.IsDir() }

// errNotOurs is a file SQLite reads that no creditsd has migrated: an
// empty one, say, where a path was mistyped into an existing file.
var errNotOurs = errors.New("not a creditsd database: it has no schema_migrations table")

// OpenReadOnly opens an existing database for reading alone: it never
// writes the database file or its WAL, applies no migration and starts no
// writer (a write answers ErrClosed), so it may run beside a live server
// without taking its write lock. SQLite may create the WAL's -wal and -shm
// files beside a WAL database that has none, and so needs a directory it
// may write to, unless they are there. The database must be at this
// binary's schema exactly.
func OpenReadOnly(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	if st, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err) // names the file, and says it is missing
	} else if notAFile(st) {
		return nil, fmt.Errorf("sqlite: %s: %w", path, errNotAFile)
	}
	db := &DB{Now: time.Now, closed: true, Policy: defaultPolicy()}
	db.read = sql.OpenDB(readConnector{path: path, onlyReads: true}) // an existing file, SQLITE_OPEN_READONLY
	db.read.SetMaxOpenConns(2)                                       // a reader, and one for Ping
	err := sameMigrations(ctx, db.read)
	if err == nil {
		db.readers, err = openReaders(ctx, db.read, 1)
	}
	if err != nil {
		db.read.Close()
		if walFilesUnwritable(err) {
			err = fmt.Errorf("%w; a WAL database is read beside its -wal and -shm files, which SQLite creates "+
				"when they are missing: put a copy in a directory this process may write to, with them if it has them", err)
		}
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	return db, nil
}

// walFilesUnwritable is SQLite's answer to a read-only open of a WAL
// database whose -shm (or -wal) it could not create: SQLITE_CANTOPEN, or
// SQLITE_READONLY_DIRECTORY (1544).
func walFilesUnwritable(err error) bool {
	var coded interface{ Code() int }
	if !errors.As(err, &coded) {
		return false
	}
	return coded.Code()&0xff == sqlite3.SQLITE_CANTOPEN || coded.Code() == sqlite3.SQLITE_READONLY_DIRECTORY
}

// sameMigrations fails unless the database has applied exactly the
// embedded migrations.
func sameMigrations(ctx context.Context, pool *sql.DB) error {
	applied, err := appliedIn(ctx, pool)
	if err != nil {
		return err
	}
	if err := newerSchema(applied, migrationList); err != nil {
		return err
	}
	if missing := notIn(migrationList, applied); len(missing) > 0 {
		return fmt.Errorf("%w: it lacks %s; let this binary's serve or jobs run migrate it first",
			ErrOlderSchema, strings.Join(missing, ", "))
	}
	return nil
}

// refuseForeign refuses a file that holds another application's schema,
// before the writer's connection switches it to WAL: creditsd migrates a
// new or empty database, or its own. A path mistyped into another
// application's database got creditsd's tables added to it, and WAL for
// good. A file it cannot look at is refused too (another application's,
// left with a hot journal a read-only connection cannot roll back, was let
// through), unless the look failed for want of the WAL's files, which the
// writer creates, or names better.
func refuseForeign(ctx context.Context, path string) error {
	st, err := os.Stat(path)
	switch {
	case err != nil, st.IsDir(), st.Size() == 0 && st.Mode().IsRegular():
		return nil // a new file, or an empty one; or a directory, which the writer names
	case notAFile(st):
		return errNotAFile
	}
	pool := sql.OpenDB(readConnector{path: path, onlyReads: true})
	defer pool.Close()
	var objects int
	_, err = appliedIn(ctx, pool)
	switch {
	case err == nil, walFilesUnwritable(err):
		return nil
	case errors.Is(err, errNotOurs):
		err = pool.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&objects)
	}
	if err != nil {
		return fmt.Errorf("cannot tell whether it is a creditsd database, so it is left as it is: %w", err)
	}
	if objects == 0 {
		return nil
	}
	return fmt.Errorf("%w, and it holds another application's schema: "+
		"creditsd migrates only a new or empty database, or its own; check database in the config", errNotOurs)
}

// appliedIn are the migrations the database has applied, or errNotOurs
// when it has no schema_migrations table.
func appliedIn(ctx context.Context, pool *sql.DB) ([]string, error) {
	var tables int
	err := pool.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&tables)
	if err == nil && tables == 0 {
		err = errNotOurs
	}
	if err != nil {
		return nil, err
	}
	return migrationsIn(ctx, pool)
}

// Pending names the migrations Open would apply to the database at path,
// read without changing it: all of them for a file that does not exist yet
// or holds no schema. The first start after an upgrade may take minutes to
// migrate before it listens, and its caller says so first.
func Pending(ctx context.Context, path string) ([]string, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return notIn(migrationList, nil), nil
	case err == nil && notAFile(st):
		return nil, errNotAFile
	}
	pool := sql.OpenDB(readConnector{path: path, onlyReads: true})
	defer pool.Close()
	applied, err := appliedIn(ctx, pool)
	if errors.Is(err, errNotOurs) {
		if err := refuseForeign(ctx, path); err != nil {
			return nil, err // Open refuses it: nothing is pending
		}
		return notIn(migrationList, nil), nil
	}
	if err != nil {
		return nil, err
	}
	return notIn(migrationList, applied), nil
}

// readerCount is how many read connections the store keeps: two for each
// CPU the runtime chose Ps for at start (a cgroup's CPU quota included), so
// that one's page fetch can wait on the disk while another runs, and at
// least 4 (BENCHMARKS.md, session 10). Not by the GOMAXPROCS of now, which
// serve doubles: 8 readers ran reads slower than 4 there, with 12 MB more
// RSS (session 24).
func readerCount() int { return max(4, 2*startProcs) }

// startProcs is the runtime's GOMAXPROCS at start, before serve changes it.
var startProcs = runtime.GOMAXPROCS(0)

// checkpointPages is the writer's wal_autocheckpoint: a quarter of
// SQLite's default, so that the commit which runs a checkpoint waits a
// quarter as long (see dsn).
const checkpointPages = 250

// dsn is the writer's connection string. It holds the pragmas, so that
// every connection its pool opens gets them (a PRAGMA run once reaches only
// one connection); the readers run the same ones at open (readPragmas).
// synchronous=FULL makes every acknowledged write survive power loss.
func dsn(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	// Savepoint journals (one per write in a group commit) stay in
	// memory: each notification's spilled ~12 KiB to a temp file.
	q.Add("_pragma", "temp_store(MEMORY)")
	// The commit that takes the WAL past this many pages copies them
	// into the database (each a random write, ~25 µs on our disk)
	// before the batch it commits is answered. SQLite's 1,000 made
	// that a ~25 ms stall every ~16 batches of spends, their p99;
	// 250 makes it ~6 ms, at ~12 % of spends' throughput (BENCHMARKS.md).
	q.Add("_pragma", "wal_autocheckpoint("+strconv.Itoa(checkpointPages)+")")
	return "file:" + path + "?" + q.Encode()
}

// Close finishes the queued writes and closes both pools.
func (db *DB) Close() error {
	db.stopWriter()
	db.readers.close()
	if db.write == nil { // OpenReadOnly's
		return db.read.Close()
	}
	return errors.Join(db.read.Close(), db.write.Close())
}

// Ping checks that the database answers, and that no newer creditsd has
// migrated it past this binary's migrations, which the writer refuses to
// write to (sameSchema); /readyz uses it. It reads the migrations' names,
// a few dozen rows, on a read connection.
func (db *DB) Ping(ctx context.Context) error {
	if db.writerDown.Load() {
		db.probeWriter(ctx)
		if db.writerDown.Load() {
			return errWriterDown
		}
	}
	applied, err := migrationsIn(ctx, db.read) // the pool's spare connection: never queued behind the readers
	if err != nil {
		return err
	}
	return newerSchema(applied, migrationList)
}

// probeWait bounds how long Ping waits for the writer's probe: a probe
// may wait out another process's write lock (busy_timeout, 10 s), and
// /readyz is polled.
const probeWait = 500 * time.Millisecond

// probeWriter queues an empty write, which has the writer try a new
// connection (a service taken out of rotation gets no other writes to try
// it with), and waits for it at most probeWait. One probe at a time: the
// polls of several load balancers do not pile up in the writer's queue.
func (db *DB) probeWriter(ctx context.Context) {
	if !db.probing.CompareAndSwap(false, true) {
		return
	}
	done, err := db.enqueue(ctx, func(*Tx) error { return nil }, false) // a full queue: the writer has its probes
	if err != nil {
		db.probing.Store(false)
		return
	}
	finished := make(chan struct{})
	go func() {
		<-done
		db.probing.Store(false)
		close(finished)
	}()
	select {
	case <-finished:
	case <-ctx.Done():
	case <-time.After(probeWait):
	}
}

// errWriterDown is Ping's answer while the writer has no connection: every
// write fails until one opens.
var errWriterDown = errors.New("sqlite: the writer's connection is closed and no new one opens")

// LastMigration names the last of the embedded migrations (its file name
// without .sql): the schema a database this package has opened is at.
func LastMigration() string {
	return strings.TrimSuffix(path.Base(migrationList[len(migrationList)-1]), ".sql")
}

// migrationList is migrationNames of the embedded migrations.
var migrationList, _ = migrationNames(migrations) // a valid pattern: no error

// migrationNames are fsys's migrations/*.sql, in the order they apply.
func migrationNames(fsys fs.FS) ([]string, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	sort.Strings(names)
	return names, err
}

// migrate applies the embedded migrations the database lacks. A database
// that has them all is only read: taking the write lock to find nothing to
// do made a start beside a busy writer in another process (a jobs run
// beside serve, or serve beside a long sweep) wait for it, and fail with
// "database is locked" after the busy timeout.
func (db *DB) migrate(ctx context.Context) error {
	err := sameMigrations(ctx, db.write)
	if err == nil || errors.Is(err, ErrNewerSchema) {
		return err
	}
	return runMigrations(ctx, db.write, migrations)
}

// runMigrations applies the migrations in fsys (migrations/*.sql, in name order)
// that the database has not applied yet, all in one transaction. It
// refuses a database that has a migration fsys lacks (refuseNewerSchema).
//
// A migration may rebuild a table that other tables' foreign keys name
// (SQLite's twelve-step procedure, lang_altertable.html), which needs
// foreign keys off, and SQLite ignores PRAGMA foreign_keys inside a
// transaction. So the migrations run on one connection of pool, with
// foreign keys turned off before BEGIN; PRAGMA foreign_key_check before
// COMMIT refuses any violation they left, rolling them all back; and
// foreign keys are on again before the connection goes back to the pool,
// whose one connection the writer then takes.
func runMigrations(ctx context.Context, pool *sql.DB, fsys fs.FS) (err error) {
	conn, err := pool.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, foreignKeysOn(context.WithoutCancel(ctx), conn)) }()
	// A rebuild sorts its table (0012 sorts every lot by user): in temp
	// files, not in the memory where the writer keeps its temp_store, which
	// took 1.4 GB for 10M lots.
	if _, err := conn.ExecContext(ctx, `PRAGMA temp_store = FILE`); err != nil {
		return err
	}
	defer func() {
		_, restore := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA temp_store = MEMORY`)
		err = errors.Join(err, restore)
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // before foreign keys go back on: deferred calls run last first
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY) STRICT`); err != nil {
		return err
	}
	names, err := migrationNames(fsys)
	if err != nil {
		return err
	}
	if err := refuseNewerSchema(ctx, tx, names); err != nil {
		return err
	}
	applied := 0
	for _, name := range names {
		ok, err := applyMigration(ctx, tx, fsys, name)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if ok {
			applied++
		}
	}
	if applied > 0 { // else nothing ran with foreign keys off, and the check would read every table for nothing
		if err := foreignKeyCheck(ctx, tx); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// ErrNewerSchema is returned for a database that a newer creditsd has
// migrated past the migrations this binary knows.
var ErrNewerSchema = errors.New("the database was migrated by a newer creditsd")

// refuseNewerSchema fails if the database has applied a migration that is
// not among known. A binary writes with the statements of its own schema:
// on a newer one they may fail (a dropped column: 500s), or succeed and
// leave the ledger's other tables behind (after 0015 an older binary's
// entries go uncounted in ledger_totals). So it stops before it serves
// anything, and names the migration. Going back a version means restoring
// the backup taken before the upgrade (README, Operations).
func refuseNewerSchema(ctx context.Context, tx *sql.Tx, known []string) error {
	applied, err := migrationsIn(ctx, tx)
	if err != nil {
		return err
	}
	return newerSchema(applied, known)
}

// migrationsSQL reads the names of the migrations a database has applied.
const migrationsSQL = `SELECT name FROM schema_migrations ORDER BY name`

// migrationsIn are the names schema_migrations holds, read through q.
func migrationsIn(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]string, error) {
	rows, err := q.QueryContext(ctx, migrationsSQL)
	if err != nil {
		return nil, err
	}
	return scanNames(rows)
}

// scanNames reads one text column of every row, and closes rows: *sql.Rows
// and the store's own *stmtRows alike.
func scanNames(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, rows.Err()
}

// newerSchema is ErrNewerSchema, naming the migrations of applied that are
// not among known, or nil when there are none.
func newerSchema(applied, known []string) error {
	unknown := notIn(applied, known)
	if len(unknown) == 0 {
		return nil
	}
	last := "none"
	if len(known) > 0 {
		last = path.Base(known[len(known)-1])
	}
	return fmt.Errorf("%w: it has %s, and this binary knows migrations up to %s; run the newer binary, "+
		"or restore the backup taken before the upgrade", ErrNewerSchema, strings.Join(unknown, ", "), last)
}

// notIn is the base names of those of names that have lacks.
func notIn(names, have []string) []string {
	var out []string
	for _, name := range names {
		if !slices.Contains(have, name) {
			out = append(out, path.Base(name))
		}
	}
	return out
}

// applyMigration applies the migration name from fsys unless the database
// has it already, and says whether it did.
func applyMigration(ctx context.Context, tx *sql.Tx, fsys fs.FS, name string) (bool, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE name = ?`, name).Scan(&n); err != nil || n > 0 {
		return false, err
	}
	body, err := fs.ReadFile(fsys, name)
	if err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return false, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (name) VALUES (?)`, name)
	return err == nil, err
}

// foreignKeyCheck fails if any row names a parent row that does not exist.
func foreignKeyCheck(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var bad []string
	n := 0
	for rows.Next() {
		var table, parent string
		var rowid sql.NullInt64 // NULL in a WITHOUT ROWID table
		var fk int
		if err := rows.Scan(&table, &rowid, &parent, &fk); err != nil {
			return err
		}
		n++
		if len(bad) < 5 {
			bad = append(bad, fmt.Sprintf("%s rowid %d → %s (foreign key %d)", table, rowid.Int64, parent, fk))
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("foreign_key_check: %d row(s) name a missing parent: %s", n, strings.Join(bad, "; "))
	}
	return nil
}

// foreignKeysOn turns foreign keys back on for conn and checks that they
// are: SQLite ignores the pragma, silently, inside a transaction.
func foreignKeysOn(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = ON`); err != nil {
		return fmt.Errorf("foreign keys back on: %w", err)
	}
	var on int
	if err := conn.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&on); err != nil {
		return fmt.Errorf("foreign keys back on: %w", err)
	}
	if on != 1 {
		return errors.New("foreign keys are still off after the migrations")
	}
	return nil
}

// Tx is one transaction and the moment it happens at. Its statements run
// on the transaction's own context, whatever ctx a caller passes: a caller
// that goes away must not interrupt a statement, which would roll back
// every write sharing the commit (see writer.go).
type Tx struct {
	q      *stmtConn // the writer's connection or a reader's, with its prepared statements
	ctx    context.Context
	now    time.Time
	policy Policy
}

// ExecContext runs a statement on the transaction's own context.
func (tx *Tx) ExecContext(_ context.Context, query string, args ...any) (sql.Result, error) {
	return tx.q.ExecContext(tx.ctx, query, args...)
}

// QueryContext runs a query on the transaction's own context.
func (tx *Tx) QueryContext(_ context.Context, query string, args ...any) (*stmtRows, error) {
	return tx.q.QueryContext(tx.ctx, query, args...)
}

// QueryRowContext runs a one-row query on the transaction's own context.
func (tx *Tx) QueryRowContext(_ context.Context, query string, args ...any) *stmtRow {
	return tx.q.QueryRowContext(tx.ctx, query, args...)
}

// view runs fn in one read-only transaction: a consistent snapshot.
func (db *DB) view(ctx context.Context, fn func(*Tx) error) error {
	return db.readers.view(ctx, func(c *stmtConn) error {
		return fn(&Tx{q: c, ctx: c.ctx, now: db.now(), policy: db.Policy})
	})
}

// isUnique reports a UNIQUE or PRIMARY KEY violation, by the driver's code
// (never by matching the message text).
func isUnique(err error) bool {
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// UnusablePath reports whether err, from Open, says that no database can
// be kept at the path: SQLite could not open or create the file (a
// missing directory, a directory, no permission), may not write it, or
// found a file there that is not a database, another application's, or no
// regular file at all. Another path would fix it, where a retry would not.
// It goes by the driver's primary result code.
func UnusablePath(err error) bool {
	if errors.Is(err, errNotOurs) || errors.Is(err, errNotAFile) { // refuseForeign's
		return true
	}
	var coded interface{ Code() int } // *msqlite.Error from the writer, *readError from a reader
	if !errors.As(err, &coded) {
		return false
	}
	switch coded.Code() & 0xff {
	case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOTADB:
		return true
	}
	return false
}

func millis(t time.Time) int64 { return t.UnixMilli() }

func nullMillis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

func ptrMillis(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return nullMillis(*t)
}

// nullString is s, NULL when empty.
func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func fromNullMillis(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromMillis(n.Int64)
	return &t
}

// Backup writes a copy of the database at src to dest, a file that must
// not exist yet: one snapshot, as of its read transaction, compacted, with
// nothing in a WAL beside it (SQLite's VACUUM INTO). It only reads src, as
// any reader does, and takes no write lock, so it may run beside a live
// server; a copy of the file alone would lack what its WAL holds. Its
// connection is not read-only, since VACUUM INTO opens dest with the
// source's flags; src must exist (it is never created).
func Backup(ctx context.Context, src, dest string) error {
	if st, err := os.Stat(src); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	} else if notAFile(st) {
		return fmt.Errorf("sqlite: %s: %w", src, errNotAFile)
	}
	if _, err := os.Stat(dest); !errors.Is(err, fs.ErrNotExist) {
		if err == nil {
			err = fs.ErrExist
		}
		return fmt.Errorf("sqlite: backup to %s: %w", dest, err)
	}
	pool, err := sql.Open("sqlite", dsn(src))
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := pool.ExecContext(ctx, `VACUUM INTO ?`, dest); err != nil {
		return fmt.Errorf("sqlite: backup to %s: %w", dest, err)
	}
	return nil
}
