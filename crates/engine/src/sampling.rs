//! Sampling parameters and the sampler chain built from them, in llama-server's default order:
//! logit bias, penalties, DRY, top-n-sigma, top-k, typical, top-p, min-p, XTC, temperature,
//! dist. Temperature <= 0 is greedy; mirostat replaces the truncation samplers. A grammar, when
//! asked for, is a separate sampler used as llama-server does (checked on the chosen token,
//! applied to all candidates only when that token is rejected).

use serde::{Deserialize, Serialize};

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;

use crate::error::EngineError;

/// llama.cpp's "pick a random seed" value.
pub const RANDOM_SEED: u32 = 0xFFFF_FFFF;

/// Sampling settings of one request. Defaults are llama-server's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// <= 0: greedy.
    pub temperature: f32,
    /// 0: disabled (negative values are refused).
    pub top_k: i32,
    /// 1.0: disabled.
    pub top_p: f32,
    /// 0.0: disabled.
    pub min_p: f32,
    /// 1.0: disabled.
    pub typical_p: f32,
    /// <= 0: disabled.
    pub top_n_sigma: f32,
    pub xtc_probability: f32,
    pub xtc_threshold: f32,
    /// 0 (off), 1 or 2.
    pub mirostat: u8,
    pub mirostat_tau: f32,
    pub mirostat_eta: f32,
    /// 1.0: disabled.
    pub repeat_penalty: f32,
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    /// Tokens the penalties look back over; 0 disables, -1 = context size.
    pub repeat_last_n: i32,
    /// 0.0: DRY disabled.
    pub dry_multiplier: f32,
    pub dry_base: f32,
    pub dry_allowed_length: i32,
    /// -1 = context size.
    pub dry_penalty_last_n: i32,
    pub dry_sequence_breakers: Vec<String>,
    /// `None`: a random seed.
    pub seed: Option<u32>,
    /// `(token, bias)`; a bias of `-inf` bans the token.
    pub logit_bias: Vec<(i32, f32)>,
    /// `(text, bias)`: the bias goes to every token of the text, tokenized without special
    /// tokens (llama-server's `logit_bias` keyed by text).
    pub logit_bias_text: Vec<(String, f32)>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            typical_p: 1.0,
            top_n_sigma: -1.0,
            xtc_probability: 0.0,
            xtc_threshold: 0.1,
            mirostat: 0,
            mirostat_tau: 5.0,
            mirostat_eta: 0.1,
            repeat_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            repeat_last_n: 64,
            dry_multiplier: 0.0,
            dry_base: 1.75,
            dry_allowed_length: 2,
            dry_penalty_last_n: -1,
            dry_sequence_breakers: ["\n", ":", "\"", "*"].map(String::from).to_vec(),
            seed: None,
            logit_bias: Vec::new(),
            logit_bias_text: Vec::new(),
        }
    }
}

impl SamplingParams {
    /// Greedy decoding (temperature 0), everything else default.
    pub fn greedy() -> Self {
        SamplingParams {
            temperature: 0.0,
            ..Default::default()
        }
    }

