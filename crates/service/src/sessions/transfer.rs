//! Export (JSON: the whole tree, re-importable; Markdown: the active branch, to read) and
//! import of the JSON.

use super::{History, Message, Session, Sessions, View, stored_session};
use crate::error::ServiceError;
use serde::{Deserialize, Serialize};

/// The JSON export's `format` value.
pub const FORMAT: &str = "llama-dashboard.chat-session";
/// The JSON export's version.
pub const VERSION: u32 = 1;
/// Messages one import may hold.
pub const MAX_IMPORT_MESSAGES: usize = 100_000;

/// A session as exported: its settings and every message, parents before children.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    pub format: String,
    pub version: u32,
    pub session: Session,
    pub messages: Vec<Message>,
}

impl Sessions {
    pub async fn export_json(&self, id: &str) -> Result<Export, ServiceError> {
        let History {
            session, messages, ..
        } = self.history(id, View::Tree).await?;
        Ok(Export {
            format: FORMAT.into(),
            version: VERSION,
            session,
            messages,
        })
    }

    /// The active branch as Markdown: a heading per message, the model and finish reason of
    /// each answer.
    pub async fn export_markdown(&self, id: &str) -> Result<String, ServiceError> {
        let History {
            session,
            messages,
            ..
        } = self.history(id, View::Active).await?;
        Ok(markdown(&session, &messages))
    }

    /// Stores an export as a new session (a new id; the tree, texts and settings as they
    /// were). Checked whole before anything is stored.
    pub async fn import(&self, export: Export) -> Result<Session, ServiceError> {
        if export.format != FORMAT || export.version != VERSION {
            return Err(ServiceError::invalid(
                "format",
                format!("expected format \"{FORMAT}\" version {VERSION}"),
            ));
        }
        if export.messages.len() > MAX_IMPORT_MESSAGES {
            return Err(ServiceError::invalid(
                "messages",
                format!("at most {MAX_IMPORT_MESSAGES} messages"),
            ));
        }
        export.session.params.check()?;
        super::model_list(None, export.session.models.clone())?;
        let title = super::check_title(&export.session.title)?;
        let mut seen = std::collections::HashSet::new();
        for (i, m) in export.messages.iter().enumerate() {
            let field = format!("messages[{i}].content");
            crate::limits::check_message_chars(&m.content, &field, &self.config())?;
            if !store::sessions::ROLES.contains(&m.role.as_str()) {
                return Err(ServiceError::invalid(
                    format!("messages[{i}].role"),
                    "must be system, user, assistant or tool",
                ));
            }
            check_tool_fields(i, m, &self.config())?;
            if let Some(p) = m.parent_id
                && !seen.contains(&p)
            {
                return Err(ServiceError::invalid(
                    format!("messages[{i}].parent_id"),
                    format!("message {p} must come before its children"),
                ));
            }
            if !seen.insert(m.id) {
                return Err(ServiceError::invalid(
                    format!("messages[{i}].id"),
                    format!("id {} appears twice", m.id),
                ));
            }
        }
        if let Some(leaf) = export.session.active_leaf
            && !seen.contains(&leaf)
        {
            return Err(ServiceError::invalid(
                "session.active_leaf",
                format!("{leaf} is not one of the messages"),
            ));
        }
        let mut session = export.session;
        session.id = format!("sess_{}", uuid::Uuid::new_v4().simple());
        session.title = title;
        let row = stored_session(&session);
        let rows: Vec<_> = export
            .messages
            .iter()
            .map(|m| {
                let mut m = m.clone();
                // An answer that was being written when exported is not being written now.
                if m.finish_reason.as_deref() == Some(store::sessions::GENERATING) {
                    m.finish_reason = Some(store::sessions::INTERRUPTED.into());
                }
                m.stored(&session.id)
            })
            .collect();
        let max = u64::from(self.config().max_sessions);
        let stored = self
            .db(move |s| s.import_session(&row, &rows, max))
            .await?;
        self.get(&stored.id).await
    }
}

