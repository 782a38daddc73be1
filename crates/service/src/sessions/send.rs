//! The send loop: a question goes into the tree, each model's answer is written as it
//! arrives. Generation goes through the caller's [`Runner`], which starts it the way the chat
//! routes do (limits, admission, the model's lease, `generate::start`): sessions have no
//! generation path of their own.
//!
//! One answer is [`Sessions::write_answer`]: create the row (`generating`), run the answer
//! through the one agent loop (`crate::agent::run`), pump its outputs to the client and,
//! every [`FLUSH_EVERY`] or [`FLUSH_TOKENS`] pieces, to the store, then finish the row. When
//! the session enables server tools, each step that calls them ends its row with its calls
//! (`tool_calls`, stored before the tools run), each result becomes a `tool` message below
//! it, and the next step writes a new assistant row below the results: the answer is a chain
//! in the tree. Without tools the loop runs one step, as a plain answer.

use super::context::{self, Fitted};
use super::{
    Message, Running, ServerTools, Session, Sessions, ToolCallRecord, branch, find, pick,
};
use crate::agent::{self, AgentEvent, ServerToolCall, ServerToolResult};
use crate::error::ServiceError;
use crate::tools::{ToolInfo, Tools};
use crate::generate::{ChatInput, Finish, Input, Output, Request, ResponseFormat};
use crate::SamplingDefaults;
use engine::GenerateRequest;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{Finished, StoredMessage};
use tokio::sync::{mpsc, watch};

/// Models one send may ask at once.
pub const MAX_MODELS: usize = 4;
/// How often a partial answer is written to the store.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Or after this many pieces of text, whichever comes first.
pub const FLUSH_TOKENS: usize = 64;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A running generation's outputs (the chat route's stream). Dropping it cancels it.
pub trait Outputs: Send {
    fn next(&mut self) -> BoxFuture<'_, Option<Result<Output, ServiceError>>>;
}

pub use crate::fit::Measure;

/// How sessions reach models: the caller's one path for chat requests (the HTTP server's
/// and `run`'s), so limits, admission, model picking and the request deadline are theirs.
pub trait Runner: Send + Sync {
    /// The model `name` names, as answers are tagged with it; an unknown name is an error
    /// (before anything is stored).
    fn pick<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<String, ServiceError>>;
    /// The sampling a request for `model` starts from (the server's and the model's
    /// defaults).
    fn sampling<'a>(&'a self, model: &'a str) -> BoxFuture<'a, SamplingDefaults>;
    /// The size of `chat`'s prompt on `model`.
    fn measure<'a>(
        &'a self,
        model: &'a str,
        chat: ChatInput,
    ) -> BoxFuture<'a, Result<Measure, ServiceError>>;
    /// Starts generating `req` on `model`.
    fn start<'a>(
        &'a self,
        model: &'a str,
        req: Request,
    ) -> BoxFuture<'a, Result<Box<dyn Outputs>, ServiceError>>;
    /// The server tools this caller runs (the server's registry); `None`: a session that
    /// enables tools is refused here.
    fn tools(&self) -> Option<Arc<Tools>> {
        None
    }
}

impl<'a> agent::Step for Box<dyn Outputs + 'a> {
    fn next(&mut self) -> impl Future<Output = Option<Result<Output, ServiceError>>> + Send {
        Outputs::next(self.as_mut())
    }
}

/// What happens while answers are written, in order per answer.
#[derive(Debug, Clone)]
pub enum SendEvent {
    /// An answer's row exists (finish reason `generating`).
    Started(Message),
    /// Reply text.
    Delta {
        message_id: i64,
        text: String,
        /// When the generation handed the text over (Unix seconds, with
        /// `LLAMA_DASHBOARD_BENCH_STAMPS=1` only: the latency benchmark's clock).
        emitted_at: Option<f64>,
    },
    /// A thinking model's thoughts.
    Reasoning { message_id: i64, text: String },
    /// The answer `message_id` calls a server tool (its row holds the call from now on; the
    /// tool runs now).
    ToolCall {
        message_id: i64,
        call: ServerToolCall,
    },
    /// A tool's result, stored as the `tool` message `message` (the answer's next step
    /// follows as a new assistant row, announced with [`SendEvent::Started`]).
    ToolResult {
        message: Message,
        result: ServerToolResult,
    },
    /// The answer as stored at its end (finish reason, usage, timings, left-out ids).
    Done(Message),
    /// The generation failed midway; the text so far is kept (`error`).
    Error {
        message_id: i64,
        error: ServiceError,
    },
}

