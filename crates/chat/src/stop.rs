//! Stop strings over streamed text.
//!
//! Generated text arrives in pieces; a stop string can be split across them.
//! [`StopMatcher`] passes text on as soon as it cannot be part of a stop
//! string, holds back a tail that might be the beginning of one, and cuts the
//! output right before the first stop string that completes.

/// What one [`StopMatcher::push`] lets through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopOutcome {
    /// Text that is certainly output.
    pub emit: String,
    /// The stop string that just completed; set once, on the push that found it.
    pub stopped: Option<String>,
}

/// Finds stop strings in streamed text.
#[derive(Debug, Clone, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
    stopped: bool,
}

impl StopMatcher {
    /// Empty stop strings are ignored (they would stop before any output).
    pub fn new(stops: Vec<String>) -> Self {
        let mut unique: Vec<String> = Vec::new();
        for stop in stops {
            if !stop.is_empty() && !unique.contains(&stop) {
                unique.push(stop);
            }
        }
        StopMatcher {
            stops: unique,
            held: String::new(),
            stopped: false,
        }
    }

    /// The stop strings in use.
    pub fn stops(&self) -> &[String] {
        &self.stops
    }

    /// Whether a stop string has been seen; from then on nothing is emitted.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Feeds a piece of generated text.
    pub fn push(&mut self, text: &str) -> StopOutcome {
        if self.stopped {
            return StopOutcome::default();
        }
        self.held.push_str(text);
        if let Some((start, stop)) = self.first_complete_stop() {
            self.held.truncate(start);
            self.stopped = true;
            return StopOutcome {
                emit: std::mem::take(&mut self.held),
                stopped: Some(stop),
            };
        }
        let keep_from = self.partial_stop_start();
        let rest = self.held.split_off(keep_from);
        StopOutcome {
            emit: std::mem::replace(&mut self.held, rest),
            stopped: None,
        }
    }

    /// Ends the text: what was held back as a possible stop string is output
    /// after all (nothing after a stop).
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// The stop string that completes first in the held text: the smallest
    /// end, and of those the one starting first. That is the one a char-by-char
    /// feed would have seen first, so the result does not depend on how the
    /// text was split.
    fn first_complete_stop(&self) -> Option<(usize, String)> {
        self.stops
            .iter()
            .filter_map(|stop| {
                self.held
                    .find(stop.as_str())
                    .map(|start| (start + stop.len(), start, stop))
            })
            .min_by_key(|&(end, start, _)| (end, start))
            .map(|(_, start, stop)| (start, stop.clone()))
    }

    /// Where the held text's longest tail that begins some stop string starts
    /// (`len` if none). Only char boundaries are considered, so the text
    /// emitted before it never ends inside a UTF-8 character.
    fn partial_stop_start(&self) -> usize {
        self.held
            .char_indices()
            .map(|(at, _)| at)
            .find(|&at| {
                let tail = &self.held[at..];
                self.stops
                    .iter()
                    .any(|stop| stop.len() > tail.len() && stop.starts_with(tail))
            })
            .unwrap_or(self.held.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(stops: &[&str]) -> StopMatcher {
        StopMatcher::new(stops.iter().map(|stop| stop.to_string()).collect())
    }

    #[test]
    fn stop_split_across_pushes() {
        let mut m = matcher(&["<end_of_turn>"]);
        assert_eq!(m.push("Hello <end").emit, "Hello ");
        let outcome = m.push("_of_turn> more");
        assert_eq!(outcome.emit, "");
        assert_eq!(outcome.stopped.as_deref(), Some("<end_of_turn>"));
        assert!(m.is_stopped());
        assert_eq!(m.push("ignored"), StopOutcome::default());
        assert_eq!(m.flush(), "");
    }

    #[test]
    fn false_starts_are_released() {
        let mut m = matcher(&["\n\nUser:"]);
        assert_eq!(m.push("a\n").emit, "a");
        assert_eq!(m.push("\nUs").emit, "");
        assert_eq!(m.push("ually").emit, "\n\nUsually");
        assert_eq!(m.push("\n").emit, "");
        assert_eq!(m.flush(), "\n");
    }

    #[test]
    fn earliest_completing_stop_wins() {
        let mut m = matcher(&["abcd", "bc"]);
        let outcome = m.push("xabcd");
        assert_eq!(outcome.emit, "xa");
        assert_eq!(outcome.stopped.as_deref(), Some("bc"));

        let mut m = matcher(&["ab", "abc"]);
        let outcome = m.push("abc");
        assert_eq!(
            (outcome.emit.as_str(), outcome.stopped.as_deref()),
            ("", Some("ab"))
        );
    }

    #[test]
    fn empty_and_duplicate_stops_are_ignored() {
        let mut m = matcher(&["", "x", "x"]);
        assert_eq!(m.stops(), ["x"]);
        assert_eq!(m.push("abc").emit, "abc");
        let mut none = matcher(&[]);
        assert_eq!(none.push("anything").emit, "anything");
    }

    #[test]
    fn multibyte_text_is_never_split() {
        let mut m = matcher(&["é!"]);
        assert_eq!(m.push("café").emit, "caf");
        assert_eq!(m.push("s").emit, "és");
        let mut m = matcher(&["🙂🙃"]);
        assert_eq!(m.push("a🙂").emit, "a");
        let outcome = m.push("🙃b");
        assert_eq!(
            (outcome.emit.as_str(), outcome.stopped.as_deref()),
            ("", Some("🙂🙃"))
        );
    }
}
