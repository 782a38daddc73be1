//! Ollama's inference routes (`/api/chat`, `/api/generate`, `/api/embed`, `/api/embeddings`)
//! on the real model: NDJSON streams, the final object's fields, options, format, tools,
//! think, preload/unload, embeddings, errors in Ollama's shape, and the inference key. The
//! wire format is pinned by golden files compared field by field with Ollama's documented
//! samples (`golden.rs`).

use super::*;

/// An `/api/chat` request for SmolLM2 at temperature 0.
pub fn ollama_chat(content: &str, num_predict: i64) -> Value {
    json!({
        "model": SMOL,
        "messages": [{"role": "user", "content": content}],
        "stream": false,
        "options": {"temperature": 0, "num_predict": num_predict},
    })
}

/// The objects of an NDJSON answer, checking its content type and that every line is one
/// JSON object.
pub async fn ndjson(s: &TestServer, path: &str, body: &Value) -> Vec<Value> {
    let resp = s.client.post(s.url(path)).json(body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    let text = resp.text().await.unwrap();
    assert!(text.ends_with('\n'), "{text}");
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            assert!(v.is_object(), "{l}");
            v
        })
        .collect()
}

/// Durations and timestamps made comparable: a duration must be a non-negative integer
/// (nanoseconds), `created_at` RFC 3339 with nanoseconds.
pub fn ollama_normalize(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let v = if k.ends_with("_duration") {
                        assert!(v.is_u64(), "{k}: {v}");
                        json!("<ns>")
                    } else if k == "created_at" {
                        let t = v.as_str().unwrap();
                        assert!(
                            t.ends_with('Z') && t.len() == "2023-08-04T19:22:45.499127000Z".len(),
                            "{t}"
                        );
                        json!("<created_at>")
                    } else if k == "id" {
                        json!("<id>")
                    } else if k == "embeddings" || k == "embedding" {
                        embedding_shape(v)
                    } else {
                        ollama_normalize(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(ollama_normalize).collect()),
        other => other.clone(),
    }
}

/// Vectors as their length (`["<576 floats>"]`): computed values differ in their last
/// digits between CPUs.
fn embedding_shape(v: &Value) -> Value {
    match v {
        Value::Array(a) if a.iter().all(Value::is_number) => {
            json!([format!("<{} floats>", a.len())])
        }
        Value::Array(a) => Value::Array(a.iter().map(embedding_shape).collect()),
        other => other.clone(),
    }
}

