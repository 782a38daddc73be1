//! The typed configuration: one struct per `[section]` of `config.toml`.
//!
//! Every struct is `#[serde(deny_unknown_fields, default)]`: a key missing from the file takes its
//! default, and a key this build does not know is an error (a typo must not be silently ignored).
//! Each field has a row in the settings table ([`crate::table`]) giving its type, range and
//! description; the defaults are here, in the `Default` impls.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Paths are written with `to_string_lossy`: TOML text must be UTF-8, and a path that is not can
/// only be put in a `Config` by code, never read from a file, variable or `set`. This keeps
/// serialization infallible.
mod lossy {
    use std::path::PathBuf;

    use serde::Serializer;

    pub fn paths<S: Serializer>(v: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|p| p.to_string_lossy()))
    }

    pub fn opt_path<S: Serializer>(v: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(p) => s.serialize_str(&p.to_string_lossy()),
            None => s.serialize_none(),
        }
    }
}

/// The whole configuration.
///
/// `Config::default()` needs no paths: `models.dirs` lists *extra* model directories and defaults
/// to empty, because `<data_dir>/models` (where downloads go) is always scanned. Use
/// [`Config::model_dirs`] to get the full list; this keeps the defaults independent of
/// `--data-dir`, so a saved file never hard-codes a data directory the user did not choose.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub models: ModelsConfig,
    pub sources: SourcesConfig,
    pub sampling: SamplingConfig,
    pub reasoning: ReasoningConfig,
    pub limits: LimitsConfig,
    pub download: DownloadConfig,
    pub sessions: SessionsConfig,
    pub tools: ToolsConfig,
    pub log: LogConfig,
}

/// `[server]`: the HTTP listener.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to bind; loopback by default so nothing is exposed until the user asks.
    pub host: String,
    /// 1..=65535.
    pub port: u16,
    /// Bearer token required on inference endpoints; `None` = open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Bearer token required on management endpoints (load/unload/delete/config).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_api_key: Option<String>,
    /// `api_key` opens the management routes too (one key for everything).
    pub api_key_is_admin: bool,
    /// More keys, each with its own name, admin flag, rate limit and on/off switch
    /// (`[[server.keys]]` tables).
    pub keys: Vec<ApiKey>,
    /// Requests per minute per key (per client address on an open server); 0 = no limit.
    pub rate_limit_per_minute: u32,
    /// Failed key checks per minute per client address before it gets 429 (slows guessing).
    pub auth_failures_per_minute: u32,
    /// Origins allowed to call the API from a browser besides the same origin and, on the
    /// inference routes, loopback origins: full origins or bare host names (that host on http
    /// and https); `*` = any (inference routes only), `localhost` = loopback origins on every
    /// route.
    pub cors_origins: Vec<String>,
    /// Host names (the `Host` header) accepted besides loopback names and IP addresses;
    /// `*` = any. Guards against DNS rebinding (a non-loopback server with keys takes any).
    pub allowed_hosts: Vec<String>,
    /// Serve on a non-loopback address without any API key (refused otherwise).
    pub allow_open_network: bool,
    /// Per-request timeout in seconds, > 0.
    pub timeout_seconds: u64,
    /// Maximum request body in MiB, > 0 (image uploads for vision models need room).
    pub body_limit_mb: u32,
    /// llama-server's `/slots` (`--slots`/`--no-slots`); off answers 501 as llama-server.
    pub slots_endpoint: bool,
    /// `/metrics` (`--metrics`); off answers 501 as llama-server (whose default is off).
    pub metrics_endpoint: bool,
    /// Answers carry llama-server's `__verbose` debug object (the prompt as rendered, the
    /// generation settings) unless a request says `"verbose": false` (`serve --verbose`).
    pub verbose_responses: bool,
    /// Folder of the slot files `POST /slots/{id}?action=save|restore` writes and reads
    /// (`serve --slot-save-path`); `None`: `<data>/slots/<model>/`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "lossy::opt_path"
    )]
    pub slot_save_path: Option<PathBuf>,
    /// The model a request naming an unknown model gets, instead of 404 (id, alias or path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_model: Option<String>,
    /// Ollama's own port: a second listener serving the whole API, for clients that only
    /// know `localhost:11434` (opened at start when `ollama_port_enabled`).
    pub ollama_port: u16,
    pub ollama_port_enabled: bool,
    /// LM Studio's own port (its clients' default `localhost:1234`), the same way.
    pub lmstudio_port: u16,
    pub lmstudio_port_enabled: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".to_owned(),
            port: 8080,
            api_key: None,
            admin_api_key: None,
            api_key_is_admin: false,
            keys: Vec::new(),
            rate_limit_per_minute: 0,
            auth_failures_per_minute: 10,
            cors_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            allow_open_network: false,
            timeout_seconds: 600,
            body_limit_mb: 32,
            default_model: None,
            slots_endpoint: true,
            metrics_endpoint: true,
            verbose_responses: false,
            slot_save_path: None,
            ollama_port: 11434,
            ollama_port_enabled: false,
            lmstudio_port: 1234,
            lmstudio_port_enabled: false,
        }
    }
}

