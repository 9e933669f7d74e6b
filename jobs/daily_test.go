package jobs

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/entitlements/sqlite"
)

// allowanceDB is a database whose allowance days are in zone, on a clock
// the test sets, and a spend of alice's at a moment.
func allowanceDB(t *testing.T, zone string) (db *sqlite.DB, policy entitlements.AllowancePolicy, loc *time.Location,
	clock *atomic.Int64, spend func(at time.Time, key string, credits int64)) {
	loc, err := time.LoadLocation(zone)
	require.NoError(t, err)
	policy = entitlements.AllowancePolicy{Location: loc, Tiers: map[string]int64{"free": 30, "pro": 100}}
	db = openDB(t, tempDB(t))
	db.Policy.Allowance = policy
	clock = new(atomic.Int64)
	db.Now = func() time.Time { return time.UnixMilli(clock.Load()) }
	spend = func(at time.Time, key string, credits int64) {
		clock.Store(at.UnixMilli())
		_, _, _, err := db.Spend(context.Background(), entitlements.SpendRequest{UserID: "alice", Token: tokens.Token("alice"),
			Key: key, Hash: "h", Product: "sora", Credits: credits, Actor: "svc"})
		require.NoError(t, err)
	}
	return db, policy, loc, clock, spend
}

func TestDailyReset(t *testing.T) {
	ctx := context.Background()
	db, policy, ny, clock, spendCredits := allowanceDB(t, "America/New_York")
	today := time.Date(2026, 11, 25, 0, 0, 30, 0, ny) // just after the day boundary in New York
	spend := func(at time.Time, key string) { spendCredits(at, key, 2) }
	spend(today.AddDate(0, 0, -4), "d-4")
	spend(today.AddDate(0, 0, -3), "d-3")
	spend(today.Add(-time.Hour), "d-1") // 23:00:30 in New York, 04:00:30 UTC on the 25th
	spend(today, "d")
	clock.Store(today.UnixMilli())
	reset := DailyReset(db, policy, 3, DefaultKeepRunsDays)

	res, err := reset(ctx, today)
	require.NoError(t, err)
	require.Equal(t, Result{"days": 3, "pruned": 1, "runs_pruned": 0}, res, "days -3..-1 summarised; day -4's counter pruned")
	one := func(day string) []sqlite.AllowanceUse {
		return []sqlite.AllowanceUse{{Day: day, Tier: "free", Product: "sora", Users: 1, Credits: 2}}
	}
	for day, want := range map[string][]sqlite.AllowanceUse{
		"2026-11-22": one("2026-11-22"), "2026-11-23": nil, "2026-11-24": one("2026-11-24"), "2026-11-25": nil,
	} {
		got, err := db.AllowanceDaily(ctx, day)
		require.NoError(t, err)
		require.Equal(t, want, got, day)
	}

	res, err = reset(ctx, today.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, Result{"days": 2, "pruned": 0, "runs_pruned": 0}, res, "again: the last two days only, replaced")
	got, err := db.AllowanceDaily(ctx, "2026-11-24")
	require.NoError(t, err)
	require.Equal(t, one("2026-11-24"), got, "not doubled")

	res, err = reset(ctx, today.AddDate(0, 0, 1))
	require.NoError(t, err)
	require.Equal(t, Result{"days": 2, "pruned": 1, "runs_pruned": 0}, res, "the next day: -2 and -1 (today) again; -3's counter pruned")
	got, err = db.AllowanceDaily(ctx, "2026-11-25")
	require.NoError(t, err)
	require.Equal(t, one("2026-11-25"), got)
}

// A day whose midnight the clocks skip (America/Santiago, 6 Sep 2026) is
// summarised under its own key: stepping back from 7 Sep by 24 hours had
// landed in 5 Sep twice, and 6 Sep was never summarised.
func TestDailyResetOverASkippedMidnight(t *testing.T) {
	ctx := context.Background()
	db, policy, santiago, clock, spend := allowanceDB(t, "America/Santiago")
	for _, d := range []int{5, 6} { // a whole allowance each day: 6 Sep has its own
		spend(time.Date(2026, 9, d, 12, 0, 0, 0, santiago), fmt.Sprint("k", d), 30)
	}
	now := time.Date(2026, 9, 7, 0, 5, 0, 0, santiago)
	clock.Store(now.UnixMilli())
	res, err := DailyReset(db, policy, 3, DefaultKeepRunsDays)(ctx, now)
	require.NoError(t, err)
	require.Equal(t, int64(3), res["days"])
	for _, day := range []string{"2026-09-05", "2026-09-06"} {
		got, err := db.AllowanceDaily(ctx, day)
		require.NoError(t, err)
		require.Equal(t, []sqlite.AllowanceUse{{Day: day, Tier: "free", Product: "sora", Users: 1, Credits: 30}}, got, day)
	}
}

// The daily reset prunes the runs older than keepRunsDays that no run
// reads back: a job that runs every five minutes added 100,000 a year.
func TestDailyResetPrunesOldRuns(t *testing.T) {
	ctx := context.Background()
	db, policy, _, clock, _ := allowanceDB(t, "UTC")
	now := time.Date(2026, 11, 25, 0, 0, 30, 0, time.UTC)
	for i, age := range []int{40, 31, 29} { // days
		at := now.AddDate(0, 0, -age)
		clock.Store(at.UnixMilli())
		h := fmt.Sprint("h", i)
		id, err := db.ClaimJobRun(ctx, sqlite.JobClaim{Job: "sweep", Slot: at, Holder: h, TTL: time.Minute})
		require.NoError(t, err)
		require.NoError(t, db.FinishJobRun(ctx, sqlite.JobFinish{RunID: id, Job: "sweep", Holder: h, Outcome: "ok"}))
	}
	clock.Store(now.UnixMilli())
	res, err := DailyReset(db, policy, 3, 30)(ctx, now)
	require.NoError(t, err)
	require.Equal(t, int64(2), res["runs_pruned"], "the two older than 30 days")
	runs, err := db.JobRuns(ctx, "sweep", 10)
	require.NoError(t, err)
	require.Len(t, runs, 1)
	require.Equal(t, now.AddDate(0, 0, -29), runs[0].Slot)
}
