//! What each model has served: llama-server's `server_metrics` (the `llamacpp:*` families
//! of `/metrics`), kept per model id for the life of the process.
//!
//! The counters belong to the model id, not to one load of it: the engine counts decodes
//! into the model's [`engine::HostCounters`], which every load of that id is given
//! ([`crate::EngineLoader`]), and finished generations are added here by
//! [`crate::Generation`]. So a model that sleeps (unloads when idle) and wakes keeps its
//! totals, and while it sleeps `/metrics` reads exactly what it read when it went to sleep,
//! as llama-server serves the snapshot it takes on entering sleep.
//!
//! Throughput gauges are over a window: the tokens and time of the generations finished
//! since the previous scrape ([`ServingStats::scrape`] empties the window), as llama-server's
//! `prompt_tokens_seconds` / `predicted_tokens_seconds`.

use crate::engine_types::Timings;
use engine::HostCounters;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Tokens, decode steps and seconds. The rate is steps per second: the first generated
/// token comes from the prompt's last batch and costs no step of its own.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bucket {
    pub tokens: u64,
    pub steps: u64,
    pub seconds: f64,
}

impl Bucket {
    fn add(&mut self, tokens: u64, steps: u64, seconds: f64) {
        self.tokens += tokens;
        self.steps += steps;
        self.seconds += seconds;
    }

    fn merge(&mut self, other: &Bucket) {
        self.add(other.tokens, other.steps, other.seconds);
    }

    /// Decode steps per second; 0 for an empty bucket.
    pub fn per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.steps as f64 / self.seconds
        } else {
            0.0
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    /// Prompt tokens decoded (cached ones are not: they cost no decode).
    prompt: Bucket,
    predict: Bucket,
    /// Since the last scrape.
    prompt_window: Bucket,
    predict_window: Bucket,
    /// Prompt tokens reused from a slot's cache.
    cached: u64,
    requests: u64,
}

/// One model's counters. Cheap to share.
#[derive(Debug, Default)]
pub struct ModelCounters {
    engine: Arc<HostCounters>,
    totals: Mutex<Totals>,
}

impl ModelCounters {
    /// What the engine counts into (given to every load of the model).
    pub(crate) fn engine(&self) -> Arc<HostCounters> {
        self.engine.clone()
    }

    /// Counts one finished generation from its timings.
    pub fn record(&self, t: &Timings) {
        let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        let prompt_n = u64::from(t.prompt_n);
        let predicted_n = u64::from(t.predicted_n);
        let prompt_s = t.prompt_ms / 1e3;
        let predict_s = t.predicted_ms / 1e3;
        let steps = predicted_n.saturating_sub(1);
        totals.prompt.add(prompt_n, prompt_n, prompt_s);
        totals.prompt_window.add(prompt_n, prompt_n, prompt_s);
        totals.predict.add(predicted_n, steps, predict_s);
        totals.predict_window.add(predicted_n, steps, predict_s);
        totals.cached += u64::from(t.cache_n);
        totals.requests += 1;
    }
}

/// A model's figures at one scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServedFigures {
    /// Prompt tokens decoded and the time it took (`prompt_tokens_total`,
    /// `prompt_seconds_total`).
    pub prompt: Bucket,
    /// Tokens generated and the time it took (`tokens_predicted_total`,
    /// `tokens_predicted_seconds_total`).
    pub predict: Bucket,
    /// Finished since the previous scrape: the throughput gauges.
    pub prompt_window: Bucket,
    pub predict_window: Bucket,
    /// Prompt tokens reused from a cache (`prompt_tokens_cached_total`).
    pub cached: u64,
    /// Generations finished.
    pub requests: u64,
    /// `llama_decode` calls (`n_decode_total`).
    pub decode_calls: u64,
    /// Busy slots summed over the decodes (`n_busy_slots_per_decode` = this / decodes).
    pub busy_slot_steps: u64,
    /// Longest sequence a slot held (`n_tokens_max`).
    pub max_seq_tokens: u64,
    /// Prompts restored from the host-RAM prompt cache, and the bytes it holds now
    /// (`prompt_cache_hits_total`, `prompt_cache_bytes`: llama-server only logs these).
    pub prompt_cache_hits: u64,
    pub prompt_cache_bytes: u64,
    /// Slots working right now (`requests_processing`); 0 while the model is not loaded.
    pub processing: u64,
    /// Requests waiting for a slot (`requests_deferred`).
    pub deferred: u64,
}

impl ServedFigures {
    /// Adds another model's figures: the server's totals (maxima for the maximum).
    pub fn merge(&mut self, o: &ServedFigures) {
        self.prompt.merge(&o.prompt);
        self.predict.merge(&o.predict);
        self.prompt_window.merge(&o.prompt_window);
        self.predict_window.merge(&o.predict_window);
        self.cached += o.cached;
        self.requests += o.requests;
        self.decode_calls += o.decode_calls;
        self.busy_slot_steps += o.busy_slot_steps;
        self.max_seq_tokens = self.max_seq_tokens.max(o.max_seq_tokens);
        self.prompt_cache_hits += o.prompt_cache_hits;
        self.prompt_cache_bytes += o.prompt_cache_bytes;
        self.processing += o.processing;
        self.deferred += o.deferred;
    }

