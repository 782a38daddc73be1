//! HTTP API tests against the real server in-process (real router, real engine, real test
//! models), one server per test on 127.0.0.1:0. Model tests run on one thread, as all the
//! project's model tests do (two cores shared by parallel tests).

mod admin;
mod auth;
mod bench;
mod deployments;
mod embed;
mod golden;
mod malformed;
mod native;
mod openai;

use serde_json::{Value, json};
use server::ServeOptions;
use server::state::SharedState;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const SMOL: &str = "smol";
pub const GEMMA: &str = "gemma";
pub const FRANCE: &str = "What is the capital of France? Answer in one sentence.";

/// Options for a test server.
#[derive(Default, Clone)]
pub struct Opts {
    pub api_key: Option<String>,
    pub admin_key: Option<String>,
    /// Link the Gemma model too.
    pub gemma: bool,
    pub rate_limit: Option<u32>,
    pub parallel: Option<u32>,
    /// A model file to put into a Hugging Face hub cache too, where its id is
    /// `org/repo/smol` (an id with slashes).
    pub hub: Option<PathBuf>,
    pub models_max: Option<u32>,
}

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub state: SharedState,
    /// The config and data folders (shared with a [`restart`](TestServer::restart)ed server).
    pub dir: std::sync::Arc<tempfile::TempDir>,
    opts: Opts,
}

impl TestServer {
    /// A server with the SmolLM2 model (as `smol`), or `None` outside CI when the model is
    /// not configured (testkit's rule).
    pub async fn start(opts: Opts) -> Option<TestServer> {
        let smol = testkit::smollm2()?;
        let gemma = if opts.gemma {
            Some(testkit::gemma3()?)
        } else {
            None
        };
        Some(Self::with_models(opts, &[(SMOL, Some(smol)), (GEMMA, gemma)]).await)
    }

    /// A server without models (for routes that need none).
    pub async fn empty(opts: Opts) -> TestServer {
        Self::with_models(opts, &[]).await
    }

    async fn with_models(opts: Opts, models: &[(&str, Option<PathBuf>)]) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let models_dir = dir.path().join("data/models");
        std::fs::create_dir_all(&models_dir).unwrap();
        for (name, path) in models {
            if let Some(p) = path {
                std::os::unix::fs::symlink(p, models_dir.join(format!("{name}.gguf"))).unwrap();
            }
        }
        if let Some(p) = &opts.hub {
            let snapshot = dir.path().join("hub/models--org--repo/snapshots/0123abcd");
            std::fs::create_dir_all(&snapshot).unwrap();
            std::os::unix::fs::symlink(p, snapshot.join("smol.gguf")).unwrap();
        }
        Self::serve(std::sync::Arc::new(dir), opts).await
    }

    /// Another server over the same config and data folders, as after a restart of the
    /// process (this one keeps running; close what must not be shared first).
    pub async fn restart(&self) -> TestServer {
        Self::serve(self.dir.clone(), self.opts.clone()).await
    }

    async fn serve(dir: std::sync::Arc<tempfile::TempDir>, opts: Opts) -> TestServer {
        let paths = config::Paths::resolve(
            Some(dir.path().join("config")),
            Some(dir.path().join("data")),
        )
        .unwrap();
        let mut c = config::Config::default();
        c.server.api_key = opts.api_key.clone();
        c.server.admin_api_key = opts.admin_key.clone();
        c.server.host = "127.0.0.1".into();
        c.models.threads = Some(1);
        c.models.ctx_size = 2048;
        c.models.parallel = opts.parallel.unwrap_or(2);
        if let Some(n) = opts.models_max {
            c.models.models_max = n;
        }
        c.sources.ollama = false;
        c.sources.huggingface = opts.hub.is_some();
        c.sources.huggingface_dir = Some(dir.path().join("hub"));
        c.sources.lmstudio = false;
        let serve = ServeOptions {
            paths,
            config: c,
            extra_keys: (Vec::new(), Vec::new()),
            rate_limit: opts.rate_limit,
            preload: None,
            grace: Duration::from_secs(5),
            logs: server::logs::Logs::detached(),
        };
        let state = server::build_state(&serve);
        state.models.rescan();
        // What `serve` does after its scan.
        state.deployments.restore();
        let app = server::app(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap();
        });
        TestServer {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(300))
                .build()
                .unwrap(),
            state,
            dir,
            opts,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn models_dir(&self) -> PathBuf {
        self.dir.path().join("data/models")
    }

    /// POSTs JSON; returns status and body (JSON, or a string for non-JSON bodies).
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.client.get(self.url(path))).await
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    /// POSTs with `stream: true` and returns the `data:` payloads of the SSE response.
    pub async fn stream(&self, path: &str, body: &Value) -> Vec<String> {
        let resp = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        let text = resp.text().await.unwrap();
        sse_data(&text)
    }
}

/// The `data:` lines of an SSE body.
pub fn sse_data(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
        .map(str::to_owned)
        .collect()
}

/// The model ids of a `/v1/models` listing, in order.
pub fn model_ids(models: &Value) -> Vec<&str> {
    models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect()
}

/// A chat request for the SmolLM2 model at temperature 0.
pub fn chat(content: &str, max_tokens: u32) -> Value {
    json!({
        "model": SMOL,
        "messages": [{"role": "user", "content": content}],
        "temperature": 0,
        "max_tokens": max_tokens,
    })
}

/// Replaces values that change from run to run (ids, times, speeds) with placeholders, so
/// a response can be compared with a golden file.
pub fn normalize(v: &Value) -> Value {
    const VOLATILE: &[&str] = &[
        "id",
        "created",
        "created_at",
        "system_fingerprint",
        "item_id",
        "call_id",
    ];
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let v = if VOLATILE.contains(&k.as_str()) && !v.is_null() {
                        json!(format!("<{k}>"))
                    } else if k == "timings" || k.ends_with("_ms") {
                        timings_shape(v)
                    } else if k == "top_logprobs" || k == "top_probs" {
                        alternatives_shape(v)
                    } else if (k == "logprob" || k == "prob") && v.is_number() {
                        // Computed probabilities: other CPUs' kernels give other last
                        // digits, so a golden file pins that the number is there, not its
                        // bits. Settings echoed back (temperature, top_p, ...) stay exact.
                        json!("<float>")
                    } else {
                        normalize(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        _ => v.clone(),
    }
}

/// The runner-up tokens of a logprobs entry: the first (the sampled token at temperature 0)
/// is kept; which tokens come next can swap between CPUs when their probabilities are close,
/// so only their fields are pinned.
fn alternatives_shape(v: &Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, e)| match e {
                    Value::Object(o) if i > 0 => Value::Object(
                        o.keys().map(|k| (k.clone(), json!("<alternative>"))).collect(),
                    ),
                    e => normalize(e),
                })
                .collect(),
        ),
        other => normalize(other),
    }
}

/// Keeps the keys of a timings object; numbers become `"<number>"`.
fn timings_shape(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), timings_shape(v)))
                .collect(),
        ),
        Value::Number(_) => json!("<number>"),
        other => other.clone(),
    }
}

/// Compares `actual` with `tests/golden/<name>.json`. `UPDATE_GOLDEN=1` (re)writes the
/// file; a missing file fails (a golden test must have something to compare with).
pub fn assert_golden(name: &str, actual: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    let pretty = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&path, &pretty).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "golden file {} is missing (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    let expected: Value = serde_json::from_str(&expected).unwrap();
    assert_eq!(
        &expected,
        actual,
        "{name}: the response differs from {}; actual:\n{pretty}",
        path.display()
    );
}
