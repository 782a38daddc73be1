//! Browsers must not drive a local server. A web page the user visits can send requests to
//! `http://127.0.0.1:8080` (a `text/plain` POST needs no CORS preflight) and, by DNS
//! rebinding, read the answers under its own name. Two checks run before any handler,
//! whatever the content type, and CORS answers from the same rules:
//!
//! - **Host**: the `Host` header must be a loopback name (`localhost`, `*.localhost`), an IP
//!   address (the bound one among them), or a name in `server.allowed_hosts` (`*` = any). A
//!   rebinding page always reaches the server under the attacker's *name*, so a name we do not
//!   know is refused. A server bound to a non-loopback address *with* keys accepts any `Host`,
//!   as Ollama does when it listens on the network: users reach it by whatever name their
//!   network gives it, and a rebinding page gains nothing without the key. Without keys (the
//!   operator passed `--insecure-open`) the rule above holds there too.
//! - **Origin** (only when the header is present, as browsers send it on cross-site requests
//!   and WebSocket upgrades; curl and SDKs send none and are unaffected): the same origin
//!   (scheme, host and port of the `Host` the request came to), an origin listed in
//!   `server.cors_origins` (a full origin, or a bare host name for that host on any scheme
//!   and port), or, on the inference routes only, a loopback origin on any port (Ollama's
//!   default) or any origin at all when the list holds `*`. The management surface (what
//!   [`auth::required_access`] marks admin: `/api/*`, `/ws/*`, `POST /props`, `/slots/*`,
//!   `POST /lora-adapters`) is stricter: a page on `http://localhost:3000` is another origin
//!   and another program, so it needs to be listed by name (or by `localhost`, which lists
//!   every loopback origin); `*` never opens management.
//!
//! [`Policy::origin_allowed`] is the one answer to "may this origin call this route"; the
//! guard refuses requests with it and answers preflights with it, so a preflight never
//! promises what the request would be refused. Preflights are answered as llama-server
//! answers them (`server-http.cpp`): always 200, the origin reflected in
//! `Access-Control-Allow-Origin` only when it is allowed, with llama-server's default
//! `--cors-methods`, `--cors-headers` and credentials. An origin that is not allowed gets a
//! 200 without `Access-Control-Allow-Origin`: the browser then never sends the request, and
//! the request itself, sent anyway (a `text/plain` POST needs no preflight), is refused with
//! 403. The headers are written here rather than by `tower_http::cors`, which refuses
//! llama-server's combination (credentials with `Access-Control-Allow-Headers: *`).

use crate::auth::{self, Access};
use crate::error::{ApiError, Flavor};
use crate::state::SharedState;
use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;

/// The Host and Origin rules of one server, from `[server]`.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `cors_origins` holds `*`: any origin on the inference routes.
    any_origin: bool,
    /// `cors_origins` holds `localhost`: loopback origins on every route.
    loopback_origins: bool,
    /// Listed origins, normalised (`scheme://host:port`, lower case, explicit port).
    origins: Vec<String>,
    /// Listed bare host names (`web.mydomain.fr`, as llama-server's `--cors-origins` is often
    /// given), lower case, with the port if one was given: that host on http and https.
    origin_hosts: Vec<(String, Option<u16>)>,
    /// `allowed_hosts` holds `*`.
    any_host: bool,
    /// Listed host names, lower case.
    hosts: Vec<String>,
}

impl Policy {
    pub fn new(cors_origins: &[String], allowed_hosts: &[String]) -> Policy {
        let mut p = Policy::default();
        for o in cors_origins.iter().map(|o| o.trim()) {
            match o {
                "*" => p.any_origin = true,
                _ if o.eq_ignore_ascii_case("localhost") => p.loopback_origins = true,
                _ => match (Origin::parse(o), o.parse::<Authority>()) {
                    (Some(o), _) => p.origins.push(o.normalised()),
                    (None, Ok(a)) if !a.as_str().contains('@') => p
                        .origin_hosts
                        .push((host_name(a.as_str()).to_ascii_lowercase(), a.port_u16())),
                    _ => {
                        tracing::warn!(origin = %o, "server.cors_origins: neither an origin (scheme://host[:port]) nor a host name; ignored")
                    }
                },
            }
        }
        for h in allowed_hosts.iter().map(|h| h.trim()) {
            if h == "*" {
                p.any_host = true;
            } else if !h.is_empty() {
                // A `host:port` entry counts for the host (ports do not matter for rebinding).
                p.hosts.push(host_name(h).to_ascii_lowercase());
            }
        }
        p
    }

