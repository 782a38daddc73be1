//! Ollama's model routes (`/api/tags`, `/api/show`, `/api/ps`, `/api/version`, `/api/pull`,
//! `/api/delete`, `/api/copy`; `/api/create` and `/api/push` answer 501) and the `/` probe,
//! in Ollama's wire format (its `api/types.go`). Models are the catalog's, found by the one
//! resolver (a name without tag means `latest`: `service::latest_twin`); every model is
//! listed with a tag, as Ollama lists them. Pulls go through `service::Downloads` (the one
//! queue, Ollama's registry client); deletes through `service::remove`'s rule; copies through
//! `service::identity`. Errors are `{"error": "..."}` (`Flavor::Ollama`, from the path).

use super::ollama_types::{ndjson, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::extract::parse;
use crate::state::SharedState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use catalog::ModelEntry;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use service::ServiceError;
use service::downloads::{DownloadState, DownloadStatus, PullRequest, SourceKind};
use std::time::{Duration, SystemTime};

/// The version `/api/version` reports. Ollama clients compare it against the version that
/// brought a feature (Open WebUI, editors' plugins refuse servers that look too old), so it is
/// the Ollama release whose API this adapter follows (tags, show with capabilities, ps with
/// context_length), not our own version, which they would read as an ancient Ollama.
pub const OLLAMA_VERSION: &str = "0.32.15";

/// What `GET /` and `HEAD /` answer to clients that probe for an Ollama server.
pub const RUNNING: &str = "Ollama is running";

/// Arrays longer than this are shown empty in `/api/show` unless `verbose` (as Ollama does:
/// the tokenizer's vocabulary and merges are megabytes).
const SHOWN_ARRAY_MAX: u64 = 5;

/// `name` with Ollama's default tag when it has none (`alpha` → `alpha:latest`). The
/// resolver finds the model by either spelling (`service::latest_twin`).
pub fn tagged(name: &str) -> String {
    match service::latest_twin(name) {
        Some(twin) if twin.ends_with(":latest") && !name.ends_with(":latest") => twin,
        _ => name.to_string(),
    }
}

/// Ollama's parameter counts (`format.HumanNumber`): `134.52M`, `1.2B`, `7B`, `500K`.
pub fn human_number(n: u64) -> String {
    const K: u64 = 1_000;
    const M: u64 = 1_000_000;
    const B: u64 = 1_000_000_000;
    let whole = |d: u64| n % d == 0;
    match n {
        n if n >= B && whole(B) => format!("{}B", n / B),
        n if n >= B => format!("{:.1}B", n as f64 / B as f64),
        n if n >= M && whole(M) => format!("{}M", n / M),
        n if n >= M => format!("{:.2}M", n as f64 / M as f64),
        n if n >= K => format!("{:.0}K", n as f64 / K as f64),
        n => n.to_string(),
    }
}

/// The model `name` finds, or Ollama's 404 (`model 'x' not found`).
async fn find(state: &SharedState, name: &str) -> ApiResult<ModelEntry> {
    state.models.resolve(name).await.map_err(|e| match e {
        ServiceError::UnknownModel(_) => ApiError::not_found(format!("model '{name}' not found")),
        e => e.into(),
    })
}

/// The `name` of a request, or its legacy `name` field; empty is refused as Ollama does.
fn model_name(model: Option<String>, legacy: Option<String>) -> ApiResult<String> {
    model
        .filter(|m| !m.is_empty())
        .or(legacy.filter(|m| !m.is_empty()))
        .ok_or_else(|| ApiError::bad_request("model is required"))
}

/// `details` (Ollama's `ModelDetails`).
async fn details(state: &SharedState, entry: &ModelEntry) -> Value {
    let family = entry.architecture.clone().unwrap_or_default();
    let parameters = state.models.parameter_count(entry).await;
    json!({
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": if family.is_empty() { Value::Null } else { json!([family]) },
        "parameter_size": parameters.map(human_number).unwrap_or_default(),
        "quantization_level": entry.quantization.clone().unwrap_or_default(),
    })
}

/// A model's digest and modification time (file metadata and small manifests only).
async fn identity(entry: &ModelEntry) -> (String, Option<SystemTime>) {
    let e = entry.clone();
    tokio::task::spawn_blocking(move || {
        (
            service::identity::digest(&e),
            service::identity::modified(&e),
        )
    })
    .await
    .unwrap_or_default()
}

/// Ollama's capability names for ours: `insert` is fill-in-the-middle; `chat` is part of
/// `completion` there; `rerank` has no Ollama name.
fn ollama_capabilities(ours: &[String]) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (our, theirs) in [
        ("completion", "completion"),
        ("tools", "tools"),
        ("vision", "vision"),
        ("embedding", "embedding"),
        ("infill", "insert"),
        ("thinking", "thinking"),
    ] {
        if ours.iter().any(|c| c == our) {
            out.push(theirs);
        }
    }
    out
}

