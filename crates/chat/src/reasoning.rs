//! Thinking (reasoning) models: which tags a chat template thinks in, and splitting generated
//! text into the reasoning and the answer, whole or streamed, as llama-server's chat parsers do
//! (`reasoning_content` apart from `content`).
//!
//! The splitter sees the text the model wrote after the prompt, plus the part of the prompt's
//! generation header from the opening tag on: templates that force thinking open end the prompt
//! with `<think>\n` (DeepSeek R1, QwQ), and templates asked not to think end it with an empty
//! block (`<think>\n\n</think>\n\n`, Qwen3 with `enable_thinking = false`). llama.cpp parses
//! that same concatenation.

/// How reasoning is returned: llama-server's `--reasoning-format` and the request field of the
/// same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReasoningFormat {
    /// Thoughts stay in `content`, tags and all.
    None,
    /// The default: as `Deepseek`.
    #[default]
    Auto,
    /// Thoughts go to `reasoning_content`, streamed as `reasoning_content` deltas.
    Deepseek,
    /// Named by llama-server for the old behaviour (tags kept inline when streaming); its
    /// current parsers treat it as `Deepseek`, and so do we.
    DeepseekLegacy,
}

impl ReasoningFormat {
    pub const NAMES: [&'static str; 4] = ["none", "auto", "deepseek", "deepseek-legacy"];

    pub fn name(self) -> &'static str {
        match self {
            ReasoningFormat::None => "none",
            ReasoningFormat::Auto => "auto",
            ReasoningFormat::Deepseek => "deepseek",
            ReasoningFormat::DeepseekLegacy => "deepseek-legacy",
        }
    }

    /// Parses one of [`ReasoningFormat::NAMES`].
    pub fn from_name(name: &str) -> Result<Self, String> {
        match name.trim() {
            "none" => Ok(ReasoningFormat::None),
            "auto" => Ok(ReasoningFormat::Auto),
            "deepseek" => Ok(ReasoningFormat::Deepseek),
            "deepseek-legacy" => Ok(ReasoningFormat::DeepseekLegacy),
            other => Err(format!(
                "unknown reasoning format '{other}' (none, auto, deepseek or deepseek-legacy)"
            )),
        }
    }

    /// Whether thoughts are taken out of the content.
    pub fn extracts(self) -> bool {
        self != ReasoningFormat::None
    }
}

/// The opening and closing tags of a thinking block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThinkingTags {
    pub start: &'static str,
    pub end: &'static str,
}

/// The thinking tags llama.cpp's chat parsers know, most common first.
const KNOWN_TAGS: [ThinkingTags; 5] = [
    // DeepSeek R1, Qwen3, QwQ, SmolLM3, GLM, MiniMax, Kimi, Hunyuan...
    ThinkingTags {
        start: "<think>",
        end: "</think>",
    },
    // Command R7B.
    ThinkingTags {
        start: "<|START_THINKING|>",
        end: "<|END_THINKING|>",
    },
    // Magistral, Ministral reasoning.
    ThinkingTags {
        start: "[THINK]",
        end: "[/THINK]",
    },
    // ByteDance Seed-OSS.
    ThinkingTags {
        start: "<seed:think>",
        end: "</seed:think>",
    },
    // Kimi VL thinking.
    ThinkingTags {
        start: "◁think▷",
        end: "◁/think▷",
    },
];

impl ThinkingTags {
    /// The tags a chat template thinks in, if it does. The closing tag decides: some templates
    /// (DeepSeek R1's original) only ever write it, to cut thoughts out of past turns.
    pub fn detect(template_source: &str) -> Option<ThinkingTags> {
        KNOWN_TAGS
            .into_iter()
            .find(|tags| template_source.contains(tags.end))
    }

    /// The part of a generation header that belongs to the reply's thinking: from the opening
    /// tag on (`<think>\n` when the template forces thinking open), or nothing.
    pub fn forced_prefix<'a>(&self, generation_header: &'a str) -> &'a str {
        match generation_header.find(self.start) {
            Some(at) => &generation_header[at..],
            None => "",
        }
    }
}

/// Whether a template reacts to thinking at all (llama-server's "supports thinking"): it has
/// thinking tags or reads `enable_thinking`.
pub fn template_thinks(template_source: &str) -> bool {
    ThinkingTags::detect(template_source).is_some() || template_source.contains("enable_thinking")
}

