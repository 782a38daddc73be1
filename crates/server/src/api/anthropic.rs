//! Anthropic's Messages API: `POST /v1/messages` (system, text/image/tool blocks, assistant
//! prefill, tools, `stop_sequences`, `thinking`, `output_config`, streaming with Anthropic's
//! typed events) and `POST /v1/messages/count_tokens`. Like every family, it only parses the
//! wire format into the service's [`Request`] and writes the [`Output`]s back: rendering,
//! sampling, stop strings, tool-call parsing, thinking and grammars are the service's.
//! Errors leave in Anthropic's shape (`error::Flavor::Anthropic`, chosen by path).

use super::common::{self, new_id};
use super::openai::{parse_thinking, sse};
use super::params::{GenFields, StopField};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::SharedState;
use axum::Json;
use axum::extract::State;
use axum::response::sse::Event as SseEvent;
use axum::response::{IntoResponse, Response};
use chat::{ChatMessage, ContentPart, ImageUrl, MessageContent, Roles, Tool, ToolCall};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use service::{
    ChatInput, Done, Finish, Input, Output, ReasoningFormat, Request, ResponseFormat, Thinking,
    ToolChoice,
};

/// The body of both routes (`count_tokens` takes the same fields but `max_tokens`). Fields
/// Anthropic has and a local server has no use for (`metadata`, `service_tier`,
/// `container`, `context_management`, `mcp_servers`, `cache_control`, `inference_geo`, ...)
/// are accepted and have no effect.
#[derive(Debug, Deserialize)]
pub struct MessagesRequest {
    pub model: Option<String>,
    pub messages: Vec<Value>,
    pub system: Option<Value>,
    /// Required on `/v1/messages`, as Anthropic requires it.
    pub max_tokens: Option<i64>,
    /// Older clients' sampling fields (the 2.x SDK sends `thinking` and `output_config`).
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<i32>,
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    pub stream: bool,
    pub tools: Option<Vec<Value>>,
    pub tool_choice: Option<Value>,
    pub thinking: Option<Value>,
    pub output_config: Option<Value>,
    /// The beta spelling of `output_config.format`.
    pub output_format: Option<Value>,
    /// Ours, as on every family: how long the model stays loaded after the request.
    pub keep_alive: Option<Value>,
}

/// What the answer needs to know besides the outputs.
struct Meta {
    id: String,
    model: String,
    /// The request's own stop sequences: a stop string among them is `stop_sequence`; the
    /// template's end-of-turn strings are `end_turn`.
    stops: Vec<String>,
    /// `thinking.display: "omitted"`: thinking blocks are sent empty.
    show_thinking: bool,
}

impl MessagesRequest {
    /// The conversation: system, messages, tools, tool choice and thinking.
    fn chat_input(&mut self) -> ApiResult<(ChatInput, bool)> {
        let mut messages = Vec::new();
        if let Some(system) = system_text(self.system.as_ref())?
            && !system.is_empty()
        {
            messages.push(ChatMessage::system(system));
        }
        for (i, m) in self.messages.iter().enumerate() {
            convert_message(m, i, &mut messages)?;
        }
        let (tool_choice, parallel) = tool_choice(self.tool_choice.as_ref())?;
        let mut template_kwargs = Map::new();
        let effort = self
            .output_config
            .as_ref()
            .and_then(|c| c.get("effort"))
            .and_then(Value::as_str);
        // Effort is the template's `reasoning_effort`, as OpenAI's is.
        let mut thinking = parse_thinking(None, effort, &mut template_kwargs)?;
        let show = apply_thinking(self.thinking.as_ref(), self.max_tokens, &mut thinking)?;
        Ok((
            ChatInput {
                messages,
                tools: tools(self.tools.as_deref())?,
                tool_choice,
                template_kwargs,
                parallel_tool_calls: parallel,
                thinking,
                ..Default::default()
            },
            show,
        ))
    }

