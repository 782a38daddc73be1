//! Model downloads as the application offers them (issue 11): the one download queue, the
//! Hugging Face hub client and the Ollama registry client, behind checks that run before
//! anything is queued.
//!
//! - What a name means ([`Pull`]): `org/repo:Q4_K_M`, `org/repo` + a file, a URL (a hub
//!   resolve URL is a hub file), an Ollama `name:tag` or `host/ns/name:tag`.
//! - Before queueing: the repository, file or quantization exists (the tree says which; a
//!   missing or ambiguous quantization lists what there is), the disk has the remaining
//!   size plus `download.free_space_margin_mb`, and the same download is not queued twice
//!   (asking again gives the existing task, resumed if it was paused or failed).
//! - Hugging Face files go to `<models>/<org>/<repo>/`, Ollama models to
//!   `<models>/ollama/` in Ollama's layout; partial files stay in `<data>/partial` until
//!   verified (the queue's transfers do that).
//! - When a task's files are in place the catalog is scanned again before the task is
//!   reported completed, and `model.added` is published for each model it brought; every
//!   state change and, while downloading, at most [`PROGRESS_EVERY`] apart, a
//!   `download.progress` event carries the task's status.

use crate::error::ServiceError;
use crate::models::Models;
use download::hf::{self, GgufModel, Hub, ModelInfo, ModelSummary, SearchQuery, Sort};
use download::ollama::{self, Registry};
use download::ollama_library::{Library, LibraryModel, ModelTags};
use download::queue::{Queue, QueueOptions, Status, TaskId, TaskSpec};
use download::transfer::{FileSpec, TransferOptions};
use download::{Error as DlError, Origin};
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

pub use download::queue::PartStatus as DownloadPart;
pub use download::queue::State as DownloadState;
pub use download::queue::Status as DownloadStatus;
pub use download::queue::TaskId as DownloadId;

/// `download.progress` events of one task are at least this far apart while it downloads
/// (state changes are published at once).
pub const PROGRESS_EVERY: Duration = Duration::from_millis(250);

pub use download::hf::DEFAULT_ENDPOINT as DEFAULT_HF_ENDPOINT;

/// How long finding out what a pull means (manifest, repository tree) may take.
const PLAN_TIMEOUT: Duration = Duration::from_secs(120);

/// Longest name, file or query accepted (hub ids are far shorter).
const MAX_INPUT: usize = 1024;

/// Which hub a name is for, when the caller says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    #[serde(alias = "hf")]
    Huggingface,
    Ollama,
    Url,
}

impl SourceKind {
    pub fn parse(s: &str) -> Result<SourceKind, ServiceError> {
        match s.to_ascii_lowercase().as_str() {
            "huggingface" | "hf" => Ok(SourceKind::Huggingface),
            "ollama" => Ok(SourceKind::Ollama),
            "url" => Ok(SourceKind::Url),
            _ => Err(ServiceError::invalid(
                "source",
                format!("{s:?} is not a source (huggingface, ollama or url)"),
            )),
        }
    }
}

/// What a caller asks to download.
#[derive(Debug, Clone, Default)]
pub struct PullRequest {
    /// `org/repo[:QUANT]`, a URL, or an Ollama `[host/][ns/]name[:tag]`.
    pub name: String,
    /// A file of the repository (a split set by any of its parts or its common name).
    pub file: Option<String>,
    pub source: Option<SourceKind>,
    /// Hugging Face revision (default `main`).
    pub revision: Option<String>,
}

/// A started (or already running) task.
#[derive(Debug, Clone, Serialize)]
pub struct Started {
    #[serde(flatten)]
    pub status: Status,
    /// The same download was asked for before: this is that task.
    pub existing: bool,
}

/// A repository's GGUF files, for choosing what to pull.
#[derive(Debug, Clone, Serialize)]
pub struct RepoFiles {
    pub repo: String,
    pub revision: String,
    pub info: ModelInfo,
    pub license: Option<String>,
    pub files: Vec<GgufModel>,
}

/// A model's facts and what can be pulled of it, as its source describes them. Hugging Face
/// serializes as [`RepoFiles`] always did; Ollama as `{"source":"ollama","model":…,"tags":[…]}`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ModelFiles {
    Huggingface(RepoFiles),
    Ollama {
        source: SourceKind,
        #[serde(flatten)]
        page: ModelTags,
    },
}

/// What a search found: `{"source":"huggingface","models":[ModelSummary…]}` or
/// `{"source":"ollama","models":[LibraryModel…]}`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "source", content = "models", rename_all = "lowercase")]
pub enum SearchResults {
    Huggingface(Vec<ModelSummary>),
    Ollama(Vec<LibraryModel>),
}

impl SearchResults {
    pub fn is_empty(&self) -> bool {
        match self {
            SearchResults::Huggingface(m) => m.is_empty(),
            SearchResults::Ollama(m) => m.is_empty(),
        }
    }
}

/// A search.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub query: String,
    pub source: Option<SourceKind>,
    pub sort: Sort,
    pub limit: u32,
    /// One of [`CATEGORIES`]' ids.
    pub category: Option<String>,
}

