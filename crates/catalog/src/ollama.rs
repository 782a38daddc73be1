//! Ollama's model store (`~/.ollama/models`), read-only.
//!
//! ```text
//! models/manifests/{registry}/{namespace}/{model}/{tag}   OCI-style JSON manifest
//! models/blobs/sha256-{hex}                                content-addressed layers
//! ```
//! The layer with media type `application/vnd.ollama.image.model` is the GGUF file;
//! `…image.projector` is its vision projector; `…image.template` (a Go template),
//! `…image.system` and `…image.params` (JSON options) say how to prompt it. Names follow
//! Ollama's short form: `registry.ollama.ai/library/llama3.2/latest` is shown as
//! `llama3.2:latest`.

use crate::entry::{Incomplete, ModelEntry, OllamaModel, ScanReport, Skipped, Source};
use crate::probe;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

pub const DEFAULT_REGISTRY: &str = "registry.ollama.ai";
pub const MODEL_LAYER: &str = "application/vnd.ollama.image.model";
pub const PROJECTOR_LAYER: &str = "application/vnd.ollama.image.projector";
pub const TEMPLATE_LAYER: &str = "application/vnd.ollama.image.template";
pub const SYSTEM_LAYER: &str = "application/vnd.ollama.image.system";
pub const PARAMS_LAYER: &str = "application/vnd.ollama.image.params";
/// Template, system and params layers are a few kilobytes; a bigger one is not read.
const MAX_TEXT_LAYER: u64 = 1 << 20;

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    config: Option<Layer>,
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
    let mut pending: Vec<(String, PathBuf, Option<PathBuf>, OllamaModel)> = Vec::new();
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
            Ok((blob, projector, extras)) => pending.push((name, blob, projector, extras)),
            Err(reason) => report.skipped.push(Skipped::new(entry.path(), reason)),
        }
    }
    let blobs: Vec<PathBuf> = pending.iter().map(|(_, b, _, _)| b.clone()).collect();
    for ((name, blob, mmproj, extras), info) in pending.into_iter().zip(probe::scan_all(&blobs)) {
        match info {
            Ok(info) => report.models.push(ModelEntry {
                incomplete: Incomplete::of(&blob, &info),
                ollama: Some(extras),
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

fn parse_manifest(path: &Path) -> Result<Manifest, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read manifest: {e}"))?;
    serde_json::from_slice(&text).map_err(|e| format!("not an Ollama manifest: {e}"))
}

/// The model blob and projector blob a manifest names, both checked to exist, and its
/// template, system and params layers.
fn read_manifest(
    path: &Path,
    models_dir: &Path,
) -> Result<(PathBuf, Option<PathBuf>, OllamaModel), String> {
    let manifest = parse_manifest(path)?;
    let blob = |layer: &Layer| -> Result<PathBuf, String> {
        let p = blob_path(models_dir, &layer.digest)
            .ok_or_else(|| format!("bad layer digest {:?}", layer.digest))?;
        if p.is_file() {
            Ok(p)
        } else {
            Err(format!("manifest points to a missing blob {}", p.display()))
        }
    };
    let layer = |media_type: &str| manifest.layers.iter().find(|l| l.media_type == media_type);
    let model = layer(MODEL_LAYER).ok_or("manifest has no model layer (not a GGUF model)")?;
    let projector = layer(PROJECTOR_LAYER).map(blob).transpose()?;
    let text = |media_type: &str| -> Result<Option<String>, String> {
        let Some(l) = layer(media_type) else {
            return Ok(None);
        };
        let p = blob(l)?;
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        if len > MAX_TEXT_LAYER {
            return Err(format!(
                "{media_type} layer is {len} bytes (at most {MAX_TEXT_LAYER})"
            ));
        }
        let bytes = std::fs::read(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    };
    let params = match text(PARAMS_LAYER)? {
        None => serde_json::Map::new(),
        Some(t) => serde_json::from_str(&t)
            .map_err(|e| format!("params layer is not a JSON object: {e}"))?,
    };
    let extras = OllamaModel {
        manifest: path.to_path_buf(),
        template: text(TEMPLATE_LAYER)?,
        system: text(SYSTEM_LAYER)?,
        params,
    };
    Ok((blob(model)?, projector, extras))
}

/// The blobs of `manifest` (its config and layers) that no other manifest in the store
/// names: what removing that model may delete. Read-only, like the rest of the catalog.
pub fn blobs_only_in(models_dir: &Path, manifest: &Path) -> Result<Vec<PathBuf>, String> {
    let digests = |m: &Manifest| -> Vec<String> {
        m.config
            .iter()
            .chain(&m.layers)
            .map(|l| l.digest.clone())
            .collect()
    };
    let mine = digests(&parse_manifest(manifest)?);
    let mut others = std::collections::HashSet::new();
    for entry in WalkDir::new(models_dir.join("manifests"))
        .min_depth(4)
        .max_depth(4)
    {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_file() || entry.path() == manifest {
            continue;
        }
        // A manifest we cannot read might use any blob: keep them all rather than guess.
        let other = parse_manifest(entry.path())
            .map_err(|e| format!("{}: {e}; not deleting shared blobs", entry.path().display()))?;
        others.extend(digests(&other));
    }
    let mut only: Vec<PathBuf> = mine
        .iter()
        .filter(|d| !others.contains(*d))
        .filter_map(|d| blob_path(models_dir, d))
        .collect();
    only.sort();
    only.dedup();
    Ok(only)
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
