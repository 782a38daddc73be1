//! A thinking model's token budget (llama-server's `--reasoning-budget N`,
//! `reasoning_budget_tokens`): once the model has written `tokens` tokens inside its thinking
//! block, the block is closed for it by forcing the budget message and the end tag, one token
//! per step, and the answer follows.
//!
//! llama.cpp does this with a sampler over token sequences (common/reasoning-budget.cpp); the
//! same state machine here watches the generated *text* for the tags instead, so a tag the
//! model spells with other tokens than the tokenizer would (`<think>` is several ordinary
//! tokens in many vocabularies) is still seen.

use llama_cpp_2::token::LlamaToken;
use serde::{Deserialize, Serialize};

use crate::error::EngineError;

/// What the caller (the service, which knows the model's thinking tags) asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThinkingBudget {
    /// Tokens the model may write inside the block (more than 0: a budget of 0 is "do not
    /// think", which the template decides).
    pub tokens: u32,
    /// The tags that open and close the block (`<think>`, `</think>`).
    pub start: String,
    pub end: String,
    /// Written before the end tag when the budget runs out (llama-server's
    /// `--reasoning-budget-message`), e.g. "Time is up, answering now.".
    pub message: String,
    /// The prompt already opened the block (`<|im_start|>assistant\n<think>\n`): counting
    /// starts with the first generated token.
    pub inside: bool,
}

/// The longest budget message: it is forced token by token, and the tags are short.
pub const MAX_BUDGET_MESSAGE: usize = 4096;

impl ThinkingBudget {
    pub(crate) fn validate(&self) -> Result<(), EngineError> {
        if self.tokens == 0 {
            return Err(EngineError::invalid(
                "reasoning_budget_tokens",
                "a budget of 0 is no thinking: turn thinking off instead",
            ));
        }
        if self.start.is_empty() || self.end.is_empty() {
            return Err(EngineError::invalid(
                "reasoning_budget_tokens",
                "the model's thinking tags are unknown",
            ));
        }
        if self.message.len() > MAX_BUDGET_MESSAGE {
            return Err(EngineError::invalid(
                "reasoning_budget_message",
                format!("must be at most {MAX_BUDGET_MESSAGE} bytes"),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the start tag.
    Idle,
    /// Inside the block, `used` tokens written.
    Counting { used: u32 },
    /// Out of budget: the next token is `forced[next]`.
    Forcing { next: usize },
    /// The block is closed: nothing more to do.
    Done,
}

/// Follows one generation through its thinking block.
#[derive(Debug)]
pub(crate) struct BudgetTracker {
    budget: u32,
    start: String,
    end: String,
    /// The message and the end tag, tokenized.
    forced: Vec<LlamaToken>,
    state: State,
    /// The last generated characters, enough to see a tag split over tokens.
    tail: String,
}

impl BudgetTracker {
    pub fn new(b: ThinkingBudget, forced: Vec<LlamaToken>) -> Self {
        BudgetTracker {
            budget: b.tokens,
            state: if b.inside {
                State::Counting { used: 0 }
            } else {
                State::Idle
            },
            start: b.start,
            end: b.end,
            forced,
            tail: String::new(),
        }
    }

    /// The token the budget imposes as the next one, if it does.
    pub fn forced(&self) -> Option<LlamaToken> {
        match self.state {
            State::Forcing { next } => self.forced.get(next).copied(),
            _ => None,
        }
    }

    /// After each generated token: its text (empty while a character is incomplete) and
    /// whether bytes of a character are still held back (the block is not cut inside one).
    pub fn observe(&mut self, text: &str, utf8_pending: bool) {
        match self.state {
            State::Idle => {
                if self.saw(text, true) {
                    self.state = State::Counting { used: 0 };
                }
            }
            State::Counting { used } => {
                let used = used + 1;
                if self.saw(text, false) {
                    self.state = State::Done;
                } else if used >= self.budget && !utf8_pending {
                    self.state = if self.forced.is_empty() {
                        State::Done
                    } else {
                        State::Forcing { next: 0 }
                    };
                } else {
                    self.state = State::Counting { used };
                }
            }
            State::Forcing { next } => {
                self.state = if next + 1 >= self.forced.len() {
                    State::Done
                } else {
                    State::Forcing { next: next + 1 }
                };
            }
            State::Done => {}
        }
    }

    /// Appends `text` to the tail and says whether the start (or end) tag is in it; the tail
    /// keeps what follows a found tag, and otherwise only enough characters to complete one.
    fn saw(&mut self, text: &str, start: bool) -> bool {
        self.tail.push_str(text);
        let tag = if start { &self.start } else { &self.end };
        if let Some(at) = self.tail.find(tag.as_str()) {
            self.tail.drain(..at + tag.len());
            return true;
        }
        let keep = tag.chars().count().saturating_sub(1);
        let n = self.tail.chars().count();
        if n > keep {
            let cut = self
                .tail
                .char_indices()
                .nth(n - keep)
                .map_or(self.tail.len(), |(i, _)| i);
            self.tail.drain(..cut);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(tokens: u32, inside: bool) -> ThinkingBudget {
        ThinkingBudget {
            tokens,
            start: "<think>".into(),
            end: "</think>".into(),
            message: String::new(),
            inside,
        }
    }

    fn ids(v: &[i32]) -> Vec<LlamaToken> {
        v.iter().map(|&i| LlamaToken(i)).collect()
    }

    #[test]
    fn forces_the_end_after_the_budget() {
        let mut t = BudgetTracker::new(budget(3, true), ids(&[7, 8]));
        for piece in ["a", "b"] {
            t.observe(piece, false);
            assert_eq!(t.forced(), None);
        }
        t.observe("c", false);
        assert_eq!(t.forced(), Some(LlamaToken(7)));
        t.observe("Time", false);
        assert_eq!(t.forced(), Some(LlamaToken(8)));
        t.observe("</think>", false);
        assert_eq!(t.forced(), None);
        for piece in ["x"; 10] {
            t.observe(piece, false);
            assert_eq!(t.forced(), None, "the answer is never cut");
        }
    }

    #[test]
    fn counts_only_inside_the_block_and_sees_split_tags() {
        let mut t = BudgetTracker::new(budget(2, false), ids(&[9]));
        for piece in ["Hello", " there", "<th", "ink", ">"] {
            assert_eq!(t.forced(), None);
            t.observe(piece, false);
        }
        t.observe("one", false);
        assert_eq!(t.forced(), None);
        t.observe("two", false);
        assert_eq!(t.forced(), Some(LlamaToken(9)));
    }

    #[test]
    fn a_block_closed_by_the_model_is_left_alone() {
        let mut t = BudgetTracker::new(budget(3, true), ids(&[9]));
        t.observe("short", false);
        t.observe("</th", false);
        t.observe("ink>", false);
        for piece in ["answer"; 5] {
            t.observe(piece, false);
            assert_eq!(t.forced(), None);
        }
    }

    #[test]
    fn never_cuts_a_character_in_two() {
        let mut t = BudgetTracker::new(budget(1, true), ids(&[9]));
        t.observe("", true);
        assert_eq!(t.forced(), None, "bytes of a character are pending");
        t.observe("é", false);
        assert_eq!(t.forced(), Some(LlamaToken(9)));
    }
}
