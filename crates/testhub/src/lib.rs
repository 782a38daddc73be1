//! Test services that behave like the Hugging Face hub and the Ollama registry, for the
//! download tests (a dev-dependency only).
//!
//! [`Hub::start`] binds two servers on 127.0.0.1 with ephemeral ports: the hub (API,
//! resolve, registry routes) and a "CDN" on another origin, as on the real services,
//! where files are served with `Range` support (206, 416). The routes and headers are the
//! real ones:
//! - `GET /api/models?search=&filter=gguf&sort=&direction=-1&limit=&cursor=`, paged with a
//!   `Link: <…>; rel="next"` header;
//! - `GET /api/models/{org}/{name}` and `/api/models/{org}/{name}/tree/{rev}` (LFS oid and
//!   size per file, paged like the hub);
//! - `GET|HEAD /{org}/{name}/resolve/{rev}/{path}` → 302 to the CDN with `X-Repo-Commit`,
//!   `X-Linked-Etag`, `X-Linked-Size`; errors carry `X-Error-Code` / `X-Error-Message`
//!   (`GatedRepo` 401 without a token and 403 with a token not granted access,
//!   `RepoNotFound`, `RevisionNotFound`, `EntryNotFound` 404);
//! - `GET /v2/{ns}/{model}/manifests/{tag}` (docker manifest v2, only with that type in
//!   `Accept`) and `GET /v2/{ns}/{model}/blobs/{digest}` → 307 to the CDN;
//! - the CDN refuses a request carrying `Authorization`, as presigned URLs do, so a client
//!   that forwards the token across origins fails;
//! - with [`Hub::require_registry_auth`], the registry routes answer 401 with a docker
//!   bearer challenge (`WWW-Authenticate: Bearer realm=…,service=…,scope=…`) unless the
//!   request carries a token the realm (`GET {cdn}/token`, another origin, as ollama.com is
//!   for registry.ollama.ai) issued for that repository's scope.
//!
//! - the Ollama library website (ollama.com has no JSON search API): `GET /search?q=…`,
//!   `GET /library` and `GET /library/{name}/tags` serve pages saved in the site's shape
//!   (`fixtures/ollama-library/`, [`library_page`]): `q=qwen` finds the saved search, any
//!   other query the saved page of no result; a model without a saved tags page is 404.
//!
//! Switches per file ([`Fault`]): cut the connection at a byte offset, stall at an offset
//! until [`Hub::release`], ignore `Range`; and [`Hub::replace_file`] (the file changes
//! between requests), [`Hub::corrupt`] (the CDN serves other bytes than the oid says).
//! Counters: bytes served per file, requests, and the most transfers open at once.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the CDN does to the next transfers of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fault {
    /// Close the connection once the file offset reaches this (once: then cleared).
    pub cut_at: Option<u64>,
    /// Stop sending at this file offset until [`Hub::release`] (once: then cleared).
    pub stall_at: Option<u64>,
    /// Answer every range request with the whole file (200).
    pub ignore_range: bool,
    /// Send no `ETag` (as some plain web servers do).
    pub no_etag: bool,
}

/// A repository's public facts (what search and model info show).
#[derive(Debug, Clone)]
pub struct RepoMeta {
    pub downloads: u64,
    pub likes: u64,
    pub last_modified: String,
    pub license: Option<String>,
    pub gated: bool,
}

impl Default for RepoMeta {
    fn default() -> Self {
        RepoMeta {
            downloads: 0,
            likes: 0,
            last_modified: "2025-01-01T00:00:00.000Z".into(),
            license: Some("apache-2.0".into()),
            gated: false,
        }
    }
}

/// The two running servers; stopped when dropped.
pub struct Hub {
    /// The hub's base URL (`http://127.0.0.1:PORT`), for `HF_ENDPOINT` and registry names.
    pub url: String,
    /// The CDN's base URL (another port: another origin).
    pub cdn_url: String,
    state: Arc<State>,
    servers: Vec<JoinHandle<()>>,
}

impl Drop for Hub {
    fn drop(&mut self) {
        for s in &self.servers {
            s.abort();
        }
    }
}