    /// Check every value; the error names the field. Token ids in `logit_bias` are checked
    /// against the vocabulary later, by the model host.
    pub fn validate(&self) -> Result<(), EngineError> {
        fn finite(name: &str, v: f32) -> Result<(), EngineError> {
            if v.is_finite() {
                Ok(())
            } else {
                Err(EngineError::invalid(
                    name,
                    format!("must be a finite number, got {v}"),
                ))
            }
        }
        fn range(name: &str, v: f32, lo: f32, hi: f32) -> Result<(), EngineError> {
            finite(name, v)?;
            if v < lo || v > hi {
                return Err(EngineError::invalid(
                    name,
                    format!("must be between {lo} and {hi}, got {v}"),
                ));
            }
            Ok(())
        }
        fn non_negative(name: &str, v: f32) -> Result<(), EngineError> {
            finite(name, v)?;
            if v < 0.0 {
                return Err(EngineError::invalid(name, format!("must be >= 0, got {v}")));
            }
            Ok(())
        }
        non_negative("temperature", self.temperature)?;
        if self.top_k < 0 {
            return Err(EngineError::invalid(
                "top_k",
                format!("must be >= 0 (0 disables it), got {}", self.top_k),
            ));
        }
        range("top_p", self.top_p, 0.0, 1.0)?;
        range("min_p", self.min_p, 0.0, 1.0)?;
        range("typical_p", self.typical_p, 0.0, 1.0)?;
        finite("top_n_sigma", self.top_n_sigma)?;
        range("xtc_probability", self.xtc_probability, 0.0, 1.0)?;
        range("xtc_threshold", self.xtc_threshold, 0.0, 1.0)?;
        if self.mirostat > 2 {
            return Err(EngineError::invalid(
                "mirostat",
                format!("must be 0, 1 or 2, got {}", self.mirostat),
            ));
        }
        non_negative("mirostat_tau", self.mirostat_tau)?;
        non_negative("mirostat_eta", self.mirostat_eta)?;
        finite("repeat_penalty", self.repeat_penalty)?;
        if self.repeat_penalty <= 0.0 {
            return Err(EngineError::invalid(
                "repeat_penalty",
                format!("must be > 0, got {}", self.repeat_penalty),
            ));
        }
        finite("presence_penalty", self.presence_penalty)?;
        finite("frequency_penalty", self.frequency_penalty)?;
        if self.repeat_last_n < -1 {
            return Err(EngineError::invalid("repeat_last_n", "must be >= -1"));
        }
        non_negative("dry_multiplier", self.dry_multiplier)?;
        non_negative("dry_base", self.dry_base)?;
        if self.dry_allowed_length < 0 {
            return Err(EngineError::invalid("dry_allowed_length", "must be >= 0"));
        }
        if self.dry_penalty_last_n < -1 {
            return Err(EngineError::invalid("dry_penalty_last_n", "must be >= -1"));
        }
        if self.dry_sequence_breakers.iter().any(|s| s.contains('\0')) {
            return Err(EngineError::invalid(
                "dry_sequence_breakers",
                "must not contain NUL characters",
            ));
        }
        for &(tok, bias) in &self.logit_bias {
            if tok < 0 {
                return Err(EngineError::invalid(
                    "logit_bias",
                    format!("token id {tok} is negative"),
                ));
            }
            if bias.is_nan() || bias == f32::INFINITY {
                return Err(EngineError::invalid(
                    "logit_bias",
                    format!("bias for token {tok} must be finite or -inf, got {bias}"),
                ));
            }
        }
        for (text, bias) in &self.logit_bias_text {
            if bias.is_nan() || *bias == f32::INFINITY {
                return Err(EngineError::invalid(
                    "logit_bias",
                    format!("bias for {text:?} must be finite or -inf, got {bias}"),
                ));
            }
        }
        Ok(())
    }

    fn has_penalties(&self) -> bool {
        self.repeat_last_n != 0
            && (self.repeat_penalty != 1.0
                || self.presence_penalty != 0.0
                || self.frequency_penalty != 0.0)
    }

    fn has_dry(&self) -> bool {
        self.dry_multiplier > 0.0 && self.dry_penalty_last_n != 0
    }

    /// Whether the chain remembers tokens (penalties, DRY, mirostat): then the prompt is fed
    /// to it before the first sample, as llama-server does.
    pub(crate) fn wants_history(&self) -> bool {
        self.has_penalties() || self.has_dry()
    }

    /// Every `(token, bias)` the request runs with: `logit_bias`, the tokens of
    /// `logit_bias_text` (`tokenize` turns a text into ids), and `banned` at `-inf` (the
    /// end-of-generation tokens for `ignore_eos`). Call [`validate`](Self::validate) first.
    pub(crate) fn effective_logit_bias(
        &self,
        n_vocab: i32,
        banned: &[i32],
        tokenize: impl Fn(&str) -> Vec<i32>,
    ) -> Result<Vec<(i32, f32)>, EngineError> {
        let mut out = Vec::with_capacity(self.logit_bias.len() + banned.len());
        for &(tok, bias) in &self.logit_bias {
            if tok >= n_vocab {
                return Err(EngineError::invalid(
                    "logit_bias",
                    format!("token id {tok} is outside the vocabulary (0..{n_vocab})"),
                ));
            }
            out.push((tok, bias));
        }
        for (text, bias) in &self.logit_bias_text {
            out.extend(tokenize(text).into_iter().map(|t| (t, *bias)));
        }
        out.extend(banned.iter().map(|&t| (t, f32::NEG_INFINITY)));
        Ok(out)
    }

