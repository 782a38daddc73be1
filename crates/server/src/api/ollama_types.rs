//! Ollama's wire pieces shared by its routes (`api/types.go` of Ollama): timestamps, the
//! `model "x" not found` error, `options` onto our sampling fields, `format`, `think`,
//! messages with base64 images and object-valued tool-call arguments, the metrics of a final
//! object, and a model's `details`. Only parsing and shaping: the conversation is rendered,
//! sampled, stopped and parsed by the service like every family's.

use super::openai::parse_thinking;
use super::params::GenFields;
use crate::error::{ApiError, ApiResult};
use base64::Engine as _;
use chat::{ChatMessage, ContentPart, ImageUrl, MessageContent, Roles, ToolCall};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use service::{Done, Finish, ReasoningFormat, ResponseFormat, Thinking};
use std::time::{Duration, SystemTime};

/// Ollama's inference routes: they take the inference key, like `/v1/*`.
pub const INFERENCE_ROUTES: &[&str] = &[
    "/api/chat",
    "/api/generate",
    "/api/embed",
    "/api/embeddings",
];

/// NDJSON lines, as Ollama streams (`application/x-ndjson`, one object a line): the one
/// framing of every Ollama stream (generation and pull progress).
pub fn ndjson(
    lines: impl futures_util::Stream<Item = Value> + Send + 'static,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use futures_util::StreamExt;
    let body = lines.map(|v| Ok::<_, std::convert::Infallible>(format!("{v}\n")));
    (
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

/// A time as Ollama writes it (`created_at`, `modified_at`, `expires_at`): RFC 3339 with
/// nanoseconds, as Go's `time.Time` marshals.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

/// `created_at`: now, in Ollama's format.
pub fn created_at() -> String {
    rfc3339(SystemTime::now())
}

/// Ollama's 404 for a model it does not have.
pub fn model_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("model \"{name}\" not found, try pulling it first"))
}

/// Errors of a request naming `model`: a missing model gets Ollama's text.
pub fn for_model(model: &str) -> impl Fn(ApiError) -> ApiError + '_ {
    move |e| {
        if e.status.as_u16() == 404 {
            model_not_found(model)
        } else {
            e
        }
    }
}

/// `model`: required, as Ollama requires it.
pub fn required_model(model: Option<&str>) -> ApiResult<&str> {
    match model.map(str::trim) {
        Some(m) if !m.is_empty() => Ok(m),
        _ => Err(ApiError::invalid("model", "model is required")),
    }
}

/// What `options` sets besides sampling: `num_ctx`, the request's context window within the
/// loaded model's (see [`options`]).
#[derive(Debug, Default)]
pub struct Options {
    pub fields: GenFields,
    pub num_ctx: Option<u32>,
}

/// The type an option has in Ollama's `Options` struct.
#[derive(Clone, Copy)]
enum Kind {
    Int,
    Float,
    Bool,
    Strings,
}

/// Ollama's options, their types, and our field for each (`None`: accepted, no effect here
/// — a load parameter of the operator's, or a sampler llama.cpp dropped).
const OPTIONS: &[(&str, Kind, Option<&str>)] = &[
    ("num_keep", Kind::Int, Some("n_keep")),
    ("seed", Kind::Int, Some("seed")),
    ("num_predict", Kind::Int, Some("n_predict")),
    ("top_k", Kind::Int, Some("top_k")),
    ("top_p", Kind::Float, Some("top_p")),
    ("min_p", Kind::Float, Some("min_p")),
    ("typical_p", Kind::Float, Some("typical_p")),
    ("repeat_last_n", Kind::Int, Some("repeat_last_n")),
    ("temperature", Kind::Float, Some("temperature")),
    ("repeat_penalty", Kind::Float, Some("repeat_penalty")),
    ("presence_penalty", Kind::Float, Some("presence_penalty")),
    ("frequency_penalty", Kind::Float, Some("frequency_penalty")),
    ("mirostat", Kind::Int, Some("mirostat")),
    ("mirostat_tau", Kind::Float, Some("mirostat_tau")),
    ("mirostat_eta", Kind::Float, Some("mirostat_eta")),
    ("stop", Kind::Strings, Some("stop")),
    ("tfs_z", Kind::Float, None),
    ("penalize_newline", Kind::Bool, None),
    ("num_ctx", Kind::Int, None),
    ("num_batch", Kind::Int, None),
    ("num_gpu", Kind::Int, None),
    ("main_gpu", Kind::Int, None),
    ("num_thread", Kind::Int, None),
    ("numa", Kind::Bool, None),
    ("low_vram", Kind::Bool, None),
    ("f16_kv", Kind::Bool, None),
    ("logits_all", Kind::Bool, None),
    ("vocab_only", Kind::Bool, None),
    ("use_mmap", Kind::Bool, None),
    ("use_mlock", Kind::Bool, None),
];

