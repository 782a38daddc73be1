//! Per-model settings: alias, favorite, capability override, chat template, launch parameters.
//!
//! Every setter creates the model's row on first use, so callers never need to "create" a model.

use rusqlite::{OptionalExtension, Row, ToSql, params};
use serde_json::{Map, Value};

use crate::db::Store;
use crate::error::StoreError;
use crate::now;

/// Longest alias accepted, in characters.
pub const ALIAS_MAX_CHARS: usize = 128;

/// What the user set for one model. Fields left alone hold their defaults: no alias, not a
/// favorite, detected capabilities, the GGUF's own template, no launch overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSettings {
    pub model_id: String,
    pub alias: Option<String>,
    pub favorite: bool,
    /// `None` = use the capabilities detected from the model file.
    pub capabilities: Option<Vec<String>>,
    /// `None` = use the chat template embedded in the model file.
    pub chat_template: Option<String>,
    /// Overrides of the global launch defaults, e.g. `{"ctx_size": 8192, "n_gpu_layers": "auto"}`.
    pub launch_params: Map<String, Value>,
    /// Unix seconds of the last change.
    pub updated_at: i64,
}

impl ModelSettings {
    /// The settings of a model the user never changed.
    pub fn none(model_id: &str) -> ModelSettings {
        ModelSettings {
            model_id: model_id.to_owned(),
            alias: None,
            favorite: false,
            capabilities: None,
            chat_template: None,
            launch_params: Map::new(),
            updated_at: 0,
        }
    }
}

const COLUMNS: &str =
    "model_id, alias, favorite, capabilities, chat_template, launch_params, updated_at";

