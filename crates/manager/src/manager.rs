//! The manager proper. One mutex guards every model's entry; it is held only for
//! bookkeeping, never across a load or an await. Loads run on a blocking thread inside a
//! task of their own, so a caller that gives up (client gone, timeout) never strands a
//! model half-loaded: the load finishes and the next caller finds it.

use crate::keep_alive::{KeepAlive, KeepAlivePolicy};
use crate::state::{Event, ModelState, ModelStatus, UnloadReason};
use std::collections::HashMap;
use std::fmt::Debug;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, broadcast};

/// How the manager gets a model running. Implemented by the engine (in-process llama.cpp)
/// and by test doubles.
pub trait Loader: Send + Sync + 'static {
    /// Everything that needs a reload when it changes (file, context size, slots, GPU
    /// layers…). Sampling options are per request and must not be in here.
    type Spec: Clone + PartialEq + Debug + Send + Sync + 'static;
    /// A running model. Dropping the last reference unloads it (possibly slowly: the
    /// manager drops it on a blocking thread).
    type Model: Send + Sync + 'static;

    /// Loads a model. Blocking; runs on a blocking thread. `progress` takes 0..=1.
    fn load(
        &self,
        id: &str,
        spec: &Self::Spec,
        progress: &(dyn Fn(f32) + Send + Sync),
    ) -> Result<Self::Model, String>;

    /// Frees an unloaded model. Blocking; runs on a blocking thread, and the next load
    /// waits for it, so an evicted model's memory is back before another takes its place.
    /// Return only once the memory is freed (the default just drops the model).
    fn unload(&self, model: Self::Model) {
        drop(model);
    }

    /// For a model that can die under the manager (one in a worker process): a future that
    /// resolves with the reason if it crashes, or `None` when it ends as asked. The
    /// manager then marks it crashed ([`Event::Crashed`]). The default: nothing to watch.
    fn watch(&self, _model: &Self::Model) -> Option<CrashWatch> {
        None
    }
}

/// See [`Loader::watch`].
pub type CrashWatch = std::pin::Pin<Box<dyn std::future::Future<Output = Option<String>> + Send>>;

#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// At most this many models loaded or loading at once.
    pub models_max: usize,
    /// Default idle time before a model sleeps; a request's `keep_alive` overrides it
    /// within `keep_alive`'s limits.
    pub sleep_idle: KeepAlive,
    /// What a request's own `keep_alive` may do.
    pub keep_alive: KeepAlivePolicy,
    /// How often idle models are checked.
    pub reap_interval: Duration,
    /// A model that crashed this many times within `crash_window` is marked failed
    /// instead of loaded again (until the window has passed or it is loaded by hand).
    pub crash_limit: usize,
    pub crash_window: Duration,
    /// Wait before loading a model that crashed again: `crash_backoff` after its second
    /// crash in the window, doubling with each one after (the first reload is at once).
    pub crash_backoff: Duration,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            models_max: 4,
            sleep_idle: KeepAlive::Forever,
            keep_alive: KeepAlivePolicy::default(),
            reap_interval: Duration::from_secs(1),
            crash_limit: 3,
            crash_window: Duration::from_secs(300),
            crash_backoff: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ManagerError {
    #[error("model {id} failed to load: {reason}")]
    LoadFailed { id: String, reason: String },
    #[error("model {id} has {in_flight} request(s) in flight")]
    InUse { id: String, in_flight: usize },
    #[error("model {id} is not loaded")]
    NotLoaded { id: String },
    #[error("the model manager is shutting down")]
    ShuttingDown,
}

enum Slot<L: Loader> {
    Unloaded,
    Loading { progress: f32 },
    Loaded(Loaded<L>),
    Failed { reason: String },
}

struct Loaded<L: Loader> {
    spec: L::Spec,
    model: Arc<L::Model>,
    in_flight: usize,
    last_used: Instant,
}

