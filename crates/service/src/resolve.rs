//! The one model resolver: which catalog entry a name means. Every command and every
//! protocol goes through [`resolve`] (the server through [`crate::Models::resolve`]).

use crate::error::ServiceError;
use catalog::{ModelEntry, ScanReport};
use std::path::Path;
use store::Store;

/// Finds a model by id, then by alias, then by Ollama's `latest` rule (see [`latest_twin`]),
/// then by the exact path of one of its files, then by the canonical path (the same file
/// reached through a relative path or a symlink).
pub fn resolve(
    catalog: &ScanReport,
    store: Option<&Store>,
    name: &str,
) -> Result<ModelEntry, ServiceError> {
    let by_name = |name: &str| -> Option<ModelEntry> {
        // Id or exact path: the catalog's own lookup.
        if let Some(m) = catalog.find(name) {
            return Some(m.clone());
        }
        let id = store.and_then(|s| s.resolve_alias(name).ok().flatten())?;
        catalog.find(&id).cloned()
    };
    if let Some(m) = by_name(name) {
        return Ok(m);
    }
    if let Some(m) = latest_twin(name).and_then(|twin| by_name(&twin)) {
        return Ok(m);
    }
    if let Some(m) = by_canonical_path(catalog, Path::new(name)) {
        return Ok(m.clone());
    }
    Err(ServiceError::UnknownModel(name.to_string()))
}

/// Ollama's rule that a name without a tag means `latest`, both ways: `llama3.2` also finds
/// `llama3.2:latest` (as Ollama's own clients write it short), and `alpha:latest` also finds
/// `alpha` (Ollama clients add the tag to names they read from `/api/tags`, where every model
/// is listed with one). Names that are paths have no twin.
pub fn latest_twin(name: &str) -> Option<String> {
    if name.is_empty() || Path::new(name).is_absolute() {
        return None;
    }
    match name.strip_suffix(":latest") {
        Some(short) if !short.is_empty() => Some(short.to_string()),
        Some(_) => None,
        // A tag is what follows the last `:` of the last path segment.
        None if name
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':')) =>
        {
            None
        }
        None => Some(format!("{name}:latest")),
    }
}

/// How requests' `model` names map to models beyond [`resolve`]: llama-server's single-model
/// mode, the names `serve` gives its model, and the configured fallback. Read by
/// [`crate::Models::pick`], the one place a request's `model` becomes a model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Routing {
    /// The model `serve -m` names: a GGUF file (then it is a catalog root of its own, see
    /// [`Routing::roots`]), or an id, alias or path of a discovered model.
    pub model: Option<String>,
    /// Single-model mode (`-m` and no other model folder): every request is served by
    /// `model`, whatever it names, as a single-model llama-server ignores `model` (clients
    /// hard-code names such as `gpt-3.5-turbo`); the model lists show `model` alone.
    pub single: bool,
    /// `--alias`: more names for `model`, for this run (the store keeps the user's own).
    pub aliases: Vec<String>,
    /// `--tags`: listed with `model`.
    pub tags: Vec<String>,
    /// `server.default_model`: what a request naming an unknown model gets instead of 404,
    /// and one naming none when several models are available.
    pub fallback: Option<String>,
}

impl Routing {
    /// The `-m` file, when `model` is one.
    fn file(&self) -> Option<&Path> {
        let path = Path::new(self.model.as_deref()?);
        path.is_file().then_some(path)
    }

    /// The catalog's roots: `configured` plus a `-m` file; in single-model mode the file alone
    /// (the user's folders and the other apps' stores are not served).
    pub fn roots(&self, configured: Vec<catalog::Root>) -> Vec<catalog::Root> {
        let Some(file) = self.file() else {
            return configured;
        };
        let root = catalog::Root::new(catalog::Source::Folder, file);
        if self.single {
            return vec![root];
        }
        // A file inside a configured folder is listed by the folder already (twice would give
        // it a second id).
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let file = absolute(file);
        let covered = configured
            .iter()
            .any(|r| r.source == catalog::Source::Folder && file.starts_with(absolute(&r.path)));
        let mut roots = configured;
        if !covered {
            roots.push(root);
        }
        roots
    }

    /// The id llama-server lists a model under: its first `--alias` in sorted order (a
    /// `std::set` there), else `id`.
    pub fn public_id(&self, id: &str, is_model: bool) -> String {
        match self.aliases.iter().min() {
            Some(alias) if is_model => alias.clone(),
            _ => id.to_string(),
        }
    }
}

fn by_canonical_path<'a>(catalog: &'a ScanReport, path: &Path) -> Option<&'a ModelEntry> {
    // Only names that exist as files cost a look at the catalog's files.
    let canonical = path.canonicalize().ok().filter(|p| p.is_file())?;
    catalog.models.iter().find(|m| {
        m.parts
            .iter()
            .any(|p| p.canonicalize().ok().as_ref() == Some(&canonical))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(dir: &Path) -> ScanReport {
        for name in ["alpha", "beta"] {
            gguf::fixtures::LlamaLike::new(name, "llama", 15, 4096, 300)
                .write_path(&dir.join(format!("{name}.gguf")))
                .unwrap();
        }
        catalog::discover(&[catalog::Root::new(catalog::Source::Folder, dir)])
    }

    #[test]
    fn finds_by_id_alias_path_and_canonical_path() {
        let dir = tempfile::tempdir().unwrap();
        let report = catalog(dir.path());
        let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
        store.set_alias("beta", Some("b")).unwrap();
        let path = dir.path().join("alpha.gguf");
        let via_dots = dir.path().join(".").join("alpha.gguf");
        for (name, want) in [
            ("alpha", "alpha"),
            ("b", "beta"),
            (path.to_str().unwrap(), "alpha"),
            (via_dots.to_str().unwrap(), "alpha"),
        ] {
            let got = resolve(&report, Some(&store), name).unwrap();
            assert_eq!(got.id, want, "{name}");
        }
        let err = resolve(&report, Some(&store), "gamma").unwrap_err();
        assert!(matches!(err, ServiceError::UnknownModel(_)));
        // Without a store there are no aliases.
        assert!(resolve(&report, None, "b").is_err());
        // Ollama's `latest` rule, both ways.
        assert_eq!(resolve(&report, None, "alpha:latest").unwrap().id, "alpha");
        assert!(resolve(&report, None, "alpha:q4").is_err());
    }

    #[test]
    fn latest_twins_follow_ollama() {
        assert_eq!(latest_twin("llama3.2").as_deref(), Some("llama3.2:latest"));
        assert_eq!(latest_twin("llama3.2:latest").as_deref(), Some("llama3.2"));
        assert_eq!(latest_twin("ns/m:latest").as_deref(), Some("ns/m"));
        assert_eq!(latest_twin("llama3.2:1b"), None);
        assert_eq!(
            latest_twin("host:5000/ns/m"),
            Some("host:5000/ns/m:latest".into())
        );
        assert_eq!(latest_twin(":latest"), None);
        assert_eq!(latest_twin(""), None);
    }
}
