-- Every change of a user's tier override (PUT /v1/users/{user_id}/tier),
-- kept for good: tier_overrides holds only the one in force, so an admin's
-- change replaced the last one's reason and actor, and a tier given and
-- taken back left no trace. A tier is not credits, so it has no ledger
-- entry; this is its audit trail, append-only as the ledger is. tier
-- 'free' is a removal.
CREATE TABLE tier_changes (
    change_id  INTEGER PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (user_id),
    tier       TEXT NOT NULL,
    expires_at INTEGER,
    reason     TEXT NOT NULL,
    actor      TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX tier_changes_user ON tier_changes (user_id, change_id);

CREATE TRIGGER tier_changes_no_update BEFORE UPDATE ON tier_changes
BEGIN SELECT RAISE(ABORT, 'tier changes are append-only'); END;
CREATE TRIGGER tier_changes_no_delete BEFORE DELETE ON tier_changes
BEGIN SELECT RAISE(ABORT, 'tier changes are append-only'); END;

-- The overrides in force are their own first change: the next change
-- would otherwise leave their reason and actor nowhere.
INSERT INTO tier_changes (user_id, tier, expires_at, reason, actor, created_at)
SELECT user_id, tier, expires_at, reason, actor, updated_at FROM tier_overrides ORDER BY updated_at, user_id;
