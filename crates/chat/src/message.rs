//! Chat messages and tools in OpenAI's wire shape.
//!
//! These types are what the HTTP API deserializes from a request and what the
//! template renderer and tool-call parser work on. Deserialization is lenient
//! where real clients differ (arguments sent as an object instead of a string,
//! `null` instead of an absent field, unknown content-part types), because
//! rejecting a request over such details helps nobody.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// One message of a conversation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, `tool` (or anything a template knows; which roles a
    /// protocol accepts is [`crate::Roles`]).
    pub role: String,
    /// Absent (or `null`) for an assistant message that only calls tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<MessageContent>,
    /// Tool calls made by an assistant message.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tool_calls: Vec<ToolCall>,
    /// For `role: "tool"`: which call this message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Optional participant or tool name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The model's reasoning ("thinking") for an assistant message, kept apart
    /// from `content` the way DeepSeek and Qwen3 templates expect it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
}

impl ChatMessage {
    /// A message with a role and plain-text content.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: Some(MessageContent::Text(content.into())),
            ..Default::default()
        }
    }

    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }

    /// An assistant message that only calls tools (content absent, as OpenAI sends it).
    pub fn assistant_tool_calls(tool_calls: Vec<ToolCall>) -> Self {
        ChatMessage {
            role: "assistant".into(),
            tool_calls,
            ..Default::default()
        }
    }

    /// The result of a tool call.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            tool_call_id: Some(tool_call_id.into()),
            ..Self::new("tool", content)
        }
    }

    /// The text of the message: the string content, or its text parts
    /// concatenated (images and other parts are skipped). Empty when absent.
    pub fn text(&self) -> String {
        self.content
            .as_ref()
            .map(MessageContent::text)
            .unwrap_or_default()
    }
}

/// Message content: a plain string or a list of typed parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

impl MessageContent {
    /// The text parts joined with `separator` (other parts skipped), or the string itself.
    /// llama.cpp joins with `"\n"` for templates that want a string, and with `"\n\n"` for
    /// a final assistant message the reply continues.
    pub fn text_joined(&self, separator: &str) -> String {
        match self {
            MessageContent::Text(text) => text.clone(),
            MessageContent::Parts(parts) => {
                let texts: Vec<&str> = parts
                    .iter()
                    .filter_map(|part| match part {
                        ContentPart::Text { text } => Some(text.as_str()),
                        _ => None,
                    })
                    .collect();
                texts.join(separator)
            }
        }
    }

    /// The text parts concatenated, or the string itself.
    pub fn text(&self) -> String {
        match self {
            MessageContent::Text(text) => text.clone(),
            MessageContent::Parts(parts) => parts
                .iter()
                .filter_map(|part| match part {
                    ContentPart::Text { text } => Some(text.as_str()),
                    _ => None,
                })
                .collect(),
        }
    }
}

impl From<String> for MessageContent {
    fn from(text: String) -> Self {
        MessageContent::Text(text)
    }
}

impl From<&str> for MessageContent {
    fn from(text: &str) -> Self {
        MessageContent::Text(text.to_owned())
    }
}

/// One part of a multi-part message content.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentPart {
    /// `{"type": "text", "text": ...}`
    Text { text: String },
    /// `{"type": "image_url", "image_url": {"url": ..., "detail": ...}}`
    ImageUrl { image_url: ImageUrl },
    /// Any other part type (audio, files, ...), kept verbatim so nothing is
    /// lost on a round trip and templates still see it.
    Other(Value),
}

/// The target of an `image_url` content part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageUrl {
    /// An `https:` or `data:` URL.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ContentPart {
    /// The part as a JSON object in OpenAI's shape.
    pub fn to_json(&self) -> Value {
        match self {
            ContentPart::Text { text } => serde_json::json!({"type": "text", "text": text}),
            ContentPart::ImageUrl { image_url } => {
                serde_json::json!({"type": "image_url", "image_url": image_url})
            }
            ContentPart::Other(value) => value.clone(),
        }
    }
}

