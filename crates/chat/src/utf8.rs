//! Token bytes to text.
//!
//! A token's bytes can end in the middle of a multi-byte UTF-8 character
//! (emoji and CJK are often split over two or three tokens). [`Utf8Decoder`]
//! keeps such an unfinished character until its remaining bytes arrive, so the
//! text handed to the stop matcher and the tool-call parser is always whole
//! characters.

/// Turns a stream of byte pieces into text, one complete character at a time.
#[derive(Debug, Clone, Default)]
pub struct Utf8Decoder {
    pending: Vec<u8>,
}

impl Utf8Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes; returns the text that is complete so far. Bytes that can
    /// never be valid UTF-8 come out as U+FFFD.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(text) => {
                    out.push_str(text);
                    self.pending.clear();
                    return out;
                }
                Err(err) => {
                    let valid = err.valid_up_to();
                    out.push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
                    match err.error_len() {
                        // Invalid bytes: replace them and go on after them.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                        // An unfinished character at the end: wait for more.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                    }
                }
            }
        }
    }

    /// Ends the stream: an unfinished character left over becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_split_characters() {
        let bytes = "a🙂é".as_bytes();
        let mut decoder = Utf8Decoder::new();
        let mut text = String::new();
        for byte in bytes {
            text.push_str(&decoder.push(&[*byte]));
        }
        text.push_str(&decoder.finish());
        assert_eq!(text, "a🙂é");
        assert_eq!(decoder.push(&bytes[..2]), "a");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut decoder = Utf8Decoder::new();
        assert_eq!(decoder.push(b"a\xffb\xf0\x9f"), "a\u{fffd}b");
        assert_eq!(decoder.finish(), "\u{fffd}");
    }
}
