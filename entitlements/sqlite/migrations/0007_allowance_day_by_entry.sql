-- The daily reset's index on allowance entries is keyed by (day, entry_id)
-- instead of (day, user_id). Entries only ever join today's end of it, so
-- an allowance spend appends to one hot page instead of dirtying a random
-- page of today's range (with a million users, a page read and a WAL frame
-- on every spend, under the one writer). The daily reset, once a day, sorts
-- the day's entries by user itself, and reads them from the table in entry
-- order.
DROP INDEX entries_allowance_day;
CREATE INDEX entries_allowance_day ON entries (allowance_day, entry_id) WHERE allowance_day != '';
