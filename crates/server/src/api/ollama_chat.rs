//! Ollama's inference routes: `POST /api/chat`, `POST /api/generate` (NDJSON streams by
//! default, one object with `stream: false`), `POST /api/embed` and the legacy
//! `POST /api/embeddings`. Like every family, this module only parses Ollama's wire format
//! into the service's [`Request`] (through [`super::ollama_types`]) and writes the
//! [`Output`]s back: rendering, sampling, stop strings, tool-call parsing, thinking,
//! grammars, limits and embeddings are the service's. Errors leave as `{"error": "..."}`
//! (`error::Flavor::Ollama`, chosen by path).

use super::common::{self, Timed};
use super::ollama_types::{
    self, Message, content, created_at, embed_metrics, final_fields, for_model, format, options,
    required_model, think, tool_call,
};
use super::openai::parse_tools;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::SharedState;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chat::{ChatMessage, ToolCall};
use manager::KeepAlive;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use service::engine_types::EngineError;
use service::{
    ChatInput, EmbedRequest, EmbeddingValues, InfillPrompt, Input, Normalize, Output, Prompt,
    PromptPart, Request, ServiceError, ToolChoice,
};
use std::time::{Duration, Instant};

/// `POST /api/chat`.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    pub model: Option<String>,
    #[serde(default)]
    pub messages: Option<Vec<Message>>,
    pub tools: Option<Vec<Value>>,
    pub format: Option<Value>,
    pub options: Option<Value>,
    pub stream: Option<bool>,
    pub keep_alive: Option<Value>,
    pub think: Option<Value>,
}

/// `POST /api/generate`.
#[derive(Debug, Deserialize)]
pub struct GenerateRequest {
    pub model: Option<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    pub suffix: Option<String>,
    pub system: Option<String>,
    /// A Go template: refused when not empty (templates are the model's, rendered by the
    /// one Jinja path; see [`generate`]).
    pub template: Option<String>,
    /// The token array a previous answer of Ollama's carried (`context`).
    pub context: Option<Vec<u32>>,
    pub stream: Option<bool>,
    pub raw: Option<bool>,
    pub format: Option<Value>,
    pub images: Option<Vec<String>>,
    pub options: Option<Value>,
    pub keep_alive: Option<Value>,
    pub think: Option<Value>,
}

/// Which route a stream answers: the text goes in `message.content` or in `response`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Chat,
    Generate,
}

/// A started generation with what its final object reports.
struct Run {
    timed: Timed,
    begun: Instant,
    /// Getting the model (loading it if needed) and starting.
    load: Duration,
}

/// Checks, admission, the model and the start: `common::start`, as every family; a missing
/// model gets Ollama's 404 text.
async fn run(
    state: &SharedState,
    model: &str,
    keep_alive: Option<KeepAlive>,
    req: Request,
) -> ApiResult<Run> {
    try_run(state, model, keep_alive, req)
        .await
        .map_err(|e| for_model(model)(e.into()))
}

/// [`run`] with the service's error, for a caller that acts on its kind.
async fn try_run(
    state: &SharedState,
    model: &str,
    keep_alive: Option<KeepAlive>,
    req: Request,
) -> Result<Run, ServiceError> {
    let begun = Instant::now();
    let timed = common::start(state, Some(model), keep_alive, req).await?;
    Ok(Run {
        timed,
        begun,
        load: begun.elapsed(),
    })
}

/// A request with no prompt and no messages: Ollama's way to load a model (`done_reason`
/// `load`), or with `keep_alive: 0` to unload it (`unload`). The unload is a lease with a
/// zero keep-alive, so it never unloads a model others are using (`KeepAlivePolicy`).
async fn preload(
    state: &SharedState,
    model: &str,
    keep_alive: Option<KeepAlive>,
) -> ApiResult<&'static str> {
    let entry = common::pick(state, Some(model))
        .await
        .map_err(|e| for_model(model)(e.into()))?;
    let unload = keep_alive == Some(KeepAlive::For(Duration::ZERO));
    if unload && state.models.peek(&entry.id).is_none() {
        return Ok("unload");
    }
    let deadline = common::deadline(&state.config());
    let (_, lease) = common::acquire_entry(state, entry, keep_alive, deadline).await?;
    drop(lease);
    Ok(if unload { "unload" } else { "load" })
}

/// The first fields of every object: `model` as requested and `created_at`.
fn head(model: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("model".into(), json!(model));
    m.insert("created_at".into(), json!(created_at()));
    m
}

