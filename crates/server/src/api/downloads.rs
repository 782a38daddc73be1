//! Model downloads over HTTP (PRD M6, seed 001 §1–§2). Everything is `service::Downloads`:
//! this module maps query strings and bodies to it and its answers to JSON. Seed 001's
//! spellings (`/api/models/search`, `/api/downloads/{id}/...`) are routes to these same
//! handlers; the few that take the task id from the path instead of the body are thin
//! wrappers around the one function that does the work.

use crate::error::{ApiError, ApiResult};
use crate::extract::parse;
use crate::state::SharedState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use service::downloads::{CATEGORIES, DownloadId, PullRequest, SearchRequest, SourceKind};

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(alias = "query", alias = "search")]
    q: Option<String>,
    source: Option<String>,
    sort: Option<String>,
    limit: Option<String>,
    category: Option<String>,
}

/// `GET /api/download/search` and `GET /api/models/search`.
pub async fn search(
    State(state): State<SharedState>,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<Value>> {
    let source = q.source.as_deref().map(SourceKind::parse).transpose()?;
    let sort = match q.sort.as_deref() {
        None | Some("") => Default::default(),
        Some(s) => serde_json::from_value(json!(s.to_ascii_lowercase())).map_err(|_| {
            ApiError::invalid("sort", format!("{s:?}: one of downloads, likes, updated"))
        })?,
    };
    let limit = match q.limit.as_deref() {
        None | Some("") => 20,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", format!("{l:?}: 1 to 100")))?,
    };
    let found = state
        .downloads()
        .await?
        .search(&SearchRequest {
            query: q.q.unwrap_or_default(),
            source,
            sort,
            limit,
            category: q.category,
        })
        .await?;
    Ok(Json(serde_json::to_value(found).unwrap_or(Value::Null)))
}

#[derive(Debug, Deserialize)]
pub struct FilesQuery {
    #[serde(alias = "model_id", alias = "model")]
    repo: Option<String>,
    revision: Option<String>,
    /// `ollama`: the Ollama library's tags page of the model instead.
    source: Option<String>,
}

/// `GET /api/download/files?repo=org/name`: the repository's facts and GGUF files.
pub async fn files(
    State(state): State<SharedState>,
    Query(q): Query<FilesQuery>,
) -> ApiResult<Json<Value>> {
    let repo = q
        .repo
        .as_deref()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::invalid("repo", "is required (owner/name)"))?;
    repo_files(&state, repo, &q).await
}

/// `GET /api/models/{id}/info`: the same for a repository named in the path.
pub async fn info(
    State(state): State<SharedState>,
    Path(repo): Path<String>,
    Query(q): Query<FilesQuery>,
) -> ApiResult<Json<Value>> {
    repo_files(&state, &repo, &q).await
}

async fn repo_files(state: &SharedState, repo: &str, q: &FilesQuery) -> ApiResult<Json<Value>> {
    let source = q.source.as_deref().map(SourceKind::parse).transpose()?;
    let files = state
        .downloads()
        .await?
        .files(source, repo, q.revision.as_deref())
        .await?;
    Ok(Json(serde_json::to_value(files).unwrap_or(Value::Null)))
}

