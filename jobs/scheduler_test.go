package jobs

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// startScheduler starts jobs on db as of now and waits for the catch-up.
func startScheduler(t testing.TB, r *Runner, now time.Time, jobs ...Job) *Scheduler {
	t.Helper()
	r.Now = func() time.Time { return now }
	s := NewScheduler(r, jobs)
	s.Start(context.Background())
	t.Cleanup(s.Stop)
	return s
}

func TestSchedulerCatchUp(t *testing.T) {
	path := tempDB(t)
	var ran atomic.Int32
	var nows []time.Time
	job := Job{Name: "sweep", Schedule: mustSchedule(t, "15 3 * * *", time.UTC), Enabled: true,
		Run: func(_ context.Context, now time.Time) (Result, error) {
			ran.Add(1)
			nows = append(nows, now)
			return nil, nil
		}}
	noon := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

	s := startScheduler(t, newRunner(openDB(t, path), "a", nil), noon, job)
	s.wg.Wait()
	require.Equal(t, int32(1), ran.Load(), "a slot missed before the first start runs once at start")
	require.Equal(t, []time.Time{noon}, nows, "with the run's own now")
	s.Stop()

	s = startScheduler(t, newRunner(openDB(t, path), "b", nil), noon.Add(time.Hour), job)
	s.wg.Wait()
	require.Equal(t, int32(1), ran.Load(), "a restart does not run it again")
	s.Stop()

	db := openDB(t, path)
	s = startScheduler(t, newRunner(db, "c", nil), noon.AddDate(0, 0, 3), job)
	s.wg.Wait()
	require.Equal(t, int32(2), ran.Load(), "three missed slots: only the latest runs")
	got := runs(t, db, "sweep")
	require.Len(t, got, 2)
	require.Equal(t, time.Date(2026, 11, 28, 3, 15, 0, 0, time.UTC), got[0].Slot)
	require.Equal(t, time.Date(2026, 11, 25, 3, 15, 0, 0, time.UTC), got[1].Slot)
	require.False(t, got[0].Manual)
}

func TestSchedulerStop(t *testing.T) {
	path := tempDB(t)
	started := make(chan struct{}, 1)
	var stopped atomic.Bool
	blocking := Job{Name: "sweep", Schedule: mustSchedule(t, "0 * * * *", time.UTC), Enabled: true,
		Run: func(ctx context.Context, _ time.Time) (Result, error) {
			started <- struct{}{}
			<-ctx.Done() // a batch boundary
			stopped.Store(true)
			return Result{"lots": 500}, ctx.Err()
		}}
	now := time.Date(2026, 11, 25, 12, 30, 0, 0, time.UTC)
	db := openDB(t, path)
	s := startScheduler(t, newRunner(db, "a", nil), now, blocking)
	<-started
	s.Stop()
	require.True(t, stopped.Load(), "Stop waits for the running job, which its context ended")
	got := runs(t, db, "sweep")
	require.Len(t, got, 1)
	require.Equal(t, "interrupted", got[0].Outcome)
	require.Equal(t, map[string]int64{"lots": 500}, got[0].Counts)

	var ran atomic.Int32
	again := blocking
	again.Run = func(context.Context, time.Time) (Result, error) { ran.Add(1); return nil, nil }
	s = startScheduler(t, newRunner(db, "b", nil), now, again)
	s.wg.Wait()
	require.Equal(t, int32(1), ran.Load(), "an interrupted slot runs again at the next start")
	require.Equal(t, "ok", runs(t, db, "sweep")[0].Outcome)
}

func TestSchedulerSurvivesPanicsAndSkipsDisabled(t *testing.T) {
	var logs logBuffer
	db := openDB(t, tempDB(t))
	hourly := mustSchedule(t, "0 * * * *", time.UTC)
	var disabledRan atomic.Bool
	s := startScheduler(t, newRunner(db, "a", &logs), time.Date(2026, 11, 25, 12, 30, 0, 0, time.UTC),
		Job{Name: "boom", Schedule: hourly, Enabled: true, Run: func(context.Context, time.Time) (Result, error) { panic("boom") }},
		Job{Name: "reconcile", Schedule: hourly, Enabled: true, Run: NotConfigured("app_store_api")},
		Job{Name: "off", Schedule: hourly, Enabled: false, Run: func(context.Context, time.Time) (Result, error) {
			disabledRan.Store(true)
			return nil, nil
		}},
	)
	s.wg.Wait()
	require.Equal(t, "panicked", runs(t, db, "boom")[0].Outcome)
	require.Equal(t, "skipped", runs(t, db, "reconcile")[0].Outcome)
	require.Contains(t, logs.String(), "skipped: app_store_api is not configured")
	require.Empty(t, runs(t, db, "off"))
	require.False(t, disabledRan.Load())
}
