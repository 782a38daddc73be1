//! Several LoRA adapters: global and per-request scales, batches never mixing
//! configurations, prompt cache per configuration, bad adapter files.
//!
//! The adapters are generated here for SmolLM2's shapes (llama, n_embd 576, 192-wide K/V,
//! 30 layers) with the project's GGUF writer: random low-rank A/B pairs on attn_q and
//! attn_v, which change the output visibly at scale 2 and not at all at scale 0.

use std::path::{Path, PathBuf};
use std::time::Duration;

use engine::{
    Completion, EmbedRequest, EmbeddingValues, EngineError, Event, GenerateRequest, LoraScale,
    LoraSpec, ModelHandle, ModelHost, ModelParams, Prompt,
};
use gguf::GgmlType;
use gguf::writer::GgufWriter;

use crate::common::*;

const N_EMBD: u64 = 576;
const N_KV: u64 = 192;
const N_LAYER: u32 = 30;

/// Deterministic values in [-amp, amp].
fn values(n: u64, seed: &mut u64, amp: f32) -> Vec<u8> {
    let mut out = Vec::with_capacity(n as usize * 4);
    for _ in 0..n {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let u = ((*seed >> 40) as f32) / ((1u64 << 24) as f32); // [0, 1)
        out.extend_from_slice(&((u * 2.0 - 1.0) * amp).to_le_bytes());
    }
    out
}

struct Adapter<'a> {
    arch: &'a str,
    rank: u64,
    seed: u64,
    /// Input width of attn_q's A matrix (576 fits the model).
    q_in: u64,
}

impl Adapter<'_> {
    fn smollm(seed: u64) -> Self {
        Adapter {
            arch: "llama",
            rank: 4,
            seed,
            q_in: N_EMBD,
        }
    }

    fn write(&self, path: &Path) {
        let mut w = GgufWriter::new();
        w.kv("general.architecture", self.arch)
            .kv("general.type", "adapter")
            .kv("general.name", "test adapter")
            .kv("adapter.type", "lora")
            .kv("adapter.lora.alpha", self.rank as f32);
        let mut seed = self.seed;
        let r = self.rank;
        for il in 0..N_LAYER {
            // A: [in, r] (ne0 = in), B: [r, out], as llama-adapter.cpp checks.
            for (name, din, dout) in [("attn_q", self.q_in, N_EMBD), ("attn_v", N_EMBD, N_KV)] {
                let base = format!("blk.{il}.{name}.weight");
                w.tensor(
                    &format!("{base}.lora_a"),
                    &[din, r],
                    GgmlType::F32,
                    values(din * r, &mut seed, 0.1),
                );
                w.tensor(
                    &format!("{base}.lora_b"),
                    &[r, dout],
                    GgmlType::F32,
                    values(r * dout, &mut seed, 0.1),
                );
            }
        }
        w.write_path(path).unwrap();
    }
}

fn adapter(dir: &Path, name: &str, a: Adapter<'_>) -> PathBuf {
    let p = dir.join(name);
    a.write(&p);
    p
}

fn params(model: &Path, adapters: &[&Path]) -> ModelParams {
    ModelParams {
        lora: adapters
            .iter()
            .map(|p| LoraSpec {
                path: p.to_path_buf(),
                scale: 0.0,
            })
            .collect(),
        ..ModelParams::new(model)
    }
}

fn request(prompt: &str, lora: Option<Vec<LoraScale>>) -> GenerateRequest {
    let mut r = greedy(&chatml(prompt), 24);
    r.ignore_eos = true;
    r.cache_prompt = false;
    r.lora = lora;
    r
}

fn scale(id: usize, scale: f32) -> LoraScale {
    LoraScale { id, scale }
}

