//! Round trips through the writer and reader, and the derived getters.

use gguf::writer::GgufWriter;
use gguf::{ArrayValue, GgmlType, GgufFile, ReadOptions, Value, ValueType, read};
use std::io::Cursor;

fn parse(bytes: &[u8]) -> GgufFile {
    read(Cursor::new(bytes), &ReadOptions::default()).unwrap()
}

fn all_scalars() -> Vec<(&'static str, Value)> {
    vec![
        ("t.u8", Value::U8(200)),
        ("t.i8", Value::I8(-100)),
        ("t.u16", Value::U16(60000)),
        ("t.i16", Value::I16(-30000)),
        ("t.u32", Value::U32(4_000_000_000)),
        ("t.i32", Value::I32(-2_000_000_000)),
        ("t.f32", Value::F32(1.5)),
        ("t.bool", Value::Bool(true)),
        ("t.string", Value::from("héllo\n\"world\"")),
        ("t.u64", Value::U64(u64::MAX)),
        ("t.i64", Value::I64(i64::MIN)),
        ("t.f64", Value::F64(-0.125)),
        (
            "t.array",
            Value::array(ValueType::I16, vec![Value::I16(1), Value::I16(-1)]),
        ),
    ]
}

#[test]
fn every_value_type_round_trips_in_v2_and_v3() {
    for version in [2, 3] {
        let mut w = GgufWriter::with_version(version);
        for (k, v) in all_scalars() {
            w.kv(k, v);
        }
        let f = parse(&w.to_bytes());
        assert_eq!(f.version, version);
        assert_eq!(
            f.kv,
            all_scalars()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<Vec<_>>()
        );
        let types: Vec<_> = f.kv.iter().map(|(_, v)| v.value_type()).collect();
        for t in ValueType::ALL {
            assert!(types.contains(&t), "{t} not covered");
        }
    }
}

#[test]
fn arrays_of_every_type_and_nested_arrays_round_trip() {
    let mut w = GgufWriter::new();
    for (k, v) in all_scalars() {
        w.kv(
            &format!("{k}.arr"),
            Value::array(v.value_type(), vec![v.clone(), v]),
        );
    }
    let nested = Value::array(
        ValueType::Array,
        vec![
            Value::array(ValueType::U32, vec![Value::U32(1), Value::U32(2)]),
            Value::array(ValueType::String, vec![]),
            Value::array(ValueType::Array, vec![Value::string_array(["deep"])]),
        ],
    );
    w.kv("nested", nested.clone());
    let f = parse(&w.to_bytes());
    assert_eq!(f.get("nested"), Some(&nested));
    assert_eq!(
        f.get("t.u8.arr"),
        Some(&Value::array(ValueType::U8, vec![Value::U8(200); 2]))
    );
    assert_eq!(f.kv.len(), 14);
}

#[test]
fn big_arrays_are_previewed_and_their_bytes_skipped() {
    let mut w = GgufWriter::new();
    w.kv(
        "big",
        Value::array(ValueType::U32, (0..1000).map(Value::U32).collect()),
    )
    .kv(
        "words",
        Value::string_array((0..500).map(|i| format!("w{i}"))),
    )
    .kv("edge", Value::array(ValueType::U8, vec![Value::U8(1); 64]))
    .kv("after", 7u32);
    let bytes = w.to_bytes();

    let f = parse(&bytes);
    let big = f.get_array("big").unwrap();
    assert_eq!((big.len, big.items.len(), big.truncated), (1000, 8, true));
    assert_eq!(big.items[7], Value::U32(7));
    let words = f.get_array("words").unwrap();
    assert_eq!((words.len, words.items.len()), (500, 8));
    assert_eq!(words.items[3], Value::from("w3"));
    let edge = f.get_array("edge").unwrap();
    assert!(edge.is_complete(), "64 elements are kept whole by default");
    assert_eq!(
        f.get_u64("after"),
        Some(7),
        "reading continues after skipped bytes"
    );

    let custom = ReadOptions {
        array_keep_whole: 10,
        array_preview: 3,
    };
    let f = read(Cursor::new(&bytes), &custom).unwrap();
    assert_eq!(f.get_array("edge").unwrap().items.len(), 3);

    let f = read(Cursor::new(&bytes), &ReadOptions::keep_all()).unwrap();
    let big = f.get_array("big").unwrap();
    assert!(big.is_complete());
    assert_eq!(big.items[999], Value::U32(999));
}

#[test]
fn nested_big_arrays_are_previewed_at_every_level() {
    let inner = |n: u32| Value::array(ValueType::U32, (0..n).map(Value::U32).collect());
    let mut w = GgufWriter::new();
    w.kv(
        "nested",
        Value::array(ValueType::Array, (0..100).map(|_| inner(100)).collect()),
    )
    .kv("after", "ok");
    let f = parse(&w.to_bytes());
    let outer = f.get_array("nested").unwrap();
    assert_eq!((outer.len, outer.items.len()), (100, 8));
    let first = outer.items[0].as_array().unwrap();
    assert_eq!(
        (first.len, first.items.len(), first.truncated),
        (100, 8, true)
    );
    assert_eq!(f.get_str("after"), Some("ok"));
}

