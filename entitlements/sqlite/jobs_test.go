package sqlite

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// clock is a test clock the writer goroutine may read while a test moves it.
type clock struct{ ms atomic.Int64 }

func newClock(db *DB, t time.Time) *clock {
	c := &clock{}
	c.set(t)
	db.Now = c.now
	return c
}

func (c *clock) now() time.Time      { return time.UnixMilli(c.ms.Load()).UTC() }
func (c *clock) set(t time.Time)     { c.ms.Store(t.UnixMilli()) }
func (c *clock) add(d time.Duration) { c.set(c.now().Add(d)) }
func claimOf(holder string) JobClaim {
	return JobClaim{Job: "sweep", Slot: testNow, Holder: holder, TTL: time.Minute}
}
func finishOf(id int64, h string) JobFinish {
	return JobFinish{RunID: id, Job: "sweep", Holder: h, Outcome: "ok", Counts: map[string]int64{"lots": 2}}
}

func TestClaimJobRun(t *testing.T) {
	ctx := context.Background()
	t.Run("OK: a run holds the lease until it finishes, then its slot is done", func(t *testing.T) {
		db := openTest(t)
		id, err := db.ClaimJobRun(ctx, claimOf("a"))
		require.NoError(t, err)
		_, err = db.ClaimJobRun(ctx, claimOf("b"))
		var held *LeaseHeldError
		require.ErrorAs(t, err, &held, "a second run waits for the lease")
		require.Equal(t, "a", held.Holder)
		require.NoError(t, db.FinishJobRun(ctx, finishOf(id, "a")))

		_, err = db.ClaimJobRun(ctx, claimOf("b"))
		require.ErrorIs(t, err, ErrSlotDone, "a scheduled slot runs once")
		manual := claimOf("c")
		manual.Manual = true
		_, err = db.ClaimJobRun(ctx, manual)
		require.NoError(t, err, "a manual run does not use up the slot, nor is it stopped by it")

		runs, err := db.JobRuns(ctx, "sweep", 10)
		require.NoError(t, err)
		require.Len(t, runs, 2)
		require.Equal(t, "running", runs[0].Outcome)
		require.True(t, runs[0].Manual)
		require.Equal(t, "ok", runs[1].Outcome)
		require.Equal(t, map[string]int64{"lots": 2}, runs[1].Counts)
		require.Equal(t, testNow, runs[1].Slot)
		require.NotNil(t, runs[1].FinishedAt)
	})
	t.Run("ErrSlotDone takes no lease", func(t *testing.T) {
		db := openTest(t)
		id, err := db.ClaimJobRun(ctx, claimOf("a"))
		require.NoError(t, err)
		require.NoError(t, db.FinishJobRun(ctx, finishOf(id, "a")))
		_, err = db.ClaimJobRun(ctx, claimOf("b"))
		require.ErrorIs(t, err, ErrSlotDone)
		next := claimOf("c")
		next.Slot = testNow.Add(time.Hour)
		_, err = db.ClaimJobRun(ctx, next)
		require.NoError(t, err, "b's refused claim left the lease free")
	})
	t.Run("an expired lease is taken over; the dead run is abandoned and its slot retried", func(t *testing.T) {
		db := openTest(t)
		c := newClock(db, testNow)
		dead, err := db.ClaimJobRun(ctx, claimOf("a"))
		require.NoError(t, err)
		c.add(59 * time.Second)
		_, err = db.ClaimJobRun(ctx, claimOf("b"))
		require.ErrorAs(t, err, new(*LeaseHeldError), "not before the lease expires")
		c.add(time.Second)
		id, err := db.ClaimJobRun(ctx, claimOf("b"))
		require.NoError(t, err, "the same slot runs again: it never finished")
		require.ErrorIs(t, db.FinishJobRun(ctx, finishOf(dead, "a")), ErrLeaseLost)
		require.ErrorIs(t, db.RenewJobLease(ctx, "sweep", "a", time.Minute), ErrLeaseLost)
		require.NoError(t, db.FinishJobRun(ctx, finishOf(id, "b")))
		runs, err := db.JobRuns(ctx, "sweep", 10)
		require.NoError(t, err)
		require.Equal(t, []string{"ok", "abandoned"}, []string{runs[0].Outcome, runs[1].Outcome})
	})
	t.Run("renewing keeps the lease past its first expiry", func(t *testing.T) {
		db := openTest(t)
		c := newClock(db, testNow)
		_, err := db.ClaimJobRun(ctx, claimOf("a"))
		require.NoError(t, err)
		c.add(50 * time.Second)
		require.NoError(t, db.RenewJobLease(ctx, "sweep", "a", time.Minute))
		c.add(50 * time.Second)
		_, err = db.ClaimJobRun(ctx, claimOf("b"))
		require.ErrorAs(t, err, new(*LeaseHeldError))
	})
	t.Run("an interrupted run leaves its slot to run again", func(t *testing.T) {
		db := openTest(t)
		id, err := db.ClaimJobRun(ctx, claimOf("a"))
		require.NoError(t, err)
		f := finishOf(id, "a")
		f.Outcome, f.Error = "interrupted", "context canceled"
		require.NoError(t, db.FinishJobRun(ctx, f))
		_, err = db.ClaimJobRun(ctx, claimOf("b"))
		require.NoError(t, err)
	})
	t.Run("leases are per job", func(t *testing.T) {
		db := openTest(t)
		_, err := db.ClaimJobRun(ctx, claimOf("a"))
		require.NoError(t, err)
		other := claimOf("b")
		other.Job = "daily"
		_, err = db.ClaimJobRun(ctx, other)
		require.NoError(t, err)
	})
}

