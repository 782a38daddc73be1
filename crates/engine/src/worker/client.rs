//! The server's side of a model worker: starting `llama-dashboard worker`, the threads that
//! write its input and read its output and stderr, routing replies and events to their
//! callers, and what happens when it dies.
//!
//! Threads per worker: the *reader* spawns the child and lives exactly as long as it (the
//! child's `PR_SET_PDEATHSIG` fires when the thread that forked it ends, so that thread must
//! not be a pool thread), and one thread copies stderr into our log and keeps its last lines
//! for the crash reason. Callers write their frames to the child's stdin themselves, under
//! a lock: one thread hand-off less per call (each costs a wake-up, milliseconds on a busy
//! machine), and the write does not wait on the child, whose reader thread only moves
//! frames into a queue.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak, mpsc as std_mpsc};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use super::protocol::{self, Answer, Call, FromWorker, LoadOrder, ToWorker};
use crate::bench::BenchProgress;
use crate::error::EngineError;
use crate::host::{HostCounters, Shared};
use crate::load::ModelInfo;
use crate::request::{Event, EventStream, GenerateRequest};

/// The environment variable through which a worker learns its parent's pid (to close the
/// race between its start and `PR_SET_PDEATHSIG`).
pub(crate) const PARENT_ENV: &str = "LLAMA_DASHBOARD_WORKER_PARENT";

/// How long an unloading worker may take to free its model before it is killed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// stderr lines kept for the crash reason.
const TAIL_LINES: usize = 32;

/// Where a worker runs from and what it is called in logs and errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerOptions {
    /// The `llama-dashboard` executable (`worker` is its hidden subcommand).
    pub program: PathBuf,
    /// The model's id: log lines and error messages name it.
    pub name: String,
}

/// A worker process as the status pages show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WorkerProcess {
    pub pid: u32,
    /// Resident memory (`/proc/<pid>/statm`); 0 once it has exited.
    pub rss_bytes: u64,
}

/// How a worker ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Asked to (unload, shutdown).
    Clean,
    /// Anything else: a signal, an abort, an exit nobody asked for. The reason is for people.
    Crashed(String),
}

/// Who waits for what a call returns.
enum Waiter {
    Reply(oneshot::Sender<Result<Answer, EngineError>>),
    /// A generation: the reader turns `Answer::Stream` into an [`EventStream`] itself, so that
    /// no event can arrive before the stream's sender is in place.
    Generate(oneshot::Sender<Result<EventStream, EngineError>>),
    Stream(mpsc::UnboundedSender<Event>),
    Bench {
        reply: oneshot::Sender<Result<Answer, EngineError>>,
        progress: Box<dyn FnMut(BenchProgress) + Send>,
    },
}

struct State {
    waiters: HashMap<u64, Waiter>,
    /// Set once the worker is gone: every later call gets this error.
    dead: Option<EngineError>,
}

pub(crate) struct Client {
    name: String,
    pid: u32,
    /// The child's stdin; `None` once closed.
    input: Mutex<Option<BufWriter<Input>>>,
    state: Mutex<State>,
    next_id: AtomicU64,
    pub(crate) shared: Arc<Shared>,
    exit: watch::Sender<Option<Exit>>,
    /// A shutdown was asked for: the exit that follows is not a crash.
    stopping: AtomicBool,
}

enum LoadMsg {
    Progress(f32),
    Loaded(Box<ModelInfo>, Arc<Client>),
    Failed(EngineError),
}

/// Starts a worker and loads the model in it; blocks until it serves (or failed). Called
/// by [`crate::ModelHost::load_isolated`].
pub(crate) fn load(
    opts: &WorkerOptions,
    order: LoadOrder,
    progress: impl Fn(f32) + Send,
    counters: Arc<HostCounters>,
) -> Result<(ModelInfo, Arc<Client>), EngineError> {
    let (load_tx, load_rx) = std_mpsc::channel();
    let opts2 = opts.clone();
    let shared = Arc::new(Shared {
        counters,
        ..Shared::default()
    });
    std::thread::Builder::new()
        .name(format!("worker:{}", opts.name))
        .spawn(move || run_reader(opts2, order, shared, load_tx))
        .map_err(|e| EngineError::LoadFailed {
            reason: format!("could not start the worker thread: {e}"),
        })?;
    loop {
        match load_rx.recv() {
            Ok(LoadMsg::Progress(p)) => progress(p),
            Ok(LoadMsg::Loaded(info, client)) => {
                progress(1.0);
                return Ok((*info, client));
            }
            Ok(LoadMsg::Failed(e)) => return Err(e),
            Err(_) => {
                return Err(EngineError::LoadFailed {
                    reason: "the worker thread ended during load".into(),
                });
            }
        }
    }
}

