-- A JWS's protected header holds its signer's whole certificate chain,
-- ~4.4 KiB in base64, and it is the same for every document one key
-- signed. Each notification stored two of them (its own and its
-- transaction's, in transaction_jws), over half of the bytes the webhook's
-- one writer put in the WAL per notification. Headers are now kept once,
-- by their SHA-256; a row that names one keeps the rest of its JWS
-- ("payload.signature") in jws. Rows written before this keep their whole
-- JWS with no header named. The views give back every JWS byte for byte,
-- whichever way it was stored.
CREATE TABLE jws_headers (
    hash   BLOB PRIMARY KEY,  -- SHA-256 of header
    header TEXT NOT NULL      -- the first segment of the compact JWS, as signed
) STRICT;

ALTER TABLE notifications ADD COLUMN jws_header BLOB REFERENCES jws_headers (hash);
ALTER TABLE transaction_jws ADD COLUMN jws_header BLOB REFERENCES jws_headers (hash);

CREATE VIEW notifications_signed AS
SELECT n.notification_uuid, CASE WHEN n.jws_header IS NULL THEN n.jws ELSE h.header || '.' || n.jws END AS jws
FROM notifications n LEFT JOIN jws_headers h ON h.hash = n.jws_header;

CREATE VIEW transactions_signed AS
SELECT t.transaction_id, CASE WHEN t.jws_header IS NULL THEN t.jws ELSE h.header || '.' || t.jws END AS jws
FROM transaction_jws t LEFT JOIN jws_headers h ON h.hash = t.jws_header;

-- A binary from before 0008 keeps whole JWS and knows nothing of
-- jws_header: its refresh of a transaction would write a whole JWS under
-- a header the view then adds again. Such an update is refused, loudly
-- (the webhook answers 500 and Apple retries), instead of corrupting what
-- the view returns. Rolling back past 0008 means restoring the backup.
CREATE TRIGGER transaction_jws_header_kept BEFORE UPDATE OF jws ON transaction_jws
WHEN NEW.jws_header IS NOT NULL AND instr(NEW.jws, '.') > 0
    AND substr(NEW.jws, 1, instr(NEW.jws, '.') - 1) = (SELECT header FROM jws_headers WHERE hash = NEW.jws_header)
BEGIN
    SELECT RAISE(ABORT, 'transaction_jws: a whole JWS under a stored header (a binary older than migration 0008?)');
END;
