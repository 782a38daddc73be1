//! `llama-dashboard serve` as a process: start-up time and idle memory, graceful shutdown
//! by signal and by API with a stream in flight, no model worker outliving a killed
//! server, and the official OpenAI and Anthropic Python SDKs against the real binary and
//! test model.

use serde_json::json;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    base: String,
    /// Its config and data folders (shared by a restart, [`spawn_in`]).
    dir: std::sync::Arc<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `serve` on a free port with `model` (if any) linked into its models folder as
/// `smol.gguf`; returns once `/health` answers, with the time that took.
fn start(model: Option<&Path>, extra: &[&str]) -> (Server, Duration) {
    start_env(model, extra, &[])
}

/// [`start`] with environment variables; `AIP_HTTP_PORT` among them is the port it answers on.
fn start_env(model: Option<&Path>, extra: &[&str], env: &[(&str, String)]) -> (Server, Duration) {
    start_command(&["serve"], model, extra, env)
}

/// [`start_env`] with `command` as the words before serve's flags (`[]`: serve is the default).
fn start_command(
    command: &[&str],
    model: Option<&Path>,
    extra: &[&str],
    env: &[(&str, String)],
) -> (Server, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    if let Some(m) = model {
        std::os::unix::fs::symlink(m, models.join("smol.gguf")).unwrap();
    }
    std::fs::create_dir_all(dir.path().join("home")).unwrap();
    spawn_in(std::sync::Arc::new(dir), command, extra, env)
}

/// Starts the binary over the folders of `dir` (made by [`start_command`]), as a restart
/// of the process finds them.
fn spawn_in(
    dir: std::sync::Arc<tempfile::TempDir>,
    command: &[&str],
    extra: &[&str],
    env: &[(&str, String)],
) -> (Server, Duration) {
    let models = dir.path().join("models");
    let port = free_port();
    let t0 = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_llama-dashboard"))
        .env_clear()
        .env("HOME", dir.path().join("home"))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["--config-dir", &dir.path().join("c").to_string_lossy()])
        .args(["--data-dir", &dir.path().join("d").to_string_lossy()])
        .args(command)
        .args([
            "--port",
            &port.to_string(),
            "-t",
            "1",
            "--parallel",
            "2",
            "-c",
            "2048",
        ])
        .args(["--models-dir", &models.to_string_lossy()])
        .args(extra)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let port = env
        .iter()
        .find(|(k, _)| *k == "AIP_HTTP_PORT")
        .map_or(port.to_string(), |(_, p)| p.clone());
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base);
    let took = t0.elapsed();
    (
        Server { child, base, dir },
        took,
    )
}

/// Waits until `/health` answers 200 at `base` (20 s at most: the server did not start).
fn wait_healthy(base: &str) {
    let client = reqwest::blocking::Client::new();
    let t0 = Instant::now();
    while !client
        .get(format!("{base}/health"))
        .send()
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the server did not start"
        );
        // Not faster: each 503 is a line on the server's stderr, a pipe nobody reads until
        // the test ends, and a full pipe would stall the server (MCP servers' warm-up keeps
        // `/health` at 503 for a second or two).
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends SIGTERM (a graceful shutdown) to `child`.
fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// `llama-dashboard` with no command and no flag at all is `serve` with its defaults; the
/// port here comes from the environment, as any setting can.
#[test]
fn no_command_runs_serve() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("home")).unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_llama-dashboard"))
        .env_clear()
        .env("HOME", dir.path().join("home"))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LLAMA_DASHBOARD_CONFIG_DIR", dir.path().join("c"))
        .env("LLAMA_DASHBOARD_DATA_DIR", dir.path().join("d"))
        .env("LLAMA_DASHBOARD_SERVER_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        dir: std::sync::Arc::new(dir),
    };
    wait_healthy(&server.base);
}

