//! The hostile-client suite: what a malicious client or a web page the user visits can send,
//! and what the server must answer. Every case asserts the status, the error body in the route
//! family's shape, and that a normal chat request still succeeds afterwards
//! ([`still_serves`]): the process stays up and the other requests are untouched.
//!
//! One module per kind of attack:
//! - `browser`: Origin, Host (DNS rebinding), CORS, keys and who may manage the server.
//! - `exhaustion`: inputs that would overflow a stack or exhaust memory, queues, deadlines.
//! - `inputs`: amplification caps, roles, per-request caps on prompts and responses.
//! - `fair`: keep_alive, config writes, slot files, the database off the async workers.
//! - `downloads`: the download routes' bodies, task ids, file names and origins.
//! - `sessions`: the chat session routes and sockets' bodies, values, ids and origins.
//! - `tools`: `/tools`, `/api/tools`, `/api/mcp/servers*` and `server_tools`: bodies, names,
//!   counts, and pages that may chat but not run tools.

mod browser;
mod downloads;
mod exhaustion;
mod fair;
mod ollama;
mod sessions;
mod tools;

#[path = "../support/mod.rs"]
mod support;

mod inputs;

pub use support::*;

/// A normal chat request still gets its answer: run after every hostile case.
pub async fn still_serves(s: &TestServer) {
    let (status, body) = s.post("/v1/chat/completions", &chat(FRANCE, 8)).await;
    assert_eq!(
        status, 200,
        "a normal chat request after the attack: {body}"
    );
    let text = body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or("");
    assert!(!text.is_empty(), "an empty answer after the attack: {body}");
}

/// The error message of an error body, in any route family's shape (OpenAI's
/// `{"error":{"message"}}`, Anthropic's, Ollama's `{"error":"..."}`, the native one).
pub fn error_message(body: &serde_json::Value) -> String {
    body["error"]["message"]
        .as_str()
        .or_else(|| body["error"].as_str())
        .or_else(|| body["message"].as_str())
        .unwrap_or_default()
        .to_string()
}
