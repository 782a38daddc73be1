//! Load-time parameters: how to load a model ([`ModelParams`]) and the context (slots, batch,
//! threads, KV cache) it serves from ([`ContextParams`]). Our own serde types: no llama.cpp
//! type appears here, so the API, the config file and the wire can use them directly.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::EngineError;

/// Default cap on a slot's context when `ctx_per_slot = 0` asks for the model's training
/// context: long-context models would otherwise reserve tens of GiB of KV cache per slot.
pub const DEFAULT_MAX_CTX_PER_SLOT: u32 = 8192;

/// How many layers go to the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuLayers {
    /// As many as the free device memory allows (0 when there is no GPU).
    #[default]
    Auto,
    /// Exactly this many (more than the model has = all).
    Count(u32),
}

/// How a model is spread over several GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitMode {
    /// Everything on `main_gpu`.
    None,
    /// Whole layers per GPU (llama.cpp's default).
    #[default]
    Layer,
    /// Rows of each matrix over the GPUs.
    Row,
}

/// A LoRA adapter loaded with the model; `scale` is its initial global scale (0 loads it
/// switched off, for requests to turn on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraSpec {
    pub path: PathBuf,
    #[serde(default = "one")]
    pub scale: f32,
}

fn one() -> f32 {
    1.0
}

/// How to load the model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelParams {
    /// The GGUF file; for a split model, its first part (`...-00001-of-0000N.gguf`).
    pub path: PathBuf,
    pub n_gpu_layers: GpuLayers,
    pub split_mode: SplitMode,
    pub main_gpu: u32,
    /// Share of the model per device, in llama.cpp's device order (llama-server's
    /// `--tensor-split`); empty = llama.cpp decides. At most [`crate::max_devices`] values.
    pub tensor_split: Vec<f32>,
    pub use_mmap: bool,
    pub use_mlock: bool,
    /// LoRA adapters, by id (their position here); see [`crate::ModelHandle::lora_adapters`].
    pub lora: Vec<LoraSpec>,
}

impl Default for ModelParams {
    fn default() -> Self {
        ModelParams {
            path: PathBuf::new(),
            n_gpu_layers: GpuLayers::Auto,
            split_mode: SplitMode::Layer,
            main_gpu: 0,
            tensor_split: Vec::new(),
            use_mmap: true,
            use_mlock: false,
            lora: Vec::new(),
        }
    }
}

impl ModelParams {
    /// Parameters for this file with every other field at its default.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ModelParams {
            path: path.into(),
            ..Default::default()
        }
    }

    pub fn validate(&self) -> Result<(), EngineError> {
        if self.tensor_split.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(EngineError::invalid(
                "tensor_split",
                "values must be finite and >= 0",
            ));
        }
        let max = crate::raw::max_devices();
        if self.tensor_split.len() > max {
            return Err(EngineError::invalid(
                "tensor_split",
                format!(
                    "{} values, but llama.cpp supports at most {max} devices",
                    self.tensor_split.len()
                ),
            ));
        }
        for l in &self.lora {
            if !l.scale.is_finite() {
                return Err(EngineError::invalid("lora.scale", "must be finite"));
            }
        }
        Ok(())
    }
}

/// Flash attention policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlashAttn {
    /// llama.cpp decides (on where the model supports it and the device has it).
    #[default]
    Auto,
    On,
    Off,
}

/// RoPE scaling method (override of the model's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RopeScaling {
    None,
    Linear,
    Yarn,
}

/// Pooling for embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    None,
    Mean,
    Cls,
    Last,
    Rank,
}

/// What to do when a slot's context is full while generating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnContextFull {
    /// Finish the request with finish reason `length` (llama-server's default).
    #[default]
    Stop,
    /// Drop the older half of the context after `n_keep` tokens and go on (llama-server's
    /// `--context-shift`).
    Shift,
}

/// YaRN parameters; `None` keeps the model's (or llama.cpp's) value.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct YarnParams {
    pub ext_factor: Option<f32>,
    pub attn_factor: Option<f32>,
    pub beta_fast: Option<f32>,
    pub beta_slow: Option<f32>,
    pub orig_ctx: Option<u32>,
}

