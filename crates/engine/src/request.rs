//! One generation request and the events it produces.

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::error::EngineError;
use crate::infill::InfillPrompt;
use crate::lora::LoraScale;
use crate::sampling::{Grammar, SamplingParams};

/// Most `n_probs` a request may ask for.
pub const MAX_N_PROBS: u32 = 100;

/// What to continue from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// Text to tokenize. `add_special` adds BOS (etc.) as the model wants;
    /// `parse_special` turns special-token text such as `<|im_start|>` into those tokens.
    Text {
        text: String,
        add_special: bool,
        parse_special: bool,
    },
    /// Token ids as they are.
    Tokens(Vec<i32>),
    /// Fill-in-the-middle: tokenized as llama-server's `/infill` does (needs a model with
    /// FIM tokens, see [`crate::ModelInfo::has_fim`]).
    Infill(InfillPrompt),
    /// Texts and token ids in one sequence (llama-server's `[12, 34, "text", 56]`): each text
    /// is tokenized with special tokens parsed, and only a text that comes first gets the
    /// model's BOS (llama-server's `tokenize_mixed`).
    Mixed(Vec<PromptPart>),
}

/// A piece of a [`Prompt::Mixed`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptPart {
    Text(String),
    Tokens(Vec<i32>),
}

impl PromptPart {
    /// Characters of text, and token ids, in a list of parts.
    pub fn count(parts: &[PromptPart]) -> (u64, u64) {
        parts.iter().fold((0, 0), |(chars, ids), p| match p {
            PromptPart::Text(t) => (chars + t.chars().count() as u64, ids),
            PromptPart::Tokens(t) => (chars, ids + t.len() as u64),
        })
    }
}

impl Prompt {
    /// Text with special tokens added and parsed (llama-server's `/completion` behaviour).
    pub fn text(text: impl Into<String>) -> Self {
        Prompt::Text {
            text: text.into(),
            add_special: true,
            parse_special: true,
        }
    }
}

/// One generation request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerateRequest {
    pub prompt: Prompt,
    /// `None`: until end of generation or the context is full.
    pub max_tokens: Option<u32>,
    pub sampling: SamplingParams,
    pub stop: Vec<String>,
    /// Never end on an end-of-generation token (they are banned). Ignored with a grammar,
    /// which must be able to end.
    pub ignore_eos: bool,
    /// Top tokens with log-probabilities per generated token (0 = none).
    pub n_probs: u32,
    /// Report the probabilities of the sampled distribution (after the sampler chain:
    /// top-k, top-p, temperature...) instead of the raw logits' (llama-server's
    /// `post_sampling_probs`). Tokens the chain removed are not reported.
    pub post_sampling_probs: bool,
    /// Report how far prompt processing got ([`Event::Progress`], llama-server's
    /// `return_progress`).
    pub return_progress: bool,
    /// Carry the request's timings so far on every token ([`Event::Token::timings`],
    /// llama-server's `timings_per_token`).
    pub timings_per_token: bool,
    pub grammar: Option<Grammar>,
    /// Jump the queue when all slots are busy.
    pub priority: bool,
    /// Run in this slot (waits for it if busy).
    pub id_slot: Option<u32>,
    /// Reuse the slot's cached prefix (default true).
    pub cache_prompt: bool,
    /// Tokens kept at the start when the context shifts (after BOS).
    pub n_keep: u32,
    /// LoRA scales for this request: listed adapters get their scale, the others 0.
    /// `None` (or an empty list, as in llama-server) runs with the global scales.
    pub lora: Option<Vec<LoraScale>>,
    /// Close a thinking model's thinking block after this many tokens.
    pub thinking_budget: Option<crate::budget::ThinkingBudget>,
    /// What this request may ask of the engine; the service sets it from `[limits]`.
    #[serde(skip)]
    pub caps: Caps,
}

