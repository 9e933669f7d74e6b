package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite", as the server uses

	"github.com/creditsd/creditsd/entitlements"
	store "github.com/creditsd/creditsd/entitlements/sqlite"
)

// seedPlan is what to put in the database before the server starts: users,
// and admin lots spread evenly over them, each with the admin_grant entry
// and the admin_grants row the server itself writes for a grant.
type seedPlan struct {
	users   int
	lots    int   // in all; user u gets lots [u*lots/users, (u+1)*lots/users)
	expired int   // how many of the lots expired a day ago with credits left
	credits int64 // granted per lot
	now     time.Time
	// together grants the expired lots first, in one block of ids and
	// ledger entries, as lots bought in the same days a year ago are;
	// otherwise they are spread evenly among the others: the sweep's worst
	// case. (The lots table keeps each user's lots together whatever the
	// order they were granted in: migration 0012.)
	together bool
	// byTime grants the lots in the order they were bought, lot i to user
	// i mod users, as a year of purchases by many users does: each user's
	// lot ids and ledger entries lie across their tables (and, before
	// migration 0012 clustered the lots by user, the lots too). Otherwise
	// user u's are lots [u*lots/users, (u+1)*lots/users), granted in turn:
	// a read's best case.
	byTime bool
}

// seedReport is how long seeding took, for the report and BENCHMARKS.md.
type seedReport struct {
	Users      int     `json:"users"`
	Lots       int     `json:"lots"`
	Expired    int     `json:"expired"`
	Together   bool    `json:"expired_together"`       // --expired-layout together
	ByTime     bool    `json:"lots_by_time,omitempty"` // --lot-order time
	Seconds    float64 `json:"seconds"`
	LotsPerSec float64 `json:"lots_per_second"`  // a lot is 3 rows: lot, entry, admin_grants
	Cached     bool    `json:"cached,omitempty"` // copied from --seed-cache; the figures are the original seeding's
	// Schema is the last migration the seed was made with. A cached seed
	// made before the tool recorded it has none.
	Schema string `json:"schema,omitempty"`
	// MigratedTo is, for a copy, the last migration it had when the server
	// started: the one of the tool's own checkout (migrate).
	MigratedTo string `json:"migrated_to,omitempty"`
}

// schemaText says which schema the seed was made with and, for a copy,
// which it was migrated to before the server started.
func (s seedReport) schemaText() string {
	made := "schema " + cmp.Or(s.Schema, "not recorded")
	switch {
	case !s.Cached:
		return made
	case s.MigratedTo == s.Schema:
		return "copied, " + made
	default:
		return fmt.Sprintf("copied, %s, migrated to %s", made, s.MigratedTo)
	}
}

// seedCommitEvery bounds a seeding transaction: big enough that commits
// cost nothing, small enough that the WAL stays a few hundred MB.
const seedCommitEvery = 100_000

// seedUserID names seeded user u; the fixed width keeps inserts in index
// order, which is what makes bulk loading fast.
func seedUserID(u int) string { return fmt.Sprintf("load-u%08d", u) }

func seedLotID(i int) string { return fmt.Sprintf("lot_seed%012d", i) }

// seed migrates the database with the server's own migrations, then bulk
// loads plan in big transactions of multi-row prepared inserts.
func seed(ctx context.Context, path string, plan seedPlan, progress io.Writer) (seedReport, error) {
	start := time.Now()
	migrated, err := store.Open(ctx, path) // creates the schema exactly as the server will
	if err != nil {
		return seedReport{}, err
	}
	if err := migrated.Close(); err != nil {
		return seedReport{}, err
	}
	db, err := sql.Open("sqlite", seedDSN(path))
	if err != nil {
		return seedReport{}, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one connection: the pragmas and the transactions share it
	s := &seeder{db: db, plan: plan, progress: progress, start: start}
	if err := s.run(ctx); err != nil {
		return seedReport{}, err
	}
	// Fold the WAL into the file, so the server does not start by
	// checkpointing gigabytes while it is being measured.
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return seedReport{}, err
	}
	schema, err := schemaOf(ctx, db)
	if err != nil {
		return seedReport{}, err
	}
	secs := time.Since(start).Seconds()
	return seedReport{Users: plan.users, Lots: plan.lots, Expired: plan.expired, Together: plan.together, ByTime: plan.byTime,
		Seconds: secs, LotsPerSec: float64(plan.lots) / secs, Schema: schema}, nil
}

