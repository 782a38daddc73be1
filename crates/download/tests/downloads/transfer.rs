//! One file: a full pull, a cut or stalled connection, a changed remote, a server that
//! ignores ranges, a checksum mismatch, too little disk.

use crate::*;
use download::Error;
use download::transfer::{Outcome, Progress, fetch};
use tokio_util::sync::CancellationToken;

async fn pull(
    env: &Env,
    read_timeout: Duration,
    opts: &TransferOptions,
) -> (download::Result<Outcome>, Progress, TaskSpec) {
    let hf = env.hf(Some("hf_any"), read_timeout);
    let task = env.task(&hf, REPO, Q4).await;
    let http = client(&ClientOptions {
        read_timeout,
        ..ClientOptions::default()
    })
    .unwrap();
    let progress = Progress::default();
    let result = fetch(
        &http,
        &task.files[0],
        opts,
        &progress,
        &CancellationToken::new(),
    )
    .await;
    (result, progress, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pull_is_verified_and_moved_into_place() {
    let env = Env::new().await;
    let size = env.q4.len() as u64;
    // A token is set: the CDN (another origin) refuses requests that carry it, so this
    // also proves it is not forwarded across the redirect.
    let (result, progress, task) = pull(&env, Duration::from_secs(30), &options()).await;
    let spec = &task.files[0];
    let want = testhub::sha256_hex(&env.q4);
    assert_eq!(
        result.unwrap(),
        Outcome::Completed {
            path: spec.dest.clone(),
            size,
            sha256: Some(want.clone()),
        }
    );
    assert_eq!(spec.dest, env.models().join(REPO).join(Q4));
    assert_eq!(sha(&spec.dest), want);
    assert!(
        !spec.partial.exists(),
        "the partial file was moved, not copied"
    );
    assert_eq!(
        std::fs::read_dir(env.partial()).unwrap().count(),
        0,
        "record left behind"
    );
    assert_eq!(
        (progress.done(), progress.total(), progress.fetched()),
        (size, Some(size), size)
    );
    assert_eq!(env.hub.served(REPO, Q4), size);

    // A rerun finds the file in place and fetches nothing.
    let (result, progress, _) = pull(&env, Duration::from_secs(30), &options()).await;
    assert!(matches!(
        result.unwrap(),
        Outcome::Completed { sha256: None, .. }
    ));
    assert_eq!(progress.fetched(), 0);
    assert_eq!(env.hub.requests(REPO, Q4), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_is_retried_from_where_it_stopped() {
    let env = Env::new().await;
    let size = env.q4.len() as u64;
    env.hub.set_fault(
        REPO,
        Q4,
        testhub::Fault {
            cut_at: Some(size / 3),
            ..Default::default()
        },
    );
    let (result, progress, task) = pull(&env, Duration::from_secs(30), &options()).await;
    assert!(matches!(result.unwrap(), Outcome::Completed { .. }));
    assert_eq!(sha(&task.files[0].dest), testhub::sha256_hex(&env.q4));
    assert_eq!(env.hub.requests(REPO, Q4), 2);
    // Every byte received once: the retry asked only for the rest.
    assert_eq!(progress.fetched(), size);
    let log = progress.log().join("\n");
    assert!(
        log.contains("connection") && log.contains("retrying from byte"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_connection_times_out_and_resumes() {
    let env = Env::new().await;
    let size = env.q4.len() as u64;
    env.hub.set_fault(
        REPO,
        Q4,
        testhub::Fault {
            stall_at: Some(size / 2),
            ..Default::default()
        },
    );
    // The stall is never released: only the client's read timeout gets past it.
    let (result, progress, task) = pull(&env, Duration::from_millis(500), &options()).await;
    assert!(matches!(result.unwrap(), Outcome::Completed { .. }));
    assert_eq!(sha(&task.files[0].dest), testhub::sha256_hex(&env.q4));
    assert_eq!(progress.fetched(), size);
    assert_eq!(env.hub.requests(REPO, Q4), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checksum_mismatch_fails_and_keeps_the_partial_file() {
    let env = Env::new().await;
    env.hub.corrupt(REPO, Q4);
    let (result, _, task) = pull(&env, Duration::from_secs(30), &options()).await;
    let spec = &task.files[0];
    match result.unwrap_err() {
        Error::ChecksumMismatch {
            expected, partial, ..
        } => {
            assert_eq!(expected, testhub::sha256_hex(&env.q4));
            assert_eq!(partial, spec.partial);
        }
        other => panic!("expected a checksum mismatch, got {other}"),
    }
    assert!(
        !spec.dest.exists(),
        "a corrupt file reached the models folder"
    );
    assert_eq!(
        std::fs::metadata(&spec.partial).unwrap().len(),
        env.q4.len() as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_little_free_disk_refuses_to_start() {
    let env = Env::new().await;
    // More than any disk has free: the real free-space figure of the partial folder is
    // compared, and refused.
    let opts = TransferOptions {
        free_space_margin: u64::MAX / 2,
        ..options()
    };
    let (result, progress, task) = pull(&env, Duration::from_secs(30), &opts).await;
    let e = result.unwrap_err();
    assert!(matches!(e, Error::DiskSpace { .. }), "{e}");
    assert!(e.to_string().contains("not enough free disk space"), "{e}");
    assert_eq!(progress.fetched(), 0);
    assert!(!task.files[0].dest.exists() && !task.files[0].partial.exists());
}
