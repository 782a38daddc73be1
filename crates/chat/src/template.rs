//! HF-style Jinja chat templates, compiled and rendered with minijinja set up
//! to behave like the Python Jinja2 the templates were written for.

mod context;
mod env;
mod python;
mod strftime;

use std::panic::{AssertUnwindSafe, catch_unwind};

use minijinja::Environment;
use minijinja::value::Value;

use crate::error::TemplateError;
use crate::message::{ChatMessage, ContentPart, MessageContent, Tool};
use context::{ArgumentsAs, ContentAs};
use env::RaisedByTemplate;

pub use strftime::strftime;

const TEMPLATE_NAME: &str = "chat_template";

/// A compiled chat template. Cheap to share between threads (`Send + Sync`);
/// compile once per model, render per request.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    content: ContentCaps,
    /// A system message reaches the prompt (Gemma 2's template raises on one instead); when
    /// not, it is merged into the next message, as llama.cpp does.
    system_role: bool,
}

/// Which shapes of message `content` a template renders, found by rendering a
/// probe of each (llama.cpp's `supports_string_content` / `supports_typed_content`).
/// Content is handed over in a shape the template takes: a list of text parts
/// becomes a string for templates that concatenate `'...' + message['content']`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentCaps {
    /// `content` as a string renders.
    pub strings: bool,
    /// `content` as a list of `{"type": "text", "text": ...}` parts renders its text.
    pub parts: bool,
}

impl ContentCaps {
    fn content_as(self) -> ContentAs {
        match (self.strings, self.parts) {
            (true, true) => ContentAs::AsGiven,
            (false, true) => ContentAs::Parts,
            // Neither probe rendered (a template that wants more than one user message):
            // strings, llama.cpp's default.
            _ => ContentAs::Strings,
        }
    }
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source_len", &self.source.len())
            .field("content", &self.content)
            .finish()
    }
}

/// Everything a chat template is rendered with.
#[derive(Debug, Clone)]
pub struct RenderContext<'a> {
    pub messages: &'a [ChatMessage],
    /// `None` or an empty list: the template sees `tools = none`, as
    /// transformers passes it, so `tools is not none` checks behave.
    pub tools: Option<&'a [Tool]>,
    /// End the prompt with the header of an assistant turn.
    pub add_generation_prompt: bool,
    pub bos_token: &'a str,
    pub eos_token: &'a str,
    /// The last message is the start of the reply, which the model continues:
    /// the prompt is the conversation before it with a generation prompt, then
    /// its text (llama.cpp's `continue_final_message`, and its prefill of a
    /// trailing assistant message). `add_generation_prompt` is not used then.
    pub continue_final_message: bool,
    /// More template variables, e.g. `enable_thinking` (Qwen3). They cannot
    /// replace `messages` or `tools`; they can replace the current date that
    /// templates find in `date_string` and `datetime`, as llama.cpp sets them.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Default for RenderContext<'_> {
    fn default() -> Self {
        RenderContext {
            messages: &[],
            tools: None,
            add_generation_prompt: true,
            continue_final_message: false,
            bos_token: "",
            eos_token: "",
            extra: serde_json::Map::new(),
        }
    }
}

impl<'a> RenderContext<'a> {
    /// A context for `messages` that asks for a generation prompt, with no
    /// tools and empty BOS/EOS texts.
    pub fn new(messages: &'a [ChatMessage]) -> Self {
        RenderContext {
            messages,
            ..Default::default()
        }
    }
}

impl ChatTemplate {
    /// Compiles a Jinja chat template (e.g. a GGUF's `tokenizer.chat_template`).
    pub fn new(source: &str) -> Result<ChatTemplate, TemplateError> {
        let mut env = env::python_like_environment();
        let prepared = neutralize_generation_tags(source);
        env.add_template_owned(TEMPLATE_NAME, prepared)
            .map_err(|err| TemplateError::Syntax {
                message: err
                    .detail()
                    .map(str::to_owned)
                    .unwrap_or_else(|| err.to_string()),
                line: err.line(),
            })?;
        let mut template = ChatTemplate {
            env,
            source: source.to_owned(),
            content: ContentCaps {
                strings: true,
                parts: false,
            },
            system_role: true,
        };
        template.content = template.probe_content();
        template.system_role = template.probe_system_role();
        Ok(template)
    }

