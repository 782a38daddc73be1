//! Who a model is beyond its id: a digest and a modification time (what Ollama's model lists
//! show), and a second name for the same model (Ollama's `cp`).
//!
//! Digests are cheap by design: a listing never hashes a multi-gigabyte file. An Ollama
//! model's digest is its manifest's sha256 (what Ollama itself lists); a file the Hugging
//! Face cache keeps under its sha256 (LFS blobs) and a file named by its digest (an Ollama
//! blob reached directly) give that digest; any other model gets the sha256 of its identity
//! (id, size, modification time), which changes whenever the file does. See [`digest`].

use crate::error::ServiceError;
use crate::remove::OwnPlaces;
use catalog::{ModelEntry, Source};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Largest manifest read for its digest (Ollama's are a few hundred bytes).
const MAX_MANIFEST: u64 = 1 << 20;

/// A model's digest, 64 lowercase hex digits (see the module's documentation). Blocking:
/// reads the manifest of an Ollama model, else only file metadata.
pub fn digest(entry: &ModelEntry) -> String {
    if let Some(o) = &entry.ollama
        && let Ok(meta) = std::fs::metadata(&o.manifest)
        && meta.len() <= MAX_MANIFEST
        && let Ok(bytes) = std::fs::read(&o.manifest)
    {
        return hex(&Sha256::digest(&bytes));
    }
    // A file stored under its own sha256: the HF cache's LFS blobs (a snapshot links there),
    // Ollama's `sha256-<hex>` blobs.
    if let Ok(real) = std::fs::canonicalize(&entry.path)
        && let Some(name) = real.file_name().and_then(|n| n.to_str())
    {
        let hex = name.strip_prefix("sha256-").unwrap_or(name);
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return hex.to_ascii_lowercase();
        }
    }
    let mtime = modified(entry)
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let identity = format!(
        "{}\n{}\n{}\n{mtime}",
        entry.id,
        entry.path.display(),
        entry.size
    );
    hex(&Sha256::digest(identity.as_bytes()))
}

