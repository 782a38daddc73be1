//! Golden tests of the exact wire format of each endpoint family, non-streaming and SSE.
//! Volatile values (ids, timestamps, speeds) are normalized; everything else, including
//! the generated text at temperature 0, must match `tests/golden/*.json`.

use super::*;

fn stream_json(events: &[String]) -> Value {
    Value::Array(
        events
            .iter()
            .map(|e| serde_json::from_str::<Value>(e).map_or_else(|_| json!(e), |v| normalize(&v)))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_wire_format() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let (status, body) = s.post("/v1/chat/completions", &chat(FRANCE, 24)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "The capital of France is Paris."
    );
    assert_golden("chat_completion", &normalize(&body));

    let mut req = chat(FRANCE, 24);
    req["stream"] = json!(true);
    req["stream_options"] = json!({"include_usage": true});
    let events = s.stream("/v1/chat/completions", &req).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert_golden("chat_completion_stream", &stream_json(&events));

    let body_completion = json!({"model": SMOL, "prompt": "The capital of France is", "max_tokens": 6, "temperature": 0});
    let (status, body) = s.post("/v1/completions", &body_completion).await;
    assert_eq!(status, 200, "{body}");
    assert_golden("completion", &normalize(&body));
    let mut req = body_completion.clone();
    req["stream"] = json!(true);
    let events = s.stream("/v1/completions", &req).await;
    assert_golden("completion_stream", &stream_json(&events));

    // Without the /v1 prefix too, as llama-server.
    let (status, body2) = s.post("/completions", &body_completion).await;
    assert_eq!(status, 200);
    assert_eq!(body2["choices"][0]["text"], body["choices"][0]["text"]);

    let (status, models) = s.get("/v1/models").await;
    assert_eq!(status, 200);
    let mut models = normalize(&models);
    models["data"][0]["created"] = json!("<created>");
    assert_golden("models", &models);

    let resp = json!({"model": SMOL, "input": FRANCE, "max_output_tokens": 24, "temperature": 0});
    let (status, body) = s.post("/v1/responses", &resp).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["output"][0]["content"][0]["text"],
        "The capital of France is Paris."
    );
    assert_golden("responses", &normalize(&body));
    let mut req = resp.clone();
    req["stream"] = json!(true);
    let r = s
        .client
        .post(s.url("/v1/responses"))
        .json(&req)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    let kinds: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(kinds.first(), Some(&"response.created"));
    assert_eq!(kinds.last(), Some(&"response.completed"));
    assert_golden("responses_stream", &stream_json(&sse_data(&text)));
}

#[tokio::test(flavor = "multi_thread")]
async fn native_wire_format() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let req = json!({"model": SMOL, "prompt": "The capital of France is", "n_predict": 6, "temperature": 0, "n_probs": 2});
    let (status, body) = s.post("/completion", &req).await;
    assert_eq!(status, 200, "{body}");
    assert_golden("native_completion", &normalize(&body));
    let mut sreq = req.clone();
    sreq["stream"] = json!(true);
    let events = s.stream("/completion", &sreq).await;
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["stop"], true);
    assert_golden("native_completion_stream", &stream_json(&events));

    let (status, body) = s
        .post(
            "/tokenize",
            &json!({"model": SMOL, "content": "Hello world", "with_pieces": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_golden("tokenize", &body);
    let ids: Vec<Value> = body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    let (status, body) = s
        .post("/detokenize", &json!({"model": SMOL, "tokens": ids}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"content": "Hello world"}));

    let (status, body) = s
        .post(
            "/apply-template",
            &json!({"model": SMOL, "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_golden("apply_template", &body);
}

#[tokio::test(flavor = "multi_thread")]
async fn error_shapes() {
    let s = TestServer::empty(Opts::default()).await;
    // OpenAI routes: {"error": {"message", "type", "param", "code"}}
    let (status, body) = s.post("/v1/chat/completions", &chat("hi", 1)).await;
    assert_eq!(status, 404);
    assert_golden("error_openai", &body);
    // Native routes: llama-server's {"error": {"code", "message", "type"}}
    let (status, body) = s
        .post("/completion", &json!({"model": "nope", "prompt": "x"}))
        .await;
    assert_eq!(status, 404);
    assert_golden("error_native", &body);
    // Management routes.
    let (status, body) = s.get("/api/models/nope/details").await;
    assert_eq!(status, 404);
    assert_golden("error_admin", &body);
    // Unknown route, wrong method, broken JSON: JSON errors too.
    let (status, body) = s.get("/v1/nothing").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let (status, body) = s.get("/v1/chat/completions").await;
    assert_eq!(status, 405);
    assert!(body["error"]["message"].is_string());
    let (status, body) = s
        .send(
            s.client
                .post(s.url("/v1/chat/completions"))
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{body}"
    );
}
