//! OpenAI's Responses API (`POST /v1/responses`): text or message input, instructions,
//! function tools, `text.format` JSON output, and the typed streaming events
//! (`response.created` … `response.output_text.delta` … `response.completed`).

use super::common::{self, new_id, unix_now};
use super::openai::{parse_response_format, parse_tool_choice, sse};
use super::params::GenFields;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::SharedState;
use axum::Json;
use axum::extract::State;
use axum::response::sse::Event as SseEvent;
use axum::response::{IntoResponse, Response};
use chat::{ChatMessage, ContentPart, ImageUrl, MessageContent, Roles, Tool};
use serde::Deserialize;
use serde_json::{Value, json};
use service::{ChatInput, Done, Input, Output, Request};

#[derive(Debug, Deserialize)]
pub struct ResponsesRequest {
    pub model: Option<String>,
    pub input: Value,
    pub instructions: Option<String>,
    #[serde(default)]
    pub stream: bool,
    pub max_output_tokens: Option<i64>,
    pub tools: Option<Vec<Value>>,
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<bool>,
    pub text: Option<Value>,
    pub keep_alive: Option<Value>,
    pub metadata: Option<Value>,
    /// `temperature`, `top_p` and llama-server's own fields (`timings_per_token`,
    /// `return_progress`, ...), as on the chat route.
    #[serde(flatten)]
    pub sampling: GenFields,
}

impl ResponsesRequest {
    /// The conversation (input items, instructions, tools), for generating and for counting
    /// its prompt's tokens.
    fn chat_input(&self) -> ApiResult<ChatInput> {
        Ok(ChatInput {
            messages: messages(&self.input, self.instructions.as_deref())?,
            tools: tools(self.tools.as_deref())?,
            tool_choice: parse_tool_choice(self.tool_choice.as_ref())?,
            parallel_tool_calls: self.parallel_tool_calls.unwrap_or(true),
            ..Default::default()
        })
    }
}

/// A message's content: a string, or parts — text (`input_text`, `output_text`) and images
/// (`input_image`, whose `image_url` is a URL string or `{url}`), which become chat
/// `image_url` parts so that a text model refuses them as on the chat route.
fn content(field: &str, content: Option<&Value>) -> ApiResult<MessageContent> {
    let parts = match content {
        Some(Value::String(s)) => return Ok(MessageContent::Text(s.clone())),
        Some(Value::Array(parts)) => parts,
        _ => return Err(ApiError::invalid(field, "content must be text or parts")),
    };
    let mut text = String::new();
    let mut images = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        match part.get("type").and_then(Value::as_str) {
            Some("input_image") => {
                let url = match part.get("image_url") {
                    Some(Value::String(url)) => url.clone(),
                    Some(Value::Object(o)) => match o.get("url") {
                        Some(Value::String(url)) => url.clone(),
                        _ => String::new(),
                    },
                    _ => String::new(),
                };
                if url.is_empty() {
                    return Err(ApiError::invalid(
                        &format!("{field}.content[{j}].image_url"),
                        "an input_image part needs an image_url",
                    ));
                }
                images.push(ContentPart::ImageUrl {
                    image_url: ImageUrl { url, detail: None },
                });
            }
            Some("input_file") => {
                return Err(ApiError::invalid(
                    &format!("{field}.content[{j}]"),
                    "input_file parts are not supported",
                ));
            }
            _ => {
                if let Some(t) = part.get("text").and_then(Value::as_str) {
                    text.push_str(t);
                }
            }
        }
    }
    if images.is_empty() {
        return Ok(MessageContent::Text(text));
    }
    let mut all = vec![ContentPart::Text { text }];
    all.extend(images);
    Ok(MessageContent::Parts(all))
}