    /// Build the chain (not the grammar) with the biases of
    /// [`effective_logit_bias`](Self::effective_logit_bias).
    pub(crate) fn build_chain(
        &self,
        model: &LlamaModel,
        n_vocab: i32,
        logit_bias: &[(i32, f32)],
    ) -> Result<LlamaSampler, EngineError> {
        let seed = self.seed.unwrap_or(RANDOM_SEED);
        let mut chain: Vec<LlamaSampler> = Vec::with_capacity(12);

        let biases: Vec<LlamaLogitBias> = logit_bias
            .iter()
            .map(|&(tok, bias)| LlamaLogitBias::new(LlamaToken(tok), bias))
            .collect();
        if !biases.is_empty() {
            chain.push(LlamaSampler::logit_bias(n_vocab, &biases));
        }
        if self.has_penalties() {
            chain.push(LlamaSampler::penalties(
                n_vocab,
                self.repeat_last_n,
                self.repeat_penalty,
                self.frequency_penalty,
                self.presence_penalty,
            ));
        }
        if self.has_dry() {
            // Breakers were checked for NUL in `validate`; a NUL here would panic inside
            // llama-cpp-2, so check again rather than trust the caller.
            if self.dry_sequence_breakers.iter().any(|s| s.contains('\0')) {
                return Err(EngineError::invalid(
                    "dry_sequence_breakers",
                    "must not contain NUL characters",
                ));
            }
            chain.push(LlamaSampler::dry(
                model,
                self.dry_multiplier,
                self.dry_base,
                self.dry_allowed_length,
                self.dry_penalty_last_n,
                self.dry_sequence_breakers.iter().map(String::as_bytes),
            ));
        }

        if self.temperature <= 0.0 {
            chain.push(LlamaSampler::greedy());
        } else if self.mirostat == 1 {
            chain.push(LlamaSampler::temp(self.temperature));
            chain.push(LlamaSampler::mirostat(
                n_vocab,
                seed,
                self.mirostat_tau,
                self.mirostat_eta,
                100,
            ));
        } else if self.mirostat == 2 {
            chain.push(LlamaSampler::temp(self.temperature));
            chain.push(LlamaSampler::mirostat_v2(
                seed,
                self.mirostat_tau,
                self.mirostat_eta,
            ));
        } else {
            if self.top_n_sigma > 0.0 {
                chain.push(LlamaSampler::top_n_sigma(self.top_n_sigma));
            }
            if self.top_k > 0 {
                chain.push(LlamaSampler::top_k(self.top_k));
            }
            if self.typical_p < 1.0 {
                chain.push(LlamaSampler::typical(self.typical_p, 1));
            }
            if self.top_p < 1.0 {
                chain.push(LlamaSampler::top_p(self.top_p, 1));
            }
            if self.min_p > 0.0 {
                chain.push(LlamaSampler::min_p(self.min_p, 1));
            }
            if self.xtc_probability > 0.0 {
                chain.push(LlamaSampler::xtc(
                    self.xtc_probability,
                    self.xtc_threshold,
                    1,
                    seed,
                ));
            }
            chain.push(LlamaSampler::temp_ext(self.temperature, 0.0, 1.0));
            chain.push(LlamaSampler::dist(seed));
        }
        Ok(LlamaSampler::chain(chain, true))
    }
}

/// A constraint on the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grammar {
    /// GBNF text with a `root` rule.
    Gbnf(String),
    /// A JSON schema; converted to GBNF by llama.cpp's converter.
    JsonSchema(serde_json::Value),
}

impl Grammar {
    /// The GBNF text (converting a schema).
    pub(crate) fn to_gbnf(&self) -> Result<String, EngineError> {
        match self {
            Grammar::Gbnf(g) => Ok(g.clone()),
            Grammar::JsonSchema(schema) => {
                let text = serde_json::to_string(schema)
                    .map_err(|e| EngineError::InvalidGrammar(format!("schema: {e}")))?;
                llama_cpp_2::json_schema_to_grammar(&text).map_err(|e| {
                    EngineError::InvalidGrammar(format!(
                        "could not convert the JSON schema to a grammar ({e})"
                    ))
                })
            }
        }
    }

    /// Build the grammar sampler; `OverLimit` above `caps`, `InvalidGrammar` if llama.cpp
    /// rejects it. Sizes are checked first, then llama.cpp converts and parses on a thread
    /// with the grammar stack (`crate::grammar`), whatever thread calls this.
    pub(crate) fn build(
        &self,
        model: &LlamaModel,
        caps: &crate::request::Caps,
    ) -> Result<LlamaSampler, EngineError> {
        if let Grammar::JsonSchema(schema) = self {
            crate::grammar::check_schema(schema, caps)?;
        }
        crate::grammar::on_grammar_stack(|| {
            let gbnf = self.to_gbnf()?;
            if gbnf.contains('\0') {
                return Err(EngineError::InvalidGrammar(
                    "the grammar contains a NUL character".into(),
                ));
            }
            check_repetitions(&gbnf).map_err(EngineError::InvalidGrammar)?;
            crate::grammar::check_gbnf(&gbnf, caps)?;
            if !gbnf.contains("root") {
                return Err(EngineError::InvalidGrammar(
                    "the grammar has no 'root' rule".into(),
                ));
            }
            crate::backend::clear_last_error();
            LlamaSampler::grammar(model, &gbnf, "root").map_err(|e| {
                let detail = crate::backend::take_last_error().unwrap_or_else(|| e.to_string());
                EngineError::InvalidGrammar(detail)
            })
        })
    }
}

