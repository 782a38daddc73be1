//! The worker's side: `llama-dashboard worker` loads one model in-process (the thread
//! backend) and serves the calls its parent sends over stdin, answering on (a copy of) its
//! stdout. Requests are prepared here, as in-process on the caller's thread: tokenizing,
//! grammars and every limit fixed at load are checked before anything is queued, and their
//! errors travel back as the same `EngineError`s.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::os::fd::FromRawFd;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::client::PARENT_ENV;
use super::protocol::{self, Answer, Call, FromWorker, ToWorker};
use crate::error::EngineError;
use crate::host::{HostCounters, HostStats, ModelHandle};
use crate::load::ModelHost;
use crate::request::Event;

/// How often changed counters are sent when no other message carries them.
const STATS_TICK: Duration = Duration::from_millis(100);

/// The model, once loaded (the writer reads its counters).
static MODEL: OnceLock<ModelHandle> = OnceLock::new();

/// Runs the worker until its parent says to stop or goes away. Never returns.
pub fn serve() -> ! {
    die_with_parent();
    // SAFETY: dup/dup2 on the standard descriptors, before any other thread exists.
    // The protocol gets its own copy of stdout; fd 1 then points at stderr, so whatever
    // llama.cpp (or anything else) prints to stdout lands in the log, not in the protocol.
    let (input, output) = unsafe {
        let out_fd = libc::dup(1);
        if out_fd < 0 || libc::dup2(2, 1) < 0 {
            eprintln!("worker: could not set up its output");
            libc::_exit(2);
        }
        (File::from_raw_fd(0), File::from_raw_fd(out_fd))
    };
    let out = Outbox(Arc::new(Mutex::new(Writer {
        out: BufWriter::with_capacity(64 << 10, output),
        sent: None,
    })));
    let tick = out.clone();
    std::thread::Builder::new()
        .name("worker-tick".into())
        .spawn(move || {
            loop {
                std::thread::sleep(STATS_TICK);
                tick.with(|_| {});
            }
        })
        .expect("start the tick thread");
    let (in_tx, in_rx) = mpsc::unbounded_channel::<ToWorker>();
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping2 = stopping.clone();
    std::thread::Builder::new()
        .name("worker-in".into())
        .spawn(move || read_input(input, in_tx, &stopping2))
        .expect("start the input thread");

    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("worker: no runtime: {e}");
            exit(2)
        }
    };
    rt.block_on(run(in_rx, out, stopping));
    exit(0)
}

/// `PR_SET_PDEATHSIG`: the kernel kills this process when the thread that started it
/// ends (the parent's reader thread lives as long as the worker; if the whole parent dies,
/// SIGKILL included, so does its thread). If the parent died before the call, `getppid`
/// no longer names it: leave at once.
fn die_with_parent() {
    // SAFETY: prctl with PR_SET_PDEATHSIG and a signal number; getppid and signal have no
    // preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if let Some(parent) = std::env::var(PARENT_ENV)
            .ok()
            .and_then(|p| p.parse::<i32>().ok())
            && libc::getppid() != parent
        {
            libc::_exit(1);
        }
        // Ctrl-C in a terminal reaches the whole process group; the server decides when
        // its models stop (an interrupted server shuts down gracefully, then closes our
        // input).
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
}

/// Ends the process without running C++ static destructors under llama.cpp's threads.
fn exit(code: i32) -> ! {
    let _ = std::io::stderr().flush();
    // SAFETY: _exit ends the process; nothing is left to run.
    unsafe { libc::_exit(code) }
}

fn read_input(
    input: File,
    tx: mpsc::UnboundedSender<ToWorker>,
    stopping: &std::sync::atomic::AtomicBool,
) {
    let mut r = BufReader::with_capacity(64 << 10, input);
    loop {
        match protocol::read::<ToWorker>(&mut r) {
            Ok(Some(msg)) => {
                if matches!(msg, ToWorker::Shutdown) {
                    stopping.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                if tx.send(msg).is_err() {
                    return;
                }
            }
            Ok(None) => {
                // The parent closed our input: after a Shutdown the model is being freed
                // (the main task exits when done); otherwise the parent is gone.
                if !stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    exit(0);
                }
                return;
            }
            Err(e) => {
                eprintln!("worker: unreadable input ({e})");
                exit(2);
            }
        }
    }
}

fn current_stats() -> Option<(HostStats, u64, u64)> {
    let m = MODEL.get()?;
    Some((m.stats(), m.queue_len() as u64, m.busy_slots() as u64))
}

/// The protocol's output. Whoever has a message writes it, under the lock: no hand-off to
/// a writer thread (one wake-up less per message).
struct Writer {
    out: BufWriter<File>,
    /// The counters last sent.
    sent: Option<(HostStats, u64, u64)>,
}

impl Writer {
    fn put(&mut self, msg: &FromWorker) {
        let frame = protocol::encode(msg).unwrap_or_else(|e| {
            eprintln!("worker: could not encode a message: {e}");
            exit(2)
        });
        if protocol::write_frame(&mut self.out, &frame).is_err() {
            exit(0); // the parent is gone
        }
    }

    /// Counters first, whenever they changed: whoever reads a `Done` must see its request
    /// counted.
    fn stats(&mut self) {
        let now = current_stats();
        if let Some((counters, queue_len, busy_slots)) = now
            && now != self.sent
        {
            self.put(&FromWorker::Stats {
                counters,
                queue_len,
                busy_slots,
            });
            self.sent = now;
        }
    }
}

#[derive(Clone)]
struct Outbox(Arc<Mutex<Writer>>);

