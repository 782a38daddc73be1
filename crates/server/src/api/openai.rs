//! The OpenAI-compatible API: `/v1/models`, `/v1/chat/completions`, `/v1/completions`
//! (also without the `/v1` prefix, as llama-server serves them). Each handler parses
//! OpenAI's JSON into the service's [`Request`] and writes the service's outputs back in
//! OpenAI's wire format, streaming as SSE `chat.completion.chunk`s ending in `[DONE]`.

use super::common::{self, Timed, new_id, sse_json, unix_now};
use super::native::{self, NativeMeta};
use super::params::GenFields;
use super::prompt::PromptField;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::SharedState;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chat::{ChatMessage, Roles, Tool};
use futures_util::stream::Stream;
use manager::ModelState;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use service::{
    ChatInput, Done, Input, Output, ReasoningFormat, Request, ResponseFormat, Thinking, ToolChoice,
};
use service::{Prompt, ServiceError, TokenProbs};
use std::convert::Infallible;

mod server_tools;
use server_tools::chat_with_server_tools;

pub const FINGERPRINT: &str = concat!("llama-dashboard-", env!("CARGO_PKG_VERSION"));

// ---------------------------------------------------------------- /v1/models

/// Every model clients may name ([`service::Models::listed`]); on a deployment's own port,
/// its model only.
pub async fn list_models(
    State(state): State<SharedState>,
    pinned: Option<axum::Extension<crate::ports::Pinned>>,
) -> Json<Value> {
    let data: Vec<Value> = state
        .models
        .listed()
        .await
        .into_iter()
        .filter(|l| pinned.as_ref().is_none_or(|p| p.model == l.entry.id))
        .map(|l| model_json(&state, &l))
        .collect();
    Json(json!({"object": "list", "data": data}))
}

/// `GET /v1/models/{id}` (and `/models/{id}`, seed 003's): one model as the listing shows it.
pub async fn get_model(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    pinned: Option<axum::Extension<crate::ports::Pinned>>,
) -> ApiResult<Json<Value>> {
    let l = find_listed(&state, &id).await?;
    if pinned.is_some_and(|p| p.model != l.entry.id) {
        return Err(ServiceError::UnknownModel(id).into());
    }
    Ok(Json(model_json(&state, &l)))
}

/// The listed model a path's `{id}` names, found as a request's `model` is
/// ([`service::Models::resolve`]: id, alias, path), among the models the listings show
/// (404 otherwise).
pub(crate) async fn find_listed(state: &SharedState, id: &str) -> ApiResult<service::Listed> {
    let entry = state.models.resolve(id).await?;
    state
        .models
        .listed()
        .await
        .into_iter()
        .find(|l| l.entry.id == entry.id)
        .ok_or_else(|| ServiceError::UnknownModel(id.to_owned()).into())
}

/// The manager's state of a model (unloaded when it never was loaded).
pub(crate) fn model_state(state: &SharedState, id: &str) -> ModelState {
    state
        .models
        .manager()
        .statuses()
        .into_iter()
        .find(|s| s.id == id)
        .map(|s| s.state)
        .unwrap_or(ModelState::Unloaded)
}

/// Who published a model, as the listings say it: its repository's owner, else `local`.
pub(crate) fn owner(m: &catalog::ModelEntry) -> &str {
    m.repo
        .as_deref()
        .and_then(|r| r.split('/').next())
        .unwrap_or("local")
}

/// One model of `/v1/models`.
fn model_json(state: &SharedState, l: &service::Listed) -> Value {
    let m = &l.entry;
    let created = std::fs::metadata(&m.path)
        .and_then(|md| md.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    json!({
        "id": l.id,
        "object": "model",
        "created": created,
        "owned_by": owner(m),
        "state": state_name(&model_state(state, &m.id)),
        "aliases": l.aliases,
        "tags": l.tags,
        "meta": {
            "architecture": m.architecture,
            "quantization": m.quantization,
            "size": m.size,
            "n_ctx_train": m.context_length,
        },
    })
}

pub fn state_name(s: &ModelState) -> &'static str {
    match s {
        ModelState::Unloaded => "unloaded",
        ModelState::Loading { .. } => "loading",
        ModelState::Loaded => "loaded",
        ModelState::Failed { .. } => "failed",
    }
}

// ---------------------------------------------------------------- chat completions

