//! Routes where llama-server's clients and OpenAI's meet: `/completions` in both shapes,
//! Vertex AI's `/predict`, the router's `/props`, the Responses stream's llama-server
//! telemetry, and image parts a text model cannot read.

use super::*;

fn completion(max_tokens: u32) -> Value {
    json!({"model": SMOL, "prompt": "The capital of France is", "max_tokens": max_tokens, "temperature": 0})
}

#[tokio::test(flavor = "multi_thread")]
async fn unprefixed_completions_answer_in_both_shapes() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let (status, openai) = s.post("/v1/completions", &completion(6)).await;
    assert_eq!(status, 200, "{openai}");
    // `/v1/completions` stays OpenAI's alone.
    assert!(openai.get("content").is_none(), "{openai}");

    let (status, both) = s.post("/completions", &completion(6)).await;
    assert_eq!(status, 200, "{both}");
    // OpenAI's fields...
    assert_eq!(both["object"], "text_completion");
    let text = both["choices"][0]["text"].as_str().unwrap();
    assert_eq!(text, openai["choices"][0]["text"]);
    assert_eq!(both["usage"]["completion_tokens"], 6);
    // ... and llama-server's native ones, about the same completion.
    assert_eq!(both["content"], text, "{both}");
    assert_eq!(both["stop"], true);
    assert_eq!(both["tokens_predicted"], both["usage"]["completion_tokens"]);
    assert_eq!(both["tokens_evaluated"], both["usage"]["prompt_tokens"]);
    assert_eq!(both["stop_type"], "limit");
    assert_eq!(both["generation_settings"]["n_predict"], 6);
    assert!(both["timings"]["predicted_n"].is_number(), "{both}");

    // Streamed: every text chunk carries the piece as `choices[0].text` and `content`; the
    // last one is also llama-server's `stop: true` message.
    let mut req = completion(6);
    req["stream"] = json!(true);
    let events = s.stream("/completions", &req).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let (last, pieces) = chunks.split_last().unwrap();
    let mut streamed = String::new();
    for c in pieces {
        assert_eq!(c["object"], "text_completion");
        assert_eq!(c["content"], c["choices"][0]["text"], "{c}");
        assert_eq!(c["stop"], false);
        streamed.push_str(c["content"].as_str().unwrap());
    }
    assert_eq!(streamed, text);
    assert_eq!(last["choices"][0]["finish_reason"], "length");
    assert_eq!(last["stop"], true, "{last}");
    assert_eq!(last["tokens_predicted"], 6);

    // Several completions: OpenAI's one object, each choice with its native fields.
    let mut req = completion(3);
    req["n"] = json!(2);
    let (status, body) = s.post("/completions", &req).await;
    assert_eq!(status, 200, "{body}");
    let choices = body["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    for (i, c) in choices.iter().enumerate() {
        assert_eq!(c["index"], i);
        assert_eq!(c["content"], c["text"], "{c}");
        assert_eq!(c["tokens_predicted"], 3);
    }
}

