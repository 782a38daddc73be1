//! Turning a conversation into a prompt for a loaded model: pick its chat template (the
//! user's custom one, the GGUF's own, or our built-in for its family), render it, and know
//! how that model writes tool calls.

use crate::reasoning::ReasoningDefaults;
use chat::{
    ChatMessage, ChatTemplate, Family, RenderContext, TemplateError, TemplateOrigin, ThinkingTags,
    Tool, ToolCallFormat,
};
use engine::{ModelHandle, ModelInfo, Prompt};
use std::collections::HashMap;

/// Which of the marker tokens family detection asks about are single tokens in a model's
/// vocabulary. Learned once per loaded model ([`SpecialTokens::probe`]).
#[derive(Debug, Clone, Default)]
pub struct SpecialTokens(HashMap<String, bool>);

impl SpecialTokens {
    /// Asks the model about every marker the family detection needs. The questions depend
    /// on earlier answers, so ask until no new question comes up.
    pub async fn probe(model: &ModelHandle) -> Self {
        let arch = model.info().architecture.clone();
        let mut known: HashMap<String, bool> = HashMap::new();
        loop {
            let asked = std::cell::RefCell::new(Vec::new());
            chat::detect_family(&arch, &|t: &str| match known.get(t) {
                Some(&yes) => yes,
                None => {
                    asked.borrow_mut().push(t.to_string());
                    false
                }
            });
            let asked = asked.into_inner();
            if asked.is_empty() {
                return SpecialTokens(known);
            }
            for t in asked {
                let single =
                    matches!(model.tokenize(&t, false, true).await, Ok(ids) if ids.len() == 1);
                known.insert(t, single);
            }
        }
    }

    fn has(&self, token: &str) -> bool {
        self.0.get(token).copied().unwrap_or(false)
    }
}

/// Which template a model is prompted with, as the user chose it (the model's own unless
/// set otherwise), and the server's thinking defaults it is rendered with.
/// [`crate::Models::template_choice`] makes it for a model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TemplateChoice {
    /// Jinja source set for this model in the dashboard, else for every model
    /// (`models.chat_template`, a built-in name already turned into its source); wins over
    /// the model's own template.
    pub custom: Option<String>,
    /// Leave the Jinja template in the model's file aside and use the built-in template of
    /// its family (`models.jinja = false`, llama-server's `--no-jinja`).
    pub builtin_only: bool,
    /// `[reasoning]`, filled into every chat rendered with this choice.
    pub reasoning: ReasoningDefaults,
    /// What the model's packaging says about prompting it beyond its GGUF (an Ollama
    /// manifest's template family, system prompt and stop strings).
    pub model: crate::model_defaults::PromptDefaults,
}

/// A compiled chat template for one model, with what it implies.
pub struct ChatFormat {
    template: ChatTemplate,
    pub origin: TemplateOrigin,
    bos: String,
    eos: String,
    /// End-of-turn markers of the built-in family, for models whose EOG tokens miss them.
    pub stops: Vec<String>,
    /// How this model writes tool calls.
    pub tool_format: ToolCallFormat,
    /// The template renders `tools` itself; otherwise we describe them in the system message.
    pub renders_tools: bool,
    /// The template renders assistant `tool_calls` and `tool` messages; otherwise they are
    /// rewritten into plain text turns it can render.
    pub renders_tool_calls: bool,
    /// The tags this model thinks in, when its template shows it thinks.
    pub thinking: Option<ThinkingTags>,
    /// The template reacts to `enable_thinking` or thinks (llama-server's "supports thinking"):
    /// `--reasoning auto` turns thinking on for these templates only.
    pub supports_thinking: bool,
}

impl std::fmt::Debug for ChatFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatFormat")
            .field("origin", &self.origin)
            .field("tool_format", &self.tool_format)
            .field("thinking", &self.thinking)
            .finish_non_exhaustive()
    }
}

