//! The per-request limits (`[limits]` in the configuration), checked once for every API
//! family before any work is queued or a model is loaded: the HTTP server calls [`check`] on
//! each protocol-neutral [`Request`] before it acquires the model, and the checks of other
//! request kinds (rerank documents, ...) live next to it. Every refusal is a
//! [`ServiceError::Limit`] naming the limit and the setting that raises it.
//!
//! What each limit guards against: many stop strings or `logit_bias` entries turn a small
//! body into work on every generated token; a prompt of token ids is tokens without
//! tokenizing; `max_prompt_chars` and `max_response_tokens` are the operator's caps (seed 003),
//! off by default.

use crate::error::ServiceError;
use crate::generate::{Input, Request};
use chat::ChatMessage;
pub use config::LimitsConfig as Limits;
use engine::{Caps, GenerateRequest, InfillPrompt, Limit, Prompt, PromptPart};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

/// A request over one of the `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitExceeded {
    /// The request field at fault (OpenAI's `param`).
    pub field: String,
    /// What is counted, plural: "stop strings", "characters".
    pub what: &'static str,
    /// How many the request holds; `None` when counting stopped at the limit (a body read
    /// only as far as the limit).
    pub found: Option<u64>,
    pub limit: u64,
    /// The configuration key that raises the limit (`limits.max_stop`).
    pub setting: &'static str,
    /// About the size of the input (413) rather than a value asked for (400).
    pub too_large: bool,
}

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let LimitExceeded {
            field,
            what,
            limit,
            setting,
            ..
        } = self;
        match self.found {
            Some(n) => write!(f, "'{field}' has {n} {what}")?,
            None => write!(f, "'{field}' has more than {limit} {what}")?,
        }
        write!(
            f,
            "; this server allows at most {limit} (setting {setting})"
        )
    }
}

impl LimitExceeded {
    fn over(
        field: impl Into<String>,
        what: &'static str,
        found: u64,
        limit: u64,
        setting: &'static str,
    ) -> ServiceError {
        ServiceError::Limit(LimitExceeded {
            field: field.into(),
            what,
            found: Some(found),
            limit,
            setting,
            too_large: false,
        })
    }

    fn too_large(mut self) -> Self {
        self.too_large = true;
        self
    }
}

/// Checks a generation request, before a model is acquired or anything queued: what every
/// request must satisfy ([`crate::generate::validate`]), then the limits. A request that
/// asks no token limit gets `limits.max_response_tokens` as its limit when that is set.
pub fn check(req: &mut Request, limits: &Limits) -> Result<(), ServiceError> {
    crate::generate::validate(req)?;
    check_params(&mut req.params, limits)?;
    match &req.input {
        Input::Prompt(p) => check_prompt(p, "prompt", limits),
        Input::Chat(chat) => check_prompt_chars(messages_chars(&chat.messages), "messages", limits),
    }
}

