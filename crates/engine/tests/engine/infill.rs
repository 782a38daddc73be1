//! Fill-in-the-middle prompts: refused on models without FIM tokens, generated on one
//! that has them (a copy of SmolLM2 whose metadata names three of its special tokens as
//! FIM prefix / suffix / middle: neither test model has real ones).

use engine::{
    EngineError, FinishReason, GenerateRequest, InfillChunk, InfillPrompt, ModelHandle, ModelHost,
    ModelParams, Prompt, SamplingParams,
};

use crate::common::*;

// SmolLM2's <jupyter_start>, <jupyter_text>, <jupyter_code>, <reponame>, <file_sep>.
const PRE: i32 = 11;
const SUF: i32 = 12;
const MID: i32 = 13;
const REP: i32 = 4;
const SEP: i32 = 5;

fn infill_request(p: InfillPrompt, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        max_tokens: Some(max_tokens),
        sampling: SamplingParams::greedy(),
        cache_prompt: false,
        ..GenerateRequest::new(Prompt::Infill(p))
    }
}

fn sample_prompt() -> InfillPrompt {
    InfillPrompt {
        input_prefix: "def add(a, b):\n    ".into(),
        input_suffix: "\n\nprint(add(1, 2))\n".into(),
        input_extra: vec![InfillChunk {
            filename: "util.py".into(),
            text: "def sub(a, b):\n    return a - b\n".into(),
        }],
        prompt: "return".into(),
    }
}

async fn expect_unsupported(h: &ModelHandle) {
    assert!(!h.info().has_fim);
    match h.generate(infill_request(sample_prompt(), 4)).await {
        Err(e @ EngineError::Unsupported { .. }) => {
            assert!(e.is_client_error());
            let EngineError::Unsupported { what, reason } = &e else {
                unreachable!()
            };
            assert_eq!(what, "infill");
            assert!(reason.contains("fill-in-the-middle"), "{reason}");
            eprintln!("{e}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infill_is_refused_without_fim_tokens() {
    if let Some(h) = shared() {
        expect_unsupported(h).await;
        // The model keeps serving.
        let c = run(h, greedy(&chatml(FRANCE), 24)).await.unwrap();
        assert!(c.text.contains("Paris"));
    }
    if let Some(path) = gemma() {
        let h = ModelHost::load(ModelParams::new(path), ctx(256, 1), |_| {}).unwrap();
        expect_unsupported(&h).await;
        h.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infill_prompt_is_built_like_llama_server_and_generates() {
    let Some(src) = smollm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smollm2-fim.gguf");
    copy_with_metadata(
        &src,
        &path,
        &[
            (
                "tokenizer.ggml.fim_pre_token_id",
                gguf::Value::U32(PRE as u32),
            ),
            (
                "tokenizer.ggml.fim_suf_token_id",
                gguf::Value::U32(SUF as u32),
            ),
            (
                "tokenizer.ggml.fim_mid_token_id",
                gguf::Value::U32(MID as u32),
            ),
            (
                "tokenizer.ggml.fim_sep_token_id",
                gguf::Value::U32(SEP as u32),
            ),
        ],
    )
    .unwrap();
    let h = ModelHost::load(ModelParams::new(&path), ctx(1024, 1), |_| {}).unwrap();
    assert!(h.info().has_fim);

    let p = sample_prompt();
    let c = run(&h, infill_request(p.clone(), 8)).await.unwrap();
    assert!(
        matches!(
            c.finish_reason,
            Some(FinishReason::Length | FinishReason::Stop)
        ),
        "{c:?}"
    );
    assert!(c.usage.completion_tokens >= 1);

    // The same prompt written out by hand: the repo-level pattern (no BOS: SmolLM2 adds
    // none), all extra context kept (1024 - 512 - 2 * 8 tokens of room).
    let t = |s: String| {
        let h = h.clone();
        async move { h.tokenize(&s, false, false).await.unwrap() }
    };
    let mut expected = vec![REP];
    expected.extend(t("myproject\n".into()).await);
    expected.push(SEP);
    expected.extend(t("util.py\n".into()).await);
    expected.extend(t(p.input_extra[0].text.clone()).await);
    expected.push(SEP);
    expected.extend(t("filename\n".into()).await);
    expected.push(PRE);
    expected.extend(t(p.input_prefix.clone()).await);
    expected.extend(h.tokenize(&p.prompt, false, true).await.unwrap());
    expected.push(SUF);
    expected.extend(t(p.input_suffix.clone()).await);
    expected.push(MID);
    assert_eq!(c.usage.prompt_tokens as usize, expected.len());
    let by_hand = run(
        &h,
        GenerateRequest {
            prompt: Prompt::Tokens(expected),
            ..infill_request(p, 8)
        },
    )
    .await
    .unwrap();
    assert_eq!(by_hand.tokens, c.tokens);
    assert_eq!(by_hand.text, c.text);
    eprintln!("infill: {:?} ({:?})", c.text, c.finish_reason);
    h.shutdown().await;
}