impl ChatFormat {
    /// Chooses and compiles the template for a model (a custom one wins over the model's own).
    pub fn build(
        info: &ModelInfo,
        special: &SpecialTokens,
        choice: &TemplateChoice,
    ) -> Result<Self, TemplateError> {
        let has_token = |t: &str| special.has(t);
        let from_model = if choice.builtin_only {
            None
        } else {
            info.chat_template.as_deref()
        };
        // The family the packaging names (an Ollama template's markers) before the one the
        // vocabulary suggests: it is what the model was published to be prompted with.
        let detect = || {
            choice
                .model
                .family
                .unwrap_or_else(|| chat::detect_family(&info.architecture, &has_token))
        };
        let selected = chat::select_with(choice.custom.as_deref(), from_model, detect);
        let template = selected.compile()?;
        let family = match selected.origin {
            TemplateOrigin::Builtin(family) => Some(family),
            _ => Some(detect()),
        };
        let stops = match selected.origin {
            TemplateOrigin::Builtin(family) => family
                .stop_strings()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            _ => Vec::new(),
        };
        let source = template.source();
        let renders_tools = source.contains("tools");
        let renders_tool_calls = source.contains("tool_calls");
        let tool_format = if renders_tools {
            chat::detect_format(source, family)
        } else {
            // We describe the tools ourselves and ask for plain JSON.
            ToolCallFormat::GenericJson
        };
        let thinking = ThinkingTags::detect(source);
        let supports_thinking = chat::template_thinks(source);
        Ok(ChatFormat {
            template,
            origin: selected.origin,
            bos: info.bos_token.clone().unwrap_or_default(),
            eos: info.eos_token.clone().unwrap_or_default(),
            stops,
            tool_format,
            renders_tools,
            renders_tool_calls,
            thinking,
            supports_thinking,
        })
    }

    /// The template's source text.
    pub fn source(&self) -> &str {
        self.template.source()
    }

    /// The prompt text for `messages` (and `tools`), ending as `ending` says.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        tools: &[Tool],
        ending: PromptEnding,
        extra: serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, TemplateError> {
        let rewritten;
        let messages = if !tools.is_empty() && !self.renders_tools
            || !self.renders_tool_calls && needs_tool_polyfill(messages)
        {
            rewritten = polyfill_tools(messages, if self.renders_tools { &[] } else { tools });
            &rewritten[..]
        } else {
            messages
        };
        let ctx = RenderContext {
            bos_token: &self.bos,
            eos_token: &self.eos,
            tools: (self.renders_tools && !tools.is_empty()).then_some(tools),
            add_generation_prompt: ending == PromptEnding::GenerationPrompt,
            continue_final_message: ending == PromptEnding::ContinueFinalMessage,
            extra,
            ..RenderContext::new(messages)
        };
        self.template.render(&ctx)
    }

    /// What the template writes for the assistant's turn header (`add_generation_prompt`):
    /// the rendering with it minus the rendering without it, as llama.cpp computes it. A
    /// thinking template may end it inside an open (or already closed) thinking block.
    pub fn generation_header(
        &self,
        prompt: &str,
        messages: &[ChatMessage],
        tools: &[Tool],
        extra: serde_json::Map<String, serde_json::Value>,
    ) -> String {
        let Ok(without) = self.render(messages, tools, PromptEnding::LastMessage, extra) else {
            return String::new();
        };
        let common = prompt
            .char_indices()
            .zip(without.chars())
            .find(|((_, a), b)| a != b)
            .map_or(prompt.len().min(without.len()), |((at, _), _)| at);
        prompt[common..].to_owned()
    }

    /// The prompt for `messages`, ready for the engine.
    pub fn prompt(
        &self,
        messages: &[ChatMessage],
        tools: &[Tool],
    ) -> Result<Prompt, TemplateError> {
        let text = self.render(
            messages,
            tools,
            PromptEnding::GenerationPrompt,
            serde_json::Map::new(),
        )?;
        Ok(self.to_prompt(text))
    }

    /// Wraps rendered text as a prompt. Templates that write the BOS text themselves must
    /// not get a second one from the tokenizer (llama.cpp warns about exactly this).
    pub fn to_prompt(&self, text: String) -> Prompt {
        let add_special = self.bos.is_empty() || !text.starts_with(&self.bos);
        Prompt::Text {
            text,
            add_special,
            parse_special: true,
        }
    }

    /// The family of the built-in template in use, if one is.
    pub fn builtin_family(&self) -> Option<Family> {
        match self.origin {
            TemplateOrigin::Builtin(f) => Some(f),
            _ => None,
        }
    }
}

/// How a rendered conversation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PromptEnding {
    /// With the header of a new assistant turn (`add_generation_prompt`).
    #[default]
    GenerationPrompt,
    /// After the last message (`add_generation_prompt: false`).
    LastMessage,
    /// Inside the last message, which the reply continues (`continue_final_message`, or a
    /// trailing assistant message: llama-server's prefill).
    ContinueFinalMessage,
}

