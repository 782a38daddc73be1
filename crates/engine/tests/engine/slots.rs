//! Slot listing, save / restore / erase, pinning a request to a slot.

use engine::{EngineError, SlotState};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_erase_restore_a_slot() {
    let Some(h) = load_smollm(ctx(512, 2)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let prompt = chatml(FRANCE);
    let mut req = greedy(&prompt, 8);
    req.id_slot = Some(1);
    let first = run(&h, req.clone()).await.unwrap();
    assert_eq!(first.slot_id, 1);

    let slots = h.slots().await.unwrap();
    assert_eq!(slots.len(), 2);
    assert_eq!(slots[1].state, SlotState::Idle);
    assert_eq!(slots[1].n_ctx, 512);
    let cached = slots[1].n_cached;
    assert!(cached >= first.usage.prompt_tokens, "{slots:?}");

    let file = dir.path().join("slot1.bin");
    let saved = h.save_slot(1, &file).await.unwrap();
    assert_eq!(saved.n_tokens, cached);
    assert!(saved.n_bytes > 0 && file.is_file());

    assert_eq!(h.erase_slot(1).await.unwrap(), cached);
    assert_eq!(h.slots().await.unwrap()[1].n_cached, 0);

    let restored = h.restore_slot(1, &file).await.unwrap();
    assert_eq!(restored.n_tokens, cached);
    assert_eq!(h.slots().await.unwrap()[1].n_cached, cached);

    // The restored KV is used: the same prompt reads only its last token. (The answer is not
    // compared with the first: one token decoded on a cache is another batch shape than the
    // whole prompt, and llama.cpp promises no identical logits across shapes.)
    let again = run(&h, req).await.unwrap();
    assert_eq!(again.timings.prompt_n, 1, "{:?}", again.timings);
    assert!(!again.text.is_empty());

    // Errors: unknown slot, missing or foreign file.
    assert!(matches!(
        h.erase_slot(7).await,
        Err(EngineError::InvalidParameter { .. })
    ));
    assert!(matches!(
        h.restore_slot(0, dir.path().join("none.bin")).await,
        Err(EngineError::SlotFile { .. })
    ));
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"not a slot file at all").unwrap();
    assert!(matches!(
        h.restore_slot(0, &junk).await,
        Err(EngineError::SlotFile { .. })
    ));
    assert_eq!(h.slots().await.unwrap()[0].n_cached, 0);
    h.shutdown().await;
}

#[test]
fn devices_include_the_cpu_with_its_memory() {
    let devs = engine::devices();
    let cpu = devs
        .iter()
        .find(|d| d.kind == engine::DeviceKind::Cpu)
        .expect("a CPU device");
    assert!(
        cpu.memory_total > 0 && cpu.memory_free <= cpu.memory_total,
        "{cpu:?}"
    );
    assert!(!cpu.description.is_empty());
}

/// Unified KV as llama-server's `--kv-unified`: the slots share one pool of `ctx_per_slot`
/// tokens, which one slot may fill; an idle slot's cached prompt stays while it fits and gives
/// way when another slot needs the room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unified_kv_slots_share_one_pool() {
    let Some(h) = load_smollm(engine::ContextParams {
        kv_unified: true,
        // Without the prompt cache, which would clear idle slots when a task starts
        // (`cache_idle_slots`, see prompt_cache.rs): this is the pool's own rule.
        cache_ram_mib: 0,
        ..ctx(512, 2)
    }) else {
        return;
    };
    assert_eq!((h.info().n_ctx, h.info().n_ctx_slot), (512, 512));
    let story = |subject: &str| {
        chatml(&format!(
            "Tell me about {subject}. {}",
            format!("The {subject} is old and the {subject} is tall. ").repeat(25)
        ))
    };
    let mut first = greedy(&story("tower"), 4);
    first.id_slot = Some(0);
    let a = run(&h, first).await.unwrap();
    assert!(a.usage.prompt_tokens > 256, "{:?}", a.usage);
    let cached = h.slots().await.unwrap()[0].n_cached;
    assert!(cached >= a.usage.prompt_tokens, "{cached}");

    // A short request beside it fits: slot 0 keeps its cache.
    let mut short = greedy(&chatml("Hi"), 2);
    short.id_slot = Some(1);
    run(&h, short).await.unwrap();
    assert_eq!(h.slots().await.unwrap()[0].n_cached, cached);

    // Another long one does not fit beside it: the idle cache gives way, the request runs.
    let mut second = greedy(&story("river"), 4);
    second.id_slot = Some(1);
    let b = run(&h, second).await.unwrap();
    assert!(b.usage.prompt_tokens > 256, "{:?}", b.usage);
    let slots = h.slots().await.unwrap();
    assert_eq!(slots[0].n_cached, 0, "{slots:?}");
    assert!(slots[1].n_cached >= b.usage.prompt_tokens, "{slots:?}");
    h.shutdown().await;
}
