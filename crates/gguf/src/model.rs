//! What a read produces: the parsed file, its tensor infos, scan results and read
//! options, plus the derived facts a model catalog wants (parameter count, context
//! length, chat template...).

use crate::types::{GgmlType, file_type_label};
use crate::value::{ArrayValue, Value};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;

/// How much of big arrays a full read keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Arrays with at most this many elements are kept whole.
    pub array_keep_whole: u64,
    /// Longer arrays keep only their first `array_preview` elements; the rest of
    /// their bytes are skipped, so a 150k-token vocabulary costs no memory.
    pub array_preview: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            array_keep_whole: 64,
            array_preview: 8,
        }
    }
}

impl ReadOptions {
    /// Keep every array element (e.g. to get the whole vocabulary). Memory grows
    /// with the file.
    pub fn keep_all() -> Self {
        ReadOptions {
            array_keep_whole: u64::MAX,
            array_preview: usize::MAX,
        }
    }
}

/// One tensor info from the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the contiguous (row) dimension.
    pub dims: Vec<u64>,
    #[serde(rename = "type")]
    pub ggml_type: GgmlType,
    /// Offset of the data relative to [`GgufFile::data_offset`].
    pub offset: u64,
}

impl TensorInfo {
    /// Number of elements (saturating; the reader has already rejected overflow).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |acc, &d| acc.saturating_mul(d))
    }

    /// Bytes of tensor data; `None` for unknown types.
    pub fn data_size(&self) -> Option<u64> {
        self.ggml_type.data_size(self.n_elements())
    }

    /// End of this tensor's data relative to the data section; `None` for unknown types.
    pub fn data_end(&self) -> Option<u64> {
        self.offset.checked_add(self.data_size()?)
    }
}

/// End of the tensor data the infos describe, relative to the data section: the largest
/// [`TensorInfo::data_end`]. `None` if any tensor has an unknown type (its size is unknown).
/// One rule for the full read ([`GgufFile::expected_file_size`]) and the scan
/// ([`ScanInfo::data_end`]).
pub(crate) fn fold_data_end(end: Option<u64>, t: &TensorInfo) -> Option<u64> {
    Some(end?.max(t.data_end()?))
}

/// Result of the fast scan: the facts a model list shows, read from the first few
/// kilobytes of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanInfo {
    pub version: u32,
    pub architecture: Option<String>,
    pub name: Option<String>,
    pub file_type: Option<u32>,
    /// Name of `file_type` (e.g. `Q4_K_M`, or `unknown(99)`); `None` without it.
    pub quantization: Option<String>,
    pub context_length: Option<u64>,
    pub file_size: u64,
    pub kv_count: u64,
    pub tensor_count: u64,
    /// Absolute offset of the tensor data section.
    pub data_offset: u64,
    /// Absolute offset where the tensor data ends (what a complete file's size is at
    /// least); `None` if a tensor has a type this reader does not know.
    pub data_end: Option<u64>,
}

impl ScanInfo {
    /// True when the file is shorter than its tensors need: an interrupted download, a
    /// failed copy, or a header-only fixture.
    pub fn data_truncated(&self) -> bool {
        self.data_end.is_some_and(|end| end > self.file_size)
    }
}

/// A fully parsed GGUF header.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufFile {
    pub version: u32,
    /// Metadata in file order.
    pub kv: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute offset of the tensor data section.
    pub data_offset: u64,
    pub file_size: u64,
}

