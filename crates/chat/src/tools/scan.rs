//! The per-format decisions of the tool-call scanner.
//!
//! [`Scanner::scan`] looks at the text not yet decided and says how much of
//! its start is content, is a call, or that it cannot tell yet. It only
//! decides when no continuation of the text could change the decision:
//! content up to where a marker could begin, a call once its closing marker
//! or the end of its JSON is there, and an error only when JSON is invalid
//! in a way more text cannot fix. That is what makes streaming and whole-text
//! parsing agree.

use super::ToolCallFormat;
use super::json::{JsonScan, Shape, calls_from_text, calls_from_value, scan_json};

/// A tool call found in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundCall {
    /// An id the model wrote itself (Mistral), if any.
    pub id: Option<String>,
    pub name: String,
    /// Compact JSON.
    pub arguments: String,
}

/// What to do with the start of the undecided text.
#[derive(Debug)]
pub enum Action {
    /// The first `len` bytes are content.
    Content(usize),
    /// The first `len` bytes are these calls.
    Calls { len: usize, calls: Vec<FoundCall> },
    /// The first `len` bytes are syntax between calls (Llama's `;`).
    Skip(usize),
    /// Nothing can be decided before more text arrives.
    NeedMore,
}

#[derive(Debug)]
pub struct Scanner {
    format: ToolCallFormat,
    /// Nothing but whitespace since the start of the reply or the last call:
    /// where formats without an opening marker put their JSON.
    expect_call: bool,
    /// The last thing decided was a call (a `;` may separate the next one).
    after_call: bool,
    /// Inside a ```` ``` ```` block that is not a call (GenericJson).
    in_other_fence: bool,
}

const HERMES_OPEN: &str = "<tool_call>";
const HERMES_CLOSE: &str = "</tool_call>";
const MISTRAL_MARKER: &str = "[TOOL_CALLS]";
const MISTRAL_ARGS: &str = "[ARGS]";
const MISTRAL_CALL_ID: &str = "[CALL_ID]";
const PYTHON_TAG: &str = "<|python_tag|>";
const FENCE: &str = "```";

impl Scanner {
    pub fn new(format: ToolCallFormat) -> Self {
        Scanner {
            format,
            expect_call: true,
            after_call: false,
            in_other_fence: false,
        }
    }

    pub fn format(&self) -> ToolCallFormat {
        self.format
    }

    pub fn saw_content(&mut self, text: &str) {
        if !text.trim().is_empty() {
            self.expect_call = false;
            self.after_call = false;
        }
    }

    pub fn saw_calls(&mut self) {
        self.expect_call = true;
        self.after_call = true;
    }

    /// Decides about the start of `text` (never empty). With `at_end` the text
    /// is complete and the answer is never [`Action::NeedMore`].
    pub fn scan(&mut self, text: &str, at_end: bool) -> Action {
        let action = match self.format {
            ToolCallFormat::Hermes => scan_hermes(text, at_end),
            ToolCallFormat::Mistral => scan_mistral(text, at_end),
            ToolCallFormat::Llama3Json => self.scan_llama3(text, at_end),
            ToolCallFormat::GenericJson => self.scan_generic(text, at_end),
        };
        match action {
            Action::Content(0) | Action::NeedMore if at_end => Action::Content(text.len()),
            Action::Content(0) => Action::NeedMore,
            action => action,
        }
    }

    fn scan_llama3(&mut self, text: &str, at_end: bool) -> Action {
        if self.expect_call {
            match self.leading_json_call(text, at_end) {
                Some(action) => return action,
                None => self.expect_call = false,
            }
        }
        scan_marked_json(text, PYTHON_TAG, Shape::Bare, at_end)
    }

    fn scan_generic(&mut self, text: &str, at_end: bool) -> Action {
        if self.in_other_fence {
            return match text.find(FENCE) {
                Some(at) => {
                    self.in_other_fence = false;
                    Action::Content(at + FENCE.len())
                }
                None => content_before_partial_marker(text, &[FENCE], at_end),
            };
        }
        if self.expect_call {
            match self.leading_json_call(text, at_end) {
                Some(action) => return action,
                None => self.expect_call = false,
            }
        }
        match text.find(FENCE) {
            Some(0) => self.scan_fence(text, at_end),
            Some(at) => Action::Content(at),
            None => content_before_partial_marker(text, &[FENCE], at_end),
        }
    }

    /// A call written as bare JSON where one is expected. `None` when the
    /// text there is not the start of one (the caller then scans for markers).
    fn leading_json_call(&self, text: &str, at_end: bool) -> Option<Action> {
        let start = text.len() - text.trim_start().len();
        let body = &text[start..];
        if body.is_empty() {
            return Some(if at_end {
                Action::Content(text.len())
            } else {
                Action::NeedMore
            });
        }
        if self.after_call && body.starts_with(';') {
            return Some(Action::Skip(start + 1));
        }
        if !body.starts_with(['{', '[']) {
            // `<|python_tag|>` (or its beginning) is handled by the marker scan.
            return None;
        }
        match scan_json(body) {
            JsonScan::Complete { value, end } => {
                Some(match calls_from_value(&value, Shape::Bare) {
                    Some(calls) => Action::Calls {
                        len: start + end,
                        calls,
                    },
                    None => Action::Content(start + end),
                })
            }
            JsonScan::Incomplete if at_end => Some(Action::Content(text.len())),
            JsonScan::Incomplete => Some(Action::NeedMore),
            JsonScan::Invalid => None,
        }
    }

