//! The download queue: tasks that each fetch one or more files, at most N at a time, in
//! the order they were queued, each pausable, resumable and cancellable.
//!
//! A task's state changes only under the queue's lock; the bytes move in a spawned
//! runner per running task. A paused task's runner flushes and stops; until it has
//! stopped the task keeps its slot (so that N is a true bound on open transfers) and a
//! resume only queues it again. Figures (bytes, speed, ETA) are read from the runners'
//! shared [`Progress`] when asked for, so that a status costs no work while nobody looks.

use crate::error::{Error, Result};
use crate::transfer::{self, FileSpec, Outcome, Progress, TransferOptions};
use reqwest::Client;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use store::{Store, StoredDownload};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What one task downloads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// What the user asked for (`org/repo:Q4_K_M`, `llama3.2:1b`).
    pub label: String,
    /// Fetched one after the other.
    pub files: Vec<FileSpec>,
    /// Small files written (atomically) once every file is verified, e.g. an Ollama
    /// manifest: what makes the download visible as a model comes last.
    pub finish: Vec<FinalFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalFile {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

pub type TaskId = u64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum State {
    Queued,
    Downloading,
    Paused,
    Verifying,
    Completed,
    Failed { reason: String },
}

impl State {
    pub fn is_finished(&self) -> bool {
        matches!(self, State::Completed | State::Failed { .. })
    }

    /// The name stored and shown (`failed` without its reason).
    pub fn name(&self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Downloading => "downloading",
            State::Paused => "paused",
            State::Verifying => "verifying",
            State::Completed => "completed",
            State::Failed { .. } => "failed",
        }
    }

    fn reason(&self) -> Option<&str> {
        match self {
            State::Failed { reason } => Some(reason),
            _ => None,
        }
    }
}

/// A task as shown to a user.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub id: TaskId,
    pub label: String,
    #[serde(flatten)]
    pub state: State,
    /// Bytes on disk over all files.
    pub done: u64,
    /// All files' size, once every size is known.
    pub total: Option<u64>,
    /// Bytes received from the network by this process.
    pub fetched: u64,
    /// Bytes per second, a moving average; 0 when not downloading.
    pub speed: f64,
    pub eta_seconds: Option<u64>,
    /// Restarts, retries and failures, oldest first.
    pub log: Vec<String>,
    /// Where the files go.
    pub files: Vec<PathBuf>,
    /// Each file's own figures, in the task's order (for protocols that report per file, as
    /// Ollama's pull reports per layer); not part of the task's serialized status.
    #[serde(skip)]
    pub parts: Vec<PartStatus>,
}

/// One file of a task: what it is (its sha256 when known) and how far it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartStatus {
    pub sha256: Option<String>,
    /// Bytes of the file on disk so far.
    pub done: u64,
    pub total: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct QueueOptions {
    /// Tasks downloading at once; the rest wait in order.
    pub max_concurrent: usize,
    pub transfer: TransferOptions,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            max_concurrent: 4,
            transfer: TransferOptions::default(),
        }
    }
}

/// The queue; cheap to clone (all clones are the same queue).
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    options: QueueOptions,
    /// Where tasks are recorded to outlive the process.
    store: Option<Arc<Store>>,
    tasks: Mutex<Tasks>,
    /// Bumped on every state change.
    changes: watch::Sender<u64>,
    /// Runs after a task's files are in place and before it is marked completed.
    on_complete: std::sync::OnceLock<OnComplete>,
}

