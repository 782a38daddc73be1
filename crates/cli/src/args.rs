//! The command line, declared with clap. Every command has `--help`; every command that
//! prints data has `--json`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "llama-dashboard",
    version,
    about = "Run a folder of GGUF models as a local LLM platform",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// No command runs `serve` with its defaults (see [`parse`]).
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Folder holding config.toml [default: ~/.config/llama-dashboard]
    #[arg(
        long,
        global = true,
        env = "LLAMA_DASHBOARD_CONFIG_DIR",
        value_name = "DIR"
    )]
    pub config_dir: Option<PathBuf>,
    /// Folder for the database, downloads and saved state [default: ~/.local/share/llama-dashboard]
    #[arg(
        long,
        global = true,
        env = "LLAMA_DASHBOARD_DATA_DIR",
        value_name = "DIR"
    )]
    pub data_dir: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log lines on stderr: text, or json (one object per line) [config: log.format, for serve]
    #[arg(long, global = true, value_name = "FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List, scan and inspect GGUF models
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Show or change the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Chat with a model in the terminal (or answer one prompt and exit)
    Run(RunArgs),
    /// Measure prompt processing (pp) and generation (tg) speed, like llama-bench
    Bench(BenchArgs),
    /// Run the HTTP server: OpenAI and llama.cpp APIs, management API, dashboard
    Serve(ServeArgs),
    /// Search Hugging Face for GGUF models and download them
    #[command(subcommand)]
    Download(DownloadCommand),
    /// Download a model: org/repo[:QUANT] from Hugging Face, name[:tag] from Ollama (as `download pull`)
    Pull(PullArgs),
    /// List models (the same as `models list`, named as in Ollama)
    List(JsonFlag),
    /// Delete a model's files: what llama-dashboard downloaded or what sits in its model
    /// folders; another app's model (Ollama, Hugging Face cache, LM Studio) only with
    /// --force-external
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Models a running server has loaded (as `ollama ps`): name, id, size, processor, until
    Ps(PsArgs),
    /// Stored chat sessions (the server's /api/chat/*, `run --session`): list, show, export, rm
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// MCP servers whose tools the server runs while a model answers (stored in the
    /// database; a running server takes changes made here at its next start, or through its
    /// API at once)
    #[command(subcommand)]
    Mcp(McpCommand),
    /// Serve one model to the server that started this process (each loaded model runs in
    /// one, `models.isolation`); not for people
    #[command(hide = true)]
    Worker,
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Sessions, most recently used first
    List(SessionsListArgs),
    /// A session's active branch (or every message with --tree)
    Show(SessionsShowArgs),
    /// Write a session as JSON (re-importable) or Markdown
    Export(SessionsExportArgs),
    /// Delete a session and its messages
    Rm(SessionsRmArgs),
}

