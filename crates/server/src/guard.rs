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
//!   `server.cors_origins`, or, on the inference routes only, a loopback origin on any port
//!   (Ollama's default) or any origin when the list holds `*`. The management surface (what
//!   [`auth::required_access`] marks admin: `/api/*`, `/ws/*`, `POST /props`, `/slots/*`,
//!   `POST /lora-adapters`) is stricter: a page on `http://localhost:3000` is another origin
//!   and another program, so it needs to be listed by name (or by `localhost`, which lists
//!   every loopback origin); `*` never opens management.
//!
//! [`Policy::origin_allowed`] is the one answer to "may this origin call this route"; the
//! guard refuses with it and the CORS layer allows with it, so a preflight never promises
//! what the request would be refused.

use crate::auth::{self, Access};
use crate::error::{ApiError, Flavor};
use crate::state::SharedState;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The Host and Origin rules of one server, from `[server]`.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `cors_origins` holds `*`: any origin on the inference routes.
    any_origin: bool,
    /// `cors_origins` holds `localhost`: loopback origins on every route.
    loopback_origins: bool,
    /// Listed origins, normalised (`scheme://host:port`, lower case, explicit port).
    origins: Vec<String>,
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
                _ => match Origin::parse(o) {
                    Some(o) => p.origins.push(o.normalised()),
                    None => {
                        tracing::warn!(origin = %o, "server.cors_origins: not an origin (scheme://host[:port]); ignored")
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
        // `null` (sandboxed frames, `file:`) and anything unparsable: refused.
        let Some(o) = Origin::parse(origin) else {
            return false;
        };
        if host.is_some_and(|h| o.same_as(h)) || self.origins.contains(&o.normalised()) {
            return true;
        }
        if o.is_loopback() && (self.loopback_origins || !management) {
            return true;
        }
        self.any_origin && !management
    }

    /// CORS for browsers' cross-origin calls, allowing exactly what the guard lets through.
    pub fn cors_layer(self: &Arc<Self>) -> CorsLayer {
        let me = self.clone();
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(
                move |origin: &HeaderValue, parts: &Parts| {
                    let Ok(origin) = origin.to_str() else {
                        return false;
                    };
                    // A preflight asks for the method of the request to come.
                    let method = parts
                        .headers
                        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
                        .and_then(|m| m.to_str().ok())
                        .unwrap_or(parts.method.as_str());
                    let management = is_management(method, parts.uri.path());
                    me.origin_allowed(origin, request_host(&parts.headers, &parts.uri), management)
                },
            ))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers(tower_http::cors::Any)
            .max_age(Duration::from_secs(3600))
    }
}

/// The management surface: the routes that need admin access.
fn is_management(method: &str, path: &str) -> bool {
    auth::required_access(method, path) == Access::Admin
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
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let management = is_management(req.method().as_str(), path);
        let allowed = origin
            .to_str()
            .is_ok_and(|o| policy.origin_allowed(o, host, management));
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
    }
    next.run(req).await
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
