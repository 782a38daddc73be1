//! Fast scan: the handful of facts a model list needs, for thousands of files.
//!
//! Reads the header sequentially through a 64 KiB buffer: the architecture, name, file
//! type and context length, then the tensor infos, to learn where the tensor data ends
//! (a file shorter than that is an interrupted download, never offered as a model).
//! Values it does not need (above all the tokenizer arrays) are skipped, never stored;
//! tensor infos are folded into one number as they are read, and tensor data is never
//! touched.

use crate::error::GgufError;
use crate::limits::MAX_STRING_LEN;
use crate::model::{ReadOptions, ScanInfo, fold_data_end};
use crate::reader::{
    alignment_of, read_header, read_key, read_scalar, read_tensor_infos, read_type, read_value,
    skip_values,
};
use crate::source::Source;
use crate::types::file_type_label;
use crate::value::ValueType;
use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;

/// Scans a GGUF stream that starts at offset 0 of `r`.
pub fn scan<R: Read + Seek>(r: R) -> Result<ScanInfo, GgufError> {
    let mut src = Source::new(r)?;
    let header = read_header(&mut src)?;
    let mut info = ScanInfo {
        version: header.version,
        architecture: None,
        name: None,
        file_type: None,
        quantization: None,
        context_length: None,
        file_size: src.len(),
        kv_count: header.kv_count,
        tensor_count: header.tensor_count,
        data_offset: 0,
        data_end: None,
    };
    let mut alignment = crate::limits::DEFAULT_ALIGNMENT;
    // `*.context_length` values seen before `general.architecture` (unusual, but the
    // spec does not order keys). Grows only with key bytes actually read.
    let mut early_ctx: Vec<(String, u64)> = Vec::new();
    let mut seen = HashSet::new();

    for _ in 0..header.kv_count {
        let key = read_key(&mut src, &mut seen)?;
        let ty = read_type(&mut src)?;
        if key == "general.alignment" {
            let value_offset = src.pos();
            let value = read_value(&mut src, ty, &ReadOptions::default(), 0)?;
            alignment = alignment_of(&value, value_offset)?;
            continue;
        }
        let wanted = match key.as_str() {
            "general.architecture" | "general.name" => ty == ValueType::String,
            "general.file_type" => is_integer(ty),
            k => k.ends_with(".context_length") && is_integer(ty),
        };
        if !wanted {
            skip_value(&mut src, ty)?;
            continue;
        }
        let value = read_scalar(&mut src, ty)?;
        match key.as_str() {
            "general.architecture" => info.architecture = value.as_str().map(str::to_owned),
            "general.name" => info.name = value.as_str().map(str::to_owned),
            "general.file_type" => {
                info.file_type = value.as_u64().and_then(|v| u32::try_from(v).ok())
            }
            k => {
                let prefix = k.strip_suffix(".context_length").unwrap_or_default();
                if let Some(n) = value.as_u64() {
                    match &info.architecture {
                        Some(arch) if arch == prefix => info.context_length = Some(n),
                        Some(_) => {}
                        None => early_ctx.push((prefix.to_owned(), n)),
                    }
                }
            }
        }
        if let (None, Some(arch)) = (info.context_length, &info.architecture) {
            info.context_length = early_ctx.iter().find(|(p, _)| p == arch).map(|e| e.1);
        }
    }
    info.quantization = info.file_type.map(file_type_label);
    let mut end = Some(0);
    info.data_offset = read_tensor_infos(&mut src, header.tensor_count, alignment, |_, t| {
        end = fold_data_end(end, &t);
        Ok(())
    })?;
    info.data_end = end.and_then(|e| info.data_offset.checked_add(e));
    Ok(info)
}

/// Scans the file at `path`.
pub fn scan_path(path: &Path) -> Result<ScanInfo, GgufError> {
    let file = File::open(path).map_err(|source| GgufError::Io { offset: 0, source })?;
    scan(file)
}

fn is_integer(ty: ValueType) -> bool {
    matches!(
        ty,
        ValueType::U8
            | ValueType::I8
            | ValueType::U16
            | ValueType::I16
            | ValueType::U32
            | ValueType::I32
            | ValueType::U64
            | ValueType::I64
    )
}

/// Skips one value of any type.
fn skip_value<R: Read + Seek>(src: &mut Source<R>, ty: ValueType) -> Result<(), GgufError> {
    match ty {
        ValueType::String => src.skip_string("string length", MAX_STRING_LEN),
        ValueType::Array => skip_values(src, ValueType::Array, 1, 0),
        _ => skip_values(src, ty, 1, 0),
    }
}