fn with_image(url: &str) -> Value {
    json!({"model": SMOL, "max_tokens": 2, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this:\n"},
        {"type": "image_url", "image_url": {"url": url}},
    ]}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn image_parts_on_a_text_model_are_refused() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    // SmolLM2 reads no images: a well-formed image is refused, not silently dropped.
    for path in ["/v1/chat/completions", "/chat/completions"] {
        for url in ["https://ggml.ai", "data:image/png;base64,AAAA"] {
            let (status, body) = s.post(path, &with_image(url)).await;
            assert_eq!(status, 400, "{path} {url}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains("cannot read images"), "{message}");
        }
    }
    // Not an image URL at all: refused whatever the model.
    for (url, says) in [
        ("malformed", "not a URL"),
        ("data:text/html;base64,aGVsbG8=", "text/html"),
    ] {
        let (status, body) = s.post("/v1/chat/completions", &with_image(url)).await;
        assert_eq!(status, 400, "{url}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    // Rendered without generating, the same refusal: token counts and `/apply-template`.
    for path in [
        "/chat/completions/input_tokens",
        "/v1/chat/completions/input_tokens",
        "/apply-template",
    ] {
        let (status, body) = s.post(path, &with_image("https://ggml.ai")).await;
        assert_eq!(status, 400, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("cannot read images"), "{path}: {message}");
    }
    // The Responses API's `input_image` parts are images too, not dropped.
    let responses = json!({"model": SMOL, "max_output_tokens": 2, "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
    ]}]});
    for path in ["/v1/responses", "/v1/responses/input_tokens"] {
        let (status, body) = s.post(path, &responses).await;
        assert_eq!(status, 400, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("cannot read images"), "{path}: {message}");
    }
    // Anthropic's image blocks: the same check, counting tokens too.
    let anthropic = json!({"model": SMOL, "max_tokens": 2, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
    ]}]});
    for path in ["/v1/messages", "/v1/messages/count_tokens"] {
        let (status, body) = s.post(path, &anthropic).await;
        assert_eq!(status, 400, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("cannot read images"), "{path}: {message}");
    }
    // Text parts alone still answer.
    let mut text_only = with_image("https://ggml.ai");
    text_only["messages"][0]["content"]
        .as_array_mut()
        .unwrap()
        .pop();
    let (status, body) = s.post("/v1/chat/completions", &text_only).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn router_props_and_no_autoload() {
    // Many models served and none named that the server can settle on: the router's props,
    // from the settings llama-server's --models-max and --no-models-autoload set.
    let opts = Opts {
        models_max: Some(2),
        ..Default::default()
    }
    .tweak(|c| c.models.autoload = false);
    let s = TestServer::empty(opts.clone()).await;
    let (status, props) = s.get("/props").await;
    assert_eq!(status, 200, "{props}");
    assert_eq!(props["role"], "router");
    assert_eq!(props["max_instances"], 2);
    assert_eq!(props["models_autoload"], false);
    assert!(props["build_info"].as_str().unwrap().starts_with('b'));

    let Some(s) = TestServer::start(opts).await else {
        return;
    };
    // Not loaded and not to be loaded on demand: refused, naming the setting.
    let (status, body) = s.post("/v1/chat/completions", &chat(FRANCE, 2)).await;
    assert_eq!(status, 400, "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("models.autoload"), "{msg}");
    let (status, body) = s.post("/api/models/smol/load", &json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s.post("/v1/chat/completions", &chat(FRANCE, 2)).await;
    assert_eq!(status, 200, "{body}");
    // One model: it is the one `/props` describes, as before.
    let (status, props) = s.get("/props").await;
    assert_eq!(status, 200, "{props}");
    assert!(
        props.get("role").is_none() && props["total_slots"] == 2,
        "{props}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn responses_stream_carries_llama_server_telemetry() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let req = |extra: Value| {
        let mut r = json!({"model": SMOL, "input": "This is a test".repeat(10),
            "max_output_tokens": 2, "temperature": 0, "stream": true});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    };
    let events = |lines: Vec<String>| -> Vec<Value> {
        lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let all = events(
        s.stream(
            "/v1/responses",
            &req(json!({"timings_per_token": true, "return_progress": true})),
        )
        .await,
    );
    // Prompt progress rides on `response.in_progress` events, with the timings so far.
    let progress: Vec<&Value> = all
        .iter()
        .filter(|e| e.get("prompt_progress").is_some())
        .collect();
    assert!(!progress.is_empty(), "{all:?}");
    for p in &progress {
        assert_eq!(p["type"], "response.in_progress", "{p}");
        let pp = &p["prompt_progress"];
        assert!(pp["total"].as_u64().unwrap() > 0, "{p}");
        assert!(pp["processed"].as_u64() >= pp["cache"].as_u64(), "{p}");
        assert!(p["timings"]["prompt_per_second"].is_number(), "{p}");
    }
    // Every text delta carries the timings so far.
    let deltas: Vec<&Value> = all
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .collect();
    assert!(!deltas.is_empty(), "{all:?}");
    for d in &deltas {
        assert!(d["timings"]["predicted_per_second"].is_number(), "{d}");
        assert!(d["timings"]["predicted_n"].as_u64().unwrap() >= 1, "{d}");
    }
    // Cut by max_output_tokens, the stream still ends with `response.completed` (as
    // llama-server's), the response saying it is incomplete; the timings ride on it.
    let last = all.last().unwrap();
    assert_eq!(last["type"], "response.completed", "{last}");
    assert_eq!(last["response"]["status"], "incomplete", "{last}");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(last["response"]["usage"]["output_tokens"], 2, "{last}");
    assert_eq!(last["timings"]["predicted_n"], 2, "{last}");

    // Not asked for: no progress events, no timings on deltas.
    let plain = events(s.stream("/v1/responses", &req(json!({}))).await);
    assert!(
        plain.iter().all(|e| e.get("prompt_progress").is_none()),
        "{plain:?}"
    );
    assert!(
        plain
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .all(|e| e.get("timings").is_none()),
        "{plain:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn timings_per_token_on_chat_and_completion_streams() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let mut chat_req = chat(FRANCE, 3);
    chat_req["stream"] = json!(true);
    chat_req["timings_per_token"] = json!(true);
    let chunks: Vec<Value> = s
        .stream("/v1/chat/completions", &chat_req)
        .await
        .iter()
        .filter(|l| l.as_str() != "[DONE]")
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let with_text: Vec<&Value> = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"]["content"].is_string())
        .collect();
    assert!(!with_text.is_empty(), "{chunks:?}");
    let mut seen = 0;
    for c in &with_text {
        let n = c["timings"]["predicted_n"].as_u64().unwrap();
        assert!(n >= seen, "timings never go back: {c}");
        seen = n;
    }
    // The first chunk (the role) has none, as llama-server's.
    assert!(chunks[0].get("timings").is_none(), "{}", chunks[0]);

    let native = json!({"model": SMOL, "prompt": "The capital of France is", "n_predict": 3,
        "temperature": 0, "stream": true, "timings_per_token": true});
    let lines = s.stream("/completion", &native).await;
    let tokens: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|c| c["stop"] == false)
        .collect();
    assert!(!tokens.is_empty(), "{lines:?}");
    for t in &tokens {
        assert!(t["timings"]["prompt_n"].is_number(), "{t}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn responses_input_tokens_count_the_prompt_the_responses_route_sends() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    for input in [
        json!({"model": SMOL, "input": "Hello world"}),
        json!({"model": SMOL, "instructions": "Answer in French.", "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Hello world"}]},
        ]}),
    ] {
        let mut run = input.clone();
        run["max_output_tokens"] = json!(1);
        let (status, answer) = s.post("/v1/responses", &run).await;
        assert_eq!(status, 200, "{answer}");
        let sent = answer["usage"]["input_tokens"].as_u64().unwrap();
        for path in ["/v1/responses/input_tokens", "/responses/input_tokens"] {
            let (status, body) = s.post(path, &input).await;
            assert_eq!(status, 200, "{path}: {body}");
            assert_eq!(body["input_tokens"].as_u64(), Some(sent), "{path}: {body}");
            assert_eq!(body["object"], "response.input_tokens");
        }
    }
    // The route's own refusals: an input that is not one.
    let (status, body) = s
        .post(
            "/v1/responses/input_tokens",
            &json!({"model": SMOL, "input": 3}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "input", "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_autoload_is_refused_before_the_request_is_admitted() {
    // No place among the requests in flight: a request for a model that may not be loaded
    // on demand hears about `models.autoload`, not about a full server.
    let opts = Opts::default().tweak(|c| {
        c.models.autoload = false;
        c.limits.max_in_flight = 0;
    });
    let Some(s) = TestServer::start(opts).await else {
        return;
    };
    for (path, body) in [
        ("/v1/chat/completions", chat(FRANCE, 2)),
        ("/v1/embeddings", json!({"model": SMOL, "input": "Hello"})),
        ("/embedding", json!({"model": SMOL, "content": "Hello"})),
    ] {
        let (status, answer) = s.post(path, &body).await;
        assert_eq!(status, 400, "{path}: {answer}");
        let msg = answer["error"]["message"].as_str().unwrap();
        assert!(msg.contains("models.autoload"), "{path}: {msg}");
    }
}
