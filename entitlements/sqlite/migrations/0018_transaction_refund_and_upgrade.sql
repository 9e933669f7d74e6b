-- Two facts of a transaction's kept version that its row must hold:
--
-- - refund_percent, the share of a pack it revokes when Apple refunded it
--   in part (revocationType REFUND_PRORATED: 1 to 99999 milliunits), else
--   NULL. A transaction whose first version to arrive is already refunded
--   in part earns its lot, and the refund applies to it when the lot is
--   made: at once if its user is known, else when the user or the app's
--   claim comes (purchases.go, assignPurchase), by which time only this
--   row is at hand. Before this, such a transaction earned nothing.
-- - upgraded, 1 when the period was upgraded to another subscription
--   (isUpgraded): it no longer sets its tier (tiers.go, tierSQL), though
--   its dates still cover now.
--
-- ADD COLUMN moves no page.
ALTER TABLE apple_transactions ADD COLUMN refund_percent INTEGER CHECK (refund_percent BETWEEN 1 AND 99999);
ALTER TABLE apple_transactions ADD COLUMN upgraded INTEGER NOT NULL DEFAULT 0 CHECK (upgraded IN (0, 1));
