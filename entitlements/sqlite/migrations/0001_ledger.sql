-- The ledger: users, Apple transactions, lots and append-only entries.
-- Times are Unix milliseconds (Apple's unit). Credits are INTEGER (int64).

CREATE TABLE users (
    user_id           TEXT PRIMARY KEY,
    app_account_token TEXT NOT NULL UNIQUE,
    debt              INTEGER NOT NULL DEFAULT 0 CHECK (debt >= 0),  -- cache of the debt entries
    created_at        INTEGER NOT NULL
) STRICT;

-- Every verified Apple transaction, whichever path brought it (webhook, app,
-- reconciliation). transaction_id is the key that makes a grant happen once.
CREATE TABLE apple_transactions (
    transaction_id          TEXT PRIMARY KEY,
    original_transaction_id TEXT NOT NULL,
    user_id                 TEXT REFERENCES users (user_id),  -- NULL until its user is known
    app_account_token       TEXT NOT NULL DEFAULT '',         -- normalized; '' if the app set none
    product_id              TEXT NOT NULL,
    tier                    TEXT NOT NULL DEFAULT '',  -- the tier a subscription product sets
    type                    TEXT NOT NULL,
    environment             TEXT NOT NULL,
    quantity                INTEGER NOT NULL,
    purchase_date           INTEGER NOT NULL,
    expires_date            INTEGER,
    revocation_date         INTEGER,
    signed_date             INTEGER NOT NULL,
    jws                     TEXT NOT NULL,  -- the newest signed version
    decoded                 TEXT NOT NULL,
    outcome                 TEXT NOT NULL,
    credits                 INTEGER NOT NULL DEFAULT 0 CHECK (credits >= 0),  -- what its lot grants
    expires_at              INTEGER,        -- its lot's expiry; NULL = never
    lot_id                  TEXT UNIQUE,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
) STRICT;
CREATE INDEX apple_transactions_pending ON apple_transactions (app_account_token) WHERE user_id IS NULL;
CREATE INDEX apple_transactions_user ON apple_transactions (user_id, original_transaction_id);
CREATE INDEX apple_transactions_original ON apple_transactions (original_transaction_id);

CREATE TABLE lots (
    lot_id         TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (user_id),
    source         TEXT NOT NULL CHECK (source IN ('app_store', 'admin', 'restored')),
    product_id     TEXT NOT NULL DEFAULT '',
    transaction_id TEXT UNIQUE REFERENCES apple_transactions (transaction_id),  -- one lot per Apple transaction
    environment    TEXT NOT NULL DEFAULT '',
    granted        INTEGER NOT NULL CHECK (granted > 0),
    remaining      INTEGER NOT NULL CHECK (remaining BETWEEN 0 AND granted),
    granted_at     INTEGER NOT NULL,
    expires_at     INTEGER,  -- NULL = never
    created_at     INTEGER NOT NULL,
    CHECK ((source = 'app_store') = (transaction_id IS NOT NULL))  -- restored: a reversed refund's overflow
) STRICT;
CREATE INDEX lots_user ON lots (user_id) WHERE remaining > 0;
CREATE INDEX lots_expiry ON lots (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;

-- The append-only ledger. A lot's remaining is the sum of its entries.
CREATE TABLE entries (
    entry_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT NOT NULL REFERENCES users (user_id),
    kind       TEXT NOT NULL CHECK (kind IN ('grant', 'admin_grant', 'spend', 'reverse', 'refund',
                                             'refund_reversed', 'debt', 'debt_paid', 'expire')),
    credits    INTEGER NOT NULL,
    lot_id     TEXT REFERENCES lots (lot_id),
    product    TEXT NOT NULL DEFAULT '',
    reason     TEXT NOT NULL DEFAULT '',
    actor      TEXT NOT NULL,
    ref        TEXT NOT NULL DEFAULT '',  -- the transaction, spend or grant behind it
    allowance_day TEXT NOT NULL DEFAULT '',  -- for allowance spends and reversals (lot_id NULL)
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX entries_user ON entries (user_id, entry_id);
CREATE INDEX entries_lot ON entries (lot_id) WHERE lot_id IS NOT NULL;

CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;

-- Every verified notification, raw and decoded, keyed by notificationUUID.
CREATE TABLE notifications (
    notification_uuid       TEXT PRIMARY KEY,
    notification_type       TEXT NOT NULL,
    subtype                 TEXT NOT NULL DEFAULT '',
    environment             TEXT NOT NULL DEFAULT '',
    signed_date             INTEGER NOT NULL,
    transaction_id          TEXT NOT NULL DEFAULT '',
    original_transaction_id TEXT NOT NULL DEFAULT '',
    jws                     TEXT NOT NULL,
    decoded                 TEXT NOT NULL,
    source                  TEXT NOT NULL,  -- webhook, reconcile
    outcome                 TEXT NOT NULL,
    received_at             INTEGER NOT NULL
) STRICT;
CREATE INDEX notifications_type ON notifications (notification_type, received_at);
CREATE INDEX notifications_transaction ON notifications (transaction_id) WHERE transaction_id != '';
