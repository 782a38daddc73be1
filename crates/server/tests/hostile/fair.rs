//! Fair sharing and nothing lost: one client's `keep_alive` cannot unload a model under
//! others nor pin it forever; config writes keep the file's own layer and never lose an
//! update; slot files are private and never half-written; a locked database does not stall
//! unrelated requests.

use super::*;
use serde_json::{Value, json};
use std::time::Duration;

/// The model's status as the manager sees it (in-flight requests, keep-alive expiry).
fn status(s: &TestServer, id: &str) -> manager::ModelStatus {
    s.state
        .models
        .manager()
        .statuses()
        .into_iter()
        .find(|st| st.id == id)
        .unwrap_or_else(|| panic!("{id} was never loaded"))
}

/// Waits until no request holds the model (a finished response releases its lease just
/// after the client has read the end).
async fn until_idle(s: &TestServer, id: &str) {
    for _ in 0..600 {
        if status(s, id).in_flight == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{id} still has requests in flight");
}

/// `/api/models`' entry for a model.
async fn listed(s: &TestServer, id: &str) -> Value {
    let (status, body) = s.get("/api/models").await;
    assert_eq!(status, 200, "{body}");
    body["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} not listed: {body}"))
}

fn chat_keep_alive(max_tokens: u32, keep_alive: Value) -> Value {
    let mut body = chat(FRANCE, max_tokens);
    body["keep_alive"] = keep_alive;
    body
}

#[tokio::test]
async fn keep_alive_zero_does_not_unload_a_model_under_another_stream() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    // A long stream (it ignores the end of text, so it runs its whole length).
    let mut long = chat(FRANCE, 300);
    long["stream"] = json!(true);
    long["ignore_eos"] = json!(true);
    let mut stream = s
        .client
        .post(s.url("/v1/chat/completions"))
        .json(&long)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let first = stream.chunk().await.unwrap().expect("a first chunk");
    assert!(!first.is_empty());

    // Another client asks for the model to be unloaded after its request.
    let (status_code, body) = s
        .post("/v1/chat/completions", &chat_keep_alive(4, json!(0)))
        .await;
    assert_eq!(status_code, 200, "{body}");
    assert!(
        status(&s, SMOL).in_flight >= 1,
        "the stream must still be running for this case to mean anything (raise its length)"
    );

    // The stream runs to its end on the same model...
    let mut rest = String::from_utf8_lossy(&first).into_owned();
    while let Some(c) = stream.chunk().await.unwrap() {
        rest.push_str(&String::from_utf8_lossy(&c));
    }
    let events = sse_data(&rest);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{rest}");
    assert!(
        rest.contains(r#""finish_reason":"length""#),
        "the stream was cut short: {rest}"
    );
    // ...and the model is not unloaded when it ends: its keep-alive (the server's) is the
    // longer one, and the `0` does not stick to the model.
    until_idle(&s, SMOL).await;
    assert_eq!(listed(&s, SMOL).await["state"], "loaded");
    still_serves(&s).await;
    assert_eq!(listed(&s, SMOL).await["state"], "loaded", "a later request kept it");
}

#[tokio::test]
async fn keep_alive_zero_alone_unloads_as_ollama_does() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let (code, body) = s
        .post("/v1/chat/completions", &chat_keep_alive(4, json!(0)))
        .await;
    assert_eq!(code, 200, "{body}");
    until_idle(&s, SMOL).await;
    assert_eq!(listed(&s, SMOL).await["state"], "unloaded");
    still_serves(&s).await;
    // The next requests (no keep_alive) keep the server's default: no reload loop.
    until_idle(&s, SMOL).await;
    assert_eq!(listed(&s, SMOL).await["state"], "loaded");
}

#[tokio::test]
async fn a_huge_or_forever_keep_alive_is_clamped_to_the_configured_maximum() {
    let Some(s) =
        TestServer::start(Opts::default().tweak(|c| c.models.keep_alive_max_seconds = 600)).await
    else {
        return;
    };
    for asked in [json!("1000h"), json!(-1), json!(10_000_000)] {
        let (code, body) = s
            .post("/v1/chat/completions", &chat_keep_alive(4, asked.clone()))
            .await;
        assert_eq!(code, 200, "{body}");
        until_idle(&s, SMOL).await;
        let expires = listed(&s, SMOL).await["expires_in_seconds"].clone();
        let secs = expires.as_u64().unwrap_or_else(|| {
            panic!("keep_alive {asked}: the model must expire, not stay forever: {expires}")
        });
        assert!(secs <= 600, "keep_alive {asked}: expires in {secs} s, above the maximum");
    }
    still_serves(&s).await;
}

#[tokio::test]
async fn clients_keep_alive_is_ignored_when_config_forbids_it() {
    let Some(s) =
        TestServer::start(Opts::default().tweak(|c| c.models.client_keep_alive = false)).await
    else {
        return;
    };
    let (code, body) = s
        .post("/v1/chat/completions", &chat_keep_alive(4, json!(0)))
        .await;
    assert_eq!(code, 200, "{body}");
    until_idle(&s, SMOL).await;
    let entry = listed(&s, SMOL).await;
    assert_eq!(entry["state"], "loaded", "{entry}");
    assert_eq!(entry["expires_in_seconds"], Value::Null, "the server's default: never");
    still_serves(&s).await;
}
