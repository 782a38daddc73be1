//! Built-in chat templates for models whose GGUF has no
//! `tokenizer.chat_template`, the rules that pick one from the model's
//! architecture and vocabulary, and the choice between a user's custom
//! template, the model's own and a built-in one.
//!
//! The built-in sources are ours: short, written in the same style so they
//! are easy to check, and following each family's official turn format.
//! Families without a native tool-call syntax get a plain instruction to
//! answer with a JSON object, which [`crate::ToolCallFormat::GenericJson`] parses.

use std::fmt;
use std::str::FromStr;

/// A prompt-format family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `<|im_start|>role\n...<|im_end|>` (Qwen, SmolLM, Hermes, Yi, ...).
    ChatML,
    /// `<s>[INST] <<SYS>>...<</SYS>> ... [/INST]` (Llama 2 chat).
    Llama2,
    /// `<|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>` (Llama 3.x).
    Llama3,
    /// `[INST] ...[/INST]` with `[AVAILABLE_TOOLS]`/`[TOOL_CALLS]` (Mistral).
    Mistral,
    /// `<start_of_turn>user\n...<end_of_turn>` (Gemma 1/2/3).
    Gemma,
    /// `<|user|>\n...<|end|>` (Phi-3, Phi-3.5).
    Phi3,
    /// `<|im_start|>user<|im_sep|>...<|im_end|>` (Phi-4).
    Phi4,
    /// `<｜User｜>...<｜Assistant｜>` (DeepSeek V3 and R1).
    DeepSeek,
    /// `<|user|>\n...</s>` (Zephyr, TinyLlama chat).
    Zephyr,
}

impl Family {
    pub const ALL: [Family; 9] = [
        Family::ChatML,
        Family::Llama2,
        Family::Llama3,
        Family::Mistral,
        Family::Gemma,
        Family::Phi3,
        Family::Phi4,
        Family::DeepSeek,
        Family::Zephyr,
    ];

