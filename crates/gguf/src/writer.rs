//! A GGUF writer for fixtures: valid v2/v3 files with any metadata, tensor infos and
//! aligned tensor data — and, on request, deliberately broken ones (raw bytes, wrong
//! counts, explicit offsets) to test readers against.

use crate::limits::DEFAULT_ALIGNMENT;
use crate::model::TensorInfo;
use crate::reader::MAGIC;
use crate::types::GgmlType;
use crate::value::Value;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

/// Appends a u64-length-prefixed string.
pub fn encode_string(buf: &mut Vec<u8>, s: &[u8]) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s);
}

/// Appends a value's payload (no type tag). An array writes its element type, then
/// `len` verbatim, then its items: a test can declare more items than it provides.
pub fn encode_value(buf: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => buf.push(*x),
        Value::I8(x) => buf.push(*x as u8),
        Value::U16(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => buf.push(u8::from(*x)),
        Value::String(s) => encode_string(buf, s.as_bytes()),
        Value::U64(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Value::Array(a) => {
            buf.extend_from_slice(&a.elem_type.raw().to_le_bytes());
            buf.extend_from_slice(&a.len.to_le_bytes());
            for item in &a.items {
                encode_value(buf, item);
            }
        }
    }
}

/// Appends one metadata entry: key, type tag, payload.
pub fn encode_kv(buf: &mut Vec<u8>, key: &str, v: &Value) {
    encode_string(buf, key.as_bytes());
    buf.extend_from_slice(&v.value_type().raw().to_le_bytes());
    encode_value(buf, v);
}

/// Appends one tensor info as stored in the file.
pub fn encode_tensor_info(buf: &mut Vec<u8>, name: &str, dims: &[u64], raw_type: u32, offset: u64) {
    encode_string(buf, name.as_bytes());
    buf.extend_from_slice(&(dims.len() as u32).to_le_bytes());
    for d in dims {
        buf.extend_from_slice(&d.to_le_bytes());
    }
    buf.extend_from_slice(&raw_type.to_le_bytes());
    buf.extend_from_slice(&offset.to_le_bytes());
}

enum Tensor {
    /// Offset assigned by the writer; `data` is written unless header-only.
    Auto {
        name: String,
        dims: Vec<u64>,
        ggml_type: GgmlType,
        data: Data,
    },
    /// Written exactly as given, no data.
    Explicit {
        name: String,
        dims: Vec<u64>,
        raw_type: u32,
        offset: u64,
    },
    Raw(Vec<u8>),
}

enum Data {
    Bytes(Vec<u8>),
    Zeros(u64),
}

impl Data {
    fn len(&self) -> u64 {
        match self {
            Data::Bytes(b) => b.len() as u64,
            Data::Zeros(n) => *n,
        }
    }
}

/// Builds a GGUF file. Entries are written in the order they are added.
///
/// ```
/// use gguf::{writer::GgufWriter, GgmlType, ReadOptions};
/// let mut w = GgufWriter::new();
/// w.kv("general.architecture", "llama").kv("llama.context_length", 4096u32);
/// w.tensor("output_norm.weight", &[8], GgmlType::F32, vec![0; 32]);
/// let file = gguf::read(std::io::Cursor::new(w.to_bytes()), &ReadOptions::default()).unwrap();
/// assert_eq!(file.context_length(), Some(4096));
/// ```
pub struct GgufWriter {
    version: u32,
    kv: Vec<Vec<u8>>,
    tensors: Vec<Tensor>,
    alignment: u64,
    header_only: bool,
    kv_count: Option<u64>,
    tensor_count: Option<u64>,
    trailer: Vec<u8>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    /// A GGUF v3 writer.
    pub fn new() -> Self {
        Self::with_version(3)
    }

    /// Any version number, including unsupported ones (for tests).
    pub fn with_version(version: u32) -> Self {
        GgufWriter {
            version,
            kv: Vec::new(),
            tensors: Vec::new(),
            alignment: DEFAULT_ALIGNMENT,
            header_only: false,
            kv_count: None,
            tensor_count: None,
            trailer: Vec::new(),
        }
    }

    /// Adds a metadata entry.
    pub fn kv(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        let mut buf = Vec::new();
        encode_kv(&mut buf, key, &value.into());
        self.kv.push(buf);
        self
    }

    /// Adds a metadata entry with any type tag and payload bytes (e.g. an unknown
    /// type, a bool of 7, a string that is not UTF-8).
    pub fn kv_raw_value(&mut self, key: &[u8], raw_type: u32, payload: &[u8]) -> &mut Self {
        let mut buf = Vec::new();
        encode_string(&mut buf, key);
        buf.extend_from_slice(&raw_type.to_le_bytes());
        buf.extend_from_slice(payload);
        self.kv.push(buf);
        self
    }

    /// Adds a whole metadata entry as raw bytes; it counts as one entry.
    pub fn kv_raw(&mut self, entry: Vec<u8>) -> &mut Self {
        self.kv.push(entry);
        self
    }

    /// Writes `general.alignment` (u32) and pads to it. A value that is not a
    /// nonzero power of two is still written (to test readers) but padding then
    /// uses the default 32.
    pub fn alignment(&mut self, alignment: u32) -> &mut Self {
        self.kv("general.alignment", alignment);
        let a = u64::from(alignment);
        self.alignment = if a.is_power_of_two() {
            a
        } else {
            DEFAULT_ALIGNMENT
        };
        self
    }

    /// Adds a tensor with its data; the offset is assigned (aligned) by the writer.
    pub fn tensor(
        &mut self,
        name: &str,
        dims: &[u64],
        ggml_type: GgmlType,
        data: Vec<u8>,
    ) -> &mut Self {
        self.tensors.push(Tensor::Auto {
            name: name.to_string(),
            dims: dims.to_vec(),
            ggml_type,
            data: Data::Bytes(data),
        });
        self
    }

    /// Adds a tensor whose data is zeros of the size its type and shape need.
    pub fn tensor_zeros(&mut self, name: &str, dims: &[u64], ggml_type: GgmlType) -> &mut Self {
        let n = dims.iter().fold(1u64, |a, &d| a.saturating_mul(d));
        let size = ggml_type.data_size(n).unwrap_or(0);
        self.tensors.push(Tensor::Auto {
            name: name.to_string(),
            dims: dims.to_vec(),
            ggml_type,
            data: Data::Zeros(size),
        });
        self
    }

    /// Adds a tensor info with exactly these fields and no data (n_dims is
    /// `dims.len()`, so more than 4 dims, unknown types and unaligned offsets are
    /// all possible).
    pub fn tensor_info_raw(
        &mut self,
        name: &str,
        dims: &[u64],
        raw_type: u32,
        offset: u64,
    ) -> &mut Self {
        self.tensors.push(Tensor::Explicit {
            name: name.to_string(),
            dims: dims.to_vec(),
            raw_type,
            offset,
        });
        self
    }

    /// Adds a tensor info as raw bytes; it counts as one tensor.
    pub fn tensor_raw(&mut self, bytes: Vec<u8>) -> &mut Self {
        self.tensors.push(Tensor::Raw(bytes));
        self
    }

    /// Write the header (and padding) only, no tensor data: the file is as big as
    /// its metadata, and readers see [`crate::GgufFile::data_truncated`].
    pub fn header_only(&mut self, yes: bool) -> &mut Self {
        self.header_only = yes;
        self
    }

    /// Declare this many metadata entries in the header, whatever was added.
    pub fn kv_count_override(&mut self, n: u64) -> &mut Self {
        self.kv_count = Some(n);
        self
    }

    /// Declare this many tensors in the header, whatever was added.
    pub fn tensor_count_override(&mut self, n: u64) -> &mut Self {
        self.tensor_count = Some(n);
        self
    }

    /// Bytes appended after everything else.
    pub fn trailer(&mut self, bytes: &[u8]) -> &mut Self {
        self.trailer.extend_from_slice(bytes);
        self
    }

    /// The tensor infos as a reader will see them (auto-assigned offsets filled in).
    pub fn tensor_infos(&self) -> Vec<TensorInfo> {
        self.layout()
            .into_iter()
            .zip(&self.tensors)
            .filter_map(|(offset, t)| match t {
                Tensor::Auto {
                    name,
                    dims,
                    ggml_type,
                    ..
                } => Some(TensorInfo {
                    name: name.clone(),
                    dims: dims.clone(),
                    ggml_type: *ggml_type,
                    offset,
                }),
                Tensor::Explicit {
                    name,
                    dims,
                    raw_type,
                    offset,
                } => Some(TensorInfo {
                    name: name.clone(),
                    dims: dims.clone(),
                    ggml_type: GgmlType::from_raw(*raw_type),
                    offset: *offset,
                }),
                Tensor::Raw(_) => None,
            })
            .collect()
    }

    /// Offsets (relative to the data section) of every tensor, in order.
    fn layout(&self) -> Vec<u64> {
        let mut cursor = 0u64;
        self.tensors
            .iter()
            .map(|t| match t {
                Tensor::Auto { data, .. } => {
                    let offset = cursor.next_multiple_of(self.alignment);
                    cursor = offset + data.len();
                    offset
                }
                Tensor::Explicit { offset, .. } => *offset,
                Tensor::Raw(_) => 0,
            })
            .collect()
    }

    /// Everything up to and including the padding before tensor data.
    pub fn header_bytes(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(self.kv.iter().map(Vec::len).sum::<usize>() + 4096);
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&self.version.to_le_bytes());
        let n_tensors = self.tensor_count.unwrap_or(self.tensors.len() as u64);
        buf.extend_from_slice(&n_tensors.to_le_bytes());
        buf.extend_from_slice(&self.kv_count.unwrap_or(self.kv.len() as u64).to_le_bytes());
        for entry in &self.kv {
            buf.extend_from_slice(entry);
        }
        for (t, offset) in self.tensors.iter().zip(self.layout()) {
            match t {
                Tensor::Auto {
                    name,
                    dims,
                    ggml_type,
                    ..
                } => encode_tensor_info(&mut buf, name, dims, ggml_type.raw(), offset),
                Tensor::Explicit {
                    name,
                    dims,
                    raw_type,
                    offset,
                } => encode_tensor_info(&mut buf, name, dims, *raw_type, *offset),
                Tensor::Raw(bytes) => buf.extend_from_slice(bytes),
            }
        }
        let padded = (buf.len() as u64).next_multiple_of(self.alignment);
        buf.resize(padded as usize, 0);
        buf
    }

    /// Writes the whole file; returns the number of bytes written.
    pub fn write_to<W: Write>(&self, mut w: W) -> io::Result<u64> {
        let header = self.header_bytes();
        w.write_all(&header)?;
        let mut written = header.len() as u64;
        if !self.header_only {
            let mut data_written = 0u64;
            for (t, offset) in self.tensors.iter().zip(self.layout()) {
                let Tensor::Auto { data, .. } = t else {
                    continue;
                };
                io::copy(&mut io::repeat(0).take(offset - data_written), &mut w)?;
                match data {
                    Data::Bytes(b) => w.write_all(b)?,
                    Data::Zeros(n) => {
                        io::copy(&mut io::repeat(0).take(*n), &mut w)?;
                    }
                }
                data_written = offset + data.len();
            }
            written += data_written;
        }
        w.write_all(&self.trailer)?;
        written += self.trailer.len() as u64;
        w.flush()?;
        Ok(written)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        self.write_to(&mut buf)
            .expect("writing to a Vec cannot fail");
        buf
    }

    pub fn write_path(&self, path: &Path) -> io::Result<u64> {
        self.write_to(BufWriter::new(File::create(path)?))
    }
}