/// `options` onto our sampling fields ([`GenFields`], the one mapping every family uses),
/// typed as Ollama types them (an integer option takes a float and truncates it, as Go's
/// decoder does). Unknown options are accepted and ignored, as Ollama only warns.
/// `num_predict`: -1 no limit, -2 until the context is full (the same here: generation
/// stops at the context's end). `num_ctx` is the window `/api/chat` fits the conversation
/// into and the answer ends at, up to the context one request has on the loaded model; it
/// never reloads a shared model (the loaded context is the model's load parameter:
/// `models.ctx_size`, per-model launch parameters, an Ollama model's own `num_ctx`).
pub fn options(v: Option<&Value>) -> ApiResult<Options> {
    let map = match v {
        None | Some(Value::Null) => return Ok(Options::default()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(ApiError::invalid("options", "must be an object")),
    };
    let mut fields = Map::new();
    let mut num_ctx = None;
    for (key, value) in map {
        let Some(&(_, kind, ours)) = OPTIONS.iter().find(|(k, _, _)| k == key) else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        let field = format!("options.{key}");
        let bad =
            |ty: &str| ApiError::invalid(&field, format!("option \"{key}\" must be of type {ty}"));
        let value = match kind {
            Kind::Int => {
                let f = value.as_f64().ok_or_else(|| bad("integer"))?;
                if !f.is_finite() || f.abs() > i64::from(u32::MAX) as f64 {
                    return Err(ApiError::invalid(
                        &field,
                        format!("option \"{key}\" is out of range"),
                    ));
                }
                json!(f.trunc() as i64)
            }
            Kind::Float => json!(value.as_f64().ok_or_else(|| bad("float32"))?),
            Kind::Bool => json!(value.as_bool().ok_or_else(|| bad("boolean"))?),
            Kind::Strings => {
                let list = value.as_array().ok_or_else(|| bad("array"))?;
                if list.iter().any(|s| !s.is_string()) {
                    return Err(bad("array of strings"));
                }
                value.clone()
            }
        };
        if key == "num_ctx" {
            let n = value.as_i64().unwrap_or(0);
            num_ctx =
                Some(u32::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
                    ApiError::invalid(&field, "must be a positive number of tokens")
                })?);
        }
        if key == "mirostat" && !(0..=2).contains(&value.as_i64().unwrap_or(-1)) {
            return Err(ApiError::invalid(&field, "must be 0, 1 or 2"));
        }
        if let Some(ours) = ours {
            fields.insert(ours.to_string(), value);
        }
    }
    let fields: GenFields = serde_json::from_value(Value::Object(fields))
        .map_err(|e| ApiError::invalid("options", e))?;
    Ok(Options { fields, num_ctx })
}

/// `format`: `"json"` (any JSON) or a JSON schema (onto the JSON-schema grammar); empty or
/// absent is text.
pub fn format(v: Option<&Value>) -> ApiResult<ResponseFormat> {
    match v {
        None | Some(Value::Null) => Ok(ResponseFormat::Text),
        Some(Value::String(s)) if s.is_empty() => Ok(ResponseFormat::Text),
        Some(Value::String(s)) if s == "json" => Ok(ResponseFormat::JsonObject),
        Some(schema @ Value::Object(_)) => Ok(ResponseFormat::JsonSchema(schema.clone())),
        Some(_) => Err(ApiError::invalid(
            "format",
            "invalid format: expected \"json\" or a valid JSON schema",
        )),
    }
}

