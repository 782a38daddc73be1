//! The handle async code talks to a loaded model through.
//!
//! A model's own OS thread (started by [`crate::ModelHost::load`], see `load.rs`) owns the
//! one `LlamaContext` all slots share and runs the scheduler ([`crate::scheduler`]), which
//! only decodes. [`ModelHandle`] does each request's preparation on the caller's thread
//! ([`crate::admission`]: tokenizing, grammars, samplers; the model is `Send + Sync`), then
//! sends the host a ready task and receives replies and events. Tokenizing and detokenizing
//! never reach the host at all.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, mpsc as std_mpsc};
use std::thread::JoinHandle;

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::admission::{self, EmbedInputs, Limits, Ready};
use crate::bench::{BenchParams, BenchProgress, BenchReport};
use crate::embed::{EmbedRequest, Embedding, RerankScore};
use crate::error::EngineError;
use crate::load::ModelInfo;
use crate::lora::{LoraAdapterInfo, LoraScale};
use crate::request::{EventStream, GenerateRequest};
use crate::slot::{SlotFileInfo, SlotInfo};
use crate::worker::{Answer, Call, Client, WorkerProcess};

/// One token and its text (the bytes too, for pieces that are not valid UTF-8 alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPiece {
    pub id: i32,
    pub piece: String,
    pub bytes: Vec<u8>,
}

/// Counters of the scheduler, for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HostStats {
    /// `llama_decode` calls.
    pub decode_calls: u64,
    /// Tokens in all those batches.
    pub decoded_tokens: u64,
    /// Largest batch so far.
    pub max_batch_tokens: u64,
    /// Largest number of slots in one batch so far.
    pub max_batch_slots: u64,
    /// Requests finished (any reason).
    pub requests_done: u64,
    /// Busy slots summed over every `llama_decode` call (llama-server's `n_busy_slots`:
    /// divided by `decode_calls`, the average number of slots a decode served).
    pub busy_slot_steps: u64,
    /// Longest sequence (prompt + generated tokens) a slot held at a decode.
    pub max_seq_tokens: u64,
    /// Prompts restored from the host-RAM prompt cache (`cache_ram_mib`).
    pub prompt_cache_hits: u64,
    /// Bytes the prompt cache holds now (0 while the model is not loaded).
    pub prompt_cache_bytes: u64,
}

/// The scheduler's cumulative counters. The caller may hand the same counters to every
/// load of a model ([`crate::ModelHost::load_counted`]), so that they outlive an unload
/// (a model that sleeps and wakes keeps counting, as llama-server's `/metrics` does).
#[derive(Debug, Default)]
pub struct HostCounters {
    pub(crate) decode_calls: AtomicU64,
    pub(crate) decoded_tokens: AtomicU64,
    pub(crate) max_batch_tokens: AtomicU64,
    pub(crate) max_batch_slots: AtomicU64,
    pub(crate) requests_done: AtomicU64,
    pub(crate) busy_slot_steps: AtomicU64,
    pub(crate) max_seq_tokens: AtomicU64,
    pub(crate) prompt_cache_hits: AtomicU64,
    pub(crate) prompt_cache_bytes: AtomicU64,
}

impl HostCounters {
    /// Sets every counter (a worker's counters, mirrored here).
    pub(crate) fn set(&self, s: &HostStats) {
        let st = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        st(&self.decode_calls, s.decode_calls);
        st(&self.decoded_tokens, s.decoded_tokens);
        st(&self.max_batch_tokens, s.max_batch_tokens);
        st(&self.max_batch_slots, s.max_batch_slots);
        st(&self.requests_done, s.requests_done);
        st(&self.busy_slot_steps, s.busy_slot_steps);
        st(&self.max_seq_tokens, s.max_seq_tokens);
        st(&self.prompt_cache_hits, s.prompt_cache_hits);
        st(&self.prompt_cache_bytes, s.prompt_cache_bytes);
    }

