-- Lots are stored clustered by user: a WITHOUT ROWID table keyed by
-- (user_id, lot_id), instead of rows in rowid (grant) order. A user's ~10
-- lots bought over a year sat on ~10 table pages, and every entitlement
-- read, every spend (which reads the user's live lots in the one writer)
-- and every grant paid a page read for each; now they share one or two.
-- The key's user_id prefix serves liveLots, so lots_user goes (one B-tree
-- fewer to change when a lot is spent to zero). lot_id stays UNIQUE, the
-- parent key of entries, spend_lots, admin_grants and refunds; its index
-- holds (lot_id, user_id), so a lookup by lot_id alone is two seeks and
-- one that also names the user is one.
--
-- Other tables' foreign keys name lots, so this is SQLite's twelve-step
-- rebuild (lang_altertable.html): the runner turns foreign keys off on its
-- connection before BEGIN and runs PRAGMA foreign_key_check before COMMIT.
-- The new table is made under a new name and renamed once the old one is
-- dropped (never the old one renamed: that would rewrite the children's
-- REFERENCES to follow it). No view or trigger names lots.
CREATE TABLE lots_by_user (
    lot_id         TEXT NOT NULL UNIQUE,
    user_id        TEXT NOT NULL REFERENCES users (user_id),
    source         TEXT NOT NULL CHECK (source IN ('app_store', 'admin', 'restored')),
    product_id     TEXT NOT NULL DEFAULT '',
    transaction_id TEXT REFERENCES apple_transactions (transaction_id),  -- one lot per Apple transaction: lots_transaction
    environment    TEXT NOT NULL DEFAULT '',
    granted        INTEGER NOT NULL CHECK (granted > 0),
    remaining      INTEGER NOT NULL CHECK (remaining BETWEEN 0 AND granted),
    granted_at     INTEGER NOT NULL,
    expires_at     INTEGER,  -- NULL = never
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (user_id, lot_id),
    CHECK ((source = 'app_store') = (transaction_id IS NOT NULL))  -- restored: a reversed refund's overflow
) STRICT, WITHOUT ROWID;
INSERT INTO lots_by_user (lot_id, user_id, source, product_id, transaction_id, environment, granted, remaining,
        granted_at, expires_at, created_at)
    SELECT lot_id, user_id, source, product_id, transaction_id, environment, granted, remaining,
        granted_at, expires_at, created_at
    FROM lots ORDER BY user_id, lot_id;
DROP TABLE lots;  -- and its indexes, lots_user and lots_expiry
ALTER TABLE lots_by_user RENAME TO lots;
CREATE INDEX lots_expiry ON lots (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;
-- One lot per Apple transaction, as the column's UNIQUE said, but only
-- over the lots that have one. A UNIQUE column indexes its NULLs too, and
-- an index on a WITHOUT ROWID table ends with the key, so every admin or
-- restored lot (transaction_id NULL) sat in it at (NULL, user_id, lot_id):
-- a random page per admin grant, where the rowid table had appended it.
CREATE UNIQUE INDEX lots_transaction ON lots (transaction_id) WHERE transaction_id IS NOT NULL;
