//! The public fixtures other crates build their tests on.

use gguf::fixtures::{self, LlamaLike};
use gguf::{GgmlType, ReadOptions, read};
use std::io::Cursor;
use std::time::Instant;

#[test]
fn llama_like_has_real_shaped_header() {
    let bytes = fixtures::llama_like("Test 7B", "llama", 15, 4096, 32_000);
    let f = read(Cursor::new(&bytes), &ReadOptions::default()).unwrap();
    assert_eq!(f.architecture(), Some("llama"));
    assert_eq!(f.name(), Some("Test 7B"));
    assert_eq!(f.quantization().as_deref(), Some("Q4_K_M"));
    assert_eq!(f.context_length(), Some(4096));
    assert_eq!(f.embedding_length(), Some(256));
    assert_eq!(f.block_count(), Some(2));
    assert_eq!(f.vocab_size(), Some(32_000));
    assert_eq!(f.chat_template(), Some(fixtures::CHATML_TEMPLATE));
    let tokens = f.get_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.items[1].as_str(), Some("<s>"));
    assert_eq!(f.get_array("tokenizer.ggml.scores").unwrap().len, 32_000);
    assert_eq!(
        f.get_array("tokenizer.ggml.token_type").unwrap().len,
        32_000
    );
    let m = LlamaLike::new("Test 7B", "llama", 15, 4096, 32_000);
    assert_eq!(f.parameter_count(), m.parameter_count());
    assert_eq!(
        f.tensor("token_embd.weight").unwrap().dims,
        vec![256, 32_000]
    );
    assert_eq!(
        f.tensor("blk.0.attn_q.weight").unwrap().ggml_type,
        GgmlType::Q4_K
    );
    assert!(f.data_truncated(), "header-only by default");
}

#[test]
fn with_tensor_data_gives_a_complete_file() {
    let mut m = LlamaLike::new("Small", "llama", 1, 512, 300);
    m.n_embd = 32;
    m.n_ff = 64;
    m.with_tensor_data = true;
    let bytes = m.to_bytes();
    let f = read(Cursor::new(&bytes), &ReadOptions::default()).unwrap();
    assert!(!f.data_truncated());
    assert_eq!(f.expected_file_size(), Some(bytes.len() as u64));
    let tiny = fixtures::tiny();
    let f = read(Cursor::new(&tiny), &ReadOptions::default()).unwrap();
    assert_eq!(f.expected_file_size(), Some(tiny.len() as u64));
}

#[test]
fn a_thousand_catalog_fixtures_are_cheap() {
    // The catalog tests write 1000 such files; building them must not dominate.
    let start = Instant::now();
    let mut total = 0;
    for i in 0..20 {
        total += fixtures::llama_like(&format!("m{i}"), "llama", 15, 4096, 32_000).len();
    }
    let per_file = start.elapsed() / 20;
    assert!(total > 20 * 500_000);
    assert!(per_file.as_millis() < 200, "{per_file:?} per file");
}
