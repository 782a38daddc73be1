//! Memory estimate before loading, from GGUF metadata alone: weights (tensor data of every
//! part of a split model) + KV cache + an allowance for llama.cpp's compute and output
//! buffers. After loading, [`MemoryReport`] puts the measured figures next to it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::params::{ContextParams, cache_type_bytes};

/// What loading a model with some context parameters is expected to need.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MemoryEstimate {
    /// Tensor data (all split parts).
    pub weights_bytes: u64,
    /// KV cache for the whole context (all slots).
    pub kv_bytes: u64,
    /// Compute graph + logits output buffers (a rough allowance).
    pub compute_bytes: u64,
    pub total_bytes: u64,
    /// Context tokens the KV figure is for (`ctx_per_slot * parallel`).
    pub n_ctx: u64,
    pub n_layer: u64,
    /// Per-layer average number of KV heads.
    pub n_head_kv: f64,
    pub head_dim_k: u64,
    pub head_dim_v: u64,
    /// Number of files (split parts) the weights are in.
    pub n_files: u32,
}

/// Estimate + the figures measured after loading.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MemoryReport {
    pub estimate: MemoryEstimate,
    /// `llama_model_size`: bytes of the loaded tensors.
    pub model_bytes: u64,
    /// Resident-memory growth while the context (KV cache + buffers) was created, where the
    /// OS tells (Linux). On a GPU most of it is device memory and this stays small.
    pub context_rss_bytes: Option<u64>,
}

/// Options for the metadata read: keep small per-layer arrays whole, preview big ones.
pub(crate) fn read_options() -> gguf::ReadOptions {
    gguf::ReadOptions {
        array_keep_whole: 4096,
        array_preview: 8,
    }
}

/// Estimate for the model at `path` (the first part of a split model) with `ctx`.
pub fn estimate(path: &Path, ctx: &ContextParams) -> Result<MemoryEstimate, EngineError> {
    let file = read_gguf(path)?;
    let extra = split_extra_weights(path, &file)?;
    Ok(estimate_gguf(&file, extra, ctx))
}