    /// `output_config.format` (or the beta `output_format`): a JSON schema the answer keeps.
    fn response_format(&self) -> ApiResult<ResponseFormat> {
        let (field, format) = match (
            self.output_config.as_ref().and_then(|c| c.get("format")),
            self.output_format.as_ref(),
        ) {
            (Some(f), _) if !f.is_null() => ("output_config.format", f),
            (_, Some(f)) if !f.is_null() => ("output_format", f),
            _ => return Ok(ResponseFormat::Text),
        };
        match format.get("type").and_then(Value::as_str) {
            Some("json_schema") => format
                .get("schema")
                .map(|s| ResponseFormat::JsonSchema(s.clone()))
                .ok_or_else(|| ApiError::invalid(&format!("{field}.schema"), "Field required")),
            other => Err(ApiError::invalid(
                &format!("{field}.type"),
                format!("'{}' is not a format (json_schema)", other.unwrap_or("")),
            )),
        }
    }
}

/// `system`: a string or a list of text blocks (their `cache_control` has no effect).
fn system_text(v: Option<&Value>) -> ApiResult<Option<String>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (i, b) in blocks.iter().enumerate() {
                match (
                    b.get("type").and_then(Value::as_str),
                    b.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => texts.push(t),
                    _ => {
                        return Err(ApiError::invalid(
                            &format!("system[{i}]"),
                            "system blocks must be text blocks",
                        ));
                    }
                }
            }
            Ok(Some(texts.join("\n")))
        }
        Some(_) => Err(ApiError::invalid(
            "system",
            "must be a string or a list of text blocks",
        )),
    }
}

/// An `image` block's source as an image URL (a `data:` URL for base64); whether the model
/// reads images is the service's check (`Models::check_for`).
fn image_part(block: &Value, field: &str) -> ApiResult<ContentPart> {
    let source = block
        .get("source")
        .ok_or_else(|| ApiError::invalid(&format!("{field}.source"), "Field required"))?;
    let text = |k: &str| source.get(k).and_then(Value::as_str);
    let url = match text("type") {
        Some("base64") => match (text("media_type"), text("data")) {
            (Some(mime), Some(data)) => format!("data:{mime};base64,{data}"),
            _ => {
                return Err(ApiError::invalid(
                    &format!("{field}.source"),
                    "a base64 source needs media_type and data",
                ));
            }
        },
        Some("url") => text("url")
            .ok_or_else(|| ApiError::invalid(&format!("{field}.source.url"), "Field required"))?
            .to_string(),
        other => {
            return Err(ApiError::invalid(
                &format!("{field}.source.type"),
                format!("'{}' is not supported (base64 or url)", other.unwrap_or("")),
            ));
        }
    };
    Ok(ContentPart::ImageUrl {
        image_url: ImageUrl { url, detail: None },
    })
}

/// The content of a `tool_result`: a string, or text and image blocks.
fn tool_result_content(v: Option<&Value>, field: &str) -> ApiResult<MessageContent> {
    match v {
        None | Some(Value::Null) => Ok(MessageContent::Text(String::new())),
        Some(Value::String(s)) => Ok(MessageContent::Text(s.clone())),
        Some(Value::Array(blocks)) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (i, b) in blocks.iter().enumerate() {
                let f = format!("{field}[{i}]");
                parts.push(match b.get("type").and_then(Value::as_str) {
                    Some("text") => ContentPart::Text {
                        text: block_text(b, &f)?,
                    },
                    Some("image") => image_part(b, &f)?,
                    other => return Err(unsupported_block(other, &f)),
                });
            }
            Ok(collapse_text(parts))
        }
        Some(_) => Err(ApiError::invalid(
            field,
            "must be a string or a list of blocks",
        )),
    }
}

/// Parts that are all text become one string, as most templates want it.
fn collapse_text(parts: Vec<ContentPart>) -> MessageContent {
    if parts.iter().all(|p| matches!(p, ContentPart::Text { .. })) {
        MessageContent::Text(MessageContent::Parts(parts).text())
    } else {
        MessageContent::Parts(parts)
    }
}

/// A `tool_result` with `is_error: true` says so in its text: the model must learn that the
/// call failed, which is the field's whole meaning (templates have no slot for it).
fn mark_tool_error(content: MessageContent) -> MessageContent {
    const MARK: &str = "Error: ";
    match content {
        MessageContent::Text(t) => MessageContent::Text(format!("{MARK}{t}")),
        MessageContent::Parts(mut parts) => {
            parts.insert(
                0,
                ContentPart::Text {
                    text: MARK.to_string(),
                },
            );
            MessageContent::Parts(parts)
        }
    }
}

fn block_text(b: &Value, field: &str) -> ApiResult<String> {
    b.get("text")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::invalid(&format!("{field}.text"), "Field required"))
}