/// A send under way.
pub struct Sent {
    pub session: Session,
    /// The user message added (`None` for a regeneration).
    pub question: Option<Message>,
    /// Each model's answer row as created (`generating`).
    pub answers: Vec<Message>,
    /// Every answer's events; closed when all answers are finished. Dropping it cancels
    /// them (their text so far is kept, `cancelled`).
    pub events: mpsc::Receiver<SendEvent>,
}

/// One finished answer, as [`Sent::finish`] collects it.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The answer's last assistant row (its first, without tool calls).
    pub message: Message,
    pub error: Option<ServiceError>,
    /// Server tool calls made on the way, each with its result (`content`, `is_error`) when
    /// it has one: the OpenAI route's `server_tool_calls` trace.
    pub tool_calls: Vec<serde_json::Value>,
}

impl Sent {
    /// Waits for every answer to end.
    pub async fn finish(mut self) -> (Session, Option<Message>, Vec<Answer>) {
        let mut answers: Vec<Answer> = self
            .answers
            .iter()
            .map(|m| Answer {
                message: m.clone(),
                error: None,
                tool_calls: Vec::new(),
            })
            .collect();
        // Which answer each row belongs to: its first row's, or its parent's.
        let mut owner: std::collections::HashMap<i64, usize> =
            self.answers.iter().enumerate().map(|(i, m)| (m.id, i)).collect();
        let adopt = |owner: &mut std::collections::HashMap<i64, usize>, m: &Message| {
            let found = owner
                .get(&m.id)
                .or_else(|| m.parent_id.and_then(|p| owner.get(&p)))
                .copied();
            if let Some(i) = found {
                owner.insert(m.id, i);
            }
            found
        };
        while let Some(ev) = self.events.recv().await {
            match ev {
                SendEvent::Started(m) => {
                    adopt(&mut owner, &m);
                }
                SendEvent::ToolCall { message_id, call } => {
                    if let Some(&i) = owner.get(&message_id) {
                        answers[i].tool_calls.push(serde_json::json!(call));
                    }
                }
                SendEvent::ToolResult { message, result } => {
                    if let Some(i) = adopt(&mut owner, &message)
                        && let Some(t) = answers[i]
                            .tool_calls
                            .iter_mut()
                            .find(|t| t["id"] == result.id.as_str())
                    {
                        t["content"] = serde_json::json!(result.content);
                        t["is_error"] = serde_json::json!(result.is_error);
                    }
                }
                SendEvent::Done(m) => {
                    if let Some(i) = adopt(&mut owner, &m) {
                        answers[i].message = m;
                    }
                }
                SendEvent::Error { message_id, error } => {
                    if let Some(&i) = owner.get(&message_id) {
                        answers[i].error = Some(error);
                    }
                }
                _ => {}
            }
        }
        (self.session, self.question, answers)
    }
}

/// What the send asks.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    /// Models to answer (none: the session's first).
    pub models: Vec<String>,
    /// The server tools of this send (none: the session's `params.server_tools`).
    pub server_tools: Option<ServerTools>,
    /// How the first step may use them (OpenAI's `tool_choice`; a forced call applies to
    /// the first step only). Default: the model decides.
    pub tool_choice: Option<crate::ToolChoice>,
}

/// One answer to write (see [`Sessions::write_answer`]).
struct Job {
    session: String,
    /// Its first row, created `generating`.
    first: Message,
    runner: Arc<dyn Runner>,
    model: String,
    /// The request before the tools are offered (the loop offers them).
    request: Request,
    offered: Vec<ToolInfo>,
    tools: Option<Arc<Tools>>,
    max_steps: u32,
    /// The first step, started already (a refusal was the send's error).
    outputs: Box<dyn Outputs>,
    /// Whether its rows become the active branch (the first model's answer).
    activate: bool,
}

