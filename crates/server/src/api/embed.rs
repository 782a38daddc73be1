//! Everything that is not chat or plain completion: embeddings (OpenAI `/v1/embeddings`
//! and llama-server's `/embedding`), reranking (`/reranking`, `/rerank`, `/v1/rerank`),
//! fill-in-the-middle (`/infill`) and LoRA adapter scales (`/lora-adapters`).

use super::common;
use super::native::{CompletionRequest, ModelQuery, lease};
use super::prompt::PromptField;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::SharedState;
use axum::Json;
use axum::extract::{Query, State};
use axum::response::Response;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use service::{
    EmbedRequest, EmbeddingValues, InfillChunk, InfillPrompt, LoraScale, Normalize, Pooling, Prompt,
};

/// `input`/`content`: every prompt shape of [`PromptField`]. An empty text is embedded when
/// it has tokens (BOS/EOS), as llama-server; the engine refuses inputs with none.
fn inputs(v: PromptField, field: &str) -> ApiResult<Vec<Prompt>> {
    v.into_prompts(field)
}

fn pooling(v: Option<&str>) -> ApiResult<Option<Pooling>> {
    Ok(match v {
        None => None,
        Some("none") => Some(Pooling::None),
        Some("mean") => Some(Pooling::Mean),
        Some("cls") => Some(Pooling::Cls),
        Some("last") => Some(Pooling::Last),
        Some("rank") => Some(Pooling::Rank),
        Some(other) => {
            return Err(ApiError::invalid(
                "pooling",
                format!("unknown pooling '{other}' (none, mean, cls, last, rank)"),
            ));
        }
    })
}

#[derive(Debug, Deserialize)]
pub struct OpenAiEmbeddingRequest {
    pub model: Option<String>,
    pub input: PromptField,
    pub encoding_format: Option<String>,
    pub dimensions: Option<u32>,
    pub pooling: Option<String>,
    pub keep_alive: Option<Value>,
}

/// `/v1/embeddings` (and `/embeddings`, LM Studio's `/api/v0/embeddings`). OpenAI's shape
/// has one vector per input, so pooling `none` (asked for, or the model's) is refused with
/// 400 before any work; on the bare `/embeddings`, which llama-server answers in its own
/// shape, per-token rows come back in that shape (as `/embedding`'s).
pub async fn openai_embeddings(
    State(state): State<SharedState>,
    uri: axum::http::Uri,
    ApiJson(req): ApiJson<OpenAiEmbeddingRequest>,
) -> ApiResult<Json<Value>> {
    let bare = uri.path() == "/embeddings";
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "encoding_format",
                format!("unknown format '{other}' (float or base64)"),
            ));
        }
    };
    let inputs = inputs(req.input, "input")?;
    let pooling = pooling(req.pooling.as_deref())?;
    let keep_alive = common::keep_alive(req.keep_alive.as_ref())?;
    let entry = common::pick(&state, req.model.as_deref()).await?;
    let ticket = state.models.admit()?;
    let deadline = common::deadline(&state.config());
    let (entry, model) = common::acquire_entry(&state, entry, keep_alive, deadline).await?;
    let req_embed = EmbedRequest {
        inputs,
        pooling,
        normalize: Normalize::Euclidean,
        pooled_only: !bare,
        ..Default::default()
    };
    let out = service::embed(&model, req_embed, ticket).await?;
    if out
        .iter()
        .any(|e| matches!(e.values, EmbeddingValues::PerToken(_)))
    {
        return Ok(Json(native_embeddings(out)));
    }
    let mut n_tokens = 0u64;
    let mut data = Vec::with_capacity(out.len());
    for e in out {
        n_tokens += u64::from(e.n_tokens);
        let EmbeddingValues::Pooled(mut v) = e.values else {
            return Err(ApiError::internal("expected a pooled embedding"));
        };
        if let Some(d) = req.dimensions {
            truncate_dimensions(&mut v, d)?;
        }
        let embedding = if base64 {
            let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
            json!(base64::engine::general_purpose::STANDARD.encode(bytes))
        } else {
            json!(v)
        };
        data.push(json!({"object": "embedding", "index": e.index, "embedding": embedding}));
    }
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": entry.id,
        "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
    })))
}

