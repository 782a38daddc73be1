//! The engine's one error type. Every variant is something a caller can act on (and a server
//! can map to a status code); none carries a llama.cpp type.

use std::path::PathBuf;

/// Which of a request's [`crate::Caps`] it went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    GrammarDepth,
    GrammarRules,
    EmbeddingInputs,
    EmbeddingTokens,
    EmbeddingFloats,
}

impl Limit {
    /// What is measured, in words.
    pub fn what(self) -> &'static str {
        match self {
            Limit::GrammarDepth => "the grammar's nesting depth (groups and rule references)",
            Limit::GrammarRules => "the number of grammar rules",
            Limit::EmbeddingInputs => "the number of inputs",
            Limit::EmbeddingTokens => "the number of tokens across the inputs",
            Limit::EmbeddingFloats => "the number of floats in the response",
        }
    }

    /// `OverLimit` when `value > max`.
    pub(crate) fn check(self, value: u64, max: u64) -> Result<(), EngineError> {
        if value > max {
            return Err(EngineError::OverLimit {
                limit: self,
                value,
                max,
            });
        }
        Ok(())
    }
}

/// Everything that can go wrong in the engine.
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EngineError {
    /// The model file does not exist (or is not a regular file).
    #[error("model file not found: {}", .0.display())]
    ModelNotFound(PathBuf),

    /// The file is not a usable GGUF file (bad magic, hostile header, truncated data...).
    #[error("not a valid GGUF model: {}: {reason}", path.display())]
    NotGguf { path: PathBuf, reason: String },

    /// llama.cpp in this build does not know the model's architecture.
    #[error(
        "unsupported model architecture '{architecture}' (this build of llama.cpp does not know it)"
    )]
    UnsupportedArchitecture { architecture: String },

    /// llama.cpp refused to load the model for another reason (its last log error is quoted).
    #[error("failed to load model: {reason}")]
    LoadFailed { reason: String },

    /// The estimated memory need is larger than the memory there is.
    #[error(
        "not enough memory: the model needs about {needed_bytes} bytes, {available_bytes} are available"
    )]
    OutOfMemory {
        needed_bytes: u64,
        available_bytes: u64,
    },

    /// llama.cpp could not create a context of this size (usually: not enough memory for the KV cache).
    #[error("could not create a context of {n_ctx} tokens: {reason}")]
    ContextTooLarge { n_ctx: u32, reason: String },

    /// The prompt (or an embedding input) does not fit in one slot's context. The words
    /// are llama-server's, which clients match ("exceeds the available context size" for
    /// generations, "too large" for embeddings).
    #[error(
        "input ({n_prompt} tokens) is too large: the request exceeds the available context size ({n_ctx} tokens), try increasing it"
    )]
    PromptTooLong { n_prompt: u32, n_ctx: u32 },

    /// A request or load parameter is out of range; `name` is the field.
    #[error("invalid parameter '{name}': {reason}")]
    InvalidParameter { name: String, reason: String },

    /// The grammar (GBNF) or JSON schema could not be used.
    #[error("invalid grammar: {0}")]
    InvalidGrammar(String),

    /// A request asks for more than its caller's caps allow ([`crate::Caps`]): a grammar
    /// nested too deep, an embedding response too large. The caller names the setting.
    #[error("{} is {value}, more than the limit of {max}", limit.what())]
    OverLimit { limit: Limit, value: u64, max: u64 },

    /// Every slot is busy and the wait queue is full.
    #[error("the request queue is full ({max} waiting)")]
    QueueFull { max: u32 },

    /// A slot operation (save, restore, erase) on a slot that is processing a request.
    #[error("slot {id} is busy")]
    SlotBusy { id: u32 },

    /// Saving or restoring a slot's state failed.
    #[error("slot file {}: {reason}", path.display())]
    SlotFile { path: PathBuf, reason: String },

    /// The model host has stopped (unloaded, shut down, or it failed).
    #[error("the model is shutting down or was unloaded")]
    Shutdown,

    /// A LoRA adapter file cannot be used with this model (missing, not a GGUF LoRA
    /// adapter, made for another architecture or other tensor shapes).
    #[error("LoRA adapter {}: {reason}", path.display())]
    InvalidAdapter { path: PathBuf, reason: String },

    /// The model cannot do this (e.g. rerank without a rank-pooling head, infill without
    /// fill-in-the-middle tokens); `what` names the operation.
    #[error("{what} is not supported: {reason}")]
    Unsupported { what: String, reason: String },

    /// `llama_decode` failed.
    #[error("decode failed: {0}")]
    Decode(String),

    /// The model's worker process died (an abort inside llama.cpp, a signal, an
    /// out-of-memory kill): its requests end with this, and the model is loaded again on
    /// the next request. `reason` is the signal or exit status and the line that said why.
    #[error("model {model} stopped unexpectedly: {reason}")]
    Crashed { model: String, reason: String },
}

impl EngineError {
    pub(crate) fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        EngineError::InvalidParameter {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// True for errors caused by the request or the user's input (a 4xx in HTTP terms).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            EngineError::ModelNotFound(_)
                | EngineError::NotGguf { .. }
                | EngineError::UnsupportedArchitecture { .. }
                | EngineError::PromptTooLong { .. }
                | EngineError::InvalidParameter { .. }
                | EngineError::InvalidGrammar(_)
                | EngineError::OverLimit { .. }
                | EngineError::QueueFull { .. }
                | EngineError::SlotBusy { .. }
                // The file name the request chose (a folder, not a slot file of this model).
                | EngineError::SlotFile { .. }
                | EngineError::Unsupported { .. }
                | EngineError::InvalidAdapter { .. }
        )
    }
}
