-- The spending side: allowance counters, spends, reversals, admin grants,
-- refunds, subscription renewal state and tier overrides.

-- Allowance use per user and day (in the allowance time zone). The
-- allowance is derived from these counters; no job resets anything.
CREATE TABLE allowance_usage (
    user_id TEXT NOT NULL REFERENCES users (user_id),
    day     TEXT NOT NULL,
    used    INTEGER NOT NULL CHECK (used >= 0),
    PRIMARY KEY (user_id, day)
) STRICT, WITHOUT ROWID;

CREATE TABLE spends (
    spend_id        TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (user_id),
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    product         TEXT NOT NULL,
    credits         INTEGER NOT NULL CHECK (credits > 0),
    from_allowance  INTEGER NOT NULL CHECK (from_allowance BETWEEN 0 AND credits),
    allowance_day   TEXT NOT NULL,
    actor           TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (user_id, idempotency_key)
) STRICT;

CREATE TABLE spend_lots (
    spend_id TEXT NOT NULL REFERENCES spends (spend_id),
    lot_id   TEXT NOT NULL REFERENCES lots (lot_id),
    credits  INTEGER NOT NULL CHECK (credits > 0),
    PRIMARY KEY (spend_id, lot_id)
) STRICT, WITHOUT ROWID;

-- At most one reversal per spend.
CREATE TABLE reversals (
    spend_id            TEXT PRIMARY KEY REFERENCES spends (spend_id),
    reversal_id         TEXT NOT NULL UNIQUE,
    allowance_returned  INTEGER NOT NULL CHECK (allowance_returned >= 0),
    allowance_forfeited INTEGER NOT NULL CHECK (allowance_forfeited >= 0),
    actor               TEXT NOT NULL,
    created_at          INTEGER NOT NULL
) STRICT;

CREATE TABLE admin_grants (
    user_id         TEXT NOT NULL REFERENCES users (user_id),
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    lot_id          TEXT NOT NULL UNIQUE REFERENCES lots (lot_id),
    PRIMARY KEY (user_id, idempotency_key)
) STRICT, WITHOUT ROWID;

-- A refund of a credit pack and what it took back, so that its reversal
-- restores exactly that. One refund is in force per transaction at a time.
CREATE TABLE refunds (
    refund_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id TEXT NOT NULL REFERENCES apple_transactions (transaction_id),
    lot_id         TEXT NOT NULL REFERENCES lots (lot_id),
    user_id        TEXT NOT NULL REFERENCES users (user_id),
    removed        INTEGER NOT NULL CHECK (removed >= 0),
    debt           INTEGER NOT NULL CHECK (debt >= 0),
    written_off    INTEGER NOT NULL CHECK (written_off >= 0),
    policy         TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('active', 'reversed')),
    created_at     INTEGER NOT NULL,
    reversed_at    INTEGER
) STRICT;
CREATE UNIQUE INDEX refunds_active ON refunds (transaction_id) WHERE status = 'active';

-- The newest signed renewal info per subscription (by signedDate).
CREATE TABLE renewal_infos (
    original_transaction_id   TEXT PRIMARY KEY,
    product_id                TEXT NOT NULL,
    auto_renew_status         INTEGER NOT NULL,
    grace_period_expires_date INTEGER,
    environment               TEXT NOT NULL,
    signed_date               INTEGER NOT NULL,
    jws                       TEXT NOT NULL,
    decoded                   TEXT NOT NULL,
    updated_at                INTEGER NOT NULL
) STRICT;

-- A tier set from outside the App Store (say, a web subscription).
CREATE TABLE tier_overrides (
    user_id    TEXT PRIMARY KEY REFERENCES users (user_id),
    tier       TEXT NOT NULL,
    expires_at INTEGER,
    reason     TEXT NOT NULL,
    actor      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- Running totals of the ledger by kind and product, kept by a trigger so
-- that /metrics never scans the entries. Not STRICT, and credits REAL: a
-- metric must never be able to fail a ledger write, and a sum past int64
-- becomes an approximate REAL instead of an error.
CREATE TABLE ledger_totals (
    kind    TEXT NOT NULL,
    product TEXT NOT NULL,
    credits REAL NOT NULL,  -- sum of |credits|
    entries INTEGER NOT NULL,
    PRIMARY KEY (kind, product)
) WITHOUT ROWID;

CREATE TRIGGER entries_totals AFTER INSERT ON entries
BEGIN
    INSERT INTO ledger_totals (kind, product, credits, entries) VALUES (NEW.kind, NEW.product, abs(NEW.credits), 1)
    ON CONFLICT (kind, product) DO UPDATE SET credits = credits + abs(NEW.credits), entries = entries + 1;
END;
