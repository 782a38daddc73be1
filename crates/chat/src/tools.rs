//! Tool calls in generated text: which syntax a model uses, and turning its
//! output (whole, or streamed piece by piece) into content and OpenAI-style
//! tool calls.
//!
//! One scanner serves both uses: [`parse_tool_calls`] feeds the whole text to
//! a [`ToolCallStream`]. The scanner only decides about a piece of text when no
//! continuation could change the decision, so the result does not depend on
//! how the text was split into deltas.

mod ids;
mod json;
mod scan;

use crate::builtin::Family;
use crate::message::ToolCall;
use scan::{Action, FoundCall, Scanner};

/// The syntax a model writes tool calls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ToolCallFormat {
    /// `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (Qwen 2.5/3, Hermes 2/3).
    Hermes,
    /// `{"name": ..., "parameters": {...}}` at the start of the reply or after
    /// `<|python_tag|>` (Llama 3.x); `{"type": "function", ...}` and `;`
    /// between calls are accepted too.
    Llama3Json,
    /// `[TOOL_CALLS] [{"name": ..., "arguments": {...}}]` (v0.3) and
    /// `[TOOL_CALLS]name[ARGS]{...}` (newer Mistral models).
    Mistral,
    /// A JSON object (or array) of `{"name", "arguments"}` at the start of the
    /// reply or in a ```` ```json ```` block: Gemma, and any model without a
    /// syntax of its own (our built-in templates ask for this).
    GenericJson,
}

impl ToolCallFormat {
    pub fn name(self) -> &'static str {
        match self {
            ToolCallFormat::Hermes => "hermes",
            ToolCallFormat::Llama3Json => "llama3-json",
            ToolCallFormat::Mistral => "mistral",
            ToolCallFormat::GenericJson => "generic-json",
        }
    }
}

impl std::fmt::Display for ToolCallFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Picks the tool-call syntax from what the chat template writes for tool
/// calls, falling back to the family's habit.
pub fn detect_format(template_source: &str, family: Option<Family>) -> ToolCallFormat {
    if template_source.contains("<tool_call>") {
        return ToolCallFormat::Hermes;
    }
    if template_source.contains("[TOOL_CALLS]") {
        return ToolCallFormat::Mistral;
    }
    if template_source.contains("<|python_tag|>") || template_source.contains("ipython") {
        return ToolCallFormat::Llama3Json;
    }
    match family {
        Some(Family::ChatML) => ToolCallFormat::Hermes,
        Some(Family::Llama3) => ToolCallFormat::Llama3Json,
        Some(Family::Mistral) => ToolCallFormat::Mistral,
        _ => ToolCallFormat::GenericJson,
    }
}

/// A generated assistant message split into text and tool calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedMessage {
    /// The text outside the tool calls, trimmed.
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
}

/// Splits a complete generated text into content and tool calls. Arguments
/// come out as compact JSON strings; text inside call markers that is not a
/// valid call stays in the content.
pub fn parse_tool_calls(format: ToolCallFormat, text: &str) -> ParsedMessage {
    let mut stream = ToolCallStream::new(format);
    let mut events = stream.push(text);
    events.extend(stream.finish());
    collect_events(events)
}

/// Folds stream events into the message they describe.
pub fn collect_events(events: impl IntoIterator<Item = StreamEvent>) -> ParsedMessage {
    let mut content = String::new();
    let mut tool_calls: Vec<ToolCall> = Vec::new();
    for event in events {
        match event {
            StreamEvent::Content(text) => content.push_str(&text),
            StreamEvent::ToolCallStart { index, id, name } => {
                if tool_calls.len() <= index {
                    tool_calls.resize_with(index + 1, ToolCall::default);
                }
                tool_calls[index].id = id;
                tool_calls[index].name = name;
            }
            StreamEvent::ToolCallArguments { index, delta } => {
                if tool_calls.len() <= index {
                    tool_calls.resize_with(index + 1, ToolCall::default);
                }
                tool_calls[index].arguments.push_str(&delta);
            }
        }
    }
    ParsedMessage {
        content: content.trim().to_owned(),
        tool_calls,
    }
}

/// What a [`ToolCallStream`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// Text for the `content` of the reply.
    Content(String),
    /// A tool call begins (OpenAI's first `tool_calls` delta of an index).
    ToolCallStart {
        index: usize,
        id: String,
        name: String,
    },
    /// A piece of a call's arguments JSON; the pieces of an index concatenate
    /// to the compact arguments string.
    ToolCallArguments { index: usize, delta: String },
}

/// Incremental tool-call parsing for streamed generation.
///
/// Content is passed on as soon as it cannot be the start of a call; text that
/// might be (`<tool` before `_call>`, a reply opening with `{`) is held until
/// it resolves. A call is reported once complete: a
/// [`StreamEvent::ToolCallStart`] and one [`StreamEvent::ToolCallArguments`]
/// with the whole arguments string.
#[derive(Debug)]
pub struct ToolCallStream {
    scanner: Scanner,
    pending: String,
    next_index: usize,
    finished: bool,
}

impl ToolCallStream {
    pub fn new(format: ToolCallFormat) -> Self {
        ToolCallStream {
            scanner: Scanner::new(format),
            pending: String::new(),
            next_index: 0,
            finished: false,
        }
    }

    pub fn format(&self) -> ToolCallFormat {
        self.scanner.format()
    }

    /// Feeds generated text; returns what can be decided so far.
    pub fn push(&mut self, delta: &str) -> Vec<StreamEvent> {
        if self.finished {
            return Vec::new();
        }
        self.pending.push_str(delta);
        self.drain(false)
    }

    /// Ends the text: everything still held back is decided (an unfinished
    /// call that is valid JSON still counts; anything else becomes content).
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        if self.finished {
            return Vec::new();
        }
        let events = self.drain(true);
        self.finished = true;
        events
    }

    fn drain(&mut self, at_end: bool) -> Vec<StreamEvent> {
        let mut events = Vec::new();
        while !self.pending.is_empty() {
            match self.scanner.scan(&self.pending, at_end) {
                Action::NeedMore => {
                    debug_assert!(!at_end, "the scanner must decide everything at the end");
                    if !at_end {
                        break;
                    }
                    // Never reached; kept so a scanner bug loses no text.
                    events.push(StreamEvent::Content(std::mem::take(&mut self.pending)));
                }
                Action::Content(len) => {
                    let text: String = self.pending.drain(..len).collect();
                    self.scanner.saw_content(&text);
                    push_content(&mut events, text);
                }
                Action::Skip(len) => {
                    self.pending.drain(..len);
                }
                Action::Calls { len, calls } => {
                    self.pending.drain(..len);
                    self.scanner.saw_calls();
                    for call in calls {
                        self.emit_call(&mut events, call);
                    }
                }
            }
        }
        events
    }

    fn emit_call(&mut self, events: &mut Vec<StreamEvent>, call: FoundCall) {
        let index = self.next_index;
        self.next_index += 1;
        let id = call
            .id
            .unwrap_or_else(|| ids::new_call_id(self.scanner.format()));
        events.push(StreamEvent::ToolCallStart {
            index,
            id,
            name: call.name,
        });
        events.push(StreamEvent::ToolCallArguments {
            index,
            delta: call.arguments,
        });
    }
}

fn push_content(events: &mut Vec<StreamEvent>, text: String) {
    if text.is_empty() {
        return;
    }
    if let Some(StreamEvent::Content(last)) = events.last_mut() {
        last.push_str(&text);
    } else {
        events.push(StreamEvent::Content(text));
    }
}
