//! Every way a hub request or a transfer fails, each with a message a user can act on.

use std::path::PathBuf;

/// What a request was about, so that a status code can be explained in the hub's terms.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "hub", rename_all = "lowercase")]
pub enum Origin {
    /// A Hugging Face repository, optionally one file at one revision.
    HuggingFace {
        repo: String,
        revision: String,
        file: Option<String>,
    },
    /// An Ollama registry name (`host/namespace/model:tag`).
    Ollama { name: String },
    /// A plain URL.
    Url,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connection failed after the server had answered.
    #[error("{url}: {message}")]
    Connection { url: String, message: String },
    /// The server did not answer at all (connection refused or timed out, name unknown):
    /// what makes "auto" try a mirror, unlike any answer, even an error status.
    #[error("{url}: no answer: {message}")]
    Unreachable { url: String, message: String },
    /// The hub answered with an error status; `message` says what it means and what to do.
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    /// The hub answered something this client cannot read.
    #[error("{url}: unexpected answer: {message}")]
    Protocol { url: String, message: String },
    #[error("{0}")]
    InvalidName(String),
    #[error(
        "checksum mismatch for {file}: expected sha256 {expected}, got {actual}; \
         the partial file is kept for inspection at {partial}"
    )]
    ChecksumMismatch {
        file: String,
        expected: String,
        actual: String,
        partial: PathBuf,
    },
    #[error("size mismatch for {file}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        file: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "not enough free disk space in {}: {needed} bytes needed ({remaining} left to download \
         + {margin} kept free), {available} available",
        path.display()
    )]
    DiskSpace {
        path: PathBuf,
        needed: u64,
        remaining: u64,
        margin: u64,
        available: u64,
    },
    /// Another transfer (this process or another one) is writing the same partial file.
    #[error(
        "another download is writing {} (a second llama-dashboard on the same data folder?); \
         wait for it or stop it",
        path.display()
    )]
    Busy { path: PathBuf },
    #[error("{url}: gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        url: String,
        attempts: u32,
        last: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    pub(crate) fn connection(url: &str, e: &reqwest::Error) -> Error {
        Error::Connection {
            url: url.to_string(),
            // reqwest's Display stops at the outermost layer; the cause says what happened.
            message: chain(e),
        }
    }

    /// A request that got no answer: connecting failed or nothing came back in time.
    pub(crate) fn unanswered(url: &str, e: &reqwest::Error) -> Error {
        if e.is_connect() || e.is_timeout() {
            Error::Unreachable {
                url: url.to_string(),
                message: chain(e),
            }
        } else {
            Error::connection(url, e)
        }
    }

    /// Worth another attempt: the network or the server failed, not the request.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connection { .. } | Error::Unreachable { .. } => true,
            Error::Status { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// An error and its causes on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// Turns an error status into an explained [`Error::Status`].
///
/// The Hugging Face hub says why in `X-Error-Code` (`GatedRepo`, `RepoNotFound`,
/// `EntryNotFound`, `RevisionNotFound`) and `X-Error-Message`; registries answer with a
/// docker-style `{"errors":[{"code","message"}]}` body, which the caller passes as `body`.
pub(crate) fn explain_status(
    origin: &Origin,
    url: &str,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &str,
    token_sent: bool,
) -> Error {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let code = header("x-error-code").unwrap_or_default();
    let hub_message = header("x-error-message");
    let message = match origin {
        Origin::HuggingFace {
            repo,
            revision,
            file,
        } => match (status, code.as_str()) {
            (401, "GatedRepo") => format!(
                "{repo} is a gated model: accept its conditions on the model page, then set \
                 HF_TOKEN (environment or config) to a token of that account"
            ),
            (403, "GatedRepo") => format!(
                "{repo} is a gated model and the token in HF_TOKEN has not been granted access: \
                 request access on the model page with that token's account"
            ),
            (401, _) if token_sent => format!(
                "the token in HF_TOKEN was refused for {repo} (invalid or expired); \
                 create a new one in the hub's settings"
            ),
            (401, _) | (404, "RepoNotFound") => format!(
                "repository {repo} was not found{}",
                if token_sent {
                    ""
                } else {
                    " (if it is private, set HF_TOKEN to a token that can read it)"
                }
            ),
            (403, _) => format!(
                "access to {repo} is forbidden{}",
                if token_sent {
                    " for the token in HF_TOKEN"
                } else {
                    "; set HF_TOKEN to a token that can read it"
                }
            ),
            (404, "RevisionNotFound") => {
                format!("revision {revision} does not exist in {repo}")
            }
            (404, _) => match file {
                Some(f) => format!("{f} is not in {repo} at revision {revision}"),
                None => format!("{repo} has no such page at revision {revision}"),
            },
            _ => generic(status, hub_message.as_deref(), body),
        },
        Origin::Ollama { name } => {
            let registry = registry_error(body);
            match status {
                401 | 403 => format!(
                    "the registry refused access to {name}{}",
                    registry.map(|m| format!(": {m}")).unwrap_or_default()
                ),
                404 => format!(
                    "{name} was not found in the registry{}",
                    registry.map(|m| format!(" ({m})")).unwrap_or_default()
                ),
                _ => generic(status, registry.as_deref(), body),
            }
        }
        Origin::Url => generic(status, hub_message.as_deref(), body),
    };
    Error::Status {
        url: url.to_string(),
        status,
        message,
    }
}

fn generic(status: u16, said: Option<&str>, body: &str) -> String {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error");
    match said {
        Some(m) => format!("{reason}: {m}"),
        None if !body.trim().is_empty() => {
            // A hostile or broken server may send anything: keep the message short.
            let text: String = body.trim().chars().take(200).collect();
            format!("{reason}: {text}")
        }
        None => reason.to_string(),
    }
}

/// The first message of a docker registry error body.
fn registry_error(body: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let parsed: Errors = serde_json::from_str(body).ok()?;
    let first = parsed.errors.into_iter().next()?;
    Some(match (first.code.is_empty(), first.message.is_empty()) {
        (false, false) => format!("{}: {}", first.code, first.message),
        (true, false) => first.message,
        (false, true) => first.code,
        (true, true) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn hf() -> Origin {
        Origin::HuggingFace {
            repo: "org/m".into(),
            revision: "main".into(),
            file: Some("m.gguf".into()),
        }
    }

    fn code(c: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-error-code", HeaderValue::from_static(c));
        h
    }

    #[test]
    fn gated_repo_is_explained_with_and_without_token() {
        let e = explain_status(&hf(), "u", 401, &code("GatedRepo"), "", false).to_string();
        assert!(e.contains("gated") && e.contains("HF_TOKEN"), "{e}");
        let e = explain_status(&hf(), "u", 403, &code("GatedRepo"), "", true).to_string();
        assert!(e.contains("not been granted access"), "{e}");
    }

    #[test]
    fn missing_repo_and_file_are_told_apart() {
        let e = explain_status(&hf(), "u", 404, &code("RepoNotFound"), "", false).to_string();
        assert!(e.contains("repository org/m was not found"), "{e}");
        let e = explain_status(&hf(), "u", 404, &code("EntryNotFound"), "", false).to_string();
        assert!(e.contains("m.gguf is not in org/m"), "{e}");
    }

    #[test]
    fn registry_errors_quote_the_body() {
        let o = Origin::Ollama {
            name: "tiny:latest".into(),
        };
        let body = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
        let e = explain_status(&o, "u", 404, &HeaderMap::new(), body, false).to_string();
        assert!(e.contains("tiny:latest was not found") && e.contains("MANIFEST_UNKNOWN"));
    }

    #[test]
    fn transient_errors_are_retried_and_others_not() {
        let s = |status| Error::Status {
            url: String::new(),
            status,
            message: String::new(),
        };
        assert!(s(503).is_transient() && s(429).is_transient());
        assert!(!s(404).is_transient() && !s(401).is_transient());
    }
}
