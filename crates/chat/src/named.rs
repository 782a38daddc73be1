//! llama.cpp's built-in chat template names (`--chat-template chatml`, `llama3`,
//! `command-r`, ...: the list in llama.cpp's `src/llama-chat.cpp`), as Jinja.
//!
//! A name that is one of our [`Family`] formats gets that family's template (which
//! also knows tools); the others get a short template written after llama.cpp's C++
//! formatter for that name. Any other text given where a name may go is a Jinja
//! template itself, as llama-server takes it.

use crate::builtin::Family;

/// The names llama.cpp knows, in its order. The few we have no template for (their
/// models ship their own Jinja template) are refused by name.
pub const LLAMA_CPP_NAMES: &[&str] = &[
    "chatml",
    "llama2",
    "llama2-sys",
    "llama2-sys-bos",
    "llama2-sys-strip",
    "mistral-v1",
    "mistral-v3",
    "mistral-v3-tekken",
    "mistral-v7",
    "mistral-v7-tekken",
    "phi3",
    "phi4",
    "falcon3",
    "zephyr",
    "monarch",
    "gemma",
    "orion",
    "openchat",
    "vicuna",
    "vicuna-orca",
    "deepseek",
    "deepseek2",
    "deepseek3",
    "deepseek-ocr",
    "command-r",
    "llama3",
    "chatglm3",
    "chatglm4",
    "glmedge",
    "minicpm",
    "exaone3",
    "exaone4",
    "exaone-moe",
    "rwkv-world",
    "granite",
    "granite-4.0",
    "granite-4.1",
    "gigachat",
    "megrez",
    "yandex",
    "bailing",
    "bailing-think",
    "bailing2",
    "llama4",
    "smolvlm",
    "hunyuan-moe",
    "gpt-oss",
    "hunyuan-dense",
    "hunyuan-vl",
    "kimi-k2",
    "seed_oss",
    "grok-2",
    "pangu-embedded",
    "solar-open",
];

/// A template a built-in name stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamedTemplate {
    /// One of our family templates.
    Family(Family),
    /// A template of its own, after llama.cpp's formatter of that name.
    Source(&'static str),
}

impl NamedTemplate {
    /// The Jinja source.
    pub fn source(self) -> &'static str {
        match self {
            NamedTemplate::Family(family) => family.template_source(),
            NamedTemplate::Source(source) => source,
        }
    }
}

/// Why a `--chat-template` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "llama.cpp's built-in chat template `{0}` is not one we have; give the model's own template with --chat-template-file, or one of: {known}",
    known = written_names().join(", ")
)]
pub struct UnknownName(pub String);

fn written_names() -> Vec<&'static str> {
    LLAMA_CPP_NAMES
        .iter()
        .copied()
        .filter(|name| matches!(named_template(name), Some(Ok(_))))
        .collect()
}

/// The template for one of llama.cpp's built-in names; `None` for any other text.
pub fn named_template(name: &str) -> Option<Result<NamedTemplate, UnknownName>> {
    use NamedTemplate::{Family as F, Source as S};
    let found = match name {
        "chatml" => F(Family::ChatML),
        "llama2" | "llama2-sys" | "llama2-sys-bos" | "llama2-sys-strip" => F(Family::Llama2),
        "llama3" => F(Family::Llama3),
        "mistral-v1" | "mistral-v3" | "mistral-v3-tekken" => F(Family::Mistral),
        "phi3" => F(Family::Phi3),
        "phi4" => F(Family::Phi4),
        "zephyr" => F(Family::Zephyr),
        "gemma" => F(Family::Gemma),
        "deepseek3" => F(Family::DeepSeek),
        "mistral-v7" => S(MISTRAL_V7),
        "mistral-v7-tekken" => S(MISTRAL_V7_TEKKEN),
        "falcon3" => S(FALCON3),
        "monarch" => S(MONARCH),
        "orion" => S(ORION),
        "openchat" => S(OPENCHAT),
        "vicuna" => S(VICUNA),
        "vicuna-orca" => S(VICUNA_ORCA),
        "deepseek" => S(DEEPSEEK_CODER),
        "deepseek2" => S(DEEPSEEK2),
        "command-r" => S(COMMAND_R),
        "chatglm3" => S(CHATGLM3),
        "chatglm4" => S(CHATGLM4),
        "glmedge" => S(GLMEDGE),
        "minicpm" => S(MINICPM),
        "exaone3" => S(EXAONE3),
        "exaone4" => S(EXAONE4),
        "granite" => S(GRANITE),
        "granite-4.0" => S(GRANITE4),
        "megrez" => S(MEGREZ),
        "llama4" => S(LLAMA4),
        other if LLAMA_CPP_NAMES.contains(&other) => {
            return Some(Err(UnknownName(other.to_owned())));
        }
        _ => return None,
    };
    Some(Ok(found))
}

