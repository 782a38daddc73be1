//! Continuous batching, prompt cache, cancellation, the queue.

use std::time::{Duration, Instant};

use engine::{ContextParams, EngineError, Event, FinishReason, SlotState};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_concurrent_requests_are_batched() {
    let Some(h) = load_smollm(ctx(512, 4)) else {
        return;
    };
    let questions = [
        "What is the capital of France?",
        "Name three colors.",
        "What is two plus two?",
        "Say hello in Spanish.",
    ];
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for q in questions {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let mut req = greedy(&chatml(q), 32);
            req.ignore_eos = true;
            run(&h, req).await
        }));
    }
    let mut total = 0;
    for t in tasks {
        let c = t.await.unwrap().unwrap();
        assert_eq!(c.finish_reason, Some(FinishReason::Length));
        assert_eq!(c.usage.completion_tokens, 32);
        assert!(c.text.chars().any(char::is_alphabetic), "{:?}", c.text);
        total += c.usage.completion_tokens;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let s = h.stats();
    eprintln!(
        "4 concurrent: {total} tokens in {elapsed:.2}s = {:.1} tok/s aggregate; {s:?}",
        f64::from(total) / elapsed
    );
    // 4 x 32 tokens one by one would be 128 decodes (+4 prompts); batched it is ~32-40.
    assert!(s.decode_calls <= 64, "{s:?}");
    assert!(s.max_batch_slots >= 3, "{s:?}");
    assert_eq!(s.requests_done, 4);
    // Each request's answer does not depend on its neighbours in the batch.
    let alone = run(&h, {
        let mut r = greedy(&chatml(questions[0]), 32);
        r.ignore_eos = true;
        r.cache_prompt = false;
        r
    })
    .await
    .unwrap();
    assert!(alone.text.contains("Paris"), "{:?}", alone.text);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_turn_reuses_the_first() {
    let Some(h) = load_smollm(ctx(2048, 2)) else {
        return;
    };
    let system = "You are a helpful assistant. ".repeat(30);
    let turn1 = format!("<|im_start|>system\n{system}<|im_end|>\n{}", chatml(FRANCE));
    let first = run(&h, greedy(&turn1, 24)).await.unwrap();
    assert_eq!(first.timings.cache_n, 0);
    let n1 = first.usage.prompt_tokens;
    assert!(n1 > 150, "{n1}");
    assert_eq!(first.timings.prompt_n, n1);

    // The second turn: the whole first exchange plus a new question.
    let turn2 = format!(
        "{turn1}{}<|im_end|>\n{}",
        first.text,
        chatml("And of Germany?")
    );
    let second = run(&h, greedy(&turn2, 24)).await.unwrap();
    let n2 = second.usage.prompt_tokens;
    let t = second.timings;
    assert_eq!(t.cache_n + t.prompt_n, n2);
    assert!(
        t.cache_n >= n1,
        "the first turn's prompt must be reused: {t:?}"
    );
    assert!(t.prompt_n < 40, "only the new turn is read: {t:?}");

    // Same prompt again: everything but the last token comes from the cache.
    let again = run(&h, greedy(&turn2, 4)).await.unwrap();
    assert_eq!(again.timings.prompt_n, 1, "{:?}", again.timings);

    // cache_prompt = false reads everything.
    let mut req = greedy(&turn2, 4);
    req.cache_prompt = false;
    let fresh = run(&h, req).await.unwrap();
    assert_eq!(fresh.timings.cache_n, 0);
    assert_eq!(fresh.timings.prompt_n, n2);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_stream_frees_the_slot() {
    let Some(h) = load_smollm(ctx(512, 1)) else {
        return;
    };
    let mut req = greedy(&chatml("Write a very long essay."), 400);
    req.ignore_eos = true;
    let mut stream = h.generate(req).await.unwrap();
    for _ in 0..3 {
        assert!(matches!(next(&mut stream).await, Event::Token { .. }));
    }
    drop(stream);
    // The only slot is free again: a new request is served at once.
    let t0 = Instant::now();
    let c = run(&h, greedy(&chatml(FRANCE), 16)).await.unwrap();
    assert!(c.text.contains("Paris"));
    assert!(t0.elapsed() < Duration::from_secs(60));
    let slots = h.slots().await.unwrap();
    assert_eq!(slots[0].state, SlotState::Idle);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_refuses_and_priority_jumps_it() {
    let Some(path) = smollm() else { return };
    let c = engine::ContextParams {
        queue_max: 2,
        ..ctx(512, 1)
    };
    let h = engine::ModelHost::load(engine::ModelParams::new(path), c, |_| {}).unwrap();
    let mut long = greedy(&chatml("Write a very long essay."), 400);
    long.ignore_eos = true;
    let mut busy = h.generate(long).await.unwrap();
    assert!(matches!(next(&mut busy).await, Event::Token { .. }));

    let mut normal = greedy(&chatml(FRANCE), 4);
    normal.ignore_eos = true;
    let mut b = h.generate(normal.clone()).await.unwrap();
    let mut urgent = normal.clone();
    urgent.priority = true;
    let mut p = h.generate(urgent).await.unwrap();
    assert_eq!(h.queue_len(), 2);
    match h.generate(normal.clone()).await {
        Err(EngineError::QueueFull { max: 2 }) => {}
        other => panic!("expected QueueFull, got {other:?}"),
    }
    assert_eq!(h.queue_len(), 2);

    drop(busy);
    // The priority request (queued last) runs first.
    let mut order = Vec::new();
    let (mut b_done, mut p_done) = (false, false);
    while !(b_done && p_done) {
        tokio::select! {
            ev = next(&mut b), if !b_done => if matches!(ev, Event::Done { .. }) { b_done = true; order.push("normal") },
            ev = next(&mut p), if !p_done => if matches!(ev, Event::Done { .. }) { p_done = true; order.push("priority") },
        }
    }
    assert_eq!(order, ["priority", "normal"]);
    assert_eq!(h.queue_len(), 0);
    h.shutdown().await;
}

/// Chunked prefill: while a slot generates, a long prompt is read `prefill_chunk` tokens per
/// step (each step also carrying the running slot's token); alone, a prompt takes the whole
/// batch. Facts about batch shapes only, not timing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_prompts_are_chunked_only_while_others_generate() {
    let chunk = 16;
    let Some(h) = load_smollm(ContextParams {
        prefill_chunk: chunk,
        ..ctx(1024, 2)
    }) else {
        return;
    };
    let long = chatml(&"Tell me about lighthouses and their keepers. ".repeat(20));
    let n_long = h.tokenize(&long, true, true).await.unwrap().len() as u64;
    assert!(n_long > 4 * u64::from(chunk), "{n_long}");

    // A generates for longer than B's prompt takes in chunks.
    let mut a = greedy(&chatml("Count to one thousand."), 400);
    a.ignore_eos = true;
    let mut stream_a = h.generate(a).await.unwrap();
    assert!(matches!(stream_a.recv().await, Some(Event::Token { .. })));
    let before = h.stats();
    let b = run(&h, greedy(&long, 1)).await.unwrap();
    assert_eq!(u64::from(b.usage.prompt_tokens), n_long);
    let after = h.stats();
    assert!(
        after.max_batch_tokens <= u64::from(chunk) + 1,
        "a step held more than one chunk and A's token: {after:?}"
    );
    assert!(
        after.decode_calls - before.decode_calls >= n_long / u64::from(chunk),
        "{before:?} {after:?}"
    );
    drop(stream_a);

    // Alone, the same length of prompt goes in one step.
    while h.busy_slots() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut c = greedy(&long, 1);
    c.cache_prompt = false;
    run(&h, c).await.unwrap();
    assert_eq!(h.stats().max_batch_tokens, n_long);
    h.shutdown().await;
}