struct State {
    hub_url: String,
    cdn_url: String,
    repos: Mutex<BTreeMap<String, Repo>>,
    blobs: Mutex<HashMap<String, Arc<Blob>>>,
    manifests: Mutex<HashMap<String, Vec<u8>>>,
    /// Open CDN transfers now and at most.
    open: AtomicU64,
    max_open: AtomicU64,
    release: watch::Sender<u64>,
    /// Entries per tree page (the hub pages big trees).
    tree_page: AtomicU64,
    /// The registry routes want a bearer token.
    registry_auth: std::sync::atomic::AtomicBool,
    /// Tokens the realm issued → their scope.
    issued: Mutex<HashMap<String, String>>,
    token_requests: AtomicU64,
    challenges: AtomicU64,
    /// Hub requests that carried an `Authorization` header.
    authorized: AtomicU64,
}

struct Repo {
    meta: RepoMeta,
    commit: String,
    /// path → sha256 of its content (the blob).
    files: BTreeMap<String, String>,
    tokens: Vec<String>,
    generation: u64,
}

struct Blob {
    bytes: Mutex<Bytes>,
    served: AtomicU64,
    requests: AtomicU64,
    fault: Mutex<Fault>,
}

/// A saved page of the Ollama library website (`fixtures/ollama-library/{name}`), as the
/// routes serve it; the download crate's parser tests read the same bytes.
pub fn library_page(name: &str) -> &'static str {
    match name {
        "search-qwen.html" => include_str!("../fixtures/ollama-library/search-qwen.html"),
        "search-empty.html" => include_str!("../fixtures/ollama-library/search-empty.html"),
        "library.html" => include_str!("../fixtures/ollama-library/library.html"),
        "tags-qwen3.html" => include_str!("../fixtures/ollama-library/tags-qwen3.html"),
        other => panic!("no saved library page {other}"),
    }
}