// schemaOf is the last migration db has applied. A seed's schema moves how
// fast the server writes to it (a copy migrated past 0013 wrote 6–8 %
// slower than a seed made with it: BENCHMARKS.md, session 20), so the
// report says which it was.
func schemaOf(ctx context.Context, db *sql.DB) (string, error) {
	var name string
	err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(name), '') FROM schema_migrations`).Scan(&name)
	return strings.TrimSuffix(path.Base(name), ".sql"), err
}

// seedDSN trades durability for speed while seeding: nothing reads the file
// until seeding has finished and checkpointed, and a crash just means
// seeding again. Foreign keys are off: with them on, inserting a user makes
// SQLite look for its lots, and lots_user is a partial index it cannot use
// for that, so every user insert would scan the lots table. The rows are
// consistent by construction; the unit test runs PRAGMA foreign_key_check.
func seedDSN(path string) string {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(OFF)", "foreign_keys(0)",
		"cache_size(-524288)", "temp_store(MEMORY)"} {
		q.Add("_pragma", p)
	}
	return "file:" + path + "?" + q.Encode()
}

type seeder struct {
	db       *sql.DB
	plan     seedPlan
	progress io.Writer
	start    time.Time

	tx                     *sql.Tx
	lastEntry              int64 // the last entry_id when tx began: commit counts the entries after it
	users, lots, entries   *batchInsert
	grants                 *batchInsert
	sinceCommit, lotsSoFar int
}

func (s *seeder) run(ctx context.Context) error {
	tokens, err := entitlements.NewTokenDeriver(entitlements.DefaultTokenNamespace)
	if err != nil {
		return err
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	if s.plan.byTime {
		return s.runByTime(ctx, tokens)
	}
	for u := range s.plan.users {
		if err := s.addUser(ctx, tokens, u); err != nil {
			return err
		}
		if err := s.userLots(ctx, u, func(i int) bool { return !s.plan.together || expiredLot(s.plan, i) }); err != nil {
			return err
		}
	}
	if s.plan.together { // then every live lot, after the block of expired ones
		for u := range s.plan.users {
			if err := s.userLots(ctx, u, func(i int) bool { return !expiredLot(s.plan, i) }); err != nil {
				return err
			}
		}
	}
	return s.commit(ctx)
}

// runByTime inserts every user, then the lots in the order they were
// bought, lot i to user i mod users (with --expired-layout together, the
// expired ones first).
func (s *seeder) runByTime(ctx context.Context, tokens entitlements.TokenDeriver) error {
	for u := range s.plan.users {
		if err := s.addUser(ctx, tokens, u); err != nil {
			return err
		}
	}
	passes := []func(int) bool{func(int) bool { return true }}
	if s.plan.together {
		passes = []func(int) bool{func(i int) bool { return expiredLot(s.plan, i) }, func(i int) bool { return !expiredLot(s.plan, i) }}
	}
	for _, want := range passes {
		for i := range s.plan.lots {
			if !want(i) {
				continue
			}
			if err := s.lot(ctx, seedUserID(i%s.plan.users), i); err != nil {
				return err
			}
			if err := s.maybeCommit(ctx); err != nil {
				return err
			}
		}
	}
	return s.commit(ctx)
}

// addUser inserts seeded user u with its app account token.
func (s *seeder) addUser(ctx context.Context, tokens entitlements.TokenDeriver, u int) error {
	id := seedUserID(u)
	return s.users.add(ctx, id, tokens.Token(id), s.plan.now.UnixMilli())
}

// userLots inserts user u's lots that want picks.
func (s *seeder) userLots(ctx context.Context, u int, want func(int) bool) error {
	id := seedUserID(u)
	first, last := u*s.plan.lots/s.plan.users, (u+1)*s.plan.lots/s.plan.users
	for i := first; i < last; i++ {
		if !want(i) {
			continue
		}
		if err := s.lot(ctx, id, i); err != nil {
			return err
		}
	}
	return s.maybeCommit(ctx)
}

// lot inserts lot i of user, its admin_grant entry and its admin_grants row.
func (s *seeder) lot(ctx context.Context, user string, i int) error {
	p := s.plan
	grantedAt, expiresAt := lotTimes(p, i)
	lotID, key := seedLotID(i), fmt.Sprintf("seed-%d", i)
	if p.together {
		lotID = seedLotID(s.lotsSoFar) // ids in insertion order, as the server's time-led ids are
	}
	if err := s.lots.add(ctx, lotID, user, "admin", "", nil, "", p.credits, p.credits, grantedAt, expiresAt, grantedAt); err != nil {
		return err
	}
	if err := s.entries.add(ctx, user, "admin_grant", p.credits, lotID, "", "load test seed", "service:creditsd-load", key, "", grantedAt); err != nil {
		return err
	}
	s.sinceCommit++
	s.lotsSoFar++
	return s.grants.add(ctx, user, key, requestHash(key), lotID)
}

// lotTimes are lot i's granted_at and expires_at: expired lots (spread
// evenly, exactly plan.expired of them) ran out a day ago; the rest have a
// year to go.
func lotTimes(p seedPlan, i int) (grantedAt, expiresAt int64) {
	now := p.now.UnixMilli()
	const day = int64(24 * time.Hour / time.Millisecond)
	if expiredLot(p, i) {
		if p.together { // expiring in the order they sit, as lots bought in turn do
			return now - 400*day, now - 2*day + int64(i%3_600_000)
		}
		return now - 400*day, now - day - int64(i%3_600_000)
	}
	return now - day, now + 365*day
}

// expiredLot reports whether lot i is one of the plan's expired lots:
// exactly plan.expired of them, spread evenly among the users. By user,
// lot i is user i*users/lots's, and isExpired's evenly spaced lots are.
// By time, lot i is user i mod users's: picked by i alone, they fell on
// the same users whenever their spacing divided users (1M users, 10M lots,
// 1M expired: every lot of one user in ten, none of the rest's, and the
// sweep's walk met a tenth of the users' pages). So by time a lot is picked
// by its place among the users' lots laid out in turn, its rank among its
// user's turned by the user's number, so that the users' expired lots are
// not all bought at one time.
func expiredLot(p seedPlan, i int) bool {
	if !p.byTime || p.users <= 0 {
		return isExpired(p, i)
	}
	each, extra := p.lots/p.users, p.lots%p.users // users below extra have one lot more
	u, rank := i%p.users, i/p.users
	n := each
	if u < extra {
		n++
	}
	return isExpired(p, u*each+min(u, extra)+(rank+u)%n)
}

// isExpired picks exactly plan.expired of plan.lots, evenly spaced.
func isExpired(p seedPlan, i int) bool {
	if p.expired <= 0 || p.lots == 0 {
		return false
	}
	return (i*p.expired)/p.lots != ((i+1)*p.expired)/p.lots
}

// requestHash stands for the hash of the grant's body; no replay of a
// seeded key is ever sent, so its value only needs the right shape.
func requestHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func (s *seeder) begin(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	s.tx = tx
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(entry_id), 0) FROM entries`).Scan(&s.lastEntry); err != nil {
		return err
	}
	s.users = newBatchInsert(tx, "users", "user_id, app_account_token, created_at")
	s.lots = newBatchInsert(tx, "lots", "lot_id, user_id, source, product_id, transaction_id, environment, granted, remaining, granted_at, expires_at, created_at")
	s.entries = newBatchInsert(tx, "entries", "user_id, kind, credits, lot_id, product, reason, actor, ref, allowance_day, created_at")
	s.grants = newBatchInsert(tx, "admin_grants", "user_id, idempotency_key, request_hash, lot_id")
	return nil
}

