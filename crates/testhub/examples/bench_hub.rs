//! The hub and CDN serving one large file, for `scripts/bench/download-vs-curl.sh`.
//!
//!   bench_hub [MiB]   (default 1024)
//!
//! Prints `RESOLVE_URL SHA256 SIZE` on one line once serving, then serves until killed.
//! The content is pseudo-random (nothing on the way may shortcut zeros).

use testhub::{Hub, RepoMeta};

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("size in MiB"))
        .unwrap_or(1024);
    let bytes = pseudo_random(mib << 20);
    let sha = testhub::sha256_hex(&bytes);
    let size = bytes.len();
    let hub = Hub::start().await;
    hub.add_repo("bench/big", RepoMeta::default(), &[("big.gguf", bytes)]);
    println!("{}/bench/big/resolve/main/big.gguf {sha} {size}", hub.url);
    std::future::pending::<()>().await;
}

/// xorshift64*: fast, and enough to defeat any compression or zero-page shortcut.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}
