//! Admission: everything about a request that can be computed or refused before the model's
//! thread sees it. It runs on the caller's thread (the model is `Send + Sync`): tokenizing,
//! building infill and rerank inputs, converting and parsing grammars, building samplers and
//! feeding them the prompt. The host thread gets a [`Ready`] request and only places and
//! decodes it, so a long prompt or a large JSON schema never stalls the streams running on
//! that model.
//!
//! The limits checked here are the ones fixed at load ([`Limits`]); what depends on the
//! host's state (a free slot, the queue's room, the global LoRA scales) is decided there.

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

use crate::budget::BudgetTracker;
use crate::embed::{EmbedRequest, Normalize, RerankVocab, cannot_rerank, rerank_tokens};
use crate::error::{EngineError, Limit};
use crate::host::TokenPiece;
use crate::infill::{FimTokens, InfillPrompt, format_infill};
use crate::lora::{LoraConfig, build_config};
use crate::params::Pooling;
use crate::request::{GenerateRequest, Prompt, PromptPart};

/// What admission needs to know about the loaded model and context; fixed at load.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub n_ctx_slot: u32,
    pub n_slots: u32,
    pub n_batch: usize,
    pub n_vocab: i32,
    pub eog_tokens: Vec<i32>,
    /// Loaded LoRA adapters (a request's scales name them by position).
    pub n_adapters: usize,
    /// The pooling the model declares, and the one embeddings use when not asked for one.
    pub model_pooling: Option<Pooling>,
    pub default_pooling: Pooling,
    /// `tokenizer.chat_template.rerank`, if the model has one.
    pub rerank_template: Option<String>,
    /// Tokens one embedding input may have.
    pub embed_n_ctx: u32,
    /// Floats in one embedding (a pooled vector, or one token's row).
    pub n_embd: u32,
}

/// A generation request ready to be placed in a slot: tokens, samplers (the chain has
/// already seen the prompt if it keeps a history) and the options the host still needs.
///
/// Samplers hold pointers into the model's vocabulary: a `Ready` must be dropped before
/// the model is freed. The handle keeps its reference to the model until the request has
/// been handed over (or refused), and the host frees the model only after its queue.
pub(crate) struct Ready {
    pub prompt: Vec<LlamaToken>,
    pub chain: LlamaSampler,
    pub grammar: Option<LlamaSampler>,
    pub max_tokens: Option<u32>,
    pub n_probs: u32,
    pub post_sampling_probs: bool,
    pub return_progress: bool,
    pub timings_per_token: bool,
    /// The biases the chain applies (reported back on the request's stream).
    pub logit_bias: Vec<(i32, f32)>,
    pub n_keep: u32,
    pub stop: Vec<String>,
    pub id_slot: Option<u32>,
    pub priority: bool,
    pub cache_prompt: bool,
    /// The request's own LoRA scales; `None`: the global ones when it starts (as
    /// llama-server, which takes them at launch).
    pub lora: Option<LoraConfig>,
    pub budget: Option<BudgetTracker>,
}

