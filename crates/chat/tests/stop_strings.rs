//! Stop strings over randomly split text: the output is always the text up to
//! the first stop occurrence, however it was split.

use chat::{StopMatcher, Utf8Decoder};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The reference: the occurrence that ends first (of those, the one that
/// starts first) and the text before it.
fn expected<'a>(text: &'a str, stops: &[&str]) -> (&'a str, Option<String>) {
    let first = stops
        .iter()
        .filter(|stop| !stop.is_empty())
        .filter_map(|stop| {
            text.find(stop)
                .map(|start| (start + stop.len(), start, *stop))
        })
        .min_by_key(|&(end, start, _)| (end, start));
    match first {
        Some((_, start, stop)) => (&text[..start], Some(stop.to_owned())),
        None => (text, None),
    }
}

fn run(text: &str, stops: &[&str], rng: &mut Rng, max_piece: u64) -> (String, Option<String>) {
    let chars: Vec<char> = text.chars().collect();
    let mut matcher = StopMatcher::new(stops.iter().map(|stop| stop.to_string()).collect());
    let mut out = String::new();
    let mut stopped = None;
    let mut at = 0;
    while at < chars.len() {
        let len = 1 + (rng.next() % max_piece) as usize;
        let piece: String = chars[at..(at + len).min(chars.len())].iter().collect();
        let outcome = matcher.push(&piece);
        out.push_str(&outcome.emit);
        if let Some(stop) = outcome.stopped {
            assert!(stopped.is_none(), "a stop is reported once");
            stopped = Some(stop);
        }
        at += len;
    }
    out.push_str(&matcher.flush());
    (out, stopped)
}

#[test]
fn random_splits_cut_at_the_first_stop() {
    let texts = [
        "Hello there!<end_of_turn>\n<start_of_turn>user\nmore",
        "The answer is 4.<|im_end|><|im_start|>user",
        "no stop here at all, just <|im_ and <end_of and a lone <",
        "aaab aab ab abc",
        "User: hi\n\nUser: again",
        "émoji 🙂🙃 and ünïcode <|eot_id|> tail",
        "",
    ];
    let stop_sets: [&[&str]; 5] = [
        &["<end_of_turn>", "<start_of_turn>"],
        &["<|im_end|>", "<|im_start|>", ""],
        &["ab", "aab", "abc", "b a"],
        &["\n\nUser:", "User:"],
        &["🙃", "<|eot_id|>", "ünï"],
    ];
    let mut rng = Rng(0xDEAD_BEEF_CAFE_F00D);
    for text in texts {
        for stops in stop_sets {
            let (want_text, want_stop) = expected(text, stops);
            for max_piece in [1, 2, 3, 4, 7, 16, 100] {
                for _ in 0..10 {
                    let (got, stop) = run(text, stops, &mut rng, max_piece);
                    assert_eq!(
                        got, want_text,
                        "{text:?} {stops:?} pieces up to {max_piece}"
                    );
                    assert_eq!(stop, want_stop, "{text:?} {stops:?}");
                }
            }
        }
    }
}

#[test]
fn random_texts_from_stop_fragments() {
    let alphabet = ["<", "|", "im", "_end", ">", "a", "b", "\n", "é", "🙂", " "];
    let stops = ["<|im_end|>", "ab", "\n\n", "é🙂", "b>"];
    let mut rng = Rng(42);
    for _ in 0..500 {
        let count = rng.next() % 12;
        let text: String = (0..count)
            .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
            .collect();
        let (want_text, want_stop) = expected(&text, &stops);
        for max_piece in [1, 2, 5] {
            let (got, stop) = run(&text, &stops, &mut rng, max_piece);
            assert_eq!(got, want_text, "{text:?}");
            assert_eq!(stop, want_stop, "{text:?}");
        }
    }
}

#[test]
fn token_bytes_to_stop_matching() {
    // The engine's path: token bytes (split mid-character) -> text -> stops.
    let text = "Voilà 🙂 fini<end_of_turn>reste";
    let mut decoder = Utf8Decoder::new();
    let mut matcher = StopMatcher::new(vec!["<end_of_turn>".into()]);
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let piece = decoder.push(chunk);
        out.push_str(&matcher.push(&piece).emit);
    }
    out.push_str(&matcher.push(&decoder.finish()).emit);
    out.push_str(&matcher.flush());
    assert_eq!(out, "Voilà 🙂 fini");
}
