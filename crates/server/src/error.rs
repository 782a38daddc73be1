//! Errors on the wire. One type, [`ApiError`], rendered in the shape of the API family the
//! route belongs to: OpenAI's `{"error": {"message", "type", "param", "code"}}` on `/v1/*`,
//! llama-server's `{"error": {"code", "message", "type"}}` on native routes, and the
//! management API's `{"error": {"code", "message"}}` on `/api/*`, and Anthropic's
//! `{"type": "error", "error": {"type", "message"}}` on `/v1/messages*`. Status codes follow
//! DESIGN.md (400 invalid, 401/403 auth, 404 unknown, 409 conflict, 413 too large, 429 busy,
//! 503 loading or shutting down, 500 only for bugs).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use service::{ErrorKind, ServiceError};

/// Which error shape a route speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    OpenAi,
    Native,
    Admin,
    /// Anthropic's Messages API.
    Anthropic,
    /// Ollama's API: `{"error": "..."}` with its status codes.
    Ollama,
}

/// Ollama's routes (`/api/<name>` exactly; the management routes under `/api/` keep the admin
/// shape). `/api/chat` is Ollama's, `/api/chat/...` is not.
pub const OLLAMA_ROUTES: &[&str] = &[
    "/api/chat",
    "/api/generate",
    "/api/embed",
    "/api/embeddings",
    "/api/tags",
    "/api/show",
    "/api/ps",
    "/api/version",
    "/api/pull",
    "/api/push",
    "/api/create",
    "/api/delete",
    "/api/copy",
];

impl Flavor {
    /// The flavor of a request path (for errors raised before a handler runs: auth, body
    /// limit, unknown routes).
    pub fn of_path(path: &str) -> Flavor {
        if path == "/v1/messages" || path.starts_with("/v1/messages/") {
            Flavor::Anthropic
        } else if OLLAMA_ROUTES.contains(&path) {
            Flavor::Ollama
        } else if path.starts_with("/v1/") || path == "/v1" || path.starts_with("/api/v0/") {
            Flavor::OpenAi
        } else if path.starts_with("/api/")
            || path.starts_with("/ws/")
            || crate::api::sessions::is_alias(path)
        {
            Flavor::Admin
        } else if matches!(
            path,
            "/models" | "/completions" | "/chat/completions" | "/embeddings" | "/responses"
        ) {
            // llama-server serves the OpenAI routes without the /v1 prefix too.
            Flavor::OpenAi
        } else {
            Flavor::Native
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub param: Option<String>,
    /// `Retry-After` seconds (429, 503).
    pub retry_after: Option<u64>,
    /// `(prompt tokens, context tokens)`: the prompt does not fit in the context. Every
    /// flavor then says so as llama-server does: type `exceed_context_size_error` with
    /// `n_prompt_tokens` and `n_ctx`, which clients read to trim their prompts.
    pub context_overflow: Option<(u32, u32)>,
    pub flavor: Flavor,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            param: None,
            retry_after: None,
            context_overflow: None,
            flavor: Flavor::OpenAi,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// A field with a bad value; the message names it.
    pub fn invalid(param: &str, reason: impl std::fmt::Display) -> Self {
        ApiError {
            param: Some(param.to_string()),
            ..Self::bad_request(format!("invalid parameter '{param}': {reason}"))
        }
    }

    /// This error blames a request field (OpenAI's `param`).
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    pub fn flavor(mut self, flavor: Flavor) -> Self {
        self.flavor = flavor;
        self
    }

    /// OpenAI's `type` for a status.
    fn openai_type(&self) -> &'static str {
        match self.status.as_u16() {
            400 | 404 | 408 | 409 | 413 | 422 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            429 => "rate_limit_error",
            501 => "not_supported_error",
            503 => "unavailable_error",
            _ => "server_error",
        }
    }

    /// Anthropic's `error.type` for a status (its documented set: 400, 401, 403, 404, 413,
    /// 429, 500, 504 and 529; our 503 is its "overloaded", 408 its timeout).
    fn anthropic_type(&self) -> &'static str {
        match self.status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            408 | 504 => "timeout_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            503 | 529 => "overloaded_error",
            s if s >= 500 => "api_error",
            _ => "invalid_request_error",
        }
    }

    /// Anthropic's error body, `{"type": "error", "error": {"type", "message"}}` (also the
    /// `error` event that ends a stream). A prompt over the context is said in Anthropic's
    /// words, which its clients look for to trim a conversation.
    pub(crate) fn anthropic_body(&self) -> serde_json::Value {
        let message = match self.context_overflow {
            Some((n_prompt, n_ctx)) => format!(
                "prompt is too long: {n_prompt} tokens > {n_ctx} maximum ({})",
                self.message
            ),
            None => self.message.clone(),
        };
        json!({"type": "error", "error": {"type": self.anthropic_type(), "message": message}})
    }

    /// Ollama's error text. A prompt over the context is said with both counts, as the
    /// other flavors carry them in fields.
    pub(crate) fn ollama_message(&self) -> String {
        match self.context_overflow {
            Some((n_prompt, n_ctx)) => format!(
                "the input length ({n_prompt} tokens) exceeds the context length ({n_ctx} tokens): {}",
                self.message
            ),
            None => self.message.clone(),
        }
    }

    /// A short machine-readable code.
    fn code(&self) -> &'static str {
        match self.status.as_u16() {
            400 => "invalid_request",
            401 => "invalid_api_key",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            408 => "request_timeout",
            409 => "conflict",
            413 => "payload_too_large",
            415 => "unsupported_media_type",
            429 => "rate_limited",
            501 => "not_supported",
            503 => "unavailable",
            _ => "internal_error",
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let status = match e.kind() {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::Timeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::NotSupported => StatusCode::NOT_IMPLEMENTED,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(error = %e, "request failed");
        }
        ApiError {
            status,
            message: e.to_string(),
            param: e.param().map(str::to_owned),
            retry_after: matches!(status.as_u16(), 429 | 503).then_some(1),
            context_overflow: e.context_overflow(),
            flavor: Flavor::OpenAi,
        }
    }
}

impl From<service::EngineError> for ApiError {
    fn from(e: service::EngineError) -> Self {
        ServiceError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let me = self.clone();
        let mut body = match self.flavor {
            Flavor::OpenAi => json!({"error": {
                "message": self.message,
                "type": self.openai_type(),
                "param": self.param,
                "code": self.code(),
            }}),
            // llama-server: {"error": {"code": 400, "message": "...", "type": "invalid_request_error"}}
            Flavor::Native => json!({"error": {
                "code": self.status.as_u16(),
                "message": self.message,
                "type": self.openai_type(),
            }}),
            Flavor::Admin => json!({"error": {
                "code": self.code(),
                "status": self.status.as_u16(),
                "message": self.message,
                "param": self.param,
            }}),
            Flavor::Anthropic => self.anthropic_body(),
            Flavor::Ollama => json!({"error": self.ollama_message()}),
        };
        if let Some((n_prompt, n_ctx)) = self.context_overflow
            && !matches!(self.flavor, Flavor::Anthropic | Flavor::Ollama)
            && let Some(e) = body.get_mut("error").and_then(|e| e.as_object_mut())
        {
            if self.flavor != Flavor::Admin {
                e.insert("type".into(), json!("exceed_context_size_error"));
            }
            e.insert("n_prompt_tokens".into(), json!(n_prompt));
            e.insert("n_ctx".into(), json!(n_ctx));
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        // Lets `middleware::shape_errors` re-render it in the route's flavor.
        resp.extensions_mut().insert(me);
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