/// Default [`ContextParams::prefill_chunk`]: one default compute pass (`n_ubatch`), so a
/// chunk costs about one pass (measured by `scripts/bench/prefill-stall.sh`).
pub const DEFAULT_PREFILL_CHUNK: u32 = 512;

/// The context a model serves from: slots, batch sizes, threads, KV cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContextParams {
    /// Tokens of context per slot; 0 = the model's training context, capped at
    /// [`DEFAULT_MAX_CTX_PER_SLOT`]. The context holds `ctx_per_slot * parallel` tokens, or
    /// `ctx_per_slot` with `kv_unified` ([`Self::n_ctx_total`]).
    pub ctx_per_slot: u32,
    /// Number of slots (sequences decoded together).
    pub parallel: u32,
    /// Most tokens in one `llama_decode` call (logical batch).
    pub n_batch: u32,
    /// Most tokens one compute pass handles (physical batch).
    pub n_ubatch: u32,
    /// Most prompt tokens one step takes while other slots are generating (chunked
    /// prefill): a long prompt is read over several steps, each also carrying the running
    /// slots' next tokens, so their streams pause for one chunk instead of a whole prompt.
    /// With no slot generating a prompt takes up to `n_batch` per step.
    pub prefill_chunk: u32,
    /// Threads for generation; `None` = physical cores.
    pub threads: Option<u32>,
    /// Threads for prompt processing; `None` = same as `threads`.
    pub threads_batch: Option<u32>,
    pub flash_attn: FlashAttn,
    /// KV cache element types: `f32`, `f16`, `bf16`, `q8_0`, `q4_0`, `q4_1`, `iq4_nl`,
    /// `q5_0`, `q5_1`. A quantized V cache needs flash attention.
    pub cache_type_k: String,
    pub cache_type_v: String,
    pub rope_scaling: Option<RopeScaling>,
    pub rope_freq_base: Option<f32>,
    pub rope_freq_scale: Option<f32>,
    pub yarn: YarnParams,
    pub on_context_full: OnContextFull,
    /// Create the slots' context with embeddings output too. Not needed for
    /// [`crate::ModelHandle::embed`], which uses its own context.
    pub embeddings: bool,
    /// Pooling override (llama-server's `--pooling`): the slots' context uses it when
    /// `embeddings` is on, and embed requests that name none use it instead of the model's.
    pub pooling: Option<Pooling>,
    /// Requests that may wait for a slot; one more is refused with `QueueFull`.
    pub queue_max: u32,
    /// One KV pool of `ctx_per_slot` tokens shared by all slots, as llama-server's
    /// `--kv-unified`: any one slot may fill it, and when the slots together would overflow
    /// it the least recently used idle slots' cached prompts are dropped first (a step that
    /// still does not fit fails its requests, as llama-server aborts the pool). Off by
    /// default, as llama-server with an explicit `-np`: with it on, every slot's attention
    /// spans the cells of all slots (masked), so a busy neighbour's cached tokens slow each
    /// decode down.
    pub kv_unified: bool,
    /// A full-size KV cache for sliding-window layers (llama-server's `--swa-full`): the
    /// cells a window has passed stay, so a cached prompt can be reused from any point, at
    /// the memory of a full cache. Only models with a sliding window differ.
    pub swa_full: bool,
    /// Host-RAM prompt cache in MiB (llama-server's `--cache-ram`; -1 = no byte limit, the
    /// context size in tokens caps it then; 0 = off): when a slot is about to be
    /// overwritten by another prompt, its state (tokens and KV) is copied here, and a later
    /// request sharing its prefix restores it instead of recomputing it. Least recently
    /// stored entries go first; a state larger than the whole cache is not kept.
    pub cache_ram_mib: i64,
    /// Copy idle slots to the prompt cache when a task starts, and with `kv_unified` clear
    /// them so the busy slots have the pool (llama-server's `--cache-idle-slots`, on by
    /// default; needs `cache_ram_mib`).
    pub cache_idle_slots: bool,
}

