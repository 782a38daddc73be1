//! The model catalog: finds GGUF models on disk and describes each one from its header.
//!
//! Sources (each a [`Root`]):
//! - configured model folders, scanned recursively ([`folder`]);
//! - LM Studio's models folder (`publisher/repo/file.gguf`, same walk, hub-style ids);
//! - the Hugging Face cache (`models--org--name/snapshots/<rev>/…`, [`huggingface`]);
//! - Ollama's store (manifests → blobs, [`ollama`]).
//!
//! Everything here is read-only: the catalog never writes to a model folder.
//! Headers are read in fast scan mode ([`gguf::scan_path`]), in parallel, so that listing
//! thousands of files stays well under a second.

pub mod capabilities;
mod entry;
pub mod folder;
pub mod huggingface;
pub mod ollama;
mod probe;

// Split naming is a GGUF file convention shared with the downloader: it lives in `gguf`.
pub use capabilities::{CAPABILITIES, capabilities};
pub use entry::{Incomplete, ModelEntry, OllamaModel, Root, ScanReport, Skipped, Source};
pub use gguf::split;

use std::collections::HashMap;

/// Scans every root and merges the results into one report with unique ids.
///
/// Roots that do not exist are skipped silently for the well-known stores (they are only
/// there when the user has that tool) and reported for configured folders.
pub fn discover(roots: &[Root]) -> ScanReport {
    let mut report = ScanReport::default();
    for root in roots {
        let part = scan_root(root);
        report.models.extend(part.models);
        report.skipped.extend(part.skipped);
    }
    dedupe_ids(&mut report.models);
    report.models.sort_by(|a, b| a.id.cmp(&b.id));
    report
}

/// Scans one root according to its kind.
pub fn scan_root(root: &Root) -> ScanReport {
    if !root.path.exists() {
        let mut report = ScanReport::default();
        if root.source == Source::Folder {
            report
                .skipped
                .push(Skipped::new(&root.path, "model folder does not exist"));
        }
        return report;
    }
    match root.source {
        Source::Folder | Source::LmStudio => folder::scan(&root.path, root.source),
        Source::HuggingFace => huggingface::scan(&root.path),
        Source::Ollama => ollama::scan(&root.path),
    }
}

/// Makes ids unique across roots without changing the id of the first holder.
///
/// Two folders can hold files with the same stem; the first (in root order, then path
/// order) keeps the plain stem, later ones get their parent folder's name in front, then a
/// counter. Given the same files the result is the same, so ids are stable between scans.
fn dedupe_ids(models: &mut [ModelEntry]) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in models.iter() {
        *seen.entry(m.id.clone()).or_default() += 1;
    }
    let mut taken: HashMap<String, ()> = HashMap::new();
    for m in models.iter_mut() {
        if seen[&m.id] == 1 {
            taken.insert(m.id.clone(), ());
            continue;
        }
        if !taken.contains_key(&m.id) {
            taken.insert(m.id.clone(), ());
            continue;
        }
        let parent = m
            .path
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut candidate = format!("{parent}/{}", m.id);
        let mut n = 2;
        while taken.contains_key(&candidate) {
            candidate = format!("{parent}/{}-{n}", m.id);
            n += 1;
        }
        taken.insert(candidate.clone(), ());
        m.id = candidate;
    }
}
