//! Prompt fields (`prompt` of `/v1/completions` and `/completion`, `input`/`content` of the
//! embeddings routes), in every shape llama-server takes (its `tokenize_input_prompts`):
//!
//! - `"text"`, `[12, 34]` (token ids), `[12, "text", 34]` (ids and texts in one prompt);
//! - `{"prompt_string": ..., "multimodal_data": [...]}` (an object prompt; images and audio
//!   are refused: this server runs text models);
//! - `{"content": [{"type": "text", "text": ...}, ...]}` (OpenAI content parts, embeddings);
//! - a list of any of those: several prompts (a list holding a token id is one prompt).
//!
//! Read straight from the body into strings and `i32`s, never into a `serde_json::Value` per
//! token (a 32 MB body of `[1,1,…]` would be half a gigabyte of `Value`s), and cut short
//! past `limits.max_prompt_token_ids`: the reader stops at the limit, so a hostile list is
//! never held whole. The limit comes from [`crate::extract`], which reads every body.

use crate::error::{ApiError, ApiResult};
use crate::extract;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use service::{Prompt, PromptPart};
use std::fmt;

/// One prompt field as sent.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptField {
    Text(String),
    Tokens(Vec<i32>),
    /// Token ids and texts in one prompt (at least one of each).
    Mixed(Vec<PromptPart>),
    /// An object prompt: `{"prompt_string": ...}` or `{"content": [parts]}`.
    Object(ObjectPrompt),
    /// Several prompts (or one wrapped in a list).
    List(Vec<PromptField>),
}

/// A prompt given as an object.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectPrompt {
    /// `prompt_string` (a text, token ids or both); `multimodal` when `multimodal_data` came
    /// with it.
    PromptString {
        prompt: Box<PromptField>,
        multimodal: bool,
    },
    /// The texts of OpenAI content parts, or the first part that is not text (its type).
    Content(Result<String, String>),
}

impl PromptField {
    /// The one prompt this field holds (a list of one is that one).
    pub fn into_prompt(self, field: &str) -> ApiResult<Prompt> {
        let mut all = self.into_prompts(field)?;
        if all.len() > 1 {
            return Err(ApiError::invalid(
                field,
                "only one prompt per request is supported here",
            ));
        }
        Ok(all.remove(0))
    }

    /// Every prompt this field holds, in order.
    pub fn into_prompts(self, field: &str) -> ApiResult<Vec<Prompt>> {
        match self {
            PromptField::List(l) if l.is_empty() => {
                Err(ApiError::invalid(field, "must not be empty"))
            }
            PromptField::List(l) => l.into_iter().map(|p| p.single(field)).collect(),
            one => Ok(vec![one.single(field)?]),
        }
    }