/// llama-server's default `--cache-ram`, in MiB.
pub const DEFAULT_CACHE_RAM_MIB: i64 = 8192;

impl Default for ContextParams {
    fn default() -> Self {
        ContextParams {
            ctx_per_slot: 0,
            parallel: 4,
            n_batch: 2048,
            n_ubatch: 512,
            prefill_chunk: DEFAULT_PREFILL_CHUNK,
            threads: None,
            threads_batch: None,
            flash_attn: FlashAttn::Auto,
            cache_type_k: "f16".into(),
            cache_type_v: "f16".into(),
            rope_scaling: None,
            rope_freq_base: None,
            rope_freq_scale: None,
            yarn: YarnParams::default(),
            on_context_full: OnContextFull::Stop,
            embeddings: false,
            pooling: None,
            queue_max: 256,
            kv_unified: false,
            swa_full: false,
            cache_ram_mib: DEFAULT_CACHE_RAM_MIB,
            cache_idle_slots: true,
        }
    }
}

/// KV cache types llama-server accepts, with bytes per element (blocks of 32 for quants).
pub(crate) const CACHE_TYPES: &[(&str, f64)] = &[
    ("f32", 4.0),
    ("f16", 2.0),
    ("bf16", 2.0),
    ("q8_0", 34.0 / 32.0),
    ("q4_0", 18.0 / 32.0),
    ("q4_1", 20.0 / 32.0),
    ("iq4_nl", 18.0 / 32.0),
    ("q5_0", 22.0 / 32.0),
    ("q5_1", 24.0 / 32.0),
];

/// Bytes per element of a cache type name (case-insensitive); `None` if unknown.
pub fn cache_type_bytes(name: &str) -> Option<f64> {
    let name = name.to_ascii_lowercase();
    CACHE_TYPES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| *b)
}

impl ContextParams {
    pub fn validate(&self) -> Result<(), EngineError> {
        let max_seq = llama_max_parallel();
        if self.parallel == 0 || self.parallel > max_seq {
            return Err(EngineError::invalid(
                "parallel",
                format!("must be between 1 and {max_seq}"),
            ));
        }
        if self.n_batch == 0 {
            return Err(EngineError::invalid("n_batch", "must be at least 1"));
        }
        if self.n_ubatch == 0 {
            return Err(EngineError::invalid("n_ubatch", "must be at least 1"));
        }
        if self.prefill_chunk == 0 {
            return Err(EngineError::invalid("prefill_chunk", "must be at least 1"));
        }
        if self.cache_ram_mib < -1 {
            return Err(EngineError::invalid(
                "cache_ram_mib",
                "must be -1 (no limit), 0 (off) or a size in MiB",
            ));
        }
        if self.ctx_per_slot != 0 && self.ctx_per_slot < 8 {
            return Err(EngineError::invalid(
                "ctx_per_slot",
                "must be 0 (model default) or at least 8",
            ));
        }
        if u64::from(self.ctx_per_slot) * u64::from(self.parallel) > u64::from(i32::MAX as u32) {
            return Err(EngineError::invalid(
                "ctx_per_slot",
                "ctx_per_slot * parallel is too large",
            ));
        }
        for (name, v) in [
            ("threads", self.threads),
            ("threads_batch", self.threads_batch),
        ] {
            if v == Some(0) || v.is_some_and(|t| t > 1024) {
                return Err(EngineError::invalid(name, "must be between 1 and 1024"));
            }
        }
        for (name, v) in [
            ("cache_type_k", &self.cache_type_k),
            ("cache_type_v", &self.cache_type_v),
        ] {
            if cache_type_bytes(v).is_none() {
                let known: Vec<&str> = CACHE_TYPES.iter().map(|(n, _)| *n).collect();
                return Err(EngineError::invalid(
                    name,
                    format!("unknown cache type '{v}' (known: {})", known.join(", ")),
                ));
            }
        }
        for (name, v) in [
            ("rope_freq_base", self.rope_freq_base),
            ("rope_freq_scale", self.rope_freq_scale),
        ] {
            if v.is_some_and(|f| !f.is_finite() || f <= 0.0) {
                return Err(EngineError::invalid(name, "must be finite and > 0"));
            }
        }
        for (name, v) in [
            ("yarn.ext_factor", self.yarn.ext_factor),
            ("yarn.attn_factor", self.yarn.attn_factor),
            ("yarn.beta_fast", self.yarn.beta_fast),
            ("yarn.beta_slow", self.yarn.beta_slow),
        ] {
            if v.is_some_and(|f| !f.is_finite()) {
                return Err(EngineError::invalid(name, "must be finite"));
            }
        }
        Ok(())
    }

