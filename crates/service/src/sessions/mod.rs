//! Server-side chat sessions (issue 13): conversations stored in SQLite as a tree of messages,
//! with branches (editing a message or regenerating an answer adds a sibling), rollback,
//! export/import and answers from several models side by side.
//!
//! - this module: the session and message types, create/list/get/patch/delete, branches;
//! - [`send`]: the send loop — a user message, the prompt built from the active branch
//!   ([`context`] leaves out what does not fit), one generation per model through the
//!   caller's [`Runner`] (the same `Request` → `Output` path as `/v1/chat/completions`),
//!   answers written to the store as they arrive;
//! - [`transfer`]: export (JSON, Markdown) and import.
//!
//! Finish reasons of answers: OpenAI's `stop`, `length`, `tool_calls`, plus `generating`
//! (being written), `cancelled` (stopped by `POST .../stop` or the client leaving: the text
//! so far is kept), `interrupted` (the server stopped while writing it: found at start) and
//! `error` (the generation failed midway; the text so far is kept).

pub mod context;
pub mod send;
pub mod transfer;

use crate::error::ServiceError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use store::{Store, StoredMessage, StoredSession};

pub use send::{Answer, Measure, Outputs, Runner, SendEvent, Sent};
pub use crate::agent::{ServerToolCall, ServerToolResult};

/// Characters of a title derived from the first message.
const TITLE_CHARS: usize = 60;
/// Sessions one list page holds at most.
pub const MAX_PAGE: u32 = 200;

/// A session's sampling parameters and system prompt; unset fields take the server's
/// defaults (and the model's own) when a message is sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_penalty: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Server tools the answers may call (issue 14): `true` (all), `false`, or names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_tools: Option<ServerTools>,
}

/// Which server tools (MCP tools and built-ins, `GET /api/tools`) a session's answers may
/// call: `true` (all of them), `false` (none), or a list of names (`"*"` = all). Names are
/// checked against the running registry when a message is sent (servers come and go).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ServerTools {
    Switch(bool),
    Names(Vec<String>),
}

/// Names one `server_tools` list may hold.
pub const MAX_SERVER_TOOL_NAMES: usize = 256;
/// Characters of one tool name.
const MAX_TOOL_NAME_CHARS: usize = 256;

impl<'de> Deserialize<'de> for ServerTools {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(d)? {
            Value::Bool(b) => Ok(ServerTools::Switch(b)),
            Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    other => Err(D::Error::custom(format!(
                        "server_tools: a tool name must be a string, not {other}"
                    ))),
                })
                .collect::<Result<_, _>>()
                .map(ServerTools::Names),
            _ => Err(D::Error::custom(
                "server_tools: true, false or a list of tool names (\"*\" = all)",
            )),
        }
    }
}

impl ServerTools {
    /// The names to offer (`"*"`: all); empty when tools are off.
    pub fn selection(&self) -> Vec<String> {
        match self {
            ServerTools::Switch(true) => vec!["*".to_string()],
            ServerTools::Switch(false) => Vec::new(),
            ServerTools::Names(n) => n.clone(),
        }
    }

    /// The list's size and names (what tools exist is checked at a send).
    pub fn check(&self) -> Result<(), ServiceError> {
        let ServerTools::Names(names) = self else {
            return Ok(());
        };
        if names.len() > MAX_SERVER_TOOL_NAMES {
            return Err(ServiceError::invalid(
                "server_tools",
                format!("at most {MAX_SERVER_TOOL_NAMES} tool names"),
            ));
        }
        if let Some(bad) = names
            .iter()
            .find(|n| n.trim().is_empty() || n.chars().count() > MAX_TOOL_NAME_CHARS)
        {
            return Err(ServiceError::invalid(
                "server_tools",
                format!(
                    "a tool name must be 1 to {MAX_TOOL_NAME_CHARS} characters ({} given)",
                    bad.chars().count()
                ),
            ));
        }
        Ok(())
    }
}

