//! The send loop: a question goes into the tree, each model's answer is written as it
//! arrives. Generation goes through the caller's [`Runner`], which starts it the way the chat
//! routes do (limits, admission, the model's lease, `generate::start`): sessions have no
//! generation path of their own.
//!
//! One answer is [`write_answer`]: create the row (`generating`), pump outputs to the client
//! and, every [`FLUSH_EVERY`] or [`FLUSH_TOKENS`] pieces, to the store, then finish the row.
//! A later tool step (issue 14) goes between the outputs and the finish there.

use super::context::{self, Fitted};
use super::{Message, Running, Session, Sessions, branch, find, pick};
use crate::error::ServiceError;
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
    pub message: Message,
    pub error: Option<ServiceError>,
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
            })
            .collect();
        while let Some(ev) = self.events.recv().await {
            match ev {
                SendEvent::Done(m) => {
                    if let Some(a) = answers.iter_mut().find(|a| a.message.id == m.id) {
                        a.message = m;
                    }
                }
                SendEvent::Error { message_id, error } => {
                    if let Some(a) = answers.iter_mut().find(|a| a.message.id == message_id) {
                        a.error = Some(error);
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
        let max_history = self.config().max_history_messages as usize;
        let mut plans = Vec::new();
        for name in &names {
            let model = runner.pick(name).await?;
            let fitted = context::fit(
                runner.as_ref(),
                &model,
                session.params.system_prompt.as_deref(),
                &history,
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
            let req = self.request(runner.as_ref(), &model, &session, &fitted).await;
            let outputs = runner.start(&model, req).await?;
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
            tokio::spawn(async move {
                let id = message.id;
                this.write_answer(message, outputs, tx, stopped).await;
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

    /// Writes one answer: outputs go to the client as they come and to the store in
    /// batches; the row is finished with the finish reason (`cancelled` when stopped or
    /// when the client is gone, `error` on a failure midway), keeping the text so far.
    async fn write_answer(
        &self,
        mut message: Message,
        mut outputs: Box<dyn Outputs>,
        tx: mpsc::Sender<SendEvent>,
        mut stop: watch::Receiver<bool>,
    ) {
        let id = message.id;
        let stamps = std::env::var_os("LLAMA_DASHBOARD_BENCH_STAMPS").is_some_and(|v| v == "1");
        let _ = tx.send(SendEvent::Started(message.clone())).await;
        let mut content = String::new();
        let mut reasoning = String::new();
        let mut pieces = 0usize;
        let mut flushed = Instant::now();
        let mut client_gone = false;
        let end: Result<Option<crate::Done>, ServiceError> = loop {
            let output = tokio::select! {
                o = outputs.next() => o,
                _ = stop.wait_for(|s| *s) => break Ok(None),
            };
            let event = match output {
                None => break Ok(None),
                Some(Err(e)) => break Err(e),
                Some(Ok(Output::Done(d))) => break Ok(Some(d)),
                Some(Ok(Output::Text { text, .. })) => {
                    content.push_str(&text);
                    SendEvent::Delta {
                        message_id: id,
                        text,
                        emitted_at: stamps.then(unix_seconds),
                    }
                }
                Some(Ok(Output::Reasoning { text })) => {
                    reasoning.push_str(&text);
                    SendEvent::Reasoning {
                        message_id: id,
                        text,
                    }
                }
                // No tools in sessions yet (issue 14 adds the tool step here).
                Some(Ok(_)) => continue,
            };
            if !client_gone && tx.send(event).await.is_err() {
                // The client left: the answer ends here, its text kept.
                client_gone = true;
                break Ok(None);
            }
            pieces += 1;
            if pieces >= FLUSH_TOKENS || flushed.elapsed() >= FLUSH_EVERY {
                let (c, r) = (content.clone(), non_empty(&reasoning));
                let _ = self
                    .db(move |s| s.write_partial(id, &c, r.as_deref()))
                    .await
                    .map_err(|e| tracing::warn!("session answer {id}: {e}"));
                pieces = 0;
                flushed = Instant::now();
            }
        };
        drop(outputs);
        let (finish_reason, usage, timings, error) = match end {
            Ok(Some(d)) => (
                d.finish.as_session().to_string(),
                Some(d.usage),
                serde_json::to_value(d.timings).ok(),
                None,
            ),
            Ok(None) => ("cancelled".to_string(), None, None, None),
            Err(e) => ("error".to_string(), None, None, Some(e)),
        };
        let finished = Finished {
            content,
            reasoning: non_empty(&reasoning),
            prompt_tokens: usage.map(|u| u.prompt_tokens),
            completion_tokens: usage.map(|u| u.completion_tokens),
            timings,
            finish_reason,
        };
        message.content = finished.content.clone();
        message.reasoning = finished.reasoning.clone();
        message.prompt_tokens = finished.prompt_tokens;
        message.completion_tokens = finished.completion_tokens;
        message.timings = finished.timings.clone();
        message.finish_reason = Some(finished.finish_reason.clone());
        if let Err(e) = self.db(move |s| s.finish_message(id, &finished)).await {
            tracing::warn!("session answer {id} not finished in the store: {e}");
        }
        if client_gone {
            return;
        }
        if let Some(error) = error {
            let _ = tx
                .send(SendEvent::Error {
                    message_id: id,
                    error,
                })
                .await;
        }
        let _ = tx.send(SendEvent::Done(message)).await;
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

fn new_user(text: &str, parent: Option<i64>) -> Message {
    Message {
        id: 0,
        parent_id: parent,
        role: "user".into(),
        content: text.to_string(),
        reasoning: None,
        model: None,
        prompt_tokens: None,
        completion_tokens: None,
        timings: None,
        finish_reason: None,
        left_out: None,
        created_at: 0,
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
