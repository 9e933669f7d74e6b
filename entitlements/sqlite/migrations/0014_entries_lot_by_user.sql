-- An entry that names a lot names its user too, and its foreign key now
-- says so: (user_id, lot_id) → lots' own key, not lot_id → lots' lot_id
-- index. The check on each such entry then seeks the page of lots that
-- the writer has just read (a spend reads the user's lots; the sweep walks
-- them in key order), where lot_id's index, in time order, put it on a
-- random page of its own. The key is stricter, too: an entry can no longer
-- name another user's lot. An entry without a lot (lot_id NULL) checks
-- nothing against lots, as before.
--
-- SQLite's ALTER TABLE cannot add a foreign key. lang_altertable.html
-- gives the twelve-step rebuild for that, since rows may break the new
-- key, and a simpler edit of the schema text for changes that store
-- nothing (such as dropping a key). A foreign key stores nothing, and the
-- rebuild would copy 11M entries, so this takes the edit from the one and
-- the check from the other: writable_schema, one UPDATE of the table's
-- text, RESET to reparse it; then the runner's PRAGMA foreign_key_check,
-- before COMMIT, reads every entry against the new key and rolls
-- everything back if one names a lot that is not its user's.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(replace(sql,
        'lot_id     TEXT REFERENCES lots (lot_id),',
        'lot_id     TEXT,  -- a lot of user_id''s: the foreign key below'),
        '    created_at INTEGER NOT NULL
) STRICT',
        '    created_at INTEGER NOT NULL,
    FOREIGN KEY (user_id, lot_id) REFERENCES lots (user_id, lot_id)
) STRICT')
WHERE type = 'table' AND name = 'entries';
PRAGMA writable_schema = RESET;
-- The edit must have taken, exactly: refuse the migration unless entries
-- now has one foreign key to lots, on (user_id, lot_id) (none at all
-- makes fk NULL, which IS refuses too). Making and dropping a table also
-- moves the schema cookie on, which the edit did not, so that every other
-- connection reparses the schema too.
CREATE TABLE entries_key_edited (
    fk TEXT CONSTRAINT entries_key_is_user_and_lot CHECK (fk IS '0 user_id>user_id,0 lot_id>lot_id')
) STRICT;
INSERT INTO entries_key_edited
SELECT group_concat(id || ' ' || "from" || '>' || "to", ',' ORDER BY id, seq)
FROM pragma_foreign_key_list('entries') WHERE "table" = 'lots';
DROP TABLE entries_key_edited;
