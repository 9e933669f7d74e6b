-- An entry that names a lot names its user too, and its foreign key now
-- says so: (user_id, lot_id) → lots' own key, not lot_id → lots' lot_id
-- index. The check on each such entry then seeks the page of lots that
-- the writer has just read (a spend reads the user's lots; the sweep walks
-- them in key order), where lot_id's index, in time order, put it on a
-- random page of its own. The key is stricter, too: an entry can no longer
-- name another user's lot. An entry without a lot (lot_id NULL) checks
-- nothing against lots, as before.
--
-- SQLite cannot add a constraint with ALTER TABLE, and a rebuild would
-- copy every entry. A foreign key changes nothing stored in the table, so
-- this edits the table's definition instead (lang_altertable.html,
-- "Making Other Kinds Of Table Schema Changes"): writable_schema, one
-- UPDATE of the schema text, and RESET to reparse it. The runner's PRAGMA
-- foreign_key_check before COMMIT then reads every entry against the new
-- key and rolls everything back if one names a lot that is not its user's.
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
-- now has one foreign key to lots, on (user_id, lot_id). Making and
-- dropping a table also moves the schema cookie on, which the edit did
-- not, so that every other connection reparses the schema too.
CREATE TABLE entries_key_edited (
    fk TEXT NOT NULL CONSTRAINT entries_key_is_user_and_lot CHECK (fk = '0 user_id>user_id,0 lot_id>lot_id')
) STRICT;
INSERT INTO entries_key_edited
SELECT group_concat(id || ' ' || "from" || '>' || "to", ',' ORDER BY id, seq)
FROM pragma_foreign_key_list('entries') WHERE "table" = 'lots';
DROP TABLE entries_key_edited;
