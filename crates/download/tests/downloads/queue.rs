//! The queue: pause and resume mid-file, a remote that changed or ignores ranges while
//! paused, the concurrency limit, cancel.

use crate::*;
use testhub::Fault;

/// Queues the Q4 file with a stall at `at`, waits until exactly `at` bytes are on disk,
/// and pauses.
async fn paused_at(env: &Env, q: &Queue, at: u64) -> TaskId {
    env.hub.set_fault(
        REPO,
        Q4,
        Fault {
            stall_at: Some(at),
            ..Fault::default()
        },
    );
    let hf = env.hf(None, Duration::from_secs(60));
    let id = q.add(env.task(&hf, REPO, Q4).await);
    let s = wait_bytes(q, id, at).await;
    assert_eq!(s.state, State::Downloading);
    assert_eq!(s.total, Some(env.q4.len() as u64));
    q.pause(id).await.unwrap();
    let s = wait_state(q, id, |s| s.state == State::Paused).await;
    assert_eq!(s.done, at);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume_fetch_only_the_rest() {
    let env = Env::new().await;
    let q = queue(4, Duration::from_secs(60));
    let size = env.q4.len() as u64;
    let at = size / 2;
    let id = paused_at(&env, &q, at).await;
    assert_eq!(env.hub.served(REPO, Q4), at);

    q.resume(id).unwrap();
    let s = completed(&q, id).await;
    assert_completed(&s);
    // The CDN sent each byte once, and the second request asked for the rest only.
    assert_eq!(env.hub.served(REPO, Q4), size);
    assert_eq!(env.hub.requests(REPO, Q4), 2);
    assert_eq!((s.done, s.fetched, s.total), (size, size, Some(size)));
    assert_eq!(sha(&s.files[0]), testhub::sha256_hex(&env.q4));
    assert!(s.log.is_empty(), "a clean resume logs nothing: {:?}", s.log);
    // Pausing a finished task is refused.
    assert!(q.pause(id).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_while_paused_is_fetched_again_from_zero() {
    let env = Env::new().await;
    let q = queue(4, Duration::from_secs(60));
    let at = env.q4.len() as u64 / 2;
    let id = paused_at(&env, &q, at).await;

    let new = gguf_model("tiny v2", 15);
    env.hub.replace_file(REPO, Q4, new.clone());
    q.resume(id).unwrap();
    let s = completed(&q, id).await;
    assert_completed(&s);
    assert_eq!(sha(&s.files[0]), testhub::sha256_hex(&new));
    assert_eq!(
        s.fetched,
        at + new.len() as u64,
        "the new file is fetched whole"
    );
    let log = s.log.join("\n");
    assert!(
        log.contains("the remote file changed") && log.contains("restarting from zero"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ignores_ranges_restarts_from_zero() {
    let env = Env::new().await;
    let q = queue(4, Duration::from_secs(60));
    let size = env.q4.len() as u64;
    let at = size / 4;
    let id = paused_at(&env, &q, at).await;

    env.hub.set_fault(
        REPO,
        Q4,
        Fault {
            ignore_range: true,
            ..Fault::default()
        },
    );
    q.resume(id).unwrap();
    let s = completed(&q, id).await;
    assert_completed(&s);
    assert_eq!(sha(&s.files[0]), testhub::sha256_hex(&env.q4));
    assert_eq!(s.fetched, at + size);
    let log = s.log.join("\n");
    assert!(log.contains("ignored the range request"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_four_download_at_once_and_the_rest_wait_in_order() {
    let env = Env::new().await;
    let hf = env.hf(None, Duration::from_secs(60));
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| {
            (
                format!("m{i}-Q4_K_M.gguf"),
                gguf_model(&format!("m{i}"), 15),
            )
        })
        .collect();
    let entries: Vec<(&str, Vec<u8>)> =
        files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    env.hub.add_repo("org/six", RepoMeta::default(), &entries);
    // The first four stall at 1000 bytes, so they are all mid-file at once.
    for (name, _) in &files[..4] {
        env.hub.set_fault(
            "org/six",
            name,
            Fault {
                stall_at: Some(1000),
                ..Fault::default()
            },
        );
    }
    let q = queue(4, Duration::from_secs(60));
    let mut ids = Vec::new();
    for (name, _) in &files {
        ids.push(q.add(env.task(&hf, "org/six", name).await));
    }
    for &id in &ids[..4] {
        let s = wait_bytes(&q, id, 1000).await;
        assert_eq!(s.state, State::Downloading);
    }
    for &id in &ids[4..] {
        assert_eq!(q.status(id).unwrap().state, State::Queued);
    }
    assert_eq!(env.hub.open_transfers(), 4);

    env.hub.release();
    for (&id, (_, bytes)) in ids.iter().zip(&files) {
        let s = completed(&q, id).await;
        assert_completed(&s);
        assert_eq!(sha(&s.files[0]), testhub::sha256_hex(bytes));
    }
    assert_eq!(env.hub.max_open_transfers(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_removes_the_task_and_optionally_its_partial_file() {
    let env = Env::new().await;
    let q = queue(4, Duration::from_secs(60));
    let at = env.q4.len() as u64 / 2;
    let id = paused_at(&env, &q, at).await;
    let partial = env
        .partial()
        .join(format!("{}--{Q4}.part", REPO.replace('/', "--")));
    assert_eq!(std::fs::metadata(&partial).unwrap().len(), at);

    q.cancel(id, true).await.unwrap();
    assert!(q.status(id).is_none());
    assert!(!partial.exists(), "the partial file was asked to go");
    assert!(q.resume(id).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_queue_brings_tasks_back_paused_and_resumes_without_refetching() {
    let env = Env::new().await;
    let db = env.dir.path().join("dashboard.db");
    let size = env.q4.len() as u64;
    let at = size / 2;
    let with_store = || stored_queue(&db);
    let first = with_store();
    let id = paused_at(&env, &first, at).await;
    // A second, failed task comes back failed, with its reason.
    let hf = env.hf(None, Duration::from_secs(60));
    let mut missing = env.task(&hf, REPO, Q4).await;
    missing.files[0].url = hf.resolve_url(REPO, "main", "gone.gguf").unwrap();
    missing.files[0].partial = env.partial().join("gone.part");
    let failed = first.add(missing);
    let reason = match completed(&first, failed).await.state {
        State::Failed { reason } => reason,
        other => panic!("expected a failure, got {other:?}"),
    };
    // As after a crash: the database still says the first one was downloading.
    store::Store::open(&db)
        .unwrap()
        .set_download_state(id, "downloading", None)
        .unwrap();
    drop(first);

    let second = with_store();
    assert_eq!(second.restore(false, None).unwrap(), 2);
    let s = second.status(id).unwrap();
    assert_eq!(
        (s.state.clone(), s.label.clone()),
        (State::Paused, format!("{REPO}/{Q4}"))
    );
    assert_eq!(
        second.status(failed).unwrap().state,
        State::Failed { reason }
    );
    // New tasks do not reuse the old ids.
    let hf = env.hf(None, Duration::from_secs(60));
    let fresh = second.add(env.task(&hf, REPO, "mmproj-tiny-f16.gguf").await);
    assert!(fresh > failed && fresh > id);

    second.resume(id).unwrap();
    let s = completed(&second, id).await;
    assert_completed(&s);
    assert_eq!(sha(&s.files[0]), testhub::sha256_hex(&env.q4));
    // Only the second half crossed the network after the restart, and in all each byte once.
    assert_eq!(s.fetched, size - at);
    assert_eq!(env.hub.served(REPO, Q4), size);
    assert_completed(&completed(&second, fresh).await);

    // A completed task is not brought back; cancelled ones are forgotten.
    second.cancel(failed, true).await.unwrap();
    let third = with_store();
    assert_eq!(third.restore(true, None).unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_waits_while_another_writes_its_partial_and_cancelling_it_keeps_the_file() {
    let env = Env::new().await;
    let q = queue(4, Duration::from_secs(60));
    let at = env.q4.len() as u64 / 2;
    env.hub.set_fault(
        REPO,
        Q4,
        Fault {
            stall_at: Some(at),
            ..Fault::default()
        },
    );
    let hf = env.hf(None, Duration::from_secs(60));
    let task = env.task(&hf, REPO, Q4).await;
    // The same file under another label (as two Ollama tags share a blob).
    let twin = TaskSpec {
        label: "twin".into(),
        ..task.clone()
    };
    let first = q.add(task.clone());
    wait_bytes(&q, first, at).await;
    let second = q.add(twin);
    assert_eq!(
        q.status(second).unwrap().state,
        State::Queued,
        "a free slot, but its partial file is being written"
    );
    // Cancelling the waiting twin with its partial files spares the one in use.
    q.cancel(second, true).await.unwrap();
    assert!(
        task.files[0].partial.exists(),
        "the partial in use was deleted"
    );
    env.hub.release();
    let s = completed(&q, first).await;
    assert_completed(&s);
    assert_eq!(sha(&s.files[0]), testhub::sha256_hex(&env.q4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_download_added_twice_is_one_task() {
    let env = Env::new().await;
    let q = queue(4, Duration::from_secs(60));
    let at = env.q4.len() as u64 / 2;
    let id = paused_at(&env, &q, at).await;
    let hf = env.hf(None, Duration::from_secs(60));
    let task = env.task(&hf, REPO, Q4).await;
    // The paused task is found and goes on.
    assert_eq!(q.add_unique(task.clone()), (id, true));
    assert_eq!(q.add_unique(task), (id, true));
    assert_eq!(q.list().len(), 1);
    assert_completed(&completed(&q, id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_made_without_restore_does_not_reuse_recorded_ids() {
    let env = Env::new().await;
    let db = env.dir.path().join("dashboard.db");
    let with_store = || stored_queue(&db);
    let hf = env.hf(None, Duration::from_secs(60));
    let first = with_store();
    let done = first.add(env.task(&hf, REPO, Q4).await);
    assert_completed(&completed(&first, done).await);
    drop(first);
    // Nothing unfinished: the server makes its queue without restoring anything.
    let second = with_store();
    let next = second.add(env.task(&hf, REPO, "mmproj-tiny-f16.gguf").await);
    assert!(next > done, "id {next} reused");
    let rows = store::Store::open(&db).unwrap().downloads().unwrap();
    let labels: Vec<(u64, &str)> = rows.iter().map(|r| (r.id, r.state.as_str())).collect();
    assert!(labels.contains(&(done, "completed")), "{labels:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_past_the_last_flush_are_fetched_again() {
    let env = Env::new().await;
    let q = queue(4, Duration::from_secs(60));
    let size = env.q4.len() as u64;
    let at = size / 2;
    let id = paused_at(&env, &q, at).await;
    // As after a power loss: the machine booted again, and the file is longer than what
    // was flushed, with garbage.
    let partial = env
        .partial()
        .join(format!("{}--{Q4}.part", REPO.replace('/', "--")));
    let record = std::path::PathBuf::from(format!("{}.json", partial.display()));
    let mut saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(saved["flushed"], at, "{saved}");
    saved["boot"] = "an earlier boot".into();
    std::fs::write(&record, saved.to_string()).unwrap();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&partial)
            .unwrap();
        f.write_all(&[0u8; 1000]).unwrap();
    }
    q.resume(id).unwrap();
    let s = completed(&q, id).await;
    assert_completed(&s);
    assert_eq!(sha(&s.files[0]), testhub::sha256_hex(&env.q4));
    assert_eq!(s.fetched, size, "the rest from the flushed {at} bytes on");
}
