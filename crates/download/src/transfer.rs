//! One file from a URL to its place on disk: resumable, verified, atomic.
//!
//! The bytes go to a partial file outside the models folders, next to a small JSON
//! record of what the partial is a prefix of (the remote's ETag / commit, the expected
//! sha256 and size). A later attempt asks for the rest with `Range: bytes=N-`, but first
//! checks that the remote is still the same file; a changed remote, or a server that
//! ignores the range, starts again from zero and says so in the task's log. The task
//! reading the response only reads: the bytes are written, hashed and flushed on other
//! threads ([`sink`]). The sha256 is computed as the bytes arrive (the kept prefix is
//! hashed once on resume) and checked
//! before the file is moved into place with a rename, so the destination only ever holds
//! a complete, verified file. A mismatch fails the transfer and sets the partial file aside
//! (`<partial>.bad`) so that the next attempt starts from zero. A cut or stalled connection is retried from where it stopped.
//!
//! With [`TransferOptions::parts`] above one, a large file is fetched in that many ranged
//! parts at once ([`parts`]), written at their offsets into the same partial file, each
//! resumable on its own; a server that ignores `Range` gets one stream.

mod parts;
mod sink;

use crate::error::{Error, Origin, Result, chain};
use crate::http::{Request, Tokens, range_from};
use reqwest::header::{self, HeaderMap};
use reqwest::{Client, Method, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sink::Sink;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One file to fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSpec {
    pub url: String,
    /// The same file on a mirror, used when `url`'s server does not answer at all
    /// (`auto` mirror policy); the partial file and its checks are shared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_url: Option<String>,
    /// Where the verified file goes (inside a models folder).
    pub dest: PathBuf,
    /// Where the bytes go until verified (outside the models folders).
    pub partial: PathBuf,
    /// Expected sha256, lowercase hex (the LFS oid, the layer digest).
    pub sha256: Option<String>,
    /// Expected size in bytes, when the listing said.
    pub size: Option<u64>,
    /// What the URL is, to explain an error status.
    pub origin: Origin,
    /// Bearer token for the URL's own origin (never sent on to a redirect's host). Never
    /// stored: a restored task gets it from the settings again.
    #[serde(skip)]
    pub bearer: Option<String>,
}

impl FileSpec {
    /// The token for a request to `url`: only to the spec's own URL, never to its mirror.
    pub(crate) fn bearer_for(&self, url: &str) -> Option<&str> {
        self.bearer.as_deref().filter(|_| url == self.url)
    }
}

/// How transfers behave; the defaults suit real hubs.
#[derive(Debug, Clone)]
pub struct TransferOptions {
    /// Failed attempts in a row (without a byte of progress between them) before giving up.
    pub retries: u32,
    /// First pause between attempts; doubled each time, at most 30 s.
    pub retry_delay: Duration,
    /// Space left free on the partial file's filesystem beyond what the download needs.
    pub free_space_margin: u64,
    /// The partial file is flushed to disk every this many bytes (in the background, one
    /// flush at a time): after a crash, at most about twice this much is downloaded again.
    pub sync_every: u64,
    /// Registry tokens, shared by every transfer of a queue (and its registry client).
    pub tokens: Tokens,
    /// Connections per file: a file of at least two `min_part`s is fetched in up to this
    /// many ranged parts at once when the server honours `Range`. 1: one stream.
    pub parts: u32,
    /// The smallest part worth its own connection.
    pub min_part: u64,
}

impl Default for TransferOptions {
    fn default() -> Self {
        TransferOptions {
            retries: 5,
            retry_delay: Duration::from_millis(500),
            free_space_margin: 256 << 20,
            sync_every: 16 << 20,
            tokens: Tokens::default(),
            parts: 1,
            min_part: 64 << 20,
        }
    }
}

/// Lines a transfer's log keeps (the newest).
pub const MAX_LOG: usize = 50;

/// Live figures of one transfer, shared with whoever shows them.
#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicU64,
    /// 0 while unknown.
    total: AtomicU64,
    fetched: AtomicU64,
    verifying: AtomicBool,
    log: Mutex<Vec<String>>,
}

impl Progress {
    /// Bytes of the file on disk so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
    /// The file's size, once known.
    pub fn total(&self) -> Option<u64> {
        Some(self.total.load(Ordering::Relaxed)).filter(|&t| t > 0)
    }
    /// Bytes received from the network by this process (a resume does not count the
    /// prefix it kept; a restart counts everything again).
    pub fn fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }
    pub fn is_verifying(&self) -> bool {
        self.verifying.load(Ordering::Relaxed)
    }
    /// What happened that the user should know about (restarts, retries), oldest first.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    pub(crate) fn note(&self, message: String) {
        tracing::info!("download: {message}");
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        // A connection cut again and again adds a line each time: the newest are kept.
        if log.len() >= MAX_LOG {
            let extra = log.len() + 1 - MAX_LOG;
            log.drain(..extra);
        }
        log.push(message);
    }
    fn set_done(&self, n: u64) {
        self.done.store(n, Ordering::Relaxed);
    }
}

