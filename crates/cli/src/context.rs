//! What every command needs: where things live, the effective configuration, the store,
//! and the model sources it implies.

use crate::args::GlobalArgs;
use anyhow::{Context as _, Result};
use catalog::{ModelEntry, Root, ScanReport, Source};
use config::{Config, Paths};
use store::Store;

pub struct Context {
    pub paths: Paths,
    pub config: Config,
}

impl Context {
    /// Resolves the folders and loads the configuration (defaults < file < environment <
    /// `flags`, dotted config keys a command's flags set). A broken config file is not
    /// fatal: its warning goes to stderr and defaults apply.
    pub fn load(global: &GlobalArgs, flags: &[(String, String)]) -> Result<Self> {
        let paths = Paths::resolve(global.config_dir.clone(), global.data_dir.clone())?;
        // `load` reports a broken file's warning through tracing (stderr); it is not fatal.
        let loaded = config::load(&paths, std::env::vars_os(), flags)?;
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

/// A model argument: an id, alias or path of a model in the catalog ([`service::resolve`]),
/// or a GGUF file anywhere (its folder is scanned too, so the other parts of a split model
/// and a projector next to it come with it). Usable or not: `models info` and `rm` want
/// broken models too.
pub fn find(ctx: &Context, model: &str) -> Result<ModelEntry> {
    let store = ctx.store().ok();
    let found = service::resolve(&ctx.discover(), store.as_ref(), model).or_else(|e| {
        let path = std::path::Path::new(model);
        if !path.is_file() {
            return Err(e);
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        let report = catalog::scan_root(&Root::new(Source::Folder, dir));
        service::resolve(&report, None, model)
    });
    match found {
        Ok(m) => Ok(m),
        Err(_) => {
            anyhow::bail!("no model named {model:?}; `llama-dashboard models list` shows the ids")
        }
    }
}

/// [`find`], refusing a model that cannot be loaded (missing parts, files cut short).
pub fn locate(ctx: &Context, model: &str) -> Result<ModelEntry> {
    let m = find(ctx, model)?;
    if let Some(problem) = m.problem() {
        anyhow::bail!(problem);
    }
    Ok(m)
}
