//! The environment layer: every variable of the [settings table](crate::table) that names a key
//! (`LLAMA_DASHBOARD_<SECTION>_<KEY>`, or an alias such as `LLAMA_DASHBOARD_API_KEY`).

use std::ffi::OsStr;

use crate::error::{ConfigError, Origin};
use crate::schema::Config;
use crate::table::{self, ENV_PREFIX, SETTINGS, Scope};

/// The environment variable for a dotted key: `server.port` → `LLAMA_DASHBOARD_SERVER_PORT`.
pub fn env_var_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_ascii_uppercase().replace('.', "_"))
}

/// The dotted key an environment variable sets, if it sets one (by its name or an alias).
pub fn key_for_env_var(var: &str) -> Option<&'static str> {
    table::setting_for_env(var)?.key()
}

/// One environment variable: `(name, value)` or a reference to one, with `String`, `&str` or
/// `OsString` parts, so both `std::env::vars_os()` and `&Vec<(String, String)>` can be passed.
pub trait EnvVar {
    fn name(&self) -> &OsStr;
    fn value(&self) -> &OsStr;
}

impl<K: AsRef<OsStr>, V: AsRef<OsStr>> EnvVar for (K, V) {
    fn name(&self) -> &OsStr {
        self.0.as_ref()
    }
    fn value(&self) -> &OsStr {
        self.1.as_ref()
    }
}

impl<K: AsRef<OsStr>, V: AsRef<OsStr>> EnvVar for &(K, V) {
    fn name(&self) -> &OsStr {
        self.0.as_ref()
    }
    fn value(&self) -> &OsStr {
        self.1.as_ref()
    }
}

/// Apply every variable that names a key. A bad value is an error (the user set it just now);
/// a variable with our prefix that is not in the table is only a warning, with the closest
/// real name. Variables the table lists without a key (the directories, the log filter, the
/// test suite's) are read elsewhere and pass silently.
pub(crate) fn apply(
    config: &mut Config,
    env: impl IntoIterator<Item = impl EnvVar>,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    // (row, variable, value)
    let mut ours: Vec<(usize, String, Result<String, ()>)> = Vec::new();
    let mut foreign: Vec<(usize, String, Result<String, ()>)> = Vec::new();
    for var in env {
        let (name, value) = (var.name(), var.value());
        // Our names are ASCII, so a name that is not UTF-8 cannot be ours.
        let Some(name) = name.to_str() else {
            continue;
        };
        let position = SETTINGS
            .iter()
            .position(|s| s.env_names().any(|n| n == name));
        if !name.starts_with(ENV_PREFIX) {
            // Another tool's variable that a key follows (`HF_ENDPOINT`, `HF_TOKEN`): ours,
            // when set too, wins rather than conflicts (the user set ours for us).
            // Set but empty is unset for the other tool too.
            if let Some(i) = position
                && matches!(SETTINGS[i].scope, Scope::Key(_))
                && !value.is_empty()
            {
                foreign.push((
                    i,
                    name.to_owned(),
                    value.to_str().map(str::to_owned).ok_or(()),
                ));
            }
            continue;
        }
        let value = value.to_str().map(str::to_owned).ok_or(());
        match position {
            Some(i) if matches!(SETTINGS[i].scope, Scope::Key(_)) => {
                ours.push((i, name.to_owned(), value))
            }
            Some(_) => {}
            None => warnings.push(unknown_var_warning(name)),
        }
    }
    foreign.retain(|(i, _, _)| !ours.iter().any(|(j, _, _)| i == j));
    foreign.sort_by_key(|(i, var, _)| (*i, var.clone()));
    foreign.dedup_by_key(|(i, _, _)| *i);
    // Apply in table order so that, with several bad variables, the reported one is stable;
    // the canonical name before its aliases.
    ours.sort_by_key(|(i, var, _)| (*i, var != SETTINGS[*i].env));
    for pair in ours.windows(2) {
        let [(i, a, va), (j, b, vb)] = pair else {
            continue;
        };
        if i == j && va != vb {
            let key = SETTINGS[*i].key().unwrap_or_default();
            return Err(ConfigError::InvalidValue {
                origin: Some(Origin::Env { var: b.clone() }),
                key: key.to_owned(),
                reason: format!("{a} sets it to something else; set only one of them"),
            });
        }
    }
    for (i, var, value) in foreign.into_iter().chain(ours) {
        let key = SETTINGS[i].key().unwrap_or_default();
        let origin = Origin::Env { var };
        let value = value.map_err(|()| ConfigError::InvalidValue {
            origin: Some(origin.clone()),
            key: key.to_owned(),
            reason: "not valid UTF-8".to_owned(),
        })?;
        config.set(key, &value).map_err(|e| e.with_origin(origin))?;
    }
    Ok(())
}

fn unknown_var_warning(name: &str) -> String {
    match table::suggest_env(name) {
        Some(var) => format!(
            "environment variable {name} is not a setting and is ignored; did you mean {var}?"
        ),
        None => format!("environment variable {name} is not a setting and is ignored"),
    }
}
