//! Slots: one sequence of the shared context each, with the tokens whose KV it holds (the
//! prompt cache) and the request it is working on.

use std::time::Instant;

use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;

use crate::lora::LoraConfig;
use crate::request::{Event, Timings};
use crate::stop::{StopMatcher, Utf8Buffer};

/// Whether a slot is working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotState {
    Idle,
    Processing,
}

/// A slot as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotInfo {
    pub id: u32,
    pub state: SlotState,
    /// Tokens of context this slot may hold.
    pub n_ctx: u32,
    /// Tokens whose KV the slot holds (reusable by the next request with the same prefix).
    pub n_cached: u32,
    pub task_id: Option<u64>,
    /// Prompt tokens of the current request (0 when idle).
    pub n_prompt: u32,
    /// Tokens generated so far by the current request.
    pub n_decoded: u32,
}

/// Result of saving or restoring a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotFileInfo {
    pub id: u32,
    pub n_tokens: u32,
    pub n_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Feeding the prompt (possibly over several steps).
    Prompt,
    /// Generating: `next_token` is decoded in the next step.
    Generate,
}

/// The request a slot is serving.
pub(crate) struct ActiveTask {
    pub id: u64,
    pub tx: UnboundedSender<Event>,
    pub prompt: Vec<LlamaToken>,
    /// Prompt tokens already in the KV cache (cached + evaluated).
    pub n_prompt_done: usize,
    pub phase: Phase,
    pub next_token: Option<LlamaToken>,
    /// Index in this step's batch whose logits to sample, or -1.
    pub i_batch: i32,
    /// Has tokens in this step's batch.
    pub in_batch: bool,
    pub chain: LlamaSampler,
    pub grammar: Option<LlamaSampler>,
    pub max_tokens: Option<u32>,
    pub n_decoded: u32,
    pub n_probs: u32,
    /// Report probabilities after the sampler chain rather than of the raw logits.
    pub post_sampling_probs: bool,
    /// Send [`crate::request::Event::Progress`] while the prompt is read.
    pub return_progress: bool,
    /// Carry the timings so far on each token.
    pub timings_per_token: bool,
    pub n_keep: u32,
    pub utf8: Utf8Buffer,
    pub stop: StopMatcher,
    pub cache_n: u32,
    pub prompt_n: u32,
    pub t_start: Instant,
    pub t_prompt_done: Option<Instant>,
    /// The LoRA scales this request runs with.
    pub lora: LoraConfig,
    /// A thinking budget, followed token by token.
    pub budget: Option<crate::budget::BudgetTracker>,
}

impl ActiveTask {
    /// The request's timings at `now`, the one computation behind `Done`, progress reports
    /// and `timings_per_token`: while the prompt is read, the prompt tokens decoded so far
    /// (no prompt time before the first); after it, the whole prompt and the tokens
    /// generated since.
    pub fn timings(&self, now: Instant) -> Timings {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        match self.t_prompt_done {
            None => {
                let decoded = (self.n_prompt_done as u32).saturating_sub(self.cache_n);
                let prompt_ms = if decoded == 0 {
                    0.0
                } else {
                    ms(now - self.t_start)
                };
                Timings::new(self.cache_n, decoded, prompt_ms, 0, 0.0)
            }
            Some(t_prompt) => Timings::new(
                self.cache_n,
                self.prompt_n,
                ms(t_prompt - self.t_start),
                self.n_decoded,
                ms(now.saturating_duration_since(t_prompt)),
            ),
        }
    }

    /// Has tokens to decode in the next step.
    pub fn has_work(&self) -> bool {
        match self.phase {
            Phase::Prompt => self.n_prompt_done < self.prompt.len(),
            Phase::Generate => self.next_token.is_some(),
        }
    }
}

pub(crate) struct Slot {
    pub id: u32,
    /// Tokens whose KV is in the cache for this sequence, at positions `0..len`.
    pub cache: Vec<LlamaToken>,
    /// The LoRA scales `cache` was computed under: only a request with the same ones may
    /// reuse it.
    pub cache_lora: LoraConfig,
    /// Scheduler tick of the last use (for least-recently-used choice).
    pub last_used: u64,
    /// Steps in a row this slot had work but was left out for another LoRA configuration.
    pub waited: u64,
    pub task: Option<ActiveTask>,
}

impl Slot {
    pub fn seq(&self) -> i32 {
        self.id as i32
    }

    pub fn info(&self, n_ctx: u32) -> SlotInfo {
        SlotInfo {
            id: self.id,
            state: if self.task.is_some() {
                SlotState::Processing
            } else {
                SlotState::Idle
            },
            n_ctx,
            n_cached: self.cache.len() as u32,
            task_id: self.task.as_ref().map(|t| t.id),
            n_prompt: self.task.as_ref().map_or(0, |t| t.prompt.len() as u32),
            n_decoded: self.task.as_ref().map_or(0, |t| t.n_decoded),
        }
    }
}
