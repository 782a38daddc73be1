//! The download crate against testhub's local services that behave like the Hugging Face
//! hub (API, resolve, CDN on another origin) and the Ollama registry.
//!
//! Nothing here depends on timing: a test that needs a transfer to be mid-file makes the
//! service stall at a byte offset and waits (with a generous limit against hangs) until
//! the client has exactly those bytes.

mod hf;
mod library;
mod ollama;
mod parts;
mod queue;
mod transfer;

use download::hf::Hub as HfClient;
use download::http::{ClientOptions, client};
use download::queue::{Queue, QueueOptions, State, Status, TaskId, TaskSpec};
use download::transfer::TransferOptions;
use std::path::{Path, PathBuf};
use std::time::Duration;
use testhub::{Hub, RepoMeta, gguf_model};

pub const REPO: &str = "org/tiny-GGUF";
pub const Q4: &str = "tiny-Q4_K_M.gguf";

/// A hub with the fixture repository, and a scratch folder.
pub struct Env {
    pub hub: Hub,
    pub dir: tempfile::TempDir,
    pub q4: Vec<u8>,
}

impl Env {
    pub async fn new() -> Env {
        let hub = Hub::start().await;
        let q4 = gguf_model("tiny", 15);
        hub.add_repo(
            REPO,
            RepoMeta {
                downloads: 500,
                likes: 7,
                ..RepoMeta::default()
            },
            &[
                ("README.md", b"# tiny\n".to_vec()),
                (Q4, q4.clone()),
                (
                    "Q8_0/tiny-Q8_0-00001-of-00002.gguf",
                    gguf_model("tiny a", 7),
                ),
                (
                    "Q8_0/tiny-Q8_0-00002-of-00002.gguf",
                    gguf_model("tiny b", 7),
                ),
                ("mmproj-tiny-f16.gguf", gguf_model("proj", 1)),
            ],
        );
        Env {
            hub,
            dir: tempfile::tempdir().unwrap(),
            q4,
        }
    }

    pub fn models(&self) -> PathBuf {
        self.dir.path().join("models")
    }

    pub fn partial(&self) -> PathBuf {
        self.dir.path().join("partial")
    }

    /// A hub client with `token`, reads timing out after `read_timeout`.
    pub fn hf(&self, token: Option<&str>, read_timeout: Duration) -> HfClient {
        let http = client(&ClientOptions {
            read_timeout,
            ..ClientOptions::default()
        })
        .unwrap();
        HfClient::new(http, &self.hub.url, token.map(str::to_string)).unwrap()
    }

    /// The task that downloads `file` of `repo` into the models folder.
    pub async fn task(&self, hf: &HfClient, repo: &str, file: &str) -> TaskSpec {
        let tree = hf.tree(repo, "main").await.unwrap();
        let entry = tree.iter().find(|e| e.path == file).expect("file in tree");
        let remote = download::hf::RemoteFile {
            path: entry.path.clone(),
            size: entry.lfs.as_ref().map_or(entry.size, |l| l.size),
            sha256: entry.lfs.as_ref().map(|l| l.oid.clone()),
        };
        let spec = hf
            .file_spec(
                repo,
                "main",
                &remote,
                &self.models().join(repo),
                &self.partial(),
            )
            .unwrap();
        TaskSpec {
            label: format!("{repo}/{file}"),
            files: vec![spec],
            finish: Vec::new(),
        }
    }
}

pub fn options() -> TransferOptions {
    TransferOptions {
        retry_delay: Duration::from_millis(10),
        free_space_margin: 0,
        // Small, so that the periodic flush to disk runs many times in every test file.
        sync_every: 64 << 10,
        ..TransferOptions::default()
    }
}

pub fn queue(max_concurrent: usize, read_timeout: Duration) -> Queue {
    let http = client(&ClientOptions {
        read_timeout,
        ..ClientOptions::default()
    })
    .unwrap();
    Queue::new(
        http,
        QueueOptions {
            max_concurrent,
            transfer: options(),
        },
    )
}

/// Long enough for any machine; only a hang reaches it.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// Waits for a state change that satisfies `done`.
pub async fn wait_state(q: &Queue, id: TaskId, done: impl FnMut(&Status) -> bool) -> Status {
    tokio::time::timeout(PATIENCE, q.wait_for(id, done))
        .await
        .expect("task did not reach the expected state")
        .expect("task exists")
}

/// Polls until the task has exactly `bytes` on disk (byte counts do not signal changes).
pub async fn wait_bytes(q: &Queue, id: TaskId, bytes: u64) -> Status {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let s = q.status(id).expect("task exists");
        if s.done == bytes {
            return s;
        }
        assert!(
            !s.state.is_finished(),
            "task finished before reaching {bytes} bytes: {s:?}"
        );
        assert!(tokio::time::Instant::now() < deadline, "stuck at {s:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls until one transfer has exactly `bytes` on disk.
pub async fn until_done(progress: &download::transfer::Progress, bytes: u64) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while progress.done() != bytes {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stuck at {} of the expected {bytes}: {:?}",
            progress.done(),
            progress.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A queue recording its tasks in the database at `db`.
pub fn stored_queue(db: &Path) -> Queue {
    let http = client(&ClientOptions::default()).unwrap();
    let store = std::sync::Arc::new(store::Store::open(db).unwrap());
    Queue::with_store(
        http,
        QueueOptions {
            max_concurrent: 4,
            transfer: options(),
        },
        store,
    )
}

pub async fn completed(q: &Queue, id: TaskId) -> Status {
    wait_state(q, id, |s| s.state.is_finished()).await
}

pub fn assert_completed(s: &Status) {
    assert_eq!(s.state, State::Completed, "{s:?}");
}

pub fn sha(path: &Path) -> String {
    testhub::sha256_hex(&std::fs::read(path).unwrap())
}
