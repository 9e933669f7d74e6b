-- Answers to Apple's CONSUMPTION_REQUEST notifications (a customer asked
-- for a refund): one row per request, with every attempt's state.
CREATE TABLE consumption_answers (
    notification_uuid TEXT PRIMARY KEY REFERENCES notifications (notification_uuid),
    transaction_id    TEXT NOT NULL,
    environment       TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('retry', 'sent', 'expired')),
    attempts          INTEGER NOT NULL CHECK (attempts >= 0),
    request           TEXT NOT NULL DEFAULT '',  -- the JSON sent (or to send)
    last_error        TEXT NOT NULL DEFAULT '',
    next_attempt_at   INTEGER,
    answered_at       INTEGER,
    updated_at        INTEGER NOT NULL
) STRICT;
