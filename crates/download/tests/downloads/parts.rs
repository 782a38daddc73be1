//! One file in ranged parts at once: the parts run together and verify, a cut part is
//! retried alone, a pause keeps each part's bytes, a server without ranges gets one stream.

use crate::*;
use download::transfer::{FileSpec, Outcome, Progress, fetch};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const PARTS: u32 = 4;

fn parted() -> TransferOptions {
    TransferOptions {
        parts: PARTS,
        min_part: 1024,
        ..options()
    }
}

async fn spec(env: &Env) -> FileSpec {
    let hf = env.hf(None, Duration::from_secs(30));
    env.task(&hf, REPO, Q4).await.files.remove(0)
}

/// Part `i` of the file as the transfer lays it out (equal parts).
fn part(size: u64, i: u64) -> (u64, u64) {
    let step = size.div_ceil(u64::from(PARTS));
    (i * step, ((i + 1) * step).min(size))
}

fn fault(env: &Env, fault: testhub::Fault) {
    env.hub.set_fault(REPO, Q4, fault);
}

/// The fetch completed and the file in place has this sha256.
async fn completes(
    task: tokio::task::JoinHandle<download::Result<Outcome>>,
    spec: &FileSpec,
    sha256: impl AsRef<str>,
) {
    let outcome = task.await.unwrap().unwrap();
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    assert_eq!(sha(&spec.dest), sha256.as_ref());
}

/// Runs a fetch in the background.
fn spawn_fetch(
    spec: &FileSpec,
    opts: TransferOptions,
    cancel: &CancellationToken,
) -> (
    Arc<Progress>,
    tokio::task::JoinHandle<download::Result<Outcome>>,
) {
    let progress = Arc::new(Progress::default());
    let (p, spec, cancel) = (progress.clone(), spec.clone(), cancel.clone());
    let task = tokio::spawn(async move {
        let http = client(&ClientOptions::default()).unwrap();
        fetch(&http, &spec, &opts, &p, &cancel).await
    });
    (progress, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_are_fetched_at_once_and_the_whole_is_verified() {
    let env = Env::new().await;
    let size = env.q4.len() as u64;
    let spec = spec(&env).await;
    // The first part stalls early: the file can only get this far if the other parts
    // are fetched while it waits.
    fault(
        &env,
        testhub::Fault {
            stall_at: Some(10),
            ..Default::default()
        },
    );
    let (progress, task) = spawn_fetch(&spec, parted(), &CancellationToken::new());
    let (_, first_end) = part(size, 0);
    until_done(&progress, size - (first_end - 10)).await;
    env.hub.release();
    let outcome = task.await.unwrap().unwrap();
    let want = testhub::sha256_hex(&env.q4);
    assert_eq!(
        outcome,
        Outcome::Completed {
            path: spec.dest.clone(),
            size,
            sha256: Some(want.clone()),
        }
    );
    assert_eq!(sha(&spec.dest), want);
    assert!(!spec.partial.exists());
    assert_eq!(std::fs::read_dir(env.partial()).unwrap().count(), 0);
    assert_eq!((progress.fetched(), env.hub.served(REPO, Q4)), (size, size));
    assert_eq!(env.hub.requests(REPO, Q4), u64::from(PARTS));
    let log = progress.log().join("\n");
    assert!(log.contains(&format!("in {PARTS} parts")), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_part_is_retried_alone_from_its_last_byte() {
    let env = Env::new().await;
    let size = env.q4.len() as u64;
    let spec = spec(&env).await;
    let (start, end) = part(size, 2);
    let cut = start + (end - start) / 2;
    fault(
        &env,
        testhub::Fault {
            cut_at: Some(cut),
            ..Default::default()
        },
    );
    let (progress, task) = spawn_fetch(&spec, parted(), &CancellationToken::new());
    completes(task, &spec, testhub::sha256_hex(&env.q4)).await;
    // Every byte received once: the retry asked for the rest of that part only (what
    // the cut connection had in flight is lost with it, so the server's count is more).
    assert_eq!(progress.fetched(), size);
    assert_eq!(env.hub.requests(REPO, Q4), u64::from(PARTS) + 1);
    let log = progress.log().join("\n");
    assert!(
        log.contains(&format!("part 3 of {PARTS}")) && log.contains("retrying from byte"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_keeps_every_parts_bytes_and_the_resume_fetches_only_the_rest() {
    let env = Env::new().await;
    let size = env.q4.len() as u64;
    let spec = spec(&env).await;
    let (start, end) = part(size, 1);
    let stall = start + (end - start) / 3;
    fault(
        &env,
        testhub::Fault {
            stall_at: Some(stall),
            ..Default::default()
        },
    );
    let cancel = CancellationToken::new();
    let (progress, task) = spawn_fetch(&spec, parted(), &cancel);
    let missing = end - stall;
    until_done(&progress, size - missing).await;
    cancel.cancel();
    assert_eq!(task.await.unwrap().unwrap(), Outcome::Paused);
    // The stalled answer is not released before the end: released, the server would go
    // on producing it for a connection the client has closed, and count those bytes.
    assert!(!spec.dest.exists());
    // The partial file has the whole size (the stalled part's rest a hole) and the
    // record says which bytes are in.
    assert_eq!(std::fs::metadata(&spec.partial).unwrap().len(), size);
    // What a free-space check counts as on disk: the parts' bytes, not the length.
    assert_eq!(download::transfer::partial_bytes(&spec), size - missing);

    let (resumed, task) = spawn_fetch(&spec, parted(), &CancellationToken::new());
    completes(task, &spec, testhub::sha256_hex(&env.q4)).await;
    assert_eq!(resumed.fetched(), missing, "{:?}", resumed.log());
    assert_eq!(env.hub.served(REPO, Q4), size, "no byte served twice");
    assert_eq!(env.hub.requests(REPO, Q4), u64::from(PARTS) + 1);
    env.hub.release();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ignores_range_gets_one_stream() {
    let env = Env::new().await;
    let size = env.q4.len() as u64;
    let spec = spec(&env).await;
    fault(
        &env,
        testhub::Fault {
            ignore_range: true,
            ..Default::default()
        },
    );
    let (progress, task) = spawn_fetch(&spec, parted(), &CancellationToken::new());
    completes(task, &spec, testhub::sha256_hex(&env.q4)).await;
    assert_eq!((progress.fetched(), env.hub.requests(REPO, Q4)), (size, 1));
    let log = progress.log().join("\n");
    assert!(log.contains("does not honour Range"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_etag_the_parts_cannot_be_tied_together_and_one_stream_is_used() {
    let env = Env::new().await;
    let size = env.q4.len() as u64;
    let sha256 = testhub::sha256_hex(&env.q4);
    fault(
        &env,
        testhub::Fault {
            no_etag: true,
            ..Default::default()
        },
    );
    // A plain URL (no hub headers on the way): the CDN's own answer is all there is.
    let spec = FileSpec {
        url: format!("{}/cdn/{sha256}", env.hub.cdn_url),
        mirror_url: None,
        dest: env.models().join("plain.gguf"),
        partial: env.partial().join("plain.gguf.part"),
        sha256: Some(sha256.clone()),
        size: Some(size),
        origin: download::Origin::Url,
        bearer: None,
    };
    let (progress, task) = spawn_fetch(&spec, parted(), &CancellationToken::new());
    completes(task, &spec, sha256).await;
    // The first part's answer, then the whole file in one.
    assert_eq!(env.hub.requests(REPO, Q4), 2);
    let log = progress.log().join("\n");
    assert!(log.contains("no ETag to tie parts together"), "{log}");
}