/// `GET /api/tags`: every model clients may name, each with a tag; a model's alias (an
/// `/api/copy` of a model that is not an Ollama model of ours) is listed as a model too.
pub async fn tags(State(state): State<SharedState>) -> Json<Value> {
    let mut models = Vec::new();
    for listed in state.models.listed().await {
        let entry = &listed.entry;
        let (digest, modified) = identity(entry).await;
        let details = details(&state, entry).await;
        let caps = state.models.capabilities(entry).await;
        for name in std::iter::once(&listed.id).chain(&listed.aliases) {
            let name = tagged(name);
            models.push(json!({
                "name": name,
                "model": name,
                "modified_at": modified.map(rfc3339),
                "size": entry.size,
                "digest": digest,
                "details": details,
                "capabilities": ollama_capabilities(&caps),
            }));
        }
    }
    Json(json!({ "models": models }))
}

#[derive(Deserialize)]
struct ShowRequest {
    model: Option<String>,
    /// Deprecated: `model`.
    name: Option<String>,
    #[serde(default)]
    verbose: bool,
    /// A system prompt to show instead of the model's.
    system: Option<String>,
    /// Accepted, as Ollama does (it only changes the returned Modelfile's parameters).
    #[allow(dead_code)]
    options: Option<Map<String, Value>>,
    #[allow(dead_code)]
    template: Option<String>,
}

