//! Download tasks as stored: what the download queue needs to bring unfinished tasks back
//! after a restart. The spec is the queue's own JSON; the store checks only that it is JSON.

use rusqlite::{Row, params};
use serde_json::Value;

use crate::db::Store;
use crate::error::StoreError;
use crate::now;

/// The states a task can be stored in (the queue's names).
pub const DOWNLOAD_STATES: &[&str] = &[
    "queued",
    "downloading",
    "paused",
    "verifying",
    "completed",
    "failed",
];

#[derive(Debug, Clone, PartialEq)]
pub struct StoredDownload {
    pub id: u64,
    pub label: String,
    /// What the task fetches, as the queue serialised it.
    pub spec: Value,
    /// One of [`DOWNLOAD_STATES`].
    pub state: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

impl Store {
    /// Records a new task; an id already recorded is refused (a task never takes over
    /// another's row).
    pub fn put_download(&self, d: &StoredDownload) -> Result<(), StoreError> {
        check_state(&d.state)?;
        let id = i64::try_from(d.id)
            .map_err(|_| StoreError::Invalid(format!("download id {} is too large", d.id)))?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO downloads (id, label, spec, state, reason, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    id,
                    d.label,
                    d.spec.to_string(),
                    d.state,
                    d.reason,
                    d.created_at,
                    now()
                ],
            )?;
            Ok(())
        })
    }

    /// The id after the largest one recorded (0 when none is): where a queue's new ids
    /// start, whether or not it brought unfinished tasks back.
    pub fn next_download_id(&self) -> Result<u64, StoreError> {
        let conn = self.lock();
        let max: Option<i64> = conn.query_row("SELECT MAX(id) FROM downloads", [], |r| r.get(0))?;
        Ok(max.map_or(0, |m| m as u64 + 1))
    }

    /// Records a task's new state; false when there is no such task.
    pub fn set_download_state(
        &self,
        id: u64,
        state: &str,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        check_state(state)?;
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE downloads SET state = ?2, reason = ?3, updated_at = ?4 WHERE id = ?1",
                params![id as i64, state, reason, now()],
            )? > 0)
        })
    }

    /// Forgets a task; false when there was none with this id.
    pub fn delete_download(&self, id: u64) -> Result<bool, StoreError> {
        self.write(|tx| Ok(tx.execute("DELETE FROM downloads WHERE id = ?1", [id as i64])? > 0))
    }

    /// Every task, in id order (the order they were created).
    pub fn downloads(&self) -> Result<Vec<StoredDownload>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT id, label, spec, state, reason, created_at FROM downloads ORDER BY id",
        )?;
        let rows = stmt.query_map([], read)?;
        rows.map(|r| r.map_err(StoreError::from).and_then(decode))
            .collect()
    }
}

fn check_state(state: &str) -> Result<(), StoreError> {
    if DOWNLOAD_STATES.contains(&state) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{state:?} is not a download state (one of {})",
            DOWNLOAD_STATES.join(", ")
        )))
    }
}

type RawRow = (i64, String, String, String, Option<String>, i64);

fn read(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn decode(
    (id, label, spec, state, reason, created_at): RawRow,
) -> Result<StoredDownload, StoreError> {
    let spec = serde_json::from_str(&spec).map_err(|e| StoreError::Corrupt {
        model_id: label.clone(),
        column: "download spec",
        reason: e.to_string(),
    })?;
    Ok(StoredDownload {
        id: id as u64,
        label,
        spec,
        state,
        reason,
        created_at,
    })
}
