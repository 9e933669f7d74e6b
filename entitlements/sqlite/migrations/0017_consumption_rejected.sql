-- An answer to a CONSUMPTION_REQUEST that Apple refused for good (a 400 or
-- 404: sent again, it would be refused again), or that the client would
-- not send, is 'rejected': it is not retried, and last_error keeps Apple's
-- errorCode and errorMessage. Before, it was retried until the deadline and
-- then recorded 'expired', which hid why.
--
-- SQLite cannot change a CHECK constraint: the table is rebuilt (no other
-- table refers to it), its rows copied as they are.
CREATE TABLE consumption_answers_new (
    notification_uuid TEXT PRIMARY KEY REFERENCES notifications (notification_uuid),
    transaction_id    TEXT NOT NULL,
    environment       TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('retry', 'sent', 'expired', 'rejected')),
    attempts          INTEGER NOT NULL CHECK (attempts >= 0),
    request           TEXT NOT NULL DEFAULT '',  -- the JSON sent (or to send)
    last_error        TEXT NOT NULL DEFAULT '',
    next_attempt_at   INTEGER,
    answered_at       INTEGER,
    updated_at        INTEGER NOT NULL
) STRICT;
INSERT INTO consumption_answers_new (notification_uuid, transaction_id, environment, status, attempts, request,
    last_error, next_attempt_at, answered_at, updated_at)
SELECT notification_uuid, transaction_id, environment, status, attempts, request,
    last_error, next_attempt_at, answered_at, updated_at FROM consumption_answers;
DROP TABLE consumption_answers;
ALTER TABLE consumption_answers_new RENAME TO consumption_answers;
