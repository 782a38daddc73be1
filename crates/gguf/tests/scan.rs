//! Fast scan: agrees with the full read, stops early, skips arrays, never touches
//! tensor infos.

use gguf::fixtures::{LlamaLike, llama_like};
use gguf::writer::GgufWriter;
use gguf::{ReadOptions, Value, ValueType, read, scan, scan_path};
use std::io::{self, Cursor, Read, Seek, SeekFrom};

/// Counts the bytes actually pulled from the underlying stream.
struct Counting<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl<R: Seek> Seek for Counting<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

#[test]
fn scan_matches_full_read_on_fixtures() {
    for (arch, ft, ctx) in [
        ("llama", 15, 8192),
        ("gemma3", 3, 32768),
        ("qwen2", 99, 131072),
    ] {
        let bytes = llama_like("M", arch, ft, ctx, 1000);
        let s = scan(Cursor::new(&bytes)).unwrap();
        let f = read(Cursor::new(&bytes), &ReadOptions::default()).unwrap();
        assert_eq!(s.architecture.as_deref(), Some(arch));
        assert_eq!(s.architecture.as_deref(), f.architecture());
        assert_eq!(s.name.as_deref(), Some("M"));
        assert_eq!(s.file_type, Some(ft));
        assert_eq!(s.quantization, f.quantization());
        assert_eq!(s.context_length, Some(ctx));
        assert_eq!(s.file_size, bytes.len() as u64);
        assert_eq!(s.kv_count, f.kv.len() as u64);
        assert_eq!(s.tensor_count, f.tensors.len() as u64);
        assert_eq!(s.version, 3);
    }
    let s = scan(Cursor::new(llama_like("M", "llama", 15, 1, 10))).unwrap();
    assert_eq!(s.quantization.as_deref(), Some("Q4_K_M"));
    let s = scan(Cursor::new(llama_like("M", "llama", 99, 1, 10))).unwrap();
    assert_eq!(s.quantization.as_deref(), Some("unknown(99)"));
}

#[test]
fn scan_stops_before_the_vocabulary_when_it_has_everything() {
    // ~600 KB of tokenizer arrays follow the facts the scan needs.
    let bytes = llama_like("M", "llama", 15, 4096, 32_000);
    assert!(bytes.len() > 500_000);
    let mut r = Counting {
        inner: Cursor::new(&bytes),
        read: 0,
    };
    let s = scan(&mut r).unwrap();
    assert_eq!(s.context_length, Some(4096));
    assert!(r.read <= 64 * 1024, "read {} bytes", r.read);
}

#[test]
fn scan_skips_arrays_and_keeps_going_when_a_key_comes_late() {
    // general.file_type after the vocabulary, as in the Gemma 3 test model.
    let mut w = GgufWriter::new();
    w.kv("general.architecture", "gemma3")
        .kv("general.name", "late")
        .kv("gemma3.context_length", 32768u32)
        .kv(
            "tokenizer.ggml.tokens",
            Value::string_array((0..50_000).map(|i| format!("t{i}"))),
        )
        .kv(
            "tokenizer.ggml.scores",
            Value::array(ValueType::F32, vec![Value::F32(0.0); 50_000]),
        )
        .kv(
            "nested",
            Value::array(ValueType::Array, vec![Value::string_array(["x"; 100]); 100]),
        )
        .kv("general.file_type", 15u32)
        .kv("after", 1u8);
    let bytes = w.to_bytes();
    let s = scan(Cursor::new(&bytes)).unwrap();
    assert_eq!(s.file_type, Some(15));
    assert_eq!(s.quantization.as_deref(), Some("Q4_K_M"));
}

#[test]
fn scan_never_reads_tensor_infos() {
    let mut w = GgufWriter::new();
    w.kv("general.architecture", "llama")
        .kv("general.alignment", 0u32) // would fail the full read too
        .tensor_info_raw("t", &[1, 1, 1, 1, 1, 1], 0, 0);
    let bytes = w.to_bytes();
    assert!(read(Cursor::new(&bytes), &ReadOptions::default()).is_err());
    let s = scan(Cursor::new(&bytes)).unwrap();
    assert_eq!(s.architecture.as_deref(), Some("llama"));
    assert_eq!(s.name, None);
    assert_eq!(s.file_type, None);
    assert_eq!(s.quantization, None, "no file type: no quantization");
    assert_eq!(s.context_length, None);
    assert_eq!(s.tensor_count, 1);
}

#[test]
fn context_length_key_before_architecture() {
    let mut w = GgufWriter::new();
    w.kv("other.context_length", 1u32)
        .kv("llama.context_length", 2048u64)
        .kv("general.architecture", "llama");
    let s = scan(Cursor::new(w.to_bytes())).unwrap();
    assert_eq!(s.context_length, Some(2048));
}

#[test]
fn wrong_types_for_wanted_keys_are_ignored_not_fatal() {
    let mut w = GgufWriter::new();
    w.kv("general.architecture", 5u32)
        .kv("general.name", Value::string_array(["a"]))
        .kv("general.file_type", "Q4_K_M")
        .kv("x.context_length", -1i32);
    let bytes = w.to_bytes();
    let s = scan(Cursor::new(&bytes)).unwrap();
    let f = read(Cursor::new(&bytes), &ReadOptions::default()).unwrap();
    assert_eq!(
        (s.architecture.as_deref(), s.name.as_deref(), s.file_type),
        (None, None, None)
    );
    assert_eq!(
        (f.architecture(), f.name(), f.file_type()),
        (None, None, None)
    );
}

#[test]
fn scan_path_reads_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    LlamaLike::new("P", "phi3", 7, 4096, 100)
        .write_path(&path)
        .unwrap();
    let s = scan_path(&path).unwrap();
    assert_eq!(s.architecture.as_deref(), Some("phi3"));
    assert_eq!(s.file_size, std::fs::metadata(&path).unwrap().len());
}
