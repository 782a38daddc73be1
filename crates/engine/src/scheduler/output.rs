//! What a slot sends its caller: each sampled token's text (UTF-8 joined, stop strings cut),
//! and the final `Done` with usage and timings.

use std::sync::atomic::Ordering;
use std::time::Instant;

use llama_cpp_2::token::LlamaToken;

use super::Host;
use super::sample::{post_sampling_probs, sample, token_probs};
use crate::params::OnContextFull;
use crate::request::{Event, FinishReason, TokenProbs, Usage};
use crate::slot::{ActiveTask, Phase};
use crate::stop::release_held;

impl Host<'_> {
    /// Sample slot `i`'s next token from this step's logits and send its text; end the
    /// request on an end-of-generation token, a stop string, `max_tokens` or a full context.
    pub(super) fn sample_slot(&mut self, i: usize) {
        let now = Instant::now();
        let slot = &mut self.slots[i];
        let t = slot.task.as_mut().expect("checked by caller");
        let idx = t.i_batch;
        t.i_batch = -1;
        if t.phase == Phase::Prompt {
            t.phase = Phase::Generate;
            t.t_prompt_done = Some(now);
        }
        if t.max_tokens == Some(0) {
            self.finish(i, FinishReason::Length);
            return;
        }

        let token = match sample(&self.ctx, t, idx, &mut self.cur, &mut self.single) {
            Ok(tok) => tok,
            Err(e) => {
                self.shared
                    .counters
                    .requests_done
                    .fetch_add(1, Ordering::Relaxed);
                let _ = t.tx.send(Event::Error(e));
                slot.task = None;
                return;
            }
        };
        t.n_decoded += 1;
        let probs = (t.n_probs > 0).then(|| {
            if t.post_sampling_probs {
                post_sampling_probs(&self.cur, self.model, token, t.n_probs)
            } else {
                token_probs(&self.ctx, self.model, idx, token, t.n_probs)
            }
        });

        let vocab = self.model.vocab();
        let full = slot.cache.len() >= self.cfg.n_ctx_slot as usize;
        let (text, end) = if vocab.is_eog(token) {
            // End of generation: the held-back text is carried by this (otherwise unsent)
            // token.
            let mut tail = String::new();
            release_held(&mut t.utf8, &mut t.stop, &mut tail);
            if tail.is_empty() {
                self.finish(i, FinishReason::Stop);
                return;
            }
            (tail, Some(FinishReason::Stop))
        } else {
            self.piece.clear();
            vocab.token_to_piece_into(token, &mut self.piece, false, None);
            let mut decoded = String::new();
            t.utf8.push(&self.piece, &mut decoded);
            if let Some(b) = t.budget.as_mut() {
                b.observe(&decoded, t.utf8.has_pending());
            }
            let mut out = String::with_capacity(decoded.len());
            match t.stop.push(&decoded, &mut out) {
                Some(stop) => (out, Some(FinishReason::StopString(stop))),
                None => {
                    let limit = t.max_tokens.is_some_and(|m| t.n_decoded >= m);
                    if limit || (full && self.cfg.on_full == OnContextFull::Stop) {
                        release_held(&mut t.utf8, &mut t.stop, &mut out);
                        (out, Some(FinishReason::Length))
                    } else {
                        (out, None)
                    }
                }
            }
        };

        let delivered = emit_token(t, text, token, probs);
        if let Some(reason) = end {
            self.finish(i, reason);
        } else if !delivered {
            slot.task = None; // cancelled
            self.shared
                .counters
                .requests_done
                .fetch_add(1, Ordering::Relaxed);
        } else {
            t.next_token = Some(token);
            if full && !self.context_shift(i) {
                self.finish(i, FinishReason::Length);
            }
        }
    }

    /// End slot `i`'s request with `Done` (usage and timings).
    pub(super) fn finish(&mut self, i: usize, reason: FinishReason) {
        let slot_id = self.slots[i].id;
        let Some(t) = self.slots[i].task.take() else {
            return;
        };
        // The slot is free before the caller hears that its request is done, so a status
        // read right after the reply (`/metrics` requests_processing) sees it idle.
        self.publish();
        let timings = t.timings(Instant::now());
        // Count before telling the caller, so that stats agree with what it has seen.
        self.shared
            .counters
            .requests_done
            .fetch_add(1, Ordering::Relaxed);
        let _ = t.tx.send(Event::Done {
            finish_reason: reason,
            usage: Usage {
                prompt_tokens: t.prompt.len() as u32,
                completion_tokens: t.n_decoded,
            },
            timings,
            slot_id,
        });
    }
}

/// The one place a token event is sent. False if the caller is gone.
fn emit_token(t: &ActiveTask, text: String, token: LlamaToken, probs: Option<TokenProbs>) -> bool {
    t.tx.send(Event::Token {
        text,
        token: token.0,
        probs,
        timings: t.timings_per_token.then(|| t.timings(Instant::now())),
    })
    .is_ok()
}
