//! Request body extraction with errors that name the field: `ApiJson<T>` reads the body as
//! JSON into `T` and turns any failure (not JSON, wrong type, missing field) into a 400 in
//! the route's error shape (the flavor is fixed up by [`crate::middleware::shape_errors`]).
//!
//! While a body is parsed, `limits.max_prompt_token_ids` is known to the prompt reader
//! ([`crate::api::prompt`]) through a thread-local: serde has no way to hand a value to a
//! nested field's `Deserialize`, and the parse is synchronous, so the value set around it is
//! the one the reader sees. A list cut short there becomes the service's limit error (413).

use crate::error::ApiError;
use crate::listen::BodyDeadline;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use std::cell::Cell;

use crate::state::SharedState;

pub struct ApiJson<T>(pub T);

thread_local! {
    /// `limits.max_prompt_token_ids` during a parse, and whether a prompt went over it.
    static PROMPT_TOKEN_IDS: Cell<(usize, bool)> = const { Cell::new((usize::MAX, false)) };
}

/// The most token ids a prompt being parsed may hold.
pub(crate) fn prompt_token_id_cap() -> usize {
    PROMPT_TOKEN_IDS.with(|c| c.get().0)
}

/// A prompt being parsed holds more token ids than the cap: the parse fails with the limit.
pub(crate) fn note_prompt_token_ids_over() {
    PROMPT_TOKEN_IDS.with(|c| c.set((c.get().0, true)));
}

impl<T> FromRequest<SharedState> for ApiJson<T>
where
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &SharedState) -> Result<Self, ApiError> {
        // The body must have arrived by the deadline `listen::serve_on` set at its start.
        let deadline = req.extensions().get::<BodyDeadline>().copied();
        let reading = Bytes::from_request(req, state);
        let read = match deadline {
            Some(d) => tokio::time::timeout_at(d.at.into(), reading)
                .await
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        format!(
                            "the request body did not arrive within {} s (limits.body_timeout_seconds)",
                            d.seconds
                        ),
                    )
                })?,
            None => reading.await,
        };
        let bytes = read.map_err(|e| {
            let status = e.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(status, "request body too large")
            } else {
                ApiError::new(status, format!("could not read the request body: {e}"))
            }
        })?;
        let limits = state.config().limits;
        parse_within(&bytes, &limits).map(ApiJson)
    }
}

/// [`parse`] with prompts of token ids read no further than `limits.max_prompt_token_ids`.
pub fn parse_within<T: DeserializeOwned>(
    bytes: &[u8],
    limits: &service::limits::Limits,
) -> Result<T, ApiError> {
    let cap = usize::try_from(limits.max_prompt_token_ids).unwrap_or(usize::MAX);
    let before = PROMPT_TOKEN_IDS.with(|c| c.replace((cap, false)));
    let parsed = parse(bytes);
    let (_, over) = PROMPT_TOKEN_IDS.with(|c| c.replace(before));
    match parsed {
        Err(e) if over => {
            let field = e.param.as_deref().unwrap_or("prompt");
            let field = field.split('[').next().unwrap_or(field);
            Err(service::limits::prompt_token_ids_cut_short(field, limits).into())
        }
        other => other,
    }
}

/// Parses JSON into `T`, naming the path of a bad field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty (JSON expected)",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("the request body is not valid JSON: {inner}"))
        } else if path == "." {
            ApiError::bad_request(format!("invalid request: {inner}"))
        } else {
            ApiError::invalid(&path, inner)
        }
    })
}
