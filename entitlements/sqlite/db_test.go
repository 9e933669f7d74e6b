package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/receipts"
)

// testNow is the clock every store test runs at.
var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// openTest opens a fresh file database: WAL and the one-writer pool behave
// as they do in production only on a real file.
func openTest(t testing.TB) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
	require.NoError(t, err)
	db.Now = func() time.Time { return testNow }
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	return db
}

var tokens = func() entitlements.TokenDeriver {
	d, err := entitlements.NewTokenDeriver(entitlements.DefaultTokenNamespace)
	if err != nil {
		panic(err)
	}
	return d
}()

var catalog = entitlements.Catalog{
	"pack": {ID: "pack", Credits: 10, ExpiresAfter: entitlements.DefaultExpiry},
	// Packs big enough that half a milliunit of a few of them is more than
	// a credit, for prorated refunds of whole units.
	"big":  {ID: "big", Credits: 50000, ExpiresAfter: entitlements.DefaultExpiry},
	"bulk": {ID: "bulk", Credits: 16667, ExpiresAfter: entitlements.DefaultExpiry},
	"pro":  {ID: "pro", Tier: entitlements.TierPro},
	"max":  {ID: "max", Tier: "max"}, // a higher tier than pro, where a test configures it
}

// purchase is a consumable bought an hour before testNow by token's owner.
func purchase(id, token string) entitlements.Purchase {
	at := testNow.Add(-time.Hour)
	return entitlements.Purchase{TransactionID: id, OriginalTransactionID: id, ProductID: "pack", Type: "Consumable",
		Environment: "Sandbox", AppAccountToken: token, Quantity: 1, PurchaseDate: at, SignedDate: at,
		JWS: "jws-" + id}
}

func plan(t testing.TB, p entitlements.Purchase) entitlements.Grant {
	g, err := entitlements.PlanGrant(p, catalog, testNow)
	require.NoError(t, err)
	return g
}

func state(t testing.TB, db *DB, user string) entitlements.UserState {
	t.Helper()
	st, err := db.UserState(context.Background(), user, tokens.Token(user), entitlements.UserActor(user))
	require.NoError(t, err)
	return st
}

func balance(t testing.TB, db *DB, user string) int64 {
	return entitlements.Compute(state(t, db, user), entitlements.DefaultAllowance()).Credits.Balance
}

func TestOpenMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	for range 2 {
		db, err := Open(context.Background(), path)
		require.NoError(t, err)
		require.NoError(t, db.Ping(context.Background()))
		require.NoError(t, db.Close())
	}
}

// UnusablePath tells Open's errors for a path that cannot hold a database,
// which another path would fix, from the store's other errors.
func TestUnusablePath(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(notDB, []byte(strings.Repeat("not a database\n", 20)), 0o600))
	for name, path := range map[string]string{
		"MissingDirectory": filepath.Join(dir, "missing", "x.db"),
		"Directory":        dir,
		"NotADatabase":     notDB,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Open(context.Background(), path)
			require.Error(t, err)
			require.True(t, UnusablePath(err), err.Error())
		})
	}
	t.Run("OtherErrors", func(t *testing.T) {
		require.False(t, UnusablePath(nil))
		require.False(t, UnusablePath(ErrNewerSchema))
		_, err := writeExec(openTest(t), `INSERT INTO schema_migrations (name) VALUES ('x'), ('x')`)
		require.True(t, isUnique(err), "a driver error with a code")
		require.False(t, UnusablePath(err))
	})
}

// A database a newer binary has migrated is refused before anything runs
// on it: this binary's statements are for its own schema.
func TestOpenRefusesANewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	db, err := Open(ctx, path)
	require.NoError(t, err)
	_ = state(t, db, "alice")
	_, err = writeExec(db, `INSERT INTO schema_migrations (name) VALUES ('migrations/9999_from_the_future.sql')`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	_, err = Open(ctx, path)
	require.ErrorIs(t, err, ErrNewerSchema)
	require.ErrorContains(t, err, "it has 9999_from_the_future.sql, and this binary knows migrations up to "+LastMigration()+".sql")

	pool := sql.OpenDB(readConnector{path: path})
	defer pool.Close()
	require.Equal(t, []string{"1"}, sqlStrings(t, pool, `SELECT count(*) FROM users`), "nothing was undone or written")
}

