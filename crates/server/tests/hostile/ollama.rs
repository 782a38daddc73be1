//! Ollama's inference routes (`/api/chat`, `/api/generate`, `/api/embed`,
//! `/api/embeddings`) under hostile bodies: broken JSON, wrong types, huge `num_ctx` and
//! `num_predict`, models that are not there, images that are not images (or sent to a text
//! model), schemas that are not schemas. Each is a 4xx in Ollama's `{"error": "..."}` shape,
//! and the server keeps serving.

use super::*;
use serde_json::{Value, json};

const ROUTES: &[&str] = &[
    "/api/chat",
    "/api/generate",
    "/api/embed",
    "/api/embeddings",
];

/// A well-formed body of each route, to break one field at a time.
fn body(route: &str) -> Value {
    match route {
        "/api/chat" => json!({"model": SMOL, "stream": false,
            "messages": [{"role": "user", "content": "Hi"}], "options": {"num_predict": 2}}),
        "/api/generate" => {
            json!({"model": SMOL, "stream": false, "prompt": "Hi", "options": {"num_predict": 2}})
        }
        "/api/embed" => json!({"model": SMOL, "input": "Hi"}),
        _ => json!({"model": SMOL, "prompt": "Hi"}),
    }
}

fn with(route: &str, extra: Value) -> Value {
    let mut b = body(route);
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

/// A 4xx with Ollama's body: `{"error": "<text>"}` and nothing else, the text containing
/// `word`.
#[track_caller]
fn ollama_refusal(got: (u16, Value), status: u16, word: &str, what: &str) {
    let (code, body) = got;
    assert_eq!(code, status, "{what}: {body}");
    let text = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: {body}"));
    assert_eq!(body.as_object().unwrap().len(), 1, "{what}: {body}");
    assert!(
        text.to_lowercase().contains(&word.to_lowercase()),
        "{what}: should say {word}: {body}"
    );
}

#[tokio::test]
async fn ollama_routes_refuse_hostile_bodies_in_ollamas_shape() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    for route in ROUTES {
        // Broken JSON, a body that is not an object, fields of the wrong type.
        for raw in ["{not json", "[1, 2]", "\"model\"", ""] {
            let got = s
                .send(
                    s.client
                        .post(s.url(route))
                        .header("content-type", "application/json")
                        .body(raw),
                )
                .await;
            assert_eq!(got.0, 400, "{route} {raw:?}: {}", got.1);
            assert!(got.1["error"].is_string(), "{route} {raw:?}: {}", got.1);
        }
        ollama_refusal(
            s.post(route, &with(route, json!({"model": 42}))).await,
            400,
            "model",
            route,
        );
        ollama_refusal(
            s.post(
                route,
                &with(route, json!({"keep_alive": {"forever": true}})),
            )
            .await,
            400,
            "keep_alive",
            route,
        );
        // A model that is not there: Ollama's 404.
        ollama_refusal(
            s.post(route, &with(route, json!({"model": "no-such-model:70b"})))
                .await,
            404,
            "not found, try pulling it first",
            route,
        );
        // Options: wrong types, numbers no integer holds.
        for (options, word) in [
            (json!({"temperature": "hot"}), "temperature"),
            (json!({"num_ctx": 1e20}), "num_ctx"),
            (json!({"num_ctx": -5}), "num_ctx"),
            (json!({"num_predict": 1e12}), "num_predict"),
            (json!({"stop": "not a list"}), "stop"),
            (json!("options"), "options"),
        ] {
            ollama_refusal(
                s.post(route, &with(route, json!({"options": options})))
                    .await,
                400,
                word,
                &format!("{route} {options}"),
            );
        }
    }
    for route in ["/api/chat", "/api/generate"] {
        // format: neither "json" nor a schema, or a schema the grammar cannot be made of.
        for (format, word) in [
            (json!("yaml"), "format"),
            (json!(17), "format"),
            (
                json!({"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}}),
                "",
            ),
        ] {
            let got = s.post(route, &with(route, json!({"format": format}))).await;
            ollama_refusal(got, 400, word, &format!("{route} format {format}"));
        }
        // think: a level Ollama does not have.
        ollama_refusal(
            s.post(route, &with(route, json!({"think": "maximal"})))
                .await,
            400,
            "think",
            route,
        );
        // A huge num_ctx that fits: the context is the model's load parameter, so nothing
        // is allocated for it and the answer comes.
        let got = s
            .post(
                route,
                &with(
                    route,
                    json!({"options": {"num_ctx": 2147483647, "num_predict": 2}}),
                ),
            )
            .await;
        assert_eq!(got.0, 200, "{route}: {}", got.1);
    }
    // Images: not base64, not an image, or an image for a model that reads none.
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    for (images, word) in [
        (json!(["%%%"]), "base64"),
        (json!(["aGVsbG8gd29ybGQ="]), "not an image"),
        (json!([png]), "cannot read images"),
        (json!("not a list"), "images"),
    ] {
        let chat = with(
            "/api/chat",
            json!({"messages": [{"role": "user", "content": "What is this?", "images": images}]}),
        );
        ollama_refusal(
            s.post("/api/chat", &chat).await,
            400,
            word,
            &format!("chat {images}"),
        );
        let generate = with("/api/generate", json!({"images": images}));
        ollama_refusal(
            s.post("/api/generate", &generate).await,
            400,
            word,
            &format!("generate {images}"),
        );
    }
    // Tool calls whose arguments are not an object, roles nobody has.
    let chat = with(
        "/api/chat",
        json!({"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]},
            {"role": "user", "content": "Hi"}]}),
    );
    ollama_refusal(
        s.post("/api/chat", &chat).await,
        400,
        "arguments",
        "string arguments",
    );
    let chat = with(
        "/api/chat",
        json!({"messages": [{"role": "wizard", "content": "Hi"}]}),
    );
    ollama_refusal(s.post("/api/chat", &chat).await, 400, "wizard", "role");
    // Embeddings: inputs that are not strings.
    ollama_refusal(
        s.post(
            "/api/embed",
            &with("/api/embed", json!({"input": [{"a": 1}]})),
        )
        .await,
        400,
        "input",
        "embed input",
    );
    ollama_refusal(
        s.post(
            "/api/embed",
            &with("/api/embed", json!({"dimensions": 1000000})),
        )
        .await,
        400,
        "dimensions",
        "embed dimensions",
    );
    still_serves(&s).await;
}
