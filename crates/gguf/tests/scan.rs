//! Fast scan: agrees with the full read, skips arrays, reads the tensor infos to know
//! where the data ends, never touches tensor data.

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
fn scan_reads_the_header_but_never_the_tensor_data() {
    // ~600 KB of tokenizer arrays, then ~2 MB of tensor data the scan must not read.
    let mut m = LlamaLike::new("M", "llama", 1, 4096, 32_000);
    m.with_tensor_data = true;
    let bytes = m.to_bytes();
    let f = read(Cursor::new(&bytes), &ReadOptions::default()).unwrap();
    assert!(bytes.len() as u64 > f.data_offset + 1_000_000);
    let mut r = Counting {
        inner: Cursor::new(&bytes),
        read: 0,
    };
    let s = scan(&mut r).unwrap();
    assert_eq!(s.context_length, Some(4096));
    assert_eq!(s.data_offset, f.data_offset);
    assert_eq!(s.data_end, Some(bytes.len() as u64));
    assert!(!s.data_truncated());
    assert!(
        r.read <= f.data_offset + 64 * 1024,
        "read {} bytes of a header of {}",
        r.read,
        f.data_offset
    );
}

#[test]
fn scan_finds_where_the_tensor_data_ends_and_flags_cut_files() {
    let mut m = LlamaLike::new("M", "llama", 7, 4096, 1000);
    m.with_tensor_data = true;
    let whole = m.to_bytes();
    let f = read(Cursor::new(&whole), &ReadOptions::default()).unwrap();
    assert_eq!(f.expected_file_size(), Some(whole.len() as u64));
    // Cut after the header, in the middle of the data, one byte short: all incomplete.
    for cut in [f.data_offset as usize, whole.len() / 2, whole.len() - 1] {
        let s = scan(Cursor::new(&whole[..cut])).unwrap();
        assert_eq!(s.data_end, Some(whole.len() as u64), "cut at {cut}");
        assert_eq!(s.file_size, cut as u64);
        assert!(s.data_truncated(), "cut at {cut}");
    }
    // Extra bytes after the data are not a problem.
    let mut longer = whole.clone();
    longer.extend_from_slice(&[0; 100]);
    assert!(!scan(Cursor::new(&longer)).unwrap().data_truncated());
    // Header-only fixtures are what a cut download looks like.
    let s = scan(Cursor::new(llama_like("M", "llama", 7, 4096, 1000))).unwrap();
    assert!(s.data_truncated());
    assert_eq!(s.data_end, Some(whole.len() as u64));
}

#[test]
fn scan_honours_general_alignment_and_unknown_types() {
    let mut w = GgufWriter::new();
    w.alignment(64)
        .tensor("a", &[1], gguf::GgmlType::F32, vec![0; 4])
        .tensor("b", &[3], gguf::GgmlType::F32, vec![0; 12]);
    let bytes = w.to_bytes();
    let f = read(Cursor::new(&bytes), &ReadOptions::default()).unwrap();
    let s = scan(Cursor::new(&bytes)).unwrap();
    assert_eq!(s.data_offset % 64, 0);
    assert_eq!(s.data_offset, f.data_offset);
    assert_eq!(s.data_end, f.expected_file_size());
    assert_eq!(s.data_end, Some(f.data_offset + 64 + 12));

    // A type this reader does not know has no size: the end is unknown, not a guess.
    let mut w = GgufWriter::new();
    w.kv("general.architecture", "llama")
        .tensor_info_raw("t", &[4], 9999, 0);
    let s = scan(Cursor::new(w.to_bytes())).unwrap();
    assert_eq!(s.data_end, None);
    assert!(!s.data_truncated());
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
fn scan_refuses_broken_tensor_infos_like_the_full_read() {
    for bad in [
        {
            let mut w = GgufWriter::new();
            w.kv("general.architecture", "llama")
                .kv("general.alignment", 0u32);
            w
        },
        {
            let mut w = GgufWriter::new();
            w.kv("general.architecture", "llama")
                .tensor_info_raw("t", &[1, 1, 1, 1, 1, 1], 0, 0);
            w
        },
    ] {
        let bytes = bad.to_bytes();
        assert!(read(Cursor::new(&bytes), &ReadOptions::default()).is_err());
        assert!(scan(Cursor::new(&bytes)).is_err());
    }
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
