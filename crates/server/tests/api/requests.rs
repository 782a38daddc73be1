//! llama-server's request and response formats on the completion and embedding routes:
//! batch, token-id, mixed and object prompts, `n`, logit biases by text, `ignore_eos` in the
//! generation settings, post-sampling probabilities, prompt progress, `response_fields`,
//! the context-overflow error, pooling `none`, and the generation rate's first token.

use super::*;

/// `/tokenize` of `text` (no BOS).
async fn tokens(s: &TestServer, text: &str) -> Vec<i64> {
    let (status, t) = s
        .post("/tokenize", &json!({"model": SMOL, "content": text}))
        .await;
    assert_eq!(status, 200, "{t}");
    serde_json::from_value(t["tokens"].clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_token_mixed_and_object_prompts() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let text = "I believe the meaning of life is";
    let ids = tokens(&s, text).await;
    let n_ids = ids.len() as u64;
    let complete =
        |prompt: Value| json!({"model": SMOL, "prompt": prompt, "n_predict": 2, "temperature": 0});

    // One prompt of ids: one object.
    let (status, one) = s.post("/completion", &complete(json!(ids))).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["tokens_evaluated"], n_ids);

    // Several prompts (ids, a text, an object): a list in prompt order, each evaluated as
    // many tokens as the same prompt alone (SmolLM2 adds no BOS).
    let (status, many) = s
        .post(
            "/completion",
            &complete(json!([ids, text, {"prompt_string": text}])),
        )
        .await;
    assert_eq!(status, 200, "{many}");
    let many = many.as_array().unwrap();
    assert_eq!(many.len(), 3);
    for (i, r) in many.iter().enumerate() {
        assert_eq!(r["index"], i, "{r}");
        assert_eq!(r["tokens_evaluated"], n_ids, "{r}");
        assert_eq!(r["timings"]["predicted_n"], 2, "{r}");
    }

    // Ids and texts in one prompt: one result, the tokens of both.
    let (status, mixed) = s
        .post("/completion", &complete(json!([ids[0], ids[1], text, 7])))
        .await;
    assert_eq!(status, 200, "{mixed}");
    assert!(mixed.is_object(), "{mixed}");
    assert_eq!(mixed["tokens_evaluated"], 2 + n_ids + 1);

    // n completions of each prompt, on both completion routes.
    let mut body = complete(json!(["Hello", "World"]));
    body["n"] = json!(2);
    let (status, four) = s.post("/completion", &body).await;
    assert_eq!(status, 200, "{four}");
    let indexes: Vec<u64> = four
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 1, 2, 3]);
    let (status, oai) = s
        .post(
            "/v1/completions",
            &json!({"model": SMOL, "prompt": ["Hello", "World"], "n": 2, "max_tokens": 2}),
        )
        .await;
    assert_eq!(status, 200, "{oai}");
    let choices = oai["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 4);
    for (i, c) in choices.iter().enumerate() {
        assert_eq!(c["index"], i);
        assert_eq!(c["finish_reason"], "length");
    }
    assert_eq!(oai["usage"]["completion_tokens"], 8, "{oai}");

    // Streamed: every choice's chunks carry its index, and [DONE] comes once, last.
    let events = s
        .stream(
            "/v1/completions",
            &json!({"model": SMOL, "prompt": "Hello", "n": 2, "max_tokens": 3, "stream": true}),
        )
        .await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert_eq!(events.iter().filter(|e| *e == "[DONE]").count(), 1);
    let finished: Vec<u64> = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter(|c| !c["choices"][0]["finish_reason"].is_null())
        .map(|c| c["choices"][0]["index"].as_u64().unwrap())
        .collect();
    let mut sorted = finished.clone();
    sorted.sort();
    assert_eq!(sorted, [0, 1], "{events:?}");

    // Bounded before anything is queued: prompts times n over limits.max_completions.
    let (status, err) = s
        .post(
            "/completion",
            &json!({"model": SMOL, "prompt": ["a", "b", "c"], "n": 6}),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("limits.max_completions") && msg.contains("18"),
        "{msg}"
    );

    // An image on a text server is refused clearly.
    let (status, err) = s
        .post(
            "/completion",
            &complete(json!({"prompt_string": "<__media__>", "multimodal_data": ["AAAA"]})),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("multimodal_data"),
        "{err}"
    );

    // Embeddings take the same shapes, and OpenAI content parts.
    let (status, e) = s
        .post(
            "/v1/embeddings",
            &json!({"model": SMOL, "input": [
                "hello world",
                {"content": [{"type": "text", "text": "hello "}, {"type": "text", "text": "world"}]},
                [ids[0], "world"],
                {"prompt_string": "hello"},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["data"].as_array().unwrap().len(), 4);
    for bad in [
        json!({"content": "string"}),
        json!({"content": [{"type": "unknown"}]}),
        json!({"content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}),
    ] {
        let (status, err) = s
            .post("/v1/embeddings", &json!({"model": SMOL, "input": bad}))
            .await;
        assert_eq!(status, 400, "{bad}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn completion_wire_format() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    // Stream chunks carry their token id, asked for or not (as llama-server's).
    let events = s
        .stream(
            "/completion",
            &json!({"model": SMOL, "prompt": "Once upon a time", "n_predict": 4, "stream": true}),
        )
        .await;
    let chunks: Vec<Value> = events
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let (last, token_chunks) = chunks.split_last().unwrap();
    assert_eq!(last["stop"], true);
    assert!(!token_chunks.is_empty());
    for c in token_chunks {
        assert_eq!(c["stop"], false);
        assert_eq!(c["tokens"].as_array().unwrap().len(), 1, "{c}");
    }

    // ignore_eos shows as the end-of-generation tokens banned in logit_bias.
    let settings = |ignore_eos: bool| json!({"model": SMOL, "prompt": "Once upon a time", "n_predict": 2, "ignore_eos": ignore_eos});
    let (_, with) = s.post("/completion", &settings(true)).await;
    let bans = with["generation_settings"]["logit_bias"]
        .as_array()
        .unwrap();
    assert!(!bans.is_empty(), "{with}");
    assert!(bans.iter().all(|b| b["bias"].is_null()), "{bans:?}");
    let (_, without) = s.post("/completion", &settings(false)).await;
    assert_eq!(without["generation_settings"]["logit_bias"], json!([]));

    // A logit bias keyed by text biases each of its tokens, in both forms.
    let banned = tokens(&s, " the").await;
    for form in [json!([[" the", false]]), json!({" the": -100})] {
        let (status, r) = s
            .post(
                "/completion",
                &json!({"model": SMOL, "prompt": "What is the best book", "n_predict": 24,
                        "temperature": 0, "logit_bias": form, "return_tokens": true}),
            )
            .await;
        assert_eq!(status, 200, "{r}");
        let biased: Vec<i64> = r["generation_settings"]["logit_bias"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["token"].as_i64().unwrap())
            .collect();
        assert_eq!(biased, banned, "{form}");
        let out: Vec<i64> = serde_json::from_value(r["tokens"].clone()).unwrap();
        assert!(out.iter().all(|t| !banned.contains(t)), "{out:?}");
    }

    // Post-sampling probabilities: what the token was sampled with, never 0, most likely
    // first, at most n_probs.
    let (status, r) = s
        .post(
            "/completion",
            &json!({"model": SMOL, "prompt": "Today I would finally become a", "n_predict": 3,
                    "n_probs": 5, "temperature": 1.0, "post_sampling_probs": true}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let probs = r["completion_probabilities"].as_array().unwrap();
    assert_eq!(probs.len(), 3);
    for p in probs {
        let prob = p["prob"].as_f64().unwrap();
        assert!(prob > 0.0 && prob <= 1.0, "{p}");
        assert!(p.get("logprob").is_none(), "{p}");
        let top: Vec<f64> = p["top_probs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["prob"].as_f64().unwrap())
            .collect();
        assert!(!top.is_empty() && top.len() <= 5, "{p}");
        assert!(top.iter().all(|&x| x > 0.0 && x <= 1.0), "{p}");
        assert!(top.windows(2).all(|w| w[0] >= w[1]), "{p}");
        assert!(top.iter().sum::<f64>() <= 1.0 + 1e-4, "{p}");
    }

    // response_fields: only those, each under its path.
    let (status, r) = s
        .post(
            "/completion",
            &json!({"model": SMOL, "prompt": "Hi", "n_predict": 3,
                    "response_fields": ["content", "generation_settings/n_predict"]}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 2, "{r}");
    assert_eq!(r["generation_settings/n_predict"], 3);
    assert!(r["content"].is_string());

    // The generation rate leaves out the first token, which costs no decode step.
    let (_, one) = s
        .post(
            "/completion",
            &json!({"model": SMOL, "prompt": "Hi", "n_predict": 1}),
        )
        .await;
    assert_eq!(one["timings"]["predicted_n"], 1);
    assert_eq!(one["timings"]["predicted_per_second"], 0.0);
    assert_eq!(one["timings"]["predicted_per_token_ms"], 0.0);
    let (_, many) = s
        .post(
            "/completion",
            &json!({"model": SMOL, "prompt": "Hi", "n_predict": 6, "ignore_eos": true}),
        )
        .await;
    let t = &many["timings"];
    assert_eq!(t["predicted_n"], 6);
    let ms = t["predicted_ms"].as_f64().unwrap();
    let expected = 1e3 / ms * 5.0;
    assert!(
        (t["predicted_per_second"].as_f64().unwrap() - expected).abs() < 1e-6 * expected,
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prompt_progress_is_streamed_when_asked() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let prompt = "This is a test. ".repeat(40);
    for (path, body) in [
        (
            "/completion",
            json!({"model": SMOL, "prompt": prompt, "n_predict": 2, "stream": true, "return_progress": true}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": SMOL, "messages": [{"role": "user", "content": prompt}], "max_tokens": 2,
                   "stream": true, "return_progress": true}),
        ),
    ] {
        let events = s.stream(path, &body).await;
        let chunks: Vec<Value> = events
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e).ok())
            .filter(|c| c.get("prompt_progress").is_some())
            .collect();
        let progress: Vec<Value> = chunks
            .iter()
            .map(|c| c["prompt_progress"].clone())
            .collect();
        assert!(!progress.is_empty(), "{path}: {events:?}");
        // Each report carries the timings so far (llama-server's): zero before the first
        // prompt token is decoded, then prompt time that never goes back.
        let timings: Vec<&Value> = chunks.iter().map(|c| &c["timings"]).collect();
        assert_eq!(timings[0]["prompt_n"], 0, "{path}: {:?}", timings[0]);
        assert_eq!(timings[0]["prompt_ms"], 0.0, "{path}: {:?}", timings[0]);
        let mut prompt_ms = 0.0;
        for t in &timings {
            assert_eq!(t["predicted_n"], 0, "{path}: {t}");
            assert_eq!(t["predicted_ms"], 0.0, "{path}: {t}");
            let ms = t["prompt_ms"]
                .as_f64()
                .unwrap_or_else(|| panic!("{path}: {t}"));
            assert!(ms >= prompt_ms, "{path}: {timings:?}");
            prompt_ms = ms;
        }
        let last = timings.last().unwrap();
        assert!(last["prompt_n"].as_u64().unwrap() > 0, "{path}: {last}");
        assert!(prompt_ms > 0.0, "{path}: {timings:?}");
        let first = &progress[0];
        assert_eq!(first["processed"], first["cache"], "{path}: {first}");
        let last = progress.last().unwrap();
        assert_eq!(last["processed"], last["total"], "{path}: {last}");
        assert!(
            progress
                .windows(2)
                .all(|w| w[1]["processed"].as_u64() >= w[0]["processed"].as_u64()),
            "{path}: {progress:?}"
        );
        // Not asked: none.
        let mut quiet = body.clone();
        quiet["return_progress"] = json!(false);
        let events = s.stream(path, &quiet).await;
        assert!(
            events.iter().all(|e| !e.contains("prompt_progress")),
            "{path}: {events:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn context_overflow_is_llama_servers_error() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let (status, loaded) = s
        .post(
            "/api/models/smol/load",
            &json!({"ctx_size": 256, "parallel": 1}),
        )
        .await;
    assert_eq!(status, 200, "{loaded}");
    let long = "hello world ".repeat(300);
    // llama-server's exceed_context_size_error, in every route family's shape.
    for (path, body) in [
        (
            "/completion",
            json!({"model": SMOL, "prompt": long, "n_predict": 2}),
        ),
        (
            "/v1/completions",
            json!({"model": SMOL, "prompt": long, "max_tokens": 2}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": SMOL, "messages": [{"role": "user", "content": long}], "max_tokens": 2}),
        ),
    ] {
        let (status, err) = s.post(path, &body).await;
        assert_eq!(status, 400, "{path}: {err}");
        let e = &err["error"];
        assert_eq!(e["type"], "exceed_context_size_error", "{path}: {err}");
        assert_eq!(e["n_ctx"], 256, "{path}: {err}");
        assert!(
            e["n_prompt_tokens"].as_u64().unwrap() > 256,
            "{path}: {err}"
        );
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("exceeds the available context size"),
            "{path}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pooling_none_is_a_400_on_openais_route() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    // Pooling none: per-token rows OpenAI's shape cannot carry, so /v1/embeddings says 400
    // (asked for, or the model's own) and the llama-server routes answer with the rows.
    let (status, err) = s
        .post(
            "/v1/embeddings",
            &json!({"model": SMOL, "input": "hello", "pooling": "none"}),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["param"], "pooling", "{err}");
    let (status, _) = s.post("/api/models/smol/unload", &json!({})).await;
    assert_eq!(status, 200);
    let (status, loaded) = s
        .post("/api/models/smol/load", &json!({"pooling": "none"}))
        .await;
    assert_eq!(status, 200, "{loaded}");
    let (status, err) = s
        .post(
            "/v1/embeddings",
            &json!({"model": SMOL, "input": "hello hello hello"}),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    let n = tokens(&s, "hello hello hello").await.len();
    for path in ["/embeddings", "/embedding"] {
        let (status, rows) = s
            .post(path, &json!({"model": SMOL, "input": "hello hello hello"}))
            .await;
        assert_eq!(status, 200, "{path}: {rows}");
        assert_eq!(rows[0]["embedding"].as_array().unwrap().len(), n, "{path}");
    }
}

/// `n` on the chat route: `n` generations of the one request (the completion routes' path),
/// one choice each, even when all are pinned to one slot (they take turns), streamed with
/// each choice's index and one `[DONE]`.
#[tokio::test(flavor = "multi_thread")]
async fn chat_n_gives_n_choices() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let mut body = chat("What is the best book?", 4);
    body["n"] = json!(2);
    body["id_slot"] = json!(0);
    for _ in 0..2 {
        let (status, answer) = s.post("/v1/chat/completions", &body).await;
        assert_eq!(status, 200, "{answer}");
        let choices = answer["choices"].as_array().unwrap();
        assert_eq!(choices.len(), 2, "{answer}");
        for (i, c) in choices.iter().enumerate() {
            assert_eq!(c["index"], i);
            assert_eq!(c["message"]["role"], "assistant");
            assert_eq!(c["finish_reason"], "length");
        }
        assert_eq!(answer["usage"]["completion_tokens"], 8, "{answer}");
    }

    body["stream"] = json!(true);
    let events = s.stream("/v1/chat/completions", &body).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert_eq!(events.iter().filter(|e| *e == "[DONE]").count(), 1);
    let chunks: Vec<Value> = events
        .iter()
        .filter_map(|e| serde_json::from_str(e).ok())
        .collect();
    let indexes = |pick: &dyn Fn(&Value) -> bool| {
        let mut v: Vec<u64> = chunks
            .iter()
            .filter(|c| pick(c))
            .map(|c| c["choices"][0]["index"].as_u64().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        indexes(&|c| c["choices"][0]["delta"]["role"] == "assistant"
            && c.get("prompt_progress").is_none()),
        [0, 1],
        "{events:?}"
    );
    assert_eq!(
        indexes(&|c| !c["choices"][0]["finish_reason"].is_null()),
        [0, 1],
        "{events:?}"
    );
}

/// llama-server's `__verbose` object: a request's `"verbose": true` asks for it (the
/// generation as `/completion` gives it, with the prompt as the template rendered it), and
/// `server.verbose_responses` (`serve --verbose`) adds it unless the request says false.
#[tokio::test(flavor = "multi_thread")]
async fn verbose_answers_carry_the_rendered_prompt() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let mut body = json!({
        "model": SMOL,
        "max_tokens": 2,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": "Book"},
            {"role": "user", "content": "What is the best book"},
            {"role": "assistant", "content": "Whill"},
        ],
    });
    let (status, plain) = s.post("/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{plain}");
    assert!(plain.get("__verbose").is_none(), "{plain}");

    body["verbose"] = json!(true);
    let (status, answer) = s.post("/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{answer}");
    let v = &answer["__verbose"];
    let prompt = v["prompt"].as_str().unwrap_or_else(|| panic!("{answer}"));
    // SmolLM2's ChatML, ending in the assistant message the reply continues.
    assert!(
        prompt.contains("<|im_start|>system\nBook") && prompt.ends_with("assistant\nWhill"),
        "{prompt:?}"
    );
    assert_eq!(v["content"], answer["choices"][0]["message"]["content"]);
    assert_eq!(v["tokens_predicted"], 2, "{v}");
    assert_eq!(v["generation_settings"]["n_predict"], 2, "{v}");

    // The completion route too, with the prompt as given.
    let (status, c) = s
        .post(
            "/v1/completions",
            &json!({"model": SMOL, "prompt": "Once upon", "max_tokens": 1, "verbose": true}),
        )
        .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["__verbose"]["prompt"], "Once upon", "{c}");

    let s = TestServer::start(Opts::default().tweak(|c| c.server.verbose_responses = true))
        .await
        .unwrap();
    body["verbose"] = Value::Null;
    let (_, on) = s.post("/v1/chat/completions", &body).await;
    assert!(on["__verbose"]["prompt"].is_string(), "{on}");
    body["verbose"] = json!(false);
    let (_, off) = s.post("/v1/chat/completions", &body).await;
    assert!(off.get("__verbose").is_none(), "{off}");
}