impl GgufFile {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.kv.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    /// Any non-negative integer type.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key)?.as_u64()
    }

    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key)?.as_f64()
    }

    pub fn get_array(&self, key: &str) -> Option<&ArrayValue> {
        self.get(key)?.as_array()
    }

    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    pub fn name(&self) -> Option<&str> {
        self.get_str("general.name")
    }

    pub fn file_type(&self) -> Option<u32> {
        self.get_u64("general.file_type")
            .and_then(|v| u32::try_from(v).ok())
    }

    /// Quantization name from `general.file_type` (`unknown(N)` for numbers we do
    /// not know). Without `general.file_type`, the type holding the most weights
    /// among matrices is named instead (e.g. `Q4_K`); `None` if there are none.
    pub fn quantization(&self) -> Option<String> {
        if let Some(ft) = self.file_type() {
            return Some(file_type_label(ft));
        }
        let mut by_type: BTreeMap<u32, u64> = BTreeMap::new();
        for t in self.tensors.iter().filter(|t| t.dims.len() >= 2) {
            let n = by_type.entry(t.ggml_type.raw()).or_default();
            *n = n.saturating_add(t.n_elements());
        }
        let (&raw, _) = by_type.iter().max_by_key(|(_, n)| **n)?;
        Some(GgmlType::from_raw(raw).name().into_owned())
    }

    /// `{arch}.{suffix}` as an integer.
    fn arch_u64(&self, suffix: &str) -> Option<u64> {
        let arch = self.architecture()?;
        self.get_u64(&format!("{arch}.{suffix}"))
    }

    pub fn context_length(&self) -> Option<u64> {
        self.arch_u64("context_length")
    }

    pub fn embedding_length(&self) -> Option<u64> {
        self.arch_u64("embedding_length")
    }

    pub fn block_count(&self) -> Option<u64> {
        self.arch_u64("block_count")
    }

    /// Length of `tokenizer.ggml.tokens` (known even when only previewed), else
    /// `{arch}.vocab_size`.
    pub fn vocab_size(&self) -> Option<u64> {
        self.get_array("tokenizer.ggml.tokens")
            .map(|a| a.len)
            .or_else(|| self.arch_u64("vocab_size"))
    }

    /// Sum of all tensors' element counts (saturating).
    pub fn parameter_count(&self) -> u64 {
        self.tensors
            .iter()
            .fold(0u64, |acc, t| acc.saturating_add(t.n_elements()))
    }

    /// Sum of all tensors' data sizes in bytes; tensors of unknown type count 0.
    pub fn tensor_data_size(&self) -> u64 {
        self.tensors.iter().fold(0u64, |acc, t| {
            acc.saturating_add(t.data_size().unwrap_or(0))
        })
    }

    /// File size implied by the header: end of the last tensor's data. `None` if a
    /// tensor has an unknown type.
    pub fn expected_file_size(&self) -> Option<u64> {
        let end = self.tensors.iter().fold(Some(0), fold_data_end)?;
        self.data_offset.checked_add(end)
    }

    /// True when the file is shorter than its tensors need: an interrupted download,
    /// or a header-only fixture.
    pub fn data_truncated(&self) -> bool {
        self.expected_file_size()
            .is_some_and(|end| end > self.file_size)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The default chat template (`tokenizer.chat_template`).
    pub fn chat_template(&self) -> Option<&str> {
        self.get_str("tokenizer.chat_template")
    }

    /// Named chat templates (`tokenizer.chat_template.<name>`, e.g. `tool_use`, `rag`).
    pub fn chat_templates(&self) -> BTreeMap<String, &str> {
        self.kv
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("tokenizer.chat_template.")?;
                Some((name.to_string(), v.as_str()?))
            })
            .collect()
    }

    /// Recommended sampling settings (`general.sampling.*`), keyed without the
    /// prefix: `top_k`, `top_p`, `min_p`, `temp`, `penalty_repeat`...
    pub fn sampling(&self) -> BTreeMap<String, Value> {
        self.kv
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("general.sampling.")?;
                Some((name.to_string(), v.clone()))
            })
            .collect()
    }
}

/// Metadata as an ordered JSON object (file order), not a list of pairs.
struct KvMap<'a>(&'a [(String, Value)]);

impl Serialize for KvMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Serialize for GgufFile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(6))?;
        map.serialize_entry("version", &self.version)?;
        map.serialize_entry("alignment", &self.alignment)?;
        map.serialize_entry("data_offset", &self.data_offset)?;
        map.serialize_entry("file_size", &self.file_size)?;
        map.serialize_entry("kv", &KvMap(&self.kv))?;
        map.serialize_entry("tensors", &self.tensors)?;
        map.end()
    }
}
