//! Embeddings and reranking, on a second llama.cpp context per pooling type.
//!
//! The generation context keeps its logits-only setup; the first embedding request with a
//! given pooling creates a context with embeddings on and that pooling (cached until the
//! model unloads), whose batch holds a whole slot context in one ubatch (non-causal models
//! must see an input at once). Inputs are packed into batches, one sequence each, as
//! llama-server does. A job advances by one batch per scheduler turn, on the host thread,
//! so generation in the slots keeps going between batches.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::ptr::NonNull;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaPoolingType;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::backend;
use crate::error::EngineError;
use crate::lora::Adapters;
use crate::params::{ContextParams, Pooling};
use crate::request::Prompt;

/// How pooled embeddings are scaled (llama-server's `embd_normalize`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// As the model computes them (`-1`).
    None,
    /// Divided by the largest absolute value, times 32760: the int16 range (`0`).
    MaxAbs,
    /// Sum of absolute values is 1 (`1`).
    Taxicab,
    /// Unit length (`2`, the default).
    #[default]
    Euclidean,
    /// Unit p-norm (`> 2`).
    PNorm(f32),
}

impl Normalize {
    /// llama-server's integer: -1 none, 0 max-abs (int16), 1 taxicab, 2 euclidean, > 2
    /// p-norm. Other negative values mean none.
    pub fn from_llama(n: i32) -> Normalize {
        match n {
            i32::MIN..=-1 => Normalize::None,
            0 => Normalize::MaxAbs,
            1 => Normalize::Taxicab,
            2 => Normalize::Euclidean,
            p => Normalize::PNorm(p as f32),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), EngineError> {
        if let Normalize::PNorm(p) = self
            && !(p.is_finite() && *p > 0.0)
        {
            return Err(EngineError::invalid(
                "normalize",
                "the p of a p-norm must be finite and > 0",
            ));
        }
        Ok(())
    }

    /// Scale `v` in place, as llama.cpp's `common_embd_normalize` (sums in f64; an all-zero
    /// vector stays zero).
    pub fn apply(&self, v: &mut [f32]) {
        let sum: f64 = match *self {
            Normalize::None => return,
            Normalize::MaxAbs => v.iter().fold(0.0f64, |m, &x| m.max(f64::from(x.abs()))) / 32760.0,
            Normalize::Taxicab => v.iter().map(|&x| f64::from(x.abs())).sum(),
            Normalize::Euclidean => v
                .iter()
                .map(|&x| f64::from(x) * f64::from(x))
                .sum::<f64>()
                .sqrt(),
            Normalize::PNorm(p) => {
                let p = f64::from(p);
                v.iter()
                    .map(|&x| f64::from(x.abs()).powf(p))
                    .sum::<f64>()
                    .powf(1.0 / p)
            }
        };
        let norm = if sum > 0.0 { 1.0 / sum } else { 0.0 };
        for x in v {
            *x = (f64::from(*x) * norm) as f32;
        }
    }
}

/// A request for embeddings of one or more inputs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EmbedRequest {
    /// Each input is embedded on its own (`Prompt::Infill` is not accepted).
    pub inputs: Vec<Prompt>,
    /// `None`: the load-time `ContextParams::pooling`, else the model's own (GGUF
    /// `<arch>.pooling_type`), else mean.
    pub pooling: Option<Pooling>,
    /// Applied to pooled embeddings only (llama-server leaves per-token ones as they are).
    pub normalize: Normalize,
    /// Refuse pooling `none` (OpenAI's shape has one vector per input), before any work.
    pub pooled_only: bool,
    /// Cut an input longer than the context to its first tokens (Ollama's `truncate`,
    /// on by default there) instead of refusing it (llama-server's and OpenAI's rule).
    pub truncate: bool,
    /// What this request may ask (inputs, tokens, floats out); the service sets it.
    #[serde(skip)]
    pub caps: crate::request::Caps,
}

