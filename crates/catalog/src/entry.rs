//! What the catalog reports: models, the files it skipped and why, and where it looked.

use serde::Serialize;
use std::path::{Path, PathBuf};

/// Where a model was found. Serialized lowercase (`folder`, `ollama`, `huggingface`, `lmstudio`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A model folder from the configuration (or one given to `models scan`).
    Folder,
    Ollama,
    HuggingFace,
    LmStudio,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Folder => "folder",
            Source::Ollama => "ollama",
            Source::HuggingFace => "huggingface",
            Source::LmStudio => "lmstudio",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A place to look for models.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Root {
    pub source: Source,
    pub path: PathBuf,
}

impl Root {
    pub fn new(source: Source, path: impl Into<PathBuf>) -> Self {
        Root {
            source,
            path: path.into(),
        }
    }
}

/// One model: a single GGUF file, or all parts of a split model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelEntry {
    /// Stable id: the file stem (without the split suffix) for folders, `repo/stem` for hub
    /// stores, `name:tag` for Ollama.
    pub id: String,
    pub source: Source,
    /// The file to load: the only file, or the first part of a split model.
    pub path: PathBuf,
    /// Every part present on disk, in order (one element for an unsplit model).
    pub parts: Vec<PathBuf>,
    /// Number of parts the file names announce (1 when unsplit).
    pub split_count: u32,
    /// 1-based numbers of the parts that are missing; a model with missing parts cannot load.
    pub missing_parts: Vec<u32>,
    /// Vision projector (`mmproj-*.gguf`) found next to the model.
    pub mmproj: Option<PathBuf>,
    pub architecture: Option<String>,
    pub name: Option<String>,
    pub file_type: Option<u32>,
    pub quantization: Option<String>,
    pub context_length: Option<u64>,
    /// Bytes on disk, all present parts together.
    pub size: u64,
    /// The hub repository (`org/name`) or Ollama name the model came from, when known.
    pub repo: Option<String>,
    /// Set when a file is shorter than its header says its tensors need (an interrupted
    /// download, a failed copy): the model is listed, so the user sees it, but never loaded.
    pub incomplete: Option<Incomplete>,
    /// What an Ollama manifest says beside the weights (template, system, params layers).
    pub ollama: Option<OllamaModel>,
}

/// An Ollama model's manifest and the small layers that tell how to prompt it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OllamaModel {
    /// The manifest file (`manifests/{registry}/{namespace}/{model}/{tag}`).
    pub manifest: PathBuf,
    /// The template layer: a Go template, not Jinja.
    pub template: Option<String>,
    /// The system layer: the default system prompt.
    pub system: Option<String>,
    /// The params layer: default options (`stop`, `temperature`, `num_ctx`, ...).
    pub params: serde_json::Map<String, serde_json::Value>,
}

impl ModelEntry {
    /// Whether every part is on disk, each as long as its header says.
    pub fn is_complete(&self) -> bool {
        self.missing_parts.is_empty() && self.incomplete.is_none()
    }

    /// Why this model cannot be loaded, in words for the user; `None` when it can.
    /// The one message for the service's refusal and the CLI's.
    pub fn problem(&self) -> Option<String> {
        if !self.missing_parts.is_empty() {
            return Some(format!(
                "model '{}' is missing split part(s) {:?} of {}",
                self.id, self.missing_parts, self.split_count
            ));
        }
        let i = self.incomplete.as_ref()?;
        Some(format!("model '{}' is incomplete: {i}", self.id))
    }
}

/// A model file cut short: its header announces more tensor data than the file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incomplete {
    /// The short file (for split models, the first short part).
    pub path: PathBuf,
    /// Bytes the header's tensor infos need (data offset + the last tensor's end).
    pub expected_size: u64,
    /// Bytes on disk.
    pub actual_size: u64,
}

impl Incomplete {
    /// The incompleteness a scan shows, if any.
    pub fn of(path: &Path, info: &gguf::ScanInfo) -> Option<Incomplete> {
        let expected_size = info.data_end.filter(|_| info.data_truncated())?;
        Some(Incomplete {
            path: path.to_path_buf(),
            expected_size,
            actual_size: info.file_size,
        })
    }
}

impl std::fmt::Display for Incomplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} has {} of the {} bytes its header describes (an interrupted download or copy?)",
            self.path.display(),
            self.actual_size,
            self.expected_size
        )
    }
}

/// A file the catalog looked at and did not list, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

impl Skipped {
    pub fn new(path: &Path, reason: impl Into<String>) -> Self {
        Skipped {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// The result of scanning one or more roots.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScanReport {
    pub models: Vec<ModelEntry>,
    pub skipped: Vec<Skipped>,
}

impl ScanReport {
    /// Finds a model by id, or by the path of any of its files.
    pub fn find(&self, id_or_path: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.id == id_or_path).or_else(|| {
            let p = Path::new(id_or_path);
            self.models
                .iter()
                .find(|m| m.parts.iter().any(|part| part == p))
        })
    }
}