/// Caps on what one request may ask, checked before any work: set by the caller (the
/// service, from its configuration), never by the client. The defaults cap only what the
/// engine itself cannot survive: grammar depth at what the grammar threads' stack is
/// measured to hold ([`MAX_GRAMMAR_DEPTH`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caps {
    /// Nesting depth of a grammar (groups and rule references), and of a JSON schema.
    pub grammar_depth: u32,
    pub grammar_rules: u32,
    pub embedding_inputs: u32,
    /// Tokens across an embedding request's inputs.
    pub embedding_tokens: u64,
    /// Floats in an embedding response (per-token rows count every token).
    pub embedding_floats: u64,
}

/// The deepest grammar the engine accepts whatever the caps say: a test parses and samples
/// a grammar this deep on threads with the engine's grammar stack.
pub const MAX_GRAMMAR_DEPTH: u32 = 16_384;

impl Default for Caps {
    fn default() -> Self {
        Caps {
            grammar_depth: MAX_GRAMMAR_DEPTH,
            grammar_rules: u32::MAX,
            embedding_inputs: u32::MAX,
            embedding_tokens: u64::MAX,
            embedding_floats: u64::MAX,
        }
    }
}

impl Default for GenerateRequest {
    fn default() -> Self {
        GenerateRequest {
            prompt: Prompt::Tokens(Vec::new()),
            max_tokens: None,
            sampling: SamplingParams::default(),
            stop: Vec::new(),
            ignore_eos: false,
            n_probs: 0,
            post_sampling_probs: false,
            return_progress: false,
            timings_per_token: false,
            grammar: None,
            priority: false,
            id_slot: None,
            cache_prompt: true,
            n_keep: 0,
            lora: None,
            thinking_budget: None,
            caps: Caps::default(),
        }
    }
}

impl GenerateRequest {
    /// A request for this prompt with default settings.
    pub fn new(prompt: Prompt) -> Self {
        GenerateRequest {
            prompt,
            ..Default::default()
        }
    }

    /// Checks that need no model (sampling values, `n_probs`, stop strings).
    pub fn validate(&self) -> Result<(), EngineError> {
        self.sampling.validate()?;
        if self.n_probs > MAX_N_PROBS {
            return Err(EngineError::invalid(
                "n_probs",
                format!("must be at most {MAX_N_PROBS}"),
            ));
        }
        if let Some(l) = &self.lora {
            crate::lora::validate_scales(l)?;
        }
        if let Some(b) = &self.thinking_budget {
            b.validate()?;
        }
        let text_len = match &self.prompt {
            Prompt::Text { text, .. } => text.len(),
            Prompt::Infill(p) => p.text_len(),
            Prompt::Tokens(_) => 0,
            Prompt::Mixed(parts) => parts
                .iter()
                .map(|p| match p {
                    PromptPart::Text(t) => t.len(),
                    PromptPart::Tokens(_) => 0,
                })
                .sum(),
        };
        if text_len > i32::MAX as usize / 2 {
            return Err(EngineError::invalid("prompt", "too large"));
        }
        Ok(())
    }
}

/// Why generation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-generation token.
    Stop,
    /// `max_tokens` reached, or the slot's context is full.
    Length,
    /// This stop string was found (it is not part of the output).
    StopString(String),
    /// The request was cancelled.
    Cancelled,
}

/// Log-probabilities of one generated token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenProbs {
    /// Log-probability of the chosen token (softmax of the raw logits, as llama-server).
    pub logprob: f32,
    /// The `n_probs` most likely tokens: `(token, text, logprob)`, most likely first.
    pub top: Vec<(i32, String, f32)>,
}

/// Timings in llama-server's `timings` shape.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Timings {
    /// Prompt tokens reused from the slot's cache.
    pub cache_n: u32,
    /// Prompt tokens actually evaluated.
    pub prompt_n: u32,
    pub prompt_ms: f64,
    pub prompt_per_token_ms: f64,
    pub prompt_per_second: f64,
    /// Tokens generated (sampled).
    pub predicted_n: u32,
    pub predicted_ms: f64,
    pub predicted_per_token_ms: f64,
    pub predicted_per_second: f64,
}