/// `think`: `true`/`false`, or a level (`"low"`, `"medium"`, `"high"`: the template's
/// `reasoning_effort`, as OpenAI's effort is passed). Thoughts always come apart, in
/// `thinking`, as Ollama returns them.
pub fn think(v: Option<&Value>, kwargs: &mut Map<String, Value>) -> ApiResult<Thinking> {
    let mut thinking = match v {
        None | Some(Value::Null) => Thinking::default(),
        Some(Value::Bool(b)) => Thinking {
            enabled: Some(*b),
            ..Default::default()
        },
        Some(Value::String(level)) if matches!(level.as_str(), "low" | "medium" | "high") => {
            let mut t = parse_thinking(None, Some(level), kwargs)?;
            t.enabled = Some(true);
            t
        }
        Some(other) => {
            return Err(ApiError::invalid(
                "think",
                format!(
                    "invalid think value: {other} (must be \"high\", \"medium\", \"low\", true, or false)"
                ),
            ));
        }
    };
    thinking.format = Some(ReasoningFormat::Deepseek);
    Ok(thinking)
}

/// One chat message as Ollama sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: Option<String>,
    /// Base64 images (no `data:` prefix).
    #[serde(default)]
    pub images: Option<Vec<String>>,
    /// An assistant message's thoughts.
    #[serde(default)]
    pub thinking: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<Value>>,
    /// A `tool` message: the tool that answered.
    #[serde(default)]
    pub tool_name: Option<String>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

/// Ollama's roles (it passes any to the template; these are what templates know).
const ROLES: Roles = Roles::OLLAMA;

/// A base64 image as an image URL (`data:image/...`), its type read from its first bytes;
/// whether the model reads images is the service's check (`Models::check_for`).
pub fn image_part(b64: &str, field: &str) -> ApiResult<ContentPart> {
    let b64 = b64.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| ApiError::invalid(field, format!("illegal base64 data: {e}")))?;
    let mime = match bytes.as_slice() {
        [0x89, b'P', b'N', b'G', ..] => "image/png",
        [0xFF, 0xD8, 0xFF, ..] => "image/jpeg",
        [b'G', b'I', b'F', b'8', ..] => "image/gif",
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => "image/webp",
        [b'B', b'M', ..] => "image/bmp",
        _ => {
            return Err(ApiError::invalid(
                field,
                "not an image (PNG, JPEG, GIF, WebP or BMP expected)",
            ));
        }
    };
    Ok(ContentPart::ImageUrl {
        image_url: ImageUrl {
            url: format!("data:{mime};base64,{b64}"),
            detail: None,
        },
    })
}

/// Text and images as one message content (text alone stays a string, as templates want).
pub fn content(text: String, images: Option<&[String]>, field: &str) -> ApiResult<MessageContent> {
    let images = images.unwrap_or_default();
    if images.is_empty() {
        return Ok(MessageContent::Text(text));
    }
    let mut parts = Vec::with_capacity(images.len() + 1);
    for (i, img) in images.iter().enumerate() {
        let at = if field.is_empty() {
            format!("images[{i}]")
        } else {
            format!("{field}.images[{i}]")
        };
        parts.push(image_part(img, &at)?);
    }
    if !text.is_empty() {
        parts.push(ContentPart::Text { text });
    }
    Ok(MessageContent::Parts(parts))
}