    /// Short lowercase name, shown in model details and accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            Family::ChatML => "chatml",
            Family::Llama2 => "llama2",
            Family::Llama3 => "llama3",
            Family::Mistral => "mistral",
            Family::Gemma => "gemma",
            Family::Phi3 => "phi3",
            Family::Phi4 => "phi4",
            Family::DeepSeek => "deepseek",
            Family::Zephyr => "zephyr",
        }
    }

    /// The built-in Jinja template of this family.
    pub fn template_source(self) -> &'static str {
        match self {
            Family::ChatML => CHATML,
            Family::Llama2 => LLAMA2,
            Family::Llama3 => LLAMA3,
            Family::Mistral => MISTRAL,
            Family::Gemma => GEMMA,
            Family::Phi3 => PHI3,
            Family::Phi4 => PHI4,
            Family::DeepSeek => DEEPSEEK,
            Family::Zephyr => ZEPHYR,
        }
    }

    /// Texts that end an assistant turn in this format. The engine adds them as
    /// stop strings when the model's end-of-generation tokens do not already
    /// cover them (common in base models and in GGUFs with incomplete metadata),
    /// so generation ends at the turn instead of writing the user's next line.
    pub fn stop_strings(self) -> &'static [&'static str] {
        match self {
            Family::ChatML | Family::Phi4 => &["<|im_end|>", "<|im_start|>"],
            Family::Llama2 => &["</s>", "[INST]"],
            Family::Llama3 => &["<|eot_id|>", "<|eom_id|>", "<|start_header_id|>"],
            Family::Mistral => &["</s>", "[INST]"],
            Family::Gemma => &["<end_of_turn>", "<start_of_turn>"],
            Family::Phi3 => &["<|end|>", "<|user|>", "<|endoftext|>"],
            Family::DeepSeek => &["<｜end▁of▁sentence｜>", "<｜User｜>"],
            Family::Zephyr => &["</s>", "<|user|>"],
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Family {
    type Err = String;

    fn from_str(name: &str) -> Result<Family, String> {
        let wanted = name.trim().to_ascii_lowercase();
        Family::ALL
            .into_iter()
            .find(|family| family.name() == wanted)
            .ok_or_else(|| {
                let known: Vec<&str> = Family::ALL.iter().map(|family| family.name()).collect();
                format!(
                    "unknown chat template family `{name}` (known: {})",
                    known.join(", ")
                )
            })
    }
}

/// The family whose marker tokens a template's text spells out, by the same markers
/// [`detect_family`] looks for in a vocabulary; `None` when it spells none. For templates we
/// do not render ourselves: an Ollama template layer is a Go template, but the turn markers
/// it writes (`<|im_start|>`, `<|start_header_id|>`, ...) are literal text in it.
pub fn family_in_text(text: &str) -> Option<Family> {
    let spelled = std::cell::Cell::new(false);
    let family = detect_family("", &|marker: &str| {
        let found = text.contains(marker);
        spelled.set(spelled.get() || found);
        found
    });
    spelled.get().then_some(family)
}

/// Picks the prompt format of a model from its GGUF architecture
/// (`general.architecture`) and its vocabulary (`has_token(text)` tells
/// whether a token with exactly that text exists).
///
/// Special tokens are the stronger signal: fine-tunes keep the architecture of
/// their base but bring the tokens of their chat format (a Llama fine-tune
/// with `<|im_start|>` speaks ChatML). ChatML is the last resort.
pub fn detect_family(arch: &str, has_token: &dyn Fn(&str) -> bool) -> Family {
    let arch = arch.to_ascii_lowercase();
    if arch.starts_with("gemma") || has_token("<start_of_turn>") {
        return Family::Gemma;
    }
    if has_token("<|start_header_id|>") {
        return Family::Llama3;
    }
    if has_token("<｜User｜>") {
        return Family::DeepSeek;
    }
    if has_token("<|im_start|>") {
        return if has_token("<|im_sep|>") {
            Family::Phi4
        } else {
            Family::ChatML
        };
    }
    if has_token("<|user|>") {
        return if has_token("<|end|>") {
            Family::Phi3
        } else {
            Family::Zephyr
        };
    }
    if has_token("[INST]") {
        return Family::Mistral;
    }
    match arch.as_str() {
        "phi3" => Family::Phi3,
        "mistral" | "mistral3" => Family::Mistral,
        // Llama 2 and Mistral v0.1/v0.2 GGUFs have `[INST]` as plain text,
        // not as a token; both understand the Llama 2 format.
        "llama" => Family::Llama2,
        "deepseek" | "deepseek2" => Family::DeepSeek,
        _ => Family::ChatML,
    }
}

/// Where the template in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateOrigin {
    /// Set by the user for this model.
    Custom,
    /// The GGUF's `tokenizer.chat_template`.
    Model,
    /// Ours, for a model without a template.
    Builtin(Family),
}

impl fmt::Display for TemplateOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateOrigin::Custom => f.write_str("custom"),
            TemplateOrigin::Model => f.write_str("model"),
            TemplateOrigin::Builtin(family) => write!(f, "builtin:{family}"),
        }
    }
}

/// The template a model will be prompted with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedTemplate {
    pub source: String,
    pub origin: TemplateOrigin,
}

impl SelectedTemplate {
    /// Compiles the selected source.
    pub fn compile(&self) -> Result<crate::ChatTemplate, crate::TemplateError> {
        crate::ChatTemplate::new(&self.source)
    }
}

fn present(source: Option<&str>) -> Option<&str> {
    source.filter(|text| !text.trim().is_empty())
}

/// Chooses the template: a non-blank custom one, else the model's own, else
/// the built-in one of the detected family.
pub fn select(
    custom: Option<&str>,
    from_model: Option<&str>,
    arch: &str,
    has_token: &dyn Fn(&str) -> bool,
) -> SelectedTemplate {
    select_with(custom, from_model, || detect_family(arch, has_token))
}

/// [`select`] with the family to fall back on given (e.g. the one a model's Ollama template
/// names), asked for only when neither template is there.
pub fn select_with(
    custom: Option<&str>,
    from_model: Option<&str>,
    family: impl FnOnce() -> Family,
) -> SelectedTemplate {
    if let Some(source) = present(custom) {
        return SelectedTemplate {
            source: source.to_owned(),
            origin: TemplateOrigin::Custom,
        };
    }
    if let Some(source) = present(from_model) {
        return SelectedTemplate {
            source: source.to_owned(),
            origin: TemplateOrigin::Model,
        };
    }
    let family = family();
    SelectedTemplate {
        source: family.template_source().to_owned(),
        origin: TemplateOrigin::Builtin(family),
    }
}

// The templates below write every piece of output as a `{{- '...' }}` string
// and start every tag with `{%-`, so the layout of the source never leaks
// into the prompt.

