//! Deep grammars: refused above the caps before llama.cpp parses them (its parser and
//! stack advance recurse and would overflow the stack, aborting the process), and accepted
//! at the deepest the engine allows, parsed and sampled without a crash whatever thread
//! asks (a tokio test thread has a small stack).

use engine::{Caps, EngineError, Grammar, Limit, MAX_GRAMMAR_DEPTH};

use crate::common::*;

/// `root ::= ((…"a"…))` with `levels` groups: `levels + 1` deep.
fn nested(levels: usize) -> String {
    format!("root ::= {}\"a\"{}", "(".repeat(levels), ")".repeat(levels))
}

/// `root ::= r0`, `r0 ::= r1`, …: `rules + 1` deep.
fn chain(rules: usize) -> String {
    let mut g = String::from("root ::= r0\n");
    for i in 0..rules - 1 {
        g.push_str(&format!("r{i} ::= r{}\n", i + 1));
    }
    g.push_str(&format!("r{} ::= \"a\"\n", rules - 1));
    g
}

async fn with_grammar(g: Grammar, caps: Caps) -> Result<String, EngineError> {
    let h = shared().expect("checked by the caller");
    let mut req = greedy(&chatml("Say a."), 3);
    req.grammar = Some(g);
    req.caps = caps;
    run(h, req).await.map(|c| c.text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attack_grammars_are_refused_before_llama_cpp() {
    if shared().is_none() {
        return;
    }
    match with_grammar(Grammar::Gbnf(nested(30_000)), Caps::default()).await {
        Err(EngineError::OverLimit {
            limit: Limit::GrammarDepth,
            max,
            ..
        }) => assert_eq!(max, u64::from(MAX_GRAMMAR_DEPTH)),
        other => panic!("expected OverLimit, got {other:?}"),
    }
    let rules = Caps {
        grammar_rules: 4096,
        ..Caps::default()
    };
    match with_grammar(Grammar::Gbnf(chain(10_000)), rules).await {
        Err(EngineError::OverLimit {
            limit: Limit::GrammarRules,
            value: 10_001,
            max: 4096,
        }) => {}
        other => panic!("expected OverLimit, got {other:?}"),
    }
    // A caller's smaller cap wins.
    let small = Caps {
        grammar_depth: 8,
        ..Caps::default()
    };
    assert!(matches!(
        with_grammar(Grammar::Gbnf(nested(8)), small).await,
        Err(EngineError::OverLimit {
            limit: Limit::GrammarDepth,
            value: 9,
            max: 8
        })
    ));
    let mut schema = serde_json::json!({"type": "string"});
    for _ in 0..20 {
        schema = serde_json::json!({"type": "array", "items": schema});
    }
    assert!(matches!(
        with_grammar(Grammar::JsonSchema(schema), small).await,
        Err(EngineError::OverLimit {
            limit: Limit::GrammarDepth,
            ..
        })
    ));
    still_works().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grammars_at_the_deepest_allowed_are_parsed_and_sampled() {
    if shared().is_none() {
        return;
    }
    let deepest = MAX_GRAMMAR_DEPTH as usize;
    for g in [nested(deepest - 1), chain(deepest - 1)] {
        let text = with_grammar(Grammar::Gbnf(g), Caps::default())
            .await
            .unwrap();
        assert_eq!(text, "a");
    }
    still_works().await;
}

async fn still_works() {
    let h = shared().unwrap();
    let c = run(h, greedy(&chatml(FRANCE), 24)).await.unwrap();
    assert!(c.text.contains("Paris"), "{:?}", c.text);
}
