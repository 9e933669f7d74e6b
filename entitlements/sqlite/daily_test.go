package sqlite

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
)

func spendFor(t testing.TB, db *DB, user, product string, credits int64) string {
	t.Helper()
	sp, _, _, err := db.Spend(context.Background(), entitlements.SpendRequest{UserID: user, Token: tokens.Token(user),
		Key: newID("key"), Hash: "h", Product: product, Credits: credits, Actor: "svc"})
	require.NoError(t, err)
	return sp.SpendID
}

func reverse(t testing.TB, db *DB, user, spendID string) {
	t.Helper()
	_, _, _, err := db.Reverse(context.Background(), user, tokens.Token(user), spendID, "svc")
	require.NoError(t, err)
}

func TestSummariseAllowanceDay(t *testing.T) {
	ctx := context.Background()
	day := testNow.Format(time.DateOnly)
	db := openTest(t)
	c := newClock(db, testNow)
	_, err := db.SetTier(ctx, "bob", tokens.Token("bob"), entitlements.TierPro, nil, "web", "admin:test")
	require.NoError(t, err)
	grantLot(t, db, "dave", 20, nil)

	spendFor(t, db, "alice", "sora", 5)
	spendFor(t, db, "alice", "codex", 3)
	reverse(t, db, "alice", spendFor(t, db, "alice", "sora", 4)) // same day: back to the allowance
	spendFor(t, db, "bob", "sora", 10)
	reverse(t, db, "carol", spendFor(t, db, "carol", "sora", 2)) // nets to nothing
	spendFor(t, db, "dave", "sora", 40)                          // 30 from the allowance, 10 from the lot
	c.add(24 * time.Hour)
	spendFor(t, db, "alice", "sora", 7) // the next day

	want := []AllowanceUse{
		{Day: day, Tier: "free", Product: "codex", Users: 1, Credits: 3},
		{Day: day, Tier: "free", Product: "sora", Users: 2, Credits: 5 + 30},
		{Day: day, Tier: "pro", Product: "sora", Users: 1, Credits: 10},
	}
	t.Run("OK: per tier and product, net of reversals, allowance only", func(t *testing.T) {
		got, err := db.SummariseAllowanceDay(ctx, day)
		require.NoError(t, err)
		require.Equal(t, want, got)
		stored, err := db.AllowanceDaily(ctx, day)
		require.NoError(t, err)
		require.Equal(t, want, stored)
	})
	t.Run("running it again replaces the day's rows", func(t *testing.T) {
		_, err := db.SummariseAllowanceDay(ctx, day)
		require.NoError(t, err)
		stored, err := db.AllowanceDaily(ctx, day)
		require.NoError(t, err)
		require.Equal(t, want, stored, "not doubled")

		c.set(testNow) // a spend that committed late for the day
		spendFor(t, db, "alice", "sora", 1)
		_, err = db.SummariseAllowanceDay(ctx, day)
		require.NoError(t, err)
		stored, err = db.AllowanceDaily(ctx, day)
		require.NoError(t, err)
		require.Equal(t, int64(36), stored[1].Credits)
	})
	t.Run("summarised days are remembered", func(t *testing.T) {
		done, err := db.SummarisedAllowanceDays(ctx, "2026-11-01", "2026-11-30")
		require.NoError(t, err)
		require.Equal(t, map[string]bool{day: true}, done)
	})
}

// Allowance entries are indexed by day and entry id, so each spend appends
// to the index's hot end, and the daily reset still finds a day's entries
// through it.
func TestAllowanceDayIndexAppends(t *testing.T) {
	db := openTest(t)
	cols := queryStrings(t, db, `SELECT name FROM pragma_index_info('entries_allowance_day') ORDER BY seqno`)
	require.Equal(t, []string{"allowance_day", "entry_id"}, cols)
	require.Contains(t, queryPlan(t, db, allowanceUseQuery, "2026-11-25"), "entries_allowance_day")
}

func TestPruneAllowanceUsage(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	c := newClock(db, testNow.AddDate(0, 0, -3))
	for range 4 { // days D-3 .. D
		spendFor(t, db, "alice", "sora", 1)
		spendFor(t, db, "bob", "sora", 1)
		c.add(24 * time.Hour)
	}
	keep := testNow.AddDate(0, 0, -1).Format(time.DateOnly)
	var pruned []int64
	for range 3 {
		n, err := db.PruneAllowanceUsage(ctx, keep, 3)
		require.NoError(t, err)
		pruned = append(pruned, n)
	}
	require.Equal(t, []int64{3, 1, 0}, pruned, "two days of two users, three at a time")
	days := queryStrings(t, db, `SELECT DISTINCT day FROM allowance_usage ORDER BY day`)
	require.Equal(t, []string{keep, testNow.Format(time.DateOnly)}, days)
}

