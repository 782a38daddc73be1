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

/// A short chat that asks for `keep_alive`; returns once its request has let the model go.
async fn chat_keep_alive(s: &TestServer, keep_alive: Value) {
    let mut body = chat(FRANCE, 4);
    body["keep_alive"] = keep_alive.clone();
    let (code, resp) = s.post("/v1/chat/completions", &body).await;
    assert_eq!(code, 200, "keep_alive {keep_alive}: {resp}");
    until_idle(s, SMOL).await;
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
    let mut quick = chat(FRANCE, 4);
    quick["keep_alive"] = json!(0);
    let (code, body) = s.post("/v1/chat/completions", &quick).await;
    assert_eq!(code, 200, "{body}");
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
    assert_eq!(
        listed(&s, SMOL).await["state"],
        "loaded",
        "a later request kept it"
    );
}

#[tokio::test]
async fn keep_alive_zero_alone_unloads_as_ollama_does() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    chat_keep_alive(&s, json!(0)).await;
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
        chat_keep_alive(&s, asked.clone()).await;
        let expires = listed(&s, SMOL).await["expires_in_seconds"].clone();
        let secs = expires.as_u64().unwrap_or_else(|| {
            panic!("keep_alive {asked}: the model must expire, not stay forever: {expires}")
        });
        assert!(
            secs <= 600,
            "keep_alive {asked}: expires in {secs} s, above the maximum"
        );
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
    chat_keep_alive(&s, json!(0)).await;
    let entry = listed(&s, SMOL).await;
    assert_eq!(entry["state"], "loaded", "{entry}");
    assert_eq!(
        entry["expires_in_seconds"],
        Value::Null,
        "the server's default: never"
    );
    still_serves(&s).await;
}

// ---------------------------------------------------------------- config writes

/// `config.toml` of a test server, as the file layer reads it (defaults when missing).
fn file_layer(s: &TestServer) -> config::Config {
    let path = s.dir.path().join("config/config.toml");
    config::ConfigFile::read(&path).unwrap().config
}

#[tokio::test]
async fn saving_model_folders_writes_the_files_own_layer_only() {
    // The test server's configuration lives in memory, as values from flags and the
    // environment do: none of it may end up in the file.
    let flagged = tempfile::tempdir().unwrap();
    let flagged_dir = flagged.path().to_path_buf();
    let Some(s) = TestServer::start(Opts::default().tweak(move |c| {
        c.models.dirs = vec![flagged_dir.clone()];
    }))
    .await
    else {
        return;
    };
    let added = tempfile::tempdir().unwrap();
    let body = json!({"path": added.path()});
    let (code, resp) = s.post("/api/config/model-paths", &body).await;
    assert_eq!(code, 201, "{resp}");
    assert_eq!(
        resp["paths"],
        json!([flagged.path(), added.path()]),
        "both folders are in effect"
    );
    let file = file_layer(&s);
    assert_eq!(
        file.models.dirs,
        vec![added.path().to_path_buf()],
        "the flag's folder stays out"
    );
    assert_eq!(
        file.models.threads, None,
        "nothing else from memory is written"
    );

    // The same folder again: a conflict in the management API's shape.
    let (code, resp) = s.post("/api/config/model-paths", &body).await;
    assert_eq!(code, 409, "{resp}");
    assert!(
        error_message(&resp).contains("already a model path"),
        "{resp}"
    );

    // Removing the flag's folder changes the running server, not the file.
    let url = format!("/api/config/model-paths?path={}", flagged.path().display());
    let (code, resp) = s.send(s.client.delete(s.url(&url))).await;
    assert_eq!(code, 200, "{resp}");
    assert_eq!(resp["paths"], json!([added.path()]));
    assert_eq!(file_layer(&s).models.dirs, vec![added.path().to_path_buf()]);
    still_serves(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_folder_adds_are_serialised_and_none_is_lost() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let s = std::sync::Arc::new(s);
    let dirs: Vec<tempfile::TempDir> = (0..20).map(|_| tempfile::tempdir().unwrap()).collect();
    let adds = dirs.iter().map(|d| {
        let s = s.clone();
        let body = json!({"path": d.path()});
        tokio::spawn(async move { s.post("/api/config/model-paths", &body).await })
    });
    for (code, resp) in futures_util::future::join_all(adds)
        .await
        .into_iter()
        .map(Result::unwrap)
    {
        assert_eq!(code, 201, "{resp}");
    }
    let mut want: Vec<_> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
    want.sort();
    let mut in_file = file_layer(&s).models.dirs;
    in_file.sort();
    assert_eq!(in_file, want, "every add is in the file");
    let mut live = s.state.config().models.dirs;
    live.sort();
    assert_eq!(live, want, "every add is in effect");
    still_serves(&s).await;
}

#[tokio::test]
async fn put_config_with_what_get_showed_keeps_secrets_and_bakes_nothing_in() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    // A secret stored in the file (takes effect at the next start).
    let (code, resp) = s
        .send(
            s.client
                .put(s.url("/api/config"))
                .json(&json!({"server": {"api_key": "stored-secret"}})),
        )
        .await;
    assert_eq!(code, 200, "{resp}");
    let (code, shown) = s.get("/api/config").await;
    assert_eq!(code, 200, "{shown}");
    assert_eq!(shown["config"]["server"]["api_key"], config::MASK);

    // A settings page sends everything back with one value edited.
    let mut edited = shown["config"].clone();
    edited["sampling"]["temperature"] = json!(0.25);
    let (code, resp) = s
        .send(s.client.put(s.url("/api/config")).json(&edited))
        .await;
    assert_eq!(code, 200, "{resp}");
    assert_eq!(resp["updated"], json!(["sampling.temperature"]), "{resp}");
    let file = file_layer(&s);
    assert_eq!(
        file.server.api_key.as_deref(),
        Some("stored-secret"),
        "not the mask"
    );
    assert_eq!(file.sampling.temperature, 0.25);
    let defaults = config::Config::default();
    assert_eq!(
        file.models.threads, defaults.models.threads,
        "the running value is not baked in"
    );
    assert_eq!(file.models.ctx_size, defaults.models.ctx_size);
    assert_eq!(file.sources.ollama, defaults.sources.ollama);
    assert_eq!(
        s.state.config().server.api_key.as_deref(),
        Some("stored-secret")
    );

    // A bad value changes nothing and names its key.
    let (code, resp) = s
        .send(
            s.client
                .put(s.url("/api/config"))
                .json(&json!({"server": {"port": "http"}, "sampling": {"temperature": 0.5}})),
        )
        .await;
    assert_eq!(code, 400, "{resp}");
    assert!(error_message(&resp).contains("server.port"), "{resp}");
    assert_eq!(file_layer(&s).sampling.temperature, 0.25);
    still_serves(&s).await;
}

