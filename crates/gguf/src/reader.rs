//! Full read: every metadata entry and every tensor info. Big arrays are kept as a
//! preview (see [`ReadOptions`]); their remaining bytes are skipped, not stored.

use crate::error::GgufError;
use crate::limits::*;
use crate::model::{GgufFile, ReadOptions, TensorInfo};
use crate::source::Source;
use crate::types::GgmlType;
use crate::value::{ArrayValue, Value, ValueType};
use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;

pub(crate) const MAGIC: [u8; 4] = *b"GGUF";

pub(crate) struct Header {
    pub version: u32,
    pub tensor_count: u64,
    pub kv_count: u64,
}

pub(crate) fn read_header<R: Read + Seek>(src: &mut Source<R>) -> Result<Header, GgufError> {
    // A file shorter than the magic is "not GGUF" rather than "truncated GGUF"
    // only if what is there already differs.
    let have = src.remaining().min(4) as usize;
    let mut found = [0u8; 4];
    if have < 4 {
        let mut partial = vec![0u8; have];
        for b in partial.iter_mut() {
            *b = src.u8()?;
        }
        found[..have].copy_from_slice(&partial);
        if partial[..] != MAGIC[..have] {
            return Err(GgufError::BadMagic { found });
        }
        return Err(GgufError::Truncated {
            offset: 0,
            needed: 4,
        });
    }
    found = src.bytes()?;
    if found != MAGIC {
        return Err(GgufError::BadMagic { found });
    }
    let version = src.u32()?;
    // llama.cpp's test: a small version number written big-endian reads with its
    // low 16 bits zero.
    if version != 0 && version & 0xFFFF == 0 {
        return Err(GgufError::BigEndian);
    }
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion { version });
    }
    let tensor_count = src.u64()?;
    if tensor_count > MAX_TENSOR_COUNT {
        return Err(GgufError::TooLarge {
            offset: 8,
            what: "tensor count",
            value: tensor_count,
        });
    }
    let kv_count = src.u64()?;
    if kv_count > MAX_KV_COUNT {
        return Err(GgufError::TooLarge {
            offset: 16,
            what: "metadata key/value count",
            value: kv_count,
        });
    }
    Ok(Header {
        version,
        tensor_count,
        kv_count,
    })
}

/// Reads a value type tag.
pub(crate) fn read_type<R: Read + Seek>(src: &mut Source<R>) -> Result<ValueType, GgufError> {
    let offset = src.pos();
    let raw = src.u32()?;
    ValueType::from_raw(raw).ok_or(GgufError::UnknownValueType { offset, raw })
}

/// Reads a metadata key, rejecting repeats (`seen` holds earlier keys).
pub(crate) fn read_key<R: Read + Seek>(
    src: &mut Source<R>,
    seen: &mut HashSet<String>,
) -> Result<String, GgufError> {
    let offset = src.pos();
    let key = src.string("key length", MAX_KEY_LEN)?;
    if key.is_empty() {
        return Err(GgufError::EmptyKey { offset });
    }
    if !seen.insert(key.clone()) {
        return Err(GgufError::DuplicateKey { offset, key });
    }
    Ok(key)
}

pub(crate) fn read_scalar<R: Read + Seek>(
    src: &mut Source<R>,
    ty: ValueType,
) -> Result<Value, GgufError> {
    Ok(match ty {
        ValueType::U8 => Value::U8(src.u8()?),
        ValueType::I8 => Value::I8(src.u8()? as i8),
        ValueType::U16 => Value::U16(src.u16()?),
        ValueType::I16 => Value::I16(src.u16()? as i16),
        ValueType::U32 => Value::U32(src.u32()?),
        ValueType::I32 => Value::I32(src.u32()? as i32),
        ValueType::F32 => Value::F32(f32::from_bits(src.u32()?)),
        ValueType::U64 => Value::U64(src.u64()?),
        ValueType::I64 => Value::I64(src.u64()? as i64),
        ValueType::F64 => Value::F64(f64::from_bits(src.u64()?)),
        ValueType::Bool => {
            let offset = src.pos();
            match src.u8()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                value => return Err(GgufError::InvalidBool { offset, value }),
            }
        }
        ValueType::String => Value::String(src.string("string length", MAX_STRING_LEN)?),
        ValueType::Array => unreachable!("arrays are read by read_value"),
    })
}

