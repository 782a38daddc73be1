//! One file from a URL to its place on disk: resumable, verified, atomic.
//!
//! The bytes go to a partial file outside the models folders, next to a small JSON
//! record of what the partial is a prefix of (the remote's ETag / commit, the expected
//! sha256 and size). A later attempt asks for the rest with `Range: bytes=N-`, but first
//! checks that the remote is still the same file; a changed remote, or a server that
//! ignores the range, starts again from zero and says so in the task's log. The sha256 is
//! computed as the bytes arrive (the kept prefix is hashed once on resume) and checked
//! before the file is moved into place with a rename, so the destination only ever holds
//! a complete, verified file. A mismatch fails the transfer and keeps the partial file for
//! inspection. A cut or stalled connection is retried from where it stopped.
//!
//! With [`TransferOptions::parts`] above one, a large file is fetched in that many ranged
//! parts at once ([`parts`]), written at their offsets into the same partial file, each
//! resumable on its own; a server that ignores `Range` gets one stream.

mod parts;

use crate::error::{Error, Origin, Result, chain};
use crate::http::{Request, Tokens, range_from};
use reqwest::header::{self, HeaderMap};
use reqwest::{Client, Method, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufWriter};
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
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(message);
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
    if let Some(done) = already_in_place(spec, progress) {
        return Ok(done);
    }
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

/// A destination that already holds a file of the expected size is not fetched again
/// (a layer shared by two Ollama models, a rerun after completion).
fn already_in_place(spec: &FileSpec, progress: &Progress) -> Option<Outcome> {
    let size = spec.size?;
    let len = std::fs::metadata(&spec.dest).ok()?.len();
    (len == size).then(|| {
        progress.total.store(size, Ordering::Relaxed);
        progress.set_done(size);
        Outcome::Completed {
            path: spec.dest.clone(),
            size,
            sha256: None,
        }
    })
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
    let (mut have, saved) = partial_state(spec, &record_path)?;
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
    let followed = request.send_raw_authorized(&options.tokens).await?;
    let status = followed.response.status();
    let identity = followed.identity.clone();

    if let Some(saved) = saved.as_ref().filter(|_| have > 0)
        && let Some(reason) = changed(saved, &identity)
    {
        progress.note(format!("{reason}: restarting from zero"));
        discard_partial(spec, &record_path, hashed)?;
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
            return finish(spec, &expected, progress, hashed, have).await;
        }
        progress.note(format!(
            "the server refused the range from byte {have} (remote size {}): restarting from zero",
            remote.map_or("unknown".into(), |n| n.to_string())
        ));
        discard_partial(spec, &record_path, hashed)?;
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
                discard_partial(spec, &record_path, hashed)?;
                return Err(Step::Restart);
            }
            total = remote.or(total);
        } else {
            progress.note(format!(
                "the server ignored the range request (answered {status}): restarting from zero"
            ));
            discard_partial(spec, &record_path, hashed)?;
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
            return Err(Step::Fail(Error::Protocol {
                url: spec.url.clone(),
                message: format!(
                    "the answer to a range from byte 0 has Content-Range {:?}",
                    response.headers().get(header::CONTENT_RANGE)
                ),
            }));
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
        check_space(&spec.partial, total.saturating_sub(have), options)?;
    }
    if fresh {
        let record = PartialRecord {
            url: spec.url.clone(),
            etag: identity.etag.clone(),
            commit: identity.commit.clone(),
            sha256: expected.sha256.clone(),
            size: expected.size.or(total),
            parts: parallel.clone(),
        };
        write_record(&record_path, &record)?;
        if parallel.is_some() {
            *hashed = None;
            let ctx = parts::Ctx::new(client, spec, url, options, progress, cancel, record);
            return ctx.start(response).await;
        }
    }

    let mut hasher = take_hasher(hashed, &spec.partial, have).await?;
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.partial)
        .await
        .map_err(Error::io(&spec.partial))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut since_sync = 0u64;
    let mut flushing = Flushing::default();
    loop {
        let chunk = tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                sync(&mut out, &spec.partial).await?;
                *hashed = Some(Hashed { hasher, len: have });
                return Ok(Outcome::Paused);
            }
            chunk = response.chunk() => chunk,
        };
        match chunk {
            Ok(Some(bytes)) => {
                let n = bytes.len() as u64;
                if total.is_some_and(|t| have + n > t) {
                    return Err(Step::Fail(Error::Protocol {
                        url: spec.url.clone(),
                        message: format!(
                            "the server sent more than the {} bytes announced",
                            total.unwrap_or(0)
                        ),
                    }));
                }
                out.write_all(&bytes)
                    .await
                    .map_err(Error::io(&spec.partial))?;
                hasher.update(&bytes);
                have += n;
                progress.set_done(have);
                progress.fetched.fetch_add(n, Ordering::Relaxed);
                since_sync += n;
                if since_sync >= options.sync_every {
                    flushing.start(&mut out, &spec.partial, have).await?;
                    since_sync = 0;
                }
            }
            Ok(None) => break,
            Err(e) => {
                sync(&mut out, &spec.partial).await?;
                *hashed = Some(Hashed { hasher, len: have });
                return Err(Step::Retry(format!(
                    "the connection failed after byte {have}: {}",
                    chain(&e)
                )));
            }
        }
    }
    sync(&mut out, &spec.partial).await?;
    *hashed = Some(Hashed { hasher, len: have });
    if let Some(total) = total
        && have < total
    {
        return Err(Step::Retry(format!(
            "the connection closed at byte {have} of {total}"
        )));
    }
    finish(spec, &expected, progress, hashed, have).await
}

