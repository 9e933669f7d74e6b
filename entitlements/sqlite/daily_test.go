package sqlite

import (
	"context"
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

// The allowance counters are keyed by day first, and that key is their only
// B-tree: a user's first allowance spend of a day writes one random page,
// not two. The lookup, the upsert and the prune each seek the key.
func TestAllowanceUsageKeyedByDayAlone(t *testing.T) {
	db := openTest(t)
	require.Equal(t, []string{"day", "user_id"},
		queryStrings(t, db, `SELECT name FROM pragma_table_info('allowance_usage') WHERE pk > 0 ORDER BY pk`))
	require.Equal(t, []string{"pk"}, queryStrings(t, db, `SELECT origin FROM pragma_index_list('allowance_usage')`),
		"no index besides the key")

	today := testNow.Format(time.DateOnly)
	for _, q := range []string{
		userRowSQL + ` FROM users u WHERE u.user_id = ?1`,
		`SELECT day, user_id FROM allowance_usage WHERE day < ?4 LIMIT 10`,
	} {
		plan := queryPlan(t, db, q, "alice", 0, entitlements.TierFree, today)
		require.Contains(t, plan, "allowance_usage USING PRIMARY KEY (day", plan)
		require.NotContains(t, plan, "SCAN allowance_usage", plan)
	}
}

// Counters written under the old key survive its migration to the new one,
// and go on counting.
func TestMigrationRekeysAllowanceUsage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	var before []string
	for _, n := range []string{"0001_ledger", "0002_spends", "0003_jobs", "0004_consumption", "0005_transaction_jws",
		"0006_drop_decoded", "0007_allowance_day_by_entry", "0008_jws_headers", "0009_notification_inner_header",
		"0010_subscription_user_index"} {
		before = append(before, n+".sql")
	}
	day := testNow.Format(time.DateOnly)
	oldDatabase(t, path, before, strings.NewReplacer("TODAY", day).Replace(`
		INSERT INTO users (user_id, app_account_token, created_at) VALUES ('alice', 'ta', 1), ('bob', 'tb', 1);
		INSERT INTO allowance_usage (user_id, day, used) VALUES ('alice', '2026-01-01', 7), ('alice', 'TODAY', 3),
			('bob', 'TODAY', 30);`))

	db, err := Open(context.Background(), path)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	db.Now = func() time.Time { return testNow }
	require.Equal(t, []string{"2026-01-01 alice 7", day + " alice 3", day + " bob 30"},
		queryStrings(t, db, `SELECT day || ' ' || user_id || ' ' || used FROM allowance_usage ORDER BY day, user_id`))
	require.Equal(t, int64(3), state(t, db, "alice").AllowanceUsed)
	spendFor(t, db, "alice", "sora", 2)
	require.Equal(t, int64(5), state(t, db, "alice").AllowanceUsed)

	// An older binary's statements, which name the columns the old way
	// round, still work on the new table.
	require.NoError(t, db.update(context.Background(), func(tx *Tx) error {
		_, err := tx.ExecContext(context.Background(), `INSERT INTO allowance_usage (user_id, day, used) VALUES (?, ?, ?)
			ON CONFLICT (user_id, day) DO UPDATE SET used = used + excluded.used`, "alice", day, 1)
		return err
	}))
	require.Equal(t, int64(6), state(t, db, "alice").AllowanceUsed)
}
