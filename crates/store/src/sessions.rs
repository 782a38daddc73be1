//! Chat sessions as stored (migration 004): a session row and its messages, a tree by parent
//! pointer. The store keeps rows; what a branch is, what is sent to a model and what may be
//! edited is the service's (`service::sessions`).

use rusqlite::{OptionalExtension, Row, Transaction, params};
use serde_json::Value;

use crate::db::Store;
use crate::error::StoreError;
use crate::now;

/// The finish reason of an answer still being written.
pub const GENERATING: &str = "generating";
/// What [`Store::interrupt_generating`] turns [`GENERATING`] into.
pub const INTERRUPTED: &str = "interrupted";

#[derive(Debug, Clone, PartialEq)]
pub struct StoredSession {
    pub id: String,
    pub title: String,
    /// The models it talks to (the first is the default).
    pub models: Vec<String>,
    /// Sampling parameters and the system prompt (the service's JSON object).
    pub params: Value,
    pub active_leaf: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredMessage {
    pub id: i64,
    pub session_id: String,
    pub parent_id: Option<i64>,
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    pub content: String,
    pub reasoning: Option<String>,
    pub model: Option<String>,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    pub timings: Option<Value>,
    pub finish_reason: Option<String>,
    /// Message ids left out of the prompt this answer was written from.
    pub left_out: Option<Vec<i64>>,
    /// Unix seconds.
    pub created_at: i64,
    /// Assistant messages: the tool calls made (the service's JSON array).
    pub tool_calls: Option<Value>,
    /// Tool messages: the call this result answers, the tool, whether it is an error.
    pub tool_call_id: Option<String>,
    pub tool_name: Option<String>,
    pub tool_error: Option<bool>,
}

/// How an answer ended, written once when it does.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Finished {
    pub content: String,
    pub reasoning: Option<String>,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    pub timings: Option<Value>,
    pub finish_reason: String,
    /// Calls the answer ended with (kept as they are when `None`).
    pub tool_calls: Option<Value>,
}

/// One page of sessions, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPage {
    pub sessions: Vec<StoredSession>,
    /// Sessions matching the search, all pages together.
    pub total: u64,
}

const SESSION_COLUMNS: &str = "id, title, models, params, active_leaf, created_at, updated_at";
const MESSAGE_COLUMNS: &str = "id, session_id, parent_id, role, content, reasoning, model, \
     prompt_tokens, completion_tokens, timings, finish_reason, left_out, created_at, \
     tool_calls, tool_call_id, tool_name, tool_error";

/// The roles a session message may have.
pub const ROLES: [&str; 4] = ["system", "user", "assistant", "tool"];

impl Store {
    /// Records a new session, refused ([`StoreError::Full`]) when `max` sessions exist.
    pub fn create_session(&self, s: &StoredSession, max: u64) -> Result<(), StoreError> {
        self.write(|tx| {
            check_room(tx, max)?;
            insert_session(tx, s)
        })
    }

    /// Records a whole session at once (an import): its messages keep their order and tree
    /// but get new ids; `s.active_leaf` names one of `messages`' ids. Returns the new row.
    pub fn import_session(
        &self,
        s: &StoredSession,
        messages: &[StoredMessage],
        max: u64,
    ) -> Result<StoredSession, StoreError> {
        self.write(|tx| {
            check_room(tx, max)?;
            let mut row = s.clone();
            row.active_leaf = None;
            insert_session(tx, &row)?;
            let mut new_ids = std::collections::HashMap::new();
            for m in messages {
                let parent = match m.parent_id {
                    None => None,
                    Some(p) => Some(*new_ids.get(&p).ok_or_else(|| {
                        StoreError::Invalid(format!(
                            "message {} names parent {p}, which does not come before it",
                            m.id
                        ))
                    })?),
                };
                let mut copy = m.clone();
                copy.session_id = s.id.clone();
                copy.parent_id = parent;
                copy.left_out = m
                    .left_out
                    .as_ref()
                    .map(|ids| ids.iter().filter_map(|i| new_ids.get(i).copied()).collect());
                let id = insert_message(tx, &copy)?;
                new_ids.insert(m.id, id);
            }
            row.active_leaf = match s.active_leaf {
                None => None,
                Some(leaf) => Some(*new_ids.get(&leaf).ok_or_else(|| {
                    StoreError::Invalid(format!("the active leaf {leaf} is not a message"))
                })?),
            };
            tx.execute(
                "UPDATE sessions SET active_leaf = ?2 WHERE id = ?1",
                params![row.id, row.active_leaf],
            )?;
            Ok(row)
        })
    }

