-- The expiry sweep walks the lots in the order they are stored (session
-- 12), so nothing reads lots_expiry any more, and every lot granted or
-- spent to zero wrote to it: an index on a WITHOUT ROWID table carries
-- the whole key, (expires_at, user_id, lot_id), and session 11 counted
-- 1.37 WAL frames a notification in it. A sweep with few lots due now
-- walks the table instead (~3 s for 10M lots, in batches of 5 ms).
DROP INDEX lots_expiry;
