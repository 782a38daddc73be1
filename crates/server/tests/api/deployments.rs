//! Model ids with slashes in the declared model routes, and deployments with a port of their
//! own that serves only their model, stored and restored across a restart.

use super::*;

const HUB_ID: &str = "org/repo/smol";

/// A tiny (not runnable) GGUF from the gguf crate's fixtures: enough for the catalog and
/// the routes that only read the file.
fn fixture_file(dir: &Path) -> PathBuf {
    let path = dir.join("fixture.gguf");
    std::fs::write(&path, gguf::fixtures::tiny()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn model_routes_take_an_id_with_slashes_encoded_or_not() {
    let files = tempfile::tempdir().unwrap();
    let s = TestServer::empty(Opts {
        hub: Some(fixture_file(files.path())),
        ..Default::default()
    })
    .await;
    let (_, list) = s.get("/api/models").await;
    assert_eq!(list["models"][0]["id"], HUB_ID, "{list}");

    // One segment, percent-encoded: the declared form.
    let (status, d) = s.get("/api/models/org%2Frepo%2Fsmol/details").await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["model"]["id"], HUB_ID);
    // The unencoded form that clients used before keeps working.
    let (status, d) = s.get("/api/models/org/repo/smol/details").await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["model"]["id"], HUB_ID);
    // Writes too, in both forms, and they reach the same model.
    let (status, b) = s
        .send(
            s.client
                .put(s.url("/api/models/org/repo/smol/favorite"))
                .json(&json!({"favorite": true})),
        )
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["model"], HUB_ID);
    let (status, b) = s
        .send(
            s.client
                .put(s.url("/api/models/org%2Frepo%2Fsmol/alias"))
                .json(&json!({"alias": "hubby"})),
        )
        .await;
    assert_eq!(status, 200, "{b}");
    let (_, list) = s.get("/api/models").await;
    assert_eq!(list["models"][0]["favorite"], true);
    assert_eq!(list["models"][0]["alias"], "hubby");
    // An alias is one segment like any id.
    let (status, c) = s.get("/api/models/hubby/config").await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["model"], HUB_ID);

    // An unknown operation or model is a 404 in the management shape, not a handler's guess.
    for path in [
        "/api/models/org/repo/smol/nope",
        "/api/models/org%2Frepo%2Fsmol/nope",
        "/api/models/org/repo/other/details",
        "/api/models//details",
    ] {
        let (status, e) = s.get(path).await;
        assert_eq!(status, 404, "{path}: {e}");
        assert_eq!(e["error"]["code"], "not_found", "{path}: {e}");
        assert_eq!(e["error"]["status"], 404, "{path}: {e}");
    }
    // The wrong method on a declared operation is a 405, as for any route.
    let (status, _) = s
        .send(s.client.delete(s.url("/api/models/org/repo/smol/alias")))
        .await;
    assert_eq!(status, 405);

    // The document declares each operation (no catch-all) and says how ids travel.
    let (_, doc) = s.get("/openapi.json").await;
    let paths = doc["paths"].as_object().unwrap();
    assert!(
        paths
            .keys()
            .all(|p| !p.contains('*') && !p.contains("{rest}"))
    );
    for (path, method) in [
        ("/api/models/{id}/details", "get"),
        ("/api/models/{id}/config", "get"),
        ("/api/models/{id}/config", "put"),
        ("/api/models/{id}/template", "get"),
        ("/api/models/{id}/template", "put"),
        ("/api/models/{id}/template", "delete"),
        ("/api/models/{id}/capabilities", "get"),
        ("/api/models/{id}/capabilities", "put"),
        ("/api/models/{id}/alias", "put"),
        ("/api/models/{id}/favorite", "put"),
        ("/api/models/{id}/load", "post"),
        ("/api/models/{id}/unload", "post"),
    ] {
        let op = &paths[path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        let param = &op["parameters"][0];
        assert_eq!(param["name"], "id");
        assert!(
            param["description"].as_str().unwrap().contains("%2F"),
            "{param}"
        );
    }
}