fn html(page: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

#[derive(Deserialize)]
struct LibrarySearch {
    #[serde(default)]
    q: String,
}

async fn library_search(Query(q): Query<LibrarySearch>) -> Response {
    if q.q.trim().eq_ignore_ascii_case("qwen") {
        html(library_page("search-qwen.html"))
    } else {
        html(library_page("search-empty.html"))
    }
}

async fn library_tags(Path(name): Path<String>) -> Response {
    if name == "qwen3" {
        html(library_page("tags-qwen3.html"))
    } else {
        (
            StatusCode::NOT_FOUND,
            "<html><body><h1>404</h1><p>Not found</p></body></html>",
        )
            .into_response()
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// A small but complete GGUF model (real header, zero-filled tensor data) made by the
/// project's writer; `file_type` is a `llama_ftype` (15 = Q4_K_M).
pub fn gguf_model(name: &str, file_type: u32) -> Vec<u8> {
    let mut m = gguf::fixtures::LlamaLike::new(name, "llama", file_type, 2048, 64);
    m.with_tensor_data = true;
    m.to_bytes()
}

impl Hub {
    pub async fn start() -> Hub {
        let hub_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind hub");
        let cdn_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind cdn");
        let url = format!("http://{}", hub_listener.local_addr().expect("addr"));
        let cdn_url = format!("http://{}", cdn_listener.local_addr().expect("addr"));
        let state = Arc::new(State {
            hub_url: url.clone(),
            cdn_url: cdn_url.clone(),
            repos: Mutex::default(),
            blobs: Mutex::default(),
            manifests: Mutex::default(),
            open: AtomicU64::new(0),
            max_open: AtomicU64::new(0),
            release: watch::Sender::new(0),
            tree_page: AtomicU64::new(1000),
            registry_auth: Default::default(),
            issued: Mutex::default(),
            token_requests: AtomicU64::new(0),
            challenges: AtomicU64::new(0),
            authorized: AtomicU64::new(0),
        });
        let hub = Router::new()
            .route("/api/models", get(search))
            .route("/api/models/{org}/{name}", get(model_info))
            .route("/api/models/{org}/{name}/tree/{rev}", get(tree))
            .route(
                "/{org}/{name}/resolve/{rev}/{*path}",
                get(resolve).head(resolve),
            )
            .route("/v2/{ns}/{model}/manifests/{tag}", get(manifest))
            .route("/v2/{ns}/{model}/blobs/{digest}", get(blob_redirect))
            .route("/search", get(library_search))
            .route(
                "/library",
                get(|| async { html(library_page("library.html")) }),
            )
            .route("/library/{name}/tags", get(library_tags))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                count_authorized,
            ))
            .with_state(state.clone());
        let cdn = Router::new()
            .route("/cdn/{sha}", get(cdn_file).head(cdn_file))
            .route("/token", get(issue_token))
            .with_state(state.clone());
        let servers = vec![
            tokio::spawn(async move {
                let _ = axum::serve(hub_listener, hub).await;
            }),
            tokio::spawn(async move {
                let _ = axum::serve(cdn_listener, cdn).await;
            }),
        ];
        Hub {
            url,
            cdn_url,
            state,
            servers,
        }
    }

    /// Adds (or replaces) a repository `org/name` with these files.
    pub fn add_repo(&self, id: &str, meta: RepoMeta, files: &[(&str, Vec<u8>)]) {
        let mut map = BTreeMap::new();
        for (path, bytes) in files {
            map.insert(path.to_string(), self.store_blob(bytes.clone()));
        }
        let mut repo = Repo {
            meta,
            commit: String::new(),
            files: map,
            tokens: Vec::new(),
            generation: 0,
        };
        repo.commit = commit_of(id, &repo);
        self.state
            .repos
            .lock()
            .unwrap()
            .insert(id.to_string(), repo);
    }

    /// Lets `token` download from a gated repository.
    pub fn grant(&self, repo: &str, token: &str) {
        let mut repos = self.state.repos.lock().unwrap();
        repos.get_mut(repo).expect("repo").tokens.push(token.into());
    }

    /// A new commit in which `path` has other content (the file changed on the hub).
    pub fn replace_file(&self, repo: &str, path: &str, bytes: Vec<u8>) {
        let sha = self.store_blob(bytes);
        let mut repos = self.state.repos.lock().unwrap();
        let r = repos.get_mut(repo).expect("repo");
        r.files.insert(path.into(), sha);
        r.generation += 1;
        r.commit = commit_of(repo, r);
    }

    /// The CDN serves `path` with one byte changed (same size), while the hub still
    /// announces the original sha256.
    pub fn corrupt(&self, repo: &str, path: &str) {
        flip_last_byte(&self.blob_of(repo, path));
    }

    /// The CDN serves the blob `sha` with one byte changed.
    pub fn corrupt_blob(&self, sha: &str) {
        flip_last_byte(&self.state.blobs.lock().unwrap()[sha]);
    }

    pub fn set_fault(&self, repo: &str, path: &str, fault: Fault) {
        *self.blob_of(repo, path).fault.lock().unwrap() = fault;
    }

    /// The next transfer of `path` stops sending at byte `at` until [`Hub::release`].
    pub fn stall(&self, repo: &str, path: &str, at: u64) {
        self.set_fault(
            repo,
            path,
            Fault {
                stall_at: Some(at),
                ..Fault::default()
            },
        );
    }

    /// Lets every stalled transfer go on.
    pub fn release(&self) {
        self.state.release.send_modify(|n| *n += 1);
    }

    /// Bytes the CDN has sent of this file so far (all transfers).
    pub fn served(&self, repo: &str, path: &str) -> u64 {
        self.blob_of(repo, path).served.load(Ordering::SeqCst)
    }

    /// CDN requests for this file so far.
    pub fn requests(&self, repo: &str, path: &str) -> u64 {
        self.blob_of(repo, path).requests.load(Ordering::SeqCst)
    }

    /// CDN transfers open right now.
    pub fn open_transfers(&self) -> u64 {
        self.state.open.load(Ordering::SeqCst)
    }

    /// The most CDN transfers that were open at once.
    pub fn max_open_transfers(&self) -> u64 {
        self.state.max_open.load(Ordering::SeqCst)
    }

    /// The commit `main` points to.
    pub fn commit(&self, repo: &str) -> String {
        self.state.repos.lock().unwrap()[repo].commit.clone()
    }

    /// Tree entries per page from now on.
    pub fn set_tree_page(&self, n: u64) {
        self.state.tree_page.store(n.max(1), Ordering::SeqCst);
    }

    /// Publishes an Ollama model `ns/model:tag` with these layers (media type, bytes) and
    /// a config blob; returns the manifest as served.
    pub fn add_ollama_model(
        &self,
        ns: &str,
        model: &str,
        tag: &str,
        layers: &[(&str, Vec<u8>)],
    ) -> Vec<u8> {
        let config = br#"{"model_format":"gguf","model_family":"llama","file_type":"Q4_K_M"}"#;
        let layer = |media: &str, bytes: &[u8]| json!({"mediaType": media, "digest": format!("sha256:{}", self.store_blob(bytes.to_vec())), "size": bytes.len()});
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": layer("application/vnd.docker.container.image.v1+json", config),
            "layers": layers.iter().map(|(m, b)| layer(m, b)).collect::<Vec<_>>(),
        });
        let raw = serde_json::to_vec(&manifest).expect("json");
        self.state
            .manifests
            .lock()
            .unwrap()
            .insert(format!("{ns}/{model}/{tag}"), raw.clone());
        raw
    }

    /// From now on the registry routes answer 401 with a bearer challenge to requests
    /// without a token issued for the repository.
    pub fn require_registry_auth(&self, on: bool) {
        self.state.registry_auth.store(on, Ordering::SeqCst);
    }

    /// Requests to the hub (API, resolve, registry) that carried `Authorization`.
    pub fn authorized_requests(&self) -> u64 {
        self.state.authorized.load(Ordering::SeqCst)
    }

    /// Tokens asked of the realm so far.
    pub fn token_requests(&self) -> u64 {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    /// 401 challenges the registry answered so far.
    pub fn challenges(&self) -> u64 {
        self.state.challenges.load(Ordering::SeqCst)
    }

    /// Every issued token stops being accepted (they expired).
    pub fn expire_tokens(&self) {
        self.state.issued.lock().unwrap().clear();
    }

    /// Counters and faults of an Ollama blob (by its sha256 hex).
    pub fn blob_served(&self, sha: &str) -> u64 {
        self.state.blobs.lock().unwrap()[sha]
            .served
            .load(Ordering::SeqCst)
    }

    pub fn set_blob_fault(&self, sha: &str, fault: Fault) {
        *self.state.blobs.lock().unwrap()[sha].fault.lock().unwrap() = fault;
    }

    fn store_blob(&self, bytes: Vec<u8>) -> String {
        let sha = sha256_hex(&bytes);
        self.state
            .blobs
            .lock()
            .unwrap()
            .entry(sha.clone())
            .or_insert_with(|| {
                Arc::new(Blob {
                    bytes: Mutex::new(Bytes::from(bytes)),
                    served: AtomicU64::new(0),
                    requests: AtomicU64::new(0),
                    fault: Mutex::default(),
                })
            });
        sha
    }

    fn blob_of(&self, repo: &str, path: &str) -> Arc<Blob> {
        let sha = self.state.repos.lock().unwrap()[repo].files[path].clone();
        self.state.blobs.lock().unwrap()[&sha].clone()
    }
}

