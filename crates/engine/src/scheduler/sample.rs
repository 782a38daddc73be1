//! Picking a token from a slot's logits (sampler chain, then grammar as llama-server does)
//! and the log-probabilities reported with it.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;

use crate::error::EngineError;
use crate::request::TokenProbs;
use crate::slot::ActiveTask;

fn fill(cur: &mut LlamaTokenDataArray, logits: &[f32]) {
    cur.data.clear();
    cur.data.extend(
        logits
            .iter()
            .enumerate()
            .map(|(i, &l)| LlamaTokenData::new(LlamaToken(i as i32), l, 0.0)),
    );
    cur.selected = None;
    cur.sorted = false;
}

fn selected(cur: &LlamaTokenDataArray) -> Option<LlamaToken> {
    let d = cur.data.get(cur.selected?)?;
    (d.logit() > f32::NEG_INFINITY || d.p() > 0.0).then_some(d.id())
}

/// Sample one token from the logits at batch index `idx`, as llama-server does: the chain
/// picks a token; with a grammar, the token is checked against it, and only if rejected is
/// the grammar applied to every candidate and the chain run again.
pub(super) fn sample(
    ctx: &LlamaContext<'_>,
    t: &mut ActiveTask,
    idx: i32,
    cur: &mut LlamaTokenDataArray,
    single: &mut LlamaTokenDataArray,
) -> Result<LlamaToken, EngineError> {
    let logits = ctx.get_logits_ith(idx);
    fill(cur, logits);
    if let Some(token) = t.budget.as_ref().and_then(|b| b.forced()) {
        // Out of thinking budget: this token is imposed (the only candidate left, as
        // llama.cpp's budget sampler leaves it). The grammar, if any, does not see the
        // thinking block it was not written for.
        for d in &mut cur.data {
            if d.id() != token {
                d.set_logit(f32::NEG_INFINITY);
            }
        }
        cur.selected = cur.data.iter().position(|d| d.id() == token);
        t.chain.accept(token);
        return Ok(token);
    }
    cur.apply_sampler(&mut t.chain);
    let mut token = cur
        .selected_token()
        .ok_or_else(|| EngineError::Decode("the sampler chose no token".into()))?;
    if let Some(g) = t.grammar.as_mut() {
        single.data.clear();
        single.data.push(LlamaTokenData::new(token, 1.0, 0.0));
        single.selected = None;
        single.sorted = false;
        single.apply_sampler(g);
        if single.data[0].logit() == f32::NEG_INFINITY {
            fill(cur, logits);
            cur.apply_sampler(g);
            if cur.data.iter().all(|d| d.logit() == f32::NEG_INFINITY) {
                return Err(EngineError::InvalidGrammar(
                    "the grammar allows no token here".into(),
                ));
            }
            cur.apply_sampler(&mut t.chain);
            token = selected(cur).ok_or_else(|| {
                EngineError::InvalidGrammar("no token satisfies the grammar and the sampler".into())
            })?;
        }
        g.try_accept(token)
            .map_err(|e| EngineError::InvalidGrammar(format!("grammar rejected the token: {e}")))?;
    }
    t.chain.accept(token);
    Ok(token)
}

/// Log-probabilities of the distribution the token was sampled from: the candidates the
/// chain left in `cur` (after top-k, top-p, temperature...), softmaxed; tokens the chain
/// removed are not reported (llama-server's `post_sampling_probs`, which reports `exp` of
/// these as `prob`).
pub(super) fn post_sampling_probs(
    cur: &LlamaTokenDataArray,
    model: &LlamaModel,
    token: LlamaToken,
    n: u32,
) -> TokenProbs {
    let mut kept: Vec<(f32, i32)> = cur
        .data
        .iter()
        .filter(|d| d.logit() > f32::NEG_INFINITY)
        .map(|d| (d.logit(), d.id().0))
        .collect();
    let logits: Vec<f32> = kept.iter().map(|&(l, _)| l).collect();
    let lse = log_sum_exp(&logits);
    kept.sort_by(|a, b| b.0.total_cmp(&a.0));
    let vocab = model.vocab();
    TokenProbs {
        logprob: kept
            .iter()
            .find(|&&(_, id)| id == token.0)
            .map_or(f32::NEG_INFINITY, |&(l, _)| l - lse),
        top: kept
            .into_iter()
            .map(|(l, id)| (id, l - lse))
            // A probability that rounds to 0 is not reported (llama-server sends none).
            .filter(|&(_, lp)| lp.exp() > 0.0)
            .take(n as usize)
            .map(|(id, lp)| {
                let bytes = vocab.token_to_piece(LlamaToken(id), true, None);
                (id, String::from_utf8_lossy(&bytes).into_owned(), lp)
            })
            .collect(),
    }
}

/// `ln(sum(exp(x)))`, without overflow.
fn log_sum_exp(xs: &[f32]) -> f32 {
    let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    let sum: f64 = xs.iter().map(|&l| f64::from(l - max).exp()).sum();
    max + sum.ln() as f32
}

/// Log-probabilities from the raw logits (softmax over the whole vocabulary, as
/// llama-server reports `n_probs`).
pub(super) fn token_probs(
    ctx: &LlamaContext<'_>,
    model: &LlamaModel,
    idx: i32,
    token: LlamaToken,
    n: u32,
) -> TokenProbs {
    let logits = ctx.get_logits_ith(idx);
    let lse = log_sum_exp(logits);
    let n = n as usize;
    let mut top: Vec<(f32, i32)> = Vec::with_capacity(n + 1);
    for (i, &l) in logits.iter().enumerate() {
        if top.len() < n || l > top[top.len() - 1].0 {
            let pos = top.partition_point(|&(v, _)| v >= l);
            top.insert(pos, (l, i as i32));
            top.truncate(n);
        }
    }
    let vocab = model.vocab();
    TokenProbs {
        logprob: logits
            .get(token.0 as usize)
            .map_or(f32::NEG_INFINITY, |&l| l - lse),
        top: top
            .into_iter()
            .map(|(l, id)| {
                let bytes = vocab.token_to_piece(LlamaToken(id), true, None);
                (id, String::from_utf8_lossy(&bytes).into_owned(), l - lse)
            })
            .collect(),
    }
}
