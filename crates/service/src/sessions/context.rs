//! The context policy for a session: which messages of the branch a model is sent. The
//! system prompt always; then the branch's latest messages as [`crate::fit`] chooses them
//! (at most `sessions.max_history_messages`, no more than fit the model's context with room
//! for the answer). What is left out is reported with the answer, never a context overflow
//! error. Server tool calls and their results are messages of the branch like the others:
//! measured and sent back to the model, and a window starts at a user message, so a call is
//! never sent without its result (or a result without its call).

use super::Message;
use super::send::Runner;
use crate::error::ServiceError;
use chat::{ChatMessage, ToolCall};

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
    let sent = &history[from..];
    system
        .filter(|s| !s.trim().is_empty())
        .map(|s| ChatMessage::new("system", s))
        .into_iter()
        .chain(sent.iter().map(|m| chat_message(m, sent)))
        .collect()
}

/// A stored message as the model is sent it. An assistant turn keeps only the calls that
/// have a result among `sent` (a call stopped or interrupted while its tool ran has none, and
/// templates expect every call answered).
fn chat_message(m: &Message, sent: &[Message]) -> ChatMessage {
    match m.role.as_str() {
        "tool" => ChatMessage::tool(m.tool_call_id.clone().unwrap_or_default(), m.content.clone()),
        "assistant" => {
            let answered: Vec<ToolCall> = m
                .tool_calls
                .iter()
                .flatten()
                .filter(|c| {
                    sent.iter().any(|r| {
                        r.role == "tool" && r.parent_id.is_some() && r.tool_call_id.as_deref() == Some(&c.id)
                    })
                })
                .map(|c| ToolCall::new(c.id.clone(), c.name.clone(), c.arguments.clone()))
                .collect();
            if answered.is_empty() {
                ChatMessage::assistant(m.content.clone())
            } else {
                let mut out = ChatMessage::assistant_tool_calls(answered);
                if !m.content.is_empty() {
                    out.content = Some(m.content.clone().into());
                }
                out
            }
        }
        role => ChatMessage::new(role, m.content.clone()),
    }
}

/// The messages of `history` (ending with the message to answer) that `model` is sent, with
/// the session's system prompt: see [`crate::fit::fit`].
pub async fn fit(
    runner: &dyn Runner,
    model: &str,
    system: Option<&str>,
    history: &[Message],
    tools: &[chat::Tool],
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
            // Measured with the tools the model is shown: they are part of the prompt.
            let chat = crate::ChatInput {
                messages: chat_of(system, history, from),
                tools: tools.to_vec(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::ToolCallRecord;

    fn msg(id: i64, parent: Option<i64>, role: &str, content: &str) -> Message {
        Message {
            id,
            parent_id: parent,
            role: role.into(),
            content: content.into(),
            ..Default::default()
        }
    }

    fn call(id: &str) -> ToolCallRecord {
        ToolCallRecord {
            id: id.into(),
            name: "t_x".into(),
            arguments: "{}".into(),
        }
    }

    /// Calls and results reach the model as OpenAI's assistant `tool_calls` and `tool`
    /// messages; a call with no result (stopped or interrupted while its tool ran) is left
    /// off its turn, whose text stays.
    #[test]
    fn tool_turns_are_sent_as_calls_and_results_and_unanswered_calls_are_dropped() {
        let mut asked = msg(2, Some(1), "assistant", "Let me look.");
        asked.tool_calls = Some(vec![call("c1"), call("c2")]);
        let mut result = msg(3, Some(2), "tool", "42");
        result.tool_call_id = Some("c1".into());
        let history = vec![
            msg(1, None, "user", "q"),
            asked,
            result,
            msg(4, Some(3), "assistant", "It is 42."),
            msg(5, Some(4), "user", "again"),
        ];
        let chat = chat_of(Some("sys"), &history, 0);
        assert_eq!(chat.len(), 6);
        assert_eq!(chat[0].role, "system");
        let calls: Vec<&str> = chat[2].tool_calls.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(calls, ["c1"], "c2 has no result");
        assert_eq!(chat[2].text(), "Let me look.");
        assert_eq!(chat[3].role, "tool");
        assert_eq!(chat[3].tool_call_id.as_deref(), Some("c1"));
        assert_eq!(chat[3].text(), "42");
        // A turn whose only call has no result is plain text.
        let mut lone = msg(2, Some(1), "assistant", "");
        lone.tool_calls = Some(vec![call("c9")]);
        let chat = chat_of(None, &[msg(1, None, "user", "q"), lone, msg(3, Some(2), "user", "r")], 0);
        assert!(chat[1].tool_calls.is_empty());
    }
}
