//! Inputs that would overflow a stack or exhaust memory, queues and deadlines: refused with
//! the setting that raises the limit named, and the server keeps serving.

use super::*;
use serde_json::{Value, json};
use std::time::Duration;

/// `root ::= ((…"a"…))` with `levels` groups (`levels + 1` deep).
fn nested_grammar(levels: usize) -> String {
    format!("root ::= {}\"a\"{}", "(".repeat(levels), ")".repeat(levels))
}

/// `root ::= r0`, `r0 ::= r1`, … `r{n-1} ::= "a"`.
fn rule_chain(rules: usize) -> String {
    let mut g = String::from("root ::= r0\n");
    for i in 0..rules - 1 {
        g.push_str(&format!("r{i} ::= r{}\n", i + 1));
    }
    g.push_str(&format!("r{} ::= \"a\"\n", rules - 1));
    g
}

/// A JSON schema of arrays nested `levels` deep.
fn nested_schema(levels: usize) -> Value {
    let mut s = json!({"type": "string"});
    for _ in 0..levels {
        s = json!({"type": "array", "items": s});
    }
    s
}

fn completion_with_grammar(grammar: &str) -> Value {
    json!({"model": SMOL, "prompt": "Say a:", "n_predict": 4, "temperature": 0, "grammar": grammar})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grammars_that_would_overflow_the_stack_are_refused() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let (status, body) = s
        .post(
            "/completion",
            &completion_with_grammar(&nested_grammar(30_000)),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let msg = error_message(&body);
    assert!(msg.contains("limits.max_grammar_depth"), "{msg}");
    still_serves(&s).await;

    let (status, body) = s
        .post("/completion", &completion_with_grammar(&rule_chain(10_000)))
        .await;
    assert_eq!(status, 400, "{body}");
    let msg = error_message(&body);
    assert!(msg.contains("limits.max_grammar_"), "{msg}");
    still_serves(&s).await;

    // A schema nested 10,000 deep is refused while the body is read (JSON nesting limit).
    // Written as text: building it as a `Value` would recurse in this test's own thread.
    let levels = 10_000;
    let body = format!(
        r#"{{"model": "{SMOL}", "messages": [{{"role": "user", "content": "A list."}}], "max_tokens": 4,
        "response_format": {{"type": "json_schema", "json_schema": {{"name": "x", "schema": {}{{"type": "string"}}{}}}}}}}"#,
        r#"{"type": "array", "items": "#.repeat(levels),
        "}".repeat(levels)
    );
    let (status, body) = s
        .send(
            s.client
                .post(s.url("/v1/chat/completions"))
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(!error_message(&body).is_empty(), "{body}");
    still_serves(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_schema_deeper_than_the_grammar_limit_is_refused() {
    let opts = Opts::default().tweak(|c| c.limits.max_grammar_depth = 20);
    let Some(s) = TestServer::start(opts).await else {
        return;
    };
    let (status, body) = s
        .post(
            "/v1/chat/completions",
            &json!({
                "model": SMOL,
                "messages": [{"role": "user", "content": "A list."}],
                "max_tokens": 4,
                "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": nested_schema(40)}},
            }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let msg = error_message(&body);
    assert!(msg.contains("limits.max_grammar_depth"), "{msg}");
    assert_eq!(body["error"]["param"], "grammar", "{body}");
    // Anthropic's structured output and a tool's input schema reach the same grammar check.
    let tool = json!({"name": "deep", "input_schema": {"type": "object", "properties": {"x": nested_schema(40)}}});
    for extra in [
        json!({"output_config": {"format": {"type": "json_schema", "schema": nested_schema(40)}}}),
        json!({"tools": [tool], "tool_choice": {"type": "tool", "name": "deep"}}),
    ] {
        let mut req = json!({
            "model": SMOL,
            "max_tokens": 4,
            "messages": [{"role": "user", "content": "A list."}],
        });
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        let (status, body) = s.post("/v1/messages", &req).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["type"], "error", "{body}");
        assert!(
            error_message(&body).contains("limits.max_grammar_depth"),
            "{body}"
        );
    }
    still_serves(&s).await;
}

/// The deepest grammar the configuration allows is parsed and sampled: the threads that run
/// llama.cpp's recursive grammar code have the stack for it (a tokio worker's 2 MiB do not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grammar_at_the_depth_limit_works() {
    let opts = Opts::default().tweak(|c| c.limits.max_grammar_depth = 16_384);
    let Some(s) = TestServer::start(opts).await else {
        return;
    };
    let (status, body) = s
        .post(
            "/completion",
            &completion_with_grammar(&nested_grammar(16_383)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["content"], "a", "{body}");
    let (status, body) = s
        .post(
            "/completion",
            &completion_with_grammar(&nested_grammar(16_384)),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        error_message(&body).contains("limits.max_grammar_depth"),
        "{body}"
    );
    still_serves(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedding_responses_are_capped_before_computing() {
    let opts = Opts::default().tweak(|c| {
        c.limits.max_embedding_floats = 1000;
        c.limits.max_embedding_tokens = 40;
        c.limits.max_embedding_inputs = 3;
    });
    let Some(s) = TestServer::start(opts).await else {
        return;
    };
    // Per-token rows: a few tokens times the model's 576 dimensions.
    let (status, body) = s
        .post(
            "/embedding",
            &json!({"model": SMOL, "content": "Hello world, how are you?", "pooling": "none"}),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert!(
        error_message(&body).contains("limits.max_embedding_floats"),
        "{body}"
    );
    let many_words = "word ".repeat(30);
    let (status, body) = s
        .post(
            "/embedding",
            &json!({"model": SMOL, "content": [many_words, many_words], "pooling": "none"}),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert!(
        error_message(&body).contains("limits.max_embedding_tokens"),
        "{body}"
    );
    let (status, body) = s
        .post(
            "/v1/embeddings",
            &json!({"model": SMOL, "input": ["a", "b", "c", "d"]}),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert!(
        error_message(&body).contains("limits.max_embedding_inputs"),
        "{body}"
    );
    still_serves(&s).await;
}

/// A `/completion` stream that runs until the test drops it.
async fn endless_stream(s: &TestServer) -> reqwest::Response {
    let resp = s
        .client
        .post(s.url("/completion"))
        .json(&json!({
            "model": SMOL, "prompt": "Count:", "n_predict": 1500, "ignore_eos": true, "stream": true,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp
}

/// Waits until `n` requests hold a place among those in flight.
async fn in_flight(s: &TestServer, n: u64) {
    let wait = async {
        while s.state.models.admission().in_flight() != n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(120), wait)
        .await
        .expect("requests in flight");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_a_models_queue_get_429_with_retry_after() {
    let opts = Opts {
        parallel: Some(1),
        ..Default::default()
    }
    .tweak(|c| c.limits.max_waiting_per_model = 1);
    let Some(s) = TestServer::start(opts).await else {
        return;
    };
    let running = endless_stream(&s).await;
    in_flight(&s, 1).await;
    let waiting = {
        let client = s.client.clone();
        let url = s.url("/v1/chat/completions");
        tokio::spawn(async move {
            client
                .post(url)
                .json(&chat(FRANCE, 4))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    // The second request waits in the model's queue (it has its place on the model).
    let queued = async {
        while s.state.models.peek(SMOL).map(|m| m.handle.queue_len()) != Some(1) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(120), queued)
        .await
        .expect("a queued request");
    let resp = s
        .client
        .post(s.url("/v1/chat/completions"))
        .json(&chat(FRANCE, 4))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get("retry-after").is_some());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert!(
        error_message(&body).contains("limits.max_waiting_per_model"),
        "{body}"
    );
    drop(running);
    assert_eq!(waiting.await.unwrap(), 200);
    still_serves(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_servers_bound_get_503_with_retry_after() {
    let opts = Opts::default().tweak(|c| c.limits.max_in_flight = 1);
    let Some(s) = TestServer::start(opts).await else {
        return;
    };
    let running = endless_stream(&s).await;
    in_flight(&s, 1).await;
    let resp = s
        .client
        .post(s.url("/completion"))
        .json(&json!({"model": SMOL, "prompt": "Hi", "n_predict": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("retry-after").is_some());
    let body: Value = resp.json().await.unwrap();
    assert!(
        error_message(&body).contains("limits.max_in_flight"),
        "{body}"
    );
    drop(running);
    in_flight(&s, 0).await;
    still_serves(&s).await;
}

/// Waiting for a free model counts against the request's deadline: with `models_max = 1`
/// and the other model held, the request gives up after `server.timeout_seconds` with 503,
/// and once the model is free the same request works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_model_counts_against_the_deadline() {
    let opts = Opts {
        gemma: true,
        models_max: Some(1),
        ..Default::default()
    }
    .tweak(|c| c.server.timeout_seconds = 10);
    let Some(s) = TestServer::start(opts).await else {
        return;
    };
    let smol = s.state.models.resolve(SMOL).await.unwrap();
    let held = s.state.models.acquire_entry(&smol, None).await.unwrap();
    let ask_gemma = json!({
        "model": GEMMA, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2,
    });
    let (status, body) = tokio::time::timeout(
        Duration::from_secs(120),
        s.post("/v1/chat/completions", &ask_gemma),
    )
    .await
    .expect("the request must give up at its deadline, not wait for the model");
    assert_eq!(status, 503, "{body}");
    assert!(
        error_message(&body).contains("server.timeout_seconds"),
        "{body}"
    );
    drop(held);
    let (status, body) = s.post("/v1/chat/completions", &ask_gemma).await;
    assert_eq!(status, 200, "{body}");
    still_serves(&s).await;
}

/// A generation that runs past the request's deadline ends with 408 naming
/// `server.timeout_seconds` (not a 400 about a parameter the client never sent), and its
/// place among the requests in flight is given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generation_past_the_deadline_gets_408() {
    let opts = Opts {
        parallel: Some(1),
        ..Default::default()
    }
    .tweak(|c| c.server.timeout_seconds = 1);
    let Some(s) = TestServer::start(opts).await else {
        return;
    };
    // Load first: the deadline is for the generation here, not for the load.
    s.state
        .models
        .load(SMOL, &Default::default())
        .await
        .unwrap();
    let (status, body) = s
        .post(
            "/v1/completions",
            &json!({"model": SMOL, "prompt": "Count:", "max_tokens": 1900, "ignore_eos": true}),
        )
        .await;
    assert_eq!(status, 408, "{body}");
    assert!(
        error_message(&body).contains("server.timeout_seconds"),
        "{body}"
    );
    // The request's place among those in flight is given back.
    in_flight(&s, 0).await;
    // Ends only once the slot is idle: a test process that exits while llama.cpp still
    // decodes for the abandoned request can crash in llama.cpp's teardown (SIGSEGV after
    // the test passed).
    for _ in 0..600 {
        let (status, slots) = s.get("/slots").await;
        let idle = status == 200
            && slots
                .as_array()
                .is_some_and(|a| a.iter().all(|x| x["is_processing"] != true));
        if idle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads what the server sends on `conn` until it closes the connection (or 60 s pass).
async fn read_until_closed(conn: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let read = conn.read_to_end(&mut got);
    match tokio::time::timeout(Duration::from_secs(60), read).await {
        Ok(_) => String::from_utf8_lossy(&got).into_owned(),
        Err(_) => panic!("the server kept a slow connection open"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_head_is_disconnected() {
    use tokio::io::AsyncWriteExt;
    let opts = Opts::default().tweak(|c| c.limits.header_timeout_seconds = 1);
    let Some(s) = TestServer::start(opts).await else {
        return;
    };
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST /completion HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        .await
        .unwrap();
    // Others are served while the slow client holds its connection.
    still_serves(&s).await;
    let answer = read_until_closed(&mut slow).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    still_serves(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_body_gets_408() {
    use tokio::io::AsyncWriteExt;
    let opts = Opts::default().tweak(|c| c.limits.body_timeout_seconds = 1);
    let Some(s) = TestServer::start(opts).await else {
        return;
    };
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(
        b"POST /completion HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n{\"prompt\": \"",
    )
    .await
    .unwrap();
    still_serves(&s).await;
    let answer = read_until_closed(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("limits.body_timeout_seconds"), "{answer}");
    still_serves(&s).await;
}