fn unsupported_block(kind: Option<&str>, field: &str) -> ApiError {
    ApiError::invalid(
        &format!("{field}.type"),
        format!(
            "content blocks of type '{}' are not supported here",
            kind.unwrap_or("")
        ),
    )
}

/// One Anthropic message as chat messages: a user message's `tool_result` blocks become tool
/// messages (first: they answer the calls of the message before), its other blocks one user
/// message; an assistant message's `tool_use` blocks become its tool calls and its
/// `thinking` blocks its reasoning, which templates that keep thoughts render.
fn convert_message(m: &Value, i: usize, out: &mut Vec<ChatMessage>) -> ApiResult<()> {
    let field = format!("messages[{i}]");
    let role = m
        .get("role")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid(&format!("{field}.role"), "Field required"))?;
    Roles::ANTHROPIC
        .check(role)
        .map_err(|e| ApiError::bad_request(e).with_param(format!("{field}.role")))?;
    let blocks = match m.get("content") {
        Some(Value::String(s)) => {
            out.push(ChatMessage::new(role, s.clone()));
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks,
        _ => {
            return Err(ApiError::invalid(
                &format!("{field}.content"),
                "must be a string or a list of content blocks",
            ));
        }
    };
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    let mut reasoning = String::new();
    for (j, b) in blocks.iter().enumerate() {
        let f = format!("{field}.content[{j}]");
        let kind = b.get("type").and_then(Value::as_str);
        match (role, kind) {
            (_, Some("text")) => parts.push(ContentPart::Text {
                text: block_text(b, &f)?,
            }),
            ("user", Some("image")) => parts.push(image_part(b, &f)?),
            ("user", Some("tool_result")) => {
                let id = b
                    .get("tool_use_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ApiError::invalid(&format!("{f}.tool_use_id"), "Field required")
                    })?;
                let mut content = tool_result_content(b.get("content"), &format!("{f}.content"))?;
                if b.get("is_error").and_then(Value::as_bool) == Some(true) {
                    content = mark_tool_error(content);
                }
                out.push(ChatMessage {
                    role: "tool".into(),
                    content: Some(content),
                    tool_call_id: Some(id.to_owned()),
                    ..Default::default()
                });
            }
            ("assistant", Some("tool_use")) => {
                let id = b.get("id").and_then(Value::as_str).unwrap_or_default();
                let name = b
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ApiError::invalid(&format!("{f}.name"), "Field required"))?;
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(ToolCall::new(id, name, input.to_string()));
            }
            ("assistant", Some("thinking")) => {
                if let Some(t) = b.get("thinking").and_then(Value::as_str) {
                    reasoning.push_str(t);
                }
            }
            // Encrypted thoughts of another model: nothing a local model can read.
            ("assistant", Some("redacted_thinking")) => {}
            (_, other) => return Err(unsupported_block(other, &f)),
        }
    }
    if role == "user" && parts.is_empty() && blocks.iter().any(|b| b["type"] == "tool_result") {
        return Ok(());
    }
    let content = match collapse_text(parts) {
        // An assistant turn of tool calls alone has no content.
        MessageContent::Text(text) if text.is_empty() && !calls.is_empty() => None,
        content => Some(content),
    };
    out.push(ChatMessage {
        role: role.into(),
        content,
        tool_calls: calls,
        reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
        ..Default::default()
    });
    Ok(())
}

/// Custom tools (`{name, description, input_schema}`); Anthropic's server tools (web search,
/// code execution, ...) run at Anthropic and are refused.
fn tools(v: Option<&[Value]>) -> ApiResult<Vec<Tool>> {
    v.unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let field = format!("tools[{i}]");
            match t.get("type").and_then(Value::as_str) {
                None | Some("custom") => {}
                Some(kind) => {
                    return Err(ApiError::invalid(
                        &format!("{field}.type"),
                        format!(
                            "server tool '{kind}' is not available here: give custom tools \
                             (name, description, input_schema)"
                        ),
                    ));
                }
            }
            let schema = t
                .get("input_schema")
                .filter(|s| s.is_object())
                .ok_or_else(|| {
                    ApiError::invalid(
                        &format!("{field}.input_schema"),
                        "Field required (a JSON schema object)",
                    )
                })?;
            // The one tool validator: Anthropic's tool is OpenAI's function with its schema
            // under another name.
            let function = json!({
                "name": t.get("name"),
                "description": t.get("description"),
                "parameters": schema,
            });
            Tool::from_openai(&function).map_err(|e| ApiError::invalid(&field, e))
        })
        .collect()
}

