-- A transaction's newest signed version (the JWS, several KiB with its
-- certificate chain, and its decoded payload) moves out of
-- apple_transactions into a table of its own. The transaction row's small
-- columns change several times in a purchase's life (its user, its lot,
-- its outcome), and SQLite rewrites a whole row, overflow pages and all,
-- for any change that alters its size: each webhook grant wrote the JWS
-- three times. Now it is written once per signed version.
CREATE TABLE transaction_jws (
    transaction_id TEXT PRIMARY KEY REFERENCES apple_transactions (transaction_id),
    jws            TEXT NOT NULL,
    decoded        TEXT NOT NULL
) STRICT;

INSERT INTO transaction_jws (transaction_id, jws, decoded)
SELECT transaction_id, jws, decoded FROM apple_transactions;

ALTER TABLE apple_transactions DROP COLUMN jws;
ALTER TABLE apple_transactions DROP COLUMN decoded;