#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Deserialize)]
pub struct ChatCompletionRequest {
    pub model: Option<String>,
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    pub tools: Option<Vec<Value>>,
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<bool>,
    pub response_format: Option<Value>,
    pub logprobs: Option<bool>,
    pub top_logprobs: Option<u32>,
    pub n: Option<u32>,
    pub chat_template_kwargs: Option<Map<String, Value>>,
    /// llama-server / vLLM: end the prompt with a new assistant turn (default true).
    pub add_generation_prompt: Option<bool>,
    /// vLLM / transformers: the reply continues the last message (`true`, or llama-server's
    /// `"content"` / `"reasoning_content"`).
    pub continue_final_message: Option<Value>,
    /// llama-server's per-request `--reasoning-format`.
    pub reasoning_format: Option<String>,
    /// OpenAI's `reasoning_effort`: `"none"` turns thinking off; other levels reach the
    /// template as its `reasoning_effort`.
    pub reasoning_effort: Option<String>,
    /// llama-server's per-request `--reasoning-budget` (-1: the server's, 0: no thinking);
    /// `thinking_budget_tokens` is its other spelling.
    #[serde(alias = "thinking_budget_tokens")]
    pub reasoning_budget_tokens: Option<i64>,
    /// llama-server's per-request `--reasoning-budget-message`.
    pub reasoning_budget_message: Option<String>,
    pub keep_alive: Option<Value>,
    /// llama-server: add the `__verbose` debug object (default: `server.verbose_responses`).
    pub verbose: Option<bool>,
    /// Our extension (issue 14): server tools offered to the model and run by the server
    /// (`["*"]` = every tool `GET /api/tools` lists), with the agent loop between generations.
    pub server_tools: Option<Vec<String>>,
    #[serde(flatten)]
    pub sampling: GenFields,
}

impl ChatCompletionRequest {
    /// The conversation part of the request (messages, tools, template options), for the
    /// chat route and for counting its prompt's tokens.
    fn chat_input(&mut self) -> ApiResult<ChatInput> {
        check_roles(&self.messages)?;
        let mut template_kwargs = self.chat_template_kwargs.take().unwrap_or_default();
        let mut thinking = parse_thinking(
            self.reasoning_format.as_deref(),
            self.reasoning_effort.as_deref(),
            &mut template_kwargs,
        )?;
        if let Some(n) = self.reasoning_budget_tokens {
            thinking.set_budget(n)?;
        }
        thinking.budget_message = self.reasoning_budget_message.take();
        Ok(ChatInput {
            messages: std::mem::take(&mut self.messages),
            tools: parse_tools(self.tools.as_deref())?,
            tool_choice: parse_tool_choice(self.tool_choice.as_ref())?,
            template_kwargs,
            parallel_tool_calls: self.parallel_tool_calls.unwrap_or(true),
            add_generation_prompt: self.add_generation_prompt.unwrap_or(true),
            continue_final_message: continues(self.continue_final_message.as_ref()),
            thinking,
        })
    }
}

/// The request's say on thinking: `reasoning_format` and `reasoning_effort` (which, unless
/// `"none"`, is a template argument as llama-server passes it).
pub(crate) fn parse_thinking(
    format: Option<&str>,
    effort: Option<&str>,
    kwargs: &mut Map<String, Value>,
) -> ApiResult<Thinking> {
    let format = format
        .map(ReasoningFormat::from_name)
        .transpose()
        .map_err(|e| ApiError::invalid("reasoning_format", e))?;
    let enabled = match effort.map(str::trim) {
        Some("none") => {
            kwargs.remove("reasoning_effort");
            Some(false)
        }
        Some(level) if !level.is_empty() => {
            kwargs.insert("reasoning_effort".into(), Value::String(level.to_owned()));
            None
        }
        _ => None,
    };
    Ok(Thinking {
        enabled,
        format,
        ..Default::default()
    })
}

/// `continue_final_message` as llama-server reads it: `true`, or which part of the last
/// message the reply continues (`"content"`, `"reasoning_content"`); anything else is off.
pub fn continues(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(true)))
        || matches!(
            v.and_then(Value::as_str),
            Some("content" | "reasoning_content")
        )
}

/// Parses OpenAI's `tools` list.
pub fn parse_tools(tools: Option<&[Value]>) -> ApiResult<Vec<Tool>> {
    tools
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Tool::from_openai(t).map_err(|e| ApiError::invalid(&format!("tools[{i}]"), e))
        })
        .collect()
}

