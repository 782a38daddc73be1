//! Prints what the crate reads from a GGUF file: `cargo run -p gguf --example gguf_info -- FILE`.
use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next().map(PathBuf::from) else {
        eprintln!("usage: gguf_info FILE");
        std::process::exit(2);
    };
    let t = std::time::Instant::now();
    match gguf::scan_path(&path) {
        Ok(s) => println!("scan ({:?}): {s:?}", t.elapsed()),
        Err(e) => println!("scan failed: {e}"),
    }
    let t = std::time::Instant::now();
    let file = match gguf::read_path(&path, &gguf::ReadOptions::default()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("read failed: {e}");
            std::process::exit(1);
        }
    };
    println!("read ({:?})", t.elapsed());
    for (k, v) in &file.kv {
        let s = v.to_string();
        let s: String = s.chars().take(160).collect();
        println!("{k} = {s}");
    }
    println!("tensors: {}", file.tensors.len());
    for t in file.tensors.iter().take(5) {
        println!("  {} {:?} {} @{}", t.name, t.dims, t.ggml_type, t.offset);
    }
    println!(
        "arch={:?} quant={:?} ctx={:?} params={} vocab={:?} data_offset={} data_size={} expected_size={:?} file_size={} truncated={}",
        file.architecture(),
        file.quantization(),
        file.context_length(),
        file.parameter_count(),
        file.vocab_size(),
        file.data_offset,
        file.tensor_data_size(),
        file.expected_file_size(),
        file.file_size,
        file.data_truncated()
    );
}