/// `POST /api/show`: a model's template, system prompt, parameters and Modelfile, its details,
/// `model_info` from the GGUF keys (arrays of more than five elements shown empty unless
/// `verbose`, and tensors only then, as Ollama), capabilities and modification time.
pub async fn show(State(state): State<SharedState>, body: Bytes) -> ApiResult<Json<Value>> {
    let req: ShowRequest = parse(&body)?;
    let name = model_name(req.model, req.name)?;
    let entry = find(&state, &name).await?;
    let verbose = req.verbose;
    let path = entry.path.clone();
    let file = tokio::task::spawn_blocking(move || {
        let options = if verbose {
            gguf::ReadOptions::keep_all()
        } else {
            gguf::ReadOptions {
                array_keep_whole: SHOWN_ARRAY_MAX,
                array_preview: 0,
            }
        };
        gguf::read_path(&path, &options)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| ApiError::bad_request(format!("reading the model file: {e}")))?;

    let mut model_info = Map::new();
    for (key, value) in &file.kv {
        // Ollama leaves these out: the name is the model's, the template is `template`.
        if key == "general.name" || key == "tokenizer.chat_template" {
            continue;
        }
        let v = match value {
            gguf::Value::Array(a) if a.truncated => json!([]),
            // As the file holds it (`1e-5`), not widened to f64 (`9.999999747378752e-6`).
            gguf::Value::F32(f) => f
                .to_string()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::Null, Value::Number),
            v => serde_json::to_value(v).unwrap_or(Value::Null),
        };
        model_info.insert(key.clone(), v);
    }
    // `general.parameter_count` is what Ollama clients read for the size.
    model_info
        .entry("general.parameter_count")
        .or_insert_with(|| json!(file.parameter_count()));

    let ollama = entry.ollama.as_ref();
    // The template clients see: the GGUF's (what we render with), else the Ollama template
    // layer (a Go template).
    let template = file
        .chat_template()
        .map(str::to_owned)
        .or_else(|| ollama.and_then(|o| o.template.clone()))
        .unwrap_or_default();
    let system = req
        .system
        .or_else(|| ollama.and_then(|o| o.system.clone()))
        .unwrap_or_default();
    let params = ollama.map(|o| o.params.clone()).unwrap_or_default();
    let parameters = parameters_text(&params);
    let shown_name = tagged(&state.models.public_id(&entry));
    let modelfile = modelfile(&shown_name, &entry, &template, &system, &params);
    let caps = state.models.capabilities(&entry).await;
    let (_, modified) = identity(&entry).await;

    let mut out = Map::new();
    out.insert("modelfile".into(), json!(modelfile));
    if !parameters.is_empty() {
        out.insert("parameters".into(), json!(parameters));
    }
    if !template.is_empty() {
        out.insert("template".into(), json!(template));
    }
    if !system.is_empty() {
        out.insert("system".into(), json!(system));
    }
    out.insert("details".into(), details(&state, &entry).await);
    out.insert("model_info".into(), Value::Object(model_info));
    if verbose {
        let tensors: Vec<Value> = file
            .tensors
            .iter()
            .map(|t| json!({"name": t.name, "type": t.ggml_type, "shape": t.dims}))
            .collect();
        out.insert("tensors".into(), json!(tensors));
    }
    let caps = ollama_capabilities(&caps);
    if !caps.is_empty() {
        out.insert("capabilities".into(), json!(caps));
    }
    if let Some(m) = modified {
        out.insert("modified_at".into(), json!(rfc3339(m)));
    }
    Ok(Json(Value::Object(out)))
}

/// Ollama's `parameters` text: one `name value` line per value (a list gives one line per
/// element), the name padded to 30 columns, strings quoted as Go's `%#v` quotes them.
fn parameters_text(params: &Map<String, Value>) -> String {
    let mut lines = Vec::new();
    for (k, v) in params {
        let values: Vec<&Value> = match v {
            Value::Array(items) => items.iter().collect(),
            v => vec![v],
        };
        for v in values {
            lines.push(format!("{k:<30} {}", go_value(v)));
        }
    }
    lines.join("\n")
}

/// A value as Go's `%#v` writes the JSON-decoded value (strings quoted, numbers bare).
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        v => v.to_string(),
    }
}

/// A Modelfile that describes the model as served (`ollama show --modelfile`).
fn modelfile(
    name: &str,
    entry: &ModelEntry,
    template: &str,
    system: &str,
    params: &Map<String, Value>,
) -> String {
    let mut out = String::from("# Modelfile generated by \"ollama show\"\n");
    out.push_str("# To build a new Modelfile based on this, replace FROM with:\n");
    out.push_str(&format!("# FROM {name}\n\n"));
    out.push_str(&format!("FROM {}\n", entry.path.display()));
    if !template.is_empty() {
        out.push_str(&format!("TEMPLATE \"\"\"{template}\"\"\"\n"));
    }
    if !system.is_empty() {
        out.push_str(&format!("SYSTEM \"\"\"{system}\"\"\"\n"));
    }
    for (k, v) in params {
        let values: Vec<&Value> = match v {
            Value::Array(items) => items.iter().collect(),
            v => vec![v],
        };
        for v in values {
            out.push_str(&format!("PARAMETER {k} {}\n", go_value(v)));
        }
    }
    out
}

/// When a model kept "forever" is said to expire: Ollama shows a date centuries away.
const FOREVER: Duration = Duration::from_secs(292 * 365 * 24 * 3600);

