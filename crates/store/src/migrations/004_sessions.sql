-- Schema version 4: chat sessions (issue 13). A session's messages form a tree (each points at
-- its parent); the active branch is the path from the root to the session's active leaf.
-- Editing a message or regenerating an answer adds a sibling, so earlier branches stay.
--
-- Released migrations are never edited; add a new numbered file instead.

CREATE TABLE sessions (
    id          TEXT    NOT NULL PRIMARY KEY,
    title       TEXT    NOT NULL,
    -- JSON array of the model names the session talks to (the first is the default).
    models      TEXT    NOT NULL CHECK (json_valid(models)),
    -- JSON object: sampling parameters and the system prompt.
    params      TEXT    NOT NULL CHECK (json_valid(params)),
    -- The active branch's last message (NULL: no message yet). Not a foreign key: the
    -- service keeps it pointing at a message of this session.
    active_leaf INTEGER,
    -- Unix seconds.
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX sessions_by_update ON sessions (updated_at DESC);

CREATE TABLE session_messages (
    id                INTEGER NOT NULL PRIMARY KEY,
    session_id        TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    -- NULL for a root message; deleting a message deletes the branches below it.
    parent_id         INTEGER REFERENCES session_messages (id) ON DELETE CASCADE,
    role              TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content           TEXT    NOT NULL,
    -- A thinking model's thoughts (assistant messages).
    reasoning         TEXT,
    -- The model that wrote it (assistant messages).
    model             TEXT,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    -- JSON object: llama-server's timings of the answer.
    timings           TEXT    CHECK (timings IS NULL OR json_valid(timings)),
    -- Assistant messages: 'generating' while the answer is written, then stop, length,
    -- tool_calls, cancelled (stopped by the user or the client left) or interrupted (the
    -- server stopped while it was written). NULL for other roles.
    finish_reason     TEXT,
    -- JSON array of the message ids left out of the prompt the answer was written from.
    left_out          TEXT    CHECK (left_out IS NULL OR json_valid(left_out)),
    -- Unix seconds.
    created_at        INTEGER NOT NULL
) STRICT;

CREATE INDEX session_messages_by_session ON session_messages (session_id, id);
CREATE INDEX session_messages_by_parent ON session_messages (parent_id);
CREATE INDEX session_messages_generating ON session_messages (finish_reason)
    WHERE finish_reason = 'generating';
