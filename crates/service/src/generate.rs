//! The protocol-neutral request and its stream of outputs.
//!
//! Every API (OpenAI, llama.cpp-native, and later Anthropic, Ollama, LM Studio) parses its
//! JSON into a [`Request`], calls [`start`], and maps the [`Output`]s of the returned
//! [`Generation`] to its own wire format. Chat requests are rendered with the model's
//! template here, tool calls are parsed out of the text here, and output constraints
//! (JSON mode, forced tool calls) become grammars here, so no adapter repeats any of it.

use crate::chat_format::{ChatFormat, PromptEnding, TemplateChoice};
use crate::error::ServiceError;
use crate::limits::Ticket;
use crate::loader::LoadedModel;
use crate::models::ModelLease;
use crate::reasoning::{self, Thinking};
use chat::{
    ChatMessage, ReasoningSplitter, SplitPiece, StreamEvent, ThinkingTags, Tool, ToolCallFormat,
    ToolCallStream,
};
use engine::{
    Event, EventStream, FinishReason, GenerateRequest, Grammar, Progress, Prompt, Timings,
    TokenProbs, Usage,
};
use serde_json::{Map, Value, json};
use std::collections::VecDeque;

/// What to generate from.
#[derive(Debug, Clone)]
pub enum Input {
    /// A conversation, rendered with the model's chat template.
    Chat(ChatInput),
    /// A raw prompt (completions, `/completion`, infill).
    Prompt(Prompt),
}

#[derive(Debug, Clone)]
pub struct ChatInput {
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<Tool>,
    pub tool_choice: ToolChoice,
    /// Extra template variables (`chat_template_kwargs`).
    pub template_kwargs: Map<String, Value>,
    /// Several calls in one reply (OpenAI's default).
    pub parallel_tool_calls: bool,
    /// End the prompt with a new assistant turn's header (default true).
    pub add_generation_prompt: bool,
    /// The reply continues the last message (vLLM's and transformers' name for it). A
    /// trailing assistant message is continued without it, as llama-server does.
    pub continue_final_message: bool,
    /// The request's say on thinking models; the server's `[reasoning]` defaults fill in the
    /// rest when the chat is rendered.
    pub thinking: Thinking,
}

impl Default for ChatInput {
    fn default() -> Self {
        ChatInput {
            messages: Vec::new(),
            tools: Vec::new(),
            tool_choice: ToolChoice::default(),
            template_kwargs: Map::new(),
            parallel_tool_calls: false,
            add_generation_prompt: true,
            continue_final_message: false,
            thinking: Thinking::default(),
        }
    }
}

impl ChatInput {
    /// llama-server's rules for how the prompt ends, checked before any work: a trailing
    /// assistant message is the start of the reply (its "prefill"), but not two of them;
    /// `continue_final_message` excludes `add_generation_prompt`; a message with tool calls
    /// cannot be continued. Settles the two flags (calling it again changes nothing).
    pub fn check_ending(&mut self) -> Result<(), ServiceError> {
        let last_is_assistant =
            |messages: &[ChatMessage]| messages.last().is_some_and(|m| m.role == "assistant");
        if !self.continue_final_message && last_is_assistant(&self.messages) {
            if last_is_assistant(&self.messages[..self.messages.len() - 1]) {
                return Err(ServiceError::invalid(
                    "messages",
                    "Cannot have 2 or more assistant messages at the end of the list.",
                ));
            }
            self.continue_final_message = true;
            self.add_generation_prompt = false;
        }
        if self.continue_final_message && self.add_generation_prompt {
            return Err(ServiceError::invalid(
                "continue_final_message",
                "Cannot set both add_generation_prompt and continue_final_message to true.",
            ));
        }
        if self.continue_final_message
            && self
                .messages
                .last()
                .is_some_and(|m| m.role == "assistant" && !m.tool_calls.is_empty())
        {
            return Err(ServiceError::invalid(
                "continue_final_message",
                "Cannot continue an assistant message that contains tool calls.",
            ));
        }
        Ok(())
    }