impl Sessions {
    /// Adds `text` as a user message under the active leaf and has each model answer it.
    pub async fn send(
        self: &Arc<Self>,
        runner: Arc<dyn Runner>,
        id: &str,
        text: String,
        ask: Ask,
    ) -> Result<Sent, ServiceError> {
        self.check_message(&text, "message")?;
        let _claim = self.claim(id)?;
        let (session, messages) = self.load(id).await?;
        let active = branch(&messages, session.active_leaf)?;
        let mut history = pick(&messages, &active);
        let parent = session.active_leaf;
        history.push(new_user(&text, parent));
        self.answer(runner, session, history, ask, true).await
    }

    /// A new answer to the question the active branch ends with (a sibling of its last
    /// answer: a new branch, which becomes the active one).
    pub async fn regenerate(
        self: &Arc<Self>,
        runner: Arc<dyn Runner>,
        id: &str,
        ask: Ask,
    ) -> Result<Sent, ServiceError> {
        let _claim = self.claim(id)?;
        let (session, messages) = self.load(id).await?;
        let mut active = branch(&messages, session.active_leaf)?;
        while let Some(last) = active.last() {
            if find(&messages, *last)?.role == "user" {
                break;
            }
            active.pop();
        }
        if active.is_empty() {
            return Err(ServiceError::invalid(
                "session",
                "the active branch has no question to answer again",
            ));
        }
        let history = pick(&messages, &active);
        self.answer(runner, session, history, ask, false).await
    }

    /// `message_id` (a user message) asked again as `text`: a sibling question and its
    /// answer, the new active branch; the old branch stays as it was.
    pub async fn edit(
        self: &Arc<Self>,
        runner: Arc<dyn Runner>,
        id: &str,
        message_id: i64,
        text: String,
        ask: Ask,
    ) -> Result<Sent, ServiceError> {
        self.check_message(&text, "content")?;
        let _claim = self.claim(id)?;
        let (session, messages) = self.load(id).await?;
        let edited = find(&messages, message_id)?;
        if edited.role != "user" {
            return Err(ServiceError::invalid(
                "message_id",
                format!("message {message_id} is a {} message; only user messages are edited", edited.role),
            ));
        }
        let parent = edited.parent_id;
        let mut history = pick(&messages, &branch(&messages, parent)?);
        history.push(new_user(&text, parent));
        self.answer(runner, session, history, ask, true).await
    }