/// Hand-written so that `{:?}` of a config (in logs, panics) never prints the API keys.
impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |k: &Option<String>| k.as_ref().map(|_| "<redacted>");
        f.debug_struct("ServerConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("api_key", &redact(&self.api_key))
            .field("admin_api_key", &redact(&self.admin_api_key))
            .field("api_key_is_admin", &self.api_key_is_admin)
            .field("keys", &self.keys)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("auth_failures_per_minute", &self.auth_failures_per_minute)
            .field("cors_origins", &self.cors_origins)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("allow_open_network", &self.allow_open_network)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("body_limit_mb", &self.body_limit_mb)
            .field("default_model", &self.default_model)
            .field("slots_endpoint", &self.slots_endpoint)
            .field("metrics_endpoint", &self.metrics_endpoint)
            .field("verbose_responses", &self.verbose_responses)
            .field("slot_save_path", &self.slot_save_path)
            .field("ollama_port", &self.ollama_port)
            .field("ollama_port_enabled", &self.ollama_port_enabled)
            .field("lmstudio_port", &self.lmstudio_port)
            .field("lmstudio_port_enabled", &self.lmstudio_port_enabled)
            .finish()
    }
}

/// One `[[server.keys]]` table: a key with its own access, rate limit and switch (seed 003).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// The secret itself (masked wherever the configuration is shown).
    pub key: String,
    /// A name for logs and errors (the key itself is never shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Opens the management routes too.
    #[serde(default)]
    pub admin: bool,
    /// Requests per minute for this key; unset = `server.rate_limit_per_minute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
    /// `false` refuses the key (401) without removing it.
    #[serde(default = "enabled")]
    pub enabled: bool,
}

fn enabled() -> bool {
    true
}

/// Hand-written so that `{:?}` never prints the key.
impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("key", &"<redacted>")
            .field("name", &self.name)
            .field("admin", &self.admin)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("enabled", &self.enabled)
            .finish()
    }
}

