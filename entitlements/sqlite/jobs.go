package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrSlotDone means a scheduled slot of the job already ran (or is running):
// another process, or this one before a restart, got there first.
var ErrSlotDone = errors.New("this slot of the job has already run")

// ErrLeaseLost means the run's lease is no longer its own: it expired and
// another run took it, so this run must stop.
var ErrLeaseLost = errors.New("the job's lease was lost")

// LeaseHeldError means another run holds the job's lease.
type LeaseHeldError struct {
	Job, Holder string
	Until       time.Time
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("job %s is running (held by %s until %s)", e.Job, e.Holder, e.Until.Format(time.RFC3339))
}

// JobClaim asks to start a run of Job for Slot as Holder.
type JobClaim struct {
	Job    string
	Slot   time.Time // the scheduled time the run is for; a manual run's own start
	Manual bool      // manual runs do not use up their slot
	Holder string    // unique per run
	TTL    time.Duration
}

// JobFinish records how a run ended.
type JobFinish struct {
	RunID   int64
	Job     string
	Holder  string
	Outcome string
	Counts  map[string]int64
	Error   string
}

// JobRun is one recorded run.
type JobRun struct {
	RunID      int64
	Job        string
	Slot       time.Time
	Manual     bool
	Holder     string
	StartedAt  time.Time
	FinishedAt *time.Time
	Outcome    string
	Counts     map[string]int64
	Error      string
}

// ClaimJobRun takes the job's lease and records a running run, in one write
// transaction, so that two processes sharing the database cannot both pass.
// It fails with *LeaseHeldError while another run holds the lease, and with
// ErrSlotDone (taking nothing) when a scheduled slot already ran.
func (db *DB) ClaimJobRun(ctx context.Context, c JobClaim) (int64, error) {
	var id int64
	err := db.update(ctx, func(tx *Tx) error {
		if err := tx.takeLease(ctx, c); err != nil {
			return err
		}
		// Holding the lease, no other run of the job is alive: a run still
		// marked running belongs to a process that died.
		if _, err := tx.ExecContext(ctx, `UPDATE job_runs SET outcome = 'abandoned', finished_at = ?,
			error = 'its process stopped before the run finished' WHERE job = ? AND outcome = 'running'`,
			millis(tx.now), c.Job); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO job_runs (job, slot, manual, holder, started_at, outcome)
			VALUES (?, ?, ?, ?, ?, 'running') RETURNING run_id`,
			c.Job, millis(c.Slot), c.Manual, c.Holder, millis(tx.now)).Scan(&id)
		if isUnique(err) {
			return ErrSlotDone
		}
		return err
	})
	return id, err
}

// takeLease takes a free or expired lease.
func (tx *Tx) takeLease(ctx context.Context, c JobClaim) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO job_leases (job, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE job_leases.expires_at <= ?`, c.Job, c.Holder, millis(tx.now.Add(c.TTL)), millis(tx.now))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	held := &LeaseHeldError{Job: c.Job}
	var until int64
	if err := tx.QueryRowContext(ctx, `SELECT holder, expires_at FROM job_leases WHERE job = ?`, c.Job).
		Scan(&held.Holder, &until); err != nil {
		return err
	}
	held.Until = fromMillis(until)
	return held
}

// RenewJobLease extends holder's lease on job by ttl from now, or fails
// with ErrLeaseLost if holder no longer has it.
func (db *DB) RenewJobLease(ctx context.Context, job, holder string, ttl time.Duration) error {
	return db.update(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE job_leases SET expires_at = ? WHERE job = ? AND holder = ?`,
			millis(tx.now.Add(ttl)), job, holder)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		return ErrLeaseLost
	})
}

// FinishJobRun records the run's outcome and releases its lease. If the
// run was given up as abandoned meanwhile, its record stays so and the
// answer is ErrLeaseLost.
func (db *DB) FinishJobRun(ctx context.Context, f JobFinish) error {
	counts, err := json.Marshal(f.Counts)
	if err != nil {
		return err
	}
	if f.Counts == nil {
		counts = []byte("{}")
	}
	return db.update(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM job_leases WHERE job = ? AND holder = ?`, f.Job, f.Holder); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE job_runs SET outcome = ?, finished_at = ?, counts = ?, error = ?
			WHERE run_id = ? AND outcome = 'running'`, f.Outcome, millis(tx.now), string(counts), f.Error, f.RunID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		return ErrLeaseLost
	})
}

// jobRunsSQL lists a job's runs, newest first, walking job_runs_recent
// backwards: by run_id alone SQLite read and sorted every run of the job
// (26k of consumption-answers' in 90 days: 25 ms, at every /metrics scrape).
const jobRunsSQL = `SELECT run_id, job, slot, manual, holder, started_at, finished_at, outcome,
	counts, error FROM job_runs WHERE job = ? ORDER BY started_at DESC, run_id DESC LIMIT ?`

// lastSuccessSQL is when a job's newest run that ended ok finished, found
// as jobRunsSQL walks.
const lastSuccessSQL = `SELECT finished_at FROM job_runs WHERE job = ? AND outcome = 'ok'
	ORDER BY started_at DESC, run_id DESC LIMIT 1`

// JobRuns lists job's runs, newest first, at most limit.
func (db *DB) JobRuns(ctx context.Context, job string, limit int) ([]JobRun, error) {
	var runs []JobRun
	err := db.view(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, jobRunsSQL, job, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanJobRun(rows)
			if err != nil {
				return err
			}
			runs = append(runs, r)
		}
		return rows.Err()
	})
	return runs, err
}

// LastJobSuccess is when job's newest run that ended ok finished, and false
// when none kept in job_runs did. Any process's runs count: a scheduled
// run of serve's and a jobs run beside it alike.
func (db *DB) LastJobSuccess(ctx context.Context, job string) (time.Time, bool, error) {
	var at sql.NullInt64
	err := db.view(ctx, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, lastSuccessSQL, job).Scan(&at)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return err
	})
	return fromMillis(at.Int64), at.Valid, err
}

// LatestJobCount is the value that the newest recorded run of job to give
// key in its counts gave it, and false when none did. It lets a job carry a
// mark from run to run in the record of its runs, such as how far
// reconcile has read each environment's history. Newest by run, not the
// largest value: a run whose clock was ahead must not leave a mark that
// every later run believes. key is letters, digits and underscores.
func (db *DB) LatestJobCount(ctx context.Context, job, key string) (int64, bool, error) {
	if !isCountKey(key) {
		return 0, false, fmt.Errorf("sqlite: count key %q is not letters, digits and underscores", key)
	}
	var v int64
	err := db.view(ctx, func(tx *Tx) error {
		return tx.QueryRowContext(ctx, `SELECT json_extract(counts, ?1) FROM job_runs
			WHERE job = ?2 AND json_type(counts, ?1) = 'integer' ORDER BY run_id DESC LIMIT 1`, "$."+key, job).Scan(&v)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return v, err == nil, err
}

// PruneJobRuns deletes the finished runs that started before before, in
// write transactions of at most batch runs each, and says how many. It
// keeps what later runs read back, however old: each job's newest run, its
// newest scheduled run and the one for its latest slot (which the catch-up
// at start asks about: they differ after a schedule's change), and the
// newest run to give each count key (LatestJobCount: reconcile's marks). A
// scheduled job adds a run every few minutes, for good, so the table
// otherwise only grew.
func (db *DB) PruneJobRuns(ctx context.Context, before time.Time, batch int) (int64, error) {
	if batch < 1 {
		return 0, fmt.Errorf("sqlite: a batch of %d runs: want 1 or more", batch)
	}
	keep, err := db.runsToKeep(ctx)
	if err != nil {
		return 0, err
	}
	var pruned int64
	for {
		var n int64
		err := db.update(ctx, func(tx *Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM job_runs WHERE run_id IN (SELECT run_id FROM job_runs
				WHERE started_at < ?1 AND outcome != 'running' AND run_id NOT IN (SELECT value FROM json_each(?2))
				ORDER BY run_id LIMIT ?3)`, millis(before), keep, batch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		pruned += n
		if err != nil || n < int64(batch) {
			return pruned, err
		}
		if err := ctx.Err(); err != nil {
			return pruned, err
		}
	}
}