    /// May a request with this `Host` be served? `keyed_network`: the server is bound to a
    /// non-loopback address and requires a key (see the module's notes).
    pub fn host_allowed(&self, host: Option<&str>, keyed_network: bool) -> bool {
        if keyed_network || self.any_host {
            return true;
        }
        // HTTP/1.0 without a Host: not a browser (browsers always send one).
        let Some(host) = host else { return true };
        let name = host_name(host).to_ascii_lowercase();
        is_loopback_name(&name) || name.parse::<IpAddr>().is_ok() || self.hosts.contains(&name)
    }

    /// May a page of `origin` call a route (`management`: an admin route)? `host` is the
    /// request's `Host`, for the same-origin case.
    pub fn origin_allowed(&self, origin: &str, host: Option<&str>, management: bool) -> bool {
        // `null` (sandboxed frames, `file:` pages) and anything else that is not
        // `scheme://host[:port]`: only `*`, which takes any page, lets them in.
        let Some(o) = Origin::parse(origin) else {
            return self.any_origin && !management;
        };
        if host.is_some_and(|h| o.same_as(h)) || self.listed(&o) {
            return true;
        }
        if o.is_loopback() && (self.loopback_origins || !management) {
            return true;
        }
        self.any_origin && !management
    }

    /// Listed by `server.cors_origins`: as a full origin, or by its host name.
    fn listed(&self, o: &Origin) -> bool {
        self.origins.contains(&o.normalised())
            || (matches!(o.scheme.as_str(), "http" | "https")
                && self
                    .origin_hosts
                    .iter()
                    .any(|(h, port)| *h == o.host && port.is_none_or(|p| p == o.port)))
    }
}

/// The management surface: the routes that need admin access, and llama-server's `/tools`
/// (server tools fetch URLs and read files with the server's rights: a page on another
/// loopback port may use the models, not run tools; inference keys may only when
/// `tools.inference_keys` says, which the handler checks).
fn is_management(method: &str, path: &str) -> bool {
    auth::required_access(method, path) == Access::Admin || path == "/tools"
}

/// On a request from a browser page that the guard let in: whether that page may use the
/// management surface. Inference routes that can run server tools
/// (`server_tools` on `/v1/chat/completions`) ask it (`api::tools::may_use_tools`).
#[derive(Debug, Clone, Copy)]
pub struct FromPage {
    pub may_manage: bool,
}

/// The `Host` a request came to (HTTP/2 carries it in the URI's authority).
fn request_host<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Option<&'a str> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(Authority::as_str))
}

/// `host:port`, `[::1]:8080`, `host` → the host part (IPv6 without brackets).
fn host_name(authority: &str) -> &str {
    let a = authority.trim();
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match a.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => a,
    }
    .trim_end_matches('.')
}

/// `localhost`, `*.localhost` (RFC 6761: always loopback, browsers resolve it so) and
/// loopback addresses.
fn is_loopback_name(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A parsed `Origin` header value: `scheme://host[:port]`.
#[derive(Debug, PartialEq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    fn parse(s: &str) -> Option<Origin> {
        let uri: Uri = s.trim().trim_end_matches('/').parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let authority = uri.authority()?;
        let default = match scheme.as_str() {
            "http" | "ws" => 80,
            "https" | "wss" => 443,
            _ => 0,
        };
        Some(Origin {
            port: authority.port_u16().unwrap_or(default),
            host: host_name(authority.as_str()).to_ascii_lowercase(),
            scheme,
        })
    }

    fn normalised(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }

    fn is_loopback(&self) -> bool {
        matches!(self.scheme.as_str(), "http" | "https") && is_loopback_name(&self.host)
    }

    /// The page was served by this server: same host and port as the request's `Host`
    /// (whose port defaults to the origin scheme's).
    fn same_as(&self, host: &str) -> bool {
        let Ok(a) = host.trim().parse::<Authority>() else {
            return false;
        };
        host_name(a.as_str()).eq_ignore_ascii_case(&self.host)
            && a.port_u16().unwrap_or(self.port) == self.port
    }
}

