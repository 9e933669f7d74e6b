-- Signed data is stored once, as Apple signed it. The decoded payload kept
-- beside each JWS was the JWS's own second segment, base64url-decoded: no
-- code read it, and it doubled what every notification wrote (a
-- notification's payload holds its transaction's whole JWS again), which
-- the webhook's single writer paid for in WAL frames. Fields Apple adds
-- later are still in the JWS.
ALTER TABLE notifications DROP COLUMN decoded;
ALTER TABLE transaction_jws DROP COLUMN decoded;
ALTER TABLE renewal_infos DROP COLUMN decoded;