fn flip_last_byte(blob: &Blob) {
    let mut bytes = blob.bytes.lock().unwrap();
    let mut v = bytes.to_vec();
    let last = v.len() - 1;
    v[last] ^= 0xff;
    *bytes = Bytes::from(v);
}

/// A stable 40-hex commit id for the repository's current content.
fn commit_of(id: &str, repo: &Repo) -> String {
    let mut h = Sha256::new();
    h.update(id.as_bytes());
    h.update(repo.generation.to_le_bytes());
    for (p, s) in &repo.files {
        h.update(p.as_bytes());
        h.update(s.as_bytes());
    }
    format!("{:x}", h.finalize())[..40].to_string()
}

fn hub_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut r = (status, json!({ "error": message }).to_string()).into_response();
    let h = r.headers_mut();
    h.insert("x-error-code", HeaderValue::from_str(code).expect("ascii"));
    h.insert(
        "x-error-message",
        HeaderValue::from_str(message).expect("ascii"),
    );
    r
}

fn registry_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"errors": [{"code": code, "message": message}]});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct SearchParams {
    #[serde(default)]
    search: String,
    filter: Option<String>,
    sort: Option<String>,
    limit: Option<usize>,
    cursor: Option<usize>,
}

async fn search(AxState(state): AxState<Arc<State>>, Query(p): Query<SearchParams>) -> Response {
    let repos = state.repos.lock().unwrap();
    let needle = p.search.to_ascii_lowercase();
    let mut hits: Vec<(&String, &Repo)> = repos
        .iter()
        .filter(|(id, _)| id.to_ascii_lowercase().contains(&needle))
        .filter(|(_, r)| p.filter.as_deref() != Some("gguf") || has_gguf(r))
        .collect();
    match p.sort.as_deref() {
        Some("likes") => hits.sort_by_key(|(_, r)| std::cmp::Reverse(r.meta.likes)),
        Some("lastModified") => {
            hits.sort_by(|a, b| b.1.meta.last_modified.cmp(&a.1.meta.last_modified))
        }
        _ => hits.sort_by_key(|(_, r)| std::cmp::Reverse(r.meta.downloads)),
    }
    let limit = p.limit.unwrap_or(1000).clamp(1, 1000);
    let from = p.cursor.unwrap_or(0).min(hits.len());
    let page: Vec<_> = hits[from..]
        .iter()
        .take(limit)
        .map(|(id, r)| {
            json!({"_id": id, "id": id, "modelId": id, "likes": r.meta.likes,
                   "downloads": r.meta.downloads, "tags": tags(r),
                   "lastModified": r.meta.last_modified, "private": false,
                   "pipeline_tag": "text-generation", "library_name": "gguf"})
        })
        .collect();
    let mut response = axum::Json(page).into_response();
    if from + limit < hits.len() {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("search", &p.search)
            .extend_pairs(p.filter.iter().map(|f| ("filter", f)))
            .extend_pairs(p.sort.iter().map(|s| ("sort", s)))
            .append_pair("direction", "-1")
            .append_pair("limit", &limit.to_string())
            .append_pair("cursor", &(from + limit).to_string())
            .finish();
        let link = format!("<{}/api/models?{query}>; rel=\"next\"", state.hub_url);
        response
            .headers_mut()
            .insert(header::LINK, HeaderValue::from_str(&link).expect("ascii"));
    }
    response
}