/// Parses OpenAI's `tool_choice`: `"auto"`, `"none"`, `"required"` or
/// `{"type": "function", "function": {"name": ...}}`.
pub fn parse_tool_choice(v: Option<&Value>) -> ApiResult<ToolChoice> {
    match v {
        None | Some(Value::Null) => Ok(ToolChoice::Auto),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" | "any" => Ok(ToolChoice::Required),
            other => Err(ApiError::invalid(
                "tool_choice",
                format!("unknown value '{other}' (auto, none, required or a function)"),
            )),
        },
        Some(Value::Object(o)) => o
            .get("function")
            .and_then(|f| f.get("name"))
            .or_else(|| o.get("name"))
            .and_then(Value::as_str)
            .map(|n| ToolChoice::Function(n.to_string()))
            .ok_or_else(|| {
                ApiError::invalid("tool_choice", "a function choice needs function.name")
            }),
        Some(_) => Err(ApiError::invalid(
            "tool_choice",
            "must be a string or an object",
        )),
    }
}

/// Parses `response_format`: `{"type": "text" | "json_object" | "json_schema", ...}`.
pub fn parse_response_format(v: Option<&Value>) -> ApiResult<ResponseFormat> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(ResponseFormat::Text);
    };
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("response_format.type", "is required"))?;
    match kind {
        "text" => Ok(ResponseFormat::Text),
        "json_object" => Ok(match v.get("schema") {
            // llama-server accepts a schema here too (the service refuses one that is not
            // a schema).
            Some(s) if !s.is_null() => ResponseFormat::JsonSchema(s.clone()),
            _ => ResponseFormat::JsonObject,
        }),
        "json_schema" => {
            let schema = v
                .get("json_schema")
                .and_then(|j| j.get("schema"))
                .or_else(|| v.get("schema"))
                .ok_or_else(|| {
                    ApiError::invalid("response_format.json_schema.schema", "is required")
                })?;
            Ok(ResponseFormat::JsonSchema(schema.clone()))
        }
        other => Err(ApiError::invalid(
            "response_format.type",
            format!("unknown type '{other}' (text, json_object or json_schema)"),
        )),
    }
}

/// A role outside OpenAI's set is refused as OpenAI refuses it (400, in its words, with
/// `param` naming the message).
fn check_roles(messages: &[ChatMessage]) -> ApiResult<()> {
    for (i, m) in messages.iter().enumerate() {
        Roles::OPENAI_CHAT
            .check(&m.role)
            .map_err(|e| ApiError::bad_request(e).with_param(format!("messages[{i}].role")))?;
    }
    Ok(())
}

/// `POST /chat/completions/input_tokens` (llama-server): how many tokens the prompt of this
/// chat request is, rendered and tokenized as the chat route would, without generating.
pub async fn chat_input_tokens(
    State(state): State<SharedState>,
    ApiJson(mut req): ApiJson<ChatCompletionRequest>,
) -> ApiResult<Json<Value>> {
    // Rendered as the chat route renders it, `[reasoning]` defaults included (the service
    // applies them), or the counts differ.
    let chat = req.chat_input()?;
    count_input_tokens(&state, req.model.as_deref(), chat).await
}

/// `/chat/completions/input_tokens` and `/responses/input_tokens`' answer: the one count
/// ([`common::measure_chat`]) in llama-server's shape.
pub(super) async fn count_input_tokens(
    state: &SharedState,
    model: Option<&str>,
    chat: ChatInput,
) -> ApiResult<Json<Value>> {
    let n = common::measure_chat(state, model, chat).await?.tokens;
    Ok(Json(
        json!({"input_tokens": n, "object": "response.input_tokens"}),
    ))
}

/// What a chat or completion response needs to know while it is written.
#[derive(Clone)]
struct Meta {
    id: String,
    created: u64,
    model: String,
    logprobs: bool,
    include_usage: bool,
    /// Another route family's fields on the whole answer or the stream's last chunk.
    extra: Option<DoneFields>,
}

/// Fields another route family adds to OpenAI's answers from the end of the generation
/// (LM Studio's `stats`, `model_info` and `runtime`, `api/lmstudio.rs`): the answer is
/// otherwise the OpenAI routes' own, from the same handler.
pub(crate) type DoneFields = std::sync::Arc<dyn Fn(&Done) -> Map<String, Value> + Send + Sync>;

