//! Typed errors for bad files and bad requests, and the model keeps serving afterwards.

use std::io::{Read, Write};

use engine::{
    ContextParams, EngineError, GenerateRequest, Grammar, ModelHost, ModelParams, Prompt,
    SamplingParams,
};
use gguf::fixtures::LlamaLike;

use crate::common::*;

fn load_err(path: &std::path::Path) -> EngineError {
    ModelHost::load(ModelParams::new(path), ContextParams::default(), |_| {})
        .expect_err("load must fail")
}

async fn still_serves() {
    if let Some(h) = shared() {
        let c = run(h, greedy(&chatml(FRANCE), 24)).await.unwrap();
        assert!(c.text.contains("Paris"), "{:?}", c.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_are_typed_errors_and_others_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    // Make sure a model is loaded before the failures.
    still_serves().await;

    let missing = dir.path().join("missing.gguf");
    assert!(matches!(load_err(&missing), EngineError::ModelNotFound(p) if p == missing));
    assert!(matches!(
        load_err(dir.path()),
        EngineError::ModelNotFound(_)
    ));

    let text = dir.path().join("notes.gguf");
    std::fs::write(&text, "these are my notes, not a model\n".repeat(100)).unwrap();
    assert!(matches!(load_err(&text), EngineError::NotGguf { .. }));

    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(load_err(&empty), EngineError::NotGguf { .. }));

    // An architecture llama.cpp does not know (a complete, well-formed file).
    let mut alien = LlamaLike::new("Alien", "frobnicator", 1, 2048, 300);
    alien.n_embd = 32;
    alien.n_ff = 64;
    alien.n_layer = 1;
    alien.with_tensor_data = true;
    let alien_path = dir.path().join("alien.gguf");
    alien.write_path(&alien_path).unwrap();
    match load_err(&alien_path) {
        EngineError::UnsupportedArchitecture { architecture } => {
            assert_eq!(architecture, "frobnicator")
        }
        other => panic!("expected UnsupportedArchitecture, got {other:?}"),
    }

    if let Some(real) = smollm() {
        // The real model cut short (an interrupted download).
        let truncated = dir.path().join("truncated.gguf");
        let mut head = vec![0u8; 4 << 20];
        let n = std::fs::File::open(&real).unwrap().read(&mut head).unwrap();
        std::fs::File::create(&truncated)
            .unwrap()
            .write_all(&head[..n])
            .unwrap();
        match load_err(&truncated) {
            EngineError::NotGguf { reason, .. } => {
                assert!(reason.contains("truncated"), "{reason}")
            }
            other => panic!("expected NotGguf, got {other:?}"),
        }

        // A context far too large for this machine.
        let huge = ContextParams {
            ctx_per_slot: 1 << 30,
            parallel: 1,
            ..Default::default()
        };
        match ModelHost::load(ModelParams::new(&real), huge, |_| {}) {
            Err(EngineError::ContextTooLarge { .. }) => {}
            other => panic!("expected ContextTooLarge, got {other:?}"),
        }

        // Invalid load parameters name the field.
        let bad = ContextParams {
            cache_type_k: "q3_x".into(),
            ..Default::default()
        };
        match ModelHost::load(ModelParams::new(&real), bad, |_| {}) {
            Err(EngineError::InvalidParameter { name, .. }) => assert_eq!(name, "cache_type_k"),
            other => panic!("expected InvalidParameter, got {other:?}"),
        }

        // Load progress goes from 0 to 1.
        let seen = std::sync::Mutex::new(Vec::new());
        let h = ModelHost::load(ModelParams::new(&real), ctx(256, 1), |p| {
            seen.lock().unwrap().push(p)
        })
        .unwrap();
        let seen = seen.into_inner().unwrap();
        assert!(seen.len() >= 2, "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        assert_eq!(*seen.last().unwrap(), 1.0);
        let mem = &h.info().memory;
        let (est, real_size) = (mem.estimate.weights_bytes as f64, mem.model_bytes as f64);
        assert!((est - real_size).abs() / real_size < 0.05, "{mem:?}");
        eprintln!("memory: {mem:?}");
        h.shutdown().await;
        // After shutdown the handle refuses work.
        assert!(matches!(
            h.generate(greedy("x", 1)).await,
            Err(EngineError::Shutdown)
        ));
    }
    still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_longer_than_the_slot_is_refused() {
    let Some(h) = shared() else { return };
    let n_ctx = h.info().n_ctx_slot;
    let tokens = vec![1000; n_ctx as usize + 10];
    match h
        .generate(GenerateRequest::new(Prompt::Tokens(tokens)))
        .await
    {
        Err(EngineError::PromptTooLong { n_prompt, n_ctx: c }) => {
            assert_eq!(n_prompt, n_ctx + 10);
            assert_eq!(c, n_ctx);
        }
        other => panic!("expected PromptTooLong, got {other:?}"),
    }
    let text = "word ".repeat(n_ctx as usize * 2);
    assert!(matches!(
        h.generate(greedy(&text, 4)).await,
        Err(EngineError::PromptTooLong { .. })
    ));
    still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_are_typed_errors() {
    let Some(h) = shared() else { return };
    let base = greedy(&chatml(FRANCE), 8);
    let expect_param = |r: Result<engine::EventStream, EngineError>, field: &str| match r {
        Err(EngineError::InvalidParameter { name, .. }) => assert_eq!(name, field),
        other => panic!("expected InvalidParameter({field}), got {other:?}"),
    };
    let with = |f: &dyn Fn(&mut SamplingParams)| {
        let mut r = base.clone();
        f(&mut r.sampling);
        r
    };
    expect_param(
        h.generate(with(&|s| s.temperature = f32::NAN)).await,
        "temperature",
    );
    expect_param(
        h.generate(with(&|s| s.temperature = -1.0)).await,
        "temperature",
    );
    expect_param(h.generate(with(&|s| s.top_p = 1.5)).await, "top_p");
    expect_param(h.generate(with(&|s| s.min_p = -0.1)).await, "min_p");
    expect_param(h.generate(with(&|s| s.mirostat = 7)).await, "mirostat");
    expect_param(
        h.generate(with(&|s| s.logit_bias = vec![(10_000_000, 1.0)]))
            .await,
        "logit_bias",
    );
    let mut r = base.clone();
    r.n_probs = 10_000;
    expect_param(h.generate(r).await, "n_probs");
    let mut r = base.clone();
    r.prompt = Prompt::Tokens(vec![5, -3]);
    expect_param(h.generate(r).await, "prompt");
    let mut r = base.clone();
    r.prompt = Prompt::Tokens(vec![]);
    expect_param(h.generate(r).await, "prompt");
    let mut r = base.clone();
    r.id_slot = Some(99);
    expect_param(h.generate(r).await, "id_slot");
    still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grammars_are_errors_not_aborts() {
    let Some(h) = shared() else { return };
    let broken = [
        "",
        "root ::=",
        "root ::= \"unterminated",
        "root ::= [a-",
        "root ::= missing-rule",
        "root ::= root \"a\"",
        "root ::= ( \"a\" ",
        "root ::= \"a\"{2,1}",
        "root ::= \"a\"{99999999999}",
        "rot ::= \"a\"",
        "root ::= <[99999999]>",
        "root ::= \"\\x\"",
        "root ::= [\\u12]",
        "root \"a\"",
        "root ::= \"a\" |",
        "root ::= ()*",
        "root ::= \"a\"\0",
    ];
    for g in broken {
        let mut req = greedy(&chatml(FRANCE), 4);
        req.grammar = Some(Grammar::Gbnf(g.into()));
        match h.generate(req).await {
            Err(EngineError::InvalidGrammar(msg)) => eprintln!("{g:?}: {msg}"),
            // A few odd inputs are valid GBNF; they must then run to completion.
            Ok(s) => {
                let r = s.collect().await;
                eprintln!("{g:?}: accepted -> {r:?}");
            }
            Err(other) => panic!("grammar {g:?}: expected InvalidGrammar, got {other:?}"),
        }
    }
    for schema in [
        serde_json::json!({"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}}),
        serde_json::json!({"type": 42}),
        serde_json::json!("not a schema"),
        serde_json::json!({"type": "array", "minItems": 5, "maxItems": 2}),
        serde_json::json!({"type": "string", "minLength": 100000000}),
    ] {
        let mut req = greedy(&chatml(FRANCE), 4);
        req.grammar = Some(Grammar::JsonSchema(schema.clone()));
        match h.generate(req).await {
            Err(EngineError::InvalidGrammar(msg)) => eprintln!("{schema}: {msg}"),
            Ok(s) => {
                let r = s.collect().await;
                eprintln!("{schema}: accepted -> {r:?}");
            }
            Err(other) => panic!("schema {schema}: expected InvalidGrammar, got {other:?}"),
        }
    }
    still_serves().await;
}
