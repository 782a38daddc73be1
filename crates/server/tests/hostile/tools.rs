//! The tool routes (llama-server's `/tools`, `/api/tools`, `/api/mcp/servers*`) and the
//! agent loop's `server_tools` under attack: pages of other origins (a page on another
//! loopback port may chat, but not run tools that fetch URLs and read files), rebound host
//! names, bodies that are not JSON or not ours, deep nesting, names that are not names, more
//! servers than the setting allows. Each is a 4xx in the route's shape, nothing is stored,
//! and the server goes on serving.

use super::*;
use reqwest::Method;
use serde_json::{Value, json};

const EVIL: &str = "https://evil.example";
const LOCAL_PAGE: &str = "http://localhost:3000";

async fn raw(s: &TestServer, method: Method, path: &str, content_type: &str, body: String) -> (u16, Value) {
    s.send(s.client.request(method, s.url(path)).header("content-type", content_type).body(body)).await
}

#[track_caller]
fn status_says(got: (u16, Value), status: u16, words: &str, what: &str) {
    let (code, body) = got;
    assert_eq!(code, status, "{what}: {body}");
    let message = error_message(&body);
    assert!(message.contains(words), "{what}: {words:?} in {body}");
}

/// A server that cannot start (nothing listens there): enough to be stored and listed.
fn unreachable() -> Value {
    json!({"url": "http://127.0.0.1:9/mcp"})
}