/// The child's input: one end of a socket pair (its stdin is the other), written with
/// `MSG_NOSIGNAL`. A pipe would raise SIGPIPE when the worker has died, and the CLI's
/// commands keep SIGPIPE's default action (death) for `| head`: a crashed model would take
/// `run` down with it.
struct Input(std::os::unix::net::UnixStream);

impl Write for Input {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd;
        // SAFETY: send(2) on our open socket with a valid buffer and its length.
        let n = unsafe {
            libc::send(
                self.0.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn spawn_child(opts: &WorkerOptions) -> std::io::Result<(Child, Input)> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    let mut cmd = Command::new(&opts.program);
    cmd.arg("worker")
        .env(PARENT_ENV, std::process::id().to_string())
        // A failed GGML_ASSERT would otherwise start gdb to print a backtrace.
        .env("GGML_NO_BACKTRACE", "1")
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Ok((cmd.spawn()?, Input(ours)))
}

/// The reader thread: spawns the child, relays the load, then routes every message until
/// the child's output ends, and reaps it.
fn run_reader(
    opts: WorkerOptions,
    order: LoadOrder,
    shared: Arc<Shared>,
    load_tx: std_mpsc::Sender<LoadMsg>,
) {
    let (mut child, stdin) = match spawn_child(&opts) {
        Ok(c) => c,
        Err(e) => {
            let _ = load_tx.send(LoadMsg::Failed(EngineError::LoadFailed {
                reason: format!(
                    "could not start the worker {}: {e}",
                    opts.program.display()
                ),
            }));
            return;
        }
    };
    let pid = child.id();
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let stderr_thread = {
        let (name, tail) = (opts.name.clone(), tail.clone());
        std::thread::Builder::new()
            .name(format!("worker-err:{}", opts.name))
            .spawn(move || copy_stderr(stderr, &name, &tail))
            .ok()
    };

    let client = Arc::new(Client {
        name: opts.name.clone(),
        pid,
        input: Mutex::new(Some(BufWriter::with_capacity(64 << 10, stdin))),
        state: Mutex::new(State {
            waiters: HashMap::new(),
            dead: None,
        }),
        next_id: AtomicU64::new(1),
        shared,
        exit: watch::Sender::new(None),
        stopping: AtomicBool::new(false),
    });
    let mut out = BufReader::with_capacity(64 << 10, stdout);
    let loaded = client.send(&ToWorker::Load(Box::new(order))).is_ok()
        && relay_load(&client, &mut out, &load_tx);
    if loaded {
        client.serve(&mut out);
    } else {
        // A failed load: the worker exits by itself once its input closes.
        client.stopping.store(true, Ordering::SeqCst);
        client.close_input();
    }
    drop(out);
    let status = child.wait();
    if let Some(t) = stderr_thread {
        // The child is gone, so its stderr is at its end (it starts no children).
        let _ = t.join();
    }
    let reason = describe_exit(status, &tail.lock().unwrap_or_else(PoisonError::into_inner));
    if !loaded {
        // Unless the worker said why (LoadFailed was relayed), this is the reason.
        let _ = load_tx.send(LoadMsg::Failed(EngineError::Crashed {
            model: opts.name.clone(),
            reason,
        }));
        return;
    }
    client.ended(reason);
}

/// Relays load progress; true once the model is loaded (the client is handed over).
fn relay_load(
    client: &Arc<Client>,
    out: &mut BufReader<ChildStdout>,
    load_tx: &std_mpsc::Sender<LoadMsg>,
) -> bool {
    loop {
        match protocol::read::<FromWorker>(out) {
            Ok(Some(FromWorker::LoadProgress(p))) => {
                let _ = load_tx.send(LoadMsg::Progress(p));
            }
            Ok(Some(FromWorker::Loaded(info))) => {
                return load_tx
                    .send(LoadMsg::Loaded(info, client.clone()))
                    .is_ok();
            }
            Ok(Some(FromWorker::LoadFailed(e))) => {
                let _ = load_tx.send(LoadMsg::Failed(e));
                return false;
            }
            Ok(Some(FromWorker::Stats { .. })) => {}
            Ok(Some(other)) => {
                tracing::warn!(model = %client.name, ?other, "worker: unexpected message during load");
            }
            Ok(None) | Err(_) => return false,
        }
    }
}

fn copy_stderr(stderr: std::process::ChildStderr, name: &str, tail: &Mutex<VecDeque<String>>) {
    let mut r = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf).trim_end().to_string();
        if line.is_empty() {
            continue;
        }
        tracing::warn!(model = %name, "worker: {line}");
        let mut t = tail.lock().unwrap_or_else(PoisonError::into_inner);
        if t.len() == TAIL_LINES {
            t.pop_front();
        }
        t.push_back(line);
    }
}

