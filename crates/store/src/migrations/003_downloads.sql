-- Schema version 3: download tasks (issue 11), so that unfinished downloads come back after a
-- restart.
--
-- Released migrations are never edited; add a new numbered file instead.

-- A download task: what it fetches (the queue's task spec as JSON, never a credential: tokens
-- come from the settings again when it runs) and its last state. Byte counts are not stored:
-- the partial files on disk are the truth, and a resume starts from them.
CREATE TABLE downloads (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id >= 0),
    label      TEXT    NOT NULL,
    spec       TEXT    NOT NULL CHECK (json_valid(spec)),
    state      TEXT    NOT NULL CHECK (state IN
                   ('queued', 'downloading', 'paused', 'verifying', 'completed', 'failed')),
    -- Why it failed (state = 'failed' only).
    reason     TEXT,
    -- Unix seconds.
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
