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
use crate::state::SharedState;
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

pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn metrics(State(state): State<SharedState>) -> Response {
    let text = state.metrics.render(&state).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
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
    #[serde(flatten)]
    pub sampling: GenFields,
}

pub async fn completion(
    State(state): State<SharedState>,
    ApiJson(mut req): ApiJson<CompletionRequest>,
) -> ApiResult<Response> {
    let prompt = std::mem::replace(&mut req.prompt, PromptField::List(Vec::new()));
    let prompt = prompt.into_prompt("prompt")?;
    completion_with_prompt(state, req, prompt).await
}

/// `/completion` (and `/infill`, which builds its own prompt).
pub async fn completion_with_prompt(
    state: SharedState,
    req: CompletionRequest,
    prompt: service::Prompt,
) -> ApiResult<Response> {
    let params = req.sampling.to_request(&state.sampling())?;
    let model = common::model_name(&state, req.model.as_deref())?;
    let keep_alive = common::keep_alive(req.keep_alive.as_ref())?;
    let n_probs = params.n_probs;
    let settings = generation_settings(&params);
    let request = Request {
        input: Input::Prompt(prompt),
        params,
        response_format: parse_response_format(req.response_format.as_ref())?,
    };
    let timed = common::start(&state, &model, keep_alive, request).await?;
    let meta = NativeMeta {
        model: timed.model.clone(),
        n_probs,
        return_tokens: req.return_tokens,
        settings,
    };
    if req.stream {
        return Ok(sse(native_stream(timed, meta)));
    }
    let c = timed.collect().await?;
    let done = c.done.clone().expect("collected");
    let mut out = final_fields(&meta, &done);
    out["content"] = json!(c.text);
    out["tokens"] = if meta.return_tokens {
        json!(c.tokens)
    } else {
        json!([])
    };
    if n_probs > 0 {
        out["completion_probabilities"] = Value::Array(
            c.probs
                .iter()
                .map(|(t, id, p)| prob_entry(*id, t, p))
                .collect(),
        );
    }
    Ok(Json(out).into_response())
}

struct NativeMeta {
    model: String,
    n_probs: u32,
    return_tokens: bool,
    settings: Value,
}

fn generation_settings(p: &service::GenerateRequest) -> Value {
    let mut v = serde_json::to_value(&p.sampling).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "n_predict".into(),
            json!(p.max_tokens.map_or(-1, i64::from)),
        );
        o.insert("stop".into(), json!(p.stop));
        o.insert("ignore_eos".into(), json!(p.ignore_eos));
        o.insert("n_probs".into(), json!(p.n_probs));
        o.insert("cache_prompt".into(), json!(p.cache_prompt));
        o.insert("n_keep".into(), json!(p.n_keep));
    }
    v
}

fn prob_entry(id: i32, text: &str, p: &TokenProbs) -> Value {
    json!({
        "id": id,
        "token": text,
        "logprob": p.logprob,
        "bytes": text.as_bytes(),
        "top_logprobs": p.top.iter().map(|(tid, t, lp)| json!({
            "id": tid, "token": t, "logprob": lp, "bytes": t.as_bytes(),
        })).collect::<Vec<_>>(),
    })
}

/// The fields of llama-server's last (`stop: true`) message.
fn final_fields(meta: &NativeMeta, d: &Done) -> Value {
    let stop_type = match (&d.finish, &d.stop_word) {
        (_, Some(_)) => "word",
        (Finish::Stop | Finish::ToolCalls, None) => "eos",
        (Finish::Length, _) => "limit",
        (Finish::Cancelled, _) => "none",
    };
    json!({
        "index": 0,
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
    })
}

fn native_stream(
    timed: Timed,
    meta: NativeMeta,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    common::sse_events(
        timed,
        meta,
        Vec::new(),
        |meta, output| match output {
            Output::Text { text, token, probs } => {
                if text.is_empty() && !meta.return_tokens {
                    return Vec::new();
                }
                let tokens: Vec<i32> = if meta.return_tokens {
                    token.into_iter().collect()
                } else {
                    Vec::new()
                };
                let mut m = json!({
                    "index": 0, "content": text, "tokens": tokens, "stop": false, "id_slot": -1,
                });
                if meta.n_probs > 0
                    && let Some(p) = &probs
                {
                    m["completion_probabilities"] =
                        json!([prob_entry(token.unwrap_or(-1), &text, p)]);
                }
                vec![common::sse_json(&m)]
            }
            Output::Done(d) => vec![common::sse_json(&final_fields(meta, &d))],
            _ => Vec::new(),
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
    let name = common::model_name(state, model)?;
    let (entry, lease) =
        common::acquire(state, &name, None, common::deadline(&state.config())).await?;
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
    let (id, model) = lease(&state, req.model.as_deref()).await?;
    let template = state.models.template_choice(&id).await?;
    let mut chat = ChatInput {
        messages: req.messages,
        tools: super::openai::parse_tools(req.tools.as_deref())?,
        tool_choice: super::openai::parse_tool_choice(req.tool_choice.as_ref())?,
        template_kwargs: req.chat_template_kwargs.unwrap_or_default(),
        parallel_tool_calls: true,
        add_generation_prompt: req.add_generation_prompt.unwrap_or(true),
        continue_final_message: super::openai::continues(req.continue_final_message.as_ref()),
        ..Default::default()
    };
    service::ReasoningDefaults::from_config(&state.config().reasoning).apply(&mut chat);
    let prompt = service::generate::render_chat(&model, &template, chat)?;
    Ok(Json(json!({"prompt": prompt})))
}

// ---------------------------------------------------------------- /props

/// `GET /props`; the model's file path only for admin access (inference keys do not learn
/// the server's filesystem).
pub async fn props(
    State(state): State<SharedState>,
    access: Option<axum::Extension<crate::auth::Access>>,
    Query(q): Query<ModelQuery>,
) -> ApiResult<Json<Value>> {
    let (id, model) = lease(&state, q.model.as_deref()).await?;
    let info = model.handle.info();
    let template = state.models.template_choice(&id).await?;
    let format = model.chat_format(&template)?;
    let defaults = generation_settings(&service::GenerateRequest {
        sampling: state.sampling().params(),
        ..Default::default()
    });
    let mut settings = defaults;
    settings["n_ctx"] = json!(info.n_ctx_slot);
    settings["model"] = json!(id);
    let model_path = crate::auth::is_admin(access.as_ref()).then_some(&info.path);
    Ok(Json(json!({
        "default_generation_settings": settings,
        "total_slots": info.n_slots,
        "model_alias": id,
        "model_path": model_path,
        "chat_template": format.source(),
        "chat_template_origin": format.origin.to_string(),
        "bos_token": info.bos_token,
        "eos_token": info.eos_token,
        "modalities": {"vision": false, "audio": false},
        "build_info": super::openai::FINGERPRINT,
        "is_sleeping": false,
    })))
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
    let new = service::SamplingDefaults::from_params(&checked.sampling);
    *state.sampling.write().unwrap_or_else(|p| p.into_inner()) = new;
    Ok(Json(json!({"success": true})))
}

// ---------------------------------------------------------------- /slots

pub async fn slots(
    State(state): State<SharedState>,
    Query(q): Query<ModelQuery>,
) -> ApiResult<Json<Value>> {
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

/// `POST /slots/{id}?action=save|restore|erase`; files live under `<data>/slots/<model>/`.
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
        let dir = state.paths.data_dir.join("slots").join(sanitize(&model_id));
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