/// `tool_choice`: `{"type": "auto" | "any" | "tool" (with `name`) | "none"}` and
/// `disable_parallel_tool_use`; returns the choice and whether several calls are allowed.
fn tool_choice(v: Option<&Value>) -> ApiResult<(ToolChoice, bool)> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok((ToolChoice::Auto, true));
    };
    let parallel = !v
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let choice = match v.get("type").and_then(Value::as_str) {
        Some("auto") => ToolChoice::Auto,
        Some("any") => ToolChoice::Required,
        Some("none") => ToolChoice::None,
        Some("tool") => ToolChoice::Function(
            v.get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::invalid("tool_choice.name", "Field required"))?
                .to_owned(),
        ),
        other => {
            return Err(ApiError::invalid(
                "tool_choice.type",
                format!(
                    "'{}' is not a choice (auto, any, tool or none)",
                    other.unwrap_or("")
                ),
            ));
        }
    };
    Ok((choice, parallel))
}

/// `thinking` onto the service's [`Thinking`]: `enabled` thinks within `budget_tokens`
/// (the engine's thinking budget), `disabled` does not, `adaptive` (and `between_tools`)
/// leave it to the server's `[reasoning]` and the template. Thoughts always come apart, as
/// `thinking` blocks. Returns whether their text is shown (`display: "omitted"` hides it).
fn apply_thinking(
    v: Option<&Value>,
    max_tokens: Option<i64>,
    thinking: &mut Thinking,
) -> ApiResult<bool> {
    thinking.format = Some(ReasoningFormat::Deepseek);
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(true);
    };
    match v.get("type").and_then(Value::as_str) {
        Some("enabled") => {
            let budget = v
                .get("budget_tokens")
                .and_then(Value::as_i64)
                .ok_or_else(|| ApiError::invalid("thinking.budget_tokens", "Field required"))?;
            if budget < 1 {
                return Err(ApiError::invalid(
                    "thinking.budget_tokens",
                    "must be at least 1",
                ));
            }
            if let Some(max) = max_tokens
                && budget >= max
            {
                return Err(ApiError::invalid(
                    "max_tokens",
                    format!("must be greater than thinking.budget_tokens ({budget})"),
                ));
            }
            thinking.enabled = Some(true);
            thinking.set_budget(budget)?;
        }
        Some("disabled") => thinking.enabled = Some(false),
        Some("adaptive" | "between_tools") => {}
        other => {
            return Err(ApiError::invalid(
                "thinking.type",
                format!(
                    "'{}' is not a thinking mode (enabled, adaptive or disabled)",
                    other.unwrap_or("")
                ),
            ));
        }
    }
    Ok(v.get("display").and_then(Value::as_str) != Some("omitted"))
}

/// `stop_reason` and `stop_sequence` of a finished generation.
fn stop_reason(d: &Done, stops: &[String]) -> (&'static str, Option<String>) {
    match d.finish {
        Finish::ToolCalls => ("tool_use", None),
        Finish::Length => ("max_tokens", None),
        Finish::Stop | Finish::Cancelled => match &d.stop_word {
            Some(s) if stops.contains(s) => ("stop_sequence", Some(s.clone())),
            _ => ("end_turn", None),
        },
    }
}

/// Anthropic's usage: `input_tokens` are the prompt tokens not read from the cache, which
/// `cache_read_input_tokens` counts (their sum is the whole prompt).
fn usage(prompt: u32, cached: u32, output: u32) -> Value {
    json!({
        "input_tokens": prompt.saturating_sub(cached),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": output,
    })
}

fn done_usage(d: &Done) -> Value {
    usage(
        d.usage.prompt_tokens,
        d.timings.cache_n,
        d.usage.completion_tokens,
    )
}

fn message(
    meta: &Meta,
    content: Vec<Value>,
    stop: Option<(&str, Option<String>)>,
    usage: Value,
) -> Value {
    let (reason, sequence) = match stop {
        Some((r, s)) => (json!(r), json!(s)),
        None => (Value::Null, Value::Null),
    };
    json!({
        "id": meta.id,
        "type": "message",
        "role": "assistant",
        "model": meta.model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": usage,
    })
}

