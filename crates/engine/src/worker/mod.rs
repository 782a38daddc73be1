//! Worker isolation: a model can run in a child process of the same binary
//! (`llama-dashboard worker`), so that an abort inside llama.cpp (a C++ abort is not a Rust
//! panic and cannot be caught) ends one model, not the server.
//!
//! [`crate::ModelHandle`] has two backends and the same API: the model's host thread in this
//! process, or a [`client`] talking to a worker process that runs the very same host thread
//! ([`serve`]). Calls and events cross a pipe as [`protocol`] frames.

mod client;
mod protocol;
mod serve;

pub(crate) use client::{CancelGuard, Client};
pub(crate) use client::load as load_in_worker;
pub use client::{WorkerOptions, WorkerProcess, rss_of};
pub(crate) use protocol::{Answer, Call, LoadOrder};
pub use serve::serve;