/// `GET /api/models/categories`.
pub async fn categories() -> Json<Value> {
    Json(json!({ "categories": CATEGORIES }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    /// `org/repo[:QUANT]`, a URL, an Ollama `name:tag`.
    #[serde(alias = "model", alias = "model_id", alias = "repo")]
    name: String,
    #[serde(alias = "filename")]
    file: Option<String>,
    #[serde(alias = "quantization")]
    quant: Option<String>,
    source: Option<String>,
    revision: Option<String>,
}

/// `POST /api/download/start` and `POST /api/downloads/start`: 202 with the new task, 200
/// with the existing one when the same download was asked for before.
pub async fn start(
    State(state): State<SharedState>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let b: StartBody = parse(&body)?;
    let source = b.source.as_deref().map(SourceKind::parse).transpose()?;
    let name = match b.quant.filter(|q| !q.is_empty()) {
        // A colon before the last `/` is a registry's port (`host:port/ns/model`).
        Some(q) if !b.name.rsplit('/').next().unwrap_or("").contains(':') => {
            format!("{}:{q}", b.name)
        }
        Some(_) => return Err(ApiError::invalid("quant", "the name already has a :tag")),
        None => b.name,
    };
    let started = state
        .downloads()
        .await?
        .start(&PullRequest {
            name,
            file: b.file,
            source,
            revision: b.revision,
        })
        .await?;
    let status = if started.existing {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Json(serde_json::to_value(started).unwrap_or(Value::Null)),
    ))
}

#[derive(Debug, Default, Deserialize)]
pub struct TaskQuery {
    id: Option<String>,
    delete_partial: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskBody {
    id: Value,
    #[serde(default)]
    delete_partial: bool,
}

/// The task a request names: `?id=` or a JSON body `{"id": …}`.
fn task_of(q: &TaskQuery, body: &[u8]) -> ApiResult<(DownloadId, bool)> {
    let from_query = q
        .delete_partial
        .as_deref()
        .map(|d| matches!(d, "true" | "1" | "yes"));
    if let Some(id) = &q.id {
        return Ok((task_id(id)?, from_query.unwrap_or(false)));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("id", "is required (?id= or a JSON body)"));
    }
    let b: TaskBody = parse(body)?;
    let id = match &b.id {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return Err(ApiError::invalid("id", "a task id is a number")),
    };
    Ok((task_id(&id)?, from_query.unwrap_or(b.delete_partial)))
}

fn task_id(id: &str) -> ApiResult<DownloadId> {
    id.parse()
        .map_err(|_| ApiError::not_found(format!("no download task {id:?}")))
}

fn status_json(s: &service::downloads::DownloadStatus) -> Json<Value> {
    Json(serde_json::to_value(s).unwrap_or(Value::Null))
}

/// `POST /api/download/pause` (`{"id": N}` or `?id=N`).
pub async fn pause(
    State(state): State<SharedState>,
    Query(q): Query<TaskQuery>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let (id, _) = task_of(&q, &body)?;
    Ok(status_json(&state.downloads().await?.pause(id).await?))
}

/// `POST /api/download/resume`.
pub async fn resume(
    State(state): State<SharedState>,
    Query(q): Query<TaskQuery>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let (id, _) = task_of(&q, &body)?;
    Ok(status_json(&state.downloads().await?.resume(id).await?))
}

/// `DELETE /api/download/delete` (`?id=N&delete_partial=true` or the same as JSON).
pub async fn delete(
    State(state): State<SharedState>,
    Query(q): Query<TaskQuery>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let (id, delete_partial) = task_of(&q, &body)?;
    state.downloads().await?.delete(id, delete_partial).await?;
    Ok(Json(json!({ "id": id, "deleted": true })))
}

/// `GET /api/download/tasks` and `GET /api/downloads/list`.
pub async fn tasks(State(state): State<SharedState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "tasks": state.downloads().await?.list() })))
}

/// `GET /api/downloads/{id}/status`.
pub async fn status(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(status_json(
        &state.downloads().await?.status(task_id(&id)?)?,
    ))
}

/// `PUT /api/downloads/{id}/pause`.
pub async fn pause_by_path(
    state: State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    pause(state, Query(by_path(id)), Bytes::new()).await
}

/// `PUT /api/downloads/{id}/resume`.
pub async fn resume_by_path(
    state: State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    resume(state, Query(by_path(id)), Bytes::new()).await
}

/// `DELETE /api/downloads/{id}` (`?delete_partial=true`).
pub async fn delete_by_path(
    state: State<SharedState>,
    Path(id): Path<String>,
    Query(q): Query<TaskQuery>,
) -> ApiResult<Json<Value>> {
    let q = TaskQuery {
        delete_partial: q.delete_partial,
        ..by_path(id)
    };
    delete(state, Query(q), Bytes::new()).await
}

fn by_path(id: String) -> TaskQuery {
    TaskQuery {
        id: Some(id),
        delete_partial: None,
    }
}

/// `download.progress` and `model.added` as events of the feed.
pub fn event_json(e: &service::DownloadEvent) -> Value {
    match e {
        service::DownloadEvent::Progress(s) => serde_json::to_value(s).unwrap_or(Value::Null),
        service::DownloadEvent::ModelAdded { task, model } => json!({
            "id": model.id,
            "task": task,
            "source": model.source,
            "path": model.path,
            "size": model.size,
            "quantization": model.quantization,
            "repo": model.repo,
        }),
    }
}