// requireAllowanceUsageKeyedByDay checks that the allowance counters are
// keyed by day first, with no other B-tree, and keep their constraints.
func requireAllowanceUsageKeyedByDay(t *testing.T, db *DB) {
	t.Helper()
	require.Equal(t, []string{"day", "user_id"},
		queryStrings(t, db, `SELECT name FROM pragma_table_info('allowance_usage') WHERE pk > 0 ORDER BY pk`))
	require.Equal(t, []string{"pk"}, queryStrings(t, db, `SELECT origin FROM pragma_index_list('allowance_usage')`),
		"no index besides the key")
	require.Equal(t, []string{"users"}, queryStrings(t, db, `SELECT "table" FROM pragma_foreign_key_list('allowance_usage')`))
	schema := queryStrings(t, db, `SELECT sql FROM sqlite_schema WHERE name = 'allowance_usage'`)
	require.Len(t, schema, 1)
	require.Contains(t, schema[0], "STRICT, WITHOUT ROWID")
	require.Contains(t, schema[0], "CHECK (used >= 0)")
}

// The allowance counters are keyed by day first, and that key is their only
// B-tree: a user's first allowance spend of a day writes one random page,
// not two. The state's lookup and the prune each seek the key.
func TestAllowanceUsageKeyedByDayAlone(t *testing.T) {
	db := openTest(t)
	requireAllowanceUsageKeyedByDay(t, db)

	today := testNow.Format(time.DateOnly)
	for q, args := range map[string][]any{
		userRowSQL + ` FROM users u WHERE u.user_id = ?1`: {"alice", 0, entitlements.TierFree, today},
		pruneAllowanceSQL: {today, 10},
	} {
		plan := queryPlan(t, db, q, args...)
		require.Contains(t, plan, "allowance_usage USING PRIMARY KEY (day", plan)
		require.NotContains(t, plan, "SCAN allowance_usage", plan)
	}
}

// Counters written under the old key survive its migration to the new one,
// keep their constraints, and go on counting. An older binary's statements,
// which name the key's columns the other way round, still work on them.
func TestMigrationRekeysAllowanceUsage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	all, err := fs.Glob(migrations, "migrations/*.sql")
	require.NoError(t, err)
	var before []string
	for _, name := range all {
		if name = strings.TrimPrefix(name, "migrations/"); name < "0011" {
			before = append(before, name)
		}
	}
	require.Len(t, before, 10)
	day := testNow.Format(time.DateOnly)
	oldDatabase(t, path, before, strings.NewReplacer("TODAY", day).Replace(`
		INSERT INTO users (user_id, app_account_token, created_at) VALUES ('alice', 'ta', 1), ('bob', 'tb', 1);
		INSERT INTO allowance_usage (user_id, day, used) VALUES ('alice', '2026-01-01', 7), ('alice', 'TODAY', 3),
			('bob', 'TODAY', 30);`))

	db, err := Open(context.Background(), path)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	db.Now = func() time.Time { return testNow }
	requireAllowanceUsageKeyedByDay(t, db)
	counters := func() []string {
		return queryStrings(t, db, `SELECT day || ' ' || user_id || ' ' || used FROM allowance_usage ORDER BY day, user_id`)
	}
	require.Equal(t, []string{"2026-01-01 alice 7", day + " alice 3", day + " bob 30"}, counters())
	require.Equal(t, int64(3), state(t, db, "alice").AllowanceUsed)
	spendFor(t, db, "alice", "sora", 2)
	require.Equal(t, int64(5), state(t, db, "alice").AllowanceUsed)

	exec := func(query string, args ...any) error {
		return db.update(context.Background(), func(tx *Tx) error {
			_, err := tx.ExecContext(context.Background(), query, args...)
			return err
		})
	}
	require.Error(t, exec(`INSERT INTO allowance_usage (day, user_id, used) VALUES (?, 'bob', -1)`, "2026-01-02"),
		"CHECK (used >= 0)")
	require.Error(t, exec(`INSERT INTO allowance_usage (day, user_id, used) VALUES (?, 'nobody', 1)`, day),
		"the foreign key to users")

	// 949cb0b's upsert, reversal and prune, as it wrote them.
	require.NoError(t, exec(`INSERT INTO allowance_usage (user_id, day, used) VALUES (?, ?, ?)
		ON CONFLICT (user_id, day) DO UPDATE SET used = used + excluded.used`, "alice", day, 4))
	require.NoError(t, exec(`UPDATE allowance_usage SET used = used - ? WHERE user_id = ? AND day = ?`, 3, "alice", day))
	require.NoError(t, exec(`DELETE FROM allowance_usage WHERE (user_id, day) IN
		(SELECT user_id, day FROM allowance_usage WHERE day < ? LIMIT ?)`, day, 10))
	require.Equal(t, []string{day + " alice 6", day + " bob 30"}, counters())
}