impl Store {
    /// The settings of one model; `None` if the user never changed any.
    pub fn model_settings(&self, id: &str) -> Result<Option<ModelSettings>, StoreError> {
        let conn = self.lock();
        let row = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM model_settings WHERE model_id = ?1"),
                [id],
                RawRow::read,
            )
            .optional()?;
        row.map(RawRow::decode).transpose()
    }

    /// Every model with settings, ordered by id.
    pub fn all_model_settings(&self) -> Result<Vec<ModelSettings>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM model_settings ORDER BY model_id"
        ))?;
        let rows = stmt.query_map([], RawRow::read)?;
        rows.map(|r| r.map_err(StoreError::from).and_then(RawRow::decode))
            .collect()
    }

    /// Give a model a second name for API requests, or remove it (`None`). Aliases are unique,
    /// ignoring ASCII case; one used by another model gives [`StoreError::AliasTaken`].
    pub fn set_alias(&self, id: &str, alias: Option<&str>) -> Result<(), StoreError> {
        check_id(id)?;
        if let Some(a) = alias {
            check_alias(a)?;
        }
        self.write(|tx| {
            if let Some(a) = alias {
                let owner: Option<String> = tx
                    .query_row(
                        "SELECT model_id FROM model_settings WHERE alias = ?1 AND model_id <> ?2",
                        [a, id],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(owner) = owner {
                    return Err(StoreError::AliasTaken {
                        alias: a.to_owned(),
                        model_id: owner,
                    });
                }
            }
            // The check above and this write share one IMMEDIATE transaction, so no other
            // writer can take the alias in between; the UNIQUE index is the backstop.
            upsert(tx, id, "alias", &alias)
        })
    }

    /// The model id an alias stands for (ASCII case ignored).
    pub fn resolve_alias(&self, alias: &str) -> Result<Option<String>, StoreError> {
        let conn = self.lock();
        Ok(conn
            .query_row(
                "SELECT model_id FROM model_settings WHERE alias = ?1",
                [alias],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn set_favorite(&self, id: &str, fav: bool) -> Result<(), StoreError> {
        check_id(id)?;
        self.write(|tx| upsert(tx, id, "favorite", &fav))
    }

    /// Override the detected capabilities (`Some`), or go back to the detected ones (`None`).
    pub fn set_capabilities(&self, id: &str, caps: Option<&[String]>) -> Result<(), StoreError> {
        check_id(id)?;
        if caps.is_some_and(|c| c.iter().any(|c| c.trim().is_empty())) {
            return Err(StoreError::Invalid(
                "a capability must not be empty".to_owned(),
            ));
        }
        let json = caps.map(|c| Value::from(c.to_vec()).to_string());
        self.write(|tx| upsert(tx, id, "capabilities", &json))
    }

    /// Use a custom chat template (`Some`), or the model's own again (`None`).
    pub fn set_chat_template(&self, id: &str, tpl: Option<&str>) -> Result<(), StoreError> {
        check_id(id)?;
        if tpl.is_some_and(|t| t.trim().is_empty()) {
            return Err(StoreError::Invalid(
                "chat template must not be empty; clear it to use the model's own".to_owned(),
            ));
        }
        self.write(|tx| upsert(tx, id, "chat_template", &tpl))
    }

    /// Replace the model's launch parameters (an empty map clears them). They are not
    /// interpreted here; the launcher validates them against what it supports.
    pub fn set_launch_params(
        &self,
        id: &str,
        params: &Map<String, Value>,
    ) -> Result<(), StoreError> {
        check_id(id)?;
        let json = Value::Object(params.clone()).to_string();
        self.write(|tx| upsert(tx, id, "launch_params", &json))
    }

    /// Forget everything about a model (e.g. once its files are deleted). Returns whether it
    /// had settings.
    pub fn remove_model_settings(&self, id: &str) -> Result<bool, StoreError> {
        self.write(|tx| Ok(tx.execute("DELETE FROM model_settings WHERE model_id = ?1", [id])? > 0))
    }
}

/// Set one column, creating the row with defaults if needed. `column` is always one of our
/// literals, never user input.
fn upsert(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    column: &'static str,
    value: &dyn ToSql,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO model_settings (model_id, {column}, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (model_id) DO UPDATE
         SET {column} = excluded.{column}, updated_at = excluded.updated_at"
    );
    tx.execute(&sql, params![id, value, now()])?;
    Ok(())
}

fn check_id(id: &str) -> Result<(), StoreError> {
    if id.is_empty() {
        return Err(StoreError::Invalid("model id must not be empty".to_owned()));
    }
    Ok(())
}

/// Aliases are typed by people and sent as the `model` of API requests: keep them to plain,
/// visible names.
fn check_alias(alias: &str) -> Result<(), StoreError> {
    let problem = if alias.trim().is_empty() {
        "must not be empty"
    } else if alias.trim() != alias {
        "must not start or end with whitespace"
    } else if alias.chars().count() > ALIAS_MAX_CHARS {
        "must be at most 128 characters"
    } else if alias.starts_with('/') {
        "must not start with '/' (that reads as a file path)"
    } else if alias.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(());
    };
    Err(StoreError::Invalid(format!("alias `{alias}` {problem}")))
}

/// A row as stored, before the JSON columns are decoded (decoding errors are ours, not SQLite's).
struct RawRow {
    model_id: String,
    alias: Option<String>,
    favorite: bool,
    capabilities: Option<String>,
    chat_template: Option<String>,
    launch_params: String,
    updated_at: i64,
}

impl RawRow {
    fn read(r: &Row<'_>) -> rusqlite::Result<RawRow> {
        Ok(RawRow {
            model_id: r.get(0)?,
            alias: r.get(1)?,
            favorite: r.get(2)?,
            capabilities: r.get(3)?,
            chat_template: r.get(4)?,
            launch_params: r.get(5)?,
            updated_at: r.get(6)?,
        })
    }

    fn decode(self) -> Result<ModelSettings, StoreError> {
        let corrupt = |column, reason: String| StoreError::Corrupt {
            model_id: self.model_id.clone(),
            column,
            reason,
        };
        let capabilities = self
            .capabilities
            .as_deref()
            .map(serde_json::from_str::<Vec<String>>)
            .transpose()
            .map_err(|e| corrupt("capabilities", e.to_string()))?;
        let launch_params = match serde_json::from_str(&self.launch_params) {
            Ok(Value::Object(map)) => map,
            Ok(other) => return Err(corrupt("launch_params", format!("not an object: {other}"))),
            Err(e) => return Err(corrupt("launch_params", e.to_string())),
        };
        Ok(ModelSettings {
            model_id: self.model_id,
            alias: self.alias,
            favorite: self.favorite,
            capabilities,
            chat_template: self.chat_template,
            launch_params,
            updated_at: self.updated_at,
        })
    }
}
