//! Recursive scan of a folder of GGUF files: configured model folders and LM Studio's.
//!
//! Also the shared assembly step used by the Hugging Face cache scan: group split parts,
//! attach vision projectors, read headers, build entries.

use crate::entry::{Incomplete, ModelEntry, ScanReport, Skipped, Source};
use crate::{probe, split};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

/// A GGUF file found on disk.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub path: PathBuf,
    /// Path relative to the scanned root (used for hub-style ids).
    pub rel: PathBuf,
    pub size: u64,
}

/// Extensions of other model formats: worth telling the user why they are not listed.
const OTHER_MODEL_FORMATS: &[&str] = &[
    "safetensors",
    "bin",
    "pt",
    "pth",
    "ckpt",
    "onnx",
    "ggml",
    "ggmlv3",
];
/// Markers of downloads still in progress (ours, Hugging Face's, browsers').
const PARTIAL_SUFFIXES: &[&str] = &[
    ".part",
    ".partial",
    ".incomplete",
    ".download",
    ".crdownload",
    ".tmp",
];
/// Other model formats smaller than this are config files and tokenizers, not weights.
const MIN_WEIGHTS_SIZE: u64 = 1 << 20;

/// Scans `root` recursively and lists its models. A `root` that is a GGUF file (llama-server's
/// `-m FILE`) lists that one model: the file and, for a split model, its other parts beside
/// it, with the file's stem as the id.
pub fn scan(root: &Path, source: Source) -> ScanReport {
    let (found, mut skipped) = if root.is_file() {
        one_model(root)
    } else {
        walk(root)
    };
    let id_of = |model_rel: &Path| match source {
        // Configured folders: the file stem, as users know their files.
        Source::Folder => model_rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        // LM Studio keeps `publisher/repo/file.gguf`: the id is that path without extension.
        _ => slash_path(model_rel),
    };
    let repo_of = |model_rel: &Path| match source {
        Source::LmStudio => model_rel
            .parent()
            .filter(|p| p.components().count() == 2)
            .map(slash_path),
        _ => None,
    };
    let mut report = assemble(found, source, &id_of, &repo_of);
    report.skipped.append(&mut skipped);
    report.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    report
}

/// Walks `root` (following symlinks, skipping hidden folders) and returns its GGUF files and
/// the files it will not list, with a reason.
pub(crate) fn walk(root: &Path) -> (Vec<Found>, Vec<Skipped>) {
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    let walker = WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(err) => {
                let path = err.path().unwrap_or(root).to_path_buf();
                let reason = if err.loop_ancestor().is_some() {
                    "symlink loop".to_string()
                } else {
                    format!(
                        "cannot read: {}",
                        err.io_error().map_or(err.to_string(), |e| e.to_string())
                    )
                };
                skipped.push(Skipped { path, reason });
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        let lower = name.to_ascii_lowercase();
        if split::strip_gguf(&name).is_some() {
            let rel = entry
                .path()
                .strip_prefix(root)
                .unwrap_or(entry.path())
                .to_path_buf();
            found.push(Found {
                path: entry.into_path(),
                rel,
                size,
            });
        } else if lower.contains(".gguf") && PARTIAL_SUFFIXES.iter().any(|s| lower.ends_with(s)) {
            skipped.push(Skipped::new(entry.path(), "incomplete download"));
        } else if let Some(ext) = lower.rsplit_once('.').map(|(_, e)| e)
            && OTHER_MODEL_FORMATS.contains(&ext)
            && size >= MIN_WEIGHTS_SIZE
        {
            skipped.push(Skipped::new(
                entry.path(),
                format!("not a GGUF file (.{ext}); convert it to GGUF to use it"),
            ));
        }
    }
    (found, skipped)
}

/// The files of the model `file` names: itself, or every part of its split set found in its
/// folder (not below it), relative to that folder so that ids are file stems.
fn one_model(file: &Path) -> (Vec<Found>, Vec<Skipped>) {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if split::strip_gguf(&name).is_none() {
        return (Vec::new(), vec![Skipped::new(file, "not a .gguf file")]);
    }
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let found = |path: PathBuf| {
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let rel = PathBuf::from(path.file_name().unwrap_or_default());
        Found { path, rel, size }
    };
    let Some(set) = split::parse(&name) else {
        return (vec![found(file.to_path_buf())], Vec::new());
    };
    // Parts are named by llama.cpp's rule, so they can be named here rather than searched.
    let parts = (1..=set.count)
        .map(|i| dir.join(format!("{}-{i:05}-of-{:05}.gguf", set.prefix, set.count)))
        .filter(|p| p.is_file())
        .map(found)
        .collect();
    (parts, Vec::new())
}

/// Whether a file name marks a multimodal projector (`mmproj-model-f16.gguf`,
/// `model.mmproj-Q8_0.gguf`, …).
fn is_mmproj_name(file_name: &str) -> bool {
    file_name.to_ascii_lowercase().contains("mmproj")
}