/// `[models]`: where models come from and how they are run by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Extra directories to scan, in addition to `<data_dir>/models` (see [`Config`]).
    #[serde(serialize_with = "lossy::paths")]
    pub dirs: Vec<PathBuf>,
    /// How many models may be loaded at once, >= 1.
    pub models_max: u32,
    /// Load a model a request names when it is not loaded; `false` = such a request is
    /// refused until the model is loaded (llama-server's `--no-models-autoload`).
    pub autoload: bool,
    /// Unload a model after this many idle seconds; negative = never.
    pub sleep_idle_seconds: i64,
    /// Whether a request's `keep_alive` is honoured (within the two limits below).
    pub client_keep_alive: bool,
    /// The shortest `keep_alive` a request may ask for, >= 0.
    pub keep_alive_min_seconds: i64,
    /// The longest `keep_alive` a request may ask for; negative = no limit (forever allowed).
    pub keep_alive_max_seconds: i64,
    /// Parallel sequences (slots) per model, 1..=256.
    pub parallel: u32,
    /// Context size; 0 = the model's training context.
    pub ctx_size: u32,
    /// Layers to offload to the GPU.
    pub n_gpu_layers: GpuLayers,
    /// CPU threads; `None` = let llama.cpp decide.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// Prompt tokens one decode step may take while other slots are generating (chunked
    /// prefill): bounds how long a long prompt freezes the running streams.
    pub prefill_chunk: u32,
    /// The chat template of every model without one set for it: one of llama.cpp's built-in
    /// names (`chat::named`) or Jinja text. `None` = the model's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_template: Option<String>,
    /// Prompt with the Jinja template in a model's file; `false` = the built-in template of
    /// its family (llama-server's `--no-jinja`).
    pub jinja: bool,
    /// Where a loaded model runs: `process` (a worker process of its own: an abort inside
    /// llama.cpp ends that model only) or `thread` (in the server's process).
    pub isolation: String,
    /// A model whose worker crashed this many times within `crash_window_seconds` is
    /// marked failed instead of loaded again, >= 1.
    pub crash_limit: u32,
    pub crash_window_seconds: u64,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            dirs: Vec::new(),
            models_max: 4,
            autoload: true,
            sleep_idle_seconds: -1,
            client_keep_alive: true,
            keep_alive_min_seconds: 0,
            keep_alive_max_seconds: 24 * 3600,
            parallel: 4,
            ctx_size: 4096,
            n_gpu_layers: GpuLayers::Auto,
            threads: None,
            // The engine's default (`engine::DEFAULT_PREFILL_CHUNK`, one default ubatch).
            prefill_chunk: 512,
            chat_template: None,
            jinja: true,
            isolation: "process".into(),
            crash_limit: 3,
            crash_window_seconds: 300,
        }
    }
}

impl ModelsConfig {
    /// `sleep_idle_seconds` as a duration; `None` = never unload.
    pub fn sleep_idle(&self) -> Option<std::time::Duration> {
        u64::try_from(self.sleep_idle_seconds)
            .ok()
            .map(std::time::Duration::from_secs)
    }
}

/// `[sources]`: other applications' model stores that are scanned read-only.
///
/// The `*_dir` overrides are `None` by default; [`SourcesConfig::dirs`] resolves the effective
/// directories (see [`crate::sources`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesConfig {
    pub ollama: bool,
    pub huggingface: bool,
    pub lmstudio: bool,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "lossy::opt_path"
    )]
    pub ollama_dir: Option<PathBuf>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "lossy::opt_path"
    )]
    pub huggingface_dir: Option<PathBuf>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "lossy::opt_path"
    )]
    pub lmstudio_dir: Option<PathBuf>,
}

impl Default for SourcesConfig {
    fn default() -> Self {
        SourcesConfig {
            ollama: true,
            huggingface: true,
            lmstudio: true,
            ollama_dir: None,
            huggingface_dir: None,
            lmstudio_dir: None,
        }
    }
}

/// `[sampling]`: default sampler settings, overridable per model and per request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    /// Finite, >= 0 (0 = greedy).
    pub temperature: f64,
    /// >= 0 (0 = disabled).
    pub top_k: u32,
    /// 0..=1.
    pub top_p: f64,
    /// 0..=1.
    pub min_p: f64,
    /// > 0 (1 = disabled).
    pub repeat_penalty: f64,
    /// The seed of requests that give none; -1 = random (llama-server's `--seed`).
    pub seed: i64,
    /// Tokens a request that sets no limit generates at most; -1 = no limit (llama-server's
    /// `-n`).
    pub n_predict: i64,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            seed: -1,
            n_predict: -1,
        }
    }
}

