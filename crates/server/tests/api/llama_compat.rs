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