/// How a transfer ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The verified file is at `path`. `sha256` is what was computed (`None` when the
    /// file was already in place and was not read again).
    Completed {
        path: PathBuf,
        size: u64,
        sha256: Option<String>,
    },
    /// Stopped by the cancellation token; the partial file is kept for a resume.
    Paused,
}

/// What the partial file is a prefix of, saved next to it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct PartialRecord {
    url: String,
    etag: Option<String>,
    commit: Option<String>,
    sha256: Option<String>,
    size: Option<u64>,
    /// Fetched in ranged parts: each one's range and bytes flushed to disk (the partial
    /// file then has the whole size, with holes where parts are not done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parts: Option<Vec<parts::Part>>,
    /// One stream: the bytes known to be on disk (flushed). After a power loss the
    /// partial file is cut back to this, since the file system may have kept a later
    /// length without its bytes. Absent in records of older versions: the length is
    /// trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    flushed: Option<u64>,
    /// The machine's boot when the record was written: in the same boot (a process that
    /// was killed, not a machine that lost power) the kernel still has every byte written,
    /// and the file's length is trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    boot: Option<String>,
}

/// This boot of the machine (Linux's boot id); `None` elsewhere, where a restart always
/// cuts the partial file back to what was flushed.
fn boot_id() -> Option<String> {
    static BOOT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    })
    .clone()
}

/// The sha256 state over the partial file's first `len` bytes, kept across attempts so
/// a retry does not read the prefix again.
struct Hashed {
    hasher: Sha256,
    len: u64,
}

/// Why one attempt ended without an outcome.
enum Step {
    /// Try again after a pause (the network or server failed).
    Retry(String),
    /// Start again from zero at once (the partial was discarded, reason logged).
    Restart,
    /// The server did not answer at all (a mirror may).
    Unreachable(Error),
    /// Start again at once, in one stream (the parts cannot be tied to one file).
    OneStream,
    Fail(Error),
}

impl From<Error> for Step {
    fn from(e: Error) -> Step {
        if matches!(e, Error::Unreachable { .. }) {
            Step::Unreachable(e)
        } else if e.is_transient() {
            Step::Retry(e.to_string())
        } else {
            Step::Fail(e)
        }
    }
}

/// Restarts from zero in a row before the remote is declared unstable.
const MAX_RESTARTS: u32 = 3;

/// Fetches one file: resumes its partial file if it is still a prefix of the remote,
/// retries cut connections, verifies, and moves it into place.
pub async fn fetch(
    client: &Client,
    spec: &FileSpec,
    options: &TransferOptions,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<Outcome> {
    if let Some(done) = already_in_place(spec, progress, cancel).await? {
        return Ok(done);
    }
    // One writer per partial file: two transfers appending to one file would each verify
    // the bytes they received while the file on disk mixes both.
    let lock = PartialLock::acquire(&spec.partial)?;
    let outcome = fetch_locked(client, spec, options, progress, cancel).await;
    if matches!(outcome, Ok(Outcome::Completed { .. })) {
        lock.remove();
    }
    outcome
}

/// `<partial>.lock`, held exclusively (an OS file lock, so that it also binds another
/// process on the same data folder) while a transfer writes the partial file.
struct PartialLock {
    file: std::fs::File,
    path: PathBuf,
}

impl PartialLock {
    fn acquire(partial: &Path) -> Result<PartialLock> {
        let dir = partial.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let path = lock_path(partial);
        let file = open_to_write(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(PartialLock { file, path }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Busy {
                path: partial.to_path_buf(),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path)(e)),
        }
    }

    /// The partial is gone (moved into place): its lock file goes too, still held.
    fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.file);
    }
}

/// Opens `path` for writing, created if missing, its bytes kept.
fn open_to_write(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(Error::io(path))
}

