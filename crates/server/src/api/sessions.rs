//! Chat sessions over HTTP and WebSocket (issue 13; seed 001's `/api/chat/*` and
//! `/ws/chat/stream`, seed 003's `/sessions`, `/chat/history/:id`, `/chat/ws`). The sessions
//! themselves are `service::sessions`; this module maps requests to it, its events to SSE or
//! socket messages, and gives it the [`HttpRunner`]: the chat route's own steps to a model
//! (`common::start`), so a session's answer is generated exactly as `/v1/chat/completions`
//! generates.
//!
//! Stream events (SSE `event:` names, and the `type` of socket messages): `message` (the
//! question, then each answer's row as created), `delta` (reply text), `reasoning`
//! (thoughts), `tool_call` and `tool_result` (a server tool's call and its result, stored as
//! messages; docs/TOOLS.md), `done` (the stored answer: finish reason, usage, timings,
//! left-out ids), `error`.

use super::common;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::SharedState;
use axum::Json;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::Event as SseEvent;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use service::sessions::send::{Ask, BoxFuture};
use service::sessions::{
    Measure, NewSession, Outputs, Runner, SendEvent, Sent, SessionPatch, Sessions, View,
    transfer::Export,
};
use service::sessions::ServerTools;
use service::{ChatInput, Output, Request, SamplingDefaults, ServiceError};
use std::sync::Arc;

/// Seed 003's spellings outside `/api/`: the same access and error shape as `/api/chat/*`.
pub fn is_alias(path: &str) -> bool {
    path == "/sessions" || path == "/chat/ws" || path.starts_with("/chat/history/")
}

/// The chat route's steps to a model, for the session service.
pub struct HttpRunner {
    pub state: SharedState,
}

impl Outputs for common::Timed {
    fn next(&mut self) -> BoxFuture<'_, Option<Result<Output, ServiceError>>> {
        Box::pin(common::Timed::next(self))
    }
}

impl Runner for HttpRunner {
    fn pick<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<String, ServiceError>> {
        Box::pin(async move {
            let entry = common::pick(&self.state, Some(name)).await?;
            Ok(self.state.models.public_id(&entry))
        })
    }

    fn sampling<'a>(&'a self, model: &'a str) -> BoxFuture<'a, SamplingDefaults> {
        Box::pin(self.state.sampling_for(Some(model)))
    }

    fn measure<'a>(
        &'a self,
        model: &'a str,
        chat: ChatInput,
    ) -> BoxFuture<'a, Result<Measure, ServiceError>> {
        Box::pin(common::measure_chat(&self.state, Some(model), chat))
    }

    fn start<'a>(
        &'a self,
        model: &'a str,
        req: Request,
    ) -> BoxFuture<'a, Result<Box<dyn Outputs>, ServiceError>> {
        Box::pin(async move {
            let timed = common::start(&self.state, Some(model), None, req).await?;
            Ok(Box::new(timed) as Box<dyn Outputs>)
        })
    }

    fn tools(&self) -> Option<Arc<service::Tools>> {
        Some(self.state.tools.clone())
    }
}

fn sessions(state: &SharedState) -> ApiResult<Arc<Sessions>> {
    state.sessions.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "chat sessions need the database, which could not be opened (see the server log)",
        )
    })
}

fn runner(state: &SharedState) -> Arc<dyn Runner> {
    Arc::new(HttpRunner {
        state: state.clone(),
    })
}

/// A JSON body that may be left out (the defaults then).
fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        crate::extract::parse(body)
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// `POST /api/chat/sessions/create`.
pub async fn create(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<NewSession>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let s = sessions(&state)?.create(req).await?;
    Ok((StatusCode::CREATED, Json(to_value(&s))))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<u32>,
    offset: Option<u64>,
    /// Title search (`q` too).
    search: Option<String>,
    q: Option<String>,
}

/// `GET /api/chat/sessions` and seed 003's `GET /sessions`: newest first, paged.
pub async fn list(
    State(state): State<SharedState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let page = sessions(&state)?
        .list(q.search.or(q.q), q.limit, q.offset)
        .await?;
    Ok(Json(to_value(&page)))
}

/// `GET /api/chat/sessions/{id}`.
pub async fn get(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(to_value(&sessions(&state)?.get(&id).await?)))
}

/// `PATCH /api/chat/sessions/{id}`: title, model(s), params, active branch.
pub async fn patch(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SessionPatch>,
) -> ApiResult<Json<Value>> {
    Ok(Json(to_value(&sessions(&state)?.patch(&id, req).await?)))
}

/// `DELETE /api/chat/sessions/{id}` and seed 003's `DELETE /chat/history/{id}`.
pub async fn delete(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    sessions(&state)?.delete(&id).await?;
    Ok(Json(json!({"id": id, "deleted": true})))
}

