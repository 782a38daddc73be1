//! Request fields shared by the OpenAI and llama.cpp-native generation routes: sampling,
//! stop strings, token limits, grammar. Field names are llama-server's (which accepts the
//! OpenAI names too); values are checked here or by the engine, and every error names
//! its field.

use crate::error::ApiError;
use serde::Deserialize;
use serde_json::Value;
use service::SamplingDefaults;
use service::{GenerateRequest, Grammar, SamplingParams};

/// `stop`: one string or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StopField {
    One(String),
    Many(Vec<String>),
}

impl StopField {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            StopField::One(s) => vec![s],
            StopField::Many(v) => v,
        }
    }
}

/// Sampling and output-control fields. Every field is optional; absent ones take the
/// server's defaults.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GenFields {
    pub temperature: Option<f32>,
    pub top_k: Option<i32>,
    pub top_p: Option<f32>,
    pub min_p: Option<f32>,
    pub typical_p: Option<f32>,
    pub top_n_sigma: Option<f32>,
    pub xtc_probability: Option<f32>,
    pub xtc_threshold: Option<f32>,
    pub mirostat: Option<u8>,
    pub mirostat_tau: Option<f32>,
    pub mirostat_eta: Option<f32>,
    pub repeat_penalty: Option<f32>,
    pub repeat_last_n: Option<i32>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub dry_multiplier: Option<f32>,
    pub dry_base: Option<f32>,
    pub dry_allowed_length: Option<i32>,
    pub dry_penalty_last_n: Option<i32>,
    pub dry_sequence_breakers: Option<Vec<String>>,
    /// A negative seed (llama-server's -1) means random.
    pub seed: Option<i64>,
    /// OpenAI: `{"token id": bias}`; llama-server: `[[token, bias], ...]` (bias `false` bans).
    pub logit_bias: Option<Value>,
    pub ignore_eos: Option<bool>,
    pub stop: Option<StopField>,
    /// llama-server's name for the token limit (-1 = no limit).
    pub n_predict: Option<i64>,
    pub max_tokens: Option<i64>,
    pub max_completion_tokens: Option<i64>,
    pub n_probs: Option<u32>,
    /// `n_probs` as the probabilities the token was sampled with (llama-server).
    pub post_sampling_probs: Option<bool>,
    /// Stream prompt-processing progress (llama-server's `prompt_progress` chunks).
    pub return_progress: Option<bool>,
    /// Timings so far on every streamed token (llama-server's `timings_per_token`).
    pub timings_per_token: Option<bool>,
    pub grammar: Option<String>,
    pub json_schema: Option<Value>,
    pub cache_prompt: Option<bool>,
    pub id_slot: Option<i64>,
    pub n_keep: Option<i64>,
    /// Jump the queue.
    pub priority: Option<bool>,
}

