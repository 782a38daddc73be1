//! The fake Hugging Face hub, CDN and Ollama registry as a process, for the web dashboard's
//! end-to-end tests (web/e2e): it prints `HUB_URL` on one line once serving, then serves
//! until killed.
//!
//! It holds `e2e/tiny-GGUF` with two quantizations of a small model. Every transfer of the
//! Q8_0 file stops halfway (`Hub::stall`, armed again for each retry) and never goes on, so a
//! test can see a download in progress and pause it whatever the machine's speed; the Q4_K_M
//! file downloads whole.
//! The Ollama registry holds `library/tiny:latest`.

use testhub::{Hub, RepoMeta};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let hub = Hub::start().await;
    let q4 = testhub::gguf_model("tiny", 15);
    let q8 = testhub::gguf_model("tiny", 7);
    let half = q8.len() as u64 / 2;
    hub.add_repo(
        "e2e/tiny-GGUF",
        RepoMeta {
            downloads: 1234,
            likes: 56,
            ..RepoMeta::default()
        },
        &[("tiny-Q4_K_M.gguf", q4.clone()), ("tiny-Q8_0.gguf", q8)],
    );
    hub.add_ollama_model(
        "library",
        "tiny",
        "latest",
        &[("application/vnd.ollama.image.model", q4)],
    );
    println!("{}", hub.url);
    // A stall holds one transfer; the downloader's retries (ranged, from where it stopped)
    // must meet one too.
    loop {
        hub.stall("e2e/tiny-GGUF", "tiny-Q8_0.gguf", half);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
