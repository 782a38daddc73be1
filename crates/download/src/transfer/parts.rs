//! One file in several ranged parts fetched at once, written at their offsets into the
//! one partial file.
//!
//! The partial file is given the whole size up front (sparse where nothing is written
//! yet) and its record lists every part with the bytes of it flushed to disk; each part
//! resumes from there on its own, after a cut connection as after a pause or a restart.
//! Each part streams through its own [`Sink`] (a writer thread at the part's offset and a
//! flushing thread); the record is rewritten (whole, by rename, one writer at a time) on a
//! flushing thread after each flush, so after a crash at most about twice `sync_every`
//! bytes of each part are fetched again. A part's answer must be the same file (ETag /
//! commit, as for a resume) and the range asked for; a changed remote or a server that
//! stops honouring `Range` starts the file again from zero. The sha256 is computed by a
//! [`Follower`] that reads the file in order as the parts write it, so that the hash is
//! ready soon after the last byte (a whole read of the file afterwards took as long as
//! the download on loopback), before the same verification and atomic move as one stream.
//!
//! The parts' reads run as futures of the transfer's own task: they wait on the network;
//! the copies to disk and the hash run on blocking threads.

use super::*;
use futures_util::future::join_all;
use reqwest::Response;
use reqwest::header::HeaderValue;
use std::sync::Arc;

/// One part: bytes `start..end` of the file, of which `done` are on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Part {
    pub start: u64,
    pub end: u64,
    pub done: u64,
}

impl Part {
    fn next(&self) -> u64 {
        self.start + self.done
    }
    fn finished(&self) -> bool {
        self.next() >= self.end
    }
}

/// Up to `options.parts` equal parts of `size`, none smaller than `options.min_part`.
pub(super) fn layout(size: u64, options: &TransferOptions) -> Vec<Part> {
    let n = u64::from(options.parts.max(1)).min(size / options.min_part.max(1));
    split(0, size, n.max(1))
}

/// `count` parts of `size` whose first is `0..first` (what the first answer holds).
pub(super) fn layout_after(first: u64, size: u64, count: usize) -> Vec<Part> {
    let mut parts = vec![Part {
        start: 0,
        end: first,
        done: 0,
    }];
    parts.extend(split(first, size, count.saturating_sub(1).max(1) as u64));
    parts.retain(|p| p.start < p.end);
    parts
}

fn split(from: u64, to: u64, n: u64) -> Vec<Part> {
    let step = (to - from).div_ceil(n).max(1);
    (0..n)
        .map(|i| Part {
            start: (from + i * step).min(to),
            end: (from + (i + 1) * step).min(to),
            done: 0,
        })
        .filter(|p| p.start < p.end)
        .collect()
}

/// `bytes=start-(end-1)`.
pub(super) fn range(start: u64, end: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("bytes={start}-{}", end - 1)).expect("ASCII")
}

/// How one part stopped without failing.
enum PartEnd {
    Done,
    Paused,
}

