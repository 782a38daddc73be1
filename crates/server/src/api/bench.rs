//! Benchmarks over HTTP (PRD M7): `POST /api/bench/run` starts one run in the background
//! (one at a time: a second gets 409), progress goes out as `bench.*` events on
//! `/ws/events` and `/ws/bench`; results are stored in SQLite and listed, compared and
//! deleted through `/api/bench/results`.

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::SharedState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use service::BenchParams;
use service::bench::BenchRequest;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    pub model: String,
    #[serde(default = "d512")]
    pub n_prompt: u32,
    #[serde(default = "d128")]
    pub n_gen: u32,
    #[serde(default = "d5")]
    pub reps: u32,
    #[serde(default = "d2048")]
    pub n_batch: u32,
    #[serde(default = "d512")]
    pub n_ubatch: u32,
    pub n_ctx: Option<u32>,
    pub threads: Option<u32>,
    /// Measure with this many GPU layers (the model is reloaded with them); without it, the
    /// model as it is loaded.
    pub n_gpu_layers: Option<u32>,
}

fn d512() -> u32 {
    512
}
fn d128() -> u32 {
    128
}
fn d5() -> u32 {
    5
}
fn d2048() -> u32 {
    2048
}

/// `POST /api/bench/run`: starts the service's runner; 202 with the run, 409 if one runs.
pub async fn run(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<RunRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let entry = state.models.resolve(&req.model).await?;
    let params = BenchParams {
        n_prompt: req.n_prompt,
        n_gen: req.n_gen,
        reps: req.reps,
        n_batch: req.n_batch,
        n_ubatch: req.n_ubatch,
        n_ctx: req.n_ctx,
        threads: req.threads.unwrap_or_else(service::physical_cores),
        n_gpu_layers: req.n_gpu_layers.unwrap_or(0),
    };
    let mut load = serde_json::Map::new();
    if let Some(n) = req.n_gpu_layers {
        load.insert("n_gpu_layers".into(), json!(n));
    }
    let run = state.bench.start(BenchRequest {
        entry,
        params,
        load,
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"status": "running", "run": run})),
    ))
}

#[derive(Debug, Deserialize)]
pub struct ResultsQuery {
    pub model: Option<String>,
    /// `compare=ID1,ID2`: the two runs side by side with ratios.
    pub compare: Option<String>,
}

fn run_json(r: &store::BenchRun) -> Value {
    json!({
        "id": r.id,
        "model": r.model_id,
        "created_at": r.created_at,
        "params": r.params,
        "results": r.results,
    })
}

pub async fn results(
    State(state): State<SharedState>,
    Query(q): Query<ResultsQuery>,
) -> ApiResult<Json<Value>> {
    let model = q.model.clone();
    let runs = state
        .models
        .with_store(move |s| s.bench_runs(model.as_deref()))
        .await?
        .unwrap_or_default();
    if let Some(c) = q.compare {
        let ids: Vec<i64> = c
            .split(',')
            .map(|s| s.trim().parse::<i64>())
            .collect::<Result<_, _>>()
            .map_err(|_| ApiError::invalid("compare", "must be two run ids: ID1,ID2"))?;
        let [a, b] = ids[..] else {
            return Err(ApiError::invalid("compare", "must be two run ids: ID1,ID2"));
        };
        let all = state
            .models
            .with_store(|s| s.bench_runs(None))
            .await?
            .unwrap_or_default();
        let find = |id: i64| {
            all.iter()
                .find(|r| r.id == id)
                .ok_or_else(|| ApiError::not_found(format!("no benchmark run {id}")))
        };
        let (ra, rb) = (find(a)?, find(b)?);
        return Ok(Json(json!({
            "a": run_json(ra),
            "b": run_json(rb),
            "ratios": ratios(&ra.results, &rb.results),
        })));
    }
    Ok(Json(json!({
        "runs": runs.iter().map(run_json).collect::<Vec<_>>(),
        "running": state.bench.current(),
    })))
}

/// `b / a` of the mean tokens/s of each test both runs have.
fn ratios(a: &Value, b: &Value) -> Value {
    let tests = |v: &Value| -> Vec<(String, f64)> {
        v.as_array()
            .map(|arr| {
                arr.iter()
                    .filter_map(|r| Some((r["test"].as_str()?.to_string(), r["avg_ts"].as_f64()?)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let ta = tests(a);
    let tb = tests(b);
    let mut out = serde_json::Map::new();
    for (name, va) in &ta {
        if let Some((_, vb)) = tb.iter().find(|(n, _)| n == name)
            && *va > 0.0
        {
            out.insert(name.clone(), json!(vb / va));
        }
    }
    Value::Object(out)
}

pub async fn delete(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::invalid("id", "must be a run id"))?;
    let deleted = state
        .models
        .with_store(move |s| s.delete_bench_run(id))
        .await?
        .unwrap_or(false);
    if !deleted {
        return Err(ApiError::not_found(format!("no benchmark run {id}")));
    }
    Ok(Json(json!({"deleted": id})))
}
