//! The host-RAM prompt cache (llama-server's `--cache-ram`, `server_prompt_cache`): copies
//! of slots' KV state, kept when a slot is about to be overwritten by another prompt, so
//! that a later request sharing their prefix restores it instead of recomputing it.
//!
//! This is the bookkeeping only, generic over the saved state so that its rules are tested
//! without a model: which entry a prompt restores, what a new entry replaces, what the
//! limits evict (least recently stored first: a restored entry leaves the cache and comes
//! back, as the newest, when its slot is saved again). Taking and restoring a slot's state
//! is `slot_file.rs`'s (beside the slot files).

use std::collections::VecDeque;

use llama_cpp_2::token::LlamaToken;

use super::placement::common_prefix;
use crate::lora::LoraConfig;

/// A restored entry must keep at least this share of its tokens (llama-server's "don't
/// trash large prompts": a long cached prompt is not given up for a short shared prefix).
const MIN_KEEP: f32 = 0.25;

/// How much the cache may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CacheLimit {
    /// Bytes of saved state; `None` = no byte limit (`cache_ram_mib = -1`).
    pub bytes: Option<u64>,
    /// Tokens over all entries when there is no byte limit (the context size, as
    /// llama-server), so that "no limit" still cannot grow without bound.
    pub tokens: usize,
}

impl CacheLimit {
    /// The limit for `cache_ram_mib` (llama-server's `--cache-ram`: MiB, -1 = no limit,
    /// 0 = no cache) on a context of `n_ctx` tokens; `None` when the cache is off.
    pub fn from_mib(cache_ram_mib: i64, n_ctx: usize) -> Option<CacheLimit> {
        match cache_ram_mib {
            0 => None,
            n if n < 0 => Some(CacheLimit {
                bytes: None,
                tokens: n_ctx,
            }),
            n => Some(CacheLimit {
                bytes: Some((n as u64).saturating_mul(1024 * 1024)),
                tokens: n_ctx,
            }),
        }
    }
}

/// One saved prompt: the tokens whose KV `state` holds, under these LoRA scales.
pub(crate) struct Entry<S> {
    pub tokens: Vec<LlamaToken>,
    pub lora: LoraConfig,
    pub state: S,
    pub n_bytes: u64,
}

pub(crate) struct PromptCache<S> {
    limit: CacheLimit,
    /// Oldest first.
    entries: VecDeque<Entry<S>>,
}

impl<S> PromptCache<S> {
    pub fn new(limit: CacheLimit) -> Self {
        PromptCache {
            limit,
            entries: VecDeque::new(),
        }
    }