/// A category of models, matched by the hub's pipeline tag and tags.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Category {
    pub id: &'static str,
    pub name: &'static str,
    /// A model is in the category when its pipeline tag or one of its tags is one of these.
    pub tags: &'static [&'static str],
}

pub const CATEGORIES: &[Category] = &[
    Category {
        id: "chat",
        name: "Chat and text generation",
        tags: &["text-generation", "conversational"],
    },
    Category {
        id: "code",
        name: "Code",
        tags: &["code", "text-generation-code"],
    },
    Category {
        id: "vision",
        name: "Vision (image and text)",
        tags: &["image-text-to-text", "visual-question-answering", "vision"],
    },
    Category {
        id: "embedding",
        name: "Embeddings",
        tags: &["feature-extraction", "sentence-similarity", "embeddings"],
    },
    Category {
        id: "rerank",
        name: "Rerankers",
        tags: &["text-ranking", "reranker"],
    },
];

/// What the event feed publishes.
#[derive(Debug, Clone)]
pub enum DownloadEvent {
    /// `download.progress`: a state change, or figures while downloading.
    Progress(Status),
    /// `model.added`: a completed download brought this model into the catalog.
    ModelAdded {
        task: TaskId,
        model: catalog::ModelEntry,
    },
}

impl DownloadEvent {
    pub fn name(&self) -> &'static str {
        match self {
            DownloadEvent::Progress(_) => "download.progress",
            DownloadEvent::ModelAdded { .. } => "model.added",
        }
    }
}

/// Where downloads go.
#[derive(Debug, Clone)]
struct Dirs {
    models: PathBuf,
    ollama: PathBuf,
    partial: PathBuf,
}

/// The download service (one per process).
pub struct Downloads {
    queue: Queue,
    hub: Hub,
    registry: Registry,
    /// The Ollama library website (`download.ollama_library_url`).
    library: Library,
    models: Arc<Models>,
    dirs: Dirs,
    insecure: bool,
    /// Bytes kept free beyond a download's remaining size.
    margin: u64,
    hf_token: Option<String>,
    events: broadcast::Sender<DownloadEvent>,
    /// `<data>/downloads.lock` while this process runs the data folder's queue (see
    /// [`Downloads::claim_queue`]); `None` in the path when tasks are not recorded.
    queue_lock: Option<PathBuf>,
    held: std::sync::Mutex<Option<std::fs::File>>,
}

impl Downloads {
    /// The queue (recording tasks in the models' store), the hub and registry clients from
    /// `[download]`; publishes events from now on. Call [`restore`](Self::restore) to bring
    /// back unfinished tasks. Must be called inside a tokio runtime.
    pub fn new(
        models: Arc<Models>,
        config: &config::DownloadConfig,
        paths: &config::Paths,
    ) -> Result<Arc<Downloads>, ServiceError> {
        let client =
            download::http::client(&download::http::ClientOptions::default()).map_err(upstream)?;
        let mut hub = Hub::new(client.clone(), &config.hf_endpoint, config.hf_token.clone())
            .map_err(|e| {
                ServiceError::invalid(
                    "download.hf_endpoint",
                    format!("{e} (download.hf_endpoint, HF_ENDPOINT)"),
                )
            })?;
        if let Some(mirror) = config.hf_mirror.as_deref().filter(|m| !m.is_empty()) {
            let policy = match config.hf_mirror_mode.as_str() {
                "always" => hf::MirrorPolicy::Always,
                _ => hf::MirrorPolicy::Auto,
            };
            hub = hub
                .with_mirror(mirror, policy)
                .map_err(|e| ServiceError::invalid("download.hf_mirror", e.to_string()))?;
        }
        let library = Library::new(client.clone(), &config.ollama_library_url)
            .map_err(|e| ServiceError::invalid("download.ollama_library_url", e.to_string()))?;
        let margin = config.free_space_margin_mb.saturating_mul(1 << 20);
        let options = QueueOptions {
            max_concurrent: config.max_concurrent.max(1) as usize,
            transfer: TransferOptions {
                free_space_margin: margin,
                parts: config.parts.max(1),
                ..TransferOptions::default()
            },
        };
        // The registry's tokens are the transfers': a manifest's token fetches its blobs.
        let registry = Registry::with_tokens(client.clone(), options.transfer.tokens.clone());
        let queue = match models.store_handle() {
            Some(store) => Queue::with_store(client.clone(), options, store),
            None => Queue::new(client.clone(), options),
        };
        let queue_lock = models
            .store_handle()
            .map(|_| paths.data_dir.join("downloads.lock"));
        let downloads = Arc::new_cyclic(|me: &Weak<Downloads>| {
            let me = me.clone();
            queue.set_on_complete(Arc::new(move |id, spec| {
                let me = me.clone();
                Box::pin(async move {
                    if let Some(d) = me.upgrade() {
                        d.announce(id, &spec).await;
                    }
                })
            }));
            Downloads {
                queue: queue.clone(),
                hub,
                registry,
                library,
                models,
                dirs: Dirs {
                    models: paths.models_dir(),
                    ollama: paths.pulled_ollama_dir(),
                    partial: paths.partial_dir(),
                },
                insecure: config.insecure,
                margin,
                hf_token: config.hf_token.clone(),
                events: broadcast::channel(256).0,
                queue_lock,
                held: std::sync::Mutex::new(None),
            }
        });
        tokio::spawn(publish_progress(
            Arc::downgrade(&downloads),
            downloads.queue.changes(),
        ));
        Ok(downloads)
    }

