//! LM Studio's REST API v0 (`/api/v0/*`): golden wire formats (stream and not), compared
//! field by field with LM Studio's documented samples (`tests/golden/lmstudio_samples.json`),
//! the same answers as the OpenAI routes, bad input in OpenAI's error shape, and its keys.

use super::*;
use crate::golden::{Allowed, documented, golden_file};

/// [`normalize`], and LM Studio's measured values (`stats` speeds and times) and the build's
/// own (`runtime` name and version) as placeholders: the rest must match exactly.
fn lm_normalize(v: &Value) -> Value {
    let mut v = normalize(v);
    fn walk(v: &mut Value) {
        match v {
            Value::Object(o) => {
                if let Some(Value::Object(stats)) = o.get_mut("stats") {
                    for k in [
                        "tokens_per_second",
                        "time_to_first_token",
                        "generation_time",
                    ] {
                        if stats.get(k).is_some_and(Value::is_number) {
                            stats.insert(k.into(), json!("<number>"));
                        }
                    }
                }
                if let Some(Value::Object(rt)) = o.get_mut("runtime") {
                    for k in ["name", "version"] {
                        if rt.get(k).is_some_and(Value::is_string) {
                            rt.insert(k.into(), json!(format!("<{k}>")));
                        }
                    }
                }
                o.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

fn stream_json(events: &[String]) -> Value {
    Value::Array(
        events
            .iter()
            .map(|e| {
                serde_json::from_str::<Value>(e).map_or_else(|_| json!(e), |v| lm_normalize(&v))
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn lmstudio_wire_format() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    // Not loaded yet: no loaded_context_length.
    let (status, models) = s.get("/api/v0/models").await;
    assert_eq!(status, 200, "{models}");
    assert_golden("lmstudio_models", &models);
    let (status, one) = s.get("/api/v0/models/smol").await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one, models["data"][0]);

    let (status, body) = s.post("/api/v0/chat/completions", &chat(FRANCE, 24)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "The capital of France is Paris."
    );
    assert_eq!(body["stats"]["stop_reason"], "eosFound", "{body}");
    assert!(body["stats"]["tokens_per_second"].as_f64().unwrap() > 0.0);
    assert_golden("lmstudio_chat", &lm_normalize(&body));
    // The same answer as /v1's: the same handler.
    let (_, v1) = s.post("/v1/chat/completions", &chat(FRANCE, 24)).await;
    assert_eq!(v1["choices"], body["choices"]);
    assert!(v1.get("stats").is_none(), "{v1}");

    let mut req = chat(FRANCE, 24);
    req["stream"] = json!(true);
    let events = s.stream("/api/v0/chat/completions", &req).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert_golden("lmstudio_chat_stream", &stream_json(&events));
    // With usage asked for, the stats ride on the usage chunk, the last before [DONE].
    req["stream_options"] = json!({"include_usage": true});
    let events = s.stream("/api/v0/chat/completions", &req).await;
    let last: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert!(
        last["usage"]["total_tokens"].as_u64().unwrap() > 0,
        "{last}"
    );
    assert_eq!(last["stats"]["stop_reason"], "eosFound", "{last}");
    let before: Value = serde_json::from_str(&events[events.len() - 3]).unwrap();
    assert!(before.get("stats").is_none(), "{before}");

    let completion = json!({"model": SMOL, "prompt": "The capital of France is", "max_tokens": 6, "temperature": 0});
    let (status, body) = s.post("/api/v0/completions", &completion).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stats"]["stop_reason"], "maxPredictedTokensReached");
    assert_golden("lmstudio_completion", &lm_normalize(&body));
    let mut req = completion.clone();
    req["stream"] = json!(true);
    let events = s.stream("/api/v0/completions", &req).await;
    assert_golden("lmstudio_completion_stream", &stream_json(&events));

    // A stop string the request asked for.
    let mut stop = completion.clone();
    stop["stop"] = json!([" Paris"]);
    stop["max_tokens"] = json!(12);
    let (status, body) = s.post("/api/v0/completions", &stop).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stats"]["stop_reason"], "stopStringFound", "{body}");

    // Loaded now: the context a request gets.
    let (_, models) = s.get("/api/v0/models").await;
    assert_eq!(models["data"][0]["state"], "loaded", "{models}");
    assert_eq!(models["data"][0]["loaded_context_length"], 2048, "{models}");
    assert_golden("lmstudio_models_loaded", &models);

    // Embeddings: OpenAI's shape, the same vectors as /v1's (the same computation).
    let input = json!({"model": SMOL, "input": ["Paris is in France.", "Berlin"]});
    let (status, body) = s.post("/api/v0/embeddings", &input).await;
    assert_eq!(status, 200, "{body}");
    let (_, v1) = s.post("/v1/embeddings", &input).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert_eq!(body["data"][1]["index"], 1);
    assert_eq!(body["data"][0]["object"], "embedding");
    assert_eq!(body["usage"], v1["usage"]);
    let a = body["data"][0]["embedding"].as_array().unwrap();
    let b = v1["data"][0]["embedding"].as_array().unwrap();
    assert_eq!(a.len(), b.len());
    assert!(
        a.iter()
            .zip(b)
            .all(|(x, y)| (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-5)
    );
    let mut shape = body.clone();
    for d in shape["data"].as_array_mut().unwrap() {
        d["embedding"] = json!(["<float>"]);
    }
    assert_golden("lmstudio_embeddings", &shape);
}

/// Fields we send that LM Studio's v0 samples lack, and why.
const LMSTUDIO_EXTRA: &[&str] = &[
    // llama-server's fields on every OpenAI answer of ours.
    "system_fingerprint",
    "timings",
    "usage.prompt_tokens_details",
    // Newer LM Studio (0.3.16+): the context a loaded model was loaded with, its tool use.
    "loaded_context_length",
    "capabilities",
];

#[test]
fn lmstudio_goldens_have_the_documented_fields() {
    let samples = golden_file("lmstudio_samples");
    let mut problems = Vec::new();
    let mut check = |what: &str, sample: &Value, ours: &Value| {
        let mut p = Vec::new();
        let allowed = Allowed {
            unsent: &[],
            extra: LMSTUDIO_EXTRA,
        };
        documented("", sample, ours, &allowed, &mut p);
        problems.extend(p.into_iter().map(|p| format!("{what}: {p}")));
    };
    for name in ["lmstudio_models", "lmstudio_models_loaded"] {
        check(name, &samples["models"], &golden_file(name));
    }
    check(
        "lmstudio_chat",
        &samples["chat"],
        &golden_file("lmstudio_chat"),
    );
    check(
        "lmstudio_completion",
        &samples["completion"],
        &golden_file("lmstudio_completion"),
    );
    check(
        "lmstudio_embeddings",
        &samples["embeddings"],
        &golden_file("lmstudio_embeddings"),
    );
    // A stream's last chunk before [DONE] carries the blocks as the whole answer does.
    for name in ["lmstudio_chat_stream", "lmstudio_completion_stream"] {
        let events = golden_file(name);
        let events = events.as_array().unwrap();
        let last = &events[events.len() - 2];
        for block in ["stats", "model_info", "runtime"] {
            check(
                &format!("{name} {block}"),
                &samples["chat"][block],
                &last[block],
            );
        }
        assert!(
            events[..events.len() - 2]
                .iter()
                .all(|e| e.get("stats").is_none()),
            "{name}: only the last chunk carries stats"
        );
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Bad input on every LM Studio route (the POST rows are in `malformed.rs`'s table): 4xx in
/// OpenAI's shape, as LM Studio answers, and the server goes on serving.
#[tokio::test(flavor = "multi_thread")]
async fn unknown_models_and_routes_get_openai_errors() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    for (path, status_wanted) in [("/api/v0/models/nope", 404), ("/api/v0/nothing", 404)] {
        let (status, resp) = s.get(path).await;
        assert_eq!(status, status_wanted, "{path}: {resp}");
        assert!(resp["error"]["type"].is_string(), "OpenAI shape: {resp}");
    }
    let (status, resp) = s.get("/api/v0/chat/completions").await;
    assert_eq!(status, 405, "{resp}");
    assert!(resp["error"]["type"].is_string(), "OpenAI shape: {resp}");
    let (status, body) = s.post("/api/v0/chat/completions", &chat(FRANCE, 24)).await;
    assert_eq!(status, 200, "{body}");
}

/// LM Studio's routes take the inference key (they are inference, though under `/api/`),
/// and refuse in OpenAI's shape.
#[tokio::test(flavor = "multi_thread")]
async fn lmstudio_routes_take_the_inference_key() {
    let s = TestServer::empty(Opts {
        api_key: Some("inference-key".into()),
        admin_key: Some("admin-key".into()),
        ..Default::default()
    })
    .await;
    let (status, body) = s.get("/api/v0/models").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    let (status, body) = s
        .send(
            s.client
                .get(s.url("/api/v0/models"))
                .bearer_auth("inference-key"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"object": "list", "data": []}));
    // The management API next to it stays the admin's.
    let (status, _) = s
        .send(
            s.client
                .get(s.url("/api/models"))
                .bearer_auth("inference-key"),
        )
        .await;
    assert_eq!(status, 403);
}

/// LM Studio's own port (`server.lmstudio_port`, opened from the API here) serves these
/// routes as the main port does.
#[tokio::test(flavor = "multi_thread")]
async fn lmstudio_routes_answer_on_lm_studios_port() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let (status, body) = s
        .post("/api/system/ports/lmstudio/start", &json!({"port": 0}))
        .await;
    assert_eq!(status, 200, "{body}");
    let other = format!("http://127.0.0.1:{}", body["port"].as_u64().unwrap());
    let (status, models) = s.send(s.client.get(format!("{other}/api/v0/models"))).await;
    assert_eq!(status, 200, "{models}");
    assert_eq!(models["data"][0]["compatibility_type"], "gguf", "{models}");
    let (status, body) = s
        .send(
            s.client
                .post(format!("{other}/api/v0/chat/completions"))
                .json(&chat(FRANCE, 24)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stats"]["stop_reason"], "eosFound", "{body}");
    let (status, _) = s.post("/api/system/ports/lmstudio/stop", &json!({})).await;
    assert_eq!(status, 200);
}
