//! The application core, shared by the CLI and the HTTP server (DESIGN.md: "services").
//!
//! - [`Models`]: the catalog (what is on disk), the store (what the user set) and the model
//!   manager (what is loaded) behind one `resolve`/`acquire`; model capabilities, cached.
//! - [`resolve`]: the one model resolver (id, alias, path, canonical path); [`load_spec`]:
//!   the one way `[models]`, stored launch parameters and flags become load parameters;
//!   [`SamplingDefaults`]: the one mapping from `[sampling]` to request sampling.
//! - [`bench`]: benchmarks through the model manager, one at a time, with events.
//! - [`EngineLoader`]: how the manager loads a model with the engine, and [`LoadedModel`],
//!   a model with its compiled chat templates.
//! - [`ChatFormat`]: picks and renders a model's chat template, with tool polyfills for
//!   templates that know nothing of tools.
//! - [`Deployments`]: named, started models with their own ports, stored and restored (the
//!   state machine; the HTTP server only serves their ports).
//! - [`Downloads`]: pulling models from Hugging Face and Ollama registries: names checked
//!   against the hub before anything is queued, the one download queue, `model.added`.
//! - [`generate`]: the protocol-neutral [`Request`] and the [`Output`] stream every API
//!   adapter maps to its own wire format.
//! - [`reasoning`]: thinking models: the request's [`Thinking`], the server's
//!   [`ReasoningDefaults`] and the `enable_thinking` a template renders with.
//! - [`identity`]: a model's digest and modification time (cheap: no multi-GB hashing), and
//!   a second name for it (a second Ollama manifest, else an alias): Ollama's list and `cp`.
//! - [`remove`]: deleting a model from disk, with the one rule for what may be deleted
//!   (ours always, another app's store only when forced).
//! - [`sessions`]: server-side chat sessions: a tree of stored messages, branches, the send
//!   loop over the same generation path as the chat routes, export and import.
//! - [`fit`]: the one policy that keeps a conversation within a model's context by leaving
//!   out its oldest turns (sessions, Ollama's `/api/chat` and its `num_ctx`).
//! - [`limits`]: the per-request `[limits]`, checked once for every API family before work
//!   is queued; [`Admission`]: the bound on requests in flight and the engine caps.
//! - [`Tools`]: the tool registry at run time (MCP servers stored or given to this process,
//!   built-in tools); [`agent`]: the loop that runs the model's server tool calls between
//!   generations.

pub mod agent;
pub mod bench;
mod capabilities;
pub mod chat_format;
pub mod deployments;
pub mod downloads;
mod embed;
mod error;
pub mod fit;
pub mod generate;
pub mod identity;
pub mod limits;
mod load_params;
mod loader;
mod model_defaults;
mod models;
pub mod reasoning;
pub mod remove;
mod resolve;
mod sampling;
pub mod serving;
pub mod sessions;
pub mod tools;

pub use chat::ReasoningFormat;
pub use chat_format::{ChatFormat, PromptEnding, SpecialTokens, TemplateChoice};
pub use deployments::{
    Deployment, DeploymentEvent, DeploymentState, Deployments, OpenPort, PortServer, StartRequest,
};
pub use downloads::{DownloadEvent, Downloads};
pub use embed::embed;
pub use error::{ErrorKind, ServiceError};
pub use generate::{
    ChatInput, Collected, Done, Finish, Generation, Input, Output, Request, ResponseFormat,
    ToolChoice,
};
pub use limits::{Admission, Ticket};
pub use load_params::{apply_overrides, launch_param_keys, load_spec, manager_config};
pub use loader::{EngineLoader, LoadSpec, LoadedModel, WORKER_EXE_ENV, worker_program};
pub use model_defaults::{ModelDefaults, PromptDefaults, SamplingOverrides};
pub use models::{Listed, ModelLease, Models, roots};
pub use reasoning::{ReasoningDefaults, Thinking};
pub use resolve::{Routing, latest_twin, resolve};
pub use sampling::SamplingDefaults;
pub use sessions::Sessions;
pub use tools::Tools;

/// The engine's data types that cross this layer: requests and their results, embeddings,
/// LoRA, devices, memory estimates and benchmark parameters. The server and the CLI take them
/// from here and do not depend on `engine` themselves, so the service layer is the one road
/// into llama.cpp (a lease's `handle` is the loaded model's engine handle).
pub mod engine_types {
    pub use engine::backend::physical_cores;
    pub use engine::bench::{BenchParams, BenchReport};
    pub use engine::{
        Caps, Completion, ContextParams, DeviceInfo, DeviceKind, EmbedRequest, Embedding,
        EmbeddingValues, EngineError, Event, FinishReason, GenerateRequest, GpuLayers, Grammar,
        InfillChunk, InfillPrompt, Limit, LoraAdapterInfo, LoraScale, MAX_N_PROBS, MemoryEstimate,
        MemoryReport, ModelHandle, ModelInfo, ModelParams, Normalize, Pooling, Progress, Prompt,
        PromptPart, RANDOM_SEED, RerankScore, SamplingParams, SlotFileInfo, SlotInfo, SlotState,
        Timings, TokenPiece, TokenProbs, Usage, WorkerProcess, devices, estimate, rss_of,
    };
}

/// Runs `llama-dashboard worker`: one model served to the parent process over stdin/stdout
/// (see `models.isolation`). Never returns.
pub fn run_worker() -> ! {
    engine::serve_worker()
}
pub use engine_types::*;