    /// Whether a system message's text reaches the prompt.
    fn probe_system_role(&self) -> bool {
        const PROBE: &str = "SYSTEM_PROBE_TEXT";
        let messages = [ChatMessage::system(PROBE), ChatMessage::user("user")];
        self.render_with(
            &RenderContext::new(&messages),
            ArgumentsAs::Object,
            self.content.content_as(),
        )
        .is_ok_and(|prompt| prompt.contains(PROBE))
    }

    /// llama.cpp's adjustments before rendering: `developer` becomes `system` (except for
    /// GPT-OSS's channel format, which knows it), and a system message a template cannot
    /// render is merged into the message after it (or dropped when alone). `None` when
    /// the conversation stays as it is.
    fn adjusted(&self, messages: &[ChatMessage]) -> Option<Vec<ChatMessage>> {
        let map_developer =
            !self.source.contains("<|channel|>") && messages.iter().any(|m| m.role == "developer");
        let merge_system = !self.system_role
            && messages
                .first()
                .is_some_and(|m| m.role == "system" || map_developer && m.role == "developer");
        if !map_developer && !merge_system {
            return None;
        }
        let mut out = messages.to_vec();
        if map_developer {
            for message in out.iter_mut().filter(|m| m.role == "developer") {
                message.role = "system".into();
            }
        }
        if merge_system && out.first().is_some_and(|m| m.role == "system") {
            let system = out.remove(0);
            if let Some(next) = out.first_mut() {
                let text = next
                    .content
                    .as_ref()
                    .map(|c| c.text_joined("\n"))
                    .unwrap_or_default();
                next.content = Some(MessageContent::Text(format!("{}\n{text}", system.text())));
            }
        }
        Some(out)
    }

    /// Renders a one-message conversation with the content as a string, then as a
    /// list of text parts; a shape counts when the probe text reaches the prompt as
    /// text (a list printed as `[{'type': 'text', ...}]` does not count).
    fn probe_content(&self) -> ContentCaps {
        const PROBE: &str = "CONTENT_PROBE_TEXT";
        let renders = |content: MessageContent| {
            let messages = [ChatMessage {
                content: Some(content),
                ..ChatMessage::user("")
            }];
            match self.render_with(
                &RenderContext::new(&messages),
                ArgumentsAs::Object,
                ContentAs::AsGiven,
            ) {
                Ok(prompt) => {
                    prompt.contains(PROBE)
                        && !prompt.contains("'type'")
                        && !prompt.contains("\"type\"")
                }
                Err(_) => false,
            }
        };
        ContentCaps {
            strings: renders(MessageContent::Text(PROBE.into())),
            parts: renders(MessageContent::Parts(vec![ContentPart::Text {
                text: PROBE.into(),
            }])),
        }
    }

    /// Which shapes of message content the template renders.
    pub fn content_caps(&self) -> ContentCaps {
        self.content
    }

    /// The template source as given to [`ChatTemplate::new`].
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders the prompt for a conversation.
    pub fn render(&self, ctx: &RenderContext<'_>) -> Result<String, TemplateError> {
        if ctx.continue_final_message
            && let Some((last, earlier)) = ctx.messages.split_last()
        {
            // llama.cpp: the conversation before it, its generation prompt, then the
            // message's text (text parts joined with a blank line).
            let head = RenderContext {
                messages: earlier,
                add_generation_prompt: true,
                continue_final_message: false,
                ..ctx.clone()
            };
            let mut prompt = self.render(&head)?;
            if let Some(content) = &last.content {
                prompt.push_str(&content.text_joined("\n\n"));
            }
            return Ok(prompt);
        }
        let adjusted = self.adjusted(ctx.messages);
        let adjusted_ctx;
        let ctx = match &adjusted {
            Some(messages) => {
                adjusted_ctx = RenderContext {
                    messages,
                    ..ctx.clone()
                };
                &adjusted_ctx
            }
            None => ctx,
        };
        let content_as = self.content.content_as();
        let first = self.render_with(ctx, ArgumentsAs::Object, content_as);
        match first {
            Err(TemplateError::Render(_)) if context::has_object_arguments(ctx.messages) => {
                // Some templates (DeepSeek R1) build the call text with
                // `'...' + arguments`, which only works on the JSON string.
                match self.render_with(ctx, ArgumentsAs::String, content_as) {
                    Ok(prompt) => {
                        tracing::debug!("chat template needed tool-call arguments as strings");
                        Ok(prompt)
                    }
                    Err(_) => first,
                }
            }
            other => other,
        }
    }