    /// Messages are there, image URLs are URLs ([`check_image_url`]) and the prompt's ending
    /// is settled ([`check_ending`](Self::check_ending)).
    pub fn validate(&mut self) -> Result<(), ServiceError> {
        if self.messages.is_empty() {
            return Err(ServiceError::invalid("messages", "must not be empty"));
        }
        for url in self.image_urls() {
            check_image_url(url)?;
        }
        self.check_ending()
    }

    /// The URLs of the messages' `image_url` parts.
    fn image_urls(&self) -> impl Iterator<Item = &str> {
        self.messages
            .iter()
            .filter_map(|m| match &m.content {
                Some(chat::MessageContent::Parts(parts)) => Some(parts),
                _ => None,
            })
            .flatten()
            .filter_map(|p| match p {
                chat::ContentPart::ImageUrl { image_url } => Some(image_url.url.as_str()),
                _ => None,
            })
    }

    /// Image parts need a model that reads images (`capabilities`, the model's own list from
    /// [`crate::Models::capabilities`]): a text model would answer without seeing them, as
    /// if the image were not there, so the request is refused instead (as llama-server does).
    pub fn check_images(&self, model: &str, capabilities: &[String]) -> Result<(), ServiceError> {
        if self.image_urls().next().is_some() && !capabilities.iter().any(|c| c == "vision") {
            return Err(ServiceError::invalid(
                "messages",
                format!(
                    "model '{model}' cannot read images (it has no vision projector): \
                     send image_url parts to a vision model"
                ),
            ));
        }
        Ok(())
    }

    /// How the rendered prompt ends (after [`check_ending`](Self::check_ending)).
    fn ending(&self) -> PromptEnding {
        if self.continue_final_message {
            PromptEnding::ContinueFinalMessage
        } else if self.add_generation_prompt {
            PromptEnding::GenerationPrompt
        } else {
            PromptEnding::LastMessage
        }
    }
}

/// What every API family's request must satisfy beyond its own shape, checked before a model
/// is acquired: how a chat prompt ends ([`ChatInput::check_ending`]) and that a JSON schema
/// is a schema (an object, or `true`/`false`).
pub fn validate(req: &mut Request) -> Result<(), ServiceError> {
    if let Input::Chat(chat) = &mut req.input {
        chat.validate()?;
    }
    if let ResponseFormat::JsonSchema(schema) = &req.response_format
        && !schema.is_object()
        && !schema.is_boolean()
    {
        return Err(ServiceError::invalid(
            "response_format.schema",
            "must be a JSON schema object",
        ));
    }
    Ok(())
}

/// An image part's URL is an absolute URL, and a `data:` URL carries an image (`image/*`),
/// whatever the model: llama-server refuses the others with 400 too.
fn check_image_url(raw: &str) -> Result<(), ServiceError> {
    let field = "messages.content.image_url.url";
    let url = url::Url::parse(raw).map_err(|e| {
        ServiceError::invalid(
            field,
            format!("not a URL ({e}): give an https: or data: URL"),
        )
    })?;
    if url.scheme() == "data" {
        let mime = url.path().split([';', ',']).next().unwrap_or("");
        if !mime.to_ascii_lowercase().starts_with("image/") {
            return Err(ServiceError::invalid(
                field,
                format!("a data: URL must carry an image (image/*), not '{mime}'"),
            ));
        }
    }
    Ok(())
}

/// OpenAI's `tool_choice`.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ToolChoice {
    /// The model decides.
    #[default]
    Auto,
    /// No tool calls: tools are neither shown nor parsed.
    None,
    /// At least one call, forced with a grammar.
    Required,
    /// This function, forced with a grammar.
    Function(String),
}

/// A constraint on the shape of the output.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ResponseFormat {
    #[default]
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON valid against this schema.
    JsonSchema(Value),
}

/// One request, whatever protocol it came in.
#[derive(Debug, Clone)]
pub struct Request {
    pub input: Input,
    /// Sampling, stop strings, max tokens, grammar, slot options. Its `prompt` is ignored.
    pub params: GenerateRequest,
    pub response_format: ResponseFormat,
}

/// Why a generation ended, as the protocols name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// End of generation or a stop string.
    Stop,
    Length,
    ToolCalls,
    Cancelled,
}

