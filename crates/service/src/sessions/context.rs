//! The context policy: which messages of the branch a model is sent. The system prompt
//! always; then the latest messages, at most `sessions.max_history_messages` and no more than
//! fit the model's context with room left for the answer. The window starts at a user
//! message (templates such as Gemma's refuse a conversation that opens with the assistant).
//! What is left out is reported with the answer, never a context overflow error.

use super::send::{Measure, Runner};
use super::Message;
use crate::error::ServiceError;
use chat::ChatMessage;

/// What a model is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub messages: Vec<ChatMessage>,
    /// Ids of the branch's messages left out (oldest first).
    pub left_out: Vec<i64>,
    /// The prompt's tokens as measured.
    pub prompt_tokens: usize,
}

/// Where the window may start: indices of user messages among the last `max` of `history`,
/// from the oldest (most kept) to the newest. `history` ends with the message to answer.
pub fn starts(history: &[Message], max: usize) -> Vec<usize> {
    let first = history.len().saturating_sub(max.max(1));
    let mut at: Vec<usize> = (first..history.len())
        .filter(|&i| history[i].role == "user")
        .collect();
    if at.is_empty() && !history.is_empty() {
        // No user message in the window (an imported branch): the last message alone.
        at.push(history.len() - 1);
    }
    at
}

/// Tokens kept free for the answer: the session's `max_tokens`, else a quarter of the
/// context.
pub fn reserve(max_tokens: Option<u32>, n_ctx: u32) -> u32 {
    max_tokens.unwrap_or(n_ctx / 4).min(n_ctx.saturating_sub(1))
}

fn chat_of(system: Option<&str>, history: &[Message], from: usize) -> Vec<ChatMessage> {
    system
        .filter(|s| !s.trim().is_empty())
        .map(|s| ChatMessage::new("system", s))
        .into_iter()
        .chain(
            history[from..]
                .iter()
                .map(|m| ChatMessage::new(m.role.clone(), m.content.clone())),
        )
        .collect()
}

/// The longest window of `history` (see [`starts`]) whose prompt, measured on `model` as
/// generation renders it, leaves `max_tokens` (or a quarter of the context) for the answer.
/// Binary search: fewer messages never make a longer prompt.
pub async fn fit(
    runner: &dyn Runner,
    model: &str,
    system: Option<&str>,
    history: &[Message],
    max_history: usize,
    max_tokens: Option<u32>,
) -> Result<Fitted, ServiceError> {
    let starts = starts(history, max_history);
    let measure = |from: usize| {
        let chat = crate::ChatInput {
            messages: chat_of(system, history, from),
            ..Default::default()
        };
        runner.measure(model, chat)
    };
    let fits = |m: &Measure| m.tokens as u64 + u64::from(reserve(max_tokens, m.n_ctx)) <= u64::from(m.n_ctx);
    // The newest window alone must fit, or nothing can be sent.
    let last = *starts
        .last()
        .ok_or_else(|| ServiceError::invalid("message", "nothing to send"))?;
    let smallest = measure(last).await?;
    if !fits(&smallest) {
        return Err(ServiceError::invalid(
            "message",
            format!(
                "the message alone is {} tokens of prompt, and model '{model}' has a context of \
                 {} tokens per slot with {} kept for the answer; shorten it, lower max_tokens \
                 or load the model with a larger context (models.ctx_size)",
                smallest.tokens,
                smallest.n_ctx,
                reserve(max_tokens, smallest.n_ctx)
            ),
        ));
    }
    // Invariant: starts[hi] fits; starts[..lo] do not.
    let (mut lo, mut hi) = (0, starts.len() - 1);
    let mut best = smallest.tokens;
    while lo < hi {
        let mid = (lo + hi) / 2;
        let m = measure(starts[mid]).await?;
        if fits(&m) {
            hi = mid;
            best = m.tokens;
        } else {
            lo = mid + 1;
        }
    }
    let from = starts[hi];
    Ok(Fitted {
        messages: chat_of(system, history, from),
        left_out: history[..from].iter().map(|m| m.id).collect(),
        prompt_tokens: best,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: i64, role: &str) -> Message {
        Message {
            id,
            parent_id: None,
            role: role.into(),
            content: String::new(),
            reasoning: None,
            model: None,
            prompt_tokens: None,
            completion_tokens: None,
            timings: None,
            finish_reason: None,
            left_out: None,
            created_at: 0,
        }
    }

    #[test]
    fn windows_start_at_user_messages_within_the_cap() {
        let h: Vec<_> = (0..7)
            .map(|i| msg(i, if i % 2 == 0 { "user" } else { "assistant" }))
            .collect();
        assert_eq!(starts(&h, 20), vec![0, 2, 4, 6]);
        // The last 4 messages are 3..=6; 3 is an answer, so the window starts at 4.
        assert_eq!(starts(&h, 4), vec![4, 6]);
        assert_eq!(starts(&h, 1), vec![6]);
        let only_answers = vec![msg(1, "assistant")];
        assert_eq!(starts(&only_answers, 20), vec![0]);
    }

    #[test]
    fn the_answer_keeps_a_quarter_of_the_context_unless_the_session_says() {
        assert_eq!(reserve(None, 512), 128);
        assert_eq!(reserve(Some(32), 512), 32);
        assert_eq!(reserve(Some(10_000), 512), 511);
    }
}