    pub fn n_bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.n_bytes).sum()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn n_tokens(&self) -> usize {
        self.entries.iter().map(|e| e.tokens.len()).sum()
    }

    /// Whether saving `tokens` (under `lora`) would add nothing: an entry already holds
    /// all of them.
    pub fn contains(&self, tokens: &[LlamaToken], lora: &LoraConfig) -> bool {
        self.entries
            .iter()
            .any(|e| e.lora[..] == lora[..] && common_prefix(&e.tokens, tokens) == tokens.len())
    }

    /// Whether a state of `n_bytes` may be stored at all. Asked before the state is copied
    /// out of llama.cpp: an entry larger than the whole cache is never made (so a huge
    /// context cannot make the host allocate past the limit), and is not allowed to evict
    /// everything else either.
    pub fn admits(&self, n_bytes: u64) -> bool {
        self.limit.bytes.is_none_or(|max| n_bytes <= max)
    }

    /// Stores an entry (the caller checked [`admits`](Self::admits)): entries it fully
    /// contains go, then the oldest until it fits. Returns how many entries were evicted
    /// for room.
    pub fn insert(&mut self, entry: Entry<S>) -> usize {
        self.entries.retain(|e| {
            !(e.lora[..] == entry.lora[..]
                && common_prefix(&e.tokens, &entry.tokens) == e.tokens.len())
        });
        let mut evicted = 0;
        if let Some(max) = self.limit.bytes {
            while !self.entries.is_empty() && self.n_bytes() + entry.n_bytes > max {
                self.entries.pop_front();
                evicted += 1;
            }
        }
        self.entries.push_back(entry);
        if self.limit.bytes.is_none() {
            while self.entries.len() > 1 && self.n_tokens() > self.limit.tokens {
                self.entries.pop_front();
                evicted += 1;
            }
        }
        evicted
    }

    /// Takes out the entry that serves `prompt` (under `lora`) better than what the slot
    /// holds, which shares `slot_lcp` of its `slot_len` tokens with it: llama-server's
    /// choice, the entry that keeps a larger share of itself AND covers a larger share of
    /// the prompt, never one that would keep under a quarter of its tokens. An empty slot
    /// takes any entry that shares something.
    pub fn take_best(
        &mut self,
        prompt: &[LlamaToken],
        lora: &LoraConfig,
        slot_lcp: usize,
        slot_len: usize,
    ) -> Option<Entry<S>> {
        let n = prompt.len().max(1) as f32;
        let mut keep_best = if slot_len > 0 {
            slot_lcp as f32 / slot_len as f32
        } else {
            -1.0
        };
        let mut sim_best = slot_lcp as f32 / n;
        let mut best = None;
        for (i, e) in self.entries.iter().enumerate() {
            if e.lora[..] != lora[..] || e.tokens.is_empty() {
                continue;
            }
            let lcp = common_prefix(&e.tokens, prompt);
            let keep = lcp as f32 / e.tokens.len() as f32;
            let sim = lcp as f32 / n;
            if keep < MIN_KEEP {
                continue;
            }
            if keep_best < keep && sim_best < sim {
                keep_best = keep;
                sim_best = sim;
                best = Some(i);
            }
        }
        self.entries.remove(best?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(v: impl IntoIterator<Item = i32>) -> Vec<LlamaToken> {
        v.into_iter().map(LlamaToken).collect()
    }

    fn entry(tokens: Vec<LlamaToken>, n_bytes: u64) -> Entry<()> {
        Entry {
            tokens,
            lora: LoraConfig::default(),
            state: (),
            n_bytes,
        }
    }

    fn limit(bytes: u64) -> CacheLimit {
        CacheLimit {
            bytes: Some(bytes),
            tokens: 100,
        }
    }

    #[test]
    fn the_setting_maps_like_llama_servers_cache_ram() {
        assert_eq!(CacheLimit::from_mib(0, 512), None);
        assert_eq!(
            CacheLimit::from_mib(-1, 512),
            Some(CacheLimit {
                bytes: None,
                tokens: 512
            })
        );
        assert_eq!(
            CacheLimit::from_mib(2, 512).unwrap().bytes,
            Some(2 * 1024 * 1024)
        );
    }

    #[test]
    fn the_byte_limit_evicts_the_oldest_and_refuses_what_never_fits() {
        let mut c = PromptCache::new(limit(100));
        assert_eq!(c.insert(entry(toks(0..10), 40)), 0);
        assert_eq!(c.insert(entry(toks(100..110), 40)), 0);
        // A third needs room: the oldest (0..10) goes.
        assert_eq!(c.insert(entry(toks(200..210), 40)), 1);
        assert_eq!(c.len(), 2);
        assert!(!c.contains(&toks(0..10), &LoraConfig::default()));
        assert!(c.contains(&toks(100..110), &LoraConfig::default()));
        assert!(c.n_bytes() <= 100);
        // Larger than the whole cache: refused before anything is copied or evicted.
        assert!(!c.admits(101));
        assert!(c.admits(100));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn a_restored_entry_leaves_and_comes_back_as_the_newest() {
        let mut c = PromptCache::new(limit(100));
        c.insert(entry(toks(0..10), 40));
        c.insert(entry(toks(100..110), 40));
        let a = c
            .take_best(&toks(0..12), &LoraConfig::default(), 0, 0)
            .unwrap();
        assert_eq!(a.tokens, toks(0..10));
        c.insert(a);
        // Now 100..110 is the least recently stored.
        c.insert(entry(toks(200..210), 40));
        assert!(c.contains(&toks(0..10), &LoraConfig::default()));
        assert!(!c.contains(&toks(100..110), &LoraConfig::default()));
    }

    #[test]
    fn without_a_byte_limit_the_tokens_are_capped() {
        let mut c = PromptCache::new(CacheLimit {
            bytes: None,
            tokens: 25,
        });
        c.insert(entry(toks(0..10), u64::MAX / 4));
        c.insert(entry(toks(100..110), u64::MAX / 4));
        assert_eq!(c.insert(entry(toks(200..210), 1)), 1);
        assert_eq!(c.len(), 2);
        assert!(c.admits(u64::MAX));
    }

    #[test]
    fn a_new_entry_replaces_the_entries_it_contains() {
        let mut c = PromptCache::new(limit(1000));
        c.insert(entry(toks(0..5), 10));
        c.insert(entry(toks(50..55), 10));
        c.insert(entry(toks(0..10), 20));
        assert_eq!(c.len(), 2);
        assert!(c.contains(&toks(0..7), &LoraConfig::default()));
        assert_eq!(c.n_bytes(), 30);
    }

    #[test]
    fn the_best_entry_must_beat_the_slot_and_keep_a_quarter_of_itself() {
        let mut c = PromptCache::new(limit(1000));
        c.insert(entry(toks(0..40), 10));
        c.insert(entry(toks((0..8).chain(500..600)), 10));
        let prompt = toks((0..40).chain(900..910));
        // The slot already shares 40 of its 40 tokens: nothing beats it.
        assert!(
            c.take_best(&prompt, &LoraConfig::default(), 40, 40)
                .is_none()
        );
        // The slot shares little: the 0..40 entry (keeps all of itself) wins; the other
        // shares 8 of its 108 tokens, under a quarter.
        let e = c.take_best(&prompt, &LoraConfig::default(), 1, 30).unwrap();
        assert_eq!(e.tokens, toks(0..40));
        assert!(c.take_best(&prompt, &LoraConfig::default(), 0, 0).is_none());
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn an_entry_under_other_lora_scales_is_not_restored() {
        let mut c = PromptCache::new(limit(1000));
        let mut e = entry(toks(0..10), 10);
        e.lora = LoraConfig::from(vec![0.5]);
        c.insert(e);
        assert!(
            c.take_best(&toks(0..10), &LoraConfig::default(), 0, 0)
                .is_none()
        );
        assert!(!c.contains(&toks(0..10), &LoraConfig::default()));
        assert!(
            c.take_best(&toks(0..10), &LoraConfig::from(vec![0.5]), 0, 0)
                .is_some()
        );
    }
}