/// Makes a request's [`DoneFields`] once its generation started (the model is known then)
/// from the generation and the request's own parameters.
pub(crate) type Extra = fn(&Timed, &service::GenerateRequest) -> DoneFields;

impl Meta {
    /// Adds the route family's fields for the generation's end `d` to `answer`.
    fn add_extra(&self, answer: &mut Value, d: &Done) {
        if let (Some(extra), Some(o)) = (&self.extra, answer.as_object_mut()) {
            o.extend(extra(d));
        }
    }
}

/// The `__verbose` object of each generation when the request (or `server.verbose_responses`)
/// asks for it, taken before they run: llama-server's `/completion` result of each.
fn verbose_metas(
    state: &SharedState,
    asked: Option<bool>,
    timeds: &[Timed],
    params: &service::GenerateRequest,
    stream: bool,
) -> Option<Vec<NativeMeta>> {
    asked
        .unwrap_or(state.config().server.verbose_responses)
        .then(|| {
            timeds
                .iter()
                .enumerate()
                .map(|(i, t)| NativeMeta::new(i, t, params, stream, false, &[]))
                .collect()
        })
}

/// Adds `__verbose` to a non-streamed answer (the first generation's, as llama-server's
/// answer carries one).
fn add_verbose(answer: &mut Value, metas: Option<&[NativeMeta]>, collected: &[service::Collected]) {
    if let (Some(meta), Some(c)) = (metas.and_then(|m| m.first()), collected.first()) {
        answer["__verbose"] = native::native_result(meta, c);
    }
}

pub async fn chat_completions(
    State(state): State<SharedState>,
    access: Option<axum::Extension<crate::auth::Access>>,
    page: Option<axum::Extension<crate::guard::FromPage>>,
    ApiJson(mut req): ApiJson<ChatCompletionRequest>,
) -> ApiResult<Response> {
    match req.server_tools.take().filter(|names| !names.is_empty()) {
        Some(names) => chat_with_server_tools(state, req, names, access, page).await,
        None => chat_completions_with(state, req, None).await,
    }
}

/// The service request of a chat body, its generation parameters and whether it asked for
/// logprobs.
async fn chat_request(
    state: &SharedState,
    req: &mut ChatCompletionRequest,
) -> ApiResult<(Request, service::GenerateRequest, bool)> {
    let chat = req.chat_input()?;
    let response_format = parse_response_format(req.response_format.as_ref())?;
    let mut params = req
        .sampling
        .to_request(&state.sampling_for(req.model.as_deref()).await)?;
    let logprobs = req.logprobs.unwrap_or(false);
    if logprobs {
        params.n_probs = req.top_logprobs.unwrap_or(0).max(params.n_probs);
        if params.n_probs > 20 {
            return Err(ApiError::invalid("top_logprobs", "must be at most 20"));
        }
    }
    let request = Request {
        input: Input::Chat(chat),
        params: params.clone(),
        response_format,
    };
    Ok((request, params, logprobs))
}

/// The chat route, with another route family's fields (`extra`) on its answer.
pub(crate) async fn chat_completions_with(
    state: SharedState,
    mut req: ChatCompletionRequest,
    extra: Option<Extra>,
) -> ApiResult<Response> {
    let n = common::choices(req.n)?;
    let (request, params, logprobs) = chat_request(&state, &mut req).await?;
    let model = req.model.clone();
    let keep_alive = common::keep_alive(req.keep_alive.as_ref())?;
    // `n` choices are `n` generations of the one request, as on the completion routes.
    let timeds = common::start_all(&state, model.as_deref(), keep_alive, vec![request; n]).await?;
    let verbose = verbose_metas(&state, req.verbose, &timeds, &params, req.stream);
    let meta = Meta {
        id: new_id("chatcmpl-"),
        created: unix_now(),
        model: timeds[0].model.clone(),
        logprobs,
        include_usage: req.stream_options.is_some_and(|o| o.include_usage),
        extra: extra.map(|f| f(&timeds[0], &params)),
    };
    if req.stream {
        Ok(sse(chat_stream(timeds, meta)))
    } else {
        let collected = common::collect_all(timeds).await?;
        let mut answer = chat_response(&meta, &collected);
        add_verbose(&mut answer, verbose.as_deref(), &collected);
        Ok(Json(answer).into_response())
    }
}

fn usage_json(d: &Done) -> Value {
    json!({
        "prompt_tokens": d.usage.prompt_tokens,
        "completion_tokens": d.usage.completion_tokens,
        "total_tokens": d.usage.prompt_tokens + d.usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": d.timings.cache_n},
    })
}

