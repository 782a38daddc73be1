//! Text assembly for the token stream: UTF-8 pieces split across tokens are buffered until
//! complete ([`Utf8Buffer`]), and stop strings are matched across token boundaries with any
//! partial prefix held back until it is resolved ([`StopMatcher`]).
//!
//! The `chat` crate is meant to own a shared `StopMatcher`; until it exists the engine keeps
//! this small one.

/// Joins token pieces (bytes) into valid UTF-8 text, holding back an incomplete trailing
/// character until the next piece completes it. Invalid bytes become U+FFFD.
#[derive(Debug, Default, Clone)]
pub struct Utf8Buffer {
    pending: Vec<u8>,
}

impl Utf8Buffer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Append `bytes`; push the complete text to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut String) {
        if self.pending.is_empty() {
            // Fast path: most pieces are whole characters.
            match std::str::from_utf8(bytes) {
                Ok(s) => {
                    out.push_str(s);
                    return;
                }
                Err(_) => self.pending.extend_from_slice(bytes),
            }
        } else {
            self.pending.extend_from_slice(bytes);
        }
        self.drain(out, false);
    }

    /// Push whatever is left. An incomplete character at the very end (generation stopped
    /// between the tokens of one character) is dropped: it is not text yet, and a U+FFFD
    /// in the answer would be worse than the missing fragment.
    pub fn flush(&mut self, out: &mut String) {
        self.drain(out, true);
    }

    /// True when bytes are held back.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    fn drain(&mut self, out: &mut String, at_end: bool) {
        let mut start = 0;
        loop {
            match std::str::from_utf8(&self.pending[start..]) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // SAFETY-free: `valid_up_to` bytes are valid UTF-8 by definition.
                    out.push_str(
                        std::str::from_utf8(&self.pending[start..start + valid]).unwrap_or(""),
                    );
                    match e.error_len() {
                        Some(n) => {
                            out.push('\u{FFFD}');
                            start += valid + n;
                        }
                        None if at_end => {
                            self.pending.clear();
                            return;
                        }
                        None => {
                            // Incomplete character at the end: keep it.
                            self.pending.drain(..start + valid);
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// Generation has ended: append to `out` the text still held back — an incomplete
/// character (dropped by [`Utf8Buffer::flush`]) and a possible stop-string prefix that
/// turned out not to be one. One place for every way a request can end.
pub fn release_held(utf8: &mut Utf8Buffer, stop: &mut StopMatcher, out: &mut String) {
    let mut rest = String::new();
    utf8.flush(&mut rest);
    stop.push(&rest, out);
    stop.flush(out);
}

/// Finds stop strings in streamed text. Text that might be the start of a stop string is
/// held back until the following text decides it.
#[derive(Debug, Default, Clone)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

impl StopMatcher {
    /// Empty stop strings are ignored.
    pub fn new(stops: impl IntoIterator<Item = impl Into<String>>) -> Self {
        StopMatcher {
            stops: stops
                .into_iter()
                .map(Into::into)
                .filter(|s: &String| !s.is_empty())
                .collect(),
            held: String::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.stops.is_empty()
    }

    /// Feed `text`. Text that is safe to show is appended to `out`. Returns the stop string
    /// that matched (the text before it has been appended to `out`; the stop string and
    /// everything after it are dropped).
    pub fn push(&mut self, text: &str, out: &mut String) -> Option<String> {
        if self.stops.is_empty() {
            out.push_str(text);
            return None;
        }
        self.held.push_str(text);
        // Earliest match wins; at the same position, the longer stop string.
        let mut best: Option<(usize, usize)> = None;
        for (i, stop) in self.stops.iter().enumerate() {
            if let Some(pos) = self.held.find(stop.as_str()) {
                let better = match best {
                    None => true,
                    Some((bp, bi)) => pos < bp || (pos == bp && stop.len() > self.stops[bi].len()),
                };
                if better {
                    best = Some((pos, i));
                }
            }
        }
        if let Some((pos, i)) = best {
            out.push_str(&self.held[..pos]);
            self.held.clear();
            return Some(self.stops[i].clone());
        }
        // Hold back the longest suffix that is a proper prefix of some stop string.
        let keep = self.partial_suffix_len();
        let emit = self.held.len() - keep;
        out.push_str(&self.held[..emit]);
        self.held.drain(..emit);
        None
    }

    /// Release held text (the stream ended without a stop string).
    pub fn flush(&mut self, out: &mut String) {
        out.push_str(&self.held);
        self.held.clear();
    }

    /// Text currently held back.
    pub fn held(&self) -> &str {
        &self.held
    }

    fn partial_suffix_len(&self) -> usize {
        let h = &self.held;
        let mut best = 0;
        for stop in &self.stops {
            // Longest k < stop.len() with h ending in stop[..k].
            let max_k = (stop.len() - 1).min(h.len());
            for k in (best + 1..=max_k).rev() {
                if stop.is_char_boundary(k)
                    && h.is_char_boundary(h.len() - k)
                    && h.ends_with(&stop[..k])
                {
                    best = k;
                    break;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, Option<String>) {
        let mut m = StopMatcher::new(stops.iter().copied());
        let mut out = String::new();
        for p in pieces {
            if let Some(s) = m.push(p, &mut out) {
                return (out, Some(s));
            }
        }
        m.flush(&mut out);
        (out, None)
    }

    #[test]
    fn stop_split_across_pieces_is_caught() {
        assert_eq!(
            run(&["STOP"], &["Hello S", "TO", "P world"]),
            ("Hello ".to_string(), Some("STOP".to_string()))
        );
    }

    #[test]
    fn partial_prefix_is_held_then_released() {
        let mut m = StopMatcher::new(["</end>"]);
        let mut out = String::new();
        assert_eq!(m.push("abc</e", &mut out), None);
        assert_eq!(out, "abc");
        assert_eq!(m.held(), "</e");
        assert_eq!(m.push("x", &mut out), None);
        assert_eq!(out, "abc</ex");
        assert_eq!(m.held(), "");
    }

    #[test]
    fn flush_releases_partial_prefix() {
        assert_eq!(run(&["STOP"], &["abc", "ST"]), ("abcST".to_string(), None));
    }

    #[test]
    fn earliest_stop_wins_and_empty_stops_are_ignored() {
        assert_eq!(
            run(&["", "b", "a"], &["xab"]),
            ("x".to_string(), Some("a".to_string()))
        );
        assert_eq!(run(&[], &["anything"]), ("anything".to_string(), None));
    }

    #[test]
    fn multibyte_stop_strings() {
        assert_eq!(
            run(&["é!"], &["caf", "é", "!"]),
            ("caf".to_string(), Some("é!".to_string()))
        );
        assert_eq!(run(&["日本"], &["a日", "x"]), ("a日x".to_string(), None));
    }

    #[test]
    fn utf8_buffer_joins_split_characters() {
        let bytes = "é日🦀".as_bytes();
        let mut b = Utf8Buffer::new();
        let mut out = String::new();
        for byte in bytes {
            b.push(std::slice::from_ref(byte), &mut out);
        }
        assert_eq!(out, "é日🦀");
        assert!(!b.has_pending());
    }

    #[test]
    fn utf8_buffer_replaces_invalid_and_drops_an_incomplete_tail() {
        let mut b = Utf8Buffer::new();
        let mut out = String::new();
        b.push(&[b'a', 0xff, b'b', 0xe6, 0x97], &mut out);
        assert_eq!(out, "a\u{FFFD}b");
        assert!(b.has_pending());
        b.flush(&mut out);
        assert_eq!(out, "a\u{FFFD}b");
        assert!(!b.has_pending());
    }
}