/// `[reasoning]`: thinking models, as llama-server's `--reasoning-format`, `--reasoning` and
/// `--reasoning-budget` set them; requests override them (`reasoning_format`,
/// `chat_template_kwargs.enable_thinking`, `reasoning_effort`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReasoningConfig {
    /// `none`, `auto`, `deepseek` or `deepseek-legacy`.
    pub format: String,
    /// `on`, `off` or `auto`.
    pub thinking: String,
    /// -1 (no limit), 0 (no thinking) or the tokens a thinking block may have.
    pub budget: i32,
    /// Written before the end tag when a budget closes the block.
    pub budget_message: String,
}

impl Default for ReasoningConfig {
    fn default() -> Self {
        ReasoningConfig {
            format: "auto".into(),
            thinking: "auto".into(),
            budget: -1,
            budget_message: String::new(),
        }
    }
}

/// `[limits]`: what one request may ask of the server. Every limit is checked before work is
/// queued, and a request over one is refused with a message naming the setting that raises it.
/// The defaults are far above what real clients send and far below what exhausts the machine;
/// the two per-request caps of seed 003 are off unless set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Characters of prompt text in one request; 0 = no cap.
    pub max_prompt_chars: u64,
    /// Tokens one response may generate; 0 = no cap.
    pub max_response_tokens: u32,
    /// Entries in `logit_bias`.
    pub max_logit_bias: u32,
    /// Stop strings in one request.
    pub max_stop: u32,
    /// Characters across a request's stop strings.
    pub max_stop_chars: u32,
    /// Tokens in a prompt given as token ids.
    pub max_prompt_token_ids: u32,
    /// Documents in one rerank request.
    pub max_documents: u32,
    /// Completions one request may ask for: its prompts times `n`.
    pub max_completions: u32,
    /// Inputs in one embeddings request.
    pub max_embedding_inputs: u32,
    /// Tokens across the inputs of one embeddings request.
    pub max_embedding_tokens: u64,
    /// Floats in one embeddings response (per-token embeddings are tokens x dimensions).
    pub max_embedding_floats: u64,
    /// Nesting depth of a grammar (groups and rule references).
    pub max_grammar_depth: u32,
    /// Rules in a grammar.
    pub max_grammar_rules: u32,
    /// Requests waiting for a slot of one model (beyond its running ones).
    pub max_waiting_per_model: u32,
    /// Requests in flight (running or waiting) across all models.
    pub max_in_flight: u32,
    /// Seconds a client may take to send the request head.
    pub header_timeout_seconds: u32,
    /// Seconds a client may take to send the request body.
    pub body_timeout_seconds: u32,
}

/// `[sessions]`: server-side chat sessions (issue 13): stored conversations with branches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConfig {
    /// Messages of the active branch sent to the model at most (besides the system prompt);
    /// older ones are left out, and the answer says which.
    pub max_history_messages: u32,
    /// Sessions the database may hold; creating or importing one more is refused.
    pub max_sessions: u32,
    /// Characters one message sent to a session may hold.
    pub max_message_chars: u32,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            max_history_messages: 20,
            max_sessions: 10_000,
            max_message_chars: 200_000,
        }
    }
}

