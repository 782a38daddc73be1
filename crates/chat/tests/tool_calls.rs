//! Tool-call parsing: each format on realistic model output, and streaming
//! in arbitrary pieces giving exactly what parsing the whole text gives.

use chat::{
    ParsedMessage, StreamEvent, ToolCallFormat, ToolCallStream, collect_events, parse_tool_calls,
};

const ALL_FORMATS: [ToolCallFormat; 4] = [
    ToolCallFormat::Hermes,
    ToolCallFormat::Llama3Json,
    ToolCallFormat::Mistral,
    ToolCallFormat::GenericJson,
];

/// (name, arguments) of the calls, ids aside (they are random).
fn calls(parsed: &ParsedMessage) -> Vec<(&str, &str)> {
    parsed
        .tool_calls
        .iter()
        .map(|call| (call.name.as_str(), call.arguments.as_str()))
        .collect()
}

#[test]
fn hermes() {
    let text = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
    let parsed = parse_tool_calls(ToolCallFormat::Hermes, text);
    assert_eq!(parsed.content, "Let me check.");
    assert_eq!(
        calls(&parsed),
        [
            ("get_weather", r#"{"city":"Paris","unit":"c"}"#),
            ("get_time", "{}")
        ]
    );
    for call in &parsed.tool_calls {
        assert!(
            call.id.starts_with("call_") && call.id.len() == 29,
            "{}",
            call.id
        );
    }
    assert_ne!(parsed.tool_calls[0].id, parsed.tool_calls[1].id);

    // Stopped before the closing tag (its EOS came first): still a call.
    let parsed = parse_tool_calls(
        ToolCallFormat::Hermes,
        "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n",
    );
    assert_eq!(calls(&parsed), [("f", r#"{"x":1}"#)]);

    // Arguments sent as a JSON string are unwrapped.
    let parsed = parse_tool_calls(
        ToolCallFormat::Hermes,
        r#"<tool_call>{"name": "f", "arguments": "{\"x\": 1}"}</tool_call>"#,
    );
    assert_eq!(calls(&parsed), [("f", r#"{"x":1}"#)]);
}

#[test]
fn hermes_invalid_calls_stay_content() {
    let text = "Here: <tool_call>{\"name\": \"f\", \"arguments\": {oops}}</tool_call> done";
    let parsed = parse_tool_calls(ToolCallFormat::Hermes, text);
    assert_eq!(parsed.content, text);
    assert!(parsed.tool_calls.is_empty());

    let text = "Use <tool_call> tags like <tool_call";
    let parsed = parse_tool_calls(ToolCallFormat::Hermes, text);
    assert_eq!(parsed.content, text);
    assert!(parsed.tool_calls.is_empty());
}

#[test]
fn llama3_json() {
    let parsed = parse_tool_calls(
        ToolCallFormat::Llama3Json,
        "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
    );
    assert_eq!(parsed.content, "");
    assert_eq!(calls(&parsed), [("get_weather", r#"{"city":"Paris"}"#)]);

    let parsed = parse_tool_calls(
        ToolCallFormat::Llama3Json,
        "<|python_tag|>{\"type\": \"function\", \"name\": \"a\", \"parameters\": {\"x\": 1}}; {\"name\": \"b\", \"parameters\": {}}",
    );
    assert_eq!(calls(&parsed), [("a", r#"{"x":1}"#), ("b", "{}")]);
    assert_eq!(parsed.content, "");

    // JSON that is not a call, and JSON in the middle of prose, is content.
    for text in [
        "{\"name\": \"Ada\", \"age\": 36}",
        "The call would be {\"name\": \"f\", \"parameters\": {}} but I won't.",
        "Sure! Here it is.",
        "<|python_tag|>brave_search.call(query=\"x\")",
    ] {
        let parsed = parse_tool_calls(ToolCallFormat::Llama3Json, text);
        assert_eq!(parsed.content, text);
        assert!(parsed.tool_calls.is_empty(), "{text}");
    }

    // After some text, <|python_tag|> still introduces a call.
    let parsed = parse_tool_calls(
        ToolCallFormat::Llama3Json,
        "Checking.<|python_tag|>{\"name\": \"f\", \"parameters\": {\"q\": \"é\"}}",
    );
    assert_eq!(parsed.content, "Checking.");
    assert_eq!(calls(&parsed), [("f", r#"{"q":"é"}"#)]);
}

#[test]
fn mistral() {
    let parsed = parse_tool_calls(
        ToolCallFormat::Mistral,
        "[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}, {\"name\": \"get_time\", \"arguments\": {\"tz\": \"CET\"}, \"id\": \"abcDEF123\"}]",
    );
    assert_eq!(parsed.content, "");
    assert_eq!(
        calls(&parsed),
        [
            ("get_weather", r#"{"city":"Paris"}"#),
            ("get_time", r#"{"tz":"CET"}"#)
        ]
    );
    // Mistral templates want 9-character ids back.
    assert_eq!(parsed.tool_calls[0].id.len(), 9);
    assert_eq!(parsed.tool_calls[1].id, "abcDEF123");

    let parsed = parse_tool_calls(
        ToolCallFormat::Mistral,
        "I'll look.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]get_time[CALL_ID]q1w2e3r4t[ARGS]{}",
    );
    assert_eq!(parsed.content, "I'll look.");
    assert_eq!(
        calls(&parsed),
        [("get_weather", r#"{"city":"Paris"}"#), ("get_time", "{}")]
    );
    assert_eq!(parsed.tool_calls[1].id, "q1w2e3r4t");

    for text in [
        "[TOOL_CALLS] not json",
        "[TOOL_CALLS]bad name[ARGS]{}",
        "[TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {\"x\": }]",
        "See [1] and [TOOL_CALLS",
    ] {
        let parsed = parse_tool_calls(ToolCallFormat::Mistral, text);
        assert_eq!(parsed.content, text);
        assert!(parsed.tool_calls.is_empty(), "{text}");
    }
}

#[test]
fn generic_json() {
    let parsed = parse_tool_calls(
        ToolCallFormat::GenericJson,
        "  {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n",
    );
    assert_eq!(calls(&parsed), [("get_weather", r#"{"city":"Paris"}"#)]);

    let parsed = parse_tool_calls(
        ToolCallFormat::GenericJson,
        "[{\"name\": \"a\", \"arguments\": {}}, {\"name\": \"b\", \"arguments\": {\"n\": 2.5}}]",
    );
    assert_eq!(calls(&parsed), [("a", "{}"), ("b", r#"{"n":2.5}"#)]);

    let parsed = parse_tool_calls(
        ToolCallFormat::GenericJson,
        "I will call it.\n```json\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n```\nOne moment.",
    );
    assert_eq!(parsed.content, "I will call it.\n\nOne moment.");
    assert_eq!(calls(&parsed), [("get_weather", r#"{"city":"Paris"}"#)]);

    // Code blocks that are not calls stay as they are.
    for text in [
        "Here:\n```python\nprint(\"```json\")\n```\nand ```json\n{\"a\": 1}\n``` too",
        "```json\n{\"name\": \"Ada\"}\n```",
        "{\"answer\": 42}",
        "Use `code` and ``more``.",
    ] {
        let parsed = parse_tool_calls(ToolCallFormat::GenericJson, text);
        assert_eq!(parsed.content, text.trim());
        assert!(parsed.tool_calls.is_empty(), "{text}");
    }
}

#[test]
fn content_streams_without_waiting_for_the_end() {
    let mut stream = ToolCallStream::new(ToolCallFormat::Hermes);
    assert_eq!(
        stream.push("Hello <tool"),
        [StreamEvent::Content("Hello ".into())]
    );
    assert_eq!(
        stream.push("box>"),
        [StreamEvent::Content("<toolbox>".into())]
    );
    assert_eq!(stream.push("<tool_call>{\"name\": \"f\", "), []);
    let events = stream.push("\"arguments\": {\"a\": [1]}}</tool_call> bye");
    match &events[..] {
        [
            StreamEvent::ToolCallStart { index: 0, name, .. },
            StreamEvent::ToolCallArguments { index: 0, delta },
            StreamEvent::Content(rest),
        ] => {
            assert_eq!(name, "f");
            assert_eq!(delta, r#"{"a":[1]}"#);
            assert_eq!(rest, " bye");
        }
        other => panic!("unexpected events {other:?}"),
    }
    assert_eq!(stream.finish(), []);
    assert_eq!(stream.push("late"), []);
}

/// A small deterministic generator for the split tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn stream_in_pieces(
    format: ToolCallFormat,
    text: &str,
    rng: &mut Rng,
    max_piece: u64,
) -> ParsedMessage {
    let chars: Vec<char> = text.chars().collect();
    let mut stream = ToolCallStream::new(format);
    let mut events = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let len = 1 + (rng.next() % max_piece) as usize;
        let piece: String = chars[at..(at + len).min(chars.len())].iter().collect();
        events.extend(stream.push(&piece));
        at += len;
    }
    events.extend(stream.finish());
    // Call indices are 0, 1, 2... in order.
    let starts: Vec<usize> = events
        .iter()
        .filter_map(|event| match event {
            StreamEvent::ToolCallStart { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(starts, (0..starts.len()).collect::<Vec<_>>());
    collect_events(events)
}

fn without_ids(mut parsed: ParsedMessage) -> ParsedMessage {
    for call in &mut parsed.tool_calls {
        // Generated ids differ between runs; ids written by the model do not.
        if call.id.starts_with("call_")
            || call.id.len() == 9 && call.id != "q1w2e3r4t" && call.id != "abcDEF123"
        {
            call.id.clear();
        }
    }
    parsed
}

#[test]
fn any_split_gives_the_whole_text_result() {
    let texts = [
        "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\nDone.",
        "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call><tool_call>{\"name\": \"b\", \"arguments\": {\"s\": \"</tool\"}}</tool_call>",
        "<tool_call>{\"name\": \"f\", \"arguments\": {bad}}</tool_call> < tool <tool_c",
        "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}",
        "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
        "  \n{\"type\": \"function\", \"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"k\": [1, {\"z\": null}]}}",
        "Checking.<|python_tag|>{\"name\": \"f\", \"parameters\": {\"q\": \"é🙂\"}} after",
        "{\"name\": \"Ada\"} is not a call <|python_tag|>nope <|python",
        "{ broken json",
        "[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, \"id\": \"abcDEF123\"}]",
        "I'll look.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]get_time[CALL_ID]q1w2e3r4t[ARGS]{}",
        "[TOOL_CALLS] oops [TOOL_CALLS]bad name[ARGS]{} [1] [TOOL_CALLS]f[ARGS]{\"a\": \"[ARGS]\"}",
        "I will call it.\n```json\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n```\nOne moment.",
        "Here:\n```python\nprint(\"```json\")\n```\nand ```json\n{\"a\": 1}\n``` too `x` ``",
        "[{\"name\": \"a\", \"arguments\": {}}, {\"name\": \"b\", \"arguments\": {\"n\": 2.5}}] and then ```\n{\"name\": \"c\", \"arguments\": {}}",
        "Plain answer with no calls at all: 2 + 2 = 4. 🙂",
        "",
        "   ",
    ];
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for format in ALL_FORMATS {
        for text in texts {
            let whole = without_ids(parse_tool_calls(format, text));
            // Nothing is lost: every byte is content or part of a call.
            if whole.tool_calls.is_empty() {
                assert_eq!(whole.content, text.trim(), "{format}: {text}");
            }
            for max_piece in [1, 2, 3, 5, 8, 40] {
                for _ in 0..8 {
                    let streamed = without_ids(stream_in_pieces(format, text, &mut rng, max_piece));
                    assert_eq!(
                        streamed, whole,
                        "{format}, pieces up to {max_piece}: {text}"
                    );
                }
            }
        }
    }
}

#[test]
fn generated_random_texts_split_consistently() {
    // Texts assembled from fragments that look like markers, JSON and prose.
    let fragments = [
        "<tool_call>",
        "</tool_call>",
        "{\"name\": \"f\", \"arguments\": {\"x\": 1}}",
        "{\"name\": \"g\", \"parameters\": {}}",
        "[TOOL_CALLS]",
        "f[ARGS]",
        "<|python_tag|>",
        "```json\n",
        "```",
        "\n",
        " ",
        ";",
        "hello",
        "[",
        "{",
        "}",
        "<",
        "é",
        "🙂",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..300 {
        let count = 1 + rng.next() % 8;
        let text: String = (0..count)
            .map(|_| fragments[(rng.next() % fragments.len() as u64) as usize])
            .collect();
        for format in ALL_FORMATS {
            let whole = without_ids(parse_tool_calls(format, &text));
            for max_piece in [1, 3, 7] {
                let streamed = without_ids(stream_in_pieces(format, &text, &mut rng, max_piece));
                assert_eq!(
                    streamed, whole,
                    "{format}, pieces up to {max_piece}: {text:?}"
                );
            }
        }
    }
}
