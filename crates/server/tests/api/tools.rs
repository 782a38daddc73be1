//! Tools over HTTP (issue 14) with real MCP servers (scripts/py/mcp_test_server.py, the
//! official Python SDK): llama-server's `/tools`, `/api/tools`, the MCP servers' CRUD and
//! who may use them, and the agent loop on `/v1/chat/completions` (`server_tools`) on the
//! test model.

use crate::sessions::{create, shape, stream_events, tree};
use crate::support::{Opts, SMOL, TestServer};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

fn python() -> Option<PathBuf> {
    testkit::python()
}

fn entry(py: &std::path::Path) -> Value {
    json!({"command": py.display().to_string(), "args": [testkit::py_script("mcp_test_server.py").display().to_string()]})
}

/// `tools.mcp_servers_json` with one server `t` (what `serve --mcp-servers-json` sets).
fn with_server(py: &std::path::Path, opts: Opts) -> Opts {
    let json = json!({"mcpServers": {"t": entry(py)}}).to_string();
    opts.tweak(move |c| c.tools.mcp_servers_json = Some(json.clone()))
}

async fn wait_for_tool(s: &TestServer, name: &str) {
    for _ in 0..600 {
        let (_, body) = s.get("/api/tools").await;
        if body["tools"].as_array().is_some_and(|t| t.iter().any(|t| t["name"] == name)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} never listed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_server_tools_routes_and_mcp_servers_crud() {
    let Some(py) = python() else { return };
    let s = TestServer::empty(with_server(&py, Opts::default())).await;
    wait_for_tool(&s, "t_echo").await;

    // llama-server's shapes.
    let (status, list) = s.get("/tools").await;
    assert_eq!(status, 200);
    let list = list.as_array().unwrap();
    let echo = list.iter().find(|t| t["tool"] == "t_echo").unwrap();
    assert_eq!(echo["type"], "mcp");
    assert_eq!(echo["definition"]["function"]["name"], "t_echo");
    assert_eq!(echo["definition"]["function"]["parameters"]["properties"]["message"]["type"], "string");
    let dt = list.iter().find(|t| t["tool"] == "current_datetime").unwrap();
    assert_eq!(dt["type"], "server");
    assert!(!list.iter().any(|t| t["tool"] == "web_search"), "no search provider configured");
    let (status, out) = s.post("/tools", &json!({"tool": "t_echo", "params": {"message": "hello world"}})).await;
    assert_eq!((status, out), (200, json!({"plain_text_response": "echo: hello world"})));
    let (status, out) = s.post("/tools", &json!({"tool": "t_fail", "params": {"reason": "x"}})).await;
    assert_eq!(status, 200);
    assert!(out["error"].as_str().unwrap().contains("failed on purpose: x"), "{out}");
    let (status, out) = s.post("/tools", &json!({"tool": "t_add", "params": {"a": "one", "b": 2}})).await;
    assert_eq!(status, 200);
    assert!(out["error"].as_str().unwrap().contains("invalid arguments for t_add"), "{out}");
    let (status, out) = s.post("/tools", &json!({"tool": "nope", "params": {}})).await;
    assert_eq!(status, 404, "{out}");
    assert!(out["error"]["message"].as_str().unwrap().contains("unknown tool \"nope\""), "{out}");

    // Add, import (a bad entry is named, the rest is added), disable, enable, remove.
    let (status, added) = s.post("/api/mcp/servers", &json!({"name": "two", "config": entry(&py)})).await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["origin"], "stored");
    let (status, again) = s.post("/api/mcp/servers", &json!({"name": "two", "config": entry(&py)})).await;
    assert_eq!(status, 409, "{again}");
    let (status, imported) = s
        .post("/api/mcp/servers", &json!({"mcpServers": {"three": entry(&py), "bad": {"args": []}}}))
        .await;
    assert_eq!(status, 201, "{imported}");
    assert_eq!(imported["added"], json!(["three"]));
    assert_eq!(imported["errors"][0]["name"], "bad");
    assert!(imported["errors"][0]["message"].as_str().unwrap().contains("needs \"command\""));
    wait_for_tool(&s, "two_echo").await;
    wait_for_tool(&s, "three_echo").await;
    let (_, tools) = s.get("/api/tools").await;
    let two = tools["tools"].as_array().unwrap().iter().find(|t| t["name"] == "two_echo").unwrap().clone();
    assert_eq!(two["source"], json!({"type": "mcp", "server": "two"}));
    assert_eq!(two["server_state"], "running");
    let (status, off) = s.post("/api/mcp/servers/two/disable", &json!({})).await;
    assert_eq!((status, off["state"].as_str()), (200, Some("disabled")), "{off}");
    let (_, tools) = s.get("/api/tools").await;
    assert!(!tools["tools"].as_array().unwrap().iter().any(|t| t["name"] == "two_echo"));
    let (status, _) = s.post("/api/mcp/servers/two/enable", &json!({})).await;
    assert_eq!(status, 200);
    wait_for_tool(&s, "two_echo").await;
    let (status, _) = s.send(s.client.delete(s.url("/api/mcp/servers/two"))).await;
    assert_eq!(status, 200);
    let (status, _) = s.get("/api/mcp/servers/two").await;
    assert_eq!(status, 404);
    // A server given to the process is not the API's to remove.
    let (status, body) = s.send(s.client.delete(s.url("/api/mcp/servers/t"))).await;
    assert_eq!(status, 409, "{body}");

    // Stored servers come back after a restart.
    let again = s.restart().await;
    wait_for_tool(&again, "three_echo").await;
    let (_, servers) = again.get("/api/mcp/servers").await;
    let names: Vec<&str> = servers["servers"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["t", "three"]);
    again.state.tools.shutdown().await;
    s.state.tools.shutdown().await;
}

/// The dashboard's edit form: it shows a server's entry with `env`/`headers` values masked and
/// sends it back with the fields changed; a masked value keeps what is stored, a new one
/// replaces it, and a masked value for a name nothing is stored under is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_mcp_server_keeps_the_secrets_it_was_shown_masked() {
    let s = TestServer::empty(Opts::default()).await;
    let entry = json!({"url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer s1", "X-Team": "a"}});
    let (status, added) = s.post("/api/mcp/servers", &json!({"name": "web", "config": entry})).await;
    assert_eq!(status, 201, "{added}");
    let (_, shown) = s.get("/api/mcp/servers/web").await;
    assert_eq!(shown["config"]["headers"]["Authorization"], "********", "{shown}");

    let mut edited = shown["config"].clone();
    edited["url"] = json!("http://127.0.0.1:9/other");
    edited["headers"]["X-Team"] = json!("b");
    edited["headers"]["X-New"] = json!("n");
    let (status, put) = s.send(s.client.put(s.url("/api/mcp/servers/web")).json(&edited)).await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["config"]["url"], "http://127.0.0.1:9/other", "{put}");
    let stored = s.state.models.with_store(|st| st.mcp_servers()).await.unwrap().unwrap();
    let web = stored.iter().find(|x| x.name == "web").unwrap();
    assert_eq!(
        Value::Object(web.config.clone())["headers"],
        json!({"Authorization": "Bearer s1", "X-Team": "b", "X-New": "n"}),
        "the masked value kept the stored one, the typed ones replaced theirs"
    );

    let (status, r) = s
        .send(s.client.put(s.url("/api/mcp/servers/web")).json(&json!({"url": "http://127.0.0.1:9/mcp", "headers": {"X-Other": "********"}})))
        .await;
    assert_eq!(status, 400, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("headers.X-Other"), "{r}");
    let stored = s.state.models.with_store(|st| st.mcp_servers()).await.unwrap().unwrap();
    assert_eq!(stored[0].config["url"], "http://127.0.0.1:9/other", "a refused edit changes nothing");
    s.state.tools.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inference_keys_use_no_server_tools_unless_allowed() {
    let Some(py) = python() else { return };
    let keys = |o: Opts| Opts { api_key: Some("inf".into()), admin_key: Some("adm".into()), ..o };
    let s = TestServer::empty(with_server(&py, keys(Opts::default()))).await;
    let as_key = |k: &str, r: reqwest::RequestBuilder| r.bearer_auth(k);
    let call = json!({"tool": "current_datetime", "params": {}});
    let (status, body) = s.send(as_key("inf", s.client.post(s.url("/tools")).json(&call))).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("tools.inference_keys"), "{body}");
    let (status, _) = s.send(as_key("inf", s.client.get(s.url("/api/mcp/servers")))).await;
    assert_eq!(status, 403);
    let chat = json!({"messages": [{"role": "user", "content": "hi"}], "server_tools": ["*"]});
    let (status, body) = s.send(as_key("inf", s.client.post(s.url("/v1/chat/completions")).json(&chat))).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = s.send(as_key("adm", s.client.post(s.url("/tools")).json(&call))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["plain_text_response"].as_str().unwrap().contains("UTC"), "{body}");
    s.state.tools.shutdown().await;

    let allowed = TestServer::empty(keys(Opts::default()).tweak(|c| c.tools.inference_keys = true)).await;
    let (status, body) = allowed.send(as_key("inf", allowed.client.post(allowed.url("/tools")).json(&call))).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_mcp_config_fails_start_up_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mcp.json");
    std::fs::write(&path, "{not json").unwrap();
    let paths = config::Paths::resolve(Some(dir.path().join("c")), Some(dir.path().join("d"))).unwrap();
    let mut c = config::Config::default();
    c.tools.mcp_servers_config = Some(path.clone());
    let opts = server::ServeOptions {
        paths,
        config: c,
        extra_keys: (Vec::new(), Vec::new()),
        routing: Default::default(),
        launch: Default::default(),
        grace: Duration::from_secs(1),
        logs: server::logs::Logs::detached(),
    };
    let state = server::build_state(&opts);
    let e = state.tools.start().await.unwrap_err().to_string();
    assert!(e.contains("tools.mcp_servers_config") && e.contains("not valid JSON") && e.contains("mcp.json"), "{e}");
    // Bad entries are warnings: the others start.
    std::fs::write(&path, r#"{"mcpServers": {"nothing": {}, "ok": {"command": "/nonexistent/x"}}}"#).unwrap();
    let warnings = state.tools.start().await.unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("\"nothing\"") && warnings[0].contains("needs \"command\""), "{warnings:?}");
    assert!(state.tools.server("ok").is_some());
    state.tools.shutdown().await;
}