/// The middleware: Host, then Origin; 403 in the route family's shape before any handler.
/// It answers CORS preflights itself and marks the responses to allowed origins.
pub async fn guard(
    State((state, policy)): State<(SharedState, Arc<Policy>)>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let host = request_host(req.headers(), req.uri());
    let bound_to_network = state.bound().is_some_and(|a| !a.ip().is_loopback());
    let keyed_network = bound_to_network && !state.keys.is_open();
    if !policy.host_allowed(host, keyed_network) {
        return refuse(
            path,
            format!(
                "Host '{}' is not allowed: this server answers to loopback names, IP addresses \
                 and the names in server.allowed_hosts (--allowed-host); a page that reaches \
                 it under another name (DNS rebinding) is refused",
                shorten(host.unwrap_or_default())
            ),
        );
    }
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return next.run(req).await;
    };
    let announced = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|m| m.to_str().ok());
    let preflight = req.method() == Method::OPTIONS && announced.is_some();
    // A preflight is judged by the request it announces.
    let method = announced
        .filter(|_| preflight)
        .unwrap_or(req.method().as_str());
    let management = is_management(method, path);
    let allowed = origin
        .to_str()
        .is_ok_and(|o| policy.origin_allowed(o, host, management));
    if preflight {
        return preflight_answer(allowed.then_some(&origin), method);
    }
    if allowed && !management {
        let may_manage = origin
            .to_str()
            .is_ok_and(|o| policy.origin_allowed(o, host, true));
        let mut req = req;
        req.extensions_mut().insert(FromPage { may_manage });
        let mut response = next.run(req).await;
        allow_origin(response.headers_mut(), origin);
        return response;
    }
    if !allowed {
        let origin = shorten(&String::from_utf8_lossy(origin.as_bytes()));
        let message = if management {
            format!(
                "Origin '{origin}' may not use the management API: only the same origin \
                 and origins listed in server.cors_origins (--cors-origin) may"
            )
        } else {
            format!(
                "Origin '{origin}' is not allowed: only the same origin, loopback origins \
                 and origins listed in server.cors_origins (--cors-origin) may call this \
                 server from a browser"
            )
        };
        return refuse(path, message);
    }
    let mut response = next.run(req).await;
    allow_origin(response.headers_mut(), origin);
    response
}

/// llama-server's defaults for `--cors-methods` and `--cors-headers`.
const ALLOW_METHODS: &str = "GET, POST, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "*";

/// The answer to a preflight, as llama-server's: 200, empty, its methods and headers, and the
/// origin only when it may make the request it announces (`allowed`). Our management API
/// also takes `PUT`, which llama-server has no use for: an allowed origin that announces a
/// method outside llama-server's list gets it added.
fn preflight_answer(allowed: Option<&HeaderValue>, method: &str) -> Response {
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    let methods = match allowed {
        Some(_) if !ALLOW_METHODS.split(", ").any(|m| m == method) => {
            HeaderValue::from_str(&format!("{ALLOW_METHODS}, {method}"))
                .unwrap_or(HeaderValue::from_static(ALLOW_METHODS))
        }
        _ => HeaderValue::from_static(ALLOW_METHODS),
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("3600"),
    );
    match allowed {
        Some(origin) => allow_origin(headers, origin.clone()),
        // llama-server sends credentials on every preflight (without the origin they open
        // nothing); the answer still depends on the origin.
        None => {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            headers.append(header::VARY, HeaderValue::from_static("origin"));
        }
    }
    response
}

/// A response a page of `origin` may read (the origin reflected, with credentials, as
/// llama-server does); it varies with the origin, so caches must key on it.
fn allow_origin(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}

