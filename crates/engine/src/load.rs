//! The load pipeline: checks before loading (file, memory, adapters), then on the model's
//! own OS thread: load the weights, create the slots' context, describe the model
//! ([`ModelInfo`]), hand the loader a [`ModelHandle`] and run the scheduler until shutdown.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc as std_mpsc};
use std::time::Instant;

use llama_cpp_2::context::params::{KvCacheType, LlamaContextParams, RopeScalingType};
use llama_cpp_2::model::LlamaModel;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::admission::Limits;
use crate::backend;
use crate::embed::EmbedConfig;
use crate::error::EngineError;
use crate::estimate::{self, MemoryEstimate, MemoryReport};
use crate::host::{HostCounters, ModelHandle, Shared, Task};
use crate::lora::Adapters;
use crate::params::{
    ContextParams, FlashAttn, GpuLayers, ModelParams, OnContextFull, Pooling, RopeScaling,
};
use crate::raw::raw_model;
use crate::scheduler::{Host, HostConfig};

/// What is known about a loaded model (and the context it serves from).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub name: Option<String>,
    pub architecture: String,
    pub quantization: Option<String>,
    pub n_params: u64,
    pub size_bytes: u64,
    pub n_ctx_train: u32,
    pub n_embd: u32,
    pub n_vocab: u32,
    pub n_layer: u32,
    pub n_head: u32,
    pub n_head_kv: u32,
    /// Sliding-window size (0 = none).
    pub n_swa: u32,
    pub chat_template: Option<String>,
    /// Named templates (`tokenizer.chat_template.<name>`, e.g. `tool_use`).
    pub chat_templates: std::collections::BTreeMap<String, String>,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    pub bos_id: Option<i32>,
    pub eos_id: Option<i32>,
    /// Every end-of-generation token.
    pub eog_tokens: Vec<i32>,
    /// Whether tokenizing with `add_special` adds a BOS token.
    pub add_bos: bool,
    /// Fill-in-the-middle tokens (prefix, suffix, middle) exist.
    pub has_fim: bool,
    pub is_recurrent: bool,
    pub is_hybrid: bool,
    /// Whether the context can shift (`on_context_full = shift`).
    pub can_shift: bool,
    /// Context tokens in total and per slot.
    pub n_ctx: u32,
    pub n_ctx_slot: u32,
    pub n_slots: u32,
    pub n_batch: u32,
    pub n_ubatch: u32,
    pub threads: u32,
    pub threads_batch: u32,
    pub n_gpu_layers: u32,
    /// The slots' context computes embeddings (`ContextParams::embeddings`); [`ModelHandle::embed`]
    /// works either way, on its own context.
    pub embeddings: bool,
    /// The pooling the model declares (GGUF `<arch>.pooling_type`); `None` if it declares
    /// none (embeddings then pool with mean unless asked otherwise).
    pub pooling: Option<Pooling>,
    /// The model can rerank: its pooling is `rank` (a classification head).
    pub can_rerank: bool,
    pub memory: MemoryReport,
    pub load_ms: f64,
}

/// Inputs one embedding batch may hold at least (more with more slots).
const EMBED_SEQS: u32 = 8;

/// Loads models.
#[derive(Debug)]
pub struct ModelHost;

/// Where a loaded model runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Isolation {
    /// On a host thread of this process: an abort inside llama.cpp ends the process.
    Thread,
    /// In a worker process of its own (`llama-dashboard worker`, see `crate::worker`): an
    /// abort ends that model only; its requests end with [`EngineError::Crashed`].
    Process(crate::worker::WorkerOptions),
}

/// What the host thread hands the loader once the model serves: its description, the
/// model itself (for the callers' side of requests) and the limits requests are checked
/// against.
struct Loaded {
    info: ModelInfo,
    model: Arc<LlamaModel>,
    limits: Limits,
}

enum LoadMsg {
    Progress(f32),
    Loaded(Box<Loaded>),
    Failed(EngineError),
}