/// `GET /api/ps`: the loaded models, the one that stays longest first: memory in use
/// (`size_vram` is 0 on the CPU), when it will sleep (`expires_at`, from its keep-alive;
/// while requests run, counted from now) and its context per slot.
pub async fn ps(State(state): State<SharedState>) -> Json<Value> {
    let now = SystemTime::now();
    let mut rows: Vec<(SystemTime, Value)> = Vec::new();
    for status in state.models.manager().statuses() {
        let Some(loaded) = state.models.peek(&status.id) else {
            continue;
        };
        let Ok(entry) = state.models.resolve(&status.id).await else {
            continue;
        };
        let info = loaded.handle.info();
        let memory = &info.memory;
        let size =
            memory.model_bytes + memory.context_rss_bytes.unwrap_or(memory.estimate.kv_bytes);
        let size_vram = if info.n_gpu_layers > 0 && memory.estimate.total_bytes > 0 {
            // Offloaded layers' share of the weights.
            let layers = u64::from(info.n_layer.max(1));
            memory.model_bytes * u64::from(info.n_gpu_layers).min(layers) / layers
        } else {
            0
        };
        let expires = match (status.expires_in_seconds, status.keep_alive) {
            (Some(secs), _) => now + Duration::from_secs(secs),
            (None, manager::KeepAlive::For(keep)) => now + keep,
            (None, manager::KeepAlive::Forever) => now + FOREVER,
        };
        let name = tagged(&state.models.public_id(&entry));
        let (digest, _) = identity(&entry).await;
        rows.push((
            expires,
            json!({
                "name": name,
                "model": name,
                "size": size,
                "digest": digest,
                "details": details(&state, &entry).await,
                "expires_at": rfc3339(expires),
                "size_vram": size_vram,
                "context_length": info.n_ctx_slot,
            }),
        ));
    }
    rows.sort_by(|a, b| b.0.cmp(&a.0));
    Json(json!({"models": rows.into_iter().map(|(_, v)| v).collect::<Vec<_>>()}))
}

/// `GET /api/version` (see [`OLLAMA_VERSION`]).
pub async fn version() -> Json<Value> {
    Json(json!({ "version": OLLAMA_VERSION }))
}

/// `GET /` and `HEAD /`: "Ollama is running" for the clients that probe for an Ollama server
/// before using it. A browser navigating to `/` gets the dashboard instead (`pages`).
pub async fn root() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        RUNNING,
    )
        .into_response()
}

#[derive(Deserialize)]
struct DeleteRequest {
    model: Option<String>,
    /// Deprecated: `model`.
    name: Option<String>,
}

/// `DELETE /api/delete`: removes the model by `service::remove`'s rule (another app's model
/// is refused, 409), or only the name when it is a copy made as an alias. 200, empty body.
pub async fn delete(State(state): State<SharedState>, body: Bytes) -> ApiResult<StatusCode> {
    let req: DeleteRequest = parse(&body)?;
    let name = model_name(req.model, req.name)?;
    let own = state.models.own_places(&state.config(), &state.paths).await;
    match state.models.remove_name(&name, own).await {
        Ok(_) => Ok(StatusCode::OK),
        Err(ServiceError::UnknownModel(_)) => {
            Err(ApiError::not_found(format!("model '{name}' not found")))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct CopyRequest {
    source: String,
    destination: String,
}

/// `POST /api/copy`: a second name for a model (a second manifest for an Ollama model pulled
/// here, as Ollama copies; an alias for any other), listed by `/api/tags` at once.
pub async fn copy(State(state): State<SharedState>, body: Bytes) -> ApiResult<StatusCode> {
    let req: CopyRequest = parse(&body)?;
    if req.source.is_empty() || req.destination.is_empty() {
        return Err(ApiError::bad_request("source and destination are required"));
    }
    let own = state.models.own_places(&state.config(), &state.paths).await;
    match state
        .models
        .copy_name(&req.source, &req.destination, own)
        .await
    {
        Ok(_) => Ok(StatusCode::OK),
        Err(ServiceError::UnknownModel(_)) => Err(ApiError::not_found(format!(
            "model \"{}\" not found",
            req.source
        ))),
        Err(e) => Err(e.into()),
    }
}

/// `POST /api/create` and `POST /api/push`: not offered (501, Ollama's error shape).
pub async fn create() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "creating models from a Modelfile is not supported by llama-dashboard: put a GGUF \
         file in a model folder (models.dirs) or pull one (POST /api/pull)",
    )
}

pub async fn push() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "pushing models to a registry is not supported by llama-dashboard",
    )
}