fn tool_calls_json(calls: &[chat::ToolCall]) -> Value {
    Value::Array(
        calls
            .iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                })
            })
            .collect(),
    )
}

/// One token's entry in OpenAI's chat `logprobs.content`.
fn logprob_entry(text: &str, p: &TokenProbs) -> Value {
    json!({
        "token": text,
        "logprob": p.logprob,
        "bytes": text.as_bytes(),
        "top_logprobs": p.top.iter().map(|(_, t, lp)| json!({
            "token": t, "logprob": lp, "bytes": t.as_bytes(),
        })).collect::<Vec<_>>(),
    })
}

/// A chat answer with one choice per generation (`n`); usage summed over them.
fn chat_response(meta: &Meta, collected: &[service::Collected]) -> Value {
    let mut total: Option<Done> = None;
    let choices: Vec<Value> = collected
        .iter()
        .enumerate()
        .map(|(index, c)| {
            let done = c
                .done
                .as_ref()
                .expect("collected generations have a result");
            total = Some(add_usage(total.take(), done));
            chat_choice(meta, index, c, done)
        })
        .collect();
    let done = total.expect("one choice at least");
    answer(meta, "chat.completion", choices, &done)
}

/// The envelope of a whole (non-streamed) OpenAI answer: chat and text completions alike.
fn answer(meta: &Meta, object: &str, choices: Vec<Value>, done: &Done) -> Value {
    let mut answer = json!({
        "id": meta.id,
        "object": object,
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": FINGERPRINT,
        "choices": choices,
        "usage": usage_json(done),
        "timings": done.timings,
    });
    meta.add_extra(&mut answer, done);
    answer
}

fn chat_choice(meta: &Meta, index: usize, c: &service::Collected, done: &Done) -> Value {
    let has_calls = !c.tool_calls.is_empty();
    let mut message = json!({
        "role": "assistant",
        "content": if has_calls && c.text.is_empty() { Value::Null } else { Value::String(c.text.clone()) },
    });
    if !c.reasoning.is_empty() {
        message["reasoning_content"] = Value::String(c.reasoning.clone());
    }
    if has_calls {
        message["tool_calls"] = tool_calls_json(&c.tool_calls);
    }
    let logprobs = if meta.logprobs {
        json!({"content": c.probs.iter().map(|(t, _, p)| logprob_entry(t, p)).collect::<Vec<_>>()})
    } else {
        Value::Null
    };
    json!({
        "index": index,
        "message": message,
        "logprobs": logprobs,
        "finish_reason": done.finish.as_openai(),
    })
}

/// Wraps an SSE event stream as the response (with comment keep-alives).
pub fn sse<S>(events: S) -> Response
where
    S: Stream<Item = Result<SseEvent, Infallible>> + Send + 'static,
{
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn chunk(meta: &Meta, index: usize, delta: Value, finish: Option<&str>, logprobs: Value) -> Value {
    json!({
        "id": meta.id,
        "object": "chat.completion.chunk",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": FINGERPRINT,
        "choices": [{
            "index": index,
            "delta": delta,
            "logprobs": logprobs,
            "finish_reason": finish,
        }],
    })
}

/// The SSE events of a streamed chat completion: a first chunk with the role alone (content
/// null) for each choice, as llama-server and OpenAI send it, then one chunk per delta; the
/// usage and `[DONE]` once every choice is done.
fn chat_stream(timeds: Vec<Timed>, meta: Meta) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let first = (0..timeds.len())
        .map(|i| {
            let delta = json!({"role": "assistant", "content": null});
            sse_json(&chunk(&meta, i, delta, None, Value::Null))
        })
        .collect();
    let ctx = StreamState {
        running: timeds.len(),
        meta,
        usage: None,
        natives: Vec::new(),
    };
    common::sse_events_all(timeds, ctx, first, chat_event, |_, e| {
        sse_json(&common::stream_error(e))
    })
}

