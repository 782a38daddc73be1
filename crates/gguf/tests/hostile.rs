//! Hostile and broken input: each case must give a typed error naming the byte
//! offset, for both the full read and the scan, and never panic.

use gguf::writer::{GgufWriter, encode_string, encode_tensor_info};
use gguf::{GgufError, ReadOptions, Value, ValueType, read, scan};
use std::io::{self, Cursor, Read, Seek, SeekFrom};

fn read_err(bytes: &[u8]) -> GgufError {
    // Scan must not panic on anything either; it may succeed where it stops early.
    let _ = scan(Cursor::new(bytes));
    read(Cursor::new(bytes), &ReadOptions::default()).expect_err("hostile input must not parse")
}

fn scan_err(bytes: &[u8]) -> GgufError {
    scan(Cursor::new(bytes)).expect_err("hostile input must not scan")
}

/// Magic, version, counts: the first 24 bytes.
fn header(version: u32, n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(&n_tensors.to_le_bytes());
    b.extend_from_slice(&n_kv.to_le_bytes());
    b
}

fn push_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn push_u64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}

#[test]
fn empty_and_short_files() {
    for bytes in [&b""[..], b"G", b"GG", b"GGU"] {
        let e = read_err(bytes);
        assert!(
            matches!(
                e,
                GgufError::Truncated {
                    offset: 0,
                    needed: 4
                }
            ),
            "{bytes:?}: {e}"
        );
    }
    assert!(matches!(read_err(b"GX"), GgufError::BadMagic { .. }));
    assert!(matches!(
        read_err(b"GGUF\x03\0"),
        GgufError::Truncated {
            offset: 4,
            needed: 4
        }
    ));
}

#[test]
fn wrong_magic() {
    let e = read_err(b"GGML\x03\0\0\0");
    assert!(matches!(e, GgufError::BadMagic { found } if &found == b"GGML"));
    assert_eq!(e.offset(), Some(0));
    assert!(matches!(
        scan_err(b"\x7fELF...."),
        GgufError::BadMagic { .. }
    ));
}

#[test]
fn unsupported_versions() {
    for v in [0u32, 1, 4, 0xFFFF] {
        let e = read_err(&header(v, 0, 0));
        assert!(
            matches!(e, GgufError::UnsupportedVersion { version } if version == v),
            "{v}: {e}"
        );
    }
    assert_eq!(
        read_err(&header(1, 0, 0)).to_string(),
        "unsupported GGUF version 1 at byte 4 (supported: 2 and 3)"
    );
}

#[test]
fn big_endian_is_detected_not_misread() {
    for v in [2u32, 3] {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&v.to_be_bytes());
        b.extend_from_slice(&1u64.to_be_bytes());
        b.extend_from_slice(&1u64.to_be_bytes());
        assert!(matches!(read_err(&b), GgufError::BigEndian));
        assert!(matches!(scan_err(&b), GgufError::BigEndian));
    }
}

#[test]
fn truncation_anywhere_in_the_header_is_an_error_with_offset() {
    let mut w = GgufWriter::new();
    w.kv("general.architecture", "llama")
        .kv("general.name", "x")
        .kv("general.file_type", 2u32)
        .kv("llama.context_length", 4096u32)
        .kv(
            "nested",
            Value::array(ValueType::Array, vec![Value::string_array(["a"; 70])]),
        )
        .tensor("t", &[4], gguf::GgmlType::F32, vec![0; 16]);
    let bytes = w.to_bytes();
    let mut info = Vec::new();
    encode_tensor_info(&mut info, "t", &[4], 0, 0);
    let header_end = bytes
        .windows(info.len())
        .position(|win| win == info)
        .unwrap()
        + info.len();
    for cut in 0..header_end {
        let e = read(Cursor::new(&bytes[..cut]), &ReadOptions::default())
            .expect_err(&format!("cut at {cut}"));
        match e {
            GgufError::Truncated { offset, needed } => {
                assert!(offset <= cut as u64 && needed > 0, "cut {cut}: {e}")
            }
            other => panic!("cut at {cut}: expected Truncated, got {other}"),
        }
        let _ = scan(Cursor::new(&bytes[..cut]));
    }
    // Cut in the padding or the tensor data: the header still reads and the data is
    // reported missing.
    for cut in header_end..bytes.len() {
        let f = read(Cursor::new(&bytes[..cut]), &ReadOptions::default()).unwrap();
        assert!(f.data_truncated(), "cut at {cut}");
    }
}

