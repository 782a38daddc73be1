//! Embeddings on their own context (pooled and per token, normalisation, batching of
//! inputs, next to running generation) and rerank's refusal on models that cannot rank.

use std::time::Duration;

use engine::{
    EmbedRequest, Embedding, EmbeddingValues, EngineError, Event, ModelHandle, ModelHost,
    ModelParams, Normalize, Pooling, Prompt,
};

use crate::common::*;

fn texts(inputs: &[&str]) -> EmbedRequest {
    EmbedRequest {
        inputs: inputs.iter().map(|t| Prompt::text(*t)).collect(),
        ..Default::default()
    }
}

fn pooled(e: &Embedding) -> &[f32] {
    match &e.values {
        EmbeddingValues::Pooled(v) => v,
        other => panic!("expected a pooled embedding, got {other:?}"),
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm2(a: &[f32]) -> f32 {
    dot(a, a).sqrt()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    dot(a, b) / (norm2(a) * norm2(b))
}

async fn embed(h: &ModelHandle, req: EmbedRequest) -> Result<Vec<Embedding>, EngineError> {
    tokio::time::timeout(Duration::from_secs(300), h.embed(req))
        .await
        .expect("embedding timed out")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_embeddings_are_normalised_and_in_input_order() {
    let Some(h) = shared() else { return };
    let info = h.info();
    assert_eq!(info.pooling, None, "SmolLM2 declares no pooling");
    assert!(!info.can_rerank);
    let inputs = [
        "The cat sat on the mat.",
        "A cat was sitting on the mat.",
        "Quarterly revenue grew by four percent.",
    ];
    let out = embed(h, texts(&inputs)).await.unwrap();
    assert_eq!(out.len(), 3);
    for (i, e) in out.iter().enumerate() {
        assert_eq!(e.index, i);
        assert!(e.n_tokens > 3, "{e:?}");
        let v = pooled(e);
        assert_eq!(v.len(), info.n_embd as usize);
        assert!(v.iter().all(|x| x.is_finite()));
        assert!((norm2(v) - 1.0).abs() < 1e-4, "euclidean by default");
    }
    let (cat, cat2, money) = (pooled(&out[0]), pooled(&out[1]), pooled(&out[2]));
    assert!(
        cosine(cat, cat2) > cosine(cat, money),
        "similar sentences must be closer: {} vs {}",
        cosine(cat, cat2),
        cosine(cat, money)
    );
    // Tokens as given give the same embedding as the text they came from.
    let toks = h.tokenize(inputs[0], true, true).await.unwrap();
    assert_eq!(toks.len() as u32, out[0].n_tokens);
    let again = embed(
        h,
        EmbedRequest {
            inputs: vec![Prompt::Tokens(toks)],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(cosine(pooled(&again[0]), cat) > 0.9999);

    // Other normalisations scale the same direction.
    let raw = embed(
        h,
        EmbedRequest {
            normalize: Normalize::None,
            ..texts(&inputs[..1])
        },
    )
    .await
    .unwrap();
    let raw = pooled(&raw[0]).to_vec();
    assert!(
        (norm2(&raw) - 1.0).abs() > 1e-2,
        "not normalised: {}",
        norm2(&raw)
    );
    assert!(cosine(&raw, cat) > 0.9999);
    let maxabs = embed(
        h,
        EmbedRequest {
            normalize: Normalize::MaxAbs,
            ..texts(&inputs[..1])
        },
    )
    .await
    .unwrap();
    let m = pooled(&maxabs[0]).iter().fold(0f32, |a, x| a.max(x.abs()));
    assert!((m - 32760.0).abs() < 0.5, "{m}");
    let taxicab = embed(
        h,
        EmbedRequest {
            normalize: Normalize::from_llama(1),
            ..texts(&inputs[..1])
        },
    )
    .await
    .unwrap();
    let l1: f32 = pooled(&taxicab[0]).iter().map(|x| x.abs()).sum();
    assert!((l1 - 1.0).abs() < 1e-3, "{l1}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_token_embeddings_and_other_poolings() {
    let Some(h) = shared() else { return };
    let n_embd = h.info().n_embd as usize;
    let out = embed(
        h,
        EmbedRequest {
            pooling: Some(Pooling::None),
            ..texts(&["Hello there, world", "Hi"])
        },
    )
    .await
    .unwrap();
    assert_eq!(out.len(), 2);
    for e in &out {
        match &e.values {
            EmbeddingValues::PerToken(rows) => {
                assert_eq!(rows.len(), e.n_tokens as usize);
                assert!(rows.iter().all(|r| r.len() == n_embd));
            }
            other => panic!("expected per-token values, got {other:?}"),
        }
    }
    // Last-token pooling is the last row of the per-token output (normalised).
    let last = embed(
        h,
        EmbedRequest {
            pooling: Some(Pooling::Last),
            ..texts(&["Hello there, world"])
        },
    )
    .await
    .unwrap();
    let EmbeddingValues::PerToken(rows) = &out[0].values else {
        unreachable!()
    };
    let c = cosine(pooled(&last[0]), rows.last().unwrap());
    assert!(c > 0.999, "{c}");
    // Mean pooling differs from last-token pooling.
    let mean = embed(
        h,
        EmbedRequest {
            pooling: Some(Pooling::Mean),
            ..texts(&["Hello there, world"])
        },
    )
    .await
    .unwrap();
    assert!(cosine(pooled(&mean[0]), pooled(&last[0])) < 0.999);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_inputs_span_several_batches_with_the_same_results() {
    // One slot: the embedding context then decodes at most 8 inputs at once.
    let Some(h) = load_smollm(ctx(256, 1)) else {
        return;
    };
    let inputs: Vec<String> = (0..19)
        .map(|i| {
            format!(
                "Sentence number {i} talks about {}.",
                ["cats", "rain", "tax"][i % 3]
            )
        })
        .collect();
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let all = embed(&h, texts(&refs)).await.unwrap();
    assert_eq!(all.len(), 19);
    let before = h.stats().decode_calls;
    assert_eq!(before, 0, "embeddings do not use the slots' context");
    for i in [0, 9, 18] {
        assert_eq!(all[i].index, i);
        let alone = embed(&h, texts(&refs[i..=i])).await.unwrap();
        let c = cosine(pooled(&alone[0]), pooled(&all[i]));
        assert!(c > 0.9999, "input {i}: {c}");
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedding_next_to_generation_changes_neither() {
    let Some(h) = load_smollm(ctx(512, 2)) else {
        return;
    };
    let mut req = greedy(&chatml("Write a short poem about the sea."), 48);
    req.ignore_eos = true;
    req.cache_prompt = false;
    let alone = run(&h, req.clone()).await.unwrap();
    let embed_alone = embed(&h, texts(&["The sea is wide."])).await.unwrap();

    let mut stream = h.generate(req).await.unwrap();
    assert!(matches!(next(&mut stream).await, Event::Token { .. }));
    // While the slot generates, embeddings are computed between its steps.
    let during = embed(&h, texts(&["The sea is wide.", "Mountains are tall."]))
        .await
        .unwrap();
    let first = cosine(pooled(&during[0]), pooled(&embed_alone[0]));
    assert!(first > 0.9999, "{first}");
    let rest = stream.collect().await.unwrap();
    assert!(
        h.stats().requests_done >= 2,
        "the generation went on: {:?}",
        h.stats()
    );
    // The generation is the same as alone (its first token was read above).
    assert_eq!(rest.tokens.len() + 1, alone.tokens.len());
    assert_eq!(rest.tokens[..], alone.tokens[1..]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_embed_requests_are_typed_errors() {
    let Some(h) = shared() else { return };
    let expect_param = |r: Result<Vec<Embedding>, EngineError>, field: &str| match r {
        Err(EngineError::InvalidParameter { name, .. }) => assert_eq!(name, field),
        other => panic!("expected InvalidParameter({field}), got {other:?}"),
    };
    expect_param(embed(h, EmbedRequest::default()).await, "inputs");
    expect_param(embed(h, texts(&["fine", ""])).await, "inputs");
    expect_param(
        embed(
            h,
            EmbedRequest {
                inputs: vec![Prompt::Tokens(vec![])],
                ..Default::default()
            },
        )
        .await,
        "inputs",
    );
    expect_param(
        embed(
            h,
            EmbedRequest {
                inputs: vec![Prompt::Tokens(vec![1, 1 << 30])],
                ..Default::default()
            },
        )
        .await,
        "inputs",
    );
    expect_param(
        embed(
            h,
            EmbedRequest {
                normalize: Normalize::PNorm(f32::NAN),
                ..texts(&["x"])
            },
        )
        .await,
        "normalize",
    );
    // Rank pooling needs a reranker.
    match embed(
        h,
        EmbedRequest {
            pooling: Some(Pooling::Rank),
            ..texts(&["x"])
        },
    )
    .await
    {
        Err(e @ EngineError::Unsupported { .. }) => assert!(e.is_client_error()),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    // The model still serves both kinds of request.
    assert_eq!(embed(h, texts(&["still here"])).await.unwrap().len(), 1);
    let c = run(h, greedy(&chatml(FRANCE), 24)).await.unwrap();
    assert!(c.text.contains("Paris"), "{:?}", c.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerank_is_unsupported_without_a_rank_head() {
    let check = |r: Result<Vec<engine::RerankScore>, EngineError>, pooling: &str| match r {
        Err(EngineError::Unsupported { what, reason }) => {
            assert_eq!(what, "rerank");
            assert!(reason.contains(pooling), "{reason}");
            assert!(reason.contains("rank"), "{reason}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    };
    if let Some(h) = shared() {
        let r = h.rerank("query".into(), vec!["doc".into()]).await;
        check(r, "mean");
    }
    if let Some(path) = gemma() {
        let h = ModelHost::load(ModelParams::new(path), ctx(256, 1), |_| {}).unwrap();
        assert!(!h.info().can_rerank);
        check(
            h.rerank("q".into(), vec!["a".into(), "b".into()]).await,
            "mean",
        );
        // Gemma 3 still embeds (sliding-window model, mean pooling).
        let e = embed(&h, texts(&["The capital of France is Paris."]))
            .await
            .unwrap();
        assert_eq!(pooled(&e[0]).len(), h.info().n_embd as usize);
        h.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_may_fill_a_slot_context_but_not_more() {
    let Some(h) = load_smollm(ctx(128, 1)) else {
        return;
    };
    let h = &h;
    let n_ctx = h.info().n_ctx_slot;
    match embed(
        h,
        EmbedRequest {
            inputs: vec![Prompt::Tokens(vec![1000; n_ctx as usize + 1])],
            ..Default::default()
        },
    )
    .await
    {
        Err(EngineError::PromptTooLong { n_prompt, n_ctx: c }) => {
            assert_eq!((n_prompt, c), (n_ctx + 1, n_ctx));
        }
        other => panic!("expected PromptTooLong, got {other:?}"),
    }
    // A whole slot's context is fine.
    let full = embed(
        h,
        EmbedRequest {
            inputs: vec![Prompt::Tokens(vec![1000; n_ctx as usize])],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(full[0].n_tokens, n_ctx);
    h.shutdown().await;
}