/// The SSE events of one output of a streamed chat completion (choice `i`).
fn chat_event(ctx: &mut StreamState, i: usize, output: Output) -> Vec<SseEvent> {
    let meta = &ctx.meta;
    match output {
        Output::Reasoning { text } => vec![sse_json(&chunk(
            meta,
            i,
            json!({"reasoning_content": text}),
            None,
            Value::Null,
        ))],
        Output::Text {
            text,
            probs,
            timings,
            ..
        } => {
            if text.is_empty() {
                return Vec::new();
            }
            let lp = match (&probs, meta.logprobs) {
                (Some(p), true) => json!({"content": [logprob_entry(&text, p)]}),
                _ => Value::Null,
            };
            let mut c = chunk(meta, i, json!({"content": text}), None, lp);
            // `timings_per_token`: the timings so far on each chunk, as llama-server.
            if let Some(t) = timings {
                c["timings"] = json!(t);
            }
            vec![sse_json(&c)]
        }
        Output::ToolCallStart { index, id, name } => vec![sse_json(&chunk(
            meta,
            i,
            json!({"tool_calls": [{
                "index": index, "id": id, "type": "function",
                "function": {"name": name, "arguments": ""},
            }]}),
            None,
            Value::Null,
        ))],
        Output::ToolCallArguments { index, delta } => vec![sse_json(&chunk(
            meta,
            i,
            json!({"tool_calls": [{"index": index, "function": {"arguments": delta}}]}),
            None,
            Value::Null,
        ))],
        // llama-server: a role delta carrying the prompt's progress.
        Output::Progress(p) => {
            let mut c = chunk(
                meta,
                i,
                json!({"role": "assistant", "content": null}),
                None,
                Value::Null,
            );
            c["prompt_progress"] = super::native::progress_json(&p);
            c["timings"] = json!(p.timings);
            vec![sse_json(&c)]
        }
        Output::Done(d) => {
            let mut last =
                chunk(meta, i, json!({}), Some(d.finish.as_openai()), Value::Null);
            last["timings"] = json!(d.timings);
            ctx.finished(last, &d)
        }
    }
}

/// The last chunk, the usage chunk when asked for, and `[DONE]`. `timings` (and another
/// family's fields, [`Meta::extra`]) ride on the very last chunk before `[DONE]`, as
/// llama-server sends them (its test suite checks the usage chunk for them).
fn finish_events(meta: &Meta, mut last: Value, d: &Done) -> Vec<SseEvent> {
    if meta.include_usage {
        let mut u = last.clone();
        u["choices"] = json!([]);
        u["usage"] = usage_json(d);
        meta.add_extra(&mut u, d);
        if let Some(o) = last.as_object_mut() {
            o.remove("timings");
        }
        return vec![
            sse_json(&last),
            sse_json(&u),
            SseEvent::default().data("[DONE]"),
        ];
    }
    meta.add_extra(&mut last, d);
    vec![sse_json(&last), SseEvent::default().data("[DONE]")]
}

// ---------------------------------------------------------------- completions

#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    pub model: Option<String>,
    pub prompt: PromptField,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    /// OpenAI's legacy `logprobs`: how many top alternatives (0..=5... we allow 20).
    pub logprobs: Option<u32>,
    #[serde(default)]
    pub echo: bool,
    pub n: Option<u32>,
    pub keep_alive: Option<Value>,
    pub response_format: Option<Value>,
    /// llama-server's: the token ids in the native fields (`/completions` only).
    #[serde(default)]
    pub return_tokens: bool,
    /// llama-server: add the `__verbose` debug object (default: `server.verbose_responses`).
    pub verbose: Option<bool>,
    #[serde(flatten)]
    pub sampling: GenFields,
}

/// Which wire format a completion route answers in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `/v1/completions`: OpenAI's `text_completion`.
    OpenAi,
    /// `/completions`: OpenAI's fields and llama-server's native `/completion` fields in the
    /// same objects (`choices[].text` and `content`, `usage` and `tokens_predicted`, ...), as
    /// OpenAI clients (seed 003) and llama-server's own clients both call this path. With one
    /// completion the native fields are at the top; with several (a native client would get
    /// a list) each choice carries its own.
    Both,
}

/// `POST /v1/completions`.
pub async fn completions(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<CompletionRequest>,
) -> ApiResult<Response> {
    completions_in(state, req, Shape::OpenAi, None).await
}

/// `POST /completions`: both shapes at once ([`Shape::Both`]).
pub async fn completions_both_shapes(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<CompletionRequest>,
) -> ApiResult<Response> {
    completions_in(state, req, Shape::Both, None).await
}

/// `/v1/completions` with another route family's fields (`extra`) on its answer.
pub(crate) async fn completions_with(
    state: SharedState,
    req: CompletionRequest,
    extra: Extra,
) -> ApiResult<Response> {
    completions_in(state, req, Shape::OpenAi, Some(extra)).await
}