impl Finish {
    /// OpenAI's `finish_reason`.
    pub fn as_openai(&self) -> &'static str {
        match self {
            Finish::Stop | Finish::Cancelled => "stop",
            Finish::Length => "length",
            Finish::ToolCalls => "tool_calls",
        }
    }
}

/// The end of a generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub finish: Finish,
    /// The stop string that ended it, if one did.
    pub stop_word: Option<String>,
    pub usage: Usage,
    pub timings: Timings,
    pub slot_id: u32,
}

/// What a [`Generation`] yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A thinking model's thoughts (OpenAI-style `reasoning_content`), before its reply.
    Reasoning {
        text: String,
    },
    /// Reply text. `token`/`probs` are set when the text is exactly one token's output
    /// (they are not while tool-call parsing may have held text back).
    Text {
        text: String,
        token: Option<i32>,
        probs: Option<TokenProbs>,
        /// The request's timings as of the last token (only when it asked,
        /// `timings_per_token`).
        timings: Option<Timings>,
    },
    /// A tool call begins (OpenAI's first `tool_calls` delta of an index).
    ToolCallStart {
        index: usize,
        id: String,
        name: String,
    },
    /// A piece of a call's arguments (JSON text).
    ToolCallArguments {
        index: usize,
        delta: String,
    },
    /// How far the prompt is read (only when the request asked, `return_progress`).
    Progress(Progress),
    Done(Done),
}

/// A running generation. Holds the model's lease; dropping it cancels the request.
pub struct Generation {
    events: EventStream,
    /// Splits thoughts from the reply when the model thinks and they are to be returned apart.
    reasoning: Option<ReasoningSplitter>,
    tools: Option<ToolCallStream>,
    pending: VecDeque<Output>,
    saw_tool_call: bool,
    finished: bool,
    /// The timings the last token came with (`timings_per_token`), for the text it yields.
    token_timings: Option<Timings>,
    /// The prompt text it runs on (a chat's rendered template), for llama-server's
    /// `prompt` and `__verbose` fields; `None` for token prompts.
    prompt: Option<String>,
    lease: ModelLease,
    /// Its place among the requests in flight, given back when the generation ends.
    _ticket: Ticket,
}

impl Generation {
    /// The next output; `None` after `Done` (or an error).
    pub async fn next(&mut self) -> Option<Result<Output, ServiceError>> {
        loop {
            if let Some(o) = self.pending.pop_front() {
                return Some(Ok(o));
            }
            if self.finished {
                return None;
            }
            match self.events.recv().await {
                None => {
                    self.finished = true;
                    return Some(Err(ServiceError::Engine(engine::EngineError::Shutdown)));
                }
                Some(Event::Error(e)) => {
                    self.finished = true;
                    return Some(Err(e.into()));
                }
                Some(Event::Progress(p)) => return Some(Ok(Output::Progress(p))),
                Some(Event::Token {
                    text,
                    token,
                    probs,
                    timings,
                }) => {
                    self.token_timings = timings;
                    let piece = match &mut self.reasoning {
                        None => None,
                        Some(splitter) => Some(splitter.push(&text)),
                    };
                    let all_reply = match &piece {
                        None => true,
                        Some(p) => p.reasoning.is_empty() && p.content == text,
                    };
                    match piece {
                        // The text is all reply: pass it on with its token (and logprobs).
                        _ if all_reply && self.tools.is_none() => {
                            return Some(Ok(Output::Text {
                                text,
                                token: Some(token),
                                probs,
                                timings,
                            }));
                        }
                        None => self.reply(text),
                        Some(piece) => self.split(piece),
                    }
                }
                Some(Event::Done {
                    finish_reason,
                    usage,
                    timings,
                    slot_id,
                }) => {
                    // Counted here, once for every API family (`/metrics`).
                    self.lease.counters.record(&timings);
                    if let Some(splitter) = &mut self.reasoning {
                        let piece = splitter.finish();
                        self.split(piece);
                    }
                    if let Some(stream) = &mut self.tools {
                        let events = stream.finish();
                        self.queue(events);
                    }
                    let (mut finish, stop_word) = match finish_reason {
                        FinishReason::Stop => (Finish::Stop, None),
                        FinishReason::StopString(s) => (Finish::Stop, Some(s)),
                        FinishReason::Length => (Finish::Length, None),
                        FinishReason::Cancelled => (Finish::Cancelled, None),
                    };
                    if self.saw_tool_call && finish == Finish::Stop {
                        finish = Finish::ToolCalls;
                    }
                    self.pending.push_back(Output::Done(Done {
                        finish,
                        stop_word,
                        usage,
                        timings,
                        slot_id,
                    }));
                    self.finished = true;
                }
            }
        }
    }