#[test]
fn truncated_error_message_names_offset_and_need() {
    let mut b = header(3, 0, 1);
    push_u64(&mut b, 4);
    b.extend_from_slice(b"ab");
    let e = read_err(&b);
    assert_eq!(
        e.to_string(),
        "truncated file at byte 32: needed 4 more bytes"
    );
    assert_eq!(e.offset(), Some(32));
}

#[test]
fn absurd_counts() {
    let e = read_err(&header(3, 0, 1 << 60));
    assert!(
        matches!(e, GgufError::TooLarge { offset: 16, value, .. } if value == 1 << 60),
        "{e}"
    );
    assert!(matches!(
        scan_err(&header(3, 0, 1 << 60)),
        GgufError::TooLarge { offset: 16, .. }
    ));
    let e = read_err(&header(3, 1 << 60, 0));
    assert!(
        matches!(
            e,
            GgufError::TooLarge {
                offset: 8,
                what: "tensor count",
                ..
            }
        ),
        "{e}"
    );
    // Plausible counts the file cannot hold are truncation.
    let e = read_err(&header(3, 0, 1000));
    assert!(matches!(e, GgufError::Truncated { offset: 24, .. }), "{e}");
    let e = read_err(&header(3, 1000, 0));
    assert!(matches!(e, GgufError::Truncated { offset: 24, .. }), "{e}");
}

#[test]
fn absurd_string_lengths() {
    // A 4 GiB string value.
    let mut b = header(3, 0, 1);
    encode_string(&mut b, b"k");
    push_u32(&mut b, ValueType::String.raw());
    let len_at = b.len() as u64;
    push_u64(&mut b, 4 << 30);
    b.extend_from_slice(b"short");
    let e = read_err(&b);
    assert!(
        matches!(e, GgufError::TooLarge { offset, what: "string length", value } if offset == len_at && value == 4 << 30),
        "{e}"
    );
    // A merely longer-than-the-file string.
    let mut b = header(3, 0, 1);
    encode_string(&mut b, b"k");
    push_u32(&mut b, ValueType::String.raw());
    push_u64(&mut b, 1 << 20);
    b.extend_from_slice(b"short");
    assert!(matches!(
        read_err(&b),
        GgufError::Truncated {
            offset: 45,
            needed: 1048576
        }
    ));
    // The same inside a skipped (previewed-away) string array, and in scan.
    let mut b = header(3, 0, 1);
    encode_string(&mut b, b"tokenizer.ggml.tokens");
    push_u32(&mut b, ValueType::Array.raw());
    push_u32(&mut b, ValueType::String.raw());
    push_u64(&mut b, 100);
    for _ in 0..99 {
        encode_string(&mut b, b"t");
    }
    push_u64(&mut b, u64::MAX);
    b.extend_from_slice(&[0; 64]);
    assert!(matches!(
        read_err(&b),
        GgufError::TooLarge {
            what: "string length",
            ..
        }
    ));
    assert!(matches!(
        scan_err(&b),
        GgufError::TooLarge {
            what: "string length",
            ..
        }
    ));
}

#[test]
fn key_too_long() {
    let mut b = header(3, 0, 1);
    push_u64(&mut b, 70_000);
    b.extend_from_slice(&vec![b'k'; 70_000]);
    push_u32(&mut b, 0);
    b.push(0);
    let e = read_err(&b);
    assert!(
        matches!(
            e,
            GgufError::TooLarge {
                offset: 24,
                what: "key length",
                value: 70_000
            }
        ),
        "{e}"
    );
    assert!(matches!(
        scan_err(&b),
        GgufError::TooLarge {
            what: "key length",
            ..
        }
    ));
    // 65535 is allowed.
    let key = "k".repeat(65_535);
    let mut w = GgufWriter::new();
    w.kv(&key, 1u8);
    assert!(read(Cursor::new(w.to_bytes()), &ReadOptions::default()).is_ok());
}

