//! Reading and atomically writing `config.toml`.
//!
//! Reading is done twice over the (small) text: once into toml's spanned document to locate keys
//! and values for `line:col` in messages and to report unknown keys with their full dotted name,
//! and once through serde into [`Config`].

use std::fs;
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use crate::error::{ConfigError, Origin};
use crate::keys::{invalid, lookup};
use crate::schema::Config;
use crate::table::{setting, suggest_key};

/// The file layer of the configuration: what `config.toml` says, on top of the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigFile {
    pub path: PathBuf,
    /// The file's settings over the defaults (just the defaults if the file is missing).
    pub config: Config,
    pub exists: bool,
}

impl ConfigFile {
    /// Strict: a missing file is the defaults, but anything wrong with an existing file is an
    /// error. Used by `config set`, which must not overwrite a file it could not understand.
    pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(ConfigFile {
                    path: path.to_owned(),
                    config: Config::default(),
                    exists: false,
                });
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
            ConfigError::Syntax {
                path: path.to_owned(),
                position: Some(line_col(valid, valid.len())),
                message: "not valid UTF-8".to_owned(),
            }
        })?;
        Ok(ConfigFile {
            path: path.to_owned(),
            config: parse(path, text)?,
            exists: true,
        })
    }

    /// Lenient: a file that cannot be used is ignored in favour of the defaults, with a warning
    /// saying why. The server must start even if someone broke the file by hand.
    pub fn load(path: &Path) -> (ConfigFile, Vec<String>) {
        match ConfigFile::read(path) {
            Ok(file) => (file, Vec::new()),
            Err(e) => {
                let file = ConfigFile {
                    path: path.to_owned(),
                    config: Config::default(),
                    exists: path.exists(),
                };
                (
                    file,
                    vec![format!(
                        "ignoring the configuration file, using defaults: {e}"
                    )],
                )
            }
        }
    }
}

/// Parse the text of a config file; `path` is only used in error messages.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    // Editors on Windows like to start files with a byte-order mark; TOML does not allow one.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let at = |offset: usize| Origin::File {
        path: path.to_owned(),
        position: Some(line_col(text, offset)),
    };

    let doc = DeTable::parse(text).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        position: e.span().map(|s| line_col(text, s.start)),
        message: e.message().trim().to_owned(),
    })?;
    let doc = doc.get_ref();

    check_keys(doc).map_err(|(e, offset)| e.with_origin(at(offset)))?;
    check_values(doc, text).map_err(|(e, offset)| e.with_origin(at(offset)))?;

    // The values are checked, so serde fails only if the table and the structs disagree (a
    // test makes sure they do not); the message then is serde's.
    toml::from_str(text).map_err(|e| {
        let offset = e.span().map(|s| s.start);
        let reason = e.message().trim().to_owned();
        match offset.and_then(|o| key_at(doc, o)) {
            Some(key) => ConfigError::InvalidValue {
                origin: Some(Origin::File {
                    path: path.to_owned(),
                    position: offset.map(|o| line_col(text, o)),
                }),
                key,
                reason,
            },
            None => ConfigError::Syntax {
                path: path.to_owned(),
                position: offset.map(|o| line_col(text, o)),
                message: reason,
            },
        }
    })
}

/// Check every value by its key's kind, with the same messages as the environment and flags.
/// Returns the error and the byte offset of the offending value.
fn check_values(doc: &DeTable<'_>, text: &str) -> Result<(), (ConfigError, usize)> {
    let Ok(values) = text.parse::<toml::Table>() else {
        return Ok(()); // `DeTable` parsed it; serde will report the same trouble.
    };
    for key in Config::keys() {
        let (Some(value), Some(setting)) = (lookup(&values, key), setting(key)) else {
            continue;
        };
        if let Err(reason) = setting.kind.check(value) {
            let offset = value_span(doc, key).map_or(0, |s| s.start);
            return Err((invalid(key, reason), offset));
        }
    }
    Ok(())
}