/// A forced call (`tool_choice` naming the MCP tool) runs on the server; its result goes
/// back to the model, which answers; the call and result are in the answer and the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_mcp_tool_call_runs_and_the_model_answers_with_its_result() {
    let Some(py) = python() else { return };
    let Some(s) = TestServer::start(with_server(&py, Opts::default())).await else { return };
    wait_for_tool(&s, "t_secret").await;
    let body = json!({
        "model": SMOL,
        "messages": [{"role": "user", "content": "What is the secret word? Use the tool, then tell me the word."}],
        "tool_choice": {"type": "function", "function": {"name": "t_secret"}},
        "server_tools": ["t_secret"],
        "max_tokens": 40,
        "temperature": 0,
    });
    let (status, answer) = s.post("/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{answer}");
    let message = &answer["choices"][0]["message"];
    let trace = message["server_tool_calls"].as_array().unwrap();
    assert_eq!(trace.len(), 1, "{answer}");
    assert_eq!(trace[0]["name"], "t_secret");
    assert_eq!(trace[0]["content"], "The secret word is PINEAPPLE.");
    assert_eq!(trace[0]["is_error"], false);
    assert!(message.get("tool_calls").is_none(), "server calls are not the client's: {answer}");
    let content = message["content"].as_str().unwrap();
    assert!(content.to_lowercase().contains("pineapple"), "the answer should use the tool's result: {content:?}");
    assert!(answer["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    // Streamed: the call and the result are events of their own, then the answer.
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let resp = s.client.post(s.url("/v1/chat/completions")).json(&streamed).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let deltas: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str::<Value>(d).unwrap()["choices"][0]["delta"].clone())
        .collect();
    let call = deltas.iter().position(|d| d.get("server_tool_call").is_some()).expect("a call event");
    let result = deltas.iter().position(|d| d.get("server_tool_result").is_some()).expect("a result event");
    assert!(call < result);
    assert_eq!(deltas[call]["server_tool_call"]["name"], "t_secret");
    assert_eq!(deltas[result]["server_tool_result"]["content"], "The secret word is PINEAPPLE.");
    let after: String = deltas[result..].iter().filter_map(|d| d["content"].as_str()).collect();
    // (The model may quote the call's random id, so the texts are not compared.)
    assert!(after.to_lowercase().contains("pineapple"), "{after:?}");
    assert!(text.trim_end().ends_with("data: [DONE]"));
    s.state.tools.shutdown().await;
}

