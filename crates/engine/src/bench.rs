//! `llama-dashboard bench`: prompt processing (pp) and generation (tg) speed, measured the
//! way llama.cpp's `llama-bench` measures it so the two can be compared side by side.
//!
//! It runs on a loaded model's host thread ([`crate::ModelHandle::bench`]), on a context
//! of its own, once no slot is busy: the model is measured as it is loaded and served, and
//! no second copy of it is ever loaded for a benchmark.
//!
//! Method (llama-bench's `test_prompt` / `test_gen`): one warm-up pass, then `reps` timed
//! runs, each on an emptied KV cache. pp decodes `n_prompt` random tokens in chunks of
//! `n_batch` and waits for the device; tg decodes `n_gen` single tokens one after another.
//! Tokens/s per run, then mean ± sample standard deviation over the runs.

use crate::backend;
use crate::error::EngineError;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;
use std::time::Instant;

/// What to measure; defaults are llama-bench's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BenchParams {
    /// Prompt tokens for the pp test (0 skips it).
    pub n_prompt: u32,
    /// Generated tokens for the tg test (0 skips it).
    pub n_gen: u32,
    pub reps: u32,
    pub n_batch: u32,
    pub n_ubatch: u32,
    /// Context size; `None` = just enough for the test (n_prompt or n_gen), as llama-bench.
    pub n_ctx: Option<u32>,
    pub threads: u32,
    /// The layers on the GPU: the loaded model's (set in the report; a benchmark with other
    /// GPU layers loads the model with them, through the model manager).
    pub n_gpu_layers: u32,
}

impl Default for BenchParams {
    fn default() -> Self {
        BenchParams {
            n_prompt: 512,
            n_gen: 128,
            reps: 5,
            n_batch: 2048,
            n_ubatch: 512,
            n_ctx: None,
            threads: backend::physical_cores(),
            n_gpu_layers: 0,
        }
    }
}

/// One test's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    /// `pp512`, `tg128`: llama-bench's names.
    pub test: String,
    pub n_prompt: u32,
    pub n_gen: u32,
    /// Tokens per second of each timed run.
    pub samples_ts: Vec<f64>,
    pub avg_ts: f64,
    pub stddev_ts: f64,
}

/// Progress for a UI: which test, which repetition (0 = warm-up).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchProgress {
    pub test: String,
    pub rep: u32,
    pub reps: u32,
}

/// Everything a run reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    pub params: BenchParams,
    pub model_size: u64,
    pub model_params: u64,
    pub results: Vec<BenchResult>,
}

impl BenchParams {
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |name: &str, reason: &str| Err(EngineError::invalid(name, reason));
        if self.n_prompt == 0 && self.n_gen == 0 {
            return bad(
                "n_prompt",
                "n_prompt and n_gen are both 0: nothing to measure",
            );
        }
        if self.reps == 0 {
            return bad("reps", "must be at least 1");
        }
        if self.n_batch == 0 || self.n_ubatch == 0 {
            return bad("n_batch", "n_batch and n_ubatch must be at least 1");
        }
        if self.threads == 0 {
            return bad("threads", "must be at least 1");
        }
        Ok(())
    }
}

/// Runs the pp and tg tests on `model` (on the thread that owns it), each on a new context.
pub(crate) fn measure(
    model: &LlamaModel,
    params: &BenchParams,
    progress: &mut dyn FnMut(BenchProgress),
) -> Result<BenchReport, EngineError> {
    params.validate()?;
    let backend = backend::get();
    let mut results = Vec::new();
    for (n_prompt, n_gen) in [(params.n_prompt, 0), (0, params.n_gen)] {
        if n_prompt == 0 && n_gen == 0 {
            continue;
        }
        let test = if n_prompt > 0 {
            format!("pp{n_prompt}")
        } else {
            format!("tg{n_gen}")
        };
        let n_ctx = params.n_ctx.unwrap_or(n_prompt + n_gen).max(1);
        let ctx_params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(params.n_batch)
            .with_n_ubatch(params.n_ubatch)
            .with_n_threads(params.threads as i32)
            .with_n_threads_batch(params.threads as i32);
        let mut ctx =
            model
                .new_context(backend, ctx_params)
                .map_err(|e| EngineError::ContextTooLarge {
                    n_ctx,
                    reason: e.to_string(),
                })?;
        let n_batch = ctx.n_batch().max(1) as usize;
        let mut rng = Lcg(0x5eed);
        let mut samples = Vec::with_capacity(params.reps as usize);
        // rep 0 is llama-bench's warm-up (a 1-token tg, or the whole pp): not timed.
        for rep in 0..=params.reps {
            progress(BenchProgress {
                test: test.clone(),
                rep,
                reps: params.reps,
            });
            ctx.clear_kv_cache();
            let t0 = Instant::now();
            if n_prompt > 0 {
                test_prompt(&mut ctx, model, n_prompt as usize, n_batch, &mut rng)?;
            }
            if n_gen > 0 {
                test_gen(
                    &mut ctx,
                    model,
                    if rep == 0 { 1 } else { n_gen as usize },
                    &mut rng,
                )?;
            }
            let secs = t0.elapsed().as_secs_f64();
            if rep > 0 {
                samples.push(f64::from(n_prompt + n_gen) / secs);
            }
        }
        let (avg, sd) = mean_stddev(&samples);
        results.push(BenchResult {
            test,
            n_prompt,
            n_gen,
            samples_ts: samples,
            avg_ts: avg,
            stddev_ts: sd,
        });
    }
    Ok(BenchReport {
        params: params.clone(),
        model_size: model.size(),
        model_params: model.n_params(),
        results,
    })
}