impl GenFields {
    /// The engine request (with an empty prompt) these fields describe.
    pub fn to_request(&self, defaults: &SamplingDefaults) -> Result<GenerateRequest, ApiError> {
        let mut s: SamplingParams = defaults.params();
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { s.$f = v; } )* };
        }
        set!(
            temperature,
            top_k,
            top_p,
            min_p,
            typical_p,
            top_n_sigma,
            xtc_probability,
            xtc_threshold,
            mirostat,
            mirostat_tau,
            mirostat_eta,
            repeat_penalty,
            repeat_last_n,
            presence_penalty,
            frequency_penalty,
            dry_multiplier,
            dry_base,
            dry_allowed_length,
            dry_penalty_last_n
        );
        if let Some(b) = &self.dry_sequence_breakers {
            s.dry_sequence_breakers = b.clone();
        }
        s.seed = match self.seed {
            // The server's (`sampling.seed`, `--seed`).
            None => s.seed,
            Some(n) if n < 0 => None,
            Some(n) => Some(
                u32::try_from(n).map_err(|_| ApiError::invalid("seed", "must fit in 32 bits"))?,
            ),
        };
        if let Some(b) = &self.logit_bias {
            (s.logit_bias, s.logit_bias_text) = parse_logit_bias(b)?;
        }
        let mut req = GenerateRequest {
            sampling: s,
            ..Default::default()
        };
        req.max_tokens = match self.max_tokens()? {
            Limit::Given(n) => n,
            // The server's (`sampling.n_predict`, `-n`).
            Limit::NotGiven => defaults.n_predict,
        };
        if let Some(stop) = &self.stop {
            // Their number and length are `limits.max_stop*`, checked by `service::limits`.
            req.stop = stop.clone().into_vec();
            req.stop.retain(|s| !s.is_empty());
        }
        req.ignore_eos = self.ignore_eos.unwrap_or(false);
        req.n_probs = self.n_probs.unwrap_or(0);
        req.post_sampling_probs = self.post_sampling_probs.unwrap_or(false);
        req.return_progress = self.return_progress.unwrap_or(false);
        req.timings_per_token = self.timings_per_token.unwrap_or(false);
        req.cache_prompt = self.cache_prompt.unwrap_or(true);
        req.priority = self.priority.unwrap_or(false);
        req.id_slot = match self.id_slot {
            None => None,
            Some(n) if n < 0 => None,
            Some(n) => {
                Some(u32::try_from(n).map_err(|_| ApiError::invalid("id_slot", "no such slot"))?)
            }
        };
        req.n_keep = match self.n_keep {
            None => 0,
            Some(n) if n < 0 => u32::MAX,
            Some(n) => u32::try_from(n).unwrap_or(u32::MAX),
        };
        req.grammar = match (&self.grammar, &self.json_schema) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "grammar",
                    "give either grammar or json_schema, not both",
                ));
            }
            (Some(g), None) if !g.trim().is_empty() => Some(Grammar::Gbnf(g.clone())),
            (None, Some(schema)) if !schema.is_null() => Some(Grammar::JsonSchema(schema.clone())),
            _ => None,
        };
        // Sampling values (negative top_k, NaN temperature, ...) are checked by the engine,
        // which names the field; check now so the error comes before a model loads.
        req.validate()?;
        Ok(req)
    }

    /// `max_completion_tokens` > `max_tokens` > `n_predict`; negative = no limit.
    fn max_tokens(&self) -> Result<Limit, ApiError> {
        let (name, v) = if let Some(v) = self.max_completion_tokens {
            ("max_completion_tokens", v)
        } else if let Some(v) = self.max_tokens {
            ("max_tokens", v)
        } else if let Some(v) = self.n_predict {
            ("n_predict", v)
        } else {
            return Ok(Limit::NotGiven);
        };
        if v < 0 {
            return Ok(Limit::Given(None));
        }
        u32::try_from(v)
            .map(|n| Limit::Given(Some(n)))
            .map_err(|_| ApiError::invalid(name, "too large"))
    }
}

/// A request's token limit: given (a number, or negative for none), or left to the server.
enum Limit {
    Given(Option<u32>),
    NotGiven,
}

/// A token id, or a text whose tokens all get the bias (llama-server tokenizes it).
#[derive(Debug, Clone, PartialEq)]
enum BiasKey {
    Id(i32),
    Text(String),
}

