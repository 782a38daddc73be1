//! The agent loop (issue 14): a chat request that enables server tools is generated, the
//! model's calls of those tools are run here, their results go back as `tool` messages, and
//! the model generates again — until it answers without calling a server tool, or the step
//! limit (`tools.max_steps`) is reached.
//!
//! Each generation ends before any tool runs: the generation (and with it the model's slot
//! and the request's place among those in flight) is dropped first, so a slow tool never
//! holds a slot; the next step's prompt starts with the previous one and is read from the
//! prompt cache. How a generation is started is the caller's (`start`): the HTTP server
//! passes its own (limits, admission, model pick, deadline), a chat session can pass its own.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use chat::{ChatMessage, ToolCall};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::tools::{ToolInfo, Tools};
use crate::{Done, Generation, Input, Output, Request, ServiceError, ToolChoice, Usage};

/// A running generation, as the loop reads it ([`Generation`], or a caller's wrapper that
/// adds a deadline).
pub trait Step: Send {
    fn next(&mut self) -> impl Future<Output = Option<Result<Output, ServiceError>>> + Send;
}

impl Step for Generation {
    fn next(&mut self) -> impl Future<Output = Option<Result<Output, ServiceError>>> + Send {
        Generation::next(self)
    }
}

/// What the loop reports, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// A model output for the client: text, thoughts, progress, and calls of the client's own
    /// tools (indexes counted over the whole answer). Each step's `Done` is not passed on.
    Output(Output),
    /// The model called a server tool; it runs now.
    ToolCall(ServerToolCall),
    /// Its result (a tool's error is a result too).
    ToolResult(ServerToolResult),
    /// The end: the last step's finish, usage added up over all steps.
    Done(Done),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerToolCall {
    pub step: u32,
    pub id: String,
    pub name: String,
    /// JSON text, as the model wrote it.
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerToolResult {
    pub step: u32,
    pub id: String,
    pub name: String,
    pub content: String,
    pub is_error: bool,
}

/// What the loop added to the conversation (assistant tool calls and `tool` results, then
/// the final answer), for a caller that keeps it (a session).
#[derive(Debug, Clone, Default)]
pub struct AgentOutcome {
    pub messages: Vec<ChatMessage>,
    pub steps: u32,
}

/// The server tools as chat tools (what the model is shown; also what a caller measures).
pub fn chat_tools(tools: &[ToolInfo]) -> Vec<chat::Tool> {
    tools.iter().map(|t| chat::Tool::new(&t.name, Some(&t.description), t.parameters.clone())).collect()
}

/// The tools offered to the model as chat tools (next to the client's own).
fn offer(req: &mut Request, tools: &[ToolInfo]) -> Result<(), ServiceError> {
    let Input::Chat(chat) = &mut req.input else {
        return Err(ServiceError::invalid("server_tools", "server tools need a chat request (messages)"));
    };
    for t in chat_tools(tools) {
        if chat.tools.iter().any(|c| c.name == t.name) {
            return Err(ServiceError::invalid(
                "server_tools",
                format!("\"{}\" is both a server tool and one of the request's tools", t.name),
            ));
        }
        chat.tools.push(t);
    }
    Ok(())
}

/// The request of step `step` (the last one must answer: it is offered no tools).
fn step_request(req: &Request, step: u32, max_steps: u32) -> Request {
    let mut this = req.clone();
    if step == max_steps.max(1)
        && let Input::Chat(chat) = &mut this.input
    {
        chat.tool_choice = ToolChoice::None;
    }
    this
}

/// What [`run`] gives `start` for the first step: a caller that must start the first
/// generation itself (to answer a refusal before anything else happens: a chat session)
/// starts this one and hands it over on `start`'s first call.
pub fn first_request(mut req: Request, offered: &[ToolInfo], max_steps: u32) -> Result<Request, ServiceError> {
    offer(&mut req, offered)?;
    Ok(step_request(&req, 1, max_steps))
}

/// Runs the loop. `start` begins one generation; `events` gets every [`AgentEvent`] (the
/// loop stops when it is closed: the client left). `builtins`: whether built-in tools may
/// run for this caller. `tools` may be `None` only when nothing is `offered` (a plain
/// answer through the same loop).
pub async fn run<S, E, F, Fut>(
    mut req: Request,
    offered: Vec<ToolInfo>,
    tools: Option<Arc<Tools>>,
    builtins: bool,
    max_steps: u32,
    mut start: F,
    events: mpsc::Sender<AgentEvent>,
) -> Result<AgentOutcome, E>
where
    S: Step,
    E: From<ServiceError>,
    F: FnMut(Request) -> Fut,
    Fut: Future<Output = Result<S, E>>,
{
    offer(&mut req, &offered)?;
    let server: HashSet<String> = offered.iter().map(|t| t.name.clone()).collect();
    let mut outcome = AgentOutcome::default();
    let mut usage = Usage::default();
    let mut client_calls = 0usize;
    for step in 1..=max_steps.max(1) {
        outcome.steps = step;
        let mut generation = start(step_request(&req, step, max_steps)).await?;
        let mut text = String::new();
        let mut reasoning = String::new();
        // Calls by the generation's index: (call, is a server tool, index given to the client).
        let mut calls: Vec<(ToolCall, bool, usize)> = Vec::new();
        let mut done = None;
        while let Some(out) = generation.next().await {
            let forward = match out.map_err(E::from)? {
                Output::Done(d) => {
                    done = Some(d);
                    None
                }
                Output::ToolCallStart { index, id, name } => {
                    let is_server = server.contains(&name);
                    let given = client_calls;
                    if !is_server {
                        client_calls += 1;
                    }
                    calls.push((ToolCall::new(id.clone(), name.clone(), ""), is_server, given));
                    debug_assert_eq!(index + 1, calls.len());
                    (!is_server).then_some(Output::ToolCallStart { index: given, id, name })
                }
                Output::ToolCallArguments { index, delta } => match calls.get_mut(index) {
                    Some((call, is_server, given)) => {
                        call.arguments.push_str(&delta);
                        (!*is_server).then(|| Output::ToolCallArguments { index: *given, delta })
                    }
                    None => None,
                },
                Output::Text { text: t, token, probs, timings } => {
                    text.push_str(&t);
                    Some(Output::Text { text: t, token, probs, timings })
                }
                Output::Reasoning { text: t } => {
                    reasoning.push_str(&t);
                    Some(Output::Reasoning { text: t })
                }
                other => Some(other),
            };
            if let Some(o) = forward
                && events.send(AgentEvent::Output(o)).await.is_err()
            {
                return Ok(outcome);
            }
        }
        // The slot and the request's place go back before any tool runs.
        drop(generation);
        let Some(done) = done else {
            return Err(ServiceError::Internal("a generation ended without finishing".into()).into());
        };
        usage.prompt_tokens += done.usage.prompt_tokens;
        usage.completion_tokens += done.usage.completion_tokens;
        let server_calls: Vec<ToolCall> = calls.iter().filter(|c| c.1).map(|c| c.0.clone()).collect();
        let mut assistant = if calls.is_empty() {
            ChatMessage::assistant(text.clone())
        } else {
            let mut m = ChatMessage::assistant_tool_calls(calls.iter().map(|c| c.0.clone()).collect());
            if !text.is_empty() {
                m.content = Some(text.clone().into());
            }
            m
        };
        if !reasoning.is_empty() {
            assistant.reasoning_content = Some(reasoning);
        }
        if server_calls.is_empty() {
            outcome.messages.push(assistant);
            let _ = events.send(AgentEvent::Done(Done { usage, ..done })).await;
            return Ok(outcome);
        }
        for call in &server_calls {
            let ev = ServerToolCall { step, id: call.id.clone(), name: call.name.clone(), arguments: call.arguments.clone() };
            if events.send(AgentEvent::ToolCall(ev)).await.is_err() {
                return Ok(outcome);
            }
        }
        // Concurrently; the client leaving stops waiting (the calls are dropped).
        let results = tokio::select! {
            r = futures::future::join_all(server_calls.iter().map(|c| call_one(tools.as_deref(), c, builtins))) => r,
            _ = events.closed() => return Ok(outcome),
        };
        req_messages(&mut req).push(assistant.clone());
        outcome.messages.push(assistant);
        for (call, result) in server_calls.iter().zip(results) {
            let message = ChatMessage::tool(call.id.clone(), result.text.clone());
            req_messages(&mut req).push(message.clone());
            outcome.messages.push(message);
            let ev = ServerToolResult {
                step,
                id: call.id.clone(),
                name: call.name.clone(),
                content: result.text,
                is_error: result.is_error,
            };
            if events.send(AgentEvent::ToolResult(ev)).await.is_err() {
                return Ok(outcome);
            }
        }
        if calls.iter().any(|c| !c.1) {
            // The client's own calls are the client's to run: the answer ends here.
            let _ = events.send(AgentEvent::Done(Done { usage, ..done })).await;
            return Ok(outcome);
        }
        if let Input::Chat(chat) = &mut req.input
            && matches!(chat.tool_choice, ToolChoice::Required | ToolChoice::Function(_))
        {
            // A forced call was made; forcing it again would never let the model answer.
            chat.tool_choice = ToolChoice::Auto;
        }
    }
    // Not reached: the last step offers no tools, so it answers.
    Ok(outcome)
}

fn req_messages(req: &mut Request) -> &mut Vec<ChatMessage> {
    match &mut req.input {
        Input::Chat(chat) => &mut chat.messages,
        _ => unreachable!("checked by offer"),
    }
}

async fn call_one(tools: Option<&Tools>, call: &ToolCall, builtins: bool) -> crate::tools::ToolOutput {
    let Some(tools) = tools else {
        return crate::tools::ToolOutput::error(format!("no tool named \"{}\" runs here", call.name));
    };
    let args = if call.arguments.trim().is_empty() {
        Ok(serde_json::Value::Object(Default::default()))
    } else {
        serde_json::from_str(&call.arguments)
    };
    match args {
        Err(e) => crate::tools::ToolOutput::error(format!("the arguments are not valid JSON: {e}")),
        Ok(args) => match tools.call(&call.name, args, builtins).await {
            Ok(out) => out,
            Err(e) => crate::tools::ToolOutput::error(e.to_string()),
        },
    }
}
