//! Writes N synthetic GGUF models with real-shaped headers (llama hparams, a 32k-token
//! vocabulary with scores and token types, tensor infos) into a folder tree, for
//! `scripts/bench/scan.sh`. Usage: gen_fixtures DIR N
use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("usage: gen_fixtures DIR N"));
    let n: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .expect("usage: gen_fixtures DIR N");
    const QUANTS: [(u32, &str); 5] = [
        (2, "Q4_0"),
        (7, "Q8_0"),
        (15, "Q4_K_M"),
        (17, "Q5_K_M"),
        (18, "Q6_K"),
    ];
    for i in 0..n {
        let (ft, q) = QUANTS[i % QUANTS.len()];
        // 50 files per folder, like a few dozen repos each holding several quantizations.
        let folder = dir
            .join(format!("org{:02}", i / 50))
            .join(format!("model-{i:04}-GGUF"));
        std::fs::create_dir_all(&folder)?;
        let model =
            gguf::fixtures::LlamaLike::new(&format!("Model {i}"), "llama", ft, 8192, 32_000);
        model.write_path(&folder.join(format!("model-{i:04}-{q}.gguf")))?;
    }
    Ok(())
}