#[test]
fn tensors_alignment_and_data_offset() {
    let mut w = GgufWriter::new();
    w.kv("general.architecture", "llama")
        .tensor("a", &[3], GgmlType::F32, vec![1; 12])
        .tensor("b", &[64, 2], GgmlType::Q4_K, vec![2; 144])
        .tensor("c", &[5], GgmlType::I8, vec![3; 5]);
    let bytes = w.to_bytes();
    let f = parse(&bytes);
    assert_eq!(f.alignment, 32);
    assert_eq!(f.data_offset % 32, 0);
    assert_eq!(f.tensors, w.tensor_infos());
    assert_eq!(f.tensors[1].offset, 32, "12 bytes of `a` padded to 32");
    assert_eq!(f.tensors[2].offset, 32 + 144 + 16);
    assert_eq!(f.tensors[1].ggml_type, GgmlType::Q4_K);
    assert_eq!(f.tensors[1].dims, vec![64, 2]);
    // The bytes really are where the header says.
    let at = |t: usize| bytes[(f.data_offset + f.tensors[t].offset) as usize];
    assert_eq!((at(0), at(1), at(2)), (1, 2, 3));
    assert_eq!(f.file_size, bytes.len() as u64);
    assert_eq!(f.expected_file_size(), Some(bytes.len() as u64));
    assert!(!f.data_truncated());
    assert_eq!(f.parameter_count(), 3 + 128 + 5);
    // Q4_K: 128 elements is half a 256-block, which still costs a whole block.
    assert_eq!(f.tensor_data_size(), 12 + 144 + 5);

    let mut w = GgufWriter::with_version(2);
    w.alignment(64)
        .tensor("a", &[1], GgmlType::F32, vec![0; 4])
        .tensor("b", &[1], GgmlType::F32, vec![0; 4]);
    let f = parse(&w.to_bytes());
    assert_eq!(f.alignment, 64);
    assert_eq!(f.data_offset % 64, 0);
    assert_eq!(f.tensors[1].offset, 64);
}

#[test]
fn header_only_files_are_readable_and_flagged() {
    let mut w = GgufWriter::new();
    w.tensor_zeros("big", &[4096, 4096], GgmlType::F16)
        .header_only(true);
    let f = parse(&w.to_bytes());
    assert!(f.data_truncated());
    assert_eq!(
        f.expected_file_size(),
        Some(f.data_offset + 4096 * 4096 * 2)
    );
    assert_eq!(f.file_size, f.data_offset);
}

#[test]
fn getters() {
    let mut w = GgufWriter::new();
    w.kv("general.architecture", "qwen2")
        .kv("general.name", "Qwen")
        .kv("qwen2.context_length", 32768u64)
        .kv("qwen2.embedding_length", 896i32)
        .kv("qwen2.block_count", 24u16)
        .kv("general.file_type", 7u32)
        .kv("general.sampling.top_k", 40i32)
        .kv("general.sampling.top_p", 0.95f32)
        .kv("general.sampling.temp", 0.7f32)
        .kv(
            "tokenizer.ggml.tokens",
            Value::string_array((0..100).map(|i| i.to_string())),
        )
        .kv("tokenizer.chat_template", "{{ default }}")
        .kv("tokenizer.chat_template.tool_use", "{{ tools }}")
        .kv("tokenizer.chat_template.rag", "{{ rag }}")
        .kv("neg", -5i64);
    let f = parse(&w.to_bytes());
    assert_eq!(f.architecture(), Some("qwen2"));
    assert_eq!(f.name(), Some("Qwen"));
    assert_eq!(f.context_length(), Some(32768));
    assert_eq!(f.embedding_length(), Some(896));
    assert_eq!(f.block_count(), Some(24));
    assert_eq!(f.file_type(), Some(7));
    assert_eq!(f.quantization().as_deref(), Some("Q8_0"));
    assert_eq!(f.vocab_size(), Some(100), "length of a previewed array");
    assert_eq!(f.chat_template(), Some("{{ default }}"));
    let named = f.chat_templates();
    assert_eq!(named.len(), 2);
    assert_eq!(named["tool_use"], "{{ tools }}");
    assert_eq!(named["rag"], "{{ rag }}");
    let s = f.sampling();
    assert_eq!(s.keys().collect::<Vec<_>>(), ["temp", "top_k", "top_p"]);
    assert_eq!(s["top_k"], Value::I32(40));
    assert_eq!(s["top_p"].as_f64(), Some(0.95f32 as f64));
    assert_eq!(f.get_u64("neg"), None);
    assert_eq!(f.get_u64("general.name"), None);
    assert_eq!(f.get_str("qwen2.block_count"), None);
    assert_eq!(f.get("missing"), None);
}