impl SessionParams {
    /// The engine's sampling parameters: `base` (the server's defaults for the model) with
    /// the session's values on top.
    pub fn sampling(&self, base: &crate::SamplingDefaults) -> engine::SamplingParams {
        let mut s = base.params();
        if let Some(v) = self.temperature {
            s.temperature = v;
        }
        if let Some(v) = self.top_p {
            s.top_p = v;
        }
        if let Some(v) = self.top_k {
            s.top_k = v;
        }
        if let Some(v) = self.min_p {
            s.min_p = v;
        }
        if let Some(v) = self.repeat_penalty {
            s.repeat_penalty = v;
        }
        if self.seed.is_some() {
            s.seed = self.seed;
        }
        s
    }

    /// The engine's own range checks (the one validation of sampling values), run when the
    /// parameters are set so a bad value is refused then rather than at every send.
    fn check(&self) -> Result<(), ServiceError> {
        if let Some(t) = &self.server_tools {
            t.check()?;
        }
        self.sampling(&crate::SamplingDefaults::from_config(
            &config::SamplingConfig::default(),
        ))
        .validate()
        .map_err(ServiceError::from)
    }
}

/// A session as the API shows it (and an import reads it: no unknown fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    pub id: String,
    pub title: String,
    pub models: Vec<String>,
    pub params: SessionParams,
    pub active_leaf: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// A tool call an answer made, as stored and shown: `arguments` is the JSON text the model
/// wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCallRecord {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// A message as the API shows it (and an import reads it: no unknown fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub role: String,
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Messages left out of the prompt this answer was written from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_out: Option<Vec<i64>>,
    /// Unix seconds.
    pub created_at: i64,
    /// Assistant messages: the tools called (server tools have a `tool` message below).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallRecord>>,
    /// Tool messages: the call this result answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Tool messages: the tool's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tool messages: whether the result is the tool's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
}

impl From<StoredMessage> for Message {
    fn from(m: StoredMessage) -> Self {
        Message {
            id: m.id,
            parent_id: m.parent_id,
            role: m.role,
            content: m.content,
            reasoning: m.reasoning,
            model: m.model,
            prompt_tokens: m.prompt_tokens,
            completion_tokens: m.completion_tokens,
            timings: m.timings,
            finish_reason: m.finish_reason,
            left_out: m.left_out,
            created_at: m.created_at,
            // A stored value that is not a list of calls is shown as none (the store checks
            // it is JSON; only this service writes it).
            tool_calls: m.tool_calls.and_then(|v| serde_json::from_value(v).ok()),
            tool_call_id: m.tool_call_id,
            name: m.tool_name,
            is_error: m.tool_error,
        }
    }
}

impl Message {
    fn stored(&self, session: &str) -> StoredMessage {
        StoredMessage {
            id: self.id,
            session_id: session.to_string(),
            parent_id: self.parent_id,
            role: self.role.clone(),
            content: self.content.clone(),
            reasoning: self.reasoning.clone(),
            model: self.model.clone(),
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            timings: self.timings.clone(),
            finish_reason: self.finish_reason.clone(),
            left_out: self.left_out.clone(),
            created_at: self.created_at,
            tool_calls: self
                .tool_calls
                .as_ref()
                .and_then(|c| serde_json::to_value(c).ok()),
            tool_call_id: self.tool_call_id.clone(),
            tool_name: self.name.clone(),
            tool_error: self.is_error,
        }
    }
}

fn session_of(s: StoredSession) -> Result<Session, ServiceError> {
    let params = serde_json::from_value(s.params)
        .map_err(|e| ServiceError::Internal(format!("stored params of session {}: {e}", s.id)))?;
    Ok(Session {
        id: s.id,
        title: s.title,
        models: s.models,
        params,
        active_leaf: s.active_leaf,
        created_at: s.created_at,
        updated_at: s.updated_at,
    })
}

fn stored_session(s: &Session) -> StoredSession {
    StoredSession {
        id: s.id.clone(),
        title: s.title.clone(),
        models: s.models.clone(),
        params: serde_json::to_value(&s.params).unwrap_or(Value::Null),
        active_leaf: s.active_leaf,
        created_at: s.created_at,
        updated_at: s.updated_at,
    }
}

/// What `create` takes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    #[serde(default)]
    pub title: Option<String>,
    /// One model, or several with `models`.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub params: SessionParams,
}

/// What `patch` changes (absent fields stay).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionPatch {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub models: Option<Vec<String>>,
    #[serde(default)]
    pub params: Option<SessionParams>,
    /// Switch to another branch: the message it ends with.
    #[serde(default)]
    pub active_leaf: Option<i64>,
}

