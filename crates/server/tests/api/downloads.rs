//! Model downloads through the HTTP API against testhub's local Hugging Face hub, CDN and
//! Ollama registry (only the base URL differs from the real services): a full pull that is
//! then listed and chats, pause and resume without a byte fetched twice, the concurrency
//! limit, the disk-space refusal, names that do not exist, an Ollama pull and the events.
//!
//! Nothing waits on timing: a transfer that must be mid-file is stalled by the hub at a byte
//! offset, and the test waits (with a generous limit against hangs) for that offset.

use super::*;
use futures_util::StreamExt;
use testhub::{Hub, RepoMeta, gguf_model, sha256_hex};

const REPO: &str = "org/tiny-GGUF";
const Q4: &str = "tiny-Q4_K_M.gguf";

/// A hub with `org/tiny-GGUF` (a Q4_K_M and a Q8_0 file and a projector) and a server
/// whose `download.hf_endpoint` is that hub.
async fn setup(tweak: impl Fn(&mut config::Config) + Send + Sync + 'static) -> (Hub, TestServer) {
    let hub = Hub::start().await;
    hub.add_repo(
        REPO,
        RepoMeta::default(),
        &[
            ("README.md", b"# tiny\n".to_vec()),
            (Q4, gguf_model("tiny", 15)),
            ("tiny-Q8_0.gguf", gguf_model("tiny eight", 7)),
            ("mmproj-tiny-f16.gguf", gguf_model("proj", 1)),
        ],
    );
    let url = hub.url.clone();
    let s = TestServer::empty(Opts::default().tweak(move |c| {
        c.download.hf_endpoint = url.clone();
        c.download.ollama_library_url = url.clone();
        tweak(c);
    }))
    .await;
    (hub, s)
}

