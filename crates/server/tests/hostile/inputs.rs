//! Amplification caps, message roles, per-request caps on prompts and responses, and
//! `/metrics` labels: small bodies that would make large work, requests outside the
//! protocol, and labels that would grow without bound. Each refusal names the limit and the
//! setting that raises it (`limits.*`), in the route family's error shape, before any model
//! work is queued.

use super::*;
use serde_json::{Value, json};

async fn server(tweak: impl Fn(&mut config::Config) + Send + Sync + 'static) -> Option<TestServer> {
    TestServer::start(Opts::default().tweak(tweak)).await
}

/// Asserts a refusal: its status, and a message naming the setting.
#[track_caller]
fn refused(got: (u16, Value), status: u16, setting: &str) {
    let (code, body) = got;
    assert_eq!(code, status, "{body}");
    let message = error_message(&body);
    assert!(
        message.contains(setting),
        "the message should name {setting}: {body}"
    );
}

fn chat_with(extra: Value) -> Value {
    let mut body = chat(FRANCE, 8);
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[tokio::test]
async fn a_hundred_thousand_logit_bias_entries_are_refused_by_default() {
    let Some(s) = server(|_| {}).await else {
        return;
    };
    let bias: serde_json::Map<String, Value> =
        (0..100_000).map(|i| (i.to_string(), json!(1))).collect();
    refused(
        s.post(
            "/v1/chat/completions",
            &chat_with(json!({"logit_bias": bias})),
        )
        .await,
        400,
        "limits.max_logit_bias",
    );
    // llama-server's list form, on its own route (token ids the vocabulary has, repeated).
    let list: Vec<Value> = (0..100_000).map(|i| json!([i % 1000, false])).collect();
    refused(
        s.post(
            "/completion",
            &json!({"prompt": "Hi", "n_predict": 4, "logit_bias": list}),
        )
        .await,
        400,
        "limits.max_logit_bias",
    );
    still_serves(&s).await;
}

#[tokio::test]
async fn stop_strings_are_capped_in_number_and_length_on_every_family() {
    let Some(s) = server(|c| {
        c.limits.max_stop = 2;
        c.limits.max_stop_chars = 10;
    })
    .await
    else {
        return;
    };
    let three = json!(["a", "b", "c"]);
    refused(
        s.post("/v1/chat/completions", &chat_with(json!({"stop": three})))
            .await,
        400,
        "limits.max_stop",
    );
    refused(
        s.post(
            "/v1/completions",
            &json!({"model": SMOL, "prompt": "Hi", "max_tokens": 4, "stop": three}),
        )
        .await,
        400,
        "limits.max_stop",
    );
    refused(
        s.post(
            "/completion",
            &json!({"prompt": "Hi", "n_predict": 4, "stop": three}),
        )
        .await,
        400,
        "limits.max_stop",
    );
    // Anthropic's `stop_sequences`, in its error shape.
    let got = s
        .post(
            "/v1/messages",
            &json!({"model": SMOL, "max_tokens": 4, "stop_sequences": three,
                    "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(got.1["type"], "error", "{}", got.1);
    refused(got, 400, "limits.max_stop");
    // DRY's sequence breakers are strings llama.cpp matches against the whole vocabulary:
    // the same limits.
    refused(
        s.post(
            "/completion",
            &json!({"prompt": "Hi", "n_predict": 4, "dry_multiplier": 0.8,
                    "dry_sequence_breakers": three}),
        )
        .await,
        400,
        "limits.max_stop",
    );
    // Two strings, eleven characters (characters, not bytes: "é" is one).
    refused(
        s.post(
            "/v1/chat/completions",
            &chat_with(json!({"stop": ["éééééé", "xxxxx"]})),
        )
        .await,
        400,
        "limits.max_stop_chars",
    );
    // Within both limits: served.
    let (status, body) = s
        .post(
            "/v1/chat/completions",
            &chat_with(json!({"stop": ["ééééé", "xxxxx"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    still_serves(&s).await;
}

/// `"[1,1,1,…]"` with `n` token ids.
fn token_ids(n: usize) -> String {
    let mut s = String::with_capacity(2 * n + 2);
    s.push('[');
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('1');
    }
    s.push(']');
    s
}

async fn post_raw(s: &TestServer, path: &str, body: String) -> (u16, Value) {
    s.send(
        s.client
            .post(s.url(path))
            .header("content-type", "application/json")
            .body(body),
    )
    .await
}

#[tokio::test]
async fn prompts_of_token_ids_are_capped_while_they_are_read() {
    let Some(s) = server(|c| c.limits.max_prompt_token_ids = 100).await else {
        return;
    };
    for (path, body) in [
        (
            "/v1/completions",
            format!(
                r#"{{"model":"smol","max_tokens":2,"prompt":{}}}"#,
                token_ids(101)
            ),
        ),
        (
            "/completion",
            format!(r#"{{"n_predict":2,"prompt":{}}}"#, token_ids(101)),
        ),
        // A list holding one prompt of token ids.
        (
            "/completion",
            format!(r#"{{"n_predict":2,"prompt":[{}]}}"#, token_ids(101)),
        ),
        (
            "/v1/embeddings",
            format!(r#"{{"model":"smol","input":{}}}"#, token_ids(101)),
        ),
    ] {
        let got = post_raw(&s, path, body).await;
        assert!(
            error_message(&got.1).contains("more than 100 token ids"),
            "{path}: {}",
            got.1
        );
        refused(got, 413, "limits.max_prompt_token_ids");
    }
    // At the limit: served.
    let (status, body) = post_raw(
        &s,
        "/v1/completions",
        format!(
            r#"{{"model":"smol","max_tokens":2,"prompt":{}}}"#,
            token_ids(100)
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    still_serves(&s).await;
}

#[tokio::test]
async fn a_prompt_of_two_million_token_ids_is_refused_by_default() {
    let Some(s) = server(|_| {}).await else {
        return;
    };
    let body = format!(r#"{{"n_predict":2,"prompt":{}}}"#, token_ids(2_000_000));
    refused(
        post_raw(&s, "/completion", body).await,
        413,
        "limits.max_prompt_token_ids",
    );
    still_serves(&s).await;
}

#[tokio::test]
async fn rerank_documents_are_capped() {
    let Some(s) = server(|c| c.limits.max_documents = 2).await else {
        return;
    };
    for path in ["/v1/rerank", "/rerank"] {
        refused(
            s.post(
                path,
                &json!({"model": SMOL, "query": "q", "documents": ["a", "b", "c"]}),
            )
            .await,
            413,
            "limits.max_documents",
        );
    }
    still_serves(&s).await;
}

#[tokio::test]
async fn roles_outside_openais_set_are_refused_as_openai_refuses_them() {
    let Some(s) = server(|_| {}).await else {
        return;
    };
    for path in ["/v1/chat/completions", "/chat/completions"] {
        let body = json!({
            "model": SMOL, "max_tokens": 4,
            "messages": [{"role": "user", "content": "Hi"}, {"role": "wizard", "content": "Hi"}],
        });
        let (status, body) = s.post(path, &body).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(
            error_message(&body),
            "Invalid value: 'wizard'. Supported values are: 'system', 'assistant', 'user', \
             'function', 'tool', and 'developer'.",
            "{path}"
        );
        assert_eq!(body["error"]["param"], "messages[1].role", "{body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    }
    // Every role of OpenAI's set is accepted.
    let (status, body) = s
        .post(
            "/v1/chat/completions",
            &json!({"model": SMOL, "max_tokens": 2, "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "system", "content": "Be kind."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Bye"},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The Responses API: message items take user, assistant, system or developer.
    let (status, body) = s
        .post(
            "/v1/responses",
            &json!({"model": SMOL, "max_output_tokens": 4,
                    "input": [{"role": "tool", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        error_message(&body),
        "Invalid value: 'tool'. Supported values are: 'user', 'assistant', 'system', and \
         'developer'."
    );
    assert_eq!(body["error"]["param"], "input[0].role", "{body}");
    // Anthropic's messages are user or assistant turns (the system prompt is a field, tool
    // results are blocks).
    for role in ["system", "tool", "developer"] {
        let (status, body) = s
            .post(
                "/v1/messages",
                &json!({"model": SMOL, "max_tokens": 4,
                        "messages": [{"role": role, "content": "Hi"}]}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
        assert!(error_message(&body).contains(role), "{body}");
    }
    // llama-server's /apply-template renders any role its template knows (Llama 3.1's
    // `ipython`): not refused there.
    let (status, body) = s
        .post(
            "/apply-template",
            &json!({"messages": [{"role": "ipython", "content": "42"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    still_serves(&s).await;
}

#[tokio::test]
async fn prompt_length_cap_applies_to_every_generating_route() {
    let Some(s) = server(|c| c.limits.max_prompt_chars = 100).await else {
        return;
    };
    let long = "é".repeat(101);
    let fits = "é".repeat(100);
    for (path, body) in [
        ("/v1/chat/completions", chat(&long, 4)),
        (
            "/v1/completions",
            json!({"model": SMOL, "prompt": long, "max_tokens": 4}),
        ),
        (
            "/v1/responses",
            json!({"model": SMOL, "input": long, "max_output_tokens": 4}),
        ),
        ("/completion", json!({"prompt": long, "n_predict": 4})),
        (
            "/v1/messages",
            json!({"model": SMOL, "max_tokens": 4, "messages": [{"role": "user", "content": long}]}),
        ),
        // Anthropic's system prompt is part of the prompt.
        (
            "/v1/messages",
            json!({"model": SMOL, "max_tokens": 4, "system": [{"type": "text", "text": long}],
                   "messages": [{"role": "user", "content": "Hi"}]}),
        ),
        (
            "/infill",
            json!({"input_prefix": fits, "input_suffix": "x", "n_predict": 4}),
        ),
    ] {
        let got = s.post(path, &body).await;
        assert!(
            error_message(&got.1).contains("characters"),
            "{path}: {}",
            got.1
        );
        refused(got, 413, "limits.max_prompt_chars");
    }
    let (status, body) = s.post("/v1/chat/completions", &chat(&fits, 2)).await;
    assert_eq!(status, 200, "{body}");
    still_serves(&s).await;
}

#[tokio::test]
async fn response_token_cap_refuses_more_and_limits_requests_that_ask_none() {
    let Some(s) = server(|c| c.limits.max_response_tokens = 8).await else {
        return;
    };
    let story = "Write a long story about a dragon who learns to fly.";
    for (path, body) in [
        ("/v1/chat/completions", chat(story, 9)),
        (
            "/v1/chat/completions",
            json!({"model": SMOL, "messages": [{"role": "user", "content": story}],
                   "max_completion_tokens": 100}),
        ),
        (
            "/v1/completions",
            json!({"model": SMOL, "prompt": story, "max_tokens": 9}),
        ),
        (
            "/v1/responses",
            json!({"model": SMOL, "input": story, "max_output_tokens": 9}),
        ),
        ("/completion", json!({"prompt": story, "n_predict": 9})),
        (
            "/v1/messages",
            json!({"model": SMOL, "max_tokens": 9, "messages": [{"role": "user", "content": story}]}),
        ),
    ] {
        refused(s.post(path, &body).await, 400, "limits.max_response_tokens");
    }
    // No limit asked (or llama-server's -1): the cap is the limit.
    for n_predict in [None, Some(-1)] {
        let mut body = json!({"prompt": story, "temperature": 0});
        if let Some(n) = n_predict {
            body["n_predict"] = json!(n);
        }
        let (status, body) = s.post("/completion", &body).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["tokens_predicted"], 8, "{body}");
        assert_eq!(body["stop_type"], "limit", "{body}");
    }
    let (status, body) = s
        .post(
            "/v1/chat/completions",
            &json!({"model": SMOL, "temperature": 0,
                    "messages": [{"role": "user", "content": story}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["usage"]["completion_tokens"], 8, "{body}");
    assert_eq!(body["choices"][0]["finish_reason"], "length", "{body}");
    still_serves(&s).await;
}

/// The `http_requests_total` series of `/metrics`.
async fn request_series(s: &TestServer) -> Vec<String> {
    let text = s.text("/metrics").await;
    text.lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .map(|l| {
            l.rsplit_once(' ')
                .map_or(l, |(series, _)| series)
                .to_string()
        })
        .collect()
}

/// One request with an invented method, one to an invented path.
async fn invent(s: &TestServer, i: usize) {
    let method = reqwest::Method::from_bytes(format!("X{i}").as_bytes()).unwrap();
    let resp = s
        .client
        .request(method, s.url("/health"))
        .send()
        .await
        .unwrap();
    assert_ne!(resp.status(), 200);
    let resp = s
        .client
        .get(s.url(&format!("/nowhere/{i}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn invented_methods_and_paths_add_no_metrics_series() {
    let Some(s) = server(|_| {}).await else {
        return;
    };
    // One of each first, so the series they fall into (`other`, `unmatched`) exist.
    invent(&s, 0).await;
    let before = request_series(&s).await;
    assert!(
        before.iter().any(|l| l.contains(r#"method="other""#)),
        "{before:?}"
    );
    for i in 1..=2_000 {
        invent(&s, i).await;
    }
    let after = request_series(&s).await;
    // The requests to /metrics itself may add their own series once; nothing else.
    let grown: Vec<&String> = after
        .iter()
        .filter(|l| !before.contains(l) && !l.contains("/metrics"))
        .collect();
    assert!(grown.is_empty(), "new series: {grown:?}");
    assert!(
        after.len() <= before.len() + 1,
        "{} → {}",
        before.len(),
        after.len()
    );
    still_serves(&s).await;
}

/// Vertex AI's `/predict` (`AIP_MODE=PREDICTION`): every instance is a whole request, so the
/// body is checked before any instance runs — more instances than `limits.max_completions`,
/// a body that is not JSON (whatever its content type), `instances` that is not a list —
/// and an instance that is not a request is its own error, the others still answered.
#[tokio::test]
async fn predict_refuses_bodies_before_any_instance_runs() {
    let opts = Opts::default()
        .predict()
        .tweak(|c| c.limits.max_completions = 4);
    let Some(s) = TestServer::start(opts).await else {
        return;
    };
    let one = || json!({"@requestFormat": "chatCompletions", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2});
    refused(
        s.post("/predict", &json!({"instances": vec![one(); 5]}))
            .await,
        400,
        "limits.max_completions",
    );

    // Not JSON, sent as a form or as text: refused whole.
    for (kind, body) in [
        ("application/x-www-form-urlencoded", "instances=1"),
        ("text/plain", "{\"instances\": ["),
    ] {
        let (status, body) = s
            .send(
                s.client
                    .post(s.url("/predict"))
                    .header("content-type", kind)
                    .body(body),
            )
            .await;
        assert_eq!(status, 400, "{kind}: {body}");
        assert!(!error_message(&body).is_empty(), "{body}");
    }
    for bad in [
        json!({}),
        json!({"instances": {"a": 1}}),
        json!({"instances": "x"}),
        json!([1]),
    ] {
        refused(s.post("/predict", &bad).await, 400, "instances");
    }

    // Malformed instances: each answered with its own error, in its place.
    let (status, body) = s
        .post(
            "/predict",
            &json!({"instances": [
                7,
                {"messages": []},
                {"@requestFormat": 12},
                {"@requestFormat": "/predict", "instances": [one()]},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let p = body["predictions"].as_array().unwrap();
    assert_eq!(p.len(), 4, "{body}");
    for (i, says) in [
        "must be a JSON object",
        "@requestFormat",
        "@requestFormat",
        "no route",
    ]
    .iter()
    .enumerate()
    {
        assert!(error_message(&p[i]).contains(says), "{i}: {body}");
    }
    // A route's own refusal stays that route's (here `n`).
    let mut hot = one();
    hot["n"] = json!(0);
    let (status, body) = s
        .post("/predict", &json!({"instances": [hot, one()]}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["predictions"][0]["error"].is_object(), "{body}");
    assert_eq!(
        body["predictions"][1]["object"], "chat.completion",
        "{body}"
    );
    still_serves(&s).await;
}