impl Serialize for ContentPart {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ContentPart {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let Some(object) = value.as_object() else {
            return Err(D::Error::custom("a content part must be an object"));
        };
        match object.get("type").and_then(Value::as_str) {
            Some("text") => match object.get("text").and_then(Value::as_str) {
                Some(text) => Ok(ContentPart::Text { text: text.into() }),
                None => Err(D::Error::custom(
                    "a text content part needs a string `text`",
                )),
            },
            Some("image_url") => {
                // Some clients send `"image_url": "https://..."` instead of an object.
                let image_url = match object.get("image_url") {
                    Some(Value::String(url)) => ImageUrl {
                        url: url.clone(),
                        detail: None,
                    },
                    Some(other) => ImageUrl::deserialize(other).map_err(D::Error::custom)?,
                    None => return Err(D::Error::custom("an image_url part needs `image_url`")),
                };
                Ok(ContentPart::ImageUrl { image_url })
            }
            _ => Ok(ContentPart::Other(value)),
        }
    }
}

/// A tool call made by the assistant.
///
/// Serialized in OpenAI's shape:
/// `{"id": ..., "type": "function", "function": {"name": ..., "arguments": "<json string>"}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as a JSON string, as OpenAI sends them.
    pub arguments: String,
}

impl ToolCall {
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }

    /// The arguments parsed as JSON, if they are valid JSON.
    pub fn arguments_json(&self) -> Option<Value> {
        serde_json::from_str(&self.arguments).ok()
    }
}

#[derive(Serialize, Deserialize)]
struct WireToolCall {
    #[serde(default, deserialize_with = "null_as_default")]
    id: String,
    #[serde(rename = "type", default = "function_type")]
    kind: String,
    function: WireFunction,
}

#[derive(Serialize, Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: Value,
}

fn function_type() -> String {
    "function".into()
}

impl Serialize for ToolCall {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireToolCall {
            id: self.id.clone(),
            kind: function_type(),
            function: WireFunction {
                name: self.name.clone(),
                arguments: Value::String(self.arguments.clone()),
            },
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ToolCall {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireToolCall::deserialize(deserializer)?;
        // OpenAI sends a JSON string; some clients send the object itself.
        let arguments = match wire.function.arguments {
            Value::String(text) => text,
            Value::Null => "{}".into(),
            other => other.to_string(),
        };
        Ok(ToolCall {
            id: wire.id,
            name: wire.function.name,
            arguments,
        })
    }
}

/// A function the model may call.
///
/// Deserializes from OpenAI's `{"type": "function", "function": {...}}` or from
/// the bare function object; serializes to OpenAI's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    pub parameters: Value,
}

impl Tool {
    pub fn new(name: impl Into<String>, description: Option<&str>, parameters: Value) -> Self {
        Tool {
            name: name.into(),
            description: description.map(str::to_owned),
            parameters,
        }
    }

    /// Builds a tool from OpenAI's `{"type": "function", "function": {...}}`
    /// (a bare function object is accepted too).
    pub fn from_openai(value: &Value) -> Result<Tool, String> {
        let Some(object) = value.as_object() else {
            return Err("a tool must be a JSON object".into());
        };
        if let Some(kind) = object.get("type").and_then(Value::as_str)
            && kind != "function"
        {
            return Err(format!(
                "unsupported tool type `{kind}`: only `function` tools are supported"
            ));
        }
        let function = match object.get("function") {
            Some(Value::Object(function)) => function,
            Some(_) => return Err("`function` must be an object".into()),
            None => object,
        };
        let name = match function.get("name") {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            _ => return Err("a function tool needs a non-empty string `name`".into()),
        };
        let description = match function.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => return Err(format!("tool `{name}`: `description` must be a string")),
        };
        let parameters = match function.get("parameters") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(parameters @ Value::Object(_)) => parameters.clone(),
            Some(_) => return Err(format!("tool `{name}`: `parameters` must be an object")),
        };
        Ok(Tool {
            name,
            description,
            parameters,
        })
    }

    /// The function object (`{"name", "description", "parameters"}`), with
    /// keys in the order HF templates print them.
    pub fn function_json(&self) -> Value {
        let mut function = Map::new();
        function.insert("name".into(), Value::String(self.name.clone()));
        if let Some(description) = &self.description {
            function.insert("description".into(), Value::String(description.clone()));
        }
        function.insert("parameters".into(), self.parameters.clone());
        Value::Object(function)
    }

    /// OpenAI's `{"type": "function", "function": {...}}`.
    pub fn to_openai(&self) -> Value {
        serde_json::json!({"type": "function", "function": self.function_json()})
    }
}

