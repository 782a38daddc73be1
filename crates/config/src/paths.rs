//! Where the configuration and the data live.

use std::ffi::OsString;
use std::path::PathBuf;

use directories::ProjectDirs;

use crate::error::ConfigError;

pub const CONFIG_DIR_ENV: &str = "LLAMA_DASHBOARD_CONFIG_DIR";
pub const DATA_DIR_ENV: &str = "LLAMA_DASHBOARD_DATA_DIR";

/// The two directories everything else is derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Holds `config.toml`.
    pub config_dir: PathBuf,
    /// Holds `dashboard.db`, `models/`, partial downloads, saved slots.
    pub data_dir: PathBuf,
}

impl Paths {
    /// Resolve each directory from, in order: the `--config-dir`/`--data-dir` flag (`Some`),
    /// `LLAMA_DASHBOARD_CONFIG_DIR`/`LLAMA_DASHBOARD_DATA_DIR`, the platform default. On Linux
    /// the defaults are `$XDG_CONFIG_HOME/llama-dashboard` and `$XDG_DATA_HOME/llama-dashboard`,
    /// i.e. `~/.config/llama-dashboard` and `~/.local/share/llama-dashboard` when those variables
    /// are unset.
    pub fn resolve(
        config_dir: Option<PathBuf>,
        data_dir: Option<PathBuf>,
    ) -> Result<Paths, ConfigError> {
        Paths::resolve_with(config_dir, data_dir, |name| std::env::var_os(name))
    }

    /// [`Paths::resolve`] with the two `LLAMA_DASHBOARD_*_DIR` variables read through `var`
    /// (for tests; the platform defaults still come from the real environment).
    pub fn resolve_with(
        config_dir: Option<PathBuf>,
        data_dir: Option<PathBuf>,
        var: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Paths, ConfigError> {
        let from_env = |name| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let config_dir = config_dir.or_else(|| from_env(CONFIG_DIR_ENV));
        let data_dir = data_dir.or_else(|| from_env(DATA_DIR_ENV));
        // Only look for a home directory when a default is actually needed, so explicit
        // directories work in environments without one (containers, services).
        let project = || ProjectDirs::from("", "", "llama-dashboard").ok_or(ConfigError::NoHomeDir);
        let config_dir = match config_dir {
            Some(d) => d,
            None => project()?.config_dir().to_owned(),
        };
        let data_dir = match data_dir {
            Some(d) => d,
            None => project()?.data_dir().to_owned(),
        };
        Ok(Paths {
            config_dir,
            data_dir,
        })
    }

    /// `<config_dir>/config.toml`.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }

    /// `<data_dir>/dashboard.db`.
    pub fn database(&self) -> PathBuf {
        self.data_dir.join("dashboard.db")
    }

    /// `<data_dir>/models`: where downloads go; always scanned (see [`crate::Config`]).
    pub fn models_dir(&self) -> PathBuf {
        self.data_dir.join("models")
    }

    /// `<data_dir>/models/ollama`: models pulled from Ollama registries, in Ollama's own store
    /// layout (blobs and manifests), inside the models folder this product owns.
    pub fn pulled_ollama_dir(&self) -> PathBuf {
        self.models_dir().join("ollama")
    }

    /// `<data_dir>/partial`: downloads until they are verified, outside every models folder
    /// so that a partial file is never offered as a model.
    pub fn partial_dir(&self) -> PathBuf {
        self.data_dir.join("partial")
    }
}
