//! API keys, who may call what, and the rate limits.
//!
//! Keys come from `server.api_key` (inference; admin too with `server.api_key_is_admin`),
//! `server.admin_api_key`, `[[server.keys]]` tables (each with its own admin flag, rate limit
//! and `enabled` switch) and `--api-key-file`. Inference keys open the model APIs; admin keys
//! open everything, including the management API (`/api/*`, `/ws/*`, `POST /props`, slot
//! actions, LoRA changes). An inference key never opens management by itself: a server with
//! only `api_key` set has its management API closed until an admin key is set or
//! `api_key_is_admin` says that one key does both. With no key at all the server is open
//! (for loopback use: `serve` refuses a non-loopback address without a key unless told to).
//! `/health` and `/openapi.json` are always public. Keys come as `Authorization: Bearer
//! <key>` or `x-api-key: <key>` (WebSocket clients, which cannot set headers from a browser,
//! may use `?api_key=`). Keys are compared in constant time and never logged.
//!
//! Rate limits ([`Limiter`]): a sliding minute per valid key (its own limit, else
//! `server.rate_limit_per_minute`), per client address on an open server. A wrong or disabled
//! key creates no bucket of its own: it counts as a failure against the client's address, and
//! an address over `server.auth_failures_per_minute` gets 429 for every keyed request until
//! its minute passes, right keys included (otherwise guessing would go on at full speed).
//! Buckets expire after a minute idle and their number is capped.

use crate::error::{ApiError, Flavor};
use crate::state::SharedState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// One accepted key.
struct Entry {
    secret: String,
    /// What logs and errors call it (never the key itself).
    name: String,
    admin: bool,
    /// Requests per minute; `None` = the server's limit.
    limit: Option<u32>,
    enabled: bool,
}

/// The keys the server accepts, and the rate limits.
pub struct Keys {
    entries: Vec<Entry>,
    /// Requests per minute per key (or per client address without keys); `None` = no limit.
    rate_limit: Option<u32>,
    /// Wrong keys per minute per client address before it is throttled.
    failures_per_minute: u32,
    limiter: Limiter,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field(
                "keys",
                &self.entries.iter().map(|e| &e.name).collect::<Vec<_>>(),
            )
            .field("rate_limit", &self.rate_limit)
            .field("failures_per_minute", &self.failures_per_minute)
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

/// The outcome of checking a presented key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// No key is configured: everyone is admin.
    Open,
    /// No key presented on a server that needs one.
    Missing,
    /// Not one of the keys.
    Wrong,
    /// One of the keys, switched off (`enabled = false`).
    Disabled,
    /// The key at this index, with its access.
    Valid(usize, Access),
}