/// A tool message answers a call and names it; tool calls belong to assistant messages and
/// are as bounded as a message's text.
fn check_tool_fields(
    i: usize,
    m: &Message,
    config: &config::SessionsConfig,
) -> Result<(), ServiceError> {
    let is_tool = m.role == "tool";
    if is_tool != m.tool_call_id.is_some() {
        return Err(ServiceError::invalid(
            format!("messages[{i}].tool_call_id"),
            "a tool message needs tool_call_id, and only a tool message has one",
        ));
    }
    if !is_tool && (m.name.is_some() || m.is_error.is_some()) {
        return Err(ServiceError::invalid(
            format!("messages[{i}]"),
            "name and is_error belong to tool messages",
        ));
    }
    if let Some(calls) = &m.tool_calls {
        if m.role != "assistant" {
            return Err(ServiceError::invalid(
                format!("messages[{i}].tool_calls"),
                "only assistant messages call tools",
            ));
        }
        if calls.len() > super::MAX_SERVER_TOOL_NAMES {
            return Err(ServiceError::invalid(
                format!("messages[{i}].tool_calls"),
                format!("at most {} calls", super::MAX_SERVER_TOOL_NAMES),
            ));
        }
        for (j, c) in calls.iter().enumerate() {
            let field = format!("messages[{i}].tool_calls[{j}]");
            let text = format!("{}{}{}", c.id, c.name, c.arguments);
            crate::limits::check_message_chars(&text, &field, config)?;
        }
    }
    for (field, v) in [("tool_call_id", &m.tool_call_id), ("name", &m.name)] {
        if let Some(v) = v {
            crate::limits::check_message_chars(v, &format!("messages[{i}].{field}"), config)?;
        }
    }
    Ok(())
}

/// The Markdown of a branch.
pub fn markdown(session: &Session, messages: &[Message]) -> String {
    let mut out = format!(
        "# {}\n\n",
        if session.title.is_empty() {
            "Chat session"
        } else {
            &session.title
        }
    );
    out.push_str(&format!("- Session: `{}`\n", session.id));
    if !session.models.is_empty() {
        out.push_str(&format!("- Models: {}\n", session.models.join(", ")));
    }
    out.push('\n');
    if let Some(system) = session.params.system_prompt.as_deref().filter(|s| !s.is_empty()) {
        out.push_str(&format!("## System\n\n{system}\n\n"));
    }
    for m in messages {
        let who = match m.role.as_str() {
            "user" => "User".to_string(),
            "assistant" => match &m.model {
                Some(model) => format!("Assistant ({model})"),
                None => "Assistant".to_string(),
            },
            "tool" => format!(
                "Tool result: {}{}",
                m.name.as_deref().unwrap_or("tool"),
                if m.is_error == Some(true) { " (error)" } else { "" }
            ),
            other => other.to_string(),
        };
        if m.role == "tool" {
            out.push_str(&format!("## {who}\n\n{}\n", fenced(&m.content)));
            continue;
        }
        out.push_str(&format!("## {who}\n\n"));
        if let Some(r) = m.reasoning.as_deref().filter(|r| !r.is_empty()) {
            for line in r.lines() {
                out.push_str(&format!("> {line}\n"));
            }
            out.push('\n');
        }
        if !m.content.trim().is_empty() {
            out.push_str(m.content.trim_end());
            out.push_str("\n\n");
        }
        for c in m.tool_calls.iter().flatten() {
            out.push_str(&format!("**Tool call** `{}`:\n\n{}\n", c.name, fenced(&c.arguments)));
        }
        if let Some(f) = m.finish_reason.as_deref().filter(|f| !["stop", "tool_calls"].contains(f)) {
            out.push_str(&format!("_(finish reason: {f})_\n\n"));
        }
    }
    out
}

/// `text` in a fenced code block whose fence is longer than any backtick run inside it.
fn fenced(text: &str) -> String {
    let longest = text
        .split(|c| c != '`')
        .map(str::len)
        .max()
        .unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}\n{}\n{fence}\n", text.trim_end())
}
