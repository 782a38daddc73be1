//! Removing a model from disk (`llama-dashboard rm`; the API's delete is to use the same):
//! the one rule for what may be deleted. What this product downloaded, or what sits in its
//! own model folders, goes. Models it merely reads from another app's store (Ollama's, the
//! Hugging Face cache, LM Studio's) stay unless the caller forces it: that app owns them.

use crate::error::ServiceError;
use catalog::{ModelEntry, Source};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Where this product keeps models: its model folders (`models.dirs` and the data folder's
/// `models/`), the data folder itself, and every file a recorded download wrote.
#[derive(Debug, Clone, Default)]
pub struct OwnPlaces {
    dirs: Vec<PathBuf>,
    downloaded: HashSet<PathBuf>,
}

impl OwnPlaces {
    /// From the configuration and the download records (`None`: no database, so only the
    /// folders count).
    pub fn new(
        config: &config::Config,
        paths: &config::Paths,
        store: Option<&store::Store>,
    ) -> Self {
        let mut dirs = config.model_dirs(paths);
        dirs.push(paths.data_dir.clone());
        let mut downloaded = HashSet::new();
        for d in store.and_then(|s| s.downloads().ok()).unwrap_or_default() {
            // A task's spec names every file it writes: blobs/files (`dest`) and the
            // manifest written last (`finish[].path`).
            let written = d.spec["files"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["dest"].as_str())
                .chain(
                    d.spec["finish"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|f| f["path"].as_str()),
                );
            downloaded.extend(written.map(PathBuf::from));
        }
        OwnPlaces {
            dirs: dirs.iter().map(|d| canonical(d)).collect(),
            downloaded,
        }
    }

    /// Whether `entry` is this product's to delete.
    pub fn owns(&self, entry: &ModelEntry) -> bool {
        if entry.source == Source::Folder {
            return true;
        }
        let mut files = entry
            .parts
            .iter()
            .chain(entry.ollama.as_ref().map(|o| &o.manifest));
        files.any(|f| {
            self.downloaded.contains(f) || {
                let f = canonical(f);
                self.dirs.iter().any(|d| f.starts_with(d))
            }
        })
    }
}

/// What a removal deleted.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Removal {
    pub model: String,
    pub source: Source,
    pub deleted: Vec<PathBuf>,
    /// Bytes freed.
    pub freed: u64,
}

/// Deletes `entry`'s files: a folder model's parts; a Hugging Face cache entry's snapshot
/// links and the blobs no other link uses; an Ollama model's manifest and the blobs no other
/// manifest names. Refused for another app's model unless `force_external`.
pub fn remove(
    entry: &ModelEntry,
    own: &OwnPlaces,
    force_external: bool,
) -> Result<Removal, ServiceError> {
    if !own.owns(entry) && !force_external {
        return Err(ServiceError::Conflict(format!(
            "model '{}' belongs to {} (found in its store, not downloaded by llama-dashboard); \
             it is not deleted unless you ask with --force-external (the API's force_external)",
            entry.id,
            app_name(entry.source)
        )));
    }
    let files = files_of(entry).map_err(ServiceError::Conflict)?;
    let mut removal = Removal {
        model: entry.id.clone(),
        source: entry.source,
        deleted: Vec::new(),
        freed: 0,
    };
    for f in files {
        // A link's own size is not what it frees: count what is really gone.
        let size = std::fs::symlink_metadata(&f)
            .map(|m| if m.is_symlink() { 0 } else { m.len() })
            .unwrap_or(0);
        match std::fs::remove_file(&f) {
            Ok(()) => {
                removal.freed += size;
                removal.deleted.push(f);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ServiceError::Conflict(format!(
                    "could not delete {} ({e}); deleted so far: {:?}",
                    f.display(),
                    removal.deleted
                )));
            }
        }
    }
    Ok(removal)
}

fn app_name(source: Source) -> &'static str {
    match source {
        Source::Ollama => "Ollama",
        Source::HuggingFace => "the Hugging Face cache",
        Source::LmStudio => "LM Studio",
        Source::Folder => "a model folder",
    }
}

/// The files removing `entry` deletes, in the order to delete them (what names a model
/// first, so that an interrupted removal never leaves a listed model without its weights).
fn files_of(entry: &ModelEntry) -> Result<Vec<PathBuf>, String> {
    match (&entry.source, &entry.ollama) {
        (Source::Ollama, Some(o)) => {
            let store = ollama_store(&o.manifest)
                .ok_or_else(|| format!("{} is not in an Ollama store", o.manifest.display()))?;
            let mut files = vec![o.manifest.clone()];
            files.extend(catalog::ollama::blobs_only_in(&store, &o.manifest)?);
            Ok(files)
        }
        (Source::HuggingFace, _) => {
            let mut files = entry.parts.clone();
            for part in &entry.parts {
                if let Some(blob) = unshared_hf_blob(part) {
                    files.push(blob);
                }
            }
            Ok(files)
        }
        _ => Ok(entry.parts.clone()),
    }
}

/// `…/models/manifests/{registry}/{namespace}/{model}/{tag}` → `…/models`.
fn ollama_store(manifest: &Path) -> Option<PathBuf> {
    let dir = manifest.ancestors().nth(5)?;
    (manifest.ancestors().nth(4)?.file_name()? == "manifests").then(|| dir.to_path_buf())
}

/// The Hugging Face cache keeps `models--org--name/snapshots/<rev>/<file>` as links to
/// `models--org--name/blobs/<hash>`: the blob goes too when no other snapshot links to it.
fn unshared_hf_blob(link: &Path) -> Option<PathBuf> {
    if !std::fs::symlink_metadata(link).ok()?.is_symlink() {
        return None;
    }
    let blob = std::fs::canonicalize(link).ok()?;
    let repo = link
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "snapshots"))?
        .parent()?;
    if !blob.starts_with(canonical(&repo.join("blobs"))) {
        return None;
    }
    let shared = walkdir::WalkDir::new(repo.join("snapshots"))
        .into_iter()
        .flatten()
        .filter(|e| e.path_is_symlink() && e.path() != link)
        .any(|e| std::fs::canonicalize(e.path()).ok().as_ref() == Some(&blob));
    (!shared).then_some(blob)
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}