/// One streamed or final object of a route: text, thoughts and tool calls where the route
/// puts them.
fn object(
    route: Route,
    model: &str,
    text: &str,
    thinking: &str,
    calls: &[ToolCall],
) -> Map<String, Value> {
    let mut m = head(model);
    match route {
        Route::Chat => {
            let mut message = json!({"role": "assistant", "content": text});
            if !thinking.is_empty() {
                message["thinking"] = json!(thinking);
            }
            if !calls.is_empty() {
                message["tool_calls"] = calls
                    .iter()
                    .enumerate()
                    .map(|(i, c)| tool_call(i, c))
                    .collect();
            }
            m.insert("message".into(), message);
        }
        Route::Generate => {
            m.insert("response".into(), json!(text));
            if !thinking.is_empty() {
                m.insert("thinking".into(), json!(thinking));
            }
        }
    }
    m
}

/// The answer to a preload: done at once, with why.
fn loaded(route: Route, model: &str, reason: &str) -> Response {
    let mut m = object(route, model, "", "", &[]);
    m.insert("done".into(), json!(true));
    m.insert("done_reason".into(), json!(reason));
    Json(Value::Object(m)).into_response()
}

/// The whole answer in one object (`stream: false`).
async fn whole(route: Route, model: &str, run: Run) -> ApiResult<Response> {
    let c = run.timed.collect().await?;
    let done = c.done.clone().expect("collected");
    let mut m = object(route, model, &c.text, &c.reasoning, &c.tool_calls);
    final_fields(&mut m, &done, run.begun.elapsed(), run.load);
    Ok(Json(Value::Object(m)).into_response())
}

/// What a stream remembers: tool calls gather until the end (Ollama sends each call whole,
/// its arguments an object).
struct Writer {
    route: Route,
    model: String,
    begun: Instant,
    load: Duration,
    calls: Vec<ToolCall>,
}

impl Writer {
    fn on_output(&mut self, output: Output) -> Vec<Value> {
        let chunk = |m: Map<String, Value>| {
            let mut m = m;
            m.insert("done".into(), json!(false));
            Value::Object(m)
        };
        match output {
            Output::Reasoning { text } if !text.is_empty() => {
                vec![chunk(object(self.route, &self.model, "", &text, &[]))]
            }
            Output::Text { text, .. } if !text.is_empty() => {
                vec![chunk(object(self.route, &self.model, &text, "", &[]))]
            }
            Output::ToolCallStart { index, id, name } => {
                if self.calls.len() <= index {
                    self.calls.resize_with(index + 1, ToolCall::default);
                }
                self.calls[index].id = id;
                self.calls[index].name = name;
                vec![]
            }
            Output::ToolCallArguments { index, delta } => {
                if let Some(c) = self.calls.get_mut(index) {
                    c.arguments.push_str(&delta);
                }
                vec![]
            }
            Output::Done(done) => {
                let mut out = Vec::new();
                if !self.calls.is_empty() {
                    out.push(chunk(object(self.route, &self.model, "", "", &self.calls)));
                }
                let mut m = object(self.route, &self.model, "", "", &[]);
                final_fields(&mut m, &done, self.begun.elapsed(), self.load);
                out.push(Value::Object(m));
                out
            }
            _ => vec![],
        }
    }
}

/// An NDJSON stream (`application/x-ndjson`, one object a line) of the generation; a
/// failure midway ends it with an `{"error": "..."}` line. Dropping the body (client gone)
/// drops the generation, which cancels it.
fn stream_answer(route: Route, model: String, run: Run) -> Response {
    use futures_util::StreamExt;
    let writer = Writer {
        route,
        model,
        begun: run.begun,
        load: run.load,
        calls: Vec::new(),
    };
    let lines = futures_util::stream::unfold(
        (run.timed, writer, false),
        |(mut timed, mut writer, ended)| async move {
            if ended {
                return None;
            }
            match timed.next().await {
                None => None,
                Some(Ok(output)) => {
                    let done = matches!(output, Output::Done(_));
                    let values = writer.on_output(output);
                    Some((values, (timed, writer, done)))
                }
                Some(Err(e)) => {
                    let e = ApiError::from(e);
                    Some((
                        vec![json!({"error": e.ollama_message()})],
                        (timed, writer, true),
                    ))
                }
            }
        },
    )
    .flat_map(futures_util::stream::iter);
    ollama_types::ndjson(lines)
}