/// When the model last changed: its Ollama manifest's time (as Ollama lists it), else its
/// file's. Blocking (metadata only).
pub fn modified(entry: &ModelEntry) -> Option<SystemTime> {
    let file = entry
        .ollama
        .as_ref()
        .map_or(entry.path.as_path(), |o| o.manifest.as_path());
    std::fs::metadata(file).and_then(|m| m.modified()).ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How a copy was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Copy {
    /// A second manifest naming the same blobs, in our own Ollama store (as Ollama copies).
    Manifest(PathBuf),
    /// Not an Ollama model of ours: the caller gives the model the name as its alias (the
    /// store's), so it is reached and listed under it.
    Alias,
}

/// Makes `destination` a second name of `entry`. A model pulled into our own Ollama store
/// gets a second manifest, as `ollama cp` writes one (removing either name keeps the blobs
/// the other still names); any other model (another app's store is never written to, and a
/// folder model has no manifest) is answered [`Copy::Alias`]. Blocking.
pub fn copy(entry: &ModelEntry, own: &OwnPlaces, destination: &str) -> Result<Copy, ServiceError> {
    let Some(o) = entry
        .ollama
        .as_ref()
        .filter(|_| entry.source == Source::Ollama && own.owns(entry))
    else {
        return Ok(Copy::Alias);
    };
    let name = download::ollama::Name::parse(destination, false)
        .map_err(|e| ServiceError::invalid("destination", e.to_string()))?;
    let root = store_root(&o.manifest).ok_or_else(|| {
        ServiceError::Internal(format!(
            "{} is not inside an Ollama store's manifests folder",
            o.manifest.display()
        ))
    })?;
    let path =
        catalog::ollama::manifest_path(root, &name.host, &name.namespace, &name.model, &name.tag);
    if path == o.manifest {
        return Ok(Copy::Manifest(path));
    }
    let bytes = std::fs::read(&o.manifest)
        .map_err(|e| ServiceError::Internal(format!("reading {}: {e}", o.manifest.display())))?;
    download::queue::write_atomically(&download::queue::FinalFile {
        path: path.clone(),
        bytes,
    })
    .map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(Copy::Manifest(path))
}

/// `<root>/manifests/<host>/<namespace>/<model>/<tag>` → `<root>`.
fn store_root(manifest: &Path) -> Option<&Path> {
    let manifests = manifest.ancestors().nth(4)?;
    (manifests.file_name()? == "manifests").then_some(manifests.parent()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_root_is_above_manifests() {
        let m = Path::new("/s/manifests/registry.ollama.ai/library/m/latest");
        assert_eq!(store_root(m), Some(Path::new("/s")));
        assert_eq!(store_root(Path::new("/s/other/a/b/c/d")), None);
        assert_eq!(store_root(Path::new("latest")), None);
    }
}

impl crate::Models {
    /// Where this product keeps models ([`OwnPlaces`]), with the download records.
    pub async fn own_places(&self, config: &config::Config, paths: &config::Paths) -> OwnPlaces {
        let (c, p) = (config.clone(), paths.clone());
        match self
            .with_store(move |s| Ok(OwnPlaces::new(&c, &p, Some(s))))
            .await
        {
            Ok(Some(own)) => own,
            _ => OwnPlaces::new(config, paths, None),
        }
    }

    /// The model whose stored alias is `name` (or its `latest` twin), if any.
    async fn alias_owner(&self, name: &str) -> Option<String> {
        let names: Vec<String> = std::iter::once(name.to_string())
            .chain(crate::latest_twin(name))
            .collect();
        self.with_store(move |s| {
            for n in &names {
                if let Some(id) = s.resolve_alias(n)? {
                    return Ok(Some((id, n.clone())));
                }
            }
            Ok(None)
        })
        .await
        .ok()
        .flatten()
        .flatten()
        .map(|(id, _)| id)
    }

    /// Ollama's `rm` by name: a name that is a model's alias (a copy [`copy`] made as one)
    /// loses the alias and the model stays; any other name removes its model by
    /// [`crate::remove::remove`]'s rule (unloaded first), and the catalog is scanned again.
    /// `None` when only an alias went.
    pub async fn remove_name(
        self: &std::sync::Arc<Self>,
        name: &str,
        own: OwnPlaces,
    ) -> Result<Option<crate::remove::Removal>, ServiceError> {
        if let Some(id) = self.alias_owner(name).await {
            self.with_store(move |s| s.set_alias(&id, None)).await?;
            return Ok(None);
        }
        let entry = self.resolve(name).await?;
        let _ = self.manager().unload(&entry.id);
        let e = entry.clone();
        let removal = tokio::task::spawn_blocking(move || crate::remove::remove(&e, &own, false))
            .await
            .map_err(|e| ServiceError::Internal(format!("removing: {e}")))??;
        self.rescan_blocking().await;
        Ok(Some(removal))
    }

    /// Ollama's `cp`: `destination` becomes a second name of the model `source` names
    /// ([`copy`]: a second manifest, else the model's alias), seen at once in the model
    /// lists. A destination that already names another model is refused.
    pub async fn copy_name(
        self: &std::sync::Arc<Self>,
        source: &str,
        destination: &str,
        own: OwnPlaces,
    ) -> Result<Copy, ServiceError> {
        let entry = self.resolve(source).await?;
        // Destinations are Ollama names: a path or `..` is refused before anything is written.
        download::ollama::Name::parse(destination, false)
            .map_err(|e| ServiceError::invalid("destination", e.to_string()))?;
        if let Ok(other) = self.resolve(destination).await {
            if other.id == entry.id {
                return Ok(Copy::Alias);
            }
            return Err(ServiceError::Conflict(format!(
                "'{destination}' already names model '{}'; delete it first",
                other.id
            )));
        }
        let e = entry.clone();
        let dest = destination.to_string();
        let made = tokio::task::spawn_blocking(move || copy(&e, &own, &dest))
            .await
            .map_err(|e| ServiceError::Internal(format!("copying: {e}")))??;
        match &made {
            Copy::Manifest(_) => self.rescan_blocking().await,
            Copy::Alias => {
                let (id, alias) = (entry.id.clone(), destination.to_string());
                let current = self.settings(&entry.id).await.alias;
                if let Some(current) = current {
                    return Err(ServiceError::Conflict(format!(
                        "model '{}' is not an Ollama model pulled here, so its copy is its alias, \
                         and it already has one ('{current}'): remove that name first \
                         (DELETE /api/delete, or PUT /api/models/{{id}}/alias)",
                        entry.id
                    )));
                }
                self.with_store(move |s| s.set_alias(&id, Some(&alias)))
                    .await?
                    .ok_or_else(|| {
                        ServiceError::Internal(
                            "the database is unavailable: a copy of a model that is not an \
                             Ollama model pulled here is an alias, stored there"
                                .into(),
                        )
                    })?;
            }
        }
        Ok(made)
    }

    /// Scans the model folders again on a blocking thread (the lists show the change).
    async fn rescan_blocking(self: &std::sync::Arc<Self>) {
        let me = self.clone();
        let _ = tokio::task::spawn_blocking(move || me.rescan()).await;
    }
}