    /// Answers the last message of `history` with each model. With `new_question`, that
    /// message is not stored yet (its id is 0): it is stored once every model has been
    /// picked and measured, so a bad model or a message too long stores nothing.
    async fn answer(
        self: &Arc<Self>,
        runner: Arc<dyn Runner>,
        mut session: Session,
        mut history: Vec<Message>,
        ask: Ask,
        new_question: bool,
    ) -> Result<Sent, ServiceError> {
        let (tools, offered, max_steps) = self.offered_tools(runner.as_ref(), &session, &ask)?;
        let ask_choice = ask.tool_choice.clone();
        let names = if ask.models.is_empty() {
            session.models.iter().take(1).cloned().collect()
        } else {
            ask.models
        };
        let names = super::model_list(None, names)?;
        if names.is_empty() {
            return Err(ServiceError::invalid(
                "models",
                "the session names no model; give `model` or `models`",
            ));
        }
        let shown = agent::chat_tools(&offered);
        let max_history = self.config().max_history_messages as usize;
        let mut plans = Vec::new();
        for name in &names {
            let model = runner.pick(name).await?;
            let fitted = context::fit(
                runner.as_ref(),
                &model,
                session.params.system_prompt.as_deref(),
                &history,
                &shown,
                max_history,
                session.params.max_tokens,
            )
            .await?;
            plans.push((model, fitted));
        }
        let mut question = None;
        if new_question {
            let q = history.pop().expect("the question is the last message");
            let row = q.stored(&session.id);
            let stored = self.db(move |s| s.add_message(&row, true)).await?;
            if session.title.is_empty() {
                session.title = super::derive_title(&stored.content);
                let row = super::stored_session(&session);
                self.db(move |s| s.update_session(&row)).await?;
            }
            history.push(stored.clone().into());
            question = Some(Message::from(stored));
        }
        let parent = history.last().map(|m| m.id);
        let (tx, events) = mpsc::channel(256);
        let mut answers = Vec::new();
        for (i, (model, fitted)) in plans.into_iter().enumerate() {
            let mut req = self.request(runner.as_ref(), &model, &session, &fitted).await;
            if let (Some(choice), Input::Chat(chat)) = (&ask_choice, &mut req.input) {
                chat.tool_choice = choice.clone();
            }
            let first = agent::first_request(req.clone(), &offered, max_steps)?;
            let outputs = runner.start(&model, first).await?;
            let row = StoredMessage {
                session_id: session.id.clone(),
                parent_id: parent,
                role: "assistant".into(),
                model: Some(model.clone()),
                finish_reason: Some(store::sessions::GENERATING.into()),
                left_out: Some(fitted.left_out.clone()),
                ..Default::default()
            };
            // The first model's answer is the active branch.
            let row = self.db(move |s| s.add_message(&row, i == 0)).await?;
            let message = Message::from(row);
            let (stop, stopped) = watch::channel(false);
            self.running_insert(message.id, &session.id, stop);
            answers.push(message.clone());
            let this = self.clone();
            let tx = tx.clone();
            let job = Job {
                session: session.id.clone(),
                first: message,
                runner: runner.clone(),
                model,
                request: req,
                offered: offered.clone(),
                tools: tools.clone(),
                max_steps,
                outputs,
                activate: i == 0,
            };
            tokio::spawn(async move {
                let id = job.first.id;
                this.write_answer(job, tx, stopped).await;
                this.running_remove(id);
            });
        }
        session = self.get(&session.id).await?;
        Ok(Sent {
            session,
            question,
            answers,
            events,
        })
    }

    /// The server tools this send offers (the send's choice, else the session's), checked
    /// against the running registry before anything is stored; and the loop's step limit.
    fn offered_tools(
        &self,
        runner: &dyn Runner,
        session: &Session,
        ask: &Ask,
    ) -> Result<(Option<Arc<Tools>>, Vec<ToolInfo>, u32), ServiceError> {
        if let Some(t) = &ask.server_tools {
            t.check()?;
        }
        let selection = ask
            .server_tools
            .as_ref()
            .or(session.params.server_tools.as_ref())
            .map(ServerTools::selection)
            .unwrap_or_default();
        if selection.is_empty() {
            check_choice(ask.tool_choice.as_ref(), &[])?;
            return Ok((None, Vec::new(), 1));
        }
        let tools = runner.tools().ok_or_else(|| {
            ServiceError::invalid(
                "server_tools",
                "server tools run in the server (`llama-dashboard serve`), not here; \
                 send with server_tools off",
            )
        })?;
        // Sessions are the admin's (every /api route): built-in tools are allowed.
        let offered = tools.select(&selection, true)?;
        let max_steps = tools.settings().max_steps;
        check_choice(ask.tool_choice.as_ref(), &offered)?;
        Ok((Some(tools), offered, max_steps))
    }

    /// The chat request for one model: the fitted messages, the session's sampling over the
    /// model's defaults.
    async fn request(
        &self,
        runner: &dyn Runner,
        model: &str,
        session: &Session,
        fitted: &Fitted,
    ) -> Request {
        let defaults = runner.sampling(model).await;
        Request {
            input: Input::Chat(ChatInput {
                messages: fitted.messages.clone(),
                ..Default::default()
            }),
            params: GenerateRequest {
                max_tokens: session.params.max_tokens.or(defaults.n_predict),
                sampling: session.params.sampling(&defaults),
                ..Default::default()
            },
            response_format: ResponseFormat::Text,
        }
    }

