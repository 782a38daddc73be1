//! The one table of settings: every `config.toml` key and every `LLAMA_DASHBOARD_*` environment
//! variable, with its type, range and a one-line description (the default of a key comes from
//! [`Config::default`](crate::Config), so it is written once). Validation of every source, the
//! environment mapping, secret masking, "did you mean" and `docs/CONFIG.md` all read it.
//!
//! Adding a key: a field in [`crate::schema`] and a row here (tests check that they match and
//! that `docs/CONFIG.md` is regenerated).

use std::sync::LazyLock;

use crate::kind::{FloatRange, Kind};
use crate::paths::{CONFIG_DIR_ENV, DATA_DIR_ENV};

pub const ENV_PREFIX: &str = "LLAMA_DASHBOARD_";
/// Log filter directives for the program's own logs; overrides `log.level` and `-v`.
pub const LOG_ENV: &str = "LLAMA_DASHBOARD_LOG";

/// Who reads a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A `config.toml` key (dotted), also settable by its environment variable(s) and by flags.
    Key(&'static str),
    /// An environment variable the program reads that has no key in the file.
    Env,
    /// A variable read only by the test suite and the scripts; the program ignores it.
    Dev,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setting {
    pub scope: Scope,
    /// The environment variable; for a key it is always `LLAMA_DASHBOARD_<SECTION>_<KEY>`.
    pub env: &'static str,
    /// Other variables that set the same key (shorter names kept for compatibility).
    pub aliases: &'static [&'static str],
    pub kind: Kind,
    /// Masked in `config show`, the settings API and `Debug` output.
    pub secret: bool,
    /// The default in words, for settings that are not part of [`crate::Config`].
    pub default: Option<&'static str>,
    /// One line for the documentation.
    pub about: &'static str,
}

const fn key(key: &'static str, env: &'static str, kind: Kind, about: &'static str) -> Setting {
    Setting {
        scope: Scope::Key(key),
        env,
        aliases: &[],
        kind,
        secret: false,
        default: None,
        about,
    }
}

const fn env(env: &'static str, kind: Kind, default: &'static str, about: &'static str) -> Setting {
    Setting {
        scope: Scope::Env,
        env,
        aliases: &[],
        kind,
        secret: false,
        default: Some(default),
        about,
    }
}

const fn dev(env: &'static str, about: &'static str) -> Setting {
    Setting {
        scope: Scope::Dev,
        env,
        aliases: &[],
        kind: Kind::Path,
        secret: false,
        default: Some(""),
        about,
    }
}

impl Setting {
    const fn secret(mut self, aliases: &'static [&'static str]) -> Setting {
        self.secret = true;
        self.aliases = aliases;
        self
    }

    /// Other variables that set the key. One without our prefix is another tool's
    /// (`HF_ENDPOINT`): it counts below ours when both are set.
    const fn aliases(mut self, aliases: &'static [&'static str]) -> Setting {
        self.aliases = aliases;
        self
    }

    /// The dotted key, for a setting that is one.
    pub fn key(&self) -> Option<&'static str> {
        match self.scope {
            Scope::Key(k) => Some(k),
            Scope::Env | Scope::Dev => None,
        }
    }

    /// Every variable that sets it: the canonical name first, then the aliases.
    pub fn env_names(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.env).chain(self.aliases.iter().copied())
    }
}

const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}

/// `LogLevel`'s words, in order of severity.
pub(crate) const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error"];

/// `LogFormat`'s words.
pub(crate) const LOG_FORMATS: &[&str] = &["text", "json"];

