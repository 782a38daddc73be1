//! Metadata values: the 13 GGUF value types, arrays (possibly only previewed), and
//! how they print (`Display`, for a CLI) and serialize (JSON, for tools).

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use std::fmt;

/// A GGUF metadata value type tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl ValueType {
    /// All types, in tag order.
    pub const ALL: [ValueType; 13] = [
        ValueType::U8,
        ValueType::I8,
        ValueType::U16,
        ValueType::I16,
        ValueType::U32,
        ValueType::I32,
        ValueType::F32,
        ValueType::Bool,
        ValueType::String,
        ValueType::Array,
        ValueType::U64,
        ValueType::I64,
        ValueType::F64,
    ];

    /// Maps the raw tag; `None` for tags outside 0..=12.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Self::ALL.get(raw as usize).copied()
    }

    /// The raw tag as stored in the file.
    pub fn raw(self) -> u32 {
        match self {
            ValueType::U8 => 0,
            ValueType::I8 => 1,
            ValueType::U16 => 2,
            ValueType::I16 => 3,
            ValueType::U32 => 4,
            ValueType::I32 => 5,
            ValueType::F32 => 6,
            ValueType::Bool => 7,
            ValueType::String => 8,
            ValueType::Array => 9,
            ValueType::U64 => 10,
            ValueType::I64 => 11,
            ValueType::F64 => 12,
        }
    }

    /// The `gguf` Python package's `GGUFValueType` name, lowercased.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::U8 => "uint8",
            ValueType::I8 => "int8",
            ValueType::U16 => "uint16",
            ValueType::I16 => "int16",
            ValueType::U32 => "uint32",
            ValueType::I32 => "int32",
            ValueType::F32 => "float32",
            ValueType::Bool => "bool",
            ValueType::String => "string",
            ValueType::Array => "array",
            ValueType::U64 => "uint64",
            ValueType::I64 => "int64",
            ValueType::F64 => "float64",
        }
    }

    /// Payload size for fixed-size types; `None` for strings and arrays.
    pub fn fixed_size(self) -> Option<u64> {
        Some(match self {
            ValueType::U8 | ValueType::I8 | ValueType::Bool => 1,
            ValueType::U16 | ValueType::I16 => 2,
            ValueType::U32 | ValueType::I32 | ValueType::F32 => 4,
            ValueType::U64 | ValueType::I64 | ValueType::F64 => 8,
            ValueType::String | ValueType::Array => return None,
        })
    }

    /// The fewest bytes one value of this type can take in a file: used to reject
    /// counts that the rest of the file could not possibly hold.
    pub(crate) fn min_size(self) -> u64 {
        match self {
            ValueType::String => 8,    // u64 length
            ValueType::Array => 4 + 8, // element type + u64 count
            other => other.fixed_size().unwrap_or(1),
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for ValueType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(ArrayValue),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// An array value. Big arrays (tokenizer vocabularies) are read as a preview:
/// `len` is the real length, `items` only the first few, and `truncated` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayValue {
    pub elem_type: ValueType,
    pub len: u64,
    pub items: Vec<Value>,
    pub truncated: bool,
}

impl ArrayValue {
    /// A complete array. Items should all be of `elem_type` (the writer checks).
    pub fn new(elem_type: ValueType, items: Vec<Value>) -> Self {
        ArrayValue {
            elem_type,
            len: items.len() as u64,
            items,
            truncated: false,
        }
    }

    /// Whether the array was read whole.
    pub fn is_complete(&self) -> bool {
        !self.truncated && self.items.len() as u64 == self.len
    }
}

impl Value {
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// Any integer type that holds a non-negative value, widened to u64. Writers
    /// disagree on widths (u32 vs u64 context lengths), so readers should not care.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any integer type whose value fits in an i64.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => i64::try_from(v).ok(),
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            _ => None,
        }
    }

    /// Any numeric type as f64 (integers may lose precision past 2^53).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            Value::U64(v) => Some(v as f64),
            Value::I64(v) => Some(v as f64),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&ArrayValue> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// A complete string array, e.g. for building test fixtures.
    pub fn string_array<I, S>(items: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let items = items.into_iter().map(|s| Value::String(s.into())).collect();
        Value::Array(ArrayValue::new(ValueType::String, items))
    }

    /// A complete array of values that all have type `elem_type`.
    pub fn array(elem_type: ValueType, items: Vec<Value>) -> Value {
        Value::Array(ArrayValue::new(elem_type, items))
    }
}

macro_rules! from_impls {
    ($($t:ty => $v:ident),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::$v(v) }
        }
    )*};
}
from_impls!(u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32,
    f32 => F32, bool => Bool, String => String, ArrayValue => Array, u64 => U64,
    i64 => I64, f64 => F64);

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_string())
    }
}

