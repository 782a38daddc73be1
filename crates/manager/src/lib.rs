//! The model manager: many models in one process.
//!
//! It owns the life cycle of every model (Unloaded → Loading(progress) → Loaded, or
//! Failed(reason)) and nothing about how a model runs: the engine plugs in through
//! [`Loader`]. That keeps this logic testable without llama.cpp and lets the same manager
//! drive an in-process engine or, later, worker processes.
//!
//! Rules it enforces:
//! - at most `models_max` models loaded (or loading); loading one more evicts the least
//!   recently used *idle* model — a model with requests in flight is never evicted;
//! - N concurrent requests for one unloaded model cause exactly one load;
//! - a model asked for with different *load* parameters is reloaded; anything else (sampling
//!   options) is per request and never reaches here;
//! - idle models sleep (unload) after `sleep_idle`, or after a request's own `keep_alive`
//!   (0 = unload when the request ends, forever = never), clamped by a
//!   [`KeepAlivePolicy`]; the longest keep-alive of the requests that overlapped wins, so
//!   one client's `0` never unloads a model others are using or waiting for;
//! - a model whose worker process dies is marked crashed ([`Event::Crashed`]) and loaded
//!   again by the next request; one that crashes `crash_limit` times within `crash_window`
//!   backs off, then is failed with its reason instead of looping;
//! - every state change is published as an [`Event`].

mod keep_alive;
mod manager;
mod state;

pub use keep_alive::{KeepAlive, KeepAlivePolicy};
pub use manager::{CrashWatch, Lease, Loader, Manager, ManagerConfig, ManagerError};
pub use state::{Event, ModelState, ModelStatus, UnloadReason};