/// The Jinja source a `--chat-template` value stands for: the template of a built-in
/// name, else the value itself.
pub fn template_source(value: &str) -> Result<std::borrow::Cow<'_, str>, UnknownName> {
    match named_template(value.trim()) {
        Some(found) => found.map(|named| named.source().into()),
        None => Ok(value.into()),
    }
}

// One line each (trim_blocks/lstrip_blocks would otherwise eat or keep layout),
// written after the C++ of llama.cpp's `llm_chat_apply_template`. Content arrives
// as a string (part lists are joined before rendering, see `ContentCaps`).

const MISTRAL_V7: &str = "{% for m in messages %}{% if m.role == 'system' %}{{ '[SYSTEM_PROMPT] ' + m.content + '[/SYSTEM_PROMPT]' }}{% elif m.role == 'user' %}{{ '[INST] ' + m.content + '[/INST]' }}{% else %}{{ ' ' + m.content + '</s>' }}{% endif %}{% endfor %}";
const MISTRAL_V7_TEKKEN: &str = "{% for m in messages %}{% if m.role == 'system' %}{{ '[SYSTEM_PROMPT]' + m.content + '[/SYSTEM_PROMPT]' }}{% elif m.role == 'user' %}{{ '[INST]' + m.content + '[/INST]' }}{% else %}{{ m.content + '</s>' }}{% endif %}{% endfor %}";
const FALCON3: &str = "{% for m in messages %}{{ '<|' + m.role + '|>\\n' + m.content + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";
const MONARCH: &str = "{% for m in messages %}{% if not loop.first %}{{ '<s>' }}{% endif %}{{ m.role + '\\n' + m.content + '</s>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<s>assistant\\n' }}{% endif %}";
const ORION: &str = "{% set ns = namespace(system='') %}{% for m in messages %}{% if m.role == 'system' %}{% set ns.system = ns.system + m.content %}{% elif m.role == 'user' %}{{ 'Human: ' }}{% if ns.system %}{{ ns.system + '\\n\\n' }}{% set ns.system = '' %}{% endif %}{{ m.content + '\\n\\nAssistant: </s>' }}{% else %}{{ m.content + '</s>' }}{% endif %}{% endfor %}";
const OPENCHAT: &str = "{% for m in messages %}{% if m.role == 'system' %}{{ m.content + '<|end_of_turn|>' }}{% else %}{{ 'GPT4 Correct ' + m.role[:1].upper() + m.role[1:] + ': ' + m.content + '<|end_of_turn|>' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'GPT4 Correct Assistant:' }}{% endif %}";
const VICUNA: &str = "{% for m in messages %}{% if m.role == 'system' %}{{ m.content + '\\n\\n' }}{% elif m.role == 'user' %}{{ 'USER: ' + m.content + '\\n' }}{% elif m.role == 'assistant' %}{{ 'ASSISTANT: ' + m.content + '</s>\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";
const VICUNA_ORCA: &str = "{% for m in messages %}{% if m.role == 'system' %}{{ 'SYSTEM: ' + m.content + '\\n' }}{% elif m.role == 'user' %}{{ 'USER: ' + m.content + '\\n' }}{% elif m.role == 'assistant' %}{{ 'ASSISTANT: ' + m.content + '</s>\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";
const DEEPSEEK_CODER: &str = "{% for m in messages %}{% if m.role == 'system' %}{{ m.content }}{% elif m.role == 'user' %}{{ '### Instruction:\\n' + m.content + '\\n' }}{% elif m.role == 'assistant' %}{{ '### Response:\\n' + m.content + '\\n<|EOT|>\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}";
const DEEPSEEK2: &str = "{% for m in messages %}{% if m.role == 'system' %}{{ m.content + '\\n\\n' }}{% elif m.role == 'user' %}{{ 'User: ' + m.content + '\\n\\n' }}{% elif m.role == 'assistant' %}{{ 'Assistant: ' + m.content + '<｜end▁of▁sentence｜>' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";
const COMMAND_R: &str = "{% for m in messages %}{% if m.role == 'system' %}{{ '<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>' + m.content | trim + '<|END_OF_TURN_TOKEN|>' }}{% elif m.role == 'user' %}{{ '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' + m.content | trim + '<|END_OF_TURN_TOKEN|>' }}{% elif m.role == 'assistant' %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' + m.content | trim + '<|END_OF_TURN_TOKEN|>' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' }}{% endif %}";
const CHATGLM3: &str = "{{ '[gMASK]sop' }}{% for m in messages %}{{ '<|' + m.role + '|>\\n ' + m.content }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";
const CHATGLM4: &str = "{{ '[gMASK]<sop>' }}{% for m in messages %}{{ '<|' + m.role + '|>\\n' + m.content }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";
const GLMEDGE: &str = "{% for m in messages %}{{ '<|' + m.role + '|>\\n' + m.content }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";
const MINICPM: &str = "{% for m in messages %}{% if m.role == 'user' %}{{ '<用户>' + m.content | trim + '<AI>' }}{% else %}{{ m.content | trim }}{% endif %}{% endfor %}";
const EXAONE3: &str = "{% for m in messages %}{% if m.role == 'system' %}{{ '[|system|]' + m.content | trim + '[|endofturn|]\\n' }}{% elif m.role == 'user' %}{{ '[|user|]' + m.content | trim + '\\n' }}{% elif m.role == 'assistant' %}{{ '[|assistant|]' + m.content | trim + '[|endofturn|]\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '[|assistant|]' }}{% endif %}";
const EXAONE4: &str = "{% for m in messages %}{% if m.role == 'system' %}{{ '[|system|]' + m.content | trim + '[|endofturn|]\\n' }}{% elif m.role == 'user' %}{{ '[|user|]' + m.content | trim + '\\n' }}{% elif m.role == 'assistant' %}{{ '[|assistant|]' + m.content | trim + '[|endofturn|]\\n' }}{% elif m.role == 'tool' %}{{ '[|tool|]' + m.content | trim + '[|endofturn|]\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '[|assistant|]' }}{% endif %}";
const GRANITE: &str = "{% for m in messages %}{{ '<|start_of_role|>' + m.role + '<|end_of_role|>' }}{% if m.role == 'assistant_tool_call' %}{{ '<|tool_call|>' }}{% endif %}{{ m.content + '<|end_of_text|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_of_role|>assistant<|end_of_role|>' }}{% endif %}";
const GRANITE4: &str = "{% for m in messages %}{% if m.role == 'assistant_tool_call' %}{{ '<|start_of_role|>assistant<|end_of_role|><|tool_call|>' }}{% else %}{{ '<|start_of_role|>' + m.role + '<|end_of_role|>' }}{% endif %}{{ m.content + '<|end_of_text|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_of_role|>assistant<|end_of_role|>' }}{% endif %}";
const MEGREZ: &str = "{% for m in messages %}{{ '<|role_start|>' + m.role + '<|role_end|>' + m.content + '<|turn_end|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|role_start|>assistant<|role_end|>' }}{% endif %}";
const LLAMA4: &str = "{% for m in messages %}{{ '<|header_start|>' + m.role + '<|header_end|>\\n\\n' + m.content | trim + '<|eot|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|header_start|>assistant<|header_end|>\\n\\n' }}{% endif %}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChatMessage, ChatTemplate, RenderContext};

    fn render(name: &str, messages: &[ChatMessage]) -> String {
        let source = named_template(name).unwrap().unwrap().source();
        ChatTemplate::new(source)
            .unwrap()
            .render(&RenderContext::new(messages))
            .unwrap()
    }

    #[test]
    fn every_llama_cpp_name_is_ours_or_refused_by_name() {
        let messages = [ChatMessage::system("S"), ChatMessage::user("Hi")];
        for name in LLAMA_CPP_NAMES {
            match named_template(name).expect("a llama.cpp name is known") {
                Ok(_) => assert!(!render(name, &messages).is_empty(), "{name}"),
                Err(err) => {
                    let text = err.to_string();
                    assert!(text.contains(&format!("`{name}`")), "{text}");
                    assert!(
                        text.contains("llama3, ") && !text.contains("gpt-oss,"),
                        "{text}"
                    );
                }
            }
        }
        assert!(named_template("{{ messages }}").is_none());
        assert!(named_template("This is not a chat template").is_none());
    }

    #[test]
    fn named_templates_render_like_llama_cpp() {
        // The prompts llama.cpp's test-chat-template.cpp expects for these names.
        let messages = [
            ChatMessage::system("You are a test."),
            ChatMessage::user("Hi there"),
        ];
        for (name, expected) in [
            (
                "command-r",
                "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>You are a test.<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hi there<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>",
            ),
            ("vicuna", "You are a test.\n\nUSER: Hi there\nASSISTANT:"),
            (
                "openchat",
                "You are a test.<|end_of_turn|>GPT4 Correct User: Hi there<|end_of_turn|>GPT4 Correct Assistant:",
            ),
            (
                "mistral-v7",
                "[SYSTEM_PROMPT] You are a test.[/SYSTEM_PROMPT][INST] Hi there[/INST]",
            ),
            (
                "llama4",
                "<|header_start|>system<|header_end|>\n\nYou are a test.<|eot|><|header_start|>user<|header_end|>\n\nHi there<|eot|><|header_start|>assistant<|header_end|>\n\n",
            ),
        ] {
            assert_eq!(render(name, &messages), expected, "{name}");
        }
    }
}