    /// Average busy slots per decode call.
    pub fn busy_slots_per_decode(&self) -> f64 {
        self.busy_slot_steps as f64 / (self.decode_calls.max(1)) as f64
    }
}

/// Every model's counters, by model id. Ids are the catalog's (a bounded set), and an
/// entry is made only when a model is loaded or serves a request.
#[derive(Debug, Default)]
pub struct ServingStats {
    by_model: Mutex<BTreeMap<String, Arc<ModelCounters>>>,
}

impl ServingStats {
    /// The counters of model `id`, made on first use.
    pub fn of(&self, id: &str) -> Arc<ModelCounters> {
        let mut map = self.by_model.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_string()).or_default().clone()
    }

    /// Every model's figures, by id; the throughput windows start again (a scrape).
    /// `live(id)` gives a loaded model's slots in use and requests waiting.
    pub fn scrape(
        &self,
        live: impl Fn(&str) -> Option<(u64, u64)>,
    ) -> Vec<(String, ServedFigures)> {
        self.read(true, live)
    }

    /// [`scrape`](Self::scrape) without emptying the windows.
    pub fn peek(&self, live: impl Fn(&str) -> Option<(u64, u64)>) -> Vec<(String, ServedFigures)> {
        self.read(false, live)
    }

    fn read(
        &self,
        reset: bool,
        live: impl Fn(&str) -> Option<(u64, u64)>,
    ) -> Vec<(String, ServedFigures)> {
        let map = self.by_model.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .map(|(id, c)| {
                let totals = {
                    let mut t = c.totals.lock().unwrap_or_else(|p| p.into_inner());
                    let now = *t;
                    if reset {
                        t.prompt_window = Bucket::default();
                        t.predict_window = Bucket::default();
                    }
                    now
                };
                let engine = c.engine.snapshot();
                let (processing, deferred) = live(id).unwrap_or((0, 0));
                let figures = ServedFigures {
                    prompt: totals.prompt,
                    predict: totals.predict,
                    prompt_window: totals.prompt_window,
                    predict_window: totals.predict_window,
                    cached: totals.cached,
                    requests: totals.requests,
                    decode_calls: engine.decode_calls,
                    busy_slot_steps: engine.busy_slot_steps,
                    max_seq_tokens: engine.max_seq_tokens,
                    prompt_cache_hits: engine.prompt_cache_hits,
                    prompt_cache_bytes: engine.prompt_cache_bytes,
                    processing,
                    deferred,
                };
                (id.clone(), figures)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timings(cache_n: u32, prompt_n: u32, predicted_n: u32) -> Timings {
        Timings {
            cache_n,
            prompt_n,
            prompt_ms: 100.0,
            predicted_n,
            predicted_ms: 200.0,
            ..Default::default()
        }
    }

    #[test]
    fn totals_count_decoded_prompt_tokens_apart_from_cached_ones() {
        let stats = ServingStats::default();
        stats.of("a").record(&timings(0, 9, 4));
        stats.of("a").record(&timings(8, 1, 16));
        let figures = stats.peek(|_| None);
        let (id, f) = &figures[0];
        assert_eq!(id, "a");
        assert_eq!(f.prompt.tokens, 10);
        assert_eq!(f.cached, 8);
        assert_eq!(f.predict.tokens, 20);
        // The first token of each generation costs no decode step.
        assert_eq!(f.predict.steps, 3 + 15);
        assert_eq!(f.requests, 2);
    }

    #[test]
    fn a_scrape_empties_the_throughput_window_and_keeps_the_totals() {
        let stats = ServingStats::default();
        stats.of("a").record(&timings(0, 10, 8));
        let first = stats.scrape(|_| None);
        assert_eq!(first[0].1.predict_window.steps, 7);
        assert!(first[0].1.predict_window.per_second() > 0.0);
        let second = stats.scrape(|_| None);
        assert_eq!(second[0].1.predict_window, Bucket::default());
        assert_eq!(second[0].1.predict_window.per_second(), 0.0);
        assert_eq!(second[0].1.predict.tokens, 8);
        // A peek leaves the window to the next scrape.
        stats.of("a").record(&timings(0, 10, 8));
        assert_eq!(stats.peek(|_| None)[0].1.predict_window.steps, 7);
        assert_eq!(stats.scrape(|_| None)[0].1.predict_window.steps, 7);
    }

    #[test]
    fn the_server_totals_add_models_up_and_keep_the_longest_sequence() {
        let stats = ServingStats::default();
        stats.of("a").record(&timings(0, 10, 8));
        stats.of("b").record(&timings(2, 5, 1));
        let mut total = ServedFigures::default();
        for (_, f) in stats.peek(|id| (id == "a").then_some((1, 2))) {
            total.merge(&f);
        }
        assert_eq!(total.prompt.tokens, 15);
        assert_eq!(total.cached, 2);
        assert_eq!(total.predict.steps, 7);
        assert_eq!((total.processing, total.deferred), (1, 2));
        assert_eq!(total.busy_slots_per_decode(), 0.0);
    }
}
