//! Downloads through the real binary, against testhub's local Hugging Face hub and CDN
//! (`HF_ENDPOINT` is the only difference from the real hub): `serve` killed with SIGKILL in
//! the middle of a download resumes it after a restart without starting over, and the file
//! is the hub's to the last byte; `pull` downloads a model (no progress bar when stderr is
//! not a terminal), Ctrl-C pauses it and the same command resumes it; `download search`
//! prints a table, of the Ollama library's saved pages with `--source ollama`.
//!
//! No test waits on timing: the hub stalls a transfer at a byte offset, and the tests wait
//! (with generous limits against hangs) for the server to have that many bytes.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use testhub::{Hub, RepoMeta, gguf_model, sha256_hex};

const REPO: &str = "org/tiny-GGUF";
const Q4: &str = "tiny-Q4_K_M.gguf";
const PATIENCE: Duration = Duration::from_secs(120);

struct Dirs {
    dir: tempfile::TempDir,
}

impl Dirs {
    fn new() -> Dirs {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Dirs { dir }
    }

    /// The binary with these folders and `HF_ENDPOINT` set to the hub, nothing else of
    /// this machine's environment.
    fn command(&self, hub: &Hub) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_llama-dashboard"));
        c.env_clear()
            .env("HOME", self.dir.path().join("home"))
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HF_ENDPOINT", &hub.url)
            .args(["--config-dir", &self.path("c")])
            .args(["--data-dir", &self.path("d")]);
        c
    }

    fn path(&self, p: &str) -> String {
        self.dir.path().join(p).to_string_lossy().into_owned()
    }

    fn model_file(&self) -> PathBuf {
        self.dir.path().join("d/models").join(REPO).join(Q4)
    }
}

/// A GGUF model padded to 40 MiB: larger than the transfers' flush interval (16 MiB), so
/// that a kill past it leaves flushed bytes to resume from.
fn hub_file() -> Vec<u8> {
    let mut bytes = gguf_model("tiny", 15);
    bytes.resize(40 << 20, 0);
    bytes
}

