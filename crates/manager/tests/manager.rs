//! The manager's rules, driven through a loader that records what it was asked to do.
//! (The real engine plugs in through the same trait; its own tests load real models.)

use manager::{
    Event, KeepAlive, KeepAlivePolicy, Loader, Manager, ManagerConfig, ManagerError, ModelState,
    UnloadReason,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Recorder {
    loads: Mutex<HashMap<String, usize>>,
    live: AtomicUsize,
    /// The most models alive at once.
    most_live: AtomicUsize,
    /// Kills the live model of an id (what a worker process dying looks like).
    crash: Mutex<HashMap<String, tokio::sync::oneshot::Sender<Option<String>>>>,
}

impl Recorder {
    fn crash(&self, id: &str, reason: &str) {
        let tx = self.crash.lock().unwrap().remove(id).expect("a watched model");
        tx.send(Some(reason.to_string())).unwrap();
    }
}

struct TestLoader {
    rec: Arc<Recorder>,
    delay: Duration,
    /// Freeing a model takes this long (the engine waits for its host thread).
    unload_delay: Duration,
}

#[derive(Debug, Clone, PartialEq)]
struct Spec {
    ctx: u32,
    fail: bool,
}

fn spec() -> Spec {
    Spec {
        ctx: 512,
        fail: false,
    }
}

struct Model {
    id: String,
    spec: Spec,
    rec: Arc<Recorder>,
}

impl Drop for Model {
    fn drop(&mut self) {
        self.rec.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Loader for TestLoader {
    type Spec = Spec;
    type Model = Model;
    fn load(
        &self,
        id: &str,
        spec: &Spec,
        progress: &(dyn Fn(f32) + Send + Sync),
    ) -> Result<Model, String> {
        *self
            .rec
            .loads
            .lock()
            .unwrap()
            .entry(id.to_string())
            .or_default() += 1;
        for i in 1..=4 {
            std::thread::sleep(self.delay / 4);
            progress(i as f32 / 4.0);
        }
        if spec.fail {
            return Err(format!("{id}: not a GGUF file"));
        }
        let live = self.rec.live.fetch_add(1, Ordering::SeqCst) + 1;
        self.rec.most_live.fetch_max(live, Ordering::SeqCst);
        Ok(Model {
            id: id.to_string(),
            spec: spec.clone(),
            rec: self.rec.clone(),
        })
    }

    fn unload(&self, model: Model) {
        std::thread::sleep(self.unload_delay);
        drop(model);
    }

    fn watch(&self, model: &Model) -> Option<manager::CrashWatch> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Loads are one at a time per id: the newest load's trigger replaces the last.
        self.rec.crash.lock().unwrap().insert(model.id.clone(), tx);
        Some(Box::pin(async move { rx.await.ok().flatten() }))
    }
}

fn manager(models_max: usize, sleep_idle: KeepAlive) -> (Manager<TestLoader>, Arc<Recorder>) {
    manager_with(models_max, sleep_idle, KeepAlivePolicy::default())
}

fn manager_with(
    models_max: usize,
    sleep_idle: KeepAlive,
    keep_alive: KeepAlivePolicy,
) -> (Manager<TestLoader>, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let loader = TestLoader {
        rec: rec.clone(),
        delay: Duration::from_millis(40),
        unload_delay: Duration::ZERO,
    };
    let config = ManagerConfig {
        models_max,
        sleep_idle,
        keep_alive,
        reap_interval: Duration::from_millis(20),
        crash_limit: 3,
        crash_window: Duration::from_secs(60),
        crash_backoff: Duration::from_millis(10),
    };
    (Manager::new(loader, config), rec)
}

fn loads(rec: &Recorder, id: &str) -> usize {
    rec.loads.lock().unwrap().get(id).copied().unwrap_or(0)
}

async fn settle() {
    // Unloads drop models on a blocking thread; give them a moment.
    tokio::time::sleep(Duration::from_millis(60)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_for_an_unloaded_model_cause_one_load() {
    let (m, rec) = manager(4, KeepAlive::Forever);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let m = m.clone();
        tasks.push(tokio::spawn(async move {
            m.acquire("a", &spec(), None).await.map(|l| l.spec.ctx)
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(512));
    }
    assert_eq!(loads(&rec, "a"), 1);
    assert_eq!(m.state("a"), ModelState::Loaded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicts_the_least_recently_used_idle_model_never_a_busy_one() {
    let (m, rec) = manager(2, KeepAlive::Forever);
    let busy = m.acquire("a", &spec(), None).await.unwrap(); // oldest, but in use
    drop(m.acquire("b", &spec(), None).await.unwrap());
    let mut events = m.subscribe();
    drop(m.acquire("c", &spec(), None).await.unwrap());
    assert_eq!(
        m.state("a"),
        ModelState::Loaded,
        "a has a request in flight"
    );
    assert_eq!(m.state("b"), ModelState::Unloaded, "b was the idle one");
    assert_eq!(m.state("c"), ModelState::Loaded);
    let mut saw = Vec::new();
    while let Ok(e) = events.try_recv() {
        saw.push(e);
    }
    assert!(
        saw.contains(&Event::Unloaded {
            id: "b".into(),
            reason: UnloadReason::Evicted
        }),
        "{saw:?}"
    );
    drop(busy);
    // Now a is idle and the least recently used of a and c? a was released last, so c goes.
    drop(m.acquire("d", &spec(), None).await.unwrap());
    assert_eq!(m.state("c"), ModelState::Unloaded);
    assert_eq!(m.state("a"), ModelState::Loaded);
    settle().await;
    assert_eq!(
        rec.live.load(Ordering::SeqCst),
        2,
        "evicted models are really dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_a_model_to_free_up_when_all_are_busy() {
    let (m, _) = manager(1, KeepAlive::Forever);
    let busy = m.acquire("a", &spec(), None).await.unwrap();
    let m2 = m.clone();
    let waiting = tokio::spawn(async move { m2.acquire("b", &spec(), None).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiting.is_finished(),
        "b must wait: a is in use and models_max is 1"
    );
    assert_eq!(m.state("a"), ModelState::Loaded);
    drop(busy);
    waiting.await.unwrap().unwrap();
    assert_eq!(m.state("a"), ModelState::Unloaded);
    assert_eq!(m.state("b"), ModelState::Loaded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_load_reports_its_reason_and_leaves_others_alone() {
    let (m, rec) = manager(4, KeepAlive::Forever);
    drop(m.acquire("good", &spec(), None).await.unwrap());
    let bad = Spec {
        fail: true,
        ..spec()
    };
    let mut waiters = Vec::new();
    for _ in 0..3 {
        let m = m.clone();
        let bad = bad.clone();
        waiters.push(tokio::spawn(async move {
            m.acquire("bad", &bad, None).await.map(|_| ())
        }));
    }
    for w in waiters {
        match w.await.unwrap() {
            Err(ManagerError::LoadFailed { id, reason }) => {
                assert_eq!(id, "bad");
                assert!(reason.contains("not a GGUF file"));
            }
            other => panic!("expected a load failure, got {other:?}"),
        }
    }
    assert_eq!(
        loads(&rec, "bad"),
        1,
        "concurrent waiters share the failed load"
    );
    assert!(matches!(m.state("bad"), ModelState::Failed { .. }));
    assert_eq!(m.state("good"), ModelState::Loaded);
    assert!(m.acquire("good", &spec(), None).await.is_ok());
    // A later request tries again (the file may have been fixed).
    assert!(m.acquire("bad", &spec(), None).await.is_ok());
    assert_eq!(loads(&rec, "bad"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_load_parameters_reloads_after_current_requests() {
    let (m, rec) = manager(4, KeepAlive::Forever);
    let old = m.acquire("a", &spec(), None).await.unwrap();
    let bigger = Spec {
        ctx: 4096,
        ..spec()
    };
    let m2 = m.clone();
    let b2 = bigger.clone();
    let new = tokio::spawn(async move { m2.acquire("a", &b2, None).await.map(|l| l.spec.ctx) });
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(
        !new.is_finished(),
        "the reload waits for the request on the old parameters"
    );
    assert_eq!(old.spec.ctx, 512);
    drop(old);
    assert_eq!(new.await.unwrap(), Ok(4096));
    assert_eq!(loads(&rec, "a"), 2);
    // Same parameters again: no reload.
    drop(m.acquire("a", &bigger, None).await.unwrap());
    assert_eq!(loads(&rec, "a"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_models_sleep_and_keep_alive_overrides() {
    let (m, rec) = manager(4, KeepAlive::For(Duration::from_millis(150)));
    drop(m.acquire("default", &spec(), None).await.unwrap());
    drop(
        m.acquire("forever", &spec(), Some(KeepAlive::Forever))
            .await
            .unwrap(),
    );
    drop(
        m.acquire("now", &spec(), Some(KeepAlive::For(Duration::ZERO)))
            .await
            .unwrap(),
    );
    assert_eq!(
        m.state("now"),
        ModelState::Unloaded,
        "keep_alive 0 unloads when the request ends"
    );
    assert_eq!(m.state("default"), ModelState::Loaded);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        m.state("default"),
        ModelState::Unloaded,
        "slept after sleep_idle"
    );
    assert_eq!(m.state("forever"), ModelState::Loaded);
    settle().await;
    assert_eq!(rec.live.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_unloaded_for_idleness_sleeps_until_it_is_asked_for() {
    let (m, _) = manager(4, KeepAlive::For(Duration::from_millis(150)));
    drop(m.acquire("a", &spec(), None).await.unwrap());
    drop(
        m.acquire("b", &spec(), Some(KeepAlive::Forever))
            .await
            .unwrap(),
    );
    assert!(!m.is_sleeping("a"), "loaded, not asleep");
    assert!(!m.is_sleeping("never-seen"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(m.state("a"), ModelState::Unloaded);
    assert!(m.is_sleeping("a"), "unloaded for idleness");
    // Reading its state does not wake it; a request does.
    assert!(m.peek("a").is_none() && m.is_sleeping("a"));
    let lease = m.acquire("a", &spec(), None).await.unwrap();
    assert!(!m.is_sleeping("a"), "woken by the request");
    drop(lease);
    // Unloaded on request is not sleeping.
    m.unload("b").unwrap();
    assert!(!m.is_sleeping("b"));
}

const ZERO: Option<KeepAlive> = Some(KeepAlive::For(Duration::ZERO));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_zero_does_not_unload_a_model_another_request_is_using() {
    let (m, rec) = manager(4, KeepAlive::Forever);
    let stream = m.acquire("a", &spec(), None).await.unwrap();
    let quick = m.acquire("a", &spec(), ZERO).await.unwrap();
    drop(quick);
    assert_eq!(
        m.state("a"),
        ModelState::Loaded,
        "the stream is still running"
    );
    drop(stream);
    settle().await;
    assert_eq!(
        m.state("a"),
        ModelState::Loaded,
        "the stream's keep-alive (the server's: forever) is the longer one"
    );
    assert_eq!(loads(&rec, "a"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_zero_unloads_when_alone_and_does_not_stick_to_later_requests() {
    let (m, rec) = manager(4, KeepAlive::Forever);
    drop(m.acquire("a", &spec(), ZERO).await.unwrap());
    assert_eq!(
        m.state("a"),
        ModelState::Unloaded,
        "alone, 0 unloads at once"
    );
    // Everyone else's requests keep the server's keep-alive: no reload loop.
    for _ in 0..3 {
        drop(m.acquire("a", &spec(), None).await.unwrap());
        assert_eq!(m.state("a"), ModelState::Loaded);
    }
    assert_eq!(loads(&rec, "a"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_keep_alive_is_clamped_and_ignored_when_config_says_so() {
    let policy = KeepAlivePolicy {
        clients: true,
        min: Duration::ZERO,
        max: KeepAlive::For(Duration::from_secs(600)),
    };
    let (m, _) = manager_with(4, KeepAlive::Forever, policy);
    drop(
        m.acquire("a", &spec(), Some(KeepAlive::Forever))
            .await
            .unwrap(),
    );
    let expires = m.statuses()[0].expires_in_seconds;
    assert!(
        expires.is_some_and(|s| s <= 600),
        "forever is clamped to the maximum: {expires:?}"
    );

    let ignored = KeepAlivePolicy {
        clients: false,
        ..policy
    };
    let (m, _) = manager_with(4, KeepAlive::Forever, ignored);
    drop(m.acquire("a", &spec(), ZERO).await.unwrap());
    settle().await;
    assert_eq!(
        m.state("a"),
        ModelState::Loaded,
        "clients' keep_alive is ignored"
    );
    assert_eq!(
        m.statuses()[0].expires_in_seconds,
        None,
        "the server's: forever"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_in_use_never_sleeps_under_its_request() {
    let (m, _) = manager(4, KeepAlive::For(Duration::from_millis(50)));
    let lease = m.acquire("a", &spec(), None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(m.state("a"), ModelState::Loaded);
    assert_eq!(m.statuses()[0].in_flight, 1);
    drop(lease);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(m.state("a"), ModelState::Unloaded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_loading_progress_and_loaded() {
    let (m, _) = manager(4, KeepAlive::Forever);
    let mut events = m.subscribe();
    drop(m.acquire("a", &spec(), None).await.unwrap());
    let mut progress = Vec::new();
    let mut loaded = false;
    while let Ok(e) = events.try_recv() {
        match e {
            Event::Loading { progress: p, .. } => progress.push(p),
            Event::Loaded { .. } => loaded = true,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(progress, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    assert!(loaded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_unload_refuses_a_busy_model() {
    let (m, _) = manager(4, KeepAlive::Forever);
    let lease = m.acquire("a", &spec(), None).await.unwrap();
    assert_eq!(
        m.unload("a"),
        Err(ManagerError::InUse {
            id: "a".into(),
            in_flight: 1
        })
    );
    drop(lease);
    assert_eq!(m.unload("a"), Ok(()));
    assert_eq!(
        m.unload("a"),
        Err(ManagerError::NotLoaded { id: "a".into() })
    );
    assert_eq!(
        m.unload("never"),
        Err(ManagerError::NotLoaded { id: "never".into() })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_gives_up_does_not_strand_the_load() {
    let (m, rec) = manager(4, KeepAlive::Forever);
    let m2 = m.clone();
    let gave_up = tokio::time::timeout(Duration::from_millis(5), async move {
        m2.acquire("a", &spec(), None).await.is_ok()
    })
    .await;
    assert!(gave_up.is_err(), "timed out while loading");
    drop(m.acquire("a", &spec(), None).await.unwrap());
    assert_eq!(loads(&rec, "a"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_requests_then_unloads_everything() {
    let (m, rec) = manager(4, KeepAlive::Forever);
    let lease = m.acquire("a", &spec(), None).await.unwrap();
    drop(m.acquire("b", &spec(), None).await.unwrap());
    let m2 = m.clone();
    let done = tokio::spawn(async move { m2.shutdown().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!done.is_finished());
    assert!(matches!(
        m.acquire("c", &spec(), None).await,
        Err(ManagerError::ShuttingDown)
    ));
    drop(lease);
    done.await.unwrap();
    settle().await;
    assert_eq!(rec.live.load(Ordering::SeqCst), 0);
}

/// An evicted model is freed before the next one loads: with `models_max = 1` there is
/// never a second model in memory, however slowly the first is freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_waits_until_the_evicted_model_is_freed() {
    let rec = Arc::new(Recorder::default());
    let loader = TestLoader {
        rec: rec.clone(),
        delay: Duration::from_millis(20),
        unload_delay: Duration::from_millis(200),
    };
    let config = ManagerConfig {
        models_max: 1,
        sleep_idle: KeepAlive::Forever,
        reap_interval: Duration::from_millis(20),
        ..Default::default()
    };
    let m = Manager::new(loader, config);
    drop(m.acquire("a", &spec(), None).await.unwrap());
    drop(m.acquire("b", &spec(), None).await.unwrap());
    drop(m.acquire("a", &spec(), None).await.unwrap());
    assert_eq!(rec.most_live.load(Ordering::SeqCst), 1);
    assert_eq!(rec.live.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_model_is_loaded_again_and_one_that_keeps_crashing_fails_with_its_reason() {
    let (m, rec) = manager(4, KeepAlive::Forever);
    let mut events = m.subscribe();
    let lease = m.acquire_any("a", &spec(), None).await.unwrap();
    // The worker dies under a request in flight: the model is no longer loaded (the lease
    // holds the dead model until the request ends), and the feed says why.
    rec.crash("a", "killed by SIGKILL");
    let crashed = loop {
        match events.recv().await.unwrap() {
            Event::Crashed { id, reason } => break (id, reason),
            _ => continue,
        }
    };
    assert_eq!(crashed, ("a".into(), "killed by SIGKILL".into()));
    assert_eq!(m.state("a"), ModelState::Unloaded);
    drop(lease);
    // The next request loads it again.
    drop(m.acquire_any("a", &spec(), None).await.unwrap());
    assert_eq!(loads(&rec, "a"), 2);
    assert_eq!(m.state("a"), ModelState::Loaded);

    rec.crash("a", "killed by SIGSEGV");
    settle().await;
    drop(m.acquire_any("a", &spec(), None).await.unwrap());
    assert_eq!(loads(&rec, "a"), 3);
    // The third crash in the window: failed with the reason, and requests are refused
    // without another load.
    rec.crash("a", "killed by SIGABRT: GGML_ASSERT(x) failed");
    settle().await;
    let ModelState::Failed { reason } = m.state("a") else {
        panic!("{:?}", m.state("a"))
    };
    assert!(reason.contains("crashed 3 times"), "{reason}");
    assert!(reason.contains("GGML_ASSERT(x) failed"), "{reason}");
    let err = m.acquire_any("a", &spec(), None).await.err().unwrap();
    assert!(matches!(err, ManagerError::LoadFailed { .. }), "{err:?}");
    assert_eq!(loads(&rec, "a"), 3);
    // Other models are untouched.
    drop(m.acquire_any("b", &spec(), None).await.unwrap());
    // Loading it by hand gives it another chance.
    m.load("a", &spec()).await.unwrap();
    assert_eq!(loads(&rec, "a"), 4);
    assert_eq!(m.state("a"), ModelState::Loaded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_ends_as_asked_is_not_a_crash() {
    let (m, rec) = manager(4, KeepAlive::Forever);
    let mut events = m.subscribe();
    m.load("a", &spec()).await.unwrap();
    let tx = rec.crash.lock().unwrap().remove("a").unwrap();
    m.unload("a").unwrap();
    tx.send(None).unwrap();
    settle().await;
    drop(m.acquire_any("a", &spec(), None).await.unwrap());
    while let Ok(e) = events.try_recv() {
        assert!(!matches!(e, Event::Crashed { .. }), "{e:?}");
    }
}