    fn render_with(
        &self,
        ctx: &RenderContext<'_>,
        arguments_as: ArgumentsAs,
        content_as: ContentAs,
    ) -> Result<String, TemplateError> {
        let mut vars: Vec<(String, Value)> = ctx
            .extra
            .iter()
            .filter(|(key, _)| !matches!(key.as_str(), "messages" | "tools"))
            .map(|(key, value)| (key.clone(), context::json_value(value)))
            .collect();
        let messages: Vec<Value> = ctx
            .messages
            .iter()
            .map(|message| context::message_value(message, arguments_as, content_as))
            .collect();
        let tools = match ctx.tools {
            Some(tools) if !tools.is_empty() => tools.iter().map(context::tool_value).collect(),
            _ => Value::from(()),
        };
        let defaults = [
            ("messages", Value::from(messages)),
            ("tools", tools),
            (
                "add_generation_prompt",
                Value::from(ctx.add_generation_prompt),
            ),
            ("bos_token", Value::from(ctx.bos_token)),
            ("eos_token", Value::from(ctx.eos_token)),
            // What llama.cpp's `common_chat_extra_context` gives every template:
            // Llama 3.x prints `date_string`, firefunction-v2 `datetime`.
            (
                "date_string",
                Value::from(strftime::strftime_now("%d %b %Y")),
            ),
            ("datetime", Value::from(strftime::strftime_now("%b %d %Y"))),
            // firefunction-v2 writes `'...' + functions`: the tools as indented JSON, as
            // llama.cpp's firefunction handler gave them ("" without tools).
            ("functions", Value::from(functions_json(ctx.tools))),
        ];
        for (key, value) in defaults {
            // `extra` may override the BOS/EOS texts and the generation flag,
            // never the conversation itself.
            if matches!(key, "messages" | "tools") || !vars.iter().any(|(name, _)| name == key) {
                vars.push((key.to_owned(), value));
            }
        }
        let context = Value::from_pairs(vars);

        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|err| TemplateError::Render(err.to_string()))?;
        // minijinja does not panic on templates we know of; this keeps a bug in
        // it or in a filter from taking the server down with one request.
        match catch_unwind(AssertUnwindSafe(|| template.render(&context))) {
            Ok(Ok(prompt)) => Ok(prompt),
            Ok(Err(err)) => Err(render_error(&err)),
            Err(_) => Err(TemplateError::Render(
                "internal error while rendering the template".into(),
            )),
        }
    }
}

fn functions_json(tools: Option<&[Tool]>) -> String {
    match tools {
        Some(tools) if !tools.is_empty() => {
            let list: Vec<serde_json::Value> = tools.iter().map(Tool::to_openai).collect();
            serde_json::to_string_pretty(&list).unwrap_or_default()
        }
        _ => String::new(),
    }
}

fn render_error(err: &minijinja::Error) -> TemplateError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(raised) = current.downcast_ref::<RaisedByTemplate>() {
            return TemplateError::Raised(raised.0.clone());
        }
        source = current.source();
    }
    TemplateError::Render(err.to_string())
}

