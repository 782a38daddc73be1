-- Schema version 1.
--
-- Released migrations are never edited: databases in the field already ran them, so a change
-- here would make old and new installs differ. Add a new numbered file instead.

-- The user's settings for a model, keyed by the catalog's model id. A row exists only once the
-- user changed something; a missing row means "all defaults".
CREATE TABLE model_settings (
    model_id      TEXT    NOT NULL PRIMARY KEY,
    -- A second name for the model in API requests. NOCASE: `Qwen` and `qwen` may not belong to
    -- two different models (ASCII case only, which is what NOCASE folds).
    alias         TEXT    COLLATE NOCASE UNIQUE,
    favorite      INTEGER NOT NULL DEFAULT 0 CHECK (favorite IN (0, 1)),
    -- JSON array of strings; NULL = use the capabilities detected from the file.
    capabilities  TEXT    CHECK (capabilities IS NULL OR json_valid(capabilities)),
    -- Jinja chat template; NULL = use the one embedded in the GGUF.
    chat_template TEXT,
    -- JSON object of launch parameters (ctx_size, n_gpu_layers, temperature, ...).
    launch_params TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(launch_params)),
    -- Unix seconds.
    updated_at    INTEGER NOT NULL
) STRICT;

-- Benchmark results, kept for comparison over time.
CREATE TABLE bench_runs (
    id         INTEGER NOT NULL PRIMARY KEY,
    model_id   TEXT    NOT NULL,
    -- Unix seconds.
    created_at INTEGER NOT NULL,
    params     TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(params)),
    results    TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(results))
) STRICT;

CREATE INDEX bench_runs_by_model ON bench_runs (model_id, created_at);