/// `[download]`: pulling models from Hugging Face and Ollama registries. Downloads go into
/// `<data_dir>/models` (always scanned), partial files into `<data_dir>/partial` until verified.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DownloadConfig {
    /// Tasks downloading at once; the rest wait in order.
    pub max_concurrent: u32,
    /// The Hugging Face endpoint (a mirror); `HF_ENDPOINT` sets it as huggingface_hub reads it.
    pub hf_endpoint: String,
    /// Hugging Face token for gated and private repositories; `HF_TOKEN` sets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hf_token: Option<String>,
    /// A Hugging Face mirror (e.g. `https://hf-mirror.com`); `None` = none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hf_mirror: Option<String>,
    /// When the mirror is used: `auto` (when the endpoint does not answer) or `always`.
    pub hf_mirror_mode: String,
    /// The Ollama library website (`/search`, `/library`, `/library/{name}/tags`), read for
    /// `download search --source ollama` and the API's Ollama search and model info.
    pub ollama_library_url: String,
    /// Connections per file: large files are fetched in up to this many ranged parts at
    /// once when the server allows it.
    pub parts: u32,
    /// MiB left free on the disk beyond what a download needs; a download that would go
    /// below is refused before it starts.
    pub free_space_margin_mb: u64,
    /// Unfinished downloads resume by themselves when the server starts (else they come back
    /// paused).
    pub resume_on_start: bool,
    /// Ollama registries may be reached over plain http (`ollama pull --insecure`).
    pub insecure: bool,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        DownloadConfig {
            max_concurrent: 4,
            hf_endpoint: "https://huggingface.co".into(),
            hf_token: None,
            hf_mirror: None,
            hf_mirror_mode: "auto".into(),
            ollama_library_url: "https://ollama.com".into(),
            parts: 1,
            free_space_margin_mb: 256,
            resume_on_start: true,
            insecure: false,
        }
    }
}

/// `[tools]`: tools the server runs while a model answers (issue 14): MCP servers and the
/// built-in tools, and who may use them.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolsConfig {
    /// A tool call (MCP or built-in) longer than this is cut off; its result says so.
    pub call_timeout_seconds: u32,
    /// Generations one request may run with tool calls in between before it must answer.
    pub max_steps: u32,
    /// MCP servers the registry holds at most (stored and given to the process together).
    pub max_mcp_servers: u32,
    /// Inference keys may use server tools (the agent loop and `POST /tools`); off = admin only.
    pub inference_keys: bool,
    /// A `{"mcpServers": ...}` file run for this process (llama-server's `--mcp-servers-config`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_servers_config: Option<PathBuf>,
    /// The same as inline JSON (`--mcp-servers-json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_servers_json: Option<String>,
    /// The `current_datetime` tool.
    pub datetime: bool,
    /// A SearXNG-style JSON search endpoint; unset = no `web_search` tool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_search_url: Option<String>,
    /// Sent to the search endpoint as a bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_search_api_key: Option<String>,
    /// The `fetch_url` tool.
    pub fetch: bool,
    /// `fetch_url` may reach loopback and private addresses.
    pub fetch_allow_private: bool,
    /// The most bytes `fetch_url` reads from a page.
    pub fetch_max_bytes: u64,
    pub fetch_timeout_seconds: u32,
    /// Folders the read-only file tools may read; empty = no file tools.
    pub file_roots: Vec<PathBuf>,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        ToolsConfig {
            call_timeout_seconds: 60,
            max_steps: 8,
            max_mcp_servers: 32,
            inference_keys: false,
            mcp_servers_config: None,
            mcp_servers_json: None,
            datetime: true,
            web_search_url: None,
            web_search_api_key: None,
            fetch: true,
            fetch_allow_private: false,
            fetch_max_bytes: 1 << 20,
            fetch_timeout_seconds: 20,
            file_roots: Vec::new(),
        }
    }
}

/// The search key (and headers in the inline MCP JSON) never reach a log.
impl fmt::Debug for ToolsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mask = |o: &Option<String>| o.as_ref().map(|_| crate::keys::MASK);
        f.debug_struct("ToolsConfig")
            .field("call_timeout_seconds", &self.call_timeout_seconds)
            .field("max_steps", &self.max_steps)
            .field("max_mcp_servers", &self.max_mcp_servers)
            .field("inference_keys", &self.inference_keys)
            .field("mcp_servers_config", &self.mcp_servers_config)
            .field("mcp_servers_json", &mask(&self.mcp_servers_json))
            .field("datetime", &self.datetime)
            .field("web_search_url", &self.web_search_url)
            .field("web_search_api_key", &mask(&self.web_search_api_key))
            .field("fetch", &self.fetch)
            .field("fetch_allow_private", &self.fetch_allow_private)
            .field("fetch_max_bytes", &self.fetch_max_bytes)
            .field("fetch_timeout_seconds", &self.fetch_timeout_seconds)
            .field("file_roots", &self.file_roots)
            .finish()
    }
}

