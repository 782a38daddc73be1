//! Benchmark results. Stored as JSON documents: the benchmark module owns their shape and it
//! will change faster than the schema should.

use rusqlite::params;
use serde_json::Value;

use crate::db::Store;
use crate::error::StoreError;
use crate::now;

#[derive(Debug, Clone, PartialEq)]
pub struct BenchRun {
    pub id: i64,
    pub model_id: String,
    /// Unix seconds.
    pub created_at: i64,
    pub params: Value,
    pub results: Value,
}

impl Store {
    /// Record a benchmark run; returns its id.
    pub fn insert_bench_run(
        &self,
        model_id: &str,
        params: &Value,
        results: &Value,
    ) -> Result<i64, StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO bench_runs (model_id, created_at, params, results)
                 VALUES (?1, ?2, ?3, ?4)",
                params![model_id, now(), params.to_string(), results.to_string()],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Deletes one run; false when there was none with this id.
    pub fn delete_bench_run(&self, id: i64) -> Result<bool, StoreError> {
        self.write(|tx| Ok(tx.execute("DELETE FROM bench_runs WHERE id = ?1", [id])? > 0))
    }

    /// Benchmark runs, newest first; all of them or one model's.
    pub fn bench_runs(&self, model_id: Option<&str>) -> Result<Vec<BenchRun>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT id, model_id, created_at, params, results FROM bench_runs
             WHERE ?1 IS NULL OR model_id = ?1
             ORDER BY created_at DESC, id DESC",
        )?;
        let rows = stmt.query_map([model_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (id, model_id, created_at, params, results) = row?;
            let json = |column, text: &str| {
                serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
                    model_id: model_id.clone(),
                    column,
                    reason: e.to_string(),
                })
            };
            Ok(BenchRun {
                id,
                params: json("bench params", &params)?,
                results: json("bench results", &results)?,
                model_id,
                created_at,
            })
        })
        .collect()
    }
}