impl ModelHost {
    /// Load a model and create its context, on a new thread that then serves it. Blocks until
    /// loaded (use `spawn_blocking` from async code); `progress` is called on this thread with
    /// the load fraction, 0..=1.
    pub fn load(
        model: ModelParams,
        context: ContextParams,
        progress: impl Fn(f32) + Send,
    ) -> Result<ModelHandle, EngineError> {
        Self::load_counted(model, context, progress, Arc::default())
    }

    /// [`load_counted`](Self::load_counted) in this process or in a worker process
    /// ([`Isolation`]). The handle behaves the same either way.
    pub fn load_isolated(
        model: ModelParams,
        context: ContextParams,
        progress: impl Fn(f32) + Send,
        counters: Arc<HostCounters>,
        isolation: &Isolation,
    ) -> Result<ModelHandle, EngineError> {
        let opts = match isolation {
            Isolation::Thread => return Self::load_counted(model, context, progress, counters),
            Isolation::Process(opts) => opts,
        };
        // Checks that need no llama.cpp fail here, cheaply and before a process starts.
        model.validate()?;
        context.validate()?;
        let order = crate::worker::LoadOrder {
            model,
            context,
            backend: backend::options().unwrap_or_default(),
            counters: counters.snapshot(),
        };
        let (info, client) = crate::worker::load_in_worker(opts, order, progress, counters)?;
        Ok(ModelHandle::in_worker(info, client))
    }

    /// [`load`](Self::load), counting into `counters` (see [`HostCounters`]): the caller
    /// keeps them across this model's unloads and loads.
    pub fn load_counted(
        model: ModelParams,
        context: ContextParams,
        progress: impl Fn(f32) + Send,
        counters: Arc<HostCounters>,
    ) -> Result<ModelHandle, EngineError> {
        let t0 = Instant::now();
        model.validate()?;
        context.validate()?;
        let file = estimate::read_gguf(&model.path)?;
        let estimate = estimate::estimate(&model.path, &context)?;
        let arch = file.architecture().unwrap_or("").to_string();
        if arch.is_empty() {
            return Err(EngineError::NotGguf {
                path: model.path.clone(),
                reason: "no general.architecture key".into(),
            });
        }
        check_memory(&estimate, &context, &file)?;
        for l in &model.lora {
            crate::lora::check_adapter_file(&l.path, &arch)?;
        }
        let n_gpu_layers = resolve_gpu_layers(&model, &estimate);
        let gguf_meta = GgufMeta {
            name: file.name().map(str::to_string),
            quantization: file.quantization(),
            chat_templates: file
                .chat_templates()
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect(),
            architecture: arch.clone(),
        };
        drop(file);

        backend::init(backend::options().unwrap_or_default());
        let (load_tx, load_rx) = std_mpsc::channel::<LoadMsg>();
        let (task_tx, task_rx) = std_mpsc::channel::<Task>();
        let shared = Arc::new(Shared {
            counters,
            ..Shared::default()
        });
        let shared2 = Arc::clone(&shared);
        let thread_name = format!(
            "llama-host:{}",
            model
                .path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("model")
        );
        let job = LoadJob {
            model,
            context,
            n_gpu_layers,
            estimate,
            meta: gguf_meta,
            t0,
        };
        let thread = std::thread::Builder::new()
            .name(thread_name)
            // Sampling with a grammar advances llama.cpp's grammar stacks recursively.
            .stack_size(crate::grammar::GRAMMAR_STACK)
            .spawn(move || host_thread(job, load_tx, task_rx, shared2))
            .map_err(|e| EngineError::LoadFailed {
                reason: format!("could not start the model thread: {e}"),
            })?;

        loop {
            match load_rx.recv() {
                Ok(LoadMsg::Progress(p)) => progress(p),
                Ok(LoadMsg::Loaded(loaded)) => {
                    progress(1.0);
                    let Loaded {
                        info,
                        model,
                        limits,
                    } = *loaded;
                    return Ok(ModelHandle::new(
                        task_tx, info, model, limits, shared, thread,
                    ));
                }
                Ok(LoadMsg::Failed(e)) => {
                    let _ = thread.join();
                    return Err(e);
                }
                Err(_) => {
                    let _ = thread.join();
                    return Err(EngineError::LoadFailed {
                        reason: "the model thread ended during load".into(),
                    });
                }
            }
        }
    }
}