/// Reads one value of type `ty`; `depth` is the number of enclosing arrays.
pub(crate) fn read_value<R: Read + Seek>(
    src: &mut Source<R>,
    ty: ValueType,
    opts: &ReadOptions,
    depth: u32,
) -> Result<Value, GgufError> {
    if ty != ValueType::Array {
        return read_scalar(src, ty);
    }
    let (elem_type, len) = read_array_header(src, depth + 1)?;
    let keep = if len <= opts.array_keep_whole {
        len
    } else {
        len.min(opts.array_preview as u64)
    };
    // `len` has been checked against the bytes left, and a preview is small; the
    // extra cap keeps a keep_all read of a huge array from reserving it all upfront.
    let mut items = Vec::with_capacity(keep.min(4096) as usize);
    for _ in 0..keep {
        items.push(read_value(src, elem_type, opts, depth + 1)?);
    }
    skip_values(src, elem_type, len - keep, depth + 1)?;
    Ok(Value::Array(ArrayValue {
        elem_type,
        len,
        items,
        truncated: keep < len,
    }))
}

/// Reads an array's element type and length and checks that the rest of the file
/// could hold that many elements, so no later loop or allocation is sized by a lie.
fn read_array_header<R: Read + Seek>(
    src: &mut Source<R>,
    depth: u32,
) -> Result<(ValueType, u64), GgufError> {
    if depth > MAX_ARRAY_DEPTH {
        return Err(GgufError::NestingTooDeep {
            offset: src.pos(),
            max: MAX_ARRAY_DEPTH,
        });
    }
    let elem_type = read_type(src)?;
    let len_offset = src.pos();
    let len = src.u64()?;
    if len > MAX_ARRAY_LEN {
        return Err(GgufError::TooLarge {
            offset: len_offset,
            what: "array length",
            value: len,
        });
    }
    // len <= 2^40 and min_size <= 12, so this cannot overflow.
    src.ensure(len * elem_type.min_size())?;
    Ok((elem_type, len))
}

/// Skips `count` values of type `ty` without storing them. Strings and nested
/// arrays still have their lengths read (there is no other way past them).
pub(crate) fn skip_values<R: Read + Seek>(
    src: &mut Source<R>,
    ty: ValueType,
    count: u64,
    depth: u32,
) -> Result<(), GgufError> {
    if let Some(size) = ty.fixed_size() {
        let offset = src.pos();
        let bytes = count.checked_mul(size).ok_or(GgufError::TooLarge {
            offset,
            what: "array byte size",
            value: count,
        })?;
        return src.skip(bytes);
    }
    for _ in 0..count {
        match ty {
            ValueType::String => src.skip_string("string length", MAX_STRING_LEN)?,
            _ => {
                let (elem_type, len) = read_array_header(src, depth + 1)?;
                skip_values(src, elem_type, len, depth + 1)?;
            }
        }
    }
    Ok(())
}

