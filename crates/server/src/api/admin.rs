//! The management API for models (PRD M4.5): listing with state and user settings,
//! details, load/unload, per-model launch config, alias, favorite, custom template,
//! capabilities, rescans and memory estimates. One handler per operation, each declared in
//! `routes.rs`; a model id holding `/` (`org/repo/file`) travels percent-encoded in one
//! segment (`routes::encode_model_ids` keeps the unencoded form working).

use super::openai::state_name;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::SharedState;
use axum::Json;
use axum::extract::{Path, State};
use catalog::{CAPABILITIES, ModelEntry};
use manager::ModelState;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use store::ModelSettings;

fn entry_json(state: &SharedState, m: &ModelEntry, settings: &ModelSettings) -> Value {
    let status = state
        .models
        .manager()
        .statuses()
        .into_iter()
        .find(|s| s.id == m.id);
    let st = status
        .as_ref()
        .map_or(ModelState::Unloaded, |s| s.state.clone());
    let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("state".into(), json!(state_name(&st)));
        if let ModelState::Loading { progress } = st {
            o.insert("progress".into(), json!(progress));
        }
        if let ModelState::Failed { reason } = &st {
            o.insert("error".into(), json!(reason));
        }
        // Ollama's `expires_at` as seconds: when an idle model's keep-alive runs out.
        o.insert(
            "expires_in_seconds".into(),
            json!(status.and_then(|s| s.expires_in_seconds)),
        );
        o.insert("alias".into(), json!(settings.alias));
        o.insert("favorite".into(), json!(settings.favorite));
        o.insert(
            "has_custom_template".into(),
            json!(settings.chat_template.is_some()),
        );
        o.insert(
            "launch_params".into(),
            Value::Object(settings.launch_params.clone()),
        );
        // The model's worker process (`models.isolation = "process"`): pid and resident memory.
        let worker = state
            .models
            .peek(&m.id)
            .and_then(|loaded| loaded.handle.process());
        o.insert("worker".into(), json!(worker));
        // A running benchmark holds the model (it counts as in use, never evicted).
        let bench = state.bench.current().filter(|r| r.model == m.id);
        o.insert("benchmark".into(), json!(bench.map(|r| r.run_id)));
    }
    v
}

pub async fn list(State(state): State<SharedState>) -> Json<Value> {
    let catalog = state.models.catalog();
    let settings = state.models.all_settings().await;
    let models: Vec<Value> = catalog
        .models
        .iter()
        .map(|m| {
            let stored = settings
                .get(&m.id)
                .cloned()
                .unwrap_or_else(|| ModelSettings::none(&m.id));
            entry_json(&state, m, &stored)
        })
        .collect();
    Json(json!({
        "models": models,
        "skipped": catalog.skipped,
    }))
}

pub async fn scan(State(state): State<SharedState>) -> ApiResult<Json<Value>> {
    let s = state.clone();
    let report = tokio::task::spawn_blocking(move || s.models.rescan())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    state.events.emit(
        "models.scanned",
        json!({"models": report.models.len(), "skipped": report.skipped.len()}),
    );
    Ok(Json(json!({
        "models": report.models.len(),
        "skipped": report.skipped,
    })))
}

/// The model a route's `{id}` names (id, alias or path; axum has already percent-decoded
/// it, so `org%2Frepo%2Ffile` is `org/repo/file`).
async fn model(state: &SharedState, id: &str) -> ApiResult<ModelEntry> {
    Ok(state.models.resolve(id).await?)
}

/// `GET /api/models/{id}/details`
pub async fn get_details(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let entry = model(&state, &id).await?;
    details(&state, &entry).await
}

/// `GET /api/models/{id}/config`
pub async fn get_config(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let entry = model(&state, &id).await?;
    Ok(Json(json!({
        "model": entry.id,
        "launch_params": state.models.settings(&entry.id).await.launch_params,
        "effective": state.models.spec_for(&entry, &Map::new()).await.map_err(ApiError::from)?,
        "keys": service::launch_param_keys(),
    })))
}

/// `GET /api/models/{id}/template`
pub async fn get_template(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let entry = model(&state, &id).await?;
    template_get(&state, &entry).await
}