/// Input items to chat messages: a string is one user message; items are messages
/// (`{role, content}` with text or `input_text`/`output_text` parts), `function_call`
/// and `function_call_output`.
fn messages(input: &Value, instructions: Option<&str>) -> ApiResult<Vec<ChatMessage>> {
    let mut out = Vec::new();
    if let Some(i) = instructions.filter(|i| !i.is_empty()) {
        out.push(ChatMessage::system(i));
    }
    match input {
        Value::String(s) => out.push(ChatMessage::user(s.clone())),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let field = format!("input[{i}]");
                let kind = item
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("message");
                match kind {
                    "message" => {
                        let role = item
                            .get("role")
                            .and_then(Value::as_str)
                            .ok_or_else(|| ApiError::invalid(&field, "a message needs a role"))?;
                        Roles::OPENAI_RESPONSES.check(role).map_err(|e| {
                            ApiError::bad_request(e).with_param(format!("{field}.role"))
                        })?;
                        let role = if role == "developer" { "system" } else { role };
                        let mut message = ChatMessage::new(role, "");
                        message.content = Some(content(&field, item.get("content"))?);
                        out.push(message);
                    }
                    "function_call" => {
                        let call = chat::ToolCall::new(
                            item.get("call_id")
                                .and_then(Value::as_str)
                                .unwrap_or_default(),
                            item.get("name").and_then(Value::as_str).unwrap_or_default(),
                            item.get("arguments")
                                .and_then(Value::as_str)
                                .unwrap_or("{}"),
                        );
                        out.push(ChatMessage::assistant_tool_calls(vec![call]));
                    }
                    "function_call_output" => {
                        let id = item
                            .get("call_id")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        let output = match item.get("output") {
                            Some(Value::String(s)) => s.clone(),
                            Some(v) => v.to_string(),
                            None => String::new(),
                        };
                        out.push(ChatMessage::tool(id, output));
                    }
                    other => {
                        return Err(ApiError::invalid(
                            &field,
                            format!("unsupported item type '{other}'"),
                        ));
                    }
                }
            }
        }
        _ => {
            return Err(ApiError::invalid(
                "input",
                "must be a string or a list of items",
            ));
        }
    }
    if out.iter().all(|m| m.role == "system") {
        return Err(ApiError::invalid("input", "must contain a message"));
    }
    Ok(out)
}

/// Responses-style function tools (`{type, name, description, parameters}`: the bare
/// function object [`Tool::from_openai`] reads; the chat shape with `function` too).
fn tools(v: Option<&[Value]>) -> ApiResult<Vec<Tool>> {
    v.unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Tool::from_openai(t).map_err(|e| ApiError::invalid(&format!("tools[{i}]"), e))
        })
        .collect()
}

struct Meta {
    id: String,
    msg_id: String,
    created: u64,
    model: String,
    echo: Value,
}

fn usage(d: &Done) -> Value {
    json!({
        "input_tokens": d.usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": d.timings.cache_n},
        "output_tokens": d.usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": d.usage.prompt_tokens + d.usage.completion_tokens,
    })
}