// Open refuses another application's database, and leaves it as it was:
// a path mistyped into one got creditsd's tables added, and WAL for good.
// A new file, an empty one, and a SQLite file with no schema are migrated.
func TestOpenRefusesAnotherApplicationsDatabase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "invoices.db")
	other, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	_, err = other.Exec(`CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount INTEGER)`)
	require.NoError(t, err)
	require.NoError(t, other.Close())

	_, err = Open(ctx, path)
	require.ErrorIs(t, err, errNotOurs)
	require.ErrorContains(t, err, "it holds another application's schema")
	require.True(t, UnusablePath(err), "another path fixes it: serve names the database key")
	pending, err := Pending(ctx, path)
	require.ErrorIs(t, err, errNotOurs, "serve logs no migration it will not run")
	require.Empty(t, pending)
	other, err = sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer other.Close()
	require.Equal(t, []string{"delete"}, sqlStrings(t, other, `PRAGMA journal_mode`), "not switched to WAL")
	require.Equal(t, []string{"invoices"}, sqlStrings(t, other, `SELECT name FROM sqlite_schema`), "nothing added")

	empty := filepath.Join(dir, "empty.db")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	blank := filepath.Join(dir, "blank.db")
	b, err := sql.Open("sqlite", "file:"+blank)
	require.NoError(t, err)
	_, err = b.Exec(`PRAGMA user_version = 1`) // a SQLite file with a header and no schema
	require.NoError(t, err)
	require.NoError(t, b.Close())
	fifo := filepath.Join(dir, "fifo.db")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	_, err = Open(ctx, fifo)
	require.ErrorIs(t, err, errNotAFile, "a FIFO was a disk I/O error")
	require.True(t, UnusablePath(err))
	_, err = Pending(ctx, fifo) // serve asks it first: opened for reading, a FIFO blocked for ever
	require.ErrorIs(t, err, errNotAFile)
	_, err = OpenReadOnly(ctx, fifo) // ledger check's
	require.ErrorIs(t, err, errNotAFile)
	err = Backup(ctx, fifo, filepath.Join(dir, "copy.db")) // blamed the copy: a disk I/O error
	require.ErrorIs(t, err, errNotAFile)

	for _, p := range []string{empty, blank, filepath.Join(dir, "new.db")} {
		db, err := Open(ctx, p)
		require.NoError(t, err, p)
		require.NoError(t, db.Close())
	}
}

