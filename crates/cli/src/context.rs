//! What every command needs: where things live, the effective configuration, the store,
//! and the model sources it implies.

use crate::args::GlobalArgs;
use anyhow::{Context as _, Result};
use catalog::{ModelEntry, Root, ScanReport};
use config::{Config, Paths};
use store::Store;

pub struct Context {
    pub paths: Paths,
    pub config: Config,
}

impl Context {
    /// Resolves the folders and loads the configuration (defaults < file < environment).
    /// A broken config file is not fatal: its warning goes to stderr and defaults apply.
    pub fn load(global: &GlobalArgs) -> Result<Self> {
        let paths = Paths::resolve(global.config_dir.clone(), global.data_dir.clone())?;
        // `load` reports a broken file's warning through tracing (stderr); it is not fatal.
        let loaded = config::load(&paths, std::env::vars_os(), &[])?;
        Ok(Context {
            paths,
            config: loaded.config,
        })
    }

    /// Opens (creating and migrating when needed) the SQLite store in the data folder.
    pub fn store(&self) -> Result<Store> {
        let path = self.paths.database();
        Store::open(&path).with_context(|| format!("opening the database {}", path.display()))
    }

    /// Every place to look for models (see [`service::roots`]).
    pub fn roots(&self) -> Vec<Root> {
        service::roots(&self.config, &self.paths)
    }

    pub fn discover(&self) -> ScanReport {
        catalog::discover(&self.roots())
    }
}

/// Finds a model by id or path, then by alias, then by the canonical path of one of its files.
pub fn resolve<'a>(
    report: &'a ScanReport,
    store: Option<&Store>,
    name: &str,
) -> Option<&'a ModelEntry> {
    // Id or exact path: the catalog's own lookup.
    if let Some(m) = report.find(name) {
        return Some(m);
    }
    if let Some(id) = store.and_then(|s| s.resolve_alias(name).ok().flatten())
        && let Some(m) = report.find(&id)
    {
        return Some(m);
    }
    // The same file reached through another path (relative, symlinked).
    let canonical = std::path::Path::new(name).canonicalize().ok()?;
    report.models.iter().find(|m| {
        m.parts
            .iter()
            .any(|p| p.canonicalize().ok().as_ref() == Some(&canonical))
    })
}

/// A model argument: a path to a file, or an id / alias from the catalog. Returns the file
/// to load and the catalog entry when there is one.
pub fn locate(ctx: &Context, model: &str) -> Result<(std::path::PathBuf, Option<ModelEntry>)> {
    let as_path = std::path::Path::new(model);
    if as_path.is_file() {
        return Ok((as_path.to_path_buf(), None));
    }
    let report = ctx.discover();
    let store = ctx.store().ok();
    match resolve(&report, store.as_ref(), model) {
        Some(m) if !m.missing_parts.is_empty() => {
            anyhow::bail!(
                "model {} is missing part(s) {:?} of {}",
                m.id,
                m.missing_parts,
                m.split_count
            )
        }
        Some(m) => Ok((m.path.clone(), Some(m.clone()))),
        None => {
            anyhow::bail!("no model named {model:?}; `llama-dashboard models list` shows the ids")
        }
    }
}

/// The id a model is stored under: its catalog id, else the file stem of the path.
pub fn model_id(path: &std::path::Path, entry: Option<&ModelEntry>) -> String {
    entry.map(|e| e.id.clone()).unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string())
    })
}
