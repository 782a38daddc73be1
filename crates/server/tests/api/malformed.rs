//! Bad input on every route family: broken JSON, wrong types, huge bodies, unknown models,
//! invalid parameters. Each must be a 4xx in its family's shape, never a 5xx, and the
//! server must keep serving.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_4xx_in_the_right_shape() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
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
        ("/v1/chat/completions", "n over limits.max_completions", json!({"model": SMOL, "messages": [{"role": "user", "content": "x"}], "n": 17}).to_string(), 400),
        ("/v1/chat/completions", "n zero", json!({"model": SMOL, "messages": [{"role": "user", "content": "x"}], "n": 0}).to_string(), 400),
        ("/v1/chat/completions", "bad tool", json!({"model": SMOL, "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}).to_string(), 400),
        ("/v1/chat/completions", "tool_choice unknown fn", json!({"model": SMOL, "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}], "tool_choice": {"type": "function", "function": {"name": "g"}}}).to_string(), 400),
        ("/v1/chat/completions", "bad response_format", json!({"model": SMOL, "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "yaml"}}).to_string(), 400),
        ("/v1/chat/completions", "bad grammar", json!({"model": SMOL, "messages": [{"role": "user", "content": "x"}], "grammar": "root ::= (", "max_tokens": 2}).to_string(), 400),
        ("/v1/completions", "prompt number", json!({"model": SMOL, "prompt": 5}).to_string(), 400),
        ("/v1/completions", "prompts times n over limits.max_completions", json!({"model": SMOL, "prompt": ["a", "b"], "n": 9}).to_string(), 400),
        ("/v1/completions", "n zero", json!({"model": SMOL, "prompt": "a", "n": 0}).to_string(), 400),
        ("/completion", "ids and a nested list", json!({"model": SMOL, "prompt": [1, [2]]}).to_string(), 400),
        ("/completion", "multimodal on a text server", json!({"model": SMOL, "prompt": {"prompt_string": "x", "multimodal_data": ["AAAA"]}}).to_string(), 400),
        ("/v1/completions", "prompt too long", json!({"model": SMOL, "prompt": "word ".repeat(5000)}).to_string(), 400),
        ("/v1/responses", "input number", json!({"model": SMOL, "input": 3}).to_string(), 400),
        ("/v1/messages", "broken json", "{\"model\": ".into(), 400),
        ("/v1/messages", "messages wrong type", json!({"model": SMOL, "max_tokens": 4, "messages": "hi"}).to_string(), 400),
        ("/v1/messages", "content wrong type", json!({"model": SMOL, "max_tokens": 4, "messages": [{"role": "user", "content": 5}]}).to_string(), 400),
        ("/v1/messages", "max_tokens too large", json!({"model": SMOL, "max_tokens": 1u64 << 40, "messages": [{"role": "user", "content": "x"}]}).to_string(), 400),
        ("/v1/messages", "system number", json!({"model": SMOL, "max_tokens": 4, "system": 5, "messages": [{"role": "user", "content": "x"}]}).to_string(), 400),
        ("/v1/messages", "image without source", json!({"model": SMOL, "max_tokens": 4, "messages": [{"role": "user", "content": [{"type": "image"}]}]}).to_string(), 400),
        ("/v1/messages", "image not a URL", json!({"model": SMOL, "max_tokens": 4, "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "not a url"}}]}]}).to_string(), 400),
        ("/v1/messages", "tool_result without id", json!({"model": SMOL, "max_tokens": 4, "messages": [{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]}).to_string(), 400),
        ("/v1/messages", "thinking unknown", json!({"model": SMOL, "max_tokens": 4, "thinking": {"type": "deep"}, "messages": [{"role": "user", "content": "x"}]}).to_string(), 400),
        ("/v1/messages", "two trailing assistant turns", json!({"model": SMOL, "max_tokens": 4, "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]}).to_string(), 400),
        ("/v1/messages/count_tokens", "messages missing", json!({"model": SMOL}).to_string(), 400),
        ("/v1/messages/count_tokens", "unknown model", json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}).to_string(), 404),
        ("/completion", "missing prompt", json!({"model": SMOL}).to_string(), 400),
        ("/completion", "logit_bias wrong", json!({"model": SMOL, "prompt": "x", "logit_bias": "no"}).to_string(), 400),
        ("/completion", "seed too big", json!({"model": SMOL, "prompt": "x", "seed": 1u64 << 40}).to_string(), 400),
        ("/tokenize", "content missing", json!({"model": SMOL}).to_string(), 400),
        ("/detokenize", "token out of range", json!({"model": SMOL, "tokens": [99999999]}).to_string(), 400),
        ("/detokenize", "negative token", json!({"model": SMOL, "tokens": [-1]}).to_string(), 400),
        ("/apply-template", "messages missing", json!({"model": SMOL}).to_string(), 400),
        ("/api/v0/chat/completions", "broken json", "{\"model\": ".into(), 400),
        ("/api/v0/chat/completions", "messages wrong type", json!({"model": SMOL, "messages": "hi"}).to_string(), 400),
        ("/api/v0/chat/completions", "unknown model", json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}).to_string(), 404),
        ("/api/v0/chat/completions", "huge max_tokens", json!({"model": SMOL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 1u64 << 40}).to_string(), 400),
        ("/api/v0/completions", "prompt number", json!({"model": SMOL, "prompt": 5}).to_string(), 400),
        ("/api/v0/completions", "unknown model", json!({"model": "nope", "prompt": "x"}).to_string(), 404),
        ("/api/v0/completions", "huge max_tokens", json!({"model": SMOL, "prompt": "x", "max_tokens": 1u64 << 40}).to_string(), 400),
        ("/api/v0/embeddings", "broken json", "{\"input\"".into(), 400),
        ("/api/v0/embeddings", "input number", json!({"model": SMOL, "input": 5}).to_string(), 400),
        ("/api/v0/embeddings", "unknown model", json!({"model": "nope", "input": "x"}).to_string(), 404),
        ("/api/v0/embeddings", "pooling none", json!({"model": SMOL, "input": "x", "pooling": "none"}).to_string(), 400),
        ("/api/models/smol/load", "unknown load param", json!({"warp": 9}).to_string(), 400),
        ("/api/models/smol/load", "bad ctx", json!({"ctx_size": "big"}).to_string(), 400),
        ("/api/models/vram-estimate", "no model", json!({}).to_string(), 400),
        ("/api/bench/run", "zero tests", json!({"model": SMOL, "n_prompt": 0, "n_gen": 0}).to_string(), 400),
        ("/api/deployments/start", "unknown field", json!({"model": SMOL, "gpu": 1}).to_string(), 400),
    ];
    for (path, what, body, expected) in cases {
        let (status, resp) = s
            .send(
                s.client
                    .post(s.url(path))
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        assert_eq!(status, expected, "{path} {what}: {resp}");
        let err = &resp["error"];
        assert!(err["message"].is_string(), "{path} {what}: {resp}");
        if path.starts_with("/v1/messages") {
            assert_eq!(resp["type"], "error", "Anthropic shape: {resp}");
            assert!(err["type"].is_string(), "Anthropic shape: {resp}");
        } else if path.starts_with("/v1/") || path.starts_with("/api/v0/") {
            assert!(err["type"].is_string(), "OpenAI shape: {resp}");
        } else if path.starts_with("/api/") {
            assert!(err["status"].is_number(), "admin shape: {resp}");
        } else {
            assert_eq!(err["code"], json!(expected), "llama.cpp shape: {resp}");
        }
    }
    // A body over the limit: refused from its Content-Length, before it is read.
    match post_oversized(&s, "/v1/chat/completions", 33 * 1024 * 1024).await {
        Refusal::Answered(status, body) => {
            assert_eq!(status, 413, "{body}");
            assert!(body["error"]["message"].is_string(), "OpenAI shape: {body}");
            assert!(body["error"]["type"].is_string(), "OpenAI shape: {body}");
        }
        // The server closed the connection with the body unread; the kernel may then
        // reset it before the client reads the 413 (HTTP allows this: no lingering close).
        Refusal::Reset => {}
    }

    // Still serving after all that.
    let (status, body) = s.post("/v1/chat/completions", &chat(FRANCE, 24)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "The capital of France is Paris."
    );
}

enum Refusal {
    Answered(u16, Value),
    Reset,
}

/// POSTs a `len`-byte JSON body over a raw connection, writing and reading at once, as a
/// browser or SDK would see it: either the server's answer, or a reset when the server
/// closed the connection before the body was read. A reset is only accepted after the
/// server stopped reading, never as a silent hang (both sides have deadlines).
async fn post_oversized(s: &TestServer, path: &str, len: usize) -> Refusal {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n"
    );
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        let chunk = vec![b' '; 64 * 1024];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len());
            wr.write_all(&chunk[..n]).await?;
            left -= n;
        }
        std::io::Result::Ok(())
    });
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), rd.read_to_end(&mut buf))
        .await
        .expect("the server neither answered nor closed the connection");
    writer.abort();
    let text = String::from_utf8_lossy(&buf).to_string();
    if text.is_empty() {
        let err = read.expect_err("the server closed the connection without an answer");
        assert!(
            matches!(
                err.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "unexpected error: {err}"
        );
        return Refusal::Reset;
    }
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // Chunked or not, the JSON object is the part between the outer braces.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) => &body[a..=b],
        _ => body,
    };
    Refusal::Answered(
        status,
        serde_json::from_str(json).unwrap_or(Value::String(body.into())),
    )
}