/// Groups files into models, reads their headers and builds the report.
///
/// `id_of` and `repo_of` get the model's path relative to the root, without extension and
/// without split suffix (e.g. `org/repo/Model-Q4_K_M`).
pub(crate) fn assemble(
    found: Vec<Found>,
    source: Source,
    id_of: &dyn Fn(&Path) -> String,
    repo_of: &dyn Fn(&Path) -> Option<String>,
) -> ScanReport {
    let mut report = ScanReport::default();

    // Group: key = (folder, model stem); singles and split sets alike.
    struct Group {
        rel_stem: PathBuf,
        count: u32,
        parts: BTreeMap<u32, Found>,
    }
    let mut groups: BTreeMap<(PathBuf, String), Group> = BTreeMap::new();
    let mut projectors: BTreeMap<PathBuf, Vec<Found>> = BTreeMap::new();
    for f in found {
        let name = f
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = f.path.parent().map(Path::to_path_buf).unwrap_or_default();
        if is_mmproj_name(&name) {
            projectors.entry(dir).or_default().push(f);
            continue;
        }
        let (stem, index, count) = match split::parse(&name) {
            Some(s) => (s.prefix.to_string(), s.index, s.count),
            None => (split::strip_gguf(&name).unwrap_or(&name).to_string(), 1, 1),
        };
        let rel_stem = f
            .rel
            .parent()
            .map(|p| p.join(&stem))
            .unwrap_or_else(|| PathBuf::from(&stem));
        let group = groups.entry((dir, stem)).or_insert_with(|| Group {
            rel_stem,
            count,
            parts: BTreeMap::new(),
        });
        if group.count != count || group.parts.contains_key(&index) {
            // e.g. `m-00001-of-00002.gguf` next to `m-00001-of-00003.gguf`, or `m.gguf` next
            // to a split `m-…`: the names contradict each other, so keep the first and say so.
            report.skipped.push(Skipped::new(
                &f.path,
                "split part does not match the other parts' count",
            ));
            continue;
        }
        group.parts.insert(index, f);
    }

    // Read the headers of every model part and every projector, in one parallel pass: the
    // first part gives the facts, and every part says whether its tensor data is all there.
    let mut to_probe: Vec<PathBuf> = groups
        .values()
        .flat_map(|g| g.parts.values().map(|f| f.path.clone()))
        .collect();
    let model_probes = to_probe.len();
    for list in projectors.values() {
        to_probe.extend(list.iter().map(|f| f.path.clone()));
    }
    let mut results = probe::scan_all(&to_probe).into_iter();
    let mut part_infos = results
        .by_ref()
        .take(model_probes)
        .collect::<Vec<_>>()
        .into_iter();

    // Projectors that really are projectors (architecture `clip`), per folder.
    let mut good_projectors: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for (dir, list) in &projectors {
        for f in list {
            match results.next() {
                Some(Ok(_)) => good_projectors
                    .entry(dir.clone())
                    .or_default()
                    .push(f.path.clone()),
                Some(Err(e)) => report.skipped.push(Skipped::new(&f.path, e)),
                None => {}
            }
        }
    }

    for ((dir, _), group) in groups {
        let missing: Vec<u32> = (1..=group.count)
            .filter(|i| !group.parts.contains_key(i))
            .collect();
        let size = group.parts.values().map(|f| f.size).sum();
        let first = group
            .parts
            .get(&1)
            .or_else(|| group.parts.values().next())
            .map(|f| f.path.clone());
        let Some(first) = first else { continue };
        let mut infos = Vec::with_capacity(group.parts.len());
        let mut broken = None;
        for (index, f) in &group.parts {
            match part_infos.next() {
                Some(Ok(info)) => infos.push((*index, f.path.clone(), info)),
                Some(Err(e)) if broken.is_none() => broken = Some(Skipped::new(&f.path, e)),
                _ => {}
            }
        }
        if let Some(skipped) = broken {
            report.skipped.push(skipped);
            continue;
        }
        let incomplete = infos
            .iter()
            .find_map(|(_, path, info)| Incomplete::of(path, info));
        // First part missing: still listed, so the user sees what is missing.
        let info = infos
            .into_iter()
            .find(|(index, _, _)| *index == 1)
            .map(|(_, _, info)| info);
        if info.as_ref().and_then(|i| i.architecture.as_deref()) == Some("clip") {
            // A projector whose name does not say so: attach it like a named one.
            good_projectors.entry(dir).or_default().push(first);
            continue;
        }
        let mmproj = good_projectors.get(&dir).and_then(|v| v.first().cloned());
        report.models.push(ModelEntry {
            id: id_of(&group.rel_stem),
            source,
            path: first,
            parts: group.parts.into_values().map(|f| f.path).collect(),
            split_count: group.count,
            missing_parts: missing,
            mmproj,
            architecture: info.as_ref().and_then(|i| i.architecture.clone()),
            name: info.as_ref().and_then(|i| i.name.clone()),
            file_type: info.as_ref().and_then(|i| i.file_type),
            quantization: info.as_ref().and_then(|i| i.quantization.clone()),
            context_length: info.as_ref().and_then(|i| i.context_length),
            size,
            repo: repo_of(&group.rel_stem),
            incomplete,
            ollama: None,
        });
    }

    // Projectors in folders with no model to attach to are listed as skipped, with why.
    // Projectors found through their architecture come after the models in that folder were
    // built, so attach them in a second pass.
    for m in &mut report.models {
        if m.mmproj.is_none() {
            let dir = m.path.parent().map(Path::to_path_buf).unwrap_or_default();
            m.mmproj = good_projectors.get(&dir).and_then(|v| v.first().cloned());
        }
    }
    for (dir, list) in &good_projectors {
        if !report
            .models
            .iter()
            .any(|m| m.path.parent() == Some(dir.as_path()))
        {
            for p in list {
                report.skipped.push(Skipped::new(
                    p,
                    "vision projector (mmproj) with no model beside it",
                ));
            }
        }
    }
    report
}

/// A relative path with `/` separators, as ids use them on every platform.
fn slash_path(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