    fn running_insert(&self, id: i64, session: &str, stop: watch::Sender<bool>) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.insert(
            id,
            Running {
                session: session.to_string(),
                stop,
            },
        );
    }

    fn running_remove(&self, id: i64) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.remove(&id);
    }

    /// Writes one answer: the loop's outputs go to the client as they come and to the store
    /// in batches; a step that calls server tools keeps its calls on its row before they run,
    /// each result becomes a `tool` row, and the next step a new assistant row. The last row
    /// is finished with the finish reason (`cancelled` when stopped or when the client is
    /// gone, `error` on a failure midway), keeping the text so far; a row stopped while its
    /// tools run keeps its calls.
    async fn write_answer(
        &self,
        job: Job,
        tx: mpsc::Sender<SendEvent>,
        mut stop: watch::Receiver<bool>,
    ) {
        let stamps = std::env::var_os("LLAMA_DASHBOARD_BENCH_STAMPS").is_some_and(|v| v == "1");
        let _ = tx.send(SendEvent::Started(job.first.clone())).await;
        let chain = Chain {
            session: job.session,
            model: job.first.model.clone(),
            left_out: job.first.left_out.clone(),
            activate: job.activate,
        };
        let mut row = Row::new(job.first);
        let (runner, model) = (job.runner, job.model);
        let mut first = Some(job.outputs);
        let start = move |req: Request| {
            let first = first.take();
            let (runner, model) = (runner.clone(), model.clone());
            async move {
                match first {
                    // The same request: `first_request` is the loop's first step.
                    Some(outputs) => Ok(outputs),
                    None => runner.start(&model, req).await,
                }
            }
        };
        let (events_tx, mut events) = mpsc::channel(64);
        let agent = agent::run::<Box<dyn Outputs>, ServiceError, _, _>(
            job.request,
            job.offered,
            job.tools,
            true,
            job.max_steps,
            start,
            events_tx,
        );
        tokio::pin!(agent);
        let mut result: Option<Result<agent::AgentOutcome, ServiceError>> = None;
        let mut done = None;
        let mut client_gone = false;
        let end: Result<Option<crate::Done>, ServiceError> = loop {
            let ev = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => break Ok(None),
                r = &mut agent, if result.is_none() => {
                    result = Some(r);
                    continue;
                }
                ev = events.recv() => ev,
            };
            let event = match ev {
                // The loop ended (its sender went with it).
                None => match result.take() {
                    Some(Err(e)) => break Err(e),
                    _ => break Ok(done.take()),
                },
                Some(AgentEvent::Done(d)) => {
                    done = Some(d);
                    continue;
                }
                Some(AgentEvent::Output(out)) => match out {
                    Output::Text { text, .. } => {
                        row.content.push_str(&text);
                        SendEvent::Delta {
                            message_id: row.message.id,
                            text,
                            emitted_at: stamps.then(unix_seconds),
                        }
                    }
                    Output::Reasoning { text } => {
                        row.reasoning.push_str(&text);
                        SendEvent::Reasoning {
                            message_id: row.message.id,
                            text,
                        }
                    }
                    // A call of a tool that is not a server tool (a name the model made
                    // up): kept on the row, which ends with `tool_calls`.
                    Output::ToolCallStart { id, name, .. } => {
                        row.other_calls.push(ToolCallRecord {
                            id,
                            name,
                            arguments: String::new(),
                        });
                        continue;
                    }
                    Output::ToolCallArguments { delta, .. } => {
                        if let Some(c) = row.other_calls.last_mut() {
                            c.arguments.push_str(&delta);
                        }
                        continue;
                    }
                    _ => continue,
                },
                Some(AgentEvent::ToolCall(call)) => {
                    row.calls.push(ToolCallRecord {
                        id: call.id.clone(),
                        name: call.name.clone(),
                        arguments: call.arguments.clone(),
                    });
                    let (id, calls) = (row.message.id, row.calls_json());
                    let _ = self
                        .db(move |s| s.set_tool_calls(id, &calls))
                        .await
                        .map_err(|e| tracing::warn!("session answer {id}: {e}"));
                    SendEvent::ToolCall {
                        message_id: row.message.id,
                        call,
                    }
                }
                Some(AgentEvent::ToolResult(result)) => {
                    if row.results == 0 {
                        // The step's tools have run: its row is complete.
                        self.finish_row(&mut row, "tool_calls".into(), None).await;
                    }
                    row.results += 1;
                    let message = self.add_tool_row(&chain, &row, &result).await;
                    let Some(message) = message else {
                        break Err(ServiceError::Internal(
                            "a tool's result could not be stored".into(),
                        ));
                    };
                    row.last_id = message.id;
                    let event = SendEvent::ToolResult {
                        message,
                        result,
                    };
                    if row.results == row.calls.len() {
                        // The next step writes a new assistant row below the results.
                        match self.next_row(&chain, row.last_id).await {
                            Some(next) => {
                                if !client_gone && tx.send(event).await.is_err() {
                                    client_gone = true;
                                }
                                row = Row::new(next);
                                if client_gone
                                    || tx.send(SendEvent::Started(row.message.clone())).await.is_err()
                                {
                                    client_gone = true;
                                    break Ok(None);
                                }
                                continue;
                            }
                            None => {
                                break Err(ServiceError::Internal(
                                    "the answer's next row could not be stored".into(),
                                ));
                            }
                        }
                    }
                    event
                }
            };
            if !client_gone && tx.send(event).await.is_err() {
                // The client left: the answer ends here, its text kept.
                client_gone = true;
                break Ok(None);
            }
            row.pieces += 1;
            if row.pieces >= FLUSH_TOKENS || row.flushed.elapsed() >= FLUSH_EVERY {
                let (id, c, r) = (row.message.id, row.content.clone(), non_empty(&row.reasoning));
                let _ = self
                    .db(move |s| s.write_partial(id, &c, r.as_deref()))
                    .await
                    .map_err(|e| tracing::warn!("session answer {id}: {e}"));
                row.pieces = 0;
                row.flushed = Instant::now();
            }
        };
        // The loop (and any tool still running) is dropped before the row is finished.
        drop(agent);
        let (finish_reason, usage, error) = match end {
            Ok(Some(d)) => (d.finish.as_session().to_string(), Some(d), None),
            Ok(None) => ("cancelled".to_string(), None, None),
            Err(e) => ("error".to_string(), None, Some(e)),
        };
        if row.closed {
            // Ended after its results were stored but before the next row: nothing more.
            tracing::debug!("session answer {} ended between steps", row.message.id);
        } else {
            self.finish_row(&mut row, finish_reason, usage).await;
        }
        if client_gone {
            return;
        }
        if let Some(error) = error {
            let _ = tx
                .send(SendEvent::Error {
                    message_id: row.message.id,
                    error,
                })
                .await;
        }
        let _ = tx.send(SendEvent::Done(row.message)).await;
    }

    /// Writes how a row ended (its text, thoughts, calls; usage and timings from `done`).
    async fn finish_row(&self, row: &mut Row, finish_reason: String, done: Option<crate::Done>) {
        let calls: Vec<ToolCallRecord> =
            row.calls.iter().chain(&row.other_calls).cloned().collect();
        let finished = Finished {
            content: row.content.clone(),
            reasoning: non_empty(&row.reasoning),
            prompt_tokens: done.as_ref().map(|d| d.usage.prompt_tokens),
            completion_tokens: done.as_ref().map(|d| d.usage.completion_tokens),
            timings: done.as_ref().and_then(|d| serde_json::to_value(&d.timings).ok()),
            finish_reason,
            tool_calls: (!calls.is_empty()).then(|| serde_json::json!(calls)),
        };
        let m = &mut row.message;
        m.content = finished.content.clone();
        m.reasoning = finished.reasoning.clone();
        m.prompt_tokens = finished.prompt_tokens;
        m.completion_tokens = finished.completion_tokens;
        m.timings = finished.timings.clone();
        m.finish_reason = Some(finished.finish_reason.clone());
        m.tool_calls = (!calls.is_empty()).then_some(calls);
        row.closed = true;
        let id = m.id;
        if let Err(e) = self.db(move |s| s.finish_message(id, &finished)).await {
            tracing::warn!("session answer {id} not finished in the store: {e}");
        }
    }

    /// Stores a tool's result as a `tool` message below the answer's last row.
    async fn add_tool_row(
        &self,
        chain: &Chain,
        row: &Row,
        result: &ServerToolResult,
    ) -> Option<Message> {
        let stored = StoredMessage {
            parent_id: Some(row.last_id),
            role: "tool".into(),
            content: result.content.clone(),
            tool_call_id: Some(result.id.clone()),
            tool_name: Some(result.name.clone()),
            tool_error: Some(result.is_error),
            ..Default::default()
        };
        self.add_row(chain, stored).await
    }

    /// A new assistant row (`generating`) below `parent`, for the answer's next step.
    async fn next_row(&self, chain: &Chain, parent: i64) -> Option<Message> {
        let stored = StoredMessage {
            parent_id: Some(parent),
            role: "assistant".into(),
            model: chain.model.clone(),
            finish_reason: Some(store::sessions::GENERATING.into()),
            left_out: chain.left_out.clone(),
            ..Default::default()
        };
        self.add_row(chain, stored).await
    }

    async fn add_row(&self, chain: &Chain, mut stored: StoredMessage) -> Option<Message> {
        stored.session_id = chain.session.clone();
        let activate = chain.activate;
        match self.db(move |s| s.add_message(&stored, activate)).await {
            Ok(m) => Some(Message::from(m)),
            Err(e) => {
                tracing::warn!("session {}: {e}", chain.session);
                None
            }
        }
    }
}

