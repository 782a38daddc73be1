//! The dashboard's SQLite database (`<data_dir>/dashboard.db`): per-model settings, benchmark
//! results, deployments, download tasks, chat sessions and MCP servers.
//!
//! [`Store::open`] creates and migrates the database. It refuses a file that is not SQLite
//! ([`StoreError::NotADatabase`]) or that a newer build has migrated further than this one knows
//! ([`StoreError::TooNew`]), naming the file in both cases.

mod bench_runs;
mod db;
mod deployments;
mod downloads;
mod error;
mod mcp_servers;
mod migrations;
mod model_settings;
pub mod sessions;

pub use bench_runs::BenchRun;
pub use db::Store;
pub use deployments::StoredDeployment;
pub use downloads::StoredDownload;
pub use error::StoreError;
pub use mcp_servers::StoredMcpServer;
pub use migrations::SCHEMA_VERSION;
pub use model_settings::{ALIAS_MAX_CHARS, ModelSettings};
pub use sessions::{Finished, SessionPage, StoredMessage, StoredSession};

/// Now, in Unix seconds (the unit of every timestamp in the database).
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests;
