//! llama.cpp's split-file naming: `<prefix>-00001-of-00003.gguf` (see `llama_split_path`).

/// A file name recognised as one part of a split model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitName<'a> {
    /// Everything before `-NNNNN-of-MMMMM.gguf`: the model's stem.
    pub prefix: &'a str,
    /// 1-based part number.
    pub index: u32,
    pub count: u32,
}

/// Parses a split-part file name; `None` for an ordinary file name.
pub fn parse(file_name: &str) -> Option<SplitName<'_>> {
    let stem = strip_gguf(file_name)?;
    // "-00001-of-00003" is 15 bytes: '-' 5 digits "-of-" 5 digits.
    let (prefix, tail) = stem.split_at_checked(stem.len().checked_sub(15)?)?;
    // Work on bytes: a multi-byte character in the tail must not land us inside a char.
    let bytes = tail.as_bytes();
    if bytes[0] != b'-' || &bytes[6..10] != b"-of-" {
        return None;
    }
    let number = |digits: &[u8]| -> Option<u32> {
        digits.iter().try_fold(0u32, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    let index = number(&bytes[1..6])?;
    let count = number(&bytes[10..15])?;
    if prefix.is_empty() || index == 0 || count == 0 || index > count {
        return None;
    }
    Some(SplitName {
        prefix,
        index,
        count,
    })
}

/// The file name without a (case-insensitive) `.gguf` extension, if it has one.
pub fn strip_gguf(file_name: &str) -> Option<&str> {
    let cut = file_name.len().checked_sub(5)?;
    let (stem, ext) = file_name.split_at_checked(cut)?;
    ext.eq_ignore_ascii_case(".gguf").then_some(stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_llama_split_names() {
        let s = parse("Qwen2.5-7B-Instruct-Q4_K_M-00002-of-00003.gguf").unwrap();
        assert_eq!(s.prefix, "Qwen2.5-7B-Instruct-Q4_K_M");
        assert_eq!((s.index, s.count), (2, 3));
    }

    #[test]
    fn rejects_ordinary_and_malformed_names() {
        for name in [
            "model.gguf",
            "model-00001-of-00003.bin",
            "-00001-of-00003.gguf",
            "m-00004-of-00003.gguf",
            "m-00000-of-00003.gguf",
            "m-0000a-of-00003.gguf",
            "m-00001_of-00003.gguf",
            "m-00001-of-00003.gguf.part",
            "é-00001-of-0000é.gguf",
            "",
        ] {
            assert_eq!(parse(name), None, "{name}");
        }
    }

    #[test]
    fn strips_extension_case_insensitively() {
        assert_eq!(strip_gguf("a.GGUF"), Some("a"));
        assert_eq!(strip_gguf("a.gguf.part"), None);
        assert_eq!(strip_gguf("ab"), None);
    }
}