impl EmbedRequest {
    /// Checks that need no model: at least one input, a usable p-norm, no empty token list.
    /// An empty text is refused after tokenizing only if it gives no token (a model that
    /// adds BOS/EOS embeds it, as llama-server does).
    pub fn validate(&self) -> Result<(), EngineError> {
        if self.inputs.is_empty() {
            return Err(EngineError::invalid(
                "inputs",
                "at least one input is needed",
            ));
        }
        self.normalize.validate()?;
        for (i, p) in self.inputs.iter().enumerate() {
            match p {
                Prompt::Text { text, .. } if text.len() > i32::MAX as usize / 2 => {
                    return Err(EngineError::invalid(
                        "inputs",
                        format!("input {i} is too large"),
                    ));
                }
                Prompt::Tokens(t) if t.is_empty() => {
                    return Err(EngineError::invalid(
                        "inputs",
                        format!("input {i} is empty"),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The embedding of one input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingValues {
    /// One vector for the input.
    Pooled(Vec<f32>),
    /// One vector per token (pooling `none`).
    PerToken(Vec<Vec<f32>>),
}

/// One input's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    /// Position of the input in the request.
    pub index: usize,
    /// Tokens the input had.
    pub n_tokens: u32,
    pub values: EmbeddingValues,
}

/// The relevance of one document to the query (higher is more relevant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RerankScore {
    /// Position of the document in the request.
    pub index: usize,
    pub score: f32,
    /// Tokens of the query-document pair.
    pub n_tokens: u32,
}

/// Pooling as llama.cpp numbers it (`<arch>.pooling_type`).
pub(crate) fn pooling_from_llama(n: i64) -> Option<Pooling> {
    match n {
        0 => Some(Pooling::None),
        1 => Some(Pooling::Mean),
        2 => Some(Pooling::Cls),
        3 => Some(Pooling::Last),
        4 => Some(Pooling::Rank),
        _ => None,
    }
}

pub(crate) fn pooling_name(p: Pooling) -> &'static str {
    match p {
        Pooling::None => "none",
        Pooling::Mean => "mean",
        Pooling::Cls => "cls",
        Pooling::Last => "last",
        Pooling::Rank => "rank",
    }
}

pub(crate) fn llama_pooling(p: Pooling) -> LlamaPoolingType {
    match p {
        Pooling::None => LlamaPoolingType::None,
        Pooling::Mean => LlamaPoolingType::Mean,
        Pooling::Cls => LlamaPoolingType::Cls,
        Pooling::Last => LlamaPoolingType::Last,
        Pooling::Rank => LlamaPoolingType::Rank,
    }
}

/// The model's declared pooling type (GGUF `<arch>.pooling_type`), if any.
pub(crate) fn model_pooling(model: &LlamaModel, arch: &str) -> Option<Pooling> {
    let v = model.meta_val_str(&format!("{arch}.pooling_type")).ok()?;
    pooling_from_llama(v.trim().parse().ok()?)
}

/// The error for rerank on a model that cannot rank.
pub(crate) fn cannot_rerank(declared: Option<Pooling>) -> EngineError {
    let what = match declared {
        Some(p) => format!("its pooling type is {}", pooling_name(p)),
        None => "it declares no pooling type, so it pools with mean".to_string(),
    };
    EngineError::Unsupported {
        what: "rerank".into(),
        reason: format!(
            "this model cannot rerank ({what}; rerank needs a rank-pooling model, i.e. a \
             reranker with a classification head)"
        ),
    }
}

/// Special tokens and flags that shape a rerank input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RerankVocab {
    pub bos: Option<i32>,
    pub eos: Option<i32>,
    pub sep: Option<i32>,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_sep: bool,
}

/// The tokens of one query-document pair, as llama-server's `format_prompt_rerank`: the
/// model's `rerank` template with `{query}` and `{document}` replaced (tokenized with
/// special tokens parsed), else `[BOS] query [EOS] [SEP] document [EOS]` with each special
/// token only where the vocabulary asks for it (SEP stands in for a missing EOS).
/// `tokenize(text, parse_special)` never adds special tokens itself.
pub(crate) fn rerank_tokens(
    template: Option<&str>,
    query: &str,
    document: &str,
    v: &RerankVocab,
    tokenize: impl Fn(&str, bool) -> Vec<i32>,
) -> Vec<i32> {
    if let Some(t) = template {
        let text = t.replace("{query}", query).replace("{document}", document);
        return tokenize(&text, true);
    }
    let eos = v.eos.or(v.sep);
    let mut out = Vec::new();
    if v.add_bos
        && let Some(b) = v.bos
    {
        out.push(b);
    }
    out.extend(tokenize(query, false));
    if v.add_eos
        && let Some(e) = eos
    {
        out.push(e);
    }
    if v.add_sep
        && let Some(s) = v.sep
    {
        out.push(s);
    }
    out.extend(tokenize(document, false));
    if v.add_eos
        && let Some(e) = eos
    {
        out.push(e);
    }
    out
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, EngineError>>;

pub(crate) enum JobReply {
    Embed(Reply<Vec<Embedding>>),
    Rerank(Reply<Vec<RerankScore>>),
}

impl JobReply {
    fn is_closed(&self) -> bool {
        match self {
            JobReply::Embed(r) => r.is_closed(),
            JobReply::Rerank(r) => r.is_closed(),
        }
    }

    fn fail(self, e: EngineError) {
        match self {
            JobReply::Embed(r) => {
                let _ = r.send(Err(e));
            }
            JobReply::Rerank(r) => {
                let _ = r.send(Err(e));
            }
        }
    }
}

/// An admitted embed or rerank request: its inputs, tokenized and checked.
pub(crate) struct Job {
    pub pooling: Pooling,
    pub normalize: Normalize,
    pub inputs: Vec<Vec<LlamaToken>>,
    pub reply: JobReply,
    next: usize,
    done: Vec<Embedding>,
}

impl Job {
    pub fn new(
        pooling: Pooling,
        normalize: Normalize,
        inputs: Vec<Vec<LlamaToken>>,
        reply: JobReply,
    ) -> Self {
        Job {
            pooling,
            normalize,
            next: 0,
            done: Vec::with_capacity(inputs.len()),
            inputs,
            reply,
        }
    }
}

struct EmbedCtx<'m> {
    pooling: Pooling,
    ctx: LlamaContext<'m>,
    /// For setting LoRA adapters.
    raw: Option<NonNull<llama_cpp_sys_2::llama_context>>,
    batch: LlamaBatch<'static>,
}

/// Settings for the embedding contexts, from the model's load parameters.
pub(crate) struct EmbedConfig {
    pub context: ContextParams,
    pub threads: u32,
    pub threads_batch: u32,
    /// Tokens per context: a slot's context.
    pub n_ctx: u32,
    /// Inputs decoded together at most.
    pub n_seq: u32,
}

/// The embedding contexts of one model and the jobs waiting for them.
pub(crate) struct Embedder<'m> {
    model: &'m LlamaModel,
    cfg: EmbedConfig,
    ctxs: Vec<EmbedCtx<'m>>,
    jobs: VecDeque<Job>,
}

impl<'m> Embedder<'m> {
    pub fn new(model: &'m LlamaModel, cfg: EmbedConfig) -> Self {
        Embedder {
            model,
            cfg,
            ctxs: Vec::new(),
            jobs: VecDeque::new(),
        }
    }

    /// Most tokens one input may have.
    pub fn is_idle(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Make sure the context for `pooling` exists (creating it now, so that a failure goes
    /// back to the request that needed it).
    pub fn ensure_ctx(&mut self, pooling: Pooling) -> Result<(), EngineError> {
        if self.ctxs.iter().any(|c| c.pooling == pooling) {
            return Ok(());
        }
        let n = self.cfg.n_ctx;
        let params = crate::load::base_context_params(
            &self.cfg.context,
            self.cfg.threads,
            self.cfg.threads_batch,
        )
        .with_n_ctx(NonZeroU32::new(n))
        .with_n_batch(n)
        .with_n_ubatch(n)
        .with_n_seq_max(self.cfg.n_seq)
        .with_kv_unified(true)
        .with_embeddings(true)
        .with_pooling_type(llama_pooling(pooling));
        backend::clear_last_error();
        let ctx = self
            .model
            .new_context(backend::get(), params)
            .map_err(|_| EngineError::ContextTooLarge {
                n_ctx: n,
                reason: backend::take_last_error().unwrap_or_else(|| {
                    "llama.cpp could not create the embedding context (out of memory?)".into()
                }),
            })?;
        tracing::debug!(
            pooling = pooling_name(pooling),
            n_ctx = n,
            "embedding context created"
        );
        let raw = crate::raw::checked_raw_context(&ctx, self.model);
        self.ctxs.push(EmbedCtx {
            pooling,
            raw,
            ctx,
            batch: LlamaBatch::new(n as usize, 1),
        });
        Ok(())
    }

    pub fn push(&mut self, job: Job) {
        self.jobs.push_back(job);
    }

    /// Fail every job (the host is stopping).
    pub fn fail_all(&mut self, err: &EngineError) {
        for j in self.jobs.drain(..) {
            j.reply.fail(err.clone());
        }
    }

    /// Decode one batch of the oldest job (with the global LoRA scales); answer it when its
    /// last input is done.
    pub fn step(&mut self, adapters: &Adapters) {
        self.jobs.retain(|j| !j.reply.is_closed());
        let Some(job) = self.jobs.front_mut() else {
            return;
        };
        let result = match self.ctxs.iter_mut().find(|c| c.pooling == job.pooling) {
            Some(ec) => {
                set_lora(ec, adapters).and_then(|()| run_batch(ec, job, self.cfg.n_seq as usize))
            }
            None => Err(EngineError::Decode(
                "the embedding context is missing".into(),
            )),
        };
        let finished = match result {
            Ok(()) => job.next == job.inputs.len(),
            Err(_) => true,
        };
        if !finished {
            return;
        }
        let job = self.jobs.pop_front().expect("front exists");
        match result {
            Err(e) => job.reply.fail(e),
            Ok(()) => match job.reply {
                JobReply::Embed(r) => {
                    let _ = r.send(Ok(job.done));
                }
                JobReply::Rerank(r) => {
                    let scores = job
                        .done
                        .into_iter()
                        .map(|e| RerankScore {
                            index: e.index,
                            n_tokens: e.n_tokens,
                            score: match e.values {
                                EmbeddingValues::Pooled(v) => v.first().copied().unwrap_or(-1e6),
                                EmbeddingValues::PerToken(_) => -1e6,
                            },
                        })
                        .collect();
                    let _ = r.send(Ok(scores));
                }
            },
        }
    }
}

fn set_lora(ec: &EmbedCtx<'_>, adapters: &Adapters) -> Result<(), EngineError> {
    if adapters.len() == 0 {
        return Ok(());
    }
    match ec.raw {
        Some(raw) => adapters.apply(raw, adapters.global()),
        None => Err(EngineError::Decode(
            "cannot reach the llama.cpp context to set LoRA adapters".into(),
        )),
    }
}

/// Pack the job's next inputs into one batch (one sequence each), decode, read the results.
fn run_batch(ec: &mut EmbedCtx<'_>, job: &mut Job, n_seq: usize) -> Result<(), EngineError> {
    let n_ctx = ec.ctx.n_batch() as usize;
    ec.batch.clear();
    let _ = ec.ctx.clear_kv_cache_seq(None, None, None);
    // (input index, first batch index, length)
    let mut members: Vec<(usize, usize, usize)> = Vec::new();
    let mut n = 0usize;
    while job.next < job.inputs.len() && members.len() < n_seq {
        let toks = &job.inputs[job.next];
        if n + toks.len() > n_ctx {
            break;
        }
        let seq = members.len() as i32;
        for (pos, &t) in toks.iter().enumerate() {
            ec.batch
                .add(t, pos as i32, &[seq], true)
                .map_err(|e| EngineError::Decode(e.to_string()))?;
        }
        members.push((job.next, n, toks.len()));
        n += toks.len();
        job.next += 1;
    }
    if members.is_empty() {
        // Cannot happen: every input was checked against n_ctx on admission.
        return Err(EngineError::Decode(
            "an input does not fit the batch".into(),
        ));
    }
    let r = ec.ctx.decode(&mut ec.batch);
    if let Err(e) = r {
        let _ = ec.ctx.clear_kv_cache_seq(None, None, None);
        return Err(EngineError::Decode(e.to_string()));
    }
    for (seq, &(index, first, len)) in members.iter().enumerate() {
        let values = if job.pooling == Pooling::None {
            let mut rows = Vec::with_capacity(len);
            for k in first..first + len {
                let row = ec.ctx.embeddings_ith(k as i32).map_err(|_| {
                    EngineError::Decode(format!("no embedding for token {k} of input {index}"))
                })?;
                rows.push(row.to_vec());
            }
            EmbeddingValues::PerToken(rows)
        } else {
            let mut v = ec
                .ctx
                .embeddings_seq_ith(seq as i32)
                .map_err(|_| EngineError::Decode(format!("no embedding for input {index}")))?
                .to_vec();
            job.normalize.apply(&mut v);
            EmbeddingValues::Pooled(v)
        };
        job.done.push(Embedding {
            index,
            n_tokens: len as u32,
            values,
        });
    }
    let _ = ec.ctx.clear_kv_cache_seq(None, None, None);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_llama_maps_llama_servers_integers() {
        assert_eq!(Normalize::from_llama(-1), Normalize::None);
        assert_eq!(Normalize::from_llama(-7), Normalize::None);
        assert_eq!(Normalize::from_llama(0), Normalize::MaxAbs);
        assert_eq!(Normalize::from_llama(1), Normalize::Taxicab);
        assert_eq!(Normalize::from_llama(2), Normalize::Euclidean);
        assert_eq!(Normalize::from_llama(3), Normalize::PNorm(3.0));
        assert_eq!(Normalize::default(), Normalize::Euclidean);
    }

    fn norm(n: Normalize, v: &[f32]) -> Vec<f32> {
        let mut v = v.to_vec();
        n.apply(&mut v);
        v
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
    }

    #[test]
    fn normalisations_match_common_embd_normalize() {
        let v = [3.0, -4.0, 0.0];
        assert_eq!(norm(Normalize::None, &v), v);
        assert!(close(&norm(Normalize::Euclidean, &v), &[0.6, -0.8, 0.0]));
        assert!(close(
            &norm(Normalize::Taxicab, &v),
            &[3.0 / 7.0, -4.0 / 7.0, 0.0]
        ));
        // Max-abs scales the largest magnitude to 32760 (int16 range).
        assert!(close(
            &norm(Normalize::MaxAbs, &v),
            &[3.0 * 32760.0 / 4.0, -32760.0, 0.0]
        ));
        // p = 2 is the euclidean norm; p = 3: (27 + 64)^(1/3).
        assert!(close(
            &norm(Normalize::PNorm(2.0), &v),
            &norm(Normalize::Euclidean, &v)
        ));
        let p3 = 91f64.powf(1.0 / 3.0) as f32;
        assert!(close(
            &norm(Normalize::PNorm(3.0), &v),
            &[3.0 / p3, -4.0 / p3, 0.0]
        ));
        // A zero vector stays zero (no division by zero, no NaN).
        for n in [
            Normalize::MaxAbs,
            Normalize::Taxicab,
            Normalize::Euclidean,
            Normalize::PNorm(3.0),
        ] {
            assert_eq!(norm(n, &[0.0, 0.0]), [0.0, 0.0], "{n:?}");
        }
        assert!(Normalize::PNorm(f32::NAN).validate().is_err());
        assert!(Normalize::PNorm(0.0).validate().is_err());
        assert!(Normalize::PNorm(1.5).validate().is_ok());
    }

    #[test]
    fn serde_shapes() {
        let r: EmbedRequest = serde_json::from_str(
            r#"{"inputs": [{"tokens": [1, 2]}], "pooling": "last", "normalize": {"p_norm": 3.0}}"#,
        )
        .unwrap();
        assert_eq!(r.inputs, [Prompt::Tokens(vec![1, 2])]);
        assert_eq!(r.pooling, Some(Pooling::Last));
        assert_eq!(r.normalize, Normalize::PNorm(3.0));
        let d: EmbedRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(d.normalize, Normalize::Euclidean);
        assert_eq!(
            serde_json::to_value(Normalize::MaxAbs).unwrap(),
            serde_json::json!("max_abs")
        );
    }

    /// A toy tokenizer: one token per character, special `<x>` names parsed when asked.
    fn toks(text: &str, parse_special: bool) -> Vec<i32> {
        if parse_special && text.contains("<sep>") {
            let mut out = Vec::new();
            for (i, part) in text.split("<sep>").enumerate() {
                if i > 0 {
                    out.push(-5);
                }
                out.extend(part.chars().map(|c| c as i32));
            }
            return out;
        }
        text.chars().map(|c| c as i32).collect()
    }

    const BERT: RerankVocab = RerankVocab {
        bos: Some(101),
        eos: Some(102),
        sep: Some(103),
        add_bos: true,
        add_eos: true,
        add_sep: false,
    };

    #[test]
    fn rerank_pair_without_template() {
        let q = |s: &str| s.chars().map(|c| c as i32).collect::<Vec<_>>();
        // BOS query EOS document EOS (no SEP: the vocabulary does not add one).
        let t = rerank_tokens(None, "ab", "c", &BERT, toks);
        assert_eq!(
            t,
            [vec![101], q("ab"), vec![102], q("c"), vec![102]].concat()
        );
        // With SEP, and SEP standing in for a missing EOS.
        let v = RerankVocab {
            add_sep: true,
            eos: None,
            ..BERT
        };
        let t = rerank_tokens(None, "ab", "c", &v, toks);
        assert_eq!(
            t,
            [vec![101], q("ab"), vec![103, 103], q("c"), vec![103]].concat()
        );
        // A vocabulary that adds nothing: query and document back to back.
        let bare = RerankVocab {
            add_bos: false,
            add_eos: false,
            add_sep: false,
            ..BERT
        };
        assert_eq!(rerank_tokens(None, "ab", "c", &bare, toks), q("abc"));
    }

    #[test]
    fn rerank_pair_with_template() {
        let t = rerank_tokens(Some("Q:{query}<sep>D:{document}"), "x", "y", &BERT, toks);
        let q = |s: &str| s.chars().map(|c| c as i32).collect::<Vec<_>>();
        // Special tokens in the template are parsed; nothing else is added.
        assert_eq!(t, [q("Q:x"), vec![-5], q("D:y")].concat());
    }
}