    /// Threads for generation (explicit or physical cores).
    pub fn threads_or_default(&self) -> u32 {
        self.threads.unwrap_or_else(crate::backend::physical_cores)
    }

    /// Threads for prompt processing.
    pub fn threads_batch_or_default(&self) -> u32 {
        self.threads_batch
            .unwrap_or_else(|| self.threads_or_default())
    }

    /// The per-slot context for a model trained on `n_ctx_train` tokens.
    /// Tokens the whole context holds: one slot's context for each slot, or with
    /// `kv_unified` one slot's context that they share.
    pub fn n_ctx_total(&self, n_ctx_train: u32) -> u32 {
        let per_slot = self.effective_ctx_per_slot(n_ctx_train);
        if self.kv_unified {
            per_slot
        } else {
            per_slot.saturating_mul(self.parallel)
        }
    }

    pub fn effective_ctx_per_slot(&self, n_ctx_train: u32) -> u32 {
        if self.ctx_per_slot > 0 {
            self.ctx_per_slot
        } else if n_ctx_train == 0 {
            4096
        } else {
            n_ctx_train.min(DEFAULT_MAX_CTX_PER_SLOT)
        }
    }
}

fn llama_max_parallel() -> u32 {
    // SAFETY: a constant getter.
    let n = unsafe { llama_cpp_sys_2::llama_max_parallel_sequences() };
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_match_llama_server() {
        let c = ContextParams::default();
        c.validate().unwrap();
        assert_eq!((c.parallel, c.n_batch, c.n_ubatch), (4, 2048, 512));
        assert!(ModelParams::default().use_mmap);
        assert_eq!(c.effective_ctx_per_slot(131072), DEFAULT_MAX_CTX_PER_SLOT);
        assert_eq!(c.effective_ctx_per_slot(2048), 2048);
    }

    #[test]
    fn bad_values_name_the_field() {
        let bad = |f: &dyn Fn(&mut ContextParams)| {
            let mut c = ContextParams::default();
            f(&mut c);
            match c.validate() {
                Err(EngineError::InvalidParameter { name, .. }) => name,
                other => panic!("expected InvalidParameter, got {other:?}"),
            }
        };
        assert_eq!(bad(&|c| c.parallel = 0), "parallel");
        assert_eq!(bad(&|c| c.n_batch = 0), "n_batch");
        assert_eq!(bad(&|c| c.cache_type_k = "q9_9".into()), "cache_type_k");
        assert_eq!(bad(&|c| c.threads = Some(0)), "threads");
        assert_eq!(
            bad(&|c| c.rope_freq_base = Some(f32::NAN)),
            "rope_freq_base"
        );
        assert_eq!(bad(&|c| c.ctx_per_slot = 3), "ctx_per_slot");
        assert_eq!(bad(&|c| c.cache_ram_mib = -2), "cache_ram_mib");
    }

    #[test]
    fn serde_round_trip_with_defaults() {
        let c: ContextParams =
            serde_json::from_str(r#"{"parallel": 2, "flash_attn": "on"}"#).unwrap();
        assert_eq!(c.parallel, 2);
        assert_eq!(c.flash_attn, FlashAttn::On);
        assert_eq!(c.n_batch, 2048);
        let m: ModelParams =
            serde_json::from_str(r#"{"path": "/m.gguf", "n_gpu_layers": {"count": 10}}"#).unwrap();
        assert_eq!(m.n_gpu_layers, GpuLayers::Count(10));
        assert!(m.use_mmap);
    }
}