/// What the owner of the queue does when a task's files are all in place (the service makes
/// the catalog see the model), before the task is reported completed: whoever sees
/// `completed` can use the model.
pub type OnComplete = Arc<
    dyn Fn(TaskId, Arc<TaskSpec>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

#[derive(Default)]
struct Tasks {
    by_id: BTreeMap<TaskId, Task>,
    next_id: TaskId,
    /// Order of queueing; a resumed task goes to the back.
    next_ticket: u64,
}

struct Task {
    spec: Arc<TaskSpec>,
    state: State,
    ticket: u64,
    progress: Arc<Vec<Progress>>,
    cancel: CancellationToken,
    /// A runner is working on it (until it has flushed and stopped).
    running: bool,
    /// Cancelled while running: removed when the runner stops (deleting partials if true).
    removal: Option<bool>,
    speed: Speed,
}

impl Queue {
    /// A queue whose tasks live only in this process.
    pub fn new(client: Client, options: QueueOptions) -> Queue {
        Queue::build(client, options, None)
    }

    /// A queue that records every task and state change in `store`; [`Queue::restore`]
    /// brings the unfinished ones back after a restart.
    /// New ids follow the largest recorded one, whether or not `restore` runs. Reads the
    /// store: call it on a blocking thread or at startup.
    pub fn with_store(client: Client, options: QueueOptions, store: Arc<Store>) -> Queue {
        let next_id = store.next_download_id().unwrap_or_else(|e| {
            tracing::warn!("cannot read the recorded download ids: {e}");
            0
        });
        let queue = Queue::build(client, options, Some(store));
        queue.inner.lock().next_id = next_id;
        queue
    }

    fn build(client: Client, options: QueueOptions, store: Option<Arc<Store>>) -> Queue {
        Queue {
            inner: Arc::new(Inner {
                client,
                options,
                store,
                tasks: Mutex::new(Tasks::default()),
                changes: watch::Sender::new(0),
                on_complete: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Sets what runs when a task's files are in place, before it is marked completed
    /// (once; a second call is ignored).
    pub fn set_on_complete(&self, hook: OnComplete) {
        let _ = self.inner.on_complete.set(hook);
    }

    /// Queues a task; it starts when a slot is free. With a store this writes to it: call
    /// it on a blocking thread (as `service::Downloads` does).
    pub fn add(&self, spec: TaskSpec) -> TaskId {
        let id = {
            let mut tasks = self.inner.lock();
            self.inner.insert(&mut tasks, spec)
        };
        self.inner.changed();
        Inner::dispatch(&self.inner);
        id
    }

    /// The unfinished task with `spec`'s label (queued again if it was paused or failed),
    /// else `spec` queued as a new task: found or added under one lock, so that the same
    /// download asked for twice at once is one task. `true` when the task existed. With a
    /// store this writes to it: call it on a blocking thread.
    pub fn add_unique(&self, spec: TaskSpec) -> (TaskId, bool) {
        let found = {
            let mut tasks = self.inner.lock();
            let existing = tasks
                .by_id
                .iter()
                .find(|(_, t)| t.spec.label == spec.label && t.state != State::Completed)
                .map(|(id, _)| *id);
            match existing {
                Some(id) => {
                    self.inner.requeue(&mut tasks, id);
                    (id, true)
                }
                None => (self.inner.insert(&mut tasks, spec), false),
            }
        };
        self.inner.changed();
        Inner::dispatch(&self.inner);
        found
    }

    /// Pauses a queued or downloading task; returns once its runner has flushed the
    /// partial file and stopped (the partial files are kept for a resume).
    pub async fn pause(&self, id: TaskId) -> Result<()> {
        self.inner
            .on_blocking(move |inner| {
                let mut tasks = inner.lock();
                let task = tasks.get(id)?;
                match task.state {
                    State::Queued | State::Downloading => {
                        task.state = State::Paused;
                        task.cancel.cancel();
                        inner.record_state(id, &State::Paused);
                    }
                    State::Paused => {}
                    ref s => return Err(refused(id, "pause", s)),
                }
                Ok(())
            })
            .await?;
        self.inner.changed();
        self.until_stopped(id).await;
        Ok(())
    }

    /// Waits until no runner works on the task (or it is gone).
    async fn until_stopped(&self, id: TaskId) {
        let mut changes = self.changes();
        loop {
            changes.borrow_and_update();
            let running = self.inner.lock().by_id.get(&id).is_some_and(|t| t.running);
            if !running || changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Queues a paused or failed task again, at the back of the queue. With a store this
    /// writes to it: call it on a blocking thread.
    pub fn resume(&self, id: TaskId) -> Result<()> {
        {
            let mut tasks = self.inner.lock();
            match tasks.get(id)?.state {
                State::Paused | State::Failed { .. } => self.inner.requeue(&mut tasks, id),
                State::Queued | State::Downloading => {}
                ref s => return Err(refused(id, "resume", s)),
            }
        }
        self.inner.changed();
        Inner::dispatch(&self.inner);
        Ok(())
    }

    /// Removes a task, stopping it first; `delete_partial` also deletes its partial files
    /// (never a completed file: that is a model now). Returns once the task is gone.
    pub async fn cancel(&self, id: TaskId, delete_partial: bool) -> Result<()> {
        let removed = self
            .inner
            .on_blocking(move |inner| {
                let mut tasks = inner.lock();
                let task = tasks.get(id)?;
                task.cancel.cancel();
                inner.record_removed(id);
                Ok(if task.running {
                    task.removal = Some(delete_partial);
                    None
                } else {
                    let task = tasks.by_id.remove(&id);
                    task.map(|t| (t, tasks.partials()))
                })
            })
            .await?;
        match removed {
            Some((task, in_use)) => {
                if delete_partial {
                    delete_partials(&task.spec, &in_use);
                }
                self.inner.changed();
            }
            // The runner removes it when it has stopped writing.
            None => self.until_stopped(id).await,
        }
        Ok(())
    }

    pub fn status(&self, id: TaskId) -> Option<Status> {
        let mut tasks = self.inner.lock();
        let now = Instant::now();
        tasks.by_id.get_mut(&id).map(|t| t.status(id, now))
    }

    /// Every task, in queue order of creation.
    pub fn list(&self) -> Vec<Status> {
        let mut tasks = self.inner.lock();
        let now = Instant::now();
        tasks
            .by_id
            .iter_mut()
            .map(|(id, t)| t.status(*id, now))
            .collect()
    }

    /// A receiver that sees a new value after every state change.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Waits until the task's status satisfies `done` (or the task is gone: `None`).
    pub async fn wait_for(
        &self,
        id: TaskId,
        mut done: impl FnMut(&Status) -> bool,
    ) -> Option<Status> {
        let mut changes = self.changes();
        loop {
            changes.borrow_and_update();
            let status = self.status(id)?;
            if done(&status) {
                return Some(status);
            }
            if changes.changed().await.is_err() {
                return self.status(id);
            }
        }
    }
}

fn refused(id: TaskId, what: &str, state: &State) -> Error {
    Error::InvalidName(format!("cannot {what} task {id}: it is {state:?}"))
}

/// Deletes a removed task's partial files, except those another task uses (a blob two
/// Ollama models share, the same file asked for under two names).
fn delete_partials(spec: &TaskSpec, in_use: &HashSet<PathBuf>) {
    for f in spec.files.iter().filter(|f| !in_use.contains(&f.partial)) {
        for p in [
            f.partial.clone(),
            transfer::record_path(&f.partial),
            transfer::lock_path(&f.partial),
        ] {
            if let Err(e) = std::fs::remove_file(&p)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!("cannot delete {}: {e}", p.display());
            }
        }
    }
}

impl Tasks {
    fn get(&mut self, id: TaskId) -> Result<&mut Task> {
        self.by_id
            .get_mut(&id)
            .ok_or_else(|| Error::InvalidName(format!("no download task {id}")))
    }

    /// Every partial file the tasks in the queue name.
    fn partials(&self) -> HashSet<PathBuf> {
        self.by_id
            .values()
            .flat_map(|t| t.spec.files.iter().map(|f| f.partial.clone()))
            .collect()
    }

    fn ticket(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }
}

impl Queue {
    /// Brings back the unfinished tasks recorded in the store (none without one): failed
    /// ones as failed, the others paused — or queued when `resume` — at the back of the
    /// queue in their old order, under their old ids. Partial files pick up where they
    /// stopped. `hf_token` is given again to Hugging Face files (tokens are never stored).
    /// Returns how many came back. Reads and writes the store: call it on a blocking thread.
    pub fn restore(&self, resume: bool, hf_token: Option<&str>) -> Result<usize> {
        let Some(store) = &self.inner.store else {
            return Ok(0);
        };
        let rows = store.downloads().map_err(|e| Error::Io {
            path: PathBuf::from("dashboard.db"),
            source: std::io::Error::other(e),
        })?;
        let mut restored = 0;
        {
            let mut tasks = self.inner.lock();
            for row in rows {
                tasks.next_id = tasks.next_id.max(row.id + 1);
                if row.state == "completed" || tasks.by_id.contains_key(&row.id) {
                    continue;
                }
                let mut spec: TaskSpec = match serde_json::from_value(row.spec) {
                    Ok(spec) => spec,
                    Err(e) => {
                        tracing::warn!("download task {} cannot come back: {e}", row.id);
                        continue;
                    }
                };
                for f in &mut spec.files {
                    if matches!(f.origin, crate::Origin::HuggingFace { .. }) {
                        f.bearer = hf_token.map(str::to_string);
                    }
                }
                let state = match (row.state.as_str(), resume) {
                    ("failed", _) => State::Failed {
                        reason: row.reason.unwrap_or_default(),
                    },
                    (_, true) => State::Queued,
                    (_, false) => State::Paused,
                };
                self.inner.record_state(row.id, &state);
                let ticket = tasks.ticket();
                tasks.by_id.insert(row.id, Task::new(spec, state, ticket));
                restored += 1;
            }
        }
        self.inner.changed();
        Inner::dispatch(&self.inner);
        Ok(restored)
    }
}

impl Inner {
    /// Runs `f` where the database may be touched: on a blocking thread when tasks are
    /// recorded in a store, in place otherwise. Every store write happens under the tasks
    /// lock inside such a call (or in `add`/`resume`/`restore`, which their callers run on
    /// a blocking thread), so the rows follow the states in the order they changed.
    async fn on_blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Inner) -> T + Send + 'static,
    ) -> T {
        if self.store.is_none() {
            return f(self);
        }
        let inner = self.clone();
        match tokio::task::spawn_blocking(move || f(&inner)).await {
            Ok(t) => t,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Inserts a new queued task (under the tasks lock).
    fn insert(&self, tasks: &mut Tasks, spec: TaskSpec) -> TaskId {
        let id = tasks.next_id;
        tasks.next_id += 1;
        let ticket = tasks.ticket();
        self.record_new(id, &spec, &State::Queued);
        tasks
            .by_id
            .insert(id, Task::new(spec, State::Queued, ticket));
        id
    }

    /// A paused or failed task queued again at the back (under the tasks lock); any other
    /// state is left as it is.
    fn requeue(&self, tasks: &mut Tasks, id: TaskId) {
        let ticket = tasks.ticket();
        let Some(task) = tasks.by_id.get_mut(&id) else {
            return;
        };
        if matches!(task.state, State::Paused | State::Failed { .. }) {
            task.state = State::Queued;
            task.ticket = ticket;
            task.cancel = CancellationToken::new();
            self.record_state(id, &State::Queued);
        }
    }

    /// A store that fails to record is logged, never a reason to stop a download.
    fn record_new(&self, id: TaskId, spec: &TaskSpec, state: &State) {
        if let Some(store) = &self.store {
            let row = StoredDownload {
                id,
                label: spec.label.clone(),
                spec: serde_json::to_value(spec).expect("plain data"),
                state: state.name().to_string(),
                reason: state.reason().map(str::to_string),
                created_at: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64),
            };
            if let Err(e) = store.put_download(&row) {
                tracing::warn!("cannot record download task {id}: {e}");
            }
        }
    }

    fn record_state(&self, id: TaskId, state: &State) {
        if let Some(store) = &self.store
            && let Err(e) = store.set_download_state(id, state.name(), state.reason())
        {
            tracing::warn!("cannot record download task {id}: {e}");
        }
    }

    fn record_removed(&self, id: TaskId) {
        if let Some(store) = &self.store
            && let Err(e) = store.delete_download(id)
        {
            tracing::warn!("cannot forget download task {id}: {e}");
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tasks> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// Starts queued tasks, oldest ticket first, while fewer than N are running.
    fn dispatch(inner: &Arc<Inner>) {
        let mut start = Vec::new();
        {
            let mut tasks = inner.lock();
            let running = tasks.by_id.values().filter(|t| t.running).count();
            let mut free = inner.options.max_concurrent.max(1).saturating_sub(running);
            // One writer per partial file: a task whose partial another running task
            // writes (a blob two Ollama models share) waits for it.
            let mut writing: HashSet<PathBuf> = tasks
                .by_id
                .values()
                .filter(|t| t.running)
                .flat_map(|t| t.spec.files.iter().map(|f| f.partial.clone()))
                .collect();
            let mut waiting: Vec<(u64, TaskId)> = tasks
                .by_id
                .iter()
                .filter(|(_, t)| t.state == State::Queued && !t.running)
                .map(|(id, t)| (t.ticket, *id))
                .collect();
            waiting.sort_unstable();
            for (_, id) in waiting {
                if free == 0 {
                    break;
                }
                let t = tasks.by_id.get_mut(&id).expect("listed above");
                if t.spec.files.iter().any(|f| writing.contains(&f.partial)) {
                    continue;
                }
                writing.extend(t.spec.files.iter().map(|f| f.partial.clone()));
                free -= 1;
                t.state = State::Downloading;
                t.running = true;
                inner.record_state(id, &State::Downloading);
                start.push((id, t.spec.clone(), t.progress.clone(), t.cancel.clone()));
            }
        }
        if start.is_empty() {
            return;
        }
        inner.changed();
        for (id, spec, progress, cancel) in start {
            let inner = inner.clone();
            tokio::spawn(async move {
                let result = run(&inner, &spec, &progress, &cancel).await;
                let result = match (result, inner.on_complete.get()) {
                    (Ok(true), Some(hook)) => {
                        hook(id, spec.clone()).await;
                        Ok(true)
                    }
                    (result, _) => result,
                };
                let stopping = inner.clone();
                inner
                    .on_blocking(move |_| Inner::stopped(&stopping, id, result))
                    .await;
            });
        }
    }

    /// A runner has stopped: record how, free its slot, start the next.
    fn stopped(inner: &Arc<Inner>, id: TaskId, result: Result<bool>) {
        let removed = {
            let mut tasks = inner.lock();
            match tasks.by_id.get_mut(&id) {
                None => None,
                Some(task) => {
                    task.running = false;
                    match result {
                        // Paused (or resumed meanwhile): the state says which.
                        Ok(false) => {}
                        Ok(true) => task.state = State::Completed,
                        // Only a task still downloading failed: one paused, or resumed
                        // while its runner stopped (queued), runs again from its partial.
                        Err(e) if task.state == State::Downloading => {
                            let reason = e.to_string();
                            tracing::warn!("download {} failed: {reason}", task.spec.label);
                            task.state = State::Failed { reason };
                        }
                        Err(_) => {}
                    }
                    if task.removal.is_none() {
                        inner.record_state(id, &task.state);
                    }
                    match task.removal {
                        Some(true) => tasks.by_id.remove(&id).map(|t| (t, tasks.partials())),
                        Some(false) => {
                            tasks.by_id.remove(&id);
                            None
                        }
                        None => None,
                    }
                }
            }
        };
        if let Some((task, in_use)) = removed {
            delete_partials(&task.spec, &in_use);
        }
        inner.changed();
        Inner::dispatch(inner);
    }
}

/// Fetches every file, then writes the final files. `Ok(false)` when paused.
async fn run(
    inner: &Inner,
    spec: &TaskSpec,
    progress: &[Progress],
    cancel: &CancellationToken,
) -> Result<bool> {
    for (file, progress) in spec.files.iter().zip(progress) {
        let outcome = transfer::fetch(
            &inner.client,
            file,
            &inner.options.transfer,
            progress,
            cancel,
        )
        .await?;
        if outcome == Outcome::Paused {
            return Ok(false);
        }
    }
    if cancel.is_cancelled() {
        return Ok(false);
    }
    let finish = spec.finish.clone();
    tokio::task::spawn_blocking(move || finish.iter().try_for_each(write_atomically))
        .await
        .map_err(|e| Error::Io {
            path: PathBuf::from("manifest"),
            source: std::io::Error::other(e),
        })??;
    Ok(true)
}

/// Writes a small file atomically (temp file in the same folder, fsync, rename).
pub fn write_atomically(f: &FinalFile) -> Result<()> {
    use std::io::Write;
    let dir = f.path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(Error::io(dir))?;
    tmp.write_all(&f.bytes).map_err(Error::io(&f.path))?;
    tmp.as_file().sync_all().map_err(Error::io(&f.path))?;
    tmp.persist(&f.path)
        .map_err(|e| Error::io(&f.path)(e.error))?;
    Ok(())
}

impl Task {
    /// A task no runner works on yet.
    fn new(spec: TaskSpec, state: State, ticket: u64) -> Task {
        Task {
            progress: Arc::new(spec.files.iter().map(|_| Progress::default()).collect()),
            spec: Arc::new(spec),
            state,
            ticket,
            cancel: CancellationToken::new(),
            running: false,
            removal: None,
            speed: Speed::default(),
        }
    }

    fn status(&mut self, id: TaskId, now: Instant) -> Status {
        let done: u64 = self
            .progress
            .iter()
            .fold(0u64, |a, p| a.saturating_add(p.done()));
        let sizes: Option<Vec<u64>> = self
            .spec
            .files
            .iter()
            .zip(self.progress.iter())
            .map(|(f, p)| f.size.or(p.total()))
            .collect();
        // Sizes come from a registry: saturating, a hostile one cannot overflow the sum.
        let total: Option<u64> = sizes.map(|s| s.iter().fold(0u64, |a, &b| a.saturating_add(b)));
        let fetched = self.progress.iter().map(Progress::fetched).sum();
        let mut state = self.state.clone();
        if state == State::Downloading && self.progress.iter().any(Progress::is_verifying) {
            state = State::Verifying;
        }
        let active = matches!(state, State::Downloading | State::Verifying);
        let speed = if active {
            self.speed.sample(done, now)
        } else {
            self.speed = Speed::default();
            0.0
        };
        let eta_seconds = match total {
            Some(t) if active && speed > 0.0 => {
                Some((t.saturating_sub(done) as f64 / speed).ceil() as u64)
            }
            _ => None,
        };
        Status {
            id,
            label: self.spec.label.clone(),
            state,
            done,
            total,
            fetched,
            speed,
            eta_seconds,
            log: self.progress.iter().flat_map(Progress::log).collect(),
            files: self.spec.files.iter().map(|f| f.dest.clone()).collect(),
            parts: self
                .spec
                .files
                .iter()
                .zip(self.progress.iter())
                .map(|(f, p)| PartStatus {
                    sha256: f.sha256.clone(),
                    done: p.done(),
                    total: f.size.or(p.total()),
                })
                .collect(),
        }
    }
}

/// Download speed as an exponential moving average of the rate between samples at least
/// [`Speed::WINDOW`] apart, so that a burst or a stall of a moment does not swing the ETA.
#[derive(Debug, Default, Clone)]
pub struct Speed {
    rate: f64,
    last: Option<(Instant, u64)>,
    started: bool,
}

impl Speed {
    pub const WINDOW: Duration = Duration::from_millis(500);
    /// Weight of the newest window.
    const ALPHA: f64 = 0.3;

    /// Records that `done` bytes are on disk at `now`; returns the averaged rate (bytes/s).
    pub fn sample(&mut self, done: u64, now: Instant) -> f64 {
        match self.last {
            None => self.last = Some((now, done)),
            Some((at, before)) => {
                let dt = now.saturating_duration_since(at);
                if dt >= Self::WINDOW {
                    let rate = done.saturating_sub(before) as f64 / dt.as_secs_f64();
                    self.rate = if self.started {
                        Self::ALPHA * rate + (1.0 - Self::ALPHA) * self.rate
                    } else {
                        rate
                    };
                    self.started = true;
                    self.last = Some((now, done));
                }
            }
        }
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_averages_windows_and_ignores_short_gaps() {
        let t0 = Instant::now();
        let mut s = Speed::default();
        assert_eq!(s.sample(0, t0), 0.0);
        // Shorter than the window: no new rate.
        assert_eq!(s.sample(500, t0 + Duration::from_millis(100)), 0.0);
        // First full window sets the rate: 1000 bytes in 1 s.
        assert_eq!(s.sample(1000, t0 + Duration::from_secs(1)), 1000.0);
        // Then a stall second moves it only by ALPHA.
        let r = s.sample(1000, t0 + Duration::from_secs(2));
        assert!((r - 700.0).abs() < 1e-9, "{r}");
    }
}
