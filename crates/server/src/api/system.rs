//! Global configuration and the system: `/api/config`, `/api/config/model-paths`,
//! `/api/system/{devices,resources,logs,log-level,fs/browse,shutdown,ports}`.

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::{AppState, SharedState};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use service::SamplingDefaults;
use std::path::{Path, PathBuf};

/// The configuration with API keys masked.
fn config_json(state: &SharedState) -> Value {
    serde_json::to_value(state.config().redacted()).unwrap_or(Value::Null)
}

pub async fn get_config(State(state): State<SharedState>) -> Json<Value> {
    Json(json!({
        "config": config_json(&state),
        "keys": config::Config::keys(),
        "config_file": state.paths.config_file(),
        "data_dir": state.paths.data_dir,
    }))
}

/// Flattens `{"models": {"parallel": 2}}` and `{"models.parallel": 2}` into dotted keys
/// with the string values `Config::set` takes.
fn flatten(prefix: &str, v: &Map<String, Value>, out: &mut Vec<(String, String)>) -> ApiResult<()> {
    for (k, val) in v {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match val {
            Value::Object(o) => flatten(&key, o, out)?,
            Value::String(s) => out.push((key, s.clone())),
            Value::Null => out.push((key, String::new())),
            Value::Bool(_) | Value::Number(_) => out.push((key, val.to_string())),
            Value::Array(_) => out.push((key, val.to_string())),
        }
    }
    Ok(())
}

/// `PUT /api/config`: sets keys in `config.toml` and in the running server. Sampling
/// defaults and model defaults apply to the next request and load; server keys (host,
/// port, keys, CORS, limits) apply at the next start. Only keys whose value changes are
/// written (`Config::changes`): a client that sends back what `GET` showed — values from
/// flags and the environment, masked secrets — bakes none of them into the file.
pub async fn put_config(
    State(state): State<SharedState>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    let body = match body.get("config") {
        Some(Value::Object(c)) => c.clone(),
        _ => body,
    };
    let mut pairs = Vec::new();
    flatten("", &body, &mut pairs)?;
    if pairs.is_empty() {
        return Err(ApiError::bad_request("no configuration keys given"));
    }
    let changed = edit_config(&state, move |state| {
        let current = state.config();
        // Checks every value first, so a bad key changes nothing.
        let changed = current.changes(&pairs).map_err(|e| {
            let key = e.key().unwrap_or("config").to_owned();
            ApiError::invalid(&key, e.to_string())
        })?;
        if changed.is_empty() {
            return Ok(changed);
        }
        let mut next = current;
        for (k, v) in &changed {
            next.set(k, v)
                .map_err(|e| ApiError::invalid(k, e.to_string()))?;
        }
        // One edit of the file's own layer, keeping its comments; all keys or none.
        config::set_persisted_all(&state.paths, &changed).map_err(|e| {
            let key = e.key().unwrap_or("config").to_owned();
            ApiError::invalid(&key, e.to_string())
        })?;
        apply_live(state, &next);
        *state.config.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(changed)
    })
    .await?;
    let restart: Vec<&String> = changed
        .iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("server."))
        .collect();
    Ok(Json(json!({
        "config": config_json(&state),
        "updated": changed.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        "restart_required": restart,
    })))
}

/// Runs one change of the configuration: alone (`AppState::config_edits`, so two edits
/// never start from the same state and lose one's update) and on a blocking thread (it
/// reads and writes the file, and may rescan the model folders).
async fn edit_config<T: Send + 'static>(
    state: &SharedState,
    edit: impl FnOnce(&AppState) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let _alone = state.config_edits.lock().await;
    let s = state.clone();
    tokio::task::spawn_blocking(move || edit(&s))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
}

/// Applies the parts of a new config that take effect without a restart.
fn apply_live(state: &AppState, c: &config::Config) {
    *state.sampling.write().unwrap_or_else(|p| p.into_inner()) =
        SamplingDefaults::from_config(&c.sampling);
    state.models.set_config(c.models.clone());
    state.models.set_fallback(c.server.default_model.clone());
    state.models.admission().set_config(c.limits.clone());
    if let Some(s) = &state.sessions {
        s.set_config(c.sessions.clone());
    }
    state
        .models
        .set_reasoning(service::ReasoningDefaults::from_config(&c.reasoning));
    let _ = state.logs.set_level(c.log.level.as_str());
    let old_roots = state.models.roots();
    let roots = service::roots(c, &state.paths);
    if roots != old_roots {
        state.models.set_roots(roots);
    }
}