// A file Open cannot look at is left as it is: another application's,
// with a hot journal that a read-only connection cannot roll back, was let
// through, rolled back by the writer, switched to WAL and migrated.
func TestOpenLeavesAHotJournalAlone(t *testing.T) {
	ctx := context.Background()
	dir, hot := t.TempDir(), t.TempDir()
	path := filepath.Join(dir, "other.db")
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=cache_size(1)")
	require.NoError(t, err)
	defer other.Close()
	other.SetMaxOpenConns(1)
	_, err = other.Exec(`CREATE TABLE invoices (id INTEGER PRIMARY KEY, note TEXT)`)
	require.NoError(t, err)
	_, err = other.Exec(`INSERT INTO invoices (note) SELECT hex(randomblob(200)) FROM generate_series(1, 2000)`)
	if err != nil { // no generate_series: a recursive count instead
		_, err = other.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 2000)
			INSERT INTO invoices (note) SELECT hex(randomblob(200)) FROM n`)
	}
	require.NoError(t, err)
	tx, err := other.Begin()
	require.NoError(t, err)
	_, err = tx.Exec(`UPDATE invoices SET note = hex(randomblob(200))`) // spills to the file past a 1-page cache
	require.NoError(t, err)
	// A copy taken now is another application's crash: the file half
	// written, its journal hot.
	for _, name := range []string{"other.db", "other.db-journal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err, name)
		require.NoError(t, os.WriteFile(filepath.Join(hot, name), b, 0o600))
	}
	require.NoError(t, tx.Rollback())

	_, err = Open(ctx, filepath.Join(hot, "other.db"))
	require.ErrorContains(t, err, "cannot tell whether it is a creditsd database, so it is left as it is")
	_, err = os.Stat(filepath.Join(hot, "other.db-journal"))
	require.NoError(t, err, "the journal is still there, for its application to roll back")
	_, err = os.Stat(filepath.Join(hot, "other.db-wal"))
	require.ErrorIs(t, err, os.ErrNotExist, "never switched to WAL")
}

// A newer binary that migrates the database while this one serves it (its
// `jobs run` beside this `serve`) stops this one's writes: Open checked
// only at start, and the live server's spends then failed on a renamed
// column (500s), or a migration its statements did not break (a dropped
// trigger, as 0015's) left tables behind without a word. A schema change
// that is no migration (ANALYZE) stops nothing.
func TestWriterStopsAtANewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "live.db")
	live, err := Open(ctx, path)
	require.NoError(t, err)
	defer live.Close()
	grantLot(t, live, "alice", 100, nil)
	_, _, _, err = live.Spend(ctx, spendReq("alice", "k1", 1))
	require.NoError(t, err)

	other := sql.OpenDB(readConnector{path: path})
	defer other.Close()
	newer, err := sql.Open("sqlite", dsn(path)) // another process's
	require.NoError(t, err)
	defer newer.Close()
	_, err = newer.ExecContext(ctx, `ANALYZE`)
	require.NoError(t, err)
	_, _, _, err = live.Spend(ctx, spendReq("alice", "k2", 1))
	require.NoError(t, err, "ANALYZE changed the schema's version, not its migrations")

	next := fstest.MapFS{"migrations/9999_next.sql": {Data: []byte(`CREATE TABLE later (x INTEGER) STRICT;`)}}
	for _, name := range migrationList {
		b, err := fs.ReadFile(migrations, name)
		require.NoError(t, err)
		next[name] = &fstest.MapFile{Data: b}
	}
	require.NoError(t, runMigrations(ctx, newer, next))

	require.ErrorIs(t, live.Ping(ctx), ErrNewerSchema, "/readyz says so, before any write")
	_, _, _, err = live.Spend(ctx, spendReq("alice", "k3", 1))
	require.ErrorIs(t, err, ErrNewerSchema)
	require.ErrorContains(t, err, "9999_next.sql")
	require.Equal(t, []string{"2"}, sqlStrings(t, other, `SELECT count(*) FROM spends`), "nothing written")

	// The backup restored under it: writes and /readyz come back.
	_, err = newer.ExecContext(ctx, `DROP TABLE later; DELETE FROM schema_migrations WHERE name = 'migrations/9999_next.sql'`)
	require.NoError(t, err)
	require.NoError(t, live.Ping(ctx))
	_, _, _, err = live.Spend(ctx, spendReq("alice", "k3", 1))
	require.NoError(t, err)
}

// The writer's first commit checks the migrations too: a newer binary
// waiting for the write lock may migrate the database between Open's
// migrations and the writer's start, and the writer took the schema it
// then found for its own.
func TestWriterStopsAtANewerSchemaFromItsStart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "live.db")
	db := &DB{Now: time.Now, Policy: defaultPolicy()}
	var err error
	db.write, err = sql.Open("sqlite", dsn(path))
	require.NoError(t, err)
	db.write.SetMaxOpenConns(1)
	require.NoError(t, db.migrate(ctx))
	next := fstest.MapFS{"migrations/9999_next.sql": {Data: []byte(`CREATE TABLE later (x INTEGER) STRICT;`)}}
	for _, name := range migrationList {
		b, err := fs.ReadFile(migrations, name)
		require.NoError(t, err)
		next[name] = &fstest.MapFile{Data: b}
	}
	newer, err := sql.Open("sqlite", dsn(path))
	require.NoError(t, err)
	defer newer.Close()
	require.NoError(t, runMigrations(ctx, newer, next)) // in the gap
	db.read = sql.OpenDB(readConnector{path: path})
	db.readers, err = openReaders(ctx, db.read, 1)
	require.NoError(t, err)
	require.NoError(t, db.startWriter(ctx))
	defer db.Close()

	_, _, _, err = db.Spend(ctx, spendReq("alice", "k1", 1))
	require.ErrorIs(t, err, ErrNewerSchema)
}

func TestPragmasReachEveryConnection(t *testing.T) {
	db := openTest(t)
	for _, pool := range []struct {
		name string
		run  func(string) (string, error)
	}{
		{"write", func(q string) (s string, err error) {
			return s, db.update(context.Background(), func(tx *Tx) error { return tx.QueryRowContext(context.Background(), q).Scan(&s) })
		}},
		{"read", func(q string) (s string, err error) { return s, db.read.QueryRow(q).Scan(&s) }},
	} {
		for pragma, want := range map[string]string{"journal_mode": "wal", "foreign_keys": "1", "synchronous": "2", "busy_timeout": "10000"} {
			got, err := pool.run("PRAGMA " + pragma)
			require.NoError(t, err)
			require.Equal(t, want, got, "%s pool: %s", pool.name, pragma)
		}
	}
	var temp string
	require.NoError(t, db.update(context.Background(), func(tx *Tx) error {
		return tx.QueryRowContext(context.Background(), "PRAGMA temp_store").Scan(&temp)
	}))
	require.Equal(t, "2", temp, "the writer keeps savepoint journals in memory")
	var checkpoint int
	require.NoError(t, db.update(context.Background(), func(tx *Tx) error {
		return tx.QueryRowContext(context.Background(), "PRAGMA wal_autocheckpoint").Scan(&checkpoint)
	}))
	require.Equal(t, checkpointPages, checkpoint, "the writer checkpoints every checkpointPages")
}

// The writer checkpoints every checkpointPages (250) pages of WAL, so no
// commit waits for a bigger checkpoint (SQLite's default is 1,000), and the
// WAL file never grows much past that: SQLite reuses it from the start
// after a checkpoint, once no reader holds an older snapshot.
func TestWALStaysSmall(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	db, err := Open(context.Background(), path)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	db.Now = func() time.Time { return testNow }
	var pageSize int64
	require.NoError(t, db.read.QueryRow(`PRAGMA page_size`).Scan(&pageSize))
	frame := 24 + pageSize
	for i := range 600 { // a commit each, of a few pages: thousands of frames in all
		_, _, _, err := db.Spend(context.Background(), spendReq(fmt.Sprintf("user%d", i), fmt.Sprintf("k%d", i), 1))
		require.NoError(t, err)
	}
	wal, err := os.Stat(path + "-wal")
	require.NoError(t, err)
	require.Less(t, wal.Size()/frame, int64(checkpointPages+50), "pages in the WAL")
}

func TestLedgerIsAppendOnly(t *testing.T) {
	db := openTest(t)
	p := purchase("1", tokens.Token("alice"))
	_, err := db.ClaimPurchase(context.Background(), "alice", tokens.Token("alice"), p, plan(t, p))
	require.NoError(t, err)
	_, err = writeExec(db, `UPDATE entries SET credits = 1000`)
	require.ErrorContains(t, err, "append-only")
	_, err = writeExec(db, `DELETE FROM entries`)
	require.ErrorContains(t, err, "append-only")
}

func TestSchemaRefusesImpossibleLots(t *testing.T) {
	db := openTest(t)
	_ = state(t, db, "alice")
	insert := func(granted, remaining int64) error {
		_, err := writeExec(db, `INSERT INTO lots (lot_id, user_id, source, granted, remaining, granted_at, created_at)
			VALUES (?, 'alice', 'admin', ?, ?, 0, 0)`, newID("lot"), granted, remaining)
		return err
	}
	require.NoError(t, insert(10, 10))
	require.Error(t, insert(10, 11), "remaining above granted")
	require.Error(t, insert(10, -1), "remaining below zero")
	require.Error(t, insert(0, 0), "an empty grant")
}

// writeExec runs one statement through the writer, which owns the write
// connection.
func writeExec(db *DB, query string, args ...any) (res sql.Result, err error) {
	err = db.update(context.Background(), func(tx *Tx) error {
		res, err = tx.ExecContext(context.Background(), query, args...)
		return err
	})
	return res, err
}

func TestNewIDsSortByTime(t *testing.T) {
	ids := make([]string, 20)
	for i := range ids {
		ids[i] = newID("sp")
		time.Sleep(2 * time.Millisecond)
	}
	require.True(t, sort.StringsAreSorted(ids), "a later id sorts after an earlier one, so inserts append to the index: %v", ids)
	require.Regexp(t, `^sp_[0-9a-v]{24}$`, ids[0])
	require.NotEqual(t, newID("sp"), newID("sp"), "ids made in the same millisecond still differ")
}

// oldDatabase makes a database at path with only the named migrations
// applied, and lets fill write rows in their shape.
func oldDatabase(t *testing.T, path string, names []string, fill string) {
	ctx := context.Background()
	old, err := sql.Open("sqlite", dsn(path))
	require.NoError(t, err)
	tx, err := old.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, `CREATE TABLE schema_migrations (name TEXT PRIMARY KEY)`)
	require.NoError(t, err)
	for _, name := range names {
		_, err := applyMigration(ctx, tx, migrations, "migrations/"+name)
		require.NoError(t, err)
	}
	_, err = tx.ExecContext(ctx, fill)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	require.NoError(t, old.Close())
}

// columns lists which of names table has.
func columns(t *testing.T, db *DB, table string, names ...string) []string {
	var have []string
	for _, n := range queryStrings(t, db, `SELECT name FROM pragma_table_info(?) ORDER BY cid`, table) {
		if slices.Contains(names, n) {
			have = append(have, n)
		}
	}
	return have
}

// queryStrings runs a one-column query on a read connection.
func queryStrings(t *testing.T, db *DB, query string, args ...any) []string {
	t.Helper()
	return sqlStrings(t, db.read, query, args...)
}

// sqlStrings runs a one-column query on pool.
func sqlStrings(t *testing.T, pool *sql.DB, query string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(query, args...)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

// A database made before transaction_jws keeps every transaction's signed
// version across the migrations that move it and drop its decoded copy.
func TestMigrationMovesTransactionJWS(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	oldDatabase(t, path, []string{"0001_ledger.sql", "0002_spends.sql", "0003_jobs.sql", "0004_consumption.sql"},
		`INSERT INTO apple_transactions (transaction_id, original_transaction_id, product_id,
		type, environment, quantity, purchase_date, signed_date, jws, decoded, outcome, created_at, updated_at)
		VALUES ('t1', 't1', 'p', 'Consumable', 'Sandbox', 1, 1, 1, 'a.b.c', '{"x":1}', 'granted', 1, 1)`)

	db, err := Open(context.Background(), path)
	require.NoError(t, err)
	defer db.Close()
	var jws string
	require.NoError(t, db.read.QueryRow(`SELECT jws FROM transaction_jws WHERE transaction_id = 't1'`).Scan(&jws))
	require.Equal(t, "a.b.c", jws)
	require.Empty(t, columns(t, db, "apple_transactions", "jws", "decoded"), "the transaction row no longer carries the JWS")
	require.Empty(t, columns(t, db, "transaction_jws", "decoded"))
}

// Every signed document keeps its JWS, and only its JWS, across the
// migration that drops the decoded copies.
func TestMigrationDropsDecodedKeepsJWS(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	oldDatabase(t, path, []string{"0001_ledger.sql", "0002_spends.sql", "0003_jobs.sql", "0004_consumption.sql", "0005_transaction_jws.sql"},
		`INSERT INTO apple_transactions (transaction_id, original_transaction_id, product_id,
			type, environment, quantity, purchase_date, signed_date, outcome, created_at, updated_at)
			VALUES ('t1', 't1', 'p', 'Consumable', 'Sandbox', 1, 1, 1, 'granted', 1, 1);
		INSERT INTO transaction_jws VALUES ('t1', 't.j.ws', '{"t":1}');
		INSERT INTO notifications (notification_uuid, notification_type, signed_date, jws, decoded, source, outcome, received_at)
			VALUES ('n1', 'ONE_TIME_CHARGE', 1, 'n.j.ws', '{"n":1}', 'webhook', 'granted', 1);
		INSERT INTO renewal_infos VALUES ('t1', 'p', 1, NULL, 'Sandbox', 1, 'r.j.ws', '{"r":1}', 1)`)

	db, err := Open(context.Background(), path)
	require.NoError(t, err)
	defer db.Close()
	var tj, nj, rj string
	require.NoError(t, db.read.QueryRow(`SELECT (SELECT jws FROM transaction_jws), (SELECT jws FROM notifications),
		(SELECT jws FROM renewal_infos)`).Scan(&tj, &nj, &rj))
	require.Equal(t, []string{"t.j.ws", "n.j.ws", "r.j.ws"}, []string{tj, nj, rj})
	for _, table := range []string{"transaction_jws", "notifications", "renewal_infos"} {
		require.Empty(t, columns(t, db, table, "decoded"), table)
		require.Equal(t, []string{"jws"}, columns(t, db, table, "jws"), table)
	}
}

// Rows written before jws_headers keep their whole JWS and read back
// unchanged through the views; rows written after keep their header once.
func TestMigrationKeepsWholeJWSReadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	oldDatabase(t, path, []string{"0001_ledger.sql", "0002_spends.sql", "0003_jobs.sql", "0004_consumption.sql",
		"0005_transaction_jws.sql", "0006_drop_decoded.sql", "0007_allowance_day_by_entry.sql"},
		`INSERT INTO apple_transactions (transaction_id, original_transaction_id, product_id,
			type, environment, quantity, purchase_date, signed_date, outcome, created_at, updated_at)
			VALUES ('t1', 't1', 'p', 'Consumable', 'Sandbox', 1, 1, 1, 'granted', 1, 1);
		INSERT INTO transaction_jws VALUES ('t1', 'old-h.t.sig');
		INSERT INTO notifications (notification_uuid, notification_type, signed_date, jws, source, outcome, received_at)
			VALUES ('n1', 'ONE_TIME_CHARGE', 1, 'old-h.n.sig', 'webhook', 'granted', 1)`)

	db, err := Open(context.Background(), path)
	require.NoError(t, err)
	defer db.Close()
	require.Equal(t, []string{"old-h.n.sig"}, queryStrings(t, db, `SELECT jws FROM notifications_signed WHERE notification_uuid = 'n1'`))
	require.Equal(t, []string{"old-h.t.sig"}, queryStrings(t, db, `SELECT jws FROM transactions_signed WHERE transaction_id = 't1'`))
}

// A signer's header is stored once however many documents it signed, and
// every document reads back byte for byte.
func TestJWSHeaderStoredOnce(t *testing.T) {
	db := openTest(t)
	_ = state(t, db, "alice")
	header := "eyJhbGciOiJFUzI1NiIsIng1YyI6WyJjaGFpbiJdfQ" // the same signer for all of them
	for i, id := range []string{"500", "501", "502"} {
		p := purchase(id, tokens.Token("alice"))
		p.JWS = header + ".tx-payload-" + id + ".tx-sig"
		_, err := db.RecordNotification(context.Background(), Notification{UUID: "n" + id, Type: "ONE_TIME_CHARGE",
			SignedDate: p.SignedDate, TransactionID: id, JWS: header + ".n-payload-" + id + ".n-sig", Source: "webhook"},
			Effect{Purchase: &p, Grant: plan(t, p)})
		require.NoError(t, err, i)
	}
	require.Equal(t, []string{"1"}, queryStrings(t, db, `SELECT count(*) FROM jws_headers`))
	require.Equal(t, []string{".n-payload-501.n-sig"}, queryStrings(t, db,
		`SELECT '.' || jws FROM notifications WHERE notification_uuid = 'n501'`), "the row keeps only the rest")
	require.Equal(t, []string{header + ".n-payload-501.n-sig"}, queryStrings(t, db,
		`SELECT jws FROM notifications_signed WHERE notification_uuid = 'n501'`))
	require.Equal(t, []string{header + ".tx-payload-502.tx-sig"}, queryStrings(t, db,
		`SELECT jws FROM transactions_signed WHERE transaction_id = '502'`))

	// A newer signed version of a transaction replaces the old one whole.
	p := purchase("502", tokens.Token("alice"))
	p.SignedDate = p.SignedDate.Add(time.Minute)
	p.JWS = "other-signer.tx-payload-502b.sig"
	_, err := db.RecordNotification(context.Background(), Notification{UUID: "n502b", Type: "ONE_TIME_CHARGE",
		SignedDate: p.SignedDate, TransactionID: "502", JWS: "not-compact", Source: "webhook"},
		Effect{Purchase: &p, Grant: plan(t, p)})
	require.NoError(t, err)
	require.Equal(t, []string{"other-signer.tx-payload-502b.sig"}, queryStrings(t, db,
		`SELECT jws FROM transactions_signed WHERE transaction_id = '502'`))
	require.Equal(t, []string{"not-compact"}, queryStrings(t, db,
		`SELECT jws FROM notifications_signed WHERE notification_uuid = 'n502b'`), "what is not compact is kept whole")
	require.Equal(t, []string{"2"}, queryStrings(t, db, `SELECT count(*) FROM jws_headers`))
}

// Every shape of input reads back byte for byte, split or kept whole.
func TestJWSRoundTrip(t *testing.T) {
	db := openTest(t)
	_ = state(t, db, "alice")
	for i, jws := range []string{"", "abc", ".abc", ".", "..", "abc.", "a..b", "h.p.s", "\xff\xfe.x\xff", "a\x00b.c\x00d",
		strings.Repeat("h", 5000) + "." + strings.Repeat("p", 9000) + ".s"} {
		id := fmt.Sprintf("6%02d", i)
		p := purchase(id, tokens.Token("alice"))
		p.JWS = jws
		_, err := db.RecordNotification(context.Background(), Notification{UUID: "n" + id, Type: "ONE_TIME_CHARGE",
			SignedDate: p.SignedDate, TransactionID: id, JWS: jws, Source: "webhook"}, Effect{Purchase: &p, Grant: plan(t, p)})
		require.NoError(t, err, "%q", jws)
		var n, tx string
		require.NoError(t, db.read.QueryRow(`SELECT (SELECT jws FROM notifications_signed WHERE notification_uuid = ?),
			(SELECT jws FROM transactions_signed WHERE transaction_id = ?)`, "n"+id, id).Scan(&n, &tx))
		require.Equal(t, jws, n, "notification %q", jws)
		require.Equal(t, jws, tx, "transaction %q", jws)
	}
}

// An older binary's refresh, which writes a whole JWS and knows nothing of
// its header column, is refused instead of corrupting what the view says.
func TestOlderBinaryCannotCorruptSplitJWS(t *testing.T) {
	db := openTest(t)
	_ = state(t, db, "alice")
	p := purchase("700", tokens.Token("alice"))
	p.JWS = "hdr.payload.sig"
	webhook(t, db, "n700", p)
	_, err := writeExec(db, `INSERT INTO transaction_jws (transaction_id, jws) VALUES ('700', 'hdr.payload2.sig2')
		ON CONFLICT (transaction_id) DO UPDATE SET jws = excluded.jws`)
	require.ErrorContains(t, err, "older than migration 0008")
	require.Equal(t, []string{"hdr.payload.sig"}, queryStrings(t, db, `SELECT jws FROM transactions_signed WHERE transaction_id = '700'`))

	newer := p
	newer.SignedDate = p.SignedDate.Add(time.Minute)
	newer.JWS = "hdr.payload3.sig3"
	webhook(t, db, "n701", newer) // this binary's own refresh, same signer, still works
	require.Equal(t, []string{"hdr.payload3.sig3"}, queryStrings(t, db, `SELECT jws FROM transactions_signed WHERE transaction_id = '700'`))
}

// appleVectors is where the real Apple-signed documents are (shared/, beside
// the repository).
const appleVectors = "../../../shared/apple-vectors"

// A notification keeps the certificate chain inside its payload once
// (migration 0009): the row shrinks to what is its own, and the view
// gives back Apple's JWS byte for byte, for every real notification.
func TestNotificationInnerChainStoredOnce(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(appleVectors, "*notification*.jws"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "the Apple vectors are beside the repository")
	db := openTest(t)
	_ = state(t, db, "alice")
	for i, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		jws := strings.TrimSpace(string(b))
		inner := innerOf(t, jws)
		id := fmt.Sprintf("9%02d", i)
		p := purchase(id, tokens.Token("alice"))
		p.JWS = inner.Transaction
		var eff Effect // a TEST notification carries nothing
		switch {
		case inner.Renewal != "" && (i%2 == 1 || inner.Transaction == ""):
			eff = Effect{Renewal: &receipts.RenewalInfo{OriginalTransactionID: "r" + id, JWS: inner.Renewal}}
		case inner.Transaction != "":
			eff = Effect{Purchase: &p, Grant: plan(t, p)}
		}
		_, err = db.RecordNotification(context.Background(), Notification{UUID: "n" + id, Type: "ONE_TIME_CHARGE",
			SignedDate: p.SignedDate, TransactionID: id, JWS: jws, Source: "webhook"}, eff)
		require.NoError(t, err, f)
		require.Equal(t, []string{jws}, queryStrings(t, db, `SELECT jws FROM notifications_signed WHERE notification_uuid = ?`, "n"+id), f)
		var kept int
		require.NoError(t, db.read.QueryRow(`SELECT length(jws) FROM notifications WHERE notification_uuid = ?`, "n"+id).Scan(&kept))
		header, rest, _ := strings.Cut(jws, ".")
		if eff.innerJWS() == "" {
			require.Equal(t, len(rest), kept, "%s: nothing inside to store apart", filepath.Base(f))
			continue
		}
		require.Less(t, kept, len(rest)-4000, "%s: the chain in its payload is stored apart too (the outer header %d)",
			filepath.Base(f), len(header))
	}
	// One header and one run per alignment at most, however many were stored.
	var shared int
	require.NoError(t, db.read.QueryRow(`SELECT count(*) FROM jws_headers`).Scan(&shared))
	require.LessOrEqual(t, shared, 2+2*3, "outer and inner headers of two signers, three alignments of each run")
}

// innerOf is what a notification's payload carries.
func innerOf(t testing.TB, jws string) (data struct{ Transaction, Renewal string }) {
	t.Helper()
	parts := strings.Split(jws, ".")
	require.Len(t, parts, 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var p struct {
		Data struct {
			T string `json:"signedTransactionInfo"`
			R string `json:"signedRenewalInfo"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(raw, &p))
	data.Transaction, data.Renewal = p.Data.T, p.Data.R
	return data
}