/// While a tool runs the model's one slot is free: another request completes meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slot_is_free_while_a_tool_runs() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    let mut server = entry(&py);
    server["env"] = json!({"MCP_TEST_GATE": gate.display().to_string()});
    let json = json!({"mcpServers": {"t": server}}).to_string();
    let opts = Opts { parallel: Some(1), ..Default::default() }
        .tweak(move |c| {
            c.tools.mcp_servers_json = Some(json.clone());
            // Nothing may wait for the slot: a request held behind the tool would be refused.
            c.limits.max_waiting_per_model = 0;
        });
    let Some(s) = TestServer::start(opts).await else { return };
    wait_for_tool(&s, "t_gate").await;
    let body = json!({
        "model": SMOL,
        "messages": [{"role": "user", "content": "Open the gate."}],
        "tool_choice": {"type": "function", "function": {"name": "t_gate"}},
        "server_tools": ["t_gate"],
        "max_tokens": 64,
        "stream": true,
    });
    let mut resp = s.client.post(s.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // Read until the call event: the tool now waits on the gate.
    let mut seen = String::new();
    while !seen.contains("server_tool_call") {
        let Some(chunk) = resp.chunk().await.unwrap() else { panic!("the stream ended before the call: {seen}") };
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let (status, other) = s
        .post("/v1/chat/completions", &json!({"model": SMOL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}))
        .await;
    assert_eq!(status, 200, "another request completes while the tool runs: {other}");
    assert!(!seen.contains("server_tool_result"), "the tool is still running");
    std::fs::write(&gate, "").unwrap();
    let rest = resp.text().await.unwrap();
    assert!(rest.contains("the gate is open") && rest.trim_end().ends_with("data: [DONE]"), "{rest}");
    s.state.tools.shutdown().await;
}

/// A session whose send forces the MCP tool: the call and its result are events of their
/// own, stored as messages (the assistant turn with its calls, then the `tool` message), the
/// final answer below them; history, export → import (the same tree) and Markdown keep them;
/// the next turn is sent with them (the context counts them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_runs_a_server_tool_and_stores_the_call_and_its_result() {
    let Some(py) = python() else { return };
    let Some(s) = TestServer::start(with_server(&py, Opts::default())).await else { return };
    wait_for_tool(&s, "t_secret").await;
    let id = create(
        &s,
        json!({"model": SMOL, "params": {"temperature": 0.0, "max_tokens": 40, "server_tools": ["t_secret"]}}),
    )
    .await;
    let force = json!({"type": "function", "function": {"name": "t_secret"}});
    let events = stream_events(
        &s,
        "/api/chat/send",
        &json!({"session_id": id, "message": "What is the secret word? Use the tool.",
                "tool_choice": force, "stream": true}),
    )
    .await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    let call = names.iter().position(|n| *n == "tool_call").expect("a tool_call event");
    let result = names.iter().position(|n| *n == "tool_result").expect("a tool_result event");
    assert_eq!(&names[..2], ["message", "message"], "{names:?}");
    assert!(call < result && names[result + 1] == "message", "{names:?}");
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    let first_row = events[1].1["message"]["id"].clone();
    let (_, c) = &events[call];
    assert_eq!(c["message_id"], first_row);
    assert_eq!(c["server_tool_call"]["name"], "t_secret");
    assert_eq!(c["server_tool_call"]["step"], 1);
    let (_, r) = &events[result];
    assert_eq!(r["server_tool_result"]["content"], "The secret word is PINEAPPLE.");
    assert_eq!(r["server_tool_result"]["is_error"], false);
    assert_eq!(r["message"]["role"], "tool");
    assert_eq!(r["message"]["parent_id"], first_row);
    assert_eq!(r["message"]["tool_call_id"], c["server_tool_call"]["id"]);
    let next_row = &events[result + 1].1["message"];
    assert_eq!(next_row["parent_id"], r["message_id"]);
    let done = &events.last().unwrap().1;
    assert_eq!(done["message_id"], next_row["id"]);
    assert!(["stop", "length"].contains(&done["finish_reason"].as_str().unwrap()), "{done}");
    assert!(done["usage"]["prompt_tokens"].as_u64().unwrap() > 0, "{done}");

    // Stored: question → the call → its result → the answer, the answer the active leaf.
    let all = tree(&s, &id).await;
    let roles: Vec<&str> = all.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"], "{all:?}");
    assert_eq!(all[1]["finish_reason"], "tool_calls");
    assert_eq!(all[1]["tool_calls"][0]["name"], "t_secret");
    assert_eq!(all[1]["tool_calls"][0]["id"], all[2]["tool_call_id"]);
    assert_eq!((all[2]["name"].as_str(), all[2]["is_error"].as_bool()), (Some("t_secret"), Some(false)));
    let (_, active) = s.get(&format!("/api/chat/history/{id}")).await;
    assert_eq!(active["messages"].as_array().unwrap().len(), 4, "{active}");

    // Export → import: the same tree, calls and results included; Markdown shows them.
    let (_, export) = s.get(&format!("/api/chat/export/{id}?format=json")).await;
    let (status, imported) = s.post("/api/chat/import", &export).await;
    assert_eq!(status, 201, "{imported}");
    let (_, again) = s.get(&format!("/api/chat/export/{}?format=json", imported["id"].as_str().unwrap())).await;
    assert_eq!(shape(&export), shape(&again));
    let md = s.client.get(s.url(&format!("/api/chat/export/{id}?format=markdown"))).send().await.unwrap();
    let md = md.text().await.unwrap();
    assert!(md.contains("**Tool call** `t_secret`"), "{md}");
    assert!(md.contains("## Tool result: t_secret\n\n```\nThe secret word is PINEAPPLE.\n```"), "{md}");

    // The next turn (tools off for this send) is sent with the call and its result: its
    // prompt is longer than the conversation without them would be.
    let (status, r) = s
        .post("/api/chat/send", &json!({"session_id": id, "message": "Thanks.", "server_tools": false}))
        .await;
    assert_eq!(status, 200, "{r}");
    assert!(r["answers"][0].get("error").is_none(), "{r}");
    assert!(r["answers"][0].get("server_tool_calls").is_none(), "no tools this time: {r}");
    let with_tools = r["answers"][0]["prompt_tokens"].as_u64().unwrap();
    let texts: Vec<(&str, &str)> = vec![("user", all[0]["content"].as_str().unwrap()), ("assistant", all[3]["content"].as_str().unwrap())];
    let (_, m) = s
        .post("/apply-template", &json!({"messages": texts.iter().map(|(r, c)| json!({"role": r, "content": c})).chain([json!({"role": "user", "content": "Thanks."})]).collect::<Vec<_>>()}))
        .await;
    let (_, toks) = s.post("/tokenize", &json!({"content": m["prompt"]})).await;
    let without = toks["tokens"].as_array().unwrap().len() as u64;
    assert!(with_tools > without, "the tool call and result are sent back ({with_tools} vs {without} tokens)");

    // Not streamed: the answer carries the trace as the OpenAI route does.
    let (status, r) = s
        .post("/api/chat/send", &json!({"session_id": id, "message": "Again, please.", "tool_choice": force}))
        .await;
    assert_eq!(status, 200, "{r}");
    let answer = &r["answers"][0];
    assert_eq!(answer["server_tool_calls"][0]["content"], "The secret word is PINEAPPLE.", "{r}");
    assert_eq!(answer["role"], "assistant");
    let all = tree(&s, &id).await;
    let parent = all.iter().find(|m| m["id"] == answer["parent_id"]).unwrap();
    assert_eq!(parent["role"], "tool", "the answer hangs below the tool's result");
    s.state.tools.shutdown().await;
}

