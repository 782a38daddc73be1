//! llama.cpp-native routes: props, slots and their files, metrics.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn props_slots_and_metrics() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let (status, body) = s
        .post(
            "/completion",
            &json!({"model": SMOL, "prompt": "Once upon a time", "n_predict": 8}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let slot = body["id_slot"].as_u64().unwrap();
    assert_eq!(body["timings"]["predicted_n"], 8);
    assert!(body["timings"]["prompt_per_second"].as_f64().unwrap() > 0.0);

    let (status, props) = s.get("/props").await;
    assert_eq!(status, 200, "{props}");
    assert_eq!(props["total_slots"], 2);
    assert_eq!(props["default_generation_settings"]["n_ctx"], 2048);
    assert!(
        props["chat_template"]
            .as_str()
            .unwrap()
            .contains("<|im_start|>")
    );

    let (status, slots) = s.get("/slots?model=smol").await;
    assert_eq!(status, 200);
    assert_eq!(slots.as_array().unwrap().len(), 2);
    assert!(
        slots[slot as usize]["n_cached"].as_u64().unwrap() >= 10,
        "{slots}"
    );

    // Save, erase, restore: the cached tokens come back.
    let path = format!("/slots/{slot}?action=save");
    let (status, saved) = s
        .post(&path, &json!({"filename": "a.bin", "model": SMOL}))
        .await;
    assert_eq!(status, 200, "{saved}");
    assert!(saved["n_saved"].as_u64().unwrap() >= 10);
    let (status, erased) = s
        .post(
            &format!("/slots/{slot}?action=erase"),
            &json!({"model": SMOL}),
        )
        .await;
    assert_eq!(status, 200, "{erased}");
    assert_eq!(erased["n_erased"], saved["n_saved"]);
    let (status, restored) = s
        .post(
            &format!("/slots/{slot}?action=restore"),
            &json!({"filename": "a.bin", "model": SMOL}),
        )
        .await;
    assert_eq!(status, 200, "{restored}");
    assert_eq!(restored["n_restored"], saved["n_saved"]);
    assert!(s.dir.path().join("data/slots/smol/a.bin").is_file());
    // File names cannot leave the slot folder; unknown files and actions are client errors.
    for (body, action, want) in [
        (json!({"filename": "../x.bin"}), "save", 400),
        (json!({"filename": "none.bin"}), "restore", 404),
        (json!({}), "save", 400),
        (json!({"filename": "a.bin"}), "explode", 400),
    ] {
        let (status, resp) = s
            .post(&format!("/slots/{slot}?action={action}&model=smol"), &body)
            .await;
        assert_eq!(status, want, "{action} {body}: {resp}");
    }

    let text = s.text("/metrics").await;
    for name in [
        "llamacpp:prompt_tokens_total{model=\"smol\"}",
        "llamacpp:prompt_seconds_total{model=\"smol\"}",
        "llamacpp:prompt_tokens_seconds{model=\"smol\"}",
        "llamacpp:tokens_predicted_total{model=\"smol\"} 8",
        "llamacpp:tokens_predicted_seconds_total{model=\"smol\"}",
        "llamacpp:predicted_tokens_seconds{model=\"smol\"}",
        "llamacpp:requests_processing{model=\"smol\"} 0",
        "llamacpp:requests_deferred{model=\"smol\"} 0",
        "llamacpp:n_tokens_max{model=\"smol\"}",
        "llamacpp:kv_cache_usage_ratio{model=\"smol\"}",
        "llamacpp:kv_cache_tokens{model=\"smol\"}",
        "process_resident_memory_bytes",
        "http_connections_open",
        "http_requests_total{method=\"POST\",route=\"/completion\",status=\"200\"} 1",
        "http_request_duration_seconds_bucket",
    ] {
        assert!(text.contains(name), "missing {name} in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn second_turn_reuses_the_cached_prefix() {
    let Some(s) = TestServer::start(Opts {
        parallel: Some(1),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let first = json!({"model": SMOL, "messages": [
        {"role": "system", "content": "You are a terse assistant. ".repeat(20)},
        {"role": "user", "content": FRANCE},
    ], "temperature": 0, "max_tokens": 16});
    let (_, a) = s.post("/v1/chat/completions", &first).await;
    let answer = a["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    let mut second = first.clone();
    second["messages"].as_array_mut().unwrap().extend([
        json!({"role": "assistant", "content": answer}),
        json!({"role": "user", "content": "And of Italy?"}),
    ]);
    let (_, b) = s.post("/v1/chat/completions", &second).await;
    let cached = b["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    let evaluated = b["timings"]["prompt_n"].as_u64().unwrap();
    assert!(
        cached >= a["usage"]["prompt_tokens"].as_u64().unwrap(),
        "{b}"
    );
    assert!(evaluated < 40, "the second turn re-read {evaluated} tokens");
}

/// `server.slot_save_path` (`serve --slot-save-path DIR`): slot files go straight into that
/// folder, as llama-server's.
#[tokio::test(flavor = "multi_thread")]
async fn slot_files_go_to_the_slot_save_path() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("slots here");
    std::fs::create_dir_all(&folder).unwrap();
    let at = folder.clone();
    let Some(s) = TestServer::start(
        Opts::default().tweak(move |c| c.server.slot_save_path = Some(at.clone())),
    )
    .await
    else {
        return;
    };
    let (status, done) = s
        .post(
            "/completion",
            &json!({"model": SMOL, "prompt": "Once upon a time", "n_predict": 2, "id_slot": 0}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    let (status, saved) = s
        .post(
            "/slots/0?action=save",
            &json!({"filename": "s.bin", "model": SMOL}),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    assert!(folder.join("s.bin").is_file());
    assert!(!s.dir.path().join("data/slots/smol/s.bin").exists());
    let (status, restored) = s
        .post(
            "/slots/1?action=restore",
            &json!({"filename": "s.bin", "model": SMOL}),
        )
        .await;
    assert_eq!(status, 200, "{restored}");
    assert_eq!(restored["n_restored"], saved["n_saved"]);
}