// Whatever the notification and the document it carries hold, the view
// gives back the notification byte for byte: the run cut out is found by
// comparison, never assumed.
func TestNotificationInnerCutRoundTrip(t *testing.T) {
	db := openTest(t)
	_ = state(t, db, "alice")
	chain := base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat(`{"x5c":["MIIB..."]}`, 60)))
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	rng := rand.New(rand.NewPCG(5, 9))
	for i := range 200 {
		inner := chain[:len(chain)-rng.IntN(40)] + "." + enc(fmt.Sprint("tx", i)) + ".sig"
		// The payload holds inner after a prefix of any length (every alignment), or holds only part of it, or none.
		prefix := strings.Repeat("a", rng.IntN(7))
		body := `{"data":{"signedTransactionInfo":"` + inner + `"}}`
		switch i % 7 {
		case 3:
			body = `{"data":{"signedTransactionInfo":"` + inner[:300] + `"}}`
		case 4:
			body = `{"other":"` + prefix + `"}`
		}
		jws := enc(`{"alg":"ES256","x5c":["notification chain"]}`) + "." + enc(prefix+body) + ".sig" + fmt.Sprint(i)
		switch i % 7 { // the chain is there, but so is what no compact JWS holds: kept whole
		case 5:
			jws += "\x00tail"
		case 6:
			jws += "é"
		}
		id := fmt.Sprintf("8%03d", i)
		p := purchase(id, tokens.Token("alice"))
		p.JWS = inner
		_, err := db.RecordNotification(context.Background(), Notification{UUID: "n" + id, Type: "ONE_TIME_CHARGE",
			SignedDate: p.SignedDate, TransactionID: id, JWS: jws, Source: "webhook"}, Effect{Purchase: &p, Grant: plan(t, p)})
		require.NoError(t, err)
		require.Equal(t, []string{jws}, queryStrings(t, db, `SELECT jws FROM notifications_signed WHERE notification_uuid = ?`, "n"+id), i)
		want := map[bool]string{true: "cut", false: "whole"}[i%7 < 3]
		require.Equal(t, []string{want}, queryStrings(t, db, `SELECT CASE WHEN jws_inner IS NULL THEN 'whole' ELSE 'cut' END
			FROM notifications WHERE notification_uuid = ?`, "n"+id), "case %d: cut only when the payload holds the chain", i%7)
	}
}

