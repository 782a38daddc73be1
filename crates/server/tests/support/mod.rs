//! The test server shared by the server's test binaries (`api`, `hostile`): the real router,
//! engine and test models in-process on 127.0.0.1:0.

#![allow(dead_code)] // each binary uses its own part

use serde_json::{Value, json};
use server::ServeOptions;
use server::state::SharedState;
use std::path::PathBuf;
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
    /// `serve -m` and its names (`--alias`, `--tags`), single-model mode.
    pub routing: service::Routing,
    /// `serve`'s launch-parameter flags.
    pub launch: serde_json::Map<String, Value>,
    /// Any other configuration, applied last (after the fields above).
    pub tweak: Option<Tweak>,
    /// Vertex AI's predict route (what `AIP_MODE=PREDICTION` turns on).
    pub vertex: Option<server::api::vertex::Vertex>,
}

/// A change to the test server's configuration.
pub type Tweak = std::sync::Arc<dyn Fn(&mut config::Config) + Send + Sync>;

impl Opts {
    /// These options with `f` applied to the configuration.
    pub fn tweak(mut self, f: impl Fn(&mut config::Config) + Send + Sync + 'static) -> Self {
        self.tweak = Some(std::sync::Arc::new(f));
        self
    }

    /// These options with Vertex AI's predict route on `/predict`, as `AIP_MODE=PREDICTION`
    /// serves it.
    pub fn predict(mut self) -> Self {
        self.vertex = Some(server::api::vertex::Vertex {
            predict: "/predict".into(),
            health: None,
            port: None,
        });
        self
    }
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
        c.server.rate_limit_per_minute = opts.rate_limit.unwrap_or(0);
        if let Some(n) = opts.models_max {
            c.models.models_max = n;
        }
        c.sources.ollama = false;
        c.sources.huggingface = opts.hub.is_some();
        c.sources.huggingface_dir = Some(dir.path().join("hub"));
        c.sources.lmstudio = false;
        // No test reaches the real hub: a closed port unless a test points it at testhub.
        c.download.hf_endpoint = "http://127.0.0.1:9".into();
        if let Some(t) = &opts.tweak {
            t(&mut c);
        }
        let c_limits = c.limits.clone();
        let serve = ServeOptions {
            paths,
            config: c,
            extra_keys: (Vec::new(), Vec::new()),
            routing: opts.routing.clone(),
            launch: opts.launch.clone(),
            grace: Duration::from_secs(5),
            logs: server::logs::Logs::detached(),
        };
        let state = server::build_state(&serve);
        // Models run in worker processes of the real binary (`models.isolation`), unless a
        // test's tweak says `thread`.
        state.models.set_worker_program(testkit::dashboard_exe());
        state.models.rescan();
        // What `serve` does after its scan.
        state.restore_downloads().await;
        state.deployments.restore().await;
        state.tools.start().await.expect("the MCP servers config");
        let app = server::app_with(state.clone(), opts.vertex.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // What `serve` does after binding (the Host guard asks whether it is loopback).
        state.set_bound(addr);
        let limits = c_limits;
        tokio::spawn(async move {
            server::listen::serve_on(listener, app, &limits, std::future::pending()).await;
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

    /// GETs a text body (`/metrics`).
    pub async fn text(&self, path: &str) -> String {
        let resp = self.client.get(self.url(path)).send().await.unwrap();
        resp.text().await.unwrap()
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

/// The `Retry-After` seconds of a response (429, 503); panics without one.
pub fn retry_after(resp: &reqwest::Response) -> u64 {
    resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
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