/// Everything that can fail about a generation request, before it is queued.
pub(crate) fn prepare(
    model: &LlamaModel,
    lim: &Limits,
    req: GenerateRequest,
) -> Result<Ready, EngineError> {
    req.validate()?;
    check_id_slot(req.id_slot, lim.n_slots)?;
    let prompt = match &req.prompt {
        Prompt::Text {
            text,
            add_special,
            parse_special,
        } => tokenize(model, text, *add_special, *parse_special),
        Prompt::Tokens(t) => check_tokens(t, lim.n_vocab, "prompt")?,
        Prompt::Infill(p) => infill_tokens(model, lim, p, req.max_tokens)?,
        Prompt::Mixed(parts) => mixed_tokens(model, lim, parts, true, "prompt")?,
    };
    check_prompt_len(prompt.len(), lim.n_ctx_slot)?;
    let lora = match req.lora.as_deref() {
        None | Some([]) => None,
        Some(scales) => Some(build_config(lim.n_adapters, scales)?.into()),
    };
    let grammar = match &req.grammar {
        Some(g) => Some(g.build(model, &req.caps)?),
        None => None,
    };
    // ignore_eos bans end-of-generation tokens; a grammar must be able to end, so it wins.
    let banned: &[i32] = if req.ignore_eos && grammar.is_none() {
        &lim.eog_tokens
    } else {
        &[]
    };
    let logit_bias = req
        .sampling
        .effective_logit_bias(lim.n_vocab, banned, |text| tokenize_ids(model, text, false))?;
    let mut chain = req.sampling.build_chain(model, lim.n_vocab, &logit_bias)?;
    if req.sampling.wants_history() {
        chain.accept_many(&prompt);
    }
    let budget = req.thinking_budget.map(|b| {
        let forced = tokenize(model, &format!("{}{}", b.message, b.end), false, true);
        BudgetTracker::new(b, forced)
    });
    Ok(Ready {
        prompt,
        chain,
        grammar,
        max_tokens: req.max_tokens,
        n_probs: req.n_probs,
        post_sampling_probs: req.post_sampling_probs,
        return_progress: req.return_progress,
        timings_per_token: req.timings_per_token,
        logit_bias,
        n_keep: req.n_keep,
        stop: req.stop,
        id_slot: req.id_slot,
        priority: req.priority,
        cache_prompt: req.cache_prompt,
        lora,
        budget,
    })
}

/// A prompt must have a token, and leave room in the slot for at least one more.
pub(crate) fn check_prompt_len(n_prompt: usize, n_ctx_slot: u32) -> Result<(), EngineError> {
    if n_prompt == 0 {
        return Err(EngineError::invalid("prompt", "the prompt is empty"));
    }
    if n_prompt >= n_ctx_slot as usize {
        return Err(EngineError::PromptTooLong {
            n_prompt: u32::try_from(n_prompt).unwrap_or(u32::MAX),
            n_ctx: n_ctx_slot,
        });
    }
    Ok(())
}

pub(crate) fn check_id_slot(id_slot: Option<u32>, n_slots: u32) -> Result<(), EngineError> {
    match id_slot {
        Some(id) if id >= n_slots => Err(EngineError::invalid(
            "id_slot",
            format!("there are {n_slots} slots (0..{n_slots})"),
        )),
        _ => Ok(()),
    }
}

pub(crate) fn check_tokens(
    tokens: &[i32],
    n_vocab: i32,
    field: &str,
) -> Result<Vec<LlamaToken>, EngineError> {
    if let Some(&bad) = tokens.iter().find(|&&t| t < 0 || t >= n_vocab) {
        return Err(EngineError::invalid(
            field,
            format!("token id {bad} is outside the vocabulary (0..{n_vocab})"),
        ));
    }
    Ok(tokens.iter().map(|&t| LlamaToken(t)).collect())
}

pub(crate) fn tokenize(
    model: &LlamaModel,
    text: &str,
    add_special: bool,
    parse_special: bool,
) -> Vec<LlamaToken> {
    model
        .vocab()
        .tokenize(text.as_bytes(), add_special, parse_special)
}

/// A mixed prompt's tokens, as llama-server's `tokenize_mixed`: texts with special tokens
/// parsed, BOS (when `add_special` and the model wants it) only before a text that comes
/// first; token ids checked against the vocabulary.
fn mixed_tokens(
    model: &LlamaModel,
    lim: &Limits,
    parts: &[PromptPart],
    add_special: bool,
    field: &str,
) -> Result<Vec<LlamaToken>, EngineError> {
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        match part {
            PromptPart::Text(text) => {
                out.extend(tokenize(model, text, add_special && i == 0, true))
            }
            PromptPart::Tokens(t) => out.extend(check_tokens(t, lim.n_vocab, field)?),
        }
    }
    Ok(out)
}

/// Tokens as ids, never adding BOS/EOS (the shape `format_infill` and `rerank_tokens` take).
fn tokenize_ids(model: &LlamaModel, text: &str, parse_special: bool) -> Vec<i32> {
    tokenize(model, text, false, parse_special)
        .into_iter()
        .map(|t| t.0)
        .collect()
}