impl Timings {
    pub(crate) fn new(
        cache_n: u32,
        prompt_n: u32,
        prompt_ms: f64,
        predicted_n: u32,
        predicted_ms: f64,
    ) -> Self {
        // The first generated token comes from the prompt's last batch and costs no decode
        // step of its own, so the generation rate is over `predicted_n - 1` steps (as
        // llama-server's `n_gen_steps`); `predicted_n` stays the number of tokens.
        let per = |n: u32, ms: f64| {
            if n == 0 {
                (0.0, 0.0)
            } else {
                let per_token = ms / f64::from(n);
                let per_second = if ms > 0.0 {
                    1e3 * f64::from(n) / ms
                } else {
                    0.0
                };
                (per_token, per_second)
            }
        };
        let (prompt_per_token_ms, prompt_per_second) = per(prompt_n, prompt_ms);
        let (predicted_per_token_ms, predicted_per_second) =
            per(predicted_n.saturating_sub(1), predicted_ms);
        Timings {
            cache_n,
            prompt_n,
            prompt_ms,
            prompt_per_token_ms,
            prompt_per_second,
            predicted_n,
            predicted_ms,
            predicted_per_token_ms,
            predicted_per_second,
        }
    }
}

/// How far a request's prompt is (llama-server's `prompt_progress`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Prompt tokens in all.
    pub total: u32,
    /// Prompt tokens reused from the slot's cache.
    pub cache: u32,
    /// Prompt tokens in the slot so far (cached ones included).
    pub processed: u32,
    /// Milliseconds since the request started in its slot.
    pub time_ms: u64,
    /// The request's timings so far (llama-server sends them with each progress report):
    /// all zero before the first prompt token is decoded, never decreasing after.
    pub timings: Timings,
}

/// Token counts in the OpenAI `usage` shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// The whole prompt (cached or not).
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// What a request's stream carries. Exactly one `Done` or `Error` ends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// One generated token. `text` is valid UTF-8: a character split over tokens comes with
    /// the token that completes it, and text that may be the start of a stop string comes
    /// once that is decided (so `text` may be empty). End-of-generation tokens are not sent,
    /// except as the carrier of held-back text released when generation ends on one.
    Token {
        text: String,
        token: i32,
        probs: Option<TokenProbs>,
        /// The request's timings up to this token (only with `timings_per_token`).
        timings: Option<Timings>,
    },
    /// Prompt processing went on (only with `return_progress`): the first before any
    /// prompt token is decoded, then one per decoded chunk.
    Progress(Progress),
    Done {
        finish_reason: FinishReason,
        usage: Usage,
        timings: Timings,
        slot_id: u32,
    },
    Error(EngineError),
}

/// The receiving end of a request's events. Dropping it cancels the request: its slot is
/// freed at the next scheduler step.
#[derive(Debug)]
pub struct EventStream {
    pub(crate) rx: mpsc::UnboundedReceiver<Event>,
    pub(crate) task_id: u64,
    pub(crate) finished: bool,
    /// The logit biases the request runs with (see [`EventStream::logit_bias`]).
    pub(crate) logit_bias: Vec<(i32, f32)>,
    /// The prompt's tokens, known once admission tokenized it (see [`EventStream::prompt_tokens`]).
    pub(crate) prompt_tokens: u32,
    /// A worker's stream: dropped before the end, it tells the worker to cancel (in-process,
    /// the host notices the dropped receiver itself).
    pub(crate) cancel: Option<crate::worker::CancelGuard>,
}

impl EventStream {
    /// The task's id (as in [`crate::SlotInfo::task_id`]).
    pub fn task_id(&self) -> u64 {
        self.task_id
    }

    /// The logit biases the request runs with, as llama-server reports them in its
    /// `generation_settings`: the ids asked for, the tokens of the texts asked for, and the
    /// end-of-generation tokens banned (`-inf`) by `ignore_eos`.
    pub fn logit_bias(&self) -> &[(i32, f32)] {
        &self.logit_bias
    }

