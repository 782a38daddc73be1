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
    // Anthropic's Messages routes: {"type": "error", "error": {"type", "message"}}
    let (status, body) = s
        .post(
            "/v1/messages",
            &json!({"model": "nope", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, 404);
    assert_golden("error_anthropic", &body);
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

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_wire_format() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let req = anthropic::messages(FRANCE, 24);
    let (status, body) = s.post("/v1/messages", &req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["content"][0]["text"],
        "The capital of France is Paris."
    );
    assert_golden("anthropic_message", &normalize(&body));
    let events = anthropic::events(&s, &req).await;
    assert_golden(
        "anthropic_message_stream",
        &normalize(&Value::Array(events)),
    );

    let mut tool = anthropic::messages("What is the weather in Paris?", 64);
    tool["tools"] = json!([anthropic::weather_tool()]);
    tool["tool_choice"] = json!({"type": "tool", "name": "get_weather"});
    let (status, body) = s.post("/v1/messages", &tool).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stop_reason"], "tool_use", "{body}");
    assert_golden("anthropic_tool_use", &normalize(&body));
    let events = anthropic::events(&s, &tool).await;
    assert_golden(
        "anthropic_tool_use_stream",
        &normalize(&Value::Array(events)),
    );
}

/// Fields Anthropic documents that we do not send, and why.
const ANTHROPIC_UNSENT: &[&str] = &[
    // Prompt caching here is llama.cpp's automatic prefix reuse: nothing is written to a
    // cache with a lifetime, so there is no breakdown by TTL (the total, 0, is sent).
    "usage.cache_creation",
    // No service tiers on a local server.
    "usage.service_tier",
    // No server tools (web search, code execution) run here.
    "usage.server_tool_use",
    // Request ids travel in the `x-request-id` header, not in the error body.
    "request_id",
];

const ANTHROPIC: Allowed = Allowed {
    unsent: ANTHROPIC_UNSENT,
    extra: &[],
};

/// What a comparison with the original server's samples lets pass: documented fields we do
/// not send (`unsent`) and fields we send that the samples lack (`extra`), each with a
/// reason where it is declared. Paths are dotted (`usage.service_tier`); an `extra` entry
/// without a dot matches the key at any depth.
pub struct Allowed<'a> {
    pub unsent: &'a [&'a str],
    pub extra: &'a [&'a str],
}

/// Checks `ours` against the original server's `sample` field by field: every field we send
/// is in the sample with the same JSON type (a golden file's `"<placeholder>"` stands for a
/// number), and every field of the sample is sent, but for what `allowed` lets pass. List
/// elements (content blocks, events) are matched by `type`, else with the first.
pub fn documented(
    path: &str,
    sample: &Value,
    ours: &Value,
    allowed: &Allowed,
    problems: &mut Vec<String>,
) {
    let at = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (sample, ours) {
        // A tool's input is the tool's own schema, not Anthropic's.
        (Value::Object(_), Value::Object(_)) if path.ends_with(".input") => {}
        (Value::Object(s), Value::Object(o)) => {
            for (k, v) in o {
                match s.get(k) {
                    Some(sv) => documented(&at(k), sv, v, allowed, problems),
                    None if allowed.extra.contains(&at(k).as_str())
                        || allowed.extra.contains(&k.as_str()) => {}
                    None => problems.push(format!("{}: not in the sample", at(k))),
                }
            }
            for k in s.keys() {
                if !o.contains_key(k) && !allowed.unsent.contains(&at(k).as_str()) {
                    problems.push(format!("{}: documented, not sent", at(k)));
                }
            }
        }
        (Value::Array(s), Value::Array(o)) => {
            for (i, v) in o.iter().enumerate() {
                match s.iter().find(|x| x.get("type") == v.get("type")) {
                    Some(sv) => documented(&format!("{path}[{i}]"), sv, v, allowed, problems),
                    None => problems.push(format!("{path}[{i}]: no sample of type {}", v["type"])),
                }
            }
        }
        // `null` stands for "absent for now" on both sides (stop_reason, stop_sequence).
        (Value::Null, _) | (_, Value::Null) => {}
        (Value::Number(_), Value::String(p)) if p.starts_with('<') => {}
        (s, o) if std::mem::discriminant(s) != std::mem::discriminant(o) => {
            problems.push(format!("{path}: {o} where the sample has {s}"))
        }
        _ => {}
    }
}

