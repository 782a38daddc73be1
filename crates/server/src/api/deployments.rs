//! Deployments over HTTP (seed 001 §3). The state machine is `service::Deployments`; this
//! module only maps requests to it and its deployments to JSON. A deployment's own port is
//! served by `crate::ports`.

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::SharedState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use service::Deployment;

/// A deployment on the wire (also the data of `deployment.*` events).
pub fn to_json(d: &Deployment) -> Value {
    json!({
        "id": d.id,
        "model": d.model,
        "params": d.params,
        "port": d.port,
        "bound_port": d.bound_port,
        "state": d.state,
        "error": d.error,
        "created_at": humantime::format_rfc3339_seconds(d.created_at).to_string(),
        "uptime_seconds": d.started.map(|s| s.elapsed().as_secs()),
        "restarts": d.restarts,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    pub model: String,
    /// A name for the deployment (default: a generated id).
    pub name: Option<String>,
    #[serde(default)]
    pub params: Map<String, Value>,
    /// A port of its own serving only this model (0 = any free port).
    pub port: Option<u16>,
}

pub async fn start(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<StartRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if let Some(p) = req.port
        && p != 0
        && p == state.config().server.port
    {
        return Err(ApiError::invalid("port", "is the server's own port"));
    }
    let d = state
        .deployments
        .start(service::StartRequest {
            model: req.model,
            name: req.name,
            params: req.params,
            port: req.port,
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(to_json(&d))))
}

pub async fn list(State(state): State<SharedState>) -> Json<Value> {
    let all: Vec<Value> = state.deployments.list().iter().map(to_json).collect();
    Json(json!({ "deployments": all }))
}

pub async fn stop(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(to_json(&state.deployments.stop(&id).await?)))
}

pub async fn restart(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(to_json(&state.deployments.restart(&id).await?)))
}

pub async fn remove(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    state.deployments.remove(&id).await?;
    Ok(Json(json!({"id": id, "deleted": true})))
}

pub async fn status(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let d = state.deployments.get(&id)?;
    let mut out = to_json(&d);
    out["model_state"] = json!(state.models.manager().state(&d.model));
    if let Some(m) = state.models.peek(&d.model) {
        out["slots"] = json!(m.handle.slots().await.ok());
        out["memory"] = json!(m.handle.info().memory);
        out["stats"] = json!(m.handle.stats());
    }
    out["tokens_served"] = json!(crate::metrics::Metrics::tokens_served(&state, &d.model));
    Ok(Json(out))
}

/// The log lines that name the deployment or its model.
pub async fn logs(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let d = state.deployments.get(&id)?;
    let lines: Vec<_> = state
        .logs
        .buffer
        .recent(tracing::Level::TRACE, 2000)
        .into_iter()
        .filter(|l| l.message.contains(&d.model) || l.message.contains(&d.id))
        .collect();
    Ok(Json(json!({"id": id, "model": d.model, "lines": lines})))
}