fn has_gguf(r: &Repo) -> bool {
    r.files.keys().any(|p| p.ends_with(".gguf"))
}

fn tags(r: &Repo) -> Vec<String> {
    let mut t = vec!["text-generation".to_string()];
    if has_gguf(r) {
        t.push("gguf".into());
    }
    if let Some(l) = &r.meta.license {
        t.push(format!("license:{l}"));
    }
    t
}

async fn model_info(
    AxState(state): AxState<Arc<State>>,
    Path((org, name)): Path<(String, String)>,
) -> Response {
    let id = format!("{org}/{name}");
    let repos = state.repos.lock().unwrap();
    let Some(r) = repos.get(&id) else {
        return hub_error(
            StatusCode::NOT_FOUND,
            "RepoNotFound",
            "Repository not found",
        );
    };
    axum::Json(json!({
        "_id": id, "id": id, "modelId": id, "sha": r.commit,
        "siblings": r.files.keys().map(|p| json!({"rfilename": p})).collect::<Vec<_>>(),
        "tags": tags(r), "downloads": r.meta.downloads, "likes": r.meta.likes,
        "gated": if r.meta.gated { json!("auto") } else { json!(false) },
        "private": false, "lastModified": r.meta.last_modified,
        "cardData": {"license": r.meta.license},
    }))
    .into_response()
}