async fn fetch_locked(
    client: &Client,
    spec: &FileSpec,
    options: &TransferOptions,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<Outcome> {
    let mut hashed: Option<Hashed> = None;
    let (mut failures, mut restarts) = (0u32, 0u32);
    let mut url = spec.url.as_str();
    let mut parts_allowed = options.parts > 1;
    loop {
        if cancel.is_cancelled() {
            return Ok(Outcome::Paused);
        }
        let before = progress.done();
        let step = match attempt(
            client,
            spec,
            url,
            options,
            parts_allowed,
            progress,
            cancel,
            &mut hashed,
        )
        .await
        {
            Ok(outcome) => return Ok(outcome),
            Err(step) => step,
        };
        match step {
            Step::Fail(e) => return Err(e),
            Step::OneStream => parts_allowed = false,
            Step::Unreachable(e) => match spec.mirror_url.as_deref() {
                Some(mirror) if url != mirror => {
                    progress.note(format!("{e}: downloading from the mirror {mirror}"));
                    url = mirror;
                }
                _ => {
                    failures += 1;
                    if failures > options.retries {
                        return Err(e);
                    }
                    progress.note(format!(
                        "{e}; retrying (attempt {} of {})",
                        failures + 1,
                        options.retries + 1
                    ));
                    if pause(options, failures, cancel).await {
                        return Ok(Outcome::Paused);
                    }
                }
            },
            Step::Restart => {
                restarts += 1;
                if restarts > MAX_RESTARTS {
                    return Err(Error::RetriesExhausted {
                        url: spec.url.clone(),
                        attempts: restarts,
                        last: "the remote file changed during every attempt".into(),
                    });
                }
            }
            Step::Retry(reason) => {
                if progress.done() > before {
                    failures = 0; // bytes arrived: the connection is worth more tries
                }
                failures += 1;
                if failures > options.retries {
                    return Err(Error::RetriesExhausted {
                        url: spec.url.clone(),
                        attempts: failures,
                        last: reason,
                    });
                }
                progress.note(format!(
                    "{reason}; retrying from byte {} (attempt {} of {})",
                    progress.done(),
                    failures + 1,
                    options.retries + 1
                ));
                if pause(options, failures, cancel).await {
                    return Ok(Outcome::Paused);
                }
            }
        }
    }
}

/// Waits before attempt `failures + 1` (doubling, at most 30 s); true when cancelled.
async fn pause(options: &TransferOptions, failures: u32, cancel: &CancellationToken) -> bool {
    let delay = options
        .retry_delay
        .saturating_mul(1 << failures.saturating_sub(1).min(6))
        .min(Duration::from_secs(30));
    tokio::select! {
        _ = cancel.cancelled() => true,
        _ = tokio::time::sleep(delay) => false,
    }
}

/// A destination that already holds the expected file is not fetched again (a layer
/// shared by two Ollama models, a rerun after completion). An Ollama blob's name is its
/// digest, written only verified: its size suffices. Any other file with a known sha256
/// is read again to compare (a file of the right size is not yet the right file).
async fn already_in_place(
    spec: &FileSpec,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<Option<Outcome>> {
    let Some(size) = spec.size else {
        return Ok(None);
    };
    let dest = spec.dest.clone();
    let len = tokio::task::spawn_blocking(move || std::fs::metadata(&dest).map(|m| m.len()))
        .await
        .map_err(|e| Error::io(&spec.dest)(io::Error::other(e)))?;
    if len.ok() != Some(size) {
        return Ok(None);
    }
    let sha256 = match (&spec.origin, &spec.sha256) {
        (Origin::Ollama { .. }, _) | (_, None) => None,
        (_, Some(expected)) => {
            let Some(hasher) = take_hasher(&mut None, &spec.dest, size, cancel).await? else {
                return Ok(Some(Outcome::Paused));
            };
            let actual = format!("{:x}", hasher.finalize());
            if !actual.eq_ignore_ascii_case(expected) {
                progress.note(format!(
                    "{} has the expected size but not the expected sha256: fetched again",
                    spec.dest.display()
                ));
                return Ok(None);
            }
            Some(actual)
        }
    };
    progress.total.store(size, Ordering::Relaxed);
    progress.set_done(size);
    Ok(Some(Outcome::Completed {
        path: spec.dest.clone(),
        size,
        sha256,
    }))
}

async fn attempt(
    client: &Client,
    spec: &FileSpec,
    url: &str,
    options: &TransferOptions,
    parts_allowed: bool,
    progress: &Progress,
    cancel: &CancellationToken,
    hashed: &mut Option<Hashed>,
) -> Result<Outcome, Step> {
    let record_path = record_path(&spec.partial);
    let (mut have, saved) = {
        let (spec, record_path) = (spec.clone(), record_path.clone());
        off_runtime(&spec.partial.clone(), move || {
            partial_state(&spec, &record_path)
        })
        .await?
    };
    if let Some(saved) = saved.as_ref().filter(|r| r.parts.is_some()) {
        *hashed = None;
        let ctx = parts::Ctx::new(client, spec, url, options, progress, cancel, saved.clone());
        return ctx.resume().await;
    }
    progress.set_done(have);
    // A fresh large file asks for its first part only: a 206 says the server honours
    // ranges (and the other parts follow), a 200 is the whole file in one stream.
    let layout = spec
        .size
        .filter(|_| have == 0 && parts_allowed)
        .map(|size| parts::layout(size, options))
        .filter(|l| l.len() > 1);
    let mut headers = HeaderMap::new();
    if have > 0 {
        headers.insert(header::RANGE, range_from(have));
    } else if let Some(first) = layout.as_ref().and_then(|l| l.first()) {
        headers.insert(header::RANGE, parts::range(first.start, first.end));
    }
    let request = Request {
        client,
        method: Method::GET,
        url,
        headers,
        bearer: spec.bearer_for(url),
        origin: &spec.origin,
    };
    // Connecting, redirects and a registry's token can each wait for a read timeout: a
    // pause does not wait for them.
    let followed = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Ok(Outcome::Paused),
        followed = request.send_raw_authorized(&options.tokens) => followed?,
    };
    let status = followed.response.status();
    let identity = followed.identity.clone();

    if let Some(saved) = saved.as_ref().filter(|_| have > 0)
        && let Some(reason) = changed(saved, &identity)
    {
        progress.note(format!("{reason}: restarting from zero"));
        discard_partial(spec, &record_path, hashed).await?;
        return Err(Step::Restart);
    }
    if status == StatusCode::RANGE_NOT_SATISFIABLE {
        let remote = content_range_total(followed.response.headers());
        if let Some(saved) = saved.as_ref().filter(|_| have > 0 && remote == Some(have)) {
            // The partial already holds the whole file (stopped before the verification).
            let expected = Expected {
                sha256: saved.sha256.clone(),
                size: saved.size,
            };
            return finish(spec, &expected, progress, hashed, have, cancel).await;
        }
        progress.note(format!(
            "the server refused the range from byte {have} (remote size {}): restarting from zero",
            remote.map_or("unknown".into(), |n| n.to_string())
        ));
        discard_partial(spec, &record_path, hashed).await?;
        return Err(Step::Restart);
    }
    if !status.is_success() {
        return Err(request.status_error(followed).await.into());
    }
    let mut response = followed.response;
    let mut total = identity.linked_size;
    let mut parallel = None;
    if have > 0 {
        if status == StatusCode::PARTIAL_CONTENT {
            let (start, remote) = content_range(response.headers()).unwrap_or((u64::MAX, None));
            if start != have {
                progress.note(format!(
                    "the server answered a range from byte {start} instead of {have}: restarting from zero"
                ));
                discard_partial(spec, &record_path, hashed).await?;
                return Err(Step::Restart);
            }
            total = remote.or(total);
        } else {
            progress.note(format!(
                "the server ignored the range request (answered {status}): restarting from zero"
            ));
            discard_partial(spec, &record_path, hashed).await?;
            have = 0;
            progress.set_done(0);
        }
    } else if status == StatusCode::PARTIAL_CONTENT {
        let Some(layout) = layout else {
            return Err(Step::Fail(Error::Protocol {
                url: spec.url.clone(),
                message: "206 Partial Content to a request without a range".into(),
            }));
        };
        let first = response.content_length().filter(|&n| n > 0);
        let (Some((0, Some(size))), Some(first)) = (content_range(response.headers()), first)
        else {
            // Without its length or the file's size the parts cannot be laid out; one
            // stream needs neither.
            progress.note(format!(
                "the answer to a range from byte 0 has Content-Range {:?} and Content-Length \
                 {:?}: one stream",
                response.headers().get(header::CONTENT_RANGE),
                response.content_length()
            ));
            return Err(Step::OneStream);
        };
        if identity.etag.is_none() && identity.commit.is_none() {
            // Nothing ties the parts' answers to one file: a file that changed between
            // them would be stitched from two.
            progress.note("the server gives no ETag to tie parts together: one stream".into());
            return Err(Step::OneStream);
        }
        total = Some(size);
        // The remote may be another size than listed (a file changed on the hub): the
        // parts after the first are laid out over what it has now.
        parallel = Some(parts::layout_after(first.min(size), size, layout.len()));
    } else if layout.is_some() {
        progress.note(format!(
            "the server does not honour Range (answered {status}): one stream"
        ));
    }
    let fresh = have == 0;
    let saved_record = saved.clone();
    let expected = match saved.filter(|_| !fresh) {
        Some(saved) => Expected {
            sha256: saved.sha256,
            size: saved.size,
        },
        None => {
            if parallel.is_none() {
                total = response.content_length().or(total);
            }
            Expected::of(spec, &identity, progress)
        }
    };
    let total = total.or(expected.size);
    if let (Some(expected), Some(remote)) = (expected.size, total)
        && expected != remote
    {
        return Err(Step::Fail(Error::SizeMismatch {
            file: spec.url.clone(),
            expected,
            actual: remote,
        }));
    }
    if let Some(total) = total {
        progress.total.store(total, Ordering::Relaxed);
        let (partial, options) = (spec.partial.clone(), options.clone());
        let remaining = total.saturating_sub(have);
        off_runtime(&spec.partial, move || {
            check_space(&partial, remaining, &options)
        })
        .await?;
    }
    let mut record = match saved_record.filter(|_| !fresh) {
        Some(saved) => saved,
        None => {
            let record = PartialRecord {
                url: spec.url.clone(),
                etag: identity.etag.clone(),
                commit: identity.commit.clone(),
                sha256: expected.sha256.clone(),
                size: expected.size.or(total),
                parts: parallel.clone(),
                flushed: parallel.is_none().then_some(0),
                boot: boot_id(),
            };
            {
                let (path, record) = (record_path.clone(), record.clone());
                off_runtime(&record_path, move || write_record(&path, &record)).await?;
            }
            if parallel.is_some() {
                *hashed = None;
                let ctx = parts::Ctx::new(client, spec, url, options, progress, cancel, record);
                return ctx.start(response).await;
            }
            record
        }
    };

    let Some(hasher) = take_hasher(hashed, &spec.partial, have, cancel).await? else {
        return Ok(Outcome::Paused);
    };
    // Written at `have`, not appended: the bytes go where the count says they do.
    let file = {
        let path = spec.partial.clone();
        off_runtime(&spec.partial, move || {
            let file = open_to_write(&path)?;
            file.set_len(have).map_err(Error::io(&path))?;
            Ok(file)
        })
        .await?
    };
    // The record follows the flushes, on the flushing thread.
    let on_durable: sink::OnDurable = {
        let path = record_path.clone();
        Box::new(move |n| {
            record.flushed = Some(n);
            record.boot = boot_id();
            write_record(&path, &record)
        })
    };
    let mut sink = Sink::start(
        &spec.partial,
        file,
        have,
        Some(hasher),
        options.sync_every,
        on_durable,
        None,
    )?;
    let mut since_space_check = 0u64;
    // How the stream stopped before its end, if it did.
    let stopped: Option<Result<Outcome, Step>> = loop {
        let chunk = tokio::select! {
            biased;
            _ = cancel.cancelled() => break Some(Ok(Outcome::Paused)),
            chunk = response.chunk() => chunk,
        };
        match chunk {
            Ok(Some(bytes)) => {
                let n = bytes.len() as u64;
                if total.is_some_and(|t| have + n > t) {
                    break Some(Err(Step::Fail(Error::Protocol {
                        url: spec.url.clone(),
                        message: format!(
                            "the server sent more than the {} bytes announced",
                            total.unwrap_or(0)
                        ),
                    })));
                }
                if sink.push(bytes).await.is_err() {
                    break None; // the writer failed: `finish` says why
                }
                have += n;
                progress.set_done(have);
                progress.fetched.fetch_add(n, Ordering::Relaxed);
                since_space_check += n;
                if total.is_none() && since_space_check >= options.sync_every {
                    since_space_check = 0;
                    // No size to check the space against before: the margin is kept as
                    // the bytes come, so that an endless answer cannot fill the disk.
                    let (partial, options) = (spec.partial.clone(), options.clone());
                    if let Err(e) =
                        off_runtime(&spec.partial, move || check_space(&partial, 0, &options)).await
                    {
                        break Some(Err(e.into()));
                    }
                }
            }
            Ok(None) => break None,
            Err(e) => {
                break Some(Err(Step::Retry(format!(
                    "the connection failed after byte {have}: {}",
                    chain(&e)
                ))));
            }
        }
    };
    // Every byte taken is written, flushed and recorded before anything else happens to
    // the file (a pause, a retry, the verification).
    let finished = sink.finish().await?;
    *hashed = finished.hasher.map(|hasher| Hashed {
        hasher,
        len: finished.end,
    });
    if let Some(stopped) = stopped {
        return stopped;
    }
    if let Some(total) = total
        && have < total
    {
        return Err(Step::Retry(format!(
            "the connection closed at byte {have} of {total}"
        )));
    }
    finish(spec, &expected, progress, hashed, have, cancel).await
}

/// Verifies the complete partial file and moves it into place.
async fn finish(
    spec: &FileSpec,
    expected: &Expected,
    progress: &Progress,
    hashed: &mut Option<Hashed>,
    len: u64,
    cancel: &CancellationToken,
) -> Result<Outcome, Step> {
    progress.verifying.store(true, Ordering::Relaxed);
    let result = verify_and_move(spec, expected, progress, hashed, len, cancel).await;
    progress.verifying.store(false, Ordering::Relaxed);
    result
}

async fn verify_and_move(
    spec: &FileSpec,
    expected: &Expected,
    progress: &Progress,
    hashed: &mut Option<Hashed>,
    len: u64,
    cancel: &CancellationToken,
) -> Result<Outcome, Step> {
    let Some(hasher) = take_hasher(hashed, &spec.partial, len, cancel).await? else {
        return Ok(Outcome::Paused);
    };
    let actual = format!("{:x}", hasher.finalize());
    if let Some(expected) = &expected.sha256
        && !expected.eq_ignore_ascii_case(&actual)
    {
        // Set aside, and its record dropped: kept as it was, the next attempt would find
        // the whole length already there and fail the same way forever.
        *hashed = None;
        let mut bad = OsString::from(spec.partial.as_os_str());
        bad.push(".bad");
        let bad = PathBuf::from(bad);
        std::fs::rename(&spec.partial, &bad).map_err(Error::io(&spec.partial))?;
        remove_if_exists(&record_path(&spec.partial))?;
        progress.note(format!(
            "sha256 mismatch: expected {expected}, got {actual}; the file is kept at {} and \
             the next attempt starts from zero",
            bad.display()
        ));
        return Err(Step::Fail(Error::ChecksumMismatch {
            file: spec.url.clone(),
            expected: expected.clone(),
            actual,
            partial: bad,
        }));
    }
    if let Some(expected) = expected.size
        && expected != len
    {
        return Err(Step::Fail(Error::SizeMismatch {
            file: spec.url.clone(),
            expected,
            actual: len,
        }));
    }
    // What is moved is the file on disk, not the bytes counted: they must be the same.
    let on_disk = std::fs::metadata(&spec.partial)
        .map_err(Error::io(&spec.partial))?
        .len();
    if on_disk != len {
        return Err(Step::Fail(Error::SizeMismatch {
            file: spec.url.clone(),
            expected: len,
            actual: on_disk,
        }));
    }
    let (partial, dest) = (spec.partial.clone(), spec.dest.clone());
    tokio::task::spawn_blocking(move || move_into_place(&partial, &dest))
        .await
        .map_err(|e| Error::Io {
            path: spec.dest.clone(),
            source: io::Error::other(e),
        })??;
    let _ = std::fs::remove_file(record_path(&spec.partial));
    Ok(Outcome::Completed {
        path: spec.dest.clone(),
        size: len,
        sha256: Some(actual),
    })
}

/// What the file being fetched must turn out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    sha256: Option<String>,
    size: Option<u64>,
}

