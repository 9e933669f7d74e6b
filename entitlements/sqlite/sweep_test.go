package sqlite

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
)

// grantLot gives user an admin lot of credits that expires at exp (nil:
// never), and says which.
func grantLot(t testing.TB, db *DB, user string, credits int64, exp *time.Time) string {
	t.Helper()
	lot, _, _, err := db.AdminGrant(context.Background(), entitlements.GrantRequest{UserID: user, Token: tokens.Token(user),
		Key: newID("key"), Hash: "h", Credits: credits, ExpiresAt: exp, Reason: "goodwill", Actor: "admin:test"})
	require.NoError(t, err)
	return lot.LotID
}

func at(t time.Time) *time.Time { return &t }

// remaining is a lot's remaining, checked against the sum of its entries.
func remaining(t testing.TB, db *DB, lotID string) int64 {
	t.Helper()
	var rem, sum int64
	require.NoError(t, db.read.QueryRow(`SELECT remaining, (SELECT SUM(credits) FROM entries WHERE lot_id = ?1)
		FROM lots WHERE lot_id = ?1`, lotID).Scan(&rem, &sum))
	require.Equal(t, sum, rem, "a lot's remaining is the sum of its entries")
	return rem
}

func countEntries(t testing.TB, db *DB, kind string) int {
	t.Helper()
	var n int
	require.NoError(t, db.read.QueryRow(`SELECT count(*) FROM entries WHERE kind = ?`, kind).Scan(&n))
	return n
}

func TestExpireLots(t *testing.T) {
	ctx := context.Background()
	t.Run("OK: expired lots with credits left are written off, once", func(t *testing.T) {
		db := openTest(t)
		c := newClock(db, testNow.Add(-48*time.Hour))
		expired := grantLot(t, db, "alice", 10, at(testNow.Add(-time.Hour)))
		_, err := claim(t, db, "alice", purchase("200", tokens.Token("alice"))) // a pack, bought an hour before testNow
		require.NoError(t, err)
		_, _, _, err = db.Spend(ctx, entitlements.SpendRequest{UserID: "alice", Token: tokens.Token("alice"), Key: "s1",
			Hash: "h", Product: "sora", Credits: 34, Actor: "svc"}) // 30 allowance, then 4 from the soonest-expiring lot
		require.NoError(t, err)
		edge := grantLot(t, db, "bob", 5, at(testNow))
		live := grantLot(t, db, "bob", 7, at(testNow.Add(time.Millisecond)))
		forever := grantLot(t, db, "bob", 3, nil)

		c.set(testNow.AddDate(1, 0, 0)) // the pack too has expired by now
		got, err := db.ExpireLots(ctx, testNow, 500, "job:expiry-sweep")
		require.NoError(t, err)
		require.Positive(t, got.Held, "the batch says how long it held the writer")
		got.Held = 0
		require.Equal(t, Expired{Lots: 2, Credits: 6 + 5}, got, "asOf, not the clock, says what has expired")
		require.Equal(t, int64(0), remaining(t, db, expired))
		require.Equal(t, int64(0), remaining(t, db, edge), "expires_at == now has expired")
		require.Equal(t, int64(7), remaining(t, db, live))
		require.Equal(t, int64(3), remaining(t, db, forever))

		var e entitlements.Entry
		var lotID string
		require.NoError(t, db.read.QueryRow(`SELECT credits, lot_id, reason, actor FROM entries WHERE kind = 'expire'
			AND user_id = 'alice'`).Scan(&e.Credits, &lotID, &e.Reason, &e.Actor))
		require.Equal(t, entitlements.Entry{Credits: -6, Reason: "expired", Actor: "job:expiry-sweep"}, e)
		require.Equal(t, expired, lotID)

		again, err := db.ExpireLots(ctx, testNow, 500, "job:expiry-sweep")
		require.NoError(t, err)
		require.Equal(t, int64(0), again.Lots, "a second sweep changes nothing")
		require.Equal(t, 2, countEntries(t, db, "expire"))

		got, err = db.ExpireLots(ctx, c.now(), 500, "job:expiry-sweep")
		require.NoError(t, err)
		require.Equal(t, Expired{Lots: 2, Credits: 10 + 7}, withoutHeld(got), "the pack (12 months) and bob's later lot")
	})
	t.Run("asOf ahead of the clock expires nothing early", func(t *testing.T) {
		db := openTest(t)
		newClock(db, testNow.Add(-time.Hour))
		lot := grantLot(t, db, "alice", 10, at(testNow.Add(time.Hour)))
		got, err := db.ExpireLots(ctx, testNow.AddDate(1, 0, 0), 500, "job:expiry-sweep")
		require.NoError(t, err)
		require.Equal(t, Expired{}, withoutHeld(got))
		require.Equal(t, int64(10), remaining(t, db, lot))
	})
	t.Run("batches: at most limit lots per transaction", func(t *testing.T) {
		db := openTest(t)
		newClock(db, testNow.Add(-48*time.Hour))
		for i := range 7 {
			grantLot(t, db, fmt.Sprintf("u%d", i), int64(i+1), at(testNow.Add(-time.Duration(i)*time.Minute)))
		}
		db.Now = func() time.Time { return testNow }
		var sizes []int64
		for range 4 {
			got, err := db.ExpireLots(ctx, testNow, 3, "job:expiry-sweep")
			require.NoError(t, err)
			sizes = append(sizes, got.Lots)
		}
		require.Equal(t, []int64{3, 3, 1, 0}, sizes)
		require.Equal(t, 7, countEntries(t, db, "expire"))
	})
	t.Run("the sweep reads the partial index lots_expiry", func(t *testing.T) {
		db := openTest(t)
		plan := queryPlan(t, db, `SELECT lot_id, user_id, product_id, remaining FROM lots
			WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at LIMIT ?`, 0, 1)
		require.Contains(t, plan, "lots_expiry")
	})
}

// queryPlan is SQLite's plan for query, one step a line.
func queryPlan(t *testing.T, db *DB, query string, args ...any) string {
	t.Helper()
	rows, err := db.read.Query("EXPLAIN QUERY PLAN "+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	return strings.Join(plan, "\n")
}

// withoutHeld is e without its timing, for comparing what it expired.
func withoutHeld(e Expired) Expired {
	e.Held = 0
	return e
}
