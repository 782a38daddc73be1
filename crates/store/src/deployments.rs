//! Deployments as stored: what the service layer needs to bring them back after a restart.
//! Their run-time state (starting, running, failed, the bound port) is not stored: it is
//! whatever happens after the restart.

use rusqlite::{OptionalExtension, Row, params};
use serde_json::{Map, Value};

use crate::db::Store;
use crate::error::StoreError;
use crate::now;

#[derive(Debug, Clone, PartialEq)]
pub struct StoredDeployment {
    pub id: String,
    pub model_id: String,
    /// Load parameters, e.g. `{"ctx_size": 4096, "parallel": 2}`.
    pub params: Map<String, Value>,
    /// Its own port: `None` = none, `Some(0)` = any free port.
    pub port: Option<u16>,
    /// Whether the user last asked it to run (start, restart) rather than stop.
    pub running: bool,
    pub restarts: u32,
    /// Unix seconds.
    pub created_at: i64,
}

const COLUMNS: &str = "id, model_id, params, port, running, restarts, created_at";

impl Store {
    /// Creates or replaces a deployment (a start under an existing name replaces it).
    pub fn put_deployment(&self, d: &StoredDeployment) -> Result<(), StoreError> {
        if d.id.is_empty() || d.model_id.is_empty() {
            return Err(StoreError::Invalid(
                "a deployment needs an id and a model id".to_owned(),
            ));
        }
        let params = Value::Object(d.params.clone()).to_string();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO deployments
                   (id, model_id, params, port, running, restarts, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (id) DO UPDATE SET
                   model_id = excluded.model_id, params = excluded.params,
                   port = excluded.port, running = excluded.running,
                   restarts = excluded.restarts, created_at = excluded.created_at,
                   updated_at = excluded.updated_at",
                params![
                    d.id,
                    d.model_id,
                    params,
                    d.port,
                    d.running,
                    d.restarts,
                    d.created_at,
                    now()
                ],
            )?;
            Ok(())
        })
    }

    /// Records a start or stop, and the restart count; false when there is no such deployment.
    pub fn set_deployment_running(
        &self,
        id: &str,
        running: bool,
        restarts: u32,
    ) -> Result<bool, StoreError> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE deployments SET running = ?2, restarts = ?3, updated_at = ?4
                 WHERE id = ?1",
                params![id, running, restarts, now()],
            )? > 0)
        })
    }

    /// Forgets a deployment; false when there was none with this id.
    pub fn delete_deployment(&self, id: &str) -> Result<bool, StoreError> {
        self.write(|tx| Ok(tx.execute("DELETE FROM deployments WHERE id = ?1", [id])? > 0))
    }

    /// One deployment.
    pub fn deployment(&self, id: &str) -> Result<Option<StoredDeployment>, StoreError> {
        let conn = self.lock();
        let row = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM deployments WHERE id = ?1"),
                [id],
                RawRow::read,
            )
            .optional()?;
        row.map(RawRow::decode).transpose()
    }

    /// Every deployment, oldest first.
    pub fn deployments(&self) -> Result<Vec<StoredDeployment>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM deployments ORDER BY created_at, id"
        ))?;
        let rows = stmt.query_map([], RawRow::read)?;
        rows.map(|r| r.map_err(StoreError::from).and_then(RawRow::decode))
            .collect()
    }
}

struct RawRow {
    id: String,
    model_id: String,
    params: String,
    port: Option<u16>,
    running: bool,
    restarts: u32,
    created_at: i64,
}

impl RawRow {
    fn read(r: &Row<'_>) -> rusqlite::Result<RawRow> {
        Ok(RawRow {
            id: r.get(0)?,
            model_id: r.get(1)?,
            params: r.get(2)?,
            port: r.get(3)?,
            running: r.get(4)?,
            restarts: r.get(5)?,
            created_at: r.get(6)?,
        })
    }

    fn decode(self) -> Result<StoredDeployment, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            model_id: self.model_id.clone(),
            column: "deployment params",
            reason,
        };
        let params = match serde_json::from_str(&self.params) {
            Ok(Value::Object(map)) => map,
            Ok(other) => return Err(corrupt(format!("not an object: {other}"))),
            Err(e) => return Err(corrupt(e.to_string())),
        };
        Ok(StoredDeployment {
            id: self.id,
            model_id: self.model_id,
            params,
            port: self.port,
            running: self.running,
            restarts: self.restarts,
            created_at: self.created_at,
        })
    }
}