impl fmt::Display for Value {
    /// Scalars print plainly and a top-level string prints raw (chat templates stay
    /// readable); inside arrays strings are quoted so `["a, b"]` is unambiguous, and a
    /// previewed array ends with `… (N total)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) => f.write_str(s),
            other => fmt_nested(other, f),
        }
    }
}

fn fmt_nested(v: &Value, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match v {
        Value::U8(x) => write!(f, "{x}"),
        Value::I8(x) => write!(f, "{x}"),
        Value::U16(x) => write!(f, "{x}"),
        Value::I16(x) => write!(f, "{x}"),
        Value::U32(x) => write!(f, "{x}"),
        Value::I32(x) => write!(f, "{x}"),
        Value::F32(x) => write!(f, "{x}"),
        Value::Bool(x) => write!(f, "{x}"),
        Value::String(s) => write!(f, "{s:?}"),
        Value::U64(x) => write!(f, "{x}"),
        Value::I64(x) => write!(f, "{x}"),
        Value::F64(x) => write!(f, "{x}"),
        Value::Array(a) => {
            f.write_str("[")?;
            for (i, item) in a.items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                fmt_nested(item, f)?;
            }
            if a.items.len() as u64 != a.len || a.truncated {
                if !a.items.is_empty() {
                    f.write_str(", ")?;
                }
                write!(f, "… ({} {} total)", a.len, a.elem_type)?;
            }
            f.write_str("]")
        }
    }
}

impl Serialize for Value {
    /// Plain JSON scalars; complete arrays as JSON arrays; previewed arrays as
    /// `{"type": "string", "len": 32000, "preview": [...]}`. Non-finite floats become
    /// `null` (serde_json's rule), since JSON has no NaN.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::U8(v) => s.serialize_u8(*v),
            Value::I8(v) => s.serialize_i8(*v),
            Value::U16(v) => s.serialize_u16(*v),
            Value::I16(v) => s.serialize_i16(*v),
            Value::U32(v) => s.serialize_u32(*v),
            Value::I32(v) => s.serialize_i32(*v),
            Value::F32(v) => s.serialize_f32(*v),
            Value::Bool(v) => s.serialize_bool(*v),
            Value::String(v) => s.serialize_str(v),
            Value::U64(v) => s.serialize_u64(*v),
            Value::I64(v) => s.serialize_i64(*v),
            Value::F64(v) => s.serialize_f64(*v),
            Value::Array(a) => a.serialize(s),
        }
    }
}

impl Serialize for ArrayValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.is_complete() {
            let mut seq = s.serialize_seq(Some(self.items.len()))?;
            for item in &self.items {
                seq.serialize_element(item)?;
            }
            seq.end()
        } else {
            let mut map = s.serialize_map(Some(3))?;
            map.serialize_entry("type", &self.elem_type)?;
            map.serialize_entry("len", &self.len)?;
            map.serialize_entry("preview", &self.items)?;
            map.end()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_tags_round_trip() {
        for (i, t) in ValueType::ALL.iter().enumerate() {
            assert_eq!(t.raw(), i as u32);
            assert_eq!(ValueType::from_raw(i as u32), Some(*t));
        }
        assert_eq!(ValueType::from_raw(13), None);
        assert_eq!(ValueType::F32.name(), "float32");
        assert_eq!(ValueType::U64.name(), "uint64");
    }

    #[test]
    fn as_u64_accepts_every_nonnegative_integer() {
        assert_eq!(Value::U8(3).as_u64(), Some(3));
        assert_eq!(Value::I8(3).as_u64(), Some(3));
        assert_eq!(Value::I8(-3).as_u64(), None);
        assert_eq!(Value::U16(3).as_u64(), Some(3));
        assert_eq!(Value::I16(3).as_u64(), Some(3));
        assert_eq!(Value::U32(3).as_u64(), Some(3));
        assert_eq!(Value::I32(3).as_u64(), Some(3));
        assert_eq!(Value::U64(u64::MAX).as_u64(), Some(u64::MAX));
        assert_eq!(Value::I64(-1).as_u64(), None);
        assert_eq!(Value::F32(3.0).as_u64(), None);
        assert_eq!(Value::from("3").as_u64(), None);
    }

    #[test]
    fn display() {
        assert_eq!(Value::U32(7).to_string(), "7");
        assert_eq!(Value::F32(0.5).to_string(), "0.5");
        assert_eq!(Value::from("a\nb").to_string(), "a\nb");
        assert_eq!(Value::string_array(["a", "b"]).to_string(), r#"["a", "b"]"#);
        let preview = Value::Array(ArrayValue {
            elem_type: ValueType::I32,
            len: 1000,
            items: vec![Value::I32(1), Value::I32(2)],
            truncated: true,
        });
        assert_eq!(preview.to_string(), "[1, 2, … (1000 int32 total)]");
        let nested = Value::array(
            ValueType::Array,
            vec![Value::array(ValueType::U8, vec![Value::U8(1)])],
        );
        assert_eq!(nested.to_string(), "[[1]]");
    }
}
