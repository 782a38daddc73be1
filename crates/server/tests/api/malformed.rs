//! Bad input on every route family: broken JSON, wrong types, huge bodies, unknown models,
//! invalid parameters. Each must be a 4xx in its family's shape, never a 5xx, and the
//! server must keep serving.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_4xx_in_the_right_shape() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let big = "x".repeat(33 * 1024 * 1024);
    let cases: Vec<(&str, &str, String, u16)> = vec![
        ("/v1/chat/completions", "broken json", "{\"model\": ".into(), 400),
        ("/v1/chat/completions", "not an object", "[1,2]".into(), 400),
        ("/v1/chat/completions", "empty body", "".into(), 400),
        ("/v1/chat/completions", "messages wrong type", json!({"model": SMOL, "messages": "hi"}).to_string(), 400),
        ("/v1/chat/completions", "empty messages", json!({"model": SMOL, "messages": []}).to_string(), 400),
        ("/v1/chat/completions", "unknown model", json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}).to_string(), 404),
        ("/v1/chat/completions", "negative top_k", json!({"model": SMOL, "messages": [{"role": "user", "content": "x"}], "top_k": -3}).to_string(), 400),
        ("/v1/chat/completions", "temperature string", json!({"model": SMOL, "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}).to_string(), 400),
        ("/v1/chat/completions", "top_p 5", json!({"model": SMOL, "messages": [{"role": "user", "content": "x"}], "top_p": 5}).to_string(), 400),
        ("/v1/chat/completions", "n=3", json!({"model": SMOL, "messages": [{"role": "user", "content": "x"}], "n": 3}).to_string(), 400),
        ("/v1/chat/completions", "bad tool", json!({"model": SMOL, "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}).to_string(), 400),
        ("/v1/chat/completions", "tool_choice unknown fn", json!({"model": SMOL, "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}], "tool_choice": {"type": "function", "function": {"name": "g"}}}).to_string(), 400),
        ("/v1/chat/completions", "bad response_format", json!({"model": SMOL, "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "yaml"}}).to_string(), 400),
        ("/v1/chat/completions", "bad grammar", json!({"model": SMOL, "messages": [{"role": "user", "content": "x"}], "grammar": "root ::= (", "max_tokens": 2}).to_string(), 400),
        ("/v1/chat/completions", "huge body", json!({"model": SMOL, "messages": [{"role": "user", "content": big}]}).to_string(), 413),
        ("/v1/completions", "prompt number", json!({"model": SMOL, "prompt": 5}).to_string(), 400),
        ("/v1/completions", "too many prompts", json!({"model": SMOL, "prompt": ["a", "b"]}).to_string(), 400),
        ("/v1/completions", "prompt too long", json!({"model": SMOL, "prompt": "word ".repeat(5000)}).to_string(), 400),
        ("/v1/responses", "input number", json!({"model": SMOL, "input": 3}).to_string(), 400),
        ("/completion", "missing prompt", json!({"model": SMOL}).to_string(), 400),
        ("/completion", "logit_bias wrong", json!({"model": SMOL, "prompt": "x", "logit_bias": "no"}).to_string(), 400),
        ("/completion", "seed too big", json!({"model": SMOL, "prompt": "x", "seed": 1u64 << 40}).to_string(), 400),
        ("/tokenize", "content missing", json!({"model": SMOL}).to_string(), 400),
        ("/detokenize", "token out of range", json!({"model": SMOL, "tokens": [99999999]}).to_string(), 400),
        ("/detokenize", "negative token", json!({"model": SMOL, "tokens": [-1]}).to_string(), 400),
        ("/apply-template", "messages missing", json!({"model": SMOL}).to_string(), 400),
        ("/api/models/smol/load", "unknown load param", json!({"warp": 9}).to_string(), 400),
        ("/api/models/smol/load", "bad ctx", json!({"ctx_size": "big"}).to_string(), 400),
        ("/api/models/vram-estimate", "no model", json!({}).to_string(), 400),
        ("/api/bench/run", "zero tests", json!({"model": SMOL, "n_prompt": 0, "n_gen": 0}).to_string(), 400),
        ("/api/deployments/start", "unknown field", json!({"model": SMOL, "gpu": 1}).to_string(), 400),
    ];
    for (path, what, body, expected) in cases {
        // The server answers 413 before reading a huge body and closes that connection;
        // a fresh client keeps the pooled one out of that race.
        let client = if what == "huge body" {
            reqwest::Client::new()
        } else {
            s.client.clone()
        };
        let (status, resp) = s
            .send(
                client
                    .post(s.url(path))
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        assert_eq!(status, expected, "{path} {what}: {resp}");
        let err = &resp["error"];
        assert!(err["message"].is_string(), "{path} {what}: {resp}");
        if path.starts_with("/v1/") {
            assert!(err["type"].is_string(), "OpenAI shape: {resp}");
        } else if path.starts_with("/api/") {
            assert!(err["status"].is_number(), "admin shape: {resp}");
        } else {
            assert_eq!(err["code"], json!(expected), "llama.cpp shape: {resp}");
        }
    }
    // Still serving after all that.
    let (status, body) = s.post("/v1/chat/completions", &chat(FRANCE, 24)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "The capital of France is Paris."
    );
}