impl Expected {
    /// The spec's sha256 and size, except on the Hugging Face hub when the resolve names
    /// another content: its `X-Linked-Etag` is the sha256 of the file it serves now (the
    /// file changed since the listing), and that is what is verified. Elsewhere the spec
    /// is the truth: an Ollama blob must match the digest it is stored under, whatever a
    /// header says.
    fn of(spec: &FileSpec, identity: &crate::http::FileIdentity, progress: &Progress) -> Expected {
        let spec_expected = Expected {
            sha256: spec.sha256.clone(),
            size: spec.size,
        };
        if !matches!(spec.origin, Origin::HuggingFace { .. }) {
            return spec_expected;
        }
        let announced = identity.etag.as_deref().filter(|e| is_sha256(e));
        match (announced, &spec.sha256) {
            (Some(now), Some(listed)) if !now.eq_ignore_ascii_case(listed) => {
                progress.note(format!(
                    "the hub now serves another version of this file (sha256 {now}, listed as {listed})"
                ));
                Expected {
                    sha256: Some(now.to_ascii_lowercase()),
                    size: identity.linked_size,
                }
            }
            _ => spec_expected,
        }
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Why the remote is not the file the partial was a prefix of, if it is not.
///
/// The ETag (on the hub: the LFS sha256 via `X-Linked-Etag`) names the content; the
/// commit is compared only when the two sides do not both have an ETag, because a new
/// commit on a branch usually leaves most files unchanged. A resume needs one of them on
/// both sides and equal: an identity the record has and the answer lacks (a mirror
/// without ETags) is no proof of the same file.
fn changed(saved: &PartialRecord, now: &crate::http::FileIdentity) -> Option<String> {
    match (&saved.etag, &now.etag) {
        (Some(a), Some(b)) if a != b => Some(format!("the remote file changed (etag {a} → {b})")),
        (Some(_), Some(_)) => None,
        _ => match (&saved.commit, &now.commit) {
            (Some(a), Some(b)) if a != b => {
                Some(format!("the remote repository changed (commit {a} → {b})"))
            }
            (Some(_), Some(_)) => None,
            _ => {
                Some("the server gives no ETag or commit to check the partial file against".into())
            }
        },
    }
}

/// The partial file's usable length and its record; a partial without a record, or one
/// recorded for another URL, is discarded.
fn partial_state(spec: &FileSpec, record_path: &Path) -> Result<(u64, Option<PartialRecord>)> {
    let saved = read_record(record_path);
    let len = std::fs::metadata(&spec.partial).map_or(0, |m| m.len());
    match saved {
        Some(r) if r.url == spec.url => {
            // Bytes past the last flush may be garbage after a power loss: written again.
            let same_boot = r.boot.is_some() && r.boot == boot_id();
            let len = match (r.parts.is_none(), r.flushed) {
                (true, Some(flushed)) if !same_boot => len.min(flushed),
                _ => len,
            };
            Ok((len, Some(r)))
        }
        _ => {
            remove_if_exists(&spec.partial)?;
            remove_if_exists(record_path)?;
            Ok((0, None))
        }
    }
}

/// Deletes the partial file and its record (on a blocking thread: it may be GBs).
async fn discard_partial(
    spec: &FileSpec,
    record_path: &Path,
    hashed: &mut Option<Hashed>,
) -> Result<()> {
    *hashed = None;
    let (partial, record) = (spec.partial.clone(), record_path.to_path_buf());
    off_runtime(&spec.partial, move || {
        remove_if_exists(&partial)?;
        remove_if_exists(&record)
    })
    .await
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(path)(e)),
        _ => Ok(()),
    }
}