/// Polls a task's status until `done` holds (a hang fails after two minutes).
async fn wait_task(s: &TestServer, id: u64, mut done: impl FnMut(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (status, task) = s.get(&format!("/api/downloads/{id}/status")).await;
        assert_eq!(status, 200, "{task}");
        if done(&task) {
            return task;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "task never got there: {task}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn completed(t: &Value) -> bool {
    assert_ne!(t["state"], "failed", "{t}");
    t["state"] == "completed"
}

async fn start(s: &TestServer, body: Value) -> (u16, Value) {
    s.post("/api/download/start", &body).await
}

fn file_sha(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hugging_face_pull_is_listed_at_once_and_chats() {
    let Some(smol) = testkit::smollm2() else {
        return;
    };
    let (hub, s) = setup(|_| {}).await;
    let bytes = std::fs::read(&smol).unwrap();
    hub.add_repo(
        "org/smol-GGUF",
        RepoMeta::default(),
        &[("SmolLM2-135M-Instruct.Q4_1.gguf", bytes.clone())],
    );
    // Search and the file list come from the hub.
    let (status, found) = s.get("/api/download/search?q=smol").await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["models"][0]["id"], "org/smol-GGUF");
    let (status, files) = s.get("/api/download/files?repo=org/smol-GGUF").await;
    assert_eq!(status, 200, "{files}");
    assert_eq!(files["files"][0]["quantization"], "Q4_1");
    assert_eq!(files["files"][0]["size"], bytes.len());

    let (status, task) = start(&s, json!({"name": "org/smol-GGUF:Q4_1"})).await;
    assert_eq!(status, 202, "{task}");
    let id = task["id"].as_u64().unwrap();
    let done = wait_task(&s, id, completed).await;
    assert_eq!(done["done"], bytes.len());
    // Completed means listed: no rescan asked for.
    let (_, models) = s.get("/v1/models").await;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"SmolLM2-135M-Instruct.Q4_1"), "{ids:?}");
    let dest = s
        .models_dir()
        .join("org/smol-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert_eq!(file_sha(&dest), sha256_hex(&bytes));
    let (status, chat) = s
        .post(
            "/v1/chat/completions",
            &json!({"model": "SmolLM2-135M-Instruct.Q4_1", "max_tokens": 4,
                    "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(status, 200, "{chat}");
    assert!(chat["choices"][0]["message"]["content"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_and_resume_fetch_no_byte_twice() {
    let (hub, s) = setup(|_| {}).await;
    let len = gguf_model("tiny", 15).len() as u64;
    let half = len / 2;
    hub.stall(REPO, Q4, half);
    let (status, task) = start(&s, json!({"name": REPO, "quant": "Q4_K_M"})).await;
    assert_eq!(status, 202, "{task}");
    let id = task["id"].as_u64().unwrap();
    wait_task(&s, id, |t| t["done"] == half).await;
    let (status, paused) = s.post("/api/download/pause", &json!({"id": id})).await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["state"], "paused");
    assert_eq!(paused["done"], half, "the partial file keeps what arrived");
    // The paused connection stays stalled until the end: released, the hub would go on
    // writing the rest into the dead socket and count it as served.
    assert!(
        !s.models_dir().join(REPO).join(Q4).exists(),
        "partial files stay outside"
    );
    // Seed 001's spelling of resume.
    let (status, resumed) = s
        .send(s.client.put(s.url(&format!("/api/downloads/{id}/resume"))))
        .await;
    assert_eq!(status, 200, "{resumed}");
    let done = wait_task(&s, id, completed).await;
    assert_eq!(done["done"], len);
    assert_eq!(hub.served(REPO, Q4), len, "every byte left the hub once");
    hub.release();
    assert_eq!(
        file_sha(&s.models_dir().join(REPO).join(Q4)),
        sha256_hex(&gguf_model("tiny", 15))
    );
    // Asking again for the same download gives the task there is, while it is unfinished;
    // a finished one is done: the file is in place and a new task completes at once.
    let (status, again) = start(&s, json!({"name": format!("{REPO}:q4_k_m")})).await;
    assert_eq!(status, 202, "{again}");
    let again = wait_task(&s, again["id"].as_u64().unwrap(), completed).await;
    assert_eq!(again["fetched"], 0, "{again}");
    assert_eq!(hub.served(REPO, Q4), len);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_download_twice_is_one_task() {
    let (hub, s) = setup(|_| {}).await;
    hub.stall(REPO, Q4, 100);
    let (status, first) = start(&s, json!({"name": REPO, "file": Q4})).await;
    assert_eq!(status, 202, "{first}");
    let (status, second) = start(&s, json!({"name": format!("{REPO}:Q4_K_M")})).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["existing"], true);
    assert_eq!(second["id"], first["id"]);
    let (_, list) = s.get("/api/downloads/list").await;
    assert_eq!(list["tasks"].as_array().unwrap().len(), 1, "{list}");
    // Deleting it (seed spelling) with its partial file.
    let id = first["id"].as_u64().unwrap();
    let (status, _) = s
        .send(
            s.client
                .delete(s.url(&format!("/api/downloads/{id}?delete_partial=true"))),
        )
        .await;
    assert_eq!(status, 200);
    hub.release();
    let (status, gone) = s.get(&format!("/api/downloads/{id}/status")).await;
    assert_eq!(status, 404, "{gone}");
    let partial = s.dir.path().join("data/partial");
    let left: Vec<_> = std::fs::read_dir(&partial)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn at_most_max_concurrent_downloads_run_at_once() {
    let (hub, s) = setup(|c| c.download.max_concurrent = 4).await;
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| {
            (
                format!("m{i}-Q4_K_M.gguf"),
                gguf_model(&format!("m{i}"), 15),
            )
        })
        .collect();
    for (i, (name, bytes)) in files.iter().enumerate() {
        let repo = format!("org/m{i}");
        hub.add_repo(&repo, RepoMeta::default(), &[(name, bytes.clone())]);
        hub.stall(&repo, name, 64);
    }
    let mut ids = Vec::new();
    for i in 0..6 {
        let (status, t) = start(&s, json!({"name": format!("org/m{i}")})).await;
        assert_eq!(status, 202, "{t}");
        ids.push(t["id"].as_u64().unwrap());
    }
    // Four stall at byte 64; the other two wait their turn.
    for id in &ids[..4] {
        wait_task(&s, *id, |t| t["done"] == 64).await;
    }
    let (_, list) = s.get("/api/download/tasks").await;
    let states: Vec<&str> = list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "downloading",
            "downloading",
            "downloading",
            "downloading",
            "queued",
            "queued"
        ]
    );
    assert_eq!(hub.open_transfers(), 4);
    for id in &ids {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            hub.release();
            let (_, t) = s.get(&format!("/api/downloads/{id}/status")).await;
            if completed(&t) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{t}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(hub.max_open_transfers(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_download_the_disk_cannot_hold_is_refused_before_it_starts() {
    // A margin larger than any disk: whatever the download's size, it does not fit.
    let (hub, s) = setup(|c| c.download.free_space_margin_mb = 1 << 30).await;
    let (status, body) = start(&s, json!({"name": format!("{REPO}:Q4_K_M")})).await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("not enough free disk space")
            && message.contains("download.free_space_margin_mb"),
        "{message}"
    );
    let (_, list) = s.get("/api/download/tasks").await;
    assert_eq!(list["tasks"], json!([]));
    assert_eq!(hub.requests(REPO, Q4), 0, "nothing was fetched");
}

#[tokio::test(flavor = "multi_thread")]
async fn names_that_do_not_exist_are_explained() {
    let (_hub, s) = setup(|_| {}).await;
    let (status, body) = start(&s, json!({"name": format!("{REPO}:Q2_K")})).await;
    assert_eq!(status, 404, "{body}");
    let m = body["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("no Q2_K") && m.contains("Q4_K_M") && m.contains("Q8_0"),
        "{m}"
    );
    let (status, body) = start(&s, json!({"name": REPO})).await;
    assert_eq!(status, 202, "Q4_K_M is the default among several: {body}");
    let (status, body) = start(&s, json!({"name": "org/nothing:Q4_K_M"})).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("org/nothing was not found"),
        "{body}"
    );
    let (status, body) = s.get("/api/models/org/nothing/info").await;
    assert_eq!(status, 404, "{body}");
    let (status, info) = s.get(&format!("/api/models/{REPO}/info")).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["license"], "apache-2.0");
    let mmproj: Vec<bool> = info["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["mmproj"].as_bool().unwrap())
        .collect();
    assert!(mmproj.contains(&true) && mmproj.contains(&false), "{info}");
    let (status, cats) = s.get("/api/models/categories").await;
    assert_eq!(status, 200);
    assert!(cats["categories"].as_array().unwrap().len() >= 4);
}

/// The names of a search's models, after checking it is the Ollama library's answer.
fn ollama_names(status: u16, body: &Value) -> Vec<String> {
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["source"], "ollama", "{body}");
    body["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ollama_library_is_searched_and_a_models_tags_listed_through_the_api() {
    let (_hub, s) = setup(|_| {}).await;
    let (status, body) = s.get("/api/models/search?q=qwen&source=ollama").await;
    assert_eq!(
        ollama_names(status, &body),
        ["qwen3", "qwen2.5vl", "qwen3-embedding", "codeqwen"]
    );
    let qwen3 = &body["models"][0];
    assert_eq!(
        qwen3["capabilities"],
        json!(["tools", "thinking"]),
        "{body}"
    );
    assert_eq!(qwen3["pulls"], 8_200_000);
    assert!(
        qwen3["sizes"].as_array().unwrap().contains(&json!("8b")),
        "{body}"
    );
    // The same entry point, one source per answer: Hugging Face's shape is unchanged.
    let (status, hf) = s.get("/api/download/search?q=tiny").await;
    assert_eq!(status, 200, "{hf}");
    assert_eq!(hf["source"], "huggingface", "{hf}");
    let (status, body) = s
        .get("/api/download/search?q=qwen&source=ollama&limit=2&category=vision")
        .await;
    assert_eq!(ollama_names(status, &body), ["qwen2.5vl"]);
    let (status, body) = s.get("/api/models/search?source=ollama").await;
    assert_eq!(
        ollama_names(status, &body),
        ["gpt-oss", "llama3.2", "nomic-embed-text"],
        "an empty query lists the library"
    );
    let (status, body) = s
        .get("/api/models/search?q=nothing-like-it&source=ollama")
        .await;
    assert!(ollama_names(status, &body).is_empty());

    for path in [
        "/api/models/qwen3/info?source=ollama",
        "/api/models/qwen3:8b/info?source=ollama",
        "/api/download/files?repo=qwen3&source=ollama",
    ] {
        let (status, info) = s.get(path).await;
        assert_eq!(status, 200, "{path}: {info}");
        assert_eq!(info["source"], "ollama", "{info}");
        assert_eq!(info["model"]["name"], "qwen3", "{info}");
        let tags = info["tags"].as_array().unwrap();
        let t8 = tags
            .iter()
            .find(|t| t["tag"] == "8b")
            .unwrap_or_else(|| panic!("{info}"));
        assert_eq!(t8["size"], 5_200_000_000u64, "{info}");
        assert_eq!(t8["is_latest"], true, "{info}");
    }
    let (status, body) = s.get("/api/models/no-such-model/info?source=ollama").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = s.get("/api/models/a/b/c/info?source=ollama").await;
    assert!((400..500).contains(&status), "{status} {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_ollama_library_is_a_503_naming_the_setting() {
    // Nothing listens on port 1.
    let (_hub, s) = setup(|c| c.download.ollama_library_url = "http://127.0.0.1:1".into()).await;
    for path in [
        "/api/models/search?q=qwen&source=ollama",
        "/api/models/qwen3/info?source=ollama",
    ] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 503, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("download.ollama_library_url"), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ollama_pull_from_a_plain_http_registry_is_listed_with_its_events() {
    let (hub, s) = setup(|c| c.download.insecure = true).await;
    let model = gguf_model("tiny", 15);
    hub.add_ollama_model(
        "library",
        "tiny",
        "latest",
        &[
            ("application/vnd.ollama.image.model", model.clone()),
            (
                "application/vnd.ollama.image.template",
                b"{{ .Prompt }}".to_vec(),
            ),
            (
                "application/vnd.ollama.image.params",
                br#"{"stop":["<|im_end|>"]}"#.to_vec(),
            ),
        ],
    );
    let ws_url = s.base.replace("http://", "ws://") + "/ws/download-progress";
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    let name = format!(
        "{}/library/tiny:latest",
        hub.url.strip_prefix("http://").unwrap()
    );
    let (status, task) = s
        .post("/api/downloads/start", &json!({"model": name}))
        .await;
    assert_eq!(status, 202, "{task}");
    let id = task["id"].as_u64().unwrap();
    wait_task(&s, id, completed).await;
    let (_, models) = s.get("/v1/models").await;
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == name.as_str()),
        "{models}"
    );
    // The feed: progress in the envelope, model.added before the task says completed.
    let mut kinds = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("events")
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        assert!(v["timestamp"].is_string(), "{v}");
        let kind = v["type"].as_str().unwrap().to_string();
        if kind == "model.added" {
            assert_eq!(v["data"]["id"], name.as_str(), "{v}");
            assert_eq!(v["data"]["task"], id);
        } else {
            assert_eq!(kind, "download.progress");
            assert_eq!(v["data"]["id"], id);
        }
        let last = v["data"]["state"] == "completed";
        kinds.push(format!(
            "{kind}:{}",
            v["data"]["state"].as_str().unwrap_or("")
        ));
        if last {
            break;
        }
    }
    assert!(kinds[0].starts_with("download.progress:"), "{kinds:?}");
    assert!(
        kinds.iter().any(|k| k.starts_with("model.added")),
        "model.added comes before the task is completed: {kinds:?}"
    );
    // Without download.insecure the same name is refused with the setting named.
    let (hub2, s2) = setup(|_| {}).await;
    let name2 = format!(
        "http://{}/library/tiny:latest",
        hub2.url.strip_prefix("http://").unwrap()
    );
    let (status, body) = start(&s2, json!({"name": name2})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("insecure"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_process_on_the_same_data_folder_cannot_run_the_downloads() {
    let (_hub, s) = setup(|_| {}).await;
    // What `pull` does while this server runs: its own service over the same folders.
    let other = service::Downloads::new(
        s.state.models.clone(),
        &s.state.config().download,
        &s.state.paths,
    )
    .unwrap();
    let refused = other.claim_queue().unwrap_err().to_string();
    assert!(
        refused.contains("another llama-dashboard process")
            && refused.contains("/api/download/start"),
        "{refused}"
    );
    let e = other
        .start(&service::downloads::PullRequest {
            name: format!("{REPO}:Q4_K_M"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(e, service::ServiceError::Conflict(_)), "{e}");
    assert_eq!(other.restore(false).await, 0);
    // The server itself still downloads.
    let (status, task) = start(&s, json!({"name": format!("{REPO}:Q4_K_M")})).await;
    assert_eq!(status, 202, "{task}");
    wait_task(&s, task["id"].as_u64().unwrap(), completed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_revision_is_its_own_task_and_lands_beside_main() {
    let (hub, s) = setup(|_| {}).await;
    let commit = hub.commit(REPO);
    let (status, pinned) = start(
        &s,
        json!({"name": format!("{REPO}:Q4_K_M"), "revision": commit}),
    )
    .await;
    assert_eq!(status, 202, "{pinned}");
    assert_eq!(pinned["label"], format!("{REPO}/{Q4}@{commit}"));
    let pinned = wait_task(&s, pinned["id"].as_u64().unwrap(), completed).await;
    let pinned_file = s.models_dir().join(format!("{REPO}@{commit}")).join(Q4);
    assert_eq!(pinned["files"][0], json!(pinned_file));
    // main is another download, not the pinned task again, and goes to its own place.
    let (status, main) = start(&s, json!({"name": format!("{REPO}:Q4_K_M")})).await;
    assert_eq!(status, 202, "{main}");
    assert_eq!(main["existing"], false);
    wait_task(&s, main["id"].as_u64().unwrap(), completed).await;
    assert!(s.models_dir().join(REPO).join(Q4).exists());
    assert!(pinned_file.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_port_is_not_taken_for_a_tag_when_a_quant_is_given() {
    let (_hub, s) = setup(|_| {}).await;
    // `host:port/ns/model` + quant: the colon is the port's, so the quant is the tag.
    let (status, body) = start(
        &s,
        json!({"name": "127.0.0.1:1/library/tiny", "quant": "q4"}),
    )
    .await;
    assert!(
        !body.to_string().contains("already has a :tag"),
        "{status} {body}"
    );
    // A tag after the last `/` still conflicts with a quant.
    let (status, body) = start(&s, json!({"name": "tiny:1b", "quant": "q4"})).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_url_download_lands_under_its_host_and_never_replaces_a_file() {
    let (hub, s) = setup(|_| {}).await;
    let url = format!("{}/{REPO}/resolve/main/{Q4}", hub.url);
    let (status, task) = start(&s, json!({"name": url, "source": "url"})).await;
    assert_eq!(status, 202, "{task}");
    let task = wait_task(&s, task["id"].as_u64().unwrap(), completed).await;
    let host = hub.url.trim_start_matches("http://").replace(':', "_");
    let file = s.models_dir().join(&host).join(Q4);
    assert_eq!(task["files"][0], json!(file));
    assert!(file.exists());
    // Asked again, it is already downloaded: the finished task, nothing fetched again
    // and the file there untouched.
    let served = hub.served(REPO, Q4);
    let (status, again) = start(&s, json!({"name": url, "source": "url"})).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["existing"], true, "{again}");
    assert_eq!(again["id"], task["id"], "{again}");
    assert_eq!(again["state"], "completed", "{again}");
    assert_eq!(hub.served(REPO, Q4), served);
    // A file that is gone is downloaded again, by a new task.
    std::fs::remove_file(&file).unwrap();
    let (status, fresh) = start(&s, json!({"name": url, "source": "url"})).await;
    assert_eq!(status, 202, "{fresh}");
    assert_ne!(fresh["id"], task["id"], "{fresh}");
    wait_task(&s, fresh["id"].as_u64().unwrap(), completed).await;
    assert!(file.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_url_download_never_replaces_a_file_it_did_not_bring() {
    let (hub, s) = setup(|_| {}).await;
    let url = format!("{}/{REPO}/resolve/main/{Q4}", hub.url);
    let host = hub.url.trim_start_matches("http://").replace(':', "_");
    let file = s.models_dir().join(&host).join(Q4);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"the user's own file").unwrap();
    let (status, body) = start(&s, json!({"name": url, "source": "url"})).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("already exists"), "{body}");
    assert_eq!(std::fs::read(&file).unwrap(), b"the user's own file");
    assert_eq!(hub.served(REPO, Q4), 0);
}
