//! `config set` and the settings API: change keys in `config.toml` by editing the document
//! (with `toml_edit`), so the user's comments, ordering and formatting survive; only the
//! changed values are rewritten.

use std::path::Path;

use toml_edit::{DocumentMut, Item, Table};

use crate::error::ConfigError;
use crate::file::{ConfigFile, HEADER, save_text};
use crate::keys::lookup;
use crate::schema::Config;

/// Set `pairs` (dotted key, string value) in the file at `path`, all or none, and return the
/// file's new configuration. A file that cannot be parsed is left alone and reported, rather than
/// replaced by defaults plus the new keys.
pub(crate) fn set_in_file(path: &Path, pairs: &[(String, String)]) -> Result<Config, ConfigError> {
    let refuse = |cause: ConfigError| ConfigError::RefuseToOverwrite {
        path: path.to_owned(),
        cause: Box::new(cause),
    };
    let file = ConfigFile::read(path).map_err(refuse)?;
    let mut config = file.config;
    for (key, value) in pairs {
        config.set(key, value)?;
    }
    let text = if file.exists {
        // `read` succeeded, so the file is UTF-8 TOML.
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?
    } else {
        String::new()
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        refuse(ConfigError::Syntax {
            path: path.to_owned(),
            position: None,
            message: e.message().to_owned(),
        })
    })?;
    let (ours, defaults) = (config.to_table(), Config::default().to_table());
    for (key, _) in pairs {
        let value = lookup(&ours, key);
        // A key set back to its default leaves the file, as if never written.
        let value = value.filter(|v| lookup(&defaults, key) != Some(*v));
        write_key(&mut doc, key, value);
    }
    let mut text = doc.to_string();
    if !file.exists {
        text.insert_str(0, HEADER);
    }
    save_text(&text, path)?;
    Ok(config)
}

/// Store (or, for `None`, remove) one dotted key in the document, keeping the comments around
/// an existing value.
fn write_key(doc: &mut DocumentMut, key: &str, value: Option<&toml::Value>) {
    let Some((section, field)) = key.split_once('.') else {
        return;
    };
    let Some(value) = value else {
        let Some(table) = doc.get_mut(section).and_then(Item::as_table_like_mut) else {
            return;
        };
        table.remove(field);
        // A section left empty goes too, unless the user wrote a comment on it.
        if table.is_empty()
            && let Some(Item::Table(t)) = doc.get(section)
            && !t
                .decor()
                .prefix()
                .and_then(|p| p.as_str())
                .unwrap_or_default()
                .contains('#')
        {
            doc.remove(section);
        }
        return;
    };
    // `toml` writes the value as TOML text (quoting, escapes, arrays); `toml_edit` reads it back.
    let mut new: toml_edit::Value = value
        .to_string()
        .parse()
        .expect("toml writes values toml_edit can read");
    if !doc.contains_key(section) {
        let mut new_section = Table::new();
        // A blank line between sections, as people write them.
        if !doc.is_empty() {
            new_section.decor_mut().set_prefix("\n");
        }
        doc.insert(section, Item::Table(new_section));
    }
    let table = doc
        .get_mut(section)
        .and_then(Item::as_table_like_mut)
        .expect("the file was checked: every section is a table");
    match table.get_mut(field).and_then(Item::as_value_mut) {
        Some(old) => {
            *new.decor_mut() = old.decor().clone();
            *old = new;
        }
        None => {
            new.decor_mut().clear();
            table.insert(field, Item::Value(new));
        }
    }
}
