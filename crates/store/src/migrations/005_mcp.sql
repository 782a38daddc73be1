-- Schema version 5 (issue 14): MCP servers the admin added, so they start again after a restart.
-- (004 is the chat sessions' migration.)
--
-- Released migrations are never edited; add a new numbered file instead.

-- One MCP server under its name (the prefix of its tools' names, `<name>_<tool>`). `config`
-- is the server's entry in the `{"mcpServers": {name: entry}}` format people already have
-- (`command`/`args`/`env`/`cwd`, or `url`/`headers`/`type`, plus `timeout_ms`), so an
-- export is the stored entries as they are.
CREATE TABLE mcp_servers (
    name       TEXT    NOT NULL PRIMARY KEY,
    config     TEXT    NOT NULL CHECK (json_valid(config) AND json_type(config) = 'object'),
    enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    -- Unix seconds.
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