    pub fn session(&self, id: &str) -> Result<Option<StoredSession>, StoreError> {
        let conn = self.lock();
        let row = conn
            .query_row(
                &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"),
                [id],
                read_session,
            )
            .optional()?;
        row.map(decode_session).transpose()
    }

    /// Sessions, most recently updated first; `search` matches titles (case-insensitive
    /// substring).
    pub fn sessions(
        &self,
        search: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> Result<SessionPage, StoreError> {
        let conn = self.lock();
        // LIKE's wildcards in the search are matched literally.
        let pattern = search.map(|s| {
            let escaped = s
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        let filter = "(?1 IS NULL OR title LIKE ?1 ESCAPE '\\')";
        let total: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM sessions WHERE {filter}"),
            [&pattern],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE {filter}
             ORDER BY updated_at DESC, rowid DESC LIMIT ?2 OFFSET ?3"
        ))?;
        let rows = stmt.query_map(
            params![pattern, limit as i64, offset.min(i64::MAX as u64) as i64],
            read_session,
        )?;
        let sessions = rows
            .map(|r| r.map_err(StoreError::from).and_then(decode_session))
            .collect::<Result<_, _>>()?;
        Ok(SessionPage {
            sessions,
            total: total as u64,
        })
    }

    /// Writes the session's title, models and params (the rest of `s` is ignored); false
    /// when there is no such session.
    pub fn update_session(&self, s: &StoredSession) -> Result<bool, StoreError> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE sessions SET title = ?2, models = ?3, params = ?4, updated_at = ?5
                 WHERE id = ?1",
                params![
                    s.id,
                    s.title,
                    Value::from(s.models.clone()).to_string(),
                    s.params.to_string(),
                    now()
                ],
            )? > 0)
        })
    }

    /// Deletes a session and its messages; false when there was none.
    pub fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        self.write(|tx| Ok(tx.execute("DELETE FROM sessions WHERE id = ?1", [id])? > 0))
    }

    /// Every message of a session (the whole tree), in the order they were added.
    pub fn session_messages(&self, session: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM session_messages WHERE session_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([session], read_message)?;
        rows.map(|r| r.map_err(StoreError::from).and_then(decode_message))
            .collect()
    }

    /// Adds a message (its `id` and `created_at` are set here) and, with `activate`, makes it
    /// the session's active leaf. Returns the stored message.
    pub fn add_message(
        &self,
        m: &StoredMessage,
        activate: bool,
    ) -> Result<StoredMessage, StoreError> {
        self.write(|tx| {
            let mut m = m.clone();
            m.created_at = now();
            m.id = insert_message(tx, &m)?;
            let set_leaf = if activate { Some(m.id) } else { None };
            let n = tx.execute(
                "UPDATE sessions SET active_leaf = COALESCE(?2, active_leaf), updated_at = ?3
                 WHERE id = ?1",
                params![m.session_id, set_leaf, now()],
            )?;
            if n == 0 {
                return Err(StoreError::Invalid(format!(
                    "no chat session {}",
                    m.session_id
                )));
            }
            Ok(m)
        })
    }

    /// The text written so far of an answer still being generated.
    pub fn write_partial(
        &self,
        id: i64,
        content: &str,
        reasoning: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE session_messages SET content = ?2, reasoning = ?3 WHERE id = ?1",
                params![id, content, reasoning],
            )?;
            Ok(())
        })
    }

    /// Writes how an answer ended.
    pub fn finish_message(&self, id: i64, f: &Finished) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE session_messages SET content = ?2, reasoning = ?3, prompt_tokens = ?4,
                 completion_tokens = ?5, timings = ?6, finish_reason = ?7,
                 tool_calls = COALESCE(?8, tool_calls) WHERE id = ?1",
                params![
                    id,
                    f.content,
                    f.reasoning,
                    f.prompt_tokens,
                    f.completion_tokens,
                    f.timings.as_ref().map(Value::to_string),
                    f.finish_reason,
                    f.tool_calls.as_ref().map(Value::to_string)
                ],
            )?;
            Ok(())
        })
    }

    /// Records the tool calls of an answer still being written (before the tools run, so a
    /// stop or a crash during the call keeps them).
    pub fn set_tool_calls(&self, id: i64, calls: &Value) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE session_messages SET tool_calls = ?2 WHERE id = ?1",
                params![id, calls.to_string()],
            )?;
            Ok(())
        })
    }

    /// Records the ids left out of the prompt an answer is written from.
    pub fn set_left_out(&self, id: i64, left_out: &[i64]) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE session_messages SET left_out = ?2 WHERE id = ?1",
                params![id, Value::from(left_out.to_vec()).to_string()],
            )?;
            Ok(())
        })
    }

    /// Makes `leaf` (a message of the session, or none) its active leaf.
    pub fn set_active_leaf(&self, session: &str, leaf: Option<i64>) -> Result<bool, StoreError> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE sessions SET active_leaf = ?2, updated_at = ?3 WHERE id = ?1",
                params![session, leaf, now()],
            )? > 0)
        })
    }

    /// Deletes messages of a session (and the branches below them) and sets its active leaf,
    /// in one transaction.
    pub fn delete_messages(
        &self,
        session: &str,
        ids: &[i64],
        leaf: Option<i64>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            for id in ids {
                tx.execute(
                    "DELETE FROM session_messages WHERE id = ?1 AND session_id = ?2",
                    params![id, session],
                )?;
            }
            tx.execute(
                "UPDATE sessions SET active_leaf = ?2, updated_at = ?3 WHERE id = ?1",
                params![session, leaf, now()],
            )?;
            Ok(())
        })
    }

    /// Marks every answer still `generating` as `interrupted` (at start: the process that
    /// wrote them is gone, what it wrote stays). Returns how many.
    pub fn interrupt_generating(&self) -> Result<usize, StoreError> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE session_messages SET finish_reason = ?2 WHERE finish_reason = ?1",
                params![GENERATING, INTERRUPTED],
            )?)
        })
    }
}