/// serve's flags without the word `serve` run it with them.
#[test]
fn serve_flags_without_the_command_run_serve() {
    let (s, _) = start_command(&[], None, &[], &[]);
    wait_healthy(&s.base);
}

/// `--log-format json`: every line serve writes on stderr, from start to a graceful stop, is
/// one JSON object with a level and a message.
#[test]
fn log_format_json_writes_one_object_per_line() {
    let (mut s, _) = start(None, &["--log-format", "json"]);
    // A request that is refused logs a warning too.
    let _ = reqwest::blocking::Client::new()
        .post(format!("{}/v1/chat/completions", s.base))
        .body("{")
        .send();
    sigterm(&s.child);
    let mut stderr = String::new();
    s.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    wait_exit(&mut s.child, Duration::from_secs(30));
    assert!(!stderr.trim().is_empty(), "serve logged nothing");
    for line in stderr.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
        assert!(v["level"].is_string(), "no level: {line}");
        assert!(v["fields"]["message"].is_string(), "no message: {line}");
    }
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// A `kB` figure of `/proc/{pid}/status`.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            t0.elapsed() < within,
            "the server did not exit in {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Idle memory without a model. The start-up time is printed, not asserted: tests never
/// depend on timing (a loaded CI machine is not the product's fault).
#[test]
fn starts_small() {
    let (s, took) = start(None, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let rss = rss_kib(s.child.id());
    // What the server allocated; the rest is the binary's own pages, which grow with the
    // code it links (a debug build's relocations touch most of them), not with its state.
    let anon = status_kib(s.child.id(), "RssAnon:");
    eprintln!("/health after {took:?}, idle RSS {rss} KiB ({anon} KiB allocated)");
    assert!(
        anon < 16 * 1024,
        "idle RSS {rss} KiB, {anon} KiB of it allocated"
    );
}

#[test]
fn sigterm_lets_a_stream_finish() {
    let Some(model) = testkit::smollm2() else {
        return;
    };
    let (mut s, _) = start(Some(&model), &["--grace", "60"]);
    let body = json!({"model": "smol", "messages": [{"role": "user", "content": "Tell me a story."}],
        "max_tokens": 48, "temperature": 0, "stream": true});
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/v1/chat/completions", s.base))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut reader = BufReader::new(resp);
    let mut first = String::new();
    // Wait for the first content chunk, then signal.
    while !first.contains("content") {
        first.clear();
        reader.read_line(&mut first).unwrap();
    }
    sigterm(&s.child);
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(
        rest.trim_end().ends_with("data: [DONE]"),
        "the stream was cut: {rest}"
    );
    let chunks = rest.matches("\"content\"").count();
    assert!(chunks > 10, "only {chunks} chunks after the signal");
    let status = wait_exit(&mut s.child, Duration::from_secs(30));
    assert!(status.success(), "{status}");
    // It stopped accepting.
    assert!(reqwest::blocking::get(format!("{}/health", s.base)).is_err());
}

/// A chat session's answer survives `kill -9` mid-stream: after a restart the text written
/// so far is there, marked `interrupted` (issue 13). The answer is flushed to the database
/// every 64 pieces of text at the latest, so once the client has read 65 the store holds
/// some of it.
#[test]
fn a_session_answer_survives_kill_9_as_interrupted() {
    let Some(model) = testkit::smollm2() else {
        return;
    };
    let (mut s, _) = start(Some(&model), &[]);
    let client = reqwest::blocking::Client::new();
    let session: serde_json::Value = client
        .post(format!("{}/api/chat/sessions/create", s.base))
        .json(&json!({"model": "smol", "params": {"max_tokens": 600, "temperature": 0}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = session["id"].as_str().unwrap().to_string();
    let resp = client
        .post(format!("{}/api/chat/send", s.base))
        .json(&json!({"session_id": id, "stream": true,
            "message": "Write a very long story about a lighthouse keeper and the sea."}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200, "{:?}", resp.text());
    let mut reader = BufReader::new(resp);
    let (mut line, mut deltas) = (String::new(), 0);
    while deltas < 65 {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the answer ended first");
        assert!(!line.contains("event: done"), "the answer ended before 65 pieces");
        if line.starts_with("event: delta") {
            deltas += 1;
        }
    }
    s.child.kill().unwrap(); // SIGKILL
    s.child.wait().unwrap();
    let dir = s.dir.clone();
    drop(s);
    let (again, _) = spawn_in(dir, &["serve"], &[], &[]);
    let history: serde_json::Value = client
        .get(format!("{}/api/chat/history/{id}", again.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let answer = &history["messages"][1];
    assert_eq!(answer["finish_reason"], "interrupted", "{history}");
    assert!(
        !answer["content"].as_str().unwrap().is_empty(),
        "the partial answer is lost: {history}"
    );
}

/// `kill -9` while a session's answer waits for a server tool: after a restart the stored
/// turn holds its call (stored before the tool ran), marked `interrupted` (issues 13, 14).
#[test]
fn a_session_tool_call_survives_kill_9_as_interrupted() {
    let (Some(model), Some(py)) = (testkit::smollm2(), testkit::python()) else {
        return;
    };
    let gate_dir = tempfile::tempdir().unwrap();
    let gate = gate_dir.path().join("gate");
    let mcp = json!({"mcpServers": {"t": {
        "command": py.to_string_lossy(),
        "args": [testkit::py_script("mcp_test_server.py").to_string_lossy()],
        "env": {"MCP_TEST_GATE": gate.to_string_lossy()},
    }}})
    .to_string();
    let (mut s, _) = start(Some(&model), &["--mcp-servers-json", &mcp]);
    let client = reqwest::blocking::Client::new();
    // The server lists the tool once its MCP server is up.
    let t0 = Instant::now();
    while !client
        .get(format!("{}/api/tools", s.base))
        .send()
        .unwrap()
        .text()
        .unwrap()
        .contains("t_gate")
    {
        assert!(t0.elapsed() < Duration::from_secs(60), "t_gate never listed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let session: serde_json::Value = client
        .post(format!("{}/api/chat/sessions/create", s.base))
        .json(&json!({"model": "smol", "params": {"max_tokens": 32, "temperature": 0, "server_tools": ["t_gate"]}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = session["id"].as_str().unwrap().to_string();
    let resp = client
        .post(format!("{}/api/chat/send", s.base))
        .json(&json!({"session_id": id, "stream": true, "message": "Open the gate.",
            "tool_choice": {"type": "function", "function": {"name": "t_gate"}}}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut reader = BufReader::new(resp);
    let mut line = String::new();
    while !line.starts_with("event: tool_call") {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the answer ended before the call");
    }
    s.child.kill().unwrap(); // SIGKILL, the tool still waiting on its gate
    s.child.wait().unwrap();
    std::fs::write(&gate, "").unwrap(); // lets the orphaned tool end
    let dir = s.dir.clone();
    drop(s);
    let (again, _) = spawn_in(dir, &["serve"], &[], &[]);
    let history: serde_json::Value = client
        .get(format!("{}/api/chat/history/{id}", again.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let turn = &history["messages"][1];
    assert_eq!(turn["finish_reason"], "interrupted", "{history}");
    assert_eq!(turn["tool_calls"][0]["name"], "t_gate", "the call is kept: {history}");
    assert_eq!(history["messages"].as_array().unwrap().len(), 2, "no result was stored: {history}");
}

/// SIGTERM while a tool call waits (a gate that never opens): the MCP servers stop first, the
/// call ends with an error result, its request finishes and the server exits well within the
/// grace period, which a stream would be given.
#[test]
fn sigterm_does_not_wait_for_a_tool_call() {
    let Some(py) = testkit::python() else {
        return;
    };
    let gate_dir = tempfile::tempdir().unwrap();
    let mcp = json!({"mcpServers": {"t": {
        "command": py.to_string_lossy(),
        "args": [testkit::py_script("mcp_test_server.py").to_string_lossy()],
        "env": {"MCP_TEST_GATE": gate_dir.path().join("never").to_string_lossy()},
    }}})
    .to_string();
    let (mut s, _) = start(None, &["--mcp-servers-json", &mcp, "--grace", "600"]);
    let base = s.base.clone();
    let call = std::thread::spawn(move || {
        reqwest::blocking::Client::new()
            .post(format!("{base}/tools"))
            .json(&json!({"tool": "t_gate", "params": {}}))
            .send()
            .and_then(|r| r.text())
    });
    // The call is under way once the server's log says so; give it a moment to reach the tool.
    std::thread::sleep(Duration::from_millis(500));
    sigterm(&s.child);
    let status = wait_exit(&mut s.child, Duration::from_secs(60));
    assert!(status.success(), "{status}");
    let answer = call.join().unwrap();
    if let Ok(text) = answer {
        assert!(text.contains("error"), "the call ends with an error result: {text}");
    }
}

#[test]
fn shutdown_api_exits_cleanly() {
    let (mut s, _) = start(None, &["--admin-api-key", "adm"]);
    let c = reqwest::blocking::Client::new();
    let r = c
        .post(format!("{}/api/system/shutdown", s.base))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(format!("{}/api/system/shutdown", s.base))
        .bearer_auth("adm")
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let status = wait_exit(&mut s.child, Duration::from_secs(20));
    assert!(status.success(), "{status}");
    let mut err = String::new();
    s.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("adm\""), "a key must never be logged");
}

/// Runs `tests/clients/<script>` (an official SDK driving the binary) against `serve` with a
/// key; it prints `all ok` when every check passed.
fn python_sdk_check(script: &str) {
    let Some(model) = testkit::smollm2() else {
        return;
    };
    let Some(python) = testkit::python() else {
        return;
    };
    let (s, _) = start(Some(&model), &["--api-key", "sdk-key"]);
    run_client_check(&python, script, &[&s.base, "smol", "sdk-key"]);
}

/// Runs `tests/clients/<script>` with `args`; it must exit 0 and print `all ok`.
fn run_client_check(python: &Path, script: &str, args: &[&str]) {
    let out = Command::new(python)
        .arg(testkit::client_check(script))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("all ok"), "{stdout}");
}

/// The official `openai` Python SDK against `/v1` (models, chat and its stream, tools, JSON
/// schema, completions, embeddings, Responses, errors) and, by base URL, LM Studio's
/// `/api/v0` (models, chat and its stream with `stats`, completions, embeddings).
#[test]
fn openai_python_sdk() {
    python_sdk_check("openai_sdk_check.py");
}

/// The official `anthropic` Python SDK (2.x) against `/v1/messages` and
/// `/v1/messages/count_tokens`, with its key sent as `x-api-key`.
#[test]
fn anthropic_python_sdk() {
    python_sdk_check("anthropic_sdk_check.py");
}

/// The official `ollama` Python library against `/api/chat`, `/api/generate`, `/api/embed`
/// and `/api/embeddings`: streams and not, a tool call round trip, `format` schemas, `think`.
#[test]
fn ollama_python_sdk() {
    python_sdk_check("ollama_sdk_check.py");
}

/// With `-m`, `/health` is 503 ("Loading model", as llama-server) until the model is found and
/// loaded: clients that wait for a healthy server (llama.cpp's own test suite does) must never
/// get a 404 for a model the folder scan has not reached yet.
#[test]
fn health_waits_for_the_m_model() {
    let Some(model) = testkit::smollm2() else {
        return;
    };
    let m = model.to_string_lossy().into_owned();
    let (s, _) = start(None, &["-m", &m]);
    let models: serde_json::Value = reqwest::blocking::get(format!("{}/v1/models", s.base))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(models["data"][0]["state"], "loaded", "{models}");
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/completion", s.base))
        .json(&json!({"prompt": "Hello", "n_predict": 1}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Vertex AI's prediction protocol (`AIP_MODE=PREDICTION`, as llama-server): its port and
/// health route, each instance answered by the route its `@requestFormat` names (stream
/// forced off), a failing instance's error in its place, and the number of instances capped
/// by `limits.max_completions` before any runs.
#[test]
fn vertex_ai_predict_route() {
    let Some(model) = testkit::smollm2() else {
        return;
    };
    let m = model.to_string_lossy().into_owned();
    let port = free_port();
    let env = [
        ("AIP_MODE", "PREDICTION".to_string()),
        ("AIP_HTTP_PORT", port.to_string()),
        ("AIP_HEALTH_ROUTE", "/vertex-health".to_string()),
        ("LLAMA_DASHBOARD_LIMITS_MAX_COMPLETIONS", "4".to_string()),
    ];
    let (s, _) = start_env(None, &["-m", &m], &env);
    assert!(s.base.ends_with(&format!(":{port}")));
    let c = reqwest::blocking::Client::new();
    let r = c.get(format!("{}/vertex-health", s.base)).send().unwrap();
    assert_eq!(r.status(), 200);
    let chat = |text: &str| json!({"max_tokens": 4, "temperature": 0, "messages": [{"role": "user", "content": text}]});
    let mut streamed = chat("Say world");
    streamed["@requestFormat"] = json!("/v1/chat/completions");
    streamed["stream"] = json!(true);
    let mut first = chat("Say hello");
    first["@requestFormat"] = json!("chatCompletions");
    let body = json!({"instances": [
        first,
        streamed,
        {"@requestFormat": "noSuchRoute", "prompt": "x"},
        {"@requestFormat": "/api/system/shutdown"},
    ]});
    let r = c
        .post(format!("{}/predict", s.base))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().unwrap();
    let p = v["predictions"].as_array().unwrap();
    assert_eq!(p.len(), 4, "{v}");
    for answer in &p[..2] {
        assert_eq!(answer["object"], "chat.completion", "{answer}");
        assert_eq!(answer["choices"][0]["message"]["role"], "assistant");
        assert!(
            !answer["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .is_empty()
        );
    }
    assert!(
        p[2]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("noSuchRoute"),
        "{v}"
    );
    // Admin routes cannot be reached through an inference route.
    assert!(
        p[3]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no route"),
        "{v}"
    );
    assert_eq!(
        c.get(format!("{}/health", s.base)).send().unwrap().status(),
        200
    );
    // A route's own refusal is that instance's answer, in the route's error shape.
    let bad = json!({"instances": [{"@requestFormat": "chatCompletions", "messages": []}]});
    let v: serde_json::Value = c
        .post(format!("{}/predict", s.base))
        .json(&bad)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["predictions"][0]["error"]["param"], "messages", "{v}");
    // More instances than limits.max_completions: refused whole, naming the setting.
    let many = json!({"instances": vec![chat("x"); 5]});
    let r = c
        .post(format!("{}/predict", s.base))
        .json(&many)
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("limits.max_completions"));
}

/// `serve --ollama-port N` answers Ollama's clients on N too (the same keys), and `ps` shows
/// what the running server has loaded, as `ollama ps` does.
#[test]
fn ollama_port_and_ps() {
    let Some(model) = testkit::smollm2() else {
        return;
    };
    let ollama = free_port();
    let (s, _) = start(
        Some(&model),
        &["--api-key", "k", "--ollama-port", &ollama.to_string()],
    );
    let c = reqwest::blocking::Client::new();
    let other = format!("http://127.0.0.1:{ollama}");
    let r = c.get(format!("{other}/")).send().unwrap();
    assert_eq!(r.text().unwrap(), "Ollama is running");
    let r = c.get(format!("{other}/api/tags")).send().unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(format!("{other}/api/show"))
        .bearer_auth("k")
        .json(&json!({"model": "smol"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);

    let ps = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_llama-dashboard"))
            .env_clear()
            .env("LLAMA_DASHBOARD_API_KEY", "k")
            .args(["ps", "--url", &s.base])
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let table = ps(&[]);
    assert!(table.contains("NAME") && !table.contains("smol"), "{table}");
    let r = c
        .post(format!("{}/v1/chat/completions", s.base))
        .bearer_auth("k")
        .json(&json!({"model": "smol", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let table = ps(&[]);
    let row = table
        .lines()
        .find(|l| l.contains("smol:latest"))
        .unwrap_or_else(|| panic!("{table}"));
    // `serve` keeps models loaded unless models.sleep_idle_seconds says otherwise.
    assert!(row.contains("100% CPU") && row.contains("Forever"), "{row}");
    let json: serde_json::Value = serde_json::from_str(&ps(&["--json"])).unwrap();
    assert_eq!(json["models"][0]["name"], "smol:latest");
    // No server there: a clear error, not a panic.
    let out = Command::new(env!("CARGO_BIN_EXE_llama-dashboard"))
        .env_clear()
        .args(["ps", "--url", &format!("http://127.0.0.1:{}", free_port())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no server answers"));
}

/// The official `ollama` Python library against the Ollama model routes
/// (`tests/clients/ollama_models_sdk_check.py`): list, show, ps, copy, delete, and a pull from a
/// local registry (testhub, plain http: `download.insecure`) with an admin key.
#[test]
fn ollama_python_sdk_models() {
    let Some(model) = testkit::smollm2() else {
        return;
    };
    let Some(python) = testkit::python() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hub = rt.block_on(testhub::Hub::start());
    hub.add_ollama_model(
        "library",
        "tiny",
        "latest",
        &[(
            "application/vnd.ollama.image.model",
            testhub::gguf_model("tiny", 15),
        )],
    );
    let name = format!(
        "{}/library/tiny:latest",
        hub.url.strip_prefix("http://").unwrap()
    );
    let (s, _) = start_env(
        Some(&model),
        &["--api-key", "sdk-key", "--admin-api-key", "adm"],
        &[("LLAMA_DASHBOARD_DOWNLOAD_INSECURE", "true".into())],
    );
    run_client_check(
        &python,
        "ollama_models_sdk_check.py",
        &[&s.base, "smol", "sdk-key", "adm", &name],
    );
}

/// Whether process `pid` still runs (a zombie waiting to be reaped has ended).
fn running(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // `pid (comm) S ...`: the state follows the last parenthesis.
        let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
        !state.is_some_and(|s| s.starts_with('Z') || s.starts_with('X'))
    })
}

/// However the server ends — even SIGKILL, which it cannot see — its model workers end too
/// (`PR_SET_PDEATHSIG`, and a worker leaves when its input closes).
#[test]
fn a_killed_server_leaves_no_worker_running() {
    let Some(model) = testkit::smollm2() else {
        return;
    };
    let (mut s, _) = start(Some(&model), &[]);
    let client = reqwest::blocking::Client::new();
    let resp = client
        .post(format!("{}/v1/chat/completions", s.base))
        .json(&json!({"model": "smol", "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 2}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let list: serde_json::Value = client
        .get(format!("{}/api/models", s.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let pid = list["models"][0]["worker"]["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("the model runs in a worker: {list}"));
    assert!(list["models"][0]["worker"]["rss_bytes"].as_u64().unwrap() > 0);
    // `status_kib` reads any number field of /proc/<pid>/status (PPid has no unit).
    assert_eq!(
        status_kib(u32::try_from(pid).unwrap(), "PPid:"),
        u64::from(s.child.id())
    );
    s.child.kill().unwrap(); // SIGKILL
    s.child.wait().unwrap();
    let t0 = Instant::now();
    while running(pid) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "worker {pid} outlived its server"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
