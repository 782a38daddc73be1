//! Deployments (seed 001 §3): a named, started model with its load parameters, as a thin
//! layer over the model manager (a deployment *is* a loaded model; stopping it unloads the
//! model). A periodic health check marks a deployment failed when its model failed or no
//! longer answers.

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::{AppState, SharedState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use manager::ModelState;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    Starting,
    Running,
    Stopped,
    Failed,
}

#[derive(Debug, Clone)]
struct Deployment {
    id: String,
    model: String,
    params: Map<String, Value>,
    state: DeploymentState,
    error: Option<String>,
    created_at: SystemTime,
    started: Option<Instant>,
    restarts: u32,
}

impl Deployment {
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "model": self.model,
            "params": self.params,
            "state": self.state,
            "error": self.error,
            "created_at": humantime::format_rfc3339_seconds(self.created_at).to_string(),
            "uptime_seconds": self.started.map(|s| s.elapsed().as_secs()),
            "restarts": self.restarts,
        })
    }
}

#[derive(Default)]
pub struct Deployments {
    all: Mutex<BTreeMap<String, Deployment>>,
}

impl Deployments {
    fn get(&self, id: &str) -> ApiResult<Deployment> {
        self.all
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("no deployment '{id}'")))
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Deployment)) {
        if let Some(d) = self
            .all
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(id)
        {
            f(d);
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    pub model: String,
    /// A name for the deployment (default: a generated id).
    pub name: Option<String>,
    #[serde(default)]
    pub params: Map<String, Value>,
}

async fn start_model(state: &SharedState, id: &str) {
    let Ok(d) = state.deployments.get(id) else {
        return;
    };
    state.deployments.update(id, |d| {
        d.state = DeploymentState::Starting;
        d.error = None;
    });
    match state.models.load(&d.model, &d.params).await {
        Ok(_) => state.deployments.update(id, |d| {
            d.state = DeploymentState::Running;
            d.started = Some(Instant::now());
        }),
        Err(e) => state.deployments.update(id, |d| {
            d.state = DeploymentState::Failed;
            d.error = Some(e.to_string());
        }),
    }
    if let Ok(d) = state.deployments.get(id) {
        state.events.emit("deployment.updated", d.json());
    }
}

pub async fn start(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<StartRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let entry = state.models.resolve(&req.model)?;
    // Check the parameters now, so a typo is a 400 and not a failed deployment.
    state.models.spec_for(&entry, &req.params)?;
    let id = match req.name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() => {
            if n.len() > 64
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(ApiError::invalid(
                    "name",
                    "use up to 64 letters, digits, '-', '_', '.'",
                ));
            }
            n.to_string()
        }
        _ => format!("dep-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
    };
    {
        let mut all = state
            .deployments
            .all
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if all
            .get(&id)
            .is_some_and(|d| d.state != DeploymentState::Stopped)
        {
            return Err(ApiError::conflict(format!(
                "deployment '{id}' exists and is not stopped"
            )));
        }
        if let Some(other) = all.values().find(|d| {
            d.model == entry.id
                && matches!(
                    d.state,
                    DeploymentState::Running | DeploymentState::Starting
                )
        }) {
            return Err(ApiError::conflict(format!(
                "model '{}' is already deployed as '{}'",
                entry.id, other.id
            )));
        }
        all.insert(
            id.clone(),
            Deployment {
                id: id.clone(),
                model: entry.id.clone(),
                params: req.params,
                state: DeploymentState::Starting,
                error: None,
                created_at: SystemTime::now(),
                started: None,
                restarts: 0,
            },
        );
    }
    let st = state.clone();
    let did = id.clone();
    tokio::spawn(async move { start_model(&st, &did).await });
    Ok((
        StatusCode::ACCEPTED,
        Json(state.deployments.get(&id)?.json()),
    ))
}

pub async fn list(State(state): State<SharedState>) -> Json<Value> {
    let all = state
        .deployments
        .all
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    Json(json!({"deployments": all.values().map(Deployment::json).collect::<Vec<_>>()}))
}

pub async fn action(
    State(state): State<SharedState>,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let d = state.deployments.get(&id)?;
    match action.as_str() {
        "stop" => {
            match state.models.unload(&d.model) {
                Ok(_) => {}
                Err(service::ServiceError::Manager(manager::ManagerError::NotLoaded {
                    ..
                })) => {}
                Err(e) => return Err(e.into()),
            }
            state.deployments.update(&id, |d| {
                d.state = DeploymentState::Stopped;
                d.started = None;
            });
        }
        "restart" => {
            match state.models.unload(&d.model) {
                Ok(_) => {}
                Err(service::ServiceError::Manager(manager::ManagerError::NotLoaded {
                    ..
                })) => {}
                Err(e) => return Err(e.into()),
            }
            state.deployments.update(&id, |d| d.restarts += 1);
            start_model(&state, &id).await;
        }
        other => {
            return Err(ApiError::not_found(format!(
                "unknown deployment action '{other}' (stop or restart)"
            )));
        }
    }
    let d = state.deployments.get(&id)?;
    state.events.emit("deployment.updated", d.json());
    Ok(Json(d.json()))
}

pub async fn status(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let d = state.deployments.get(&id)?;
    let mut out = d.json();
    out["model_state"] = json!(state.models.manager().state(&d.model));
    if let Some(m) = state.models.peek(&d.model) {
        out["slots"] = json!(m.handle.slots().await.ok());
        out["memory"] = json!(m.handle.info().memory);
        out["stats"] = json!(m.handle.stats());
    }
    out["tokens_served"] = json!(state.metrics.tokens_served(&d.model));
    Ok(Json(out))
}

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
        .filter(|l| l.message.contains(&d.model))
        .collect();
    Ok(Json(json!({"id": id, "model": d.model, "lines": lines})))
}

/// Every `every`, checks each running deployment: its model must be loaded and answer.
pub fn spawn_health_check(state: Weak<AppState>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(state) = state.upgrade() else {
                return;
            };
            let running: Vec<Deployment> = state
                .deployments
                .all
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .filter(|d| d.state == DeploymentState::Running)
                .cloned()
                .collect();
            for d in running {
                let problem = match state.models.manager().state(&d.model) {
                    ModelState::Failed { reason } => Some(reason),
                    ModelState::Unloaded => Some("the model was unloaded".to_string()),
                    ModelState::Loading { .. } => None,
                    ModelState::Loaded => match state.models.peek(&d.model) {
                        Some(m) => {
                            match tokio::time::timeout(Duration::from_secs(10), m.handle.slots())
                                .await
                            {
                                Ok(Ok(_)) => None,
                                Ok(Err(e)) => Some(e.to_string()),
                                Err(_) => {
                                    Some("the model did not answer a health check in 10 s".into())
                                }
                            }
                        }
                        None => Some("the model is not loaded".into()),
                    },
                };
                if let Some(reason) = problem {
                    tracing::warn!(deployment = %d.id, model = %d.model, %reason, "deployment failed its health check");
                    state.deployments.update(&d.id, |d| {
                        d.state = DeploymentState::Failed;
                        d.error = Some(reason);
                        d.started = None;
                    });
                    if let Ok(d) = state.deployments.get(&d.id) {
                        state.events.emit("deployment.failed", d.json());
                    }
                }
            }
        }
    });
}