struct GgufMeta {
    name: Option<String>,
    quantization: Option<String>,
    chat_templates: std::collections::BTreeMap<String, String>,
    architecture: String,
}

struct LoadJob {
    model: ModelParams,
    context: ContextParams,
    n_gpu_layers: u32,
    estimate: MemoryEstimate,
    meta: GgufMeta,
    t0: Instant,
}

/// Refuse contexts whose KV cache cannot fit in memory before llama.cpp tries (on a
/// CPU-only machine; with a GPU, llama.cpp's own failure is reported instead).
fn check_memory(
    e: &MemoryEstimate,
    ctx: &ContextParams,
    file: &gguf::GgufFile,
) -> Result<(), EngineError> {
    if backend::has_gpu() {
        return Ok(());
    }
    let Some((total, available)) = backend::system_memory() else {
        return Ok(());
    };
    let need = e.kv_bytes + e.compute_bytes;
    if need > total {
        let n_ctx_train = file.context_length().unwrap_or(0);
        let n_ctx = ctx.n_ctx_total(u32::try_from(n_ctx_train).unwrap_or(u32::MAX));
        return Err(EngineError::ContextTooLarge {
            n_ctx,
            reason: format!(
                "its KV cache and buffers need about {need} bytes, the machine has {total}"
            ),
        });
    }
    if e.total_bytes > available {
        tracing::warn!(
            needed = e.total_bytes,
            available,
            "the model may not fit in free memory; it will page"
        );
    }
    Ok(())
}

fn resolve_gpu_layers(model: &ModelParams, e: &MemoryEstimate) -> u32 {
    match model.n_gpu_layers {
        GpuLayers::Count(n) => n,
        GpuLayers::Auto => {
            let gpus: Vec<_> = backend::devices()
                .into_iter()
                .filter(|d| {
                    matches!(
                        d.kind,
                        backend::DeviceKind::Gpu | backend::DeviceKind::IntegratedGpu
                    )
                })
                .collect();
            if gpus.is_empty() || e.n_layer == 0 {
                return 0;
            }
            let free: u64 = gpus.iter().map(|d| d.memory_free).sum();
            // Keep a margin for the driver and other programs.
            let budget = free.saturating_sub(1 << 30).saturating_sub(e.compute_bytes);
            let per_layer = (e.weights_bytes + e.kv_bytes) / (e.n_layer + 1);
            if per_layer == 0 {
                return 999;
            }
            let fit = budget / per_layer;
            if fit > e.n_layer {
                999 // everything, output layer included
            } else {
                u32::try_from(fit).unwrap_or(0)
            }
        }
    }
}

fn kv_type(name: &str) -> KvCacheType {
    match name.to_ascii_lowercase().as_str() {
        "f32" => KvCacheType::F32,
        "bf16" => KvCacheType::BF16,
        "q8_0" => KvCacheType::Q8_0,
        "q4_0" => KvCacheType::Q4_0,
        "q4_1" => KvCacheType::Q4_1,
        "iq4_nl" => KvCacheType::IQ4_NL,
        "q5_0" => KvCacheType::Q5_0,
        "q5_1" => KvCacheType::Q5_1,
        _ => KvCacheType::F16,
    }
}