/// Adds `native`'s fields that `into` lacks (the shared ones, `model`, `timings` and
/// `index`, hold the same values in both shapes).
fn add_fields(into: &mut Value, native: Value) {
    if let (Some(into), Value::Object(native)) = (into.as_object_mut(), native) {
        for (k, v) in native {
            into.entry(k).or_insert(v);
        }
    }
}

async fn completions_in(
    state: SharedState,
    req: CompletionRequest,
    shape: Shape,
    extra: Option<Extra>,
) -> ApiResult<Response> {
    let n = common::choices(req.n)?;
    let prompts = req.prompt.into_prompts("prompt")?;
    let mut params = req
        .sampling
        .to_request(&state.sampling_for(req.model.as_deref()).await)?;
    if let Some(n) = req.logprobs {
        if n > 20 {
            return Err(ApiError::invalid("logprobs", "must be at most 20"));
        }
        params.n_probs = n.max(1);
    }
    let mut echoes = Vec::with_capacity(prompts.len());
    for p in &prompts {
        echoes.push(match (p, req.echo) {
            (Prompt::Text { text, .. }, true) => Some(text.clone()),
            (_, true) => {
                return Err(ApiError::invalid(
                    "echo",
                    "is only supported with text prompts",
                ));
            }
            _ => None,
        });
    }
    let keep_alive = common::keep_alive(req.keep_alive.as_ref())?;
    let response_format = parse_response_format(req.response_format.as_ref())?;
    // Prompt order, then `n` completions of each: a choice's index is its place here.
    let mut requests = Vec::with_capacity(prompts.len() * n);
    let mut echo = Vec::with_capacity(prompts.len() * n);
    for (p, e) in prompts.into_iter().zip(echoes) {
        for _ in 0..n {
            requests.push(Request {
                input: Input::Prompt(p.clone()),
                params: params.clone(),
                response_format: response_format.clone(),
            });
            echo.push(e.clone());
        }
    }
    let timeds = common::start_all(&state, req.model.as_deref(), keep_alive, requests).await?;
    let verbose = verbose_metas(&state, req.verbose, &timeds, &params, req.stream);
    let meta = Meta {
        id: new_id("cmpl-"),
        created: unix_now(),
        model: timeds[0].model.clone(),
        logprobs: req.logprobs.is_some(),
        include_usage: req.stream_options.is_some_and(|o| o.include_usage),
        extra: extra.map(|f| f(&timeds[0], &params)),
    };
    let natives: Vec<NativeMeta> = match shape {
        Shape::OpenAi => Vec::new(),
        Shape::Both => timeds
            .iter()
            .enumerate()
            .map(|(i, t)| NativeMeta::new(i, t, &params, req.stream, req.return_tokens, &[]))
            .collect(),
    };
    if req.stream {
        return Ok(sse(completion_stream(timeds, meta, echo, natives)));
    }
    let collected = common::collect_all(timeds).await?;
    let single = collected.len() == 1;
    let mut top_native = None;
    let mut choices = Vec::with_capacity(collected.len());
    let mut total: Option<Done> = None;
    for (index, (c, echo)) in collected.iter().zip(echo).enumerate() {
        let done = c.done.clone().expect("collected");
        let native = natives.get(index).map(|m| native::native_result(m, c));
        let text = match echo {
            Some(p) => format!("{p}{}", c.text),
            None => c.text.clone(),
        };
        let logprobs = if meta.logprobs {
            completion_logprobs(&c.probs)
        } else {
            Value::Null
        };
        let mut choice = json!({
            "text": text,
            "index": index,
            "logprobs": logprobs,
            "finish_reason": done.finish.as_openai(),
        });
        match native {
            Some(n) if single => top_native = Some(n),
            Some(n) => add_fields(&mut choice, n),
            None => {}
        }
        choices.push(choice);
        total = Some(add_usage(total, &done));
    }
    let done = total.expect("one completion at least");
    let mut out = answer(&meta, "text_completion", choices, &done);
    if let Some(n) = top_native {
        add_fields(&mut out, n);
    }
    add_verbose(&mut out, verbose.as_deref(), &collected);
    Ok(Json(out).into_response())
}

/// The usage of several completions of one request, summed (their timings: the first's).
fn add_usage(total: Option<Done>, d: &Done) -> Done {
    match total {
        None => d.clone(),
        Some(mut t) => {
            t.usage.prompt_tokens += d.usage.prompt_tokens;
            t.usage.completion_tokens += d.usage.completion_tokens;
            t
        }
    }
}

