//! Chat sessions (issue 13) over HTTP and WebSocket with the real test models: create, send
//! (JSON and SSE), regenerate and edit (branches), rollback, export → import, two models side
//! by side, stop, the context policy, bad input.

use super::*;
use futures_util::{SinkExt, StreamExt};

pub(crate) async fn create(s: &TestServer, body: Value) -> String {
    let (status, session) = s.post("/api/chat/sessions/create", &body).await;
    assert_eq!(status, 201, "{session}");
    session["id"].as_str().unwrap().to_string()
}

fn greedy(max_tokens: u32) -> Value {
    json!({"temperature": 0.0, "max_tokens": max_tokens, "seed": 1})
}

/// The SSE events of a send: (event name, JSON data).
pub(crate) async fn stream_events(s: &TestServer, path: &str, body: &Value) -> Vec<(String, Value)> {
    let resp = s.client.post(s.url(path)).json(body).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    let text = resp.text().await.unwrap();
    let mut out = Vec::new();
    let mut name = String::new();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("event: ") {
            name = n.to_string();
        } else if let Some(d) = line.strip_prefix("data: ") {
            out.push((name.clone(), serde_json::from_str(d).unwrap()));
        }
    }
    out
}

pub(crate) async fn tree(s: &TestServer, id: &str) -> Vec<Value> {
    let (status, h) = s.get(&format!("/api/chat/history/{id}?tree=1")).await;
    assert_eq!(status, 200, "{h}");
    h["messages"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_session_is_sent_to_branched_rolled_back_exported_and_imported() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let id = create(&s, json!({"model": SMOL, "params": greedy(8)})).await;

    // Send, not streamed: the question and one answer tagged by model, with usage.
    let (status, r) = s
        .post(
            "/api/chat/send",
            &json!({"session_id": id, "message": "Say hello."}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["question"]["content"], "Say hello.");
    let a1 = &r["answers"][0];
    assert_eq!(a1["model"], SMOL, "{r}");
    assert!(["stop", "length"].contains(&a1["finish_reason"].as_str().unwrap()), "{r}");
    assert!(a1["completion_tokens"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(a1["parent_id"], r["question"]["id"]);
    // The title comes from the first message.
    assert_eq!(r["session"]["title"], "Say hello.");

    // Send, streamed: message events (question, answer row), deltas, done with usage.
    let events = stream_events(
        &s,
        "/api/chat/send",
        &json!({"session_id": id, "message": "And goodbye?", "stream": true}),
    )
    .await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[..2], ["message", "message"], "{events:?}");
    assert_eq!(names.last(), Some(&"done"), "{events:?}");
    assert!(names.contains(&"delta"), "{events:?}");
    let answer_id = events[1].1["message"]["id"].as_i64().unwrap();
    let streamed: String = events
        .iter()
        .filter(|(n, _)| n == "delta")
        .map(|(_, d)| d["content"].as_str().unwrap())
        .collect();
    let done = &events.last().unwrap().1;
    assert_eq!(done["message_id"], answer_id);
    assert_eq!(done["message"]["content"], streamed.as_str());
    assert!(done["usage"]["prompt_tokens"].as_u64().unwrap() > 0, "{done}");
    assert!(done["timings"]["predicted_n"].as_u64().is_some(), "{done}");
    assert_eq!(done["left_out"], json!([]));

    // Regenerate: a second answer to the same question, a sibling; it becomes active.
    let (status, r) = s
        .post(&format!("/api/chat/sessions/{id}/regenerate"), &json!({}))
        .await;
    assert_eq!(status, 200, "{r}");
    let regen = r["answers"][0].clone();
    let all = tree(&s, &id).await;
    assert_eq!(all.len(), 5, "{all:?}");
    let siblings: Vec<_> = all
        .iter()
        .filter(|m| m["parent_id"] == regen["parent_id"])
        .collect();
    assert_eq!(siblings.len(), 2, "two branches under the question");
    let (_, active) = s.get(&format!("/api/chat/history/{id}")).await;
    assert_eq!(active["messages"].as_array().unwrap().len(), 4);
    assert_eq!(active["messages"][3]["id"], regen["id"]);
    // The first branch is still readable.
    let (_, old) = s
        .get(&format!("/api/chat/history/{id}?branch={answer_id}"))
        .await;
    assert_eq!(old["messages"][3]["content"], streamed.as_str());

    // Edit the first question: a new root branch; the old one stays whole.
    let first_q = all[0]["id"].as_i64().unwrap();
    let (status, r) = s
        .post(
            &format!("/api/chat/sessions/{id}/edit"),
            &json!({"message_id": first_q, "content": "Say hi."}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["question"]["parent_id"], Value::Null);
    let (_, active) = s.get(&format!("/api/chat/history/{id}")).await;
    let texts: Vec<_> = active["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["user", "assistant"]);
    assert_eq!(active["messages"][0]["content"], "Say hi.");
    let (_, old) = s
        .get(&format!("/api/chat/history/{id}?branch={answer_id}"))
        .await;
    assert_eq!(old["messages"][0]["content"], "Say hello.");
    assert_eq!(tree(&s, &id).await.len(), 7);

    // Export JSON → import: the same tree under new ids.
    let resp = s
        .client
        .post(s.url(&format!("/api/chat/export/{id}?format=json")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cd = resp.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(cd.starts_with("attachment;") && cd.contains(".json"), "{cd}");
    let export: Value = resp.json().await.unwrap();
    let (status, imported) = s.post("/api/chat/import", &export).await;
    assert_eq!(status, 201, "{imported}");
    let new_id = imported["id"].as_str().unwrap();
    assert_ne!(new_id, id);
    let (_, again) = s
        .get(&format!("/api/chat/export/{new_id}?format=json"))
        .await;
    assert_eq!(shape(&export), shape(&again));

    // Markdown: readable headings, a file download.
    let resp = s
        .client
        .post(s.url(&format!("/api/chat/export/{id}?format=markdown")))
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains(".md"));
    let md = resp.text().await.unwrap();
    assert!(md.contains("## User\n\nSay hi.\n\n## Assistant (smol)"), "{md}");

    // Rollback (seed 003's spelling): the last answer goes; the active leaf is the question.
    let (status, r) = s
        .post(&format!("/chat/history/{id}/rollback"), &json!({"n": 1}))
        .await;
    assert_eq!(status, 200, "{r}");
    let (_, active) = s.get(&format!("/chat/history/{id}")).await;
    assert_eq!(active["messages"].as_array().unwrap().len(), 1);

    // Listing (and seed 003's), search by title, delete.
    let (_, list) = s.get("/sessions?search=hello").await;
    assert_eq!(list["total"], 2, "{list}");
    let resp = s
        .client
        .delete(s.url(&format!("/chat/history/{new_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, list) = s.get("/api/chat/sessions").await;
    assert_eq!(list["total"], 1, "{list}");
}

/// A tree with ids replaced by positions, and the settings.
pub(crate) fn shape(e: &Value) -> Value {
    let msgs = e["messages"].as_array().unwrap();
    let pos = |id: &Value| msgs.iter().position(|m| m["id"] == *id);
    let rows: Vec<Value> = msgs
        .iter()
        .map(|m| {
            json!([pos(&m["parent_id"]), m["role"], m["content"], m["model"],
                   m["finish_reason"], m["completion_tokens"], m["tool_calls"],
                   m["tool_call_id"], m["name"], m["is_error"]])
        })
        .collect();
    json!({
        "rows": rows,
        "leaf": pos(&e["session"]["active_leaf"]),
        "title": e["session"]["title"],
        "params": e["session"]["params"],
        "models": e["session"]["models"],
    })
}

#[tokio::test]
async fn two_models_answer_the_same_question_side_by_side() {
    let Some(s) = TestServer::start(Opts {
        gemma: true,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let id = create(&s, json!({"models": [SMOL, GEMMA], "params": greedy(6)})).await;
    let (status, r) = s
        .post(
            "/api/chat/send",
            &json!({"session_id": id, "message": "Name a colour.", "models": [SMOL, GEMMA]}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let answers = r["answers"].as_array().unwrap();
    let models: Vec<_> = answers.iter().map(|a| a["model"].as_str().unwrap()).collect();
    assert_eq!(models, [SMOL, GEMMA]);
    for a in answers {
        assert_eq!(a["parent_id"], r["question"]["id"]);
        assert!(a["completion_tokens"].as_u64().unwrap() > 0, "{a}");
    }
    assert_eq!(tree(&s, &id).await.len(), 3);
}

#[tokio::test]
async fn stop_keeps_the_answer_so_far_as_cancelled() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let id = create(
        &s,
        json!({"model": SMOL, "params": {"max_tokens": 400, "temperature": 0.0}}),
    )
    .await;
    let resp = s
        .client
        .post(s.url("/api/chat/send"))
        .json(&json!({"session_id": id, "message": "Write a long story about a cat.",
                      "stream": true}))
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    // Wait for the first delta, then stop.
    while !seen.contains("event: delta") {
        let chunk = tokio::time::timeout(Duration::from_secs(120), body.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let (status, r) = s
        .post(&format!("/api/chat/sessions/{id}/stop"), &json!({}))
        .await;
    assert_eq!(status, 200, "{r}");
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(120), body.next())
        .await
        .unwrap()
    {
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    assert!(seen.contains("\"finish_reason\":\"cancelled\""), "{seen}");
    let all = tree(&s, &id).await;
    assert_eq!(all[1]["finish_reason"], "cancelled");
    assert!(!all[1]["content"].as_str().unwrap().is_empty(), "{all:?}");
    // A client that leaves ends the answer the same way.
    let resp = s
        .client
        .post(s.url("/api/chat/send"))
        .json(&json!({"session_id": id, "message": "Another long story.", "stream": true}))
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("event: delta") {
        let chunk = body.next().await.unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(body);
    let mut finish = Value::Null;
    for _ in 0..600 {
        let all = tree(&s, &id).await;
        finish = all.last().unwrap()["finish_reason"].clone();
        if finish != "generating" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(finish, "cancelled");
}

#[tokio::test]
async fn a_long_conversation_leaves_out_old_messages_and_says_which() {
    // A small context per slot: a few turns fill it.
    let Some(s) = TestServer::start(Opts::default().tweak(|c| {
        c.models.ctx_size = 256;
        c.models.parallel = 1;
    }))
    .await
    else {
        return;
    };
    let id = create(
        &s,
        json!({"model": SMOL, "params": {"max_tokens": 16, "temperature": 0.0,
               "system_prompt": "You are brief."}}),
    )
    .await;
    let filler = "Tell me about the weather in the mountains in early spring. ".repeat(3);
    let mut left_out = Vec::new();
    for turn in 0..6 {
        let (status, r) = s
            .post(
                "/api/chat/send",
                &json!({"session_id": id, "message": format!("{turn}: {filler}")}),
            )
            .await;
        assert_eq!(status, 200, "turn {turn}: {r}");
        assert!(r["answers"][0].get("error").is_none(), "turn {turn}: {r}");
        left_out = r["answers"][0]["left_out"].as_array().unwrap().clone();
    }
    assert!(!left_out.is_empty(), "six turns of ~40 tokens do not fit 256");
    // The oldest go first: the first question is among them.
    let all = tree(&s, &id).await;
    assert_eq!(left_out[0], all[0]["id"]);
    // The cap on messages applies too (sessions.max_history_messages).
    s.state.sessions.as_ref().unwrap().set_config(config::SessionsConfig {
        max_history_messages: 1,
        ..Default::default()
    });
    let (_, r) = s
        .post("/api/chat/send", &json!({"session_id": id, "message": "Hi."}))
        .await;
    let all = tree(&s, &id).await;
    assert_eq!(
        r["answers"][0]["left_out"].as_array().unwrap().len(),
        all.len() - 2,
        "only the new question is sent: {r}"
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx() {
    let s = TestServer::empty(Opts::default().tweak(|c| {
        c.sessions.max_message_chars = 100;
        c.sessions.max_sessions = 2;
    }))
    .await;
    let id = create(&s, json!({"model": "nope"})).await;
    let cases = [
        (
            "/api/chat/send",
            json!({"session_id": "sess_missing", "message": "hi"}),
            404,
            "chat session 'sess_missing' not found",
        ),
        (
            "/api/chat/send",
            json!({"session_id": id, "message": "  "}),
            400,
            "must not be empty",
        ),
        (
            "/api/chat/send",
            json!({"session_id": id, "message": "x".repeat(101)}),
            413,
            "sessions.max_message_chars",
        ),
        (
            "/api/chat/send",
            json!({"session_id": id, "message": "hi"}),
            404,
            "model 'nope' not found",
        ),
        (
            &format!("/api/chat/sessions/{id}/edit"),
            json!({"message_id": 12345, "content": "hi"}),
            404,
            "message 12345 is not a message of this session",
        ),
        (
            &format!("/api/chat/sessions/{id}/regenerate"),
            json!({}),
            400,
            "no question to answer again",
        ),
        (
            "/api/chat/sessions/create",
            json!({"model": "m", "params": {"top_p": 7.0}}),
            400,
            "top_p",
        ),
        (
            "/api/chat/sessions/create",
            json!({"model": "m", "params": {"colour": 1}}),
            400,
            "colour",
        ),
    ];
    for (path, body, status, needle) in &cases {
        let (got, r) = s.post(path, body).await;
        assert_eq!(got, *status, "{path} {body}: {r}");
        let msg = r["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{path}: {msg:?} lacks {needle:?}");
    }
    // Nothing was stored by the refused sends.
    assert_eq!(tree(&s, &id).await.len(), 0);
    let (status, r) = s.get("/api/chat/history/sess_missing").await;
    assert_eq!(status, 404, "{r}");
    let (status, r) = s.get(&format!("/api/chat/history/{id}?branch=77")).await;
    assert_eq!(status, 404, "{r}");
    // The session count.
    create(&s, json!({})).await;
    let (status, r) = s.post("/api/chat/sessions/create", &json!({})).await;
    assert_eq!(status, 409, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("sessions.max_sessions"));
    // An import that is not an export.
    let (status, r) = s
        .post("/api/chat/import", &json!({"format": "x", "version": 1}))
        .await;
    assert_eq!(status, 400, "{r}");
}

#[tokio::test]
async fn one_socket_carries_several_sessions() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let a = create(&s, json!({"model": SMOL, "params": greedy(6)})).await;
    let b = create(&s, json!({"model": SMOL, "params": greedy(6)})).await;
    for path in ["/ws/chat/stream", "/chat/ws"] {
        let url = s.base.replace("http://", "ws://") + path;
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        for id in [&a, &b] {
            let msg = json!({"type": "send", "session_id": id, "message": "Hello!"});
            ws.send(tokio_tungstenite::tungstenite::Message::Text(msg.to_string().into()))
                .await
                .unwrap();
        }
        let mut done = std::collections::HashSet::new();
        let mut deltas = 0;
        while done.len() < 2 {
            let msg = tokio::time::timeout(Duration::from_secs(120), ws.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
            match v["type"].as_str().unwrap() {
                "delta" => deltas += 1,
                "done" => {
                    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 0, "{v}");
                    done.insert(v["session_id"].as_str().unwrap().to_string());
                }
                "error" => panic!("{v}"),
                _ => {}
            }
        }
        assert!(deltas > 0);
        // A bad message gets an error, and the socket stays open.
        ws.send(tokio_tungstenite::tungstenite::Message::Text(
            json!({"type": "send", "session_id": "sess_nope", "message": "x"})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
        let msg = ws.next().await.unwrap().unwrap();
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["code"], 404, "{v}");
        // A refused request names its session and the client's request id, so a client
        // with several sessions on the socket knows which one failed.
        let refusals = [
            (json!({"type": "send", "session_id": "sess_nope", "message": "x", "request_id": "r1"}), 404),
            (json!({"type": "send", "session_id": a, "message": "x", "model": "nope", "request_id": "r2"}), 404),
            (json!({"type": "send", "session_id": a, "message": " ", "request_id": "r3"}), 400),
            (json!({"type": "stop", "session_id": "sess_nope", "request_id": "r4"}), 404),
            (json!({"type": "send", "session_id": a, "message": 5, "request_id": "r5"}), 400),
        ];
        for (req, code) in &refusals {
            ws.send(tokio_tungstenite::tungstenite::Message::Text(req.to_string().into()))
                .await
                .unwrap();
            let msg = ws.next().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
            assert_eq!((v["type"].as_str(), v["error"]["code"].as_u64()), (Some("error"), Some(*code)), "{req}: {v}");
            assert_eq!(v["session_id"], req["session_id"], "{req}: {v}");
            assert_eq!(v["request_id"], req["request_id"], "{req}: {v}");
        }
        // A busy session: the second send while the first (a long answer) runs; then stopped.
        let c = create(&s, json!({"model": SMOL, "params": {"max_tokens": 400, "temperature": 0.0}})).await;
        let long = json!({"type": "send", "session_id": c, "message": "Tell a long story.", "request_id": "long"});
        let busy = json!({"type": "send", "session_id": c, "message": "And another.", "request_id": "busy"});
        let stop = json!({"type": "stop", "session_id": c, "request_id": "halt"});
        for m in [&long, &busy] {
            ws.send(tokio_tungstenite::tungstenite::Message::Text(m.to_string().into()))
                .await
                .unwrap();
        }
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(120), ws.next()).await.unwrap().unwrap().unwrap();
            let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
            if v["type"] == "error" {
                assert_eq!((v["request_id"].as_str(), v["session_id"].as_str()), (Some("busy"), Some(c.as_str())), "{v}");
                assert_eq!(v["error"]["code"], 409, "{v}");
                ws.send(tokio_tungstenite::tungstenite::Message::Text(stop.to_string().into()))
                    .await
                    .unwrap();
            }
            if v["type"] == "done" {
                assert_eq!(v["request_id"], "long", "the answer's events carry its request id: {v}");
                break;
            }
        }
    }
}