    pub fn snapshot(&self) -> HostStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        HostStats {
            decode_calls: l(&self.decode_calls),
            decoded_tokens: l(&self.decoded_tokens),
            max_batch_tokens: l(&self.max_batch_tokens),
            max_batch_slots: l(&self.max_batch_slots),
            requests_done: l(&self.requests_done),
            busy_slot_steps: l(&self.busy_slot_steps),
            max_seq_tokens: l(&self.max_seq_tokens),
            prompt_cache_hits: l(&self.prompt_cache_hits),
            prompt_cache_bytes: l(&self.prompt_cache_bytes),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub queue_len: AtomicUsize,
    pub busy_slots: AtomicUsize,
    pub counters: Arc<HostCounters>,
}

type Reply<T> = oneshot::Sender<Result<T, EngineError>>;

/// Messages to the model host. Everything a handle does is one of these (in a worker
/// process, `crate::worker::Call` carries the same over a pipe).
pub(crate) enum Task {
    Generate {
        req: Box<Ready>,
        reply: Reply<EventStream>,
    },
    Slots {
        reply: Reply<Vec<SlotInfo>>,
    },
    LoraAdapters {
        reply: Reply<Vec<LoraAdapterInfo>>,
    },
    SetLoraScales {
        scales: Vec<LoraScale>,
        reply: Reply<()>,
    },
    Embed {
        job: EmbedInputs,
        reply: Reply<Vec<Embedding>>,
    },
    Rerank {
        inputs: Vec<Vec<LlamaToken>>,
        reply: Reply<Vec<RerankScore>>,
    },
    SaveSlot {
        id: u32,
        path: PathBuf,
        reply: Reply<SlotFileInfo>,
    },
    RestoreSlot {
        id: u32,
        path: PathBuf,
        reply: Reply<SlotFileInfo>,
    },
    EraseSlot {
        id: u32,
        reply: Reply<u32>,
    },
    /// Runs once no slot is busy; requests wait meanwhile (see [`ModelHandle::bench`]).
    Bench {
        params: BenchParams,
        progress: Box<dyn FnMut(BenchProgress) + Send>,
        reply: Reply<BenchReport>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// The in-process backend: the model's host thread in this process.
struct ThreadHost {
    tx: std_mpsc::Sender<Task>,
    /// The model, for the callers' side of requests; taken out at shutdown so that the
    /// host can free it (see `load::free_model`).
    model: RwLock<Option<Arc<LlamaModel>>>,
    limits: Limits,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Where the model runs.
enum Backend {
    Thread(ThreadHost),
    /// In a worker process (`crate::worker`), which runs a [`Backend::Thread`] of its own.
    Process(Arc<Client>),
}

struct Inner {
    info: ModelInfo,
    shared: Arc<Shared>,
    backend: Backend,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: a worker frees its model and exits (in-process, the host
        // thread sees its channel close).
        if let Backend::Process(c) = &self.backend {
            c.release();
        }
    }
}

/// A loaded model. Cheap to clone; all clones talk to the same host thread (in this process
/// or in a worker process: callers cannot tell). Dropping the last clone unloads the model
/// (the host thread ends and frees it shortly after); [`shutdown`](Self::shutdown) does it
/// now and waits until the memory is freed.
#[derive(Clone)]
pub struct ModelHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ModelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelHandle")
            .field("path", &self.inner.info.path)
            .field("architecture", &self.inner.info.architecture)
            .finish_non_exhaustive()
    }
}

/// Unwraps a worker's answer of the expected kind.
macro_rules! answer {
    ($client:expr, $call:expr, $pat:pat => $out:expr) => {{
        let c = $client;
        match c.call($call).await? {
            $pat => Ok($out),
            _ => Err(c.out_of_turn()),
        }
    }};
}

impl ModelHandle {
    pub(crate) fn new(
        tx: std_mpsc::Sender<Task>,
        info: ModelInfo,
        model: Arc<LlamaModel>,
        limits: Limits,
        shared: Arc<Shared>,
        thread: JoinHandle<()>,
    ) -> Self {
        ModelHandle {
            inner: Arc::new(Inner {
                info,
                shared,
                backend: Backend::Thread(ThreadHost {
                    tx,
                    model: RwLock::new(Some(model)),
                    limits,
                    thread: Mutex::new(Some(thread)),
                }),
            }),
        }
    }