struct Entry<L: Loader> {
    slot: Slot<L>,
    /// Counts loads started; a waiter only takes a failure from the load it waited on.
    load_gen: u64,
    /// How long the model stays loaded once idle: the longest keep-alive among the
    /// requests of its current (or last) busy period, so one request's `0` or short value
    /// never cuts short another's that ran alongside it, and is forgotten once the model
    /// has been idle (it does not stick to later requests).
    keep: KeepAlive,
    /// Unloaded because it was idle, and not loading again since: it sleeps (llama-server's
    /// `is_sleeping`) and the next request that needs it wakes it.
    asleep: bool,
    /// When it crashed, within `crash_window`, oldest first.
    crashes: Vec<Instant>,
}

impl<L: Loader> Entry<L> {
    /// Crashes within the window (older ones forgotten).
    fn recent_crashes(&mut self, window: Duration) -> usize {
        self.crashes.retain(|t| t.elapsed() < window);
        self.crashes.len()
    }
}

struct Shared<L: Loader> {
    loader: Arc<L>,
    freeing: Arc<Freeing>,
    config: ManagerConfig,
    entries: Mutex<HashMap<String, Entry<L>>>,
    changed: Notify,
    events: broadcast::Sender<Event>,
    shutting_down: std::sync::atomic::AtomicBool,
}

/// Models being freed on blocking threads.
#[derive(Default)]
struct Freeing {
    count: std::sync::atomic::AtomicUsize,
    done: Notify,
}

/// Many models in one process. Cheap to clone.
pub struct Manager<L: Loader> {
    shared: Arc<Shared<L>>,
}

impl<L: Loader> Clone for Manager<L> {
    fn clone(&self) -> Self {
        Manager {
            shared: self.shared.clone(),
        }
    }
}

/// A request's hold on a loaded model: while it lives the model is not evicted.
pub struct Lease<L: Loader> {
    id: String,
    model: Arc<L::Model>,
    shared: Arc<Shared<L>>,
}

