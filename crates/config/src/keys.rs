//! Dotted keys (`server.port`): reading and writing one setting of a [`Config`] by its string
//! form. The environment, command-line overrides, `config set` and the settings API all go
//! through [`Config::set`]; values read from `config.toml` are checked by the same
//! [`Kind`](crate::kind::Kind) rules of the [settings table](crate::table), so every source
//! accepts and rejects the same things.
//!
//! A value goes string → TOML value (checked by its kind) → the typed struct through serde, so
//! the table needs no code per key.

use crate::error::ConfigError;
use crate::kind::Kind;
use crate::schema::Config;
use crate::table::{self, KEYS, Setting};

/// Shown instead of a secret.
pub const MASK: &str = "********";

impl Config {
    /// All dotted keys, in the order they appear in a full `config.toml`.
    pub fn keys() -> &'static [&'static str] {
        &KEYS
    }

    /// Set one key from its string form, validating type and range; on error `self` is
    /// unchanged.
    ///
    /// Accepted forms: integers and floats in decimal; booleans `true/false`, `yes/no`, `on/off`,
    /// `1/0`; `n_gpu_layers` `auto` or a count; optional values (`server.api_key`,
    /// `server.admin_api_key`, `sources.*_dir`) are cleared by an empty string, and
    /// `models.threads` by an empty string or `auto`; list keys (`models.dirs`,
    /// `server.cors_origins`) take a comma-separated list or a TOML array literal
    /// (`["a", "b,c"]`), and an empty string or `[]` for none; `server.keys` takes an array
    /// of tables in TOML (`[{ key = "…", admin = true }]`) or JSON.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let setting = setting(key)?;
        let value = setting.kind.parse(value).map_err(|r| invalid(key, r))?;
        let mut table = self.to_table();
        put(&mut table, key, value);
        *self = table
            .try_into()
            .map_err(|e: toml::de::Error| invalid(key, e.message().to_owned()))?;
        Ok(())
    }

    /// The value of one key in the form [`Config::set`] accepts (so `set(k, get(k))` is a no-op);
    /// `None` for an unknown key. Unset optional values are `""` (`"auto"` for `models.threads`).
    /// Note that this returns API keys in clear text.
    pub fn get(&self, key: &str) -> Option<String> {
        let setting = table::setting(key)?;
        Some(setting.kind.text(lookup(&self.to_table(), key)))
    }

    /// Check every value's range (types are already guaranteed by Rust). Used on configs built
    /// by serde from a file, which cannot express ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let table = self.to_table();
        for key in KEYS.iter() {
            if let Some(v) = lookup(&table, key) {
                setting(key)?.kind.check(v).map_err(|r| invalid(key, r))?;
            }
        }
        Ok(())
    }

    /// The pairs (dotted key, value) that would change this configuration, each checked like
    /// [`Config::set`]; the others are dropped. A secret sent back as [`MASK`] (what
    /// [`Config::redacted`] showed) means "keep it", never "set it to the mask". So a client
    /// that sends back the whole configuration it was shown changes only what it edited, and
    /// values in effect from the environment or flags are not written into the file.
    pub fn changes(
        &self,
        pairs: &[(String, String)],
    ) -> Result<Vec<(String, String)>, ConfigError> {
        let mut out = Vec::new();
        for (key, value) in pairs {
            let value = &match setting(key)?.kind {
                Kind::Keys => self.unmask_keys(value).map_err(|r| invalid(key, r))?,
                _ => value.clone(),
            };
            let mut probe = self.clone();
            probe.set(key, value)?;
            let masked = setting(key)?.secret && value == MASK;
            if !masked && probe.get(key) != self.get(key) {
                out.push((key.clone(), value.clone()));
            }
        }
        Ok(out)
    }

    /// `server.keys` as sent back by a client that was shown [`Config::redacted`]: a table whose
    /// `key` is [`MASK`] keeps the stored key of the table with the same `name`; the other
    /// masked tables take the remaining stored keys in order (edits in place, reordered or
    /// removed named tables all keep their keys). The result is TOML text with the real keys.
    fn unmask_keys(&self, value: &str) -> Result<String, String> {
        let stored = &self.server.keys;
        let mut keys = crate::kind::parse_api_keys(value)?;
        let by_name: Vec<Option<usize>> = keys
            .iter()
            .map(|k| {
                let name = k.name.as_ref().filter(|_| k.key == MASK)?;
                stored.iter().position(|s| s.name.as_ref() == Some(name))
            })
            .collect();
        let mut rest = (0..stored.len()).filter(|i| !by_name.contains(&Some(*i)));
        for (i, k) in keys.iter_mut().enumerate().filter(|(_, k)| k.key == MASK) {
            let from = by_name[i].or_else(|| rest.next()).ok_or_else(|| {
                format!(
                    "key #{} is masked but no stored key matches it; send the key itself",
                    i + 1
                )
            })?;
            k.key = stored[from].key.clone();
        }
        toml::Value::try_from(&keys)
            .map(|v| v.to_string())
            .map_err(|e| e.to_string())
    }

    /// The configuration with every secret that is set replaced by [`MASK`], for showing.
    pub fn redacted(&self) -> Config {
        let mut table = self.to_table();
        for s in table::SETTINGS.iter().filter(|s| s.secret) {
            let Some(key) = s.key() else { continue };
            let masked = match lookup(&table, key) {
                None => continue,
                // Key tables keep their shape (names, limits, switches); only `key` is masked.
                Some(toml::Value::Array(items)) => toml::Value::Array(
                    items
                        .iter()
                        .cloned()
                        .map(|mut item| {
                            if let Some(t) = item.as_table_mut() {
                                t.insert("key".to_owned(), toml::Value::String(MASK.to_owned()));
                            }
                            item
                        })
                        .collect(),
                ),
                Some(_) => toml::Value::String(MASK.to_owned()),
            };
            put(&mut table, key, Some(masked));
        }
        table
            .try_into()
            .expect("a secret is a string, so masking keeps the config's shape")
    }

    /// The configuration as a TOML table: one sub-table per section, unset optional keys absent.
    pub(crate) fn to_table(&self) -> toml::Table {
        toml::Table::try_from(self).expect("a Config always serializes to TOML")
    }
}

fn setting(key: &str) -> Result<&'static Setting, ConfigError> {
    table::setting(key).ok_or_else(|| unknown_key(key))
}

/// The value at a dotted key of a table.
pub(crate) fn lookup<'t>(table: &'t toml::Table, key: &str) -> Option<&'t toml::Value> {
    let (section, field) = key.split_once('.')?;
    table.get(section)?.get(field)
}

/// Store (or, for `None`, remove) the value at a dotted key.
fn put(table: &mut toml::Table, key: &str, value: Option<toml::Value>) {
    let Some((section, field)) = key.split_once('.') else {
        return;
    };
    let section = table
        .entry(section)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let Some(section) = section.as_table_mut() {
        match value {
            Some(v) => section.insert(field.to_owned(), v),
            None => section.remove(field),
        };
    }
}

pub(crate) fn unknown_key(key: &str) -> ConfigError {
    ConfigError::UnknownKey {
        origin: None,
        key: key.to_owned(),
        suggestion: table::suggest_key(key),
    }
}

pub(crate) fn invalid(key: &str, reason: String) -> ConfigError {
    ConfigError::InvalidValue {
        origin: None,
        key: key.to_owned(),
        reason,
    }
}
