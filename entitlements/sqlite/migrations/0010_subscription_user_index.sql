-- A user's Apple transactions are looked up by user only to find the tier a
-- subscription sets (tierSQL, whose WHERE repeats this index's condition so
-- that SQLite uses it). Consumables set no tier, so they leave the index:
-- a credit pack bought by one of a million users no longer dirties a random
-- page of it (a page read, a WAL frame and a checkpoint write in the one
-- writer, on every webhook grant and app claim). Users are never deleted or
-- renamed, so the foreign key to users needs no index on this side.
DROP INDEX apple_transactions_user;
CREATE INDEX apple_transactions_user ON apple_transactions (user_id, original_transaction_id) WHERE tier != '';