/// One parallel transfer.
pub(super) struct Ctx<'a> {
    client: &'a Client,
    spec: &'a FileSpec,
    url: &'a str,
    options: &'a TransferOptions,
    progress: &'a Progress,
    /// Cancelled by the caller (pause) or by a part that failed (stops the others).
    stop: CancellationToken,
    paused: &'a CancellationToken,
    /// Read on the runtime only for short copies; written (and the file rewritten) on the
    /// parts' flushing threads.
    record: Arc<Records>,
    /// Where each part's bytes written so far end (an offset), for the follower.
    written: Vec<Arc<AtomicU64>>,
    size: u64,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(
        client: &'a Client,
        spec: &'a FileSpec,
        url: &'a str,
        options: &'a TransferOptions,
        progress: &'a Progress,
        cancel: &'a CancellationToken,
        record: PartialRecord,
    ) -> Ctx<'a> {
        let size = record
            .parts
            .as_ref()
            .and_then(|p| p.last())
            .map_or(0, |p| p.end);
        Ctx {
            client,
            spec,
            url,
            options,
            progress,
            stop: cancel.child_token(),
            paused: cancel,
            written: record
                .parts
                .iter()
                .flatten()
                .map(|p| Arc::new(AtomicU64::new(p.next())))
                .collect(),
            record: Arc::new(Records {
                record: Mutex::new(record),
                writing: Mutex::new(()),
                path: record_path(&spec.partial),
            }),
            size,
        }
    }

    fn parts(&self) -> Vec<Part> {
        self.lock().parts.clone().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PartialRecord> {
        self.record.lock()
    }

    /// A fresh file: `first` is the answer for the first part.
    pub(super) async fn start(self, first: Response) -> Result<Outcome, Step> {
        let count = self.parts().len();
        self.progress.note(format!(
            "fetching {} bytes in {count} parts at once",
            self.size
        ));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.spec.partial)
            .map_err(Error::io(&self.spec.partial))?;
        file.set_len(self.size)
            .map_err(Error::io(&self.spec.partial))?;
        self.run(Some(first)).await
    }

    /// A partial file fetched in parts before: each part goes on from what is on disk.
    pub(super) async fn resume(self) -> Result<Outcome, Step> {
        let len = std::fs::metadata(&self.spec.partial).map_or(0, |m| m.len());
        if len != self.size || self.size == 0 {
            self.progress.note(format!(
                "the partial file has {len} bytes where its parts need {}: restarting from zero",
                self.size
            ));
            discard_partial(self.spec, &self.record.path, &mut None).await?;
            return Err(Step::Restart);
        }
        let done: u64 = self.parts().iter().map(|p| p.done).sum();
        self.progress.total.store(self.size, Ordering::Relaxed);
        self.progress.set_done(done);
        check_space(
            &self.spec.partial,
            self.size.saturating_sub(done),
            self.options,
        )?;
        self.run(None).await
    }

    async fn run(self, first: Option<Response>) -> Result<Outcome, Step> {
        let mut first = first;
        let count = self.parts().len();
        let follower = Follower::start(&self.spec.partial, &self.parts(), &self.written);
        let ends =
            join_all((0..count).map(|i| self.part(i, if i == 0 { first.take() } else { None })))
                .await;
        // A failure wins over a restart, a restart over a pause.
        let mut restart = false;
        let mut paused = false;
        for end in ends {
            match end {
                Ok(PartEnd::Done) => {}
                Ok(PartEnd::Paused) => paused = true,
                Err(Step::Restart) => restart = true,
                Err(other) => return Err(other),
            }
        }
        if restart {
            discard_partial(self.spec, &self.record.path, &mut None).await?;
            return Err(Step::Restart);
        }
        if paused || self.paused.is_cancelled() {
            return Ok(Outcome::Paused);
        }
        let expected = {
            let r = self.lock();
            Expected {
                sha256: r.sha256.clone(),
                size: r.size,
            }
        };
        // Without the follower's hash (it failed to read), `finish` reads the file.
        let mut hashed = follower.finish().await.map(|hasher| Hashed {
            hasher,
            len: self.size,
        });
        finish(
            self.spec,
            &expected,
            self.progress,
            &mut hashed,
            self.size,
            self.paused,
        )
        .await
    }

    /// Fetches part `i` to its end, retrying a cut connection from its last byte on disk.
    async fn part(&self, i: usize, mut first: Option<Response>) -> Result<PartEnd, Step> {
        let mut failures = 0u32;
        loop {
            let before = self.parts()[i].done;
            let result = match first.take() {
                Some(response) => self.stream(i, response).await,
                None if self.parts()[i].finished() => Ok(PartEnd::Done),
                None => match self.request(i).await {
                    Ok(Some(response)) => self.stream(i, response).await,
                    Ok(None) => Ok(PartEnd::Paused),
                    Err(step) => Err(step),
                },
            };
            let reason = match result {
                Err(Step::Retry(reason)) => reason,
                Err(Step::Unreachable(e)) => e.to_string(),
                Err(other) => {
                    // The other parts stop, flushing what they have.
                    self.stop.cancel();
                    return Err(other);
                }
                Ok(end) => return Ok(end),
            };
            if self.parts()[i].done > before {
                failures = 0;
            }
            failures += 1;
            if failures > self.options.retries {
                self.stop.cancel();
                return Err(Step::Fail(Error::RetriesExhausted {
                    url: self.spec.url.clone(),
                    attempts: failures,
                    last: reason,
                }));
            }
            let p = self.parts()[i];
            self.progress.note(format!(
                "part {} of {}: {reason}; retrying from byte {} (attempt {} of {})",
                i + 1,
                self.parts().len(),
                p.next(),
                failures + 1,
                self.options.retries + 1
            ));
            if pause(self.options, failures, &self.stop).await {
                return Ok(PartEnd::Paused);
            }
        }
    }

    /// Asks for the rest of part `i` and checks that the answer is that range of the same
    /// file; `None` when stopped meanwhile.
    async fn request(&self, i: usize) -> Result<Option<Response>, Step> {
        let p = self.parts()[i];
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, range(p.next(), p.end));
        let request = Request {
            client: self.client,
            method: Method::GET,
            url: self.url,
            headers,
            bearer: self.spec.bearer_for(self.url),
            origin: &self.spec.origin,
        };
        let followed = tokio::select! {
            biased;
            _ = self.stop.cancelled() => return Ok(None),
            f = request.send_raw_authorized(&self.options.tokens) => f?,
        };
        let saved = self.lock().clone();
        if let Some(reason) = changed(&saved, &followed.identity) {
            self.progress
                .note(format!("{reason}: restarting from zero"));
            return Err(Step::Restart);
        }
        let status = followed.response.status();
        if status == StatusCode::PARTIAL_CONTENT {
            let answered = content_range(followed.response.headers());
            if answered == Some((p.next(), Some(self.size))) {
                return Ok(Some(followed.response));
            }
            self.progress.note(format!(
                "part {}: asked for bytes from {} of {}, the server answered {answered:?}: restarting from zero",
                i + 1,
                p.next(),
                self.size
            ));
            return Err(Step::Restart);
        }
        if status.is_success() {
            self.progress.note(format!(
                "the server stopped honouring Range (answered {status}): restarting from zero"
            ));
            return Err(Step::Restart);
        }
        Err(request.status_error(followed).await.into())
    }

    /// Writes an answer for part `i` at its offset; the part's progress is flushed to
    /// disk and recorded every `sync_every` bytes and whenever it stops.
    async fn stream(&self, i: usize, mut response: Response) -> Result<PartEnd, Step> {
        let p = self.parts()[i];
        let path = &self.spec.partial;
        let file = {
            let path = path.clone();
            off_runtime(&self.spec.partial, move || {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(Error::io(&path))
            })
            .await?
        };
        let on_durable: sink::OnDurable = {
            let record = self.record.clone();
            Box::new(move |end| record.part_done(i, end - p.start))
        };
        let mut sink = Sink::start(
            path,
            file,
            p.next(),
            None,
            self.options.sync_every,
            on_durable,
            Some(self.written[i].clone()),
        )?;
        let mut done = p.done;
        let len = p.end - p.start;
        // How the part stopped before its end, if it did.
        let stopped: Option<Result<PartEnd, Step>> = loop {
            let chunk = tokio::select! {
                biased;
                _ = self.stop.cancelled() => break Some(Ok(PartEnd::Paused)),
                chunk = response.chunk() => chunk,
            };
            match chunk {
                Ok(Some(bytes)) => {
                    let n = bytes.len() as u64;
                    if done + n > len {
                        break Some(Err(Step::Fail(Error::Protocol {
                            url: self.spec.url.clone(),
                            message: format!(
                                "the server sent more than the {len} bytes of part {}",
                                i + 1
                            ),
                        })));
                    }
                    if sink.push(bytes).await.is_err() {
                        break None; // the writer failed: `finish` says why
                    }
                    done += n;
                    self.progress.done.fetch_add(n, Ordering::Relaxed);
                    self.progress.fetched.fetch_add(n, Ordering::Relaxed);
                }
                Ok(None) => break None,
                Err(e) => {
                    break Some(Err(Step::Retry(format!(
                        "the connection failed after byte {}: {}",
                        p.start + done,
                        chain(&e)
                    ))));
                }
            }
        };
        // Written, flushed and recorded before the part counts as stopped.
        sink.finish().await?;
        if let Some(stopped) = stopped {
            return stopped;
        }
        if done < len {
            return Err(Step::Retry(format!(
                "the connection closed at byte {} of part {} (bytes {}-{})",
                p.start + done,
                i + 1,
                p.start,
                p.end - 1
            )));
        }
        Ok(PartEnd::Done)
    }
}

