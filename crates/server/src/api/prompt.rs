//! Prompt fields (`prompt` of `/v1/completions` and `/completion`, `input`/`content` of the
//! embeddings routes): a string, a list of token ids, or a list of those.
//!
//! Read straight from the body into strings and `i32`s, never into a `serde_json::Value` per
//! token (a 32 MB body of `[1,1,…]` would be half a gigabyte of `Value`s), and cut short
//! past `limits.max_prompt_token_ids`: the reader stops at the limit, so a hostile list is
//! never held whole. The limit comes from [`crate::extract`], which reads every body.

use crate::error::{ApiError, ApiResult};
use crate::extract;
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use service::Prompt;
use std::fmt;

/// One prompt field as sent.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptField {
    Text(String),
    Tokens(Vec<i32>),
    /// A list of texts or token lists (several prompts, or one wrapped in a list).
    List(Vec<PromptField>),
}

impl PromptField {
    /// The one prompt this field holds (a list of one is that one).
    pub fn into_prompt(self, field: &str) -> ApiResult<Prompt> {
        match self {
            PromptField::Text(s) => Ok(Prompt::text(s)),
            PromptField::Tokens(t) if t.is_empty() => {
                Err(ApiError::invalid(field, "must not be empty"))
            }
            PromptField::Tokens(t) => Ok(Prompt::Tokens(t)),
            PromptField::List(mut l) if l.len() == 1 => l.remove(0).into_prompt(field),
            PromptField::List(l) if l.is_empty() => {
                Err(ApiError::invalid(field, "must not be empty"))
            }
            PromptField::List(_) => Err(ApiError::invalid(
                field,
                "only one prompt per request is supported",
            )),
        }
    }

    /// Every prompt this field holds (embeddings take several).
    pub fn into_prompts(self, field: &str) -> ApiResult<Vec<Prompt>> {
        match self {
            PromptField::List(l) if l.is_empty() => {
                Err(ApiError::invalid(field, "must not be empty"))
            }
            PromptField::List(l) => l.into_iter().map(|p| p.into_prompt(field)).collect(),
            one => Ok(vec![one.into_prompt(field)?]),
        }
    }
}

impl<'de> Deserialize<'de> for PromptField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = PromptField;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, a list of token ids, or a list of those")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<PromptField, E> {
        Ok(PromptField::Text(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<PromptField, E> {
        Ok(PromptField::Text(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PromptField, A::Error> {
        let cap = extract::prompt_token_id_cap();
        let mut tokens = Vec::new();
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Item>()? {
            match item {
                Item::Token(t) if items.is_empty() => {
                    if tokens.len() >= cap {
                        // Stop reading: the rest of the list is never parsed.
                        extract::note_prompt_token_ids_over();
                        return Err(de::Error::custom(format!(
                            "more than {cap} token ids (limits.max_prompt_token_ids)"
                        )));
                    }
                    tokens.push(t);
                }
                Item::Field(f) if tokens.is_empty() => items.push(f),
                _ => {
                    return Err(de::Error::custom(
                        "mixes token ids with texts or lists; give one prompt of one kind",
                    ));
                }
            }
        }
        Ok(if items.is_empty() && !tokens.is_empty() {
            PromptField::Tokens(tokens)
        } else {
            PromptField::List(items)
        })
    }
}

/// An element of a prompt list: a token id, or a nested text or list.
enum Item {
    Token(i32),
    Field(PromptField),
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ItemVisitor)
    }
}

struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a token id, a string or a list of token ids")
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Item, E> {
        i32::try_from(n)
            .map(Item::Token)
            .map_err(|_| E::custom("token ids must be 32-bit integers"))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Item, E> {
        i32::try_from(n)
            .map(Item::Token)
            .map_err(|_| E::custom("token ids must be 32-bit integers"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Item, E> {
        Err(E::custom("token ids must be integers"))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Item, E> {
        FieldVisitor.visit_str(s).map(Item::Field)
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Item, E> {
        FieldVisitor.visit_string(s).map(Item::Field)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Item, A::Error> {
        FieldVisitor.visit_seq(seq).map(Item::Field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<PromptField, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn forms() {
        assert_eq!(parse(r#""hi""#).unwrap(), PromptField::Text("hi".into()));
        assert_eq!(parse("[1, 2]").unwrap(), PromptField::Tokens(vec![1, 2]));
        let one = parse(r#"[[1, 2]]"#).unwrap().into_prompt("prompt").unwrap();
        assert_eq!(one, Prompt::Tokens(vec![1, 2]));
        let many = parse(r#"["a", [3]]"#)
            .unwrap()
            .into_prompts("input")
            .unwrap();
        assert_eq!(many.len(), 2);
        assert!(
            parse(r#"["a", [3]]"#)
                .unwrap()
                .into_prompt("prompt")
                .is_err()
        );
        assert!(parse("[]").unwrap().into_prompt("prompt").is_err());
        for bad in [
            "[1.5]",
            "[1, \"a\"]",
            "[4294967296]",
            "{}",
            "true",
            "[null]",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