fn tool_use_block(call: &ToolCall) -> Value {
    // The parser hands over JSON text; a model that wrote broken JSON gets an empty input
    // rather than a string where Anthropic's clients expect an object.
    let input = call
        .arguments_json()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input})
}

/// The parts of the request every generation of it needs, checked before a model is picked.
fn request(state: &SharedState, req: &mut MessagesRequest) -> ApiResult<(Request, bool)> {
    let max_tokens = match req.max_tokens {
        None => return Err(ApiError::invalid("max_tokens", "Field required")),
        Some(n) if n < 1 => return Err(ApiError::invalid("max_tokens", "must be at least 1")),
        Some(n) => n,
    };
    let (chat, show) = req.chat_input()?;
    let fields = GenFields {
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        max_tokens: Some(max_tokens),
        stop: req.stop_sequences.clone().map(StopField::Many),
        ..Default::default()
    };
    let params = fields.to_request(&state.sampling())?;
    Ok((
        Request {
            input: Input::Chat(chat),
            params,
            response_format: req.response_format()?,
        },
        show,
    ))
}

/// `POST /v1/messages`.
pub async fn messages(
    State(state): State<SharedState>,
    ApiJson(mut req): ApiJson<MessagesRequest>,
) -> ApiResult<Response> {
    let (request, show_thinking) = request(&state, &mut req)?;
    let keep_alive = common::keep_alive(req.keep_alive.as_ref())?;
    let timed = common::start(&state, req.model.as_deref(), keep_alive, request).await?;
    let meta = Meta {
        id: new_id("msg_"),
        model: timed.model.clone(),
        stops: req.stop_sequences.clone().unwrap_or_default(),
        show_thinking,
    };
    if req.stream {
        return Ok(sse(stream_events(timed, meta)));
    }
    let c = timed.collect().await?;
    let done = c.done.clone().expect("collected");
    let mut content = Vec::new();
    if !c.reasoning.is_empty() {
        let text = if meta.show_thinking {
            c.reasoning.as_str()
        } else {
            ""
        };
        content.push(json!({"type": "thinking", "thinking": text, "signature": ""}));
    }
    if !c.text.is_empty() || c.tool_calls.is_empty() {
        content.push(json!({"type": "text", "text": c.text}));
    }
    content.extend(c.tool_calls.iter().map(tool_use_block));
    let stop = stop_reason(&done, &meta.stops);
    Ok(Json(message(&meta, content, Some(stop), done_usage(&done))).into_response())
}

/// `POST /v1/messages/count_tokens`: the prompt the same request would run on, rendered and
/// tokenized by the service's one counting path; nothing is generated.
pub async fn count_tokens(
    State(state): State<SharedState>,
    ApiJson(mut req): ApiJson<MessagesRequest>,
) -> ApiResult<Json<Value>> {
    let (chat, _) = req.chat_input()?;
    let n = common::measure_chat(&state, req.model.as_deref(), chat)
        .await?
        .tokens;
    Ok(Json(json!({"input_tokens": n})))
}

/// Which content block is open in a stream.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    Thinking,
    Text,
    /// A tool call, by the service's call index.
    Tool(usize),
}

/// What the stream remembers between outputs: the open block and the next block's index.
struct St {
    meta: Meta,
    out: Vec<SseEvent>,
    open: Option<(Block, usize)>,
    next_index: usize,
    /// Block index of each tool call (by call index), for its argument deltas.
    tool_blocks: Vec<usize>,
    /// A text block was opened.
    texted: bool,
}

impl St {
    fn push(&mut self, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        self.out
            .push(SseEvent::default().event(kind).data(data.to_string()));
    }

    /// Closes the open block (a thinking block gets its, empty, signature first: Anthropic's
    /// clients wait for one before they keep the block).
    fn close(&mut self) {
        if let Some((block, index)) = self.open.take() {
            if block == Block::Thinking {
                self.push(
                    "content_block_delta",
                    json!({"index": index, "delta": {"type": "signature_delta", "signature": ""}}),
                );
            }
            self.push("content_block_stop", json!({"index": index}));
        }
    }

