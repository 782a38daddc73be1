//! What the manager tells the world: model states and events.

use serde::Serialize;

/// A model's life-cycle state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ModelState {
    Unloaded,
    /// `progress` goes from 0 to 1.
    Loading {
        progress: f32,
    },
    Loaded,
    Failed {
        reason: String,
    },
}

/// A snapshot of one known model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelStatus {
    pub id: String,
    #[serde(flatten)]
    pub state: ModelState,
    /// Requests holding a lease on the model right now.
    pub in_flight: usize,
    /// Seconds since the model was last used (loaded models only).
    pub idle_seconds: Option<u64>,
    /// Seconds until an idle loaded model sleeps (its keep-alive); `None` while it is in
    /// use, not loaded, or kept forever.
    pub expires_in_seconds: Option<u64>,
    /// How long the model stays loaded after its last request (its current busy period's
    /// keep-alive): with `idle_seconds`, when it will sleep once in use no more.
    #[serde(skip)]
    pub keep_alive: crate::KeepAlive,
}

/// A state change, for the WebSocket feed and logs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// `model.loading`: emitted at the start and as progress advances.
    Loading {
        id: String,
        progress: f32,
    },
    Loaded {
        id: String,
        load_ms: u64,
    },
    Unloaded {
        id: String,
        reason: UnloadReason,
    },
    Failed {
        id: String,
        reason: String,
    },
    /// The model's worker process died under it; the next request loads it again (or,
    /// after too many crashes, a `Failed` follows).
    Crashed {
        id: String,
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnloadReason {
    /// Someone asked (API, CLI).
    Requested,
    /// Made room for another model (`models_max`).
    Evicted,
    /// Idle longer than its keep-alive.
    Idle,
    /// Reloaded with other load parameters.
    Reload,
    Shutdown,
}

impl Event {
    /// The event's name on the wire (`model.loading`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Event::Loading { .. } => "model.loading",
            Event::Loaded { .. } => "model.loaded",
            Event::Unloaded { .. } => "model.unloaded",
            Event::Failed { .. } => "model.failed",
            Event::Crashed { .. } => "model.crashed",
        }
    }
}
