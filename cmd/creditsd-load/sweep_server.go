package main

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/creditsd/creditsd/jobs"
)

// serverStartMargin is how long a restart may take before the scheduled
// sweep is due; the slot is picked before the server starts.
const serverStartMargin = 10 * time.Second

// sweepPoll is how often the scenario reads job_runs while it waits for
// the server's sweep: often enough for its end to be seen within a tenth
// of a second, and a read transaction too short to hold up the writer.
const sweepPoll = 100 * time.Millisecond

// scheduleSweep restarts the server with the expiry sweep on its schedule,
// due at the first whole minute that leaves the restart and the warm-up,
// and returns that slot. The schedule is 5-field cron, so minutes are the
// finest it can name.
func (e *env) scheduleSweep(ctx context.Context) (time.Time, error) {
	if err := e.stop(); err != nil {
		return time.Time{}, err
	}
	slot := sweepSlot(time.Now(), e.opts.sweepWarmup+serverStartMargin)
	spec := dailyAt(slot)
	sched, err := jobs.ParseSchedule(spec, time.UTC)
	if err != nil {
		return time.Time{}, err
	}
	if err := rewriteConfig(e.files, e.opts.logLevel, spec); err != nil {
		return time.Time{}, err
	}
	if err := markPrevSlotRun(ctx, e.files.Database, sched, slot); err != nil {
		return time.Time{}, fmt.Errorf("recording the sweep's previous slot: %w", err)
	}
	if err := e.start(); err != nil {
		return time.Time{}, err
	}
	fmt.Fprintf(e.stderr, "[sweep] the server sweeps at %s (schedule %q), in %.0fs\n",
		slot.Format(time.TimeOnly), spec, time.Until(slot).Seconds())
	return slot, nil
}

// sweepSlot is the first whole minute, in UTC, at least lead after now.
func sweepSlot(now time.Time, lead time.Duration) time.Time {
	at := now.Add(lead).UTC()
	slot := at.Truncate(time.Minute)
	if slot.Before(at) {
		slot = slot.Add(time.Minute)
	}
	return slot
}

// dailyAt is the cron spec that fires every day at slot's hour and minute
// in UTC: the shape of the production default, "15 3 * * *".
func dailyAt(slot time.Time) string {
	slot = slot.UTC()
	return fmt.Sprintf("%d %d * * *", slot.Minute(), slot.Hour())
}

// markPrevSlotRun records the schedule's slot before slot as run, as it is
// on a server that has been up for a day. Without it the scheduler's
// catch-up at start (a slot missed while no server was up runs once) would
// sweep at once, before the warm-up of the requests beside it. It is recorded as skipped, so
// that the record says why.
//
// It writes the one row itself, while the server is stopped, rather than
// through the store: the store's Open migrates, and refuses a database
// that a newer binary has migrated, which is what the measured server may
// be (bench/sidebyside.sh runs the base's tool beside a new binary).
// job_runs is migration 0003's, and no migration since has changed it.
func markPrevSlotRun(ctx context.Context, path string, sched jobs.Schedule, slot time.Time) error {
	prev, ok := jobs.Prev(sched, slot.Add(-time.Millisecond))
	if !ok {
		return fmt.Errorf("no slot before %s", slot)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	now := time.Now().UnixMilli()
	_, err = db.ExecContext(ctx, `INSERT INTO job_runs (job, slot, manual, holder, started_at, finished_at, outcome, error)
		VALUES (?, ?, 0, 'creditsd-load', ?, ?, ?, 'creditsd-load: the sweep is measured at the next slot')`,
		jobs.ExpirySweepName, prev.UnixMilli(), now, now, string(jobs.Skipped))
	return err
}

// awaitScheduledSweep reads job_runs until the server's run for slot has
// finished, and places it in time since the requests beside it started. The times are
// the server's own: started_at is when the run took its lease, finished_at
// when it recorded its outcome.
func (e *env) awaitScheduledSweep(ctx context.Context, start, slot time.Time) (sweepRun, error) {
	db, err := openReadOnly(e.files.Database)
	if err != nil {
		return sweepRun{}, err
	}
	defer db.Close()
	deadline := slot.Add(e.opts.sweepTimeout)
	seen := false
	for {
		run, found, err := scheduledRun(ctx, db, slot)
		if err != nil {
			return sweepRun{}, err
		}
		if found && !seen {
			seen = true
			fmt.Fprintf(e.stderr, "[sweep] the server started its sweep %.1fs into the requests beside it\n", run.Started.Sub(start).Seconds())
		}
		if found && run.Outcome != "running" {
			return scheduledSweepRun(run, start)
		}
		if time.Now().After(deadline) {
			return sweepRun{}, fmt.Errorf("the server's sweep for %s had not finished %s later (found: %v)", slot.Format(time.TimeOnly), e.opts.sweepTimeout, found)
		}
		if err := sleep(ctx, sweepPoll); err != nil {
			return sweepRun{}, err
		}
	}
}

// scheduledSweepRun checks a finished run and places it in the requests'
// time.
func scheduledSweepRun(run jobRun, start time.Time) (sweepRun, error) {
	if run.Outcome != string(jobs.OK) {
		return sweepRun{run: run, output: run.line()}, fmt.Errorf("the server's sweep ended %s: %s", run.Outcome, run.Error)
	}
	sw := sweepRun{from: run.Started.Sub(start), to: run.Finished.Sub(start), run: run, output: run.line()}
	if sw.from <= 0 {
		return sw, fmt.Errorf("the server's sweep started %.1fs before the requests beside it: it took longer than %s to start",
			-sw.from.Seconds(), serverStartMargin)
	}
	return sw, nil
}
