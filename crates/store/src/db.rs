//! Opening the database: pragmas, the version guard, migrations, and the one shared connection.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};

use crate::error::StoreError;
use crate::migrations::{MIGRATIONS, SCHEMA_VERSION};

/// How long a statement waits for another process (the CLI next to a running server) to release
/// the database before giving up with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The dashboard's SQLite database.
///
/// One connection behind a mutex: SQLite serializes writers anyway, and the settings traffic is
/// tiny, so a pool would add nothing. `Store` is `Send + Sync`; async code should call it from
/// `spawn_blocking`, since a call may wait up to the busy timeout for another process.
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Store {
    /// Open (creating it and its directory if needed) and migrate the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
        Store::init(conn, path)
    }

    /// A private in-memory database, migrated; for tests.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let path = Path::new(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| open_error(path, e))?;
        Store::init(conn, path)
    }

    /// The database file (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database (equal to [`SCHEMA_VERSION`] once open).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(user_version(&self.lock())?)
    }

    fn init(mut conn: Connection, path: &Path) -> Result<Store, StoreError> {
        let err = |e| open_error(path, e);
        // Connection settings first: they do not touch the file.
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(err)?;
        // Take the write lock when a transaction starts rather than on its first write: two
        // processes that both read then write in deferred transactions deadlock, and SQLite
        // then fails one at once instead of waiting out the busy timeout.
        conn.set_transaction_behavior(TransactionBehavior::Immediate);

        // The first read of the file: this is where a non-database fails. Check the version
        // before changing anything, so a newer build's database is left exactly as it was.
        let found = retry_busy(|| user_version(&conn)).map_err(err)?;
        // (A negative version is no version of ours either.)
        if !(0..=SCHEMA_VERSION).contains(&found) {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found,
                supported: SCHEMA_VERSION,
            });
        }

        // WAL lets readers (the CLI, the web UI) proceed while the server writes. In-memory
        // databases report "memory"; some filesystems (network mounts) cannot do WAL, and the
        // default rollback journal still works there, so that is only a warning.
        let mode: String = retry_busy(|| {
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        })
        .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") && path != Path::new(":memory:") {
            tracing::warn!(
                "{}: journal_mode is {mode}, not WAL; concurrent access will be slower",
                path.display()
            );
        }
        // Safe with WAL (no corruption on power loss, at worst the last commit is lost) and
        // avoids an fsync per write.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;

        migrate(&mut conn, path)?;
        Ok(Store {
            conn: Mutex::new(conn),
            path: path.to_owned(),
        })
    }

    /// The connection. A panic in another thread while it held the lock cannot have left the
    /// connection in a bad state (an open transaction is rolled back when it is dropped during
    /// unwinding), so a poisoned lock is simply taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Run `f` in a write transaction, committed if it returns `Ok`.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

/// Retries `f` while SQLite answers "database is locked", up to the busy timeout.
///
/// Switching a new database to WAL needs an exclusive lock, and SQLite can refuse that at
/// once (without calling the busy handler) while another connection is opening the same
/// file — several processes starting together hit this. The refusal is transient.
fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    match MIGRATIONS.to_latest(conn) {
        Ok(()) => Ok(()),
        Err(source) => {
            // rusqlite_migration reads the version outside its transaction, so when two
            // processes open a new database at once the second one re-runs a migration the
            // first has just committed, and fails. The database is fine: check for that.
            if user_version(conn).is_ok_and(|v| v == SCHEMA_VERSION) {
                return Ok(());
            }
            Err(match source {
                rusqlite_migration::Error::MigrationDefinition(
                    rusqlite_migration::MigrationDefinitionError::DatabaseTooFarAhead,
                ) => StoreError::TooNew {
                    path: path.to_owned(),
                    found: user_version(conn).unwrap_or(-1),
                    supported: SCHEMA_VERSION,
                },
                source => StoreError::Migration {
                    path: path.to_owned(),
                    supported: SCHEMA_VERSION,
                    source,
                },
            })
        }
    }
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

fn open_error(path: &Path, e: rusqlite::Error) -> StoreError {
    if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
        StoreError::NotADatabase {
            path: path.to_owned(),
        }
    } else {
        StoreError::Open {
            path: path.to_owned(),
            source: e,
        }
    }
}
