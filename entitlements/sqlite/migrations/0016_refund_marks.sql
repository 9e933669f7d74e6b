-- Two facts about each refund that its reversal and its revision need:
--
-- - after_entry, the ledger's last entry_id when the refund began. The
--   lot a reversal restores, for debt that other lots paid, lives as long
--   as they would have (refunds.go, restoredExpiry); the payments since
--   the refund began are then a seek of entries_user from this id, where
--   refunds.created_at could only filter every entry the user has, and a
--   clock stepping back would hide a payment from it. entry_id only grows.
-- - percent, the share of the pack it revoked, in milliunits (100000:
--   all), so that a newer version of the transaction with another
--   revocationPercentage revises it (purchases.go, refreshPurchase).
--
-- Both are NULL for refunds made before this migration: their reversal
-- filters by created_at, as before, and their revision is not possible.
-- ADD COLUMN moves no page.
ALTER TABLE refunds ADD COLUMN after_entry INTEGER;
ALTER TABLE refunds ADD COLUMN percent INTEGER;
