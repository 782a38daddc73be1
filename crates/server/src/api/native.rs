//! llama.cpp's own server API, with llama-server's field names: `/completion`,
//! `/tokenize`, `/detokenize`, `/apply-template`, `/health`, `/props`, `/slots`,
//! `/metrics`. Serving many models, a request picks one with a `model` field (body) or
//! `?model=` (query), like llama-server's router mode; without one, the only loaded model.

use super::common::{self, Timed};
use super::openai::{parse_response_format, sse};
use super::params::GenFields;
use super::prompt::PromptField;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::{AppState, SharedState};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::sse::Event as SseEvent;
use axum::response::{IntoResponse, Response};
use chat::ChatMessage;
use futures_util::stream::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use service::TokenProbs;
use service::{ChatInput, Done, Finish, Input, Output, Request};
use std::convert::Infallible;

#[derive(Debug, Default, Deserialize)]
pub struct ModelQuery {
    pub model: Option<String>,
}

// ---------------------------------------------------------------- /health, /metrics

/// `{"status":"ok"}`, or llama-server's 503 "Loading model" while `serve` is still starting.
pub async fn health(State(state): State<SharedState>) -> Response {
    if state.starting.load(std::sync::atomic::Ordering::Acquire) {
        let body = json!({"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}});
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    Json(json!({"status": "ok"})).into_response()
}

/// `GET /readiness` (seed 003): whether a request can be served now, by a model loaded or
/// one a request would load. 200 when start-up is done (the folder scan and `-m`'s
/// preload, as `/health`) and
/// - a model is loaded, or
/// - `models.autoload` is on and a model the listings show is loadable: its files are whole
///   (no missing split part, not cut short: [`catalog::ModelEntry::problem`]) and its last
///   load did not fail (the manager's state is not `failed`).
///
/// Otherwise 503 with the reason. Both bodies count the models, so a probe's log tells
/// why; no names or paths (the route is public).
pub async fn readiness(State(state): State<SharedState>) -> Response {
    let unready = |reason: &str, counts: Value| {
        let body = json!({"status": "not_ready", "reason": reason, "models": counts});
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    };
    if state.starting.load(std::sync::atomic::Ordering::Acquire) {
        return unready("starting: the model folders are being scanned", json!({}));
    }
    let statuses = state.models.manager().statuses();
    let loaded = statuses
        .iter()
        .filter(|s| s.state == manager::ModelState::Loaded)
        .count();
    let listed = state.models.listed().await;
    let failed = |id: &str| {
        statuses
            .iter()
            .any(|s| s.id == id && matches!(s.state, manager::ModelState::Failed { .. }))
    };
    let whole = listed.iter().filter(|l| l.entry.problem().is_none());
    let loadable = whole.clone().filter(|l| !failed(&l.entry.id)).count();
    let counts = json!({"listed": listed.len(), "loaded": loaded, "loadable": loadable});
    let autoload = state.config().models.autoload;
    if loaded > 0 || (autoload && loadable > 0) {
        return Json(json!({"status": "ready", "models": counts})).into_response();
    }
    let reason = if listed.is_empty() {
        "no model found in the model folders"
    } else if whole.count() == 0 {
        "every model found is incomplete (a missing split part or a file cut short)"
    } else if loadable == 0 {
        "every model that could be loaded failed to load"
    } else {
        "no model is loaded, and models.autoload is off: load one first"
    };
    unready(reason, counts)
}

pub async fn metrics(State(state): State<SharedState>) -> ApiResult<Response> {
    if !state.config().server.metrics_endpoint {
        return Err(not_supported(
            "This server does not support metrics endpoint. Start it with `--metrics` (server.metrics_endpoint)",
        ));
    }
    let text = state.metrics.render(&state).await;
    // llama-server's header: Prometheus clients tell restarts apart by it.
    let started = common::unix_now().saturating_sub(state.started.elapsed().as_secs());
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8".to_string(),
            ),
            (
                header::HeaderName::from_static("process-start-time-unix"),
                started.to_string(),
            ),
        ],
        text,
    )
        .into_response())
}

/// 501 with llama-server's `not_supported_error`: a route switched off at start.
fn not_supported(message: &str) -> ApiError {
    ApiError::new(axum::http::StatusCode::NOT_IMPLEMENTED, message)
}

