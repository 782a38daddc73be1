//! Vertex AI's prediction protocol, as llama-server serves it when started with
//! `AIP_MODE=PREDICTION` (Google Cloud's custom-container contract): `POST` to
//! `AIP_PREDICT_ROUTE` (default `/predict`) a body `{"instances": [...]}`; each instance is
//! the body of another route, named by its `@requestFormat` (a camelCase alias such as
//! `chatCompletions`, or the path itself). The answer is `{"predictions": [...]}`, one
//! per instance in order: the route's JSON response, or its error object when it failed.
//!
//! A thin adapter: each instance is dispatched to the very route (handler, service call,
//! error shapes) that would answer it on its own, so there is no second chat path.

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::routes::Doc;
use crate::state::SharedState;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{Method, Request, header};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use tower::ServiceExt as _;

/// The `AIP_*` environment llama-server reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Vertex {
    /// `AIP_PREDICT_ROUTE`, default `/predict`.
    pub predict: String,
    /// `AIP_HEALTH_ROUTE`: another path for `/health`.
    pub health: Option<String>,
    /// `AIP_HTTP_PORT`: the port to listen on instead of the configured one.
    pub port: Option<u16>,
}

impl Vertex {
    /// `Some` when `AIP_MODE=PREDICTION`.
    pub fn from_env() -> Option<Self> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<Self> {
        if var("AIP_MODE").as_deref() != Some("PREDICTION") {
            return None;
        }
        let nonempty = |k| var(k).filter(|v| !v.trim().is_empty());
        Some(Vertex {
            predict: nonempty("AIP_PREDICT_ROUTE").unwrap_or_else(|| "/predict".into()),
            health: nonempty("AIP_HEALTH_ROUTE"),
            port: nonempty("AIP_HTTP_PORT").and_then(|p| p.trim().parse().ok()),
        })
    }
}

/// llama-server's alias of a route: `/v1/chat/completions` → `chatCompletions`,
/// `/apply-template` → `applyTemplate` (a leading `/v1` dropped, `/`, `-`, `_` start a
/// capital, a path parameter ends it).
fn alias(path: &str) -> String {
    let s = path.strip_prefix("/v1").unwrap_or(path);
    let s = s.strip_prefix('/').unwrap_or(s);
    let mut out = String::new();
    let mut cap = false;
    for c in s.chars() {
        match c {
            ':' | '{' => break,
            '/' | '-' | '_' => cap = true,
            c if cap => {
                out.extend(c.to_uppercase());
                cap = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// Adds the predict route (and the health alias) to `routes`, which it dispatches to.
/// The first route of an alias wins, as in llama-server (the table lists `/v1/…` first).
/// Only inference routes (those a deployment's own port serves) can be named: the key
/// checked is the one `/predict` needs, so an instance must not reach admin routes.
pub fn add(routes: Router<SharedState>, docs: &[Doc], v: &Vertex) -> Router<SharedState> {
    let inference = || docs.iter().filter(|d| d.method == "post" && d.per_model);
    let mut aliases: HashMap<String, &'static str> = HashMap::new();
    for d in inference() {
        aliases.entry(alias(d.path)).or_insert(d.path);
    }
    let paths: Vec<&'static str> = inference().map(|d| d.path).collect();
    let inner = routes
        .clone()
        .layer(axum::middleware::from_fn(crate::middleware::shape_errors));
    let table = Arc::new((aliases, paths));
    let mut out = routes.route(
        &v.predict,
        axum::routing::post(move |state: State<SharedState>, body: ApiJson<Value>| {
            predict(state, body, inner.clone(), table.clone())
        }),
    );
    if let Some(health) = &v.health {
        out = out.route(health, axum::routing::get(crate::api::native::health));
    }
    out
}

type Table = Arc<(HashMap<String, &'static str>, Vec<&'static str>)>;

async fn predict(
    State(state): State<SharedState>,
    ApiJson(body): ApiJson<Value>,
    inner: Router<SharedState>,
    table: Table,
) -> ApiResult<Json<Value>> {
    let Some(instances) = body.get("instances").and_then(Value::as_array) else {
        return Err(ApiError::invalid(
            "instances",
            "the body must include an array field named instances",
        ));
    };
    // Every instance is a generation or more: capped before any is dispatched.
    service::limits::check_instances(instances.len(), &state.config().limits)?;
    let router = inner.with_state(state);
    let runs = instances
        .iter()
        .map(|i| run_instance(router.clone(), &table, i.clone()));
    let predictions = futures_util::future::join_all(runs).await;
    Ok(Json(json!({ "predictions": predictions })))
}

/// One instance through its route: the route's JSON answer, success or error.
async fn run_instance(router: Router, table: &Table, instance: Value) -> Value {
    let (aliases, paths) = &**table;
    let Value::Object(mut payload) = instance else {
        return error("each instance must be a JSON object");
    };
    let Some(Value::String(format)) = payload.remove("@requestFormat") else {
        return error("each instance must include a string @requestFormat");
    };
    let Some(path) = aliases
        .get(&format)
        .copied()
        .or_else(|| paths.iter().copied().find(|p| *p == format))
    else {
        return error(&format!("no route for @requestFormat: {format}"));
    };
    // One JSON answer per instance: streams are not part of the protocol.
    if payload.contains_key("stream") {
        payload.insert("stream".into(), Value::Bool(false));
    }
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(Value::Object(payload).to_string()));
    let Ok(req) = req else {
        return error("cannot build the request");
    };
    let Ok(resp) = router.oneshot(req).await;
    match axum::body::to_bytes(resp.into_body(), usize::MAX).await {
        Ok(bytes) if bytes.is_empty() => Value::Null,
        Ok(bytes) => serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) => error(&format!("cannot read the route's answer: {e}")),
    }
}

/// An instance's error, in the shape routes give theirs.
fn error(message: &str) -> Value {
    json!({"error": {"code": 400, "message": message, "type": "invalid_request_error"}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_llama_servers() {
        assert_eq!(alias("/v1/chat/completions"), "chatCompletions");
        assert_eq!(alias("/apply-template"), "applyTemplate");
        assert_eq!(alias("/completion"), "completion");
        assert_eq!(alias("/api/models/{id}/load"), "apiModels");
    }

    #[test]
    fn it_is_on_only_in_prediction_mode() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            Vertex::from_vars(move |k| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            })
        };
        assert_eq!(env(&[]), None);
        assert_eq!(env(&[("AIP_MODE", "TRAINING")]), None);
        let v = env(&[("AIP_MODE", "PREDICTION"), ("AIP_HTTP_PORT", "9000")]).unwrap();
        assert_eq!(
            v,
            Vertex {
                predict: "/predict".into(),
                health: None,
                port: Some(9000)
            }
        );
    }
}