/// Context parameters every context of a model shares (the slots' context and the
/// embedding contexts): threads, flash attention, KV cache types, RoPE and YaRN overrides.
pub(crate) fn base_context_params(
    cp: &ContextParams,
    threads: u32,
    threads_batch: u32,
) -> LlamaContextParams {
    let mut cparams = LlamaContextParams::default()
        .with_n_threads(i32::try_from(threads).unwrap_or(1))
        .with_n_threads_batch(i32::try_from(threads_batch).unwrap_or(1))
        .with_flash_attention_policy(match cp.flash_attn {
            FlashAttn::Auto => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_AUTO,
            FlashAttn::On => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED,
            FlashAttn::Off => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED,
        })
        .with_type_k(kv_type(&cp.cache_type_k))
        .with_type_v(kv_type(&cp.cache_type_v))
        .with_swa_full(cp.swa_full)
        .with_no_perf(true);
    if let Some(r) = cp.rope_scaling {
        cparams = cparams.with_rope_scaling_type(match r {
            RopeScaling::None => RopeScalingType::None,
            RopeScaling::Linear => RopeScalingType::Linear,
            RopeScaling::Yarn => RopeScalingType::Yarn,
        });
    }
    if let Some(v) = cp.rope_freq_base {
        cparams = cparams.with_rope_freq_base(v);
    }
    if let Some(v) = cp.rope_freq_scale {
        cparams = cparams.with_rope_freq_scale(v);
    }
    if let Some(v) = cp.yarn.ext_factor {
        cparams = cparams.with_yarn_ext_factor(v);
    }
    if let Some(v) = cp.yarn.attn_factor {
        cparams = cparams.with_yarn_attn_factor(v);
    }
    if let Some(v) = cp.yarn.beta_fast {
        cparams = cparams.with_yarn_beta_fast(v);
    }
    if let Some(v) = cp.yarn.beta_slow {
        cparams = cparams.with_yarn_beta_slow(v);
    }
    if let Some(v) = cp.yarn.orig_ctx {
        cparams = cparams.with_yarn_orig_ctx(v);
    }
    cparams
}

fn host_thread(
    job: LoadJob,
    load_tx: std_mpsc::Sender<LoadMsg>,
    rx: std_mpsc::Receiver<Task>,
    shared: Arc<Shared>,
) {
    let waiters = run_host(job, &load_tx, rx, shared);
    // Model and context are freed by now.
    crate::backend::release_freed_memory();
    for w in waiters {
        let _ = w.send(());
    }
}

