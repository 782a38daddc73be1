//! Fill-in-the-middle prompts, built like llama-server's `/infill` (`format_prompt_infill`).

use serde::{Deserialize, Serialize};

use crate::error::EngineError;

/// Another file given as context (llama-server's `input_extra` entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InfillChunk {
    /// Shown before the chunk when the model has a file separator token (default `tmp`).
    pub filename: String,
    pub text: String,
}

impl Default for InfillChunk {
    fn default() -> Self {
        InfillChunk {
            filename: "tmp".into(),
            text: String::new(),
        }
    }
}

/// Code before and after the cursor, other files as context, and text to continue the
/// prefix with (`prompt`, which may hold special tokens).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct InfillPrompt {
    pub input_prefix: String,
    pub input_suffix: String,
    pub input_extra: Vec<InfillChunk>,
    pub prompt: String,
}

impl InfillPrompt {
    pub(crate) fn text_len(&self) -> usize {
        self.input_prefix.len()
            + self.input_suffix.len()
            + self.prompt.len()
            + self
                .input_extra
                .iter()
                .map(|c| c.filename.len() + c.text.len())
                .sum::<usize>()
    }
}

/// The model's fill-in-the-middle tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FimTokens {
    pub pre: i32,
    pub suf: i32,
    pub mid: i32,
    /// Repository marker, if the model has one.
    pub rep: Option<i32>,
    /// File separator, if the model has one.
    pub sep: Option<i32>,
    /// BOS, when the vocabulary adds one.
    pub bos: Option<i32>,
}

impl FimTokens {
    /// From the vocabulary's tokens (`None` = the model lacks it). Errors name what is
    /// missing, as llama-server's `/infill` does.
    pub fn new(
        pre: Option<i32>,
        suf: Option<i32>,
        mid: Option<i32>,
        rep: Option<i32>,
        sep: Option<i32>,
        bos: Option<i32>,
    ) -> Result<Self, EngineError> {
        match (pre, suf, mid) {
            (Some(pre), Some(suf), Some(mid)) => Ok(FimTokens {
                pre,
                suf,
                mid,
                rep,
                sep,
                bos,
            }),
            _ => {
                let missing: Vec<&str> = [(pre, "prefix"), (suf, "suffix"), (mid, "middle")]
                    .into_iter()
                    .filter(|(t, _)| t.is_none())
                    .map(|(_, n)| n)
                    .collect();
                Err(EngineError::Unsupported {
                    what: "infill".into(),
                    reason: format!(
                        "this model has no fill-in-the-middle tokens (missing: {})",
                        missing.join(", ")
                    ),
                })
            }
        }
    }
}

