-- Schema version 2: deployments (seed 001 §3), so they survive a restart.
--
-- Released migrations are never edited; add a new numbered file instead.

-- A deployment: a model started under a name with its load parameters and, optionally, a
-- port of its own. `running` is what the user asked for last (start/restart = 1, stop = 0):
-- on start-up the server starts again every deployment with running = 1.
CREATE TABLE deployments (
    id         TEXT    NOT NULL PRIMARY KEY,
    model_id   TEXT    NOT NULL,
    -- JSON object of load parameters (ctx_size, n_gpu_layers, ...).
    params     TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(params)),
    -- The port it listens on besides the server's; NULL = none, 0 = any free port.
    port       INTEGER CHECK (port IS NULL OR port BETWEEN 0 AND 65535),
    running    INTEGER NOT NULL DEFAULT 0 CHECK (running IN (0, 1)),
    restarts   INTEGER NOT NULL DEFAULT 0 CHECK (restarts >= 0),
    -- Unix seconds.
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
