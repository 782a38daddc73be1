//! Read-only file tools inside configured roots: `read_file`, `file_glob_search`,
//! `grep_search` (llama-server's names and main arguments).
//!
//! Every path is resolved (symlinks included) before it is used and must then lie inside a
//! root: `../` and a symlink pointing out are refused alike. Walks do not follow symlinks, and
//! each file a walk finds is resolved and checked again before it is read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value, json};

const MAX_READ_BYTES: u64 = 256 << 10;
const MAX_RESULTS: usize = 200;
const MAX_GREP_FILE_BYTES: u64 = 2 << 20;
const MAX_WALK_ENTRIES: usize = 100_000;

#[derive(Clone, Default)]
pub(super) struct Roots(Arc<Vec<PathBuf>>);

impl Roots {
    /// Roots that do not exist are left out (with a warning).
    pub(super) fn new(roots: &[PathBuf]) -> Self {
        let canon = roots
            .iter()
            .filter_map(|r| match std::fs::canonicalize(r) {
                Ok(c) if c.is_dir() => Some(c),
                _ => {
                    tracing::warn!("tools.file_roots: {} is not a folder; left out", r.display());
                    None
                }
            })
            .collect();
        Self(Arc::new(canon))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `path` (relative ones are taken from the first root) resolved, and inside a root.
    fn resolve(&self, path: Option<&str>) -> Result<PathBuf, String> {
        let first = self.0.first().ok_or("no file roots are configured (tools.file_roots)")?;
        let p = match path.map(str::trim).filter(|p| !p.is_empty()) {
            None => return Ok(first.clone()),
            Some(p) => Path::new(p),
        };
        let joined = if p.is_absolute() { p.to_path_buf() } else { first.join(p) };
        let canon = std::fs::canonicalize(&joined).map_err(|e| format!("{}: {e}", p.display()))?;
        if self.0.iter().any(|r| canon.starts_with(r)) {
            Ok(canon)
        } else {
            Err(format!("{} is outside the allowed folders (tools.file_roots)", p.display()))
        }
    }

    fn inside(&self, p: &Path) -> bool {
        std::fs::canonicalize(p).is_ok_and(|c| self.0.iter().any(|r| c.starts_with(r)))
    }
}

pub(super) fn tools() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "read_file",
            "Read a text file inside the allowed folders. Optionally give a 1-based line range.",
            super::object_schema(
                json!({
                    "path": {"type": "string", "description": "Path to the file (relative to the first allowed folder, or absolute)"},
                    "start_line": {"type": "integer", "minimum": 1, "description": "First line, 1-based (default 1)"},
                    "end_line": {"type": "integer", "minimum": 1, "description": "Last line, inclusive (default: end of file)"}
                }),
                &["path"],
            ),
        ),
        (
            "file_glob_search",
            "Find files by glob pattern inside the allowed folders.",
            super::object_schema(
                json!({
                    "path": {"type": "string", "description": "Folder to search in (default: the first allowed folder)"},
                    "include": {"type": "string", "description": "Glob for files to include, e.g. \"**/*.rs\" (default **)"},
                    "exclude": {"type": "string", "description": "Glob for files to leave out"},
                    "limit": {"type": "integer", "minimum": 1, "description": "Most results (default and cap 200)"}
                }),
                &[],
            ),
        ),
        (
            "grep_search",
            "Search text files inside the allowed folders for a regular expression.",
            super::object_schema(
                json!({
                    "pattern": {"type": "string", "description": "Regular expression (or literal text with literal=true)"},
                    "path": {"type": "string", "description": "File or folder to search (default: the first allowed folder)"},
                    "include": {"type": "string", "description": "Glob for files to search (default **)"},
                    "literal": {"type": "boolean", "description": "Treat the pattern as plain text"},
                    "ignore_case": {"type": "boolean", "description": "Case-insensitive"}
                }),
                &["pattern"],
            ),
        ),
    ]
}

pub(super) fn call(roots: &Roots, name: &str, args: &Map<String, Value>) -> Result<String, String> {
    match name {
        "read_file" => read_file(roots, args),
        "file_glob_search" => glob_search(roots, args),
        "grep_search" => grep_search(roots, args),
        other => Err(format!("unknown tool {other}")),
    }
}

fn glob(pattern: Option<&str>) -> Result<Option<globset::GlobMatcher>, String> {
    pattern
        .filter(|p| !p.is_empty())
        .map(|p| {
            globset::GlobBuilder::new(p)
                .literal_separator(false)
                .build()
                .map(|g| g.compile_matcher())
                .map_err(|e| format!("bad glob {p:?}: {e}"))
        })
        .transpose()
}

fn read_file(roots: &Roots, args: &Map<String, Value>) -> Result<String, String> {
    let path = roots.resolve(super::str_arg(args, "path"))?;
    if !path.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    let len = path.metadata().map_err(|e| e.to_string())?.len();
    let mut bytes = Vec::new();
    use std::io::Read;
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_READ_BYTES).read_to_end(&mut bytes))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let start = args.get("start_line").and_then(Value::as_u64).unwrap_or(1).max(1) as usize;
    let end = args.get("end_line").and_then(Value::as_u64).map(|e| e as usize);
    let mut out: String = text
        .lines()
        .enumerate()
        .filter(|(i, _)| i + 1 >= start && end.is_none_or(|e| i + 1 <= e))
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    if len > MAX_READ_BYTES {
        out.push_str(&format!("[the file is {len} bytes; only the first {MAX_READ_BYTES} were read]\n"));
    }
    Ok(out)
}

