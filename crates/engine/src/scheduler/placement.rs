//! The scheduler's decisions, as pure functions of the slots' state: which idle slot a
//! request goes to, which LoRA configuration a step decodes, and how many prompt tokens a
//! step may take.

use llama_cpp_2::token::LlamaToken;

/// A prompt shares enough with a slot's cache to prefer that slot over the least recently
/// used one (llama-server's `--slot-prompt-similarity`, 0.1).
pub(crate) const SLOT_PROMPT_SIMILARITY: f32 = 0.1;

/// What slot choice looks at in one slot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotCandidate<'a> {
    pub idle: bool,
    /// The tokens whose KV the slot holds, and the LoRA scales they were computed under.
    pub cache: &'a [LlamaToken],
    pub cache_lora: &'a [f32],
    pub last_used: u64,
}

/// The idle slot for this prompt: the requested one (if idle), else the one whose cache
/// shares the longest prefix (if similar enough; only caches computed under the same LoRA
/// scales count), else the least recently used. `None` when no fitting slot is idle.
pub(crate) fn pick_slot(
    slots: &[SlotCandidate<'_>],
    prompt: &[LlamaToken],
    lora: &[f32],
    id_slot: Option<u32>,
) -> Option<usize> {
    if let Some(id) = id_slot {
        let i = id as usize;
        return slots.get(i).filter(|s| s.idle).map(|_| i);
    }
    let mut best: Option<(usize, usize)> = None;
    for (i, s) in slots.iter().enumerate().filter(|(_, s)| s.idle) {
        let lcp = if s.cache_lora == lora {
            common_prefix(s.cache, prompt)
        } else {
            0
        };
        if best.is_none_or(|(_, b)| lcp > b) {
            best = Some((i, lcp));
        }
    }
    if let Some((i, lcp)) = best
        && lcp > 0
        && lcp as f32 / prompt.len() as f32 > SLOT_PROMPT_SIMILARITY
    {
        return Some(i);
    }
    slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.idle)
        .min_by_key(|(_, s)| s.last_used)
        .map(|(i, _)| i)
}

/// Length of the common prefix of two token lists.
pub(crate) fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// A slot with work for the next step, as LoRA grouping sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Waiting<'a> {
    pub slot: usize,
    pub lora: &'a [f32],
    /// Steps in a row it had work but was left out for another configuration.
    pub waited: u64,
}

/// The slot whose LoRA configuration this step decodes: the one that has waited longest for
/// its configuration's turn (ties: the configuration set now, then the lowest slot), so that
/// groups with different scales alternate and none starves. `None` when no slot has work.
pub(crate) fn lora_turn(waiting: &[Waiting<'_>], applied: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, (u64, bool))> = None;
    for w in waiting {
        let key = (w.waited, w.lora == applied);
        if best.is_none_or(|(_, b)| key > b) {
            best = Some((w.slot, key));
        }
    }
    best.map(|(slot, _)| slot)
}

/// Prompt tokens one step may take (chunked prefill, as vLLM's token budget): the batch's
/// room, but no more than `prefill_chunk` while slots are generating in this step, so that
/// their next token waits for one chunk rather than for a whole prompt. A lone prompt gets
/// the whole batch.
pub(crate) fn prompt_budget(n_batch: usize, n_generating: usize, prefill_chunk: usize) -> usize {
    let room = n_batch.saturating_sub(n_generating);
    if n_generating == 0 {
        room
    } else {
        room.min(prefill_chunk.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(v: &[i32]) -> Vec<LlamaToken> {
        v.iter().map(|&t| LlamaToken(t)).collect()
    }

    fn slot<'a>(
        idle: bool,
        cache: &'a [LlamaToken],
        lora: &'a [f32],
        used: u64,
    ) -> SlotCandidate<'a> {
        SlotCandidate {
            idle,
            cache,
            cache_lora: lora,
            last_used: used,
        }
    }

    #[test]
    fn a_named_slot_is_taken_only_when_idle() {
        let c = toks(&[1, 2]);
        let slots = [slot(true, &c, &[], 0), slot(false, &c, &[], 0)];
        assert_eq!(pick_slot(&slots, &c, &[], Some(0)), Some(0));
        assert_eq!(pick_slot(&slots, &c, &[], Some(1)), None);
        assert_eq!(pick_slot(&slots, &c, &[], Some(7)), None);
    }

    #[test]
    fn the_longest_shared_prefix_wins_else_the_least_recently_used() {
        let a = toks(&[1, 2, 3, 4]);
        let b = toks(&[9, 9]);
        let slots = [
            slot(true, &b, &[], 1),
            slot(true, &a, &[], 5),
            slot(false, &a, &[], 0),
        ];
        assert_eq!(pick_slot(&slots, &toks(&[1, 2, 3, 7]), &[], None), Some(1));
        // Nothing shared: the least recently used idle slot.
        assert_eq!(pick_slot(&slots, &toks(&[5]), &[], None), Some(0));
        // Too little shared (1 of 20 tokens is under the similarity threshold).
        let long: Vec<i32> = std::iter::once(1).chain(100..119).collect();
        assert_eq!(pick_slot(&slots, &toks(&long), &[], None), Some(0));
        assert_eq!(pick_slot(&[slot(false, &a, &[], 0)], &a, &[], None), None);
    }

    #[test]
    fn a_cache_under_other_lora_scales_is_not_reused() {
        let a = toks(&[1, 2, 3, 4]);
        let slots = [slot(true, &a, &[1.0], 5), slot(true, &[], &[0.0], 1)];
        assert_eq!(pick_slot(&slots, &a, &[1.0], None), Some(0));
        assert_eq!(pick_slot(&slots, &a, &[0.0], None), Some(1));
    }

    #[test]
    fn lora_groups_take_turns_by_waiting_time() {
        fn w(slot: usize, lora: &[f32], waited: u64) -> Waiting<'_> {
            Waiting { slot, lora, waited }
        }
        let (x, y) = ([1.0f32], [0.5f32]);
        assert_eq!(lora_turn(&[], &x), None);
        // Equal waits: the configuration set now, to avoid a switch.
        assert_eq!(lora_turn(&[w(0, &y, 0), w(1, &x, 0)], &x), Some(1));
        // Longer wait beats the configuration set now.
        assert_eq!(lora_turn(&[w(0, &y, 1), w(1, &x, 0)], &x), Some(0));
        // Same key: the lowest slot.
        assert_eq!(lora_turn(&[w(2, &y, 0), w(3, &y, 0)], &x), Some(2));
    }

    #[test]
    fn prompts_are_chunked_only_while_others_generate() {
        assert_eq!(prompt_budget(2048, 0, 512), 2048);
        assert_eq!(prompt_budget(2048, 3, 512), 512);
        assert_eq!(prompt_budget(300, 3, 512), 297);
        assert_eq!(prompt_budget(4, 4, 512), 0);
        assert_eq!(prompt_budget(2048, 1, 0), 1);
    }
}
