//! Inference core: llama.cpp in-process through `llama-cpp-2`.
//!
//! [`ModelHost::load`] starts one OS thread per model that owns the model and one context
//! whose KV cache all slots share; [`ModelHandle`] sends it tasks and receives events. The
//! host batches every busy slot into one `llama_decode` per step (continuous batching),
//! reuses each slot's cached prompt prefix, and streams tokens through a channel whose drop
//! cancels the request. The same thread computes embeddings and rerank scores on contexts of
//! their own ([`ModelHandle::embed`], [`ModelHandle::rerank`]), builds infill prompts
//! ([`Prompt::Infill`]) and applies LoRA adapters per batch ([`ModelHandle::set_lora_scales`],
//! [`GenerateRequest::lora`]). Nothing here knows HTTP.

mod admission;
mod arch;
pub mod backend;
pub mod bench;
mod budget;
mod embed;
mod error;
pub mod estimate;
mod grammar;
mod host;
mod infill;
mod load;
mod lora;
mod params;
mod raw;
mod request;
mod sampling;
mod scheduler;
mod slot;
pub mod stop;
mod worker;

pub use arch::{KNOWN_ARCHITECTURES, is_known_architecture};
pub use backend::{BackendOptions, DeviceInfo, DeviceKind, NumaStrategy, devices};
pub use budget::ThinkingBudget;
pub use embed::{EmbedRequest, Embedding, EmbeddingValues, Normalize, RerankScore};
pub use error::{EngineError, Limit};
pub use estimate::{MemoryEstimate, MemoryReport, estimate};
pub use host::{HostCounters, HostStats, ModelHandle, TokenPiece};
pub use infill::{InfillChunk, InfillPrompt};
pub use load::{Isolation, ModelHost, ModelInfo};
pub use lora::{LoraAdapterInfo, LoraScale};
pub use params::{
    ContextParams, DEFAULT_CACHE_RAM_MIB, DEFAULT_MAX_CTX_PER_SLOT, DEFAULT_PREFILL_CHUNK,
    FlashAttn, GpuLayers, LoraSpec, ModelParams, OnContextFull, Pooling, RopeScaling, SplitMode,
    YarnParams,
};
pub use raw::max_devices;
pub use request::{
    Caps, Completion, Event, EventStream, FinishReason, GenerateRequest, MAX_GRAMMAR_DEPTH,
    MAX_N_PROBS, Progress, Prompt, PromptPart, Timings, TokenProbs, Usage,
};
pub use sampling::{Grammar, RANDOM_SEED, SamplingParams};
pub use slot::{SlotFileInfo, SlotInfo, SlotState};
pub use stop::{StopMatcher, Utf8Buffer};
pub use worker::{WorkerOptions, WorkerProcess, rss_of, serve as serve_worker};
