//! Answers, finish reasons, stop strings, grammars, probabilities, the second model.

use engine::{
    ContextParams, Event, FinishReason, GenerateRequest, Grammar, ModelHost, ModelParams,
    OnContextFull, Prompt, SamplingParams,
};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greedy_answer_contains_paris() {
    let Some(h) = shared() else { return };
    let c = run(h, greedy(&chatml(FRANCE), 32)).await.unwrap();
    assert!(c.text.contains("Paris"), "answer: {:?}", c.text);
    assert_eq!(c.finish_reason, Some(FinishReason::Stop), "{c:?}");
    assert!(c.usage.prompt_tokens > 10);
    assert_eq!(c.usage.completion_tokens, c.timings.predicted_n);
    assert!(c.timings.predicted_per_second > 0.0);
    assert_eq!(
        c.timings.prompt_n + c.timings.cache_n,
        c.usage.prompt_tokens,
        "{:?}",
        c.timings
    );
    let info = h.info();
    assert_eq!(info.architecture, "llama");
    assert_eq!(info.n_slots, 4);
    assert_eq!(info.n_ctx_slot, 1024);
    assert!(
        info.chat_template
            .as_deref()
            .unwrap_or("")
            .contains("im_start")
    );
    assert!(!info.eog_tokens.is_empty());
    eprintln!(
        "SmolLM2 greedy: {} tokens at {:.1} tok/s, prompt {} tokens at {:.1} tok/s",
        c.timings.predicted_n,
        c.timings.predicted_per_second,
        c.timings.prompt_n,
        c.timings.prompt_per_second
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tokens_finishes_with_length() {
    let Some(h) = shared() else { return };
    let mut req = greedy(&chatml("Count from one to one hundred in words."), 5);
    req.ignore_eos = true;
    let c = run(h, req).await.unwrap();
    assert_eq!(c.finish_reason, Some(FinishReason::Length));
    assert_eq!(c.usage.completion_tokens, 5);
    assert_eq!(c.tokens.len(), 5);

    let mut zero = greedy(&chatml(FRANCE), 0);
    zero.max_tokens = Some(0);
    let c = run(h, zero).await.unwrap();
    assert_eq!(c.finish_reason, Some(FinishReason::Length));
    assert_eq!(c.usage.completion_tokens, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_string_split_across_tokens() {
    // Own single-slot host without prompt caching, so both runs compute identically.
    let Some(h) = load_smollm(ctx(512, 1)) else {
        return;
    };
    let prompt = chatml("Tell me about the city of Paris in three sentences.");
    let mut req = greedy(&prompt, 40);
    req.cache_prompt = false;
    let reference = run(&h, req.clone()).await.unwrap();
    let pieces = h.token_pieces(&reference.tokens).await.unwrap();
    // A stop string made of the end of one token and the start of the next.
    let stop = pieces
        .windows(2)
        .skip(3)
        .find_map(|w| {
            let (a, b) = (&w[0].piece, &w[1].piece);
            (a.len() >= 2 && b.len() >= 2 && a.is_ascii() && b.is_ascii())
                .then(|| format!("{}{}", &a[a.len() - 2..], &b[..2]))
        })
        .expect("two ASCII tokens of 2+ bytes in the reference answer");
    // The stop string may occur earlier than at the chosen boundary.
    let first = reference.text.find(&stop).expect("stop in reference");

    req.stop = vec!["never-appears-xyz".into(), stop.clone()];
    let mut stream = h.generate(req).await.unwrap();
    let mut text = String::new();
    let reason = loop {
        match next(&mut stream).await {
            Event::Token { text: t, .. } => {
                text.push_str(&t);
                // Nothing of the stop string is ever shown.
                assert!(!text.contains(&stop), "stop leaked: {text:?}");
            }
            Event::Done { finish_reason, .. } => break finish_reason,
            Event::Error(e) => panic!("{e}"),
            Event::Progress(_) => panic!("progress was not asked for"),
        }
    };
    assert_eq!(reason, FinishReason::StopString(stop.clone()));
    assert_eq!(text, reference.text[..first], "stop {stop:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gbnf_grammar_constrains_output() {
    let Some(h) = shared() else { return };
    let mut req = greedy(&chatml("Is Paris in France? Answer yes or no."), 16);
    req.grammar = Some(Grammar::Gbnf(r#"root ::= ("yes" | "no") "." "#.into()));
    let c = run(h, req).await.unwrap();
    assert!(c.text == "yes." || c.text == "no.", "{:?}", c.text);
    assert_eq!(c.finish_reason, Some(FinishReason::Stop));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_schema_output_parses_as_json() {
    let Some(h) = shared() else { return };
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "city": {"type": "string", "enum": ["Paris", "London", "Berlin"]},
            "is_capital": {"type": "boolean"}
        },
        "required": ["city", "is_capital"]
    });
    let mut req = greedy(&chatml("Give the capital of France as JSON."), 64);
    req.grammar = Some(Grammar::JsonSchema(schema));
    let c = run(h, req).await.unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&c.text).unwrap_or_else(|e| panic!("{e}: {:?}", c.text));
    assert!(v["city"].is_string(), "{v}");
    assert!(v["is_capital"].is_boolean(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_probs_reports_sorted_log_probabilities() {
    let Some(h) = shared() else { return };
    let mut req = greedy(&chatml(FRANCE), 4);
    req.n_probs = 5;
    let c = run(h, req).await.unwrap();
    assert_eq!(c.probs.len(), c.tokens.len());
    for (p, &tok) in c.probs.iter().zip(&c.tokens) {
        assert_eq!(p.top.len(), 5);
        assert!(p.logprob <= 0.0);
        assert!(p.top.windows(2).all(|w| w[0].2 >= w[1].2));
        // Greedy: the chosen token is the most likely one.
        assert_eq!(p.top[0].0, tok);
        assert!((p.top[0].2 - p.logprob).abs() < 1e-4);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampled_generation_with_every_sampler_runs() {
    let Some(h) = shared() else { return };
    let mut req = greedy(&chatml("Write a haiku about the sea."), 24);
    req.sampling = SamplingParams {
        temperature: 0.9,
        top_n_sigma: 2.0,
        typical_p: 0.95,
        xtc_probability: 0.5,
        repeat_penalty: 1.1,
        presence_penalty: 0.2,
        frequency_penalty: 0.2,
        dry_multiplier: 0.8,
        seed: Some(42),
        logit_bias: vec![(0, -1.0)],
        ..Default::default()
    };
    let a = run(h, req.clone()).await.unwrap();
    assert!(!a.text.is_empty());
    for mirostat in [1, 2] {
        req.sampling.mirostat = mirostat;
        let c = run(h, req.clone()).await.unwrap();
        assert!(!c.tokens.is_empty(), "mirostat {mirostat}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multibyte_text_is_never_split() {
    let Some(h) = shared() else { return };
    let req = greedy(&chatml("Translate to Japanese: thank you very much"), 24);
    let c = run(h, req).await.unwrap();
    assert!(!c.text.contains('\u{FFFD}'), "{:?}", c.text);
    // Byte-level BPE splits these characters over tokens: they come out whole.
    assert!(!c.text.is_ascii(), "{:?}", c.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_full_stops_or_shifts() {
    let Some(path) = smollm() else { return };
    let small = |on_full| ContextParams {
        ctx_per_slot: 64,
        parallel: 1,
        threads: Some(1),
        on_context_full: on_full,
        ..Default::default()
    };
    let prompt = chatml("Tell me a long story about a dragon.");
    let stop =
        ModelHost::load(ModelParams::new(&path), small(OnContextFull::Stop), |_| {}).unwrap();
    let mut req = greedy(&prompt, 500);
    req.max_tokens = None;
    req.ignore_eos = true;
    let c = run(&stop, req.clone()).await.unwrap();
    assert_eq!(c.finish_reason, Some(FinishReason::Length));
    let n_prompt = c.usage.prompt_tokens;
    assert_eq!(c.usage.completion_tokens, 64 - n_prompt + 1, "{c:?}");

    let shift =
        ModelHost::load(ModelParams::new(&path), small(OnContextFull::Shift), |_| {}).unwrap();
    req.max_tokens = Some(150);
    let c = run(&shift, req).await.unwrap();
    assert_eq!(c.finish_reason, Some(FinishReason::Length));
    assert_eq!(c.usage.completion_tokens, 150);
    let slots = shift.slots().await.unwrap();
    assert!(slots[0].n_cached <= 64);
    stop.shutdown().await;
    shift.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemma3_base_model_generates() {
    let Some(path) = gemma() else { return };
    let h = ModelHost::load(ModelParams::new(path), ctx(1024, 2), |_| {}).unwrap();
    let info = h.info().clone();
    assert_eq!(info.architecture, "gemma3");
    assert!(info.n_swa > 0, "gemma3 uses a sliding window");
    let prompt = "The capital of France is";
    let c = run(&h, greedy(prompt, 8)).await.unwrap();
    assert!(!c.text.trim().is_empty());
    eprintln!("gemma3: {prompt}{}", c.text);
    // A second request with the same prefix reuses the cache (its text is not compared: a
    // cached prefix is another batch shape than the whole prompt).
    let d = run(&h, greedy(prompt, 8)).await.unwrap();
    assert!(!d.text.trim().is_empty());
    assert!(d.timings.cache_n > 0, "{:?}", d.timings);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokenize_round_trip() {
    let Some(h) = shared() else { return };
    let toks = h.tokenize("Hello world", false, false).await.unwrap();
    assert!(!toks.is_empty());
    assert_eq!(h.detokenize(&toks).await.unwrap(), "Hello world");
    let special = h.tokenize("<|im_start|>user", false, true).await.unwrap();
    let plain = h.tokenize("<|im_start|>user", false, false).await.unwrap();
    assert!(special.len() < plain.len());
    let pieces = h.token_pieces(&special).await.unwrap();
    assert_eq!(pieces[0].piece, "<|im_start|>");
    assert!(matches!(
        h.detokenize(&[-1]).await,
        Err(engine::EngineError::InvalidParameter { .. })
    ));
    assert!(h.detokenize(&[i32::MAX]).await.is_err());
    let _ = GenerateRequest::new(Prompt::Tokens(toks));
}
