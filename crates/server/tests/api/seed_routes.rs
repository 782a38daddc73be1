//! Seed 003's own routes, aliases of the same handlers: `/models/{id}` (and `/v1/models/{id}`),
//! `/readiness`, `/health`, `/metrics` with its request, duration, token and error families.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn readiness_follows_the_models() {
    // No model at all.
    let s = TestServer::empty(Opts::default()).await;
    let (status, body) = s.get("/readiness").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(
        body["reason"], "no model found in the model folders",
        "{body}"
    );
    assert_eq!(body["models"]["listed"], 0);
    // `/health` is about the process, not the models.
    let (status, body) = s.get("/health").await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));

    // A model cut short (an interrupted download) cannot be loaded.
    let Some(smol) = testkit::smollm2() else {
        return;
    };
    let bytes = std::fs::read(&smol).unwrap();
    std::fs::write(s.models_dir().join("cut.gguf"), &bytes[..bytes.len() / 2]).unwrap();
    s.state.models.rescan();
    let (status, body) = s.get("/readiness").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["reason"].as_str().unwrap().contains("incomplete"),
        "{body}"
    );
    assert_eq!(
        body["models"],
        json!({"listed": 1, "loaded": 0, "loadable": 0})
    );

    // A whole model: loadable, so ready before anything is loaded.
    std::os::unix::fs::symlink(&smol, s.models_dir().join("smol.gguf")).unwrap();
    s.state.models.rescan();
    let (status, body) = s.get("/readiness").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(
        body["models"],
        json!({"listed": 2, "loaded": 0, "loadable": 1})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_without_autoload_waits_for_a_load() {
    let Some(s) = TestServer::start(
        Opts {
            admin_key: Some("admin".into()),
            ..Default::default()
        }
        .tweak(|c| c.models.autoload = false),
    )
    .await
    else {
        return;
    };
    // Public, like /health: a probe has no key.
    let (status, body) = s.get("/readiness").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["reason"].as_str().unwrap().contains("models.autoload"),
        "{body}"
    );
    let (status, body) = s
        .send(
            s.client
                .post(s.url("/api/models/smol/load"))
                .bearer_auth("admin")
                .json(&json!({})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s.get("/readiness").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["models"]["loaded"], 1, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_model_by_id_on_every_prefix() {
    let Some(smol) = testkit::smollm2() else {
        return;
    };
    let Some(s) = TestServer::start(Opts {
        hub: Some(smol),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let (status, list) = s.get("/v1/models").await;
    assert_eq!(status, 200);
    for (prefix, id) in [
        ("/v1/models/", "smol"),
        ("/models/", "smol"),
        // An id with `/`: percent-encoded or not.
        ("/v1/models/", "org%2Frepo%2Fsmol"),
        ("/models/", "org/repo/smol"),
    ] {
        let (status, body) = s.get(&format!("{prefix}{id}")).await;
        assert_eq!(status, 200, "{prefix}{id}: {body}");
        let listed = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == body["id"])
            .unwrap_or_else(|| panic!("{body} is not listed"));
        assert_eq!(&body, listed, "{prefix}{id}");
    }
    let (status, body) = s.get("/api/v0/models/org/repo/smol").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], "org/repo/smol");
    for path in ["/v1/models/nope", "/models/nope"] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    }
}

/// Seed 003's metric families: requests, durations, tokens and errors.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_have_seed_003s_families() {
    let Some(s) =
        TestServer::start(Opts::default().tweak(|c| c.server.metrics_endpoint = true)).await
    else {
        return;
    };
    let (status, _) = s.post("/chat/completions", &chat(FRANCE, 4)).await;
    assert_eq!(status, 200);
    let (status, _) = s.get("/models/nope").await;
    assert_eq!(status, 404);
    let text = s.text("/metrics").await;
    for family in [
        "http_requests_total",
        "http_request_duration_seconds",
        "llamacpp:tokens_predicted_total",
        "http_request_errors_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing:\n{text}"
        );
    }
    assert!(
        text.contains(
            r#"http_request_errors_total{method="GET",route="/models/{id}",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(
        !text.contains(r#"http_request_errors_total{method="POST",route="/chat/completions""#),
        "a success is not an error: {text}"
    );
}
