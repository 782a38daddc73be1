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
//! because the user just typed it. [`set_persisted`] (`config set`) changes one key in the file
//! and refuses to touch a file it cannot parse.

mod env;
mod error;
mod file;
mod keys;
mod paths;
mod schema;
pub mod sources;

use std::path::PathBuf;

pub use env::{ENV_PREFIX, EnvVar, env_var_name, key_for_env_var};
pub use error::{ConfigError, Origin};
pub use file::{ConfigFile, parse, save};
pub use paths::{CONFIG_DIR_ENV, DATA_DIR_ENV, Paths};
pub use schema::{
    Config, GpuLayers, LogConfig, LogLevel, ModelsConfig, SamplingConfig, ServerConfig,
    SourcesConfig,
};
pub use sources::SourceDirs;

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
/// effect right now are not baked into the file. A file that cannot be parsed is left alone and
/// reported, rather than replaced by defaults plus one key.
pub fn set_persisted(paths: &Paths, key: &str, value: &str) -> Result<Config, ConfigError> {
    let path = paths.config_file();
    let mut config = ConfigFile::read(&path)
        .map_err(|cause| ConfigError::RefuseToOverwrite {
            path: path.clone(),
            cause: Box::new(cause),
        })?
        .config;
    config.set(key, value)?;
    save(&config, &path)?;
    Ok(config)
}

#[cfg(test)]
mod tests;