// ---------------------------------------------------------------- slot files

/// The names in a folder, sorted.
fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn slot_files_are_private_and_never_half_written() {
    use std::os::unix::fs::PermissionsExt;
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    still_serves(&s).await; // something in the slots' caches
    let save = |name: &str| json!({"filename": name, "model": SMOL});
    let dir = s.dir.path().join("data/slots/smol");
    for round in 0..2 {
        let (code, body) = s.post("/slots/0?action=save", &save("a.bin")).await;
        assert_eq!(code, 200, "save {round}: {body}");
        let mode = std::fs::metadata(dir.join("a.bin"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "a slot file holds the user's prompts: {mode:o}"
        );
        assert_eq!(
            names_in(&dir),
            ["a.bin"],
            "no temporary file is left behind"
        );
    }

    // A save that fails (the name is taken by a folder) leaves nothing half-written.
    std::fs::create_dir(dir.join("b.bin")).unwrap();
    let (code, body) = s.post("/slots/0?action=save", &save("b.bin")).await;
    assert_eq!(code, 400, "{body}");
    assert!(error_message(&body).contains("b.bin"), "{body}");
    assert!(dir.join("b.bin").is_dir());
    assert_eq!(
        names_in(&dir),
        ["a.bin", "b.bin"],
        "no temporary file is left behind"
    );
    let (code, body) = s.post("/slots/0?action=restore", &save("a.bin")).await;
    assert_eq!(code, 200, "the earlier file is whole: {body}");
    still_serves(&s).await;
}

// ---------------------------------------------------------------- the database

/// The test runs the server on one thread (`current_thread`, the test's own runtime), so a
/// handler that blocks in SQLite stalls everything, the test's own requests included. While
/// another connection holds the database's write lock (as the CLI in another process can),
/// a settings write waits for it; `/health` must answer meanwhile. Without the blocking
/// thread, the write holds the only worker until SQLite's busy timeout gives up, so the
/// health checks come back only after the write has failed.
#[tokio::test]
async fn a_locked_database_does_not_stall_unrelated_requests() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let s = std::sync::Arc::new(s);
    let db = rusqlite::Connection::open(s.dir.path().join("data/dashboard.db")).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();

    let writer = s.clone();
    let write = tokio::spawn(async move {
        writer
            .send(
                writer
                    .client
                    .put(writer.url("/api/models/smol/favorite"))
                    .json(&json!({"favorite": true})),
            )
            .await
    });
    for _ in 0..3 {
        let (code, body) = s.get("/health").await;
        assert_eq!(code, 200, "{body}");
    }
    assert!(
        !write.is_finished(),
        "the write must still be waiting for the lock when /health answers"
    );
    db.execute_batch("COMMIT").unwrap();
    let (code, body) = write.await.unwrap();
    assert_eq!(
        code, 200,
        "the write goes through once the lock is free: {body}"
    );
    let (code, body) = s.get("/api/models").await;
    assert_eq!(code, 200, "{body}");
    let smol = body["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == SMOL)
        .unwrap();
    assert_eq!(smol["favorite"], true, "{smol}");
    still_serves(&s).await;
}