/// Every setting, keys in file order, then the environment-only variables.
pub static SETTINGS: &[Setting] = &[
    // [server]
    key(
        "server.host",
        "LLAMA_DASHBOARD_SERVER_HOST",
        Kind::Word,
        "Address the HTTP server binds; loopback, so nothing is exposed until you ask.",
    ),
    key(
        "server.port",
        "LLAMA_DASHBOARD_SERVER_PORT",
        int(1, 65535),
        "TCP port of the HTTP server.",
    ),
    key(
        "server.api_key",
        "LLAMA_DASHBOARD_SERVER_API_KEY",
        Kind::Secret,
        "Bearer token required on inference routes; it opens the management routes only with `api_key_is_admin`. No key at all = open (loopback only, see `allow_open_network`).",
    )
    .secret(&["LLAMA_DASHBOARD_API_KEY"]),
    key(
        "server.admin_api_key",
        "LLAMA_DASHBOARD_SERVER_ADMIN_API_KEY",
        Kind::Secret,
        "Bearer token for everything, management included (`/api/*`, `/ws/*`, `POST /props`, slot actions, LoRA changes).",
    )
    .secret(&["LLAMA_DASHBOARD_ADMIN_API_KEY"]),
    key(
        "server.api_key_is_admin",
        "LLAMA_DASHBOARD_SERVER_API_KEY_IS_ADMIN",
        Kind::Bool,
        "`api_key` opens the management routes too (one key for everything); otherwise they need an admin key.",
    ),
    key(
        "server.keys",
        "LLAMA_DASHBOARD_SERVER_KEYS",
        Kind::Keys,
        "More keys, as `[[server.keys]]` tables: `key`, `name`, `admin` (false), `rate_limit_per_minute` (the server's), `enabled` (true; false = refused).",
    )
    .secret(&[]),
    key(
        "server.rate_limit_per_minute",
        "LLAMA_DASHBOARD_SERVER_RATE_LIMIT_PER_MINUTE",
        int(0, u32::MAX as i64),
        "Requests per minute per key (per client address on a server without keys); 0 = no limit.",
    ),
    key(
        "server.auth_failures_per_minute",
        "LLAMA_DASHBOARD_SERVER_AUTH_FAILURES_PER_MINUTE",
        int(1, u32::MAX as i64),
        "Wrong keys per minute from one client address before its keyed requests get 429 (slows key guessing).",
    ),
    key(
        "server.cors_origins",
        "LLAMA_DASHBOARD_SERVER_CORS_ORIGINS",
        Kind::List,
        "Browser origins allowed besides the same origin (and loopback origins on inference routes): `https://app.example`, a host name such as `app.example` (that host on http and https, any port), `localhost` (loopback origins, management too), `*` (any, inference routes only). Preflights are answered as llama-server does: 200, the origin reflected only when allowed.",
    ),
    key(
        "server.allowed_hosts",
        "LLAMA_DASHBOARD_SERVER_ALLOWED_HOSTS",
        Kind::List,
        "`Host` names accepted besides loopback names and IP addresses (`*` = any); guards against DNS rebinding. A server on a non-loopback address with keys accepts any `Host`.",
    ),
    key(
        "server.allow_open_network",
        "LLAMA_DASHBOARD_SERVER_ALLOW_OPEN_NETWORK",
        Kind::Bool,
        "Serve on a non-loopback address without any API key; refused otherwise (`serve --insecure-open`).",
    ),
    key(
        "server.timeout_seconds",
        "LLAMA_DASHBOARD_SERVER_TIMEOUT_SECONDS",
        int(1, u32::MAX as i64),
        "Longest a request may run, in seconds.",
    ),
    key(
        "server.body_limit_mb",
        "LLAMA_DASHBOARD_SERVER_BODY_LIMIT_MB",
        // 64 GiB: beyond that it is surely a typo.
        int(1, 65536),
        "Largest request body in MiB (image uploads for vision models need room).",
    ),
    key(
        "server.slots_endpoint",
        "LLAMA_DASHBOARD_SERVER_SLOTS_ENDPOINT",
        Kind::Bool,
        "Serve llama-server's `GET /slots`; off answers 501 (`serve --no-slots`).",
    ),
    key(
        "server.metrics_endpoint",
        "LLAMA_DASHBOARD_SERVER_METRICS_ENDPOINT",
        Kind::Bool,
        "Serve `GET /metrics` (Prometheus); off answers 501 as llama-server without `--metrics`.",
    ),
    key(
        "server.verbose_responses",
        "LLAMA_DASHBOARD_SERVER_VERBOSE_RESPONSES",
        Kind::Bool,
        "Add llama-server's `__verbose` debug object (the rendered prompt, the generation \
         settings) to every answer unless the request says `\"verbose\": false` (`serve --verbose`); \
         a request's `\"verbose\": true` asks for it either way, as llama-server.",
    ),
    key(
        "server.slot_save_path",
        "LLAMA_DASHBOARD_SERVER_SLOT_SAVE_PATH",
        Kind::Path,
        "Folder of the slot files `POST /slots/{id}?action=save|restore` writes and reads, \
         for every model (`serve --slot-save-path`); unset = `<data>/slots/<model>/`.",
    ),
    key(
        "server.default_model",
        "LLAMA_DASHBOARD_SERVER_DEFAULT_MODEL",
        Kind::Text,
        "The model (id, alias or path) a request gets when the model it names is not found, instead of 404; a request naming none gets it too when several models are available. `serve -m FILE` alone serves that one model whatever requests name, as llama-server does.",
    ),
    key(
        "server.ollama_port",
        "LLAMA_DASHBOARD_SERVER_OLLAMA_PORT",
        int(1, 65535),
        "Ollama's port: a second listener on `server.host` serving the same API (Ollama clients default to 11434), opened at start when `ollama_port_enabled` (`serve --ollama-port N` sets both); `POST /api/system/ports/ollama/start|stop` at run time.",
    ),
    key(
        "server.ollama_port_enabled",
        "LLAMA_DASHBOARD_SERVER_OLLAMA_PORT_ENABLED",
        Kind::Bool,
        "Open `server.ollama_port` at start (off by default: port 11434 may belong to a running Ollama).",
    ),
    key(
        "server.lmstudio_port",
        "LLAMA_DASHBOARD_SERVER_LMSTUDIO_PORT",
        int(1, 65535),
        "LM Studio's port: a second listener on `server.host` serving the same API (LM Studio clients default to 1234), opened at start when `lmstudio_port_enabled` (`serve --lmstudio-port N` sets both); `POST /api/system/ports/lmstudio/start|stop` at run time.",
    ),
    key(
        "server.lmstudio_port_enabled",
        "LLAMA_DASHBOARD_SERVER_LMSTUDIO_PORT_ENABLED",
        Kind::Bool,
        "Open `server.lmstudio_port` at start (off by default).",
    ),
    // [models]
    key(
        "models.dirs",
        "LLAMA_DASHBOARD_MODELS_DIRS",
        Kind::Paths,
        "Extra folders to scan for GGUF models; `<data_dir>/models` is always scanned.",
    ),
    key(
        "models.models_max",
        "LLAMA_DASHBOARD_MODELS_MODELS_MAX",
        // Each loaded model is a separate llama.cpp context; more is surely a typo.
        int(1, 1024),
        "How many models may be loaded at once.",
    ),
    key(
        "models.autoload",
        "LLAMA_DASHBOARD_MODELS_AUTOLOAD",
        Kind::Bool,
        "Load a model that a request names when it is not loaded; off, such a request is refused (400) until the model is loaded (llama-server's `--no-models-autoload`).",
    ),
    key(
        "models.sleep_idle_seconds",
        "LLAMA_DASHBOARD_MODELS_SLEEP_IDLE_SECONDS",
        int(i64::MIN, i64::MAX),
        "Unload a model after this many idle seconds; negative = never.",
    ),
    key(
        "models.client_keep_alive",
        "LLAMA_DASHBOARD_MODELS_CLIENT_KEEP_ALIVE",
        Kind::Bool,
        "Whether a request's `keep_alive` (Ollama's field) is honoured, within \
         `keep_alive_min_seconds`..=`keep_alive_max_seconds`; if not, every request gets \
         `sleep_idle_seconds`. A `keep_alive` of 0 unloads the model only when no other \
         request is using or waiting for it: the longest keep-alive of the requests that ran \
         together wins.",
    ),
    key(
        "models.keep_alive_min_seconds",
        "LLAMA_DASHBOARD_MODELS_KEEP_ALIVE_MIN_SECONDS",
        int(0, i64::MAX),
        "The shortest `keep_alive` a request may ask for; 0 lets `keep_alive: 0` unload a \
         model at once (Ollama's way); raise it to stop one client from making others reload.",
    ),
    key(
        "models.keep_alive_max_seconds",
        "LLAMA_DASHBOARD_MODELS_KEEP_ALIVE_MAX_SECONDS",
        int(i64::MIN, i64::MAX),
        "The longest `keep_alive` a request may ask for (longer ones, and \"forever\", are cut to \
         it); negative = no limit, so clients may pin a model forever.",
    ),
    key(
        "models.parallel",
        "LLAMA_DASHBOARD_MODELS_PARALLEL",
        // llama.cpp's own limit on parallel sequences (`LLAMA_MAX_SEQ`).
        int(1, 256),
        "Slots (parallel sequences) per loaded model.",
    ),
    key(
        "models.ctx_size",
        "LLAMA_DASHBOARD_MODELS_CTX_SIZE",
        int(0, u32::MAX as i64),
        "Context tokens per slot; 0 = the model's training context.",
    ),
    key(
        "models.n_gpu_layers",
        "LLAMA_DASHBOARD_MODELS_N_GPU_LAYERS",
        Kind::GpuLayers,
        "Layers to offload to the GPU: `auto` (as many as fit) or a count.",
    ),
    key(
        "models.threads",
        "LLAMA_DASHBOARD_MODELS_THREADS",
        Kind::AutoInt { min: 1, max: 4096 },
        "CPU threads per model; `auto` = llama.cpp's choice.",
    ),
    key(
        "models.prefill_chunk",
        "LLAMA_DASHBOARD_MODELS_PREFILL_CHUNK",
        int(1, 65536),
        "Prompt tokens per decode step while other slots generate (chunked prefill): smaller \
         keeps running streams smoother while a long prompt is read, larger reads it faster.",
    ),
    key(
        "models.chat_template",
        "LLAMA_DASHBOARD_MODELS_CHAT_TEMPLATE",
        Kind::Text,
        "Chat template for every model without one set for it in the dashboard: one of \
         llama.cpp's built-in names (`chatml`, `llama3`, `gemma`, `mistral-v7`, `command-r`, ...) \
         or Jinja template text; unset = the model's own (`--chat-template`, \
         `--chat-template-file`).",
    ),
    key(
        "models.jinja",
        "LLAMA_DASHBOARD_MODELS_JINJA",
        Kind::Bool,
        "Prompt with the Jinja chat template in the model's file; false = the built-in \
         template of the model's family, like llama-server's built-in formats (`--no-jinja`).",
    ),
    key(
        "models.isolation",
        "LLAMA_DASHBOARD_MODELS_ISOLATION",
        Kind::Choice(&["process", "thread"]),
        "Where each loaded model runs: `process`, a `llama-dashboard worker` child process of its \
         own (an abort or crash inside llama.cpp ends that model's requests with 503 and the \
         model is loaded again by the next request; the server and other models go on), or \
         `thread`, inside the server's process (for platforms or debugging where a child is \
         not wanted). Applies to the next load.",
    ),
    key(
        "models.crash_limit",
        "LLAMA_DASHBOARD_MODELS_CRASH_LIMIT",
        int(1, 1000),
        "A model whose worker crashed this many times within `crash_window_seconds` is marked \
         failed with the reason instead of loaded again (until the window has passed or it is \
         loaded by hand); reloads after the second crash wait 1 s, doubling each time.",
    ),
    key(
        "models.crash_window_seconds",
        "LLAMA_DASHBOARD_MODELS_CRASH_WINDOW_SECONDS",
        int(1, 86_400 * 365),
        "The window `crash_limit` counts crashes in.",
    ),
    // [sources]
    key(
        "sources.ollama",
        "LLAMA_DASHBOARD_SOURCES_OLLAMA",
        Kind::Bool,
        "List the models in Ollama's store (read-only).",
    ),
    key(
        "sources.huggingface",
        "LLAMA_DASHBOARD_SOURCES_HUGGINGFACE",
        Kind::Bool,
        "List the GGUF models in the Hugging Face hub cache (read-only).",
    ),
    key(
        "sources.lmstudio",
        "LLAMA_DASHBOARD_SOURCES_LMSTUDIO",
        Kind::Bool,
        "List the models in LM Studio's folder (read-only).",
    ),
    key(
        "sources.ollama_dir",
        "LLAMA_DASHBOARD_SOURCES_OLLAMA_DIR",
        Kind::Path,
        "Ollama's models folder; unset = `$OLLAMA_MODELS`, else `~/.ollama/models`.",
    ),
    key(
        "sources.huggingface_dir",
        "LLAMA_DASHBOARD_SOURCES_HUGGINGFACE_DIR",
        Kind::Path,
        "Hugging Face hub cache; unset = `$HF_HUB_CACHE`, `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.",
    ),
    key(
        "sources.lmstudio_dir",
        "LLAMA_DASHBOARD_SOURCES_LMSTUDIO_DIR",
        Kind::Path,
        "LM Studio's models folder; unset = `~/.lmstudio/models` (or the pre-0.3 `~/.cache/lm-studio/models`).",
    ),
    // [sampling]
    key(
        "sampling.temperature",
        "LLAMA_DASHBOARD_SAMPLING_TEMPERATURE",
        Kind::Float(FloatRange::AtLeast(0.0)),
        "Default temperature; 0 = greedy. Overridden per model and per request.",
    ),
    key(
        "sampling.top_k",
        "LLAMA_DASHBOARD_SAMPLING_TOP_K",
        // llama.cpp takes `top_k` as an `int32_t`.
        int(0, i32::MAX as i64),
        "Default top-k; 0 = disabled.",
    ),
    key(
        "sampling.top_p",
        "LLAMA_DASHBOARD_SAMPLING_TOP_P",
        Kind::Float(FloatRange::Between(0.0, 1.0)),
        "Default top-p (nucleus sampling); 1 = disabled.",
    ),
    key(
        "sampling.min_p",
        "LLAMA_DASHBOARD_SAMPLING_MIN_P",
        Kind::Float(FloatRange::Between(0.0, 1.0)),
        "Default min-p; 0 = disabled.",
    ),
    key(
        "sampling.repeat_penalty",
        "LLAMA_DASHBOARD_SAMPLING_REPEAT_PENALTY",
        Kind::Float(FloatRange::Above(0.0)),
        "Default repetition penalty; 1 = disabled.",
    ),
    key(
        "sampling.seed",
        "LLAMA_DASHBOARD_SAMPLING_SEED",
        int(-1, u32::MAX as i64),
        "Seed of requests that give none; -1 = random (`serve --seed`).",
    ),
    key(
        "sampling.n_predict",
        "LLAMA_DASHBOARD_SAMPLING_N_PREDICT",
        int(-1, u32::MAX as i64),
        "Tokens a request that sets no limit may generate; -1 = no limit (`serve -n`). `limits.max_response_tokens` still caps every request.",
    ),
    // [reasoning]
    key(
        "reasoning.format",
        "LLAMA_DASHBOARD_REASONING_FORMAT",
        Kind::Choice(&["none", "auto", "deepseek", "deepseek-legacy"]),
        "How a thinking model's thoughts are returned: `none` leaves them in `content`; `auto`, `deepseek` and `deepseek-legacy` put them in `reasoning_content` (also in stream deltas), as llama-server's `--reasoning-format`. Requests may set `reasoning_format`.",
    ),
    key(
        "reasoning.thinking",
        "LLAMA_DASHBOARD_REASONING_THINKING",
        Kind::Choice(&["on", "off", "auto"]),
        "Whether thinking models think (the template's `enable_thinking`): `auto` turns it on for templates that support it; `chat_template_kwargs.enable_thinking` overrides it per request. llama-server's `--reasoning`.",
    ),
    key(
        "reasoning.budget",
        "LLAMA_DASHBOARD_REASONING_BUDGET",
        int(-1, i32::MAX as i64),
        "Thinking budget in tokens: -1 = no limit, 0 = no thinking (as `reasoning.thinking = off`), N = after N tokens of thinking the block is closed for the model (the message below, then the end tag) and it answers. llama-server's `--reasoning-budget`; requests may set `reasoning_budget_tokens` (or `thinking_budget_tokens`).",
    ),
    key(
        "reasoning.budget_message",
        "LLAMA_DASHBOARD_REASONING_BUDGET_MESSAGE",
        Kind::Text,
        "Written before the end tag when the thinking budget closes the block, e.g. \"Time is up, answering now.\" (empty: the tag alone). llama-server's `--reasoning-budget-message`; requests may set `reasoning_budget_message`.",
    ),
    // [limits]
    key(
        "limits.max_prompt_chars",
        "LLAMA_DASHBOARD_LIMITS_MAX_PROMPT_CHARS",
        int(0, i64::MAX),
        "Characters of prompt text one generating request may send (chat messages, a completion or infill prompt); more is refused with 413; 0 = no cap (seed 003's example: 8192).",
    ),
    key(
        "limits.max_response_tokens",
        "LLAMA_DASHBOARD_LIMITS_MAX_RESPONSE_TOKENS",
        int(0, u32::MAX as i64),
        "Tokens one response may generate: a request asking more (`max_tokens`, `n_predict`, ...) is refused with 400, one asking no limit gets this one; 0 = no cap (seed 003's example: 2048).",
    ),
    key(
        "limits.max_logit_bias",
        "LLAMA_DASHBOARD_LIMITS_MAX_LOGIT_BIAS",
        int(0, u32::MAX as i64),
        "Entries one request's `logit_bias` may hold; more is refused with 400.",
    ),
    key(
        "limits.max_stop",
        "LLAMA_DASHBOARD_LIMITS_MAX_STOP",
        int(0, u32::MAX as i64),
        "Stop strings one request may give (and DRY sequence breakers, when DRY is on); more is refused with 400.",
    ),
    key(
        "limits.max_stop_chars",
        "LLAMA_DASHBOARD_LIMITS_MAX_STOP_CHARS",
        int(0, u32::MAX as i64),
        "Characters across one request's stop strings (and across its DRY sequence breakers); more is refused with 400.",
    ),
    key(
        "limits.max_prompt_token_ids",
        "LLAMA_DASHBOARD_LIMITS_MAX_PROMPT_TOKEN_IDS",
        int(1, u32::MAX as i64),
        "Tokens a prompt given as token ids may hold (completions, embeddings); the body is read no further, and the request is refused with 413.",
    ),
    key(
        "limits.max_documents",
        "LLAMA_DASHBOARD_LIMITS_MAX_DOCUMENTS",
        int(1, u32::MAX as i64),
        "Documents one rerank request may rank; more is refused with 413.",
    ),
    key(
        "limits.max_completions",
        "LLAMA_DASHBOARD_LIMITS_MAX_COMPLETIONS",
        int(1, u32::MAX as i64),
        "Completions one request may ask for (`/completion`, `/v1/completions`): its prompts times `n`; more is refused with 400 before any is queued.",
    ),
    key(
        "limits.max_embedding_inputs",
        "LLAMA_DASHBOARD_LIMITS_MAX_EMBEDDING_INPUTS",
        int(1, u32::MAX as i64),
        "Inputs one embeddings request may send.",
    ),
    key(
        "limits.max_embedding_tokens",
        "LLAMA_DASHBOARD_LIMITS_MAX_EMBEDDING_TOKENS",
        int(1, i64::MAX),
        "Tokens across the inputs of one embeddings request.",
    ),
    key(
        "limits.max_embedding_floats",
        "LLAMA_DASHBOARD_LIMITS_MAX_EMBEDDING_FLOATS",
        int(1, i64::MAX),
        "Floats one embeddings response may hold (per-token embeddings are tokens x dimensions).",
    ),
    key(
        "limits.max_grammar_depth",
        "LLAMA_DASHBOARD_LIMITS_MAX_GRAMMAR_DEPTH",
        int(1, 16_384),
        "Nesting depth of a grammar (groups and rule references, and of a JSON schema); deeper ones are refused before llama.cpp parses them. At most 16384, the depth the engine's grammar threads are measured to hold.",
    ),
    key(
        "limits.max_grammar_rules",
        "LLAMA_DASHBOARD_LIMITS_MAX_GRAMMAR_RULES",
        int(1, 1_000_000),
        "Rules one grammar may define.",
    ),
    key(
        "limits.max_waiting_per_model",
        "LLAMA_DASHBOARD_LIMITS_MAX_WAITING_PER_MODEL",
        int(0, u32::MAX as i64),
        "Requests that may wait for a busy model's slots; more get 429 with `Retry-After`.",
    ),
    key(
        "limits.max_in_flight",
        "LLAMA_DASHBOARD_LIMITS_MAX_IN_FLIGHT",
        int(1, u32::MAX as i64),
        "Requests that may run or wait across all models; more get 503 with `Retry-After`.",
    ),
    key(
        "limits.header_timeout_seconds",
        "LLAMA_DASHBOARD_LIMITS_HEADER_TIMEOUT_SECONDS",
        int(1, 3600),
        "Seconds a client may take to send the request head.",
    ),
    key(
        "limits.body_timeout_seconds",
        "LLAMA_DASHBOARD_LIMITS_BODY_TIMEOUT_SECONDS",
        int(1, 86400),
        "Seconds a client may take to send the request body.",
    ),
    // [sessions]
    key(
        "sessions.max_history_messages",
        "LLAMA_DASHBOARD_SESSIONS_MAX_HISTORY_MESSAGES",
        int(1, 100_000),
        "Messages of a chat session's active branch sent to the model at most, besides the system prompt (seed 003: the last 20); older ones, and any that do not fit the model's context, are left out and the answer lists them.",
    ),
    key(
        "sessions.max_sessions",
        "LLAMA_DASHBOARD_SESSIONS_MAX_SESSIONS",
        int(1, u32::MAX as i64),
        "Chat sessions the database may hold; creating or importing one more is refused with 409 until some are deleted.",
    ),
    key(
        "sessions.max_message_chars",
        "LLAMA_DASHBOARD_SESSIONS_MAX_MESSAGE_CHARS",
        int(1, u32::MAX as i64),
        "Characters one message sent to a chat session (send, edit, import) may hold; more is refused with 413.",
    ),
    // [download]
    key(
        "download.max_concurrent",
        "LLAMA_DASHBOARD_DOWNLOAD_MAX_CONCURRENT",
        int(1, 64),
        "Downloads running at once; the others wait in the order they were asked for.",
    ),
    key(
        "download.hf_endpoint",
        "LLAMA_DASHBOARD_DOWNLOAD_HF_ENDPOINT",
        Kind::Word,
        "Hugging Face endpoint (a mirror such as https://hf-mirror.com); `HF_ENDPOINT` sets it, as huggingface_hub reads it.",
    )
    .aliases(&["HF_ENDPOINT"]),
    key(
        "download.hf_token",
        "LLAMA_DASHBOARD_DOWNLOAD_HF_TOKEN",
        Kind::Secret,
        "Hugging Face token for gated and private repositories, sent to `hf_endpoint` only; `HF_TOKEN` sets it.",
    )
    .secret(&["HF_TOKEN"]),
    key(
        "download.hf_mirror",
        "LLAMA_DASHBOARD_DOWNLOAD_HF_MIRROR",
        Kind::Text,
        "A Hugging Face mirror (e.g. https://hf-mirror.com) used as `hf_mirror_mode` says; unset = none.",
    ),
    key(
        "download.hf_mirror_mode",
        "LLAMA_DASHBOARD_DOWNLOAD_HF_MIRROR_MODE",
        Kind::Choice(&["auto", "always"]),
        "`auto`: the mirror when `hf_endpoint` does not answer at all (a download continues there); `always`: only the mirror.",
    ),
    key(
        "download.ollama_library_url",
        "LLAMA_DASHBOARD_DOWNLOAD_OLLAMA_LIBRARY_URL",
        Kind::Word,
        "The Ollama library website read to search Ollama models and list a model's tags (`download search --source ollama`, `/api/models/search?source=ollama`).",
    ),
    key(
        "download.parts",
        "LLAMA_DASHBOARD_DOWNLOAD_PARTS",
        int(1, 16),
        "Connections per file: a large file is fetched in up to this many ranged parts at once when the server allows it.",
    ),
    key(
        "download.free_space_margin_mb",
        "LLAMA_DASHBOARD_DOWNLOAD_FREE_SPACE_MARGIN_MB",
        int(0, 1 << 30),
        "MiB kept free on the disk: a download that would leave less is refused before it starts.",
    ),
    key(
        "download.resume_on_start",
        "LLAMA_DASHBOARD_DOWNLOAD_RESUME_ON_START",
        Kind::Bool,
        "Unfinished downloads resume when `serve` starts; off = they come back paused.",
    ),
    key(
        "download.insecure",
        "LLAMA_DASHBOARD_DOWNLOAD_INSECURE",
        Kind::Bool,
        "Allow plain-http Ollama registries (`ollama pull --insecure`), e.g. a local registry.",
    ),
    // [tools]
    key(
        "tools.call_timeout_seconds",
        "LLAMA_DASHBOARD_TOOLS_CALL_TIMEOUT_SECONDS",
        int(1, 86400),
        "A tool call (MCP or built-in) running longer is cut off; the model reads that it timed out. An MCP server's own `timeout_ms` wins.",
    ),
    key(
        "tools.max_steps",
        "LLAMA_DASHBOARD_TOOLS_MAX_STEPS",
        int(1, 100),
        "Generations one chat request may run with server tool calls in between (`server_tools`); the last must answer.",
    ),
    key(
        "tools.max_mcp_servers",
        "LLAMA_DASHBOARD_TOOLS_MAX_MCP_SERVERS",
        int(1, 1000),
        "MCP servers held at most (stored ones and those of `--mcp-servers-config/-json` together; each stdio server is a process). Adding more is refused.",
    ),
    key(
        "tools.inference_keys",
        "LLAMA_DASHBOARD_TOOLS_INFERENCE_KEYS",
        Kind::Bool,
        "Inference keys may use server tools (`server_tools` in a chat, `POST /tools`); off = only the admin key.",
    ),
    key(
        "tools.mcp_servers_config",
        "LLAMA_DASHBOARD_TOOLS_MCP_SERVERS_CONFIG",
        Kind::Path,
        "A `{\"mcpServers\": ...}` file (Claude Desktop / Cursor format) whose servers run for this process, besides the stored ones; `serve --mcp-servers-config`.",
    ),
    key(
        "tools.mcp_servers_json",
        "LLAMA_DASHBOARD_TOOLS_MCP_SERVERS_JSON",
        Kind::Text,
        "The same as inline JSON; `serve --mcp-servers-json`.",
    ),
    key(
        "tools.datetime",
        "LLAMA_DASHBOARD_TOOLS_DATETIME",
        Kind::Bool,
        "Offer the built-in `current_datetime` tool.",
    ),
    key(
        "tools.web_search_url",
        "LLAMA_DASHBOARD_TOOLS_WEB_SEARCH_URL",
        Kind::Text,
        "A SearXNG-style search endpoint (`GET <url>?q=...&format=json`) for the built-in `web_search` tool; unset = no search tool.",
    ),
    key(
        "tools.web_search_api_key",
        "LLAMA_DASHBOARD_TOOLS_WEB_SEARCH_API_KEY",
        Kind::Secret,
        "Sent to `web_search_url` as `Authorization: Bearer`.",
    )
    .secret(&[]),
    key(
        "tools.fetch",
        "LLAMA_DASHBOARD_TOOLS_FETCH",
        Kind::Bool,
        "Offer the built-in `fetch_url` tool (a page as readable text).",
    ),
    key(
        "tools.fetch_allow_private",
        "LLAMA_DASHBOARD_TOOLS_FETCH_ALLOW_PRIVATE",
        Kind::Bool,
        "`fetch_url` may reach loopback and private addresses (refused by default, after resolving the name, at every redirect).",
    ),
    key(
        "tools.fetch_max_bytes",
        "LLAMA_DASHBOARD_TOOLS_FETCH_MAX_BYTES",
        int(1024, 1 << 30),
        "The most bytes `fetch_url` reads from one page; the rest is cut.",
    ),
    key(
        "tools.fetch_timeout_seconds",
        "LLAMA_DASHBOARD_TOOLS_FETCH_TIMEOUT_SECONDS",
        int(1, 600),
        "Seconds `fetch_url` and `web_search` may take.",
    ),
    key(
        "tools.file_roots",
        "LLAMA_DASHBOARD_TOOLS_FILE_ROOTS",
        Kind::Paths,
        "Folders the built-in read-only file tools (`read_file`, `file_glob_search`, `grep_search`) may read; empty = no file tools.",
    ),
    // [log]
    key(
        "log.level",
        "LLAMA_DASHBOARD_LOG_LEVEL",
        Kind::Choice(LOG_LEVELS),
        "Least severe messages logged (stderr and the logs API).",
    ),
    key(
        "log.format",
        "LLAMA_DASHBOARD_LOG_FORMAT",
        Kind::Choice(LOG_FORMATS),
        "`serve`'s lines on stderr: `text`, or `json` (one object per line); the `--log-format` flag wins.",
    ),
    // The environment only.
    env(
        CONFIG_DIR_ENV,
        Kind::Path,
        "`~/.config/llama-dashboard`",
        "Folder holding `config.toml`; the `--config-dir` flag wins.",
    ),
    env(
        DATA_DIR_ENV,
        Kind::Path,
        "`~/.local/share/llama-dashboard`",
        "Folder for the database, downloaded models and saved slots; the `--data-dir` flag wins.",
    ),
    env(
        "LLAMA_DASHBOARD_WORKER_EXE",
        Kind::Path,
        "the running `llama-dashboard`",
        "The executable started as each model's worker (`models.isolation = \"process\"`).",
    ),
    env(
        LOG_ENV,
        Kind::Filter,
        "`log.level` and `-v`",
        "Log filter in `tracing` syntax (`debug,tower_http=warn`); overrides `log.level` and `-v`.",
    ),
    // Tests and scripts.
    dev(
        "LLAMA_DASHBOARD_TEST_MODEL",
        "Test model: SmolLM2-135M-Instruct Q4_1 (`scripts/fetch-test-models.sh` prints it).",
    ),
    dev(
        "LLAMA_DASHBOARD_TEST_MODEL_2",
        "Second test model: Gemma 3 270M Q4_K_M, no chat template.",
    ),
    dev(
        "LLAMA_DASHBOARD_PYTHON",
        "A Python with `gguf` installed, for the cross-checks (`scripts/setup.sh` makes one).",
    ),
    dev(
        "LLAMA_DASHBOARD_VENV",
        "Where `scripts/setup.sh` creates that Python environment.",
    ),
    dev(
        "LLAMA_DASHBOARD_MODEL_CACHE",
        "Where `scripts/fetch-test-models.sh` keeps the test models.",
    ),
];

