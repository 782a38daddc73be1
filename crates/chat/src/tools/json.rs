//! JSON in generated text: where a value ends, and whether it is a tool call.
//!
//! Values are read into minijinja's `Value`, whose maps keep their key order,
//! so re-serialized arguments list their keys as the model wrote them.

use minijinja::value::{Value, ValueKind};
use serde::Deserialize;

use super::scan::FoundCall;

/// The JSON value at the start of a text.
pub enum JsonScan {
    /// A whole value ending at byte `end`.
    Complete { value: Value, end: usize },
    /// Valid so far, but the text ends before the value does.
    Incomplete,
    /// Not JSON; more text cannot change that.
    Invalid,
}

/// Reads the JSON value that starts `text` (leading whitespace allowed).
pub fn scan_json(text: &str) -> JsonScan {
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    match values.next() {
        Some(Ok(value)) => JsonScan::Complete {
            value,
            end: values.byte_offset(),
        },
        Some(Err(err)) if err.is_eof() => JsonScan::Incomplete,
        Some(Err(_)) => JsonScan::Invalid,
        None => JsonScan::Incomplete,
    }
}

/// How strictly an object must look like a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Inside explicit call markers: `name` is enough (no arguments means `{}`).
    Marked,
    /// Bare JSON in a reply: also needs `arguments` or `parameters`, so an
    /// answer like `{"name": "Ada"}` stays an answer.
    Bare,
}

/// A call, or a non-empty array of calls. `None` if any part is not a call.
pub fn calls_from_value(value: &Value, shape: Shape) -> Option<Vec<FoundCall>> {
    match value.kind() {
        ValueKind::Map => call_from_object(value, shape).map(|call| vec![call]),
        ValueKind::Seq => {
            let calls: Option<Vec<FoundCall>> = value
                .try_iter()
                .ok()?
                .map(|item| call_from_object(&item, shape))
                .collect();
            calls.filter(|calls| !calls.is_empty())
        }
        _ => None,
    }
}

/// Calls from a text that must hold exactly one JSON value (and whitespace).
pub fn calls_from_text(text: &str, shape: Shape) -> Option<Vec<FoundCall>> {
    match scan_json(text) {
        JsonScan::Complete { value, end } if text[end..].trim().is_empty() => {
            calls_from_value(&value, shape)
        }
        _ => None,
    }
}

fn call_from_object(object: &Value, shape: Shape) -> Option<FoundCall> {
    if object.kind() != ValueKind::Map {
        return None;
    }
    // OpenAI's own shape: {"type": "function", "function": {"name", "arguments"}}.
    let function = object.get_attr("function").ok()?;
    if function.kind() == ValueKind::Map {
        let mut call = call_from_object(&function, shape)?;
        call.id = call.id.or_else(|| string_attr(object, "id"));
        return Some(call);
    }
    let name = string_attr(object, "name").filter(|name| !name.trim().is_empty())?;
    let arguments = ["arguments", "parameters"]
        .into_iter()
        .map(|key| object.get_attr(key).unwrap_or_default())
        .find(|value| !value.is_undefined());
    let arguments = match arguments {
        Some(arguments) => compact_arguments(&arguments)?,
        None if shape == Shape::Marked => "{}".to_owned(),
        None => return None,
    };
    Some(FoundCall {
        id: string_attr(object, "id").filter(|id| !id.is_empty()),
        name,
        arguments,
    })
}

/// Arguments as compact JSON: an object, or a string holding an object (some
/// models write the arguments as a JSON string, as OpenAI's API carries them).
fn compact_arguments(arguments: &Value) -> Option<String> {
    match arguments.kind() {
        ValueKind::Map => serde_json::to_string(arguments).ok(),
        ValueKind::None => Some("{}".to_owned()),
        ValueKind::String => {
            let text = arguments.as_str()?;
            let inner = Value::deserialize(&mut serde_json::Deserializer::from_str(text)).ok()?;
            (inner.kind() == ValueKind::Map).then(|| serde_json::to_string(&inner).ok())?
        }
        _ => None,
    }
}

fn string_attr(object: &Value, key: &str) -> Option<String> {
    object
        .get_attr(key)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_where_a_value_ends() {
        match scan_json(r#" {"a": [1, "}"]} tail"#) {
            JsonScan::Complete { end, .. } => assert_eq!(end, 16),
            _ => panic!("expected a complete value"),
        }
        assert!(matches!(scan_json(r#"{"a": [1, "#), JsonScan::Incomplete));
        assert!(matches!(scan_json("   "), JsonScan::Incomplete));
        assert!(matches!(scan_json(r#"{"a" 1}"#), JsonScan::Invalid));
        assert!(matches!(scan_json("hello"), JsonScan::Invalid));
    }

    #[test]
    fn recognises_calls() {
        let calls = calls_from_text(
            r#"{"name": "f", "arguments": {"z": 1, "a": {"b": null}}}"#,
            Shape::Bare,
        )
        .unwrap();
        assert_eq!(calls[0].name, "f");
        assert_eq!(calls[0].arguments, r#"{"z":1,"a":{"b":null}}"#);

        let calls = calls_from_text(
            r#"[{"type": "function", "name": "f", "parameters": "{\"x\": 2}"}, {"type": "function", "function": {"name": "g", "arguments": {}}, "id": "abc"}]"#,
            Shape::Bare,
        )
        .unwrap();
        assert_eq!(
            (calls[0].name.as_str(), calls[0].arguments.as_str()),
            ("f", r#"{"x":2}"#)
        );
        assert_eq!(
            (calls[1].name.as_str(), calls[1].id.as_deref()),
            ("g", Some("abc"))
        );

        assert!(calls_from_text(r#"{"name": "Ada"}"#, Shape::Bare).is_none());
        assert_eq!(
            calls_from_text(r#"{"name": "now"}"#, Shape::Marked).unwrap()[0].arguments,
            "{}"
        );
        assert!(calls_from_text(r#"{"name": "f", "arguments": [1]}"#, Shape::Marked).is_none());
        assert!(
            calls_from_text(r#"{"name": "f", "arguments": {}} extra"#, Shape::Marked).is_none()
        );
        assert!(calls_from_text("[]", Shape::Marked).is_none());
    }
}