fn response_obj(meta: &Meta, status: &str, output: Vec<Value>, usage: Value) -> Value {
    let mut r = json!({
        "id": meta.id,
        "object": "response",
        "created_at": meta.created,
        "status": status,
        "model": meta.model,
        "output": output,
        "usage": usage,
        "error": null,
        "incomplete_details": null,
    });
    if let (Some(o), Some(e)) = (r.as_object_mut(), meta.echo.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    r
}

fn message_item(meta: &Meta, text: &str, status: &str) -> Value {
    json!({
        "type": "message",
        "id": meta.msg_id,
        "status": status,
        "role": "assistant",
        "content": if status == "in_progress" { json!([]) } else {
            json!([{"type": "output_text", "text": text, "annotations": []}])
        },
    })
}

fn call_item(call_id: &str, name: &str, args: &str, status: &str) -> Value {
    json!({
        "type": "function_call",
        "id": format!("fc_{}", call_id.trim_start_matches("call_")),
        "call_id": call_id,
        "name": name,
        "arguments": args,
        "status": status,
    })
}

pub async fn create(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<ResponsesRequest>,
) -> ApiResult<Response> {
    let chat = req.chat_input()?;
    // `text.format` is flat: {"type": "json_schema", "name", "schema"}.
    let format = req.text.as_ref().and_then(|t| t.get("format"));
    let response_format = parse_response_format(format)?;
    let mut fields = req.sampling.clone();
    if req.max_output_tokens.is_some() {
        fields.max_tokens = req.max_output_tokens;
    }
    let params = fields.to_request(&state.sampling_for(req.model.as_deref()).await)?;
    let keep_alive = common::keep_alive(req.keep_alive.as_ref())?;
    let echo = json!({
        "instructions": req.instructions,
        "max_output_tokens": req.max_output_tokens,
        "temperature": req.sampling.temperature,
        "top_p": req.sampling.top_p,
        "tools": req.tools.clone().unwrap_or_default(),
        "tool_choice": req.tool_choice.clone().unwrap_or(json!("auto")),
        "parallel_tool_calls": req.parallel_tool_calls.unwrap_or(true),
        "text": req.text.clone().unwrap_or(json!({"format": {"type": "text"}})),
        "metadata": req.metadata.clone().unwrap_or(json!({})),
    });
    let request = Request {
        input: Input::Chat(chat),
        params,
        response_format,
    };
    let timed = common::start(&state, req.model.as_deref(), keep_alive, request).await?;
    let meta = Meta {
        id: new_id("resp_"),
        msg_id: new_id("msg_"),
        created: unix_now(),
        model: timed.model.clone(),
        echo,
    };
    if !req.stream {
        let c = timed.collect().await?;
        let done = c.done.clone().expect("collected");
        let mut output = Vec::new();
        if !c.text.is_empty() || c.tool_calls.is_empty() {
            output.push(message_item(&meta, &c.text, "completed"));
        }
        for call in &c.tool_calls {
            output.push(call_item(
                &call.id,
                &call.name,
                &call.arguments,
                "completed",
            ));
        }
        let status = if done.finish == service::Finish::Length {
            "incomplete"
        } else {
            "completed"
        };
        let mut r = response_obj(&meta, status, output, usage(&done));
        if status == "incomplete" {
            r["incomplete_details"] = json!({"reason": "max_output_tokens"});
        }
        return Ok(Json(r).into_response());
    }
    Ok(sse(stream_events(timed, meta)))
}

/// `POST /v1/responses/input_tokens` (llama-server): the prompt tokens of a Responses
/// request, counted by the chat route's one count.
pub async fn input_tokens(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<ResponsesRequest>,
) -> ApiResult<Json<Value>> {
    let chat = req.chat_input()?;
    super::openai::count_input_tokens(&state, req.model.as_deref(), chat).await
}

/// What the Responses stream remembers between outputs.
struct St {
    meta: Meta,
    seq: u64,
    out: Vec<SseEvent>,
    text: String,
    message_open: bool,
    /// (call_id, name, arguments) of each tool call, by index.
    calls: Vec<(String, String, String)>,
}

impl St {
    fn push(&mut self, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        self.out
            .push(SseEvent::default().event(kind).data(data.to_string()));
    }

    fn open_message(&mut self) {
        if self.message_open {
            return;
        }
        self.message_open = true;
        let item = message_item(&self.meta, "", "in_progress");
        self.push(
            "response.output_item.added",
            json!({"output_index": 0, "item": item}),
        );
        let id = self.meta.msg_id.clone();
        self.push(
            "response.content_part.added",
            json!({"item_id": id, "output_index": 0, "content_index": 0,
                   "part": {"type": "output_text", "text": "", "annotations": []}}),
        );
    }

    fn output_index(&self, call: usize) -> usize {
        call + usize::from(self.message_open)
    }

    fn on_output(&mut self, output: Output) {
        match output {
            // Reasoning items are not written yet: the answer alone, as OpenAI without a
            // reasoning summary.
            Output::Reasoning { .. } => {}
            Output::Text { text, timings, .. } => {
                if text.is_empty() {
                    return;
                }
                self.open_message();
                self.text.push_str(&text);
                let id = self.meta.msg_id.clone();
                let mut delta = json!({"item_id": id, "output_index": 0, "content_index": 0, "delta": text, "logprobs": []});
                // llama-server's `timings_per_token`: the timings so far on each delta.
                if let Some(t) = timings {
                    delta["timings"] = json!(t);
                }
                self.push("response.output_text.delta", delta);
            }
            Output::ToolCallStart { index, id, name } => {
                self.calls.push((id.clone(), name.clone(), String::new()));
                let oi = self.output_index(index);
                self.push(
                    "response.output_item.added",
                    json!({"output_index": oi, "item": call_item(&id, &name, "", "in_progress")}),
                );
            }
            Output::ToolCallArguments { index, delta } => {
                if let Some(c) = self.calls.get_mut(index) {
                    c.2.push_str(&delta);
                }
                let oi = self.output_index(index);
                let item_id = self
                    .calls
                    .get(index)
                    .map(|c| format!("fc_{}", c.0.trim_start_matches("call_")))
                    .unwrap_or_default();
                self.push(
                    "response.function_call_arguments.delta",
                    json!({"item_id": item_id, "output_index": oi, "delta": delta}),
                );
            }
            Output::Done(d) => self.on_done(&d),
            // llama-server's `return_progress`: an `in_progress` event carrying how far the
            // prompt is read, with the timings so far.
            Output::Progress(p) => {
                let r = response_obj(&self.meta, "in_progress", vec![], Value::Null);
                self.push(
                    "response.in_progress",
                    json!({"response": r, "prompt_progress": super::native::progress_json(&p),
                           "timings": p.timings}),
                );
            }
        }
    }

    fn on_done(&mut self, d: &Done) {
        let mut output = Vec::new();
        if self.message_open || self.calls.is_empty() {
            self.open_message();
            let id = self.meta.msg_id.clone();
            let text = self.text.clone();
            self.push(
                "response.output_text.done",
                json!({"item_id": id, "output_index": 0, "content_index": 0, "text": text, "logprobs": []}),
            );
            self.push(
                "response.content_part.done",
                json!({"item_id": id, "output_index": 0, "content_index": 0,
                       "part": {"type": "output_text", "text": text, "annotations": []}}),
            );
            let item = message_item(&self.meta, &text, "completed");
            self.push(
                "response.output_item.done",
                json!({"output_index": 0, "item": item.clone()}),
            );
            output.push(item);
        }
        for (i, (id, name, args)) in self.calls.clone().into_iter().enumerate() {
            let oi = self.output_index(i);
            let item = call_item(&id, &name, &args, "completed");
            self.push(
                "response.function_call_arguments.done",
                json!({"item_id": item["id"], "output_index": oi, "arguments": args}),
            );
            self.push(
                "response.output_item.done",
                json!({"output_index": oi, "item": item.clone()}),
            );
            output.push(item);
        }
        let status = if d.finish == service::Finish::Length {
            "incomplete"
        } else {
            "completed"
        };
        let mut r = response_obj(&self.meta, status, output, usage(d));
        if status == "incomplete" {
            r["incomplete_details"] = json!({"reason": "max_output_tokens"});
        }
        // Always `response.completed`, as llama-server ends every stream (its clients wait
        // for it); the response's own `status` says when the answer was cut. The timings
        // ride on it, as llama-server sends them.
        self.push(
            "response.completed",
            json!({"response": r, "timings": d.timings}),
        );
    }
}

fn stream_events(
    timed: common::Timed,
    meta: Meta,
) -> impl futures_util::Stream<Item = Result<SseEvent, std::convert::Infallible>> {
    let mut st = St {
        meta,
        seq: 0,
        out: Vec::new(),
        text: String::new(),
        message_open: false,
        calls: Vec::new(),
    };
    let created = response_obj(&st.meta, "in_progress", vec![], Value::Null);
    st.push("response.created", json!({"response": created.clone()}));
    st.push("response.in_progress", json!({"response": created}));
    common::typed_sse_events(timed, st)
}

impl common::EventWriter for St {
    fn on_output(&mut self, output: Output) {
        St::on_output(self, output);
    }

    fn on_error(&mut self, e: service::ServiceError) -> SseEvent {
        let err = common::stream_error(e);
        self.push(
            "error",
            json!({"code": err["error"]["code"], "message": err["error"]["message"], "param": null}),
        );
        self.out.pop().expect("just pushed")
    }

    fn take(&mut self) -> Vec<SseEvent> {
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_read_by_the_one_tool_validator() {
        let flat = json!({"type": "function", "name": "f", "description": "d",
            "parameters": {"type": "object"}});
        let nested = json!({"type": "function", "function": {"name": "g"}});
        let got = tools(Some(&[flat, nested])).unwrap();
        assert_eq!(got[0].name, "f");
        assert_eq!(got[0].description.as_deref(), Some("d"));
        assert_eq!(got[1].name, "g");
        for bad in [
            json!({"type": "web_search"}),
            json!({"type": "function", "name": ""}),
            json!({"type": "function", "name": "f", "parameters": "x"}),
        ] {
            let e = tools(Some(&[bad.clone()])).unwrap_err();
            assert_eq!(e.param.as_deref(), Some("tools[0]"), "{bad}");
        }
    }
}
