//! Which model a request gets: llama-server's single-model mode (`serve -m FILE`), `--alias`
//! and `--tags` in `/v1/models`, and `server.default_model` in multi-model mode.

use super::*;

/// `serve -m FILE --alias ...` with no model folder: the routing `serve` builds.
fn single(file: &Path) -> service::Routing {
    service::Routing {
        model: Some(file.to_string_lossy().into_owned()),
        single: true,
        aliases: vec!["tinyllama-2".into(), "code".into()],
        tags: vec!["chat".into(), "small".into()],
        fallback: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn single_model_mode_ignores_the_model_field() {
    let Some(file) = testkit::smollm2() else {
        return;
    };
    // The file is outside every model folder; the folder holds two other models.
    let Some(s) = TestServer::start(Opts {
        gemma: true,
        routing: single(&file),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let (status, models) = s.get("/v1/models").await;
    assert_eq!(status, 200);
    // The one model, under its first alias in sorted order (llama-server's rule).
    assert_eq!(model_ids(&models), ["code"], "{models}");
    let listed = &models["data"][0];
    let mut aliases: Vec<&str> = listed["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    aliases.sort();
    assert_eq!(aliases, ["code", "tinyllama-2"]);
    assert_eq!(listed["tags"], json!(["chat", "small"]));
    // Clients hard-code names: any name, or none, is the one model.
    for model in [json!("gpt-3.5-turbo"), json!(GEMMA), Value::Null] {
        let mut req = chat("Say hi", 4);
        req["model"] = model.clone();
        let (status, body) = s.post("/v1/chat/completions", &req).await;
        assert_eq!(status, 200, "{model}: {body}");
        assert_eq!(body["model"], "code", "{model}");
    }
    let (status, body) = s
        .post(
            "/completion",
            &json!({"model": "whatever", "prompt": "Hi", "n_predict": 2}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_file_joins_the_folders_in_multi_model_mode() {
    let Some(file) = testkit::smollm2() else {
        return;
    };
    let Some(s) = TestServer::start(Opts {
        routing: service::Routing {
            single: false,
            ..single(&file)
        },
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let stem = file.file_stem().unwrap().to_str().unwrap().to_string();
    let (_, models) = s.get("/v1/models").await;
    let ids = model_ids(&models);
    // The folder's model keeps its id; the file is listed under its first alias.
    assert!(ids.contains(&SMOL) && ids.contains(&"code"), "{models}");
    // Its file name's stem, its aliases and its path reach it; other names are 404.
    for name in [stem.as_str(), "tinyllama-2", file.to_str().unwrap()] {
        let mut req = chat("Say hi", 2);
        req["model"] = json!(name);
        let (status, body) = s.post("/v1/chat/completions", &req).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(body["model"], "code");
    }
    let mut req = chat("Say hi", 2);
    req["model"] = json!("gpt-3.5-turbo");
    let (status, body) = s.post("/v1/chat/completions", &req).await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn default_model_catches_unknown_names_in_multi_model_mode() {
    let Some(s) = TestServer::start(
        Opts {
            gemma: true,
            ..Default::default()
        }
        .tweak(|c| c.server.default_model = Some(SMOL.into())),
    )
    .await
    else {
        return;
    };
    let ask = |model: Value| {
        let mut req = chat("Say hi", 2);
        req["model"] = model;
        req
    };
    // An unknown name, and no name with two models, get the default.
    for model in [json!("gpt-3.5-turbo"), Value::Null] {
        let (status, body) = s.post("/v1/chat/completions", &ask(model.clone())).await;
        assert_eq!(status, 200, "{model}: {body}");
        assert_eq!(body["model"], SMOL);
    }
    // A known name is still that model.
    let (status, body) = s.post("/v1/chat/completions", &ask(json!(GEMMA))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], GEMMA);
    // Without the fallback, an unknown name is 404 in the route family's shape and no name
    // is 400.
    s.state.models.set_fallback(None);
    let (status, body) = s
        .post("/v1/chat/completions", &ask(json!("gpt-3.5-turbo")))
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gpt-3.5-turbo")
    );
    let (status, body) = s.post("/v1/chat/completions", &ask(Value::Null)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "model");
}