async fn complete(h: &ModelHandle, r: GenerateRequest) -> Completion {
    run(h, r).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scales_switch_the_adapter_on_and_off() {
    let Some(model) = smollm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let a0 = adapter(dir.path(), "a0.gguf", Adapter::smollm(1));
    let a1 = adapter(dir.path(), "a1.gguf", Adapter::smollm(2));
    let base = ModelHost::load(params(&model, &[]), ctx(256, 2), |_| {}).unwrap();
    let h = ModelHost::load(params(&model, &[&a0, &a1]), ctx(256, 2), |_| {}).unwrap();
    assert!(base.lora_adapters().await.unwrap().is_empty());
    let list = h.lora_adapters().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!((list[0].id, list[1].id), (0, 1));
    assert_eq!(list[1].path, a1);
    assert!(list.iter().all(|a| a.scale == 0.0));

    let reference = complete(&base, request(FRANCE, None)).await;
    // Scale 0: exactly the base model.
    let off = complete(&h, request(FRANCE, None)).await;
    assert_eq!(off.tokens, reference.tokens);

    // Global scale 2 on adapter 0: another answer.
    h.set_lora_scales(vec![scale(0, 2.0)]).await.unwrap();
    assert_eq!(h.lora_adapters().await.unwrap()[0].scale, 2.0);
    let on0 = complete(&h, request(FRANCE, None)).await;
    assert_ne!(on0.tokens, reference.tokens, "{:?}", on0.text);
    eprintln!("base: {:?}\nlora: {:?}", reference.text, on0.text);
    // Setting adapter 1 alone zeroes adapter 0 (llama-server's rule).
    h.set_lora_scales(vec![scale(1, 2.0)]).await.unwrap();
    let scales: Vec<f32> = h
        .lora_adapters()
        .await
        .unwrap()
        .iter()
        .map(|a| a.scale)
        .collect();
    assert_eq!(scales, [0.0, 2.0]);
    let on1 = complete(&h, request(FRANCE, None)).await;
    assert_ne!(on1.tokens, on0.tokens);
    assert_ne!(on1.tokens, reference.tokens);

    // Back to off globally; per-request scales reproduce the global results.
    h.set_lora_scales(vec![]).await.unwrap();
    assert_eq!(
        complete(&h, request(FRANCE, None)).await.tokens,
        reference.tokens
    );
    let req0 = complete(&h, request(FRANCE, Some(vec![scale(0, 2.0)]))).await;
    assert_eq!(req0.tokens, on0.tokens);
    // An empty list means the global scales, as in llama-server.
    assert_eq!(
        complete(&h, request(FRANCE, Some(vec![]))).await.tokens,
        reference.tokens
    );

    // Bad ids and scales are typed errors, and change nothing.
    let field = |r: Result<(), EngineError>| match r {
        Err(EngineError::InvalidParameter { name, reason }) => {
            assert_eq!(name, "lora");
            reason
        }
        other => panic!("expected InvalidParameter(lora), got {other:?}"),
    };
    assert!(field(h.set_lora_scales(vec![scale(2, 1.0)]).await).contains("id 2"));
    assert!(field(h.set_lora_scales(vec![scale(0, f32::NAN)]).await).contains("finite"));
    assert!(field(base.set_lora_scales(vec![scale(0, 1.0)]).await).contains("has none"));
    let bad = |r: Result<engine::EventStream, EngineError>| match r {
        Err(EngineError::InvalidParameter { name, .. }) => assert_eq!(name, "lora"),
        other => panic!("expected InvalidParameter(lora), got {other:?}"),
    };
    bad(h.generate(request(FRANCE, Some(vec![scale(7, 1.0)]))).await);
    bad(h
        .generate(request(FRANCE, Some(vec![scale(0, f32::INFINITY)])))
        .await);
    assert!(
        h.lora_adapters()
            .await
            .unwrap()
            .iter()
            .all(|a| a.scale == 0.0)
    );
    assert_eq!(
        complete(&h, request(FRANCE, None)).await.tokens,
        reference.tokens
    );

    // Embeddings use the global scales too.
    let e = |h: &ModelHandle| {
        let h = h.clone();
        async move {
            let out = h
                .embed(EmbedRequest {
                    inputs: vec![Prompt::text("The cat sat on the mat.")],
                    ..Default::default()
                })
                .await
                .unwrap();
            match out.into_iter().next().unwrap().values {
                EmbeddingValues::Pooled(v) => v,
                other => panic!("{other:?}"),
            }
        }
    };
    let plain = e(&h).await;
    assert_eq!(plain, e(&base).await);
    h.set_lora_scales(vec![scale(0, 2.0)]).await.unwrap();
    let tuned = e(&h).await;
    let cos: f32 = plain.iter().zip(&tuned).map(|(a, b)| a * b).sum();
    assert!(cos < 0.999, "the adapter changes embeddings: cos {cos}");
    base.shutdown().await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_configs_never_share_a_batch_and_take_turns() {
    let Some(model) = smollm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let a0 = adapter(dir.path(), "a0.gguf", Adapter::smollm(1));
    let h = ModelHost::load(params(&model, &[&a0]), ctx(256, 2), |_| {}).unwrap();
    let tuned = || request(FRANCE, Some(vec![scale(0, 2.0)]));
    let plain = || request("Name three colors.", None);

    // Both at once, in two slots: no batch held both, and they took turns. (Their tokens are
    // not compared with runs alone: llama.cpp promises no identical results across batch
    // shapes, and a prompt may be split into other chunks while another slot generates.)
    let mut a = h.generate(tuned()).await.unwrap();
    let mut b = h.generate(plain()).await.unwrap();
    let mut order = Vec::new();
    let (mut ca, mut cb) = (Completion::default(), Completion::default());
    let (mut a_done, mut b_done) = (false, false);
    let step = Duration::from_secs(120);
    while !(a_done && b_done) {
        tokio::select! {
            ev = tokio::time::timeout(step, a.recv()), if !a_done => match ev.unwrap().unwrap() {
                Event::Token { token, text, .. } => { ca.tokens.push(token); ca.text.push_str(&text); order.push('a'); }
                Event::Done { .. } => { a_done = true; order.push('A'); }
                Event::Error(e) => panic!("{e}"),
                Event::Progress(_) => panic!("progress was not asked for"),
            },
            ev = tokio::time::timeout(step, b.recv()), if !b_done => match ev.unwrap().unwrap() {
                Event::Token { token, text, .. } => { cb.tokens.push(token); cb.text.push_str(&text); order.push('b'); }
                Event::Done { .. } => { b_done = true; order.push('B'); }
                Event::Error(e) => panic!("{e}"),
                Event::Progress(_) => panic!("progress was not asked for"),
            },
        }
    }
    assert!(!ca.tokens.is_empty() && !cb.tokens.is_empty());
    let s = h.stats();
    assert_eq!(
        s.max_batch_slots, 1,
        "slots with different LoRA scales were batched: {s:?}"
    );
    // They took turns: each produced tokens before the other finished.
    let order: String = order.into_iter().collect();
    let first = |c: char| order.find(c).unwrap();
    assert!(
        first('b') < first('A') && first('a') < first('B'),
        "{order}"
    );

    // The same scales in both slots are batched together as usual.
    let (x, y) = tokio::join!(complete(&h, tuned()), complete(&h, tuned()));
    assert!(!x.tokens.is_empty() && !y.tokens.is_empty());
    assert_eq!(h.stats().max_batch_slots, 2, "{:?}", h.stats());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_prompt_is_not_reused_under_other_scales() {
    let Some(model) = smollm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let a0 = adapter(dir.path(), "a0.gguf", Adapter::smollm(1));
    // The slot's own cache only: the RAM prompt cache would (rightly) restore the KV each
    // configuration computed earlier (its entries are matched by scales, see prompt_cache.rs).
    let no_ram_cache = engine::ContextParams {
        cache_ram_mib: 0,
        ..ctx(256, 1)
    };
    let h = ModelHost::load(params(&model, &[&a0]), no_ram_cache, |_| {}).unwrap();
    let cached = |lora| {
        let mut r = request(FRANCE, lora);
        r.cache_prompt = true;
        r
    };
    // Runs that compute the whole prompt afresh in one slot are the same computation, so
    // their tokens are compared; a run that reused a cache is not compared with them.
    let tuned_fresh = complete(&h, request(FRANCE, Some(vec![scale(0, 2.0)]))).await;

    let plain = complete(&h, cached(None)).await;
    let again = complete(&h, cached(None)).await;
    assert!(
        again.timings.cache_n > 0,
        "same scales reuse: {:?}",
        again.timings
    );
    // The slot holds KV computed without the adapter: not reused with it.
    let tuned = complete(&h, cached(Some(vec![scale(0, 2.0)]))).await;
    assert_eq!(tuned.timings.cache_n, 0, "{:?}", tuned.timings);
    assert_eq!(tuned.tokens, tuned_fresh.tokens);
    // And the other way round.
    let back = complete(&h, cached(None)).await;
    assert_eq!(back.timings.cache_n, 0, "{:?}", back.timings);
    assert_eq!(back.tokens, plain.tokens);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_adapter_files_are_clear_load_errors() {
    let Some(model) = smollm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let load = |p: &Path| match ModelHost::load(params(&model, &[p]), ctx(128, 1), |_| {}) {
        Err(EngineError::InvalidAdapter { path, reason }) => {
            assert_eq!(path, p);
            eprintln!("{}: {reason}", p.display());
            reason
        }
        other => panic!("{}: expected InvalidAdapter, got {other:?}", p.display()),
    };

    assert!(load(&dir.path().join("missing.gguf")).contains("no such file"));
    let garbage = dir.path().join("garbage.gguf");
    std::fs::write(&garbage, b"GGUF this is not really an adapter".repeat(50)).unwrap();
    assert!(load(&garbage).contains("not a valid GGUF"));
    // A model is not an adapter.
    assert!(load(&model).contains("not an adapter"));
    let other_arch = adapter(
        dir.path(),
        "gemma.gguf",
        Adapter {
            arch: "gemma3",
            ..Adapter::smollm(3)
        },
    );
    assert!(load(&other_arch).contains("'gemma3'"));
    // Right architecture, wrong shapes: llama.cpp's own check, quoted.
    let shapes = adapter(
        dir.path(),
        "shapes.gguf",
        Adapter {
            q_in: 100,
            ..Adapter::smollm(4)
        },
    );
    assert!(load(&shapes).contains("incorrect shape"));
    // A truncated adapter.
    let good = adapter(dir.path(), "good.gguf", Adapter::smollm(5));
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert!(load(&cut).contains("truncated"));

    // The process is fine: the good adapter loads, and other models keep serving.
    let h = ModelHost::load(params(&model, &[&good]), ctx(128, 1), |_| {}).unwrap();
    assert_eq!(h.lora_adapters().await.unwrap().len(), 1);
    h.shutdown().await;
    if let Some(s) = shared() {
        let c = run(s, greedy(&chatml(FRANCE), 24)).await.unwrap();
        assert!(c.text.contains("Paris"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_request_takes_the_global_scales_when_it_starts() {
    let Some(model) = smollm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let a0 = adapter(dir.path(), "a0.gguf", Adapter::smollm(1));
    let h = ModelHost::load(params(&model, &[&a0]), ctx(256, 1), |_| {}).unwrap();
    let tuned = complete(&h, request(FRANCE, Some(vec![scale(0, 2.0)]))).await;

    let mut long = request("Write a very long essay.", None);
    long.max_tokens = Some(200);
    let mut busy = h.generate(long).await.unwrap();
    assert!(matches!(next(&mut busy).await, Event::Token { .. }));
    let queued = h.generate(request(FRANCE, None)).await.unwrap();
    assert_eq!(h.queue_len(), 1);
    // Changed while it waits: it runs with the new global scales, as in llama-server.
    h.set_lora_scales(vec![scale(0, 2.0)]).await.unwrap();
    drop(busy);
    let c = tokio::time::timeout(Duration::from_secs(300), queued.collect())
        .await
        .unwrap()
        .unwrap();
    // One slot: it ran alone, as `tuned` did, so the computation is the same.
    assert_eq!(c.tokens, tuned.tokens);
    h.shutdown().await;
}