fn norm(v: &Value) -> f64 {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap().powi(2))
        .sum::<f64>()
        .sqrt()
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_answers_whole_and_as_ndjson() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let (status, body) = s.post("/api/chat", &ollama_chat(FRANCE, 24)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"]["role"], "assistant");
    assert_eq!(
        body["message"]["content"],
        "The capital of France is Paris."
    );
    assert_eq!(body["model"], SMOL);
    assert_eq!(body["done"], true);
    assert_eq!(body["done_reason"], "stop");
    assert!(body["prompt_eval_count"].as_u64().unwrap() > 0, "{body}");
    assert!(body["eval_count"].as_u64().unwrap() > 0, "{body}");
    assert!(body["total_duration"].as_u64().unwrap() > 0, "{body}");
    ollama_normalize(&body);

    // Streams are the default: one object a line, the text in pieces, metrics at the end.
    let mut req = ollama_chat(FRANCE, 24);
    req.as_object_mut().unwrap().remove("stream");
    let objects = ndjson(&s, "/api/chat", &req).await;
    let (last, pieces) = objects.split_last().unwrap();
    assert!(pieces.len() > 2, "{objects:?}");
    assert!(pieces.iter().all(|o| o["done"] == false));
    let text: String = pieces
        .iter()
        .map(|o| o["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, body["message"]["content"].as_str().unwrap());
    assert_eq!(last["done"], true);
    assert_eq!(last["message"]["content"], "");
    assert_eq!(last["eval_count"], body["eval_count"]);
    assert_eq!(last["done_reason"], "stop");

    // num_predict caps the answer: done_reason "length".
    let (_, body) = s.post("/api/chat", &ollama_chat(FRANCE, 3)).await;
    assert_eq!(body["done_reason"], "length", "{body}");
    assert_eq!(body["eval_count"], 3, "{body}");
    // Stop strings from options.
    let mut req = ollama_chat(FRANCE, 24);
    req["options"]["stop"] = json!(["Paris"]);
    let (_, body) = s.post("/api/chat", &req).await;
    assert_eq!(
        body["message"]["content"], "The capital of France is ",
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn generate_prompts_raw_and_templated_and_preloads() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let gen_req = |extra: Value| {
        let mut body = json!({"model": SMOL, "prompt": FRANCE, "stream": false,
            "options": {"temperature": 0, "num_predict": 24}});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let (status, body) = s.post("/api/generate", &gen_req(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["response"], "The capital of France is Paris.");
    assert_eq!(body["done"], true);
    // A system prompt reaches the template: the answer changes.
    let (_, sys) = s
        .post(
            "/api/generate",
            &gen_req(
                json!({"system": "You are a geography teacher who answers every \
                question in one short sentence, without lists, greetings or follow-up \
                questions, and always names the country first."}),
            ),
        )
        .await;
    assert!(
        sys["prompt_eval_count"].as_u64().unwrap()
            > body["prompt_eval_count"].as_u64().unwrap() + 5,
        "{sys}"
    );
    // Raw: the prompt as it is (no template): a continuation, not an answer.
    let (status, raw) = s
        .post(
            "/api/generate",
            &gen_req(json!({"prompt": "The capital of France is", "raw": true})),
        )
        .await;
    assert_eq!(status, 200, "{raw}");
    assert_ne!(raw["response"], body["response"]);
    assert!(
        raw["prompt_eval_count"].as_u64().unwrap() < body["prompt_eval_count"].as_u64().unwrap()
    );
    // Raw with an earlier answer's tokens in front.
    let (status, ctx) = s
        .post(
            "/api/generate",
            &gen_req(json!({"prompt": " is", "raw": true, "context": [504, 3575, 282, 4649]})),
        )
        .await;
    assert_eq!(status, 200, "{ctx}");
    assert!(ctx["prompt_eval_count"].as_u64().unwrap() >= 5, "{ctx}");
    // Streamed.
    let mut req = gen_req(json!({}));
    req["stream"] = json!(true);
    let objects = ndjson(&s, "/api/generate", &req).await;
    let text: String = objects
        .iter()
        .map(|o| o["response"].as_str().unwrap())
        .collect();
    assert_eq!(text, body["response"].as_str().unwrap());
    assert_eq!(objects.last().unwrap()["done"], true);
    // No prompt: Ollama's preload, then `keep_alive: 0` unloads.
    let (status, body) = s.post("/api/generate", &json!({"model": SMOL})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["done_reason"], "load");
    assert_eq!(body["response"], "");
    let (_, models) = s.get("/v1/models").await;
    assert!(models.to_string().contains("\"loaded\""), "{models}");
    let (status, body) = s
        .post(
            "/api/chat",
            &json!({"model": SMOL, "messages": [], "keep_alive": 0}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["done_reason"], "unload");
    assert_eq!(body["message"]["content"], "");
    let mut unloaded = false;
    for _ in 0..300 {
        let (_, models) = s.get("/v1/models").await;
        if !models.to_string().contains("\"loaded\"") {
            unloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(unloaded, "keep_alive 0 left the model loaded");
    // SmolLM2 has no FIM tokens: a suffix is refused as Ollama refuses it.
    let (status, body) = s
        .post("/api/generate", &gen_req(json!({"suffix": "return x"})))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("does not support insert"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn format_tools_and_think() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    // A JSON schema: the answer parses and has the required keys.
    let mut req = ollama_chat("Name the capital of France and its country.", 64);
    req["format"] = json!({"type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"]});
    let (status, body) = s.post("/api/chat", &req).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(body["message"]["content"].as_str().unwrap()).unwrap();
    assert!(
        answer["city"].is_string() && answer["country"].is_string(),
        "{answer}"
    );
    // "json": any JSON value.
    let mut req = ollama_chat("A JSON object with a key 'ok' set to true.", 32);
    req["format"] = json!("json");
    let (_, body) = s.post("/api/chat", &req).await;
    let answer: Value = serde_json::from_str(body["message"]["content"].as_str().unwrap()).unwrap();
    assert!(answer.is_object(), "{answer}");

    // Tools: a call comes back with its arguments as an object, and the round trip (the
    // call as the assistant's message, the result as a `tool` message) is answered.
    let (status, body) = s.post("/api/chat", &weather_request()).await;
    assert_eq!(status, 200, "{body}");
    let calls = body["message"]["tool_calls"]
        .as_array()
        .expect("a tool call");
    assert_eq!(calls[0]["function"]["name"], "get_weather", "{body}");
    assert!(calls[0]["function"]["arguments"].is_object(), "{body}");
    let mut round = weather_request();
    round["messages"].as_array_mut().unwrap().extend([
        body["message"].clone(),
        json!({"role": "tool", "tool_name": "get_weather", "content": "Sunny, 22 degrees"}),
    ]);
    round.as_object_mut().unwrap().remove("format");
    round["options"]["num_predict"] = json!(8);
    let (status, body) = s.post("/api/chat", &round).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["done"], true);
    // Streamed, the calls come whole in one object before the last.
    let mut req = weather_request();
    req["stream"] = json!(true);
    let objects = ndjson(&s, "/api/chat", &req).await;
    let with_calls: Vec<&Value> = objects
        .iter()
        .filter(|o| o["message"]["tool_calls"].is_array())
        .collect();
    assert_eq!(with_calls.len(), 1, "{objects:?}");
    assert!(with_calls[0]["message"]["tool_calls"][0]["function"]["arguments"].is_object());

    // think on a model that does not think: accepted, a plain answer.
    for think in [json!(true), json!(false), json!("low")] {
        let mut req = ollama_chat(FRANCE, 24);
        req["think"] = think.clone();
        let (status, body) = s.post("/api/chat", &req).await;
        assert_eq!(status, 200, "{think}: {body}");
        assert_eq!(
            body["message"]["content"],
            "The capital of France is Paris."
        );
        assert!(body["message"].get("thinking").is_none(), "{body}");
    }
}

/// Asks SmolLM2 for the weather with the weather tool. Ollama has no `tool_choice`; a
/// `format` schema in the shape of a call (the template's tool-call JSON) makes this small
/// model call the tool, and the service's parser reads the call out of the answer.
pub fn weather_request() -> Value {
    json!({
        "model": SMOL,
        "stream": false,
        "options": {"temperature": 0, "num_predict": 40},
        "messages": [
            {"role": "user", "content": "What is the weather in Paris?"},
        ],
        "format": {"type": "object", "properties": {
            "name": {"const": "get_weather"},
            "arguments": {"type": "object",
                "properties": {"city": {"type": "string", "maxLength": 20}}, "required": ["city"]},
        }, "required": ["name", "arguments"]},
        "tools": [{"type": "function", "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                "required": ["city"]},
        }}],
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn embeddings_normalised_and_legacy() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let (status, body) = s
        .post(
            "/api/embed",
            &json!({"model": SMOL, "input": ["Hello world", "Bonjour"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], SMOL);
    let vectors = body["embeddings"].as_array().unwrap();
    assert_eq!(vectors.len(), 2);
    for v in vectors {
        assert!((norm(v) - 1.0).abs() < 1e-3, "{}", norm(v));
    }
    assert!(body["prompt_eval_count"].as_u64().unwrap() >= 2, "{body}");
    let width = vectors[0].as_array().unwrap().len();
    // One string, and `dimensions`: the first values, renormalised.
    let (_, body) = s
        .post(
            "/api/embed",
            &json!({"model": SMOL, "input": "Hello world", "dimensions": 8}),
        )
        .await;
    let v = &body["embeddings"][0];
    assert_eq!(v.as_array().unwrap().len(), 8);
    assert!((norm(v) - 1.0).abs() < 1e-3);
    // The legacy route: one vector as the model gives it, not normalised.
    let (status, body) = s
        .post(
            "/api/embeddings",
            &json!({"model": SMOL, "prompt": "Hello world"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["embedding"].as_array().unwrap().len(), width);
    assert!((norm(&body["embedding"]) - 1.0).abs() > 1e-2, "{body}");
    // Nothing to embed: an empty list.
    let (_, body) = s
        .post("/api/embed", &json!({"model": SMOL, "input": []}))
        .await;
    assert_eq!(body["embeddings"], json!([]));
    // Longer than the context: cut to its first tokens by default (Ollama's `truncate`),
    // refused with 400 naming the context when `truncate` is false.
    let long = "word ".repeat(5000);
    let (status, body) = s
        .post("/api/embed", &json!({"model": SMOL, "input": long}))
        .await;
    assert_eq!(status, 200, "{body}");
    let n = body["prompt_eval_count"].as_u64().unwrap();
    assert!(n > 0 && n <= 2048, "{n}");
    assert!((norm(&body["embeddings"][0]) - 1.0).abs() < 1e-3);
    let (status, body) = s
        .post(
            "/api/embed",
            &json!({"model": SMOL, "input": long, "truncate": false}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("context"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_ollamas_and_the_inference_key_opens_the_routes() {
    let Some(s) = TestServer::start(Opts::default().tweak(|c| {
        c.server.api_key = Some("inf-key".into());
    }))
    .await
    else {
        return;
    };
    let with_key = |path: &str, body: &Value| {
        s.client
            .post(s.url(path))
            .bearer_auth("inf-key")
            .json(body)
            .send()
    };
    // Without a key: 401 in Ollama's shape.
    let (status, body) = s.post("/api/chat", &ollama_chat(FRANCE, 2)).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].is_string(), "{body}");
    // The inference key opens every inference route.
    for (path, body) in [
        ("/api/chat", ollama_chat(FRANCE, 2)),
        (
            "/api/generate",
            json!({"model": SMOL, "prompt": "Hi", "stream": false, "options": {"num_predict": 2}}),
        ),
        ("/api/embed", json!({"model": SMOL, "input": "Hi"})),
        ("/api/embeddings", json!({"model": SMOL, "prompt": "Hi"})),
    ] {
        let r = with_key(path, &body).await.unwrap();
        assert_eq!(r.status(), 200, "{path}: {}", r.text().await.unwrap());
    }
    // A model that is not there: Ollama's 404 text.
    let mut req = ollama_chat(FRANCE, 2);
    req["model"] = json!("nope:7b");
    let r = with_key("/api/chat", &req).await.unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "model \"nope:7b\" not found, try pulling it first"})
    );
    // Bad fields: 400, `{"error": "..."}` naming the field.
    for (path, bad, word) in [
        ("/api/chat", json!({"messages": []}), "model"),
        (
            "/api/chat",
            json!({"model": SMOL, "messages": "hi"}),
            "messages",
        ),
        (
            "/api/chat",
            json!({"model": SMOL, "messages": [{"role": "user", "content": "x"}], "options": {"top_k": "x"}}),
            "top_k",
        ),
        (
            "/api/chat",
            json!({"model": SMOL, "messages": [{"role": "user", "content": "x"}], "format": "xml"}),
            "format",
        ),
        (
            "/api/chat",
            json!({"model": SMOL, "messages": [{"role": "user", "content": "x"}], "think": "max"}),
            "think",
        ),
        (
            "/api/generate",
            json!({"model": SMOL, "prompt": "x", "template": "{{ .Prompt }}"}),
            "template",
        ),
        (
            "/api/generate",
            json!({"model": SMOL, "prompt": "x", "images": ["aGVsbG8="]}),
            "image",
        ),
        (
            "/api/embed",
            json!({"model": SMOL, "input": [1, 2]}),
            "input",
        ),
        (
            "/api/embed",
            json!({"model": SMOL, "input": "x", "keep_alive": "soon"}),
            "keep_alive",
        ),
    ] {
        let r = with_key(path, &bad).await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 400, "{bad}: {body}");
        let message = body["error"].as_str().unwrap_or_else(|| panic!("{body}"));
        assert!(message.contains(word), "{bad}: {body}");
    }
}

/// Ollama's context rule: a conversation longer than the window (`num_ctx`) loses its oldest
/// turns instead of failing; the answer ends where the window does; a last message longer
/// than the window on its own is a 400 that says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_conversation_longer_than_num_ctx_loses_its_oldest_turns() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let mut messages = vec![json!({"role": "system", "content": "You are terse."})];
    for i in 0..12 {
        messages
            .push(json!({"role": "user", "content": format!("Fact {i}: {}", "blah ".repeat(20))}));
        messages.push(json!({"role": "assistant", "content": format!("Noted {i}.")}));
    }
    messages.push(json!({"role": "user", "content": "What is 2+2?"}));
    let ask = |options: Value| json!({"model": SMOL, "messages": messages, "stream": false, "options": options});
    let (status, fitted) = s
        .post("/api/chat", &ask(json!({"num_ctx": 200, "num_predict": 8})))
        .await;
    assert_eq!(status, 200, "{fitted}");
    let kept = fitted["prompt_eval_count"].as_u64().unwrap();
    assert!(kept > 0 && kept + 8 <= 200, "{fitted}");
    assert!(fitted["eval_count"].as_u64().unwrap() <= 8, "{fitted}");
    // The slot's whole context holds the conversation: everything is sent.
    let (status, whole) = s.post("/api/chat", &ask(json!({"num_predict": 8}))).await;
    assert_eq!(status, 200, "{whole}");
    assert!(
        whole["prompt_eval_count"].as_u64().unwrap() > 200,
        "{whole}"
    );
    // Longer than the slot's whole context, no num_ctx: fitted too (after the engine
    // finds it too long), not refused.
    let mut long = vec![json!({"role": "system", "content": "You are terse."})];
    for i in 0..40 {
        long.push(json!({"role": "user", "content": format!("Fact {i}: {}", "blah ".repeat(40))}));
        long.push(json!({"role": "assistant", "content": format!("Noted {i}.")}));
    }
    long.push(json!({"role": "user", "content": "What is 2+2?"}));
    let (status, fitted) = s
        .post(
            "/api/chat",
            &json!({"model": SMOL, "messages": long, "stream": false, "options": {"num_predict": 8}}),
        )
        .await;
    assert_eq!(status, 200, "{fitted}");
    assert!(
        fitted["prompt_eval_count"].as_u64().unwrap() < 2048,
        "{fitted}"
    );
    // The answer ends where a small window does, without num_predict.
    let (status, capped) = s
        .post(
            "/api/chat",
            &json!({"model": SMOL, "stream": false, "options": {"num_ctx": 64},
                "messages": [{"role": "user", "content": "Write a long story about a cat."}]}),
        )
        .await;
    assert_eq!(status, 200, "{capped}");
    let used =
        capped["prompt_eval_count"].as_u64().unwrap() + capped["eval_count"].as_u64().unwrap();
    assert!(used <= 64, "{capped}");
    // A last message longer than the window on its own.
    let (status, body) = s
        .post(
            "/api/chat",
            &json!({"model": SMOL, "stream": false, "options": {"num_ctx": 64},
                "messages": [{"role": "user", "content": "blah ".repeat(200)}]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("tokens of prompt") && message.contains("64"),
        "{body}"
    );
}
