//! Thinking models, for every protocol: what a chat request wants (the request's own
//! [`Thinking`]: OpenAI's `reasoning_format`/`reasoning_effort`, and later Ollama's `think` and
//! Anthropic's `thinking`), the server's defaults (`[reasoning]`, llama-server's
//! `--reasoning-format`, `--reasoning`, `--reasoning-budget`), and the `enable_thinking` the
//! template is rendered with. The tags and the splitting are the chat crate's
//! ([`chat::ThinkingTags`], [`chat::ReasoningSplitter`]).

use crate::error::ServiceError;
use crate::generate::ChatInput;
use chat::ReasoningFormat;
use serde_json::Value;

/// A request's own say on thinking; `None` leaves it to the server's defaults and the
/// template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Thinking {
    /// Think or not. Wins over `chat_template_kwargs.enable_thinking` (as llama-server's
    /// `reasoning_effort: "none"` does).
    pub enabled: Option<bool>,
    /// How the thoughts are returned.
    pub format: Option<ReasoningFormat>,
    /// Tokens the thinking block may have before it is closed for the model (llama-server's
    /// `reasoning_budget_tokens`; a budget of 0 is `enabled: Some(false)`).
    pub budget: Option<u32>,
    /// Written before the end tag when the budget closes the block.
    pub budget_message: Option<String>,
}

impl Thinking {
    /// A request's `reasoning_budget_tokens`: -1 leaves the server's, 0 turns thinking off.
    pub fn set_budget(&mut self, tokens: i64) -> Result<(), ServiceError> {
        match tokens {
            -1 => {}
            0 => self.enabled = Some(false),
            n if n > 0 => self.budget = Some(u32::try_from(n).unwrap_or(u32::MAX)),
            _ => {
                return Err(ServiceError::invalid(
                    "reasoning_budget_tokens",
                    "must be -1 (no limit), 0 (no thinking) or a number of tokens",
                ));
            }
        }
        Ok(())
    }
}

/// The server's defaults from `[reasoning]`. [`crate::Models`] holds them and hands them to
/// every render with the model's [`crate::TemplateChoice`], so every chat prompt (any
/// protocol, `/apply-template`, token counts, the CLI) gets them, and no caller applies them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ReasoningDefaults {
    pub format: ReasoningFormat,
    /// `Some` for `on`/`off` (and `budget = 0`, which is off); `None` = auto: thinking on for
    /// templates that support it.
    pub thinking: Option<bool>,
    /// `budget` above 0: the thinking block is closed after that many tokens.
    pub budget: Option<u32>,
    pub budget_message: String,
}

impl ReasoningDefaults {
    pub fn from_config(c: &config::ReasoningConfig) -> Self {
        let thinking = match c.thinking.as_str() {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        };
        ReasoningDefaults {
            // The config crate checked the word.
            format: ReasoningFormat::from_name(&c.format).unwrap_or_default(),
            thinking: if c.budget == 0 { Some(false) } else { thinking },
            budget: u32::try_from(c.budget).ok().filter(|&n| n > 0),
            budget_message: c.budget_message.clone(),
        }
    }

    /// Fills in what the request left open, as llama-server does: the default thinking
    /// switch is a default `enable_thinking` template argument, which the request's
    /// `chat_template_kwargs` override.
    pub(crate) fn apply(&self, chat: &mut ChatInput) {
        if chat.thinking.format.is_none() {
            chat.thinking.format = Some(self.format);
        }
        if chat.thinking.budget.is_none() {
            chat.thinking.budget = self.budget;
        }
        if chat.thinking.budget_message.is_none() {
            chat.thinking.budget_message = Some(self.budget_message.clone());
        }
        if let Some(on) = self.thinking {
            chat.template_kwargs
                .entry("enable_thinking")
                .or_insert(Value::Bool(on));
        }
    }
}

