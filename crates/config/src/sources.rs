//! Where other applications keep their models, so the catalog can find them.
//!
//! Each function mirrors how that application itself picks its directory, including the
//! environment variables it honours, so we look where the user's files actually are.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::paths::Paths;
use crate::schema::{Config, SourcesConfig};

/// The effective directory of each enabled source; `None` if the source is disabled or there is
/// no override and no home directory to derive the default from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceDirs {
    pub ollama: Option<PathBuf>,
    pub huggingface: Option<PathBuf>,
    pub lmstudio: Option<PathBuf>,
}

/// The user's home directory.
pub fn home_dir() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|b| b.home_dir().to_owned())
}

/// `~` and `~/…` → the home directory (paths in a config file are often written that way).
pub fn expand_home(path: &Path, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_owned(),
    }
}

fn non_empty(v: Option<OsString>) -> Option<PathBuf> {
    v.filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Ollama: `$OLLAMA_MODELS`, else `~/.ollama/models`.
pub fn default_ollama_dir(
    home: Option<&Path>,
    var: impl Fn(&str) -> Option<OsString>,
) -> Option<PathBuf> {
    non_empty(var("OLLAMA_MODELS")).or_else(|| home.map(|h| h.join(".ollama").join("models")))
}

/// The Hugging Face hub cache: `$HF_HUB_CACHE`, `$HUGGINGFACE_HUB_CACHE` (older name),
/// `$HF_HOME/hub`, `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
pub fn default_huggingface_dir(
    home: Option<&Path>,
    var: impl Fn(&str) -> Option<OsString>,
) -> Option<PathBuf> {
    non_empty(var("HF_HUB_CACHE"))
        .or_else(|| non_empty(var("HUGGINGFACE_HUB_CACHE")))
        .or_else(|| non_empty(var("HF_HOME")).map(|h| h.join("hub")))
        .or_else(|| non_empty(var("XDG_CACHE_HOME")).map(|c| c.join("huggingface").join("hub")))
        .or_else(|| home.map(|h| h.join(".cache").join("huggingface").join("hub")))
}

/// LM Studio's models folder, newest layout first: `~/.lmstudio/models`, then
/// `~/.cache/lm-studio/models` (LM Studio before 0.3).
pub fn lmstudio_candidates(home: &Path) -> [PathBuf; 2] {
    [
        home.join(".lmstudio").join("models"),
        home.join(".cache").join("lm-studio").join("models"),
    ]
}

/// The first of [`lmstudio_candidates`] that exists, else the first.
pub fn default_lmstudio_dir(home: &Path) -> PathBuf {
    let [new, old] = lmstudio_candidates(home);
    if !new.is_dir() && old.is_dir() {
        old
    } else {
        new
    }
}

impl SourcesConfig {
    /// The effective directories, from the real home directory and environment.
    pub fn dirs(&self) -> SourceDirs {
        self.dirs_with(home_dir().as_deref(), |name| std::env::var_os(name))
    }

    /// [`SourcesConfig::dirs`] with an explicit home and environment (for tests).
    pub fn dirs_with(
        &self,
        home: Option<&Path>,
        var: impl Fn(&str) -> Option<OsString>,
    ) -> SourceDirs {
        let pick =
            |enabled: bool, over: &Option<PathBuf>, default: &dyn Fn() -> Option<PathBuf>| {
                if !enabled {
                    return None;
                }
                match over {
                    Some(p) => Some(expand_home(p, home)),
                    None => default(),
                }
            };
        SourceDirs {
            ollama: pick(self.ollama, &self.ollama_dir, &|| {
                default_ollama_dir(home, &var)
            }),
            huggingface: pick(self.huggingface, &self.huggingface_dir, &|| {
                default_huggingface_dir(home, &var)
            }),
            lmstudio: pick(self.lmstudio, &self.lmstudio_dir, &|| {
                home.map(default_lmstudio_dir)
            }),
        }
    }
}

impl Config {
    /// Every directory to scan for our own models: `<data_dir>/models` first (always; it is
    /// where downloads go), then `models.dirs` with `~` expanded, without duplicates.
    pub fn model_dirs(&self, paths: &Paths) -> Vec<PathBuf> {
        let home = home_dir();
        let mut dirs = vec![paths.models_dir()];
        for d in &self.models.dirs {
            let d = expand_home(d, home.as_deref());
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        dirs
    }
}