// A notification stored under 0008 (its header apart, the rest whole) reads
// back unchanged through 0009's view.
func TestMigrationKeepsSplitNotificationReadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0008.db")
	oldDatabase(t, path, []string{"0001_ledger.sql", "0002_spends.sql", "0003_jobs.sql", "0004_consumption.sql",
		"0005_transaction_jws.sql", "0006_drop_decoded.sql", "0007_allowance_day_by_entry.sql", "0008_jws_headers.sql"},
		`INSERT INTO jws_headers VALUES (x'01', 'hdr');
		INSERT INTO notifications (notification_uuid, notification_type, signed_date, jws_header, jws, source, outcome, received_at)
			VALUES ('n1', 'ONE_TIME_CHARGE', 1, x'01', 'payload.sig', 'webhook', 'granted', 1),
			('n2', 'ONE_TIME_CHARGE', 1, NULL, 'whole.j.ws', 'webhook', 'granted', 1)`)
	db, err := Open(context.Background(), path)
	require.NoError(t, err)
	defer db.Close()
	require.Equal(t, []string{"hdr.payload.sig", "whole.j.ws"}, queryStrings(t, db,
		`SELECT jws FROM notifications_signed ORDER BY notification_uuid`))
	_, err = writeExec(db, `UPDATE notifications SET jws_inner = x'01' WHERE notification_uuid = 'n1'`)
	require.ErrorContains(t, err, "CHECK", "a run without its offset is refused")
}

