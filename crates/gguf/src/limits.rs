//! Sanity limits for header fields. Real files are far below all of them; they
//! exist so that a hostile header is rejected before any work or allocation.

/// Longest metadata key or tensor name (the GGUF spec allows at most 65535 bytes).
pub const MAX_KEY_LEN: u64 = 65_535;
/// Longest string value. Embedded `tokenizer.huggingface.json` blobs reach ~20 MB.
pub const MAX_STRING_LEN: u64 = 256 * 1024 * 1024;
/// Most metadata entries (real files have ~20-60).
pub const MAX_KV_COUNT: u64 = 1 << 20;
/// Most tensor infos (the largest MoE models have a few thousand per shard).
pub const MAX_TENSOR_COUNT: u64 = 1 << 22;
/// Longest array (the biggest vocabularies have ~260k entries).
pub const MAX_ARRAY_LEN: u64 = 1 << 40;
/// Deepest array nesting (real files use at most 2).
pub const MAX_ARRAY_DEPTH: u32 = 8;
/// `GGML_MAX_DIMS`.
pub const MAX_DIMS: u32 = 4;
/// Alignment used when `general.alignment` is absent (`GGUF_DEFAULT_ALIGNMENT`).
pub const DEFAULT_ALIGNMENT: u64 = 32;
