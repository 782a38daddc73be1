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
            if !["system", "user", "assistant"].contains(&m.role.as_str()) {
                return Err(ServiceError::invalid(
                    format!("messages[{i}].role"),
                    "must be system, user or assistant",
                ));
            }
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
            other => other.to_string(),
        };
        out.push_str(&format!("## {who}\n\n"));
        if let Some(r) = m.reasoning.as_deref().filter(|r| !r.is_empty()) {
            for line in r.lines() {
                out.push_str(&format!("> {line}\n"));
            }
            out.push('\n');
        }
        out.push_str(m.content.trim_end());
        out.push_str("\n\n");
        if let Some(f) = m.finish_reason.as_deref().filter(|f| *f != "stop") {
            out.push_str(&format!("_(finish reason: {f})_\n\n"));
        }
    }
    out
}
