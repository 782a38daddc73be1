//! Models in worker processes (`models.isolation = "process"`, the default, which the
//! whole API suite runs in): a worker killed mid-stream, a file that makes llama.cpp abort
//! while loading, and the in-process mode.

use super::*;
use futures_util::StreamExt;

/// The worker of a loaded model, from `/api/models`.
async fn worker_pid(s: &TestServer, id: &str) -> Option<u64> {
    let (_, list) = s.get("/api/models").await;
    let m = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap()
        .clone();
    m["worker"]["pid"].as_u64()
}

fn kill_9(pid: u64) {
    let ok = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn gemma_chat(max_tokens: u32) -> Value {
    json!({"model": GEMMA, "prompt": "The capital of France is", "max_tokens": max_tokens,
        "temperature": 0})
}

/// Waits (generously: 60 s) for an event of `kind` on the feed and returns its data.
async fn event<S>(ws: &mut S, kind: &str) -> Value
where
    S: futures_util::Stream<
            Item = Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>,
        > + Unpin,
{
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} event"))
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        if v["type"] == kind {
            return v["data"].clone();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_worker_ends_its_stream_with_an_error_and_the_model_comes_back() {
    let Some(s) = TestServer::start(Opts {
        gemma: true,
        ..Opts::default()
    })
    .await
    else {
        return;
    };
    let ws_url = s.base.replace("http://", "ws://") + "/ws/events";
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    // Both models loaded, each in a worker of its own.
    let (status, _) = s.post("/v1/completions", &gemma_chat(2)).await;
    assert_eq!(status, 200);
    let mut body = chat("Write a very long story about the sea.", 2000);
    body["stream"] = json!(true);
    let resp = s
        .client
        .post(s.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let smol_pid = worker_pid(&s, SMOL).await.expect("smol runs in a worker");
    let gemma_pid = worker_pid(&s, GEMMA).await.expect("gemma runs in a worker");
    assert_ne!(smol_pid, gemma_pid);
    assert_ne!(u64::from(std::process::id()), smol_pid);

    // Read until the first token, then kill the worker under the stream.
    let mut chunks = resp.bytes_stream();
    let mut text = String::new();
    while !text.contains("\"content\"") {
        let b = tokio::time::timeout(Duration::from_secs(60), chunks.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&b));
    }
    kill_9(smol_pid);
    // The stream ends with an error event, not a hang.
    let rest = tokio::time::timeout(Duration::from_secs(60), async {
        let mut rest = String::new();
        while let Some(b) = chunks.next().await {
            rest.push_str(&String::from_utf8_lossy(&b.unwrap()));
        }
        rest
    })
    .await
    .expect("the stream hangs after its worker died");
    let last = sse_data(&rest).into_iter().rev().find(|d| d != "[DONE]").unwrap();
    let err: Value = serde_json::from_str(&last).unwrap();
    let msg = err["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(
        msg,
        format!("model {SMOL} stopped unexpectedly: killed by SIGKILL"),
        "{rest}"
    );
    assert_eq!(err["error"]["code"], 503, "{err}");
    let crashed = event(&mut ws, "model.crashed").await;
    assert_eq!(crashed["id"], SMOL);
    assert_eq!(crashed["reason"], "killed by SIGKILL");

    // The other model went on in its own worker.
    let (status, out) = s.post("/v1/completions", &gemma_chat(4)).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(worker_pid(&s, GEMMA).await, Some(gemma_pid));
    // The crashed one is loaded again by the next request, in a new worker.
    let (status, out) = s.post("/v1/chat/completions", &chat(FRANCE, 4)).await;
    assert_eq!(status, 200, "{out}");
    let again = worker_pid(&s, SMOL).await.unwrap();
    assert_ne!(again, smol_pid);
    let (status, _) = s.post("/v1/completions", &gemma_chat(4)).await;
    assert_eq!(status, 200);
}

/// A file our reader accepts but llama.cpp aborts on while loading
/// (`GGML_ASSERT(n_expert_used_max <= hparams.n_expert)`: experts used, none declared).
fn aborting_model() -> Vec<u8> {
    let mut m = gguf::fixtures::LlamaLike::new("Abort", "llama", 1, 2048, 300);
    m.n_embd = 32;
    m.n_ff = 64;
    m.n_layer = 1;
    m.with_tensor_data = true;
    let mut w = m.writer();
    w.kv("llama.expert_used_count", 2u32);
    w.to_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_makes_llama_cpp_abort_while_loading_fails_with_the_reason() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    std::fs::write(s.models_dir().join("abort.gguf"), aborting_model()).unwrap();
    let (status, _) = s.post("/api/models/scan", &json!({})).await;
    assert_eq!(status, 200);
    let (status, out) = s.post("/api/models/abort/load", &json!({})).await;
    assert_eq!(status, 400, "{out}");
    let msg = out["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("model abort stopped unexpectedly: killed by SIGABRT")
            && msg.contains("GGML_ASSERT"),
        "{msg}"
    );
    let (_, list) = s.get("/api/models").await;
    let m = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "abort")
        .unwrap()
        .clone();
    assert_eq!(m["state"], "failed", "{m}");
    assert!(m["error"].as_str().unwrap().contains("SIGABRT"), "{m}");
    // The server is up and the other models answer.
    let (status, out) = s.post("/v1/chat/completions", &chat(FRANCE, 4)).await;
    assert_eq!(status, 200, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn thread_isolation_runs_models_in_the_server_process() {
    let Some(s) = TestServer::start(Opts::default().tweak(|c| {
        c.models.isolation = "thread".into();
    }))
    .await
    else {
        return;
    };
    let (status, out) = s.post("/v1/chat/completions", &chat(FRANCE, 4)).await;
    assert_eq!(status, 200, "{out}");
    let (_, list) = s.get("/api/models").await;
    assert_eq!(list["models"][0]["state"], "loaded");
    assert!(list["models"][0]["worker"].is_null(), "{list}");
}