/// Waits until deployment `id` runs; returns its status.
async fn running(s: &TestServer, id: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let (status, st) = s.get(&format!("/api/deployments/{id}/status")).await;
        assert_eq!(status, 200, "{st}");
        match st["state"].as_str().unwrap() {
            "running" => return st,
            "failed" => panic!("deployment failed: {st}"),
            _ => {}
        }
        last = st;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("deployment {id} did not start: {last}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_serves_only_its_model_on_its_own_port_and_survives_a_restart() {
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
    // `org/repo/smol` (the same file as `smol`, found in the hub cache) gets a port of its own.
    let (status, d) = s
        .post(
            "/api/deployments/start",
            &json!({"model": HUB_ID, "name": "web", "port": 0,
                    "params": {"parallel": 1, "ctx_size": 512}}),
        )
        .await;
    assert_eq!(status, 202, "{d}");
    assert_eq!(d["state"], "starting");
    assert_eq!(d["port"], 0);
    let st = running(&s, "web").await;
    assert_eq!(st["model"], HUB_ID);
    assert_eq!(st["model_state"]["state"], "loaded");
    let port = st["bound_port"].as_u64().unwrap();
    assert_ne!(port, 0, "the bound port is reported: {st}");
    // A second deployment cannot take the same port.
    let (status, e) = s
        .post(
            "/api/deployments/start",
            &json!({"model": SMOL, "name": "other", "port": port}),
        )
        .await;
    assert_eq!(status, 409, "{e}");

    let own = format!("http://127.0.0.1:{port}");
    let chat_on = |body: Value| {
        s.client
            .post(format!("{own}/v1/chat/completions"))
            .json(&body)
    };
    // No model named: the deployment's.
    let mut body = chat(FRANCE, 4);
    body.as_object_mut().unwrap().remove("model");
    let (status, c) = s.send(chat_on(body.clone())).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["model"], HUB_ID);
    assert!(
        !c["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    // Its own id is fine too.
    body["model"] = json!(HUB_ID);
    let (status, _) = s.send(chat_on(body.clone())).await;
    assert_eq!(status, 200);
    // Another model (here the same file under its folder id) is not served there: 404 in
    // each route family's shape.
    body["model"] = json!(SMOL);
    let (status, e) = s.send(chat_on(body.clone())).await;
    assert_eq!(status, 404, "{e}");
    assert_eq!(e["error"]["type"], "invalid_request_error", "{e}");
    assert_eq!(e["error"]["param"], "model", "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("web"),
        "{e}"
    );
    let (status, e) = s
        .send(
            s.client
                .post(format!("{own}/completion"))
                .json(&json!({"model": SMOL, "prompt": "Hi", "n_predict": 2})),
        )
        .await;
    assert_eq!(status, 404, "{e}");
    assert_eq!(e["error"]["code"], 404, "native shape: {e}");
    let (status, _) = s
        .send(s.client.get(format!("{own}/props?model={SMOL}")))
        .await;
    assert_eq!(status, 404);
    // GET routes get the model too; /v1/models lists only it.
    let (status, p) = s.send(s.client.get(format!("{own}/props"))).await;
    assert_eq!(status, 200, "{p}");
    let (_, models) = s.send(s.client.get(format!("{own}/v1/models"))).await;
    assert_eq!(model_ids(&models), [HUB_ID]);
    // Management is not served there.
    let (status, _) = s.send(s.client.get(format!("{own}/api/models"))).await;
    assert_eq!(status, 404);
    // The server's own port still serves every model.
    let (status, _) = s.post("/v1/chat/completions", &chat(FRANCE, 2)).await;
    assert_eq!(status, 200);

    // A restart of the server: the process's ports close, a new one starts over the same
    // data folder, and the deployment comes back (on a new free port: it asked for port 0).
    s.state.deployments.close_all().await;
    assert!(std::net::TcpStream::connect(("127.0.0.1", port as u16)).is_err());
    let s2 = s.restart().await;
    let (_, list) = s2.get("/api/deployments/list").await;
    assert_eq!(list["deployments"][0]["id"], "web", "{list}");
    assert_eq!(list["deployments"][0]["params"]["ctx_size"], 512, "{list}");
    let st = running(&s2, "web").await;
    let port2 = st["bound_port"].as_u64().unwrap();
    let mut body = chat(FRANCE, 2);
    body["model"] = json!(HUB_ID);
    let (status, c) = s2
        .send(
            s2.client
                .post(format!("http://127.0.0.1:{port2}/v1/chat/completions"))
                .json(&body),
        )
        .await;
    assert_eq!(status, 200, "{c}");

    // Stop closes the port, and a stopped deployment stays stopped after a restart.
    let (status, d) = s2
        .send(s2.client.put(s2.url("/api/deployments/web/stop")))
        .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["state"], "stopped");
    assert_eq!(d["bound_port"], Value::Null);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port2 as u16)).is_err(),
        "the port is closed once stop returns"
    );
    let s3 = s2.restart().await;
    let (_, st) = s3.get("/api/deployments/web/status").await;
    assert_eq!(st["state"], "stopped", "{st}");
    // Forgotten for good once deleted.
    let (status, _) = s3
        .send(s3.client.delete(s3.url("/api/deployments/web")))
        .await;
    assert_eq!(status, 200);
    let (_, list) = s3.restart().await.get("/api/deployments/list").await;
    assert_eq!(list["deployments"], json!([]));
}