/// One page of sessions, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub sessions: Vec<Session>,
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
}

/// What `history` shows.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub session: Session,
    /// The branch asked for (root first), or every message with `tree`.
    pub messages: Vec<Message>,
    /// The ids of the branch shown (with `tree`: the active branch).
    pub branch: Vec<i64>,
}

/// Which messages `history` shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum View {
    /// The path from the root to the active leaf.
    Active,
    /// The path from the root to this message.
    Branch(i64),
    /// Every message of the session.
    Tree,
}

/// A running answer, so `stop` can end it.
struct Running {
    session: String,
    stop: tokio::sync::watch::Sender<bool>,
}

/// The chat sessions: the store's rows, the answers being written, `[sessions]`.
pub struct Sessions {
    store: Arc<Store>,
    config: RwLock<config::SessionsConfig>,
    running: Mutex<HashMap<i64, Running>>,
    /// Sessions a send is getting answers ready for (see [`Claim`]).
    claims: Mutex<HashSet<String>>,
}

/// A session held by one send from its check until its answers are running (or it failed):
/// two sends at once cannot both pass the check and answer on one branch.
pub(super) struct Claim<'a> {
    sessions: &'a Sessions,
    id: String,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut claims = self.sessions.claims.lock().unwrap_or_else(|p| p.into_inner());
        claims.remove(&self.id);
    }
}

impl Sessions {
    /// Sessions in `store`. With `recover` (the server at start), answers a previous process
    /// left `generating` become `interrupted` (that process is gone; the text it wrote
    /// stays); commands that may run next to a live server pass false.
    pub fn new(
        store: Arc<Store>,
        config: config::SessionsConfig,
        recover: bool,
    ) -> Result<Arc<Self>, ServiceError> {
        if recover {
            let n = store.interrupt_generating().map_err(store_error)?;
            if n > 0 {
                tracing::info!(
                    "{n} chat answer(s) left unfinished by the last run marked interrupted"
                );
            }
        }
        Ok(Arc::new(Sessions {
            store,
            config: RwLock::new(config),
            running: Mutex::new(HashMap::new()),
            claims: Mutex::new(HashSet::new()),
        }))
    }

    /// Sessions in the models' store; `None` without a database.
    pub fn for_models(
        models: &crate::Models,
        config: config::SessionsConfig,
        recover: bool,
    ) -> Result<Option<Arc<Self>>, ServiceError> {
        models
            .store_handle()
            .map(|store| Sessions::new(store, config, recover))
            .transpose()
    }

