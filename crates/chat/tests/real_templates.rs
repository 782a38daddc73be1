//! Real chat templates from models' `tokenizer_config.json`, rendered and
//! compared with what Python Jinja2 (transformers' `apply_chat_template`)
//! produces for them. The expected strings were written by hand from the
//! templates.

use chat::{
    ChatMessage, ChatTemplate, Family, RenderContext, TemplateError, Tool, ToolCall,
    ToolCallFormat, detect_format,
};
use serde_json::json;

fn template(file: &str) -> ChatTemplate {
    let path = format!("{}/tests/templates/{file}", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    ChatTemplate::new(&source).unwrap_or_else(|err| panic!("{file}: {err}"))
}

fn source(file: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/templates/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// user / assistant / user.
fn chat() -> Vec<ChatMessage> {
    vec![
        ChatMessage::user("Hello!"),
        ChatMessage::assistant("Hi there! How can I help?"),
        ChatMessage::user("What is 2+2?"),
    ]
}

fn chat_with_system() -> Vec<ChatMessage> {
    let mut messages = vec![ChatMessage::system("You are a helpful assistant.")];
    messages.extend(chat());
    messages
}

// Keys in sorted order at every level, so the expected text is the same
// whether or not serde_json keeps insertion order in this build.
fn weather_tool() -> Tool {
    Tool::new(
        "get_weather",
        Some("Get the current weather"),
        json!({"properties": {"city": {"type": "string"}}, "required": ["city"], "type": "object"}),
    )
}

/// user asks, assistant calls a tool, the tool answers.
fn tool_round(call_id: &str) -> Vec<ChatMessage> {
    vec![
        ChatMessage::user("What's the weather in Paris?"),
        ChatMessage::assistant_tool_calls(vec![ToolCall::new(
            call_id,
            "get_weather",
            r#"{"city": "Paris"}"#,
        )]),
        ChatMessage::tool(call_id, "22°C and sunny"),
    ]
}

fn render(template: &ChatTemplate, ctx: &RenderContext<'_>) -> String {
    template
        .render(ctx)
        .unwrap_or_else(|err| panic!("render failed: {err}"))
}

fn ctx<'a>(messages: &'a [ChatMessage], bos: &'a str, eos: &'a str) -> RenderContext<'a> {
    RenderContext {
        bos_token: bos,
        eos_token: eos,
        ..RenderContext::new(messages)
    }
}

#[test]
fn smollm2_adds_its_default_system_prompt() {
    let t = template("smollm2-instruct.jinja");
    let messages = chat();
    assert_eq!(
        render(&t, &ctx(&messages, "", "")),
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nHello!<|im_end|>\n\
         <|im_start|>assistant\nHi there! How can I help?<|im_end|>\n\
         <|im_start|>user\nWhat is 2+2?<|im_end|>\n\
         <|im_start|>assistant\n"
    );
    let messages = chat_with_system();
    let no_prompt = RenderContext {
        add_generation_prompt: false,
        ..ctx(&messages, "", "")
    };
    assert_eq!(
        render(&t, &no_prompt),
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n\
         <|im_start|>user\nHello!<|im_end|>\n\
         <|im_start|>assistant\nHi there! How can I help?<|im_end|>\n\
         <|im_start|>user\nWhat is 2+2?<|im_end|>\n"
    );
}

fn llama_ctx<'a>(messages: &'a [ChatMessage]) -> RenderContext<'a> {
    let mut ctx = ctx(messages, "<|begin_of_text|>", "<|eot_id|>");
    ctx.extra.insert("date_string".into(), json!("26 Jul 2024"));
    ctx
}

#[test]
fn llama_3_2_conversation() {
    let t = template("llama-3.2-instruct.jinja");
    let messages = chat_with_system();
    assert_eq!(
        render(&t, &llama_ctx(&messages)),
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n\
         Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n\
         You are a helpful assistant.<|eot_id|>\
         <|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>\
         <|start_header_id|>assistant<|end_header_id|>\n\nHi there! How can I help?<|eot_id|>\
         <|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>\
         <|start_header_id|>assistant<|end_header_id|>\n\n"
    );
}