    pub(crate) fn in_worker(info: ModelInfo, client: Arc<Client>) -> Self {
        ModelHandle {
            inner: Arc::new(Inner {
                info,
                shared: client.shared.clone(),
                backend: Backend::Process(client),
            }),
        }
    }

    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    /// The worker process serving this model (`None` in-process).
    pub fn process(&self) -> Option<WorkerProcess> {
        match &self.inner.backend {
            Backend::Thread(_) => None,
            Backend::Process(c) => Some(c.process()),
        }
    }

    /// For a model in a worker process: resolves with the reason if the worker crashes, or
    /// `None` once it ends as asked (unload). `None` in-process (nothing to watch).
    pub fn crash_watch(
        &self,
    ) -> Option<impl std::future::Future<Output = Option<String>> + Send + 'static> {
        match &self.inner.backend {
            Backend::Thread(_) => None,
            Backend::Process(c) => Some(c.crashed()),
        }
    }

    /// Requests waiting for a free slot.
    pub fn queue_len(&self) -> usize {
        self.inner.shared.queue_len.load(Ordering::Relaxed)
    }

    /// Slots working on a request.
    pub fn busy_slots(&self) -> usize {
        self.inner.shared.busy_slots.load(Ordering::Relaxed)
    }

    /// Scheduler counters.
    pub fn stats(&self) -> HostStats {
        self.inner.shared.counters.snapshot()
    }

    fn thread(&self) -> Option<&ThreadHost> {
        match &self.inner.backend {
            Backend::Thread(t) => Some(t),
            Backend::Process(_) => None,
        }
    }