async fn hub() -> Hub {
    let hub = Hub::start().await;
    hub.add_repo(
        REPO,
        RepoMeta::default(),
        &[
            (Q4, hub_file()),
            ("tiny-Q8_0.gguf", gguf_model("tiny eight", 7)),
        ],
    );
    hub
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Serve {
    child: Child,
    base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve(dirs: &Dirs, hub: &Hub) -> Serve {
    let port = free_port();
    let child = dirs
        .command(hub)
        .args(["serve", "--port", &port.to_string(), "-t", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let s = Serve {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let t0 = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("{}/health", s.base)).await
            && r.status() == 200
        {
            return s;
        }
        assert!(t0.elapsed() < PATIENCE, "the server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn task(s: &Serve, id: u64) -> Value {
    let r = reqwest::get(format!("{}/api/downloads/{id}/status", s.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn wait_task(s: &Serve, id: u64, mut done: impl FnMut(&Value) -> bool) -> Value {
    let t0 = Instant::now();
    loop {
        let t = task(s, id).await;
        assert_ne!(t["state"], "failed", "{t}");
        if done(&t) {
            return t;
        }
        assert!(t0.elapsed() < PATIENCE, "{t}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sha(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_killed_with_the_server_resumes_after_a_restart() {
    let hub = hub().await;
    let dirs = Dirs::new();
    let len = hub_file().len() as u64;
    let half = len / 2;
    hub.stall(REPO, Q4, half);
    let mut first = serve(&dirs, &hub).await;
    let r = reqwest::Client::new()
        .post(format!("{}/api/download/start", first.base))
        .json(&json!({"name": format!("{REPO}:Q4_K_M")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"].as_u64().unwrap();
    wait_task(&first, id, |t| t["done"] == half).await;
    // SIGKILL: no chance to flush or record anything more.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    hub.release();
    assert!(
        !dirs.model_file().exists(),
        "no model before it is verified"
    );

    let second = serve(&dirs, &hub).await;
    // download.resume_on_start (on by default): it goes on by itself, under its id.
    let done = wait_task(&second, id, |t| t["state"] == "completed").await;
    assert_eq!(done["done"], len);
    assert_eq!(sha(&dirs.model_file()), sha256_hex(&hub_file()));
    let served = hub.served(REPO, Q4);
    println!(
        "killed at {half} of {len} bytes; the hub served {served} in all ({} again)",
        served - len
    );
    assert!(
        served < len + half,
        "the restart fetched the file from zero again: {served} bytes served"
    );
    // The model is listed by the restarted server.
    let models: Value = reqwest::get(format!("{}/v1/models", second.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "tiny-Q4_K_M"),
        "{models}"
    );
}

/// Runs the binary to its end on a blocking thread (the hub answers on this runtime).
async fn run(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_downloads_pauses_on_ctrl_c_and_resumes_when_run_again() {
    let hub = hub().await;
    let dirs = Dirs::new();

    // `download search` prints a table.
    let mut c = dirs.command(&hub);
    c.args(["download", "search", "tiny"]);
    let out = run(c).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("MODEL") && stdout.contains(REPO),
        "{stdout}"
    );
    // `--source ollama` reads the hub's saved Ollama library pages.
    let mut c = dirs.command(&hub);
    c.env("LLAMA_DASHBOARD_DOWNLOAD_OLLAMA_LIBRARY_URL", &hub.url)
        .args(["download", "search", "--source", "ollama", "qwen"]);
    let out = run(c).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("CAPABILITIES") && stdout.contains("PULLS"),
        "{stdout}"
    );
    let qwen3 = stdout
        .lines()
        .find(|l| l.contains("qwen3 "))
        .unwrap_or_default();
    assert!(
        qwen3.contains("tools, thinking") && qwen3.contains("8.2M"),
        "{stdout}"
    );

    // A pull interrupted by Ctrl-C in the middle of the file.
    let len = hub_file().len() as u64;
    let half = len / 2;
    hub.stall(REPO, Q4, half);
    let mut c = dirs.command(&hub);
    c.args(["pull", &format!("{REPO}:Q4_K_M")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    let t0 = Instant::now();
    while hub.served(REPO, Q4) < half {
        assert!(t0.elapsed() < PATIENCE, "the pull did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("paused") && stderr.contains("run the same command again"),
        "{stderr}"
    );
    assert!(!dirs.model_file().exists());
    hub.release();

    // The same command resumes the paused task.
    let mut c = dirs.command(&hub);
    c.args(["pull", &format!("{REPO}:Q4_K_M")]);
    let out = run(c).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("resuming"), "{stderr}");
    assert!(
        stdout.contains("pulled org/tiny-GGUF/tiny-Q4_K_M.gguf")
            && stdout.contains("model tiny-Q4_K_M"),
        "{stdout}"
    );
    assert!(
        !stderr.contains("=>"),
        "no progress bar without a terminal: {stderr}"
    );
    assert_eq!(sha(&dirs.model_file()), sha256_hex(&hub_file()));
    let served = hub.served(REPO, Q4);
    assert!(
        served < len + half,
        "fetched from zero again: {served} of {len}"
    );

    // An Ollama model from a plain-http registry, with --insecure.
    hub.add_ollama_model(
        "library",
        "tiny",
        "latest",
        &[("application/vnd.ollama.image.model", gguf_model("tiny", 15))],
    );
    let name = format!(
        "{}/library/tiny:latest",
        hub.url.strip_prefix("http://").unwrap()
    );
    let mut c = dirs.command(&hub);
    c.args(["pull", "--insecure", &name]);
    let out = run(c).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("model {name}")),
        "{}",
        text(&out.stdout)
    );

    // A quantization the repository does not have is explained, with what it has.
    let mut c = dirs.command(&hub);
    c.args(["pull", &format!("{REPO}:Q2_K")]);
    let out = run(c).await;
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no Q2_K") && stderr.contains("Q8_0"),
        "{stderr}"
    );
}
