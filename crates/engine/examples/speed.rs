//! Generation speed through the engine: one stream, then N concurrent streams.
//!
//! `cargo run --release -p engine --example speed -- MODEL.gguf [N_GEN] [PARALLEL] [THREADS]`
//! Prints prompt and generation tokens/s (llama-server's `timings`) and the aggregate rate.

use std::time::Instant;

use engine::{ContextParams, GenerateRequest, ModelHost, ModelParams, Prompt, SamplingParams};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: speed MODEL.gguf [N_GEN] [PARALLEL] [THREADS]");
    let n_gen: u32 = args.next().map_or(128, |s| s.parse().expect("N_GEN"));
    let parallel: u32 = args.next().map_or(4, |s| s.parse().expect("PARALLEL"));
    let threads: Option<u32> = args.next().map(|s| s.parse().expect("THREADS"));
    let ctx = ContextParams {
        ctx_per_slot: 1024,
        parallel,
        threads,
        ..Default::default()
    };
    let h = ModelHost::load(ModelParams::new(&path), ctx, |_| {}).expect("load");
    let info = h.info();
    println!(
        "{}: {} params, {} slots x {} ctx, {} threads",
        info.architecture, info.n_params, info.n_slots, info.n_ctx_slot, info.threads
    );
    let req = move |i: usize| GenerateRequest {
        prompt: Prompt::text(format!(
            "<|im_start|>user\nQuestion {i}: write a long story about a lighthouse keeper.<|im_end|>\n<|im_start|>assistant\n"
        )),
        max_tokens: Some(n_gen),
        ignore_eos: true,
        cache_prompt: false,
        sampling: SamplingParams::greedy(),
        ..Default::default()
    };
    // Warm-up.
    let _ = h.generate(req(99)).await.unwrap().collect().await.unwrap();

    let c = h.generate(req(0)).await.unwrap().collect().await.unwrap();
    let t = c.timings;
    println!(
        "single: prompt {} tok at {:.1} tok/s, generation {} tok at {:.1} tok/s",
        t.prompt_n, t.prompt_per_second, t.predicted_n, t.predicted_per_second
    );

    let s0 = h.stats();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..parallel as usize {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            h.generate(req(i + 1))
                .await
                .unwrap()
                .collect()
                .await
                .unwrap()
        }));
    }
    let mut total = 0;
    for t in tasks {
        let c = t.await.unwrap();
        total += c.usage.completion_tokens;
        println!(
            "  stream: generation {} tok at {:.1} tok/s",
            c.timings.predicted_n, c.timings.predicted_per_second
        );
    }
    let secs = t0.elapsed().as_secs_f64();
    let s1 = h.stats();
    println!(
        "{parallel} concurrent: {total} tokens in {secs:.2} s = {:.1} tok/s aggregate ({} decode calls)",
        f64::from(total) / secs,
        s1.decode_calls - s0.decode_calls
    );
    h.shutdown().await;
}
