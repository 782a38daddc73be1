//! The event feed behind `/ws/events` and `/ws/bench`: every event is a JSON envelope
//! `{"type": "model.loaded", "timestamp": "2026-02-27T12:00:00.000Z", "data": {...}}`
//! (PRD M10). Publishing never waits: a subscriber that falls behind loses events and is
//! disconnected by its WebSocket handler.

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

#[derive(Debug, Clone, Serialize)]
pub struct WsEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: String,
    pub data: Value,
}

#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<WsEvent>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl Events {
    pub fn emit(&self, kind: &str, data: Value) {
        let _ = self.tx.send(WsEvent {
            kind: kind.to_string(),
            timestamp: now_rfc3339(),
            data,
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<WsEvent> {
        self.tx.subscribe()
    }

    /// Forwards the model manager's state changes (until the manager goes away).
    pub fn forward_models(&self, rx: broadcast::Receiver<manager::Event>) {
        self.forward(rx, |e: &manager::Event| (e.name(), untagged(e)));
    }

    /// Forwards the benchmark runner's events (until the runner goes away).
    pub fn forward_bench(&self, rx: broadcast::Receiver<service::bench::BenchEvent>) {
        self.forward(rx, |e: &service::bench::BenchEvent| (e.name(), untagged(e)));
    }

    /// Forwards deployments' state changes (until the deployments go away).
    pub fn forward_deployments(&self, rx: broadcast::Receiver<service::DeploymentEvent>) {
        self.forward(rx, |e: &service::DeploymentEvent| {
            (e.kind, crate::api::deployments::to_json(&e.deployment))
        });
    }

    /// Forwards download progress and `model.added` (until the downloads go away).
    pub fn forward_downloads(&self, rx: broadcast::Receiver<service::DownloadEvent>) {
        self.forward(rx, |e: &service::DownloadEvent| {
            (e.name(), crate::api::downloads::event_json(e))
        });
    }

    /// Re-emits another feed's events as `(name, data)`.
    fn forward<E: Clone + Send + 'static>(
        &self,
        mut rx: broadcast::Receiver<E>,
        to_event: fn(&E) -> (&'static str, Value),
    ) {
        let events = self.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        let (name, data) = to_event(&e);
                        events.emit(name, data);
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
}

/// An event's JSON without its `type` tag (the envelope carries the name).
fn untagged(e: &impl Serialize) -> Value {
    let mut data = serde_json::to_value(e).unwrap_or(Value::Null);
    if let Some(o) = data.as_object_mut() {
        o.remove("type");
    }
    data
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