    /// Makes `block` the open one (closing another), starting it with `start`; Anthropic's
    /// `ping` follows the first block's start. Returns the block's index.
    fn open(&mut self, block: Block, start: Value) -> usize {
        if let Some((b, index)) = self.open
            && b == block
        {
            return index;
        }
        self.close();
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((block, index));
        self.push(
            "content_block_start",
            json!({"index": index, "content_block": start}),
        );
        if index == 0 {
            self.push("ping", json!({}));
        }
        index
    }

    fn open_text(&mut self) -> usize {
        self.texted = true;
        self.open(Block::Text, json!({"type": "text", "text": ""}))
    }

    fn on_output(&mut self, output: Output) {
        match output {
            Output::Reasoning { text } => {
                // As the whole message: a thinking block only when there was thinking.
                if text.is_empty() {
                    return;
                }
                let index = self.open(
                    Block::Thinking,
                    json!({"type": "thinking", "thinking": "", "signature": ""}),
                );
                if self.meta.show_thinking {
                    self.push(
                        "content_block_delta",
                        json!({"index": index, "delta": {"type": "thinking_delta", "thinking": text}}),
                    );
                }
            }
            Output::Text { text, .. } => {
                if text.is_empty() {
                    return;
                }
                let index = self.open_text();
                self.push(
                    "content_block_delta",
                    json!({"index": index, "delta": {"type": "text_delta", "text": text}}),
                );
            }
            Output::ToolCallStart { index, id, name } => {
                let block = self.open(
                    Block::Tool(index),
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                );
                if self.tool_blocks.len() <= index {
                    self.tool_blocks.resize(index + 1, block);
                }
                self.tool_blocks[index] = block;
            }
            Output::ToolCallArguments { index, delta } => {
                if let Some(&block) = self.tool_blocks.get(index) {
                    self.push(
                        "content_block_delta",
                        json!({"index": block, "delta": {"type": "input_json_delta", "partial_json": delta}}),
                    );
                }
            }
            Output::Done(d) => self.on_done(&d),
            // Not asked for on this route.
            Output::Progress(_) => {}
        }
    }

    fn on_done(&mut self, d: &Done) {
        // An answer without tool calls has a text block, empty or not, as the whole
        // message's `content` has.
        if !self.texted && self.tool_blocks.is_empty() {
            self.open_text();
        }
        self.close();
        let (reason, sequence) = stop_reason(d, &self.meta.stops);
        self.push(
            "message_delta",
            json!({"delta": {"stop_reason": reason, "stop_sequence": sequence},
                   "usage": done_usage(d)}),
        );
        self.push("message_stop", json!({}));
    }
}

/// The stream: `message_start`, then per block `content_block_start` (the first followed
/// by `ping`), its deltas and `content_block_stop`, then `message_delta` (stop reason and
/// usage) and `message_stop`. A failure midway ends it with Anthropic's `error` event.
fn stream_events(
    timed: common::Timed,
    meta: Meta,
) -> impl futures_util::Stream<Item = Result<SseEvent, std::convert::Infallible>> {
    let prompt = timed.generation.prompt_tokens();
    let mut st = St {
        meta,
        out: Vec::new(),
        open: None,
        next_index: 0,
        tool_blocks: Vec::new(),
        texted: false,
    };
    let start = message(&st.meta, Vec::new(), None, usage(prompt, 0, 0));
    st.push("message_start", json!({"message": start}));
    common::typed_sse_events(timed, st)
}

impl common::EventWriter for St {
    fn on_output(&mut self, output: Output) {
        St::on_output(self, output);
    }

    fn on_error(&mut self, e: service::ServiceError) -> SseEvent {
        self.push("error", ApiError::from(e).anthropic_body());
        self.out.pop().expect("just pushed")
    }

