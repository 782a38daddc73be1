//! The one error type of this crate.
//!
//! Every variant that comes from the bytes of a file names the byte offset where the
//! problem was found, so a user can look at the file with a hex dump and a bug report
//! says where to look.

use crate::value::ValueType;
use std::io;

/// Everything that can go wrong while reading a GGUF file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    /// The operating system failed to read (not an early end of file: that is `Truncated`).
    #[error("I/O error at byte {offset}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: io::Error,
    },
    /// The file ends before a field it declares.
    #[error("truncated file at byte {offset}: needed {needed} more bytes")]
    Truncated { offset: u64, needed: u64 },
    /// The first four bytes are not `GGUF`.
    #[error("not a GGUF file: magic at byte 0 is {found:02x?}, expected \"GGUF\"")]
    BadMagic { found: [u8; 4] },
    /// The version field reads byte-swapped: the file was written big-endian.
    #[error(
        "big-endian GGUF file (version field at byte 4 is byte-swapped); only little-endian is supported"
    )]
    BigEndian,
    /// GGUF v1 (different integer widths) or a version from the future.
    #[error("unsupported GGUF version {version} at byte 4 (supported: 2 and 3)")]
    UnsupportedVersion { version: u32 },
    /// A count or length in the header is beyond any sane limit.
    #[error("{what} at byte {offset} is too large: {value}")]
    TooLarge {
        offset: u64,
        what: &'static str,
        value: u64,
    },
    /// A metadata value type tag outside 0..=12.
    #[error("unknown metadata value type {raw} at byte {offset}")]
    UnknownValueType { offset: u64, raw: u32 },
    /// A key, string value or tensor name that is not UTF-8.
    #[error("invalid UTF-8 in string at byte {offset}")]
    InvalidUtf8 { offset: u64 },
    /// A bool stored as something other than 0 or 1.
    #[error("invalid bool value {value} at byte {offset} (must be 0 or 1)")]
    InvalidBool { offset: u64, value: u8 },
    /// A metadata key of length 0 (the spec requires a dotted name).
    #[error("empty metadata key at byte {offset}")]
    EmptyKey { offset: u64 },
    /// The same metadata key appears twice (llama.cpp refuses such files too).
    #[error("duplicate metadata key {key:?} at byte {offset}")]
    DuplicateKey { offset: u64, key: String },
    /// Two tensor infos with the same name.
    #[error("duplicate tensor name {name:?} at byte {offset}")]
    DuplicateTensor { offset: u64, name: String },
    /// Arrays nested deeper than [`crate::MAX_ARRAY_DEPTH`].
    #[error("arrays nested deeper than {max} levels at byte {offset}")]
    NestingTooDeep { offset: u64, max: u32 },
    /// A tensor with more than `GGML_MAX_DIMS` (4) dimensions.
    #[error("tensor {tensor:?} at byte {offset} has {n_dims} dimensions (at most 4 allowed)")]
    TooManyDims {
        offset: u64,
        tensor: String,
        n_dims: u32,
    },
    /// A tensor whose element count does not fit in an `i64` (what ggml uses).
    #[error("tensor {tensor:?} at byte {offset}: element count overflows")]
    DimsOverflow { offset: u64, tensor: String },
    /// A tensor data offset that is not a multiple of the file's alignment.
    #[error(
        "tensor {tensor:?} at byte {offset}: data offset {tensor_offset} is not a multiple of the alignment {alignment}"
    )]
    MisalignedTensor {
        offset: u64,
        tensor: String,
        tensor_offset: u64,
        alignment: u64,
    },
    /// `general.alignment` is 0 or not a power of two.
    #[error("general.alignment at byte {offset} is {value}; it must be a nonzero power of two")]
    BadAlignment { offset: u64, value: u64 },
    /// A well-known key (such as `general.alignment`) has a value of the wrong type.
    #[error("metadata key {key:?} at byte {offset} has type {found}, expected {expected}")]
    WrongType {
        offset: u64,
        key: String,
        expected: &'static str,
        found: ValueType,
    },
}

impl GgufError {
    /// The byte offset the error refers to, where there is one.
    pub fn offset(&self) -> Option<u64> {
        use GgufError::*;
        match self {
            Io { offset, .. }
            | Truncated { offset, .. }
            | TooLarge { offset, .. }
            | UnknownValueType { offset, .. }
            | InvalidUtf8 { offset }
            | EmptyKey { offset }
            | InvalidBool { offset, .. }
            | DuplicateKey { offset, .. }
            | DuplicateTensor { offset, .. }
            | NestingTooDeep { offset, .. }
            | TooManyDims { offset, .. }
            | DimsOverflow { offset, .. }
            | MisalignedTensor { offset, .. }
            | BadAlignment { offset, .. }
            | WrongType { offset, .. } => Some(*offset),
            BadMagic { .. } => Some(0),
            BigEndian | UnsupportedVersion { .. } => Some(4),
        }
    }

    /// True when the file simply ends too early (e.g. an interrupted download).
    pub fn is_truncated(&self) -> bool {
        matches!(self, GgufError::Truncated { .. })
    }
}