    pub fn set_config(&self, config: config::SessionsConfig) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
    }

    fn config(&self) -> config::SessionsConfig {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs `f` on the store on a blocking thread (SQLite calls block).
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, store::StoreError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| ServiceError::Internal(format!("store: {e}")))?
            .map_err(store_error)
    }

    pub async fn create(&self, new: NewSession) -> Result<Session, ServiceError> {
        let models = model_list(new.model, new.models)?;
        new.params.check()?;
        let title = match new.title {
            Some(t) => check_title(&t)?,
            None => String::new(),
        };
        let now = unix_now();
        let session = Session {
            id: format!("sess_{}", uuid::Uuid::new_v4().simple()),
            title,
            models,
            params: new.params,
            active_leaf: None,
            created_at: now,
            updated_at: now,
        };
        let row = stored_session(&session);
        let max = u64::from(self.config().max_sessions);
        self.db(move |s| s.create_session(&row, max)).await?;
        Ok(session)
    }

    pub async fn list(
        &self,
        search: Option<String>,
        limit: Option<u32>,
        offset: Option<u64>,
    ) -> Result<Page, ServiceError> {
        let limit = limit.unwrap_or(50);
        if limit == 0 || limit > MAX_PAGE {
            return Err(ServiceError::invalid(
                "limit",
                format!("must be between 1 and {MAX_PAGE}"),
            ));
        }
        let offset = offset.unwrap_or(0);
        let search = search.filter(|s| !s.is_empty());
        if search.as_ref().is_some_and(|s| s.chars().count() > MAX_TITLE_CHARS) {
            return Err(ServiceError::invalid(
                "search",
                format!("at most {MAX_TITLE_CHARS} characters (the longest title)"),
            ));
        }
        let page = self
            .db(move |s| s.sessions(search.as_deref(), limit, offset))
            .await?;
        Ok(Page {
            sessions: page
                .sessions
                .into_iter()
                .map(session_of)
                .collect::<Result<_, _>>()?,
            total: page.total,
            limit,
            offset,
        })
    }

    /// The session, or 404 naming it.
    pub async fn get(&self, id: &str) -> Result<Session, ServiceError> {
        let key = id.to_string();
        match self.db(move |s| s.session(&key)).await? {
            Some(s) => session_of(s),
            None => Err(unknown_session(id)),
        }
    }

    /// The session and every message of it.
    async fn load(&self, id: &str) -> Result<(Session, Vec<Message>), ServiceError> {
        let session = self.get(id).await?;
        let key = id.to_string();
        let messages = self.db(move |s| s.session_messages(&key)).await?;
        Ok((session, messages.into_iter().map(Message::from).collect()))
    }

    pub async fn history(&self, id: &str, view: View) -> Result<History, ServiceError> {
        let (session, messages) = self.load(id).await?;
        let active = branch(&messages, session.active_leaf)?;
        let (shown, ids) = match view {
            View::Active => (pick(&messages, &active), active),
            View::Branch(leaf) => {
                let ids = branch(&messages, Some(leaf))?;
                (pick(&messages, &ids), ids)
            }
            View::Tree => (messages, active),
        };
        Ok(History {
            session,
            messages: shown,
            branch: ids,
        })
    }

    pub async fn patch(&self, id: &str, patch: SessionPatch) -> Result<Session, ServiceError> {
        let (mut session, messages) = self.load(id).await?;
        if let Some(t) = patch.title {
            session.title = check_title(&t)?;
        }
        if patch.model.is_some() || patch.models.is_some() {
            session.models = model_list(patch.model, patch.models.unwrap_or_default())?;
        }
        if let Some(p) = patch.params {
            p.check()?;
            session.params = p;
        }
        let row = stored_session(&session);
        self.db(move |s| s.update_session(&row)).await?;
        if let Some(leaf) = patch.active_leaf {
            find(&messages, leaf)?;
            self.ensure_idle(id)?;
            let key = id.to_string();
            self.db(move |s| s.set_active_leaf(&key, Some(leaf))).await?;
        }
        self.get(id).await
    }

    pub async fn delete(&self, id: &str) -> Result<(), ServiceError> {
        self.stop(id);
        let key = id.to_string();
        if self.db(move |s| s.delete_session(&key)).await? {
            Ok(())
        } else {
            Err(unknown_session(id))
        }
    }

    /// Drops the last `n` messages of the active branch (with the branches below them); the
    /// active leaf moves up. Returns the ids dropped.
    pub async fn rollback(&self, id: &str, n: u32) -> Result<Vec<i64>, ServiceError> {
        if n == 0 {
            return Err(ServiceError::invalid("n", "must be at least 1"));
        }
        self.ensure_idle(id)?;
        let (session, messages) = self.load(id).await?;
        let active = branch(&messages, session.active_leaf)?;
        if n as usize > active.len() {
            return Err(ServiceError::invalid(
                "n",
                format!(
                    "the active branch holds {} messages, cannot drop {n}",
                    active.len()
                ),
            ));
        }
        let keep = active.len() - n as usize;
        let dropped = active[keep..].to_vec();
        let leaf = keep.checked_sub(1).map(|i| active[i]);
        let key = id.to_string();
        let ids = dropped.clone();
        self.db(move |s| s.delete_messages(&key, &ids, leaf)).await?;
        Ok(dropped)
    }

    /// Stops the session's running answers (their text so far stays, `cancelled`); how many.
    pub fn stop(&self, id: &str) -> usize {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running
            .values()
            .filter(|r| r.session == id)
            .map(|r| r.stop.send_replace(true))
            .count()
    }

    /// Refuses a change of the active branch while an answer is being written to it or a
    /// send is getting one ready.
    fn ensure_idle(&self, id: &str) -> Result<(), ServiceError> {
        let claims = self.claims.lock().unwrap_or_else(|p| p.into_inner());
        self.idle(id, &claims)
    }

    /// Holds the session for a send (see [`Claim`]); refused as [`Self::ensure_idle`] refuses.
    pub(super) fn claim(&self, id: &str) -> Result<Claim<'_>, ServiceError> {
        let mut claims = self.claims.lock().unwrap_or_else(|p| p.into_inner());
        self.idle(id, &claims)?;
        claims.insert(id.to_string());
        Ok(Claim {
            sessions: self,
            id: id.to_string(),
        })
    }

    /// With the claims locked, so a claim and the check of the running answers are one step.
    fn idle(&self, id: &str, claims: &HashSet<String>) -> Result<(), ServiceError> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if claims.contains(id) || running.values().any(|r| r.session == id) {
            return Err(ServiceError::Conflict(format!(
                "session {id} is writing an answer; wait for it or stop it \
                 (POST /api/chat/sessions/{id}/stop)"
            )));
        }
        Ok(())
    }

    /// The characters one message may hold (`sessions.max_message_chars`), checked before
    /// anything is stored or queued.
    fn check_message(&self, text: &str, field: &str) -> Result<(), ServiceError> {
        if text.trim().is_empty() {
            return Err(ServiceError::invalid(field, "must not be empty"));
        }
        crate::limits::check_message_chars(text, field, &self.config())
    }
}