/// `dimensions` (OpenAI's and Ollama's): the first `d` values, renormalised (Matryoshka-style
/// truncation).
pub(crate) fn truncate_dimensions(v: &mut Vec<f32>, d: u32) -> ApiResult<()> {
    if d == 0 || d as usize > v.len() {
        return Err(ApiError::invalid(
            "dimensions",
            format!("must be between 1 and {}", v.len()),
        ));
    }
    v.truncate(d as usize);
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct NativeEmbeddingRequest {
    pub model: Option<String>,
    pub content: Option<PromptField>,
    pub input: Option<PromptField>,
    /// llama-server's `embd_normalize`: -1 none, 0 max-abs, 1 taxicab, 2 euclidean, >2 p-norm.
    pub embd_normalize: Option<i32>,
    pub pooling: Option<String>,
}

/// llama-server's `/embedding`: `[{"index": i, "embedding": [[...], ...]}]`, one row per
/// token with pooling `none`, else one row.
pub async fn native_embedding(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<NativeEmbeddingRequest>,
) -> ApiResult<Json<Value>> {
    let content = req
        .content
        .or(req.input)
        .ok_or_else(|| ApiError::invalid("content", "is required"))?;
    let inputs = inputs(content, "content")?;
    let pooling = pooling(req.pooling.as_deref())?;
    let normalize = Normalize::from_llama(req.embd_normalize.unwrap_or(2));
    let entry = common::pick(&state, req.model.as_deref()).await?;
    let ticket = state.models.admit()?;
    let (_, model) =
        common::acquire_entry(&state, entry, None, common::deadline(&state.config())).await?;
    let req_embed = EmbedRequest {
        inputs,
        pooling,
        normalize,
        ..Default::default()
    };
    let out = service::embed(&model, req_embed, ticket).await?;
    Ok(Json(native_embeddings(out)))
}

/// llama-server's own embeddings shape: `[{"index", "embedding": [[...], ...]}]`.
fn native_embeddings(out: Vec<service::Embedding>) -> Value {
    Value::Array(
        out.into_iter()
            .map(|e| {
                let rows = match e.values {
                    EmbeddingValues::Pooled(v) => json!([v]),
                    EmbeddingValues::PerToken(rows) => json!(rows),
                };
                json!({"index": e.index, "embedding": rows})
            })
            .collect(),
    )
}

#[derive(Debug, Deserialize)]
pub struct RerankRequest {
    pub model: Option<String>,
    pub query: String,
    /// Jina/Cohere's field; TEI's is `texts` (and then TEI's response shape).
    pub documents: Option<Value>,
    pub texts: Option<Value>,
    pub top_n: Option<usize>,
    #[serde(default)]
    pub return_text: bool,
}

/// The documents of a rerank request: a non-empty list of strings (or `{"text"}` objects).
fn documents(field: &str, v: Option<&Value>) -> ApiResult<Vec<String>> {
    let list = v
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| ApiError::invalid(field, "must be a non-empty list of strings"))?;
    list.iter()
        .enumerate()
        .map(|(i, d)| match d {
            Value::String(s) => Ok(s.clone()),
            Value::Object(o) => o
                .get("text")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| ApiError::invalid(&format!("{field}[{i}]"), "needs a text")),
            _ => Err(ApiError::invalid(
                &format!("{field}[{i}]"),
                "must be a string",
            )),
        })
        .collect()
}