/// Macros shared by the built-in templates: `text(content)` flattens string or
/// multi-part content to text (parts joined with newlines); `args(call)` prints a call's arguments as JSON;
/// `tool_instructions(tools)` tells a model without a native tool syntax how to
/// call tools (as JSON that `GenericJson` parses); `call_json(calls)` writes
/// calls back in that same JSON.
macro_rules! prelude {
    () => {
        concat!(
            // Text parts joined with a newline, as llama.cpp's built-in formats join them.
            "{%- macro text(content) %}{% if content is string %}{{ content }}",
            "{% elif content %}{{ content | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('\\n') }}",
            "{% endif %}{% endmacro %}\n",
            "{%- macro args(call) %}{% if call.function.arguments is string %}",
            "{{ call.function.arguments }}{% else %}{{ call.function.arguments | tojson }}",
            "{% endif %}{% endmacro %}\n",
            "{%- macro tool_instructions(tools) %}",
            "{{ 'You can call these tools:\\n' }}",
            "{% for tool in tools %}{{ tool.function | tojson + '\\n' }}{% endfor %}",
            "{{ '\\nTo call tools, reply with only a JSON object ",
            "{\"name\": <tool name>, \"arguments\": <arguments object>}, ",
            "or a JSON array of such objects to call several.' }}",
            "{% endmacro %}\n",
            "{%- macro call_json(calls) %}",
            "{% if calls | length > 1 %}{{ '[' }}{% endif %}",
            "{% for call in calls %}",
            "{{ '{\"name\": \"' + call.function.name + '\", \"arguments\": ' + args(call) + '}' }}",
            "{% if not loop.last %}{{ ', ' }}{% endif %}{% endfor %}",
            "{% if calls | length > 1 %}{{ ']' }}{% endif %}",
            "{% endmacro %}\n",
            // The system text (with the tool instructions for families that
            // need them) and the messages after it.
            "{%- macro system_text(messages) %}",
            "{% if messages[0].role == 'system' %}{{ text(messages[0].content) }}{% endif %}",
            "{% endmacro %}\n",
        )
    };
}

/// Gives `system` (system text plus tool instructions) and `loop_messages`.
macro_rules! split_system_with_tool_instructions {
    () => {
        concat!(
            "{%- set system = system_text(messages) | string %}\n",
            "{%- if tools %}{% set system = (system + '\\n\\n' if system else '') + tool_instructions(tools) %}{% endif %}\n",
            "{%- set loop_messages = messages[1:] if messages[0].role == 'system' else messages %}\n",
        )
    };
}

const CHATML: &str = concat!(
    prelude!(),
    "{%- if tools %}\n",
    "{{- '<|im_start|>system\\n' }}\n",
    "{%- if messages[0].role == 'system' %}{{- text(messages[0].content) + '\\n\\n' }}{%- endif %}\n",
    "{{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n' }}\n",
    "{{- 'You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}\n",
    "{%- for tool in tools %}{{- '\\n' + tool | tojson }}{%- endfor %}\n",
    "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments ' }}\n",
    "{{- 'within <tool_call></tool_call> XML tags:\\n<tool_call>\\n' }}\n",
    "{{- '{\"name\": <function-name>, \"arguments\": <args-json-object>}\\n</tool_call><|im_end|>\\n' }}\n",
    "{%- elif messages[0].role == 'system' %}\n",
    "{{- '<|im_start|>system\\n' + text(messages[0].content) + '<|im_end|>\\n' }}\n",
    "{%- endif %}\n",
    "{%- for message in messages %}\n",
    "{%- if message.role == 'system' and loop.first %}\n",
    "{%- elif message.role == 'tool' %}\n",
    "{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}\n",
    "{{- '\\n<tool_response>\\n' + text(message.content) + '\\n</tool_response>' }}\n",
    "{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}\n",
    "{%- else %}\n",
    "{{- '<|im_start|>' + message.role + '\\n' + text(message.content) }}\n",
    "{%- for call in message.tool_calls %}\n",
    "{%- if not loop.first or text(message.content) %}{{- '\\n' }}{%- endif %}\n",
    "{{- '<tool_call>\\n{\"name\": \"' + call.function.name + '\", \"arguments\": ' + args(call) + '}\\n</tool_call>' }}\n",
    "{%- endfor %}\n",
    "{{- '<|im_end|>\\n' }}\n",
    "{%- endif %}\n",
    "{%- endfor %}\n",
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}\n",
);