#[derive(Deserialize)]
struct PullBody {
    model: Option<String>,
    /// Deprecated: `model`.
    name: Option<String>,
    /// Deprecated and ignored by Ollama too: plain http registries need `download.insecure`.
    #[allow(dead_code)]
    insecure: Option<bool>,
    stream: Option<bool>,
}

/// `POST /api/pull`: pulls an Ollama model through the download queue and reports as Ollama
/// does: `pulling manifest`, then per layer `pulling <digest>` with `total` and `completed`,
/// `verifying sha256 digest`, `writing manifest`, `success` — NDJSON by default, one object
/// with `stream: false`. A name the registry refuses is a 4xx before anything streams;
/// failures once streaming are an `{"error"}` line. A client that goes away leaves the
/// download running (the same pull again follows the same task).
pub async fn pull(State(state): State<SharedState>, body: Bytes) -> ApiResult<Response> {
    let req: PullBody = parse(&body)?;
    let name = model_name(req.model, req.name)?;
    let stream = req.stream.unwrap_or(true);
    let downloads = state.downloads().await?.clone();
    let started = downloads
        .start(&PullRequest {
            name: name.clone(),
            source: Some(SourceKind::Ollama),
            ..Default::default()
        })
        .await;
    let first = json!({"status": "pulling manifest"});
    let task = match started {
        Ok(s) => s.status.id,
        // The name itself is wrong: refused before anything streams.
        Err(e @ ServiceError::Invalid { .. }) => return Err(e.into()),
        Err(e) if !stream => return Err(e.into()),
        // The registry failed: Ollama has said `pulling manifest` by then.
        Err(e) => {
            let lines = vec![first, json!({"error": format!("pull model manifest: {e}")})];
            return Ok(ndjson(futures_util::stream::iter(lines)));
        }
    };
    let progress = pull_progress(downloads, task);
    if !stream {
        use futures_util::StreamExt as _;
        let lines: Vec<Value> = progress.collect().await;
        let last = lines.last().cloned().unwrap_or(Value::Null);
        if let Some(e) = last.get("error").and_then(Value::as_str) {
            return Err(ApiError::internal(e.to_string()));
        }
        return Ok(Json(last).into_response());
    }
    let lines = futures_util::stream::once(async move { first }).chain(progress);
    Ok(ndjson(lines))
}

use futures_util::StreamExt as _;

/// A pull task's progress as Ollama's objects, until it completes (or fails, or is paused or
/// deleted from the download API: an error line then).
fn pull_progress(
    downloads: std::sync::Arc<service::Downloads>,
    task: service::downloads::DownloadId,
) -> impl futures_util::Stream<Item = Value> + Send + 'static {
    struct Follow {
        downloads: std::sync::Arc<service::Downloads>,
        changes: tokio::sync::watch::Receiver<u64>,
        /// Bytes last reported per file.
        reported: Vec<Option<u64>>,
        verifying: bool,
        pending: std::collections::VecDeque<Value>,
        done: bool,
    }
    let changes = downloads.changes();
    let follow = Follow {
        downloads,
        changes,
        reported: Vec::new(),
        verifying: false,
        pending: Default::default(),
        done: false,
    };
    futures_util::stream::unfold(follow, move |mut f| async move {
        loop {
            if let Some(line) = f.pending.pop_front() {
                return Some((line, f));
            }
            if f.done {
                return None;
            }
            f.changes.borrow_and_update();
            let Ok(status) = f.downloads.status(task) else {
                f.pending
                    .push_back(json!({"error": "the download was cancelled"}));
                f.done = true;
                continue;
            };
            f.pending
                .extend(progress_lines(&status, &mut f.reported, &mut f.verifying));
            match &status.state {
                DownloadState::Completed => {
                    f.pending.push_back(json!({"status": "writing manifest"}));
                    f.pending.push_back(json!({"status": "success"}));
                    f.done = true;
                }
                DownloadState::Failed { reason } => {
                    f.pending.push_back(json!({"error": reason}));
                    f.done = true;
                }
                DownloadState::Paused => {
                    f.pending.push_back(json!({"error": format!(
                        "the download was paused (download task {task}: POST /api/download/resume resumes it)"
                    )}));
                    f.done = true;
                }
                _ => {}
            }
            if f.pending.is_empty() {
                // Figures move between state changes: look again at least every quarter second.
                let _ =
                    tokio::time::timeout(service::downloads::PROGRESS_EVERY, f.changes.changed())
                        .await;
            }
        }
    })
}