#[derive(Debug, Args)]
pub struct SessionsListArgs {
    /// Only sessions whose title holds this text
    #[arg(long)]
    pub search: Option<String>,
    /// Sessions to show (1-200)
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[command(flatten)]
    pub json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct SessionsShowArgs {
    pub id: String,
    /// Every message of every branch
    #[arg(long)]
    pub tree: bool,
    #[command(flatten)]
    pub json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct SessionsExportArgs {
    pub id: String,
    /// json or markdown
    #[arg(long, default_value = "json")]
    pub format: String,
    /// Write to this file instead of standard output
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SessionsRmArgs {
    pub id: String,
}

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// List the stored MCP servers
    List(JsonFlag),
    /// Add a server: `NAME -- COMMAND [ARGS...]`, `NAME --url URL`, or `--import FILE|JSON`
    /// (a `{"mcpServers": ...}` document, as Claude Desktop and Cursor keep it)
    Add(McpAddArgs),
    /// Remove a stored server
    #[command(visible_alias = "remove")]
    Rm {
        name: String,
    },
    /// Start the stored servers and list their tools (`<server>_<tool>`) and state
    Tools(JsonFlag),
}

#[derive(Debug, Args)]
pub struct McpAddArgs {
    /// The server's name: its tools are named `<name>_<tool>`
    #[arg(required_unless_present = "import")]
    pub name: Option<String>,
    /// The command (and its arguments) of a stdio server, after `--`
    #[arg(last = true)]
    pub command: Vec<String>,
    /// The URL of a remote server (streamable HTTP; `/sse` URLs or --sse: the SSE transport)
    #[arg(long, conflicts_with = "import")]
    pub url: Option<String>,
    /// The legacy SSE transport for --url
    #[arg(long, requires = "url")]
    pub sse: bool,
    /// An HTTP header for --url, `Name: value` (repeatable)
    #[arg(long = "header", value_name = "NAME: VALUE", requires = "url")]
    pub headers: Vec<String>,
    /// An environment variable for the command, `NAME=value` (repeatable)
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// A file holding `{"mcpServers": ...}`, or that JSON itself
    #[arg(long, value_name = "FILE|JSON", conflicts_with_all = ["url", "command"])]
    pub import: Option<String>,
    /// Replace servers that exist under the same name
    #[arg(long)]
    pub replace: bool,
}

/// `ps`: asks a running server.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// The server's address [default: http://<server.host>:<server.port>]
    #[arg(long)]
    pub url: Option<String>,
    #[command(flatten)]
    pub json: JsonFlag,
}

#[derive(Debug, Subcommand)]
pub enum DownloadCommand {
    /// Search Hugging Face for GGUF models
    Search(DownloadSearchArgs),
    /// Download a model into the models folder; Ctrl-C pauses, the same command resumes
    Pull(PullArgs),
}

#[derive(Debug, Args)]
pub struct DownloadSearchArgs {
    /// Words to look for in model names (Ollama: empty lists the library)
    #[arg(default_value = "")]
    pub query: String,
    /// Order: downloads, likes or updated
    #[arg(long, default_value = "downloads")]
    pub sort: String,
    /// Results to show (1-100)
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Where to search: huggingface (GGUF repositories) or ollama (the Ollama library)
    #[arg(long)]
    pub source: Option<String>,
    #[command(flatten)]
    pub json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// org/repo[:QUANT] or a file URL (Hugging Face), or [host/namespace/]name[:tag] (Ollama)
    pub name: String,
    /// A file of the repository (for repositories with several models of one quantization)
    #[arg(long)]
    pub file: Option<String>,
    /// Where the name comes from when it could be either: huggingface, ollama or url
    #[arg(long)]
    pub source: Option<String>,
    /// Hugging Face revision (branch, tag or commit)
    #[arg(long)]
    pub revision: Option<String>,
    /// Allow a plain-http Ollama registry [config: download.insecure]
    #[arg(long)]
    pub insecure: bool,
}

/// `rm`: one or more models, by id, alias or path.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Model id, alias or path (repeatable)
    #[arg(required = true)]
    pub models: Vec<String>,
    /// Also delete models that another app owns (Ollama's store, the Hugging Face cache,
    /// LM Studio's folder)
    #[arg(long)]
    pub force_external: bool,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// `serve`: each flag overrides the matching config key (flags > env > file > defaults).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to bind [config: server.host, default 127.0.0.1]
    #[arg(long)]
    pub host: Option<String>,
    /// Port [config: server.port, default 8080]
    #[arg(short = 'p', long)]
    pub port: Option<u16>,
    /// Extra folder to scan for models (repeatable) [config: models.dirs]
    #[arg(long = "models-dir", value_name = "DIR")]
    pub models_dir: Vec<PathBuf>,
    /// Most models loaded at once [config: models.models_max]
    #[arg(long)]
    pub models_max: Option<u32>,
    /// Load a model a request names when it is not loaded (the default) [config: models.autoload]
    #[arg(long, overrides_with = "no_models_autoload")]
    pub models_autoload: bool,
    /// Refuse requests for a model that is not loaded, as llama-server [config: models.autoload = false]
    #[arg(long, overrides_with = "models_autoload")]
    pub no_models_autoload: bool,
    /// Slots (parallel sequences) per model [config: models.parallel]
    #[arg(long, visible_alias = "np")]
    pub parallel: Option<u32>,
    /// Context tokens of all slots together, as llama-server: each of -np slots gets its
    /// share; with -kvu, or without -np, the slots share one pool any of them may fill (0 =
    /// the model's training context per slot) [config: models.ctx_size, which is per slot]
    #[arg(short = 'c', long = "ctx-size")]
    pub ctx_size: Option<u32>,
    /// GPU layers to offload (number or "auto") [config: models.n_gpu_layers]
    #[arg(long = "n-gpu-layers", visible_alias = "ngl")]
    pub n_gpu_layers: Option<String>,
    /// CPU threads (default: physical cores) [config: models.threads]
    #[arg(short = 't', long)]
    pub threads: Option<u32>,
    /// Default temperature [config: sampling.temperature]
    #[arg(long)]
    pub temp: Option<f64>,
    /// Default top-k [config: sampling.top_k]
    #[arg(long)]
    pub top_k: Option<u32>,
    /// Default top-p [config: sampling.top_p]
    #[arg(long)]
    pub top_p: Option<f64>,
    /// How thinking models return their thoughts: none (left in content), auto, deepseek or
    /// deepseek-legacy (in reasoning_content) [config: reasoning.format, default auto]
    #[arg(long, value_name = "FORMAT")]
    pub reasoning_format: Option<String>,
    /// Whether thinking models think: on, off or auto (on where the template supports it)
    /// [config: reasoning.thinking, default auto]
    #[arg(long, value_name = "on|off|auto")]
    pub reasoning: Option<String>,
    /// Thinking budget in tokens: -1 = no limit, 0 = no thinking, N = the block is closed
    /// after N tokens [config: reasoning.budget]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub reasoning_budget: Option<i64>,
    /// Written before the end tag when the thinking budget closes the block
    /// [config: reasoning.budget_message]
    #[arg(long, value_name = "MESSAGE")]
    pub reasoning_budget_message: Option<String>,
    /// Key required on inference routes [config: server.api_key, env: LLAMA_DASHBOARD_API_KEY]
    #[arg(long)]
    pub api_key: Option<String>,
    /// Key required on management routes (/api/*, /ws/*, POST /props, slots, LoRA changes);
    /// an inference key alone never opens them [config: server.admin_api_key, env:
    /// LLAMA_DASHBOARD_ADMIN_API_KEY]
    #[arg(long)]
    pub admin_api_key: Option<String>,
    /// Let --api-key open the management routes too (one key for everything) [config:
    /// server.api_key_is_admin]
    #[arg(long)]
    pub api_key_is_admin: bool,
    /// File with one key per line ("admin:<key>" for admin keys)
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// A JSON file of MCP servers (`{"mcpServers": ...}`, the Claude Desktop / Cursor format)
    /// run for this process, as llama-server's [config: tools.mcp_servers_config]
    #[arg(long, value_name = "PATH")]
    pub mcp_servers_config: Option<PathBuf>,
    /// The same as inline JSON [config: tools.mcp_servers_json]
    #[arg(long, value_name = "JSON")]
    pub mcp_servers_json: Option<String>,
    /// Requests per minute per key (sliding window; 0 = no limit) [config:
    /// server.rate_limit_per_minute]
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,
    /// Serve on a non-loopback address without any API key (refused otherwise: anyone who
    /// can reach it could use and manage it) [config: server.allow_open_network]
    #[arg(long)]
    pub insecure_open: bool,
    /// Also serve on Ollama's port (Ollama's clients default to 11434) [config:
    /// server.ollama_port, server.ollama_port_enabled]
    #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "11434")]
    pub ollama_port: Option<u16>,
    /// Also serve on LM Studio's port (its clients default to 1234) [config:
    /// server.lmstudio_port, server.lmstudio_port_enabled]
    #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "1234")]
    pub lmstudio_port: Option<u16>,
    /// Host name the server answers to besides loopback names and IP addresses (repeatable or
    /// comma-separated; "*" for any; guards against DNS rebinding) [config:
    /// server.allowed_hosts]
    #[arg(long = "allowed-host", value_name = "HOST", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Unload a model after this many idle seconds (negative = never) [config: models.sleep_idle_seconds]
    #[arg(long, allow_negative_numbers = true)]
    pub sleep_idle_seconds: Option<i64>,
    /// Per-request timeout in seconds [config: server.timeout_seconds, default 600]
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Browser origin allowed besides the same origin (repeatable or comma-separated):
    /// "https://app.example", a host name "app.example" (http and https, any port), "localhost"
    /// (loopback origins, management too), "*" (any origin, inference routes only) [config:
    /// server.cors_origins]
    #[arg(
        long = "cors-origin",
        visible_alias = "cors-origins",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Seconds in-flight requests may run on after a shutdown signal
    #[arg(long, default_value_t = 30)]
    pub grace: u64,
    /// Model to load at start: a GGUF file (need not be in a model folder) or an id, alias or
    /// path. Without --models-dir this is a single-model server, as llama-server: every request
    /// gets this model whatever `model` it names, and /v1/models lists it alone
    #[arg(short = 'm', long)]
    pub model: Option<String>,
    /// Chat template for every model without one set for it: a llama.cpp built-in name
    /// (chatml, llama3, gemma, mistral-v7, command-r, ...) or Jinja text [config:
    /// models.chat_template]
    #[arg(long, value_name = "NAME_OR_JINJA")]
    pub chat_template: Option<String>,
    /// Read that chat template (Jinja) from a file [config: models.chat_template]
    #[arg(long, value_name = "FILE", conflicts_with = "chat_template")]
    pub chat_template_file: Option<PathBuf>,
    /// Prompt with the built-in template of the model's family, not the Jinja template in
    /// its file [config: models.jinja = false]
    #[arg(long, overrides_with = "jinja")]
    pub no_jinja: bool,
    /// Prompt with the Jinja template in the model's file (the default) [config: models.jinja]
    #[arg(long, overrides_with = "no_jinja")]
    pub jinja: bool,
    /// More names for the -m model, for this run (comma-separated; /v1/models lists it under
    /// the first in sorted order, as llama-server)
    #[arg(short = 'a', long, value_name = "NAME", value_delimiter = ',')]
    pub alias: Vec<String>,
    /// Tags /v1/models lists with the -m model (comma-separated)
    #[arg(long, value_name = "TAG", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Seed of requests that give none (-1 = random) [config: sampling.seed]
    #[arg(short = 's', long, allow_negative_numbers = true)]
    pub seed: Option<i64>,
    /// Most tokens a request that sets no limit generates (-1 = no limit) [config:
    /// sampling.n_predict]
    #[arg(
        short = 'n',
        long = "n-predict",
        visible_alias = "predict",
        allow_negative_numbers = true
    )]
    pub n_predict: Option<i64>,
    /// Serve GET /slots (the default) [config: server.slots_endpoint]
    #[arg(long, overrides_with = "no_slots")]
    pub slots: bool,
    /// Answer GET /slots with 501, as llama-server [config: server.slots_endpoint = false]
    #[arg(long, overrides_with = "slots")]
    pub no_slots: bool,
    /// Serve GET /metrics (our default; llama-server's needs this flag) [config:
    /// server.metrics_endpoint]
    #[arg(long, overrides_with = "no_metrics")]
    pub metrics: bool,
    /// Answer GET /metrics with 501 [config: server.metrics_endpoint = false]
    #[arg(long, overrides_with = "metrics")]
    pub no_metrics: bool,
    /// Accepted for llama-server command lines (-cb, -nocb): batching is always continuous
    #[arg(long, overrides_with = "no_cont_batching")]
    pub cont_batching: bool,
    #[arg(long, overrides_with = "cont_batching", hide = true)]
    pub no_cont_batching: bool,
    /// Logical batch size, every model (-b) [launch parameter: n_batch]
    #[arg(short = 'b', long = "batch-size")]
    pub batch_size: Option<u32>,
    /// Physical batch size, every model (-ub) [launch parameter: n_ubatch]
    #[arg(long = "ubatch-size")]
    pub ubatch_size: Option<u32>,
    /// Flash attention: on, off or auto (-fa) [launch parameter: flash_attn]
    #[arg(long = "flash-attn", value_name = "on|off|auto", num_args = 0..=1, default_missing_value = "on")]
    pub flash_attn: Option<String>,
    /// KV cache type of K: f16, q8_0, ... (-ctk) [launch parameter: cache_type_k]
    #[arg(long = "cache-type-k", value_name = "TYPE")]
    pub cache_type_k: Option<String>,
    /// KV cache type of V (-ctv; a quantized one needs flash attention) [launch parameter:
    /// cache_type_v]
    #[arg(long = "cache-type-v", value_name = "TYPE")]
    pub cache_type_v: Option<String>,
    /// Slots' contexts with embeddings output [launch parameter: embeddings]
    #[arg(long, visible_alias = "embeddings")]
    pub embedding: bool,
    /// Rank pooling for /rerank (a reranker model) [launch parameters: embeddings, pooling]
    #[arg(long, visible_alias = "rerank")]
    pub reranking: bool,
    /// Pooling of embeddings: none, mean, cls, last, rank [launch parameter: pooling]
    #[arg(long, value_name = "TYPE")]
    pub pooling: Option<String>,
    /// Drop older context and go on when a slot's context is full [launch parameter:
    /// on_context_full = shift]
    #[arg(long, overrides_with = "no_context_shift")]
    pub context_shift: bool,
    /// Stop with finish reason length when a slot's context is full (the default)
    #[arg(long, overrides_with = "context_shift")]
    pub no_context_shift: bool,
    /// One KV pool for all slots, which any one slot may fill (-kvu; on when -c is given
    /// without -np, as llama-server) [launch parameter: kv_unified]
    #[arg(long, overrides_with = "no_kv_unified")]
    pub kv_unified: bool,
    #[arg(long, overrides_with = "kv_unified", hide = true)]
    pub no_kv_unified: bool,
    /// Host-RAM prompt cache per model in MiB: slots' prompts are kept there when
    /// overwritten and restored for a request sharing their prefix (-cram; default 8192,
    /// -1 no limit, 0 off) [launch parameter: cache_ram_mib]
    #[arg(long = "cache-ram", value_name = "MIB", allow_negative_numbers = true)]
    pub cache_ram: Option<i64>,
    /// Save idle slots to the prompt cache when a task starts, and clear them with unified
    /// KV (default on; needs --cache-ram) [launch parameter: cache_idle_slots]
    #[arg(long, overrides_with = "no_cache_idle_slots")]
    pub cache_idle_slots: bool,
    #[arg(long, overrides_with = "cache_idle_slots")]
    pub no_cache_idle_slots: bool,
    /// Folder for slot files (POST /slots/{id}?action=save|restore) [config:
    /// server.slot_save_path, default <data>/slots/<model>/]
    #[arg(long, value_name = "DIR")]
    pub slot_save_path: Option<PathBuf>,
    /// Full-size KV cache for sliding-window layers, so cached prompts are reused from any
    /// point (more memory; only sliding-window models differ) [launch parameter: swa_full]
    #[arg(long)]
    pub swa_full: bool,
    /// LoRA adapter files loaded with every model (comma-separated or repeated) [launch
    /// parameter: lora]
    #[arg(long, value_name = "FILE", value_delimiter = ',')]
    pub lora: Vec<PathBuf>,
    /// LoRA adapters with a scale, FILE:SCALE (comma-separated or repeated) [launch
    /// parameter: lora]
    #[arg(long = "lora-scaled", value_name = "FILE:SCALE", value_delimiter = ',')]
    pub lora_scaled: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Model id, alias, or path to a .gguf file
    pub model: String,
    /// Answer this prompt and exit (piped standard input is appended to it)
    pub prompt: Vec<String>,
    /// System prompt
    #[arg(long)]
    pub system: Option<String>,
    /// Context size in tokens (0 = the model's training context) [config: models.ctx_size]
    #[arg(short = 'c', long = "ctx-size")]
    pub ctx_size: Option<u32>,
    /// Threads (default: physical cores) [config: models.threads]
    #[arg(short = 't', long)]
    pub threads: Option<u32>,
    /// Most tokens to generate per answer (-1 = until the model stops or the context is full)
    #[arg(short = 'n', long = "n-predict", default_value_t = -1, allow_negative_numbers = true)]
    pub n_predict: i64,
    /// Temperature [config: sampling.temperature]
    #[arg(long)]
    pub temp: Option<f64>,
    /// Top-k [config: sampling.top_k]
    #[arg(long)]
    pub top_k: Option<u32>,
    /// Top-p [config: sampling.top_p]
    #[arg(long)]
    pub top_p: Option<f64>,
    #[arg(long)]
    pub seed: Option<u32>,
    /// GPU layers to offload (number or "auto") [config: models.n_gpu_layers]
    #[arg(long = "n-gpu-layers", visible_alias = "ngl")]
    pub n_gpu_layers: Option<String>,
    /// Print prompt and generation speed after each answer
    #[arg(long)]
    pub timings: bool,
    /// Continue a stored chat session (its id), or start one (`new`): the conversation is
    /// kept in the database, as the server's /api/chat sessions
    #[arg(long, value_name = "ID|new")]
    pub session: Option<String>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Model id, alias, or path to a .gguf file (not needed with --history)
    #[arg(required_unless_present = "history")]
    pub model: Option<String>,
    /// Prompt tokens (pp test; 0 skips it)
    #[arg(short = 'p', long = "n-prompt", default_value_t = 512)]
    pub n_prompt: u32,
    /// Generated tokens (tg test; 0 skips it)
    #[arg(short = 'n', long = "n-gen", default_value_t = 128)]
    pub n_gen: u32,
    /// Repetitions of each test
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    pub reps: u32,
    /// Logical batch size
    #[arg(short = 'b', long = "batch-size", default_value_t = 2048)]
    pub n_batch: u32,
    /// Physical batch size (llama-bench's -ub)
    #[arg(long = "ubatch-size", visible_alias = "ub", default_value_t = 512)]
    pub n_ubatch: u32,
    /// Context size (default: just enough for the test)
    #[arg(short = 'c', long = "ctx-size")]
    pub n_ctx: Option<u32>,
    /// Threads (default: physical cores)
    #[arg(short = 't', long)]
    pub threads: Option<u32>,
    /// GPU layers to offload (the model is loaded with them; default: as the config and
    /// the model's stored launch parameters say) [config: models.n_gpu_layers]
    #[arg(long = "n-gpu-layers", visible_alias = "ngl")]
    pub n_gpu_layers: Option<u32>,
    /// List past runs instead of running (filter with a model argument)
    #[arg(long)]
    pub history: bool,
    #[command(flatten)]
    pub json: JsonFlag,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List every model found in the configured folders and in Ollama, Hugging Face and LM
    /// Studio stores
    List(JsonFlag),
    /// Scan one folder recursively and show its models and the files skipped, with why
    Scan {
        /// Folder to scan
        path: PathBuf,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Print a model's full GGUF metadata: every key and tensor
    Info {
        /// Model id, alias, or path to a .gguf file
        model: String,
        /// List every tensor instead of a summary per type
        #[arg(long)]
        tensors: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Give a model an alias (a shorter name that works wherever an id does); no alias removes it
    Alias {
        /// Model id or path
        model: String,
        /// The new alias
        alias: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults < file < environment); API keys are masked
    Show(ShowArgs),
    /// Set one key in config.toml, validated before it is written
    Set {
        /// Dotted key, e.g. server.port or models.dirs
        key: String,
        /// New value; lists take comma-separated items or a TOML array
        value: String,
    },
}

#[derive(Debug, Args, Clone, Copy)]
pub struct ShowArgs {
    /// Print API keys in clear instead of masked
    #[arg(long)]
    pub show_secrets: bool,
    #[command(flatten)]
    pub json: JsonFlag,
}

#[derive(Debug, Args, Clone, Copy)]
pub struct JsonFlag {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

/// llama.cpp's tools take multi-letter flags with one dash (`-ub 512`, `-ngl 99`); clap's
/// short flags are one letter. Rewrite those few to their long forms so users of llama-bench
/// and llama-server can type what they know.
/// The command line, with `serve` as the default command: no command runs `serve`, and
/// `serve`'s own flags without the word (`llama-dashboard --port 9000`) mean `serve` with
/// them. Anything that parses neither way is reported as written (clap's error and exit).
/// The returned `command` is always set.
pub fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Cli {
    use clap::error::ErrorKind;
    let args = llama_style_flags(args);
    let as_serve = || {
        let mut a = args.clone();
        a.insert(1.min(a.len()), "serve".into());
        Cli::try_parse_from(a)
    };
    match Cli::try_parse_from(&args) {
        Ok(cli) if cli.command.is_some() => cli,
        Ok(_) => as_serve().unwrap_or_else(|e| e.exit()),
        Err(e) if e.kind() == ErrorKind::UnknownArgument => as_serve().unwrap_or_else(|_| e.exit()),
        Err(e) => e.exit(),
    }
}

pub fn llama_style_flags(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    const MAP: &[(&str, &str)] = &[
        ("-ub", "--ubatch-size"),
        ("-ngl", "--n-gpu-layers"),
        ("-np", "--parallel"),
        ("-fa", "--flash-attn"),
        ("-ctk", "--cache-type-k"),
        ("-ctv", "--cache-type-v"),
        ("-kvu", "--kv-unified"),
        ("-cram", "--cache-ram"),
        ("-cb", "--cont-batching"),
        ("-nocb", "--no-cont-batching"),
    ];
    args.into_iter()
        .map(|a| match MAP.iter().find(|(short, _)| a == *short) {
            Some((_, long)) => long.into(),
            None => a,
        })
        .collect()
}
