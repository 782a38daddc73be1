//! Errors. Those about the database file name it, since the usual fix is to move that file.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{} is not a SQLite database; move it aside (a new one will be created) or use \
         another --data-dir",
        .path.display()
    )]
    NotADatabase { path: PathBuf },

    /// Written by a newer build; migrating "down" could lose the user's data, so we stop.
    #[error(
        "{} was written by a newer llama-dashboard (database schema version {found}, this \
         build knows up to {supported}); upgrade llama-dashboard or use another --data-dir",
        .path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error("cannot create directory {}: {source}", .path.display())]
    CreateDir { path: PathBuf, source: io::Error },

    #[error("cannot open database {}: {source}", .path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },

    #[error("cannot upgrade database {} to schema version {supported}: {source}", .path.display())]
    Migration {
        path: PathBuf,
        supported: i64,
        source: rusqlite_migration::Error,
    },

    #[error("alias `{alias}` is already used by model `{model_id}`")]
    AliasTaken { alias: String, model_id: String },

    /// A table holds as many rows as its setting allows (the message names the setting).
    #[error("{0}")]
    Full(String),

    /// An argument the caller should not have passed (bad alias, empty id, ...).
    #[error("{0}")]
    Invalid(String),

    /// A stored value that does not decode (someone edited the database by hand).
    #[error("stored {column} of model `{model_id}` is not valid: {reason}")]
    Corrupt {
        model_id: String,
        column: &'static str,
        reason: String,
    },

    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}