impl<L: Loader> Lease<L> {
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl<L: Loader> Deref for Lease<L> {
    type Target = L::Model;
    fn deref(&self) -> &L::Model {
        &self.model
    }
}

impl<L: Loader> Drop for Lease<L> {
    fn drop(&mut self) {
        let mut entries = self.shared.lock();
        let Some(entry) = entries.get_mut(&self.id) else {
            return;
        };
        let zero_keep_alive = entry.keep.is_zero();
        let Slot::Loaded(l) = &mut entry.slot else {
            return;
        };
        l.in_flight = l.in_flight.saturating_sub(1);
        l.last_used = Instant::now();
        // Only the last request out can unload: a `keep_alive: 0` never unloads a model
        // that other requests are using or queued on (they hold leases too).
        if l.in_flight == 0 && zero_keep_alive {
            self.shared
                .unload_locked(&self.id, entry, UnloadReason::Idle);
        }
        drop(entries);
        self.shared.changed.notify_waiters();
    }
}

impl<L: Loader> Manager<L> {
    /// Creates the manager and its idle reaper. Must be called inside a tokio runtime.
    pub fn new(loader: L, config: ManagerConfig) -> Self {
        let (events, _) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            loader: Arc::new(loader),
            freeing: Default::default(),
            config,
            entries: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            events,
            shutting_down: false.into(),
        });
        tokio::spawn(reap_idle(Arc::downgrade(&shared)));
        Manager { shared }
    }

    /// Subscribes to state changes. A subscriber that falls behind misses old events
    /// (it never slows the manager down).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// Gets a lease on model `id` loaded with `spec`, loading it first (or reloading it when
    /// the spec changed) as needed. Concurrent callers for the same model share one load.
    pub async fn acquire(
        &self,
        id: &str,
        spec: &L::Spec,
        keep_alive: Option<KeepAlive>,
    ) -> Result<Lease<L>, ManagerError> {
        self.acquire_inner(id, spec, keep_alive, true).await
    }

    /// Like [`acquire`](Self::acquire), but a model already loaded (with whatever spec) is
    /// used as it is; `spec` only applies when it has to be loaded. This is what inference
    /// requests want: a model loaded by hand with other parameters must not be reloaded by
    /// the next chat request.
    pub async fn acquire_any(
        &self,
        id: &str,
        spec: &L::Spec,
        keep_alive: Option<KeepAlive>,
    ) -> Result<Lease<L>, ManagerError> {
        self.acquire_inner(id, spec, keep_alive, false).await
    }

    async fn acquire_inner(
        &self,
        id: &str,
        spec: &L::Spec,
        keep_alive: Option<KeepAlive>,
        exact: bool,
    ) -> Result<Lease<L>, ManagerError> {
        let shared = &self.shared;
        let keep = shared
            .config
            .keep_alive
            .apply(keep_alive)
            .unwrap_or(shared.config.sleep_idle);
        let mut waited_on: Option<u64> = None;
        loop {
            let notified = shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                if shared
                    .shutting_down
                    .load(std::sync::atomic::Ordering::SeqCst)
                {
                    return Err(ManagerError::ShuttingDown);
                }
                let mut entries = shared.lock();
                let entry = entries.entry(id.to_string()).or_insert_with(|| Entry {
                    slot: Slot::Unloaded,
                    load_gen: 0,
                    keep: shared.config.sleep_idle,
                    asleep: false,
                    crashes: Vec::new(),
                });
                let crash_blocked = entry.recent_crashes(shared.config.crash_window)
                    >= shared.config.crash_limit;
                match &mut entry.slot {
                    Slot::Loaded(l) if !exact || l.spec == *spec => {
                        // A new busy period starts from this request's keep-alive; during
                        // one, the longest wins.
                        entry.keep = if l.in_flight == 0 {
                            keep
                        } else {
                            entry.keep.max(keep)
                        };
                        l.in_flight += 1;
                        l.last_used = Instant::now();
                        return Ok(Lease {
                            id: id.to_string(),
                            model: l.model.clone(),
                            shared: shared.clone(),
                        });
                    }
                    Slot::Loaded(l) => {
                        if l.in_flight == 0 {
                            shared.unload_locked(id, entry, UnloadReason::Reload);
                            continue;
                        }
                        // Reload once the requests on the old parameters are done.
                    }
                    Slot::Loading { .. } => waited_on = Some(entry.load_gen),
                    Slot::Failed { reason } if waited_on == Some(entry.load_gen) => {
                        return Err(ManagerError::LoadFailed {
                            id: id.to_string(),
                            reason: reason.clone(),
                        });
                    }
                    Slot::Failed { reason } if crash_blocked => {
                        // Crashed too often: no reload loop (an explicit load clears it).
                        return Err(ManagerError::LoadFailed {
                            id: id.to_string(),
                            reason: reason.clone(),
                        });
                    }
                    Slot::Unloaded | Slot::Failed { .. } => {
                        if shared.make_room(&mut entries, id) {
                            let entry = entries.get_mut(id).expect("entry inserted above");
                            entry.load_gen += 1;
                            waited_on = Some(entry.load_gen);
                            entry.slot = Slot::Loading { progress: 0.0 };
                            entry.asleep = false;
                            // A new busy period starts with this request's keep-alive (not
                            // the last period's: a `0` left from it would let the reaper
                            // unload the model before its waiters take their leases).
                            entry.keep = keep;
                            let backoff = shared.backoff(
                                entry.recent_crashes(shared.config.crash_window),
                            );
                            shared.emit(Event::Loading {
                                id: id.to_string(),
                                progress: 0.0,
                            });
                            tokio::spawn(load_task(
                                shared.clone(),
                                id.to_string(),
                                spec.clone(),
                                entry.load_gen,
                                backoff,
                            ));
                            continue;
                        }
                        // Every loaded model is busy: wait until one is released.
                    }
                }
            }
            notified.await;
        }
    }

    /// Loads a model without holding on to it (the dashboard's "load" button).
    pub async fn load(&self, id: &str, spec: &L::Spec) -> Result<(), ManagerError> {
        // Asked for by hand: a model failed for crashing gets another chance.
        if let Some(e) = self.shared.lock().get_mut(id) {
            e.crashes.clear();
        }
        // Its lease has the server's keep-alive, so releasing it does not unload the model
        // even if a request that asked for `0` is running alongside.
        drop(self.acquire(id, spec, None).await?);
        Ok(())
    }

    /// Unloads an idle model. A model with requests in flight is refused, not interrupted.
    pub fn unload(&self, id: &str) -> Result<(), ManagerError> {
        let mut entries = self.shared.lock();
        let Some(entry) = entries.get_mut(id) else {
            return Err(ManagerError::NotLoaded { id: id.to_string() });
        };
        match &entry.slot {
            Slot::Loaded(l) if l.in_flight > 0 => Err(ManagerError::InUse {
                id: id.to_string(),
                in_flight: l.in_flight,
            }),
            Slot::Loaded(_) => {
                self.shared
                    .unload_locked(id, entry, UnloadReason::Requested);
                drop(entries);
                self.shared.changed.notify_waiters();
                Ok(())
            }
            _ => Err(ManagerError::NotLoaded { id: id.to_string() }),
        }
    }

    /// The state of every model the manager has seen, sorted by id.
    pub fn statuses(&self) -> Vec<ModelStatus> {
        let entries = self.shared.lock();
        let mut out: Vec<ModelStatus> = entries
            .iter()
            .map(|(id, e)| {
                let (state, in_flight, idle) = match &e.slot {
                    Slot::Unloaded => (ModelState::Unloaded, 0, None::<Duration>),
                    Slot::Loading { progress, .. } => (
                        ModelState::Loading {
                            progress: *progress,
                        },
                        0,
                        None,
                    ),
                    Slot::Loaded(l) => {
                        (ModelState::Loaded, l.in_flight, Some(l.last_used.elapsed()))
                    }
                    Slot::Failed { reason } => (
                        ModelState::Failed {
                            reason: reason.clone(),
                        },
                        0,
                        None,
                    ),
                };
                let expires_in_seconds = match (idle, e.keep) {
                    (Some(idle), KeepAlive::For(keep)) if in_flight == 0 => {
                        Some(keep.saturating_sub(idle).as_secs())
                    }
                    _ => None,
                };
                ModelStatus {
                    id: id.clone(),
                    state,
                    in_flight,
                    idle_seconds: idle.map(|d| d.as_secs()),
                    expires_in_seconds,
                    keep_alive: e.keep,
                }
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// One model's state (`Unloaded` when never seen).
    pub fn state(&self, id: &str) -> ModelState {
        self.statuses()
            .into_iter()
            .find(|s| s.id == id)
            .map_or(ModelState::Unloaded, |s| s.state)
    }

    /// Whether model `id` was unloaded for being idle and has not been asked for since.
    pub fn is_sleeping(&self, id: &str) -> bool {
        self.shared.lock().get(id).is_some_and(|e| e.asleep)
    }

    /// The loader (what it keeps about models outlives their loads).
    pub fn loader(&self) -> &L {
        &self.shared.loader
    }

    /// The loaded model, if it is loaded, without taking a lease (for status pages).
    pub fn peek(&self, id: &str) -> Option<Arc<L::Model>> {
        match &self.shared.lock().get(id)?.slot {
            Slot::Loaded(l) => Some(l.model.clone()),
            _ => None,
        }
    }

    /// Refuses new requests and unloads every model once its requests are done.
    pub async fn shutdown(&self) {
        self.shared
            .shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.shared.changed.notify_waiters();
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let busy = {
                let mut entries = self.shared.lock();
                let ids: Vec<String> = entries.keys().cloned().collect();
                let mut busy = false;
                for id in ids {
                    let entry = entries.get_mut(&id).expect("key just listed");
                    match &entry.slot {
                        Slot::Loaded(l) if l.in_flight == 0 => {
                            self.shared
                                .unload_locked(&id, entry, UnloadReason::Shutdown)
                        }
                        Slot::Loaded(_) | Slot::Loading { .. } => busy = true,
                        _ => {}
                    }
                }
                busy
            };
            if !busy {
                return;
            }
            notified.await;
        }
    }
}

impl<L: Loader> Shared<L> {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry<L>>> {
        // A panic while holding the lock leaves plain bookkeeping behind; keep going.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, event: Event) {
        match &event {
            Event::Loading { .. } => tracing::debug!(event = event.name(), ?event, "model state"),
            _ => tracing::info!(event = event.name(), ?event, "model state"),
        }
        let _ = self.events.send(event);
    }

    /// Unloads a loaded, idle model: its state becomes Unloaded and the model is dropped
    /// on a blocking thread (freeing a model can take a while).
    fn unload_locked(&self, id: &str, entry: &mut Entry<L>, reason: UnloadReason) {
        if let Slot::Loaded(l) = std::mem::replace(&mut entry.slot, Slot::Unloaded) {
            self.free(l.model);
            self.emit(Event::Unloaded {
                id: id.to_string(),
                reason,
            });
        }
    }

    /// Frees a model on a blocking thread, counted in `freeing` until its memory is back.
    /// A model someone still holds (a status page's peek) goes when they let it go.
    fn free(&self, model: Arc<L::Model>) {
        use std::sync::atomic::Ordering::SeqCst;
        let freeing = self.freeing.clone();
        let loader = self.loader.clone();
        freeing.count.fetch_add(1, SeqCst);
        let work = move || {
            if let Ok(model) = Arc::try_unwrap(model) {
                loader.unload(model);
            }
            if freeing.count.fetch_sub(1, SeqCst) == 1 {
                freeing.done.notify_waiters();
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(work)),
            Err(_) => work(),
        }
    }

    /// How long to wait before loading a model with `crashes` recent crashes.
    fn backoff(&self, crashes: usize) -> Duration {
        match crashes {
            0 | 1 => Duration::ZERO,
            n => self
                .config
                .crash_backoff
                .saturating_mul(1 << (n - 2).min(16) as u32),
        }
    }

    /// The model of load `generation` died: it is no longer loaded (its leases hold the
    /// dead handle, whose calls fail). Loaded again by the next request, unless it crashed
    /// `crash_limit` times within `crash_window`: then it is failed with the reason.
    fn crashed(&self, id: &str, generation: u64, reason: String) {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(id) else {
            return;
        };
        if entry.load_gen != generation || !matches!(entry.slot, Slot::Loaded(_)) {
            return; // an older load, or already unloaded
        }
        entry.crashes.push(Instant::now());
        let n = entry.recent_crashes(self.config.crash_window);
        let failed = n >= self.config.crash_limit;
        let next = if failed {
            Slot::Failed {
                reason: format!(
                    "crashed {n} times within {} s, not loaded again until then or until \
                     loaded by hand; last: {reason}",
                    self.config.crash_window.as_secs()
                ),
            }
        } else {
            Slot::Unloaded
        };
        let Slot::Loaded(l) = std::mem::replace(&mut entry.slot, next) else {
            unreachable!("checked above");
        };
        self.free(l.model);
        self.emit(Event::Crashed {
            id: id.to_string(),
            reason,
        });
        if let Slot::Failed { reason } = &entry.slot {
            let reason = reason.clone();
            self.emit(Event::Failed {
                id: id.to_string(),
                reason,
            });
        }
        drop(entries);
        self.changed.notify_waiters();
    }

    /// Waits until no model is being freed.
    async fn freed(&self) {
        loop {
            let done = self.freeing.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if self.freeing.count.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            done.await;
        }
    }

    /// Makes room for one more model under `models_max` by evicting the least recently
    /// used idle model. Returns false when every model is busy.
    fn make_room(&self, entries: &mut HashMap<String, Entry<L>>, for_id: &str) -> bool {
        let occupied = entries
            .iter()
            .filter(|(id, e)| {
                *id != for_id && matches!(e.slot, Slot::Loaded(_) | Slot::Loading { .. })
            })
            .count();
        if occupied < self.config.models_max {
            return true;
        }
        let victim = entries
            .iter()
            .filter(|(id, _)| *id != for_id)
            .filter_map(|(id, e)| match &e.slot {
                Slot::Loaded(l) if l.in_flight == 0 => Some((l.last_used, id.clone())),
                _ => None,
            })
            .min();
        match victim {
            Some((_, id)) => {
                let entry = entries.get_mut(&id).expect("victim is an entry");
                self.unload_locked(&id, entry, UnloadReason::Evicted);
                true
            }
            None => false,
        }
    }
}

/// Runs one load to the end and records the outcome, whoever is still waiting.
async fn load_task<L: Loader>(
    shared: Arc<Shared<L>>,
    id: String,
    spec: L::Spec,
    generation: u64,
    backoff: Duration,
) {
    if !backoff.is_zero() {
        tracing::info!(model = %id, ?backoff, "model crashed before; waiting before loading it again");
        tokio::time::sleep(backoff).await;
    }
    // Never two models in memory where the limit says one: an evicted model is freed first.
    shared.freed().await;
    let started = Instant::now();
    let for_thread = shared.clone();
    let (id2, spec2) = (id.clone(), spec.clone());
    let result = tokio::task::spawn_blocking(move || {
        let last = Mutex::new(0.0f32);
        let progress = |p: f32| {
            let p = p.clamp(0.0, 1.0);
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            // Publish whole percents only: llama.cpp calls back per tensor.
            if (p * 100.0).floor() <= (*last * 100.0).floor() {
                return;
            }
            *last = p;
            let mut entries = for_thread.lock();
            if let Some(Entry {
                slot: Slot::Loading { progress, .. },
                load_gen,
                ..
            }) = entries.get_mut(&id2)
                && *load_gen == generation
            {
                *progress = p;
                drop(entries);
                for_thread.emit(Event::Loading {
                    id: id2.clone(),
                    progress: p,
                });
            }
        };
        // A panic in a loader must not take the manager down: it is a failed load.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for_thread.loader.load(&id2, &spec2, &progress)
        }))
        .unwrap_or_else(|_| Err("the loader panicked".to_string()))
    })
    .await
    .unwrap_or_else(|e| Err(format!("load task failed: {e}")));

    let mut entries = shared.lock();
    let entry = entries.get_mut(&id).expect("entries are never removed");
    match result {
        Ok(model) => {
            if let Some(watch) = shared.loader.watch(&model) {
                let weak = Arc::downgrade(&shared);
                let id = id.clone();
                tokio::spawn(async move {
                    if let Some(reason) = watch.await
                        && let Some(shared) = weak.upgrade()
                    {
                        shared.crashed(&id, generation, reason);
                    }
                });
            }
            entry.slot = Slot::Loaded(Loaded {
                spec,
                model: Arc::new(model),
                in_flight: 0,
                last_used: Instant::now(),
            });
            shared.emit(Event::Loaded {
                id: id.clone(),
                load_ms: started.elapsed().as_millis() as u64,
            });
        }
        Err(reason) => {
            entry.slot = Slot::Failed {
                reason: reason.clone(),
            };
            shared.emit(Event::Failed {
                id: id.clone(),
                reason,
            });
        }
    }
    debug_assert_eq!(entry.load_gen, generation, "one load at a time per model");
    drop(entries);
    shared.changed.notify_waiters();
}