impl Message {
    /// As a chat message: tool calls with object arguments, a tool message's name, images
    /// as image parts, an assistant's thoughts as its reasoning.
    pub fn into_chat(mut self, i: usize) -> ApiResult<ChatMessage> {
        let field = format!("messages[{i}]");
        // Ollama lowercases roles when it reads a message.
        self.role.make_ascii_lowercase();
        ROLES
            .check(&self.role)
            .map_err(|e| ApiError::bad_request(e).with_param(format!("{field}.role")))?;
        let mut calls = Vec::new();
        for (j, c) in self.tool_calls.unwrap_or_default().iter().enumerate() {
            let f = format!("{field}.tool_calls[{j}].function");
            let function = c
                .get("function")
                .ok_or_else(|| ApiError::invalid(&f, "Field required"))?;
            let name = function
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::invalid(&format!("{f}.name"), "Field required"))?;
            let args = match function.get("arguments") {
                None | Some(Value::Null) => json!({}),
                Some(a @ Value::Object(_)) => a.clone(),
                Some(_) => {
                    return Err(ApiError::invalid(
                        &format!("{f}.arguments"),
                        "must be an object",
                    ));
                }
            };
            let id = c.get("id").and_then(Value::as_str).unwrap_or_default();
            calls.push(ToolCall::new(id, name, args.to_string()));
        }
        let text = self.content.unwrap_or_default();
        let content = if text.is_empty() && !calls.is_empty() && self.images.is_none() {
            None
        } else {
            Some(content(text, self.images.as_deref(), &field)?)
        };
        Ok(ChatMessage {
            role: self.role,
            content,
            tool_calls: calls,
            tool_call_id: self.tool_call_id,
            name: self.tool_name,
            reasoning_content: self.thinking.filter(|t| !t.is_empty()),
        })
    }
}

/// A tool call as Ollama sends it: arguments as a JSON object, not a string.
pub fn tool_call(index: usize, call: &ToolCall) -> Value {
    // The parser hands over JSON text; broken JSON becomes an empty object rather than a
    // string where Ollama's clients expect an object.
    let arguments = call
        .arguments_json()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    json!({"id": call.id, "function": {"index": index, "name": call.name, "arguments": arguments}})
}