impl Outbox {
    /// Runs `f` between the counters and a flush.
    fn with(&self, f: impl FnOnce(&mut Writer)) {
        let mut w = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        w.stats();
        f(&mut w);
        if w.out.flush().is_err() {
            exit(0);
        }
    }

    fn send(&self, msg: FromWorker) {
        self.with(|w| w.put(&msg));
    }

    fn flush(&self) {
        self.with(|_| {});
    }
}

async fn run(
    mut rx: mpsc::UnboundedReceiver<ToWorker>,
    out: Outbox,
    _stopping: Arc<std::sync::atomic::AtomicBool>,
) {
    let Some(ToWorker::Load(order)) = rx.recv().await else {
        eprintln!("worker: the first message must be the load order");
        return;
    };
    let order = *order;
    crate::backend::init(order.backend);
    let counters = Arc::new(HostCounters::default());
    counters.set(&order.counters);
    let progress_out = out.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        let last = std::sync::atomic::AtomicU32::new(0);
        ModelHost::load_counted(
            order.model,
            order.context,
            |p| {
                // Whole percents: llama.cpp reports every tensor.
                let pct = (p.clamp(0.0, 1.0) * 100.0) as u32;
                if last.swap(pct, std::sync::atomic::Ordering::Relaxed) != pct {
                    progress_out.send(FromWorker::LoadProgress(p));
                }
            },
            counters,
        )
    })
    .await;
    let handle = match loaded {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            out.send(FromWorker::LoadFailed(e));
            out.flush();
            return;
        }
        Err(e) => {
            out.send(FromWorker::LoadFailed(EngineError::LoadFailed {
                reason: format!("the load panicked: {e}"),
            }));
            out.flush();
            return;
        }
    };
    let _ = MODEL.set(handle.clone());
    out.send(FromWorker::Loaded(Box::new(handle.info().clone())));

    let running: Arc<Mutex<HashMap<u64, AbortHandle>>> = Arc::default();
    while let Some(msg) = rx.recv().await {
        match msg {
            ToWorker::Call { id, call } => {
                let mut map = running.lock().unwrap_or_else(PoisonError::into_inner);
                let task = tokio::spawn(answer(
                    handle.clone(),
                    id,
                    call,
                    out.clone(),
                    running.clone(),
                ));
                map.insert(id, task.abort_handle());
            }
            ToWorker::Cancel { id } => {
                // Dropping the task drops its event stream: the slot is freed at the next step.
                if let Some(t) = running
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id)
                {
                    t.abort();
                }
            }
            ToWorker::Shutdown => break,
            ToWorker::Load(_) => eprintln!("worker: a second load order, ignored"),
        }
    }
    // Shutdown (or the input thread gave up): running requests end with `Shutdown`, which
    // their streams forward; then the model is freed.
    handle.shutdown().await;
    // Let the forwarding tasks send those last events.
    tokio::time::sleep(Duration::from_millis(20)).await;
    out.flush();
}

/// Runs one call and sends its reply (and, for a generation, its events).
async fn answer(
    handle: ModelHandle,
    id: u64,
    call: Call,
    out: Outbox,
    running: Arc<Mutex<HashMap<u64, AbortHandle>>>,
) {
    let result = match call {
        Call::Generate { req, caps } => {
            let mut req = *req;
            req.caps = caps;
            match handle.generate(req).await {
                Ok(mut stream) => {
                    out.send(FromWorker::Reply {
                        id,
                        result: Ok(Answer::Stream {
                            task_id: stream.task_id(),
                            logit_bias: stream.logit_bias().to_vec(),
                            prompt_tokens: stream.prompt_tokens(),
                        }),
                    });
                    while let Some(event) = stream.recv().await {
                        let last = matches!(event, Event::Done { .. } | Event::Error(_));
                        out.send(FromWorker::Event { id, event });
                        if last {
                            break;
                        }
                    }
                    forget(&running, id);
                    return;
                }
                Err(e) => Err(e),
            }
        }
        Call::Tokenize {
            text,
            add_special,
            parse_special,
        } => handle
            .tokenize(&text, add_special, parse_special)
            .await
            .map(Answer::Tokens),
        Call::Detokenize(tokens) => handle.detokenize(&tokens).await.map(Answer::Text),
        Call::TokenPieces(tokens) => handle.token_pieces(&tokens).await.map(Answer::Pieces),
        Call::Embed { req, caps } => {
            let mut req = *req;
            req.caps = caps;
            handle.embed(req).await.map(Answer::Embeddings)
        }
        Call::Rerank { query, documents } => handle
            .rerank(query, documents)
            .await
            .map(Answer::Scores),
        Call::LoraAdapters => handle.lora_adapters().await.map(Answer::Adapters),
        Call::SetLoraScales(scales) => handle.set_lora_scales(scales).await.map(|()| Answer::Done),
        Call::Slots => handle.slots().await.map(Answer::Slots),
        Call::SaveSlot { id: slot, path } => handle.save_slot(slot, path).await.map(Answer::SlotFile),
        Call::RestoreSlot { id: slot, path } => handle
            .restore_slot(slot, path)
            .await
            .map(Answer::SlotFile),
        Call::EraseSlot(slot) => handle.erase_slot(slot).await.map(Answer::Erased),
        Call::Bench(params) => {
            let progress_out = out.clone();
            handle
                .bench(params, move |progress| {
                    progress_out.send(FromWorker::BenchProgress { id, progress });
                })
                .await
                .map(|r| Answer::Bench(Box::new(r)))
        }
    };
    out.send(FromWorker::Reply { id, result });
    forget(&running, id);
}

fn forget(running: &Mutex<HashMap<u64, AbortHandle>>, id: u64) {
    running
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&id);
}
