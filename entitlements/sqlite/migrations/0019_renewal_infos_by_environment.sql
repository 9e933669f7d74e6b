-- A renewal info belongs to a subscription of one environment. Keyed by
-- originalTransactionId alone, a Sandbox renewal info under a Production
-- subscription's original id (Apple does not promise the two never meet)
-- replaced the Production one, and hid its grace period until the next
-- (purchases.go, heldBy, keeps transactions of the two apart the same
-- way). Keyed by both, each environment keeps its own newest.
--
-- SQLite cannot change a primary key: the table is rebuilt (no other
-- table refers to it), its rows copied as they are.
CREATE TABLE renewal_infos_new (
    original_transaction_id   TEXT NOT NULL,
    environment               TEXT NOT NULL,
    product_id                TEXT NOT NULL,
    auto_renew_status         INTEGER NOT NULL,
    grace_period_expires_date INTEGER,
    signed_date               INTEGER NOT NULL,
    jws                       TEXT NOT NULL,
    updated_at                INTEGER NOT NULL,
    PRIMARY KEY (original_transaction_id, environment)
) STRICT;
INSERT INTO renewal_infos_new (original_transaction_id, environment, product_id, auto_renew_status,
    grace_period_expires_date, signed_date, jws, updated_at)
SELECT original_transaction_id, environment, product_id, auto_renew_status,
    grace_period_expires_date, signed_date, jws, updated_at FROM renewal_infos;
DROP TABLE renewal_infos;
ALTER TABLE renewal_infos_new RENAME TO renewal_infos;