/// The ids from the root to `leaf` (empty for `None`).
fn branch(messages: &[Message], leaf: Option<i64>) -> Result<Vec<i64>, ServiceError> {
    let mut ids = Vec::new();
    let mut at = leaf;
    while let Some(id) = at {
        // A parent always has a smaller id, so this ends even on a hand-edited database.
        if ids.len() > messages.len() {
            return Err(ServiceError::Internal("a message tree with a loop".into()));
        }
        let m = find(messages, id)?;
        ids.push(id);
        at = m.parent_id;
    }
    ids.reverse();
    Ok(ids)
}

fn find(messages: &[Message], id: i64) -> Result<&Message, ServiceError> {
    messages
        .iter()
        .find(|m| m.id == id)
        .ok_or_else(|| ServiceError::NotFound(format!("message {id} is not a message of this session")))
}

fn pick(messages: &[Message], ids: &[i64]) -> Vec<Message> {
    ids.iter()
        .filter_map(|id| messages.iter().find(|m| m.id == *id).cloned())
        .collect()
}

fn model_list(model: Option<String>, models: Vec<String>) -> Result<Vec<String>, ServiceError> {
    // Each model once, in the order first named ([a, b, a] is a and b).
    let mut all: Vec<String> = Vec::new();
    for m in model.into_iter().chain(models) {
        if !all.contains(&m) {
            all.push(m);
        }
    }
    if all.iter().any(|m| m.trim().is_empty()) {
        return Err(ServiceError::invalid("models", "a model name must not be empty"));
    }
    if all.len() > send::MAX_MODELS {
        return Err(ServiceError::invalid(
            "models",
            format!("at most {} models per session", send::MAX_MODELS),
        ));
    }
    Ok(all)
}

/// Characters of a title.
const MAX_TITLE_CHARS: usize = 500;

fn check_title(t: &str) -> Result<String, ServiceError> {
    if t.chars().count() > MAX_TITLE_CHARS {
        return Err(ServiceError::invalid(
            "title",
            format!("must be at most {MAX_TITLE_CHARS} characters"),
        ));
    }
    Ok(t.trim().to_string())
}

/// A title from the first message: its first line, cut at [`TITLE_CHARS`].
fn derive_title(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    if line.chars().count() <= TITLE_CHARS {
        line.to_string()
    } else {
        let cut: String = line.chars().take(TITLE_CHARS - 1).collect();
        format!("{}…", cut.trim_end())
    }
}

pub(crate) fn unknown_session(id: &str) -> ServiceError {
    ServiceError::NotFound(format!("chat session '{id}' not found"))
}

fn store_error(e: store::StoreError) -> ServiceError {
    match e {
        store::StoreError::Full(m) => ServiceError::Conflict(m),
        store::StoreError::Invalid(m) => ServiceError::Rejected(m),
        e => ServiceError::Internal(format!("store: {e}")),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests;
