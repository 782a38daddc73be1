//! The HTTP client every hub call shares, and redirects followed by hand.
//!
//! Redirects are followed here rather than by reqwest because the Hugging Face hub puts
//! the file's identity on the redirect itself (`X-Linked-Etag`, `X-Repo-Commit`,
//! `X-Linked-Size` on the 302 to the CDN), and because the bearer token must not travel
//! to the CDN: a presigned CDN URL refuses a second authorization, and a token must never
//! leave the origin it was given for.

use crate::error::{Error, Origin, Result, chain, explain_status};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Client, Method, Response};
use std::time::Duration;
use url::Url;

const MAX_REDIRECTS: usize = 10;

/// Settings of the shared client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// A connection that sends nothing for this long is treated as cut (and retried).
    pub read_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            read_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(15),
        }
    }
}

/// The client for every hub call; redirects are not followed automatically (see above).
pub fn client(options: &ClientOptions) -> Result<Client> {
    Client::builder()
        .user_agent(concat!("llama-dashboard/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .read_timeout(options.read_timeout)
        .connect_timeout(options.connect_timeout)
        .build()
        .map_err(|e| Error::Connection {
            url: String::new(),
            message: format!("cannot build the HTTP client: {}", chain(&e)),
        })
}

/// What the hops of a redirect chain said about the file they lead to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileIdentity {
    /// `X-Linked-Etag` (the LFS sha256 on the hub) or, without it, the final `ETag`;
    /// quotes and a weak `W/` prefix removed.
    pub etag: Option<String>,
    /// `X-Repo-Commit`: the commit the revision resolved to.
    pub commit: Option<String>,
    /// `X-Linked-Size`: the LFS file's size.
    pub linked_size: Option<u64>,
}

/// A final (non-redirect) response and what the hops said on the way.
pub struct Followed {
    pub response: Response,
    pub identity: FileIdentity,
    pub url: String,
}

/// A request to a hub.
pub struct Request<'a> {
    pub client: &'a Client,
    pub method: Method,
    pub url: &'a str,
    pub headers: HeaderMap,
    /// Sent as `Authorization: Bearer …` to the first URL's origin only.
    pub bearer: Option<&'a str>,
    pub origin: &'a Origin,
}

impl Request<'_> {
    /// Sends the request, following redirects, and returns the final response whatever its
    /// status (the caller decides what a 206, 416 or 200 means).
    pub async fn send_raw(&self) -> Result<Followed> {
        let mut url = Url::parse(self.url).map_err(|e| Error::Protocol {
            url: self.url.to_string(),
            message: format!("bad URL: {e}"),
        })?;
        let first_origin = url.origin();
        let mut identity = FileIdentity::default();
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self
                .client
                .request(self.method.clone(), url.clone())
                .headers(self.headers.clone());
            if let Some(token) = self.bearer
                && url.origin() == first_origin
            {
                req = req.bearer_auth(token);
            }
            let response = req
                .send()
                .await
                .map_err(|e| Error::connection(url.as_str(), &e))?;
            identity.absorb(response.headers());
            if !response.status().is_redirection() {
                // The final answer's own ETag only counts when no hop named the linked file.
                if identity.etag.is_none() {
                    identity.etag = header_str(response.headers(), header::ETAG).map(clean_etag);
                }
                return Ok(Followed {
                    response,
                    identity,
                    url: url.to_string(),
                });
            }
            let location = header_str(response.headers(), header::LOCATION).ok_or_else(|| {
                Error::Protocol {
                    url: url.to_string(),
                    message: format!("{} without a Location header", response.status()),
                }
            })?;
            url = url.join(&location).map_err(|e| Error::Protocol {
                url: url.to_string(),
                message: format!("bad redirect target {location:?}: {e}"),
            })?;
        }
        Err(Error::Protocol {
            url: self.url.to_string(),
            message: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    /// Like [`Request::send_raw`], but an error status becomes an explained error.
    pub async fn send(&self) -> Result<Followed> {
        let followed = self.send_raw().await?;
        let status = followed.response.status();
        if status.is_success() {
            return Ok(followed);
        }
        Err(self.status_error(followed).await)
    }

    /// The explained error for a failed response (reads a little of its body).
    pub async fn status_error(&self, followed: Followed) -> Error {
        let status = followed.response.status();
        let headers = followed.response.headers().clone();
        let body = read_some(followed.response, 4096).await;
        explain_status(
            self.origin,
            &followed.url,
            status.as_u16(),
            &headers,
            &body,
            self.bearer.is_some(),
        )
    }

    /// GET a JSON document.
    pub async fn json<T: serde::de::DeserializeOwned>(&self) -> Result<(T, HeaderMap)> {
        let followed = self.send().await?;
        let headers = followed.response.headers().clone();
        let url = followed.url;
        let bytes = followed
            .response
            .bytes()
            .await
            .map_err(|e| Error::connection(&url, &e))?;
        let value = serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
            url: url.clone(),
            message: format!("not the JSON expected: {e}"),
        })?;
        Ok((value, headers))
    }
}

impl FileIdentity {
    fn absorb(&mut self, headers: &HeaderMap) {
        if self.etag.is_none() {
            self.etag = header_str(headers, "x-linked-etag").map(clean_etag);
        }
        if self.commit.is_none() {
            self.commit = header_str(headers, "x-repo-commit");
        }
        if self.linked_size.is_none() {
            self.linked_size = header_str(headers, "x-linked-size").and_then(|s| s.parse().ok());
        }
    }
}

pub(crate) fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `W/"abc"` → `abc`.
pub(crate) fn clean_etag(raw: String) -> String {
    let s = raw.trim();
    let s = s.strip_prefix("W/").unwrap_or(s);
    s.trim_matches('"').to_string()
}

/// `bytes=N-`.
pub(crate) fn range_from(offset: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("bytes={offset}-")).expect("ASCII")
}

/// Up to `limit` bytes of a body as text, for error messages.
async fn read_some(mut response: Response, limit: usize) -> String {
    let mut buf = Vec::new();
    while buf.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            _ => break,
        }
    }
    buf.truncate(limit);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The `rel="next"` target of a `Link` header (the hub's paging).
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    let value = header_str(headers, header::LINK)?;
    value.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p == "rel=\"next\"" || p == "rel=next"
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_lose_quotes_and_weakness() {
        assert_eq!(clean_etag("W/\"abc\"".into()), "abc");
        assert_eq!(clean_etag("\"abc\"".into()), "abc");
        assert_eq!(clean_etag("abc".into()), "abc");
    }

    #[test]
    fn next_link_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::LINK,
            HeaderValue::from_static(
                "<https://h/api/models?cursor=a>; rel=\"prev\", <https://h/api/models?cursor=b>; rel=\"next\"",
            ),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://h/api/models?cursor=b")
        );
        h.insert(
            header::LINK,
            HeaderValue::from_static("<https://h/x>; rel=\"prev\""),
        );
        assert_eq!(next_link(&h), None);
    }
}