async fn answer(
    route: Route,
    model: String,
    stream: Option<bool>,
    run: Run,
) -> ApiResult<Response> {
    if stream.unwrap_or(true) {
        Ok(stream_answer(route, model, run))
    } else {
        whole(route, &model, run).await
    }
}

/// `POST /api/chat`.
pub async fn chat(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<ChatRequest>,
) -> ApiResult<Response> {
    let model = required_model(req.model.as_deref())?.to_owned();
    let keep_alive = common::keep_alive(req.keep_alive.as_ref())?;
    let messages = req.messages.unwrap_or_default();
    if messages.is_empty() {
        let reason = preload(&state, &model, keep_alive).await?;
        return Ok(loaded(Route::Chat, &model, reason));
    }
    let mut template_kwargs = Map::new();
    let thinking = think(req.think.as_ref(), &mut template_kwargs)?;
    let messages = messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| m.into_chat(i))
        .collect::<ApiResult<Vec<_>>>()?;
    let opts = options(req.options.as_ref())?;
    let mut params = opts.fields.to_request(&state.sampling())?;
    let response_format = format(req.format.as_ref())?;
    let chat = ChatInput {
        messages,
        tools: parse_tools(req.tools.as_deref())?,
        tool_choice: ToolChoice::Auto,
        template_kwargs,
        parallel_tool_calls: true,
        thinking,
        ..Default::default()
    };
    let max_tokens = params.max_tokens;
    let fit = |chat| fit_to_context(&state, &model, chat, opts.num_ctx, max_tokens);
    let run = if opts.num_ctx.is_some() {
        // The client's window: fitted first, and the answer ends where the window does.
        let (chat, window) = fit(chat).await.map_err(for_model(&model))?;
        if let Some(w) = window {
            let room = w.n_ctx.saturating_sub(w.tokens as u32).max(1);
            params.max_tokens = Some(params.max_tokens.map_or(room, |m| m.min(room)));
        }
        let request = chat_request(chat, params, response_format);
        run(&state, &model, keep_alive, request).await?
    } else {
        // The slot's context: measured and fitted only when the engine finds the
        // conversation too long, so a conversation that fits is rendered once.
        let request = chat_request(chat.clone(), params.clone(), response_format.clone());
        match try_run(&state, &model, keep_alive, request).await {
            Err(ServiceError::Engine(EngineError::PromptTooLong { .. })) => {
                let (chat, _) = fit(chat).await.map_err(for_model(&model))?;
                let request = chat_request(chat, params, response_format);
                run(&state, &model, keep_alive, request).await?
            }
            started => started.map_err(|e| for_model(&model)(e.into()))?,
        }
    };
    answer(Route::Chat, model, req.stream, run).await
}

fn chat_request(
    chat: ChatInput,
    params: service::engine_types::GenerateRequest,
    response_format: service::ResponseFormat,
) -> Request {
    Request {
        input: Input::Chat(chat),
        params,
        response_format,
    }
}

/// Ollama's context rule: a conversation longer than the window (`num_ctx`, at most the
/// context one request has on the loaded model) loses its oldest turns instead of failing, as
/// Ollama's; the system messages it starts with are always sent. The policy (where a window
/// may start, the room kept for the answer) is `service::fit`'s, as for chat sessions. The
/// prompt is measured once when it fits; `None` when there are only system messages.
async fn fit_to_context(
    state: &SharedState,
    model: &str,
    mut chat: ChatInput,
    num_ctx: Option<u32>,
    max_tokens: Option<u32>,
) -> ApiResult<(ChatInput, Option<service::fit::Measure>)> {
    let head = chat
        .messages
        .iter()
        .take_while(|m| m.role == "system")
        .count();
    if head == chat.messages.len() {
        return Ok((chat, None));
    }
    let all = std::mem::take(&mut chat.messages);
    let (system, turns) = all.split_at(head);
    let window = {
        let chat = &chat;
        service::fit::fit(
            "messages",
            turns.iter().map(|m| m.role.as_str()),
            usize::MAX,
            max_tokens,
            model,
            |from| {
                let mut c = chat.clone();
                c.messages = system.iter().chain(&turns[from..]).cloned().collect();
                async move {
                    let m = common::measure_chat(state, Some(model), c).await?;
                    Ok(service::fit::Measure {
                        n_ctx: num_ctx.map_or(m.n_ctx, |n| n.min(m.n_ctx)),
                        ..m
                    })
                }
            },
        )
        .await?
    };
    if window.from > 0 {
        tracing::info!(
            model,
            left_out = window.from,
            prompt_tokens = window.measure.tokens,
            n_ctx = window.measure.n_ctx,
            "the conversation is longer than the context: its oldest messages are left out"
        );
    }
    chat.messages = system
        .iter()
        .chain(&turns[window.from..])
        .cloned()
        .collect();
    Ok((chat, Some(window.measure)))
}