/// Every top-level key must be a section and every key in it a known key. Returns the error and
/// the byte offset of the offending key.
fn check_keys(doc: &DeTable<'_>) -> Result<(), (ConfigError, usize)> {
    let unknown = |key: String, offset: usize| {
        let suggestion = suggest_key(&key);
        Err((
            ConfigError::UnknownKey {
                origin: None,
                key,
                suggestion,
            },
            offset,
        ))
    };
    for (section, value) in doc.iter() {
        let prefix = format!("{}.", section.get_ref());
        if !Config::keys().iter().any(|k| k.starts_with(&prefix)) {
            return unknown(section.get_ref().to_string(), section.span().start);
        }
        let DeValue::Table(table) = value.get_ref() else {
            let e = ConfigError::InvalidValue {
                origin: None,
                key: section.get_ref().to_string(),
                reason: format!("must be a table (`[{}]`)", section.get_ref()),
            };
            return Err((e, value.span().start));
        };
        for (key, _) in table.iter() {
            let dotted = format!("{prefix}{}", key.get_ref());
            if !Config::keys().contains(&dotted.as_str()) {
                return unknown(dotted, key.span().start);
            }
        }
    }
    Ok(())
}

/// The dotted key whose key or value covers byte `offset`.
fn key_at(doc: &DeTable<'_>, offset: usize) -> Option<String> {
    for (section, value) in doc.iter() {
        let in_section = section.span().contains(&offset) || value.span().contains(&offset);
        if let DeValue::Table(table) = value.get_ref() {
            for (key, v) in table.iter() {
                if key.span().contains(&offset) || v.span().contains(&offset) {
                    return Some(format!("{}.{}", section.get_ref(), key.get_ref()));
                }
            }
        }
        if in_section {
            return Some(section.get_ref().to_string());
        }
    }
    None
}

/// Where the value of a dotted key is in the text.
fn value_span(doc: &DeTable<'_>, dotted: &str) -> Option<Range<usize>> {
    let (section, key) = dotted.split_once('.')?;
    let (_, table) = doc.iter().find(|(k, _)| k.get_ref() == section)?;
    let DeValue::Table(table) = table.get_ref() else {
        return None;
    };
    let (_, value) = table.iter().find(|(k, _)| k.get_ref() == key)?;
    Some(value.span())
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

pub(crate) const HEADER: &str = "\
# llama-dashboard configuration.
# Only settings that differ from the built-in defaults are listed; see the documentation for
# every key. Environment variables (LLAMA_DASHBOARD_*) and command-line flags override this file.

";

/// Write `config` to `path` atomically: a temporary file in the same directory is written,
/// flushed to disk and renamed over the old file, so a crash leaves either the old or the new
/// file, never half of one. Only values that differ from the defaults are written. The file is
/// created with mode 0600 on Unix since it may hold API keys. If `path` is a symlink (dotfile
/// managers), its target is replaced and the link kept.
pub fn save(config: &Config, path: &Path) -> Result<(), ConfigError> {
    save_text(
        &format!("{HEADER}{}", config.to_minimal_toml_string()),
        path,
    )
}

/// [`save`] for a text already made (see [`crate::edit`]).
pub(crate) fn save_text(text: &str, path: &Path) -> Result<(), ConfigError> {
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    write_atomic(&target, text.as_bytes()).map_err(|source| ConfigError::Write {
        path: target.clone(),
        source,
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let name = path.file_name().map_or_else(
        || "config.toml".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    // Dropping `tmp` on any error below deletes it, so failures leave no stray files.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // Make the rename itself durable. Not every filesystem supports syncing a directory, and the
    // data is already safe in the file, so a failure here is not worth failing the save.
    #[cfg(unix)]
    if let Err(e) = fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!("could not sync directory {}: {e}", dir.display());
    }
    Ok(())
}

impl Config {
    /// The whole configuration as TOML (every key; unset optional keys are omitted).
    pub fn to_toml_string(&self) -> String {
        toml::to_string(self).expect("a Config always serializes to TOML")
    }

    /// Only the keys whose values differ from [`Config::default`], as TOML. Parsing it back
    /// gives an equal `Config`.
    pub fn to_minimal_toml_string(&self) -> String {
        let table = |c: &Config| toml::Table::try_from(c).expect("a Config always serializes");
        let mut ours = table(self);
        let defaults = table(&Config::default());
        for (section, value) in ours.iter_mut() {
            if let Some(t) = value.as_table_mut() {
                let default = defaults.get(section).and_then(|d| d.as_table());
                t.retain(|k, v| default.and_then(|d| d.get(k)) != Some(v));
            }
        }
        ours.retain(|_, v| v.as_table().is_none_or(|t| !t.is_empty()));
        toml::to_string(&ours).expect("a TOML table always serializes")
    }
}
