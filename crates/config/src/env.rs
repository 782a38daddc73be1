//! The environment layer: `LLAMA_DASHBOARD_<SECTION>_<KEY>` for every dotted key.

use std::ffi::OsStr;

use crate::error::{ConfigError, Origin};
use crate::keys::{KEYS, edit_distance};
use crate::paths::{CONFIG_DIR_ENV, DATA_DIR_ENV};
use crate::schema::Config;

pub const ENV_PREFIX: &str = "LLAMA_DASHBOARD_";

/// The environment variable for a dotted key: `server.port` → `LLAMA_DASHBOARD_SERVER_PORT`.
pub fn env_var_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_ascii_uppercase().replace('.', "_"))
}

/// The dotted key an environment variable sets, if it is one of ours.
pub fn key_for_env_var(var: &str) -> Option<&'static str> {
    KEYS.iter().copied().find(|k| env_var_name(k) == var)
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

/// Apply every `LLAMA_DASHBOARD_*` variable that names a key. A bad value is an error (the user
/// set it just now); a variable with our prefix that names no key is only a warning, since
/// other tools (or the CLI's own flags) may use the prefix too.
pub(crate) fn apply(
    config: &mut Config,
    env: impl IntoIterator<Item = impl EnvVar>,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let mut ours: Vec<(usize, String, Result<String, ()>)> = Vec::new();
    for var in env {
        let (name, value) = (var.name(), var.value());
        // Our names are ASCII, so a name that is not UTF-8 cannot be ours.
        let Some(name) = name.to_str() else {
            continue;
        };
        if !name.starts_with(ENV_PREFIX) || name == CONFIG_DIR_ENV || name == DATA_DIR_ENV {
            continue;
        }
        let value = value.to_str().map(str::to_owned).ok_or(());
        match KEYS.iter().position(|k| env_var_name(k) == name) {
            Some(i) => ours.push((i, name.to_owned(), value)),
            None => warnings.push(unknown_var_warning(name)),
        }
    }
    // Apply in key order so that, with several bad variables, the reported one is stable.
    ours.sort_by_key(|(i, _, _)| *i);
    for (i, var, value) in ours {
        let origin = Origin::Env { var };
        let value = value.map_err(|()| ConfigError::InvalidValue {
            origin: Some(origin.clone()),
            key: KEYS[i].to_owned(),
            reason: "not valid UTF-8".to_owned(),
        })?;
        config
            .set(KEYS[i], &value)
            .map_err(|e| e.with_origin(origin))?;
    }
    Ok(())
}

fn unknown_var_warning(name: &str) -> String {
    let wanted = name[ENV_PREFIX.len()..].to_ascii_lowercase();
    let closest = KEYS
        .iter()
        .map(|k| (edit_distance(&wanted, &k.replace('.', "_")), k))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d);
    match closest {
        Some((_, k)) => format!(
            "environment variable {name} is not a setting and is ignored (did you mean {}?)",
            env_var_name(k)
        ),
        None => format!("environment variable {name} is not a setting and is ignored"),
    }
}