// A job reads back the newest mark its runs recorded in their counts,
// whatever their outcome and however it compares with older ones, and
// nothing when none recorded it.
func TestLatestJobCount(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	_, found, err := db.LatestJobCount(ctx, "reconcile", "sandbox_through_ms")
	require.NoError(t, err)
	require.False(t, found, "no runs yet")

	runs := 0
	finish := func(job, outcome string, counts map[string]int64) {
		t.Helper()
		runs++
		h := fmt.Sprintf("holder-%d", runs)
		id, err := db.ClaimJobRun(ctx, JobClaim{Job: job, Slot: testNow, Manual: true, Holder: h, TTL: time.Minute})
		require.NoError(t, err)
		require.NoError(t, db.FinishJobRun(ctx, JobFinish{RunID: id, Job: job, Holder: h, Outcome: outcome, Counts: counts}))
	}
	finish("reconcile", "ok", map[string]int64{"seen": 1, "sandbox_through_ms": 3000, "production_through_ms": 9000})
	finish("reconcile", "failed", map[string]int64{"seen": 1, "sandbox_through_ms": 5000})
	finish("reconcile", "failed", map[string]int64{"seen": 0})
	finish("reconcile", "ok", map[string]int64{"sandbox_through_ms": 4000}) // newer, if smaller (a clock put right)
	finish("other", "ok", map[string]int64{"sandbox_through_ms": 8000})
	_, err = db.ClaimJobRun(ctx, JobClaim{Job: "reconcile", Slot: testNow, Manual: true, Holder: "running", TTL: time.Minute})
	require.NoError(t, err, "a run still going has recorded nothing")

	for key, want := range map[string]int64{"sandbox_through_ms": 4000, "production_through_ms": 9000} {
		v, found, err := db.LatestJobCount(ctx, "reconcile", key)
		require.NoError(t, err)
		require.True(t, found, key)
		require.Equal(t, want, v, key)
	}
	_, found, err = db.LatestJobCount(ctx, "reconcile", "nothing_ms")
	require.NoError(t, err)
	require.False(t, found)
	_, _, err = db.LatestJobCount(ctx, "reconcile", "a.b")
	require.Error(t, err, "a key is never a JSON path")
}

