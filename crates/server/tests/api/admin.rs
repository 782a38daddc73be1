//! The management API: models and their settings, configuration, the file browser,
//! logs, benchmarks and deployments, and the WebSocket event feed.

use super::*;
use futures_util::StreamExt;

#[tokio::test(flavor = "multi_thread")]
async fn model_management() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let ws_url = s.base.replace("http://", "ws://") + "/ws/events";
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();

    let (status, list) = s.get("/api/models").await;
    assert_eq!(status, 200);
    let m = &list["models"][0];
    assert_eq!(m["id"], SMOL);
    assert_eq!(m["state"], "unloaded");
    assert_eq!(m["favorite"], false);

    let (status, details) = s.get("/api/models/smol/details").await;
    assert_eq!(status, 200, "{details}");
    assert_eq!(details["gguf"]["kv"]["general.architecture"], "llama");
    assert!(details["memory_estimate"]["total_bytes"].as_u64().unwrap() > 90_000_000);
    let caps = details["capabilities"].as_array().unwrap();
    assert!(caps.contains(&json!("chat")), "{caps:?}");

    // Load with parameters, then it is loaded with them.
    let (status, loaded) = s
        .post(
            "/api/models/smol/load",
            &json!({"ctx_size": 1024, "parallel": 1}),
        )
        .await;
    assert_eq!(status, 200, "{loaded}");
    assert_eq!(loaded["info"]["n_ctx_slot"], 1024);
    assert_eq!(loaded["info"]["n_slots"], 1);
    // The event feed saw it: loading, then loaded, in the PRD's envelope.
    let mut kinds = Vec::new();
    while !kinds.contains(&"model.loaded".to_string()) {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(v["data"]["id"], SMOL);
        kinds.push(v["type"].as_str().unwrap().to_string());
    }
    assert_eq!(kinds[0], "model.loading");
    // A chat request uses the loaded model as it is (no reload to the defaults).
    let (status, _) = s.post("/v1/chat/completions", &chat(FRANCE, 4)).await;
    assert_eq!(status, 200);
    let (_, props) = s.get("/props").await;
    assert_eq!(props["total_slots"], 1);

    // Settings.
    for (path, body) in [
        ("/api/models/smol/alias", json!({"alias": "tiny"})),
        ("/api/models/smol/favorite", json!({"favorite": true})),
        (
            "/api/models/smol/capabilities",
            json!({"capabilities": ["chat", "tools"]}),
        ),
        (
            "/api/models/smol/config",
            json!({"ctx_size": 512, "n_batch": 256}),
        ),
    ] {
        let (status, resp) = s.send(s.client.put(s.url(path)).json(&body)).await;
        assert_eq!(status, 200, "{path}: {resp}");
    }
    let (_, list) = s.get("/api/models").await;
    assert_eq!(list["models"][0]["alias"], "tiny");
    assert_eq!(list["models"][0]["favorite"], true);
    let (_, caps) = s.get("/api/models/tiny/capabilities").await;
    assert_eq!(caps["effective"], json!(["chat", "tools"]));
    let (_, cfg) = s.get("/api/models/smol/config").await;
    // Stored launch parameters rank below the config's own values (flags > env > file >
    // stored > defaults): this server's config sets ctx_size (2048), not n_batch.
    assert_eq!(cfg["effective"]["context"]["n_batch"], 256, "{cfg}");
    assert_eq!(cfg["effective"]["context"]["ctx_per_slot"], 2048, "{cfg}");
    let (status, _) = s
        .send(
            s.client
                .put(s.url("/api/models/smol/capabilities"))
                .json(&json!({"capabilities": ["flying"]})),
        )
        .await;
    assert_eq!(status, 400);

    // A custom template: one that compiles is stored and used; one that raises is a 400.
    let (status, body) = s
        .send(
            s.client
                .put(s.url("/api/models/smol/template"))
                .json(&json!({"template": "{{ raise_exception('no chat here') }}"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s.post("/v1/chat/completions", &chat("hi", 2)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no chat here"),
        "{body}"
    );
    let (status, body) = s
        .send(
            s.client
                .put(s.url("/api/models/smol/template"))
                .json(&json!({"template": "{% if %}"})),
        )
        .await;
    assert_eq!(
        status, 400,
        "a template that does not compile is refused: {body}"
    );
    let (_, t) = s.get("/api/models/smol/template").await;
    assert_eq!(t["source"], "custom");
    let (status, _) = s
        .send(s.client.delete(s.url("/api/models/smol/template")))
        .await;
    assert_eq!(status, 200);
    let (status, _) = s.post("/v1/chat/completions", &chat("hi", 2)).await;
    assert_eq!(status, 200);

    let (status, est) = s
        .post(
            "/api/models/vram-estimate",
            &json!({"model": SMOL, "params": {"ctx_size": 4096, "parallel": 4}}),
        )
        .await;
    assert_eq!(status, 200, "{est}");
    assert_eq!(est["estimate"]["n_ctx"], 16384);

    let (status, _) = s.post("/api/models/smol/unload", &json!({})).await;
    assert_eq!(status, 200);
    let (status, body) = s.post("/api/models/smol/unload", &json!({})).await;
    assert_eq!(status, 409, "not loaded: {body}");

    // A new file appears after a scan.
    std::os::unix::fs::symlink(
        testkit::smollm2().unwrap(),
        s.models_dir().join("copy.gguf"),
    )
    .unwrap();
    let (status, scan) = s.post("/api/models/scan", &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(scan["models"], 2);
    // The store's refusals keep their kind: an alias in use is a conflict, a malformed
    // one a bad request.
    let (status, body) = s
        .send(
            s.client
                .put(s.url("/api/models/copy/alias"))
                .json(&json!({"alias": "tiny"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = s
        .send(
            s.client
                .put(s.url("/api/models/copy/alias"))
                .json(&json!({"alias": "/etc/x"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("file path"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn config_paths_browse_and_logs() {
    let s = TestServer::empty(Opts::default()).await;
    let (status, c) = s.get("/api/config").await;
    assert_eq!(status, 200);
    assert_eq!(c["config"]["server"]["port"], 8080);
    // The settings API edits the file: what the user wrote there stays.
    let file = s.dir.path().join("config/config.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "# mine\n[models]\nctx_size = 2048 # per slot\n").unwrap();
    let (status, c) = s
        .send(
            s.client
                .put(s.url("/api/config"))
                .json(&json!({"sampling": {"temperature": 0.2}, "models.parallel": 3})),
        )
        .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["config"]["models"]["parallel"], 3);
    let saved = std::fs::read_to_string(s.dir.path().join("config/config.toml")).unwrap();
    assert!(saved.contains("parallel = 3"), "{saved}");
    assert!(
        saved.starts_with("# mine\n[models]\nctx_size = 2048 # per slot\n"),
        "{saved}"
    );
    let (status, e) = s
        .send(
            s.client
                .put(s.url("/api/config"))
                .json(&json!({"models.parallel": 0})),
        )
        .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["param"], "models.parallel");
    let (status, e) = s
        .send(
            s.client
                .put(s.url("/api/config"))
                .json(&json!({"port": 9123})),
        )
        .await;
    assert_eq!(status, 400, "{e}");
    let msg = e["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("did you mean `server.port`"), "{e}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        saved,
        "a refused PUT writes nothing"
    );

    // Model paths.
    let extra = tempfile::tempdir().unwrap();
    let sub = extra.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("m.gguf"), b"not really").unwrap();
    let (status, _) = s
        .post("/api/config/model-paths", &json!({"path": extra.path()}))
        .await;
    assert_eq!(status, 201);
    let (status, _) = s
        .post("/api/config/model-paths", &json!({"path": extra.path()}))
        .await;
    assert_eq!(status, 409);
    let (status, _) = s
        .post("/api/config/model-paths", &json!({"path": "relative/dir"}))
        .await;
    assert_eq!(status, 400);

    // Browsing stays inside the roots.
    let q = |p: &Path| format!("/api/system/fs/browse?path={}", p.display());
    let (status, listing) = s.get(&q(extra.path())).await;
    assert_eq!(status, 200, "{listing}");
    assert_eq!(listing["entries"][0]["name"], "sub");
    let (status, listing) = s.get(&q(&sub)).await;
    assert_eq!(status, 200);
    assert_eq!(listing["entries"][0]["name"], "m.gguf");
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), extra.path().join("escape")).unwrap();
    for p in [
        "/etc".to_string(),
        format!("{}/../", extra.path().display()),
        format!("{}/escape", extra.path().display()),
        "relative".to_string(),
    ] {
        let (status, body) = s.get(&format!("/api/system/fs/browse?path={p}")).await;
        assert_eq!(status, 403, "{p}: {body}");
    }
    let (_, listing) = s.get(&q(extra.path())).await;
    let names: Vec<&str> = listing["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sub"], "a link leaving the roots is not listed");
    let (status, _) = s
        .send(s.client.delete(s.url(&format!(
            "/api/config/model-paths?path={}",
            extra.path().display()
        ))))
        .await;
    assert_eq!(status, 200);

    let (status, devices) = s.get("/api/system/devices").await;
    assert_eq!(status, 200);
    assert!(!devices["devices"].as_array().unwrap().is_empty());
    let (status, r) = s.get("/api/system/resources").await;
    assert_eq!(status, 200);
    assert!(r["memory"]["total"].as_u64().unwrap() > 0);
    assert!(r["memory"]["process_rss"].as_u64().unwrap() > 0);

    let (status, l) = s.get("/api/system/logs?level=warn&limit=5").await;
    assert_eq!(status, 200);
    assert!(l["lines"].is_array());
    let (status, _) = s.get("/api/system/logs?level=loud").await;
    assert_eq!(status, 400);
    let (status, _) = s
        .send(
            s.client
                .put(s.url("/api/system/log-level"))
                .json(&json!({"level": "debug"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = s
        .send(
            s.client
                .put(s.url("/api/system/log-level"))
                .json(&json!({"level": "[["})),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_and_deployments() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let (mut ws, _) = super::bench::start(&s, SMOL).await;
    let (status, _) = s
        .post("/api/bench/run", &json!({"model": SMOL, "n_prompt": 8}))
        .await;
    assert_eq!(status, 409, "one benchmark at a time");
    let done = super::bench::completed(&mut ws).await;
    let id = done["id"].as_i64().unwrap();
    let (_, results) = s.get("/api/bench/results?model=smol").await;
    assert_eq!(results["runs"][0]["id"], id);
    assert_eq!(results["runs"][0]["results"][0]["test"], "pp8");
    let (status, cmp) = s
        .get(&format!("/api/bench/results?compare={id},{id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(cmp["ratios"]["pp8"], 1.0);
    let (status, _) = s
        .send(s.client.delete(s.url(&format!("/api/bench/results/{id}"))))
        .await;
    assert_eq!(status, 200);
    let (status, _) = s
        .send(s.client.delete(s.url(&format!("/api/bench/results/{id}"))))
        .await;
    assert_eq!(status, 404);

    // Deployments over the manager.
    let (status, d) = s
        .post(
            "/api/deployments/start",
            &json!({"model": SMOL, "name": "web", "params": {"parallel": 1}}),
        )
        .await;
    assert_eq!(status, 202, "{d}");
    let mut state = String::new();
    for _ in 0..100 {
        let (_, st) = s.get("/api/deployments/web/status").await;
        state = st["state"].as_str().unwrap().to_string();
        if state == "running" {
            assert_eq!(st["model_state"]["state"], "loaded");
            assert_eq!(st["slots"].as_array().unwrap().len(), 1);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state, "running");
    let (status, _) = s
        .post("/api/deployments/start", &json!({"model": SMOL}))
        .await;
    assert_eq!(status, 409, "already deployed");
    let (_, list) = s.get("/api/deployments/list").await;
    assert_eq!(list["deployments"][0]["id"], "web");
    let (status, d) = s
        .send(s.client.put(s.url("/api/deployments/web/restart")))
        .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["state"], "running");
    assert_eq!(d["restarts"], 1);
    let (status, d) = s
        .send(s.client.put(s.url("/api/deployments/web/stop")))
        .await;
    assert_eq!(status, 200);
    assert_eq!(d["state"], "stopped");
    let (_, logs) = s.get("/api/deployments/web/logs").await;
    assert!(logs["lines"].is_array());
    let (status, _) = s.get("/api/deployments/nope/status").await;
    assert_eq!(status, 404);
}