#[derive(Deserialize)]
struct TreeParams {
    cursor: Option<usize>,
}

async fn tree(
    AxState(state): AxState<Arc<State>>,
    Path((org, name, rev)): Path<(String, String, String)>,
    Query(p): Query<TreeParams>,
) -> Response {
    let id = format!("{org}/{name}");
    let repos = state.repos.lock().unwrap();
    let Some(r) = repos.get(&id) else {
        return hub_error(
            StatusCode::NOT_FOUND,
            "RepoNotFound",
            "Repository not found",
        );
    };
    if rev != "main" && rev != r.commit {
        return hub_error(StatusCode::NOT_FOUND, "RevisionNotFound", "Invalid rev id");
    }
    let blobs = state.blobs.lock().unwrap();
    let mut entries = Vec::new();
    let mut dirs = std::collections::BTreeSet::new();
    for (path, sha) in &r.files {
        let mut d = path.as_str();
        while let Some((parent, _)) = d.rsplit_once('/') {
            dirs.insert(parent.to_string());
            d = parent;
        }
        let size = blobs[sha].bytes.lock().unwrap().len();
        let git_oid = &sha256_hex(format!("blob {sha}").as_bytes())[..40];
        let mut e = json!({"type": "file", "oid": git_oid, "size": size, "path": path});
        if path.ends_with(".gguf") {
            e["lfs"] = json!({"oid": sha, "size": size, "pointerSize": 134});
        }
        entries.push(e);
    }
    for d in dirs {
        entries.push(json!({"type": "directory", "oid": "0".repeat(40), "size": 0, "path": d}));
    }
    let page = state.tree_page.load(Ordering::SeqCst) as usize;
    let from = p.cursor.unwrap_or(0).min(entries.len());
    let slice: Vec<_> = entries[from..].iter().take(page).cloned().collect();
    let mut response = axum::Json(slice).into_response();
    if from + page < entries.len() {
        let link = format!(
            "<{}/api/models/{id}/tree/{rev}?recursive=true&cursor={}>; rel=\"next\"",
            state.hub_url,
            from + page
        );
        response
            .headers_mut()
            .insert(header::LINK, HeaderValue::from_str(&link).expect("ascii"));
    }
    response
}

async fn resolve(
    AxState(state): AxState<Arc<State>>,
    Path((org, name, rev, path)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let id = format!("{org}/{name}");
    let repos = state.repos.lock().unwrap();
    let Some(r) = repos.get(&id) else {
        return hub_error(
            StatusCode::NOT_FOUND,
            "RepoNotFound",
            "Repository not found",
        );
    };
    if r.meta.gated {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match token {
            None => {
                return hub_error(
                    StatusCode::UNAUTHORIZED,
                    "GatedRepo",
                    "Access to this model is restricted. You must be authenticated to access it.",
                );
            }
            Some(t) if !r.tokens.iter().any(|g| g == t) => {
                return hub_error(
                    StatusCode::FORBIDDEN,
                    "GatedRepo",
                    "Access to this model is restricted and you are not in the authorized list.",
                );
            }
            Some(_) => {}
        }
    }
    if rev != "main" && rev != r.commit {
        return hub_error(StatusCode::NOT_FOUND, "RevisionNotFound", "Invalid rev id");
    }
    let Some(sha) = r.files.get(&path) else {
        return hub_error(StatusCode::NOT_FOUND, "EntryNotFound", "Entry not found");
    };
    let size = state.blobs.lock().unwrap()[sha].bytes.lock().unwrap().len();
    let location = format!("{}/cdn/{sha}?X-Amz-Signature=fixture", state.cdn_url);
    let mut response = StatusCode::FOUND.into_response();
    let h = response.headers_mut();
    let etag = format!("\"{sha}\"");
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).expect("ascii"),
    );
    h.insert(
        "x-repo-commit",
        HeaderValue::from_str(&r.commit).expect("ascii"),
    );
    h.insert(
        "x-linked-etag",
        HeaderValue::from_str(&etag).expect("ascii"),
    );
    h.insert("x-linked-size", HeaderValue::from(size as u64));
    // The resolve's own ETag names the git pointer, not the content.
    let pointer = format!(
        "\"{}\"",
        &sha256_hex(format!("pointer {sha}").as_bytes())[..40]
    );
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&pointer).expect("ascii"),
    );
    response
}