/// Verifies the complete partial file and moves it into place.
async fn finish(
    spec: &FileSpec,
    expected: &Expected,
    progress: &Progress,
    hashed: &mut Option<Hashed>,
    len: u64,
) -> Result<Outcome, Step> {
    progress.verifying.store(true, Ordering::Relaxed);
    let result = verify_and_move(spec, expected, progress, hashed, len).await;
    progress.verifying.store(false, Ordering::Relaxed);
    result
}

async fn verify_and_move(
    spec: &FileSpec,
    expected: &Expected,
    progress: &Progress,
    hashed: &mut Option<Hashed>,
    len: u64,
) -> Result<Outcome, Step> {
    let hasher = take_hasher(hashed, &spec.partial, len).await?;
    let actual = format!("{:x}", hasher.finalize());
    if let Some(expected) = &expected.sha256
        && !expected.eq_ignore_ascii_case(&actual)
    {
        progress.note(format!(
            "sha256 mismatch: expected {expected}, got {actual}; partial kept"
        ));
        return Err(Step::Fail(Error::ChecksumMismatch {
            file: spec.url.clone(),
            expected: expected.clone(),
            actual,
            partial: spec.partial.clone(),
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
/// commit is compared only when neither side has an ETag, because a new commit on a
/// branch usually leaves most files unchanged.
fn changed(saved: &PartialRecord, now: &crate::http::FileIdentity) -> Option<String> {
    match (&saved.etag, &now.etag) {
        (Some(a), Some(b)) if a != b => Some(format!("the remote file changed (etag {a} → {b})")),
        (Some(_), Some(_)) => None,
        _ => match (&saved.commit, &now.commit) {
            (Some(a), Some(b)) if a != b => {
                Some(format!("the remote repository changed (commit {a} → {b})"))
            }
            (None, None) => {
                Some("the server gives no ETag to check the partial file against".into())
            }
            _ => None,
        },
    }
}

/// The partial file's usable length and its record; a partial without a record, or one
/// recorded for another URL, is discarded.
fn partial_state(spec: &FileSpec, record_path: &Path) -> Result<(u64, Option<PartialRecord>)> {
    let saved = std::fs::read(record_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<PartialRecord>(&b).ok());
    let len = std::fs::metadata(&spec.partial).map_or(0, |m| m.len());
    match saved {
        Some(r) if r.url == spec.url => Ok((len, Some(r))),
        _ => {
            remove_if_exists(&spec.partial)?;
            remove_if_exists(record_path)?;
            Ok((0, None))
        }
    }
}

fn discard_partial(spec: &FileSpec, record_path: &Path, hashed: &mut Option<Hashed>) -> Result<()> {
    *hashed = None;
    remove_if_exists(&spec.partial)?;
    remove_if_exists(record_path)
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(path)(e)),
        _ => Ok(()),
    }
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

/// The hasher over the partial's first `len` bytes: the kept one when it covers exactly
/// that, else computed by reading them.
async fn take_hasher(hashed: &mut Option<Hashed>, partial: &Path, len: u64) -> Result<Sha256> {
    if let Some(h) = hashed.take()
        && h.len == len
    {
        return Ok(h.hasher);
    }
    if len == 0 {
        return Ok(Sha256::new());
    }
    let path = partial.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<Sha256> {
        use std::io::Read;
        let file = std::fs::File::open(&path).map_err(Error::io(&path))?;
        let mut hasher = Sha256::new();
        let copied = io::copy(&mut file.take(len), &mut hasher).map_err(Error::io(&path))?;
        if copied != len {
            return Err(Error::io(&path)(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the partial file shrank to {copied} bytes"),
            )));
        }
        Ok(hasher)
    })
    .await
    .map_err(|e| Error::io(partial)(io::Error::other(e)))?
}

async fn sync(out: &mut BufWriter<tokio::fs::File>, path: &Path) -> Result<()> {
    out.flush().await.map_err(Error::io(path))?;
    out.get_ref().sync_data().await.map_err(Error::io(path))
}

/// The periodic flush to disk, in the background: waiting for the disk at every
/// `sync_every` bytes took most of a local download's time (measured: 1.97 s against
/// 0.51 s for 256 MiB), so the stream goes on while the disk catches up, with one flush
/// in flight at most (a disk slower than the network still slows the stream down).
#[derive(Default)]
struct Flushing {
    /// The flush in flight and the byte count it makes durable.
    pending: Option<(tokio::task::JoinHandle<io::Result<()>>, u64)>,
}

impl Flushing {
    /// Hands what is written so far (`mark`: the bytes it amounts to) to the kernel and
    /// starts flushing it to disk; returns the mark of the previous flush, now durable.
    async fn start(
        &mut self,
        out: &mut BufWriter<tokio::fs::File>,
        path: &Path,
        mark: u64,
    ) -> Result<Option<u64>> {
        out.flush().await.map_err(Error::io(path))?;
        let durable = match self.pending.take() {
            Some((flush, done)) => {
                flush
                    .await
                    .map_err(|e| Error::io(path)(io::Error::other(e)))?
                    .map_err(Error::io(path))?;
                Some(done)
            }
            None => None,
        };
        let file = out.get_ref().try_clone().await.map_err(Error::io(path))?;
        self.pending = Some((tokio::spawn(async move { file.sync_data().await }), mark));
        Ok(durable)
    }
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
    }
}