/// `GET /api/models/{id}/capabilities`
pub async fn get_capabilities(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let entry = model(&state, &id).await?;
    let detected = state.models.capabilities(&entry).await;
    let stored = state.models.settings(&entry.id).await.capabilities;
    Ok(Json(json!({
        "model": entry.id,
        "detected": detected,
        "override": stored,
        "effective": stored.clone().unwrap_or(detected),
    })))
}

/// `POST /api/models/{id}/load`
pub async fn load(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let entry = model(&state, &id).await?;
    let params: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        let v: Value = crate::extract::parse(&body)?;
        match v {
            Value::Object(mut o) => match o.remove("params") {
                Some(Value::Object(p)) => p,
                Some(_) => return Err(ApiError::invalid("params", "must be an object")),
                None => o,
            },
            _ => return Err(ApiError::bad_request("the body must be a JSON object")),
        }
    };
    let t0 = std::time::Instant::now();
    state.models.load(&entry.id, &params).await?;
    let info = state
        .models
        .peek(&entry.id)
        .map(|m| m.handle.info().clone());
    Ok(Json(json!({
        "model": entry.id,
        "state": "loaded",
        "load_ms": t0.elapsed().as_millis() as u64,
        "info": info,
    })))
}

/// `POST /api/models/{id}/unload`
pub async fn unload(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let entry = model(&state, &id).await?;
    state.models.unload(&entry.id).await?;
    Ok(Json(json!({"model": entry.id, "state": "unloaded"})))
}

#[derive(Deserialize)]
struct AliasBody {
    alias: Option<String>,
}

#[derive(Deserialize)]
struct FavoriteBody {
    favorite: bool,
}

#[derive(Deserialize)]
struct TemplateBody {
    template: String,
}

#[derive(Deserialize)]
struct CapabilitiesBody {
    capabilities: Option<Vec<String>>,
}

/// `PUT /api/models/{id}/config`
pub async fn put_config(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let entry = model(&state, &id).await?;
    let v: Value = crate::extract::parse(&body)?;
    let params = match v {
        Value::Object(mut o) => match o.remove("launch_params") {
            Some(Value::Object(p)) => p,
            Some(_) => return Err(ApiError::invalid("launch_params", "must be an object")),
            None => o,
        },
        _ => return Err(ApiError::bad_request("the body must be a JSON object")),
    };
    // Validate against the defaults before storing.
    let mut spec = state.models.defaults();
    service::apply_overrides(&mut spec, &params)?;
    let (id, stored) = (entry.id.clone(), params.clone());
    state
        .models
        .with_store(move |s| s.set_launch_params(&id, &stored))
        .await?;
    Ok(Json(json!({"model": entry.id, "launch_params": params})))
}

/// `PUT /api/models/{id}/alias`
pub async fn put_alias(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let entry = model(&state, &id).await?;
    let b: AliasBody = crate::extract::parse(&body)?;
    let alias = b.alias.as_deref().map(str::trim).filter(|a| !a.is_empty());
    if let Some(a) = alias
        && let Some(other) = state.models.catalog().find(a)
        && other.id != entry.id
    {
        return Err(ApiError::conflict(format!(
            "'{a}' is already the id of another model"
        )));
    }
    let (id, new) = (entry.id.clone(), alias.map(str::to_owned));
    state
        .models
        .with_store(move |s| s.set_alias(&id, new.as_deref()))
        .await?;
    Ok(Json(json!({"model": entry.id, "alias": alias})))
}

/// `PUT /api/models/{id}/favorite`
pub async fn put_favorite(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let entry = model(&state, &id).await?;
    let b: FavoriteBody = crate::extract::parse(&body)?;
    let id = entry.id.clone();
    state
        .models
        .with_store(move |s| s.set_favorite(&id, b.favorite))
        .await?;
    Ok(Json(json!({"model": entry.id, "favorite": b.favorite})))
}