/// `POST /api/generate`: the prompt as a user turn of the model's chat template (with
/// `system`), or as it is with `raw` (after the `context` tokens of an earlier answer, if
/// given); with `suffix`, fill-in-the-middle on a model with FIM tokens (else 400, as
/// Ollama says a model "does not support insert"). No prompt: load (or unload) the model.
pub async fn generate(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<GenerateRequest>,
) -> ApiResult<Response> {
    let model = required_model(req.model.as_deref())?.to_owned();
    let keep_alive = common::keep_alive(req.keep_alive.as_ref())?;
    if req
        .template
        .as_deref()
        .is_some_and(|t| !t.trim().is_empty())
    {
        // Go templates are not run: a model prompts with its own (Jinja) template, or the
        // built-in family an Ollama model's template names; `raw` gives the prompt as is.
        return Err(ApiError::invalid(
            "template",
            "template overrides are not supported here: send the prompt formatted with \
             raw: true, or use /api/chat",
        ));
    }
    let prompt = req.prompt.clone().unwrap_or_default();
    let suffix = req.suffix.clone().unwrap_or_default();
    let images = req.images.clone().unwrap_or_default();
    let raw = req.raw.unwrap_or(false);
    if prompt.is_empty() && suffix.is_empty() && images.is_empty() {
        let reason = preload(&state, &model, keep_alive).await?;
        return Ok(loaded(Route::Generate, &model, reason));
    }
    let context = req
        .context
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|&t| i32::try_from(t).map_err(|_| ApiError::invalid("context", "not a token id")))
        .collect::<ApiResult<Vec<i32>>>()?;
    let input = if !suffix.is_empty() {
        if !images.is_empty() || !context.is_empty() {
            return Err(ApiError::invalid(
                "suffix",
                "suffix (fill-in-the-middle) takes a text prompt only: no images or context",
            ));
        }
        Input::Prompt(Prompt::Infill(InfillPrompt {
            input_prefix: prompt,
            input_suffix: suffix,
            input_extra: Vec::new(),
            prompt: String::new(),
        }))
    } else if raw {
        if !images.is_empty() {
            return Err(ApiError::invalid(
                "images",
                "images need the model's template: send them without raw",
            ));
        }
        let mut parts = Vec::new();
        if !context.is_empty() {
            parts.push(PromptPart::Tokens(context));
        }
        parts.push(PromptPart::Text(prompt));
        Input::Prompt(Prompt::Mixed(parts))
    } else {
        if !context.is_empty() {
            // The earlier turn's tokens cannot be placed inside a template's rendering.
            return Err(ApiError::invalid(
                "context",
                "context is taken with raw prompts here: use /api/chat for conversations",
            ));
        }
        let mut messages = Vec::new();
        if let Some(system) = req.system.as_deref().filter(|s| !s.is_empty()) {
            messages.push(ChatMessage::system(system));
        }
        messages.push(ChatMessage {
            role: "user".into(),
            content: Some(content(prompt, Some(&images), "")?),
            ..Default::default()
        });
        let mut template_kwargs = Map::new();
        let thinking = think(req.think.as_ref(), &mut template_kwargs)?;
        Input::Chat(ChatInput {
            messages,
            template_kwargs,
            thinking,
            ..Default::default()
        })
    };
    let infill = matches!(input, Input::Prompt(Prompt::Infill(_)));
    let request = Request {
        input,
        params: options(req.options.as_ref())?
            .fields
            .to_request(&state.sampling())?,
        response_format: format(req.format.as_ref())?,
    };
    let run = run(&state, &model, keep_alive, request)
        .await
        .map_err(|e| {
            if infill && e.status.as_u16() == 501 {
                ApiError::bad_request(format!("\"{model}\" does not support insert"))
                    .with_param("suffix")
            } else {
                e
            }
        })?;
    answer(Route::Generate, model, req.stream, run).await
}

/// `POST /api/embed`.
#[derive(Debug, Deserialize)]
pub struct EmbedBody {
    pub model: Option<String>,
    pub input: Option<Value>,
    pub truncate: Option<bool>,
    pub dimensions: Option<u32>,
    pub keep_alive: Option<Value>,
    pub options: Option<Value>,
}