fn run_host(
    job: LoadJob,
    load_tx: &std_mpsc::Sender<LoadMsg>,
    rx: std_mpsc::Receiver<Task>,
    shared: Arc<Shared>,
) -> Vec<oneshot::Sender<()>> {
    let LoadJob {
        model: mp,
        context: cp,
        n_gpu_layers,
        estimate,
        meta,
        t0,
    } = job;
    let backend = backend::get();
    let progress_tx = load_tx.clone();
    backend::clear_last_error();
    // Returning false (the loader went away) aborts the load.
    let loaded = crate::raw::load_model(&mp.path, &mp, n_gpu_layers, |p| {
        progress_tx.send(LoadMsg::Progress(p)).is_ok()
    });
    let model = match loaded {
        Ok(Some(m)) => Arc::new(m),
        Ok(None) | Err(_) => {
            let last = backend::take_last_error();
            let err = if !crate::arch::is_known_architecture(&meta.architecture) {
                EngineError::UnsupportedArchitecture {
                    architecture: meta.architecture.clone(),
                }
            } else {
                EngineError::LoadFailed {
                    reason: match loaded {
                        Err(e) => e,
                        _ => last.unwrap_or_else(|| "llama.cpp could not load the model".into()),
                    },
                }
            };
            let _ = load_tx.send(LoadMsg::Failed(err));
            return Vec::new();
        }
    };

    let adapters = match Adapters::load(&model, &mp.lora) {
        Ok(a) => a,
        Err(e) => {
            let _ = load_tx.send(LoadMsg::Failed(e));
            return Vec::new();
        }
    };

    let n_ctx_train = model.n_ctx_train();
    let n_ctx_slot = cp.effective_ctx_per_slot(n_ctx_train);
    let n_ctx_total = cp.n_ctx_total(n_ctx_train);
    let n_batch = cp.n_batch.max(cp.parallel);
    let n_ubatch = cp.n_ubatch.min(n_batch);
    let threads = cp.threads_or_default();
    let threads_batch = cp.threads_batch_or_default();

    let can_shift = !model.is_recurrent()
        && !model.is_hybrid()
        && !matches!(
            model.rope_type(),
            Some(
                llama_cpp_2::model::RopeType::MRope
                    | llama_cpp_2::model::RopeType::IMRope
                    | llama_cpp_2::model::RopeType::Vision
            )
        );
    if cp.on_context_full == OnContextFull::Shift && !can_shift {
        let _ = load_tx.send(LoadMsg::Failed(EngineError::invalid(
            "on_context_full",
            "this model cannot shift its context (recurrent, hybrid or M-RoPE); use 'stop'",
        )));
        return Vec::new();
    }

    let mut cparams = base_context_params(&cp, threads, threads_batch)
        .with_n_ctx(NonZeroU32::new(n_ctx_total))
        .with_n_batch(n_batch)
        .with_n_ubatch(n_ubatch)
        .with_n_seq_max(cp.parallel)
        .with_kv_unified(cp.kv_unified)
        .with_embeddings(cp.embeddings);
    if let Some(p) = cp.pooling {
        cparams = cparams.with_pooling_type(crate::embed::llama_pooling(p));
    }

    let rss0 = estimate::rss_bytes();
    backend::clear_last_error();
    let ctx = match model.new_context(backend, cparams) {
        Ok(c) => c,
        Err(_) => {
            let reason = backend::take_last_error().unwrap_or_else(|| {
                "llama.cpp could not create the context (out of memory?)".into()
            });
            let _ = load_tx.send(LoadMsg::Failed(EngineError::ContextTooLarge {
                n_ctx: n_ctx_total,
                reason,
            }));
            return Vec::new();
        }
    };
    let rss1 = estimate::rss_bytes();
    // The raw context, for setting several adapters at once (llama-cpp-2 sets only one).
    let ctx_raw = crate::raw::checked_raw_context(&ctx, &model);
    if adapters.len() > 0 {
        let applied = match ctx_raw {
            Some(raw) => adapters.apply(raw, adapters.global()),
            None => Err(EngineError::LoadFailed {
                reason: "cannot reach the llama.cpp context to set LoRA adapters \
                         (llama-cpp-2 layout changed?)"
                    .into(),
            }),
        };
        if let Err(e) = applied {
            let _ = load_tx.send(LoadMsg::Failed(e));
            return Vec::new();
        }
    }

    let model_pooling = crate::embed::model_pooling(&model, &meta.architecture);
    let info = model_info(
        &model,
        &ctx,
        &mp.path,
        meta,
        InfoExtra {
            n_ctx_slot,
            n_slots: cp.parallel,
            n_batch,
            n_ubatch,
            threads,
            threads_batch,
            n_gpu_layers,
            can_shift,
            embeddings: cp.embeddings,
            pooling: model_pooling,
            memory: MemoryReport {
                estimate,
                model_bytes: model.size(),
                context_rss_bytes: rss0.zip(rss1).map(|(a, b)| b.saturating_sub(a)),
            },
            load_ms: t0.elapsed().as_secs_f64() * 1e3,
        },
    );
    let recurrent = info.is_recurrent || info.is_hybrid;
    let cfg = HostConfig {
        n_ctx_slot,
        n_slots: cp.parallel,
        n_batch: n_batch as usize,
        prefill_chunk: cp.prefill_chunk as usize,
        on_full: cp.on_context_full,
        queue_max: cp.queue_max,
        n_swa: info.n_swa,
        add_bos: info.add_bos,
        kv_pool: cp.kv_unified.then_some(n_ctx_total as usize),
        cache_ram_mib: cp.cache_ram_mib,
        cache_idle_slots: cp.cache_idle_slots,
    };
    let limits = Limits {
        n_ctx_slot,
        n_slots: cp.parallel,
        n_batch: n_batch as usize,
        n_vocab: model.n_vocab(),
        eog_tokens: info.eog_tokens.clone(),
        n_adapters: adapters.len(),
        model_pooling: info.pooling,
        default_pooling: cp.pooling.or(info.pooling).unwrap_or(Pooling::Mean),
        rerank_template: model
            .chat_template(Some("rerank"))
            .ok()
            .and_then(|t| t.to_string().ok()),
        // The embedding contexts hold one slot's worth of tokens (`EmbedConfig::n_ctx`).
        embed_n_ctx: n_ctx_slot,
        n_embd: info.n_embd,
    };
    let embed = EmbedConfig {
        threads,
        threads_batch,
        n_ctx: n_ctx_slot,
        // Recurrent state is allocated per sequence; a KV cache is not.
        n_seq: if recurrent {
            cp.parallel
        } else {
            cp.parallel.max(EMBED_SEQS)
        },
        context: cp,
    };
    let loaded = Loaded {
        info,
        model: Arc::clone(&model),
        limits,
    };
    if load_tx.send(LoadMsg::Loaded(Box::new(loaded))).is_err() {
        // The loader is gone and dropped its reference with the message.
        drop((ctx, adapters));
        free_model(model);
        return Vec::new();
    }
    let host = Host::new(&model, ctx, ctx_raw, adapters, cfg, embed, shared);
    let waiters = host.run(rx);
    free_model(model);
    waiters
}