// Old runs are pruned, but never what a later run reads back: each job's
// newest run, its newest scheduled run and the run that used up its latest
// slot (the catch-up at start asks about it), and the newest to give each
// count key (reconcile's marks).
func TestPruneJobRuns(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	clk := newClock(db, testNow.AddDate(0, 0, -200))
	runs := 0
	run := func(job string, scheduled bool, counts map[string]int64) {
		t.Helper()
		runs++
		h := fmt.Sprintf("holder-%d", runs)
		id, err := db.ClaimJobRun(ctx, JobClaim{Job: job, Slot: clk.now(), Manual: !scheduled, Holder: h, TTL: time.Minute})
		require.NoError(t, err)
		require.NoError(t, db.FinishJobRun(ctx, JobFinish{RunID: id, Job: job, Holder: h, Outcome: "ok", Counts: counts}))
		clk.add(24 * time.Hour)
	}
	run("reconcile", true, map[string]int64{"production_through_ms": 1}) // the newest to give it: kept
	run("reconcile", true, map[string]int64{"sandbox_through_ms": 1})
	run("reconcile", true, map[string]int64{"sandbox_through_ms": 2}) // kept
	for range 5 {
		run("reconcile", true, map[string]int64{"seen": 0})
	}
	run("reconcile", true, map[string]int64{"seen": 3}) // the newest scheduled: kept
	run("reconcile", false, nil)                        // the newest: kept
	run("daily-reset", true, nil)                       // the job's only run: kept
	run("sweep", true, nil)
	// A schedule moved back: the newest scheduled run is not the one for
	// the latest slot, which the catch-up at start asks about. That slot
	// also holds a run whose process died, which left it to be retried.
	latest := clk.now().AddDate(0, 0, 3)
	for i, slot := range []time.Time{latest, latest, clk.now().AddDate(0, 0, 1)} {
		h := fmt.Sprint("export-", i)
		id, err := db.ClaimJobRun(ctx, JobClaim{Job: "export", Slot: slot, Holder: h, TTL: time.Minute})
		require.NoError(t, err)
		outcome := "ok"
		if i == 0 {
			outcome = "abandoned"
		}
		require.NoError(t, db.FinishJobRun(ctx, JobFinish{RunID: id, Job: "export", Holder: h, Outcome: outcome}))
	}
	clk.set(testNow)
	run("sweep", true, nil) // recent: kept

	_, err := db.PruneJobRuns(ctx, testNow.AddDate(0, 0, -90), 0)
	require.Error(t, err, "a batch of none would never end")
	n, err := db.PruneJobRuns(ctx, testNow.AddDate(0, 0, -90), 3) // in batches of 3
	require.NoError(t, err)
	require.Equal(t, int64(8), n, "the abandoned run too")
	n, err = db.PruneJobRuns(ctx, testNow.AddDate(0, 0, -90), 3)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, []string{
		"daily-reset ok {}", "export ok {}", "export ok {}", "reconcile ok {\"production_through_ms\":1}", "reconcile ok {\"sandbox_through_ms\":2}",
		"reconcile ok {\"seen\":3}", "reconcile ok {}", "sweep ok {}",
	}, queryStrings(t, db, `SELECT job || ' ' || outcome || ' ' || counts FROM job_runs ORDER BY job, run_id`))
	for key, want := range map[string]int64{"production_through_ms": 1, "sandbox_through_ms": 2} {
		v, _, err := db.LatestJobCount(ctx, "reconcile", key)
		require.NoError(t, err)
		require.Equal(t, want, v, key)
	}
}

// /metrics reads each job's newest run and newest success at every
// scrape: both walk the job's index from its newest run, with no sort of
// all its runs.
func TestJobRunQueriesWalkTheIndex(t *testing.T) {
	db := openTest(t)
	for q, args := range map[string][]any{jobRunsSQL: {"reconcile", 1}, lastSuccessSQL: {"reconcile"}} {
		plan := queryPlan(t, db, q, args...)
		require.Contains(t, plan, "job_runs_recent", q)
		require.NotContains(t, plan, "TEMP B-TREE", q)
	}
}
