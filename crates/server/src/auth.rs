//! API keys and the per-key rate limit.
//!
//! Two kinds of keys: inference keys open the model APIs; admin keys open everything,
//! including the management API (`/api/*`, `/ws/*`). When no admin key is set, the
//! inference keys open the management API too; when no key at all is set, the server is
//! open (it binds loopback by default). `/health` and `/openapi.json` are always public.
//! Keys come as `Authorization: Bearer <key>` or `x-api-key: <key>` (WebSocket clients,
//! which cannot set headers from a browser, may use `?api_key=`). Keys are compared in
//! constant time and never logged.

use crate::error::{ApiError, Flavor};
use crate::state::SharedState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The keys the server accepts, and the rate limit.
pub struct Keys {
    inference: Vec<String>,
    admin: Vec<String>,
    /// Requests per minute per key (or per client address without a key); `None` = no limit.
    rate_limit: Option<u32>,
    windows: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("inference", &self.inference.len())
            .field("admin", &self.admin.len())
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

/// What a presented key is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    None,
    Inference,
    Admin,
}

impl Keys {
    pub fn new(inference: Vec<String>, admin: Vec<String>, rate_limit: Option<u32>) -> Self {
        let clean = |v: Vec<String>| {
            v.into_iter()
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .collect::<Vec<_>>()
        };
        Keys {
            inference: clean(inference),
            admin: clean(admin),
            rate_limit: rate_limit.filter(|&n| n > 0),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Reads a key file: one key per line, `admin:<key>` for admin keys, `#` comments.
    pub fn read_file(path: &std::path::Path) -> anyhow::Result<(Vec<String>, Vec<String>)> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading the key file {}: {e}", path.display()))?;
        let mut inference = Vec::new();
        let mut admin = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.strip_prefix("admin:") {
                Some(k) => admin.push(k.trim().to_string()),
                None => inference.push(line.to_string()),
            }
        }
        Ok((inference, admin))
    }

    pub fn is_open(&self) -> bool {
        self.inference.is_empty() && self.admin.is_empty()
    }

    /// The access a presented key gives.
    pub fn access(&self, presented: Option<&str>) -> Access {
        if self.is_open() {
            return Access::Admin;
        }
        let Some(p) = presented else {
            return Access::None;
        };
        // Compare against every key, without stopping early.
        let hit = |keys: &[String]| {
            keys.iter().fold(0u8, |acc, k| {
                acc | u8::from(bool::from(k.as_bytes().ct_eq(p.as_bytes())))
            }) == 1
        };
        let admin = hit(&self.admin);
        let inference = hit(&self.inference);
        if admin || (self.admin.is_empty() && inference) {
            Access::Admin
        } else if inference {
            Access::Inference
        } else {
            Access::None
        }
    }

    /// Counts a request against `who`'s window; `Err(seconds)` to wait when over the limit.
    fn take(&self, who: &str) -> Result<(), u64> {
        let Some(limit) = self.rate_limit else {
            return Ok(());
        };
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let w = windows.entry(who.to_string()).or_default();
        while w.front().is_some_and(|t| now.duration_since(*t) >= minute) {
            w.pop_front();
        }
        if w.len() >= limit as usize {
            let oldest = *w.front().expect("non-empty at the limit");
            let wait = minute.saturating_sub(now.duration_since(oldest));
            return Err(wait.as_secs().max(1));
        }
        w.push_back(now);
        Ok(())
    }
}

/// The key a request presents.
pub fn presented_key<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if let Some(k) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            return Some(k.trim());
        }
    }
    if let Some(k) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(k.trim());
    }
    query?.split('&').find_map(|kv| kv.strip_prefix("api_key="))
}

/// What a request needs: nothing for health and the API document, admin for management
/// and for the native routes that change server state (`POST /props`, slot actions,
/// LoRA scales), an inference key for the rest.
pub fn required_access(method: &str, path: &str) -> Access {
    let changes = !method.eq_ignore_ascii_case("get");
    match path {
        "/health" | "/v1/health" | "/openapi.json" => Access::None,
        p if p.starts_with("/api/") || p.starts_with("/ws/") => Access::Admin,
        "/props" | "/lora-adapters" if changes => Access::Admin,
        p if p.starts_with("/slots/") => Access::Admin,
        _ => Access::Inference,
    }
}

/// The middleware: checks the key, then the rate limit.
pub async fn require_key(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let needed = required_access(req.method().as_str(), &path);
    if needed == Access::None {
        return next.run(req).await;
    }
    let flavor = Flavor::of_path(&path);
    let is_ws = path.starts_with("/ws/");
    let key = presented_key(req.headers(), if is_ws { req.uri().query() } else { None });
    let access = state.keys.access(key);
    if access < needed {
        let (status, message) = match (key, access) {
            (None, _) => (StatusCode::UNAUTHORIZED, "an API key is required"),
            (Some(_), Access::None) => (StatusCode::UNAUTHORIZED, "invalid API key"),
            _ => (
                StatusCode::FORBIDDEN,
                "this API key does not give access to the management API",
            ),
        };
        let mut resp = ApiError::new(status, message)
            .flavor(flavor)
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        return resp;
    }
    let who = match key {
        Some(k) => format!("key:{k}"),
        None => req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| format!("ip:{}", c.0.ip()))
            .unwrap_or_else(|| "anonymous".into()),
    };
    if let Err(wait) = state.keys.take(&who) {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("rate limit exceeded; retry in {wait} s"),
        )
        .flavor(flavor);
        e.retry_after = Some(wait);
        return e.into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_levels() {
        let k = Keys::new(vec!["inf".into()], vec!["adm".into()], None);
        assert_eq!(k.access(None), Access::None);
        assert_eq!(k.access(Some("nope")), Access::None);
        assert_eq!(k.access(Some("inf")), Access::Inference);
        assert_eq!(k.access(Some("adm")), Access::Admin);
        assert_eq!(k.access(Some("in")), Access::None);

        let only_inference = Keys::new(vec!["inf".into()], vec![], None);
        assert_eq!(only_inference.access(Some("inf")), Access::Admin);
        assert_eq!(only_inference.access(None), Access::None);

        let open = Keys::new(vec![], vec![" ".into()], None);
        assert_eq!(open.access(None), Access::Admin);
    }

    #[test]
    fn sliding_window() {
        let k = Keys::new(vec![], vec![], Some(2));
        assert!(k.take("a").is_ok());
        assert!(k.take("a").is_ok());
        let wait = k.take("a").unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(k.take("b").is_ok(), "windows are per key");
    }

    #[test]
    fn keys_from_headers() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(presented_key(&h, None), Some("abc"));
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "xyz".parse().unwrap());
        assert_eq!(presented_key(&h, None), Some("xyz"));
        assert_eq!(
            presented_key(&HeaderMap::new(), Some("a=1&api_key=q")),
            Some("q")
        );
    }
}