/// Stop strings (and DRY sequence breakers, strings llama.cpp matches against the whole
/// vocabulary when it builds the sampler), `logit_bias` and the response's token limit.
fn check_params(p: &mut GenerateRequest, limits: &Limits) -> Result<(), ServiceError> {
    check_strings(&p.stop, "stop", "stop strings", limits)?;
    // Breakers matter only with DRY on (llama.cpp builds nothing from them otherwise).
    if p.sampling.dry_multiplier > 0.0 {
        check_strings(
            &p.sampling.dry_sequence_breakers,
            "dry_sequence_breakers",
            "sequence breakers",
            limits,
        )?;
    }
    // A text entry becomes one bias per token of the text: counted at its bytes, the most
    // tokens it can become, so the cap bounds the biases the sampler applies per token.
    let biases = p.sampling.logit_bias.len() as u64
        + p.sampling
            .logit_bias_text
            .iter()
            .map(|(t, _)| t.len().max(1) as u64)
            .sum::<u64>();
    if biases > u64::from(limits.max_logit_bias) {
        return Err(LimitExceeded::over(
            "logit_bias",
            "entries (a text counts its bytes)",
            biases,
            limits.max_logit_bias.into(),
            "limits.max_logit_bias",
        ));
    }
    let cap = limits.max_response_tokens;
    if cap > 0 {
        match p.max_tokens {
            None => p.max_tokens = Some(cap),
            Some(n) if n > cap => {
                return Err(ServiceError::Limit(LimitExceeded {
                    field: "max_tokens".into(),
                    what: "tokens asked for the response",
                    found: Some(n.into()),
                    limit: cap.into(),
                    setting: "limits.max_response_tokens",
                    too_large: false,
                }));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// A list of strings under `limits.max_stop` and `limits.max_stop_chars`.
fn check_strings(
    strings: &[String],
    field: &str,
    what: &'static str,
    limits: &Limits,
) -> Result<(), ServiceError> {
    let n = strings.len() as u64;
    if n > u64::from(limits.max_stop) {
        return Err(LimitExceeded::over(
            field,
            what,
            n,
            limits.max_stop.into(),
            "limits.max_stop",
        ));
    }
    let chars: u64 = strings.iter().map(|s| s.chars().count() as u64).sum();
    if chars > u64::from(limits.max_stop_chars) {
        return Err(LimitExceeded::over(
            field,
            "characters across its strings",
            chars,
            limits.max_stop_chars.into(),
            "limits.max_stop_chars",
        ));
    }
    Ok(())
}

/// A raw prompt: its characters, or its token ids.
pub fn check_prompt(p: &Prompt, field: &str, limits: &Limits) -> Result<(), ServiceError> {
    match p {
        Prompt::Text { text, .. } => check_prompt_chars(text.chars().count() as u64, field, limits),
        Prompt::Tokens(tokens) => check_prompt_token_ids(tokens.len(), field, limits),
        Prompt::Infill(infill) => check_prompt_chars(infill_chars(infill), field, limits),
        Prompt::Mixed(parts) => {
            let (chars, ids) = PromptPart::count(parts);
            check_prompt_token_ids(ids as usize, field, limits)?;
            check_prompt_chars(chars, field, limits)
        }
    }
}

/// Checks every generation of one request (its prompts times `n`) against the limits, and
/// their number against `limits.max_completions`, before any of them is queued.
pub fn check_all(reqs: &mut [Request], limits: &Limits) -> Result<(), ServiceError> {
    let n = reqs.len() as u64;
    if n > u64::from(limits.max_completions) {
        return Err(LimitExceeded::over(
            "n",
            "completions (prompts times n)",
            n,
            limits.max_completions.into(),
            "limits.max_completions",
        ));
    }
    reqs.iter_mut().try_for_each(|r| check(r, limits))
}

/// Vertex AI's `instances` of one predict request: each is a request of its own (a
/// generation or more), so their number is capped by `limits.max_completions` too,
/// before any is dispatched.
pub fn check_instances(n: usize, limits: &Limits) -> Result<(), ServiceError> {
    if n as u64 <= u64::from(limits.max_completions) {
        return Ok(());
    }
    Err(LimitExceeded::over(
        "instances",
        "instances in one predict request",
        n as u64,
        limits.max_completions.into(),
        "limits.max_completions",
    ))
}

/// A prompt given as token ids, `n` long.
pub fn check_prompt_token_ids(n: usize, field: &str, limits: &Limits) -> Result<(), ServiceError> {
    if n as u64 <= u64::from(limits.max_prompt_token_ids) {
        return Ok(());
    }
    Err(token_ids_over(field, Some(n as u64), limits))
}

/// A prompt of token ids whose reader stopped at the limit (the HTTP layer counts while it
/// parses, so a huge list is never held whole).
pub fn prompt_token_ids_cut_short(field: &str, limits: &Limits) -> ServiceError {
    token_ids_over(field, None, limits)
}

fn token_ids_over(field: &str, found: Option<u64>, limits: &Limits) -> ServiceError {
    ServiceError::Limit(
        LimitExceeded {
            field: field.into(),
            what: "token ids",
            found,
            limit: limits.max_prompt_token_ids.into(),
            setting: "limits.max_prompt_token_ids",
            too_large: false,
        }
        .too_large(),
    )
}

fn check_prompt_chars(chars: u64, field: &str, limits: &Limits) -> Result<(), ServiceError> {
    let cap = limits.max_prompt_chars;
    if cap == 0 || chars <= cap {
        return Ok(());
    }
    Err(ServiceError::Limit(
        LimitExceeded {
            field: field.into(),
            what: "characters of prompt",
            found: Some(chars),
            limit: cap,
            setting: "limits.max_prompt_chars",
            too_large: false,
        }
        .too_large(),
    ))
}

/// A chat session's message (send, edit, import): at most `sessions.max_message_chars`
/// characters, checked before it is stored or any work is queued.
pub fn check_message_chars(
    text: &str,
    field: &str,
    sessions: &config::SessionsConfig,
) -> Result<(), ServiceError> {
    let cap = u64::from(sessions.max_message_chars);
    let chars = text.chars().count() as u64;
    if chars <= cap {
        return Ok(());
    }
    Err(ServiceError::Limit(
        LimitExceeded {
            field: field.into(),
            what: "characters",
            found: Some(chars),
            limit: cap,
            setting: "sessions.max_message_chars",
            too_large: false,
        }
        .too_large(),
    ))
}

/// The text a client sends in a conversation: contents, reasoning, tool-call arguments.
fn messages_chars(messages: &[ChatMessage]) -> u64 {
    let count = |s: &str| s.chars().count() as u64;
    messages
        .iter()
        .map(|m| {
            count(&m.text())
                + m.reasoning_content.as_deref().map_or(0, count)
                + m.tool_calls
                    .iter()
                    .map(|c| count(&c.arguments))
                    .sum::<u64>()
        })
        .sum()
}

fn infill_chars(p: &InfillPrompt) -> u64 {
    let count = |s: &str| s.chars().count() as u64;
    count(&p.input_prefix)
        + count(&p.input_suffix)
        + count(&p.prompt)
        + p.input_extra.iter().map(|c| count(&c.text)).sum::<u64>()
}

/// Documents of one rerank request.
pub fn check_documents(n: usize, limits: &Limits) -> Result<(), ServiceError> {
    let limit = u64::from(limits.max_documents);
    if n as u64 <= limit {
        return Ok(());
    }
    Err(ServiceError::Limit(
        LimitExceeded {
            field: "documents".into(),
            what: "documents",
            found: Some(n as u64),
            limit,
            setting: "limits.max_documents",
            too_large: false,
        }
        .too_large(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::ChatInput;

    fn request(input: Input) -> Request {
        Request {
            input,
            params: GenerateRequest::default(),
            response_format: Default::default(),
        }
    }

    fn limit_of(e: ServiceError) -> LimitExceeded {
        match e {
            ServiceError::Limit(l) => l,
            other => panic!("not a limit: {other}"),
        }
    }

    #[test]
    fn every_setting_named_is_a_config_key() {
        let src = include_str!("limits.rs");
        // (The prefix is split so this line does not name a setting itself.)
        let prefix = concat!("limits", ".max_");
        let named: Vec<&str> = src.split('"').filter(|s| s.starts_with(prefix)).collect();
        assert!(named.len() >= 7, "{named:?}");
        for setting in named {
            assert!(config::setting(setting).is_some(), "{setting}");
        }
    }

    #[test]
    fn response_tokens_cap_fills_in_and_refuses() {
        let l = Limits {
            max_response_tokens: 16,
            ..Default::default()
        };
        let mut r = request(Input::Prompt(Prompt::text("x")));
        check(&mut r, &l).unwrap();
        assert_eq!(r.params.max_tokens, Some(16));
        r.params.max_tokens = Some(17);
        let e = check(&mut r, &l).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::BadRequest);
        assert!(e.to_string().contains("limits.max_response_tokens"), "{e}");
        // Off by default: no limit is added.
        let mut r = request(Input::Prompt(Prompt::text("x")));
        check(&mut r, &Limits::default()).unwrap();
        assert_eq!(r.params.max_tokens, None);
    }

    #[test]
    fn prompt_chars_count_characters_not_bytes() {
        let l = Limits {
            max_prompt_chars: 3,
            ..Default::default()
        };
        check(&mut request(Input::Prompt(Prompt::text("ééé"))), &l).unwrap();
        let e = check(&mut request(Input::Prompt(Prompt::text("éééé"))), &l).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::TooLarge);
        let chat = ChatInput {
            messages: vec![ChatMessage::system("ab"), ChatMessage::user("cd")],
            ..Default::default()
        };
        let e = limit_of(check(&mut request(Input::Chat(chat)), &l).unwrap_err());
        assert_eq!((e.field.as_str(), e.found), ("messages", Some(4)));
    }

    #[test]
    fn completions_are_counted_before_any_is_checked_or_queued() {
        let l = Limits {
            max_completions: 2,
            ..Default::default()
        };
        let mut two: Vec<Request> = (0..2)
            .map(|_| request(Input::Prompt(Prompt::text("x"))))
            .collect();
        check_all(&mut two, &l).unwrap();
        two.push(request(Input::Prompt(Prompt::text("x"))));
        let e = limit_of(check_all(&mut two, &l).unwrap_err());
        assert_eq!(
            (e.field.as_str(), e.found, e.setting),
            ("n", Some(3), "limits.max_completions")
        );
    }

    #[test]
    fn mixed_prompts_count_their_ids_and_characters() {
        let l = Limits {
            max_prompt_token_ids: 2,
            max_prompt_chars: 3,
            ..Default::default()
        };
        let mixed = |parts| Prompt::Mixed(parts);
        let ok = mixed(vec![
            PromptPart::Tokens(vec![1, 2]),
            PromptPart::Text("abc".into()),
        ]);
        check_prompt(&ok, "prompt", &l).unwrap();
        let ids = mixed(vec![
            PromptPart::Tokens(vec![1]),
            PromptPart::Tokens(vec![2, 3]),
        ]);
        assert_eq!(
            limit_of(check_prompt(&ids, "prompt", &l).unwrap_err()).setting,
            "limits.max_prompt_token_ids"
        );
        let chars = mixed(vec![
            PromptPart::Text("ab".into()),
            PromptPart::Text("cd".into()),
        ]);
        assert_eq!(
            limit_of(check_prompt(&chars, "prompt", &l).unwrap_err()).setting,
            "limits.max_prompt_chars"
        );
    }

    #[test]
    fn text_logit_biases_count_their_bytes() {
        let l = Limits {
            max_logit_bias: 4,
            ..Default::default()
        };
        let mut r = request(Input::Prompt(Prompt::text("x")));
        r.params.sampling.logit_bias = vec![(1, 1.0)];
        r.params.sampling.logit_bias_text = vec![("abc".into(), -1.0)];
        check(&mut r, &l).unwrap();
        r.params.sampling.logit_bias_text = vec![("abcd".into(), -1.0)];
        let e = limit_of(check(&mut r, &l).unwrap_err());
        assert_eq!((e.found, e.setting), (Some(5), "limits.max_logit_bias"));
    }

    #[test]
    fn token_ids_counted_or_cut_short() {
        let l = Limits {
            max_prompt_token_ids: 2,
            ..Default::default()
        };
        check_prompt(&Prompt::Tokens(vec![1, 2]), "prompt", &l).unwrap();
        assert!(check_prompt(&Prompt::Tokens(vec![1, 2, 3]), "prompt", &l).is_err());
        let e = limit_of(prompt_token_ids_cut_short("prompt", &l));
        assert_eq!(
            e.to_string(),
            "'prompt' has more than 2 token ids; this server allows at most 2 \
             (setting limits.max_prompt_token_ids)"
        );
    }
}

// ---------------------------------------------------------------- requests in flight, engine caps

/// What one request may ask of the engine (grammar size, embedding inputs, tokens and
/// output floats) as the engine's [`Caps`], which it checks before any work; and how many
/// requests may be in flight: [`Admission::admit`] gives a [`Ticket`] or refuses when
/// `max_in_flight` requests are already running or waiting (503); the ticket then takes its
/// place on the model it runs on, refused when `max_waiting_per_model` requests already wait
/// for that model's slots (429). Both before anything is queued; the ticket is given back
/// when the request ends (dropped with its generation).
#[derive(Debug, Default)]
pub struct Admission {
    config: RwLock<Limits>,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: u64,
    /// Requests on each model (running or waiting for a slot).
    per_model: HashMap<String, u64>,
}

impl Admission {
    pub fn new(config: Limits) -> Arc<Self> {
        Arc::new(Admission {
            config: RwLock::new(config),
            counts: Mutex::default(),
        })
    }

    pub fn config(&self) -> Limits {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A changed `[limits]` applies to the next request.
    pub fn set_config(&self, config: Limits) {
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = config;
    }

    /// What one request may ask of the engine.
    pub fn caps(&self) -> Caps {
        let c = self.config();
        Caps {
            grammar_depth: c.max_grammar_depth,
            grammar_rules: c.max_grammar_rules,
            embedding_inputs: c.max_embedding_inputs,
            embedding_tokens: c.max_embedding_tokens,
            embedding_floats: c.max_embedding_floats,
        }
    }

    /// A place among the requests in flight, or `ServerFull` when `max_in_flight` are.
    pub fn admit(self: &Arc<Self>) -> Result<Ticket, ServiceError> {
        let max = u64::from(self.config().max_in_flight);
        let mut counts = self.counts();
        if counts.total >= max {
            return Err(ServiceError::ServerFull { max });
        }
        counts.total += 1;
        Ok(Ticket {
            limits: self.clone(),
            model: None,
        })
    }

    /// Requests in flight (running or waiting), across all models.
    pub fn in_flight(&self) -> u64 {
        self.counts().total
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A request's place among those in flight; given back on drop.
#[derive(Debug)]
pub struct Ticket {
    limits: Arc<Admission>,
    model: Option<String>,
}

impl Ticket {
    /// Takes a place on `model`, which has `n_slots` slots: refused with `ModelBusy` when
    /// `max_waiting_per_model` requests already wait beyond them.
    pub fn on_model(&mut self, model: &str, n_slots: u32) -> Result<(), ServiceError> {
        if self.model.is_some() {
            return Ok(());
        }
        let max_waiting = u64::from(self.limits.config().max_waiting_per_model);
        let mut counts = self.limits.counts();
        let on = counts.per_model.entry(model.to_string()).or_insert(0);
        if *on >= u64::from(n_slots) + max_waiting {
            return Err(ServiceError::ModelBusy {
                model: model.to_string(),
                max_waiting,
            });
        }
        *on += 1;
        self.model = Some(model.to_string());
        Ok(())
    }

    /// The engine caps for this request.
    pub fn caps(&self) -> Caps {
        self.limits.caps()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self.limits.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(m) = self.model.take()
            && let Some(n) = counts.per_model.get_mut(&m)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_model.remove(&m);
            }
        }
    }
}

/// The `[limits]` setting that raises an engine cap.
pub fn setting(limit: Limit) -> &'static str {
    match limit {
        Limit::GrammarDepth => "limits.max_grammar_depth",
        Limit::GrammarRules => "limits.max_grammar_rules",
        Limit::EmbeddingInputs => "limits.max_embedding_inputs",
        Limit::EmbeddingTokens => "limits.max_embedding_tokens",
        Limit::EmbeddingFloats => "limits.max_embedding_floats",
    }
}

#[cfg(test)]
mod admission_tests {
    use super::*;

    fn limits(max_in_flight: u32, max_waiting_per_model: u32) -> Arc<Admission> {
        Admission::new(Limits {
            max_in_flight,
            max_waiting_per_model,
            ..Limits::default()
        })
    }

    #[test]
    fn in_flight_is_bounded_in_total_and_given_back() {
        let l = limits(2, 10);
        let a = l.admit().unwrap();
        let b = l.admit().unwrap();
        assert!(matches!(
            l.admit(),
            Err(ServiceError::ServerFull { max: 2 })
        ));
        drop(a);
        let _c = l.admit().unwrap();
        drop(b);
        assert_eq!(l.in_flight(), 1);
    }

    #[test]
    fn a_model_takes_its_slots_plus_the_waiting_ones() {
        let l = limits(100, 1);
        let mut tickets: Vec<Ticket> = (0..3).map(|_| l.admit().unwrap()).collect();
        // Two slots and one waiting.
        for t in &mut tickets {
            t.on_model("m", 2).unwrap();
        }
        let mut fourth = l.admit().unwrap();
        assert!(matches!(
            fourth.on_model("m", 2),
            Err(ServiceError::ModelBusy { max_waiting: 1, .. })
        ));
        // Other models are not affected.
        fourth.on_model("other", 1).unwrap();
        tickets.pop();
        let mut fifth = l.admit().unwrap();
        fifth.on_model("m", 2).unwrap();
    }
}