#[test]
fn quantization_without_file_type() {
    let mut w = GgufWriter::new();
    w.kv("general.file_type", 99u32);
    assert_eq!(
        parse(&w.to_bytes()).quantization().as_deref(),
        Some("unknown(99)")
    );

    let mut w = GgufWriter::new();
    w.tensor_zeros("norm", &[4096], GgmlType::F32)
        .tensor_zeros("w1", &[256, 16], GgmlType::Q6_K)
        .tensor_zeros("w2", &[256, 64], GgmlType::Q4_K)
        .header_only(true);
    assert_eq!(parse(&w.to_bytes()).quantization().as_deref(), Some("Q4_K"));

    assert_eq!(parse(&GgufWriter::new().to_bytes()).quantization(), None);
}

#[test]
fn vocab_size_falls_back_to_arch_key() {
    let mut w = GgufWriter::new();
    w.kv("general.architecture", "llama")
        .kv("llama.vocab_size", 49152u32);
    assert_eq!(parse(&w.to_bytes()).vocab_size(), Some(49152));
}

#[test]
fn unknown_tensor_types_are_kept_not_fatal() {
    let mut w = GgufWriter::new();
    w.tensor_info_raw("future", &[10, 10], 200, 0)
        .tensor_info_raw("removed", &[10], 31, 32);
    let f = parse(&w.to_bytes());
    assert_eq!(f.tensors[0].ggml_type, GgmlType::Unknown(200));
    assert_eq!(f.tensors[0].ggml_type.name(), "unknown(200)");
    assert_eq!(f.tensors[1].ggml_type.name(), "unknown(31)");
    assert_eq!(f.parameter_count(), 110);
    assert_eq!(f.tensor_data_size(), 0);
    assert_eq!(f.expected_file_size(), None);
    assert!(!f.data_truncated());
}

#[test]
fn display_for_cli() {
    let mut w = GgufWriter::new();
    w.kv("general.architecture", "llama")
        .kv(
            "ids",
            Value::array(ValueType::U32, (0..100).map(Value::U32).collect()),
        )
        .kv("pair", Value::string_array(["a, b", "c"]));
    let f = parse(&w.to_bytes());
    assert_eq!(f.get("general.architecture").unwrap().to_string(), "llama");
    assert_eq!(
        f.get("ids").unwrap().to_string(),
        "[0, 1, 2, 3, 4, 5, 6, 7, … (100 uint32 total)]"
    );
    assert_eq!(f.get("pair").unwrap().to_string(), r#"["a, b", "c"]"#);
}

#[test]
fn serializes_to_json_with_big_arrays_as_previews() {
    let mut w = GgufWriter::new();
    w.kv("general.architecture", "llama")
        .kv(
            "small",
            Value::array(ValueType::I8, vec![Value::I8(-1), Value::I8(2)]),
        )
        .kv(
            "big",
            Value::string_array((0..100).map(|i| format!("t{i}"))),
        )
        .kv("nan", f32::NAN)
        .tensor("w", &[2, 2], GgmlType::BF16, vec![0; 8]);
    let f = parse(&w.to_bytes());
    let json: serde_json::Value = serde_json::to_value(&f).unwrap();
    assert_eq!(json["kv"]["general.architecture"], "llama");
    assert_eq!(json["kv"]["small"], serde_json::json!([-1, 2]));
    assert_eq!(json["kv"]["big"]["type"], "string");
    assert_eq!(json["kv"]["big"]["len"], 100);
    assert_eq!(json["kv"]["big"]["preview"].as_array().unwrap().len(), 8);
    assert_eq!(json["kv"]["big"]["preview"][1], "t1");
    assert!(json["kv"]["nan"].is_null());
    assert_eq!(
        json["tensors"][0],
        serde_json::json!({"name": "w", "dims": [2, 2], "type": "BF16", "offset": 0})
    );
    assert_eq!(json["version"], 3);
    // File order is kept.
    let keys: Vec<_> = json["kv"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys.len(), 4);

    let scan = gguf::scan(Cursor::new(w.to_bytes())).unwrap();
    let back: gguf::ScanInfo =
        serde_json::from_str(&serde_json::to_string(&scan).unwrap()).unwrap();
    assert_eq!(back, scan);
}

#[test]
fn writer_array_len_is_written_verbatim_for_broken_fixtures() {
    let lying = ArrayValue {
        elem_type: ValueType::U8,
        len: 1000,
        items: vec![Value::U8(1)],
        truncated: false,
    };
    let mut w = GgufWriter::new();
    w.kv("lie", lying);
    let err = read(Cursor::new(w.to_bytes()), &ReadOptions::default()).unwrap_err();
    assert!(err.is_truncated(), "{err}");
}

#[test]
fn read_path_and_write_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    let mut w = GgufWriter::new();
    w.kv("general.architecture", "phi3")
        .tensor("x", &[2], GgmlType::F32, vec![0; 8]);
    let n = w.write_path(&path).unwrap();
    assert_eq!(n, std::fs::metadata(&path).unwrap().len());
    let f = gguf::read_path(&path, &ReadOptions::default()).unwrap();
    assert_eq!(f.architecture(), Some("phi3"));
    let err =
        gguf::read_path(&dir.path().join("missing.gguf"), &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, gguf::GgufError::Io { offset: 0, .. }));
}
