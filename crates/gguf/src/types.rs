//! ggml tensor types (`ggml_type`) and llama.cpp model file types (`llama_ftype`).
//!
//! Numbers and block geometry follow llama.cpp's `ggml.h`, `ggml-common.h` and
//! `llama.h`. Values that llama.cpp removed from GGUF files, and values from the
//! future, map to `Unknown(raw)` so a newer file never makes us panic.

use serde::{Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;

macro_rules! ggml_types {
    ($( $variant:ident = $raw:literal, $name:literal, $block:literal, $size:literal; )*) => {
        /// A ggml tensor element type, as stored in a GGUF tensor info.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(non_camel_case_types)]
        pub enum GgmlType {
            $( $variant, )*
            /// A value this crate does not know (removed from GGUF, or newer than us).
            Unknown(u32),
        }

        impl GgmlType {
            /// Every known type, in numeric order.
            pub const ALL: &'static [GgmlType] = &[$( GgmlType::$variant, )*];

            /// Maps the raw `ggml_type` number; unknown numbers become `Unknown(raw)`.
            pub fn from_raw(raw: u32) -> Self {
                match raw {
                    $( $raw => GgmlType::$variant, )*
                    other => GgmlType::Unknown(other),
                }
            }

            /// The raw `ggml_type` number.
            pub fn raw(self) -> u32 {
                match self {
                    $( GgmlType::$variant => $raw, )*
                    GgmlType::Unknown(raw) => raw,
                }
            }

            /// Name as llama.cpp and the `gguf` Python package print it (e.g. `Q4_K`),
            /// or `unknown(N)`.
            pub fn name(self) -> Cow<'static, str> {
                match self {
                    $( GgmlType::$variant => Cow::Borrowed($name), )*
                    GgmlType::Unknown(raw) => Cow::Owned(format!("unknown({raw})")),
                }
            }

            /// Number of elements in one block (1 for plain types).
            pub fn block_size(self) -> Option<u64> {
                match self {
                    $( GgmlType::$variant => Some($block), )*
                    GgmlType::Unknown(_) => None,
                }
            }

            /// Size in bytes of one block.
            pub fn type_size(self) -> Option<u64> {
                match self {
                    $( GgmlType::$variant => Some($size), )*
                    GgmlType::Unknown(_) => None,
                }
            }
        }
    };
}

ggml_types! {
    F32 = 0, "F32", 1, 4;
    F16 = 1, "F16", 1, 2;
    Q4_0 = 2, "Q4_0", 32, 18;
    Q4_1 = 3, "Q4_1", 32, 20;
    // 4 (Q4_2) and 5 (Q4_3) were removed from ggml.
    Q5_0 = 6, "Q5_0", 32, 22;
    Q5_1 = 7, "Q5_1", 32, 24;
    Q8_0 = 8, "Q8_0", 32, 34;
    // ggml's block_q8_1 holds two f16 (d, s) + 32 int8 = 36 bytes.
    Q8_1 = 9, "Q8_1", 32, 36;
    Q2_K = 10, "Q2_K", 256, 84;
    Q3_K = 11, "Q3_K", 256, 110;
    Q4_K = 12, "Q4_K", 256, 144;
    Q5_K = 13, "Q5_K", 256, 176;
    Q6_K = 14, "Q6_K", 256, 210;
    Q8_K = 15, "Q8_K", 256, 292;
    IQ2_XXS = 16, "IQ2_XXS", 256, 66;
    IQ2_XS = 17, "IQ2_XS", 256, 74;
    IQ3_XXS = 18, "IQ3_XXS", 256, 98;
    IQ1_S = 19, "IQ1_S", 256, 50;
    IQ4_NL = 20, "IQ4_NL", 32, 18;
    IQ3_S = 21, "IQ3_S", 256, 110;
    IQ2_S = 22, "IQ2_S", 256, 82;
    IQ4_XS = 23, "IQ4_XS", 256, 136;
    I8 = 24, "I8", 1, 1;
    I16 = 25, "I16", 1, 2;
    I32 = 26, "I32", 1, 4;
    I64 = 27, "I64", 1, 8;
    F64 = 28, "F64", 1, 8;
    IQ1_M = 29, "IQ1_M", 256, 56;
    BF16 = 30, "BF16", 1, 2;
    // 31..=33 (Q4_0_4_4, Q4_0_4_8, Q4_0_8_8) were removed from GGUF files.
    TQ1_0 = 34, "TQ1_0", 256, 54;
    TQ2_0 = 35, "TQ2_0", 256, 66;
    // 36..=38 (IQ4_NL_4_4, IQ4_NL_4_8, IQ4_NL_8_8) were removed from GGUF files.
    MXFP4 = 39, "MXFP4", 32, 17;
    // Newer llama.cpp (2025-26): four UE4M3 scales + 32 bytes of E2M1 per 64 weights.
    NVFP4 = 40, "NVFP4", 64, 36;
    Q1_0 = 41, "Q1_0", 128, 18;
    Q2_0 = 42, "Q2_0", 64, 18;
}