/// Replaces transformers' `{% generation %}...{% endgeneration %}` (marks the
/// assistant text for training masks, no output of its own) with an
/// always-true `if`, which minijinja understands. Whitespace-control dashes
/// are kept so the output is the same.
fn neutralize_generation_tags(source: &str) -> String {
    if !source.contains("generation") {
        return source.to_owned();
    }
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        let Some(end) = tag[2..].find("%}").map(|at| at + 2) else {
            out.push_str(tag);
            return out;
        };
        let inner = &tag[2..end];
        let (left, body) = match inner.strip_prefix(['-', '+']) {
            Some(body) => (&inner[..1], body),
            None => ("", inner),
        };
        let (right, body) = match body.strip_suffix(['-', '+']) {
            Some(rest) => (&body[rest.len()..], rest),
            None => ("", body),
        };
        let word = body.trim();
        match word {
            "generation" => out.push_str(&format!("{{%{left} if true {right}%}}")),
            "endgeneration" => out.push_str(&format!("{{%{left} endif {right}%}}")),
            _ => out.push_str(&tag[..end + 2]),
        }
        rest = &tag[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chatml() -> ChatTemplate {
        ChatTemplate::new(
            "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
        )
        .unwrap()
    }

    #[test]
    fn renders_a_simple_conversation() {
        let messages = [ChatMessage::user("Hi")];
        let prompt = chatml().render(&RenderContext::new(&messages)).unwrap();
        assert_eq!(
            prompt,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = ChatTemplate::new("line one\n{% if x %}\n{{ y }").unwrap_err();
        match err {
            TemplateError::Syntax { line, .. } => assert_eq!(line, Some(3)),
            other => panic!("expected a syntax error, got {other:?}"),
        }
        assert!(matches!(
            ChatTemplate::new("{% for %}"),
            Err(TemplateError::Syntax { .. })
        ));
    }

    #[test]
    fn raise_exception_and_render_errors() {
        let template = ChatTemplate::new("{{ raise_exception('Only user roles!') }}").unwrap();
        assert_eq!(
            template.render(&RenderContext::default()),
            Err(TemplateError::Raised("Only user roles!".into()))
        );
        let template = ChatTemplate::new("{{ 'a' + messages }}").unwrap();
        assert!(matches!(
            template.render(&RenderContext::default()),
            Err(TemplateError::Render(_))
        ));
        let template = ChatTemplate::new("{{ x | no_such_filter }}").unwrap();
        assert!(matches!(
            template.render(&RenderContext::default()),
            Err(TemplateError::Render(_))
        ));
    }

    #[test]
    fn extra_variables_reach_the_template() {
        let template = ChatTemplate::new(
            "{{ bos_token }}{% if enable_thinking is defined and enable_thinking is false %}no-think{% endif %}{{ tools is none }}",
        )
        .unwrap();
        let mut ctx = RenderContext {
            bos_token: "<s>",
            ..Default::default()
        };
        ctx.extra.insert("enable_thinking".into(), false.into());
        ctx.extra
            .insert("messages".into(), serde_json::json!("ignored"));
        assert_eq!(template.render(&ctx).unwrap(), "<s>no-thinkTrue");
        let tools: [Tool; 0] = [];
        ctx.tools = Some(&tools);
        assert_eq!(template.render(&ctx).unwrap(), "<s>no-thinkTrue");
    }

    #[test]
    fn string_arguments_fallback_for_concatenating_templates() {
        let template = ChatTemplate::new(
            "{% for m in messages %}{% for t in m.tool_calls %}{{ t.function.name + ':' + t.function.arguments }}{% endfor %}{% endfor %}",
        )
        .unwrap();
        let messages = [ChatMessage::assistant_tool_calls(vec![
            crate::ToolCall::new("id", "f", r#"{"a": 1}"#),
        ])];
        assert_eq!(
            template.render(&RenderContext::new(&messages)).unwrap(),
            r#"f:{"a": 1}"#
        );
    }

    #[test]
    fn generation_tags_are_accepted() {
        let template = ChatTemplate::new(
            "{% for m in messages %}{%- generation -%} {{ m.content }} {%- endgeneration %}{% endfor %}",
        )
        .unwrap();
        let messages = [ChatMessage::assistant("x")];
        assert_eq!(
            template.render(&RenderContext::new(&messages)).unwrap(),
            "x"
        );
    }

    #[test]
    fn never_panics_on_odd_templates() {
        let odd = [
            "{% set ns = namespace(a=1) %}{% set ns.a = ns %}{{ ns | tojson }}",
            "{{ messages[10].content.strip() }}",
            "{{ range(100000000) | length }}",
            "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
            "{{ 1 / 0 }}",
            "{{ '%s' % 1 }}",
            "{{ messages | tojson(indent='x') }}",
            "{%-%}{%generation%}{%--%}{%%}{% endgeneration",
        ];
        let messages = [ChatMessage::user("hi")];
        for source in odd {
            if let Ok(template) = ChatTemplate::new(source) {
                let _ = template.render(&RenderContext::new(&messages));
            }
        }
    }

    #[test]
    fn template_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ChatTemplate>();
    }
}