    /// Queues thoughts, then passes the reply text on.
    fn split(&mut self, piece: SplitPiece) {
        if !piece.reasoning.is_empty() {
            self.pending.push_back(Output::Reasoning {
                text: piece.reasoning,
            });
        }
        if !piece.content.is_empty() {
            self.reply(piece.content);
        }
    }

    /// Reply text: through the tool-call parser when tools are on.
    fn reply(&mut self, text: String) {
        match &mut self.tools {
            Some(stream) => {
                let events = stream.push(&text);
                self.queue(events);
            }
            None => self.pending.push_back(Output::Text {
                text,
                token: None,
                probs: None,
                timings: self.token_timings,
            }),
        }
    }

    /// The logit biases the request runs with (the ids asked for, the tokens of texts asked
    /// for, and the end-of-generation tokens `ignore_eos` bans at `-inf`).
    pub fn logit_bias(&self) -> &[(i32, f32)] {
        self.events.logit_bias()
    }

    /// What the model it runs on was loaded as (architecture, quantization, context), for
    /// protocols that report it with the answer (LM Studio's `model_info`).
    pub fn model_info(&self) -> &crate::ModelInfo {
        self.lease.handle.info()
    }

    /// How many tokens the prompt is, known before the first output.
    pub fn prompt_tokens(&self) -> u32 {
        self.events.prompt_tokens()
    }

    /// The prompt text the generation runs on (a chat's rendered template); `None` when the
    /// prompt was given as tokens.
    pub fn prompt(&self) -> Option<&str> {
        self.prompt.as_deref()
    }

    fn queue(&mut self, events: Vec<StreamEvent>) {
        for e in events {
            self.pending.push_back(match e {
                StreamEvent::Content(text) => Output::Text {
                    text,
                    token: None,
                    probs: None,
                    timings: self.token_timings,
                },
                StreamEvent::ToolCallStart { index, id, name } => {
                    self.saw_tool_call = true;
                    Output::ToolCallStart { index, id, name }
                }
                StreamEvent::ToolCallArguments { index, delta } => {
                    Output::ToolCallArguments { index, delta }
                }
            });
        }
    }

    /// Runs to the end and gathers everything (for non-streaming responses).
    pub async fn collect(mut self) -> Result<Collected, ServiceError> {
        let mut out = Collected::default();
        while let Some(o) = self.next().await {
            match o? {
                Output::Reasoning { text } => out.reasoning.push_str(&text),
                Output::Text {
                    text, token, probs, ..
                } => {
                    out.text.push_str(&text);
                    if let Some(t) = token {
                        out.tokens.push(t);
                    }
                    if let Some(p) = probs {
                        out.probs.push((text, token.unwrap_or(-1), p));
                    }
                }
                Output::ToolCallStart { index, id, name } => {
                    if out.tool_calls.len() <= index {
                        out.tool_calls
                            .resize_with(index + 1, chat::ToolCall::default);
                    }
                    out.tool_calls[index].id = id;
                    out.tool_calls[index].name = name;
                }
                Output::ToolCallArguments { index, delta } => {
                    if out.tool_calls.len() <= index {
                        out.tool_calls
                            .resize_with(index + 1, chat::ToolCall::default);
                    }
                    out.tool_calls[index].arguments.push_str(&delta);
                }
                Output::Progress(_) => {}
                Output::Done(d) => out.done = Some(d),
            }
        }
        if out.done.is_none() {
            return Err(ServiceError::Internal(
                "generation ended without a result".into(),
            ));
        }
        if !out.tool_calls.is_empty() {
            out.text = out.text.trim().to_string();
        }
        Ok(out)
    }
}