/// `logit_bias` in OpenAI's map form (`{"15": -100}`, or a text key: `{"hello": -100}`) and
/// llama-server's list form (`[[15, -100], ["hello", false]]`); `false` bans. Ids and texts
/// apart: the texts are tokenized by the engine, with the model.
fn parse_logit_bias(v: &Value) -> Result<(Vec<(i32, f32)>, Vec<(String, f32)>), ApiError> {
    let bad = |why: &str| ApiError::invalid("logit_bias", why);
    let id = |n: i64| -> Result<BiasKey, ApiError> {
        i32::try_from(n)
            .ok()
            .filter(|n| *n >= 0)
            .map(BiasKey::Id)
            .ok_or_else(|| bad("token ids must be non-negative 32-bit integers"))
    };
    let key = |t: &Value| -> Result<BiasKey, ApiError> {
        match t {
            Value::Number(n) => id(n
                .as_i64()
                .ok_or_else(|| bad("token ids must be integers"))?),
            // A key that is a number is an id (as llama-server's strtol), else a text.
            Value::String(s) => match s.trim().parse::<i64>() {
                Ok(n) => id(n),
                Err(_) if s.is_empty() => Err(bad("a text key must not be empty")),
                Err(_) => Ok(BiasKey::Text(s.clone())),
            },
            _ => Err(bad("keys must be token ids or texts")),
        }
    };
    let bias = |b: &Value| -> Result<f32, ApiError> {
        match b {
            Value::Number(n) => n
                .as_f64()
                .map(|f| f as f32)
                .filter(|f| f.is_finite())
                .ok_or_else(|| bad("biases must be finite numbers")),
            Value::Bool(false) => Ok(f32::NEG_INFINITY),
            _ => Err(bad("biases must be numbers (or false to ban a token)")),
        }
    };
    let entries: Vec<(BiasKey, f32)> = match v {
        Value::Null => Vec::new(),
        Value::Object(map) => map
            .iter()
            .map(|(k, b)| Ok((key(&Value::String(k.clone()))?, bias(b)?)))
            .collect::<Result<_, ApiError>>()?,
        Value::Array(items) => items
            .iter()
            .map(|item| match item.as_array().map(Vec::as_slice) {
                Some([t, b]) => Ok((key(t)?, bias(b)?)),
                _ => Err(bad("list entries must be [token or text, bias]")),
            })
            .collect::<Result<_, ApiError>>()?,
        _ => return Err(bad("must be an object or a list")),
    };
    let mut ids = Vec::new();
    let mut texts = Vec::new();
    for (k, b) in entries {
        match k {
            BiasKey::Id(t) => ids.push((t, b)),
            BiasKey::Text(t) => texts.push((t, b)),
        }
    }
    Ok((ids, texts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> SamplingDefaults {
        SamplingDefaults::from_config(&config::SamplingConfig::default())
    }

    #[test]
    fn limits_and_defaults() {
        let f: GenFields =
            serde_json::from_str(r#"{"max_tokens": 5, "n_predict": 9, "temperature": 0}"#).unwrap();
        let r = f.to_request(&defaults()).unwrap();
        assert_eq!(r.max_tokens, Some(5));
        assert_eq!(r.sampling.temperature, 0.0);
        assert_eq!(r.sampling.top_k, 40);
        let f: GenFields = serde_json::from_str(r#"{"n_predict": -1, "seed": -1}"#).unwrap();
        let r = f.to_request(&defaults()).unwrap();
        assert_eq!(r.max_tokens, None);
        assert_eq!(r.sampling.seed, None);
    }

    #[test]
    fn logit_bias_forms() {
        let (ids, texts) = parse_logit_bias(&serde_json::json!({"15": -100, "7": 2.5})).unwrap();
        assert_eq!((ids.len(), texts.len()), (2, 0));
        let (ids, _) = parse_logit_bias(&serde_json::json!([[15, false]])).unwrap();
        assert_eq!(ids[0].0, 15);
        assert!(ids[0].1.is_infinite());
        // Texts, in both forms (llama-server tokenizes them).
        let (ids, texts) = parse_logit_bias(&serde_json::json!([[" the ", -100], [3, 1]])).unwrap();
        assert_eq!(ids, [(3, 1.0)]);
        assert_eq!(texts, [(" the ".to_string(), -100.0)]);
        let (_, texts) = parse_logit_bias(&serde_json::json!({"hello": false})).unwrap();
        assert_eq!(texts[0].0, "hello");
        assert!(texts[0].1.is_infinite());
        for bad in [
            serde_json::json!({"": 1}),
            serde_json::json!([[1]]),
            serde_json::json!([[[1], 1]]),
            serde_json::json!("no"),
            serde_json::json!({"-3": 1}),
        ] {
            assert!(parse_logit_bias(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_sampling_values_name_the_field() {
        for (json, field) in [
            (r#"{"top_k": -5}"#, "top_k"),
            (r#"{"top_p": 2}"#, "top_p"),
            (r#"{"grammar": "x", "json_schema": {}}"#, "grammar"),
        ] {
            let f: GenFields = serde_json::from_str(json).unwrap();
            let e = f.to_request(&defaults()).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(field), "{json}: {}", e.message);
        }
    }
}