fn needs_tool_polyfill(messages: &[ChatMessage]) -> bool {
    messages
        .iter()
        .any(|m| !m.tool_calls.is_empty() || m.role == "tool" || m.content.is_none())
}

/// Rewrites a conversation for a template that knows nothing of tools (as llama.cpp's
/// polyfills do): the tool list goes into the system message with instructions to answer
/// in JSON, assistant tool calls become that JSON as text, and tool results become user
/// turns carrying a `tool_response` object.
fn polyfill_tools(messages: &[ChatMessage], tools: &[Tool]) -> Vec<ChatMessage> {
    let mut out: Vec<ChatMessage> = Vec::with_capacity(messages.len() + 1);
    if !tools.is_empty() {
        let mut text = String::from("You can call these tools:\n");
        for t in tools {
            text.push_str(&t.function_json().to_string());
            text.push('\n');
        }
        text.push_str(
            "\nTo call tools, reply with only a JSON object {\"name\": <tool name>, \
             \"arguments\": <arguments object>}, or a JSON array of such objects to call several.",
        );
        match messages.first() {
            Some(first) if first.role == "system" => {
                out.push(ChatMessage::system(format!("{}\n\n{text}", first.text())));
            }
            _ => out.push(ChatMessage::system(text)),
        }
    }
    let skip_first = !tools.is_empty() && messages.first().is_some_and(|m| m.role == "system");
    for m in messages.iter().skip(usize::from(skip_first)) {
        if !m.tool_calls.is_empty() {
            // Written by hand so `name` comes first, as the instructions show it.
            let calls: Vec<String> = m
                .tool_calls
                .iter()
                .map(|c| {
                    let args = c
                        .arguments_json()
                        .unwrap_or_else(|| serde_json::Value::String(c.arguments.clone()));
                    let name = serde_json::Value::String(c.name.clone());
                    format!(r#"{{"name": {name}, "arguments": {args}}}"#)
                })
                .collect();
            let json = if calls.len() == 1 {
                calls[0].clone()
            } else {
                format!("[{}]", calls.join(", "))
            };
            let text = m.text();
            let content = if text.is_empty() {
                json
            } else {
                format!("{text}\n{json}")
            };
            out.push(ChatMessage::assistant(content));
        } else if m.role == "tool" {
            let resp = serde_json::json!({"tool_response": {
                "tool_call_id": m.tool_call_id,
                "content": m.text(),
            }});
            out.push(ChatMessage::user(resp.to_string()));
        } else if m.content.is_none() {
            out.push(ChatMessage {
                content: Some(chat::MessageContent::Text(String::new())),
                ..m.clone()
            });
        } else {
            out.push(m.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat::ToolCall;

    #[test]
    fn polyfill_puts_tools_in_the_system_message_and_calls_in_text() {
        let tools = vec![Tool::new(
            "get_weather",
            Some("Weather of a city"),
            serde_json::json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        )];
        let messages = vec![
            ChatMessage::system("Be brief."),
            ChatMessage::user("Weather in Paris?"),
            ChatMessage::assistant_tool_calls(vec![ToolCall::new(
                "call_1",
                "get_weather",
                r#"{"city":"Paris"}"#,
            )]),
            ChatMessage::tool("call_1", "sunny"),
        ];
        let out = polyfill_tools(&messages, &tools);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].role, "system");
        let sys = out[0].text();
        assert!(
            sys.starts_with("Be brief.\n\nYou can call these tools:"),
            "{sys}"
        );
        assert!(sys.contains("\"get_weather\""), "{sys}");
        assert_eq!(
            out[2].text(),
            r#"{"name": "get_weather", "arguments": {"city":"Paris"}}"#
        );
        assert_eq!(out[3].role, "user");
        assert!(out[3].text().contains("\"tool_response\""));
        assert!(out[3].text().contains("sunny"));
    }

    #[test]
    fn polyfill_without_tools_keeps_the_system_message() {
        let messages = vec![ChatMessage::system("S"), ChatMessage::tool("c", "r")];
        let out = polyfill_tools(&messages, &[]);
        assert_eq!(out[0].text(), "S");
        assert_eq!(out[1].role, "user");
    }
}
