//! `/v1/chat/completions` with `server_tools` (issue 14): the agent loop
//! (`service::agent::run`) between generations, and its events on OpenAI's wire.
//!
//! The extension, streamed: each server tool call and each result is a chunk of its own
//! whose delta holds `server_tool_call: {step, id, name, arguments}` or
//! `server_tool_result: {step, id, name, content, is_error}` (clients that do not know them
//! skip an unknown delta field); the text, thoughts and any call of the client's own tools
//! stream as usual. Not streamed: the message carries `server_tool_calls: [{step, id, name,
//! arguments, content, is_error}]` next to `content`. `usage` adds up every step.

use super::{Meta, StreamState, answer, chat_choice, chat_event, chat_request, chunk};
use crate::api::common::{self, Timed, new_id, sse_json, unix_now};
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use axum::Json;
use axum::response::sse::Event as SseEvent;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use service::agent::AgentEvent;
use service::{Output, ServiceError};
use std::collections::VecDeque;

impl service::agent::Step for Timed {
    fn next(&mut self) -> impl Future<Output = Option<Result<Output, ServiceError>>> + Send {
        Timed::next(self)
    }
}

pub(super) async fn chat_with_server_tools(
    state: SharedState,
    mut req: super::ChatCompletionRequest,
    names: Vec<String>,
    access: Option<axum::Extension<crate::auth::Access>>,
    page: Option<axum::Extension<crate::guard::FromPage>>,
) -> ApiResult<Response> {
    crate::api::tools::may_use_tools(&state, access.as_ref(), page.as_ref())?;
    if common::choices(req.n)? != 1 {
        return Err(ApiError::invalid("n", "server_tools runs one answer: n must be 1"));
    }
    let offered = state.tools.select(&names, true)?;
    let (request, _params, logprobs) = chat_request(&state, &mut req).await?;
    let model = req.model.clone();
    let keep_alive = common::keep_alive(req.keep_alive.as_ref())?;
    let entry = common::pick(&state, model.as_deref()).await?;
    let meta = Meta {
        id: new_id("chatcmpl-"),
        created: unix_now(),
        model: state.models.public_id(&entry),
        logprobs,
        include_usage: req.stream_options.is_some_and(|o| o.include_usage),
        extra: None,
    };
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let st = state.clone();
    let (tools, max_steps) = (state.tools.clone(), state.tools.settings().max_steps);
    // Each step is a request of its own: limits, admission, the model, the deadline.
    let start = move |r| {
        let (st, model) = (st.clone(), model.clone());
        async move { common::start(&st, model.as_deref(), keep_alive, r).await }
    };
    let task = tokio::spawn(service::agent::run(request, offered, Some(tools), true, max_steps, start, tx));
    if req.stream {
        // The first event decides: a request refused before anything was generated (a
        // limit, the model) is an HTTP error, as without server tools.
        let mut rx = rx;
        let Some(first) = rx.recv().await else {
            outcome(task).await?;
            return Err(ApiError::from(ServiceError::Internal("the agent loop ended without an answer".into())));
        };
        Ok(super::sse(stream(meta, first, rx, task)))
    } else {
        collect(meta, rx, task).await
    }
}

type Task = tokio::task::JoinHandle<Result<service::agent::AgentOutcome, ServiceError>>;

async fn outcome(task: Task) -> Result<(), ApiError> {
    match task.await {
        Ok(r) => r.map(|_| ()).map_err(ApiError::from),
        Err(e) => Err(ApiError::from(ServiceError::Internal(format!("the agent loop failed: {e}")))),
    }
}

fn events(ctx: &mut StreamState, ev: AgentEvent) -> Vec<SseEvent> {
    match ev {
        AgentEvent::Output(o) => chat_event(ctx, 0, o),
        AgentEvent::ToolCall(c) => {
            vec![sse_json(&chunk(&ctx.meta, 0, json!({"server_tool_call": c}), None, Value::Null))]
        }
        AgentEvent::ToolResult(r) => {
            vec![sse_json(&chunk(&ctx.meta, 0, json!({"server_tool_result": r}), None, Value::Null))]
        }
        AgentEvent::Done(d) => chat_event(ctx, 0, Output::Done(d)),
    }
}

fn stream(
    meta: Meta,
    first: AgentEvent,
    rx: tokio::sync::mpsc::Receiver<AgentEvent>,
    task: Task,
) -> impl futures_util::Stream<Item = Result<SseEvent, std::convert::Infallible>> {
    let role = sse_json(&chunk(&meta, 0, json!({"role": "assistant", "content": null}), None, Value::Null));
    let mut ctx = StreamState { running: 1, meta, usage: None, natives: Vec::new() };
    let mut queue = VecDeque::from([role]);
    queue.extend(events(&mut ctx, first));
    // Dropping the stream (the client left) drops `rx`: the loop stops at its next event.
    futures_util::stream::unfold((rx, Some(task), ctx, queue), |(mut rx, mut task, mut ctx, mut queue)| async move {
        loop {
            if let Some(e) = queue.pop_front() {
                return Some((Ok(e), (rx, task, ctx, queue)));
            }
            let t = task.take()?;
            match rx.recv().await {
                Some(ev) => {
                    queue.extend(events(&mut ctx, ev));
                    task = Some(t);
                }
                None => {
                    if let Err(e) = outcome(t).await {
                        queue.push_back(sse_json(&json!({"error": {
                            "message": e.message, "type": "server_error", "code": e.status.as_u16(),
                        }})));
                    }
                }
            }
        }
    })
}

async fn collect(meta: Meta, mut rx: tokio::sync::mpsc::Receiver<AgentEvent>, task: Task) -> ApiResult<Response> {
    let mut c = service::Collected::default();
    let mut trace: Vec<Value> = Vec::new();
    while let Some(ev) = rx.recv().await {
        match ev {
            AgentEvent::Output(Output::Text { text, token, probs, .. }) => {
                if let (Some(t), Some(p)) = (token, probs) {
                    c.probs.push((text.clone(), t, p));
                }
                c.text.push_str(&text);
            }
            AgentEvent::Output(Output::Reasoning { text }) => c.reasoning.push_str(&text),
            AgentEvent::Output(Output::ToolCallStart { id, name, .. }) => c.tool_calls.push(chat::ToolCall::new(id, name, "")),
            AgentEvent::Output(Output::ToolCallArguments { index, delta }) => {
                if let Some(call) = c.tool_calls.get_mut(index) {
                    call.arguments.push_str(&delta);
                }
            }
            AgentEvent::Output(_) => {}
            AgentEvent::ToolCall(call) => trace.push(json!(call)),
            AgentEvent::ToolResult(r) => {
                if let Some(t) = trace.iter_mut().find(|t| t["id"] == r.id.as_str()) {
                    t["content"] = json!(r.content);
                    t["is_error"] = json!(r.is_error);
                }
            }
            AgentEvent::Done(d) => c.done = Some(d),
        }
    }
    outcome(task).await?;
    let done = c.done.clone().ok_or_else(|| ApiError::from(ServiceError::Internal("the agent loop ended without an answer".into())))?;
    let mut choice = chat_choice(&meta, 0, &c, &done);
    choice["message"]["server_tool_calls"] = Value::Array(trace);
    Ok(Json(answer(&meta, "chat.completion", vec![choice], &done)).into_response())
}