/// `/rerank` (and `/reranking`, `/v1/rerank`): Jina's shape (`{query, documents}` →
/// `{results: [{index, relevance_score}]}`), or TEI's (`{query, texts}` → `[{index,
/// score}]`, with `text` when `return_text`), as llama-server tells them apart.
pub async fn rerank(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<RerankRequest>,
) -> ApiResult<Json<Value>> {
    let tei = req.texts.is_some() && req.documents.is_none();
    let docs = if tei {
        documents("texts", req.texts.as_ref())?
    } else {
        documents("documents", req.documents.as_ref())?
    };
    service::limits::check_documents(docs.len(), &state.config().limits)?;
    let (id, model) = lease(&state, req.model.as_deref()).await?;
    let mut scores = model.handle.rerank(req.query.clone(), docs.clone()).await?;
    let n_tokens: u64 = scores.iter().map(|s| u64::from(s.n_tokens)).sum();
    scores.sort_by(|a, b| b.score.total_cmp(&a.score));
    if let Some(n) = req.top_n {
        scores.truncate(n);
    }
    if tei {
        return Ok(Json(Value::Array(
            scores
                .iter()
                .map(|s| {
                    let mut r = json!({"index": s.index, "score": s.score});
                    if req.return_text {
                        r["text"] = json!(docs[s.index]);
                    }
                    r
                })
                .collect(),
        )));
    }
    let results: Vec<Value> = scores
        .iter()
        .map(|s| {
            let mut r = json!({"index": s.index, "relevance_score": s.score});
            if req.return_text {
                r["document"] = json!({"text": docs[s.index]});
            }
            r
        })
        .collect();
    Ok(Json(json!({
        "model": id,
        "object": "list",
        "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
        "results": results,
    })))
}

#[derive(Debug, Deserialize)]
pub struct InfillRequest {
    #[serde(default)]
    pub input_prefix: String,
    #[serde(default)]
    pub input_suffix: String,
    #[serde(default)]
    pub input_extra: Vec<InfillChunk>,
    #[serde(flatten)]
    pub rest: CompletionRequestNoPrompt,
}

/// `/completion`'s fields, with `prompt` optional (the text right before the cursor).
#[derive(Debug, Deserialize)]
pub struct CompletionRequestNoPrompt {
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

pub async fn infill(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<InfillRequest>,
) -> ApiResult<Response> {
    let infill = InfillPrompt {
        input_prefix: req.input_prefix,
        input_suffix: req.input_suffix,
        input_extra: req.input_extra,
        prompt: req.rest.prompt.unwrap_or_default(),
    };
    // Reuse /completion's handling with the infill prompt in place of a text prompt.
    let mut other = req.rest.other;
    other.insert("prompt".into(), json!(""));
    let completion: CompletionRequest = serde_json::from_value(Value::Object(other))
        .map_err(|e| ApiError::bad_request(format!("invalid request: {e}")))?;
    super::native::completion_with_prompt(state, completion, Prompt::Infill(infill)).await
}

/// `GET /lora-adapters`: `[{id, path, scale}]` as llama-server; `path` only for admin access.
pub async fn lora_list(
    State(state): State<SharedState>,
    access: Option<axum::Extension<crate::auth::Access>>,
    Query(q): Query<ModelQuery>,
) -> ApiResult<Json<Value>> {
    let (_, model) = lease(&state, q.model.as_deref()).await?;
    let adapters = model.handle.lora_adapters().await?;
    Ok(Json(lora_json(
        &adapters,
        crate::auth::is_admin(access.as_ref()),
    )))
}

/// The adapters as JSON, without their file paths unless for an admin.
fn lora_json(adapters: &[service::engine_types::LoraAdapterInfo], admin: bool) -> Value {
    let mut v = json!(adapters);
    if !admin && let Some(list) = v.as_array_mut() {
        for a in list.iter_mut().filter_map(Value::as_object_mut) {
            a.remove("path");
        }
    }
    v
}

pub async fn lora_set(
    State(state): State<SharedState>,
    Query(q): Query<ModelQuery>,
    ApiJson(scales): ApiJson<Vec<LoraScale>>,
) -> ApiResult<Json<Value>> {
    let (_, model) = lease(&state, q.model.as_deref()).await?;
    model.handle.set_lora_scales(scales).await?;
    let adapters = model.handle.lora_adapters().await?;
    // Admin only (`auth::required_access`).
    Ok(Json(lora_json(&adapters, true)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use service::engine_types::LoraAdapterInfo;

    #[test]
    fn lora_paths_only_for_admins() {
        let adapters = [LoraAdapterInfo {
            id: 0,
            path: "/secret/models/style.gguf".into(),
            scale: 1.0,
        }];
        let shown = lora_json(&adapters, false);
        assert_eq!(shown, json!([{"id": 0, "scale": 1.0}]));
        let admin = lora_json(&adapters, true);
        assert_eq!(admin[0]["path"], "/secret/models/style.gguf");
    }
}