/// Files under `base` (not following symlinks), with their path relative to `base`.
fn walk(base: &Path) -> impl Iterator<Item = (PathBuf, String)> + '_ {
    walkdir::WalkDir::new(base)
        .follow_links(false)
        .into_iter()
        .take(MAX_WALK_ENTRIES)
        .filter_map(Result::ok)
        .filter(|e| !e.file_type().is_dir())
        .map(move |e| {
            let rel = e.path().strip_prefix(base).unwrap_or(e.path()).to_string_lossy().into_owned();
            (e.into_path(), rel)
        })
}

fn glob_search(roots: &Roots, args: &Map<String, Value>) -> Result<String, String> {
    let base = roots.resolve(super::str_arg(args, "path"))?;
    let include = glob(super::str_arg(args, "include"))?;
    let exclude = glob(super::str_arg(args, "exclude"))?;
    let limit = args.get("limit").and_then(Value::as_u64).map_or(MAX_RESULTS, |l| (l as usize).min(MAX_RESULTS));
    let mut found = Vec::new();
    for (path, rel) in walk(&base) {
        if include.as_ref().is_some_and(|g| !g.is_match(&rel)) || exclude.as_ref().is_some_and(|g| g.is_match(&rel)) {
            continue;
        }
        if !roots.inside(&path) {
            continue;
        }
        found.push(path.display().to_string());
        if found.len() >= limit {
            break;
        }
    }
    if found.is_empty() {
        return Ok("No files found.".into());
    }
    Ok(found.join("\n"))
}

fn grep_search(roots: &Roots, args: &Map<String, Value>) -> Result<String, String> {
    let pattern = super::str_arg(args, "pattern").unwrap_or_default();
    let literal = args.get("literal").and_then(Value::as_bool).unwrap_or(false);
    let source = if literal { regex::escape(pattern) } else { pattern.to_owned() };
    let re = regex::RegexBuilder::new(&source)
        .case_insensitive(args.get("ignore_case").and_then(Value::as_bool).unwrap_or(false))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("bad pattern: {e}"))?;
    let base = roots.resolve(super::str_arg(args, "path"))?;
    let include = glob(super::str_arg(args, "include"))?;
    let files: Vec<(PathBuf, String)> = if base.is_file() {
        vec![(base.clone(), base.display().to_string())]
    } else {
        walk(&base).collect()
    };
    let mut out = Vec::new();
    'files: for (path, rel) in files {
        if include.as_ref().is_some_and(|g| !g.is_match(&rel)) || !roots.inside(&path) {
            continue;
        }
        if path.metadata().map_or(true, |m| m.len() > MAX_GREP_FILE_BYTES) {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else { continue };
        if bytes.contains(&0) {
            continue; // binary
        }
        for (i, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
            if re.is_match(line) {
                out.push(format!("{}:{}: {}", path.display(), i + 1, line.chars().take(300).collect::<String>()));
                if out.len() >= MAX_RESULTS {
                    break 'files;
                }
            }
        }
    }
    if out.is_empty() {
        return Ok("No matches.".into());
    }
    Ok(out.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_roots_are_refused_after_resolving_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("sub/a.txt"), "hello\nneedle here\nbye\n").unwrap();
        std::fs::write(outside.join("secret.txt"), "needle secret\n").unwrap();
        std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("link.txt")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("linkdir")).unwrap();
        let roots = Roots::new(std::slice::from_ref(&root));
        let args = |v: Value| v.as_object().unwrap().clone();

        let text = call(&roots, "read_file", &args(json!({"path": "sub/a.txt", "start_line": 2, "end_line": 2}))).unwrap();
        assert_eq!(text, "needle here\n");
        for bad in ["../outside/secret.txt", "link.txt", "linkdir/secret.txt"] {
            let e = call(&roots, "read_file", &args(json!({"path": bad}))).unwrap_err();
            assert!(e.contains("outside the allowed folders"), "{bad}: {e}");
        }
        let abs = outside.join("secret.txt").display().to_string();
        assert!(call(&roots, "read_file", &args(json!({"path": abs}))).unwrap_err().contains("outside"));

        let found = call(&roots, "file_glob_search", &args(json!({"include": "**/*.txt"}))).unwrap();
        assert!(found.contains("a.txt") && !found.contains("secret") && !found.contains("link.txt"), "{found}");
        let hits = call(&roots, "grep_search", &args(json!({"pattern": "needle"}))).unwrap();
        assert!(hits.contains("a.txt:2: needle here") && !hits.contains("secret"), "{hits}");
        let e = call(&roots, "grep_search", &args(json!({"pattern": "x", "path": "../outside"}))).unwrap_err();
        assert!(e.contains("outside"), "{e}");
    }
}