// ---------------------------------------------------------------- /completion

#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    pub model: Option<String>,
    pub prompt: PromptField,
    #[serde(default)]
    pub stream: bool,
    pub keep_alive: Option<Value>,
    pub response_format: Option<Value>,
    #[serde(default)]
    pub return_tokens: bool,
    /// Completions per prompt (llama-server's `n_cmpl`, alias `n`).
    #[serde(alias = "n_cmpl")]
    pub n: Option<u32>,
    /// Only these fields of the result (`"a/b"` paths into nested objects), as llama-server.
    pub response_fields: Option<Vec<String>>,
    #[serde(flatten)]
    pub sampling: GenFields,
}

pub async fn completion(
    State(state): State<SharedState>,
    ApiJson(mut req): ApiJson<CompletionRequest>,
) -> ApiResult<Response> {
    let prompt = std::mem::replace(&mut req.prompt, PromptField::List(Vec::new()));
    let prompts = prompt.into_prompts("prompt")?;
    completion_with_prompts(state, req, prompts).await
}

/// `/infill`, which builds its own prompt.
pub async fn completion_with_prompt(
    state: SharedState,
    req: CompletionRequest,
    prompt: service::Prompt,
) -> ApiResult<Response> {
    completion_with_prompts(state, req, vec![prompt]).await
}

/// `/completion` for its prompts, `n` completions each: one result (an object), or several
/// (a list, in prompt order, each with its `index`), as llama-server answers.
async fn completion_with_prompts(
    state: SharedState,
    req: CompletionRequest,
    prompts: Vec<service::Prompt>,
) -> ApiResult<Response> {
    let params = req
        .sampling
        .to_request(&state.sampling_for(req.model.as_deref()).await)?;
    let n = common::choices(req.n)?;
    let keep_alive = common::keep_alive(req.keep_alive.as_ref())?;
    let response_format = parse_response_format(req.response_format.as_ref())?;
    let requests: Vec<Request> = prompts
        .iter()
        .flat_map(|p| std::iter::repeat_n(p, n))
        .map(|p| Request {
            input: Input::Prompt(p.clone()),
            params: params.clone(),
            response_format: response_format.clone(),
        })
        .collect();
    let timeds = common::start_all(&state, req.model.as_deref(), keep_alive, requests).await?;
    let fields = req.response_fields.clone().unwrap_or_default();
    let metas: Vec<NativeMeta> = timeds
        .iter()
        .enumerate()
        .map(|(index, t)| {
            NativeMeta::new(index, t, &params, req.stream, req.return_tokens, &fields)
        })
        .collect();
    if req.stream {
        return Ok(sse(native_stream(timeds, metas)));
    }
    let mut results = Vec::with_capacity(metas.len());
    for (meta, c) in metas.iter().zip(common::collect_all(timeds).await?) {
        results.push(native_result(meta, &c));
    }
    Ok(Json(if results.len() == 1 {
        results.remove(0)
    } else {
        Value::Array(results)
    })
    .into_response())
}

/// One completion's whole result. OpenAI-shaped answers carry it as llama-server's
/// `__verbose` object.
pub(crate) fn native_result(meta: &NativeMeta, c: &service::Collected) -> Value {
    let done = c.done.clone().expect("collected");
    let mut out = final_fields(meta, &done);
    out["content"] = json!(c.text);
    out["tokens"] = if meta.return_tokens {
        json!(c.tokens)
    } else {
        json!([])
    };
    if meta.n_probs > 0 {
        out["completion_probabilities"] = Value::Array(
            c.probs
                .iter()
                .map(|(t, id, p)| prob_entry(*id, t, p, meta.post_sampling_probs))
                .collect(),
        );
    }
    pick_fields(out, &meta.response_fields)
}

/// What a completion's result needs of its request and generation, taken before it runs.
pub(crate) struct NativeMeta {
    /// The completion's place among the request's (prompt order, then `n`).
    index: usize,
    model: String,
    n_probs: u32,
    post_sampling_probs: bool,
    return_tokens: bool,
    response_fields: Vec<String>,
    settings: Value,
    /// The prompt text it ran on (a chat's rendered template), when it was text.
    prompt: Option<String>,
}