/// `POST /api/embeddings` (legacy).
#[derive(Debug, Deserialize)]
pub struct EmbeddingsBody {
    pub model: Option<String>,
    pub prompt: Option<String>,
    pub keep_alive: Option<Value>,
    pub options: Option<Value>,
}

/// Embeddings of `inputs` on `model` through the service (admission, the model's place, the
/// `[limits]` caps); the vectors and the prompt tokens, and the time to get the model.
async fn embed_texts(
    state: &SharedState,
    model: &str,
    keep_alive: Option<KeepAlive>,
    inputs: Vec<String>,
    normalize: Normalize,
    truncate: bool,
) -> ApiResult<(Vec<Vec<f32>>, u64, Duration)> {
    let begun = Instant::now();
    let entry = common::pick(state, Some(model))
        .await
        .map_err(|e| for_model(model)(e.into()))?;
    let ticket = state.models.admit()?;
    let deadline = common::deadline(&state.config());
    let (_, lease) = common::acquire_entry(state, entry, keep_alive, deadline).await?;
    let load = begun.elapsed();
    if inputs.is_empty() {
        return Ok((Vec::new(), 0, load));
    }
    let req = EmbedRequest {
        inputs: inputs
            .into_iter()
            .map(|text| Prompt::Text {
                text,
                add_special: true,
                parse_special: false,
            })
            .collect(),
        pooling: None,
        normalize,
        pooled_only: true,
        truncate,
        ..Default::default()
    };
    let out = service::embed(&lease, req, ticket).await?;
    let mut tokens = 0u64;
    let mut vectors = Vec::with_capacity(out.len());
    for e in out {
        tokens += u64::from(e.n_tokens);
        match e.values {
            EmbeddingValues::Pooled(v) => vectors.push(v),
            EmbeddingValues::PerToken(_) => {
                return Err(ApiError::internal("expected a pooled embedding"));
            }
        }
    }
    Ok((vectors, tokens, load))
}

/// `POST /api/embed`: `input` a string or a list of strings; vectors L2-normalised, as
/// Ollama's; `dimensions` keeps the first values, renormalised. An input longer than the
/// context is cut to its first tokens unless `truncate` is false (then 400 naming the
/// context), as Ollama's.
pub async fn embed(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<EmbedBody>,
) -> ApiResult<Json<Value>> {
    let begun = Instant::now();
    let model = required_model(req.model.as_deref())?.to_owned();
    let keep_alive = common::keep_alive(req.keep_alive.as_ref())?;
    options(req.options.as_ref())?;
    let inputs = match req.input {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s),
                _ => Err(ApiError::invalid(
                    &format!("input[{i}]"),
                    "invalid input type: strings expected",
                )),
            })
            .collect::<ApiResult<_>>()?,
        Some(_) => {
            return Err(ApiError::invalid(
                "input",
                "invalid input type: a string or a list of strings",
            ));
        }
    };
    let (mut vectors, tokens, load) = embed_texts(
        &state,
        &model,
        keep_alive,
        inputs,
        Normalize::Euclidean,
        req.truncate.unwrap_or(true),
    )
    .await?;
    if let Some(d) = req.dimensions {
        for v in &mut vectors {
            super::embed::truncate_dimensions(v, d)?;
        }
    }
    let mut m = Map::new();
    m.insert("model".into(), json!(model));
    m.insert("embeddings".into(), json!(vectors));
    embed_metrics(&mut m, begun.elapsed(), load, tokens);
    Ok(Json(Value::Object(m)))
}

/// `POST /api/embeddings` (legacy): one `prompt`, its vector as the model gives it (not
/// normalised, as Ollama's legacy route).
pub async fn embeddings(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<EmbeddingsBody>,
) -> ApiResult<Json<Value>> {
    let model = required_model(req.model.as_deref())?.to_owned();
    let keep_alive = common::keep_alive(req.keep_alive.as_ref())?;
    options(req.options.as_ref())?;
    let inputs: Vec<String> = req.prompt.into_iter().filter(|p| !p.is_empty()).collect();
    let (vectors, _, _) =
        embed_texts(&state, &model, keep_alive, inputs, Normalize::None, false).await?;
    let embedding = vectors.into_iter().next().unwrap_or_default();
    Ok(Json(json!({"embedding": embedding})))
}