fn read_tensor_info<R: Read + Seek>(
    src: &mut Source<R>,
    alignment: u64,
) -> Result<TensorInfo, GgufError> {
    let name = src.string("tensor name length", MAX_KEY_LEN)?;
    let dims_offset = src.pos();
    let n_dims = src.u32()?;
    if n_dims > MAX_DIMS {
        return Err(GgufError::TooManyDims {
            offset: dims_offset,
            tensor: name,
            n_dims,
        });
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(src.u64()?);
    }
    // ggml stores element counts as int64_t: the product must fit there.
    let fits = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .is_some_and(|n| n <= i64::MAX as u64);
    if !fits {
        return Err(GgufError::DimsOverflow {
            offset: dims_offset,
            tensor: name,
        });
    }
    let ggml_type = GgmlType::from_raw(src.u32()?);
    let offset_pos = src.pos();
    let offset = src.u64()?;
    if offset % alignment != 0 {
        return Err(GgufError::MisalignedTensor {
            offset: offset_pos,
            tensor: name,
            tensor_offset: offset,
            alignment,
        });
    }
    Ok(TensorInfo {
        name,
        dims,
        ggml_type,
        offset,
    })
}

/// Reads `count` tensor infos (the section after the metadata), giving each to `each` with
/// its offset, and returns the absolute offset of the data section: the end of the infos,
/// aligned. The full read and the scan both walk the infos through here.
pub(crate) fn read_tensor_infos<R: Read + Seek>(
    src: &mut Source<R>,
    count: u64,
    alignment: u64,
    mut each: impl FnMut(u64, TensorInfo) -> Result<(), GgufError>,
) -> Result<u64, GgufError> {
    for _ in 0..count {
        let offset = src.pos();
        each(offset, read_tensor_info(src, alignment)?)?;
    }
    let end = src.pos();
    end.checked_next_multiple_of(alignment)
        .ok_or(GgufError::TooLarge {
            offset: end,
            what: "data offset",
            value: end,
        })
}

/// Checks `general.alignment`: an unsigned integer that is a nonzero power of two.
pub(crate) fn alignment_of(value: &Value, offset: u64) -> Result<u64, GgufError> {
    let Some(a) = value.as_u64() else {
        return Err(GgufError::WrongType {
            offset,
            key: "general.alignment".into(),
            expected: "unsigned integer",
            found: value.value_type(),
        });
    };
    if !a.is_power_of_two() {
        return Err(GgufError::BadAlignment { offset, value: a });
    }
    Ok(a)
}

/// Full read of a GGUF stream that starts at offset 0 of `r`.
pub fn read<R: Read + Seek>(r: R, opts: &ReadOptions) -> Result<GgufFile, GgufError> {
    let mut src = Source::new(r)?;
    let header = read_header(&mut src)?;

    let min_kv = 8 + 4 + 1; // key length, type, smallest value
    let mut kv = Vec::with_capacity(header.kv_count.min(src.remaining() / min_kv) as usize);
    let mut seen = HashSet::new();
    let mut alignment = DEFAULT_ALIGNMENT;
    for _ in 0..header.kv_count {
        let key = read_key(&mut src, &mut seen)?;
        let ty = read_type(&mut src)?;
        let value_offset = src.pos();
        let value = read_value(&mut src, ty, opts, 0)?;
        if key == "general.alignment" {
            alignment = alignment_of(&value, value_offset)?;
        }
        kv.push((key, value));
    }

    let min_tensor = 8 + 4 + 4 + 8; // name length, n_dims, type, offset
    let mut tensors =
        Vec::with_capacity(header.tensor_count.min(src.remaining() / min_tensor) as usize);
    let mut names = HashSet::new();
    let data_offset =
        read_tensor_infos(&mut src, header.tensor_count, alignment, |offset, info| {
            if !names.insert(info.name.clone()) {
                return Err(GgufError::DuplicateTensor {
                    offset,
                    name: info.name,
                });
            }
            tensors.push(info);
            Ok(())
        })?;
    Ok(GgufFile {
        version: header.version,
        kv,
        tensors,
        alignment,
        data_offset,
        file_size: src.len(),
    })
}

/// Full read of the file at `path`, reading sequentially through a 64 KiB buffer.
pub fn read_path(path: &Path, opts: &ReadOptions) -> Result<GgufFile, GgufError> {
    let file = File::open(path).map_err(|source| GgufError::Io { offset: 0, source })?;
    read(file, opts)
}