    /// Text starting with ```` ``` ````: a JSON block may hold calls; any
    /// other block is content, passed on as it comes.
    fn scan_fence(&mut self, text: &str, at_end: bool) -> Action {
        let Some(line_end) = text.find('\n') else {
            return if at_end {
                Action::Content(text.len())
            } else {
                Action::NeedMore
            };
        };
        let language = text[FENCE.len()..line_end].trim().to_ascii_lowercase();
        if !matches!(language.as_str(), "" | "json" | "tool_call" | "tool_calls") {
            self.in_other_fence = true;
            return Action::Content(line_end + 1);
        }
        let body = &text[line_end + 1..];
        match body.find(FENCE) {
            Some(close) => {
                let len = line_end + 1 + close + FENCE.len();
                match calls_from_text(&body[..close], Shape::Bare) {
                    Some(calls) => Action::Calls { len, calls },
                    None => Action::Content(len),
                }
            }
            None if at_end => match calls_from_text(body, Shape::Bare) {
                Some(calls) => Action::Calls {
                    len: text.len(),
                    calls,
                },
                None => Action::Content(text.len()),
            },
            None => Action::NeedMore,
        }
    }
}

fn scan_hermes(text: &str, at_end: bool) -> Action {
    match text.find(HERMES_OPEN) {
        Some(0) => {
            let body = &text[HERMES_OPEN.len()..];
            match body.find(HERMES_CLOSE) {
                Some(close) => {
                    let len = HERMES_OPEN.len() + close + HERMES_CLOSE.len();
                    match calls_from_text(&body[..close], Shape::Marked) {
                        Some(calls) => Action::Calls { len, calls },
                        None => Action::Content(len),
                    }
                }
                // The model stopped before closing the tag: a complete call
                // still counts.
                None if at_end => match calls_from_text(body, Shape::Marked) {
                    Some(calls) => Action::Calls {
                        len: text.len(),
                        calls,
                    },
                    None => Action::Content(text.len()),
                },
                None => Action::NeedMore,
            }
        }
        Some(at) => Action::Content(at),
        None => content_before_partial_marker(text, &[HERMES_OPEN], at_end),
    }
}

/// A marker followed by JSON calls (Llama's `<|python_tag|>`).
fn scan_marked_json(text: &str, marker: &str, shape: Shape, at_end: bool) -> Action {
    match text.find(marker) {
        Some(0) => {
            let after = &text[marker.len()..];
            let start = after.len() - after.trim_start().len();
            let body = &after[start..];
            if body.is_empty() {
                return if at_end {
                    Action::Content(text.len())
                } else {
                    Action::NeedMore
                };
            }
            if !body.starts_with(['{', '[']) {
                // e.g. Llama's built-in tools: `<|python_tag|>brave_search.call(...)`.
                return Action::Content(marker.len());
            }
            match scan_json(body) {
                JsonScan::Complete { value, end } => {
                    let len = marker.len() + start + end;
                    match calls_from_value(&value, shape) {
                        Some(calls) => Action::Calls { len, calls },
                        None => Action::Content(len),
                    }
                }
                JsonScan::Incomplete if at_end => Action::Content(text.len()),
                JsonScan::Incomplete => Action::NeedMore,
                JsonScan::Invalid => Action::Content(marker.len()),
            }
        }
        Some(at) => Action::Content(at),
        None => content_before_partial_marker(text, &[marker], at_end),
    }
}

fn scan_mistral(text: &str, at_end: bool) -> Action {
    match text.find(MISTRAL_MARKER) {
        Some(0) => {
            let after = &text[MISTRAL_MARKER.len()..];
            let start = after.len() - after.trim_start().len();
            let body = &after[start..];
            if body.is_empty() {
                return if at_end {
                    Action::Content(text.len())
                } else {
                    Action::NeedMore
                };
            }
            if body.starts_with(['[', '{']) {
                // v0.3: `[TOOL_CALLS] [{"name": ..., "arguments": {...}}, ...]`
                return match scan_json(body) {
                    JsonScan::Complete { value, end } => {
                        let len = MISTRAL_MARKER.len() + start + end;
                        match calls_from_value(&value, Shape::Marked) {
                            Some(calls) => Action::Calls { len, calls },
                            None => Action::Content(len),
                        }
                    }
                    JsonScan::Incomplete if at_end => Action::Content(text.len()),
                    JsonScan::Incomplete => Action::NeedMore,
                    JsonScan::Invalid => Action::Content(MISTRAL_MARKER.len()),
                };
            }
            // Newer: `[TOOL_CALLS]name[ARGS]{...}`, optionally `name[CALL_ID]id[ARGS]{...}`.
            match mistral_header(body) {
                Header::Complete { name, id, args_at } => {
                    let args = &body[args_at..];
                    match scan_json(args) {
                        JsonScan::Complete { value, end } => {
                            let len = MISTRAL_MARKER.len() + start + args_at + end;
                            let object = minijinja::value::Value::from_pairs([
                                ("name", minijinja::value::Value::from(name)),
                                ("arguments", value),
                            ]);
                            match calls_from_value(&object, Shape::Marked) {
                                Some(mut calls) => {
                                    calls[0].id = id;
                                    Action::Calls { len, calls }
                                }
                                None => Action::Content(len),
                            }
                        }
                        JsonScan::Incomplete if at_end => Action::Content(text.len()),
                        JsonScan::Incomplete => Action::NeedMore,
                        JsonScan::Invalid => Action::Content(MISTRAL_MARKER.len()),
                    }
                }
                Header::Incomplete if at_end => Action::Content(text.len()),
                Header::Incomplete => Action::NeedMore,
                Header::Invalid => Action::Content(MISTRAL_MARKER.len()),
            }
        }
        Some(at) => Action::Content(at),
        None => content_before_partial_marker(text, &[MISTRAL_MARKER], at_end),
    }
}