/// What one piece of generated text turned out to be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitPiece {
    /// Thoughts (for `reasoning_content`).
    pub reasoning: String,
    /// The answer (for `content`, or for tool-call parsing).
    pub content: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before anything but whitespace: a thinking block may still open.
    Start,
    /// Inside the block; `fresh` until its first non-space character.
    Thinking { fresh: bool },
    /// After the block (or without one); `fresh` until the answer's first non-space character.
    Answer { fresh: bool },
}

/// Splits generated text into reasoning and answer as it streams.
///
/// Text is passed on as soon as it cannot be part of a tag; a piece that might be (`</thi`) is
/// held until it resolves, so the result does not depend on how the text was cut into tokens.
/// The whitespace right after each tag is dropped (the newlines templates write there, which
/// llama.cpp's parsers take as part of the tags: `<think>\n`, `</think>\n\n`); the rest is
/// kept as written. A block left open (the reply was cut off) is all reasoning. Without a
/// block, everything is answer.
#[derive(Debug, Clone)]
pub struct ReasoningSplitter {
    tags: ThinkingTags,
    phase: Phase,
    pending: String,
}

impl ReasoningSplitter {
    /// A splitter for text that follows `prefix` (see [`ThinkingTags::forced_prefix`]).
    pub fn new(tags: ThinkingTags, prefix: &str) -> Self {
        let mut splitter = ReasoningSplitter {
            tags,
            phase: Phase::Start,
            pending: String::new(),
        };
        // The prompt's own part of the block is never returned.
        let _ = splitter.push(prefix);
        splitter
    }

    /// Feeds generated text; returns what can be decided so far.
    pub fn push(&mut self, text: &str) -> SplitPiece {
        self.pending.push_str(text);
        self.drain(false)
    }

    /// Ends the text: everything held back is decided.
    pub fn finish(&mut self) -> SplitPiece {
        self.drain(true)
    }

    /// Whether the text so far is inside an unclosed thinking block.
    pub fn in_reasoning(&self) -> bool {
        matches!(self.phase, Phase::Thinking { .. })
    }

    fn drain(&mut self, at_end: bool) -> SplitPiece {
        let mut out = SplitPiece::default();
        loop {
            match self.phase {
                Phase::Start => {
                    let rest = self.pending.trim_start();
                    if let Some(after) = rest.strip_prefix(self.tags.start) {
                        self.pending = after.to_owned();
                        self.phase = Phase::Thinking { fresh: true };
                    } else if !at_end && self.tags.start.starts_with(rest) {
                        return out;
                    } else {
                        self.phase = Phase::Answer { fresh: false };
                    }
                }
                Phase::Thinking { fresh } => {
                    if fresh {
                        if !drop_leading_space(&mut self.pending) {
                            return out;
                        }
                        self.phase = Phase::Thinking { fresh: false };
                    }
                    if let Some(at) = self.pending.find(self.tags.end) {
                        out.reasoning.push_str(&self.pending[..at]);
                        self.pending.drain(..at + self.tags.end.len());
                        self.phase = Phase::Answer { fresh: true };
                        continue;
                    }
                    if at_end {
                        out.reasoning.push_str(&std::mem::take(&mut self.pending));
                        return out;
                    }
                    // Hold back a possible start of the closing tag.
                    let keep_from = partial_suffix_start(&self.pending, self.tags.end);
                    out.reasoning.push_str(&self.pending[..keep_from]);
                    self.pending.drain(..keep_from);
                    return out;
                }
                Phase::Answer { fresh } => {
                    if fresh {
                        if !drop_leading_space(&mut self.pending) {
                            return out;
                        }
                        self.phase = Phase::Answer { fresh: false };
                    }
                    out.content.push_str(&std::mem::take(&mut self.pending));
                    return out;
                }
            }
        }
    }
}

/// Drops the whitespace `text` starts with; whether anything is left.
fn drop_leading_space(text: &mut String) -> bool {
    let space = text.len() - text.trim_start().len();
    text.drain(..space);
    !text.is_empty()
}

/// Where a suffix of `text` that is a proper start of `tag` begins (`text.len()` if none).
fn partial_suffix_start(text: &str, tag: &str) -> usize {
    (1..tag.len().min(text.len() + 1))
        .rev()
        .filter(|&n| tag.is_char_boundary(n))
        .find(|&n| text.ends_with(&tag[..n]))
        .map_or(text.len(), |n| text.len() - n)
}

/// Splits a complete reply.
pub fn split_reasoning(tags: ThinkingTags, prefix: &str, text: &str) -> SplitPiece {
    let mut splitter = ReasoningSplitter::new(tags, prefix);
    let mut piece = splitter.push(text);
    let rest = splitter.finish();
    piece.reasoning.push_str(&rest.reasoning);
    piece.content.push_str(&rest.content);
    piece
}