/// The legacy completions `logprobs` object.
fn completion_logprobs(probs: &[(String, i32, TokenProbs)]) -> Value {
    let mut offset = 0usize;
    let mut offsets = Vec::new();
    for (t, _, _) in probs {
        offsets.push(offset);
        offset += t.len();
    }
    json!({
        "tokens": probs.iter().map(|(t, _, _)| t).collect::<Vec<_>>(),
        "token_logprobs": probs.iter().map(|(_, _, p)| p.logprob).collect::<Vec<_>>(),
        "top_logprobs": probs.iter().map(|(_, _, p)| {
            p.top.iter().map(|(_, t, lp)| (t.clone(), json!(lp))).collect::<Map<String, Value>>()
        }).collect::<Vec<_>>(),
        "text_offset": offsets,
    })
}

fn completion_chunk(
    meta: &Meta,
    index: usize,
    text: &str,
    finish: Option<&str>,
    logprobs: Value,
) -> Value {
    json!({
        "id": meta.id,
        "object": "text_completion",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": FINGERPRINT,
        "choices": [{"text": text, "index": index, "logprobs": logprobs, "finish_reason": finish}],
    })
}

/// What a streamed request of several generations (`n`, prompts) remembers between chunks:
/// the generations still running, their usage so far, and (`/completions`, both shapes)
/// each one's native message fields.
struct StreamState {
    meta: Meta,
    running: usize,
    usage: Option<Done>,
    natives: Vec<NativeMeta>,
}

impl StreamState {
    /// `chunk` with completion `index`'s native message (`/completions`), which `native`
    /// makes from its meta.
    fn both(
        &self,
        mut chunk: Value,
        index: usize,
        native: impl FnOnce(&NativeMeta) -> Value,
    ) -> Value {
        if let Some(m) = self.natives.get(index) {
            add_fields(&mut chunk, native(m));
        }
        chunk
    }
}

impl StreamState {
    /// One generation's `last` chunk; after the last generation's, the usage and `[DONE]`.
    fn finished(&mut self, last: Value, d: &Done) -> Vec<SseEvent> {
        self.running -= 1;
        self.usage = Some(add_usage(self.usage.take(), d));
        match (self.running, &self.usage) {
            (0, Some(total)) => finish_events(&self.meta, last, total),
            _ => vec![sse_json(&last)],
        }
    }
}

fn completion_stream(
    timeds: Vec<Timed>,
    meta: Meta,
    echo: Vec<Option<String>>,
    natives: Vec<NativeMeta>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let first = echo
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            e.as_ref()
                .map(|p| sse_json(&completion_chunk(&meta, i, p, None, Value::Null)))
        })
        .collect();
    let ctx = StreamState {
        running: timeds.len(),
        meta,
        usage: None,
        natives,
    };
    common::sse_events_all(
        timeds,
        ctx,
        first,
        |ctx, index, output| match output {
            Output::Text {
                text, probs, token, ..
            } if !text.is_empty() => {
                let lp = match (&probs, ctx.meta.logprobs) {
                    (Some(p), true) => {
                        completion_logprobs(&[(text.clone(), token.unwrap_or(-1), p.clone())])
                    }
                    _ => Value::Null,
                };
                let c = completion_chunk(&ctx.meta, index, &text, None, lp);
                let c = ctx.both(c, index, |m| {
                    native::token_fields(m, &text, token, probs.as_ref())
                });
                vec![sse_json(&c)]
            }
            Output::Progress(p) => {
                let mut c = completion_chunk(&ctx.meta, index, "", None, Value::Null);
                c["prompt_progress"] = native::progress_json(&p);
                c["timings"] = json!(p.timings);
                let c = ctx.both(c, index, |m| native::progress_fields(m, &p));
                vec![sse_json(&c)]
            }
            Output::Done(d) => {
                let mut last = completion_chunk(
                    &ctx.meta,
                    index,
                    "",
                    Some(d.finish.as_openai()),
                    Value::Null,
                );
                last["timings"] = json!(d.timings);
                let last = ctx.both(last, index, |m| native::final_fields(m, &d));
                ctx.finished(last, &d)
            }
            _ => Vec::new(),
        },
        |_, e| sse_json(&common::stream_error(e)),
    )
}