// runsToKeep is PruneJobRuns' list of runs to keep, as a JSON array. It is
// read once, on a read connection, not in the writer's turn: it reads
// every run's counts. A run that starts after it is read is newer than any
// run PruneJobRuns deletes. SQLite gives max()'s row to a bare column; a
// slot holds one run that used it up (job_runs_slot), beside any number
// abandoned or interrupted, which leave it to be retried.
func (db *DB) runsToKeep(ctx context.Context) (string, error) {
	var keep string
	err := db.view(ctx, func(tx *Tx) error {
		return tx.QueryRowContext(ctx, `SELECT json_group_array(run_id) FROM (
			SELECT max(run_id) AS run_id FROM job_runs GROUP BY job
			UNION SELECT max(run_id) FROM job_runs WHERE manual = 0 GROUP BY job
			UNION SELECT run_id FROM (SELECT run_id, max(slot) FROM job_runs
				WHERE manual = 0 AND outcome NOT IN ('abandoned', 'interrupted') GROUP BY job)
			UNION SELECT max(r.run_id) FROM job_runs r, json_each(r.counts) c WHERE c.type = 'integer'
				GROUP BY r.job, c.key)`).Scan(&keep)
	})
	return keep, err
}

func isCountKey(key string) bool {
	for _, c := range []byte(key) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return key != ""
}

func scanJobRun(s scanner) (JobRun, error) {
	var r JobRun
	var slot, started int64
	var finished sql.NullInt64
	var counts string
	if err := s.Scan(&r.RunID, &r.Job, &slot, &r.Manual, &r.Holder, &started, &finished, &r.Outcome,
		&counts, &r.Error); err != nil {
		return r, err
	}
	r.Slot, r.StartedAt, r.FinishedAt = fromMillis(slot), fromMillis(started), fromNullMillis(finished)
	return r, json.Unmarshal([]byte(counts), &r.Counts)
}