fn first_token(model: &LlamaModel, rng: &mut Lcg, n_vocab: u32) -> LlamaToken {
    let vocab = model.vocab();
    if vocab.should_add_bos() {
        vocab.bos()
    } else {
        LlamaToken(rng.below(n_vocab) as i32)
    }
}

fn test_prompt(
    ctx: &mut llama_cpp_2::context::LlamaContext,
    model: &LlamaModel,
    n_prompt: usize,
    n_batch: usize,
    rng: &mut Lcg,
) -> Result<(), EngineError> {
    let n_vocab = model.n_vocab().max(1) as u32;
    let mut batch = LlamaBatch::new(n_batch, 1);
    let mut done = 0;
    while done < n_prompt {
        let n = (n_prompt - done).min(n_batch);
        batch.clear();
        for i in 0..n {
            let tok = if done == 0 && i == 0 {
                first_token(model, rng, n_vocab)
            } else {
                LlamaToken(rng.below(n_vocab) as i32)
            };
            // Only the last token's logits, like llama_batch_get_one.
            batch
                .add(tok, (done + i) as i32, &[0], i == n - 1)
                .map_err(|e| EngineError::Decode(e.to_string()))?;
        }
        ctx.decode(&mut batch)
            .map_err(|e| EngineError::Decode(e.to_string()))?;
        done += n;
    }
    ctx.synchronize();
    Ok(())
}

fn test_gen(
    ctx: &mut llama_cpp_2::context::LlamaContext,
    model: &LlamaModel,
    n_gen: usize,
    rng: &mut Lcg,
) -> Result<(), EngineError> {
    let n_vocab = model.n_vocab().max(1) as u32;
    let mut batch = LlamaBatch::new(1, 1);
    let mut tok = first_token(model, rng, n_vocab);
    for pos in 0..n_gen {
        batch.clear();
        batch
            .add(tok, pos as i32, &[0], true)
            .map_err(|e| EngineError::Decode(e.to_string()))?;
        ctx.decode(&mut batch)
            .map_err(|e| EngineError::Decode(e.to_string()))?;
        ctx.synchronize();
        tok = LlamaToken(rng.below(n_vocab) as i32);
    }
    Ok(())
}

/// Mean and sample standard deviation (n-1), as llama-bench reports them.
pub fn mean_stddev(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (mean, 0.0);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Random token ids for the benchmark: any cheap generator does (llama-bench uses rand()).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u32) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % u64::from(n)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_stddev() {
        let (m, s) = mean_stddev(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert!((m - 5.0).abs() < 1e-12);
        assert!((s - 2.138089935299395).abs() < 1e-12);
        assert_eq!(mean_stddev(&[3.0]), (3.0, 0.0));
        assert_eq!(mean_stddev(&[]), (0.0, 0.0));
    }

    #[test]
    fn rejects_empty_runs() {
        let p = BenchParams {
            n_prompt: 0,
            n_gen: 0,
            ..BenchParams::default()
        };
        assert!(p.validate().is_err());
        assert!(
            BenchParams {
                reps: 0,
                ..BenchParams::default()
            }
            .validate()
            .is_err()
        );
        assert!(BenchParams::default().validate().is_ok());
    }
}