pub async fn model_paths(State(state): State<SharedState>) -> Json<Value> {
    let c = state.config();
    Json(json!({
        "paths": c.models.dirs,
        "models_dir": state.paths.models_dir(),
        "roots": state.models.roots(),
    }))
}

#[derive(Deserialize)]
pub struct PathBody {
    path: String,
}

pub async fn add_model_path(
    State(state): State<SharedState>,
    ApiJson(b): ApiJson<PathBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let p = PathBuf::from(b.path.trim());
    if !p.is_absolute() {
        return Err(ApiError::invalid("path", "must be an absolute path"));
    }
    if !p.is_dir() {
        return Err(ApiError::invalid("path", "is not a directory"));
    }
    let dirs = edit_config(&state, move |state| {
        let mut live = state.config();
        if live.models.dirs.contains(&p) {
            return Err(ApiError::conflict(format!(
                "{} is already a model path",
                p.display()
            )));
        }
        let mut file = file_dirs(state)?;
        if !file.contains(&p) {
            file.push(p.clone());
            save_file_dirs(state, &file)?;
        }
        live.models.dirs.push(p);
        Ok(apply_dirs(state, live))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"paths": dirs}))))
}

pub async fn remove_model_path(
    State(state): State<SharedState>,
    Query(q): Query<Map<String, Value>>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let path = match q.get("path").and_then(Value::as_str) {
        Some(p) => p.to_string(),
        None => crate::extract::parse::<PathBody>(&body)?.path,
    };
    let p = PathBuf::from(path.trim());
    let dirs = edit_config(&state, move |state| {
        let mut live = state.config();
        let before = live.models.dirs.len();
        live.models.dirs.retain(|d| d != &p);
        if live.models.dirs.len() == before {
            return Err(ApiError::not_found(format!(
                "{} is not a model path",
                p.display()
            )));
        }
        // A folder given by a flag or the environment is not in the file: it goes from the
        // running server only.
        let mut file = file_dirs(state)?;
        if file.contains(&p) {
            file.retain(|d| d != &p);
            save_file_dirs(state, &file)?;
        }
        Ok(apply_dirs(state, live))
    })
    .await?;
    Ok(Json(json!({"paths": dirs})))
}

/// `models.dirs` as `config.toml` has it: the file's own layer, without the folders that
/// flags or the environment add (those must not be written into the file).
fn file_dirs(state: &AppState) -> ApiResult<Vec<PathBuf>> {
    config::ConfigFile::read(&state.paths.config_file())
        .map(|f| f.config.models.dirs)
        .map_err(|e| ApiError::conflict(format!("the configuration file is not changed: {e}")))
}

fn save_file_dirs(state: &AppState, dirs: &[PathBuf]) -> ApiResult<()> {
    let value = serde_json::to_string(
        &dirs
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect::<Vec<_>>(),
    )
    .map_err(|e| ApiError::internal(e.to_string()))?;
    config::set_persisted(&state.paths, "models.dirs", &value)
        .map_err(|e| ApiError::invalid("path", e.to_string()))?;
    Ok(())
}

/// Makes `c` (with changed folders) the running config and rescans; the folders in effect.
fn apply_dirs(state: &AppState, c: config::Config) -> Vec<PathBuf> {
    let roots = service::roots(&c, &state.paths);
    let dirs = c.models.dirs.clone();
    *state.config.write().unwrap_or_else(|p| p.into_inner()) = c;
    state.models.set_roots(roots);
    dirs
}

pub async fn devices() -> Json<Value> {
    Json(json!({"devices": service::devices()}))
}