async fn manifest(
    AxState(state): AxState<Arc<State>>,
    Path((ns, model, tag)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = registry_auth(&state, &ns, &model, &headers) {
        return refused;
    }
    const V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
    let accepts = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(V2));
    if !accepts {
        return registry_error(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "no manifest in a format the client accepts",
        );
    }
    match state
        .manifests
        .lock()
        .unwrap()
        .get(&format!("{ns}/{model}/{tag}"))
    {
        Some(raw) => ([(header::CONTENT_TYPE, V2)], raw.clone()).into_response(),
        None => registry_error(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "manifest unknown",
        ),
    }
}

async fn blob_redirect(
    AxState(state): AxState<Arc<State>>,
    Path((ns, model, digest)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = registry_auth(&state, &ns, &model, &headers) {
        return refused;
    }
    let sha = digest.strip_prefix("sha256:").unwrap_or_default();
    if !state.blobs.lock().unwrap().contains_key(sha) {
        return registry_error(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            "blob unknown to registry",
        );
    }
    let location = format!("{}/cdn/{sha}", state.cdn_url);
    (
        StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, location)],
    )
        .into_response()
}

async fn count_authorized(
    AxState(state): AxState<Arc<State>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.headers().contains_key(header::AUTHORIZATION) {
        state.authorized.fetch_add(1, Ordering::SeqCst);
    }
    next.run(request).await
}

/// The 401 challenge when the registry wants a token for `ns/model` and the request has
/// none issued for that scope.
fn registry_auth(state: &State, ns: &str, model: &str, headers: &HeaderMap) -> Option<Response> {
    if !state.registry_auth.load(Ordering::SeqCst) {
        return None;
    }
    let scope = format!("repository:{ns}/{model}:pull");
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if token.is_some_and(|t| state.issued.lock().unwrap().get(t) == Some(&scope)) {
        return None;
    }
    state.challenges.fetch_add(1, Ordering::SeqCst);
    let challenge = format!(
        "Bearer realm=\"{}/token\",service=\"testhub\",scope=\"{scope}\"",
        state.cdn_url
    );
    let mut response = registry_error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "authentication required",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&challenge).expect("ascii"),
    );
    Some(response)
}

#[derive(Deserialize)]
struct TokenParams {
    service: Option<String>,
    scope: Option<String>,
}

/// The realm: an anonymous token for any `repository:…:pull` scope of service `testhub`.
async fn issue_token(
    AxState(state): AxState<Arc<State>>,
    Query(p): Query<TokenParams>,
) -> Response {
    let n = state.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
    let (Some("testhub"), Some(scope)) = (p.service.as_deref(), p.scope) else {
        return (StatusCode::BAD_REQUEST, "service and scope required").into_response();
    };
    let token = format!("tk-{n}-{}", &sha256_hex(scope.as_bytes())[..16]);
    state.issued.lock().unwrap().insert(token.clone(), scope);
    axum::Json(json!({"token": token, "access_token": token, "expires_in": 300})).into_response()
}

/// Counts an open transfer until dropped (hyper drops the body when the client leaves).
struct OpenGuard(Arc<State>);

