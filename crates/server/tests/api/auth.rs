//! The auth matrix: every route of the OpenAPI document × no key, a wrong key, an
//! inference key and an admin key (an inference key never opens management). Also the
//! per-key rate limit.

use super::*;

/// A concrete path for a documented one.
fn concrete(path: &str) -> String {
    path.replace("{id}", "0")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_checks_keys() {
    // Download searches reach a hub: a local one that behaves like Hugging Face.
    let hub = testhub::Hub::start().await;
    let hub_url = hub.url.clone();
    let s = TestServer::empty(
        Opts {
            api_key: Some("inference-key".into()),
            admin_key: Some("admin-key".into()),
            ..Default::default()
        }
        // The matrix sends many wrong keys from one address; their throttle is tested in
        // the hostile suite.
        .tweak(move |c| {
            c.server.auth_failures_per_minute = 1_000_000;
            c.download.hf_endpoint = hub_url.clone();
        }),
    )
    .await;
    let (status, doc) = s.get("/openapi.json").await;
    assert_eq!(status, 200, "the API document is public");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() > 40, "{} paths documented", paths.len());
    let mut checked = 0;
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let url = s.url(&concrete(path));
            let public = op
                .get("security")
                .is_some_and(|s| s.as_array().is_some_and(Vec::is_empty));
            // Reading the hub shows nothing of this machine: an inference key may.
            let reads_hub = method == "get"
                && matches!(
                    path.as_str(),
                    "/api/download/search"
                        | "/api/download/files"
                        | "/api/models/search"
                        | "/api/models/categories"
                        | "/api/models/{id}/info"
                );
            // LM Studio's REST API answers like the OpenAI routes: inference.
            let lm_studio = path.starts_with("/api/v0/");
            // Ollama's routes: an inference key, admin for those that change the models.
            let ollama = server::error::OLLAMA_ROUTES.contains(&path.as_str());
            let ollama_admin = matches!(
                path.as_str(),
                "/api/pull" | "/api/delete" | "/api/copy" | "/api/create" | "/api/push"
            );
            let admin_only = ollama_admin
                || !ollama && !reads_hub && !lm_studio && path.starts_with("/api/")
                || path.starts_with("/ws/")
                || server::api::sessions::is_alias(path)
                || path.starts_with("/slots/")
                // Server tools: admin unless `tools.inference_keys` (off here).
                || path == "/tools"
                || (method != "get" && (path == "/props" || path == "/lora-adapters"));
            if path == "/api/system/shutdown" {
                continue; // checked below, last
            }
            for (key, name) in [
                (None, "none"),
                (Some("wrong"), "wrong"),
                (Some("inference-key"), "inference"),
                (Some("admin-key"), "admin"),
            ] {
                let mut req = s
                    .client
                    .request(method.to_uppercase().parse().unwrap(), &url)
                    .header("content-type", "application/json")
                    .body("{}");
                if let Some(k) = key {
                    // Both header forms are accepted; alternate between them.
                    req = if checked % 2 == 0 {
                        req.bearer_auth(k)
                    } else {
                        req.header("x-api-key", k)
                    };
                }
                let (status, body) = s.send(req).await;
                let what = format!("{method} {path} with {name} key: {status} {body}");
                // A server without models is not ready: `/readiness` says so with 503.
                let unready = path == "/readiness" && status == 503;
                // 501: routes that say what is not offered (Ollama's create and push).
                assert!(status < 500 || unready || status == 501, "{what}");
                let denied = status == 401 || status == 403;
                let should_deny = !public
                    && match name {
                        "none" | "wrong" => true,
                        "inference" => admin_only,
                        _ => false,
                    };
                assert_eq!(denied, should_deny, "{what}");
                if denied {
                    // Ollama's shape is `{"error": "..."}`.
                    assert!(
                        body["error"]["message"].is_string() || ollama && body["error"].is_string(),
                        "{what}"
                    );
                    let expected = if name == "inference" { 403 } else { 401 };
                    assert_eq!(status, expected, "{what}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 150, "{checked} requests");
    // Shutdown: refused without the admin key, accepted with it.
    let url = s.url("/api/system/shutdown");
    let (status, _) = s
        .send(s.client.post(&url).bearer_auth("inference-key"))
        .await;
    assert_eq!(status, 403);
    let (status, _) = s.send(s.client.post(&url).bearer_auth("admin-key")).await;
    assert_eq!(status, 202);
    let (status, body) = s
        .send(s.client.get(s.url("/v1/models")).bearer_auth("admin-key"))
        .await;
    assert_eq!(status, 503, "shutting down: {body}");
    let (status, _) = s.get("/health").await;
    assert_eq!(status, 200, "health stays up while stopping");
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_per_key() {
    let s = TestServer::empty(Opts {
        api_key: Some("k1".into()),
        rate_limit: Some(3),
        ..Default::default()
    })
    .await;
    for _ in 0..3 {
        let (status, _) = s
            .send(s.client.get(s.url("/v1/models")).bearer_auth("k1"))
            .await;
        assert_eq!(status, 200);
    }
    let resp = s
        .client
        .get(s.url("/v1/models"))
        .bearer_auth("k1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!((1..=60).contains(&retry_after(&resp)));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    // Health is never limited.
    let (status, _) = s.get("/health").await;
    assert_eq!(status, 200);
}
