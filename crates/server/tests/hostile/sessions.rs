//! The chat session routes (`/api/chat/*`, seed 003's `/sessions` and `/chat/history/*`) and
//! their sockets (`/ws/chat/stream`, `/chat/ws`) under attack: pages of other origins and
//! rebound host names, bodies that are not JSON or not ours (wrong content type, unknown
//! fields, deep nesting, over the body limit), values far past any real one, ids that do not
//! exist or do not parse. Each is a 4xx in the management API's shape (an `error` event on a
//! socket, which stays open), nothing is stored, and the server goes on serving.

use super::*;
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

const EVIL: &str = "https://evil.example";
/// A page on another loopback port: may use the models, not manage the server.
const LOCAL_PAGE: &str = "http://localhost:3000";

#[track_caller]
fn refused(got: (u16, Value), status: u16, words: &str, what: &str) {
    let (code, body) = got;
    assert_eq!(code, status, "{what}: {body}");
    assert_eq!(body["error"]["status"], status, "{what}: management shape: {body}");
    let message = error_message(&body);
    assert!(message.contains(words), "{what}: {words:?} in {body}");
}

async fn raw(s: &TestServer, method: Method, path: &str, content_type: &str, body: String) -> (u16, Value) {
    s.send(s.client.request(method, s.url(path)).header("content-type", content_type).body(body)).await
}

