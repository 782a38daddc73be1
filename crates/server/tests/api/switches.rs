//! llama-server's route switches (`--no-slots`, `--metrics`) and server-level wire details:
//! `/props` `default_generation_settings.params`, the `/metrics` start-time header.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn switched_off_routes_answer_501_like_llama_server() {
    let s = TestServer::empty(Opts::default().tweak(|c| {
        c.server.slots_endpoint = false;
        c.server.metrics_endpoint = false;
    }))
    .await;
    for path in ["/slots", "/metrics"] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 501, "{path}: {body}");
        assert_eq!(body["error"]["type"], "not_supported_error", "{path}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("--"),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_carry_the_process_start_time_and_props_the_seed() {
    let Some(s) = TestServer::start(Opts::default().tweak(|c| {
        c.sampling.seed = 42;
        c.sampling.n_predict = 3;
    }))
    .await
    else {
        return;
    };
    let resp = s.client.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let started: u64 = resp.headers()["process-start-time-unix"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        started > 1_600_000_000 && started <= common_now(),
        "{started}"
    );
    let (status, props) = s.get("/props").await;
    assert_eq!(status, 200, "{props}");
    let params = &props["default_generation_settings"]["params"];
    assert_eq!(params["seed"], 42, "{props}");
    // The server's token limit applies to a request that sets none.
    let (status, body) = s
        .post(
            "/completion",
            &json!({"prompt": "Once upon a time", "temperature": 0}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tokens_predicted"], 3, "{body}");
}

fn common_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