/// Refused before anything is stored: tools named that do not run, a forced tool not
/// offered, a setting that is not a switch or names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_tool_settings_are_checked_before_anything_is_stored() {
    let s = TestServer::empty(Opts::default()).await;
    let id = create(&s, json!({"model": "nope"})).await;
    for (body, status, needle) in [
        (json!({"session_id": id, "message": "hi", "server_tools": ["t_none"]}), 400, "no server tool named \"t_none\""),
        (json!({"session_id": id, "message": "hi", "tool_choice": "required"}), 400, "needs server tools"),
        (
            json!({"session_id": id, "message": "hi", "server_tools": ["current_datetime"],
                   "tool_choice": {"type": "function", "function": {"name": "t_x"}}}),
            400,
            "not one of the server tools",
        ),
        (json!({"session_id": id, "message": "hi", "server_tools": "all"}), 400, "true, false or a list"),
        (json!({"session_id": id, "message": "hi", "server_tools": [1]}), 400, "must be a string"),
        (json!({"session_id": id, "message": "hi", "server_tools": vec!["x"; 300]}), 400, "at most 256"),
    ] {
        let (got, r) = s.post("/api/chat/send", &body).await;
        assert_eq!(got, status, "{body}: {r}");
        let msg = r["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }
    assert!(tree(&s, &id).await.is_empty());
    // The session setting: PATCHable like the other params, checked when set.
    let (status, p) = s
        .send(s.client.patch(s.url(&format!("/api/chat/sessions/{id}"))).json(&json!({"params": {"server_tools": true}})))
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["params"]["server_tools"], true);
    let (status, p) = s
        .send(s.client.patch(s.url(&format!("/api/chat/sessions/{id}"))).json(&json!({"params": {"server_tools": [""]}})))
        .await;
    assert_eq!(status, 400, "{p}");
}