/// "killed by SIGABRT: <the line that says why>".
fn describe_exit(status: std::io::Result<ExitStatus>, tail: &VecDeque<String>) -> String {
    let how = match status {
        Ok(s) => match (s.signal(), s.code()) {
            (Some(sig), _) => format!("killed by {}", signal_name(sig)),
            (None, Some(code)) => format!("exited with status {code}"),
            (None, None) => "exited".to_string(),
        },
        Err(e) => format!("could not be waited for ({e})"),
    };
    match why(tail) {
        Some(line) => format!("{how}: {line}"),
        None => how,
    }
}

/// The stderr line most likely to say why a worker died: the last that looks like an error
/// (llama.cpp's `GGML_ASSERT`, a C++ exception, a Rust panic), else the last one.
fn why(tail: &VecDeque<String>) -> Option<&str> {
    const MARKS: [&str; 7] = [
        "GGML_ASSERT",
        "GGML_ABORT",
        "error",
        "ERROR",
        "panicked",
        "terminate called",
        "what():",
    ];
    tail.iter()
        .rev()
        .find(|l| MARKS.iter().any(|m| l.contains(m)))
        .or_else(|| tail.back())
        .map(String::as_str)
}

fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTRAP => "SIGTRAP",
        other => return format!("signal {other}"),
    };
    name.to_string()
}

