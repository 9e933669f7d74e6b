-- The first day whose allowance counters are all kept. The daily reset
-- prunes the counters of the days before keep_days; the entries stay. It
-- records the day here before it deletes (PruneAllowanceUsage), and only
-- ever moves it later: after keep_days is raised, the days pruned under
-- the old value are still gone. `creditsd ledger check` reads it to tell a
-- pruned day from a missing counter.
CREATE TABLE allowance_kept (
    one       INTEGER PRIMARY KEY CHECK (one = 1),
    kept_from TEXT NOT NULL  -- a YYYY-MM-DD day key
) STRICT;

-- A database the reset has run on: the earliest counter kept, or, with
-- none kept, the day after the last one the reset summarised. A counter
-- missing before it is no longer told from a pruned one.
INSERT INTO allowance_kept (one, kept_from)
SELECT 1, COALESCE((SELECT min(day) FROM allowance_usage), date(max(day), '+1 day'))
FROM allowance_daily_days HAVING count(*) > 0;
