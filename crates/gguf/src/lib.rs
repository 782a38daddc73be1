//! Pure-Rust reader and writer for GGUF model files (llama.cpp's format).
//!
//! Two ways to read:
//! - [`scan_path`] / [`scan`]: the few facts a model list needs (architecture, name,
//!   quantization, context length), reading only the start of the file.
//! - [`read_path`] / [`read`]: every metadata entry and tensor info, with big arrays
//!   kept as previews ([`ReadOptions`]).
//!
//! Both treat the file as hostile: every failure is a [`GgufError`] naming the byte
//! offset, nothing panics, and no allocation is sized by an unchecked header field.
//! [`writer::GgufWriter`] and [`fixtures`] build files for tests.

mod error;
pub mod fixtures;
pub mod limits;
mod model;
mod reader;
mod scan;
mod source;
pub mod split;
mod types;
mod value;
pub mod writer;

pub use error::GgufError;
pub use limits::{DEFAULT_ALIGNMENT, MAX_ARRAY_DEPTH};
pub use model::{GgufFile, ReadOptions, ScanInfo, TensorInfo};
pub use reader::{read, read_path};
pub use scan::{scan, scan_path};
pub use types::{GgmlType, file_type_label, file_type_name, quantization_in_name};
pub use value::{ArrayValue, Value, ValueType};