#[cfg(test)]
mod tests {
    use super::*;

    const THINK: ThinkingTags = KNOWN_TAGS[0];

    fn streamed(prefix: &str, text: &str, cut: &dyn Fn(&str) -> Vec<String>) -> SplitPiece {
        let mut splitter = ReasoningSplitter::new(THINK, prefix);
        let mut all = SplitPiece::default();
        for piece in cut(text) {
            let p = splitter.push(&piece);
            all.reasoning.push_str(&p.reasoning);
            all.content.push_str(&p.content);
        }
        let p = splitter.finish();
        all.reasoning.push_str(&p.reasoning);
        all.content.push_str(&p.content);
        all
    }

    fn by_chars(text: &str) -> Vec<String> {
        text.chars().map(String::from).collect()
    }

    fn whole(text: &str) -> Vec<String> {
        vec![text.to_owned()]
    }

    fn piece(reasoning: &str, content: &str) -> SplitPiece {
        SplitPiece {
            reasoning: reasoning.into(),
            content: content.into(),
        }
    }

    #[test]
    fn splits_a_block_whatever_the_cuts() {
        let cases = [
            (
                "",
                "<think>\nLet me add.\n</think>\n\nIt is 109.",
                piece("Let me add.\n", "It is 109."),
            ),
            (
                "<think>\n",
                " Let me add.\n\n</think>\n\n It is 109. ",
                piece("Let me add.\n\n", "It is 109. "),
            ),
            (
                "<think>\n\n</think>\n\n",
                "It is 109.",
                piece("", "It is 109."),
            ),
            ("", "It is 109.", piece("", "It is 109.")),
            (
                "",
                "  <think>a < b </thinking> c </think>d",
                piece("a < b </thinking> c ", "d"),
            ),
            ("", "<thinking>x", piece("", "<thinking>x")),
            ("", "<thi", piece("", "<thi")),
            (
                "<think>",
                "cut off mid-thought  ",
                piece("cut off mid-thought  ", ""),
            ),
            ("<think>\n", "  \n</think>", piece("", "")),
            ("", "<think>a</thi", piece("a</thi", "")),
            ("", "ok </think> no", piece("", "ok </think> no")),
            ("", "<think>é ü</think>ß", piece("é ü", "ß")),
        ];
        for (prefix, text, expected) in cases {
            assert_eq!(streamed(prefix, text, &whole), expected, "{text:?} whole");
            assert_eq!(
                streamed(prefix, text, &by_chars),
                expected,
                "{text:?} by chars"
            );
            assert_eq!(split_reasoning(THINK, prefix, text), expected, "{text:?}");
        }
    }

    #[test]
    fn streams_reasoning_before_the_block_ends() {
        let mut splitter = ReasoningSplitter::new(THINK, "<think>\n");
        assert_eq!(splitter.push("First"), piece("First", ""));
        assert!(splitter.in_reasoning());
        // A possible tag start waits.
        assert_eq!(splitter.push(" step\n</th"), piece(" step\n", ""));
        assert_eq!(splitter.push("ink>\n\nAnswer"), piece("", "Answer"));
        assert!(!splitter.in_reasoning());
        assert_eq!(splitter.finish(), piece("", ""));
    }

    #[test]
    fn detects_the_tags_of_known_templates() {
        assert_eq!(
            ThinkingTags::detect("{{ '<think>\\n' }}{% if x %}</think>{% endif %}"),
            Some(THINK)
        );
        assert_eq!(
            ThinkingTags::detect("<|START_THINKING|>{{ t }}<|END_THINKING|>").map(|t| t.start),
            Some("<|START_THINKING|>")
        );
        assert_eq!(ThinkingTags::detect("<|im_start|>assistant\n"), None);
        assert!(template_thinks("{% if enable_thinking %}{% endif %}"));
        assert!(!template_thinks("<|im_start|>"));
        assert_eq!(
            THINK.forced_prefix("<|im_start|>assistant\n<think>\n"),
            "<think>\n"
        );
        assert_eq!(THINK.forced_prefix("<|im_start|>assistant\n"), "");
    }

    #[test]
    fn format_names_round_trip() {
        for name in ReasoningFormat::NAMES {
            assert_eq!(ReasoningFormat::from_name(name).unwrap().name(), name);
        }
        assert!(ReasoningFormat::from_name("r1").is_err());
        assert!(!ReasoningFormat::None.extracts());
        assert!(ReasoningFormat::Auto.extracts());
    }
}