#[test]
fn absurd_array_lengths() {
    let array = |elem: ValueType, len: u64| {
        let mut b = header(3, 0, 1);
        encode_string(&mut b, b"a");
        push_u32(&mut b, ValueType::Array.raw());
        push_u32(&mut b, elem.raw());
        push_u64(&mut b, len);
        b.extend_from_slice(&[0; 100]);
        b
    };
    for elem in [
        ValueType::U8,
        ValueType::String,
        ValueType::Array,
        ValueType::F64,
    ] {
        let e = read_err(&array(elem, 1 << 63));
        assert!(
            matches!(
                e,
                GgufError::TooLarge {
                    offset: 41,
                    what: "array length",
                    ..
                }
            ),
            "{elem}: {e}"
        );
        let e = scan_err(&array(elem, 1 << 63));
        assert!(
            matches!(e, GgufError::TooLarge { offset: 41, .. }),
            "{elem}: {e}"
        );
        let e = read_err(&array(elem, 1 << 30));
        assert!(
            matches!(e, GgufError::Truncated { offset: 49, .. }),
            "{elem}: {e}"
        );
    }
}

#[test]
fn unknown_value_types() {
    let mut w = GgufWriter::new();
    w.kv("ok", 1u8).kv_raw_value(b"bad", 13, &[0; 16]);
    let e = read_err(&w.to_bytes());
    assert!(
        matches!(
            e,
            GgufError::UnknownValueType {
                offset: 50,
                raw: 13
            }
        ),
        "{e}"
    );
    assert!(matches!(
        scan_err(&w.to_bytes()),
        GgufError::UnknownValueType {
            offset: 50,
            raw: 13
        }
    ));
    // As an array element type.
    let mut payload = u32::MAX.to_le_bytes().to_vec();
    payload.extend_from_slice(&0u64.to_le_bytes());
    let mut w = GgufWriter::new();
    w.kv_raw_value(b"arr", ValueType::Array.raw(), &payload);
    let e = read_err(&w.to_bytes());
    assert!(
        matches!(
            e,
            GgufError::UnknownValueType {
                offset: 39,
                raw: u32::MAX
            }
        ),
        "{e}"
    );
}

#[test]
fn invalid_utf8() {
    // In a key.
    let mut w = GgufWriter::new();
    w.kv_raw_value(b"ok\xffkey", ValueType::U8.raw(), &[1]);
    let e = read_err(&w.to_bytes());
    assert!(matches!(e, GgufError::InvalidUtf8 { offset: 34 }), "{e}");
    assert!(matches!(
        scan_err(&w.to_bytes()),
        GgufError::InvalidUtf8 { offset: 34 }
    ));
    // In a string value.
    let mut payload = Vec::new();
    encode_string(&mut payload, b"abc\xc3");
    let mut w = GgufWriter::new();
    w.kv_raw_value(b"k", ValueType::String.raw(), &payload);
    let e = read_err(&w.to_bytes());
    assert!(matches!(e, GgufError::InvalidUtf8 { offset: 48 }), "{e}");
    // In a tensor name.
    let mut info = Vec::new();
    encode_tensor_info(&mut info, "x", &[1], 0, 0);
    info[8] = 0xfe;
    let mut w = GgufWriter::new();
    w.tensor_raw(info);
    assert!(matches!(
        read_err(&w.to_bytes()),
        GgufError::InvalidUtf8 { offset: 32 }
    ));
}

#[test]
fn invalid_bool() {
    let mut w = GgufWriter::new();
    w.kv_raw_value(b"b", ValueType::Bool.raw(), &[2]);
    assert!(matches!(
        read_err(&w.to_bytes()),
        GgufError::InvalidBool {
            offset: 37,
            value: 2
        }
    ));
}