impl Keys {
    /// The keys of `[server]` plus those of a key file (`extra`: inference, admin).
    pub fn from_config(c: &config::ServerConfig, extra: &(Vec<String>, Vec<String>)) -> Self {
        let mut entries = Vec::new();
        let mut add = |secret: &str, name: String, admin: bool, limit, enabled| {
            let secret = secret.trim();
            if !secret.is_empty() {
                entries.push(Entry {
                    secret: secret.to_string(),
                    name,
                    admin,
                    limit,
                    enabled,
                });
            }
        };
        if let Some(k) = &c.api_key {
            add(k, "server.api_key".into(), c.api_key_is_admin, None, true);
        }
        if let Some(k) = &c.admin_api_key {
            add(k, "server.admin_api_key".into(), true, None, true);
        }
        for (i, k) in c.keys.iter().enumerate() {
            let name = k
                .name
                .clone()
                .unwrap_or_else(|| format!("server.keys[{i}]"));
            add(&k.key, name, k.admin, k.rate_limit_per_minute, k.enabled);
        }
        for (file_keys, kind, admin) in [(&extra.0, "inference", false), (&extra.1, "admin", true)]
        {
            for (i, k) in file_keys.iter().enumerate() {
                add(
                    k,
                    format!("key file, {kind} key {}", i + 1),
                    admin,
                    None,
                    true,
                );
            }
        }
        Keys {
            entries,
            rate_limit: Some(c.rate_limit_per_minute).filter(|&n| n > 0),
            failures_per_minute: c.auth_failures_per_minute.max(1),
            limiter: Limiter::default(),
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

    /// No key configured (disabled keys count: switching a key off must not open the server).
    pub fn is_open(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks a presented key against every key, without stopping early.
    pub fn check(&self, presented: Option<&str>) -> Check {
        if self.is_open() {
            return Check::Open;
        }
        let Some(p) = presented else {
            return Check::Missing;
        };
        let mut found = None;
        for (i, e) in self.entries.iter().enumerate() {
            if bool::from(e.secret.as_bytes().ct_eq(p.as_bytes())) && found.is_none() {
                found = Some(i);
            }
        }
        match found.map(|i| (i, &self.entries[i])) {
            None => Check::Wrong,
            Some((_, e)) if !e.enabled => Check::Disabled,
            Some((i, e)) => Check::Valid(
                i,
                if e.admin {
                    Access::Admin
                } else {
                    Access::Inference
                },
            ),
        }
    }

    /// The number of rate-limit buckets held now (for tests: it must stay bounded).
    pub fn bucket_count(&self) -> usize {
        self.limiter.len()
    }
}

/// What a rate-limit bucket belongs to. Never a presented key's text: only valid keys (by
/// index) and client addresses get buckets, so invented keys cannot grow the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bucket {
    Key(usize),
    Address(IpAddr),
    Failures(IpAddr),
}

/// Sliding one-minute windows (seed 003), one per bucket.
#[derive(Default)]
struct Limiter {
    windows: Mutex<Windows>,
}

#[derive(Default)]
struct Windows {
    map: HashMap<Bucket, VecDeque<Instant>>,
    last_sweep: Option<Instant>,
}

const MINUTE: Duration = Duration::from_secs(60);
/// Most buckets held at once: many client addresses (an IPv6 attacker has plenty) cannot
/// grow memory beyond this; the least recently used bucket makes room.
const MAX_BUCKETS: usize = 10_000;

impl Limiter {
    fn len(&self) -> usize {
        self.lock().map.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Windows> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an event in `bucket`'s window unless `limit` is reached; `Err(seconds)` to wait.
    fn take(&self, bucket: Bucket, limit: u32, now: Instant) -> Result<(), u64> {
        let mut w = self.lock();
        w.sweep(now);
        let window = w.window(bucket, now);
        if window.len() >= limit as usize {
            return Err(wait(window, now));
        }
        window.push_back(now);
        Ok(())
    }

    /// `Err(seconds)` when `bucket` holds `limit` events of the last minute (counts nothing).
    fn over(&self, bucket: Bucket, limit: u32, now: Instant) -> Result<(), u64> {
        let mut w = self.lock();
        match w.map.get_mut(&bucket) {
            Some(window) => {
                expire(window, now);
                if window.len() >= limit as usize {
                    Err(wait(window, now))
                } else {
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }
}

impl Windows {
    /// The window of `bucket`, made if new (room made first when at the cap).
    fn window(&mut self, bucket: Bucket, now: Instant) -> &mut VecDeque<Instant> {
        if !self.map.contains_key(&bucket) && self.map.len() >= MAX_BUCKETS {
            self.sweep_all(now);
            if self.map.len() >= MAX_BUCKETS {
                let lru = self
                    .map
                    .iter()
                    .min_by_key(|(_, w)| w.back().copied())
                    .map(|(b, _)| *b);
                if let Some(b) = lru {
                    self.map.remove(&b);
                }
            }
        }
        let window = self.map.entry(bucket).or_default();
        expire(window, now);
        window
    }

    /// Drops idle buckets, at most once a second (each sweep walks the table).
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            self.sweep_all(now);
        }
    }

    fn sweep_all(&mut self, now: Instant) {
        self.last_sweep = Some(now);
        self.map.retain(|_, w| {
            expire(w, now);
            !w.is_empty()
        });
    }
}

fn expire(window: &mut VecDeque<Instant>, now: Instant) {
    while window
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= MINUTE)
    {
        window.pop_front();
    }
}

/// Seconds until the oldest event of a full window leaves it.
fn wait(window: &VecDeque<Instant>, now: Instant) -> u64 {
    let oldest = window.front().copied().unwrap_or(now);
    MINUTE
        .saturating_sub(now.saturating_duration_since(oldest))
        .as_secs()
        .max(1)
}

/// The client a request counts against: its address, IPv6 by /64 (one host's share; a
/// single machine usually holds a whole /64).
fn client_of(req: &Request) -> IpAddr {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
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

/// What a request needs: nothing for health, the API document and `/`; for Ollama's routes
/// an inference key, admin for those that change the installed models; admin for management
/// and for the native routes that change server state (`POST /props`, slot actions,
/// LoRA scales), an inference key for the rest. Reading the hub (search, a repository's
/// files, categories) needs an inference key only: it shows nothing of this machine.
pub fn required_access(method: &str, path: &str) -> Access {
    let changes = !method.eq_ignore_ascii_case("get");
    match path {
        // `/`: the probe Ollama clients send ("Ollama is running"), and a browser's page.
        "/health" | "/v1/health" | "/readiness" | "/openapi.json" | "/" => Access::None,
        p if crate::error::OLLAMA_ROUTES.contains(&p) => {
            if changes_installed_models(p) {
                Access::Admin
            } else {
                Access::Inference
            }
        }
        p if !changes && reads_the_hub(p) => Access::Inference,
        // LM Studio's REST API v0: inference, as the OpenAI routes it answers like.
        p if p.starts_with("/api/v0/") => Access::Inference,
        p if p.starts_with("/api/") || p.starts_with("/ws/") => Access::Admin,
        // Seed 003's spellings of the chat session routes: as `/api/chat/*`.
        p if crate::api::sessions::is_alias(p) => Access::Admin,
        "/props" | "/lora-adapters" if changes => Access::Admin,
        p if p.starts_with("/slots/") => Access::Admin,
        _ => Access::Inference,
    }
}

/// Ollama's routes that change what is installed (pull, delete, copy, create, push): admin.
/// Its other routes (list, show, ps, version, chat, generate, embed) take an inference key.
fn changes_installed_models(path: &str) -> bool {
    matches!(
        path,
        "/api/pull" | "/api/delete" | "/api/copy" | "/api/create" | "/api/push"
    )
}

/// The download routes that only read a model hub.
fn reads_the_hub(path: &str) -> bool {
    matches!(
        path,
        "/api/download/search"
            | "/api/download/files"
            | "/api/models/search"
            | "/api/models/categories"
    ) || path
        .strip_prefix("/api/models/")
        .and_then(|p| p.strip_suffix("/info"))
        .is_some_and(|id| !id.is_empty())
}

/// The middleware: the key (throttling addresses that keep presenting wrong ones), the
/// access the route needs, then the rate limit. The request's [`Access`] goes on as an
/// extension, for handlers that show more to admins.
pub async fn require_key(
    State(state): State<SharedState>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_string();
    let needed = required_access(req.method().as_str(), &path);
    // The dashboard's pages and files are public: the page asks for a key itself.
    if needed == Access::None || crate::pages::is_static(&req) {
        return next.run(req).await;
    }
    let flavor = Flavor::of_path(&path);
    let keys = &state.keys;
    let client = client_of(&req);
    let now = Instant::now();
    let is_ws = path.starts_with("/ws/");
    let key = presented_key(req.headers(), if is_ws { req.uri().query() } else { None });
    if key.is_some() && !keys.is_open() {
        if let Err(wait) =
            keys.limiter
                .over(Bucket::Failures(client), keys.failures_per_minute, now)
        {
            return too_many(
                format!(
                    "too many wrong API keys from this address ({} per minute, \
                     server.auth_failures_per_minute); retry in {wait} s",
                    keys.failures_per_minute
                ),
                wait,
                flavor,
            );
        }
    }
    let check = keys.check(key);
    let (access, bucket, limit) = match check {
        Check::Open => (Access::Admin, Bucket::Address(client), keys.rate_limit),
        Check::Valid(i, access) => (
            access,
            Bucket::Key(i),
            keys.entries[i].limit.or(keys.rate_limit),
        ),
        Check::Missing => return unauthorized("an API key is required", flavor),
        Check::Wrong | Check::Disabled => {
            // Counted whether or not the window is full: the throttle above answers first.
            let _ = keys.limiter.take(Bucket::Failures(client), u32::MAX, now);
            let message = if check == Check::Disabled {
                "this API key is disabled (enabled = false in server.keys)"
            } else {
                "invalid API key"
            };
            return unauthorized(message, flavor);
        }
    };
    if access < needed {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "this API key does not give access to the management API: it needs an admin key \
             (server.admin_api_key, admin = true in server.keys, or server.api_key_is_admin = true \
             to let server.api_key manage the server)",
        )
        .flavor(flavor)
        .into_response();
    }
    if let Some(limit) = limit
        && let Err(wait) = keys.limiter.take(bucket, limit, now)
    {
        let whose = match bucket {
            Bucket::Key(i) => format!("key '{}'", keys.entries[i].name),
            _ => "this address".to_string(),
        };
        return too_many(
            format!(
                "rate limit exceeded: {limit} requests per minute for {whose} \
                 (server.rate_limit_per_minute, or rate_limit_per_minute in server.keys); \
                 retry in {wait} s"
            ),
            wait,
            flavor,
        );
    }
    req.extensions_mut().insert(access);
    next.run(req).await
}

fn unauthorized(message: &str, flavor: Flavor) -> Response {
    let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, message)
        .flavor(flavor)
        .into_response();
    resp.headers_mut().insert(
        axum::http::header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer"),
    );
    resp
}

fn too_many(message: String, wait: u64, flavor: Flavor) -> Response {
    let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, message).flavor(flavor);
    e.retry_after = Some(wait);
    e.into_response()
}

/// Whether the request came with admin access (handlers that hide paths from inference keys).
pub fn is_admin(access: Option<&axum::Extension<Access>>) -> bool {
    access.is_some_and(|a| a.0 == Access::Admin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::{ApiKey, ServerConfig};

    fn keys(f: impl FnOnce(&mut ServerConfig)) -> Keys {
        let mut c = ServerConfig::default();
        f(&mut c);
        Keys::from_config(&c, &(Vec::new(), Vec::new()))
    }

    fn access(k: &Keys, p: Option<&str>) -> Access {
        match k.check(p) {
            Check::Open => Access::Admin,
            Check::Valid(_, a) => a,
            _ => Access::None,
        }
    }

    #[test]
    fn access_levels() {
        let k = keys(|c| {
            c.api_key = Some("inf".into());
            c.admin_api_key = Some("adm".into());
        });
        assert_eq!(access(&k, None), Access::None);
        assert_eq!(access(&k, Some("nope")), Access::None);
        assert_eq!(access(&k, Some("inf")), Access::Inference);
        assert_eq!(access(&k, Some("adm")), Access::Admin);
        assert_eq!(access(&k, Some("in")), Access::None);

        // An inference key alone does not open management...
        let only_inference = keys(|c| c.api_key = Some("inf".into()));
        assert_eq!(access(&only_inference, Some("inf")), Access::Inference);
        assert_eq!(access(&only_inference, None), Access::None);
        // ...unless the one key is meant to do both.
        let one_key = keys(|c| {
            c.api_key = Some("inf".into());
            c.api_key_is_admin = true;
        });
        assert_eq!(access(&one_key, Some("inf")), Access::Admin);

        let open = keys(|c| c.admin_api_key = Some(" ".into()));
        assert_eq!(open.check(None), Check::Open);
    }

    #[test]
    fn key_tables_and_key_files() {
        let mut c = ServerConfig::default();
        c.keys = vec![
            ApiKey {
                key: "off".into(),
                name: Some("old".into()),
                admin: true,
                rate_limit_per_minute: None,
                enabled: false,
            },
            ApiKey {
                key: "ops".into(),
                name: None,
                admin: true,
                rate_limit_per_minute: Some(5),
                enabled: true,
            },
        ];
        let k = Keys::from_config(&c, &(vec!["f-inf".into()], vec!["f-adm".into()]));
        assert!(!k.is_open(), "a disabled key still closes the server");
        assert_eq!(k.check(Some("off")), Check::Disabled);
        assert_eq!(k.check(Some("ops")), Check::Valid(1, Access::Admin));
        assert_eq!(k.entries[1].limit, Some(5));
        assert_eq!(access(&k, Some("f-inf")), Access::Inference);
        assert_eq!(access(&k, Some("f-adm")), Access::Admin);
        let dbg = format!("{k:?}");
        assert!(dbg.contains("old") && !dbg.contains("ops\""), "{dbg}");
    }

    #[test]
    fn sliding_window() {
        let l = Limiter::default();
        let t0 = Instant::now();
        let a = Bucket::Key(0);
        assert!(l.take(a, 2, t0).is_ok());
        assert!(l.take(a, 2, t0).is_ok());
        let wait = l.take(a, 2, t0).unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(l.take(Bucket::Key(1), 2, t0).is_ok(), "windows are per key");
        assert!(l.take(a, 2, t0 + MINUTE).is_ok(), "a minute later");
    }

    #[test]
    fn idle_buckets_expire_and_the_table_is_capped() {
        let l = Limiter::default();
        let t0 = Instant::now();
        for i in 0..100u8 {
            l.take(Bucket::Address(IpAddr::from([10, 0, 0, i])), 5, t0)
                .unwrap();
        }
        assert_eq!(l.len(), 100);
        // A minute later, the next request sweeps the idle ones away.
        l.take(Bucket::Key(0), 5, t0 + MINUTE).unwrap();
        assert_eq!(l.len(), 1);
        // Never more than the cap, however many addresses come at once.
        let t1 = t0 + MINUTE * 2;
        for i in 0..(MAX_BUCKETS as u32 + 50) {
            l.take(Bucket::Address(IpAddr::from(i.to_be_bytes())), 5, t1)
                .unwrap();
        }
        assert_eq!(l.len(), MAX_BUCKETS);
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