pub(crate) fn detokenize(
    model: &LlamaModel,
    tokens: &[i32],
    n_vocab: i32,
) -> Result<String, EngineError> {
    let toks = check_tokens(tokens, n_vocab, "tokens")?;
    let bytes = model.vocab().detokenize(&toks, false, false);
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

pub(crate) fn token_pieces(
    model: &LlamaModel,
    tokens: &[i32],
    n_vocab: i32,
) -> Result<Vec<TokenPiece>, EngineError> {
    let vocab = model.vocab();
    Ok(check_tokens(tokens, n_vocab, "tokens")?
        .into_iter()
        .map(|t| {
            let bytes = vocab.token_to_piece(t, true, None);
            TokenPiece {
                id: t.0,
                piece: String::from_utf8_lossy(&bytes).into_owned(),
                bytes,
            }
        })
        .collect())
}

/// An infill prompt's tokens, as llama-server's `/infill` builds them.
fn infill_tokens(
    model: &LlamaModel,
    lim: &Limits,
    p: &InfillPrompt,
    max_tokens: Option<u32>,
) -> Result<Vec<LlamaToken>, EngineError> {
    let vocab = model.vocab();
    let tok = |t: LlamaToken| (t.0 >= 0 && t.0 < lim.n_vocab).then_some(t.0);
    let fim = FimTokens::new(
        tok(vocab.fim_pre()),
        tok(vocab.fim_suf()),
        tok(vocab.fim_mid()),
        tok(vocab.fim_rep()),
        tok(vocab.fim_sep()),
        if vocab.should_add_bos() {
            tok(vocab.bos())
        } else {
            None
        },
    )?;
    let toks = format_infill(
        p,
        &fim,
        lim.n_batch,
        max_tokens,
        lim.n_ctx_slot as usize,
        |text, parse_special| tokenize_ids(model, text, parse_special),
    );
    Ok(toks.into_iter().map(LlamaToken).collect())
}

/// An embed request's inputs, tokenized and checked, with the pooling it runs with.
pub(crate) struct EmbedInputs {
    pub pooling: Pooling,
    pub normalize: Normalize,
    pub inputs: Vec<Vec<LlamaToken>>,
}

pub(crate) fn embed_inputs(
    model: &LlamaModel,
    lim: &Limits,
    req: EmbedRequest,
) -> Result<EmbedInputs, EngineError> {
    req.validate()?;
    let pooling = req.pooling.unwrap_or(lim.default_pooling);
    if pooling == Pooling::Rank && lim.model_pooling != Some(Pooling::Rank) {
        return Err(cannot_rerank(lim.model_pooling));
    }
    if req.pooled_only && pooling == Pooling::None {
        return Err(EngineError::invalid(
            "pooling",
            "this model embeds with pooling 'none' (a vector per token), which this API \
             cannot return: use llama-server's /embedding, or load the model with another \
             pooling",
        ));
    }
    let caps = &req.caps;
    Limit::EmbeddingInputs.check(req.inputs.len() as u64, caps.embedding_inputs.into())?;
    let mut inputs = Vec::with_capacity(req.inputs.len());
    let mut n_tokens = 0u64;
    for (i, p) in req.inputs.iter().enumerate() {
        let toks = match p {
            Prompt::Text {
                text,
                add_special,
                parse_special,
            } => tokenize(model, text, *add_special, *parse_special),
            Prompt::Tokens(t) => check_tokens(t, lim.n_vocab, "inputs")?,
            Prompt::Mixed(parts) => mixed_tokens(model, lim, parts, true, "inputs")?,
            Prompt::Infill(_) => {
                return Err(EngineError::invalid(
                    "inputs",
                    format!("input {i} is an infill prompt, which cannot be embedded"),
                ));
            }
        };
        if toks.is_empty() {
            return Err(EngineError::invalid(
                "inputs",
                format!("input {i} is empty"),
            ));
        }
        let mut toks = toks;
        if req.truncate {
            toks.truncate(lim.embed_n_ctx as usize);
        }
        check_embed_len(toks.len(), lim.embed_n_ctx)?;
        // Refused as soon as the inputs so far are too many, before anything is computed.
        n_tokens += toks.len() as u64;
        Limit::EmbeddingTokens.check(n_tokens, caps.embedding_tokens)?;
        inputs.push(toks);
    }
    // Per-token embeddings are a row per token; pooled ones a vector (rank: a score) each.
    let rows = match pooling {
        Pooling::None => n_tokens,
        _ => inputs.len() as u64,
    };
    let floats = if pooling == Pooling::Rank {
        rows
    } else {
        rows.saturating_mul(lim.n_embd.into())
    };
    Limit::EmbeddingFloats.check(floats, caps.embedding_floats)?;
    Ok(EmbedInputs {
        pooling,
        normalize: req.normalize,
        inputs,
    })
}

/// One query-document input per document, as llama-server builds them.
pub(crate) fn rerank_inputs(
    model: &LlamaModel,
    lim: &Limits,
    query: &str,
    documents: &[String],
) -> Result<Vec<Vec<LlamaToken>>, EngineError> {
    if lim.model_pooling != Some(Pooling::Rank) {
        return Err(cannot_rerank(lim.model_pooling));
    }
    if documents.is_empty() {
        return Err(EngineError::invalid(
            "documents",
            "at least one document is needed",
        ));
    }
    let vocab = model.vocab();
    let tok = |t: LlamaToken| (t.0 >= 0 && t.0 < lim.n_vocab).then_some(t.0);
    let v = RerankVocab {
        bos: tok(vocab.bos()),
        eos: tok(vocab.eos()),
        sep: tok(vocab.sep()),
        add_bos: vocab.should_add_bos(),
        add_eos: vocab.should_add_eos(),
        add_sep: vocab.should_add_sep(),
    };
    let mut inputs = Vec::with_capacity(documents.len());
    for doc in documents {
        let toks = rerank_tokens(
            lim.rerank_template.as_deref(),
            query,
            doc,
            &v,
            |text, parse_special| tokenize_ids(model, text, parse_special),
        );
        if toks.is_empty() {
            return Err(EngineError::invalid(
                "documents",
                "the query and document are empty",
            ));
        }
        check_embed_len(toks.len(), lim.embed_n_ctx)?;
        inputs.push(toks.into_iter().map(LlamaToken).collect());
    }
    Ok(inputs)
}

fn check_embed_len(n: usize, n_ctx: u32) -> Result<(), EngineError> {
    if n > n_ctx as usize {
        return Err(EngineError::PromptTooLong {
            n_prompt: u32::try_from(n).unwrap_or(u32::MAX),
            n_ctx,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prompt_needs_a_token_and_room_for_one_more() {
        assert!(matches!(
            check_prompt_len(0, 8),
            Err(EngineError::InvalidParameter { .. })
        ));
        assert!(check_prompt_len(7, 8).is_ok());
        assert!(matches!(
            check_prompt_len(8, 8),
            Err(EngineError::PromptTooLong {
                n_prompt: 8,
                n_ctx: 8
            })
        ));
    }

    #[test]
    fn slot_ids_and_token_ids_are_checked_against_the_model() {
        assert!(check_id_slot(None, 2).is_ok());
        assert!(check_id_slot(Some(1), 2).is_ok());
        assert!(check_id_slot(Some(2), 2).is_err());
        assert_eq!(
            check_tokens(&[0, 9], 10, "prompt").unwrap(),
            vec![LlamaToken(0), LlamaToken(9)]
        );
        assert!(check_tokens(&[10], 10, "prompt").is_err());
        assert!(check_tokens(&[-1], 10, "prompt").is_err());
    }

    #[test]
    fn embed_inputs_may_fill_the_context_exactly() {
        assert!(check_embed_len(8, 8).is_ok());
        assert!(check_embed_len(9, 8).is_err());
    }
}