/// `PUT /api/models/{id}/template`
pub async fn put_template(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let entry = model(&state, &id).await?;
    let b: TemplateBody = crate::extract::parse(&body)?;
    // Refuse a template that does not compile, before storing it.
    chat::ChatTemplate::new(&b.template).map_err(|e| ApiError::invalid("template", e))?;
    let (id, template) = (entry.id.clone(), b.template);
    state
        .models
        .with_store(move |s| s.set_chat_template(&id, Some(&template)))
        .await?;
    Ok(Json(json!({"model": entry.id, "source": "custom"})))
}

/// `PUT /api/models/{id}/capabilities`
pub async fn put_capabilities(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let entry = model(&state, &id).await?;
    let b: CapabilitiesBody = crate::extract::parse(&body)?;
    if let Some(caps) = &b.capabilities {
        for c in caps {
            if !CAPABILITIES.contains(&c.as_str()) {
                return Err(ApiError::invalid(
                    "capabilities",
                    format!(
                        "unknown capability '{c}' (known: {})",
                        CAPABILITIES.join(", ")
                    ),
                ));
            }
        }
    }
    let (id, caps) = (entry.id.clone(), b.capabilities.clone());
    state
        .models
        .with_store(move |s| s.set_capabilities(&id, caps.as_deref()))
        .await?;
    Ok(Json(json!({"model": entry.id, "override": b.capabilities})))
}

/// `DELETE /api/models/{id}/template`
pub async fn delete_template(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let entry = model(&state, &id).await?;
    let id = entry.id.clone();
    state
        .models
        .with_store(move |s| s.set_chat_template(&id, None))
        .await?;
    Ok(Json(json!({"model": entry.id, "source": "model"})))
}

async fn template_get(state: &SharedState, entry: &ModelEntry) -> ApiResult<Json<Value>> {
    let custom = state.models.settings(&entry.id).await.chat_template;
    let path = entry.path.clone();
    let file =
        tokio::task::spawn_blocking(move || gguf::read_path(&path, &gguf::ReadOptions::default()))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(|e| ApiError::bad_request(format!("reading the model file: {e}")))?;
    let embedded = file.chat_template().map(str::to_owned);
    let in_use = match state.models.peek(&entry.id) {
        Some(m) => {
            let f = m.chat_format(&state.models.template_choice(&entry.id).await?)?;
            Some(json!({"origin": f.origin.to_string(), "template": f.source()}))
        }
        None => None,
    };
    Ok(Json(json!({
        "model": entry.id,
        "custom": custom,
        "embedded": embedded,
        "source": if custom.is_some() { "custom" } else if embedded.is_some() { "model" } else { "builtin" },
        "in_use": in_use,
    })))
}

async fn details(state: &SharedState, entry: &ModelEntry) -> ApiResult<Json<Value>> {
    let path = entry.path.clone();
    let file =
        tokio::task::spawn_blocking(move || gguf::read_path(&path, &gguf::ReadOptions::default()))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(|e| ApiError::bad_request(format!("reading the model file: {e}")))?;
    let spec = state.models.spec_for(entry, &Map::new()).await.ok();
    let estimate = spec
        .as_ref()
        .and_then(|s| service::estimate(&s.model.path, &s.context).ok());
    let loaded = state
        .models
        .peek(&entry.id)
        .map(|m| m.handle.info().clone());
    Ok(Json(json!({
        "model": entry_json(state, entry, &state.models.settings(&entry.id).await),
        "gguf": file,
        "parameters": file.parameter_count(),
        "chat_template": file.chat_template(),
        "memory_estimate": estimate,
        "load_spec": spec,
        "loaded": loaded,
        "capabilities": state.models.capabilities(entry).await,
    })))
}

#[derive(Deserialize)]
pub struct EstimateRequest {
    pub model: String,
    #[serde(default)]
    pub params: Map<String, Value>,
}

pub async fn vram_estimate(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<EstimateRequest>,
) -> ApiResult<Json<Value>> {
    let entry = state.models.resolve(&req.model).await?;
    let spec = state.models.spec_for(&entry, &req.params).await?;
    let s = spec.clone();
    let est = tokio::task::spawn_blocking(move || service::estimate(&s.model.path, &s.context))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let devices = service::devices();
    Ok(Json(json!({
        "model": entry.id,
        "estimate": est,
        "load_spec": spec,
        "devices": devices,
    })))
}
