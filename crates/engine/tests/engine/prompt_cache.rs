//! The host-RAM prompt cache (`cache_ram_mib`, llama-server's `--cache-ram`): a slot's state
//! is kept when another prompt overwrites it and restored for a request sharing its prefix.
//! Only token counts are checked (what was reused, what was evaluated), never texts or
//! timings.

use engine::{ContextParams, GenerateRequest, ModelHandle, Prompt, SamplingParams};

use crate::common::*;

/// A prompt of `n` token ids starting at `first` (ordinary vocabulary tokens, distinct
/// between prompts that start far enough apart).
fn ids(first: i32, n: i32) -> GenerateRequest {
    GenerateRequest {
        max_tokens: Some(1),
        sampling: SamplingParams::greedy(),
        ..GenerateRequest::new(Prompt::Tokens((first..first + n).collect()))
    }
}

fn one_slot(cache_ram_mib: i64) -> Option<ModelHandle> {
    load_smollm(ContextParams {
        cache_ram_mib,
        ..ctx(1024, 1)
    })
}

/// Two prompts alternating on one slot: with the cache, the second request for A reuses its
/// whole prefix from RAM; without it (0 = off), A is evaluated again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alternating_prompts_reuse_their_prefix_only_with_the_cache() {
    for (mib, reused) in [(engine::DEFAULT_CACHE_RAM_MIB, true), (0, false)] {
        let Some(h) = one_slot(mib) else {
            return;
        };
        let a = chatml(&format!(
            "Tell me about towers. {}",
            "Towers are tall. ".repeat(20)
        ));
        let b = chatml(&format!(
            "Tell me about rivers. {}",
            "Rivers are long. ".repeat(20)
        ));
        let first = run(&h, greedy(&a, 2)).await.unwrap();
        let n_a = first.usage.prompt_tokens;
        assert!(n_a > 100, "{:?}", first.usage);
        run(&h, greedy(&b, 2)).await.unwrap();
        let again = run(&h, greedy(&a, 2)).await.unwrap();
        let stats = h.stats();
        if reused {
            // Everything but the last prompt token (which is evaluated for its logits).
            assert_eq!(again.timings.cache_n, n_a - 1, "{:?}", again.timings);
            assert_eq!(again.timings.prompt_n, 1, "{:?}", again.timings);
            assert_eq!(stats.prompt_cache_hits, 1, "{stats:?}");
            assert!(stats.prompt_cache_bytes > 0, "{stats:?}");
        } else {
            // Only the chat header A shares with B.
            assert!(again.timings.cache_n < 10, "{:?}", again.timings);
            assert!(again.timings.prompt_n > n_a - 10, "{:?}", again.timings);
            assert_eq!(stats.prompt_cache_hits, 0, "{stats:?}");
            assert_eq!(stats.prompt_cache_bytes, 0, "{stats:?}");
        }
        h.shutdown().await;
        assert_eq!(
            h.stats().prompt_cache_bytes,
            0,
            "the cache is freed with the model"
        );
    }
}

/// The byte limit evicts the least recently stored prompt; a prompt whose state is larger
/// than the whole cache is not kept at all (nor does it push the others out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_byte_limit_evicts_the_least_recently_stored() {
    const N: i32 = 120;
    // The size of one N-token state, measured on a cache without a byte limit.
    let Some(h) = one_slot(-1) else {
        return;
    };
    run(&h, ids(1000, N)).await.unwrap();
    run(&h, ids(3000, 8)).await.unwrap();
    let entry = h.stats().prompt_cache_bytes;
    h.shutdown().await;
    const MIB: u64 = 1024 * 1024;
    assert!(entry >= 2 * MIB, "an {N}-token state is {entry} bytes");
    // Room for two such states, not three.
    let limit = entry * 5 / 2 / MIB;
    assert!(2 * entry <= limit * MIB && limit * MIB < 3 * entry);

    let h = one_slot(limit as i64).unwrap();
    let (a, b, c) = (ids(1000, N), ids(5000, N), ids(9000, N));
    for r in [&a, &b, &c] {
        run(&h, r.clone()).await.unwrap();
    }
    // The slot holds C, the cache A and B. B: C is saved, which evicts A (the least
    // recently stored); B is restored.
    let rb = run(&h, b.clone()).await.unwrap();
    assert_eq!(rb.timings.cache_n, N as u32 - 1, "{:?}", rb.timings);
    // A was evicted: evaluated again.
    let ra = run(&h, a.clone()).await.unwrap();
    assert_eq!(ra.timings.cache_n, 0, "{:?}", ra.timings);
    assert!(h.stats().prompt_cache_bytes <= limit * MIB);
    h.shutdown().await;

    // A 1 MiB cache cannot hold one state: nothing is kept, nothing is restored.
    let h = one_slot(1).unwrap();
    run(&h, a.clone()).await.unwrap();
    run(&h, b.clone()).await.unwrap();
    let ra = run(&h, a).await.unwrap();
    assert_eq!(ra.timings.cache_n, 0, "{:?}", ra.timings);
    let stats = h.stats();
    assert_eq!((stats.prompt_cache_hits, stats.prompt_cache_bytes), (0, 0));
    h.shutdown().await;
}

/// `cache_idle_slots` with unified KV: when a task starts, idle slots go to the cache and
/// are cleared; a later request restores its prompt from RAM. Without it the idle slot keeps
/// its KV.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_slots_are_saved_and_cleared_with_unified_kv() {
    for idle in [true, false] {
        let Some(h) = load_smollm(ContextParams {
            kv_unified: true,
            cache_idle_slots: idle,
            ..ctx(1024, 2)
        }) else {
            return;
        };
        let mut a = ids(1000, 60);
        a.id_slot = Some(0);
        let first = run(&h, a.clone()).await.unwrap();
        assert_eq!(first.timings.cache_n, 0);
        let mut b = ids(5000, 8);
        b.id_slot = Some(1);
        run(&h, b).await.unwrap();
        let slots = h.slots().await.unwrap();
        if idle {
            assert_eq!(slots[0].n_cached, 0, "{slots:?}");
            assert!(h.stats().prompt_cache_bytes > 0);
        } else {
            assert!(slots[0].n_cached >= 60, "{slots:?}");
        }
        // Either way, A's prefix is not evaluated again: from RAM or from the slot.
        a.id_slot = None;
        let again = run(&h, a).await.unwrap();
        assert_eq!(again.timings.cache_n, 59, "{:?}", again.timings);
        assert_eq!(h.stats().prompt_cache_hits, u64::from(idle));
        h.shutdown().await;
    }
}
