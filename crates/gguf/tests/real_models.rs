//! The two real test models (scripts fetch them). Each test needs its env var; under
//! CI=true a missing model is a failure, elsewhere a note.

use gguf::{ReadOptions, read_path, scan_path};

#[test]
fn smollm2_q4_1() {
    let Some(path) = testkit::smollm2() else {
        return;
    };
    let s = scan_path(&path).unwrap();
    assert_eq!(s.architecture.as_deref(), Some("llama"));
    assert_eq!(s.quantization.as_deref(), Some("Q4_1"));
    assert_eq!(s.file_type, Some(3));
    assert_eq!(s.context_length, Some(8192));
    let f = read_path(&path, &ReadOptions::default()).unwrap();
    assert_eq!(f.architecture(), Some("llama"));
    assert_eq!(f.quantization().as_deref(), Some("Q4_1"));
    assert_eq!(f.context_length(), s.context_length);
    assert_eq!(f.vocab_size(), Some(49152));
    assert_eq!(f.block_count(), Some(30));
    assert_eq!(f.embedding_length(), Some(576));
    assert!(f.chat_template().unwrap().contains("<|im_start|>"));
    let params = f.parameter_count() as f64;
    assert!((params / 134.5e6 - 1.0).abs() < 0.01, "{params}");
    assert_eq!(f.expected_file_size(), Some(f.file_size));
    assert!(!f.data_truncated());
    assert_eq!(f.file_size, std::fs::metadata(&path).unwrap().len());
}

#[test]
fn gemma3_q4_k_m() {
    let Some(path) = testkit::gemma3() else {
        return;
    };
    let s = scan_path(&path).unwrap();
    assert_eq!(s.architecture.as_deref(), Some("gemma3"));
    assert_eq!(s.quantization.as_deref(), Some("Q4_K_M"));
    assert_eq!(s.context_length, Some(32768));
    let f = read_path(&path, &ReadOptions::default()).unwrap();
    assert_eq!(f.architecture(), Some("gemma3"));
    assert_eq!(f.quantization().as_deref(), Some("Q4_K_M"));
    assert_eq!(f.context_length(), Some(32768));
    assert_eq!(f.vocab_size(), Some(262_144));
    assert_eq!(f.chat_template(), None);
    assert!(f.chat_templates().is_empty());
    let params = f.parameter_count() as f64;
    assert!((params / 268e6 - 1.0).abs() < 0.01, "{params}");
    assert_eq!(f.expected_file_size(), Some(f.file_size));
    // Big arrays are previews: the 262k vocabulary is not in memory.
    let tokens = f.get_array("tokenizer.ggml.tokens").unwrap();
    assert!(tokens.truncated && tokens.items.len() == 8);
}