pub fn golden_file(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The `content_block_start` / `content_block_delta` events of a stream are told apart by
/// the type of what they carry.
fn event_key(e: &Value) -> String {
    let inner = e["content_block"]["type"]
        .as_str()
        .or_else(|| e["delta"]["type"].as_str());
    match inner {
        Some(t) => format!("{}:{t}", e["type"].as_str().unwrap_or("")),
        None => e["type"].as_str().unwrap_or("").to_string(),
    }
}

#[test]
fn anthropic_goldens_have_the_documented_fields() {
    let samples = golden_file("anthropic_samples");
    let mut problems = Vec::new();
    for name in ["anthropic_message", "anthropic_tool_use"] {
        let mut p = Vec::new();
        documented(
            "",
            &samples["message"],
            &golden_file(name),
            &ANTHROPIC,
            &mut p,
        );
        problems.extend(p.into_iter().map(|p| format!("{name}: {p}")));
    }
    let stream_samples = samples["stream"].as_array().unwrap();
    for name in ["anthropic_message_stream", "anthropic_tool_use_stream"] {
        for (i, e) in golden_file(name).as_array().unwrap().iter().enumerate() {
            let key = event_key(e);
            match stream_samples.iter().find(|s| event_key(s) == key) {
                Some(sample) => {
                    let mut p = Vec::new();
                    documented("", sample, e, &ANTHROPIC, &mut p);
                    problems.extend(p.into_iter().map(|p| format!("{name}[{i}] {key}: {p}")));
                }
                None => problems.push(format!("{name}[{i}]: no documented event {key}")),
            }
        }
    }
    let mut p = Vec::new();
    documented(
        "",
        &samples["error"],
        &golden_file("error_anthropic"),
        &ANTHROPIC,
        &mut p,
    );
    problems.extend(p.into_iter().map(|p| format!("error_anthropic: {p}")));
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Ollama's routes on the real model, stream and not: what we send must match the golden
/// files (text at temperature 0; durations, times and vectors as their shapes).
#[tokio::test(flavor = "multi_thread")]
async fn ollama_wire_format() {
    use ollama_chat::{ndjson, ollama_chat, ollama_normalize, weather_request};
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let shape = |objects: Vec<Value>| ollama_normalize(&Value::Array(objects));
    let (status, body) = s.post("/api/chat", &ollama_chat(FRANCE, 24)).await;
    assert_eq!(status, 200, "{body}");
    assert_golden("ollama_chat", &ollama_normalize(&body));
    let mut req = ollama_chat(FRANCE, 24);
    req["stream"] = json!(true);
    assert_golden(
        "ollama_chat_stream",
        &shape(ndjson(&s, "/api/chat", &req).await),
    );
    let (status, body) = s.post("/api/chat", &weather_request()).await;
    assert_eq!(status, 200, "{body}");
    assert_golden("ollama_tool_call", &ollama_normalize(&body));
    let mut req = weather_request();
    req["stream"] = json!(true);
    assert_golden(
        "ollama_tool_call_stream",
        &shape(ndjson(&s, "/api/chat", &req).await),
    );

    let gen_req = json!({"model": SMOL, "prompt": FRANCE, "stream": false,
        "options": {"temperature": 0, "num_predict": 24}});
    let (status, body) = s.post("/api/generate", &gen_req).await;
    assert_eq!(status, 200, "{body}");
    assert_golden("ollama_generate", &ollama_normalize(&body));
    let mut req = gen_req.clone();
    req["stream"] = json!(true);
    assert_golden(
        "ollama_generate_stream",
        &shape(ndjson(&s, "/api/generate", &req).await),
    );
    let (_, body) = s.post("/api/generate", &json!({"model": SMOL})).await;
    assert_golden("ollama_load", &ollama_normalize(&body));

    let (status, body) = s
        .post(
            "/api/embed",
            &json!({"model": SMOL, "input": ["Hello", "world"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_golden("ollama_embed", &ollama_normalize(&body));
    let (status, body) = s
        .post(
            "/api/embeddings",
            &json!({"model": SMOL, "prompt": "Hello"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_golden("ollama_embeddings", &ollama_normalize(&body));
    let (status, body) = s
        .post(
            "/api/chat",
            &json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, 404);
    assert_golden("error_ollama", &body);
}

/// Fields Ollama documents that we do not send, and why.
const OLLAMA_UNSENT: &[&str] = &[
    // Deprecated in Ollama; a templated prompt's tokens are not returned here (a raw
    // prompt takes an earlier answer's `context` back).
    "context",
    // Sent only when there is some: SmolLM2 does not think, and only calls carry calls.
    "thinking",
    "message.thinking",
    "message.tool_calls",
];

const OLLAMA: Allowed = Allowed {
    unsent: OLLAMA_UNSENT,
    extra: &[],
};

/// Checks every golden file of Ollama's routes against the documented sample of its kind.
#[test]
fn ollama_goldens_have_the_documented_fields() {
    let samples = golden_file("ollama_samples");
    let mut problems = Vec::new();
    let mut against = |name: &str, ours: &Value, sample: &str| {
        let mut p = Vec::new();
        documented("", &samples[sample], ours, &OLLAMA, &mut p);
        problems.extend(p.into_iter().map(|p| format!("{name} vs {sample}: {p}")));
    };
    for (name, sample) in [
        ("ollama_chat", "chat_final"),
        ("ollama_tool_call", "chat_final"),
        ("ollama_generate", "generate_final"),
        ("ollama_load", "load"),
        ("ollama_embed", "embed"),
        ("ollama_embeddings", "embeddings"),
        ("error_ollama", "error"),
    ] {
        against(name, &golden_file(name), sample);
    }
    for (name, piece, last) in [
        ("ollama_chat_stream", "chat_piece", "chat_final"),
        ("ollama_tool_call_stream", "chat_piece", "chat_final"),
        ("ollama_generate_stream", "generate_piece", "generate_final"),
    ] {
        let objects = golden_file(name);
        let (final_object, pieces) = objects.as_array().unwrap().split_last().unwrap();
        for p in pieces {
            against(name, p, piece);
        }
        against(name, final_object, last);
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