func (s *seeder) maybeCommit(ctx context.Context) error {
	if s.sinceCommit < seedCommitEvery {
		return nil
	}
	if err := s.commit(ctx); err != nil {
		return err
	}
	if s.progress != nil {
		el := time.Since(s.start).Seconds()
		fmt.Fprintf(s.progress, "[seed] %4.0fs lots=%d/%d (%.0f lots/s)\n", el, s.lotsSoFar, s.plan.lots, float64(s.lotsSoFar)/el)
	}
	return s.begin(ctx)
}

// commit flushes the batches, counts their entries in ledger_totals, as
// the store's writer counts its own (the seed writes past it), and
// commits.
func (s *seeder) commit(ctx context.Context) error {
	for _, b := range []*batchInsert{s.users, s.lots, s.entries, s.grants} {
		if err := b.flush(ctx); err != nil {
			return err
		}
	}
	if err := store.AddTotals(ctx, s.tx, s.lastEntry); err != nil {
		return err
	}
	s.sinceCommit = 0
	return s.tx.Commit()
}

// batchInsert buffers rows and inserts them rowsPerStatement at a time with
// one prepared multi-row INSERT: per-statement overhead, not SQLite, is
// what limits a row-at-a-time load.
type batchInsert struct {
	tx      *sql.Tx
	table   string
	columns string
	ncols   int
	full    *sql.Stmt // prepared on first use
	pending []any
}

const rowsPerStatement = 200

func newBatchInsert(tx *sql.Tx, table, columns string) *batchInsert {
	return &batchInsert{tx: tx, table: table, columns: columns, ncols: strings.Count(columns, ",") + 1}
}

// add queues one row; a full batch is written at once.
func (b *batchInsert) add(ctx context.Context, values ...any) error {
	if len(values) != b.ncols {
		return fmt.Errorf("seed %s: %d values for %d columns", b.table, len(values), b.ncols)
	}
	b.pending = append(b.pending, values...)
	if len(b.pending) < rowsPerStatement*b.ncols {
		return nil
	}
	return b.flushFull(ctx)
}

func (b *batchInsert) flushFull(ctx context.Context) error {
	if b.full == nil {
		st, err := b.tx.PrepareContext(ctx, insertSQL(b.table, b.columns, b.ncols, rowsPerStatement))
		if err != nil {
			return err
		}
		b.full = st
	}
	if _, err := b.full.ExecContext(ctx, b.pending...); err != nil {
		return fmt.Errorf("seed %s: %w", b.table, err)
	}
	b.pending = b.pending[:0]
	return nil
}

// flush writes whatever is queued, a short last batch included.
func (b *batchInsert) flush(ctx context.Context) error {
	rows := len(b.pending) / b.ncols
	if rows == 0 {
		return nil
	}
	if _, err := b.tx.ExecContext(ctx, insertSQL(b.table, b.columns, b.ncols, rows), b.pending...); err != nil {
		return fmt.Errorf("seed %s: %w", b.table, err)
	}
	b.pending = b.pending[:0]
	return nil
}

// insertSQL is INSERT INTO table (columns) VALUES (?, …), … for rows rows.
func insertSQL(table, columns string, ncols, rows int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", ncols), ", ") + ")"
	return "INSERT INTO " + table + " (" + columns + ") VALUES " + strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
}