fn check_room(tx: &Transaction<'_>, max: u64) -> Result<(), StoreError> {
    let count: i64 = tx.query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))?;
    if count as u64 >= max {
        return Err(StoreError::Full(format!(
            "the database holds {count} chat sessions, the most `sessions.max_sessions` allows; \
             delete some or raise the setting"
        )));
    }
    Ok(())
}

fn insert_session(tx: &Transaction<'_>, s: &StoredSession) -> Result<(), StoreError> {
    if s.id.is_empty() {
        return Err(StoreError::Invalid("a session id must not be empty".into()));
    }
    tx.execute(
        "INSERT INTO sessions (id, title, models, params, active_leaf, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            s.id,
            s.title,
            Value::from(s.models.clone()).to_string(),
            s.params.to_string(),
            s.active_leaf,
            s.created_at,
            s.updated_at
        ],
    )?;
    Ok(())
}

fn insert_message(tx: &Transaction<'_>, m: &StoredMessage) -> Result<i64, StoreError> {
    if !ROLES.contains(&m.role.as_str()) {
        return Err(StoreError::Invalid(format!(
            "{:?} is not a session message role (system, user, assistant or tool)",
            m.role
        )));
    }
    if let Some(parent) = m.parent_id {
        let owner: Option<String> = tx
            .query_row(
                "SELECT session_id FROM session_messages WHERE id = ?1",
                [parent],
                |r| r.get(0),
            )
            .optional()?;
        if owner.as_deref() != Some(m.session_id.as_str()) {
            return Err(StoreError::Invalid(format!(
                "message {parent} is not a message of session {}",
                m.session_id
            )));
        }
    }
    tx.execute(
        "INSERT INTO session_messages (session_id, parent_id, role, content, reasoning, model,
             prompt_tokens, completion_tokens, timings, finish_reason, left_out, created_at,
             tool_calls, tool_call_id, tool_name, tool_error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            m.session_id,
            m.parent_id,
            m.role,
            m.content,
            m.reasoning,
            m.model,
            m.prompt_tokens,
            m.completion_tokens,
            m.timings.as_ref().map(Value::to_string),
            m.finish_reason,
            m.left_out
                .as_ref()
                .map(|ids| Value::from(ids.clone()).to_string()),
            m.created_at,
            m.tool_calls.as_ref().map(Value::to_string),
            m.tool_call_id,
            m.tool_name,
            m.tool_error
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

type SessionRow = (String, String, String, String, Option<i64>, i64, i64);

fn read_session(r: &Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn corrupt(id: &str, column: &'static str, e: impl ToString) -> StoreError {
    StoreError::Corrupt {
        model_id: format!("session {id}"),
        column,
        reason: e.to_string(),
    }
}

fn decode_session(
    (id, title, models, params, active_leaf, created_at, updated_at): SessionRow,
) -> Result<StoredSession, StoreError> {
    let models = serde_json::from_str(&models).map_err(|e| corrupt(&id, "session models", e))?;
    let params = serde_json::from_str(&params).map_err(|e| corrupt(&id, "session params", e))?;
    Ok(StoredSession {
        id,
        title,
        models,
        params,
        active_leaf,
        created_at,
        updated_at,
    })
}

struct MessageRow {
    m: StoredMessage,
    timings: Option<String>,
    left_out: Option<String>,
    tool_calls: Option<String>,
}

fn read_message(r: &Row<'_>) -> rusqlite::Result<MessageRow> {
    Ok(MessageRow {
        m: StoredMessage {
            id: r.get(0)?,
            session_id: r.get(1)?,
            parent_id: r.get(2)?,
            role: r.get(3)?,
            content: r.get(4)?,
            reasoning: r.get(5)?,
            model: r.get(6)?,
            prompt_tokens: r.get(7)?,
            completion_tokens: r.get(8)?,
            timings: None,
            finish_reason: r.get(10)?,
            left_out: None,
            created_at: r.get(12)?,
            tool_calls: None,
            tool_call_id: r.get(14)?,
            tool_name: r.get(15)?,
            tool_error: r.get(16)?,
        },
        timings: r.get(9)?,
        left_out: r.get(11)?,
        tool_calls: r.get(13)?,
    })
}

fn decode_message(row: MessageRow) -> Result<StoredMessage, StoreError> {
    let MessageRow {
        mut m,
        timings,
        left_out,
        tool_calls,
    } = row;
    let id = m.session_id.clone();
    if let Some(t) = timings {
        m.timings = Some(serde_json::from_str(&t).map_err(|e| corrupt(&id, "timings", e))?);
    }
    if let Some(l) = left_out {
        m.left_out = Some(serde_json::from_str(&l).map_err(|e| corrupt(&id, "left_out", e))?);
    }
    if let Some(c) = tool_calls {
        m.tool_calls = Some(serde_json::from_str(&c).map_err(|e| corrupt(&id, "tool_calls", e))?);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, title: &str) -> StoredSession {
        StoredSession {
            id: id.into(),
            title: title.into(),
            models: vec!["m".into()],
            params: serde_json::json!({"temperature": 0.5}),
            active_leaf: None,
            created_at: 1,
            updated_at: 1,
        }
    }

    fn message(session: &str, parent: Option<i64>, role: &str, text: &str) -> StoredMessage {
        StoredMessage {
            session_id: session.into(),
            parent_id: parent,
            role: role.into(),
            content: text.into(),
            ..Default::default()
        }
    }

    #[test]
    fn messages_form_a_tree_and_the_session_remembers_its_leaf() {
        let store = Store::open_in_memory().unwrap();
        store.create_session(&session("s", "Hello"), 10).unwrap();
        let q = store
            .add_message(&message("s", None, "user", "hi"), true)
            .unwrap();
        let a1 = store
            .add_message(&message("s", Some(q.id), "assistant", "one"), true)
            .unwrap();
        let a2 = store
            .add_message(&message("s", Some(q.id), "assistant", "two"), false)
            .unwrap();
        let all = store.session_messages("s").unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].parent_id, Some(q.id));
        assert_eq!(all[2].parent_id, Some(q.id));
        assert_eq!(store.session("s").unwrap().unwrap().active_leaf, Some(a1.id));
        store.set_active_leaf("s", Some(a2.id)).unwrap();
        assert_eq!(store.session("s").unwrap().unwrap().active_leaf, Some(a2.id));
        // A parent from another session is refused.
        store.create_session(&session("t", "Other"), 10).unwrap();
        let err = store
            .add_message(&message("t", Some(q.id), "user", "x"), true)
            .unwrap_err();
        assert!(err.to_string().contains("not a message of session t"), "{err}");
        // Deleting the session deletes its messages.
        assert!(store.delete_session("s").unwrap());
        assert!(store.session_messages("s").unwrap().is_empty());
    }

    #[test]
    fn the_session_count_is_capped_and_listing_searches_titles_newest_first() {
        let store = Store::open_in_memory().unwrap();
        let mut a = session("a", "Rust 100%_ questions");
        a.updated_at = 5;
        let mut b = session("b", "rust again");
        b.updated_at = 9;
        store.create_session(&a, 3).unwrap();
        store.create_session(&b, 3).unwrap();
        store.create_session(&session("c", "cooking"), 3).unwrap();
        let err = store.create_session(&session("d", "x"), 3).unwrap_err();
        assert!(matches!(err, StoreError::Full(_)), "{err}");
        assert!(err.to_string().contains("sessions.max_sessions"));
        let page = store.sessions(Some("RUST"), 10, 0).unwrap();
        assert_eq!(page.total, 2);
        let ids: Vec<_> = page.sessions.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["b", "a"]);
        // Wildcards are literal.
        assert_eq!(store.sessions(Some("%_"), 10, 0).unwrap().total, 1);
        let second = store.sessions(None, 1, 1).unwrap();
        assert_eq!(second.total, 3);
        assert_eq!(second.sessions[0].id, "a");
    }

    #[test]
    fn answers_left_generating_become_interrupted_with_their_text() {
        let store = Store::open_in_memory().unwrap();
        store.create_session(&session("s", "t"), 10).unwrap();
        let q = store
            .add_message(&message("s", None, "user", "hi"), true)
            .unwrap();
        let mut a = message("s", Some(q.id), "assistant", "");
        a.finish_reason = Some(GENERATING.into());
        let a = store.add_message(&a, true).unwrap();
        store.write_partial(a.id, "partial ans", None).unwrap();
        assert_eq!(store.interrupt_generating().unwrap(), 1);
        let got = &store.session_messages("s").unwrap()[1];
        assert_eq!(got.content, "partial ans");
        assert_eq!(got.finish_reason.as_deref(), Some(INTERRUPTED));
        assert_eq!(store.interrupt_generating().unwrap(), 0);
    }

    /// A database written before tool messages (version 5) keeps every message through the
    /// rebuild of migration 006, and then takes `tool` messages.
    #[test]
    fn migration_6_keeps_old_messages_and_allows_tool_messages() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("d.db");
        {
            let mut conn = rusqlite::Connection::open(&path).unwrap();
            conn.pragma_update(None, "foreign_keys", true).unwrap();
            let five = rusqlite_migration::Migrations::from_slice(&crate::migrations::STEPS[..5]);
            five.to_latest(&mut conn).unwrap();
            conn.execute_batch(
                "INSERT INTO sessions VALUES ('s', 't', '[\"m\"]', '{}', 2, 1, 1);
                 INSERT INTO session_messages (id, session_id, parent_id, role, content, created_at)
                     VALUES (1, 's', NULL, 'user', 'q', 1), (2, 's', 1, 'assistant', 'a', 1);",
            )
            .unwrap();
            let err = conn.execute(
                "INSERT INTO session_messages (session_id, parent_id, role, content, created_at)
                 VALUES ('s', 2, 'tool', 'r', 1)",
                [],
            );
            assert!(err.is_err(), "version 5 has no tool role");
        }
        let store = Store::open(&path).unwrap();
        let all = store.session_messages("s").unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!((all[1].id, all[1].parent_id, all[1].content.as_str()), (2, Some(1), "a"));
        let mut call = message("s", Some(2), "assistant", "");
        call.tool_calls = Some(serde_json::json!([{"id": "c1", "name": "t_x", "arguments": "{}"}]));
        let call = store.add_message(&call, true).unwrap();
        let mut result = message("s", Some(call.id), "tool", "42");
        result.tool_call_id = Some("c1".into());
        result.tool_name = Some("t_x".into());
        result.tool_error = Some(false);
        store.add_message(&result, true).unwrap();
        let all = store.session_messages("s").unwrap();
        assert_eq!(all[2].tool_calls.as_ref().unwrap()[0]["name"], "t_x");
        assert_eq!(all[3].tool_call_id.as_deref(), Some("c1"));
        assert_eq!(all[3].tool_error, Some(false));
        // The tree still cascades: dropping the answer drops the call's result below it.
        store.delete_messages("s", &[2], Some(1)).unwrap();
        assert_eq!(store.session_messages("s").unwrap().len(), 1);
    }

    #[test]
    fn an_import_keeps_the_tree_under_new_ids() {
        let store = Store::open_in_memory().unwrap();
        let msgs = vec![
            StoredMessage {
                id: 10,
                ..message("x", None, "user", "q")
            },
            StoredMessage {
                id: 11,
                ..message("x", Some(10), "assistant", "a1")
            },
            StoredMessage {
                id: 12,
                left_out: Some(vec![10]),
                ..message("x", Some(10), "assistant", "a2")
            },
        ];
        let mut s = session("imp", "Imported");
        s.active_leaf = Some(12);
        let row = store.import_session(&s, &msgs, 10).unwrap();
        let got = store.session_messages("imp").unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].parent_id, Some(got[0].id));
        assert_eq!(got[2].parent_id, Some(got[0].id));
        assert_eq!(got[2].left_out, Some(vec![got[0].id]));
        assert_eq!(row.active_leaf, Some(got[2].id));
        // A parent that does not come first is refused, and nothing is kept.
        let bad = vec![StoredMessage {
            id: 1,
            ..message("y", Some(2), "user", "q")
        }];
        assert!(store.import_session(&session("y", "t"), &bad, 10).is_err());
        assert!(store.session("y").unwrap().is_none());
    }
}