/// Every tool route, with a well-formed body where it takes one.
fn routes() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/tools", None),
        (Method::POST, "/tools", Some(json!({"tool": "current_datetime", "params": {}}))),
        (Method::GET, "/api/tools", None),
        (Method::GET, "/api/mcp/servers", None),
        (Method::POST, "/api/mcp/servers", Some(json!({"name": "x", "config": unreachable()}))),
        (Method::GET, "/api/mcp/servers/a", None),
        (Method::PUT, "/api/mcp/servers/a", Some(unreachable())),
        (Method::DELETE, "/api/mcp/servers/a", None),
        (Method::POST, "/api/mcp/servers/a/enable", None),
        (Method::POST, "/api/mcp/servers/a/disable", None),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_routes_refuse_other_pages_and_rebound_hosts() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let (status, r) = s.post("/api/mcp/servers", &json!({"name": "a", "config": unreachable()})).await;
    assert_eq!(status, 201, "{r}");
    let port = s.base.rsplit(':').next().unwrap().to_string();
    for (method, path, body) in routes() {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        for origin in [EVIL, LOCAL_PAGE, "null"] {
            let req = s
                .client
                .request(method.clone(), s.url(path))
                .header("origin", origin)
                .header("content-type", "text/plain")
                .body(body.clone());
            let (status, r) = s.send(req).await;
            assert_eq!(status, 403, "{method} {path} from {origin}: {r}");
            assert!(error_message(&r).contains("server.cors_origins"), "{method} {path}: {r}");
        }
        let req = s.client.request(method.clone(), s.url(path)).header("host", format!("evil.example:{port}"));
        status_says(s.send(req).await, 403, "Host 'evil.example", &format!("{method} {path} rebound"));
    }
    // A page on another loopback port may chat, but not make the server run tools.
    let mut chat = chat(FRANCE, 4);
    let (status, r) = s
        .send(s.client.post(s.url("/v1/chat/completions")).header("origin", LOCAL_PAGE).json(&chat))
        .await;
    assert_eq!(status, 200, "{r}");
    chat["server_tools"] = json!(["*"]);
    let (status, r) = s
        .send(s.client.post(s.url("/v1/chat/completions")).header("origin", LOCAL_PAGE).json(&chat))
        .await;
    assert_eq!(status, 403, "{r}");
    assert_eq!(r["error"]["type"], "permission_error", "OpenAI's shape: {r}");
    assert!(error_message(&r).contains("may not run server tools"), "{r}");
    // The same origin (the dashboard) may.
    let (status, r) = s
        .send(s.client.post(s.url("/tools")).header("origin", &s.base).json(&json!({"tool": "current_datetime", "params": {}})))
        .await;
    assert_eq!(status, 200, "{r}");
    // Nothing was added, changed or removed.
    let (_, servers) = s.get("/api/mcp/servers").await;
    let names: Vec<&str> = servers["servers"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a"], "{servers}");
    assert_eq!(servers["servers"][0]["enabled"], true);
    s.state.tools.shutdown().await;
    still_serves(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_routes_refuse_hostile_bodies_names_and_counts() {
    let Some(s) = TestServer::start(Opts::default().tweak(|c| {
        c.server.body_limit_mb = 1;
        c.tools.max_mcp_servers = 2;
    }))
    .await
    else {
        return;
    };
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    for (method, path, body) in routes() {
        let Some(_) = body else { continue };
        let what = format!("{method} {path}");
        for (ct, text) in [
            ("application/x-www-form-urlencoded", "tool=x&params=y".to_string()),
            ("application/json", "{\"tool\": ".to_string()),
            ("application/json", format!("{{\"params\": {}}}", deep(100_000))),
        ] {
            let (status, r) = raw(&s, method.clone(), path, ct, text).await;
            assert_eq!(status, 400, "{what} {ct}: {r}");
            assert!(!error_message(&r).is_empty(), "{what}: {r}");
        }
        let huge = format!("{{\"tool\": \"{}\"}}", "x".repeat((1 << 20) + 64));
        status_says(raw(&s, method.clone(), path, "application/json", huge).await, 413, "too large", &what);
    }
    // llama-server's /tools: wrong types, unknown tools, arguments that are not the schema's
    // (a tool's own error: 200 with `error`, as llama-server answers).
    status_says(s.post("/tools", &json!({"tool": 5})).await, 400, "tool", "tool type");
    status_says(s.post("/tools", &json!({"params": {}})).await, 400, "tool", "no tool");
    status_says(s.post("/tools", &json!({"tool": "x".repeat(100_000), "params": {}})).await, 404, "unknown tool", "long name");
    status_says(s.post("/tools", &json!({"tool": "current_datetime", "stream": true})).await, 400, "stream", "stream");
    for params in [json!({"timezone": 5}), json!("not an object"), json!({"timezone": "x".repeat(100_000)})] {
        let (status, r) = s.post("/tools", &json!({"tool": "current_datetime", "params": params})).await;
        assert_eq!(status, 200, "{r}");
        assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()), "{params:.80}: {r}");
    }
    // The MCP servers' API: unknown fields, names that are not names, entries that are not
    // entries, ids that do not exist.
    for (body, words) in [
        (json!({"name": "a", "config": unreachable(), "colour": 1}), "unknown field"),
        (json!({"name": "../etc", "config": unreachable()}), "ASCII letters"),
        (json!({"name": "a b", "config": unreachable()}), "ASCII letters"),
        (json!({"name": "n".repeat(10_000), "config": unreachable()}), "1 to 48"),
        (json!({"name": "", "config": unreachable()}), "1 to 48"),
        (json!({"name": "a", "config": "npx"}), "must be an object"),
        (json!({"name": "a", "config": {"command": 5}}), "must be a string"),
        (json!({"name": "a", "config": {"command": "x", "url": "http://a"}}), "not both"),
        (json!({"name": "a", "config": {"command": "x", "env": {"A": 1}}}), "must be a string"),
        (json!({"name": "a"}), "config"),
        (json!({"config": unreachable()}), "name"),
        (json!({"mcpServers": "nope"}), "mcpServers"),
        (json!({"mcpServers": {"../x": unreachable()}}), "ASCII letters"),
    ] {
        let (status, r) = s.post("/api/mcp/servers", &body).await;
        assert_eq!(status, 400, "{body:.100}: {r}");
        let text = r.to_string();
        assert!(text.contains(words), "{body:.100}: {words:?} in {r}");
    }
    for (method, path) in [
        (Method::GET, "/api/mcp/servers/nope"),
        (Method::DELETE, "/api/mcp/servers/nope"),
        (Method::POST, "/api/mcp/servers/nope/enable"),
        (Method::POST, "/api/mcp/servers/nope/disable"),
        (Method::GET, "/api/mcp/servers/..%2F..%2Fetc"),
    ] {
        let (status, r) = s.send(s.client.request(method.clone(), s.url(path))).await;
        assert_eq!(status, 404, "{method} {path}: {r}");
        assert_eq!(r["error"]["status"], 404, "management shape: {r}");
    }
    status_says(
        s.send(s.client.put(s.url("/api/mcp/servers/nope")).json(&unreachable())).await,
        404,
        "no MCP server named",
        "put unknown",
    );
    // A new server with the mask for a value: nothing is held behind it, so it is refused,
    // never stored as the server's environment.
    status_says(
        s.post("/api/mcp/servers", &json!({"name": "m", "config": {"command": "x", "env": {"TOKEN": "********"}}})).await,
        400,
        "holds no value",
        "add the mask",
    );
    // More servers than `tools.max_mcp_servers`: refused by name, the rest kept.
    for name in ["a", "b"] {
        let (status, r) = s.post("/api/mcp/servers", &json!({"name": name, "config": unreachable()})).await;
        assert_eq!(status, 201, "{r}");
    }
    status_says(
        s.post("/api/mcp/servers", &json!({"name": "c", "config": unreachable()})).await,
        409,
        "tools.max_mcp_servers",
        "a third server",
    );
    let (status, r) = s.post("/api/mcp/servers", &json!({"mcpServers": {"d": unreachable(), "e": unreachable()}})).await;
    assert_eq!(status, 400, "{r}");
    assert!(r["errors"].to_string().contains("tools.max_mcp_servers"), "{r}");
    // Editing one that exists is not one more.
    let (status, r) = s.send(s.client.put(s.url("/api/mcp/servers/a")).json(&json!({"url": "http://127.0.0.1:9/other"}))).await;
    assert_eq!(status, 200, "{r}");
    // The mask (what the API shows for env and header values) for a value that is not held
    // is refused, never stored as a header.
    status_says(
        s.send(s.client.put(s.url("/api/mcp/servers/a")).json(&json!({"url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "********"}}))).await,
        400,
        "holds no value",
        "put the mask",
    );
    status_says(
        s.send(s.client.put(s.url("/api/mcp/servers/a")).json(&json!(["not", "an", "entry"]))).await,
        400,
        "object",
        "put a list",
    );
    let (_, servers) = s.get("/api/mcp/servers").await;
    assert_eq!(servers["servers"].as_array().unwrap().len(), 2, "{servers}");
    // A chat naming tools that are not there, or too deep to be a request.
    let mut c = chat(FRANCE, 4);
    c["server_tools"] = json!(["nope"]);
    status_says(s.post("/v1/chat/completions", &c).await, 400, "no server tool named", "server_tools");
    c["server_tools"] = json!("all");
    status_says(s.post("/v1/chat/completions", &c).await, 400, "server_tools", "server_tools type");
    s.state.tools.shutdown().await;
    still_serves(&s).await;
}