/// What every row of one answer shares.
struct Chain {
    session: String,
    model: Option<String>,
    left_out: Option<Vec<i64>>,
    /// Whether its rows become the active branch (the first model's answer).
    activate: bool,
}

/// The assistant row being written.
struct Row {
    message: Message,
    content: String,
    reasoning: String,
    /// Server tool calls of this step, in the order announced.
    calls: Vec<ToolCallRecord>,
    /// Calls of tools that are not server tools.
    other_calls: Vec<ToolCallRecord>,
    /// Results stored so far.
    results: usize,
    /// The answer's last row so far (this one, or its last `tool` row).
    last_id: i64,
    /// Finished (its tools' results follow it).
    closed: bool,
    pieces: usize,
    flushed: Instant,
}

impl Row {
    fn new(message: Message) -> Self {
        Row {
            last_id: message.id,
            message,
            content: String::new(),
            reasoning: String::new(),
            calls: Vec::new(),
            other_calls: Vec::new(),
            results: 0,
            closed: false,
            pieces: 0,
            flushed: Instant::now(),
        }
    }

    fn calls_json(&self) -> serde_json::Value {
        serde_json::json!(self.calls)
    }
}

impl Finish {
    /// The finish reason a session stores: OpenAI's, with `cancelled` kept apart.
    pub fn as_session(&self) -> &'static str {
        match self {
            Finish::Cancelled => "cancelled",
            f => f.as_openai(),
        }
    }
}

/// A forced `tool_choice` must name a tool the send offers (checked before anything is
/// stored).
fn check_choice(choice: Option<&crate::ToolChoice>, offered: &[ToolInfo]) -> Result<(), ServiceError> {
    use crate::ToolChoice;
    match choice {
        Some(ToolChoice::Required) if offered.is_empty() => Err(ServiceError::invalid(
            "tool_choice",
            "\"required\" needs server tools: turn on server_tools",
        )),
        Some(ToolChoice::Function(name)) if !offered.iter().any(|t| &t.name == name) => {
            Err(ServiceError::invalid(
                "tool_choice",
                format!("\"{name}\" is not one of the server tools this send offers"),
            ))
        }
        _ => Ok(()),
    }
}

fn new_user(text: &str, parent: Option<i64>) -> Message {
    Message {
        parent_id: parent,
        role: "user".into(),
        content: text.to_string(),
        ..Default::default()
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn unix_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
