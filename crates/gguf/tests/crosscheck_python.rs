//! Cross-check: every key, value and tensor info our reader gives on the two real test
//! models must equal what the official `gguf` Python package (PyPI) reads from the same
//! file. `scripts/py/gguf_dump.py` prints the Python side as JSON.
//!
//! Needs `LLAMA_DASHBOARD_PYTHON` (a Python with `gguf` installed; scripts/setup.sh makes
//! one) and the test models (`LLAMA_DASHBOARD_TEST_MODEL`, `_2`). Under `CI=true` a missing
//! piece is a failure, never a skip.

use gguf::{ReadOptions, Value};
use serde_json::Value as Json;
use std::path::Path;
use std::process::Command;

fn python_dump(python: &Path, model: &Path) -> Json {
    let script = testkit::py_script("gguf_dump.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(model)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "gguf_dump.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("gguf_dump.py prints JSON")
}

/// Our value in the shape the Python dump uses.
fn to_json(v: &Value) -> Json {
    match v {
        Value::U8(x) => (*x).into(),
        Value::I8(x) => (*x).into(),
        Value::U16(x) => (*x).into(),
        Value::I16(x) => (*x).into(),
        Value::U32(x) => (*x).into(),
        Value::I32(x) => (*x).into(),
        Value::U64(x) => (*x).into(),
        Value::I64(x) => (*x).into(),
        // f32 → f64 is exact, and Python widens the same way.
        Value::F32(x) => Json::from(f64::from(*x)),
        Value::F64(x) => Json::from(*x),
        Value::Bool(x) => (*x).into(),
        Value::String(s) => s.clone().into(),
        Value::Array(a) => {
            assert!(!a.truncated, "read with keep_all, nothing is truncated");
            serde_json::json!({
                "elem_type": a.elem_type.name(),
                "len": a.len,
                "items": if a.elem_type == gguf::ValueType::Array { Json::Null } else { a.items.iter().map(to_json).collect() },
            })
        }
    }
}

fn crosscheck(python: &Path, model: &Path) {
    let py = python_dump(python, model);
    let ours = gguf::read_path(model, &ReadOptions::keep_all()).expect("our reader reads the file");

    assert_eq!(py["version"], Json::from(ours.version), "version");
    assert_eq!(py["alignment"], Json::from(ours.alignment), "alignment");
    assert_eq!(
        py["data_offset"],
        Json::from(ours.data_offset),
        "data offset"
    );

    let py_kv = py["kv"].as_array().unwrap();
    assert_eq!(py_kv.len(), ours.kv.len(), "number of keys");
    for (p, (key, value)) in py_kv.iter().zip(&ours.kv) {
        assert_eq!(p["key"], Json::from(key.as_str()), "keys in file order");
        assert_eq!(
            p["type"],
            Json::from(value.value_type().name()),
            "type of {key}"
        );
        let mine = to_json(value);
        if p["value"] != mine {
            // Print a short, useful diff rather than two multi-megabyte JSON documents.
            let s = |j: &Json| j.to_string().chars().take(300).collect::<String>();
            panic!(
                "value of {key} differs:\n python: {}\n ours:   {}",
                s(&p["value"]),
                s(&mine)
            );
        }
    }

    let py_t = py["tensors"].as_array().unwrap();
    assert_eq!(py_t.len(), ours.tensors.len(), "number of tensors");
    for (p, t) in py_t.iter().zip(&ours.tensors) {
        assert_eq!(p["name"], Json::from(t.name.as_str()));
        assert_eq!(p["dims"], Json::from(t.dims.clone()), "dims of {}", t.name);
        assert_eq!(
            p["type"],
            Json::from(t.ggml_type.raw()),
            "type of {}",
            t.name
        );
        assert_eq!(p["offset"], Json::from(t.offset), "offset of {}", t.name);
    }
}

#[test]
fn smollm2_matches_the_gguf_python_package() {
    let (Some(python), Some(model)) = (testkit::python(), testkit::smollm2()) else {
        return;
    };
    crosscheck(&python, &model);
}

#[test]
fn gemma3_matches_the_gguf_python_package() {
    let (Some(python), Some(model)) = (testkit::python(), testkit::gemma3()) else {
        return;
    };
    crosscheck(&python, &model);
}
