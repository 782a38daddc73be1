//! The one model resolver: which catalog entry a name means. Every command and every
//! protocol goes through [`resolve`] (the server through [`crate::Models::resolve`]).

use crate::error::ServiceError;
use catalog::{ModelEntry, ScanReport};
use std::path::Path;
use store::Store;

/// Finds a model by id, then by alias, then by the exact path of one of its files, then by
/// the canonical path (the same file reached through a relative path or a symlink).
pub fn resolve(
    catalog: &ScanReport,
    store: Option<&Store>,
    name: &str,
) -> Result<ModelEntry, ServiceError> {
    // Id or exact path: the catalog's own lookup.
    if let Some(m) = catalog.find(name) {
        return Ok(m.clone());
    }
    if let Some(id) = store.and_then(|s| s.resolve_alias(name).ok().flatten())
        && let Some(m) = catalog.find(&id)
    {
        return Ok(m.clone());
    }
    if let Some(m) = by_canonical_path(catalog, Path::new(name)) {
        return Ok(m.clone());
    }
    Err(ServiceError::UnknownModel(name.to_string()))
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
    }
}
