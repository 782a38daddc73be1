//! What a template sees: messages and tools in the shape HF templates expect.

use minijinja::value::Value;

use crate::message::{ChatMessage, MessageContent, Tool, ToolCall};

/// How tool-call arguments are handed to the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgumentsAs {
    /// Parsed into an object (when they are a JSON object): most templates do
    /// `arguments | tojson` or iterate over them.
    Object,
    /// The JSON string as received: for templates that concatenate
    /// `'...' + arguments` (DeepSeek R1) and fail on an object.
    String,
}

/// How message content is handed to the template: the shape it can render
/// ([`super::ContentCaps`]), as llama.cpp's `messages_inp_normalizer` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentAs {
    /// As the client sent it: the template takes strings and part lists.
    AsGiven,
    /// Part lists become their text parts joined with `"\n"`: templates that
    /// write `'...' + message['content']` fail on a list.
    Strings,
    /// Strings become one text part: templates that only iterate over parts.
    Parts,
}

/// A message as a map with only the fields that are present: templates test
/// `'tool_calls' in message` and `message.tool_calls is defined`.
pub fn message_value(
    message: &ChatMessage,
    arguments_as: ArgumentsAs,
    content_as: ContentAs,
) -> Value {
    let mut fields: Vec<(&str, Value)> = vec![("role", Value::from(message.role.as_str()))];
    // `content` is always there, `None` when absent: templates check
    // `message['content'] is none` / `is not none` on tool-call messages.
    fields.push((
        "content",
        content_value(message.content.as_ref(), content_as),
    ));
    if !message.tool_calls.is_empty() {
        let calls: Vec<Value> = message
            .tool_calls
            .iter()
            .map(|call| tool_call_value(call, arguments_as))
            .collect();
        fields.push(("tool_calls", Value::from(calls)));
    }
    if let Some(id) = &message.tool_call_id {
        fields.push(("tool_call_id", Value::from(id.as_str())));
    }
    if let Some(name) = &message.name {
        fields.push(("name", Value::from(name.as_str())));
    }
    if let Some(reasoning) = &message.reasoning_content {
        fields.push(("reasoning_content", Value::from(reasoning.as_str())));
    }
    Value::from_pairs(fields)
}

fn content_value(content: Option<&MessageContent>, content_as: ContentAs) -> Value {
    match (content, content_as) {
        (None, _) => Value::from(()),
        (Some(MessageContent::Text(text)), ContentAs::Parts) => {
            Value::from(vec![Value::from_pairs([
                ("type", Value::from("text")),
                ("text", Value::from(text.as_str())),
            ])])
        }
        (Some(MessageContent::Text(text)), _) => Value::from(text.as_str()),
        (Some(content @ MessageContent::Parts(_)), ContentAs::Strings) => {
            Value::from(content.text_joined("\n"))
        }
        (Some(MessageContent::Parts(parts)), _) => parts
            .iter()
            .map(|part| json_value(&part.to_json()))
            .collect(),
    }
}

fn tool_call_value(call: &ToolCall, arguments_as: ArgumentsAs) -> Value {
    let arguments = match arguments_as {
        ArgumentsAs::Object => {
            parse_object(&call.arguments).unwrap_or_else(|| Value::from(call.arguments.as_str()))
        }
        ArgumentsAs::String => Value::from(call.arguments.as_str()),
    };
    let function = Value::from_pairs([
        ("name", Value::from(call.name.as_str())),
        ("arguments", arguments),
    ]);
    Value::from_pairs([
        ("id", Value::from(call.id.as_str())),
        ("type", Value::from("function")),
        ("function", function),
    ])
}

/// Parses a JSON object keeping its key order (minijinja's maps are ordered),
/// so `arguments | tojson` prints the keys as the model or client wrote them.
fn parse_object(json: &str) -> Option<Value> {
    let value: Value = serde_json::from_str(json).ok()?;
    (value.kind() == minijinja::value::ValueKind::Map).then_some(value)
}

/// Whether rendering with [`ArgumentsAs::String`] could differ from
/// [`ArgumentsAs::Object`].
pub fn has_object_arguments(messages: &[ChatMessage]) -> bool {
    messages
        .iter()
        .flat_map(|message| &message.tool_calls)
        .any(|call| parse_object(&call.arguments).is_some())
}

/// `{"type": "function", "function": {"name", "description", "parameters"}}`.
/// Keys in the order of OpenAI's documentation, which templates print as is.
pub fn tool_value(tool: &Tool) -> Value {
    let mut function = vec![("name", Value::from(tool.name.as_str()))];
    if let Some(description) = &tool.description {
        function.push(("description", Value::from(description.as_str())));
    }
    function.push(("parameters", json_value(&tool.parameters)));
    Value::from_pairs([
        ("type", Value::from("function")),
        ("function", Value::from_pairs(function)),
    ])
}

/// A JSON value as a template value, keeping the map order of `serde_json`.
pub fn json_value(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(number) => {
            if let Some(int) = number.as_i64() {
                Value::from(int)
            } else if let Some(int) = number.as_u64() {
                Value::from(int)
            } else {
                Value::from(number.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(text) => Value::from(text.as_str()),
        serde_json::Value::Array(items) => items.iter().map(json_value).collect(),
        serde_json::Value::Object(map) => Value::from_pairs(
            map.iter()
                .map(|(key, item)| (key.as_str(), json_value(item))),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_are_not_in_the_map() {
        let value = message_value(
            &ChatMessage::user("hi"),
            ArgumentsAs::Object,
            ContentAs::AsGiven,
        );
        let keys: Vec<String> = value
            .try_iter()
            .unwrap()
            .map(|key| key.to_string())
            .collect();
        assert_eq!(keys, ["role", "content"]);
    }

    #[test]
    fn arguments_are_objects_in_key_order_when_they_parse() {
        let message = ChatMessage::assistant_tool_calls(vec![
            ToolCall::new("a", "f", r#"{"z": 1, "a": [true]}"#),
            ToolCall::new("b", "g", "not json"),
        ]);
        let value = message_value(&message, ArgumentsAs::Object, ContentAs::AsGiven);
        let calls = value.get_attr("tool_calls").unwrap();
        let first = calls
            .get_item_by_index(0)
            .unwrap()
            .get_attr("function")
            .unwrap();
        let keys: Vec<String> = first
            .get_attr("arguments")
            .unwrap()
            .try_iter()
            .unwrap()
            .map(|k| k.to_string())
            .collect();
        assert_eq!(keys, ["z", "a"]);
        let second = calls
            .get_item_by_index(1)
            .unwrap()
            .get_attr("function")
            .unwrap();
        assert_eq!(
            second.get_attr("arguments").unwrap().as_str(),
            Some("not json")
        );
        assert!(value.get_attr("content").unwrap().is_none());
        assert!(has_object_arguments(&[message]));
    }
}
