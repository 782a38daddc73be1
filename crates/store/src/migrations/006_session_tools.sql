-- Schema version 6 (issue 14 in sessions): answers that call server tools. The assistant turn
-- keeps its calls (`tool_calls`), each result is a `tool` message below it (`tool_call_id`,
-- `tool_name`, `tool_error`), so the tree holds the whole exchange and later turns send it
-- back to the model.
--
-- SQLite cannot change a CHECK constraint in place, so `session_messages` is rebuilt (the
-- documented way: a new table, the rows copied in id order so every parent exists before its
-- children, the old table dropped, the new one renamed). Nothing references
-- `session_messages` but itself, so dropping the old table cascades nowhere else.
--
-- Released migrations are never edited; add a new numbered file instead.

CREATE TABLE session_messages_v6 (
    id                INTEGER NOT NULL PRIMARY KEY,
    session_id        TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    parent_id         INTEGER REFERENCES session_messages_v6 (id) ON DELETE CASCADE,
    role              TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    content           TEXT    NOT NULL,
    reasoning         TEXT,
    model             TEXT,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    timings           TEXT    CHECK (timings IS NULL OR json_valid(timings)),
    finish_reason     TEXT,
    left_out          TEXT    CHECK (left_out IS NULL OR json_valid(left_out)),
    created_at        INTEGER NOT NULL,
    -- Assistant messages: JSON array of the calls made, [{"id", "name", "arguments"}]
    -- (`arguments` is the JSON text the model wrote).
    tool_calls        TEXT    CHECK (tool_calls IS NULL OR json_valid(tool_calls)),
    -- Tool messages: the call answered, the tool's name, whether the result is an error.
    tool_call_id      TEXT,
    tool_name         TEXT,
    tool_error        INTEGER CHECK (tool_error IS NULL OR tool_error IN (0, 1))
) STRICT;

INSERT INTO session_messages_v6 (id, session_id, parent_id, role, content, reasoning, model,
    prompt_tokens, completion_tokens, timings, finish_reason, left_out, created_at)
SELECT id, session_id, parent_id, role, content, reasoning, model, prompt_tokens,
    completion_tokens, timings, finish_reason, left_out, created_at
FROM session_messages ORDER BY id;

DROP TABLE session_messages;
ALTER TABLE session_messages_v6 RENAME TO session_messages;

CREATE INDEX session_messages_by_session ON session_messages (session_id, id);
CREATE INDEX session_messages_by_parent ON session_messages (parent_id);
CREATE INDEX session_messages_generating ON session_messages (finish_reason)
    WHERE finish_reason = 'generating';