fn read_record(path: &Path) -> Option<PartialRecord> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// Runs file-system work (a statvfs, a multi-GB delete, a record written) on a blocking
/// thread, not on the runtime's; `path` names it in an error.
async fn off_runtime<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::io(path)(io::Error::other(e)))?
}

fn write_record(path: &Path, record: &PartialRecord) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    }
    let bytes = serde_json::to_vec(record).expect("plain struct");
    // Replaced whole (a crash mid-write must not leave half a record).
    let mut tmp = OsString::from(path.as_os_str());
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes).map_err(Error::io(path))?;
    std::fs::rename(&tmp, path).map_err(Error::io(path))
}

/// `<partial>.json`.
pub(crate) fn record_path(partial: &Path) -> PathBuf {
    let mut s = OsString::from(partial.as_os_str());
    s.push(".json");
    PathBuf::from(s)
}

/// `<partial>.lock`.
pub(crate) fn lock_path(partial: &Path) -> PathBuf {
    let mut s = OsString::from(partial.as_os_str());
    s.push(".lock");
    PathBuf::from(s)
}

/// The hasher over the partial's first `len` bytes: the kept one when it covers exactly
/// that, else computed by reading them, in blocks between which a pause is seen (`None`:
/// paused; a multi-GB prefix must not hold a pause for minutes).
async fn take_hasher(
    hashed: &mut Option<Hashed>,
    partial: &Path,
    len: u64,
    cancel: &CancellationToken,
) -> Result<Option<Sha256>> {
    if let Some(h) = hashed.take()
        && h.len == len
    {
        return Ok(Some(h.hasher));
    }
    if len == 0 {
        return Ok(Some(Sha256::new()));
    }
    let (path, cancel) = (partial.to_path_buf(), cancel.clone());
    tokio::task::spawn_blocking(move || -> Result<Option<Sha256>> {
        use std::io::Read;
        let mut file = std::fs::File::open(&path)
            .map_err(Error::io(&path))?
            .take(len);
        let mut hasher = Sha256::new();
        let mut block = vec![0u8; 4 << 20];
        let mut copied = 0u64;
        loop {
            if cancel.is_cancelled() {
                return Ok(None);
            }
            let n = file.read(&mut block).map_err(Error::io(&path))?;
            if n == 0 {
                break;
            }
            hasher.update(&block[..n]);
            copied += n as u64;
        }
        if copied != len {
            return Err(Error::io(&path)(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the partial file shrank to {copied} bytes"),
            )));
        }
        Ok(Some(hasher))
    })
    .await
    .map_err(|e| Error::io(partial)(io::Error::other(e)))?
}

