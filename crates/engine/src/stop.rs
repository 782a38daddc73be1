//! Text assembly for the token stream — the one implementation in the workspace.
//!
//! Token pieces are bytes; [`Utf8Buffer`] joins them into text, holding back a character
//! split across tokens until it is complete. [`StopMatcher`] finds stop strings in that
//! text across token boundaries, holding back any tail that could still become a stop.
//!
//! It lives in the engine (not in the text-only `chat` crate) because its one user is the
//! slot's token loop: the matched stop ends decoding and gives the finish reason, and the
//! engine does not depend on `chat` (which would pull the template engine into it).
//!
//! **The rule** (independent of how the text was split into pieces): the stop string whose
//! first occurrence *ends* earliest in the text wins; of those ending at the same place,
//! the one that starts first (the longest). That is the stop a character-by-character feed
//! sees complete first, so every split of the same text gives the same output and the same
//! matched stop. Output is the text before the match.

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
    /// Empty stop strings (they would stop before any output) and duplicates are ignored.
    pub fn new(stops: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let mut unique: Vec<String> = Vec::new();
        for stop in stops.into_iter().map(Into::into) {
            if !stop.is_empty() && !unique.contains(&stop) {
                unique.push(stop);
            }
        }
        StopMatcher {
            stops: unique,
            held: String::new(),
        }
    }

    /// The stop strings in use.
    pub fn stops(&self) -> &[String] {
        &self.stops
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
        if let Some((start, i)) = self.first_complete_stop() {
            out.push_str(&self.held[..start]);
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

    /// The stop that completes first in the held text (see the module's rule): its start
    /// and index. Held text never contains a whole stop from an earlier push, so the first
    /// occurrence of each stop is the one to compare.
    fn first_complete_stop(&self) -> Option<(usize, usize)> {
        self.stops
            .iter()
            .enumerate()
            .filter_map(|(i, stop)| {
                self.held
                    .find(stop.as_str())
                    .map(|start| (start + stop.len(), start, i))
            })
            .min_by_key(|&(end, start, _)| (end, start))
            .map(|(_, start, i)| (start, i))
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
    fn the_stop_ending_first_wins_however_the_text_is_split() {
        // "bc" ends before "abcd" does, in one piece or two.
        let want = ("xa".to_string(), Some("bc".to_string()));
        assert_eq!(run(&["abcd", "bc"], &["xabcd"]), want);
        assert_eq!(run(&["abcd", "bc"], &["xabc", "d"]), want);
        // Ending at the same place: the one starting first (the longer).
        assert_eq!(
            run(&["b", "ab"], &["xab"]),
            ("x".to_string(), Some("ab".to_string()))
        );
        assert_eq!(
            run(&["ab", "abc"], &["abc"]),
            (String::new(), Some("ab".to_string()))
        );
    }

    #[test]
    fn false_starts_are_released() {
        let mut m = StopMatcher::new(["\n\nUser:"]);
        let mut out = String::new();
        assert_eq!(m.push("a\n", &mut out), None);
        assert_eq!(out, "a");
        m.push("\nUs", &mut out);
        assert_eq!(out, "a");
        m.push("ually", &mut out);
        assert_eq!(out, "a\n\nUsually");
        m.push("\n", &mut out);
        m.flush(&mut out);
        assert_eq!(out, "a\n\nUsually\n");
    }

    #[test]
    fn duplicate_stops_are_ignored() {
        assert_eq!(StopMatcher::new(["x", "", "x"]).stops(), ["x"]);
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

/// The rule checked against a reference over every split: random texts built from stop
/// fragments, multi-byte characters and invalid bytes, cut into random byte pieces, go
/// through the same path as generated tokens (bytes → [`Utf8Buffer`] → [`StopMatcher`] →
/// [`release_held`]).
#[cfg(test)]
mod split_independence {
    use super::*;
    use proptest::prelude::*;

    /// The text and stop a character-by-character feed sees: the occurrence ending first,
    /// then starting first; output is the text before it (all of it without a stop).
    fn reference(text: &str, stops: &[String]) -> (String, Option<String>) {
        let first = stops
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| text.find(s.as_str()).map(|at| (at + s.len(), at, s)))
            .min_by_key(|&(end, start, _)| (end, start));
        match first {
            Some((_, start, stop)) => (text[..start].to_string(), Some(stop.clone())),
            None => (text.to_string(), None),
        }
    }

    /// Feed `bytes` cut at `cuts` (byte offsets, any order, may split characters).
    fn feed(bytes: &[u8], cuts: &[usize], stops: &[String]) -> (String, Option<String>) {
        let mut bounds: Vec<usize> = cuts.iter().map(|&c| c % (bytes.len() + 1)).collect();
        bounds.push(0);
        bounds.push(bytes.len());
        bounds.sort_unstable();
        bounds.dedup();
        let mut utf8 = Utf8Buffer::new();
        let mut stop = StopMatcher::new(stops.iter().cloned());
        let mut out = String::new();
        for w in bounds.windows(2) {
            let mut text = String::new();
            utf8.push(&bytes[w[0]..w[1]], &mut text);
            if let Some(s) = stop.push(&text, &mut out) {
                return (out, Some(s));
            }
        }
        release_held(&mut utf8, &mut stop, &mut out);
        (out, None)
    }

    const FRAGMENTS: &[&str] = &[
        "a", "b", "c", "d", "ab", "bc", "<", "|", "im", "_end", ">", "\n", " ", "é", "🙂", "日",
    ];

    fn text() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(FRAGMENTS), 0..24).prop_map(|v| v.concat())
    }

    fn stops() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec(
            prop::collection::vec(prop::sample::select(FRAGMENTS), 0..4).prop_map(|v| v.concat()),
            0..4,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn every_split_gives_the_same_text_and_stop(
            text in text(),
            stops in stops(),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let want = reference(&text, &stops);
            prop_assert_eq!(feed(text.as_bytes(), &cuts, &stops), want.clone());
            // One piece and byte by byte are splits too.
            prop_assert_eq!(feed(text.as_bytes(), &[], &stops), want.clone());
            let every: Vec<usize> = (0..text.len()).collect();
            prop_assert_eq!(feed(text.as_bytes(), &every, &stops), want);
        }

        #[test]
        fn invalid_bytes_become_the_same_text_however_split(
            chunks in prop::collection::vec(
                prop::collection::vec(prop::sample::select(vec![b'a', 0xff, 0xe6, 0x97, 0xa5, 0xf0, 0x9f, 0x99, 0x82]), 0..6),
                0..6),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let bytes = chunks.concat();
            let whole = feed(&bytes, &[], &[]);
            prop_assert_eq!(feed(&bytes, &cuts, &[]), whole);
        }
    }
}