fn refuse(path: &str, message: String) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, message)
        .flavor(Flavor::of_path(path))
        .into_response()
}

/// Header values are the client's: keep error messages short.
fn shorten(s: &str) -> String {
    s.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hosts() {
        let p = Policy::new(&[], &list(&["llm.example:8080", "Box.Lan"]));
        for ok in [
            "localhost",
            "localhost:8080",
            "app.localhost:1",
            "127.0.0.1:8080",
            "127.0.0.2",
            "[::1]:8080",
            "192.168.1.5:8080",
            "llm.example",
            "box.lan:9",
            "localhost.",
        ] {
            assert!(p.host_allowed(Some(ok), false), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "lan",
        ] {
            assert!(!p.host_allowed(Some(bad), false), "{bad}");
            assert!(
                p.host_allowed(Some(bad), true),
                "keyed network server: {bad}"
            );
        }
        assert!(p.host_allowed(None, false));
        assert!(Policy::new(&[], &list(&["*"])).host_allowed(Some("evil.example"), false));
    }

    #[test]
    fn origins() {
        let default = Policy::new(&[], &[]);
        let host = Some("127.0.0.1:8080");
        // Same origin: same host and port.
        assert!(default.origin_allowed("http://127.0.0.1:8080", host, true));
        assert!(!default.origin_allowed("http://127.0.0.1:9090", host, true));
        assert!(default.origin_allowed("http://llm.lan", Some("llm.lan"), true));
        assert!(default.origin_allowed("https://llm.lan", Some("llm.lan:443"), true));
        // Loopback origins: inference yes, management no.
        for o in [
            "http://localhost:3000",
            "http://127.0.0.1:5173",
            "https://[::1]",
        ] {
            assert!(default.origin_allowed(o, host, false), "{o}");
            assert!(!default.origin_allowed(o, host, true), "{o}");
        }
        for bad in [
            "https://evil.example",
            "null",
            "",
            "file://",
            "chrome-extension://x",
        ] {
            assert!(!default.origin_allowed(bad, host, false), "{bad}");
        }
        let opened = Policy::new(&list(&["https://App.example/", "*"]), &[]);
        assert!(opened.origin_allowed("https://app.example", host, true));
        assert!(opened.origin_allowed("https://app.example:443", host, true));
        assert!(!opened.origin_allowed("http://app.example", host, true));
        assert!(
            opened.origin_allowed("https://evil.example", host, false),
            "*"
        );
        assert!(
            !opened.origin_allowed("https://evil.example", host, true),
            "* never manages"
        );
        // `*` takes any page, even one that sends no proper origin (sandboxed frames send
        // `null`), on the inference routes.
        assert!(opened.origin_allowed("null", host, false));
        assert!(!opened.origin_allowed("null", host, true));
        // A bare host name lists that host on http and https, any port unless given.
        let hosts = Policy::new(&list(&["Web.MyDomain.fr", "box.lan:8443"]), &[]);
        assert!(hosts.origin_allowed("http://web.mydomain.fr", host, true));
        assert!(hosts.origin_allowed("https://web.mydomain.fr:444", host, false));
        assert!(hosts.origin_allowed("https://box.lan:8443", host, false));
        for bad in [
            "http://evil.web.mydomain.fr",
            "ftp://web.mydomain.fr",
            "https://box.lan",
            "web.mydomain.fr",
        ] {
            assert!(!hosts.origin_allowed(bad, host, false), "{bad}");
        }
        let local = Policy::new(&list(&["localhost"]), &[]);
        assert!(local.origin_allowed("http://localhost:3000", host, true));
        assert!(!local.origin_allowed("https://evil.example", host, false));
    }

    #[test]
    fn management_is_the_admin_surface() {
        assert!(is_management("POST", "/api/system/shutdown"));
        assert!(is_management("GET", "/ws/logs"));
        assert!(is_management("POST", "/props"));
        assert!(!is_management("GET", "/props"));
        assert!(is_management("POST", "/slots/0"));
        assert!(is_management("POST", "/lora-adapters"));
        assert!(!is_management("POST", "/v1/chat/completions"));
    }
}