// The readers are two for each of the runtime's Ps at start, whatever
// GOMAXPROCS is now: serve doubles it, and twice as many readers read
// slower (readerCount).
func TestReadersByCPUNotByGOMAXPROCS(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4 * startProcs))
	db := openTest(t)
	require.Equal(t, max(4, 2*startProcs), cap(db.readers.free))
}

// Ping answers while every reader is busy: it has the read pool's spare
// connection, so /readyz never queues behind the reads it reports on. Read
// through the readers, it timed out exactly when the service was busiest.
func TestPingWhileTheReadersAreBusy(t *testing.T) {
	db := openTest(t)
	var held []*stmtConn
	for range cap(db.readers.free) {
		held = append(held, <-db.readers.free)
	}
	defer func() {
		for _, c := range held {
			db.readers.free <- c
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	require.NoError(t, db.Ping(ctx))
}

// Pending names what Open would apply, without applying it: everything for
// a new file, nothing once Open has run, the rest for a database an older
// binary left.
func TestPending(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "p.db")
	all, err := Pending(ctx, path)
	require.NoError(t, err)
	require.Len(t, all, len(migrationList))
	require.Equal(t, "0001_ledger.sql", all[0])
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "nothing created")

	db, err := Open(ctx, path)
	require.NoError(t, err)
	none, err := Pending(ctx, path)
	require.NoError(t, err)
	require.Empty(t, none)
	last := migrationList[len(migrationList)-1]
	_, err = writeExec(db, `DELETE FROM schema_migrations WHERE name = ?`, last)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	rest, err := Pending(ctx, path)
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Base(last)}, rest)
}

// A database with every migration opens without the write lock: another
// process holding it (a jobs run's batch, a server's commit) does not make
// the start wait for it, let alone fail after the busy timeout.
func TestOpenUpToDateTakesNoWriteLock(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "l.db")
	db, err := Open(ctx, path)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	other, err := sql.Open("sqlite", dsn(path))
	require.NoError(t, err)
	defer other.Close()
	conn, err := other.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, `BEGIN IMMEDIATE`)
	require.NoError(t, err)
	defer conn.ExecContext(ctx, `ROLLBACK`)

	start := time.Now()
	db, err = Open(ctx, path)
	require.NoError(t, err)
	require.Less(t, time.Since(start), 5*time.Second, "not the 10 s busy timeout")
	require.NoError(t, db.Close())
}
