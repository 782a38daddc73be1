//! The download routes under attack: malformed bodies, task ids that do not exist or do
//! not parse, file names that climb out of the models folder (from the client and from a
//! hostile hub's tree), inputs far longer than any hub id, and pages of another origin
//! starting or deleting downloads. Each is a 4xx in the management API's shape, nothing is
//! written outside the models and partial folders, and the server goes on serving.

use super::*;
use serde_json::{Value, json};
use testhub::{Hub, RepoMeta, gguf_model};

const EVIL: &str = "https://evil.example";

async fn server() -> Option<(Hub, TestServer)> {
    let hub = Hub::start().await;
    hub.add_repo(
        "org/tiny-GGUF",
        RepoMeta::default(),
        &[("tiny-Q4_K_M.gguf", gguf_model("tiny", 15))],
    );
    // A hub whose tree names a file outside the repository.
    hub.add_repo(
        "org/evil",
        RepoMeta::default(),
        &[("../../evil-Q4_K_M.gguf", gguf_model("evil", 15))],
    );
    let url = hub.url.clone();
    let s = TestServer::start(Opts::default().tweak(move |c| c.download.hf_endpoint = url.clone()))
        .await?;
    Some((hub, s))
}

#[track_caller]
fn status_is(got: (u16, Value), status: u16, words: &str) {
    let (code, body) = got;
    assert_eq!(code, status, "{body}");
    assert_eq!(body["error"]["status"], status, "management shape: {body}");
    let message = error_message(&body);
    assert!(message.contains(words), "{words:?} in {body}");
}

async fn raw(s: &TestServer, method: reqwest::Method, path: &str, body: &str) -> (u16, Value) {
    s.send(
        s.client
            .request(method, s.url(path))
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_download_routes_refuse_what_they_cannot_use() {
    let Some((_hub, s)) = server().await else {
        return;
    };
    use reqwest::Method;
    // Malformed and mistyped bodies.
    status_is(
        raw(&s, Method::POST, "/api/download/start", "{\"name\": ").await,
        400,
        "not valid JSON",
    );
    status_is(
        raw(&s, Method::POST, "/api/download/start", "{\"name\": 5}").await,
        400,
        "name",
    );
    status_is(
        raw(
            &s,
            Method::POST,
            "/api/download/start",
            "{\"name\": \"a\", \"x\": 1}",
        )
        .await,
        400,
        "unknown field",
    );
    status_is(
        raw(&s, Method::POST, "/api/download/pause", "").await,
        400,
        "id",
    );
    status_is(
        raw(&s, Method::POST, "/api/download/resume", "[1,2]").await,
        400,
        "invalid",
    );
    // Task ids that do not exist or do not parse.
    for (method, path, body) in [
        (Method::POST, "/api/download/pause", "{\"id\": 424242}"),
        (Method::POST, "/api/download/resume", "{\"id\": \"7\"}"),
        (Method::DELETE, "/api/download/delete?id=99", ""),
        (Method::DELETE, "/api/download/delete", "{\"id\": -1}"),
        (Method::GET, "/api/downloads/abc/status", ""),
        (
            Method::PUT,
            "/api/downloads/99999999999999999999999999/pause",
            "",
        ),
        (Method::PUT, "/api/downloads/1/resume", ""),
    ] {
        status_is(raw(&s, method, path, body).await, 404, "no download task");
    }
    // File names that climb out: asked for by the client, or listed by the hub.
    status_is(
        s.post(
            "/api/download/start",
            &json!({"name": "org/tiny-GGUF", "file": "../../../etc/passwd"}),
        )
        .await,
        404,
        "has no file",
    );
    status_is(
        s.post("/api/download/start", &json!({"name": "../../x:Q4_K_M"}))
            .await,
        400,
        "not",
    );
    status_is(
        s.post("/api/download/start", &json!({"name": "org/evil:Q4_K_M"}))
            .await,
        400,
        "refusing the file path",
    );
    status_is(
        s.post(
            "/api/download/start",
            &json!({"name": "http://127.0.0.1:9/x/..%2F..%2Fevil.gguf"}),
        )
        .await,
        400,
        "does not name a .gguf file",
    );
    status_is(
        s.post(
            "/api/download/start",
            &json!({"name": "org/tiny-GGUF", "revision": "../../x"}),
        )
        .await,
        404,
        "",
    );
    // Inputs far longer than any hub id.
    let long = "a".repeat(100_000);
    status_is(
        s.post("/api/download/start", &json!({ "name": long }))
            .await,
        400,
        "at most 1024",
    );
    status_is(
        s.get(&format!("/api/download/search?q={}", "a".repeat(5000)))
            .await,
        400,
        "at most 1024",
    );
    status_is(
        s.get("/api/download/search?limit=100000").await,
        400,
        "limit",
    );
    status_is(
        s.get("/api/download/search?category=nope").await,
        400,
        "not a category",
    );
    let (_, tasks) = s.get("/api/download/tasks").await;
    assert_eq!(tasks["tasks"], json!([]), "nothing was queued");
    let outside = s.dir.path().join("evil-Q4_K_M.gguf");
    assert!(!outside.exists());
    still_serves(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_page_cannot_start_or_delete_downloads() {
    let Some((hub, s)) = server().await else {
        return;
    };
    for (method, path, body) in [
        (
            reqwest::Method::POST,
            "/api/download/start",
            r#"{"name":"org/tiny-GGUF"}"#,
        ),
        (
            reqwest::Method::POST,
            "/api/downloads/start",
            r#"{"name":"org/tiny-GGUF"}"#,
        ),
        (reqwest::Method::DELETE, "/api/download/delete?id=0", ""),
        (reqwest::Method::PUT, "/api/downloads/0/pause", ""),
    ] {
        let (status, body) = s
            .send(
                s.client
                    .request(method, s.url(path))
                    .header("origin", EVIL)
                    .header("content-type", "text/plain")
                    .body(body),
            )
            .await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(
            error_message(&body).contains("server.cors_origins"),
            "{body}"
        );
    }
    assert_eq!(hub.requests("org/tiny-GGUF", "tiny-Q4_K_M.gguf"), 0);
    let (_, tasks) = s.get("/api/download/tasks").await;
    assert_eq!(tasks["tasks"], json!([]));
    still_serves(&s).await;
}