/// A whole generation.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    pub text: String,
    /// A thinking model's thoughts, when returned apart (empty otherwise).
    pub reasoning: String,
    pub tokens: Vec<i32>,
    /// `(text, token, probs)` per generated token, when asked for.
    pub probs: Vec<(String, i32, TokenProbs)>,
    pub tool_calls: Vec<chat::ToolCall>,
    /// Always `Some` once collected.
    pub done: Option<Done>,
}

/// Renders the request for the leased model and starts generating. `ticket` (from
/// [`crate::Models::admit`]) takes its place on the model first: refused when too many
/// requests wait for it; the request runs with the caps of `[limits]`.
pub async fn start(
    lease: ModelLease,
    template: &TemplateChoice,
    req: Request,
    mut ticket: Ticket,
) -> Result<Generation, ServiceError> {
    ticket.on_model(lease.id(), lease.handle.info().n_slots)?;
    let Prepared {
        mut params,
        tool_format,
        thinking,
    } = prepare(&lease, template, req)?;
    params.caps = ticket.caps();
    let prompt = match &params.prompt {
        Prompt::Text { text, .. } => Some(text.clone()),
        _ => None,
    };
    let events = lease.handle.generate(params).await?;
    let mut pending = VecDeque::new();
    let reasoning = match thinking {
        Some(ReplyThinking {
            tags,
            prefix,
            extract: true,
        }) => Some(ReasoningSplitter::new(tags, &prefix)),
        // Left in the reply, thoughts read as llama-server gives them: with the part of the
        // block that the prompt opened.
        Some(ReplyThinking { prefix, .. }) if !prefix.is_empty() => {
            pending.push_back(Output::Text {
                text: prefix,
                token: None,
                probs: None,
                timings: None,
            });
            None
        }
        _ => None,
    };
    Ok(Generation {
        events,
        reasoning,
        tools: tool_format.map(ToolCallStream::new),
        pending,
        saw_tool_call: false,
        finished: false,
        token_timings: None,
        prompt,
        lease,
        _ticket: ticket,
    })
}

/// The prompt text a chat request renders to (for `/apply-template`).
pub fn render_chat(
    model: &LoadedModel,
    template: &TemplateChoice,
    mut chat: ChatInput,
) -> Result<String, ServiceError> {
    chat.validate()?;
    let format = model.chat_format(template)?;
    Ok(render(&format, template, &mut chat)?.prompt)
}

/// How many tokens the prompt of a chat request is (llama-server's
/// `/chat/completions/input_tokens`), counted as the engine would tokenize it.
pub async fn count_chat_tokens(
    model: &LoadedModel,
    template: &TemplateChoice,
    chat: ChatInput,
) -> Result<usize, ServiceError> {
    let text = render_chat(model, template, chat)?;
    let format = model.chat_format(template)?;
    match format.to_prompt(text) {
        Prompt::Text {
            text,
            add_special,
            parse_special,
        } => Ok(model
            .handle
            .tokenize(&text, add_special, parse_special)
            .await?
            .len()),
        _ => unreachable!("a chat prompt is text"),
    }
}

/// A chat rendered for generation.
struct Rendered {
    prompt: String,
    thinking: Option<ReplyThinking>,
    /// The thinking budget the engine is to keep, when there is one and the model thinks.
    budget: Option<engine::ThinkingBudget>,
}

/// How a thinking model's reply is to be read.
struct ReplyThinking {
    tags: ThinkingTags,
    /// The part of the thinking block the prompt already wrote (`<think>\n`, or a whole empty
    /// block when thinking is off): the reply continues it.
    prefix: String,
    /// Return thoughts apart (`reasoning_content`), or leave them in the reply.
    extract: bool,
}

