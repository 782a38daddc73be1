//! Errors of chat-template compilation and rendering.
//!
//! The messages are shown to API users as they are, so they say what went
//! wrong in words a person who sent a chat request can act on.

/// Why a chat template could not be compiled or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template source is not valid Jinja.
    #[error("the chat template has a syntax error{}: {message}", line_suffix(*line))]
    Syntax {
        message: String,
        /// 1-based line in the template source, when known.
        line: Option<usize>,
    },
    /// The template itself refused the conversation with `raise_exception(...)`,
    /// e.g. "Conversation roles must alternate user/assistant/user/assistant/...".
    #[error("the model's chat template rejected the conversation: {0}")]
    Raised(String),
    /// Rendering failed for another reason (a value of the wrong type, an
    /// unknown filter, ...).
    #[error("the chat template failed to render: {0}")]
    Render(String),
}

fn line_suffix(line: Option<usize>) -> String {
    line.map(|line| format!(" on line {line}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_readable() {
        let syntax = TemplateError::Syntax {
            message: "unexpected end of input".into(),
            line: Some(3),
        };
        assert_eq!(
            syntax.to_string(),
            "the chat template has a syntax error on line 3: unexpected end of input"
        );
        assert_eq!(
            TemplateError::Raised("System role not supported".into()).to_string(),
            "the model's chat template rejected the conversation: System role not supported"
        );
    }
}
