//! Embeddings, rerank, infill and LoRA routes.

use super::*;
use base64::Engine as _;

#[tokio::test(flavor = "multi_thread")]
async fn embeddings_rerank_infill_lora() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let (status, e) = s
        .post(
            "/v1/embeddings",
            &json!({"model": SMOL, "input": ["Paris is in France.", "Berlin is in Germany."]}),
        )
        .await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["object"], "list");
    let v0: Vec<f64> = serde_json::from_value(e["data"][0]["embedding"].clone()).unwrap();
    assert_eq!(v0.len(), 576, "SmolLM2's embedding size");
    let norm: f64 = v0.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3, "{norm}");
    assert_eq!(e["data"][1]["index"], 1);
    assert!(e["usage"]["prompt_tokens"].as_u64().unwrap() >= 10);

    let (_, b) = s
        .post(
            "/v1/embeddings",
            &json!({"model": SMOL, "input": "Paris is in France.", "encoding_format": "base64"}),
        )
        .await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let floats: Vec<f32> = bytes
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(floats.len(), 576);
    assert!(
        (f64::from(floats[0]) - v0[0]).abs() < 1e-5,
        "base64 carries the same vector"
    );

    let (_, d) = s
        .post(
            "/v1/embeddings",
            &json!({"model": SMOL, "input": "Paris", "dimensions": 64}),
        )
        .await;
    assert_eq!(d["data"][0]["embedding"].as_array().unwrap().len(), 64);
    for (body, field) in [
        // No tokens at all (SmolLM2 adds no BOS): refused after tokenizing.
        (json!({"model": SMOL, "input": ""}), "inputs"),
        (json!({"model": SMOL, "input": []}), "input"),
        (
            json!({"model": SMOL, "input": "x", "encoding_format": "hex"}),
            "encoding_format",
        ),
        (
            json!({"model": SMOL, "input": "x", "dimensions": 0}),
            "dimensions",
        ),
    ] {
        let (status, err) = s.post("/v1/embeddings", &body).await;
        assert_eq!(status, 400, "{body}: {err}");
        assert_eq!(err["error"]["param"], field, "{err}");
    }

    // Native: pooling none gives one vector per token.
    let (_, tokens) = s
        .post(
            "/tokenize",
            &json!({"model": SMOL, "content": "Hello world", "add_special": true}),
        )
        .await;
    let n = tokens["tokens"].as_array().unwrap().len();
    let (status, per_token) = s
        .post(
            "/embedding",
            &json!({"model": SMOL, "content": "Hello world", "pooling": "none"}),
        )
        .await;
    assert_eq!(status, 200, "{per_token}");
    assert_eq!(per_token[0]["embedding"].as_array().unwrap().len(), n);
    let (_, pooled) = s
        .post(
            "/embedding",
            &json!({"model": SMOL, "content": "Hello world"}),
        )
        .await;
    assert_eq!(pooled[0]["embedding"].as_array().unwrap().len(), 1);

    // SmolLM2 cannot rerank and has no FIM tokens: clear errors, not crashes.
    for path in ["/rerank", "/reranking", "/v1/rerank"] {
        let (status, err) = s
            .post(path, &json!({"model": SMOL, "query": "capital of France", "documents": ["Paris", "Berlin"]}))
            .await;
        assert_eq!(status, 501, "{path}: {err}");
        assert!(
            err["error"]["message"].as_str().unwrap().contains("rerank"),
            "{err}"
        );
    }
    let (status, err) = s
        .post(
            "/infill",
            &json!({"model": SMOL, "input_prefix": "def f(", "input_suffix": "):", "n_predict": 4}),
        )
        .await;
    assert_eq!(status, 501, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fill-in-the-middle"),
        "{err}"
    );

    let (status, l) = s.get("/lora-adapters?model=smol").await;
    assert_eq!(status, 200);
    assert_eq!(l, json!([]));
    let (status, err) = s
        .post(
            "/lora-adapters?model=smol",
            &json!([{"id": 3, "scale": 1.0}]),
        )
        .await;
    assert_eq!(status, 400, "{err}");

    // Still generating after all of it.
    let (status, body) = s.post("/v1/chat/completions", &chat(FRANCE, 24)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "The capital of France is Paris."
    );
}