#[test]
fn llama_3_2_uses_strftime_now_without_a_date() {
    let t = template("llama-3.2-instruct.jinja");
    let messages = [ChatMessage::user("Hi")];
    let prompt = render(&t, &ctx(&messages, "<|begin_of_text|>", ""));
    let today = chat::strftime(
        "%d %b %Y",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    );
    // (Rendering right at midnight UTC could see yesterday; good enough.)
    assert!(
        prompt.contains(&format!("Today Date: {today}\n\n")),
        "{prompt}"
    );
}

#[test]
fn llama_3_2_tools_and_tool_results() {
    let t = template("llama-3.2-instruct.jinja");
    let mut messages = vec![ChatMessage::system("You are a helpful assistant.")];
    messages.extend(tool_round("call_1"));
    let tools = [weather_tool()];
    let ctx = RenderContext {
        tools: Some(&tools),
        ..llama_ctx(&messages)
    };
    let tool_json = "{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_weather\",\n        \
        \"description\": \"Get the current weather\",\n        \"parameters\": {\n            \"properties\": {\n                \
        \"city\": {\n                    \"type\": \"string\"\n                }\n            },\n            \
        \"required\": [\n                \"city\"\n            ],\n            \"type\": \"object\"\n        }\n    }\n}";
    let expected = format!(
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n\
         Environment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n\
         You are a helpful assistant.<|eot_id|>\
         <|start_header_id|>user<|end_header_id|>\n\n\
         Given the following functions, please respond with a JSON for a function call \
         with its proper arguments that best answers the given prompt.\n\n\
         Respond in the format {{\"name\": function name, \"parameters\": dictionary of argument name and its value}}.\
         Do not use variables.\n\n{tool_json}\n\nWhat's the weather in Paris?<|eot_id|>\
         <|start_header_id|>assistant<|end_header_id|>\n\n\
         {{\"name\": \"get_weather\", \"parameters\": {{\"city\": \"Paris\"}}}}<|eot_id|>\
         <|start_header_id|>ipython<|end_header_id|>\n\n\"22°C and sunny\"<|eot_id|>\
         <|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    assert_eq!(render(&t, &ctx), expected);
    assert_eq!(
        detect_format(&source("llama-3.2-instruct.jinja"), Some(Family::Llama3)),
        ToolCallFormat::Llama3Json
    );
}

#[test]
fn llama_3_2_refuses_parallel_calls() {
    let t = template("llama-3.2-instruct.jinja");
    let messages = [
        ChatMessage::user("Weather in Paris and Rome?"),
        ChatMessage::assistant_tool_calls(vec![
            ToolCall::new("a", "get_weather", r#"{"city": "Paris"}"#),
            ToolCall::new("b", "get_weather", r#"{"city": "Rome"}"#),
        ]),
    ];
    assert_eq!(
        t.render(&llama_ctx(&messages)),
        Err(TemplateError::Raised(
            "This model only supports single tool-calls at once!".into()
        ))
    );
}

#[test]
fn qwen2_5_conversation_and_tools() {
    let t = template("qwen2.5-instruct.jinja");
    let messages = chat();
    assert_eq!(
        render(&t, &ctx(&messages, "", "<|im_end|>")),
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n\
         <|im_start|>user\nHello!<|im_end|>\n\
         <|im_start|>assistant\nHi there! How can I help?<|im_end|>\n\
         <|im_start|>user\nWhat is 2+2?<|im_end|>\n\
         <|im_start|>assistant\n"
    );

    let mut messages = vec![ChatMessage::system("You are a helpful assistant.")];
    messages.extend(tool_round("call_1"));
    let tools = [weather_tool()];
    let ctx = RenderContext {
        tools: Some(&tools),
        ..ctx(&messages, "", "<|im_end|>")
    };
    assert_eq!(
        render(&t, &ctx),
        "<|im_start|>system\nYou are a helpful assistant.\n\n# Tools\n\n\
         You may call one or more functions to assist with the user query.\n\n\
         You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n\
         {\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the current weather\", \
         \"parameters\": {\"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"], \"type\": \"object\"}}}\n\
         </tools>\n\n\
         For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n\
         <tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n\
         <|im_start|>user\nWhat's the weather in Paris?<|im_end|>\n\
         <|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n\
         <|im_start|>user\n<tool_response>\n22°C and sunny\n</tool_response><|im_end|>\n\
         <|im_start|>assistant\n"
    );
    assert_eq!(
        detect_format(&source("qwen2.5-instruct.jinja"), None),
        ToolCallFormat::Hermes
    );
}

#[test]
fn qwen3_thinking_switch_and_reasoning_content() {
    let t = template("qwen3.jinja");
    let messages = [ChatMessage::user("Hello!")];
    let mut no_think = ctx(&messages, "", "<|im_end|>");
    no_think
        .extra
        .insert("enable_thinking".into(), json!(false));
    assert_eq!(
        render(&t, &no_think),
        "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    );

    // Reasoning of earlier turns is dropped from the prompt.
    let messages = [
        ChatMessage::user("Q1"),
        ChatMessage {
            reasoning_content: Some("thinking about Q1".into()),
            ..ChatMessage::assistant("A1")
        },
        ChatMessage::user("Q2"),
    ];
    assert_eq!(
        render(&t, &ctx(&messages, "", "")),
        "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n\
         <|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n"
    );

    // ...but kept for a tool-calling turn after the last user query.
    let mut messages = tool_round("call_1");
    messages[1].content = Some("".into());
    messages[1].reasoning_content = Some("Need weather.".into());
    assert_eq!(
        render(&t, &ctx(&messages, "", "")),
        "<|im_start|>user\nWhat's the weather in Paris?<|im_end|>\n\
         <|im_start|>assistant\n<think>\nNeed weather.\n</think>\n\n\
         <tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n\
         <|im_start|>user\n<tool_response>\n22°C and sunny\n</tool_response><|im_end|>\n\
         <|im_start|>assistant\n"
    );

    // Reasoning written inline with <think> tags is split out the same way.
    let messages = [
        ChatMessage::user("Q1"),
        ChatMessage::assistant("<think>\nhmm\n</think>\n\nA1"),
    ];
    assert_eq!(
        render(
            &t,
            &RenderContext {
                add_generation_prompt: false,
                ..ctx(&messages, "", "")
            }
        ),
        "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\n<think>\nhmm\n</think>\n\nA1<|im_end|>\n"
    );
}

#[test]
fn mistral_v0_3_conversation() {
    let t = template("mistral-7b-instruct-v0.3.jinja");
    let messages = chat_with_system();
    assert_eq!(
        render(&t, &ctx(&messages, "<s>", "</s>")),
        "<s>[INST] Hello![/INST] Hi there! How can I help?</s>\
         [INST] You are a helpful assistant.\n\nWhat is 2+2?[/INST]"
    );
}

#[test]
fn mistral_v0_3_tools() {
    let t = template("mistral-7b-instruct-v0.3.jinja");
    let messages = tool_round("abcDEF123");
    let tools = [weather_tool()];
    let ctx = RenderContext {
        tools: Some(&tools),
        ..ctx(&messages, "<s>", "</s>")
    };
    assert_eq!(
        render(&t, &ctx),
        "<s>[AVAILABLE_TOOLS] [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \
         \"description\": \"Get the current weather\", \"parameters\": {\"properties\": {\"city\": {\"type\": \"string\"}}, \
         \"required\": [\"city\"], \"type\": \"object\"}}}][/AVAILABLE_TOOLS]\
         [INST] What's the weather in Paris?[/INST]\
         [TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, \"id\": \"abcDEF123\"}]</s>\
         [TOOL_RESULTS] {\"content\": 22°C and sunny, \"call_id\": \"abcDEF123\"}[/TOOL_RESULTS]"
    );
    assert_eq!(
        detect_format(&source("mistral-7b-instruct-v0.3.jinja"), None),
        ToolCallFormat::Mistral
    );

    // OpenAI-style ids are refused by the template itself.
    let messages = tool_round("call_123456789");
    assert_eq!(
        t.render(&ctx_with_tools(&messages, &tools)),
        Err(TemplateError::Raised(
            "Tool call IDs should be alphanumeric strings with length 9!".into()
        ))
    );
}

fn ctx_with_tools<'a>(messages: &'a [ChatMessage], tools: &'a [Tool]) -> RenderContext<'a> {
    RenderContext {
        tools: Some(tools),
        ..ctx(messages, "<s>", "</s>")
    }
}

#[test]
fn mistral_v0_3_requires_alternation() {
    let t = template("mistral-7b-instruct-v0.3.jinja");
    let messages = [ChatMessage::user("a"), ChatMessage::user("b")];
    assert_eq!(
        t.render(&ctx(&messages, "<s>", "</s>")),
        Err(TemplateError::Raised(
            "After the optional system message, conversation roles must alternate user/assistant/user/assistant/..."
                .into()
        ))
    );
}

#[test]
fn gemma_2() {
    let t = template("gemma-2-it.jinja");
    let messages = chat();
    assert_eq!(
        render(&t, &ctx(&messages, "<bos>", "<eos>")),
        "<bos><start_of_turn>user\nHello!<end_of_turn>\n\
         <start_of_turn>model\nHi there! How can I help?<end_of_turn>\n\
         <start_of_turn>user\nWhat is 2+2?<end_of_turn>\n\
         <start_of_turn>model\n"
    );
    // Its template raises "System role not supported"; like llama.cpp, the system text
    // goes into the first user message instead.
    let messages = chat_with_system();
    assert_eq!(
        render(&t, &ctx(&messages, "<bos>", "<eos>")),
        "<bos><start_of_turn>user\nYou are a helpful assistant.\nHello!<end_of_turn>\n\
         <start_of_turn>model\nHi there! How can I help?<end_of_turn>\n\
         <start_of_turn>user\nWhat is 2+2?<end_of_turn>\n\
         <start_of_turn>model\n"
    );
    // OpenAI's `developer` role is a system message to templates, as in llama.cpp.
    let mut messages = chat_with_system();
    messages[0].role = "developer".into();
    assert!(
        render(&t, &ctx(&messages, "<bos>", "<eos>"))
            .starts_with("<bos><start_of_turn>user\nYou are a helpful assistant.\nHello!")
    );
    let messages = [ChatMessage::user("a"), ChatMessage::user("b")];
    assert_eq!(
        t.render(&ctx(&messages, "<bos>", "<eos>")),
        Err(TemplateError::Raised(
            "Conversation roles must alternate user/assistant/user/assistant/...".into()
        ))
    );
}

#[test]
fn gemma_3_folds_the_system_prompt_into_the_first_turn() {
    let t = template("gemma-3-it.jinja");
    let messages = chat_with_system();
    assert_eq!(
        render(&t, &ctx(&messages, "<bos>", "<eos>")),
        "<bos><start_of_turn>user\nYou are a helpful assistant.\n\nHello!<end_of_turn>\n\
         <start_of_turn>model\nHi there! How can I help?<end_of_turn>\n\
         <start_of_turn>user\nWhat is 2+2?<end_of_turn>\n\
         <start_of_turn>model\n"
    );
    // Multi-part content: text parts are trimmed, an OpenAI image_url part is
    // not the `image` type Gemma's template knows, so it is skipped.
    let messages: Vec<ChatMessage> = serde_json::from_value(json!([
        {"role": "user", "content": [
            {"type": "text", "text": " Describe "},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
        ]}
    ]))
    .unwrap();
    assert_eq!(
        render(&t, &ctx(&messages, "<bos>", "<eos>")),
        "<bos><start_of_turn>user\nDescribe<end_of_turn>\n<start_of_turn>model\n"
    );
    let messages = [ChatMessage::assistant("first")];
    assert!(matches!(
        t.render(&ctx(&messages, "<bos>", "<eos>")),
        Err(TemplateError::Raised(_))
    ));
    assert_eq!(
        detect_format(&source("gemma-3-it.jinja"), Some(Family::Gemma)),
        ToolCallFormat::GenericJson
    );
}

#[test]
fn phi_3_5_and_phi_4() {
    let messages = chat_with_system();
    assert_eq!(
        render(
            &template("phi-3.5-mini-instruct.jinja"),
            &ctx(&messages, "<s>", "<|endoftext|>")
        ),
        "<|system|>\nYou are a helpful assistant.<|end|>\n\
         <|user|>\nHello!<|end|>\n\
         <|assistant|>\nHi there! How can I help?<|end|>\n\
         <|user|>\nWhat is 2+2?<|end|>\n\
         <|assistant|>\n"
    );
    let finished = RenderContext {
        add_generation_prompt: false,
        ..ctx(&messages[..2], "<s>", "<|endoftext|>")
    };
    assert_eq!(
        render(&template("phi-3.5-mini-instruct.jinja"), &finished),
        "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nHello!<|end|>\n<|endoftext|>"
    );
    assert_eq!(
        render(&template("phi-4.jinja"), &ctx(&messages, "", "")),
        "<|im_start|>system<|im_sep|>You are a helpful assistant.<|im_end|>\
         <|im_start|>user<|im_sep|>Hello!<|im_end|>\
         <|im_start|>assistant<|im_sep|>Hi there! How can I help?<|im_end|>\
         <|im_start|>user<|im_sep|>What is 2+2?<|im_end|>\
         <|im_start|>assistant<|im_sep|>"
    );
}

#[test]
fn deepseek_r1_distill() {
    let t = template("deepseek-r1-distill.jinja");
    let bos = "<｜begin▁of▁sentence｜>";
    let mut messages = chat_with_system();
    messages[2] =
        ChatMessage::assistant("<think>\nsmall talk\n</think>\n\nHi there! How can I help?");
    assert_eq!(
        render(&t, &ctx(&messages, bos, "<｜end▁of▁sentence｜>")),
        "<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>Hello!\
         <｜Assistant｜>\n\nHi there! How can I help?<｜end▁of▁sentence｜>\
         <｜User｜>What is 2+2?<｜Assistant｜><think>\n"
    );

    // The template concatenates `'...' + arguments`, which needs the JSON
    // string rather than an object: rendering falls back to strings.
    let messages = tool_round("call_1");
    assert_eq!(
        render(&t, &ctx(&messages, bos, "<｜end▁of▁sentence｜>")),
        "<｜begin▁of▁sentence｜><｜User｜>What's the weather in Paris?\
         <｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n\
         ```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜>\
         <｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>22°C and sunny<｜tool▁output▁end｜>\
         <｜tool▁outputs▁end｜>"
    );
}

#[test]
fn every_real_template_renders_every_conversation_shape_or_says_why() {
    // Whatever a client sends, rendering ends in a prompt or an error, never a panic.
    let files = [
        "smollm2-instruct.jinja",
        "llama-3.2-instruct.jinja",
        "qwen2.5-instruct.jinja",
        "qwen3.jinja",
        "mistral-7b-instruct-v0.3.jinja",
        "gemma-2-it.jinja",
        "gemma-3-it.jinja",
        "phi-3.5-mini-instruct.jinja",
        "phi-4.jinja",
        "deepseek-r1-distill.jinja",
    ];
    let tools = [weather_tool()];
    let conversations: Vec<Vec<ChatMessage>> = vec![
        vec![],
        chat(),
        chat_with_system(),
        tool_round("abcDEF123"),
        vec![ChatMessage::system("only a system prompt")],
        vec![ChatMessage::new("narrator", "odd role")],
        vec![ChatMessage {
            content: None,
            ..ChatMessage::user("")
        }],
    ];
    for file in files {
        let t = template(file);
        for messages in &conversations {
            for tools in [None, Some(&tools[..])] {
                let ctx = RenderContext {
                    tools,
                    ..ctx(messages, "<s>", "</s>")
                };
                let _ = t.render(&ctx);
            }
        }
    }
}

/// "What is" and "the best book" as two text parts, as OpenAI clients send them.
fn parts(texts: &[&str]) -> chat::MessageContent {
    chat::MessageContent::Parts(
        texts
            .iter()
            .map(|text| chat::ContentPart::Text {
                text: (*text).to_owned(),
            })
            .collect(),
    )
}

#[test]
fn text_parts_are_joined_for_templates_that_want_strings() {
    // SmolLM2 writes `'...' + message['content']`, which fails on a list ("string +
    // sequence"); like llama.cpp, its parts arrive joined with a newline.
    let t = template("smollm2-instruct.jinja");
    assert_eq!(
        t.content_caps(),
        chat::ContentCaps {
            strings: true,
            parts: false
        }
    );
    let messages = [
        ChatMessage::system("Book"),
        ChatMessage {
            content: Some(parts(&["What is", "the best book"])),
            ..ChatMessage::user("")
        },
    ];
    assert_eq!(
        render(&t, &RenderContext::new(&messages)),
        "<|im_start|>system\nBook<|im_end|>\n\
         <|im_start|>user\nWhat is\nthe best book<|im_end|>\n\
         <|im_start|>assistant\n"
    );
}

#[test]
fn templates_that_take_parts_get_them_as_sent() {
    // Gemma 3 iterates over parts itself (and takes strings too).
    let t = template("gemma-3-it.jinja");
    assert_eq!(
        t.content_caps(),
        chat::ContentCaps {
            strings: true,
            parts: true
        }
    );
    let messages = [ChatMessage {
        content: Some(parts(&["What is", "the best book"])),
        ..ChatMessage::user("")
    }];
    let prompt = render(&t, &ctx(&messages, "<bos>", ""));
    assert_eq!(
        prompt,
        "<bos><start_of_turn>user\nWhat isthe best book<end_of_turn>\n<start_of_turn>model\n"
    );
}

#[test]
fn continuing_the_final_message_renders_the_turn_open() {
    // llama.cpp's prefill: the conversation before it with a generation prompt, then
    // the message's text, parts joined with a blank line.
    let t = template("llama-3.1-instruct.jinja");
    for (content, expected) in [
        (chat::MessageContent::Text("Whill".into()), "Whill"),
        (parts(&["Wh", "ill"]), "Wh\n\nill"),
    ] {
        let messages = [
            ChatMessage::system("Book"),
            ChatMessage::user("What is the best book"),
            ChatMessage {
                content: Some(content),
                ..ChatMessage::assistant("")
            },
        ];
        let ctx = RenderContext {
            continue_final_message: true,
            add_generation_prompt: false,
            ..llama_ctx(&messages)
        };
        let prompt = render(&t, &ctx);
        assert!(
            prompt.ends_with(&format!(
                "<|start_header_id|>user<|end_header_id|>\n\nWhat is the best book<|eot_id|>\
                 <|start_header_id|>assistant<|end_header_id|>\n\n{expected}"
            )),
            "{prompt}"
        );
    }
}

fn today(format: &str) -> String {
    chat::strftime(
        format,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    )
}

#[test]
fn templates_see_todays_date_as_llama_cpp_gives_it() {
    // firefunction-v2 prints `datetime`, which only llama.cpp's context defines
    // ("%b %d %Y"); Llama 3.1 prints `date_string` ("%d %b %Y") when it is defined.
    let messages = [ChatMessage::user("What is today?")];
    let prompt = render(
        &template("firefunction-v2.jinja"),
        &RenderContext::new(&messages),
    );
    assert!(prompt.contains(&today("%b %d %Y")), "{prompt}");
    let prompt = render(
        &template("llama-3.1-instruct.jinja"),
        &RenderContext::new(&messages),
    );
    assert!(prompt.contains(&today("%d %b %Y")), "{prompt}");
    // A request's own value wins.
    let mut ctx = RenderContext::new(&messages);
    ctx.extra.insert("datetime".into(), json!("Jan 01 2000"));
    let prompt = render(&template("firefunction-v2.jinja"), &ctx);
    assert!(prompt.contains("Jan 01 2000"), "{prompt}");
}
