//! WebSockets (PRD M10): `/ws/events` (every event), `/ws/bench` (benchmark events only),
//! `/ws/logs` (live log lines, `?level=warn` to filter). Messages are the JSON envelope
//! `{type, timestamp, data}`. A client that falls behind the feed is disconnected (close
//! code 1008 with a reason) rather than slowing the server down.

use super::system::parse_level;
use crate::error::ApiResult;
use crate::events::now_rfc3339;
use crate::logs::level_ok;
use crate::state::SharedState;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

pub async fn events(State(state): State<SharedState>, ws: WebSocketUpgrade) -> Response {
    let rx = state.events.subscribe();
    ws.on_upgrade(move |socket| feed(socket, rx, |_| true))
}

pub async fn bench(State(state): State<SharedState>, ws: WebSocketUpgrade) -> Response {
    let rx = state.events.subscribe();
    ws.on_upgrade(move |socket| feed(socket, rx, |e| e.kind.starts_with("bench.")))
}

/// `/ws/download` and `/ws/download-progress`: `download.progress` and `model.added` only.
pub async fn downloads(State(state): State<SharedState>, ws: WebSocketUpgrade) -> Response {
    let rx = state.events.subscribe();
    ws.on_upgrade(move |socket| {
        feed(socket, rx, |e| {
            e.kind.starts_with("download.") || e.kind == "model.added"
        })
    })
}

#[derive(Deserialize)]
pub struct LogsQuery {
    level: Option<String>,
}

pub async fn logs(
    State(state): State<SharedState>,
    Query(q): Query<LogsQuery>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let min = parse_level(q.level.as_deref())?;
    let rx = state.logs.buffer.subscribe();
    Ok(ws.on_upgrade(move |socket| async move {
        feed_with(socket, rx, move |l: &crate::logs::LogLine| {
            level_ok(&l.level, min)
                .then(|| json!({"type": "log", "timestamp": now_rfc3339(), "data": l}).to_string())
        })
        .await
    }))
}

async fn feed(
    socket: WebSocket,
    rx: tokio::sync::broadcast::Receiver<crate::events::WsEvent>,
    keep: impl Fn(&crate::events::WsEvent) -> bool + Send + 'static,
) {
    feed_with(socket, rx, move |e| {
        keep(e).then(|| serde_json::to_string(e).unwrap_or_default())
    })
    .await
}

/// Pushes each item `render` keeps to the socket until either side ends. Incoming
/// messages are read (pings answered by axum) and otherwise ignored.
async fn feed_with<T: Clone + Send + 'static>(
    mut socket: WebSocket,
    mut rx: tokio::sync::broadcast::Receiver<T>,
    render: impl Fn(&T) -> Option<String> + Send + 'static,
) {
    loop {
        tokio::select! {
            item = rx.recv() => match item {
                Ok(item) => {
                    if let Some(text) = render(&item)
                        && socket.send(Message::Text(text.into())).await.is_err()
                    {
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame {
                            code: 1008,
                            reason: Utf8Bytes::from(format!("too slow: {n} messages dropped")),
                        })))
                        .await;
                    return;
                }
                Err(RecvError::Closed) => return,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