impl NativeMeta {
    /// For the completion `timed`, the `index`th of its request, run with `params`.
    pub(crate) fn new(
        index: usize,
        timed: &Timed,
        params: &service::GenerateRequest,
        stream: bool,
        return_tokens: bool,
        response_fields: &[String],
    ) -> NativeMeta {
        NativeMeta {
            index,
            model: timed.model.clone(),
            n_probs: params.n_probs,
            post_sampling_probs: params.post_sampling_probs,
            return_tokens,
            response_fields: response_fields.to_vec(),
            settings: generation_settings(params, timed.generation.logit_bias(), stream),
            prompt: timed.generation.prompt().map(str::to_owned),
        }
    }
}

/// llama-server's `generation_settings`: the sampling values, the limits and `logit_bias`
/// as the request runs with it (`[{"token", "bias"}]`, a ban's `-inf` as `null`: with
/// `ignore_eos`, the end-of-generation tokens).
fn generation_settings(
    p: &service::GenerateRequest,
    logit_bias: &[(i32, f32)],
    stream: bool,
) -> Value {
    let mut v = serde_json::to_value(&p.sampling).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.remove("logit_bias_text");
        let n_predict = json!(p.max_tokens.map_or(-1, i64::from));
        o.insert(
            "seed".into(),
            json!(p.sampling.seed.unwrap_or(service::RANDOM_SEED)),
        );
        o.insert("n_predict".into(), n_predict.clone());
        o.insert("max_tokens".into(), n_predict);
        o.insert("stop".into(), json!(p.stop));
        o.insert("ignore_eos".into(), json!(p.ignore_eos));
        o.insert("n_probs".into(), json!(p.n_probs));
        o.insert("post_sampling_probs".into(), json!(p.post_sampling_probs));
        o.insert("cache_prompt".into(), json!(p.cache_prompt));
        o.insert("n_keep".into(), json!(p.n_keep));
        o.insert("stream".into(), json!(stream));
        // llama-server's adaptive-p sampler, which this server does not have: off.
        o.insert("adaptive_target".into(), json!(-1.0));
        o.insert("adaptive_decay".into(), json!(0.9));
        o.insert(
            "logit_bias".into(),
            Value::Array(
                logit_bias
                    .iter()
                    .map(|&(token, bias)| {
                        // JSON has no -inf: llama-server writes a ban as null.
                        let bias = if bias.is_finite() {
                            json!(bias)
                        } else {
                            Value::Null
                        };
                        json!({"token": token, "bias": bias})
                    })
                    .collect(),
            ),
        );
    }
    v
}

/// One token's entry in `completion_probabilities`: log-probabilities of the raw logits, or
/// with `post_sampling_probs` the probabilities the token was sampled with (`prob`,
/// `top_probs`).
fn prob_entry(id: i32, text: &str, p: &TokenProbs, post_sampling: bool) -> Value {
    let (key, top_key) = if post_sampling {
        ("prob", "top_probs")
    } else {
        ("logprob", "top_logprobs")
    };
    let value = |lp: f32| {
        if post_sampling {
            lp.exp()
        } else {
            lp.max(f32::MIN)
        }
    };
    let mut entry = json!({
        "id": id,
        "token": text,
        "bytes": text.as_bytes(),
        "top": p.top.iter().map(|(tid, t, lp)| {
            let mut e = json!({"id": tid, "token": t, "bytes": t.as_bytes()});
            e[key] = json!(value(*lp));
            e
        }).collect::<Vec<_>>(),
    });
    entry[key] = json!(value(p.logprob));
    if let Some(o) = entry.as_object_mut()
        && let Some(top) = o.remove("top")
    {
        o.insert(top_key.into(), top);
    }
    entry
}