/// `done_reason` of a generation.
pub fn done_reason(done: &Done) -> &'static str {
    match done.finish {
        Finish::Length => "length",
        Finish::Stop | Finish::ToolCalls | Finish::Cancelled => "stop",
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn ms_nanos(ms: f64) -> u64 {
    (ms.max(0.0) * 1e6) as u64
}

/// The final object's fields: `done_reason` and the metrics, durations in nanoseconds.
/// `load` is the time to get the model (loading it, if it was not).
pub fn final_fields(out: &mut Map<String, Value>, done: &Done, total: Duration, load: Duration) {
    out.insert("done".into(), json!(true));
    out.insert("done_reason".into(), json!(done_reason(done)));
    out.insert("total_duration".into(), json!(nanos(total)));
    out.insert("load_duration".into(), json!(nanos(load)));
    out.insert("prompt_eval_count".into(), json!(done.usage.prompt_tokens));
    out.insert(
        "prompt_eval_duration".into(),
        json!(ms_nanos(done.timings.prompt_ms)),
    );
    out.insert("eval_count".into(), json!(done.usage.completion_tokens));
    out.insert(
        "eval_duration".into(),
        json!(ms_nanos(done.timings.predicted_ms)),
    );
}

/// Durations of an embedding request.
pub fn embed_metrics(out: &mut Map<String, Value>, total: Duration, load: Duration, tokens: u64) {
    out.insert("total_duration".into(), json!(nanos(total)));
    out.insert("load_duration".into(), json!(nanos(load)));
    out.insert("prompt_eval_count".into(), json!(tokens));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_map_onto_sampling_fields() {
        let o = options(Some(&json!({
            "temperature": 0, "top_k": 7.9, "num_predict": -2, "stop": ["x"], "seed": 3,
            "num_ctx": 2048, "unknown_option": {"any": "thing"}, "num_keep": 4, "min_p": null,
        })))
        .unwrap();
        assert_eq!(o.fields.temperature, Some(0.0));
        assert_eq!(o.fields.top_k, Some(7));
        assert_eq!(o.fields.n_predict, Some(-2));
        assert_eq!(o.fields.seed, Some(3));
        assert_eq!(o.fields.n_keep, Some(4));
        assert_eq!(o.fields.min_p, None);
        assert_eq!(o.num_ctx, Some(2048));
        for (bad, field) in [
            (json!({"temperature": "hot"}), "options.temperature"),
            (json!({"top_k": "many"}), "options.top_k"),
            (json!({"stop": [1]}), "options.stop"),
            (json!({"num_ctx": 1e20}), "options.num_ctx"),
            (json!({"num_ctx": 0}), "options.num_ctx"),
            (json!({"use_mmap": 1}), "options.use_mmap"),
            (json!({"mirostat": 5}), "options.mirostat"),
            (json!([1]), "options"),
        ] {
            let e = options(Some(&bad)).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(field), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn formats_and_think() {
        assert_eq!(
            format(Some(&json!("json"))).unwrap(),
            ResponseFormat::JsonObject
        );
        assert_eq!(format(Some(&json!(""))).unwrap(), ResponseFormat::Text);
        let schema = json!({"type": "object"});
        assert_eq!(
            format(Some(&schema)).unwrap(),
            ResponseFormat::JsonSchema(schema)
        );
        assert!(format(Some(&json!("xml"))).is_err());
        assert!(format(Some(&json!(3))).is_err());
        let mut kw = Map::new();
        assert_eq!(
            think(Some(&json!(false)), &mut kw).unwrap().enabled,
            Some(false)
        );
        let t = think(Some(&json!("high")), &mut kw).unwrap();
        assert_eq!(t.enabled, Some(true));
        assert_eq!(kw["reasoning_effort"], "high");
        assert_eq!(t.format, Some(ReasoningFormat::Deepseek));
        assert!(think(Some(&json!("max")), &mut kw).is_err());
        assert!(think(Some(&json!(1)), &mut kw).is_err());
    }

    #[test]
    fn messages_with_tool_calls_images_and_tools() {
        let m: Message = serde_json::from_value(json!({"role": "assistant", "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}))
        .unwrap();
        let m = m.into_chat(1).unwrap();
        assert!(m.content.is_none());
        assert_eq!(
            m.tool_calls[0].arguments_json(),
            Some(json!({"city": "Paris"}))
        );
        let m: Message = serde_json::from_value(
            json!({"role": "tool", "content": "sunny", "tool_name": "get_weather"}),
        )
        .unwrap();
        assert_eq!(m.into_chat(2).unwrap().name.as_deref(), Some("get_weather"));
        // Arguments as a string (OpenAI's way) are refused, as Ollama's decoder refuses them.
        let m: Message = serde_json::from_value(json!({"role": "assistant",
            "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}))
        .unwrap();
        assert!(m.into_chat(0).is_err());
        // A PNG's first bytes become an image part; other bytes are refused.
        let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n\x1a\nrest");
        let m: Message =
            serde_json::from_value(json!({"role": "user", "content": "see", "images": [png]}))
                .unwrap();
        let Some(MessageContent::Parts(parts)) = m.into_chat(0).unwrap().content else {
            panic!()
        };
        assert!(
            matches!(&parts[0], ContentPart::ImageUrl { image_url } if image_url.url.starts_with("data:image/png;base64,"))
        );
        for bad in ["not base64!", "aGVsbG8="] {
            let m: Message =
                serde_json::from_value(json!({"role": "user", "content": "x", "images": [bad]}))
                    .unwrap();
            let e = m.into_chat(0).unwrap_err();
            assert_eq!(e.param.as_deref(), Some("messages[0].images[0]"), "{bad}");
        }
        let m: Message = serde_json::from_value(json!({"role": "robot", "content": "x"})).unwrap();
        assert!(m.into_chat(0).is_err());
    }

    #[test]
    fn tool_calls_go_out_with_object_arguments() {
        let call = ToolCall::new("c1", "f", r#"{"a": 1}"#);
        assert_eq!(
            tool_call(0, &call),
            json!({"id": "c1", "function": {"index": 0, "name": "f", "arguments": {"a": 1}}})
        );
        let broken = ToolCall::new("c2", "f", "{not json");
        assert_eq!(tool_call(1, &broken)["function"]["arguments"], json!({}));
    }
}