    /// Makes this process the one that runs the data folder's download queue, for as long
    /// as it lives: the tasks recorded in the database and the partial files are then its
    /// alone. A second process (a `pull` while `serve` runs) is refused with a message
    /// saying what to do instead: two queues on one database would overwrite each other's
    /// rows and write the same partial files. An OS file lock, so that a killed process
    /// leaves none behind. Idempotent.
    pub fn claim_queue(&self) -> Result<(), ServiceError> {
        let Some(path) = &self.queue_lock else {
            return Ok(());
        };
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.is_some() {
            return Ok(());
        }
        let io = |e: std::io::Error| {
            ServiceError::Internal(format!("the download lock {}: {e}", path.display()))
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {
                *held = Some(file);
                Ok(())
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(ServiceError::Conflict(format!(
                "another llama-dashboard process runs the downloads of this data folder ({}): \
                 start the download through it (`POST /api/download/start` or the web UI of \
                 `llama-dashboard serve`), or stop it first",
                path.parent().unwrap_or(path).display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
        }
    }

    /// Brings back the unfinished tasks of an earlier run: paused, or queued again when
    /// `resume` (`download.resume_on_start`). Returns how many came back (none when
    /// another process runs the queue, see [`Downloads::claim_queue`]).
    pub async fn restore(&self, resume: bool) -> usize {
        if let Err(e) = self.claim_queue() {
            tracing::warn!("download tasks not restored: {e}");
            return 0;
        }
        let queue = self.queue.clone();
        let token = self.hf_token.clone();
        let restored =
            tokio::task::spawn_blocking(move || queue.restore(resume, token.as_deref())).await;
        match restored {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::warn!("download tasks cannot come back: {e}");
                0
            }
            Err(e) => {
                tracing::warn!("download tasks cannot come back: {e}");
                0
            }
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<DownloadEvent> {
        self.events.subscribe()
    }

    /// A receiver that sees a new value after every state change of any task.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.queue.changes()
    }

    /// Models matching the query: GGUF repositories on the Hugging Face hub, or with
    /// `source: ollama` the Ollama library's models (its whole listing for an empty query).
    pub async fn search(&self, req: &SearchRequest) -> Result<SearchResults, ServiceError> {
        check_len("q", &req.query)?;
        let category = match req.category.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(category(c)?),
        };
        if req.source == Some(SourceKind::Ollama) {
            let query = req.query.trim();
            let found = if query.is_empty() {
                self.library.list().await
            } else {
                self.library.search(query).await
            };
            let found = found.map_err(|e| self.library_error(e))?;
            return Ok(SearchResults::Ollama(
                found
                    .into_iter()
                    .filter(|m| {
                        category.is_none_or(|c| {
                            m.capabilities.iter().any(|t| c.tags.contains(&t.as_str()))
                        })
                    })
                    .take(req.limit.clamp(1, 100) as usize)
                    .collect(),
            ));
        }
        let page = self
            .hub
            .search(&SearchQuery {
                text: req.query.clone(),
                sort: req.sort,
                limit: req.limit.min(100),
            })
            .await
            .map_err(upstream)?;
        Ok(SearchResults::Huggingface(
            page.models
                .into_iter()
                .filter(|m| {
                    category.is_none_or(|c| {
                        m.pipeline_tag
                            .iter()
                            .chain(&m.tags)
                            .any(|t| c.tags.contains(&t.as_str()))
                    })
                })
                .collect(),
        ))
    }

    /// What can be pulled of a model: a Hugging Face repository's facts and GGUF files
    /// (split sets grouped, quantization read from the names, projectors marked), or with
    /// `source: ollama` the Ollama library's tags page of `name` (a `:tag` is ignored).
    pub async fn files(
        &self,
        source: Option<SourceKind>,
        name: &str,
        revision: Option<&str>,
    ) -> Result<ModelFiles, ServiceError> {
        check_len("repo", name)?;
        if source == Some(SourceKind::Ollama) {
            let model = name.split_once(':').map_or(name, |(model, _tag)| model);
            let page = self
                .library
                .tags(model)
                .await
                .map_err(|e| self.library_error(e))?;
            return Ok(ModelFiles::Ollama {
                source: SourceKind::Ollama,
                page,
            });
        }
        let revision = revision.unwrap_or("main");
        check_len("revision", revision)?;
        let info = self.hub.model_info(name).await.map_err(upstream)?;
        let files = self
            .hub
            .gguf_models(name, revision)
            .await
            .map_err(upstream)?;
        Ok(ModelFiles::Huggingface(RepoFiles {
            repo: name.to_string(),
            revision: revision.to_string(),
            license: info.license(),
            info,
            files,
        }))
    }

    /// A library error as [`upstream`] maps it, saying which site did not answer and the
    /// setting that points to it.
    fn library_error(&self, e: DlError) -> ServiceError {
        match upstream(e) {
            ServiceError::Upstream(m) => ServiceError::Upstream(format!(
                "the Ollama library (download.ollama_library_url) did not answer as expected: {m}"
            )),
            other => other,
        }
    }

    /// Checks a download and queues it (or gives the same download's existing task).
    pub async fn start(&self, req: &PullRequest) -> Result<Started, ServiceError> {
        check_len("name", &req.name)?;
        if let Some(f) = &req.file {
            check_len("file", f)?;
        }
        if let Some(r) = &req.revision {
            check_len("revision", r)?;
        }
        self.claim_queue()?;
        // Every read is capped and times out, but a hub trickling bytes could still hold a
        // request for long: the whole plan has one deadline.
        let spec = tokio::time::timeout(PLAN_TIMEOUT, self.plan(req))
            .await
            .map_err(|_| {
                ServiceError::Upstream(format!(
                    "the hub or registry did not finish describing {:?} within {} s",
                    req.name,
                    PLAN_TIMEOUT.as_secs()
                ))
            })??;
        if let Some(done) = self.downloaded_before(&spec) {
            return Ok(Started {
                status: done,
                existing: true,
            });
        }
        if let Some(taken) = spec
            .files
            .iter()
            .find(|f| matches!(f.origin, Origin::Url) && f.dest.exists())
        {
            return Err(ServiceError::Conflict(format!(
                "{} already exists and was not downloaded from {}: remove it first to \
                 download it",
                taken.dest.display(),
                taken.url
            )));
        }
        let running = self.queue.list().into_iter().any(|s| {
            s.label == spec.label && !s.state.is_finished() && s.state != DownloadState::Paused
        });
        if !running {
            // A new task, or a paused or failed one that goes on: it needs the space.
            self.check_space(&spec).await?;
        }
        // Found or added under the queue's lock: the same request twice at once is one task.
        let (id, existing) = self.blocking(move |q| Ok(q.add_unique(spec))).await?;
        Ok(Started {
            status: self.status(id)?,
            existing,
        })
    }

    /// A URL download finished before whose files are still in place: pulling it again
    /// is a no-op that succeeds (as pulling an Ollama model one has), answered with that
    /// task. A URL gives no sha256 to check a file in place against; hub and registry
    /// files have one, and a new task checks them instead (completing at once when they
    /// match). A file that is gone is downloaded again.
    fn downloaded_before(&self, spec: &TaskSpec) -> Option<Status> {
        let in_place = spec
            .files
            .iter()
            .all(|f| matches!(f.origin, Origin::Url) && f.dest.exists());
        if !in_place {
            return None;
        }
        self.queue
            .list()
            .into_iter()
            .filter(|s| s.label == spec.label && s.state == DownloadState::Completed)
            .filter(|s| s.files.iter().eq(spec.files.iter().map(|f| &f.dest)))
            .max_by_key(|s| s.id)
    }

    /// Pauses a task; returns once its partial file is flushed.
    pub async fn pause(&self, id: TaskId) -> Result<Status, ServiceError> {
        self.status(id)?;
        self.queue.pause(id).await.map_err(refused)?;
        self.status(id)
    }

    /// Queues a paused or failed task again.
    pub async fn resume(&self, id: TaskId) -> Result<Status, ServiceError> {
        self.status(id)?;
        self.blocking(move |q| q.resume(id)).await?;
        self.status(id)
    }

    /// Removes a task (stopping it first); `delete_partial` also deletes its partial files.
    /// A completed download's files are models now and stay.
    pub async fn delete(&self, id: TaskId, delete_partial: bool) -> Result<(), ServiceError> {
        self.status(id)?;
        self.queue.cancel(id, delete_partial).await.map_err(refused)
    }

    pub fn list(&self) -> Vec<Status> {
        self.queue.list()
    }

    pub fn status(&self, id: TaskId) -> Result<Status, ServiceError> {
        self.queue
            .status(id)
            .ok_or_else(|| ServiceError::NotFound(format!("no download task {id}")))
    }

    /// Runs a queue call that records to the database on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Queue) -> download::Result<T> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let queue = self.queue.clone();
        tokio::task::spawn_blocking(move || f(&queue))
            .await
            .map_err(|e| ServiceError::Internal(format!("download queue: {e}")))?
            .map_err(refused)
    }

    /// What `req` downloads, checked against the hub or registry.
    async fn plan(&self, req: &PullRequest) -> Result<TaskSpec, ServiceError> {
        match classify(req, self.hub.endpoint())? {
            Pull::Hf {
                repo,
                quant,
                file,
                revision,
            } => {
                self.hf_plan(&repo, quant.as_deref(), file.as_deref(), &revision)
                    .await
            }
            Pull::Ollama(name) => {
                let name = ollama::Name::parse(&name, self.insecure).map_err(|e| {
                    let hint = if name.starts_with("http://") && !self.insecure {
                        " (the setting is download.insecure)"
                    } else {
                        ""
                    };
                    ServiceError::invalid("name", format!("{e}{hint}"))
                })?;
                let fetched = self.registry.manifest(&name).await.map_err(upstream)?;
                ollama::pull_plan(&name, &fetched, &self.dirs.ollama, &self.dirs.partial)
                    .map_err(upstream)
            }
            Pull::Url(url) => self.url_plan(&url),
        }
    }

    async fn hf_plan(
        &self,
        repo: &str,
        quant: Option<&str>,
        file: Option<&str>,
        revision: &str,
    ) -> Result<TaskSpec, ServiceError> {
        let models = self
            .hub
            .gguf_models(repo, revision)
            .await
            .map_err(upstream)?;
        let chosen = choose(repo, &models, quant, file)?;
        if chosen.missing_parts > 0 {
            return Err(ServiceError::Rejected(format!(
                "{repo}: {} is a split set with {} of its parts missing from the repository",
                chosen.name, chosen.missing_parts
            )));
        }
        // Another revision than main lands beside it, never over it.
        let dest = match revision {
            "main" => self.dirs.models.join(repo),
            rev => self
                .dirs
                .models
                .join(format!("{repo}@{}", hf::path_safe(rev))),
        };
        let files = chosen
            .parts
            .iter()
            .map(|part| {
                self.hub
                    .file_spec(repo, revision, part, &dest, &self.dirs.partial)
                    .map_err(|e| ServiceError::invalid("file", e.to_string()))
            })
            .collect::<Result<Vec<FileSpec>, _>>()?;
        Ok(TaskSpec {
            label: match revision {
                "main" => format!("{repo}/{}", chosen.name),
                rev => format!("{repo}/{}@{rev}", chosen.name),
            },
            files,
            finish: Vec::new(),
        })
    }

    /// A GGUF file at a plain URL: it goes into the models folder under its own name.
    fn url_plan(&self, url: &str) -> Result<TaskSpec, ServiceError> {
        let parsed = url::Url::parse(url)
            .map_err(|e| ServiceError::invalid("name", format!("{url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ServiceError::invalid("name", "only http and https URLs"));
        }
        let file = parsed
            .path_segments()
            .and_then(|mut s| s.next_back())
            .map(percent_decoded)
            .unwrap_or_default();
        let valid = gguf::split::strip_gguf(&file).is_some()
            && !file.contains(['/', '\\'])
            && !file.starts_with('.');
        if !valid {
            return Err(ServiceError::invalid(
                "name",
                format!("{url:?} does not name a .gguf file"),
            ));
        }
        // `<models>/<host[_port]>/<file>`: a file of the same name from elsewhere, or the
        // user's own, is never replaced.
        let host = hf::path_safe(&match parsed.port() {
            Some(port) => format!("{}:{port}", parsed.host_str().unwrap_or("host")),
            None => parsed.host_str().unwrap_or("host").to_string(),
        });
        // An existing file there is looked at by `start` (`downloaded_before`).
        let dest = self.dirs.models.join(&host).join(&file);
        let digest = {
            use sha2::Digest;
            format!("{:x}", sha2::Sha256::digest(url.as_bytes()))
        };
        Ok(TaskSpec {
            label: url.to_string(),
            files: vec![FileSpec {
                url: url.to_string(),
                dest,
                partial: self
                    .dirs
                    .partial
                    .join(format!("url--{host}--{}--{file}.part", &digest[..16])),
                sha256: None,
                size: None,
                origin: Origin::Url,
                bearer: None,
                mirror_url: None,
            }],
            finish: Vec::new(),
        })
    }

    /// Refuses a download the disk cannot hold, with the margin left free, after what the
    /// tasks already downloading or queued still need. The file system is read on a
    /// blocking thread.
    async fn check_space(&self, spec: &TaskSpec) -> Result<(), ServiceError> {
        let others = self
            .queue
            .list()
            .into_iter()
            .filter(|s| s.label != spec.label)
            .filter(|s| {
                matches!(
                    s.state,
                    DownloadState::Queued | DownloadState::Downloading | DownloadState::Verifying
                )
            })
            .filter_map(|s| s.total.map(|t| t.saturating_sub(s.done)))
            .fold(0u64, u64::saturating_add);
        let spec = spec.clone();
        let probe = self.dirs.partial.join("probe");
        let options = TransferOptions {
            free_space_margin: self.margin,
            ..TransferOptions::default()
        };
        let checked = tokio::task::spawn_blocking(move || {
            let remaining = remaining_bytes(&spec).saturating_add(others);
            download::transfer::check_space(&probe, remaining, &options)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("free space check: {e}")))?;
        checked.map_err(|e| match e {
            DlError::DiskSpace { .. } => ServiceError::Rejected(format!(
                "{e}; free some space or lower download.free_space_margin_mb"
            )),
            e => ServiceError::Internal(e.to_string()),
        })
    }

    /// A task's files are in place: the catalog scans them before the task is reported
    /// completed, and each model they make is announced.
    async fn announce(&self, id: TaskId, spec: &TaskSpec) {
        let models = self.models.clone();
        let Ok(report) = tokio::task::spawn_blocking(move || models.rescan()).await else {
            return;
        };
        let files: Vec<&PathBuf> = spec.files.iter().map(|f| &f.dest).collect();
        for entry in report
            .models
            .iter()
            .filter(|m| m.parts.iter().any(|p| files.contains(&p)))
        {
            tracing::info!(model = %entry.id, task = id, "downloaded model added");
            let _ = self.events.send(DownloadEvent::ModelAdded {
                task: id,
                model: entry.clone(),
            });
        }
    }
}

/// What `spec` still has to download: each file's size less what is in place or on disk
/// (saturating: sizes come from a registry).
fn remaining_bytes(spec: &TaskSpec) -> u64 {
    spec.files
        .iter()
        .filter_map(|f| {
            let size = f.size?;
            let in_place = std::fs::metadata(&f.dest).is_ok_and(|m| m.len() == size);
            (!in_place).then(|| size.saturating_sub(download::transfer::partial_bytes(f)))
        })
        .fold(0u64, u64::saturating_add)
}

/// Publishes `download.progress`: each state change, and figures while a task downloads at
/// most every [`PROGRESS_EVERY`].
async fn publish_progress(me: Weak<Downloads>, mut changes: tokio::sync::watch::Receiver<u64>) {
    struct Seen {
        state: DownloadState,
        done: u64,
        at: Instant,
    }
    let mut seen: HashMap<TaskId, Seen> = HashMap::new();
    loop {
        let active = {
            let Some(d) = me.upgrade() else { return };
            let list = d.queue.list();
            let now = Instant::now();
            for s in &list {
                let prev = seen.get(&s.id);
                let changed = prev.is_none_or(|p| p.state != s.state);
                let due = prev.is_some_and(|p| {
                    now.duration_since(p.at) >= PROGRESS_EVERY && p.done != s.done
                });
                if changed || due {
                    let _ = d.events.send(DownloadEvent::Progress(s.clone()));
                    seen.insert(
                        s.id,
                        Seen {
                            state: s.state.clone(),
                            done: s.done,
                            at: now,
                        },
                    );
                }
            }
            seen.retain(|id, _| list.iter().any(|s| s.id == *id));
            list.iter().any(|s| {
                matches!(
                    s.state,
                    DownloadState::Downloading | DownloadState::Verifying
                )
            })
        };
        tokio::select! {
            r = changes.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(PROGRESS_EVERY), if active => {}
        }
    }
}

/// What a name asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pull {
    Hf {
        repo: String,
        quant: Option<String>,
        file: Option<String>,
        revision: String,
    },
    /// An Ollama name, parsed by [`ollama::Name::parse`].
    Ollama(String),
    Url(String),
}

/// Tells which hub a name is for. Without a `source`: a URL ending in `.gguf` is a file (a
/// resolve URL of the configured hub is that hub's file); `hf.co/…` and `owner/repo` are
/// Hugging Face; `name[:tag]` and `host/ns/name[:tag]` are Ollama, as `ollama pull` reads
/// them.
fn classify(req: &PullRequest, hub_endpoint: &str) -> Result<Pull, ServiceError> {
    let name = req.name.trim();
    if name.is_empty() {
        return Err(ServiceError::invalid("name", "is empty"));
    }
    let revision = req.revision.clone().unwrap_or_else(|| "main".into());
    let hf = |rest: &str| {
        let (repo, quant) = match rest.split_once(':') {
            Some((r, q)) => (r, Some(q.to_string()).filter(|q| !q.is_empty())),
            None => (rest, None),
        };
        Pull::Hf {
            repo: repo.to_string(),
            quant,
            file: req.file.clone(),
            revision: revision.clone(),
        }
    };
    let is_url = name.starts_with("http://") || name.starts_with("https://");
    let gguf_url = is_url && url::Url::parse(name).is_ok_and(|u| u.path().ends_with(".gguf"));
    match req.source {
        Some(SourceKind::Ollama) => return Ok(Pull::Ollama(name.to_string())),
        Some(SourceKind::Url) => return Ok(Pull::Url(name.to_string())),
        Some(SourceKind::Huggingface) if !gguf_url => return Ok(hf(strip_hf_host(name))),
        _ => {}
    }
    if gguf_url {
        if let Some(p) = hub_file_url(name, hub_endpoint) {
            return Ok(p);
        }
        return Ok(Pull::Url(name.to_string()));
    }
    if is_url {
        return Ok(Pull::Ollama(name.to_string()));
    }
    let stripped = strip_hf_host(name);
    if stripped.len() != name.len() {
        return Ok(hf(stripped));
    }
    let path = name
        .rsplit_once(':')
        .map_or(name, |(p, t)| if t.contains('/') { name } else { p });
    match path.split('/').count() {
        2 => Ok(hf(name)),
        1 | 3 => Ok(Pull::Ollama(name.to_string())),
        _ => Err(ServiceError::invalid(
            "name",
            format!(
                "{name:?} is neither a Hugging Face repository (owner/repo[:QUANT]) nor an \
                 Ollama model ([host/namespace/]name[:tag]) nor a URL"
            ),
        )),
    }
}

fn strip_hf_host(name: &str) -> &str {
    [
        "hf.co/",
        "huggingface.co/",
        "https://huggingface.co/",
        "https://hf.co/",
    ]
    .iter()
    .find_map(|p| name.strip_prefix(p))
    .unwrap_or(name)
}

/// `{endpoint}/{owner}/{repo}/resolve|blob/{rev}/{file}` → that file of the hub.
fn hub_file_url(url: &str, endpoint: &str) -> Option<Pull> {
    let rest = url
        .strip_prefix(endpoint.trim_end_matches('/'))
        .or_else(|| url.strip_prefix("https://huggingface.co"))?
        .strip_prefix('/')?;
    let parts: Vec<&str> = rest.splitn(5, '/').collect();
    let [owner, repo, kind, rev, file] = parts.as_slice() else {
        return None;
    };
    if !matches!(*kind, "resolve" | "blob") {
        return None;
    }
    let file = file.split(['?', '#']).next()?;
    Some(Pull::Hf {
        repo: format!("{owner}/{repo}"),
        quant: None,
        file: Some(percent_decoded(file)),
        revision: percent_decoded(rev),
    })
}

/// A URL path segment as the text it encodes (`%2F` → `/`; a `+` stays a `+`, as in a
/// path, unlike a form's), for file names and revisions taken from URLs.
fn percent_decoded(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// The one model of the repository that the request names.
fn choose<'a>(
    repo: &str,
    models: &'a [GgufModel],
    quant: Option<&str>,
    file: Option<&str>,
) -> Result<&'a GgufModel, ServiceError> {
    let weights: Vec<&GgufModel> = models.iter().filter(|m| !m.mmproj).collect();
    let listing = |list: &[&GgufModel]| {
        list.iter()
            .map(|m| match &m.quantization {
                Some(q) => format!("{q} ({})", m.name),
                None => m.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if weights.is_empty() {
        return Err(ServiceError::NotFound(format!(
            "{repo} has no GGUF model file"
        )));
    }
    if let Some(file) = file {
        return models
            .iter()
            .find(|m| m.name == file || m.parts.iter().any(|p| p.path == file))
            .ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "{repo} has no file {file:?}; its GGUF files: {}",
                    listing(&weights)
                ))
            });
    }
    let Some(quant) = quant else {
        if let [only] = weights.as_slice() {
            return Ok(only);
        }
        // As llama.cpp's `-hf` does, Q4_K_M when the repository has exactly one.
        let q4: Vec<&&GgufModel> = weights
            .iter()
            .filter(|m| m.quantization.as_deref() == Some("Q4_K_M"))
            .collect();
        if let [only] = q4.as_slice() {
            return Ok(only);
        }
        return Err(ServiceError::invalid(
            "name",
            format!(
                "{repo} has several GGUF models: name one as {repo}:QUANT or with a file; it \
                 has {}",
                listing(&weights)
            ),
        ));
    };
    let matching: Vec<&GgufModel> = weights
        .iter()
        .copied()
        .filter(|m| {
            m.quantization
                .as_deref()
                .is_some_and(|q| q.eq_ignore_ascii_case(quant))
        })
        .collect();
    match matching.as_slice() {
        [only] => Ok(only),
        [] => Err(ServiceError::NotFound(format!(
            "{repo} has no {quant} file; it has {}",
            listing(&weights)
        ))),
        several => Err(ServiceError::invalid(
            "name",
            format!(
                "{repo} has several {quant} files, name one with a file: {}",
                listing(several)
            ),
        )),
    }
}

fn category(id: &str) -> Result<&'static Category, ServiceError> {
    CATEGORIES.iter().find(|c| c.id == id).ok_or_else(|| {
        ServiceError::invalid(
            "category",
            format!(
                "{id:?} is not a category; one of {}",
                CATEGORIES
                    .iter()
                    .map(|c| c.id)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

fn check_len(field: &str, value: &str) -> Result<(), ServiceError> {
    if value.len() > MAX_INPUT {
        return Err(ServiceError::invalid(
            field,
            format!("{} bytes, at most {MAX_INPUT}", value.len()),
        ));
    }
    Ok(())
}

/// A hub or registry error: a missing repository, file or model is 404, another refusal
/// (gated, bad token) 400 with the hub's explanation, the network or the hub failing 503.
fn upstream(e: DlError) -> ServiceError {
    match &e {
        DlError::Status { status: 404, .. } => ServiceError::NotFound(e.to_string()),
        DlError::Status { status, .. } if *status < 500 => ServiceError::Rejected(e.to_string()),
        DlError::InvalidName(m) => ServiceError::invalid("name", m.clone()),
        DlError::DiskSpace { .. } => ServiceError::Rejected(e.to_string()),
        _ => ServiceError::Upstream(e.to_string()),
    }
}

/// A queue refusal (pausing a completed task, ...).
fn refused(e: DlError) -> ServiceError {
    ServiceError::Conflict(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &str) -> PullRequest {
        PullRequest {
            name: name.into(),
            ..Default::default()
        }
    }

    const HUB: &str = "http://127.0.0.1:1";

    #[test]
    fn names_go_to_their_hub() {
        let hf = |repo: &str, quant: Option<&str>| Pull::Hf {
            repo: repo.into(),
            quant: quant.map(str::to_string),
            file: None,
            revision: "main".into(),
        };
        assert_eq!(
            classify(&req("org/repo:Q4_K_M"), HUB).unwrap(),
            hf("org/repo", Some("Q4_K_M"))
        );
        assert_eq!(
            classify(&req("org/repo"), HUB).unwrap(),
            hf("org/repo", None)
        );
        assert_eq!(
            classify(&req("hf.co/org/repo:Q8_0"), HUB).unwrap(),
            hf("org/repo", Some("Q8_0"))
        );
        for ollama in ["llama3.2:1b", "tiny", "127.0.0.1:5000/library/tiny:latest"] {
            assert_eq!(
                classify(&req(ollama), HUB).unwrap(),
                Pull::Ollama(ollama.into()),
                "{ollama}"
            );
        }
        assert_eq!(
            classify(&req("http://h:1/library/tiny:latest"), HUB).unwrap(),
            Pull::Ollama("http://h:1/library/tiny:latest".into())
        );
        assert_eq!(
            classify(&req("https://example.com/x/m.gguf"), HUB).unwrap(),
            Pull::Url("https://example.com/x/m.gguf".into())
        );
        assert_eq!(
            classify(&req(&format!("{HUB}/org/repo/resolve/v1/dir/m.gguf")), HUB).unwrap(),
            Pull::Hf {
                repo: "org/repo".into(),
                quant: None,
                file: Some("dir/m.gguf".into()),
                revision: "v1".into(),
            }
        );
        let explicit = PullRequest {
            source: Some(SourceKind::Ollama),
            ..req("ns/model:tag")
        };
        assert_eq!(
            classify(&explicit, HUB).unwrap(),
            Pull::Ollama("ns/model:tag".into())
        );
        // Segments are percent-decoded as paths: `+` stays, `%2F` in a revision is `/`.
        assert_eq!(
            classify(
                &req(&format!(
                    "{HUB}/org/repo/resolve/refs%2Fpr%2F1/a+b%20c&d=e.gguf"
                )),
                HUB
            )
            .unwrap(),
            Pull::Hf {
                repo: "org/repo".into(),
                quant: None,
                file: Some("a+b c&d=e.gguf".into()),
                revision: "refs/pr/1".into(),
            }
        );
        assert!(classify(&req("a/b/c/d"), HUB).is_err());
        assert!(classify(&req("  "), HUB).is_err());
    }

    fn model(name: &str, quant: Option<&str>, mmproj: bool) -> GgufModel {
        GgufModel {
            name: name.into(),
            quantization: quant.map(str::to_string),
            mmproj,
            parts: vec![hf::RemoteFile {
                path: name.into(),
                size: 1,
                sha256: None,
            }],
            missing_parts: 0,
            size: 1,
        }
    }

    #[test]
    fn a_quantization_is_found_or_the_choices_are_listed() {
        let models = vec![
            model("m-Q4_K_M.gguf", Some("Q4_K_M"), false),
            model("m-Q8_0.gguf", Some("Q8_0"), false),
            model("sub/m-Q8_0.gguf", Some("Q8_0"), false),
            model("mmproj-m-f16.gguf", Some("F16"), true),
        ];
        assert_eq!(
            choose("o/r", &models, Some("q4_k_m"), None).unwrap().name,
            "m-Q4_K_M.gguf"
        );
        let missing = choose("o/r", &models, Some("Q2_K"), None).unwrap_err();
        assert!(matches!(missing, ServiceError::NotFound(_)));
        let text = missing.to_string();
        assert!(
            text.contains("no Q2_K") && text.contains("Q8_0 (m-Q8_0.gguf)"),
            "{text}"
        );
        assert!(!text.contains("mmproj"), "{text}");
        let ambiguous = choose("o/r", &models, Some("Q8_0"), None)
            .unwrap_err()
            .to_string();
        assert!(ambiguous.contains("several Q8_0") && ambiguous.contains("sub/m-Q8_0.gguf"));
        // No quantization: Q4_K_M, as llama.cpp's -hf.
        assert_eq!(
            choose("o/r", &models, None, None).unwrap().name,
            "m-Q4_K_M.gguf"
        );
        assert_eq!(
            choose("o/r", &models, None, Some("sub/m-Q8_0.gguf"))
                .unwrap()
                .name,
            "sub/m-Q8_0.gguf"
        );
        assert!(matches!(
            choose("o/r", &models, None, Some("../../etc/passwd")),
            Err(ServiceError::NotFound(_))
        ));
    }

    #[test]
    fn sizes_a_registry_announces_cannot_overflow_the_remaining_bytes() {
        let file = |n: u8| FileSpec {
            url: format!("http://127.0.0.1:1/{n}"),
            mirror_url: None,
            dest: PathBuf::from(format!("/nonexistent/{n}")),
            partial: PathBuf::from(format!("/nonexistent/{n}.part")),
            sha256: None,
            size: Some(u64::MAX - 1),
            origin: Origin::Url,
            bearer: None,
        };
        let spec = TaskSpec {
            label: "huge".into(),
            files: vec![file(1), file(2)],
            finish: Vec::new(),
        };
        assert_eq!(remaining_bytes(&spec), u64::MAX);
    }
}
