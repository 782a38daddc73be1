//! The schema, as an ordered list of migrations; the database's `user_version` is the number of
//! migrations applied.
//!
//! One `.sql` file per version under `src/migrations/`. A migration that has been released is
//! never edited or removed (existing databases already ran it); changes go in a new file appended
//! to [`MIGRATIONS`].

use rusqlite_migration::{M, Migrations};

pub(crate) const STEPS: &[M<'static>] = &[
    M::up(include_str!("migrations/001_initial.sql")),
    M::up(include_str!("migrations/002_deployments.sql")),
    M::up(include_str!("migrations/003_downloads.sql")),
    M::up(include_str!("migrations/004_sessions.sql")),
    M::up(include_str!("migrations/005_mcp.sql")),
    M::up(include_str!("migrations/006_session_tools.sql")),
];

pub(crate) const MIGRATIONS: Migrations<'static> = Migrations::from_slice(STEPS);

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i64 = STEPS.len() as i64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        MIGRATIONS.validate().unwrap();
    }
}