/// Renders a conversation with `enable_thinking` set as the request, the server and the
/// template decide, and finds where the reply starts in a thinking block. Every road to a chat
/// prompt comes here, so this is where the server's `[reasoning]` defaults (carried by the
/// `template` choice) fill in what the request left open: once, and for every caller.
fn render(
    format: &ChatFormat,
    template: &TemplateChoice,
    chat: &mut ChatInput,
) -> Result<Rendered, ServiceError> {
    template.reasoning.apply(chat);
    template.model.apply(&mut chat.messages);
    let chat = &*chat;
    let tools = visible_tools(chat);
    let mut extra = chat.template_kwargs.clone();
    let enable = reasoning::enable_thinking(chat, format.supports_thinking)?;
    extra.insert("enable_thinking".into(), Value::Bool(enable));
    let ending = chat.ending();
    let prompt = format.render(&chat.messages, tools, ending, extra.clone())?;
    // Only a new assistant turn can open a thinking block for the reply; a continued
    // message is read from its start.
    let thinking = format.thinking.map(|tags| {
        let header = if ending == PromptEnding::GenerationPrompt {
            format.generation_header(&prompt, &chat.messages, tools, extra)
        } else {
            String::new()
        };
        ReplyThinking {
            tags,
            prefix: tags.forced_prefix(&header).to_owned(),
            extract: chat.thinking.format.unwrap_or_default().extracts(),
        }
    });
    let budget = match (&thinking, chat.thinking.budget) {
        (Some(t), Some(tokens)) if enable => Some(engine::ThinkingBudget {
            tokens,
            start: t.tags.start.to_owned(),
            end: t.tags.end.to_owned(),
            message: chat.thinking.budget_message.clone().unwrap_or_default(),
            // The prompt opened the block (`<think>\n` after the assistant header).
            inside: !t.prefix.is_empty() && !t.prefix.contains(t.tags.end),
        }),
        _ => None,
    };
    Ok(Rendered {
        prompt,
        thinking,
        budget,
    })
}

/// What [`prepare`] makes of a request.
struct Prepared {
    params: GenerateRequest,
    /// The tool-call syntax to parse, if any.
    tool_format: Option<ToolCallFormat>,
    thinking: Option<ReplyThinking>,
}

fn visible_tools(chat: &ChatInput) -> &[Tool] {
    if chat.tool_choice == ToolChoice::None {
        &[]
    } else {
        &chat.tools
    }
}

/// Builds the engine request: the prompt, the grammar for the response format or a forced
/// tool call, the template's stop strings; and how to read the reply (thoughts, tool calls).
fn prepare(
    model: &LoadedModel,
    template: &TemplateChoice,
    req: Request,
) -> Result<Prepared, ServiceError> {
    let mut params = req.params;
    let format_grammar = match &req.response_format {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(Grammar::JsonSchema(json!({"type": "object"}))),
        // An object (or `true`/`false`): `validate` refused anything else.
        ResponseFormat::JsonSchema(schema) => Some(Grammar::JsonSchema(schema.clone())),
    };
    let mut tool_format = None;
    let mut thinking = None;
    match req.input {
        Input::Prompt(p) => {
            params.prompt = p;
            template.model.add_stops(&mut params.stop);
        }
        Input::Chat(mut chat) => {
            let format = model.chat_format(template)?;
            let rendered = render(&format, template, &mut chat)?;
            let tools = visible_tools(&chat);
            params.prompt = format.to_prompt(rendered.prompt);
            params.thinking_budget = rendered.budget;
            thinking = rendered.thinking;
            for s in &format.stops {
                if !params.stop.contains(s) {
                    params.stop.push(s.clone());
                }
            }
            template.model.add_stops(&mut params.stop);
            if !tools.is_empty() {
                let forced = forced_tool_schema(&chat)?;
                if let Some(schema) = forced {
                    if params.grammar.is_some() || format_grammar.is_some() {
                        return Err(ServiceError::invalid(
                            "tool_choice",
                            "a forced tool call cannot be combined with a grammar or response_format",
                        ));
                    }
                    params.grammar = Some(Grammar::JsonSchema(schema));
                    // The grammar makes the model write plain JSON calls.
                    tool_format = Some(ToolCallFormat::GenericJson);
                } else {
                    tool_format = Some(format.tool_format);
                }
            }
        }
    }
    if let Some(g) = format_grammar {
        if params.grammar.is_some() {
            return Err(ServiceError::invalid(
                "response_format",
                "cannot be combined with a grammar",
            ));
        }
        params.grammar = Some(g);
    }
    Ok(Prepared {
        params,
        tool_format,
        thinking,
    })
}