    fn take(&mut self) -> Vec<SseEvent> {
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(messages: Value) -> ApiResult<Vec<ChatMessage>> {
        let mut out = Vec::new();
        for (i, m) in messages.as_array().unwrap().iter().enumerate() {
            convert_message(m, i, &mut out)?;
        }
        Ok(out)
    }

    #[test]
    fn tool_blocks_become_calls_and_tool_messages() {
        let out = convert(json!([
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Ask the tool.", "signature": "x"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}},
            ]},
            {"role": "user", "content": [
                {"type": "text", "text": "Here:"},
                {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "sunny"}]},
                {"type": "tool_result", "tool_use_id": "t2", "content": "ok", "is_error": true},
            ]},
        ]))
        .unwrap();
        let roles: Vec<&str> = out.iter().map(|m| m.role.as_str()).collect();
        // Tool results answer the calls before them, ahead of the user's own text.
        assert_eq!(roles, ["user", "assistant", "tool", "tool", "user"]);
        assert_eq!(out[1].text(), "Checking.");
        assert_eq!(out[1].reasoning_content.as_deref(), Some("Ask the tool."));
        assert_eq!(
            out[1].tool_calls[0].arguments_json(),
            Some(json!({"city": "Paris"}))
        );
        assert_eq!(out[2].tool_call_id.as_deref(), Some("t1"));
        assert_eq!(out[2].text(), "sunny");
        assert_eq!(out[4].text(), "Here:");
        // Only results: no empty user message after them.
        let out = convert(json!([{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "x"}]}]))
        .unwrap();
        assert_eq!(out.len(), 1);
        // Blocks in the wrong turn are refused, naming the block.
        let e = convert(json!([{"role": "user", "content": [{"type": "tool_use", "name": "f"}]}]))
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[0].content[0].type"));
    }

    #[test]
    fn images_become_image_urls() {
        let out = convert(json!([{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        ]}]))
        .unwrap();
        let Some(MessageContent::Parts(parts)) = &out[0].content else {
            panic!("{out:?}")
        };
        let urls: Vec<&str> = parts
            .iter()
            .map(|p| match p {
                ContentPart::ImageUrl { image_url } => image_url.url.as_str(),
                _ => "",
            })
            .collect();
        assert_eq!(
            urls,
            ["data:image/png;base64,AAAA", "https://example.com/a.png"]
        );
    }

    #[test]
    fn tool_choices() {
        assert_eq!(tool_choice(None).unwrap(), (ToolChoice::Auto, true));
        assert_eq!(
            tool_choice(Some(
                &json!({"type": "any", "disable_parallel_tool_use": true})
            ))
            .unwrap(),
            (ToolChoice::Required, false)
        );
        assert_eq!(
            tool_choice(Some(&json!({"type": "tool", "name": "f"})))
                .unwrap()
                .0,
            ToolChoice::Function("f".into())
        );
        assert_eq!(
            tool_choice(Some(&json!({"type": "none"}))).unwrap().0,
            ToolChoice::None
        );
        assert!(tool_choice(Some(&json!({"type": "tool"}))).is_err());
    }

    #[test]
    fn thinking_modes() {
        let mode = |v: Value, max: i64| {
            let mut t = Thinking::default();
            apply_thinking(Some(&v), Some(max), &mut t).map(|show| (t, show))
        };
        let (t, show) = mode(json!({"type": "enabled", "budget_tokens": 50}), 100).unwrap();
        assert_eq!((t.enabled, t.budget, show), (Some(true), Some(50), true));
        assert_eq!(t.format, Some(ReasoningFormat::Deepseek));
        let (t, _) = mode(json!({"type": "disabled"}), 100).unwrap();
        assert_eq!(t.enabled, Some(false));
        let (t, show) = mode(json!({"type": "adaptive", "display": "omitted"}), 100).unwrap();
        assert_eq!((t.enabled, show), (None, false));
        for bad in [
            json!({"type": "enabled"}),
            json!({"type": "enabled", "budget_tokens": 0}),
            json!({"type": "enabled", "budget_tokens": 100}),
            json!({"type": "sometimes"}),
        ] {
            assert!(mode(bad.clone(), 100).is_err(), "{bad}");
        }
    }

    #[test]
    fn stop_reasons() {
        let done = |finish, stop_word: Option<&str>| Done {
            finish,
            stop_word: stop_word.map(str::to_owned),
            usage: Default::default(),
            timings: Default::default(),
            slot_id: 0,
        };
        let stops = vec!["END".to_string()];
        assert_eq!(
            stop_reason(&done(Finish::Stop, Some("END")), &stops),
            ("stop_sequence", Some("END".into()))
        );
        // The template's end-of-turn string is not the request's.
        assert_eq!(
            stop_reason(&done(Finish::Stop, Some("<|im_end|>")), &stops),
            ("end_turn", None)
        );
        assert_eq!(
            stop_reason(&done(Finish::Length, None), &stops).0,
            "max_tokens"
        );
        assert_eq!(
            stop_reason(&done(Finish::ToolCalls, None), &stops).0,
            "tool_use"
        );
    }
}