/// Read and sanity-check a GGUF file: typed errors for missing, non-GGUF and truncated files.
pub(crate) fn read_gguf(path: &Path) -> Result<gguf::GgufFile, EngineError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        _ => return Err(EngineError::ModelNotFound(path.to_path_buf())),
    }
    let file = gguf::read_path(path, &read_options()).map_err(|e| EngineError::NotGguf {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if file.data_truncated() {
        return Err(EngineError::NotGguf {
            path: path.to_path_buf(),
            reason: format!(
                "truncated: the file has {} bytes but its tensors need {} (interrupted download?)",
                file.file_size,
                file.expected_file_size().unwrap_or(0)
            ),
        });
    }
    Ok(file)
}

/// Paths of a split model's parts, from the first part's name (`x-00001-of-00003.gguf`);
/// `None` when the name does not follow llama.cpp's split naming.
pub fn split_paths(first: &Path, count: u32) -> Option<Vec<PathBuf>> {
    let name = first.file_name()?.to_str()?;
    let stem = name.strip_suffix(".gguf")?;
    // "<prefix>-00001-of-0000N"
    let (head, total) = stem.rsplit_once("-of-")?;
    let (prefix, index) = head.rsplit_once('-')?;
    if index.len() != 5 || total.len() != 5 || index.parse::<u32>().ok()? != 1 {
        return None;
    }
    let dir = first.parent().unwrap_or(Path::new(""));
    Some(
        (1..=count)
            .map(|i| dir.join(format!("{prefix}-{i:05}-of-{count:05}.gguf")))
            .collect(),
    )
}

/// Weights in the other parts of a split model (0 for a single file).
fn split_extra_weights(path: &Path, file: &gguf::GgufFile) -> Result<u64, EngineError> {
    let count = file
        .get_u64("split.count")
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(1);
    if count <= 1 {
        return Ok(0);
    }
    let Some(paths) = split_paths(path, count) else {
        return Err(EngineError::NotGguf {
            path: path.to_path_buf(),
            reason: format!(
                "part of a {count}-part split model, but not its first part (…-00001-of-{count:05}.gguf)"
            ),
        });
    };
    let mut extra = 0u64;
    for p in paths.iter().skip(1) {
        let part = read_gguf(p)?;
        extra = extra.saturating_add(part.tensor_data_size());
    }
    Ok(extra)
}

/// Number of files of the model (1, or `split.count`).
pub(crate) fn n_files(file: &gguf::GgufFile) -> u32 {
    file.get_u64("split.count")
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(1)
        .max(1)
}

/// Average of a per-layer value that may be a scalar or an array of per-layer values.
fn per_layer(file: &gguf::GgufFile, key: &str) -> Option<f64> {
    let v = file.get(key)?;
    if let Some(n) = v.as_u64() {
        return Some(n as f64);
    }
    let arr = v.as_array()?;
    let vals: Vec<f64> = arr
        .items
        .iter()
        .filter_map(|i| i.as_u64())
        .map(|n| n as f64)
        .collect();
    if vals.is_empty() {
        return None;
    }
    Some(vals.iter().sum::<f64>() / vals.len() as f64)
}

/// The estimate from parsed metadata; `extra_weights` are the other split parts' tensors.
pub fn estimate_gguf(
    file: &gguf::GgufFile,
    extra_weights: u64,
    ctx: &ContextParams,
) -> MemoryEstimate {
    let arch = file.architecture().unwrap_or("").to_string();
    let key = |s: &str| format!("{arch}.{s}");
    let n_layer = file.block_count().unwrap_or(0);
    let n_embd = file.embedding_length().unwrap_or(0);
    let n_head = per_layer(file, &key("attention.head_count")).unwrap_or(0.0);
    let n_head_kv = per_layer(file, &key("attention.head_count_kv")).unwrap_or(n_head);
    let head_dim_default = if n_head > 0.0 {
        (n_embd as f64 / n_head).round() as u64
    } else {
        0
    };
    let head_dim_k = file
        .get_u64(&key("attention.key_length"))
        .unwrap_or(head_dim_default);
    let head_dim_v = file
        .get_u64(&key("attention.value_length"))
        .unwrap_or(head_dim_default);
    let n_ctx_train = file.context_length().unwrap_or(0);
    let n_ctx = u64::from(ctx.n_ctx_total(u32::try_from(n_ctx_train).unwrap_or(u32::MAX)));
    let bk = cache_type_bytes(&ctx.cache_type_k).unwrap_or(2.0);
    let bv = cache_type_bytes(&ctx.cache_type_v).unwrap_or(2.0);
    let kv_bytes = (n_ctx as f64
        * n_layer as f64
        * n_head_kv
        * (head_dim_k as f64 * bk + head_dim_v as f64 * bv)) as u64;

    // Allowance for llama.cpp's buffers: the logits output (n_vocab floats per output row,
    // reserved for one row per sequence and grown with use), and the compute graph for one
    // ubatch (activations of a few n_embd-wide tensors, plus attention scores over the used
    // context unless flash attention keeps them out of memory).
    let n_vocab = file.vocab_size().unwrap_or(32_000);
    let n_ubatch = u64::from(ctx.n_ubatch.min(ctx.n_batch).max(1));
    let output = 4 * n_vocab * u64::from(ctx.parallel.max(1));
    let activations = 4 * n_ubatch * (8 * n_embd + n_vocab);
    let scores = 4 * n_ubatch * (n_head.ceil() as u64) * n_ctx.min(4096);
    let compute_bytes = output + activations + scores;

    let weights_bytes = file.tensor_data_size().saturating_add(extra_weights);
    MemoryEstimate {
        weights_bytes,
        kv_bytes,
        compute_bytes,
        total_bytes: weights_bytes + kv_bytes + compute_bytes,
        n_ctx,
        n_layer,
        n_head_kv,
        head_dim_k,
        head_dim_v,
        n_files: n_files(file),
    }
}

/// Resident set size of this process in bytes (Linux), for before/after measurements.
pub(crate) fn rss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gguf::{Value, writer::GgufWriter};

    #[test]
    fn kv_formula_matches_hand_computation() {
        // A llama-like header: 4 layers, 8 heads, 2 KV heads, 256 wide -> head dim 32.
        let mut w = GgufWriter::new();
        w.kv("general.architecture", Value::String("llama".into()))
            .kv("llama.block_count", Value::U32(4))
            .kv("llama.embedding_length", Value::U32(256))
            .kv("llama.attention.head_count", Value::U32(8))
            .kv("llama.attention.head_count_kv", Value::U32(2))
            .kv("llama.context_length", Value::U32(1024));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf");
        w.write_path(&p).unwrap();
        let file = gguf::read_path(&p, &read_options()).unwrap();
        let ctx = ContextParams {
            ctx_per_slot: 512,
            parallel: 2,
            ..Default::default()
        };
        let e = estimate_gguf(&file, 0, &ctx);
        assert_eq!(e.n_ctx, 1024);
        assert_eq!((e.head_dim_k, e.head_dim_v), (32, 32));
        // n_ctx * n_layer * n_head_kv * (dk + dv) * 2 bytes (f16)
        assert_eq!(e.kv_bytes, 1024 * 4 * 2 * (32 + 32) * 2);
        let q8 = estimate_gguf(
            &file,
            0,
            &ContextParams {
                cache_type_k: "q8_0".into(),
                cache_type_v: "q8_0".into(),
                ..ctx
            },
        );
        assert!(q8.kv_bytes < e.kv_bytes * 6 / 10);
    }

    #[test]
    fn split_names() {
        let p = Path::new("/m/big-00001-of-00003.gguf");
        let parts = split_paths(p, 3).unwrap();
        assert_eq!(parts[2], Path::new("/m/big-00003-of-00003.gguf"));
        assert!(split_paths(Path::new("/m/big-00002-of-00003.gguf"), 3).is_none());
        assert!(split_paths(Path::new("/m/plain.gguf"), 3).is_none());
    }

    #[test]
    fn missing_and_non_gguf_files_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.gguf");
        assert!(matches!(
            estimate(&missing, &ContextParams::default()),
            Err(EngineError::ModelNotFound(_))
        ));
        let text = dir.path().join("t.gguf");
        std::fs::write(&text, "hello, I am not a model").unwrap();
        assert!(matches!(
            estimate(&text, &ContextParams::default()),
            Err(EngineError::NotGguf { .. })
        ));
    }
}
