//! The web dashboard (issue 15) on the server's port: which requests get a page or one of its
//! files, and how they are sent. The files are `web::file`s, built from `web/`.
//!
//! - A browser navigation (`GET`/`HEAD` with `Accept: text/html`) to one of the dashboard's
//!   pages ([`PAGES`], and `/models/{id}`) gets `index.html`; the client-side router shows the
//!   page. Paths that are both a page and an API route (`/`, `/models`, `/models/{id}`) answer
//!   API clients as before: only the `Accept` header tells them apart (`Vary: Accept`).
//! - A `GET`/`HEAD` of a file the build made (`/assets/*`, `/favicon.svg`) gets the file.
//!   Nothing else is touched: `/api`, `/v1`, `/ws` and every other route never see a page, and
//!   an unknown path stays a JSON 404.
//! - Hashed assets are cached for good; `index.html` and the other files are revalidated.
//!   Each file goes out precompressed (brotli, else gzip) when the client accepts it.
//! - Pages and their files need no key (the page asks for one when the API answers 401):
//!   [`auth::require_key`](crate::auth::require_key) lets [`is_static`] requests through.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The dashboard's pages (its client-side routes), besides `/models/{id}`. Kept in step with
/// `web/src/router.ts` by a test there reading this list.
pub const PAGES: &[&str] = &[
    "/",
    "/models",
    "/chat",
    "/download",
    "/bench",
    "/settings",
    "/logs",
];

/// What the dashboard serves for a request, if anything.
#[derive(Debug, PartialEq, Eq)]
enum Static {
    /// `index.html`, for a browser navigating to a page.
    Page,
    /// A built file, by its path relative to the build's root.
    File(String),
}

fn classify(method: &Method, path: &str, headers: &HeaderMap) -> Option<Static> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    if wants_page(headers) && is_page(path) {
        return Some(Static::Page);
    }
    let rel = path.strip_prefix('/')?;
    // `/` itself is a page or an API route, never the file `index.html` by another name.
    (!rel.is_empty() && web::has(rel)).then(|| Static::File(rel.to_string()))
}

/// A page of the dashboard: one of [`PAGES`] or `/models/{id}` (one model's details).
pub fn is_page(path: &str) -> bool {
    PAGES.contains(&path)
        || path
            .strip_prefix("/models/")
            .is_some_and(|id| !id.is_empty())
}

/// A browser asking for a page (`Accept: text/html`), as opposed to an API client.
pub fn wants_page(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// Whether the dashboard answers this request itself (a page or one of its files): such
/// requests need no key.
pub fn is_static(req: &Request) -> bool {
    classify(req.method(), req.uri().path(), req.headers()).is_some()
}

/// The middleware (on the server's own port only): a page or a file, else the routes.
pub async fn serve(req: Request, next: Next) -> Response {
    match classify(req.method(), req.uri().path(), req.headers()) {
        None => next.run(req).await,
        Some(what) => {
            let head = req.method() == Method::HEAD;
            let (path, negotiated) = match what {
                Static::Page => (web::INDEX.to_string(), true),
                Static::File(p) => (p, false),
            };
            send(&path, req.headers(), head, negotiated)
        }
    }
}

fn send(path: &str, headers: &HeaderMap, head: bool, negotiated: bool) -> Response {
    let accepted = accepted_encodings(headers);
    let found = [web::Encoding::Brotli, web::Encoding::Gzip]
        .into_iter()
        .filter(|e| accepted.contains(&e.token()))
        .find_map(|e| web::file(path, Some(e)).map(|f| (f, Some(e))))
        .or_else(|| web::file(path, None).map(|f| (f, None)));
    let Some((file, encoding)) = found else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let cache = if file.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut resp = Response::new(if head {
        Body::empty()
    } else {
        Body::from(file.bytes)
    });
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&file.mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::VARY,
        HeaderValue::from_static(if negotiated {
            "Accept, Accept-Encoding"
        } else {
            "Accept-Encoding"
        }),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(e) = encoding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(e.token()));
    }
    resp
}

/// The content codings a client accepts (`Accept-Encoding`), without those it refuses with
/// `q=0`.
fn accepted_encodings(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|item| {
            let mut parts = item.split(';').map(str::trim);
            let name = parts.next()?;
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (!name.is_empty() && !refused).then_some(name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static("text/html,*/*"));
        h
    }

    #[test]
    fn pages_only_for_browser_navigations_to_pages() {
        let get = Method::GET;
        assert_eq!(classify(&get, "/", &html()), Some(Static::Page));
        assert_eq!(classify(&get, "/models/org%2Fa", &html()), Some(Static::Page));
        assert_eq!(classify(&get, "/logs", &html()), Some(Static::Page));
        assert_eq!(classify(&get, "/models", &HeaderMap::new()), None);
        assert_eq!(classify(&Method::POST, "/models", &html()), None);
        for api in ["/api/models", "/v1/models", "/ws/events", "/health", "/api/nope", "/models/"] {
            assert_eq!(classify(&get, api, &html()), None, "{api}");
        }
    }

    #[test]
    fn encodings_refused_with_q0_are_not_used() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip, br;q=0, deflate"));
        assert_eq!(accepted_encodings(&h), vec!["gzip", "deflate"]);
    }
}
