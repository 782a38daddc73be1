//! Which message roles each protocol accepts: the one place that knows them.
//!
//! OpenAI refuses a role outside its set with 400 and
//! `Invalid value: 'wizard'. Supported values are: 'system', 'assistant', 'user', 'function',
//! 'tool', and 'developer'.` (param `messages[0].role`); [`Roles::check`] answers in the same
//! words. llama-server's own routes (`/apply-template`) take any role, because templates
//! know roles OpenAI does not (Llama 3.1's `ipython`), so they are not checked here.

/// A protocol's set of message roles, in the order its error message lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles(&'static [&'static str]);

impl Roles {
    /// OpenAI's Chat Completions `messages[].role`.
    pub const OPENAI_CHAT: Roles = Roles(&[
        "system",
        "assistant",
        "user",
        "function",
        "tool",
        "developer",
    ]);

    /// OpenAI's Responses API: the role of a `message` input item (tool results are items
    /// of their own type, `function_call_output`).
    pub const OPENAI_RESPONSES: Roles = Roles(&["user", "assistant", "system", "developer"]);

    /// Anthropic's Messages API: the system prompt is a field of its own and tool results
    /// are blocks of a user message.
    pub const ANTHROPIC: Roles = Roles(&["user", "assistant"]);

    /// Ollama's `/api/chat` (tool results are `tool` messages with a `tool_name`).
    pub const OLLAMA: Roles = Roles(&["system", "user", "assistant", "tool"]);

    pub fn contains(&self, role: &str) -> bool {
        self.0.contains(&role)
    }

    /// `Ok` for a role of this set; otherwise OpenAI's message for an invalid value.
    pub fn check(&self, role: &str) -> Result<(), String> {
        if self.contains(role) {
            return Ok(());
        }
        let quoted: Vec<String> = self.0.iter().map(|r| format!("'{r}'")).collect();
        let listed = match quoted.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{}, and {last}", rest.join(", ")),
            _ => quoted.join(""),
        };
        Err(format!(
            "Invalid value: '{role}'. Supported values are: {listed}."
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_wording() {
        assert_eq!(
            Roles::OPENAI_CHAT.check("wizard").unwrap_err(),
            "Invalid value: 'wizard'. Supported values are: 'system', 'assistant', 'user', \
             'function', 'tool', and 'developer'."
        );
        for role in [
            "system",
            "developer",
            "user",
            "assistant",
            "tool",
            "function",
        ] {
            assert!(Roles::OPENAI_CHAT.check(role).is_ok(), "{role}");
        }
        // Roles are case-sensitive at OpenAI too.
        assert!(Roles::OPENAI_CHAT.check("User").is_err());
        assert!(Roles::OPENAI_RESPONSES.check("tool").is_err());
        assert!(Roles::OPENAI_RESPONSES.check("developer").is_ok());
        assert!(Roles::ANTHROPIC.check("system").is_err());
        assert!(Roles::ANTHROPIC.check("assistant").is_ok());
    }
}
