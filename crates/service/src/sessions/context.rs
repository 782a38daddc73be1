//! The context policy for a session: which messages of the branch a model is sent. The
//! system prompt always; then the branch's latest messages as [`crate::fit`] chooses them
//! (at most `sessions.max_history_messages`, no more than fit the model's context with room
//! for the answer). What is left out is reported with the answer, never a context overflow
//! error.

use super::Message;
use super::send::Runner;
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

/// The messages of `history` (ending with the message to answer) that `model` is sent, with
/// the session's system prompt: see [`crate::fit::fit`].
pub async fn fit(
    runner: &dyn Runner,
    model: &str,
    system: Option<&str>,
    history: &[Message],
    max_history: usize,
    max_tokens: Option<u32>,
) -> Result<Fitted, ServiceError> {
    let window = crate::fit::fit(
        "message",
        history.iter().map(|m| m.role.as_str()),
        max_history,
        max_tokens,
        model,
        |from| {
            let chat = crate::ChatInput {
                messages: chat_of(system, history, from),
                ..Default::default()
            };
            runner.measure(model, chat)
        },
    )
    .await?;
    let from = window.from;
    Ok(Fitted {
        messages: chat_of(system, history, from),
        left_out: history[..from].iter().map(|m| m.id).collect(),
        prompt_tokens: window.measure.tokens,
    })
}