impl Serialize for Tool {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_openai().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Tool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Tool::from_openai(&value).map_err(D::Error::custom)
    }
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deserializes_openai_messages() {
        let messages: Vec<ChatMessage> = serde_json::from_value(json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is "},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": "this?"},
                {"type": "input_audio", "input_audio": {"data": "...", "format": "wav"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "look", "arguments": "{\"at\":\"it\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
            {"role": "assistant", "content": "A cat.", "tool_calls": null}
        ]))
        .unwrap();
        assert_eq!(messages[0], ChatMessage::system("Be brief."));
        assert_eq!(messages[1].text(), "What is this?");
        let Some(MessageContent::Parts(parts)) = &messages[1].content else {
            panic!("expected parts");
        };
        assert!(matches!(parts[1], ContentPart::ImageUrl { .. }));
        assert!(matches!(parts[3], ContentPart::Other(_)));
        assert_eq!(messages[2].content, None);
        assert_eq!(
            messages[2].tool_calls,
            vec![ToolCall::new("call_1", "look", r#"{"at":"it"}"#)]
        );
        assert_eq!(messages[3], ChatMessage::tool("call_1", "a cat"));
        assert!(messages[4].tool_calls.is_empty());
    }

    #[test]
    fn serializes_back_to_the_wire_shape() {
        let message = ChatMessage::assistant_tool_calls(vec![ToolCall::new("c", "f", "{}")]);
        assert_eq!(
            serde_json::to_value(&message).unwrap(),
            json!({"role": "assistant", "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ]})
        );
        let parts = MessageContent::Parts(vec![ContentPart::Text { text: "hi".into() }]);
        assert_eq!(
            serde_json::to_value(parts).unwrap(),
            json!([{"type": "text", "text": "hi"}])
        );
    }

    #[test]
    fn object_arguments_become_a_json_string() {
        let call: ToolCall = serde_json::from_value(json!(
            {"function": {"name": "f", "arguments": {"x": 1}}}
        ))
        .unwrap();
        assert_eq!(call, ToolCall::new("", "f", r#"{"x":1}"#));
        assert_eq!(call.arguments_json(), Some(json!({"x": 1})));
    }

    #[test]
    fn tools_from_openai_and_bare_shapes() {
        let openai = json!({"type": "function", "function": {
            "name": "get_weather", "description": "Weather now",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}
        }});
        let tool = Tool::from_openai(&openai).unwrap();
        assert_eq!(tool.name, "get_weather");
        assert_eq!(tool.description.as_deref(), Some("Weather now"));
        assert_eq!(serde_json::to_value(&tool).unwrap(), openai);

        let bare: Tool = serde_json::from_value(json!({"name": "ping"})).unwrap();
        assert_eq!(bare.parameters, json!({}));
        assert_eq!(
            bare.to_openai(),
            json!({"type": "function", "function": {"name": "ping", "parameters": {}}})
        );

        assert!(Tool::from_openai(&json!({"type": "retrieval"})).is_err());
        assert!(Tool::from_openai(&json!({"type": "function", "function": {}})).is_err());
        assert!(serde_json::from_value::<Tool>(json!([1])).is_err());
    }
}
