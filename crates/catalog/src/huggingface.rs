//! The Hugging Face hub cache (`huggingface_hub`'s layout), read-only.
//!
//! ```text
//! hub/models--{org}--{name}/refs/main              commit hash the `main` ref points to
//! hub/models--{org}--{name}/snapshots/{rev}/…      symlinks into ../../blobs
//! hub/models--{org}--{name}/blobs/{etag}[.incomplete]
//! ```
//! A repository can have several snapshots holding the same file name; the one `refs/main`
//! points to wins, then newer snapshots (by modification time).

use crate::entry::{ScanReport, Source};
use crate::folder::{self, Found};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Scans a hub cache folder (`~/.cache/huggingface/hub`).
pub fn scan(hub: &Path) -> ScanReport {
    let mut report = ScanReport::default();
    let Ok(read) = std::fs::read_dir(hub) else {
        return report;
    };
    let mut repos: Vec<(String, PathBuf)> = read
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            repo_id(&name).map(|id| (id, e.path()))
        })
        .collect();
    repos.sort();
    for (repo, dir) in repos {
        let mut found = Vec::new();
        let mut seen: HashSet<PathBuf> = HashSet::new();
        for snapshot in snapshots(&dir) {
            let (files, mut skipped) = folder::walk(&snapshot);
            report.skipped.append(&mut skipped);
            for f in files {
                // Same relative path in an older snapshot: a previous revision, not a model.
                if seen.insert(f.rel.clone()) {
                    found.push(Found {
                        rel: PathBuf::from(&repo).join(&f.rel),
                        ..f
                    });
                }
            }
        }
        let id_of = |rel: &Path| {
            rel.components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/")
        };
        let repo_of = |_: &Path| Some(repo.clone());
        let part = folder::assemble(found, Source::HuggingFace, &id_of, &repo_of);
        report.models.extend(part.models);
        report.skipped.extend(part.skipped);
    }
    report
}

/// `models--org--name` → `org/name`; datasets and spaces are not models.
pub fn repo_id(dir_name: &str) -> Option<String> {
    let rest = dir_name.strip_prefix("models--")?;
    if rest.is_empty() {
        return None;
    }
    Some(rest.replacen("--", "/", 1))
}

/// The repository's snapshot folders, the one `refs/main` names first, then newest first.
fn snapshots(repo_dir: &Path) -> Vec<PathBuf> {
    let main = std::fs::read_to_string(repo_dir.join("refs").join("main"))
        .ok()
        .map(|s| s.trim().to_string());
    let Ok(read) = std::fs::read_dir(repo_dir.join("snapshots")) else {
        return Vec::new();
    };
    let mut snaps: Vec<(bool, std::time::SystemTime, PathBuf)> = read
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let is_main = main.as_deref() == Some(&*e.file_name().to_string_lossy());
            let mtime = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (is_main, mtime, e.path())
        })
        .collect();
    snaps.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    snaps.into_iter().map(|(_, _, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::repo_id;

    #[test]
    fn repo_ids_from_cache_folder_names() {
        assert_eq!(
            repo_id("models--bartowski--Qwen2.5-7B-GGUF").as_deref(),
            Some("bartowski/Qwen2.5-7B-GGUF")
        );
        assert_eq!(repo_id("models--gpt2").as_deref(), Some("gpt2"));
        assert_eq!(repo_id("datasets--x--y"), None);
        assert_eq!(repo_id("models--"), None);
    }
}
