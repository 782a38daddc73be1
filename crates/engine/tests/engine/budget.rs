//! A thinking budget closes the thinking block after its tokens, with the message and the end
//! tag forced one token per step; a model that closes the block itself is left alone.

use crate::common::{chatml, greedy, run, shared};
use engine::{FinishReason, ThinkingBudget};

fn budget(tokens: u32, message: &str) -> ThinkingBudget {
    ThinkingBudget {
        tokens,
        start: "<think>".into(),
        end: "</think>".into(),
        message: message.into(),
        inside: true,
    }
}

#[tokio::test]
async fn the_block_is_closed_after_the_budget() {
    let Some(h) = shared() else { return };
    let prompt = chatml("Think about the number seven, then answer.") + "<think>\n";
    let mut req = greedy(&prompt, 40);
    req.ignore_eos = true;
    req.thinking_budget = Some(budget(5, " Enough."));
    let c = run(h, req).await.unwrap();
    let forced = h.tokenize(" Enough.</think>", false, true).await.unwrap();
    assert_eq!(
        &c.tokens[5..5 + forced.len()],
        &forced[..],
        "after 5 thinking tokens come the message and the end tag: {:?}",
        c.text
    );
    assert!(c.text.contains(" Enough.</think>"), "{:?}", c.text);
    assert_eq!(c.finish_reason, Some(FinishReason::Length));
    assert_eq!(c.tokens.len(), 40, "the answer goes on after the block");
}

#[tokio::test]
async fn without_an_open_block_nothing_is_forced() {
    let Some(h) = shared() else { return };
    let mut req = greedy(&chatml("Say hello."), 24);
    req.ignore_eos = true;
    req.thinking_budget = Some(ThinkingBudget {
        inside: false,
        ..budget(1, "")
    });
    let c = run(h, req).await.unwrap();
    assert!(!c.text.contains("</think>"), "{:?}", c.text);
}

#[tokio::test]
async fn an_oversized_message_is_refused_before_queueing() {
    let Some(h) = shared() else { return };
    let mut req = greedy(&chatml("Hi"), 4);
    req.thinking_budget = Some(budget(5, &"x".repeat(5000)));
    let err = h.generate(req).await.err().expect("refused");
    assert!(
        err.to_string().contains("reasoning_budget_message"),
        "{err}"
    );
}