/// Bytes of `spec`'s file already on disk, as a transfer would resume from them: the
/// parts' bytes when fetched in parts (the partial file then has its full length, with
/// holes), the flushed length of one stream; 0 without a partial for the same URL.
pub fn partial_bytes(spec: &FileSpec) -> u64 {
    let Some(record) = read_record(&record_path(&spec.partial)).filter(|r| r.url == spec.url)
    else {
        return 0;
    };
    if let Some(parts) = &record.parts {
        return parts.iter().fold(0u64, |sum, p| sum.saturating_add(p.done));
    }
    let len = std::fs::metadata(&spec.partial).map_or(0, |m| m.len());
    record.flushed.map_or(len, |f| len.min(f))
}

/// Refuses to start when the partial file's filesystem lacks `remaining` + margin bytes.
///
/// fs4's `available_space` is statvfs / GetDiskFreeSpaceExW on the path itself, the
/// space an unprivileged writer may use there.
pub fn check_space(partial: &Path, remaining: u64, options: &TransferOptions) -> Result<()> {
    let dir = partial.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let available = fs4::available_space(dir).map_err(Error::io(dir))?;
    let needed = remaining.saturating_add(options.free_space_margin);
    if available < needed {
        return Err(Error::DiskSpace {
            path: dir.to_path_buf(),
            needed,
            remaining,
            margin: options.free_space_margin,
            available,
        });
    }
    Ok(())
}

