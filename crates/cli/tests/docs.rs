//! The map must stay true: every file, folder and `file::item` that `docs/ARCHITECTURE.md`
//! cites in backticks exists in the repository (paths may be given from the repo root or as a
//! unique-enough tail such as `api/openai.rs`; `<placeholders>` and globs match any name).

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every tracked-looking file and folder under the root, as `/`-separated relative paths.
fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') || name == "target" || name == "node_modules" {
                continue;
            }
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let is_dir = path.is_dir();
            out.push(if is_dir { format!("{rel}/") } else { rel });
            if is_dir {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

/// Does the cited `pattern` name `candidate` (a path from the repo root)? The pattern may be
/// a tail of the path (`api/openai.rs`); `<placeholder>` and `*` stand for one path segment.
fn matches(pattern: &str, candidate: &str) -> bool {
    let mut glob = String::new();
    let mut rest = pattern;
    while let Some(i) = rest.find('<') {
        glob.push_str(&rest[..i]);
        glob.push('*');
        rest = rest[i..].find('>').map_or("", |j| &rest[i + j + 1..]);
    }
    glob.push_str(rest);
    let Ok(pattern) = glob::Pattern::new(&glob) else {
        return false;
    };
    let opts = glob::MatchOptions {
        require_literal_separator: true,
        ..Default::default()
    };
    // Anchored at the start of the path or right after any `/`.
    std::iter::once(0)
        .chain(candidate.match_indices('/').map(|(i, _)| i + 1))
        .any(|start| pattern.matches_with(&candidate[start..], opts))
}

/// The backticked spans of the document that name a file or folder of ours.
fn cited_paths(doc: &str) -> Vec<String> {
    doc.split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| !span.contains(' ') && !span.starts_with('/') && !span.starts_with('~'))
        .filter(|span| {
            let path = span.split("::").next().unwrap();
            // Source files by name; data and docs only with a folder (a bare `config.toml`
            // is the user's file, not ours).
            const CODE: &[&str] = &[".rs", ".sh", ".py", ".ts", ".vue"];
            const DATA: &[&str] = &[".md", ".toml", ".json", ".sql"];
            CODE.iter().any(|e| path.ends_with(e))
                || (path.contains('/') && DATA.iter().any(|e| path.ends_with(e)))
                || path.starts_with("crates/")
                || path.starts_with("scripts/")
                || path.starts_with("docs/")
                || path.starts_with("vendor/")
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn every_path_the_architecture_map_cites_exists() {
    let root = repo_root();
    let doc = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).unwrap();
    let files = tree(&root);
    let mut missing = Vec::new();
    let cited = cited_paths(&doc);
    assert!(cited.len() > 20, "the map cites almost no files: {cited:?}");
    for span in cited {
        let mut parts = span.split("::");
        let path = parts.next().unwrap().trim_end_matches('/');
        let item = parts.next();
        let found: Vec<&String> = files
            .iter()
            .filter(|f| matches(path, f.trim_end_matches('/')))
            .collect();
        if found.is_empty() {
            missing.push(format!("`{span}`: no such file or folder"));
            continue;
        }
        if let Some(item) = item {
            let ident = item.trim_end_matches("()");
            let defined = found.iter().any(|f| {
                std::fs::read_to_string(root.join(f)).is_ok_and(|text| text.contains(ident))
            });
            if !defined {
                missing.push(format!("`{span}`: `{ident}` is not in {found:?}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/ARCHITECTURE.md cites what is not in the repository:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_path_matcher_takes_tails_and_placeholders() {
    assert!(matches("api/openai.rs", "crates/server/src/api/openai.rs"));
    assert!(!matches(
        "api/openai.rs",
        "crates/server/src/xapi/openai.rs"
    ));
    assert!(matches(
        "crates/cli/src/cmd/<group>.rs",
        "crates/cli/src/cmd/run.rs"
    ));
    assert!(!matches(
        "crates/cli/src/cmd/<group>.rs",
        "crates/cli/src/cmd/a/run.rs"
    ));
    assert!(matches(
        "tests/golden/*.json",
        "crates/server/tests/golden/models.json"
    ));
    assert!(!matches("stop.rs", "crates/engine/src/nonstop.rs"));
}
