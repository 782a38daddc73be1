//! Ollama's model store (`~/.ollama/models`), read-only.
//!
//! ```text
//! models/manifests/{registry}/{namespace}/{model}/{tag}   OCI-style JSON manifest
//! models/blobs/sha256-{hex}                                content-addressed layers
//! ```
//! The layer with media type `application/vnd.ollama.image.model` is the GGUF file;
//! `…image.projector` is its vision projector. Names follow Ollama's short form:
//! `registry.ollama.ai/library/llama3.2/latest` is shown as `llama3.2:latest`.

use crate::entry::{ModelEntry, ScanReport, Skipped, Source};
use crate::probe;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

pub const DEFAULT_REGISTRY: &str = "registry.ollama.ai";
pub const MODEL_LAYER: &str = "application/vnd.ollama.image.model";
pub const PROJECTOR_LAYER: &str = "application/vnd.ollama.image.projector";

#[derive(Deserialize)]
struct Manifest {
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct Layer {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
}

/// Scans an Ollama models folder.
pub fn scan(models_dir: &Path) -> ScanReport {
    let mut report = ScanReport::default();
    let manifests = models_dir.join("manifests");
    let mut pending: Vec<(String, PathBuf, Option<PathBuf>)> = Vec::new();
    for entry in WalkDir::new(&manifests)
        .min_depth(4)
        .max_depth(4)
        .sort_by_file_name()
    {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(&manifests)
            .unwrap_or(entry.path());
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let [registry, namespace, model, tag] = parts.as_slice() else {
            continue;
        };
        let name = short_name(registry, namespace, model, tag);
        match read_manifest(entry.path(), models_dir) {
            Ok((blob, projector)) => pending.push((name, blob, projector)),
            Err(reason) => report.skipped.push(Skipped::new(entry.path(), reason)),
        }
    }
    let blobs: Vec<PathBuf> = pending.iter().map(|(_, b, _)| b.clone()).collect();
    for ((name, blob, mmproj), info) in pending.into_iter().zip(probe::scan_all(&blobs)) {
        match info {
            Ok(info) => report.models.push(ModelEntry {
                id: name.clone(),
                source: Source::Ollama,
                path: blob.clone(),
                parts: vec![blob],
                split_count: 1,
                missing_parts: Vec::new(),
                mmproj,
                architecture: info.architecture,
                name: info.name,
                file_type: info.file_type,
                quantization: info.quantization,
                context_length: info.context_length,
                size: info.file_size,
                repo: Some(name),
            }),
            Err(e) => report
                .skipped
                .push(Skipped::new(&blob, format!("{name}: {e}"))),
        }
    }
    report
}

/// Ollama's display name for a manifest path.
pub fn short_name(registry: &str, namespace: &str, model: &str, tag: &str) -> String {
    match (registry, namespace) {
        (DEFAULT_REGISTRY, "library") => format!("{model}:{tag}"),
        (DEFAULT_REGISTRY, ns) => format!("{ns}/{model}:{tag}"),
        (reg, ns) => format!("{reg}/{ns}/{model}:{tag}"),
    }
}

/// The model blob and projector blob a manifest names, both checked to exist.
fn read_manifest(path: &Path, models_dir: &Path) -> Result<(PathBuf, Option<PathBuf>), String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read manifest: {e}"))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| format!("not an Ollama manifest: {e}"))?;
    let blob = |layer: &Layer| -> Result<PathBuf, String> {
        let p = blob_path(models_dir, &layer.digest)
            .ok_or_else(|| format!("bad layer digest {:?}", layer.digest))?;
        if p.is_file() {
            Ok(p)
        } else {
            Err(format!("manifest points to a missing blob {}", p.display()))
        }
    };
    let model = manifest
        .layers
        .iter()
        .find(|l| l.media_type == MODEL_LAYER)
        .ok_or("manifest has no model layer (not a GGUF model)")?;
    let projector = manifest
        .layers
        .iter()
        .find(|l| l.media_type == PROJECTOR_LAYER)
        .map(blob)
        .transpose()?;
    Ok((blob(model)?, projector))
}

/// Where a store keeps the manifest of `registry/namespace/model:tag` (the downloader
/// writes pulled models in the same layout, so that this scan finds them).
pub fn manifest_path(
    models_dir: &Path,
    registry: &str,
    namespace: &str,
    model: &str,
    tag: &str,
) -> PathBuf {
    models_dir
        .join("manifests")
        .join(registry)
        .join(namespace)
        .join(model)
        .join(tag)
}

/// Where a store keeps the blob with `digest`; `None` for a digest that could leave the
/// blobs folder.
pub fn blob_path(models_dir: &Path, digest: &str) -> Option<PathBuf> {
    Some(models_dir.join("blobs").join(blob_file_name(digest)?))
}

/// `sha256:abcd…` → `sha256-abcd…`, refusing anything that could leave the blobs folder.
fn blob_file_name(digest: &str) -> Option<String> {
    let (algo, hex) = digest.split_once(':')?;
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    (ok(algo) && ok(hex)).then(|| format!("{algo}-{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_follow_ollama() {
        assert_eq!(
            short_name("registry.ollama.ai", "library", "llama3.2", "latest"),
            "llama3.2:latest"
        );
        assert_eq!(
            short_name("registry.ollama.ai", "jmorgan", "m", "q4"),
            "jmorgan/m:q4"
        );
        assert_eq!(
            short_name("hf.co", "bartowski", "m", "Q4_K_M"),
            "hf.co/bartowski/m:Q4_K_M"
        );
    }

    #[test]
    fn digests_cannot_escape_the_blob_folder() {
        assert_eq!(
            blob_file_name("sha256:abc123").as_deref(),
            Some("sha256-abc123")
        );
        assert_eq!(blob_file_name("sha256:../../etc/passwd"), None);
        assert_eq!(blob_file_name("nocolon"), None);
        assert_eq!(blob_file_name("sha256:"), None);
    }
}