/// The JSON schema that forces a tool call for `required` or a named function.
fn forced_tool_schema(chat: &ChatInput) -> Result<Option<Value>, ServiceError> {
    let call = |t: &Tool| {
        let params = if t.parameters.is_object() {
            t.parameters.clone()
        } else {
            json!({"type": "object"})
        };
        json!({
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": params},
            "required": ["name", "arguments"],
        })
    };
    let one = match &chat.tool_choice {
        ToolChoice::Auto | ToolChoice::None => return Ok(None),
        ToolChoice::Function(name) => {
            let tool = chat.tools.iter().find(|t| &t.name == name).ok_or_else(|| {
                ServiceError::invalid(
                    "tool_choice",
                    format!("function '{name}' is not among the tools"),
                )
            })?;
            call(tool)
        }
        ToolChoice::Required => {
            let calls: Vec<Value> = chat.tools.iter().map(call).collect();
            if calls.len() == 1 {
                calls.into_iter().next().expect("one")
            } else {
                json!({"anyOf": calls})
            }
        }
    };
    Ok(Some(
        if chat.parallel_tool_calls && chat.tool_choice == ToolChoice::Required {
            json!({"anyOf": [one, {"type": "array", "items": one, "minItems": 1}]})
        } else {
            one
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat_format::SpecialTokens;
    use crate::{Models, ReasoningDefaults};

    /// A Qwen3-style template: `enable_thinking = false` writes an empty thinking block after
    /// the assistant header.
    const THINKS: &str = r#"{%- for m in messages -%}
<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endfor -%}
{%- if add_generation_prompt %}<|im_start|>assistant
{% if enable_thinking is defined and enable_thinking is false %}<think>

</think>

{% endif %}{% endif %}"#;

    /// The server's `[reasoning]` reach a rendered prompt from `Models`, with nothing in
    /// between: no caller applies them.
    #[tokio::test]
    async fn every_render_gets_the_servers_reasoning_defaults() {
        let models = Models::new(Vec::new(), None, config::ModelsConfig::default());
        let info = engine::ModelInfo {
            architecture: "qwen3".into(),
            chat_template: Some(THINKS.into()),
            ..Default::default()
        };
        let prompt = |choice: TemplateChoice| {
            let format = ChatFormat::build(&info, &SpecialTokens::default(), &choice).unwrap();
            let mut chat = ChatInput {
                messages: vec![ChatMessage::user("Hi")],
                ..Default::default()
            };
            let rendered = render(&format, &choice, &mut chat).unwrap();
            (rendered.prompt, chat.thinking.format)
        };
        // Unset, the template decides (it thinks) and thoughts come apart (`auto`).
        let (text, format) = prompt(models.template_choice("m").await.unwrap());
        assert!(text.ends_with("<|im_start|>assistant\n"), "{text}");
        assert_eq!(format, Some(chat::ReasoningFormat::Auto));
        models.set_reasoning(ReasoningDefaults::from_config(&config::ReasoningConfig {
            thinking: "off".into(),
            format: "none".into(),
            ..Default::default()
        }));
        let (text, format) = prompt(models.template_choice("m").await.unwrap());
        assert!(text.ends_with("<think>\n\n</think>\n\n"), "{text}");
        assert_eq!(format, Some(chat::ReasoningFormat::None));
    }

    fn weather() -> Tool {
        Tool::new(
            "get_weather",
            None,
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        )
    }

    #[test]
    fn forced_schemas() {
        let mut chat = ChatInput {
            tools: vec![weather()],
            tool_choice: ToolChoice::Function("get_weather".into()),
            ..Default::default()
        };
        let s = forced_tool_schema(&chat).unwrap().unwrap();
        assert_eq!(s["properties"]["name"]["const"], "get_weather");
        assert_eq!(s["properties"]["arguments"]["required"][0], "city");

        chat.tool_choice = ToolChoice::Function("nope".into());
        let e = forced_tool_schema(&chat).unwrap_err();
        assert_eq!(e.param(), Some("tool_choice"));

        chat.tool_choice = ToolChoice::Auto;
        assert!(forced_tool_schema(&chat).unwrap().is_none());

        chat.tool_choice = ToolChoice::Required;
        chat.parallel_tool_calls = true;
        let s = forced_tool_schema(&chat).unwrap().unwrap();
        assert_eq!(s["anyOf"][1]["type"], "array");
    }
}
