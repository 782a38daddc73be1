//! The registry against real MCP servers (scripts/py/mcp_test_server.py, the official Python
//! SDK) over stdio, SSE and streamable HTTP. Needs LLAMA_DASHBOARD_PYTHON with `mcp`
//! installed (scripts/setup.sh); under CI=true a missing one fails (testkit).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use tools::{Registry, ServerConfig, ServerState, Supervision, Transport};

fn supervision() -> Supervision {
    Supervision {
        call_timeout: Duration::from_secs(60),
        start_timeout: Duration::from_secs(60),
        backoff_min: Duration::from_millis(200),
        backoff_max: Duration::from_secs(2),
    }
}

fn registry() -> Registry {
    let builtins = tools::BuiltinSettings { datetime: false, fetch: false, ..Default::default() };
    Registry::new(builtins, supervision())
}

fn stdio(name: &str, python: &PathBuf, extra: &[&str]) -> ServerConfig {
    let mut args = vec![testkit::py_script("mcp_test_server.py").display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    ServerConfig {
        name: name.into(),
        transport: Transport::Stdio { command: python.display().to_string(), args, env: Default::default(), cwd: None },
        enabled: true,
        timeout_ms: None,
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn running(reg: &Registry, name: &str) {
    wait_for(&format!("{name} running"), || reg.server(name).is_some_and(|s| s.state == ServerState::Running)).await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the test server on a port for an HTTP transport; killed on drop.
struct Remote(std::process::Child);
impl Drop for Remote {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
fn remote(python: &PathBuf, transport: &str, port: u16) -> Remote {
    Remote(
        std::process::Command::new(python)
            .arg(testkit::py_script("mcp_test_server.py"))
            .args(["--transport", transport, "--port", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_server_lists_calls_validates_and_reports_tool_errors() {
    let Some(py) = testkit::python() else { return };
    let reg = registry();
    reg.put_server(stdio("t", &py, &[])).await;
    running(&reg, "t").await;
    let names: Vec<String> = reg.tools(false).into_iter().map(|t| t.name).collect();
    for n in ["t_echo", "t_add", "t_slow", "t_fail", "t_crash"] {
        assert!(names.contains(&n.to_string()), "{names:?}");
    }
    let add = reg.find("t_add", false).unwrap();
    assert_eq!(add.parameters["properties"]["a"]["type"], "integer", "{}", add.parameters);

    let out = reg.call("t_echo", json!({"message": "hi"}), false).await.unwrap();
    assert_eq!((out.text.as_str(), out.is_error), ("echo: hi", false));
    assert_eq!(reg.call("t_add", json!({"a": 2, "b": 40}), false).await.unwrap().text, "42");

    // Checked against the schema before the server sees it.
    let bad = reg.call("t_add", json!({"a": "two", "b": 1}), false).await.unwrap();
    assert!(bad.is_error && bad.text.contains("invalid arguments for t_add") && bad.text.contains("/a"), "{bad:?}");
    let missing = reg.call("t_add", json!({"a": 1}), false).await.unwrap();
    assert!(missing.is_error && missing.text.contains("\"b\" is a required property"), "{missing:?}");

    // The tool's own error is its result, not an Err.
    let failed = reg.call("t_fail", json!({"reason": "because"}), false).await.unwrap();
    assert!(failed.is_error && failed.text.contains("failed on purpose: because"), "{failed:?}");
    assert!(reg.call("t_nope", json!({}), false).await.is_err());

    // A notification in the middle of a call does not disturb it.
    assert_eq!(reg.call("t_note", json!({}), false).await.unwrap().text, "noted");

    // The list is read again when the server announces a change.
    assert_eq!(reg.call("t_grow", json!({}), false).await.unwrap().text, "grown");
    wait_for("t_extra listed", || reg.find("t_extra", false).is_some()).await;
    assert_eq!(reg.call("t_extra", json!({}), false).await.unwrap().text, "extra!");
    reg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_server_is_restarted_and_works_again() {
    let Some(py) = testkit::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let starts = dir.path().join("starts");
    let reg = registry();
    reg.put_server(stdio("c", &py, &["--crash-file", starts.to_str().unwrap()])).await;
    running(&reg, "c").await;
    let out = reg.call("c_crash", json!({}), false).await.unwrap();
    assert!(out.is_error, "{out:?}");
    wait_for("a restart", || reg.server("c").unwrap().restarts >= 1).await;
    running(&reg, "c").await;
    assert_eq!(std::fs::read_to_string(&starts).unwrap().lines().count(), 2);
    assert_eq!(reg.call("c_echo", json!({"message": "back"}), false).await.unwrap().text, "echo: back");
    reg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_calls_time_out_and_calls_run_concurrently() {
    let Some(py) = testkit::python() else { return };
    let reg = std::sync::Arc::new(registry());
    let mut cfg = stdio("s", &py, &[]);
    cfg.timeout_ms = Some(1500);
    reg.put_server(cfg).await;
    running(&reg, "s").await;
    let out = reg.call("s_slow", json!({"seconds": 120}), false).await.unwrap();
    assert!(out.is_error && out.text.contains("did not answer within 1500 ms"), "{out:?}");

    // A call in flight does not hold the others: echo answers while slow still runs.
    let mut cfg = stdio("s", &py, &[]);
    cfg.timeout_ms = Some(120_000);
    reg.put_server(cfg).await;
    running(&reg, "s").await;
    let r = reg.clone();
    let slow = tokio::spawn(async move { r.call("s_slow", json!({"seconds": 60}), false).await });
    for i in 0..4 {
        let out = reg.call("s_echo", json!({"message": i.to_string()}), false).await.unwrap();
        assert_eq!(out.text, format!("echo: {i}"));
    }
    let answers = futures::future::join_all((0..4).map(|i| reg.call("s_add", json!({"a": i, "b": 1}), false))).await;
    assert_eq!(answers.into_iter().map(|a| a.unwrap().text).collect::<Vec<_>>(), ["1", "2", "3", "4"]);
    assert!(!slow.is_finished(), "the slow call should still be running");
    slow.abort();
    reg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_and_streamable_http_servers_next_to_a_stdio_one() {
    let Some(py) = testkit::python() else { return };
    let (p1, p2) = (free_port(), free_port());
    let _sse = remote(&py, "sse", p1);
    let _http = remote(&py, "streamable-http", p2);
    let config = format!(
        r#"{{"mcpServers": {{
            "legacy": {{"url": "http://127.0.0.1:{p1}/sse"}},
            "web": {{"url": "http://127.0.0.1:{p2}/mcp", "headers": {{"Authorization": "Bearer t"}}}},
            "local": {{"command": "{}", "args": ["{}"]}},
            "broken": {{"args": ["x"]}},
            "missing": {{"command": "/nonexistent/mcp-server-binary"}}
        }}}}"#,
        py.display(),
        testkit::py_script("mcp_test_server.py").display()
    );
    let parsed = tools::config::parse(&config).unwrap();
    assert_eq!(parsed.errors.len(), 1);
    assert!(parsed.errors[0].to_string().contains("\"broken\"") && parsed.errors[0].message.contains("needs \"command\""));
    let reg = registry();
    for s in parsed.servers {
        reg.put_server(s).await;
    }
    // The HTTP servers may take a moment to listen: they are retried with backoff.
    for name in ["legacy", "web", "local"] {
        running(&reg, name).await;
    }
    assert_eq!(reg.server("legacy").unwrap().transport, "sse");
    assert_eq!(reg.server("web").unwrap().transport, "streamable_http");
    for (name, msg) in [("legacy", "a"), ("web", "b"), ("local", "c")] {
        let out = reg.call(&format!("{name}_echo"), json!({"message": msg}), false).await.unwrap();
        assert_eq!(out.text, format!("echo: {msg}"), "{name}");
    }
    assert_eq!(reg.call("web_note", json!({}), false).await.unwrap().text, "noted");
    assert_eq!(reg.call("legacy_add", json!({"a": 1, "b": 2}), false).await.unwrap().text, "3");
    let missing = reg.server("missing").unwrap();
    assert_ne!(missing.state, ServerState::Running);
    wait_for("the missing server's error", || {
        reg.server("missing").unwrap().error.is_some_and(|e| e.contains("cannot start"))
    })
    .await;
    let out = reg.call("missing_echo", json!({}), false).await;
    assert!(out.is_err(), "a server that never ran offers no tools");
    reg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_at_start_reports_its_stderr_and_shutdown_kills_grandchildren() {
    let Some(py) = testkit::python() else { return };
    let reg = registry();
    let dying = ServerConfig {
        name: "dying".into(),
        transport: Transport::Stdio {
            command: py.display().to_string(),
            args: vec!["-c".into(), "import sys; sys.stderr.write('no config here\\n'); sys.exit(2)".into()],
            env: Default::default(),
            cwd: None,
        },
        enabled: true,
        timeout_ms: None,
    };
    let sleepers = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
            .filter(|c| c == b"sleep\x006011\x00")
            .count()
    };
    let before = sleepers();
    reg.put_server(dying).await;
    reg.put_server(stdio("g", &py, &["--grandchild"])).await;
    running(&reg, "g").await;
    wait_for("the dying server's stderr", || {
        reg.server("dying").unwrap().error.is_some_and(|e| e.contains("no config here"))
    })
    .await;
    assert_eq!(reg.call("g_echo", json!({"message": "x"}), false).await.unwrap().text, "echo: x");
    assert!(sleepers() > before);
    // The grandchild keeps the pipes open; shutdown kills the process group and returns.
    tokio::time::timeout(Duration::from_secs(60), reg.shutdown()).await.expect("shutdown hung");
    wait_for("the grandchild gone", || sleepers() == before).await;
}