/// Free the model once the callers' references are gone. Handles give theirs up at
/// shutdown (or when the last one drops); a caller preparing a request holds one only until
/// the request is handed over, so this waits at most that long. `shutdown` promises the
/// memory is free when it returns.
fn free_model(mut model: Arc<LlamaModel>) {
    loop {
        match Arc::try_unwrap(model) {
            Ok(m) => {
                drop(m);
                return;
            }
            Err(shared) => {
                model = shared;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }
}

struct InfoExtra {
    n_ctx_slot: u32,
    n_slots: u32,
    n_batch: u32,
    n_ubatch: u32,
    threads: u32,
    threads_batch: u32,
    n_gpu_layers: u32,
    can_shift: bool,
    embeddings: bool,
    pooling: Option<Pooling>,
    memory: MemoryReport,
    load_ms: f64,
}

fn model_info(
    model: &LlamaModel,
    ctx: &llama_cpp_2::context::LlamaContext<'_>,
    path: &Path,
    meta: GgufMeta,
    x: InfoExtra,
) -> ModelInfo {
    let vocab = model.vocab();
    let n_vocab = vocab.n_tokens();
    let valid = |t: i32| t >= 0 && t < n_vocab;
    let text = |t: i32| -> Option<String> {
        if !valid(t) {
            return None;
        }
        vocab
            .text(llama_cpp_2::token::LlamaToken(t))
            .map(|c| c.to_string_lossy().into_owned())
    };
    let bos = vocab.bos().0;
    let eos = vocab.eos().0;
    let eog_tokens: Vec<i32> = (0..n_vocab)
        .filter(|&t| vocab.is_eog(llama_cpp_2::token::LlamaToken(t)))
        .collect();
    let has_fim = valid(vocab.fim_pre().0) && valid(vocab.fim_suf().0) && valid(vocab.fim_mid().0);
    // SAFETY: valid model pointer for the duration of the call.
    let n_swa = unsafe { llama_cpp_sys_2::llama_model_n_swa(raw_model(model)) };
    let chat_template = model
        .chat_template(None)
        .ok()
        .and_then(|t| t.to_string().ok());
    ModelInfo {
        path: path.to_path_buf(),
        name: meta.name,
        architecture: meta.architecture,
        quantization: meta.quantization,
        n_params: model.n_params(),
        size_bytes: model.size(),
        n_ctx_train: model.n_ctx_train(),
        n_embd: u32::try_from(model.n_embd()).unwrap_or(0),
        n_vocab: u32::try_from(n_vocab).unwrap_or(0),
        n_layer: model.n_layer(),
        n_head: model.n_head(),
        n_head_kv: model.n_head_kv(),
        n_swa: u32::try_from(n_swa).unwrap_or(0),
        chat_template,
        chat_templates: meta.chat_templates,
        bos_token: text(bos),
        eos_token: text(eos),
        bos_id: valid(bos).then_some(bos),
        eos_id: valid(eos).then_some(eos),
        eog_tokens,
        add_bos: vocab.should_add_bos(),
        has_fim,
        is_recurrent: model.is_recurrent(),
        is_hybrid: model.is_hybrid(),
        can_shift: x.can_shift,
        n_ctx: ctx.n_ctx(),
        n_ctx_slot: x.n_ctx_slot,
        n_slots: x.n_slots,
        n_batch: x.n_batch,
        n_ubatch: x.n_ubatch,
        threads: x.threads,
        threads_batch: x.threads_batch,
        n_gpu_layers: x.n_gpu_layers,
        embeddings: x.embeddings,
        pooling: x.pooling,
        can_rerank: x.pooling == Some(Pooling::Rank),
        memory: x.memory,
        load_ms: x.load_ms,
    }
}