pub async fn resources(State(state): State<SharedState>) -> Json<Value> {
    use sysinfo::{Disks, MemoryRefreshKind, RefreshKind, System};
    let mut sys = System::new_with_specifics(
        RefreshKind::nothing()
            .with_memory(MemoryRefreshKind::everything())
            .with_cpu(sysinfo::CpuRefreshKind::nothing().with_cpu_usage()),
    );
    // CPU usage needs two samples.
    tokio::time::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL).await;
    sys.refresh_cpu_usage();
    let disks = Disks::new_with_refreshed_list();
    let dirs: Vec<Value> = state
        .models
        .roots()
        .iter()
        .map(|r| {
            let canon = std::fs::canonicalize(&r.path).unwrap_or_else(|_| r.path.clone());
            let disk = disks
                .iter()
                .filter(|d| canon.starts_with(d.mount_point()))
                .max_by_key(|d| d.mount_point().as_os_str().len());
            json!({
                "path": r.path,
                "exists": r.path.is_dir(),
                "disk_free": disk.map(|d| d.available_space()),
                "disk_total": disk.map(|d| d.total_space()),
            })
        })
        .collect();
    // What each model has served since the process started (never empties `/metrics`'
    // throughput windows): the dashboard's tokens per second.
    let served: std::collections::HashMap<String, service::serving::ServedFigures> =
        state.models.served(false).into_iter().collect();
    let models: Vec<Value> = state
        .models
        .manager()
        .statuses()
        .into_iter()
        .filter_map(|s| {
            let m = state.models.peek(&s.id)?;
            let info = m.handle.info();
            let figures = served.get(&s.id).cloned().unwrap_or_default();
            Some(json!({
                "id": s.id,
                "memory": info.memory,
                "busy_slots": m.handle.busy_slots(),
                "slots": info.n_slots,
                "queue": m.handle.queue_len(),
                // Its worker process (`models.isolation = "process"`): pid and RSS.
                "worker": m.handle.process(),
                "requests": figures.requests,
                "tokens_per_second": figures.predict.per_second(),
                "prompt_tokens_per_second": figures.prompt.per_second(),
            }))
        })
        .collect();
    let rss = crate::process_rss();
    // Models in worker processes are not in this process's RSS: their own is counted here.
    let workers_rss: u64 = models
        .iter()
        .filter_map(|m| m["worker"]["rss_bytes"].as_u64())
        .sum();
    Json(json!({
        "cpu": {
            "cores": sys.cpus().len(),
            "physical_cores": System::physical_core_count(),
            "usage_percent": sys.global_cpu_usage(),
            "brand": sys.cpus().first().map(|c| c.brand().to_string()),
        },
        "memory": {
            "total": sys.total_memory(),
            "used": sys.used_memory(),
            "available": sys.available_memory(),
            "process_rss": rss,
            "workers_rss": workers_rss,
        },
        "gpus": service::devices().into_iter().filter(|d| d.kind != service::DeviceKind::Cpu).collect::<Vec<_>>(),
        "model_dirs": dirs,
        "models": models,
        "uptime_seconds": state.started.elapsed().as_secs(),
    }))
}

#[derive(Deserialize)]
pub struct LogsQuery {
    level: Option<String>,
    limit: Option<usize>,
}

pub fn parse_level(level: Option<&str>) -> ApiResult<tracing::Level> {
    match level {
        None => Ok(tracing::Level::TRACE),
        Some(l) => l
            .parse::<tracing::Level>()
            .map_err(|_| ApiError::invalid("level", "must be trace, debug, info, warn or error")),
    }
}