/// Hashes the partial file from its start while the parts write it: it reads each part's
/// bytes once they are written (from the page cache), so that the sha256 is ready about
/// when the last byte arrives instead of a whole read of the file later.
struct Follower {
    stop: Arc<AtomicBool>,
    thread: Option<tokio::task::JoinHandle<Option<Sha256>>>,
}

impl Follower {
    /// How long the follower sleeps when it has caught up with the parts.
    const IDLE: Duration = Duration::from_millis(2);

    fn start(path: &Path, parts: &[Part], written: &[Arc<AtomicU64>]) -> Follower {
        let stop = Arc::new(AtomicBool::new(false));
        let parts: Vec<(Part, Arc<AtomicU64>)> =
            parts.iter().copied().zip(written.iter().cloned()).collect();
        let (path, stopped) = (path.to_path_buf(), stop.clone());
        let thread = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Seek};
            let mut file = std::fs::File::open(&path).ok()?;
            let mut hasher = Sha256::new();
            let mut block = vec![0u8; 4 << 20];
            for (part, written) in &parts {
                let mut at = part.start;
                while at < part.end {
                    if stopped.load(Ordering::Relaxed) {
                        return None;
                    }
                    let ready = written.load(Ordering::Acquire).min(part.end);
                    if ready <= at {
                        std::thread::sleep(Self::IDLE);
                        continue;
                    }
                    let n = (ready - at).min(block.len() as u64) as usize;
                    // The file's own descriptor position follows `at`: parts are read in
                    // order, each from its start.
                    if at == part.start {
                        file.seek(io::SeekFrom::Start(at)).ok()?;
                    }
                    file.read_exact(&mut block[..n]).ok()?;
                    hasher.update(&block[..n]);
                    at += n as u64;
                }
            }
            Some(hasher)
        });
        Follower {
            stop,
            thread: Some(thread),
        }
    }

    /// The hash of the whole file, once every part is written; `None` if reading failed.
    async fn finish(mut self) -> Option<Sha256> {
        self.thread.take()?.await.ok().flatten()
    }
}