    /// This field as one prompt (a list is refused: prompts do not nest).
    fn single(self, field: &str) -> ApiResult<Prompt> {
        match self {
            PromptField::Text(s) => Ok(Prompt::text(s)),
            PromptField::Tokens(t) if t.is_empty() => {
                Err(ApiError::invalid(field, "must not be empty"))
            }
            PromptField::Tokens(t) => Ok(Prompt::Tokens(t)),
            PromptField::Mixed(parts) => Ok(Prompt::Mixed(parts)),
            PromptField::Object(ObjectPrompt::PromptString {
                multimodal: true, ..
            }) => Err(ApiError::invalid(
                "multimodal_data",
                "images and audio are not supported: this server runs text models",
            )),
            PromptField::Object(ObjectPrompt::PromptString { prompt, .. }) => match *prompt {
                PromptField::List(_) | PromptField::Object(_) => Err(ApiError::invalid(
                    "prompt_string",
                    "must be a text, token ids, or both in one list",
                )),
                p => p.single(field),
            },
            PromptField::Object(ObjectPrompt::Content(Ok(text))) => Ok(Prompt::text(text)),
            PromptField::Object(ObjectPrompt::Content(Err(kind))) => Err(ApiError::invalid(
                "content",
                format!(
                    "content parts of type '{kind}' are not supported: this server runs text \
                     models, and takes parts of type 'text'"
                ),
            )),
            PromptField::List(l) if l.len() == 1 => {
                l.into_iter().next().expect("one").single(field)
            }
            PromptField::List(_) => Err(ApiError::invalid(
                field,
                "a prompt is a text, token ids or an object; lists of prompts do not nest",
            )),
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
        f.write_str(
            "a string, a list of token ids (and strings), an object with prompt_string or \
             content, or a list of those",
        )
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<PromptField, E> {
        Ok(PromptField::Text(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<PromptField, E> {
        Ok(PromptField::Text(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PromptField, A::Error> {
        let cap = extract::prompt_token_id_cap();
        let mut n_ids = 0usize;
        let mut has_nested = false;
        // In order: runs of ids, texts, and nested prompts (lists, objects).
        let mut items: Vec<Item> = Vec::new();
        while let Some(item) = seq.next_element::<Item>()? {
            match item {
                Item::Token(t) => {
                    if n_ids >= cap {
                        // Stop reading: the rest of the list is never parsed.
                        extract::note_prompt_token_ids_over();
                        return Err(de::Error::custom(format!(
                            "more than {cap} token ids (limits.max_prompt_token_ids)"
                        )));
                    }
                    n_ids += 1;
                    match items.last_mut() {
                        Some(Item::Run(run)) => run.push(t),
                        _ => items.push(Item::Run(vec![t])),
                    }
                }
                Item::Field(_) => {
                    has_nested = true;
                    items.push(item);
                }
                other => items.push(other),
            }
            if n_ids > 0 && has_nested {
                return Err(de::Error::custom(
                    "a list holding token ids is one prompt: it cannot also hold lists or objects",
                ));
            }
        }
        if n_ids == 0 {
            // A list of prompts (llama-server: a list without a number).
            return Ok(PromptField::List(
                items
                    .into_iter()
                    .map(|i| match i {
                        Item::Text(s) => PromptField::Text(s),
                        Item::Field(f) => f,
                        Item::Token(_) | Item::Run(_) => unreachable!("no ids"),
                    })
                    .collect(),
            ));
        }
        // One prompt: ids, or ids and texts.
        let parts: Vec<PromptPart> = items
            .into_iter()
            .filter_map(|i| match i {
                Item::Run(t) => Some(PromptPart::Tokens(t)),
                Item::Text(s) => Some(PromptPart::Text(s)),
                Item::Token(_) | Item::Field(_) => None,
            })
            .collect();
        Ok(match parts.as_slice() {
            [PromptPart::Tokens(_)] => match parts.into_iter().next() {
                Some(PromptPart::Tokens(t)) => PromptField::Tokens(t),
                _ => unreachable!("matched"),
            },
            _ => PromptField::Mixed(parts),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PromptField, A::Error> {
        let mut prompt = None;
        let mut multimodal = false;
        let mut content = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "prompt_string" => prompt = Some(map.next_value::<PromptField>()?),
                "multimodal_data" => {
                    map.next_value::<IgnoredAny>()?;
                    multimodal = true;
                }
                "content" => content = Some(map.next_value::<ContentParts>()?.0),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match (prompt, content) {
            (Some(p), _) => Ok(PromptField::Object(ObjectPrompt::PromptString {
                prompt: Box::new(p),
                multimodal,
            })),
            (None, Some(c)) => Ok(PromptField::Object(ObjectPrompt::Content(c))),
            (None, None) => Err(de::Error::custom(
                "an object prompt needs prompt_string (or content parts)",
            )),
        }
    }
}

/// `content` of an object prompt: a list of OpenAI content parts; the texts joined, or the
/// type of the first part that is not text.
struct ContentParts(Result<String, String>);

impl<'de> Deserialize<'de> for ContentParts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Part {
            #[serde(rename = "type")]
            kind: String,
            text: Option<String>,
        }
        let parts = Vec::<Part>::deserialize(d).map_err(|_| {
            de::Error::custom(
                "content must be a list of parts such as {\"type\": \"text\", \"text\": ...}",
            )
        })?;
        let mut text = String::new();
        for p in parts {
            match (p.kind.as_str(), p.text) {
                ("text", Some(t)) => text.push_str(&t),
                ("text", None) => return Err(de::Error::custom("a text part needs its text")),
                ("image_url" | "input_audio" | "input_video" | "image" | "audio", _) => {
                    return Ok(ContentParts(Err(p.kind)));
                }
                (other, _) => {
                    return Err(de::Error::custom(format!(
                        "unknown content part type '{other}' (text)"
                    )));
                }
            }
        }
        Ok(ContentParts(Ok(text)))
    }
}

/// An element of a prompt list: a token id, a text, or a nested prompt (list or object);
/// `Run` is consecutive ids, as the list reader gathers them.
enum Item {
    Token(i32),
    Run(Vec<i32>),
    Text(String),
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
        f.write_str("a token id, a string, a list or an object prompt")
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
        Ok(Item::Text(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Item, E> {
        Ok(Item::Text(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Item, A::Error> {
        match FieldVisitor.visit_seq(seq)? {
            PromptField::List(l) if l.iter().any(|p| matches!(p, PromptField::List(_))) => {
                Err(de::Error::custom("prompts nest one list deep at most"))
            }
            f => Ok(Item::Field(f)),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item, A::Error> {
        FieldVisitor.visit_map(map).map(Item::Field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<PromptField, serde_json::Error> {
        serde_json::from_str(json)
    }

    fn prompts(json: &str) -> ApiResult<Vec<Prompt>> {
        parse(json).unwrap().into_prompts("prompt")
    }

    #[test]
    fn forms() {
        assert_eq!(parse(r#""hi""#).unwrap(), PromptField::Text("hi".into()));
        assert_eq!(parse("[1, 2]").unwrap(), PromptField::Tokens(vec![1, 2]));
        let one = parse(r#"[[1, 2]]"#).unwrap().into_prompt("prompt").unwrap();
        assert_eq!(one, Prompt::Tokens(vec![1, 2]));
        let many = prompts(r#"["a", [3]]"#).unwrap();
        assert_eq!(many, [Prompt::text("a"), Prompt::Tokens(vec![3])]);
        assert!(
            parse(r#"["a", [3]]"#)
                .unwrap()
                .into_prompt("prompt")
                .is_err()
        );
        assert!(parse("[]").unwrap().into_prompt("prompt").is_err());
        for bad in [
            "[1.5]",
            "[4294967296]",
            "{}",
            "true",
            "[null]",
            "[1, [2]]",
            "[1, {}]",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_and_texts_in_one_list_are_one_mixed_prompt() {
        let p = prompts(r#"[1, 2, "a", 3, "b"]"#).unwrap();
        assert_eq!(
            p,
            [Prompt::Mixed(vec![
                PromptPart::Tokens(vec![1, 2]),
                PromptPart::Text("a".into()),
                PromptPart::Tokens(vec![3]),
                PromptPart::Text("b".into()),
            ])]
        );
        // In a list of prompts too, in order.
        let p = prompts(r#"[[12, "s", 34], "t", [5]]"#).unwrap();
        assert_eq!(p.len(), 3);
        assert!(matches!(&p[0], Prompt::Mixed(parts) if parts.len() == 3));
        assert_eq!(p[1], Prompt::text("t"));
        assert_eq!(p[2], Prompt::Tokens(vec![5]));
    }

    #[test]
    fn object_prompts() {
        let p = prompts(r#"{"prompt_string": "hi"}"#).unwrap();
        assert_eq!(p, [Prompt::text("hi")]);
        let p = prompts(r#"[[1], {"prompt_string": [2, "x"]}]"#).unwrap();
        assert_eq!(p.len(), 2);
        assert!(matches!(&p[1], Prompt::Mixed(_)));
        let e = prompts(r#"{"prompt_string": "a <__media__>", "multimodal_data": ["AAAA"]}"#)
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("multimodal_data"));
        let p = prompts(
            r#"{"content": [{"type": "text", "text": "a "}, {"type": "text", "text": "b"}]}"#,
        )
        .unwrap();
        assert_eq!(p, [Prompt::text("a b")]);
        let e = prompts(r#"{"content": [{"type": "image_url", "image_url": {"url": "x"}}]}"#)
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("content"));
        for bad in [
            r#"{"content": "string"}"#,
            r#"{"content": [{"type": "unknown"}]}"#,
            r#"{"other": 1}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