/// The lines a status adds: `pulling <digest>` for each file whose bytes moved since the
/// last report, then `verifying sha256 digest` once every file is in place.
fn progress_lines(
    status: &DownloadStatus,
    reported: &mut Vec<Option<u64>>,
    verifying: &mut bool,
) -> Vec<Value> {
    reported.resize(status.parts.len(), None);
    let mut lines = Vec::new();
    for (part, last) in status.parts.iter().zip(reported.iter_mut()) {
        if *last == Some(part.done) {
            continue;
        }
        *last = Some(part.done);
        let hex = part.sha256.as_deref().unwrap_or("");
        let mut line = Map::new();
        line.insert(
            "status".into(),
            json!(format!("pulling {}", hex.get(..12).unwrap_or(hex))),
        );
        line.insert("digest".into(), json!(format!("sha256:{hex}")));
        // `omitempty` in Ollama: zero figures are left out.
        if let Some(total) = part.total.filter(|&t| t > 0) {
            line.insert("total".into(), json!(total));
        }
        if part.done > 0 {
            line.insert("completed".into(), json!(part.done));
        }
        lines.push(Value::Object(line));
    }
    let all_in = !status.parts.is_empty()
        && status
            .parts
            .iter()
            .all(|p| p.total.is_some_and(|t| p.done >= t));
    if !*verifying && (all_in || status.state == DownloadState::Completed) {
        *verifying = true;
        lines.push(json!({"status": "verifying sha256 digest"}));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_ollama_writes_them() {
        assert_eq!(human_number(134_515_008), "134.52M");
        assert_eq!(human_number(268_098_176), "268.10M");
        assert_eq!(human_number(7_000_000_000), "7B");
        assert_eq!(human_number(1_235_814_400), "1.2B");
        assert_eq!(human_number(3_000_000), "3M");
        assert_eq!(human_number(500_400), "500K");
        assert_eq!(human_number(999), "999");
    }

    #[test]
    fn every_listed_name_has_a_tag() {
        assert_eq!(tagged("alpha"), "alpha:latest");
        assert_eq!(tagged("alpha:latest"), "alpha:latest");
        assert_eq!(tagged("llama3.2:1b"), "llama3.2:1b");
        assert_eq!(tagged("org/repo/file"), "org/repo/file:latest");
    }

    #[test]
    fn parameters_as_ollama_prints_them() {
        let params: Map<String, Value> =
            serde_json::from_str(r#"{"stop": ["<|im_end|>", "x"], "temperature": 0.25}"#).unwrap();
        assert_eq!(
            parameters_text(&params),
            format!(
                "{:<30} \"<|im_end|>\"\n{:<30} \"x\"\n{:<30} 0.25",
                "stop", "stop", "temperature"
            )
        );
    }

    #[test]
    fn capabilities_take_ollamas_names() {
        let ours: Vec<String> = [
            "completion",
            "chat",
            "embedding",
            "infill",
            "rerank",
            "thinking",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            ollama_capabilities(&ours),
            ["completion", "embedding", "insert", "thinking"]
        );
    }
}