/// The prompt tokens, as llama-server builds them (repo-level FIM pattern, SPM off):
///
/// ```text
/// [extra: FIM_REP myproject\n (FIM_SEP filename\n text)* FIM_SEP filename\n]
/// [BOS] FIM_PRE prefix prompt FIM_SUF suffix FIM_MID
/// ```
///
/// The prefix keeps its last `3/4 n_batch` tokens, the suffix its first
/// `n_batch/4 - 2 - |prompt|`; the extra context its last `n_ctx - n_batch - 2 n_predict`
/// (`n_predict` = -1 when unlimited). Without a file separator, chunks are joined with a
/// `--- snippet ---` line. `tokenize(text, parse_special)` never adds BOS/EOS.
pub(crate) fn format_infill(
    p: &InfillPrompt,
    fim: &FimTokens,
    n_batch: usize,
    n_predict: Option<u32>,
    n_ctx: usize,
    tokenize: impl Fn(&str, bool) -> Vec<i32>,
) -> Vec<i32> {
    let mut prefix = tokenize(&p.input_prefix, false);
    let mut suffix = tokenize(&p.input_suffix, false);
    let prompt = tokenize(&p.prompt, true);

    let mut extra: Vec<i32> = Vec::new();
    if let Some(rep) = fim.rep {
        extra.push(rep);
        extra.extend(tokenize("myproject\n", false));
    }
    for chunk in &p.input_extra {
        match fim.sep {
            Some(sep) => {
                extra.push(sep);
                extra.extend(tokenize(&format!("{}\n", chunk.filename), false));
            }
            None => extra.extend(tokenize("\n\n--- snippet ---\n\n", false)),
        }
        extra.extend(tokenize(&chunk.text, false));
    }
    if let Some(sep) = fim.sep {
        extra.push(sep);
        extra.extend(tokenize("filename\n", false));
    }

    let n_batch = n_batch as i64;
    let n_prefix_take = (prefix.len() as i64).min(3 * (n_batch / 4));
    let n_suffix_take = (suffix.len() as i64).min((n_batch / 4 - (2 + prompt.len() as i64)).max(0));
    let n_predict = n_predict.map_or(-1, i64::from);
    let n_extra_take = (n_ctx as i64 - n_batch - 2 * n_predict)
        .max(0)
        .min(extra.len() as i64) as usize;

    prefix.drain(..prefix.len() - n_prefix_take as usize);
    suffix.truncate(n_suffix_take as usize);

    let mut out = Vec::with_capacity(n_extra_take + prefix.len() + suffix.len() + 8);
    out.extend_from_slice(&extra[extra.len() - n_extra_take..]);
    if let Some(bos) = fim.bos {
        out.push(bos);
    }
    out.push(fim.pre);
    out.extend(prefix);
    out.extend(prompt);
    out.push(fim.suf);
    out.extend(suffix);
    out.push(fim.mid);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRE: i32 = -1;
    const SUF: i32 = -2;
    const MID: i32 = -3;
    const REP: i32 = -4;
    const SEP: i32 = -5;
    const BOS: i32 = -6;
    const SPECIAL: i32 = -9;

    /// One token per character; `<s>` is a special token when parsing is on.
    fn tok(text: &str, parse_special: bool) -> Vec<i32> {
        if parse_special && text.contains("<s>") {
            let mut out = Vec::new();
            for (i, part) in text.split("<s>").enumerate() {
                if i > 0 {
                    out.push(SPECIAL);
                }
                out.extend(part.chars().map(|c| c as i32));
            }
            return out;
        }
        text.chars().map(|c| c as i32).collect()
    }

    fn t(s: &str) -> Vec<i32> {
        tok(s, false)
    }

    fn fim(rep: bool, sep: bool, bos: bool) -> FimTokens {
        FimTokens {
            pre: PRE,
            suf: SUF,
            mid: MID,
            rep: rep.then_some(REP),
            sep: sep.then_some(SEP),
            bos: bos.then_some(BOS),
        }
    }

    fn prompt(prefix: &str, suffix: &str, extra: &[(&str, &str)], p: &str) -> InfillPrompt {
        InfillPrompt {
            input_prefix: prefix.into(),
            input_suffix: suffix.into(),
            input_extra: extra
                .iter()
                .map(|(f, x)| InfillChunk {
                    filename: (*f).into(),
                    text: (*x).into(),
                })
                .collect(),
            prompt: p.into(),
        }
    }

    #[test]
    fn plain_prefix_suffix_middle() {
        let out = format_infill(
            &prompt("ab", "cd", &[], ""),
            &fim(false, false, false),
            2048,
            None,
            4096,
            tok,
        );
        assert_eq!(
            out,
            [vec![PRE], t("ab"), vec![SUF], t("cd"), vec![MID]].concat()
        );
        // BOS goes first when the vocabulary adds one; the prompt continues the prefix
        // with special tokens parsed.
        let out = format_infill(
            &prompt("ab", "cd", &[], "x<s>"),
            &fim(false, false, true),
            2048,
            None,
            4096,
            tok,
        );
        assert_eq!(
            out,
            [
                vec![BOS, PRE],
                t("ab"),
                t("x"),
                vec![SPECIAL, SUF],
                t("cd"),
                vec![MID]
            ]
            .concat()
        );
    }

    #[test]
    fn repo_level_pattern_with_extra_files() {
        let out = format_infill(
            &prompt("P", "S", &[("a.rs", "A"), ("b.rs", "B")], ""),
            &fim(true, true, true),
            2048,
            Some(16),
            4096,
            tok,
        );
        let expected = [
            vec![REP],
            t("myproject\n"),
            vec![SEP],
            t("a.rs\n"),
            t("A"),
            vec![SEP],
            t("b.rs\n"),
            t("B"),
            vec![SEP],
            t("filename\n"),
            // The extra context comes before BOS, as in llama-server.
            vec![BOS, PRE],
            t("P"),
            vec![SUF],
            t("S"),
            vec![MID],
        ]
        .concat();
        assert_eq!(out, expected);
        // Without a file separator, chunks are joined by a snippet line.
        let out = format_infill(
            &prompt("P", "S", &[("a.rs", "A")], ""),
            &fim(false, false, false),
            2048,
            None,
            4096,
            tok,
        );
        assert_eq!(
            out,
            [
                t("\n\n--- snippet ---\n\n"),
                t("A"),
                vec![PRE],
                t("P"),
                vec![SUF],
                t("S"),
                vec![MID]
            ]
            .concat()
        );
    }

    #[test]
    fn long_inputs_are_cut_to_the_batch_and_context() {
        let long_prefix = "p".repeat(100);
        let long_suffix = "s".repeat(100);
        // n_batch 40: prefix keeps its last 30, suffix its first 10 - 2 - |prompt| = 7.
        let out = format_infill(
            &prompt(&long_prefix, &long_suffix, &[("f", &"e".repeat(50))], "q"),
            &fim(false, true, false),
            40,
            Some(5),
            // room for extra: 60 - 40 - 10 = 10 tokens, the last ones.
            60,
            tok,
        );
        let extra = [
            vec![SEP],
            t("f\n"),
            t(&"e".repeat(50)),
            vec![SEP],
            t("filename\n"),
        ]
        .concat();
        let expected = [
            extra[extra.len() - 10..].to_vec(),
            vec![PRE],
            t(&"p".repeat(30)),
            t("q"),
            vec![SUF],
            t(&"s".repeat(7)),
            vec![MID],
        ]
        .concat();
        assert_eq!(out, expected);
        // A context smaller than the batch leaves no room for extra context.
        let out = format_infill(
            &prompt("p", "s", &[("f", "e")], ""),
            &fim(false, true, false),
            512,
            None,
            256,
            tok,
        );
        assert_eq!(out[0], PRE);
    }

    #[test]
    fn missing_fim_tokens_are_named() {
        match FimTokens::new(Some(1), None, None, None, None, None) {
            Err(EngineError::Unsupported { what, reason }) => {
                assert_eq!(what, "infill");
                assert!(reason.contains("suffix, middle"), "{reason}");
                assert!(!reason.contains("prefix"), "{reason}");
            }
            other => panic!("expected Unsupported, got {other:?}"),
        }
        assert!(FimTokens::new(Some(1), Some(2), Some(3), None, None, None).is_ok());
    }

    #[test]
    fn serde_defaults() {
        let p: InfillPrompt = serde_json::from_str(
            r#"{"input_prefix": "a", "input_suffix": "b", "input_extra": [{"text": "x"}]}"#,
        )
        .unwrap();
        assert_eq!(p.input_extra[0].filename, "tmp");
        assert_eq!(p.prompt, "");
    }
}