#[test]
fn duplicate_keys_and_tensors() {
    let mut w = GgufWriter::new();
    w.kv("general.name", "a").kv("general.name", "b");
    let e = read_err(&w.to_bytes());
    assert!(
        matches!(&e, GgufError::DuplicateKey { offset: 57, key } if key == "general.name"),
        "{e}"
    );
    assert!(matches!(
        scan_err(&w.to_bytes()),
        GgufError::DuplicateKey { offset: 57, .. }
    ));

    let mut w = GgufWriter::new();
    w.tensor_info_raw("t", &[1], 0, 0)
        .tensor_info_raw("t", &[1], 0, 32);
    let e = read_err(&w.to_bytes());
    assert!(
        matches!(&e, GgufError::DuplicateTensor { offset: 57, name } if name == "t"),
        "{e}"
    );
}

#[test]
fn too_many_dims() {
    let mut w = GgufWriter::new();
    w.tensor_info_raw("t", &[1, 1, 1, 1, 1], 0, 0);
    let e = read_err(&w.to_bytes());
    assert!(
        matches!(&e, GgufError::TooManyDims { offset: 33, n_dims: 5, tensor } if tensor == "t"),
        "{e}"
    );
    // u32::MAX dims must not be allocated.
    let mut info = Vec::new();
    encode_string(&mut info, b"t");
    push_u32(&mut info, u32::MAX);
    let mut w = GgufWriter::new();
    w.tensor_raw(info);
    assert!(matches!(
        read_err(&w.to_bytes()),
        GgufError::TooManyDims {
            n_dims: u32::MAX,
            ..
        }
    ));
}

#[test]
fn dims_overflow() {
    for dims in [
        &[1u64 << 32, 1 << 32][..],
        &[u64::MAX],
        &[1 << 63],
        &[3, 1 << 62],
    ] {
        let mut w = GgufWriter::new();
        w.tensor_info_raw("t", dims, 0, 0);
        let e = read_err(&w.to_bytes());
        assert!(
            matches!(e, GgufError::DimsOverflow { offset: 33, .. }),
            "{dims:?}: {e}"
        );
    }
    // i64::MAX elements exactly is representable (data size then overflows: no panic).
    let mut w = GgufWriter::new();
    w.tensor_info_raw("t", &[i64::MAX as u64], 0, 0);
    let f = read(Cursor::new(w.to_bytes()), &ReadOptions::default()).unwrap();
    assert_eq!(f.parameter_count(), i64::MAX as u64);
    assert_eq!(f.tensors[0].data_size(), None);
    assert_eq!(f.expected_file_size(), None);
}

#[test]
fn misaligned_tensor_offsets() {
    let mut w = GgufWriter::new();
    w.tensor_info_raw("t", &[1], 0, 0)
        .tensor_info_raw("u", &[1], 0, 33);
    let e = read_err(&w.to_bytes());
    assert!(
        matches!(&e, GgufError::MisalignedTensor { offset: 82, tensor_offset: 33, alignment: 32, tensor } if tensor == "u"),
        "{e}"
    );
    // Aligned to 32 but not to a declared 64.
    let mut w = GgufWriter::new();
    w.alignment(64).tensor_info_raw("t", &[1], 0, 32);
    assert!(matches!(
        read_err(&w.to_bytes()),
        GgufError::MisalignedTensor { alignment: 64, .. }
    ));
}

#[test]
fn bad_alignment() {
    for a in [0u32, 3, 48, u32::MAX] {
        let mut w = GgufWriter::new();
        w.alignment(a);
        let e = read_err(&w.to_bytes());
        assert!(
            matches!(e, GgufError::BadAlignment { offset: 53, value } if value == a as u64),
            "{a}: {e}"
        );
    }
    let mut w = GgufWriter::new();
    w.kv("general.alignment", "32");
    let e = read_err(&w.to_bytes());
    assert!(
        matches!(
            e,
            GgufError::WrongType {
                found: ValueType::String,
                ..
            }
        ),
        "{e}"
    );
    // Other integer widths are accepted, as the reader is lenient about widths.
    let mut w = GgufWriter::new();
    w.kv("general.alignment", 16u64)
        .tensor("t", &[1], gguf::GgmlType::F32, vec![0; 4]);
    let f = read(Cursor::new(w.to_bytes()), &ReadOptions::default()).unwrap();
    assert_eq!((f.alignment, f.data_offset % 16), (16, 0));
}

