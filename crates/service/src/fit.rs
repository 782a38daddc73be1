//! Fitting a conversation into a model's context: the one policy for every caller that keeps
//! a conversation going past the context instead of failing (chat sessions, Ollama's
//! `/api/chat`, which drops old messages to fit `num_ctx` as Ollama does). What is always sent
//! (the system prompt) is the caller's; here the caller's turns are cut from the front: the
//! latest turns, at most `max_turns`, no more than fit with room left for the answer. A window
//! starts at a user message (templates such as Gemma's refuse a conversation that opens with
//! the assistant).

use crate::error::ServiceError;
use std::future::Future;

/// A prompt's size on a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measure {
    /// The prompt's tokens, rendered and tokenized as generation would.
    pub tokens: usize,
    /// The context the prompt and its answer share (a slot's, or less when the caller
    /// asks for a smaller window).
    pub n_ctx: u32,
}

/// Where a window may start: indices of user messages among the last `max` of `roles`, from
/// the oldest (most kept) to the newest. `roles` ends with the message to answer.
pub fn starts<'a>(roles: impl ExactSizeIterator<Item = &'a str>, max: usize) -> Vec<usize> {
    let n = roles.len();
    let first = n.saturating_sub(max.max(1));
    let mut at: Vec<usize> = roles
        .enumerate()
        .filter(|&(i, role)| i >= first && role == "user")
        .map(|(i, _)| i)
        .collect();
    if at.is_empty() && n > 0 {
        // No user message in the window (an imported branch): the last message alone.
        at.push(n - 1);
    }
    at
}

/// Tokens kept free for the answer: `max_tokens` when given, else a quarter of the context.
pub fn reserve(max_tokens: Option<u32>, n_ctx: u32) -> u32 {
    max_tokens.unwrap_or(n_ctx / 4).min(n_ctx.saturating_sub(1))
}

/// The window chosen: turns from `from` on are sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub from: usize,
    /// The prompt's tokens as measured, and the context they were measured against.
    pub measure: Measure,
}

/// The longest window of `roles`' turns (see [`starts`]) whose prompt, as `measure(from)`
/// renders and counts it, leaves `max_tokens` (or a quarter of the context) for the answer.
/// The whole conversation is measured first (one measure when it fits, the usual case);
/// otherwise a binary search, as fewer turns never make a longer prompt. When even the last
/// turn alone does not fit, a 400 on `field` (the request's name for the new message) that
/// names the sizes and the setting to raise.
pub async fn fit<'a, F, Fut>(
    field: &str,
    roles: impl ExactSizeIterator<Item = &'a str>,
    max_turns: usize,
    max_tokens: Option<u32>,
    model: &str,
    mut measure: F,
) -> Result<Window, ServiceError>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<Measure, ServiceError>>,
{
    let starts = starts(roles, max_turns);
    let fits = |m: &Measure| {
        m.tokens as u64 + u64::from(reserve(max_tokens, m.n_ctx)) <= u64::from(m.n_ctx)
    };
    let (Some(&first), Some(&last)) = (starts.first(), starts.last()) else {
        return Err(ServiceError::invalid(field, "nothing to send"));
    };
    let all = measure(first).await?;
    if fits(&all) {
        return Ok(Window {
            from: first,
            measure: all,
        });
    }
    let smallest = if last == first {
        all
    } else {
        measure(last).await?
    };
    if !fits(&smallest) {
        return Err(ServiceError::invalid(
            field,
            format!(
                "the last message alone is {} tokens of prompt, and model '{model}' has a \
                 context of {} tokens per request with {} kept for the answer; shorten it, \
                 lower max_tokens or load the model with a larger context (models.ctx_size)",
                smallest.tokens,
                smallest.n_ctx,
                reserve(max_tokens, smallest.n_ctx)
            ),
        ));
    }
    // Invariant: starts[hi] fits; starts[..lo] do not (starts[0] was measured: too long).
    let (mut lo, mut hi) = (1, starts.len() - 1);
    let mut best = smallest;
    while lo < hi {
        let mid = (lo + hi) / 2;
        let m = measure(starts[mid]).await?;
        if fits(&m) {
            hi = mid;
            best = m;
        } else {
            lo = mid + 1;
        }
    }
    Ok(Window {
        from: starts[hi],
        measure: best,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn roles(n: usize) -> Vec<&'static str> {
        (0..n)
            .map(|i| if i % 2 == 0 { "user" } else { "assistant" })
            .collect()
    }

    #[test]
    fn windows_start_at_user_messages_within_the_cap() {
        let h = roles(7);
        assert_eq!(starts(h.iter().copied(), 20), vec![0, 2, 4, 6]);
        // The last 4 messages are 3..=6; 3 is an answer, so the window starts at 4.
        assert_eq!(starts(h.iter().copied(), 4), vec![4, 6]);
        assert_eq!(starts(h.iter().copied(), 1), vec![6]);
        assert_eq!(starts(["assistant"].into_iter(), 20), vec![0]);
    }

    #[test]
    fn the_answer_keeps_a_quarter_of_the_context_unless_the_caller_says() {
        assert_eq!(reserve(None, 512), 128);
        assert_eq!(reserve(Some(32), 512), 32);
        assert_eq!(reserve(Some(10_000), 512), 511);
    }

    /// Each turn is 10 tokens; the context is 100 with 20 kept for the answer.
    fn sized(from: usize, n: usize) -> Measure {
        Measure {
            tokens: (n - from) * 10,
            n_ctx: 100,
        }
    }

    #[tokio::test]
    async fn a_conversation_that_fits_is_measured_once_and_kept_whole() {
        let h = roles(5);
        let calls = Cell::new(0);
        let w = fit("m", h.iter().copied(), 20, Some(20), "m", |from| {
            calls.set(calls.get() + 1);
            async move { Ok(sized(from, 5)) }
        })
        .await
        .unwrap();
        assert_eq!((w.from, w.measure.tokens, calls.get()), (0, 50, 1));
    }

    #[tokio::test]
    async fn the_oldest_turns_go_first_and_the_window_starts_at_a_user_message() {
        let h = roles(21); // 210 tokens: 8 turns (80) fit with 20 kept
        let w = fit(
            "m",
            h.iter().copied(),
            100,
            Some(20),
            "m",
            |from| async move { Ok(sized(from, 21)) },
        )
        .await
        .unwrap();
        // 13..=20 would be 80 tokens, but 13 is an answer: the window starts at 14.
        assert_eq!((w.from, w.measure.tokens), (14, 70));
        // The turn cap applies before the tokens do: the last 3 messages start at 18.
        let w = fit(
            "m",
            h.iter().copied(),
            3,
            Some(20),
            "m",
            |from| async move { Ok(sized(from, 21)) },
        )
        .await
        .unwrap();
        assert_eq!(w.from, 18);
    }

    #[tokio::test]
    async fn a_last_turn_too_long_on_its_own_is_refused_with_the_sizes() {
        let h = roles(3);
        let e = fit(
            "m",
            h.iter().copied(),
            20,
            Some(20),
            "m",
            |from| async move {
                Ok(Measure {
                    tokens: if from == 2 { 90 } else { 200 },
                    n_ctx: 100,
                })
            },
        )
        .await
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("90 tokens") && text.contains("models.ctx_size"),
            "{text}"
        );
    }
}