/// The dotted keys, in file order.
pub(crate) static KEYS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| SETTINGS.iter().filter_map(Setting::key).collect());

/// The row of a dotted key.
pub fn setting(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key() == Some(key))
}

/// The row an environment variable belongs to (by its name or an alias).
pub fn setting_for_env(var: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.env_names().any(|n| n == var))
}

/// The `[section]` names, in file order.
pub(crate) fn sections() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for k in KEYS.iter() {
        let section = k.split_once('.').map_or(*k, |(s, _)| s);
        if !out.contains(&section) {
            out.push(section);
        }
    }
    out
}

/// The closest of `candidates` to a mistyped `input`, if any is close enough.
///
/// Each candidate comes with its short name (the part after the section: `port` for
/// `server.port`). A candidate whose short name is the input's last segment wins outright
/// (`port` → `server.port`, `server.ctx_size` → `models.ctx_size`); otherwise the most similar
/// full or short name, by the Damerau–Levenshtein distance relative to its length.
pub(crate) fn closest<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<&'a str> {
    let input = input.to_ascii_lowercase();
    let tail = input.rsplit('.').next().unwrap_or(&input);
    let mut best: Option<(f64, &'a str)> = None;
    for (name, short) in candidates {
        let (lname, lshort) = (name.to_ascii_lowercase(), short.to_ascii_lowercase());
        if lshort == tail {
            return Some(name);
        }
        let score = strsim::normalized_damerau_levenshtein(&input, &lname)
            .max(strsim::normalized_damerau_levenshtein(tail, &lshort));
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, name));
        }
    }
    // Below this, the "suggestion" is usually a different word that shares a few letters.
    const CLOSE_ENOUGH: f64 = 0.7;
    best.filter(|(score, _)| *score >= CLOSE_ENOUGH)
        .map(|(_, name)| name)
}