const LLAMA3: &str = concat!(
    prelude!(),
    "{{- bos_token }}\n",
    "{%- set system = system_text(messages) | string %}\n",
    "{%- set loop_messages = messages[1:] if messages[0].role == 'system' else messages %}\n",
    "{%- if system or tools %}\n",
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}\n",
    "{%- if tools %}\n",
    "{{- 'Environment: ipython\\n\\nYou have access to the following functions. To call a function, ' }}\n",
    "{{- 'respond with JSON in the format {\"name\": function name, \"parameters\": dictionary of ' }}\n",
    "{{- 'argument name and its value}. Do not use variables.\\n\\n' }}\n",
    "{%- for tool in tools %}{{- tool | tojson(indent=4) + '\\n\\n' }}{%- endfor %}\n",
    "{%- endif %}\n",
    "{{- system | trim + '<|eot_id|>' }}\n",
    "{%- endif %}\n",
    "{%- for message in loop_messages %}\n",
    "{%- if message.role == 'tool' or message.role == 'ipython' %}\n",
    "{{- '<|start_header_id|>ipython<|end_header_id|>\\n\\n' + text(message.content) + '<|eot_id|>' }}\n",
    "{%- elif message.tool_calls %}\n",
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n",
    "{%- for call in message.tool_calls %}\n",
    "{{- '{\"name\": \"' + call.function.name + '\", \"parameters\": ' + args(call) + '}' }}\n",
    "{%- if not loop.last %}{{- '; ' }}{%- endif %}\n",
    "{%- endfor %}\n",
    "{{- '<|eot_id|>' }}\n",
    "{%- else %}\n",
    "{{- '<|start_header_id|>' + message.role + '<|end_header_id|>\\n\\n' + text(message.content) | trim + '<|eot_id|>' }}\n",
    "{%- endif %}\n",
    "{%- endfor %}\n",
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}\n",
);

const MISTRAL: &str = concat!(
    prelude!(),
    "{{- bos_token }}\n",
    "{%- set system = system_text(messages) | string %}\n",
    "{%- set loop_messages = messages[1:] if messages[0].role == 'system' else messages %}\n",
    "{%- set ns = namespace(last_user=-1) %}\n",
    "{%- for message in loop_messages %}{%- if message.role == 'user' %}{%- set ns.last_user = loop.index0 %}{%- endif %}{%- endfor %}\n",
    "{%- for message in loop_messages %}\n",
    "{%- if message.role == 'user' %}\n",
    "{%- if tools and loop.index0 == ns.last_user %}{{- '[AVAILABLE_TOOLS] ' + tools | tojson + '[/AVAILABLE_TOOLS]' }}{%- endif %}\n",
    "{{- '[INST] ' }}\n",
    "{%- if system and loop.index0 == ns.last_user %}{{- system + '\\n\\n' }}{%- endif %}\n",
    "{{- text(message.content) + '[/INST]' }}\n",
    "{%- elif message.role == 'tool' %}\n",
    "{{- '[TOOL_RESULTS] {\"content\": ' + text(message.content) | tojson + '}[/TOOL_RESULTS]' }}\n",
    "{%- elif message.tool_calls %}\n",
    "{{- '[TOOL_CALLS] [' }}\n",
    "{%- for call in message.tool_calls %}\n",
    "{{- '{\"name\": \"' + call.function.name + '\", \"arguments\": ' + args(call) + '}' }}\n",
    "{%- if not loop.last %}{{- ', ' }}{%- endif %}\n",
    "{%- endfor %}\n",
    "{{- ']' + eos_token }}\n",
    "{%- else %}\n",
    "{{- ' ' + text(message.content) | trim + eos_token }}\n",
    "{%- endif %}\n",
    "{%- endfor %}\n",
);

const LLAMA2: &str = concat!(
    prelude!(),
    split_system_with_tool_instructions!(),
    "{%- for message in loop_messages %}\n",
    "{%- if message.role == 'assistant' %}\n",
    "{%- set reply = call_json(message.tool_calls) if message.tool_calls else text(message.content) | trim %}\n",
    "{{- ' ' + reply + ' ' + eos_token }}\n",
    "{%- else %}\n",
    "{{- bos_token + '[INST] ' }}\n",
    "{%- if loop.first and system %}{{- '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' }}{%- endif %}\n",
    "{%- if message.role == 'tool' %}{{- 'Tool result: ' }}{%- endif %}\n",
    "{{- text(message.content) | trim + ' [/INST]' }}\n",
    "{%- endif %}\n",
    "{%- endfor %}\n",
);