pub async fn logs(
    State(state): State<SharedState>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Json<Value>> {
    let level = parse_level(q.level.as_deref())?;
    let lines = state
        .logs
        .buffer
        .recent(level, q.limit.unwrap_or(200).min(2000));
    Ok(Json(json!({"lines": lines, "level": state.logs.level()})))
}

#[derive(Deserialize)]
pub struct LevelBody {
    level: String,
}

pub async fn set_log_level(
    State(state): State<SharedState>,
    ApiJson(b): ApiJson<LevelBody>,
) -> ApiResult<Json<Value>> {
    state
        .logs
        .set_level(&b.level)
        .map_err(|e| ApiError::invalid("level", e))?;
    tracing::info!(level = %b.level, "log level changed");
    Ok(Json(json!({"level": b.level})))
}

#[derive(Deserialize)]
pub struct BrowseQuery {
    path: Option<String>,
}

/// Lists a folder inside the configured model roots (or the roots themselves). Anything
/// that resolves outside them (`..`, absolute paths elsewhere, symlinks leaving a root) is
/// refused with 403.
pub async fn browse(
    State(state): State<SharedState>,
    Query(q): Query<BrowseQuery>,
) -> ApiResult<Json<Value>> {
    let roots: Vec<PathBuf> = state
        .models
        .roots()
        .iter()
        .filter_map(|r| std::fs::canonicalize(&r.path).ok())
        .collect();
    let Some(requested) = q.path.filter(|p| !p.trim().is_empty()) else {
        return Ok(Json(json!({
            "path": null,
            "entries": roots.iter().map(|r| json!({"name": r.display().to_string(), "path": r, "kind": "dir"})).collect::<Vec<_>>(),
        })));
    };
    let forbidden = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "the path is outside the configured model folders",
        )
    };
    let p = Path::new(&requested);
    if !p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(forbidden());
    }
    let canon = std::fs::canonicalize(p).map_err(|_| ApiError::not_found("no such folder"))?;
    if !roots.iter().any(|r| canon.starts_with(r)) {
        return Err(forbidden());
    }
    if !canon.is_dir() {
        return Err(ApiError::invalid("path", "is not a folder"));
    }
    let mut entries = Vec::new();
    let rd = std::fs::read_dir(&canon)
        .map_err(|e| ApiError::new(StatusCode::FORBIDDEN, e.to_string()))?;
    for e in rd.flatten() {
        let path = e.path();
        // Follow links, but only list targets that stay inside a root.
        let Ok(target) = std::fs::canonicalize(&path) else {
            continue;
        };
        if !roots.iter().any(|r| target.starts_with(r)) {
            continue;
        }
        let Ok(md) = std::fs::metadata(&target) else {
            continue;
        };
        let name = e.file_name().to_string_lossy().into_owned();
        if md.is_dir() {
            entries.push(json!({"name": name, "path": path, "kind": "dir"}));
        } else if name.to_ascii_lowercase().ends_with(".gguf") {
            entries.push(json!({"name": name, "path": path, "kind": "file", "size": md.len()}));
        }
    }
    entries.sort_by(|a, b| {
        (a["kind"].as_str(), a["name"].as_str()).cmp(&(b["kind"].as_str(), b["name"].as_str()))
    });
    Ok(Json(json!({"path": canon, "entries": entries})))
}

pub async fn shutdown(State(state): State<SharedState>) -> (StatusCode, Json<Value>) {
    tracing::info!("shutdown requested through the API");
    state.begin_shutdown();
    (
        StatusCode::ACCEPTED,
        Json(json!({"status": "shutting_down"})),
    )
}

/// `GET /api/system/ports`: Ollama's and LM Studio's ports, configured and open.
pub async fn ports(State(state): State<SharedState>) -> Json<Value> {
    let server = state.config().server;
    let mut out = Map::new();
    for which in crate::ports::AppPort::ALL {
        let (port, enabled) = which.configured(&server);
        let open = state.app_ports.port(which).await;
        out.insert(
            which.name().into(),
            json!({"open": open.is_some(), "port": open, "configured_port": port,
                "enabled_at_start": enabled, "setting": which.setting()}),
        );
    }
    Json(json!({"ports": out}))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PortBody {
    /// The port to open (`0`: any free one); the configured one when absent.
    port: Option<u16>,
}

fn app_port(name: &str) -> ApiResult<crate::ports::AppPort> {
    crate::ports::AppPort::parse(name)
        .ok_or_else(|| ApiError::not_found(format!("no port named '{name}' (ollama or lmstudio)")))
}

/// `POST /api/system/ports/{name}/start` (body `{port?}`, or none): opens Ollama's or LM
/// Studio's port until the server stops (the configuration says whether it opens at the next
/// start); another port than the open one moves it.
pub async fn port_start(
    State(state): State<SharedState>,
    axum::extract::Path(name): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let which = app_port(&name)?;
    let req: PortBody = if body.iter().all(u8::is_ascii_whitespace) {
        PortBody::default()
    } else {
        crate::extract::parse(&body)?
    };
    let port = state.app_ports.start(&state, which, req.port).await?;
    Ok(Json(
        json!({"name": which.name(), "open": true, "port": port}),
    ))
}

/// `POST /api/system/ports/{name}/stop`: closes it (connections running finish).
pub async fn port_stop(
    State(state): State<SharedState>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> ApiResult<Json<Value>> {
    let which = app_port(&name)?;
    let was_open = state.app_ports.stop(which).await;
    Ok(Json(
        json!({"name": which.name(), "open": false, "was_open": was_open}),
    ))
}
