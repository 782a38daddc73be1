//! The service layer's error: everything a protocol adapter must turn into its own error
//! shape. [`ServiceError::kind`] says which HTTP-ish class it is, so every adapter maps it
//! the same way.

use engine::{EngineError, Limit};
use manager::ManagerError;

/// What went wrong, in terms a client can act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceError {
    /// No discovered model has this id, alias or path.
    #[error("model '{0}' not found")]
    UnknownModel(String),
    /// Something other than a model that the request names does not exist (a deployment).
    #[error("{0}")]
    NotFound(String),
    /// A request field is missing or out of range; `field` names it.
    #[error("invalid parameter '{field}': {reason}")]
    Invalid { field: String, reason: String },
    /// A request over one of the `[limits]`; the message names the setting that raises it.
    #[error("{0}")]
    Limit(crate::limits::LimitExceeded),
    /// A value the store refused (a malformed alias, ...); the message names it.
    #[error("{0}")]
    Rejected(String),
    /// The model cannot do what was asked (embeddings on a model without them, ...).
    #[error("{0}")]
    Unsupported(String),
    /// The chat template failed (a template can `raise_exception`).
    #[error("chat template error: {0}")]
    Template(String),
    #[error("{}", engine_message(.0))]
    Engine(#[from] EngineError),
    /// `limits.max_in_flight` requests are running or waiting already.
    #[error(
        "the server is full: {max} requests are in flight (limits.max_in_flight); try again shortly"
    )]
    ServerFull { max: u64 },
    /// Every slot of the model is busy and `limits.max_waiting_per_model` requests wait.
    #[error(
        "model '{model}' is busy: its slots are taken and {max_waiting} requests are waiting (limits.max_waiting_per_model); try again shortly"
    )]
    ModelBusy { model: String, max_waiting: u64 },
    /// The model was not ready (loading, or waiting for another to be evicted) within the
    /// request's deadline. Its load goes on; a later request finds it loaded.
    #[error(
        "model '{model}' was not ready within the request's timeout of {seconds} s (server.timeout_seconds); it is still loading or waiting for a free model, try again shortly"
    )]
    NotReadyInTime { model: String, seconds: u64 },
    /// The request ran past its deadline while generating.
    #[error(
        "the request took longer than the server's timeout of {seconds} s (server.timeout_seconds)"
    )]
    TimedOut { seconds: u64 },
    #[error("{0}")]
    Manager(#[from] ManagerError),
    /// A state conflict (unload while in use, ...).
    #[error("{0}")]
    Conflict(String),
    #[error("the server is shutting down")]
    ShuttingDown,
    /// A model hub or registry could not be reached or failed (the message says which).
    #[error("{0}")]
    Upstream(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The classes of errors the protocols distinguish (DESIGN.md, "Errors and bad input").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400
    BadRequest,
    /// 404
    NotFound,
    /// 409
    Conflict,
    /// 413: the request is larger than a limit allows.
    TooLarge,
    /// 408: the request ran past its deadline.
    Timeout,
    /// 429
    TooManyRequests,
    /// 501: the model (or this build) cannot do it.
    NotSupported,
    /// 503
    Unavailable,
    /// 500
    Internal,
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ServiceError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::UnknownModel(_) | ServiceError::NotFound(_) => ErrorKind::NotFound,
            ServiceError::Invalid { .. }
            | ServiceError::Rejected(_)
            | ServiceError::Template(_) => ErrorKind::BadRequest,
            ServiceError::Limit(l) if l.too_large => ErrorKind::TooLarge,
            ServiceError::Limit(_) => ErrorKind::BadRequest,
            ServiceError::Unsupported(_) => ErrorKind::NotSupported,
            ServiceError::Conflict(_) => ErrorKind::Conflict,
            ServiceError::ShuttingDown | ServiceError::Upstream(_) => ErrorKind::Unavailable,
            ServiceError::ServerFull { .. } | ServiceError::NotReadyInTime { .. } => {
                ErrorKind::Unavailable
            }
            ServiceError::ModelBusy { .. } => ErrorKind::TooManyRequests,
            ServiceError::TimedOut { .. } => ErrorKind::Timeout,
            ServiceError::Internal(_) => ErrorKind::Internal,
            ServiceError::Manager(m) => match m {
                // A model that cannot load is the request's problem (bad file, too big).
                ManagerError::LoadFailed { .. } => ErrorKind::BadRequest,
                ManagerError::InUse { .. } => ErrorKind::Conflict,
                ManagerError::NotLoaded { .. } => ErrorKind::Conflict,
                ManagerError::ShuttingDown => ErrorKind::Unavailable,
            },
            ServiceError::Engine(e) => match e {
                EngineError::QueueFull { .. } => ErrorKind::TooManyRequests,
                // The response would be too large: 413, as for a body over the limit.
                EngineError::OverLimit {
                    limit: Limit::EmbeddingInputs | Limit::EmbeddingTokens | Limit::EmbeddingFloats,
                    ..
                } => ErrorKind::TooLarge,
                EngineError::Shutdown => ErrorKind::Unavailable,
                // The model's worker died; the next request loads it again.
                EngineError::Crashed { .. } => ErrorKind::Unavailable,
                EngineError::SlotBusy { .. } => ErrorKind::Conflict,
                EngineError::ModelNotFound(_) => ErrorKind::NotFound,
                // The model cannot do it (rerank without a rank head, infill without FIM
                // tokens): llama-server answers 501 here too.
                EngineError::Unsupported { .. } => ErrorKind::NotSupported,
                e if e.is_client_error() => ErrorKind::BadRequest,
                _ => ErrorKind::Internal,
            },
        }
    }

    /// `(prompt tokens, context tokens)` when the prompt does not fit in a slot's context
    /// (llama-server's `exceed_context_size_error`, which names both).
    pub fn context_overflow(&self) -> Option<(u32, u32)> {
        match self {
            ServiceError::Engine(EngineError::PromptTooLong { n_prompt, n_ctx }) => {
                Some((*n_prompt, *n_ctx))
            }
            _ => None,
        }
    }

    /// The request field at fault, when there is one (OpenAI's `param`).
    pub fn param(&self) -> Option<&str> {
        match self {
            ServiceError::Invalid { field, .. } => Some(field),
            ServiceError::Limit(l) => Some(&l.field),
            ServiceError::Engine(EngineError::InvalidParameter { name, .. }) => Some(name),
            ServiceError::Engine(EngineError::InvalidGrammar(_)) => Some("grammar"),
            ServiceError::Engine(EngineError::OverLimit { limit, .. }) => Some(match limit {
                Limit::GrammarDepth | Limit::GrammarRules => "grammar",
                _ => "input",
            }),
            ServiceError::Engine(EngineError::PromptTooLong { .. }) => Some("messages"),
            ServiceError::UnknownModel(_) => Some("model"),
            _ => None,
        }
    }
}

/// An engine error's message; a cap it went over names the setting that raises it.
fn engine_message(e: &EngineError) -> String {
    match e {
        EngineError::OverLimit { limit, .. } => {
            format!(
                "{e} ({}; raise it in the configuration)",
                crate::limits::setting(*limit)
            )
        }
        e => e.to_string(),
    }
}

impl From<chat::TemplateError> for ServiceError {
    fn from(e: chat::TemplateError) -> Self {
        ServiceError::Template(e.to_string())
    }
}