const GEMMA: &str = concat!(
    prelude!(),
    split_system_with_tool_instructions!(),
    "{{- bos_token }}\n",
    "{%- for message in loop_messages %}\n",
    "{{- '<start_of_turn>' + ('model' if message.role == 'assistant' else 'user') + '\\n' }}\n",
    "{%- if loop.first and system %}{{- system + '\\n\\n' }}{%- endif %}\n",
    "{%- if message.tool_calls %}{{- call_json(message.tool_calls) }}\n",
    "{%- else %}\n",
    "{%- if message.role == 'tool' %}{{- 'Tool result: ' }}{%- endif %}\n",
    "{{- text(message.content) | trim }}\n",
    "{%- endif %}\n",
    "{{- '<end_of_turn>\\n' }}\n",
    "{%- endfor %}\n",
    "{%- if add_generation_prompt %}{{- '<start_of_turn>model\\n' }}{%- endif %}\n",
);

const PHI3: &str = concat!(
    prelude!(),
    split_system_with_tool_instructions!(),
    "{%- if system %}{{- '<|system|>\\n' + system + '<|end|>\\n' }}{%- endif %}\n",
    "{%- for message in loop_messages %}\n",
    "{%- if message.role == 'assistant' %}\n",
    "{%- set reply = call_json(message.tool_calls) if message.tool_calls else text(message.content) %}\n",
    "{{- '<|assistant|>\\n' + reply + '<|end|>\\n' }}\n",
    "{%- else %}\n",
    "{{- '<|user|>\\n' + ('Tool result: ' if message.role == 'tool' else '') + text(message.content) + '<|end|>\\n' }}\n",
    "{%- endif %}\n",
    "{%- endfor %}\n",
    "{%- if add_generation_prompt %}{{- '<|assistant|>\\n' }}{%- endif %}\n",
);

const PHI4: &str = concat!(
    prelude!(),
    split_system_with_tool_instructions!(),
    "{%- if system %}{{- '<|im_start|>system<|im_sep|>' + system + '<|im_end|>' }}{%- endif %}\n",
    "{%- for message in loop_messages %}\n",
    "{%- if message.role == 'assistant' %}\n",
    "{%- set reply = call_json(message.tool_calls) if message.tool_calls else text(message.content) %}\n",
    "{{- '<|im_start|>assistant<|im_sep|>' + reply + '<|im_end|>' }}\n",
    "{%- else %}\n",
    "{{- '<|im_start|>user<|im_sep|>' + ('Tool result: ' if message.role == 'tool' else '') + text(message.content) + '<|im_end|>' }}\n",
    "{%- endif %}\n",
    "{%- endfor %}\n",
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant<|im_sep|>' }}{%- endif %}\n",
);

const DEEPSEEK: &str = concat!(
    prelude!(),
    split_system_with_tool_instructions!(),
    "{{- bos_token + system }}\n",
    "{%- for message in loop_messages %}\n",
    "{%- if message.role == 'assistant' %}\n",
    // Earlier reasoning is not repeated in the prompt, as in DeepSeek's own template.
    "{%- set reply = call_json(message.tool_calls) if message.tool_calls else text(message.content).split('</think>') | last %}\n",
    "{{- '<｜Assistant｜>' + reply + '<｜end▁of▁sentence｜>' }}\n",
    "{%- else %}\n",
    "{{- '<｜User｜>' + ('Tool result: ' if message.role == 'tool' else '') + text(message.content) }}\n",
    "{%- endif %}\n",
    "{%- endfor %}\n",
    "{%- if add_generation_prompt %}{{- '<｜Assistant｜>' }}{%- endif %}\n",
);

const ZEPHYR: &str = concat!(
    prelude!(),
    split_system_with_tool_instructions!(),
    "{%- if system %}{{- '<|system|>\\n' + system + eos_token + '\\n' }}{%- endif %}\n",
    "{%- for message in loop_messages %}\n",
    "{%- if message.role == 'assistant' %}\n",
    "{%- set reply = call_json(message.tool_calls) if message.tool_calls else text(message.content) %}\n",
    "{{- '<|assistant|>\\n' + reply + eos_token + '\\n' }}\n",
    "{%- else %}\n",
    "{{- '<|user|>\\n' + ('Tool result: ' if message.role == 'tool' else '') + text(message.content) + eos_token + '\\n' }}\n",
    "{%- endif %}\n",
    "{%- endfor %}\n",
    "{%- if add_generation_prompt %}{{- '<|assistant|>\\n' }}{%- endif %}\n",
);