    fn send(&self, task: Task) -> Result<(), EngineError> {
        let t = self.thread().ok_or(EngineError::Shutdown)?;
        t.tx.send(task).map_err(|_| EngineError::Shutdown)
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Task) -> Result<T, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx))?;
        rx.await.map_err(|_| EngineError::Shutdown)?
    }

    /// Run `f` with the model on the caller's thread. The model stays alive until `f` has
    /// returned, so whatever `f` built from it (samplers hold pointers into its vocabulary)
    /// is handed to the host or dropped while the model exists.
    fn with_model<T>(
        &self,
        t: &ThreadHost,
        f: impl FnOnce(&LlamaModel, &Limits) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let model = t
            .model
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(EngineError::Shutdown)?;
        f(&model, &t.limits)
    }

    /// Prepare `req` here and hand it to the host; the receiver gets the stream (or a
    /// refusal that depends on the host's state: queue full).
    fn submit(
        &self,
        t: &ThreadHost,
        req: GenerateRequest,
    ) -> Result<oneshot::Receiver<Result<EventStream, EngineError>>, EngineError> {
        self.with_model(t, |model, limits| {
            let ready = admission::prepare(model, limits, req)?;
            let (reply, rx) = oneshot::channel();
            self.send(Task::Generate {
                req: Box::new(ready),
                reply,
            })?;
            Ok(rx)
        })
    }

    /// Start a generation. Errors found before any token (invalid parameters, grammar,
    /// prompt too long, queue full) come back here; later ones arrive as `Event::Error`.
    /// Tokenizing and building the samplers happen on this thread, not the model's (in a
    /// worker: on the worker's side, before the request is queued).
    pub async fn generate(&self, req: GenerateRequest) -> Result<EventStream, EngineError> {
        match &self.inner.backend {
            Backend::Thread(t) => {
                let rx = self.submit(t, req)?;
                rx.await.map_err(|_| EngineError::Shutdown)?
            }
            Backend::Process(c) => c.generate(req).await,
        }
    }

    /// [`generate`](Self::generate) for non-async callers.
    pub fn generate_blocking(&self, req: GenerateRequest) -> Result<EventStream, EngineError> {
        match &self.inner.backend {
            Backend::Thread(t) => {
                let rx = self.submit(t, req)?;
                rx.blocking_recv().map_err(|_| EngineError::Shutdown)?
            }
            Backend::Process(c) => c.generate_blocking(req),
        }
    }

    pub async fn tokenize(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<i32>, EngineError> {
        match &self.inner.backend {
            Backend::Thread(t) => self.with_model(t, |model, _| {
                Ok(admission::tokenize(model, text, add_special, parse_special)
                    .into_iter()
                    .map(|t| t.0)
                    .collect())
            }),
            Backend::Process(c) => answer!(c, Call::Tokenize {
                text: text.to_string(),
                add_special,
                parse_special,
            }, Answer::Tokens(t) => t),
        }
    }

    pub async fn detokenize(&self, tokens: &[i32]) -> Result<String, EngineError> {
        match &self.inner.backend {
            Backend::Thread(t) => self.with_model(t, |model, limits| {
                admission::detokenize(model, tokens, limits.n_vocab)
            }),
            Backend::Process(c) => {
                answer!(c, Call::Detokenize(tokens.to_vec()), Answer::Text(t) => t)
            }
        }
    }

    /// Each token's text (special tokens rendered).
    pub async fn token_pieces(&self, tokens: &[i32]) -> Result<Vec<TokenPiece>, EngineError> {
        match &self.inner.backend {
            Backend::Thread(t) => self.with_model(t, |model, limits| {
                admission::token_pieces(model, tokens, limits.n_vocab)
            }),
            Backend::Process(c) => {
                answer!(c, Call::TokenPieces(tokens.to_vec()), Answer::Pieces(p) => p)
            }
        }
    }

    /// Embeddings of each input, in input order, on an embedding context of the requested
    /// pooling (created on first use). Runs between generation steps: slots keep going.
    pub async fn embed(&self, req: EmbedRequest) -> Result<Vec<Embedding>, EngineError> {
        let t = match &self.inner.backend {
            Backend::Thread(t) => t,
            Backend::Process(c) => {
                let caps = req.caps;
                return answer!(c, Call::Embed { req: Box::new(req), caps },
                    Answer::Embeddings(e) => e);
            }
        };
        let rx = self.with_model(t, |model, limits| {
            let job = admission::embed_inputs(model, limits, req)?;
            let (reply, rx) = oneshot::channel();
            self.send(Task::Embed { job, reply })?;
            Ok(rx)
        })?;
        rx.await.map_err(|_| EngineError::Shutdown)?
    }

    /// Relevance of each document to `query`, in document order. Needs a reranker (pooling
    /// `rank`, see [`ModelInfo::can_rerank`]); other models give `Unsupported`.
    pub async fn rerank(
        &self,
        query: String,
        documents: Vec<String>,
    ) -> Result<Vec<RerankScore>, EngineError> {
        if !self.inner.info.can_rerank {
            return Err(crate::embed::cannot_rerank(self.inner.info.pooling));
        }
        let t = match &self.inner.backend {
            Backend::Thread(t) => t,
            Backend::Process(c) => {
                return answer!(c, Call::Rerank { query, documents }, Answer::Scores(s) => s);
            }
        };
        let rx = self.with_model(t, |model, limits| {
            let inputs = admission::rerank_inputs(model, limits, &query, &documents)?;
            let (reply, rx) = oneshot::channel();
            self.send(Task::Rerank { inputs, reply })?;
            Ok(rx)
        })?;
        rx.await.map_err(|_| EngineError::Shutdown)?
    }

    /// The loaded LoRA adapters with their global scales.
    pub async fn lora_adapters(&self) -> Result<Vec<LoraAdapterInfo>, EngineError> {
        match &self.inner.backend {
            Backend::Thread(_) => self.call(|reply| Task::LoraAdapters { reply }).await,
            Backend::Process(c) => answer!(c, Call::LoraAdapters, Answer::Adapters(a) => a),
        }
    }

    /// Set the global LoRA scales (used by requests that name none): listed adapters get
    /// their scale, the others 0, as llama-server's `POST /lora-adapters`. Running requests
    /// keep theirs; an unknown id or a non-finite scale is `InvalidParameter`.
    pub async fn set_lora_scales(&self, scales: Vec<LoraScale>) -> Result<(), EngineError> {
        crate::lora::validate_scales(&scales)?;
        match &self.inner.backend {
            Backend::Thread(_) => {
                self.call(|reply| Task::SetLoraScales { scales, reply })
                    .await
            }
            Backend::Process(c) => answer!(c, Call::SetLoraScales(scales), Answer::Done => ()),
        }
    }

    pub async fn slots(&self) -> Result<Vec<SlotInfo>, EngineError> {
        match &self.inner.backend {
            Backend::Thread(_) => self.call(|reply| Task::Slots { reply }).await,
            Backend::Process(c) => answer!(c, Call::Slots, Answer::Slots(s) => s),
        }
    }

    /// Save an idle slot's KV cache and tokens to `path` (written to a temporary file, then
    /// renamed).
    pub async fn save_slot(
        &self,
        id: u32,
        path: impl Into<PathBuf>,
    ) -> Result<SlotFileInfo, EngineError> {
        let path = path.into();
        match &self.inner.backend {
            Backend::Thread(_) => self.call(|reply| Task::SaveSlot { id, path, reply }).await,
            Backend::Process(c) => {
                answer!(c, Call::SaveSlot { id, path }, Answer::SlotFile(f) => f)
            }
        }
    }

    /// Load a saved slot file into an idle slot (replacing its cache).
    pub async fn restore_slot(
        &self,
        id: u32,
        path: impl Into<PathBuf>,
    ) -> Result<SlotFileInfo, EngineError> {
        let path = path.into();
        match &self.inner.backend {
            Backend::Thread(_) => {
                self.call(|reply| Task::RestoreSlot { id, path, reply })
                    .await
            }
            Backend::Process(c) => {
                answer!(c, Call::RestoreSlot { id, path }, Answer::SlotFile(f) => f)
            }
        }
    }

    /// Clear an idle slot's cache; returns the number of tokens dropped.
    pub async fn erase_slot(&self, id: u32) -> Result<u32, EngineError> {
        match &self.inner.backend {
            Backend::Thread(_) => self.call(|reply| Task::EraseSlot { id, reply }).await,
            Backend::Process(c) => answer!(c, Call::EraseSlot(id), Answer::Erased(n) => n),
        }
    }

    /// Measures pp/tg speed on this model as loaded, llama-bench's way
    /// ([`crate::bench`]). The host lets running requests finish, starts no new ones until
    /// the benchmark is done (they queue), and measures on a context of its own: the slots'
    /// caches are kept. `progress` is called on the host thread (a worker's: on the thread
    /// that reads the worker's output).
    pub async fn bench(
        &self,
        params: BenchParams,
        progress: impl FnMut(BenchProgress) + Send + 'static,
    ) -> Result<BenchReport, EngineError> {
        params.validate()?;
        let mut report = match &self.inner.backend {
            Backend::Thread(_) => {
                self.call(|reply| Task::Bench {
                    params,
                    progress: Box::new(progress),
                    reply,
                })
                .await?
            }
            Backend::Process(c) => match c.bench(params, Box::new(progress)).await? {
                Answer::Bench(r) => *r,
                _ => return Err(c.out_of_turn()),
            },
        };
        report.params.n_gpu_layers = self.inner.info.n_gpu_layers;
        Ok(report)
    }

    /// Stop the host: running and queued requests end with `Error(Shutdown)`, then the context
    /// and model are freed. Returns once they are. Other clones of the handle then get
    /// `Shutdown` errors.
    pub async fn shutdown(&self) {
        if let Backend::Process(c) = &self.inner.backend {
            let c = c.clone();
            let _ = tokio::task::spawn_blocking(move || c.shutdown_blocking()).await;
            return;
        }
        self.release_model();
        let (done, rx) = oneshot::channel();
        if self.send(Task::Shutdown { done }).is_ok() {
            let _ = rx.await;
        }
        self.join();
    }

    /// [`shutdown`](Self::shutdown) for non-async callers.
    pub fn shutdown_blocking(&self) {
        if let Backend::Process(c) = &self.inner.backend {
            c.shutdown_blocking();
            return;
        }
        self.release_model();
        let (done, rx) = oneshot::channel();
        if self.send(Task::Shutdown { done }).is_ok() {
            let _ = rx.blocking_recv();
        }
        self.join();
    }

    /// Give up the handles' reference to the model, so that the host can free it.
    fn release_model(&self) {
        if let Some(t) = self.thread() {
            t.model
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
        }
    }

    fn join(&self) {
        let thread = self
            .thread()
            .and_then(|t| t.thread.lock().ok().and_then(|mut t| t.take()));
        if let Some(t) = thread {
            // The host has signalled that it is done; this only reaps the thread.
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_and_streams_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<ModelHandle>();
        send::<EventStream>();
        send_sync::<ModelInfo>();
    }
}