impl GgmlType {
    /// Average storage bits per weight, e.g. 4.5 for Q4_0.
    pub fn bits_per_weight(self) -> Option<f64> {
        Some(self.type_size()? as f64 * 8.0 / self.block_size()? as f64)
    }

    /// Bytes needed for `n_elements` elements of this type. A partial last block
    /// counts as a whole one. `None` for unknown types or on overflow.
    pub fn data_size(self, n_elements: u64) -> Option<u64> {
        let blocks = n_elements.div_ceil(self.block_size()?);
        blocks.checked_mul(self.type_size()?)
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for GgmlType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// Name of a llama.cpp `llama_ftype` as stored in `general.file_type`
/// (e.g. 15 → `Q4_K_M`). Removed values keep their historical names so old
/// files still say what they are; `None` for numbers llama.cpp never defined.
pub fn file_type_name(ft: u32) -> Option<&'static str> {
    Some(match ft {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        4 => "Q4_1_SOME_F16",
        5 => "Q4_2", // removed
        6 => "Q4_3", // removed
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        33 => "Q4_0_4_4", // removed: runtime repacking replaced it
        34 => "Q4_0_4_8", // removed
        35 => "Q4_0_8_8", // removed
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        39 => "NVFP4",
        40 => "Q1_0",
        41 => "Q2_0",
        // LLAMA_FTYPE_GUESSED: written by tools that did not know the real type.
        1024 => "GUESSED",
        _ => return None,
    })
}

/// Like [`file_type_name`], but never fails: unknown values print as `unknown(N)`.
pub fn file_type_label(ft: u32) -> String {
    match file_type_name(ft) {
        Some(name) => name.to_string(),
        None => format!("unknown({ft})"),
    }
}

/// The quantization a file name announces, as hubs name GGUF files
/// (`Llama-3.2-1B-Instruct-Q4_K_M.gguf`, `model.q8_0.gguf`, `m-UD-Q4_K_XL-00001-of-00002.gguf`),
/// upper-cased; `None` when no dash- or dot-separated part of the name is one.
///
/// A known [`file_type_name`] wins (also at the end of an `_`-joined part); otherwise a
/// part shaped like one (`Q…`, `IQ…`, `TQ…` and a digit: the hubs' `Q4_K_XL` and the like).
pub fn quantization_in_name(file_name: &str) -> Option<String> {
    let stem = crate::split::strip_gguf(file_name).unwrap_or(file_name);
    let stem = crate::split::parse(file_name).map_or(stem, |s| s.prefix);
    let mut known: Vec<&str> = (0..64)
        .filter_map(file_type_name)
        .filter(|n| !n.contains("SOME"))
        .collect();
    known.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let parts: Vec<String> = stem
        .rsplit(['-', '.'])
        .map(|p| p.to_ascii_uppercase())
        .collect();
    for part in &parts {
        for name in &known {
            if part == name
                || part
                    .strip_suffix(name)
                    .is_some_and(|head| head.ends_with('_'))
            {
                return Some(name.to_string());
            }
        }
    }
    parts.into_iter().find(|p| {
        let rest = p
            .strip_prefix("IQ")
            .or_else(|| p.strip_prefix("TQ"))
            .or_else(|| p.strip_prefix('Q'));
        rest.is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_round_trips_for_every_value() {
        for raw in 0..200u32 {
            assert_eq!(GgmlType::from_raw(raw).raw(), raw);
        }
        assert_eq!(GgmlType::from_raw(u32::MAX), GgmlType::Unknown(u32::MAX));
    }

    #[test]
    fn removed_types_are_unknown() {
        for raw in [4, 5, 31, 32, 33, 36, 37, 38] {
            assert_eq!(GgmlType::from_raw(raw), GgmlType::Unknown(raw), "{raw}");
            assert_eq!(GgmlType::from_raw(raw).name(), format!("unknown({raw})"));
            assert_eq!(GgmlType::from_raw(raw).block_size(), None);
        }
    }

    #[test]
    fn known_table() {
        let expect: &[(u32, &str, u64, u64)] = &[
            (0, "F32", 1, 4),
            (1, "F16", 1, 2),
            (2, "Q4_0", 32, 18),
            (3, "Q4_1", 32, 20),
            (6, "Q5_0", 32, 22),
            (7, "Q5_1", 32, 24),
            (8, "Q8_0", 32, 34),
            (9, "Q8_1", 32, 36),
            (10, "Q2_K", 256, 84),
            (11, "Q3_K", 256, 110),
            (12, "Q4_K", 256, 144),
            (13, "Q5_K", 256, 176),
            (14, "Q6_K", 256, 210),
            (15, "Q8_K", 256, 292),
            (16, "IQ2_XXS", 256, 66),
            (17, "IQ2_XS", 256, 74),
            (18, "IQ3_XXS", 256, 98),
            (19, "IQ1_S", 256, 50),
            (20, "IQ4_NL", 32, 18),
            (21, "IQ3_S", 256, 110),
            (22, "IQ2_S", 256, 82),
            (23, "IQ4_XS", 256, 136),
            (24, "I8", 1, 1),
            (25, "I16", 1, 2),
            (26, "I32", 1, 4),
            (27, "I64", 1, 8),
            (28, "F64", 1, 8),
            (29, "IQ1_M", 256, 56),
            (30, "BF16", 1, 2),
            (34, "TQ1_0", 256, 54),
            (35, "TQ2_0", 256, 66),
            (39, "MXFP4", 32, 17),
            (40, "NVFP4", 64, 36),
            (41, "Q1_0", 128, 18),
            (42, "Q2_0", 64, 18),
        ];
        assert_eq!(expect.len(), GgmlType::ALL.len());
        for &(raw, name, block, size) in expect {
            let t = GgmlType::from_raw(raw);
            assert_eq!(t.name(), name);
            assert_eq!(t.block_size(), Some(block), "{name}");
            assert_eq!(t.type_size(), Some(size), "{name}");
        }
    }

    #[test]
    fn bits_per_weight() {
        assert_eq!(GgmlType::F32.bits_per_weight(), Some(32.0));
        assert_eq!(GgmlType::Q4_0.bits_per_weight(), Some(4.5));
        assert_eq!(GgmlType::Q4_K.bits_per_weight(), Some(4.5));
        assert_eq!(GgmlType::Q6_K.bits_per_weight(), Some(6.5625));
        assert_eq!(GgmlType::MXFP4.bits_per_weight(), Some(4.25));
        assert_eq!(GgmlType::Unknown(99).bits_per_weight(), None);
    }

    #[test]
    fn data_size_rounds_partial_blocks_and_checks_overflow() {
        assert_eq!(GgmlType::Q4_0.data_size(64), Some(36));
        assert_eq!(GgmlType::Q4_0.data_size(33), Some(36));
        assert_eq!(GgmlType::F32.data_size(u64::MAX), None);
        assert_eq!(GgmlType::Unknown(77).data_size(1), None);
    }

    #[test]
    fn file_types() {
        let expect = [
            (0, "F32"),
            (1, "F16"),
            (2, "Q4_0"),
            (3, "Q4_1"),
            (4, "Q4_1_SOME_F16"),
            (7, "Q8_0"),
            (8, "Q5_0"),
            (9, "Q5_1"),
            (10, "Q2_K"),
            (11, "Q3_K_S"),
            (12, "Q3_K_M"),
            (13, "Q3_K_L"),
            (14, "Q4_K_S"),
            (15, "Q4_K_M"),
            (16, "Q5_K_S"),
            (17, "Q5_K_M"),
            (18, "Q6_K"),
            (19, "IQ2_XXS"),
            (20, "IQ2_XS"),
            (21, "Q2_K_S"),
            (22, "IQ3_XS"),
            (23, "IQ3_XXS"),
            (24, "IQ1_S"),
            (25, "IQ4_NL"),
            (26, "IQ3_S"),
            (27, "IQ3_M"),
            (28, "IQ2_S"),
            (29, "IQ2_M"),
            (30, "IQ4_XS"),
            (31, "IQ1_M"),
            (32, "BF16"),
            (36, "TQ1_0"),
            (37, "TQ2_0"),
            (38, "MXFP4_MOE"),
        ];
        for (ft, name) in expect {
            assert_eq!(file_type_name(ft), Some(name), "{ft}");
        }
        assert_eq!(file_type_name(42), None);
        assert_eq!(file_type_label(42), "unknown(42)");
        assert_eq!(file_type_label(u32::MAX), format!("unknown({})", u32::MAX));
    }

    #[test]
    fn quantization_is_read_from_hub_file_names() {
        for (name, want) in [
            ("Llama-3.2-1B-Instruct-Q4_K_M.gguf", Some("Q4_K_M")),
            (
                "qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf",
                Some("Q4_K_M"),
            ),
            ("model.Q8_0.gguf", Some("Q8_0")),
            ("tinyllama_q5_k_s.gguf", Some("Q5_K_S")),
            ("m-Q4_0_4_4.gguf", Some("Q4_0_4_4")),
            ("mmproj-model-f16.gguf", Some("F16")),
            ("gemma-3-27b-it-BF16.gguf", Some("BF16")),
            ("Qwen3-30B-A3B-UD-Q4_K_XL.gguf", Some("Q4_K_XL")),
            ("model.gguf", None),
            ("Qwen3-4B.gguf", None),
        ] {
            assert_eq!(quantization_in_name(name).as_deref(), want, "{name}");
        }
    }
}