enum Header {
    Complete {
        name: String,
        id: Option<String>,
        /// Byte offset of the arguments JSON, after `[ARGS]`.
        args_at: usize,
    },
    Incomplete,
    Invalid,
}

/// Reads `name[ARGS]` or `name[CALL_ID]id[ARGS]` at the start of `text`.
fn mistral_header(text: &str) -> Header {
    let is_name_char = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.');
    let name_len = text.find(|c: char| !is_name_char(c)).unwrap_or(text.len());
    if name_len == 0 {
        return if text.is_empty() {
            Header::Incomplete
        } else {
            Header::Invalid
        };
    }
    let name = &text[..name_len];
    let rest = &text[name_len..];
    if rest.is_empty() {
        return Header::Incomplete;
    }
    if let Some(after) = rest.strip_prefix(MISTRAL_ARGS) {
        let args_at = text.len() - after.len();
        return Header::Complete {
            name: name.to_owned(),
            id: None,
            args_at,
        };
    }
    if let Some(after) = rest.strip_prefix(MISTRAL_CALL_ID) {
        let id_len = after
            .find(|c: char| !is_name_char(c))
            .unwrap_or(after.len());
        let tail = &after[id_len..];
        if tail.is_empty() {
            return Header::Incomplete;
        }
        return match tail.strip_prefix(MISTRAL_ARGS) {
            Some(args) if id_len > 0 => Header::Complete {
                name: name.to_owned(),
                id: Some(after[..id_len].to_owned()),
                args_at: text.len() - args.len(),
            },
            None if MISTRAL_ARGS.starts_with(tail) => Header::Incomplete,
            _ => Header::Invalid,
        };
    }
    if MISTRAL_ARGS.starts_with(rest) || MISTRAL_CALL_ID.starts_with(rest) {
        Header::Incomplete
    } else {
        Header::Invalid
    }
}

/// Content up to where one of `markers` might begin at the end of `text`
/// (e.g. a trailing `<tool` could become `<tool_call>`); that part waits.
fn content_before_partial_marker(text: &str, markers: &[&str], at_end: bool) -> Action {
    if at_end {
        return Action::Content(text.len());
    }
    let hold_from = text
        .char_indices()
        .map(|(at, _)| at)
        .find(|&at| {
            let tail = &text[at..];
            markers
                .iter()
                .any(|marker| marker.len() > tail.len() && marker.starts_with(tail))
        })
        .unwrap_or(text.len());
    Action::Content(hold_from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_markers_are_held_back() {
        assert!(matches!(
            content_before_partial_marker("hello <tool", &[HERMES_OPEN], false),
            Action::Content(6)
        ));
        assert!(matches!(
            content_before_partial_marker("a < b", &[HERMES_OPEN], false),
            Action::Content(5)
        ));
        assert!(matches!(
            content_before_partial_marker("x <tool", &[HERMES_OPEN], true),
            Action::Content(7)
        ));
    }

    #[test]
    fn mistral_headers() {
        assert!(matches!(
            mistral_header("get_weather[ARGS]{}"),
            Header::Complete { args_at: 17, .. }
        ));
        assert!(matches!(
            mistral_header("f[CALL_ID]abc123XYZ[ARGS]{"),
            Header::Complete { id: Some(_), .. }
        ));
        assert!(matches!(mistral_header("get_wea"), Header::Incomplete));
        assert!(matches!(mistral_header("f[AR"), Header::Incomplete));
        assert!(matches!(mistral_header("f[CALL_ID]ab"), Header::Incomplete));
        assert!(matches!(
            mistral_header("f[CALL_ID]ab[A"),
            Header::Incomplete
        ));
        assert!(matches!(mistral_header("f (x)"), Header::Invalid));
        assert!(matches!(mistral_header(" f"), Header::Invalid));
        assert!(matches!(mistral_header("f[X]"), Header::Invalid));
    }
}