impl OpenGuard {
    fn new(state: Arc<State>) -> OpenGuard {
        let now = state.open.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_open.fetch_max(now, Ordering::SeqCst);
        OpenGuard(state)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn cdn_file(
    AxState(state): AxState<Arc<State>>,
    Path(sha): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    if headers.contains_key(header::AUTHORIZATION) {
        return (
            StatusCode::BAD_REQUEST,
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
             Signature query string parameter or the Authorization header should be specified",
        )
            .into_response();
    }
    let Some(blob) = state.blobs.lock().unwrap().get(&sha).cloned() else {
        return (StatusCode::NOT_FOUND, "NoSuchKey").into_response();
    };
    blob.requests.fetch_add(1, Ordering::SeqCst);
    let bytes = blob.bytes.lock().unwrap().clone();
    let len = bytes.len() as u64;
    let fault = blob.fault.lock().unwrap().clone();
    let etag = format!("\"cdn-{}\"", &sha[..32]);
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_range)
        .filter(|_| !fault.ignore_range);
    let (status, start, end) = match range {
        Some((start, _)) if start >= len => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [
                    (header::CONTENT_RANGE, format!("bytes */{len}")),
                    (header::ETAG, etag),
                ],
            )
                .into_response();
        }
        Some((start, end)) => (
            StatusCode::PARTIAL_CONTENT,
            start,
            end.map_or(len, |e| (e + 1).min(len)),
        ),
        None => (StatusCode::OK, 0, len),
    };
    let mut response = if method == Method::HEAD {
        Response::new(Body::empty())
    } else {
        // The faults fire once: a retry gets the file.
        {
            let mut f = blob.fault.lock().unwrap();
            if f.cut_at.is_some_and(|c| c >= start && c < end) {
                f.cut_at = None;
            }
            if f.stall_at.is_some_and(|s| s >= start && s < end) {
                f.stall_at = None;
            }
        }
        let cut_at = fault.cut_at.filter(|&c| c >= start && c < end);
        let stall_at = fault.stall_at.filter(|&s| s >= start && s < end);
        Response::new(Body::from_stream(body_stream(
            state.clone(),
            blob.clone(),
            bytes,
            start,
            end,
            cut_at,
            stall_at,
        )))
    };
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if !fault.no_etag {
        h.insert(header::ETAG, HeaderValue::from_str(&etag).expect("ascii"));
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        let v = format!("bytes {start}-{}/{len}", end - 1);
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&v).expect("ascii"),
        );
    }
    response
}

/// `bytes=N-` or `bytes=N-M` → (N, M).
fn parse_range(v: &str) -> Option<(u64, Option<u64>)> {
    let (start, end) = v.strip_prefix("bytes=")?.split_once('-')?;
    let end = if end.is_empty() {
        None
    } else {
        Some(end.parse().ok()?)
    };
    Some((start.parse().ok()?, end))
}

struct Sending {
    blob: Arc<Blob>,
    bytes: Bytes,
    pos: u64,
    end: u64,
    cut_at: Option<u64>,
    stall_at: Option<u64>,
    release: watch::Receiver<u64>,
    /// Dropped with the last chunk: a client that has the whole file sees it closed.
    open: Option<OpenGuard>,
}

const CHUNK: u64 = 16 * 1024;

fn body_stream(
    state: Arc<State>,
    blob: Arc<Blob>,
    bytes: Bytes,
    start: u64,
    end: u64,
    cut_at: Option<u64>,
    stall_at: Option<u64>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    let mut release = state.release.subscribe();
    release.borrow_and_update();
    let sending = Sending {
        blob,
        bytes,
        pos: start,
        end,
        cut_at,
        stall_at,
        release,
        open: Some(OpenGuard::new(state)),
    };
    futures_util::stream::unfold(Some(sending), |s| async move {
        let mut s = s?;
        if s.pos >= s.end {
            return None;
        }
        if s.cut_at == Some(s.pos) {
            // An error ends the body mid-message: hyper closes the connection.
            let e = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut by the test");
            return Some((Err(e), None));
        }
        if s.stall_at == Some(s.pos) {
            s.stall_at = None;
            let _ = s.release.changed().await;
        }
        let mut next = (s.pos + CHUNK).min(s.end);
        for point in [s.cut_at, s.stall_at].into_iter().flatten() {
            if point > s.pos {
                next = next.min(point);
            }
        }
        let chunk = s.bytes.slice(s.pos as usize..next as usize);
        s.blob.served.fetch_add(next - s.pos, Ordering::SeqCst);
        s.pos = next;
        if s.pos >= s.end {
            s.open = None;
        }
        Some((Ok(chunk), Some(s)))
    })
}