/// JSON nested `depth` arrays deep.
fn deep(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

async fn create(s: &TestServer, body: Value) -> String {
    let (status, session) = s.post("/api/chat/sessions/create", &body).await;
    assert_eq!(status, 201, "{session}");
    session["id"].as_str().unwrap().to_string()
}

/// Every session route, with a well-formed body where it takes one.
fn routes(id: &str) -> Vec<(Method, String, Option<Value>)> {
    let send = json!({"session_id": id, "message": "Hi"});
    vec![
        (Method::POST, "/api/chat/sessions/create".into(), Some(json!({"model": SMOL}))),
        (Method::GET, "/api/chat/sessions".into(), None),
        (Method::GET, "/sessions".into(), None),
        (Method::GET, format!("/api/chat/sessions/{id}"), None),
        (Method::PATCH, format!("/api/chat/sessions/{id}"), Some(json!({"title": "x"}))),
        (Method::DELETE, format!("/api/chat/sessions/{id}"), None),
        (Method::GET, format!("/api/chat/history/{id}"), None),
        (Method::GET, format!("/chat/history/{id}"), None),
        (Method::DELETE, format!("/chat/history/{id}"), None),
        (Method::POST, format!("/api/chat/history/{id}/rollback"), Some(json!({"n": 1}))),
        (Method::POST, format!("/chat/history/{id}/rollback"), Some(json!({"n": 1}))),
        (Method::POST, "/api/chat/send".into(), Some(send)),
        (Method::POST, format!("/api/chat/sessions/{id}/regenerate"), Some(json!({}))),
        (Method::POST, format!("/api/chat/sessions/{id}/edit"), Some(json!({"message_id": 1, "content": "x"}))),
        (Method::POST, format!("/api/chat/sessions/{id}/stop"), None),
        (Method::POST, format!("/api/chat/export/{id}?format=json"), None),
        (Method::GET, format!("/api/chat/export/{id}?format=markdown"), None),
        (Method::POST, "/api/chat/import".into(), Some(json!({"format": "x"}))),
    ]
}

const SOCKETS: [&str; 2] = ["/ws/chat/stream", "/chat/ws"];

/// A server with small limits (1 MiB bodies, 10 000-character messages) and a session.
async fn limited() -> Option<(TestServer, String)> {
    let s = TestServer::start(Opts::default().tweak(|c| {
        c.server.body_limit_mb = 1;
        c.sessions.max_message_chars = 10_000;
    }))
    .await?;
    let id = create(&s, json!({"model": SMOL, "params": {"max_tokens": 4, "temperature": 0.0}})).await;
    Some((s, id))
}

#[tokio::test(flavor = "multi_thread")]
async fn session_routes_refuse_other_pages_and_rebound_hosts() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let id = create(&s, json!({"model": SMOL, "params": {"max_tokens": 4}})).await;
    let port = s.base.rsplit(':').next().unwrap().to_string();
    for (method, path, body) in routes(&id) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        for origin in [EVIL, LOCAL_PAGE, "null"] {
            // A page's simple request: text/plain needs no preflight.
            let req = s
                .client
                .request(method.clone(), s.url(&path))
                .header("origin", origin)
                .header("content-type", "text/plain")
                .body(body.clone());
            refused(s.send(req).await, 403, "may not use the management API", &format!("{method} {path} from {origin}"));
        }
        let req = s.client.request(method.clone(), s.url(&path)).header("host", format!("evil.example:{port}"));
        refused(s.send(req).await, 403, "Host 'evil.example", &format!("{method} {path} rebound"));
    }
    for path in SOCKETS {
        let url = s.base.replace("http://", "ws://") + path;
        for (header, value) in [("origin", EVIL), ("origin", LOCAL_PAGE), ("host", "evil.example")] {
            let mut req = url.as_str().into_client_request().unwrap();
            req.headers_mut().insert(header, value.parse().unwrap());
            match tokio_tungstenite::connect_async(req).await {
                Err(tungstenite::Error::Http(resp)) => {
                    assert_eq!(resp.status(), 403, "{path} {header}: {value}");
                    let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
                    assert_eq!(body["error"]["status"], 403, "{body}");
                }
                other => panic!("{path} with {header} {value}: {:?}", other.map(|_| ())),
            }
        }
    }
    // Nothing was created, sent, renamed or deleted.
    let (_, list) = s.get("/api/chat/sessions").await;
    assert_eq!(list["total"], 1, "{list}");
    let (_, h) = s.get(&format!("/api/chat/history/{id}")).await;
    assert_eq!(h["messages"], json!([]), "{h}");
    assert_eq!(h["session"]["title"], "", "{h}");
    still_serves(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn session_routes_refuse_hostile_bodies_values_and_ids() {
    let Some((s, id)) = limited().await else {
        return;
    };
    let (status, r) = s.post("/api/chat/send", &json!({"session_id": id, "message": "Hi"})).await;
    assert_eq!(status, 200, "{r}");
    let question = r["question"]["id"].as_i64().unwrap();

    for (method, path, body) in routes(&id) {
        let Some(body) = body else { continue };
        let what = format!("{method} {path}");
        // Not JSON, whatever the content type says.
        for (ct, text) in [
            ("application/x-www-form-urlencoded", "session_id=x&message=hi"),
            ("application/json", "{\"ti"),
            ("text/plain", "\u{0}\u{1}binary"),
        ] {
            refused(raw(&s, method.clone(), &path, ct, text.into()).await, 400, "not valid JSON", &format!("{what} as {ct}"));
        }
        // A field nobody knows (regenerate and rollback read an empty body as defaults).
        let mut unknown = body.clone();
        unknown["colour"] = json!("blue");
        refused(
            s.send(s.client.request(method.clone(), s.url(&path)).json(&unknown)).await,
            400,
            "unknown field",
            &what,
        );
        // Nesting deeper than any real request.
        refused(
            raw(&s, method.clone(), &path, "application/json", format!("{{\"session_id\": {}}}", deep(100_000))).await,
            400,
            "",
            &format!("{what} deep"),
        );
        // Just past the body limit (just past: the server answers before reading the rest,
        // and a client still writing megabytes could see the connection close first).
        let huge = format!("{{\"message\": \"{}\"}}", "x".repeat((1 << 20) + 64));
        refused(raw(&s, method.clone(), &path, "application/json", huge).await, 413, "too large", &format!("{what} huge"));
    }
    // A JSON body sent as text/plain by a client without an Origin (curl, scripts) is read
    // as JSON, as llama-server reads it.
    let (status, r) = raw(&s, Method::POST, "/api/chat/sessions/create", "text/plain", json!({"title": "plain"}).to_string()).await;
    assert_eq!(status, 201, "{r}");

    // Values far past any real one.
    let long = "x".repeat(10_001);
    for (path, body, status, words) in [
        ("/api/chat/send", json!({"session_id": id, "message": long}), 413, "sessions.max_message_chars"),
        ("/api/chat/sessions/create", json!({"title": "t".repeat(10_000)}), 400, "title"),
        ("/api/chat/sessions/create", json!({"models": (0..1000).map(|i| format!("m{i}")).collect::<Vec<_>>()}), 400, "at most 4 models"),
        ("/api/chat/sessions/create", json!({"params": {"max_tokens": 1e12}}), 400, "max_tokens"),
        ("/api/chat/sessions/create", json!({"params": {"seed": -1}}), 400, "seed"),
        ("/api/chat/sessions/create", json!({"params": {"temperature": "hot"}}), 400, "temperature"),
        ("/api/chat/sessions/create", json!({"params": {"server_tools": vec!["t"; 1000]}}), 400, "at most 256"),
        ("/api/chat/sessions/create", json!({"params": {"server_tools": {"all": true}}}), 400, "server_tools"),
        ("/api/chat/send", json!({"session_id": id, "message": "x", "models": (0..100).map(|i| format!("m{i}")).collect::<Vec<_>>()}), 400, "at most 4"),
        ("/api/chat/send", json!({"session_id": id, "message": "x", "tool_choice": "sometimes"}), 400, "tool_choice"),
        ("/api/chat/send", json!({"session_id": id, "message": "x", "tool_choice": "required"}), 400, "needs server tools"),
        (&format!("/api/chat/sessions/{id}/edit"), json!({"message_id": question, "content": long}), 413, "sessions.max_message_chars"),
        (&format!("/api/chat/history/{id}/rollback"), json!({"n": 0}), 400, "at least 1"),
        (&format!("/api/chat/history/{id}/rollback"), json!({"n": 1e20}), 400, "n"),
        (&format!("/api/chat/history/{id}/rollback"), json!({"n": -1}), 400, "n"),
        (&format!("/api/chat/history/{id}/rollback"), json!({"n": 4_000_000_000u32}), 400, "cannot drop"),
    ] {
        let what = format!("{path} {}", body.to_string().chars().take(120).collect::<String>());
        refused(s.post(path, &body).await, status, words, &what);
    }
    // A model named twice is asked once ([a, b, a] is a and b).
    let (status, r) = s.post("/api/chat/sessions/create", &json!({"models": ["a", "b", "a", "b"]})).await;
    assert_eq!((status, r["models"].clone()), (201, json!(["a", "b"])), "{r}");
    let twice = r["id"].as_str().unwrap().to_string();
    let (status, _) = s.send(s.client.delete(s.url(&format!("/api/chat/sessions/{twice}")))).await;
    assert_eq!(status, 200);
    let (status, p) = s
        .send(s.client.patch(s.url(&format!("/api/chat/sessions/{id}"))).json(&json!({"title": "t".repeat(501)})))
        .await;
    refused((status, p), 400, "title", "patch title");
    for query in [
        format!("search={}", "q".repeat(5000)),
        "limit=1000000".into(),
        "limit=0".into(),
        "offset=-1".into(),
        "limit=abc".into(),
    ] {
        refused(s.get(&format!("/api/chat/sessions?{query}")).await, 400, "", &query);
        refused(s.get(&format!("/sessions?{query}")).await, 400, "", &query);
    }
    // An import that claims too much (just past the body limit, as above: a client still
    // writing megabytes can see the connection close before it reads the 413), or whose tree
    // does not hold.
    let many: Vec<Value> = (0..19_500).map(|i| json!({"id": i, "role": "user", "content": "", "created_at": 0})).collect();
    let export = |messages: Value| {
        json!({"format": "llama-dashboard.chat-session", "version": 1,
               "session": {"id": "s", "title": "", "models": [], "params": {}, "active_leaf": null,
                           "created_at": 0, "updated_at": 0},
               "messages": messages})
    };
    let (status, r) = s.post("/api/chat/import", &export(json!(many))).await;
    assert!(status == 400 || status == 413, "{r}");
    for (messages, words) in [
        (json!([{"id": 1, "parent_id": 2, "role": "user", "content": "", "created_at": 0}]), "must come before"),
        (json!([{"id": 1, "role": "wizard", "content": "", "created_at": 0}]), "role"),
        (json!([{"id": 1, "role": "tool", "content": "", "created_at": 0}]), "tool_call_id"),
        (json!([{"id": 1, "role": "user", "content": "", "created_at": 0, "tool_calls": [{"id": "c", "name": "n", "arguments": "{}"}]}]), "only assistant"),
        (json!([{"id": 1, "role": "user", "content": "", "created_at": 0, "colour": 1}]), "unknown field"),
        (json!([{"id": 1, "role": "user", "content": "", "created_at": 0}, {"id": 1, "role": "user", "content": "", "created_at": 0}]), "appears twice"),
    ] {
        refused(s.post("/api/chat/import", &export(messages)).await, 400, words, "import");
    }

    // Ids that do not exist or do not parse.
    let huge_id = "s".repeat(10_000);
    for bad in ["sess_nope", "..%2F..%2Fetc%2Fpasswd", "%00", huge_id.as_str()] {
        for (method, path) in [
            (Method::GET, format!("/api/chat/sessions/{bad}")),
            (Method::DELETE, format!("/api/chat/sessions/{bad}")),
            (Method::GET, format!("/api/chat/history/{bad}")),
            (Method::DELETE, format!("/chat/history/{bad}")),
            (Method::POST, format!("/api/chat/sessions/{bad}/stop")),
            (Method::POST, format!("/api/chat/sessions/{bad}/regenerate")),
            (Method::POST, format!("/api/chat/history/{bad}/rollback")),
            (Method::GET, format!("/api/chat/export/{bad}")),
        ] {
            let (status, body) = s.send(s.client.request(method.clone(), s.url(&path))).await;
            assert!(status == 404 || status == 414 || status == 431, "{method} {path:.60}: {status} {body:.200}");
            if status == 404 {
                assert!(error_message(&body).contains("not found"), "{body}");
            }
        }
        refused(s.post("/api/chat/send", &json!({"session_id": bad, "message": "x"})).await, 404, "not found", "send");
    }
    for (query, status) in [("branch=abc", 400), ("branch=-5", 404), ("branch=1e30", 400), ("tree=maybe", 400), ("tree=1&branch=1", 400)] {
        refused(s.get(&format!("/api/chat/history/{id}?{query}")).await, status, "", query);
    }
    for (body, status, words) in [
        (json!({"message_id": "7", "content": "x"}), 400, "message_id"),
        (json!({"message_id": 1e300, "content": "x"}), 400, "message_id"),
        (json!({"message_id": -1, "content": "x"}), 404, "message -1"),
        (json!({"message_id": question + 1, "content": "x"}), 400, "only user messages"),
    ] {
        refused(s.post(&format!("/api/chat/sessions/{id}/edit"), &body).await, status, words, "edit");
    }
    refused(s.post(&format!("/api/chat/export/{id}?format=exe"), &json!({})).await, 400, "json or markdown", "export");
    let (status, p) = s
        .send(s.client.patch(s.url(&format!("/api/chat/sessions/{id}"))).json(&json!({"active_leaf": 999_999})))
        .await;
    refused((status, p), 404, "message 999999", "patch leaf");

    // Nothing of the above was stored: the one exchange, the plain session.
    let (_, h) = s.get(&format!("/api/chat/history/{id}?tree=1")).await;
    assert_eq!(h["messages"].as_array().unwrap().len(), 2, "{h}");
    let (_, list) = s.get("/api/chat/sessions").await;
    assert_eq!(list["total"], 2, "{list}");
    still_serves(&s).await;
}

/// Socket messages: each refusal is an `error` event naming what is wrong, and the socket
/// stays open for the next; a message over the body limit closes that socket only.
#[tokio::test(flavor = "multi_thread")]
async fn session_sockets_refuse_hostile_messages_and_stay_open() {
    use tungstenite::Message as Ws;
    let Some((s, id)) = limited().await else {
        return;
    };
    for path in SOCKETS {
        let url = s.base.replace("http://", "ws://") + path;
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        let cases: Vec<(String, u64, &str)> = vec![
            ("not json".into(), 400, "not a chat socket message"),
            (json!({"type": "dance", "session_id": id}).to_string(), 400, "unknown variant"),
            (json!({"type": "send", "session_id": id, "message": "x", "colour": 1}).to_string(), 400, "unknown field"),
            (json!({"type": "send", "session_id": id}).to_string(), 400, "message"),
            (format!("{{\"type\": \"send\", \"session_id\": {}}}", deep(100_000)), 400, "not a chat socket message"),
            (json!({"type": "send", "session_id": id, "message": "x".repeat(10_001)}).to_string(), 413, "sessions.max_message_chars"),
            (json!({"type": "send", "session_id": id, "message": "x", "request_id": "r".repeat(300)}).to_string(), 400, "request_id"),
            (json!({"type": "send", "session_id": id, "message": "x", "server_tools": ["nope"]}).to_string(), 400, "no server tool named"),
            (json!({"type": "send", "session_id": "s".repeat(10_000), "message": "x"}).to_string(), 404, "not found"),
            (json!({"type": "stop", "session_id": "sess_nope"}).to_string(), 404, "not found"),
        ];
        for (msg, code, words) in &cases {
            ws.send(Ws::Text(msg.clone().into())).await.unwrap();
            let reply = tokio::time::timeout(std::time::Duration::from_secs(60), ws.next()).await.unwrap().unwrap().unwrap();
            let v: Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
            assert_eq!((v["type"].as_str(), v["error"]["code"].as_u64()), (Some("error"), Some(*code)), "{msg:.80}: {v}");
            assert!(v["error"]["message"].as_str().unwrap().contains(words), "{msg:.80}: {v}");
        }
        // Binary frames and pings are not requests: ignored, the socket still answers.
        ws.send(Ws::Binary(vec![0u8; 1024].into())).await.unwrap();
        ws.send(Ws::Text(json!({"type": "stop", "session_id": id}).to_string().into())).await.unwrap();
        let reply = ws.next().await.unwrap().unwrap();
        let v: Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
        assert_eq!(v["type"], "stopped", "{v}");
        // Past the body limit: this socket is closed; the server is not.
        let _ = ws.send(Ws::Text("x".repeat(2 << 20).into())).await;
        let end = tokio::time::timeout(std::time::Duration::from_secs(60), ws.next()).await.unwrap();
        assert!(
            matches!(end, None | Some(Err(_)) | Some(Ok(Ws::Close(_)))),
            "{path}: the oversized message was read: {end:?}"
        );
    }
    let (_, h) = s.get(&format!("/api/chat/history/{id}?tree=1")).await;
    assert_eq!(h["messages"], json!([]), "{h}");
    still_serves(&s).await;
}