/// Whether the model is to think for this request: the request's own switch, else
/// `chat_template_kwargs.enable_thinking`, else whether the template supports thinking.
pub(crate) fn enable_thinking(
    chat: &ChatInput,
    template_supports: bool,
) -> Result<bool, ServiceError> {
    if let Some(on) = chat.thinking.enabled {
        return Ok(on);
    }
    match chat.template_kwargs.get("enable_thinking") {
        Some(Value::Bool(on)) => Ok(*on),
        Some(Value::String(_)) => Err(ServiceError::invalid(
            "chat_template_kwargs.enable_thinking",
            "invalid type for \"enable_thinking\" (expected boolean, got string)",
        )),
        _ => Ok(template_supports),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chat(kwargs: Value, enabled: Option<bool>) -> ChatInput {
        ChatInput {
            template_kwargs: kwargs.as_object().cloned().unwrap_or_default(),
            thinking: Thinking {
                enabled,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_request_then_its_kwargs_then_the_template_decide() {
        assert!(enable_thinking(&chat(json!({}), None), true).unwrap());
        assert!(!enable_thinking(&chat(json!({}), None), false).unwrap());
        assert!(!enable_thinking(&chat(json!({"enable_thinking": false}), None), true).unwrap());
        assert!(enable_thinking(&chat(json!({"enable_thinking": true}), None), false).unwrap());
        assert!(
            !enable_thinking(&chat(json!({"enable_thinking": true}), Some(false)), true).unwrap()
        );
        let err =
            enable_thinking(&chat(json!({"enable_thinking": "false"}), None), true).unwrap_err();
        assert_eq!(err.param(), Some("chat_template_kwargs.enable_thinking"));
    }

    #[test]
    fn server_defaults_are_default_template_arguments() {
        let mut c = config::ReasoningConfig {
            thinking: "off".into(),
            ..Default::default()
        };
        let off = ReasoningDefaults::from_config(&c);
        let mut input = chat(json!({}), None);
        off.apply(&mut input);
        assert_eq!(input.template_kwargs["enable_thinking"], json!(false));
        assert_eq!(input.thinking.format, Some(ReasoningFormat::Auto));
        // The request's own kwargs win.
        let mut input = chat(json!({"enable_thinking": true}), None);
        off.apply(&mut input);
        assert_eq!(input.template_kwargs["enable_thinking"], json!(true));

        c.thinking = "auto".into();
        c.format = "none".into();
        let auto = ReasoningDefaults::from_config(&c);
        let mut input = chat(json!({}), None);
        auto.apply(&mut input);
        assert!(!input.template_kwargs.contains_key("enable_thinking"));
        assert_eq!(input.thinking.format, Some(ReasoningFormat::None));

        c.budget = 0;
        assert_eq!(ReasoningDefaults::from_config(&c).thinking, Some(false));
    }

    #[test]
    fn a_budget_is_the_requests_else_the_servers() {
        let c = config::ReasoningConfig {
            budget: 256,
            budget_message: "Time is up.".into(),
            ..Default::default()
        };
        let d = ReasoningDefaults::from_config(&c);
        assert_eq!((d.budget, d.thinking), (Some(256), None));
        let mut input = chat(json!({}), None);
        d.apply(&mut input);
        assert_eq!(input.thinking.budget, Some(256));
        assert_eq!(
            input.thinking.budget_message.as_deref(),
            Some("Time is up.")
        );

        let mut input = chat(json!({}), None);
        input.thinking.set_budget(16).unwrap();
        d.apply(&mut input);
        assert_eq!(input.thinking.budget, Some(16));
        let mut off = Thinking::default();
        off.set_budget(0).unwrap();
        assert_eq!((off.enabled, off.budget), (Some(false), None));
        let mut unset = Thinking::default();
        unset.set_budget(-1).unwrap();
        assert_eq!(unset, Thinking::default());
        assert!(Thinking::default().set_budget(-5).is_err());
    }
}