/// Stopping an answer while its tool runs keeps the call on the stored turn (`cancelled`,
/// no result), and the session goes on: the unanswered call is not sent to the model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_session_answer_during_a_tool_call_keeps_the_call() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    let mut server = entry(&py);
    server["env"] = json!({"MCP_TEST_GATE": gate.display().to_string()});
    let json = json!({"mcpServers": {"t": server}}).to_string();
    let opts = Opts::default().tweak(move |c| c.tools.mcp_servers_json = Some(json.clone()));
    let Some(s) = TestServer::start(opts).await else { return };
    wait_for_tool(&s, "t_gate").await;
    let id = create(&s, json!({"model": SMOL, "params": {"temperature": 0.0, "max_tokens": 24, "server_tools": true}})).await;
    let body = json!({"session_id": id, "message": "Open the gate.", "stream": true,
                      "tool_choice": {"type": "function", "function": {"name": "t_gate"}}});
    let mut resp = s.client.post(s.url("/api/chat/send")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut seen = String::new();
    while !seen.contains("event: tool_call") {
        let Some(chunk) = resp.chunk().await.unwrap() else { panic!("ended before the call: {seen}") };
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    // The call is stored before the tool runs.
    let all = tree(&s, &id).await;
    assert_eq!(all[1]["tool_calls"][0]["name"], "t_gate", "{all:?}");
    assert_eq!(all[1]["finish_reason"], "generating");
    let (status, r) = s.post(&format!("/api/chat/sessions/{id}/stop"), &json!({})).await;
    assert_eq!((status, r["stopped"].as_u64()), (200, Some(1)), "{r}");
    let rest = resp.text().await.unwrap();
    assert!(rest.contains("event: done") && rest.contains("\"finish_reason\":\"cancelled\""), "{rest}");
    assert!(!rest.contains("event: tool_result"), "{rest}");
    let all = tree(&s, &id).await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1]["finish_reason"], "cancelled");
    assert_eq!(all[1]["tool_calls"][0]["name"], "t_gate");
    let (status, r) = s
        .post("/api/chat/send", &json!({"session_id": id, "message": "Never mind.", "server_tools": false}))
        .await;
    assert_eq!(status, 200, "{r}");
    assert!(r["answers"][0].get("error").is_none(), "{r}");
    std::fs::write(&gate, "").unwrap();
    s.state.tools.shutdown().await;
}
