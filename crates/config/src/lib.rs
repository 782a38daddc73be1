//! The product's configuration: `config.toml`, `LLAMA_DASHBOARD_*` environment variables and
//! command-line overrides, layered with precedence flags > env > file > defaults.
//!
//! ```no_run
//! let paths = config::Paths::resolve(None, None)?;
//! let loaded = config::load(&paths, std::env::vars_os(), &[("server.port".into(), "9000".into())])?;
//! for w in &loaded.warnings { eprintln!("warning: {w}"); }
//! # Ok::<(), config::ConfigError>(())
//! ```
//!
//! A broken `config.toml` never stops the program: [`load`] falls back to the defaults and
//! reports why in [`LoadedConfig::warnings`]. A bad environment variable or flag is an error,
//! because the user just typed it. [`set_persisted`] (`config set`) changes one key in the file,
//! keeping its comments and layout, and refuses to touch a file it cannot parse.
//!
//! Every key and variable, with its type, range, default and description, is one row of
//! [`SETTINGS`]; `docs/CONFIG.md` is [`markdown`] of it.

mod docs;
mod edit;
mod env;
mod error;
mod file;
mod keys;
mod kind;
mod paths;
mod schema;
pub mod sources;
mod table;

use std::path::PathBuf;

pub use docs::markdown;
pub use env::{EnvVar, env_var_name, key_for_env_var};
pub use error::{ConfigError, Origin};
pub use file::{ConfigFile, parse, save};
pub use keys::MASK;
pub use kind::{FloatRange, Kind};
pub use paths::{CONFIG_DIR_ENV, DATA_DIR_ENV, Paths};
pub use schema::{
    ApiKey, Config, DownloadConfig, GpuLayers, LimitsConfig, LogConfig, LogFormat, LogLevel,
    ModelsConfig, ReasoningConfig, SamplingConfig, ServerConfig, SessionsConfig, SourcesConfig,
    ToolsConfig,
};
pub use sources::SourceDirs;
pub use table::{ENV_PREFIX, LOG_ENV, SETTINGS, Scope, Setting, setting, setting_for_env};

/// The configuration in effect, and how it was arrived at.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    pub config: Config,
    /// Problems that did not stop loading (a broken file, an unknown `LLAMA_DASHBOARD_*`
    /// variable). Already logged with `tracing::warn!`; show them to the user too.
    pub warnings: Vec<String>,
    /// The config file that was (or would have been) read.
    pub file: PathBuf,
    pub file_exists: bool,
}

/// Build the configuration: defaults, then `config.toml`, then the environment, then `overrides`
/// (dotted key, value) from the command line.
///
/// `env` is typically `std::env::vars_os()` (which, unlike `vars()`, does not panic on a
/// non-UTF-8 variable), or a `&[(String, String)]`; only `LLAMA_DASHBOARD_*` variables are
/// looked at.
pub fn load(
    paths: &Paths,
    env: impl IntoIterator<Item = impl EnvVar>,
    overrides: &[(String, String)],
) -> Result<LoadedConfig, ConfigError> {
    let (file, mut warnings) = ConfigFile::load(&paths.config_file());
    let mut config = file.config;
    env::apply(&mut config, env, &mut warnings)?;
    for (key, value) in overrides {
        config
            .set(key, value)
            .map_err(|e| e.with_origin(Origin::Flag))?;
    }
    for w in &warnings {
        tracing::warn!("{w}");
    }
    Ok(LoadedConfig {
        config,
        warnings,
        file: file.path,
        file_exists: file.exists,
    })
}

/// `config set KEY VALUE`: change one key in `config.toml` and return the file's new
/// configuration. Only the file layer is read and written, so environment variables and flags in
/// effect right now are not baked into the file. The file is edited, not rewritten: comments and
/// the order of keys survive. A file that cannot be parsed is left alone and reported, rather
/// than replaced by defaults plus one key.
pub fn set_persisted(paths: &Paths, key: &str, value: &str) -> Result<Config, ConfigError> {
    set_persisted_all(paths, &[(key.to_owned(), value.to_owned())])
}

/// [`set_persisted`] for several keys at once: all are validated before the file is written
/// once, so a bad one changes nothing.
pub fn set_persisted_all(paths: &Paths, pairs: &[(String, String)]) -> Result<Config, ConfigError> {
    edit::set_in_file(&paths.config_file(), pairs)
}

#[cfg(test)]
mod tests;