/// Puts idle models to sleep when their keep-alive runs out. Stops with the manager.
/// It wakes every `reap_interval`, or sooner when a model's keep-alive runs out before
/// that, so a model sleeps when its time is up (clients such as llama-server's tests wait
/// for `--sleep-idle-seconds 1` to pass), not up to an interval later.
async fn reap_idle<L: Loader>(weak: Weak<Shared<L>>) {
    let interval = match weak.upgrade() {
        Some(s) => s.config.reap_interval,
        None => return,
    };
    let mut wait = interval;
    loop {
        tokio::time::sleep(wait).await;
        let Some(shared) = weak.upgrade() else { return };
        let mut entries = shared.lock();
        let mut unloaded = false;
        wait = interval;
        let ids: Vec<String> = entries.keys().cloned().collect();
        for id in ids {
            let entry = entries.get_mut(&id).expect("key just listed");
            let KeepAlive::For(limit) = entry.keep else {
                continue;
            };
            // A zero keep-alive unloads when its last request ends (`Lease::drop`); here it
            // could only unload a model just loaded before its waiters got to it.
            if limit.is_zero() {
                continue;
            }
            if let Slot::Loaded(l) = &entry.slot
                && l.in_flight == 0
            {
                let idle = l.last_used.elapsed();
                if idle >= limit {
                    shared.unload_locked(&id, entry, UnloadReason::Idle);
                    entry.asleep = true;
                    unloaded = true;
                } else {
                    wait = wait.min(limit - idle);
                }
            }
        }
        drop(entries);
        if unloaded {
            shared.changed.notify_waiters();
        }
        // Not a busy loop when a deadline is (nearly) now.
        wait = wait.max(Duration::from_millis(10));
    }
}