/// "Did you mean" for a dotted key; a bare word may also be a mistyped `[section]`.
pub(crate) fn suggest_key(input: &str) -> Option<&'static str> {
    let sections = sections()
        .into_iter()
        .filter(|_| !input.contains('.'))
        .map(|s| (s, s));
    closest(input, key_candidates().chain(sections))
}

fn key_candidates() -> impl Iterator<Item = (&'static str, &'static str)> {
    KEYS.iter()
        .map(|k| (*k, k.split_once('.').map_or(*k, |(_, t)| t)))
}

/// "Did you mean" for an unknown `LLAMA_DASHBOARD_*` variable.
pub(crate) fn suggest_env(var: &str) -> Option<&'static str> {
    let strip = |v: &'static str| v.strip_prefix(ENV_PREFIX).unwrap_or(v);
    let candidates = SETTINGS.iter().flat_map(|s| {
        let short = match s.key() {
            Some(k) => k.split_once('.').map_or(k, |(_, t)| t),
            None => strip(s.env),
        };
        s.env_names().map(move |n| (strip(n), short))
    });
    let wanted = var.strip_prefix(ENV_PREFIX).unwrap_or(var);
    let found = closest(wanted, candidates)?;
    SETTINGS
        .iter()
        .flat_map(Setting::env_names)
        .find(|n| strip(n) == found)
}