#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    /// Show the branch ending with this message.
    branch: Option<i64>,
    /// `1`/`true`: every message.
    tree: Option<String>,
}

/// `GET /api/chat/history/{id}` and seed 003's `GET /chat/history/{id}`.
pub async fn history(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    let tree = match q.tree.as_deref() {
        None | Some("0") | Some("false") => false,
        Some("1") | Some("true") => true,
        Some(other) => return Err(ApiError::invalid("tree", format!("{other:?}: 1 or 0"))),
    };
    let view = match (tree, q.branch) {
        (true, Some(_)) => {
            return Err(ApiError::invalid("branch", "give `branch` or `tree`, not both"));
        }
        (true, None) => View::Tree,
        (false, Some(leaf)) => View::Branch(leaf),
        (false, None) => View::Active,
    };
    Ok(Json(to_value(&sessions(&state)?.history(&id, view).await?)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// Messages to drop from the end of the active branch (default 1).
    #[serde(default)]
    n: Option<u32>,
}

/// `POST /api/chat/history/{id}/rollback` (seed 003, also without `/api`).
pub async fn rollback(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let n = optional_body::<RollbackRequest>(&body)?.n.unwrap_or(1);
    let dropped = sessions(&state)?.rollback(&id, n).await?;
    Ok(Json(json!({"id": id, "dropped": dropped})))
}

/// `POST /api/chat/sessions/{id}/stop`: the running answers end, their text kept.
pub async fn stop(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let s = sessions(&state)?;
    s.get(&id).await?;
    let stopped = s.stop(&id);
    Ok(Json(json!({"id": id, "stopped": stopped})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    session_id: String,
    message: String,
    /// Ask another model than the session's first.
    #[serde(default)]
    model: Option<String>,
    /// Ask several models the same question; each answer is a sibling tagged by model.
    #[serde(default)]
    models: Vec<String>,
    /// This send's server tools (`true`, `false`, names); the session's setting otherwise.
    #[serde(default)]
    server_tools: Option<ServerTools>,
    /// How the first step uses them (OpenAI's `tool_choice`).
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    stream: bool,
}

/// What a send asks: models, and its server tools (`tool_choice` as OpenAI's).
fn ask(
    model: Option<String>,
    models: Vec<String>,
    server_tools: Option<ServerTools>,
    tool_choice: Option<&Value>,
) -> ApiResult<Ask> {
    Ok(Ask {
        models: model.into_iter().chain(models).collect(),
        server_tools,
        tool_choice: tool_choice
            .map(|v| super::openai::parse_tool_choice(Some(v)))
            .transpose()?,
    })
}

/// `POST /api/chat/send`.
pub async fn send(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<SendRequest>,
) -> ApiResult<Response> {
    let sent = sessions(&state)?
        .send(
            runner(&state),
            &req.session_id,
            req.message,
            ask(req.model, req.models, req.server_tools, req.tool_choice.as_ref())?,
        )
        .await?;
    Ok(reply(sent, req.stream).await)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegenerateRequest {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    server_tools: Option<ServerTools>,
    /// How the first step uses them (OpenAI's `tool_choice`).
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    stream: bool,
}

/// `POST /api/chat/sessions/{id}/regenerate`: a new answer, a new branch.
pub async fn regenerate(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let req = optional_body::<RegenerateRequest>(&body)?;
    let sent = sessions(&state)?
        .regenerate(runner(&state), &id, ask(req.model, req.models, req.server_tools, req.tool_choice.as_ref())?)
        .await?;
    Ok(reply(sent, req.stream).await)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    message_id: i64,
    /// The new text (`message` too).
    #[serde(alias = "message")]
    content: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    server_tools: Option<ServerTools>,
    /// How the first step uses them (OpenAI's `tool_choice`).
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    stream: bool,
}

/// `POST /api/chat/sessions/{id}/edit`: the question asked again, a new branch.
pub async fn edit(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<EditRequest>,
) -> ApiResult<Response> {
    let sent = sessions(&state)?
        .edit(
            runner(&state),
            &id,
            req.message_id,
            req.content,
            ask(req.model, req.models, req.server_tools, req.tool_choice.as_ref())?,
        )
        .await?;
    Ok(reply(sent, req.stream).await)
}

/// An event as JSON (SSE data and socket messages alike); `session` is added on sockets.
pub fn event_json(ev: &SendEvent) -> Value {
    match ev {
        SendEvent::Started(m) => json!({"type": "message", "message": m}),
        SendEvent::Delta {
            message_id,
            text,
            emitted_at,
        } => {
            let mut v = json!({"type": "delta", "message_id": message_id, "content": text});
            if let Some(t) = emitted_at {
                v["emitted_at"] = json!(t);
            }
            v
        }
        SendEvent::Reasoning { message_id, text } => {
            json!({"type": "reasoning", "message_id": message_id, "reasoning": text})
        }
        // The OpenAI stream's extension objects (docs/TOOLS.md) under the same keys.
        SendEvent::ToolCall { message_id, call } => {
            json!({"type": "tool_call", "message_id": message_id, "server_tool_call": call})
        }
        SendEvent::ToolResult { message, result } => json!({
            "type": "tool_result",
            "message_id": message.id,
            "server_tool_result": result,
            "message": message,
        }),
        SendEvent::Done(m) => json!({
            "type": "done",
            "message_id": m.id,
            "model": m.model,
            "finish_reason": m.finish_reason,
            "usage": {
                "prompt_tokens": m.prompt_tokens,
                "completion_tokens": m.completion_tokens,
            },
            "timings": m.timings,
            "left_out": m.left_out.clone().unwrap_or_default(),
            "message": m,
        }),
        SendEvent::Error { message_id, error } => {
            let e = common::stream_error(error.clone());
            json!({"type": "error", "message_id": message_id, "error": e["error"]})
        }
    }
}

/// The answer to a send: an SSE stream, or once every answer is finished, JSON.
async fn reply(sent: Sent, stream: bool) -> Response {
    if stream {
        let first: Vec<SseEvent> = sent
            .question
            .iter()
            .map(|q| sse(&json!({"type": "message", "message": q})))
            .collect();
        let events = futures_util::stream::iter(first.into_iter().map(Ok)).chain_events(sent);
        return super::openai::sse(events);
    }
    let (session, question, answers) = sent.finish().await;
    let answers: Vec<Value> = answers
        .iter()
        .map(|a| {
            let mut v = to_value(&a.message);
            if let Some(e) = &a.error {
                v["error"] = common::stream_error(e.clone())["error"].clone();
            }
            if !a.tool_calls.is_empty() {
                v["server_tool_calls"] = Value::Array(a.tool_calls.clone());
            }
            v
        })
        .collect();
    Json(json!({
        "session": session,
        "question": question,
        "answers": answers,
    }))
    .into_response()
}

fn sse(v: &Value) -> SseEvent {
    let kind = v["type"].as_str().unwrap_or("message").to_string();
    SseEvent::default().event(kind).data(v.to_string())
}

/// The send's events after what came first; dropping the stream (client gone) drops the
/// receiver, which ends the answers with their text kept (`cancelled`).
trait ChainEvents {
    fn chain_events(
        self,
        sent: Sent,
    ) -> impl futures_util::Stream<Item = Result<SseEvent, std::convert::Infallible>> + Send + 'static;
}

impl<S> ChainEvents for S
where
    S: futures_util::Stream<Item = Result<SseEvent, std::convert::Infallible>> + Send + 'static,
{
    fn chain_events(
        self,
        sent: Sent,
    ) -> impl futures_util::Stream<Item = Result<SseEvent, std::convert::Infallible>> + Send + 'static
    {
        use futures_util::StreamExt;
        let rest = futures_util::stream::unfold(sent.events, |mut rx| async move {
            rx.recv().await.map(|ev| (Ok(sse(&event_json(&ev))), rx))
        });
        self.chain(rest)
    }
}

#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    format: Option<String>,
}

/// `POST /api/chat/export/{id}?format=json|markdown` (GET too): a file download.
pub async fn export(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let s = sessions(&state)?;
    let (body, kind, ext) = match q.format.as_deref().unwrap_or("json") {
        "json" => {
            let e = s.export_json(&id).await?;
            (
                serde_json::to_string_pretty(&e).unwrap_or_default(),
                "application/json",
                "json",
            )
        }
        "markdown" | "md" => (
            s.export_markdown(&id).await?,
            "text/markdown; charset=utf-8",
            "md",
        ),
        other => {
            return Err(ApiError::invalid(
                "format",
                format!("{other:?}: json or markdown"),
            ));
        }
    };
    // Session ids are generated (`sess_` and hex), so the file name needs no quoting rules;
    // anything else is dropped from it anyway.
    let name: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"chat-{name}.{ext}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// `POST /api/chat/import`: a JSON export becomes a new session (the same tree).
pub async fn import(
    State(state): State<SharedState>,
    ApiJson(export): ApiJson<Export>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let s = sessions(&state)?.import(export).await?;
    Ok((StatusCode::CREATED, Json(to_value(&s))))
}

/// A socket message from the client. `request_id` (any string the client picks) comes back
/// on every event of that request, errors included.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum SocketRequest {
    Send {
        session_id: String,
        message: String,
        #[serde(default)]
        model: Option<String>,
        #[serde(default)]
        models: Vec<String>,
        #[serde(default)]
        server_tools: Option<ServerTools>,
        #[serde(default)]
        tool_choice: Option<Value>,
        #[serde(default)]
        request_id: Option<String>,
    },
    Stop {
        session_id: String,
        #[serde(default)]
        request_id: Option<String>,
    },
}

/// Socket messages the server may have queued for one client before it stops reading them.
const SOCKET_QUEUE: usize = 1024;
/// Characters of a client's `request_id`.
const MAX_REQUEST_ID_CHARS: usize = 256;

/// `/ws/chat/stream` (seed 001) and `/chat/ws` (seed 003): `{"type":"send", session_id,
/// message, models?, server_tools?, request_id?}` and `{"type":"stop", session_id,
/// request_id?}`; every event carries its `session_id` (and the request's `request_id`), so
/// several sessions share one socket — a refused request's `error` too. Closing the socket
/// stops its answers (their text kept, `cancelled`).
pub async fn socket(State(state): State<SharedState>, ws: WebSocketUpgrade) -> Response {
    // A socket message is a request body: the same cap (`server.body_limit_mb`).
    let limit = (state.config().server.body_limit_mb as usize).saturating_mul(1024 * 1024);
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| chat_socket(state, socket))
}

async fn chat_socket(state: SharedState, mut socket: WebSocket) {
    let (out, mut queued) = tokio::sync::mpsc::channel::<Value>(SOCKET_QUEUE);
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                };
                if let Err((e, tags)) = on_socket_request(&state, &text, out.clone()).await {
                    let mut v = json!({"type": "error", "error": {
                        "message": e.message, "code": e.status.as_u16()}});
                    tags.apply(&mut v);
                    if socket.send(WsMessage::Text(v.to_string().into())).await.is_err() {
                        return;
                    }
                }
            }
            Some(v) = queued.recv() => {
                if socket.send(WsMessage::Text(v.to_string().into())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// What identifies a socket request on its events: the session and the client's id.
#[derive(Debug, Clone, Default)]
struct Tags {
    session_id: Option<String>,
    request_id: Option<String>,
}

impl Tags {
    /// The tags of a message that did not parse as a request, read from it when it is an
    /// object holding them as strings (so a client still learns which request failed).
    fn guess(text: &str) -> Tags {
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let tag = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .filter(|s| s.chars().count() <= MAX_REQUEST_ID_CHARS)
                .map(str::to_owned)
        };
        Tags {
            session_id: tag("session_id"),
            request_id: tag("request_id"),
        }
    }

    fn apply(&self, v: &mut Value) {
        if let Some(s) = &self.session_id {
            v["session_id"] = json!(s);
        }
        if let Some(r) = &self.request_id {
            v["request_id"] = json!(r);
        }
    }
}

async fn on_socket_request(
    state: &SharedState,
    text: &str,
    out: tokio::sync::mpsc::Sender<Value>,
) -> Result<(), (ApiError, Tags)> {
    let req: SocketRequest = serde_json::from_str(text).map_err(|e| {
        (
            ApiError::bad_request(format!("not a chat socket message: {e}")),
            Tags::guess(text),
        )
    })?;
    let tags = match &req {
        SocketRequest::Send {
            session_id,
            request_id,
            ..
        }
        | SocketRequest::Stop {
            session_id,
            request_id,
        } => Tags {
            session_id: Some(session_id.clone()),
            request_id: request_id.clone(),
        },
    };
    let fail = |e: ApiError| (e, tags.clone());
    if tags
        .request_id
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REQUEST_ID_CHARS)
    {
        let e = ApiError::invalid(
            "request_id",
            format!("at most {MAX_REQUEST_ID_CHARS} characters"),
        );
        return Err((e, Tags { request_id: None, ..tags }));
    }
    let s = sessions(state).map_err(fail)?;
    match req {
        SocketRequest::Stop { session_id, .. } => {
            s.get(&session_id).await.map_err(|e| fail(e.into()))?;
            let stopped = s.stop(&session_id);
            let mut v = json!({"type": "stopped", "session_id": session_id, "stopped": stopped});
            tags.apply(&mut v);
            let _ = out.send(v).await;
        }
        SocketRequest::Send {
            session_id,
            message,
            model,
            models,
            server_tools,
            tool_choice,
            ..
        } => {
            let ask = ask(model, models, server_tools, tool_choice.as_ref()).map_err(fail)?;
            let sent = s
                .send(runner(state), &session_id, message, ask)
                .await
                .map_err(|e| fail(e.into()))?;
            if let Some(q) = &sent.question {
                let mut v = json!({"type": "message", "message": q});
                tags.apply(&mut v);
                let _ = out.send(v).await;
            }
            let mut events = sent.events;
            // One forwarder per send: the socket's loop stays free for more requests.
            tokio::spawn(async move {
                while let Some(ev) = events.recv().await {
                    let mut v = event_json(&ev);
                    tags.apply(&mut v);
                    if out.send(v).await.is_err() {
                        return;
                    }
                }
            });
        }
    }
    Ok(())
}
