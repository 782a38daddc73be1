//! How long a model stays loaded after its last request.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Ollama's `keep_alive`: a duration, `0` to unload as soon as the request ends, or
/// forever (any negative value on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeepAlive {
    For(Duration),
    Forever,
}

impl KeepAlive {
    /// From seconds as configs and Ollama's API give them: negative = forever.
    pub fn from_secs(secs: i64) -> Self {
        if secs < 0 {
            KeepAlive::Forever
        } else {
            KeepAlive::For(Duration::from_secs(secs as u64))
        }
    }

    pub fn is_zero(self) -> bool {
        self == KeepAlive::For(Duration::ZERO)
    }
}