impl Client {
    pub(crate) fn process(&self) -> WorkerProcess {
        let rss_bytes = if self.exit.borrow().is_some() {
            0
        } else {
            rss_of(self.pid).unwrap_or(0)
        };
        WorkerProcess {
            pid: self.pid,
            rss_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(&self, msg: &ToWorker) -> Result<(), EngineError> {
        let frame = protocol::encode(msg).map_err(|e| EngineError::InvalidParameter {
            name: "request".into(),
            reason: e.to_string(),
        })?;
        let mut input = self.input.lock().unwrap_or_else(PoisonError::into_inner);
        let sent = input
            .as_mut()
            .is_some_and(|w| protocol::write_frame(w, &frame).and_then(|()| w.flush()).is_ok());
        drop(input);
        if sent { Ok(()) } else { Err(self.gone()) }
    }

    fn close_input(&self) {
        let input = self
            .input
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut w) = input {
            let _ = w.flush();
        } // dropped: the child's stdin closes
    }

    /// The error for calls on a worker that is gone (or going).
    fn gone(&self) -> EngineError {
        self.lock().dead.clone().unwrap_or(EngineError::Shutdown)
    }

    /// Registers `waiter` under a new id and sends `call`.
    fn start(&self, call: Call, waiter: Waiter) -> Result<u64, EngineError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut st = self.lock();
            if let Some(e) = &st.dead {
                return Err(e.clone());
            }
            st.waiters.insert(id, waiter);
        }
        if let Err(e) = self.send(&ToWorker::Call { id, call }) {
            self.lock().waiters.remove(&id);
            return Err(e);
        }
        Ok(id)
    }

    pub(crate) async fn call(&self, call: Call) -> Result<Answer, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.start(call, Waiter::Reply(tx))?;
        rx.await.map_err(|_| self.gone())?
    }

    pub(crate) async fn bench(
        &self,
        params: crate::bench::BenchParams,
        progress: Box<dyn FnMut(BenchProgress) + Send>,
    ) -> Result<Answer, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.start(Call::Bench(params), Waiter::Bench { reply: tx, progress })?;
        rx.await.map_err(|_| self.gone())?
    }

    fn submit(
        &self,
        req: GenerateRequest,
    ) -> Result<oneshot::Receiver<Result<EventStream, EngineError>>, EngineError> {
        let caps = req.caps;
        let (tx, rx) = oneshot::channel();
        self.start(
            Call::Generate {
                req: Box::new(req),
                caps,
            },
            Waiter::Generate(tx),
        )?;
        Ok(rx)
    }

    pub(crate) async fn generate(&self, req: GenerateRequest) -> Result<EventStream, EngineError> {
        let rx = self.submit(req)?;
        rx.await.map_err(|_| self.gone())?
    }

    pub(crate) fn generate_blocking(
        &self,
        req: GenerateRequest,
    ) -> Result<EventStream, EngineError> {
        let rx = self.submit(req)?;
        rx.blocking_recv().map_err(|_| self.gone())?
    }

    /// Resolves with the crash reason if the worker crashes, `None` when it ends cleanly.
    pub(crate) fn crashed(&self) -> impl Future<Output = Option<String>> + Send + 'static {
        let mut rx = self.exit.subscribe();
        async move {
            let exit = rx.wait_for(Option::is_some).await.ok()?.clone();
            match exit {
                Some(Exit::Crashed(reason)) => Some(reason),
                _ => None,
            }
        }
    }

    /// Asks the worker to finish and lets go of its input without waiting (the last handle
    /// was dropped). It exits once its model is freed.
    pub(crate) fn release(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.send(&ToWorker::Shutdown);
        self.close_input();
    }

    /// Asks the worker to finish and waits until it has exited; past the grace period it
    /// is killed.
    pub(crate) fn shutdown_blocking(&self) {
        self.release();
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while self.exit.borrow().is_none() {
            if Instant::now() >= deadline {
                tracing::warn!(model = %self.name, pid = self.pid, "worker did not exit in time; killing it");
                // SAFETY: kill(2) with a pid we spawned and have not reaped yet (the reader
                // reaps it only after its output ends, and `exit` is still unset).
                unsafe {
                    libc::kill(self.pid as i32, libc::SIGKILL);
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        while self.exit.borrow().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the worker `id`'s request (its caller went away).
    fn cancel(&self, id: u64) {
        if self.lock().waiters.remove(&id).is_some() {
            let _ = self.send(&ToWorker::Cancel { id });
        }
    }

    /// Routes the worker's messages until its output ends.
    fn serve(self: &Arc<Self>, out: &mut BufReader<ChildStdout>) {
        loop {
            let msg = match protocol::read::<FromWorker>(out) {
                Ok(Some(m)) => m,
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(model = %self.name, "worker: unreadable output ({e}); stopping it");
                    // SAFETY: as in shutdown_blocking; the child is not reaped yet.
                    unsafe {
                        libc::kill(self.pid as i32, libc::SIGKILL);
                    }
                    return;
                }
            };
            match msg {
                FromWorker::Stats {
                    counters,
                    queue_len,
                    busy_slots,
                } => {
                    self.shared.counters.set(&counters);
                    self.shared
                        .queue_len
                        .store(queue_len as usize, Ordering::Relaxed);
                    self.shared
                        .busy_slots
                        .store(busy_slots as usize, Ordering::Relaxed);
                }
                FromWorker::Reply { id, result } => self.reply(id, result),
                FromWorker::Event { id, event } => {
                    let mut st = self.lock();
                    let last = matches!(event, Event::Done { .. } | Event::Error(_));
                    let delivered = match st.waiters.get(&id) {
                        Some(Waiter::Stream(tx)) => tx.send(event).is_ok(),
                        _ => false,
                    };
                    if last || !delivered {
                        st.waiters.remove(&id);
                    }
                    drop(st);
                    if !delivered && !last {
                        let _ = self.send(&ToWorker::Cancel { id });
                    }
                }
                FromWorker::BenchProgress { id, progress } => {
                    if let Some(Waiter::Bench { progress: f, .. }) = self.lock().waiters.get_mut(&id)
                    {
                        f(progress);
                    }
                }
                FromWorker::LoadProgress(_) | FromWorker::Loaded(_) | FromWorker::LoadFailed(_) => {
                    tracing::warn!(model = %self.name, "worker: load message after the load");
                }
            }
        }
    }

    fn reply(self: &Arc<Self>, id: u64, result: Result<Answer, EngineError>) {
        let mut st = self.lock();
        let Some(waiter) = st.waiters.remove(&id) else {
            return;
        };
        match waiter {
            Waiter::Reply(tx) | Waiter::Bench { reply: tx, .. } => {
                drop(st);
                let _ = tx.send(result);
            }
            Waiter::Generate(tx) => match result {
                Ok(Answer::Stream {
                    task_id,
                    logit_bias,
                    prompt_tokens,
                }) => {
                    let (etx, erx) = mpsc::unbounded_channel();
                    st.waiters.insert(id, Waiter::Stream(etx));
                    drop(st);
                    let stream = EventStream {
                        rx: erx,
                        task_id,
                        finished: false,
                        logit_bias,
                        prompt_tokens,
                        cancel: Some(CancelGuard {
                            client: Arc::downgrade(self),
                            id,
                        }),
                    };
                    // A caller that is gone drops the stream here, which cancels it.
                    let _ = tx.send(Ok(stream));
                }
                Ok(_) => {
                    drop(st);
                    let _ = tx.send(Err(self.out_of_turn()));
                }
                Err(e) => {
                    drop(st);
                    let _ = tx.send(Err(e));
                }
            },
            Waiter::Stream(_) => {
                drop(st);
                tracing::warn!(model = %self.name, id, "worker: a reply for a running stream");
            }
        }
    }

    pub(crate) fn out_of_turn(&self) -> EngineError {
        EngineError::Crashed {
            model: self.name.clone(),
            reason: "the worker answered out of turn".into(),
        }
    }

    /// The worker's output ended: everything waiting gets the reason.
    fn ended(&self, reason: String) {
        let exit = if self.stopping.load(Ordering::SeqCst) {
            Exit::Clean
        } else {
            tracing::error!(model = %self.name, pid = self.pid, "model worker stopped unexpectedly: {reason}");
            Exit::Crashed(reason)
        };
        let error = match &exit {
            Exit::Clean => EngineError::Shutdown,
            Exit::Crashed(reason) => EngineError::Crashed {
                model: self.name.clone(),
                reason: reason.clone(),
            },
        };
        let waiters = {
            let mut st = self.lock();
            st.dead = Some(error.clone());
            std::mem::take(&mut st.waiters)
        };
        for (_, w) in waiters {
            match w {
                Waiter::Reply(tx) | Waiter::Bench { reply: tx, .. } => {
                    let _ = tx.send(Err(error.clone()));
                }
                Waiter::Generate(tx) => {
                    let _ = tx.send(Err(error.clone()));
                }
                Waiter::Stream(tx) => {
                    let _ = tx.send(Event::Error(error.clone()));
                }
            }
        }
        self.close_input();
        self.shared.queue_len.store(0, Ordering::Relaxed);
        self.shared.busy_slots.store(0, Ordering::Relaxed);
        self.shared
            .counters
            .prompt_cache_bytes
            .store(0, Ordering::Relaxed);
        self.exit.send_replace(Some(exit));
    }
}

/// Held by a worker's [`EventStream`]: dropping the stream before its end cancels the
/// request in the worker, which frees its slot at the next step (as in-process).
#[derive(Debug)]
pub(crate) struct CancelGuard {
    client: Weak<Client>,
    id: u64,
}

impl CancelGuard {
    /// The stream ended: nothing to cancel.
    pub(crate) fn defuse(mut self) {
        self.client = Weak::new();
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if let Some(c) = self.client.upgrade() {
            c.cancel(self.id);
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.name)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

/// Resident memory of a process in bytes, from `/proc/<pid>/statm` (Linux).
pub fn rss_of(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).unwrap_or(4096))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_names_the_signal_and_the_line_that_says_why() {
        let tail: VecDeque<String> = [
            "llama_model_loader: loaded meta data",
            "/src/ggml.c:1234: GGML_ASSERT(ne % 32 == 0) failed",
            "some trailing noise",
        ]
        .map(String::from)
        .into();
        let s = ExitStatus::from_raw(libc::SIGABRT);
        assert_eq!(
            describe_exit(Ok(s), &tail),
            "killed by SIGABRT: /src/ggml.c:1234: GGML_ASSERT(ne % 32 == 0) failed"
        );
        let s = ExitStatus::from_raw(libc::SIGKILL);
        assert_eq!(describe_exit(Ok(s), &VecDeque::new()), "killed by SIGKILL");
        let s = ExitStatus::from_raw(3 << 8);
        assert_eq!(
            describe_exit(Ok(s), &["bye".to_string()].into()),
            "exited with status 3: bye"
        );
    }
}
