//! Built-in templates: every family renders every conversation shape, the
//! ones that copy an official format match the real template, and family
//! detection and template selection pick what they should.

use std::collections::HashSet;

use chat::{
    ChatMessage, ChatTemplate, Family, RenderContext, TemplateOrigin, Tool, ToolCall,
    ToolCallFormat, detect_family, detect_format, parse_tool_calls, select,
};
use serde_json::json;

fn real(file: &str) -> ChatTemplate {
    let path = format!("{}/tests/templates/{file}", env!("CARGO_MANIFEST_DIR"));
    ChatTemplate::new(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn builtin(family: Family) -> ChatTemplate {
    ChatTemplate::new(family.template_source())
        .unwrap_or_else(|err| panic!("built-in {family} does not compile: {err}"))
}

fn weather_tool() -> Tool {
    Tool::new(
        "get_weather",
        Some("Get the current weather"),
        json!({"properties": {"city": {"type": "string"}}, "required": ["city"], "type": "object"}),
    )
}

fn chat_with_system() -> Vec<ChatMessage> {
    vec![
        ChatMessage::system("You are a helpful assistant."),
        ChatMessage::user("Hello!"),
        ChatMessage::assistant("Hi there! How can I help?"),
        ChatMessage::user("What is 2+2?"),
    ]
}

fn tool_round() -> Vec<ChatMessage> {
    vec![
        ChatMessage::system("You are a helpful assistant."),
        ChatMessage::user("What's the weather in Paris?"),
        ChatMessage::assistant_tool_calls(vec![ToolCall::new(
            "call_1",
            "get_weather",
            r#"{"city": "Paris"}"#,
        )]),
        ChatMessage::tool("call_1", "22°C and sunny"),
    ]
}

fn ctx<'a>(messages: &'a [ChatMessage], tools: Option<&'a [Tool]>) -> RenderContext<'a> {
    RenderContext {
        tools,
        bos_token: "<bos>",
        eos_token: "</s>",
        ..RenderContext::new(messages)
    }
}

#[test]
fn every_family_renders_every_shape() {
    let tools = [weather_tool()];
    let parts: Vec<ChatMessage> = serde_json::from_value(json!([
        {"role": "user", "content": [{"type": "text", "text": "Look: "},
                                     {"type": "image_url", "image_url": {"url": "data:,"}}]}
    ]))
    .unwrap();
    let conversations = [
        chat_with_system(),
        tool_round(),
        parts,
        vec![ChatMessage::user("Hi")],
        vec![],
    ];
    for family in Family::ALL {
        let template = builtin(family);
        for messages in &conversations {
            for tools in [None, Some(&tools[..])] {
                let prompt = template
                    .render(&ctx(messages, tools))
                    .unwrap_or_else(|err| panic!("{family}: {err}"));
                if let Some(last) = messages.last() {
                    assert!(prompt.contains(last.text().trim()), "{family}: {prompt}");
                }
            }
        }
        assert!(!family.stop_strings().is_empty());
        assert_eq!(family.name().parse::<Family>(), Ok(family));
    }
}

#[test]
fn built_ins_match_the_official_templates() {
    let chat = chat_with_system();
    let pairs = [
        (Family::ChatML, "qwen2.5-instruct.jinja"),
        (Family::Gemma, "gemma-3-it.jinja"),
        (Family::Phi3, "phi-3.5-mini-instruct.jinja"),
        (Family::Phi4, "phi-4.jinja"),
        (Family::Mistral, "mistral-7b-instruct-v0.3.jinja"),
    ];
    for (family, file) in pairs {
        assert_eq!(
            builtin(family).render(&ctx(&chat, None)).unwrap(),
            real(file).render(&ctx(&chat, None)).unwrap(),
            "{family} vs {file}"
        );
    }
    // ChatML also writes tools, calls and results the way Qwen 2.5 does.
    let tools = [weather_tool()];
    let round = tool_round();
    assert_eq!(
        builtin(Family::ChatML)
            .render(&ctx(&round, Some(&tools)))
            .unwrap(),
        real("qwen2.5-instruct.jinja")
            .render(&ctx(&round, Some(&tools)))
            .unwrap()
    );
}

#[test]
fn gemma_base_model_prompt() {
    let messages = [ChatMessage::user("Hi")];
    assert_eq!(
        builtin(Family::Gemma)
            .render(&ctx(&messages, None))
            .unwrap(),
        "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    );
}

#[test]
fn generic_tool_instructions_round_trip() {
    // A family without a tool syntax asks for JSON, shows earlier calls as
    // that JSON, and the GenericJson parser reads it back.
    let tools = [weather_tool()];
    let round = tool_round();
    let prompt = builtin(Family::Gemma)
        .render(&ctx(&round, Some(&tools)))
        .unwrap();
    assert_eq!(
        prompt,
        "<bos><start_of_turn>user\nYou are a helpful assistant.\n\n\
         You can call these tools:\n\
         {\"name\": \"get_weather\", \"description\": \"Get the current weather\", \"parameters\": \
         {\"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"], \"type\": \"object\"}}\n\n\
         To call tools, reply with only a JSON object {\"name\": <tool name>, \"arguments\": <arguments object>}, \
         or a JSON array of such objects to call several.\n\n\
         What's the weather in Paris?<end_of_turn>\n\
         <start_of_turn>model\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}<end_of_turn>\n\
         <start_of_turn>user\nTool result: 22°C and sunny<end_of_turn>\n\
         <start_of_turn>model\n"
    );
    let source = Family::Gemma.template_source();
    let format = detect_format(source, Some(Family::Gemma));
    assert_eq!(format, ToolCallFormat::GenericJson);
    let parsed = parse_tool_calls(
        format,
        r#"{"name": "get_weather", "arguments": {"city": "Paris"}}"#,
    );
    assert_eq!(parsed.tool_calls[0].arguments, r#"{"city":"Paris"}"#);

    for (family, expected) in [
        (Family::ChatML, ToolCallFormat::Hermes),
        (Family::Llama3, ToolCallFormat::Llama3Json),
        (Family::Mistral, ToolCallFormat::Mistral),
        (Family::Phi3, ToolCallFormat::GenericJson),
        (Family::DeepSeek, ToolCallFormat::GenericJson),
    ] {
        assert_eq!(
            detect_format(family.template_source(), Some(family)),
            expected,
            "{family}"
        );
    }
}

#[test]
fn llama3_builtin_with_tools() {
    let tools = [weather_tool()];
    let round = tool_round();
    let prompt = builtin(Family::Llama3)
        .render(&ctx(&round, Some(&tools)))
        .unwrap();
    assert!(prompt.starts_with(
        "<bos><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\n\n"
    ));
    assert!(prompt.ends_with(
        "You are a helpful assistant.<|eot_id|>\
         <|start_header_id|>user<|end_header_id|>\n\nWhat's the weather in Paris?<|eot_id|>\
         <|start_header_id|>assistant<|end_header_id|>\n\n\
         {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<|eot_id|>\
         <|start_header_id|>ipython<|end_header_id|>\n\n22°C and sunny<|eot_id|>\
         <|start_header_id|>assistant<|end_header_id|>\n\n"
    ));
}

fn vocab(tokens: &[&str]) -> impl Fn(&str) -> bool + use<> {
    let set: HashSet<String> = tokens.iter().map(|t| t.to_string()).collect();
    move |token: &str| set.contains(token)
}

#[test]
fn detects_families() {
    let cases: &[(&str, &[&str], Family)] = &[
        // Gemma 3 270M base: no template, but the turn tokens are in the vocabulary.
        (
            "gemma3",
            &["<bos>", "<start_of_turn>", "<end_of_turn>"],
            Family::Gemma,
        ),
        ("gemma2", &[], Family::Gemma),
        ("gemma", &[], Family::Gemma),
        (
            "llama",
            &["<|begin_of_text|>", "<|start_header_id|>", "<|eot_id|>"],
            Family::Llama3,
        ),
        ("llama", &["<|im_start|>", "<|im_end|>"], Family::ChatML), // SmolLM2
        (
            "llama",
            &["[INST]", "[/INST]", "[TOOL_CALLS]"],
            Family::Mistral,
        ),
        ("llama", &["<s>", "</s>"], Family::Llama2),
        ("mistral", &[], Family::Mistral),
        (
            "phi3",
            &["<|user|>", "<|end|>", "<|assistant|>"],
            Family::Phi3,
        ),
        ("phi3", &["<|im_start|>", "<|im_sep|>"], Family::Phi4),
        ("phi3", &[], Family::Phi3),
        ("qwen2", &["<|im_start|>"], Family::ChatML),
        ("qwen3", &[], Family::ChatML),
        (
            "deepseek2",
            &["<｜User｜>", "<｜Assistant｜>"],
            Family::DeepSeek,
        ),
        ("deepseek2", &[], Family::DeepSeek),
        ("stablelm", &["<|user|>", "<|assistant|>"], Family::Zephyr),
        ("something-new", &[], Family::ChatML),
    ];
    for (arch, tokens, expected) in cases {
        assert_eq!(
            detect_family(arch, &vocab(tokens)),
            *expected,
            "{arch} {tokens:?}"
        );
    }
}

#[test]
fn selects_custom_then_model_then_builtin() {
    let gemma_vocab = vocab(&["<start_of_turn>"]);
    let custom = select(
        Some("{{ 'custom' }}"),
        Some("{{ 'model' }}"),
        "gemma3",
        &gemma_vocab,
    );
    assert_eq!(custom.origin, TemplateOrigin::Custom);
    assert_eq!(custom.source, "{{ 'custom' }}");

    let model = select(Some("  \n"), Some("{{ 'model' }}"), "gemma3", &gemma_vocab);
    assert_eq!(model.origin, TemplateOrigin::Model);

    let fallback = select(None, Some(""), "gemma3", &gemma_vocab);
    assert_eq!(fallback.origin, TemplateOrigin::Builtin(Family::Gemma));
    assert_eq!(fallback.origin.to_string(), "builtin:gemma");
    assert_eq!(fallback.source, Family::Gemma.template_source());
    let messages = [ChatMessage::user("Hi")];
    assert!(
        fallback
            .compile()
            .unwrap()
            .render(&RenderContext::new(&messages))
            .unwrap()
            .contains("<start_of_turn>model\n")
    );
}

#[test]
fn family_names_parse() {
    assert_eq!("ChatML".parse::<Family>(), Ok(Family::ChatML));
    let err = "vicuna".parse::<Family>().unwrap_err();
    assert!(
        err.contains("unknown chat template family `vicuna`"),
        "{err}"
    );
    assert!(err.contains("gemma"), "{err}");
}

#[test]
fn text_parts_are_joined_with_newlines_like_llama_cpp_builtin_formats() {
    let content = chat::MessageContent::Parts(vec![
        chat::ContentPart::Text {
            text: "What is".into(),
        },
        chat::ContentPart::ImageUrl {
            image_url: chat::ImageUrl {
                url: "data:,".into(),
                detail: None,
            },
        },
        chat::ContentPart::Text {
            text: "the best book".into(),
        },
    ]);
    let messages = [ChatMessage {
        content: Some(content),
        ..ChatMessage::user("")
    }];
    let template = ChatTemplate::new(Family::ChatML.template_source()).unwrap();
    assert_eq!(
        template.render(&RenderContext::new(&messages)).unwrap(),
        "<|im_start|>user\nWhat is\nthe best book<|im_end|>\n<|im_start|>assistant\n"
    );
}