impl Drop for Follower {
    /// A transfer that stops before the end stops its follower.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The parts' record and its file, shared with the flushing threads.
struct Records {
    record: Mutex<PartialRecord>,
    /// Held while the file is rewritten: one writer at a time (they share the temporary
    /// file), each writing the newest state.
    writing: Mutex<()>,
    path: PathBuf,
}

impl Records {
    fn lock(&self) -> std::sync::MutexGuard<'_, PartialRecord> {
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that part `i` has `done` bytes on disk (on a flushing thread: the record
    /// never claims a byte that is not flushed).
    fn part_done(&self, i: usize, done: u64) -> Result<()> {
        if let Some(part) = self.lock().parts.as_mut().and_then(|p| p.get_mut(i)) {
            part.done = done;
        }
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let newest = self.lock().clone();
        write_record(&self.path, &newest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(parts: u32, min_part: u64) -> TransferOptions {
        TransferOptions {
            parts,
            min_part,
            ..TransferOptions::default()
        }
    }

    #[test]
    fn parts_cover_the_file_exactly_and_small_files_stay_whole() {
        for size in [1u64, 99, 100, 101, 1000, 1_000_003] {
            for n in 1..6 {
                let parts = layout(size, &opts(n, 10));
                assert_eq!(parts.first().unwrap().start, 0);
                assert_eq!(parts.last().unwrap().end, size);
                assert!(parts.windows(2).all(|w| w[0].end == w[1].start));
                assert!(parts.len() <= n as usize);
                assert!(parts.len() == 1 || parts.iter().all(|p| p.end - p.start >= 10));
            }
        }
        assert_eq!(layout(100, &opts(4, 64)).len(), 1);
        assert_eq!(layout(1 << 30, &opts(4, 64 << 20)).len(), 4);
    }

    #[test]
    fn a_resized_remote_keeps_the_first_answer_as_part_one() {
        let parts = layout_after(25, 90, 4);
        assert_eq!((parts[0].start, parts[0].end), (0, 25));
        assert_eq!(parts.last().unwrap().end, 90);
        assert_eq!(parts.len(), 4);
        assert!(parts.windows(2).all(|w| w[0].end == w[1].start));
        // The first answer already holds everything.
        assert_eq!(layout_after(90, 90, 4).len(), 1);
    }
}
