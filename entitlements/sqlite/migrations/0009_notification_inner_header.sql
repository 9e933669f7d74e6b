-- A notification's payload carries its transaction's whole JWS,
-- certificate chain included, base64url-encoded a second time: in a
-- consumable's notification that chain is ~5.9 KiB of the ~7.2 KiB the row
-- kept after 0008, and it is the same for every transaction its key signs.
-- That run of the payload's text is now kept once as well, in jws_headers
-- (by its SHA-256, beside the headers: the table holds shared runs of
-- signed text, whatever part of a JWS they are), and the row names it with
-- the offset in jws where it goes back. Rows written before keep all of jws.
ALTER TABLE notifications ADD COLUMN jws_inner BLOB REFERENCES jws_headers (hash);
ALTER TABLE notifications ADD COLUMN jws_inner_at INTEGER  -- characters of jws before the run
    CHECK ((jws_inner IS NULL) = (jws_inner_at IS NULL) AND (jws_inner_at IS NULL OR jws_inner_at >= 0));

DROP VIEW notifications_signed;
CREATE VIEW notifications_signed AS
SELECT n.notification_uuid,
    CASE WHEN n.jws_header IS NULL THEN '' ELSE h.header || '.' END ||
    CASE WHEN n.jws_inner IS NULL THEN n.jws
         ELSE substr(n.jws, 1, n.jws_inner_at) || i.header || substr(n.jws, n.jws_inner_at + 1) END AS jws
FROM notifications n
LEFT JOIN jws_headers h ON h.hash = n.jws_header
LEFT JOIN jws_headers i ON i.hash = n.jws_inner;
