-- The allowance counters are keyed by (day, user_id) instead of (user_id,
-- day), and their index on day goes. A user's first allowance spend of a
-- day inserted into both B-trees, each at a random page (with a million
-- users, two page reads, two WAL frames and two checkpoint writes in the
-- one writer). Keyed by day first, the table is its own index on day: the
-- prune deletes from its front, and the lookup by user and day is the same
-- single seek. No foreign key, view or trigger names allowance_usage, so
-- a new table can take its place by a rename, without SQLite's full
-- twelve-step rebuild (which needs foreign keys off).
CREATE TABLE allowance_usage_by_day (
    day     TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (user_id),
    used    INTEGER NOT NULL CHECK (used >= 0),
    PRIMARY KEY (day, user_id)
) STRICT, WITHOUT ROWID;
INSERT INTO allowance_usage_by_day (day, user_id, used)
    SELECT day, user_id, used FROM allowance_usage ORDER BY day, user_id;
DROP TABLE allowance_usage;
ALTER TABLE allowance_usage_by_day RENAME TO allowance_usage;
