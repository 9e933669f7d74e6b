-- Background jobs: who holds each job's lock, what every run did, and the
-- reporting tables the daily reset fills.

-- One row per job while some process holds its lock. A holder renews
-- expires_at while its run lasts; a lease past expires_at is free to take,
-- so a process that died does not block the job for longer than that.
CREATE TABLE job_leases (
    job        TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

-- Every run, scheduled or manual. slot is the scheduled time the run is for
-- (a manual run's own start). outcome is running until it ends; abandoned
-- marks a run whose process died, interrupted one stopped by shutdown.
CREATE TABLE job_runs (
    run_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    job         TEXT NOT NULL,
    slot        INTEGER NOT NULL,
    manual      INTEGER NOT NULL CHECK (manual IN (0, 1)),
    holder      TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    outcome     TEXT NOT NULL CHECK (outcome IN ('running', 'ok', 'failed', 'skipped', 'panicked',
                                                 'interrupted', 'abandoned')),
    counts      TEXT NOT NULL DEFAULT '{}',  -- JSON object of what the run did
    error       TEXT NOT NULL DEFAULT ''     -- the error, panic or reason for skipping
) STRICT;
-- A scheduled slot runs once, whichever process gets there first. A run
-- that never finished (abandoned, interrupted) leaves its slot to be retried.
CREATE UNIQUE INDEX job_runs_slot ON job_runs (job, slot)
    WHERE manual = 0 AND outcome NOT IN ('abandoned', 'interrupted');
CREATE INDEX job_runs_recent ON job_runs (job, started_at);

-- Allowance use per day, tier and product, net of reversals: a report, not
-- something the allowance depends on. tier is the user's tier when the day
-- was summarised, not necessarily on the day itself.
CREATE TABLE allowance_daily (
    day     TEXT NOT NULL,
    tier    TEXT NOT NULL,
    product TEXT NOT NULL,
    users   INTEGER NOT NULL CHECK (users > 0),
    credits INTEGER NOT NULL CHECK (credits > 0),
    PRIMARY KEY (day, tier, product)
) STRICT, WITHOUT ROWID;

-- The days the daily reset has summarised (a day without use has no rows in
-- allowance_daily, yet must not be summarised again and again).
CREATE TABLE allowance_daily_days (
    day           TEXT PRIMARY KEY,
    summarised_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The daily reset reads one day's allowance entries and prunes old counters
-- without scanning the whole of either table.
CREATE INDEX entries_allowance_day ON entries (allowance_day, user_id) WHERE allowance_day != '';
CREATE INDEX allowance_usage_day ON allowance_usage (day);