    /// How many tokens the prompt is, before any is read: protocols that announce the
    /// input size at the start of a stream (Anthropic's `message_start`) need it there.
    pub fn prompt_tokens(&self) -> u32 {
        self.prompt_tokens
    }

    /// The next event; `None` after the final `Done` or `Error`. If the model host goes
    /// away mid-request, an `Error(Shutdown)` is produced.
    pub async fn recv(&mut self) -> Option<Event> {
        if self.finished {
            return None;
        }
        let ev = self.rx.recv().await;
        self.after(ev)
    }

    /// [`recv`](Self::recv) for non-async callers (not from inside an async runtime).
    pub fn blocking_recv(&mut self) -> Option<Event> {
        if self.finished {
            return None;
        }
        let ev = self.rx.blocking_recv();
        self.after(ev)
    }

    fn after(&mut self, ev: Option<Event>) -> Option<Event> {
        match ev {
            Some(ev) => {
                if matches!(ev, Event::Done { .. } | Event::Error(_)) {
                    self.finished = true;
                    if let Some(g) = self.cancel.take() {
                        g.defuse();
                    }
                }
                Some(ev)
            }
            None => {
                self.finished = true;
                Some(Event::Error(EngineError::Shutdown))
            }
        }
    }

    /// Read the whole stream into one [`Completion`].
    pub async fn collect(mut self) -> Result<Completion, EngineError> {
        let mut c = Completion::default();
        while let Some(ev) = self.recv().await {
            if let Some(r) = c.absorb(ev) {
                return r.map(|()| c);
            }
        }
        Err(EngineError::Shutdown)
    }

    /// [`collect`](Self::collect) for non-async callers.
    pub fn blocking_collect(mut self) -> Result<Completion, EngineError> {
        let mut c = Completion::default();
        while let Some(ev) = self.blocking_recv() {
            if let Some(r) = c.absorb(ev) {
                return r.map(|()| c);
            }
        }
        Err(EngineError::Shutdown)
    }
}

/// A whole (non-streamed) result.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Completion {
    pub text: String,
    pub tokens: Vec<i32>,
    /// One entry per token when `n_probs > 0`.
    pub probs: Vec<TokenProbs>,
    pub finish_reason: Option<FinishReason>,
    pub usage: Usage,
    pub timings: Timings,
    pub slot_id: u32,
}

impl Completion {
    fn absorb(&mut self, ev: Event) -> Option<Result<(), EngineError>> {
        match ev {
            Event::Token {
                text, token, probs, ..
            } => {
                self.text.push_str(&text);
                self.tokens.push(token);
                if let Some(p) = probs {
                    self.probs.push(p);
                }
                None
            }
            Event::Done {
                finish_reason,
                usage,
                timings,
                slot_id,
            } => {
                self.finish_reason = Some(finish_reason);
                self.usage = usage;
                self.timings = timings;
                self.slot_id = slot_id;
                Some(Ok(()))
            }
            Event::Error(e) => Some(Err(e)),
            Event::Progress(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generation_rate_leaves_out_the_first_token() {
        // One token: no decode step of its own, so no rate (llama-server reports 0).
        let one = Timings::new(0, 5, 10.0, 1, 0.001);
        assert_eq!(one.predicted_n, 1);
        assert_eq!(
            (one.predicted_per_second, one.predicted_per_token_ms),
            (0.0, 0.0)
        );
        // Eleven tokens in 100 ms: ten steps.
        let t = Timings::new(0, 5, 10.0, 11, 100.0);
        assert_eq!(t.predicted_n, 11);
        assert!((t.predicted_per_second - 100.0).abs() < 1e-9, "{t:?}");
        assert!((t.predicted_per_token_ms - 10.0).abs() < 1e-9, "{t:?}");
        // The prompt's rate counts every prompt token.
        assert!((t.prompt_per_second - 500.0).abs() < 1e-9, "{t:?}");
    }
}