/// Renames the verified partial to its destination; across filesystems, copies it to a
/// temporary file beside the destination first so that the destination appears whole.
fn move_into_place(partial: &Path, dest: &Path) -> Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    match std::fs::rename(partial, dest) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(Error::io(dir))?;
            let mut src = std::fs::File::open(partial).map_err(Error::io(partial))?;
            io::copy(&mut src, tmp.as_file_mut()).map_err(Error::io(dest))?;
            tmp.as_file().sync_all().map_err(Error::io(dest))?;
            tmp.persist(dest).map_err(|e| Error::io(dest)(e.error))?;
            std::fs::remove_file(partial).map_err(Error::io(partial))
        }
        Err(e) => Err(Error::io(dest)(e)),
    }
}

/// `Content-Range: bytes START-END/TOTAL` → (START, TOTAL).
fn content_range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let v = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let (range, total) = v.strip_prefix("bytes ")?.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

/// `Content-Range: bytes */TOTAL` (a 416's answer) → TOTAL.
fn content_range_total(headers: &HeaderMap) -> Option<u64> {
    let v = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    v.strip_prefix("bytes ")?
        .split_once('/')?
        .1
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::FileIdentity;
    use reqwest::header::HeaderValue;

    fn with_range(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_RANGE, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn the_log_keeps_the_newest_lines_only() {
        let progress = Progress::default();
        for i in 0..MAX_LOG + 20 {
            progress.note(format!("line {i}"));
        }
        let log = progress.log();
        assert_eq!(log.len(), MAX_LOG);
        assert_eq!(log.last().unwrap(), &format!("line {}", MAX_LOG + 19));
        assert_eq!(log[0], "line 20");
    }

    #[test]
    fn content_range_forms_are_read() {
        assert_eq!(
            content_range(&with_range("bytes 10-99/100")),
            Some((10, Some(100)))
        );
        assert_eq!(
            content_range(&with_range("bytes 10-99/*")),
            Some((10, None))
        );
        assert_eq!(content_range_total(&with_range("bytes */100")), Some(100));
        assert_eq!(content_range(&with_range("items 1-2/3")), None);
    }

    fn record(etag: Option<&str>, commit: Option<&str>) -> PartialRecord {
        PartialRecord {
            url: String::new(),
            etag: etag.map(Into::into),
            commit: commit.map(Into::into),
            sha256: None,
            size: None,
            parts: None,
            flushed: None,
            boot: None,
        }
    }

    fn identity(etag: Option<&str>, commit: Option<&str>) -> FileIdentity {
        FileIdentity {
            etag: etag.map(Into::into),
            commit: commit.map(Into::into),
            linked_size: None,
        }
    }

    #[test]
    fn etag_decides_and_commit_only_without_one() {
        // Same content on a newer commit: resume.
        assert_eq!(
            changed(
                &record(Some("a"), Some("c1")),
                &identity(Some("a"), Some("c2"))
            ),
            None
        );
        assert!(changed(&record(Some("a"), None), &identity(Some("b"), None)).is_some());
        assert!(changed(&record(None, Some("c1")), &identity(None, Some("c2"))).is_some());
        assert_eq!(
            changed(&record(None, Some("c1")), &identity(None, Some("c1"))),
            None
        );
        // Nothing to check against: never resume blindly.
        assert!(changed(&record(None, None), &identity(None, None)).is_some());
        // The record had an ETag, the answer has nothing (another server): not the same.
        assert!(changed(&record(Some("a"), None), &identity(None, None)).is_some());
        assert!(changed(&record(Some("a"), Some("c1")), &identity(None, None)).is_some());
        assert!(changed(&record(None, Some("c1")), &identity(Some("a"), None)).is_some());
        // The commit still ties them when only one side has an ETag.
        assert_eq!(
            changed(&record(Some("a"), Some("c1")), &identity(None, Some("c1"))),
            None
        );
    }
}