/// `response_fields`: only the fields named, each under its path (`"a/b"` is `a`'s `b`),
/// as llama-server's `json_get_nested_values`; no list, the whole result.
fn pick_fields(result: Value, fields: &[String]) -> Value {
    if fields.is_empty() {
        return result;
    }
    let mut out = serde_json::Map::new();
    for path in fields {
        let mut at = Some(&result);
        for key in path.split('/') {
            at = at.and_then(|v| v.get(key));
        }
        if let Some(v) = at {
            out.insert(path.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// The fields of llama-server's last (`stop: true`) message.
pub(super) fn final_fields(meta: &NativeMeta, d: &Done) -> Value {
    let stop_type = match (&d.finish, &d.stop_word) {
        (_, Some(_)) => "word",
        (Finish::Stop | Finish::ToolCalls, None) => "eos",
        (Finish::Length, _) => "limit",
        (Finish::Cancelled, _) => "none",
    };
    let mut fields = json!({
        "index": meta.index,
        "content": "",
        "tokens": [],
        "id_slot": d.slot_id,
        "stop": true,
        "model": meta.model,
        "tokens_predicted": d.usage.completion_tokens,
        "tokens_evaluated": d.usage.prompt_tokens,
        "generation_settings": meta.settings,
        "has_new_line": false,
        "truncated": false,
        "stop_type": stop_type,
        "stopping_word": d.stop_word.clone().unwrap_or_default(),
        "tokens_cached": d.usage.prompt_tokens + d.usage.completion_tokens,
        "timings": d.timings,
    });
    if let Some(p) = &meta.prompt {
        fields["prompt"] = json!(p);
    }
    fields
}

/// A token's stream message (with its id in `tokens`, as llama-server).
pub(super) fn token_fields(
    meta: &NativeMeta,
    text: &str,
    token: Option<i32>,
    probs: Option<&TokenProbs>,
) -> Value {
    let mut m = json!({
        "index": meta.index, "content": text, "tokens": token.into_iter().collect::<Vec<i32>>(),
        "stop": false, "id_slot": -1,
    });
    if meta.n_probs > 0
        && let Some(p) = probs
    {
        m["completion_probabilities"] = json!([prob_entry(
            token.unwrap_or(-1),
            text,
            p,
            meta.post_sampling_probs
        )]);
    }
    m
}

/// A prompt-progress stream message.
pub(super) fn progress_fields(meta: &NativeMeta, p: &service::Progress) -> Value {
    json!({
        "index": meta.index, "content": "", "tokens": [], "stop": false, "id_slot": -1,
        "prompt_progress": progress_json(p),
        "timings": p.timings,
    })
}

/// llama-server's `prompt_progress` object.
pub fn progress_json(p: &service::Progress) -> Value {
    json!({"total": p.total, "cache": p.cache, "processed": p.processed, "time_ms": p.time_ms})
}

/// The SSE chunks of `/completion`: one per token (with its id in `tokens`, as
/// llama-server), progress chunks when asked, and each completion's last message.
fn native_stream(
    timeds: Vec<Timed>,
    metas: Vec<NativeMeta>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    common::sse_events_all(
        timeds,
        metas,
        Vec::new(),
        |metas, i, output| {
            let meta = &metas[i];
            match output {
                Output::Text {
                    text,
                    token,
                    probs,
                    timings,
                } => {
                    if text.is_empty() {
                        return Vec::new();
                    }
                    let mut m = token_fields(meta, &text, token, probs.as_ref());
                    // `timings_per_token`: the timings so far on each token, as llama-server.
                    if let Some(t) = timings {
                        m["timings"] = json!(t);
                    }
                    vec![common::sse_json(&m)]
                }
                Output::Progress(p) => vec![common::sse_json(&progress_fields(meta, &p))],
                Output::Done(d) => vec![common::sse_json(&pick_fields(
                    final_fields(meta, &d),
                    &meta.response_fields,
                ))],
                _ => Vec::new(),
            }
        },
        |_, e| common::sse_json(&common::stream_error(e)),
    )
}

// ---------------------------------------------------------------- tokenizer routes

/// A lease on the request's model, for the routes that do not generate.
pub async fn lease(
    state: &SharedState,
    model: Option<&str>,
) -> ApiResult<(String, service::ModelLease)> {
    let (entry, lease) =
        common::acquire(state, model, None, common::deadline(&state.config())).await?;
    Ok((entry.id, lease))
}

#[derive(Debug, Deserialize)]
pub struct TokenizeRequest {
    pub model: Option<String>,
    pub content: String,
    #[serde(default)]
    pub add_special: bool,
    #[serde(default = "yes")]
    pub parse_special: bool,
    #[serde(default)]
    pub with_pieces: bool,
}

fn yes() -> bool {
    true
}

pub async fn tokenize(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<TokenizeRequest>,
) -> ApiResult<Json<Value>> {
    let (_, model) = lease(&state, req.model.as_deref()).await?;
    let tokens = model
        .handle
        .tokenize(&req.content, req.add_special, req.parse_special)
        .await?;
    if !req.with_pieces {
        return Ok(Json(json!({"tokens": tokens})));
    }
    let pieces = model.handle.token_pieces(&tokens).await?;
    let out: Vec<Value> = pieces
        .into_iter()
        .map(|p| {
            // llama-server sends pieces that are not valid UTF-8 alone as byte lists.
            let piece = match std::str::from_utf8(&p.bytes) {
                Ok(s) => json!(s),
                Err(_) => json!(p.bytes),
            };
            json!({"id": p.id, "piece": piece})
        })
        .collect();
    Ok(Json(json!({"tokens": out})))
}

#[derive(Debug, Deserialize)]
pub struct DetokenizeRequest {
    pub model: Option<String>,
    pub tokens: Vec<i64>,
}

pub async fn detokenize(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<DetokenizeRequest>,
) -> ApiResult<Json<Value>> {
    let (_, model) = lease(&state, req.model.as_deref()).await?;
    let n_vocab = i64::from(model.handle.info().n_vocab);
    let mut tokens = Vec::with_capacity(req.tokens.len());
    for (i, &t) in req.tokens.iter().enumerate() {
        if t < 0 || t >= n_vocab {
            return Err(ApiError::invalid(
                &format!("tokens[{i}]"),
                format!("{t} is not a token id (vocabulary of {n_vocab})"),
            ));
        }
        tokens.push(t as i32);
    }
    let content = model.handle.detokenize(&tokens).await?;
    Ok(Json(json!({"content": content})))
}

#[derive(Debug, Deserialize)]
pub struct ApplyTemplateRequest {
    pub model: Option<String>,
    pub messages: Vec<ChatMessage>,
    pub tools: Option<Vec<Value>>,
    pub tool_choice: Option<Value>,
    pub chat_template_kwargs: Option<serde_json::Map<String, Value>>,
    pub add_generation_prompt: Option<bool>,
    pub continue_final_message: Option<Value>,
}

pub async fn apply_template(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<ApplyTemplateRequest>,
) -> ApiResult<Json<Value>> {
    let chat = ChatInput {
        messages: req.messages,
        tools: super::openai::parse_tools(req.tools.as_deref())?,
        tool_choice: super::openai::parse_tool_choice(req.tool_choice.as_ref())?,
        template_kwargs: req.chat_template_kwargs.unwrap_or_default(),
        parallel_tool_calls: true,
        add_generation_prompt: req.add_generation_prompt.unwrap_or(true),
        continue_final_message: super::openai::continues(req.continue_final_message.as_ref()),
        ..Default::default()
    };
    let (id, model) = common::lease_for_chat(&state, req.model.as_deref(), &chat).await?;
    let template = state.models.template_choice(&id).await?;
    let prompt = service::generate::render_chat(&model, &template, chat)?;
    Ok(Json(json!({"prompt": prompt})))
}

// ---------------------------------------------------------------- /props

/// `GET /props`; the model's file path only for admin access (inference keys do not learn
/// the server's filesystem). A sleeping model (unloaded for idleness) is not woken: its
/// props come from what it showed when it was last loaded, with `is_sleeping: true`, as
/// llama-server answers from the props it cached on entering sleep.
pub async fn props(
    State(state): State<SharedState>,
    access: Option<axum::Extension<crate::auth::Access>>,
    Query(q): Query<ModelQuery>,
) -> ApiResult<Json<Value>> {
    // Picked once: the model asked for, else the router's answer when there is none.
    let entry = match state.models.pick(q.model.as_deref()).await {
        Ok(entry) => entry,
        Err(e) => {
            return router_props(&state, q.model.as_deref())
                .map(Json)
                .ok_or(e.into());
        }
    };
    // A loaded model is read without a lease: reading props is no use of the model, and
    // must not keep it from going to sleep.
    let (mut props, is_sleeping) = if let Some(model) = state.models.peek(&entry.id) {
        let props = model_props(&state, &entry.id, &model).await?;
        state.remember_props(&entry.id, props.clone());
        (props, false)
    } else {
        match state.props_of(&entry.id) {
            Some(props) if state.models.is_sleeping(&entry.id) => (props, true),
            _ => {
                let (entry, model) =
                    common::acquire_entry(&state, entry, None, common::deadline(&state.config()))
                        .await?;
                let props = model_props(&state, &entry.id, &model).await?;
                state.remember_props(&entry.id, props.clone());
                (props, false)
            }
        }
    };
    let mut settings = default_settings(&state);
    settings["params"] = default_params(&state);
    settings["n_ctx"] = props["n_ctx"].take();
    settings["model"] = props["model_alias"].clone();
    if let Some(o) = props.as_object_mut() {
        o.remove("n_ctx");
    }
    if !crate::auth::is_admin(access.as_ref()) {
        props["model_path"] = Value::Null;
    }
    props["default_generation_settings"] = settings;
    props["is_sleeping"] = json!(is_sleeping);
    Ok(Json(props))
}

/// What `/props` says about a loaded model itself (not the server's sampling defaults):
/// kept per model so that a sleeping model's props are answered without loading it.
pub async fn model_props(
    state: &AppState,
    id: &str,
    model: &service::LoadedModel,
) -> ApiResult<Value> {
    let info = model.handle.info();
    let template = state.models.template_choice(id).await?;
    let format = model.chat_format(&template)?;
    Ok(json!({
        "n_ctx": info.n_ctx_slot,
        "total_slots": info.n_slots,
        "model_alias": id,
        "model_path": info.path,
        "chat_template": format.source(),
        "chat_template_origin": format.origin.to_string(),
        "bos_token": info.bos_token,
        "eos_token": info.eos_token,
        "modalities": {"vision": false, "audio": false},
        "build_info": BUILD_INFO,
    }))
}

/// The server's generation defaults in `/props`'s `default_generation_settings` shape.
fn default_settings(state: &SharedState) -> Value {
    generation_settings(
        &service::GenerateRequest {
            sampling: state.sampling().params(),
            ..Default::default()
        },
        &[],
        false,
    )
}

/// The defaults as llama-server nests them in `params` (its seed -1 reads 4294967295).
fn default_params(state: &SharedState) -> Value {
    let mut params = default_settings(state);
    params["seed"] = json!(state.sampling().seed.unwrap_or(u32::MAX));
    params
}

/// llama-server's `build_info` shape (`b<build>-<commit>`), with this server's version as
/// the build: clients read it to tell servers apart.
pub const BUILD_INFO: &str = concat!("b", env!("CARGO_PKG_VERSION"), "-llama-dashboard");

/// The props of the server itself, as llama-server's router mode answers `/props` without
/// `?model=`: when many models are served (not `serve -m FILE` alone) and the request names
/// none that [`service::Models::pick`] can settle on (several models, or none yet).
fn router_props(state: &SharedState, named: Option<&str>) -> Option<Value> {
    if state.models.routing().single || named.is_some_and(|n| !n.trim().is_empty()) {
        return None;
    }
    let c = state.config();
    let params = default_params(state);
    Some(json!({
        "role": "router",
        "max_instances": c.models.models_max,
        "models_autoload": c.models.autoload,
        "model_alias": "llama-dashboard",
        "model_path": "none",
        "default_generation_settings": {"params": params, "n_ctx": 0},
        "build_info": BUILD_INFO,
        "is_sleeping": false,
    }))
}

/// `POST /props`: changes the server-wide sampling defaults.
pub async fn set_props(
    State(state): State<SharedState>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    let settings = body
        .get("default_generation_settings")
        .unwrap_or(&body)
        .clone();
    let fields: GenFields = serde_json::from_value(settings)
        .map_err(|e| ApiError::invalid("default_generation_settings", e))?;
    let current = state.sampling();
    let checked = fields.to_request(&current)?;
    let new = service::SamplingDefaults {
        n_predict: current.n_predict,
        ..service::SamplingDefaults::from_params(&checked.sampling)
    };
    *state.sampling.write().unwrap_or_else(|p| p.into_inner()) = new;
    Ok(Json(json!({"success": true})))
}

// ---------------------------------------------------------------- /slots

pub async fn slots(
    State(state): State<SharedState>,
    Query(q): Query<ModelQuery>,
) -> ApiResult<Json<Value>> {
    if !state.config().server.slots_endpoint {
        return Err(not_supported(
            "This server does not support slots endpoint. Start it with `--slots` (server.slots_endpoint)",
        ));
    }
    let (_, model) = lease(&state, q.model.as_deref()).await?;
    let slots = model.handle.slots().await?;
    Ok(Json(Value::Array(
        slots
            .into_iter()
            .map(|s| {
                json!({
                    "id": s.id,
                    "id_task": s.task_id.map_or(-1, |t| t as i64),
                    "n_ctx": s.n_ctx,
                    "is_processing": s.task_id.is_some(),
                    "state": s.state,
                    "n_cached": s.n_cached,
                    "n_prompt": s.n_prompt,
                    "n_decoded": s.n_decoded,
                })
            })
            .collect(),
    )))
}

#[derive(Debug, Deserialize)]
pub struct SlotActionQuery {
    pub action: Option<String>,
    pub model: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SlotActionBody {
    pub filename: Option<String>,
    pub model: Option<String>,
}

/// `POST /slots/{id}?action=save|restore|erase`; files live in `server.slot_save_path`, or
/// under `<data>/slots/<model>/`.
pub async fn slot_action(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    Query(q): Query<SlotActionQuery>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let id: u32 = id
        .parse()
        .map_err(|_| ApiError::invalid("id_slot", "must be a slot number"))?;
    let body: SlotActionBody = if body.iter().all(u8::is_ascii_whitespace) {
        SlotActionBody::default()
    } else {
        crate::extract::parse(&body)?
    };
    let (model_id, model) = lease(&state, body.model.as_deref().or(q.model.as_deref())).await?;
    let action = q
        .action
        .ok_or_else(|| ApiError::invalid("action", "is required (save, restore or erase)"))?;
    let file = || -> ApiResult<std::path::PathBuf> {
        let name = body
            .filename
            .as_deref()
            .ok_or_else(|| ApiError::invalid("filename", "is required"))?;
        if name.is_empty()
            || name.contains(['/', '\\', '\0'])
            || name.starts_with('.')
            || name.len() > 200
        {
            return Err(ApiError::invalid("filename", "must be a plain file name"));
        }
        let dir = match &state.config().server.slot_save_path {
            Some(dir) => dir.clone(),
            None => state.paths.data_dir.join("slots").join(sanitize(&model_id)),
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::internal(format!("creating {}: {e}", dir.display())))?;
        Ok(dir.join(name))
    };
    let t0 = std::time::Instant::now();
    match action.as_str() {
        "save" => {
            let name = body.filename.clone().unwrap_or_default();
            let r = model.handle.save_slot(id, file()?).await?;
            Ok(Json(json!({
                "id_slot": id, "filename": name, "n_saved": r.n_tokens, "n_written": r.n_bytes,
                "timings": {"save_ms": t0.elapsed().as_secs_f64() * 1e3},
            })))
        }
        "restore" => {
            let name = body.filename.clone().unwrap_or_default();
            let path = file()?;
            if !path.is_file() {
                return Err(ApiError::not_found(format!("no saved slot file '{name}'")));
            }
            let r = model.handle.restore_slot(id, path).await?;
            Ok(Json(json!({
                "id_slot": id, "filename": name, "n_restored": r.n_tokens, "n_read": r.n_bytes,
                "timings": {"restore_ms": t0.elapsed().as_secs_f64() * 1e3},
            })))
        }
        "erase" => {
            let n = model.handle.erase_slot(id).await?;
            Ok(Json(json!({"id_slot": id, "n_erased": n})))
        }
        other => Err(ApiError::invalid(
            "action",
            format!("unknown action '{other}' (save, restore or erase)"),
        )),
    }
}

/// A model id as one folder name.
fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