#[test]
fn nesting_depth_is_limited() {
    let nest = |depth: u32| {
        let mut v = Value::array(ValueType::U8, vec![Value::U8(1)]);
        for _ in 1..depth {
            v = Value::array(ValueType::Array, vec![v]);
        }
        let mut w = GgufWriter::new();
        w.kv("deep", v).kv("general.architecture", "x");
        w.to_bytes()
    };
    let max = gguf::MAX_ARRAY_DEPTH;
    assert!(read(Cursor::new(nest(max)), &ReadOptions::default()).is_ok());
    assert!(scan(Cursor::new(nest(max))).is_ok());
    let e = read_err(&nest(max + 1));
    assert!(matches!(e, GgufError::NestingTooDeep { .. }), "{e}");
    assert!(matches!(
        scan_err(&nest(max + 1)),
        GgufError::NestingTooDeep { .. }
    ));
    // Deep nesting inside the skipped part of a previewed array is caught as well.
    let mut items = vec![Value::array(ValueType::U8, vec![]); 70];
    let mut deep = Value::array(ValueType::U8, vec![]);
    for _ in 0..max + 2 {
        deep = Value::array(ValueType::Array, vec![deep]);
    }
    items.push(deep);
    let mut w = GgufWriter::new();
    w.kv("a", Value::array(ValueType::Array, items));
    assert!(matches!(
        read_err(&w.to_bytes()),
        GgufError::NestingTooDeep { .. }
    ));
}

#[test]
fn wrong_declared_counts() {
    // One entry too many: the reader runs into the padding (an empty key).
    let mut w = GgufWriter::new();
    w.kv("a", 1u32).kv_count_override(2);
    assert!(matches!(
        read_err(&w.to_bytes()),
        GgufError::EmptyKey { offset: 41 }
    ));
    let mut w = GgufWriter::new();
    w.kv("a", 1u32).kv_count_override(2).header_only(true);
    let mut bytes = w.to_bytes();
    bytes.truncate(41);
    assert!(matches!(
        read_err(&bytes),
        GgufError::Truncated {
            offset: 41,
            needed: 8
        }
    ));
    let mut w = GgufWriter::new();
    w.tensor_info_raw("t", &[1], 0, 0).tensor_count_override(5);
    assert!(read_err(&w.to_bytes()).is_truncated());
}

/// A stream that claims to be longer than it is (e.g. a file truncated while read),
/// and one that fails outright.
struct Lying {
    inner: Cursor<Vec<u8>>,
    claimed: u64,
    fail: bool,
}

impl Read for Lying {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.fail && self.inner.position() >= self.inner.get_ref().len() as u64 {
            return Err(io::Error::other("disk on fire"));
        }
        self.inner.read(buf)
    }
}

impl Seek for Lying {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match pos {
            SeekFrom::End(0) => Ok(self.claimed),
            other => self.inner.seek(other),
        }
    }
}

#[test]
fn streams_that_shrink_or_fail() {
    let mut w = GgufWriter::new();
    w.kv("general.architecture", "llama")
        .kv("general.name", "n");
    let bytes = w.to_bytes();
    let short = Lying {
        inner: Cursor::new(bytes[..40].to_vec()),
        claimed: bytes.len() as u64,
        fail: false,
    };
    let e = read(short, &ReadOptions::default()).unwrap_err();
    assert!(e.is_truncated(), "{e}");
    let failing = Lying {
        inner: Cursor::new(bytes[..40].to_vec()),
        claimed: bytes.len() as u64,
        fail: true,
    };
    let e = read(failing, &ReadOptions::default()).unwrap_err();
    assert!(matches!(e, GgufError::Io { offset: 32, .. }), "{e}");
    assert!(e.to_string().contains("disk on fire"));
}

#[test]
fn every_error_has_an_offset_except_none() {
    let e = read_err(&header(3, 0, 1 << 60));
    assert_eq!(e.offset(), Some(16));
    assert_eq!(GgufError::BigEndian.offset(), Some(4));
}