/// The token never reaches a log.
impl fmt::Debug for DownloadConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadConfig")
            .field("max_concurrent", &self.max_concurrent)
            .field("hf_endpoint", &self.hf_endpoint)
            .field(
                "hf_token",
                &self.hf_token.as_ref().map(|_| crate::keys::MASK),
            )
            .field("hf_mirror", &self.hf_mirror)
            .field("hf_mirror_mode", &self.hf_mirror_mode)
            .field("ollama_library_url", &self.ollama_library_url)
            .field("parts", &self.parts)
            .field("free_space_margin_mb", &self.free_space_margin_mb)
            .field("resume_on_start", &self.resume_on_start)
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_prompt_chars: 0,
            max_response_tokens: 0,
            max_logit_bias: 1024,
            max_stop: 64,
            max_stop_chars: 8192,
            max_prompt_token_ids: 1 << 20,
            max_documents: 1024,
            // Each completion holds a slot like a request of its own; llama-server allows
            // `n` up to its slot count.
            max_completions: 16,
            max_embedding_inputs: 2048,
            max_embedding_tokens: 300_000,
            // 16 MiB of f32: a few full-context per-token embeddings of a small model.
            max_embedding_floats: 1 << 22,
            max_grammar_depth: 256,
            max_grammar_rules: 4096,
            // llama-server queues without bound, and 100 clients on 4 slots is an ordinary
            // load (scripts/bench/serve_bench.py queue100): the bound is for floods.
            max_waiting_per_model: 1024,
            max_in_flight: 4096,
            header_timeout_seconds: 30,
            body_timeout_seconds: 120,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub level: LogLevel,
    pub format: LogFormat,
}

/// `log.format`: how lines on stderr look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields.message`, …), for log shippers.
    Json,
}

/// `log.level`. Kept as our own enum (not `tracing::Level`) so it serializes as the lowercase word
/// users type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Trace,
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        LogLevel::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("`{s}` is not one of trace, debug, info, warn, error"))
    }
}

/// `models.n_gpu_layers`: `"auto"` (let llama.cpp fit the model) or an exact layer count.
///
/// In TOML it is written either as the string `"auto"` or as an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GpuLayers {
    #[default]
    Auto,
    Count(u32),
}

impl fmt::Display for GpuLayers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuLayers::Auto => f.write_str("auto"),
            GpuLayers::Count(n) => write!(f, "{n}"),
        }
    }
}

impl FromStr for GpuLayers {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("auto") {
            return Ok(GpuLayers::Auto);
        }
        s.parse::<u32>()
            .map(GpuLayers::Count)
            .map_err(|_| format!("`{s}` is not \"auto\" or a number >= 0"))
    }
}

impl Serialize for GpuLayers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            GpuLayers::Auto => s.serialize_str("auto"),
            GpuLayers::Count(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for GpuLayers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = GpuLayers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"auto\" or a number >= 0")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<GpuLayers, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<GpuLayers, E> {
                u32::try_from(v)
                    .map(GpuLayers::Count)
                    .map_err(|_| E::custom(format!("{v} is not \"auto\" or a number >= 0")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<GpuLayers, E> {
                u32::try_from(v)
                    .map(GpuLayers::Count)
                    .map_err(|_| E::custom(format!("{v} is too large")))
            }
        }
        d.deserialize_any(Visitor)
    }
}
