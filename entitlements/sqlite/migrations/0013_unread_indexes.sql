-- Two indexes that every write kept up and no statement reads. Each costs
-- a random page (a page read, a WAL frame and a checkpoint write in the one
-- writer) on the writes that change it most:
--
-- - lots_expiry loses a lot whenever a spend, a refund or the expiry sweep
--   empties one, at the lot's place in expiry order, far from the user's
--   other pages. The sweep walks the lots by key (sweep.go) and a user's
--   lots are read by key, so nothing reads it.
-- - entries_lot takes every entry that names a lot. A grant's lot is new,
--   so its entry appends; but the sweep's expire entries (written in user
--   order) and the spends of lots bought months ago land at random among
--   millions. The one query by lot_id on entries is spentFrom (a refund's
--   plan), which reads spends, reversals and debt payments: the index keeps
--   just those. Its WHERE is spentFrom's, so that SQLite uses it.
--
-- Lots are never deleted or renamed, so entries' foreign key to lots needs
-- no index on this side (as in 0010).
DROP INDEX lots_expiry;
DROP INDEX entries_lot;
CREATE INDEX entries_lot_spent ON entries (lot_id) WHERE lot_id IS NOT NULL AND kind IN ('spend', 'reverse', 'debt_paid');
