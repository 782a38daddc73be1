//! Talking to model hubs and moving bytes.
//!
//! - [`hf`]: the Hugging Face hub API (search, model info, a repository's GGUF files) and
//!   its resolve URLs;
//! - [`ollama`]: the Ollama registry (names, manifests, blobs by digest) and the plan that
//!   pulls a model into Ollama's store layout;
//! - [`ollama_library`]: the Ollama library website's search and tags pages (there is no
//!   JSON API), parsed from the HTML;
//! - [`transfer`]: one file, resumable, verified, moved into place atomically;
//! - [`queue`]: tasks of one or more files, at most N downloading at once.
//!
//! Nothing here knows about llama.cpp or the service layer: the service owns a
//! [`queue::Queue`] and tells the catalog when a task completes.

pub mod error;
pub mod hf;
pub mod http;
pub mod ollama;
pub mod ollama_library;
pub mod queue;
pub mod transfer;

pub use error::{Error, Origin, Result};