/// Largest `{n,m}` count accepted (llama.cpp expands repetitions into rules).
const MAX_REPETITION: u64 = 4096;

/// Reject `{n,m}` repetitions llama.cpp's parser mishandles: with `m < n` it tries to allocate
/// an enormous rule (seen: 24 GiB, then the OOM killer), and huge counts expand without end.
/// Literals, character classes, tokens and comments are skipped.
fn check_repetitions(gbnf: &str) -> Result<(), String> {
    let b = gbnf.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if let Some(after) = crate::grammar::skip_opaque(b, i) {
            i = after;
            continue;
        }
        match b[i] {
            b'{' => {
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b'}')
                    .map(|p| i + p)
                    .ok_or("unclosed '{' repetition")?;
                let body = std::str::from_utf8(&b[i + 1..end]).map_err(|_| "bad repetition")?;
                let num = |t: &str| -> Result<Option<u64>, String> {
                    let t = t.trim();
                    if t.is_empty() {
                        return Ok(None);
                    }
                    match t.parse::<u64>() {
                        Ok(n) if n <= MAX_REPETITION => Ok(Some(n)),
                        _ => Err(format!(
                            "repetition count '{t}' is not a number up to {MAX_REPETITION}"
                        )),
                    }
                };
                let (min, max) = match body.split_once(',') {
                    Some((a, b)) => (num(a)?.unwrap_or(0), num(b)?),
                    None => {
                        let n = num(body)?.ok_or("empty repetition '{}'")?;
                        (n, Some(n))
                    }
                };
                if let Some(max) = max
                    && max < min
                {
                    return Err(format!(
                        "repetition {{{body}}} has its maximum below its minimum"
                    ));
                }
                i = end + 1;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(p: SamplingParams) -> String {
        match p.validate() {
            Err(EngineError::InvalidParameter { name, .. }) => name,
            other => panic!("expected InvalidParameter, got {other:?}"),
        }
    }

    #[test]
    fn bad_repetitions_are_caught_before_llama_cpp() {
        assert!(check_repetitions(r#"root ::= "a"{2,1}"#).is_err());
        assert!(check_repetitions(r#"root ::= "a"{99999999999}"#).is_err());
        assert!(check_repetitions(r#"root ::= "a"{5000,}"#).is_err());
        assert!(check_repetitions(r#"root ::= "a"{2"#).is_err());
        check_repetitions(r#"root ::= "a"{2,3} "b"{,4} "c"{1,} [{}] "{9,1}" # {9,1}"#).unwrap();
    }

    #[test]
    fn defaults_are_valid() {
        SamplingParams::default().validate().unwrap();
        SamplingParams::greedy().validate().unwrap();
        // top_k = 0 disables (llama-server); a negative one is refused (the issue's rule).
        SamplingParams {
            top_k: 0,
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert_eq!(
            field(SamplingParams {
                top_k: -5,
                ..Default::default()
            }),
            "top_k"
        );
    }

    #[test]
    fn invalid_values_name_their_field() {
        let d = SamplingParams::default;
        assert_eq!(
            field(SamplingParams {
                temperature: f32::NAN,
                ..d()
            }),
            "temperature"
        );
        assert_eq!(
            field(SamplingParams {
                temperature: -0.5,
                ..d()
            }),
            "temperature"
        );
        assert_eq!(
            field(SamplingParams {
                temperature: f32::INFINITY,
                ..d()
            }),
            "temperature"
        );
        assert_eq!(field(SamplingParams { top_p: 1.5, ..d() }), "top_p");
        assert_eq!(field(SamplingParams { top_p: -0.1, ..d() }), "top_p");
        assert_eq!(field(SamplingParams { min_p: 2.0, ..d() }), "min_p");
        assert_eq!(field(SamplingParams { mirostat: 3, ..d() }), "mirostat");
        assert_eq!(
            field(SamplingParams {
                repeat_penalty: 0.0,
                ..d()
            }),
            "repeat_penalty"
        );
        assert_eq!(
            field(SamplingParams {
                repeat_last_n: -2,
                ..d()
            }),
            "repeat_last_n"
        );
        assert_eq!(
            field(SamplingParams {
                dry_sequence_breakers: vec!["a\0b".into()],
                ..d()
            }),
            "dry_sequence_breakers"
        );
        assert_eq!(
            field(SamplingParams {
                logit_bias: vec![(-1, 1.0)],
                ..d()
            }),
            "logit_bias"
        );
        assert_eq!(
            field(SamplingParams {
                logit_bias: vec![(5, f32::NAN)],
                ..d()
            }),
            "logit_bias"
        );
        // -inf bans a token: allowed.
        SamplingParams {
            logit_bias: vec![(5, f32::NEG_INFINITY)],
            ..d()
        }
        .validate()
        .unwrap();
    }
}
