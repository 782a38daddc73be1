//! The HTTP client every hub call shares, and redirects followed by hand.
//!
//! Redirects are followed here rather than by reqwest because the Hugging Face hub puts
//! the file's identity on the redirect itself (`X-Linked-Etag`, `X-Repo-Commit`,
//! `X-Linked-Size` on the 302 to the CDN), and because the bearer token must not travel
//! to the CDN: a presigned CDN URL refuses a second authorization, and a token must never
//! leave the origin it was given for.
//!
//! A registry that wants a token answers 401 with a docker-style challenge
//! (`WWW-Authenticate: Bearer realm=…,service=…,scope=…`); [`Tokens`] fetches one from the
//! realm, keeps it per scope, and it is sent only to the origin that asked for it.

use crate::error::{Error, Origin, Result, chain, explain_status};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Client, Method, Response, StatusCode};
use std::sync::{Arc, Mutex};
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
        self.follow(None).await
    }

    /// Like [`Request::send_raw`], answering a registry's bearer challenge with a token
    /// from `tokens` (fetched from the challenge's realm when none is cached).
    pub async fn send_raw_authorized(&self, tokens: &Tokens) -> Result<Followed> {
        self.follow(Some(tokens)).await
    }

    /// Like [`Request::send`], answering a registry's bearer challenge (see
    /// [`Request::send_raw_authorized`]).
    pub async fn send_authorized(&self, tokens: &Tokens) -> Result<Followed> {
        let followed = self.follow(Some(tokens)).await?;
        if followed.response.status().is_success() {
            return Ok(followed);
        }
        Err(self.status_error(followed).await)
    }

    async fn follow(&self, tokens: Option<&Tokens>) -> Result<Followed> {
        let mut url = Url::parse(self.url).map_err(|e| Error::Protocol {
            url: self.url.to_string(),
            message: format!("bad URL: {e}"),
        })?;
        let first_origin = url.origin();
        let mut identity = FileIdentity::default();
        // One challenge is answered per request: a second 401 is the registry's refusal.
        let mut answered: Option<(url::Origin, String)> = None;
        for _ in 0..=MAX_REDIRECTS + 1 {
            let mut req = self
                .client
                .request(self.method.clone(), url.clone())
                .headers(self.headers.clone());
            // A registry token is tied to the origin that issued its challenge; the hub's
            // token to the first URL's origin.
            let registry_token = answered
                .as_ref()
                .filter(|(origin, _)| *origin == url.origin())
                .map(|(_, token)| token.clone())
                .or_else(|| tokens.and_then(|t| t.for_url(&url)));
            let sent = registry_token.clone().or_else(|| {
                self.bearer
                    .filter(|_| url.origin() == first_origin)
                    .map(str::to_string)
            });
            if let Some(token) = &sent {
                req = req.bearer_auth(token);
            }
            let response = req
                .send()
                .await
                .map_err(|e| Error::unanswered(url.as_str(), &e))?;
            if response.status() == StatusCode::UNAUTHORIZED
                && answered.is_none()
                && let Some(tokens) = tokens
                && let Some(challenge) = Challenge::of(response.headers(), &url)
            {
                let token = tokens
                    .fetch(self.client, &url, &challenge, registry_token.as_deref())
                    .await?;
                answered = Some((url.origin(), token));
                continue;
            }
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

    /// GET a JSON document (at most [`MAX_JSON`] bytes).
    pub async fn json<T: serde::de::DeserializeOwned>(&self) -> Result<(T, HeaderMap)> {
        let followed = self.send().await?;
        let headers = followed.response.headers().clone();
        let url = followed.url;
        let bytes = read_capped(followed.response, MAX_JSON, &url).await?;
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

/// Bearer tokens registries handed out, per origin and scope; cheap to clone (clones share
/// the cache). One cache serves a queue's transfers and the registry client, so that a
/// pull asks the realm once for its repository.
#[derive(Clone, Default)]
pub struct Tokens {
    cache: Arc<Mutex<Vec<Token>>>,
}

struct Token {
    /// The origin whose challenge it answers; it is never sent anywhere else.
    origin: url::Origin,
    scope: String,
    token: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a token.
        let n = self.lock().len();
        write!(f, "Tokens({n} cached)")
    }
}

/// A `WWW-Authenticate: Bearer` challenge with a realm to fetch a token from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    realm: Url,
    service: Option<String>,
    scope: Option<String>,
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

impl Tokens {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Token>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached token for `url`: same origin, and a `repository:NAME:…` scope whose
    /// `/v2/NAME/` the path is under (so that every blob of a pulled model reuses the
    /// manifest's token instead of being challenged again).
    fn for_url(&self, url: &Url) -> Option<String> {
        let origin = url.origin();
        self.lock()
            .iter()
            .rev()
            .find(|t| t.origin == origin && scope_covers(&t.scope, url.path()))
            .map(|t| t.token.clone())
    }

    /// A token for `challenge`: the cached one for its scope unless it is the one just
    /// refused (`refused`), else a new one from the realm, asked anonymously.
    async fn fetch(
        &self,
        client: &Client,
        challenged: &Url,
        challenge: &Challenge,
        refused: Option<&str>,
    ) -> Result<String> {
        let origin = challenged.origin();
        let scope = challenge.scope.clone().unwrap_or_default();
        let cached = self
            .lock()
            .iter()
            .find(|t| t.origin == origin && t.scope == scope && Some(t.token.as_str()) != refused)
            .map(|t| t.token.clone());
        if let Some(token) = cached {
            return Ok(token);
        }
        let mut realm = challenge.realm.clone();
        {
            let mut q = realm.query_pairs_mut();
            if let Some(service) = &challenge.service {
                q.append_pair("service", service);
            }
            if let Some(scope) = &challenge.scope {
                q.append_pair("scope", scope);
            }
        }
        let request = Request {
            client,
            method: Method::GET,
            url: realm.as_str(),
            headers: HeaderMap::new(),
            bearer: None,
            origin: &Origin::Url,
        };
        // Boxed: asking the realm is itself a request (a recursive future otherwise).
        let (answer, _) = Box::pin(request.json::<TokenAnswer>()).await?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Protocol {
                url: realm.to_string(),
                message: "the token service answered without a token".into(),
            })?;
        let mut cache = self.lock();
        cache.retain(|t| !(t.origin == origin && t.scope == scope));
        cache.push(Token {
            origin,
            scope,
            token: token.clone(),
        });
        Ok(token)
    }
}

/// Whether a token for `scope` (`repository:library/tiny:pull`, several separated by
/// spaces) is meant for `path` (`/v2/library/tiny/blobs/…`).
fn scope_covers(scope: &str, path: &str) -> bool {
    scope.split(' ').any(|one| {
        one.strip_prefix("repository:")
            .and_then(|rest| rest.rsplit_once(':'))
            .is_some_and(|(name, _actions)| {
                !name.is_empty() && path.starts_with(&format!("/v2/{name}/"))
            })
    })
}

impl Challenge {
    /// The bearer challenge of a 401 answer to `url`, if it names a realm this client may
    /// ask: an http(s) URL, and plain http only when the registry itself is plain http.
    /// (The hub's own `Bearer realm="Authentication required"` is no such challenge.)
    fn of(headers: &HeaderMap, url: &Url) -> Option<Challenge> {
        headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                let params = parse_bearer(v)?;
                let get = |k: &str| {
                    params
                        .iter()
                        .find(|(key, _)| key.eq_ignore_ascii_case(k))
                        .map(|(_, v)| v.clone())
                };
                let realm = Url::parse(&get("realm")?).ok()?;
                let allowed = realm.scheme() == "https"
                    || (realm.scheme() == "http" && url.scheme() == "http");
                allowed.then(|| Challenge {
                    realm,
                    service: get("service"),
                    scope: get("scope"),
                })
            })
    }
}

/// `Bearer k="v",k2=v2` → its parameters (quoted values may hold commas and `\"`).
fn parse_bearer(value: &str) -> Option<Vec<(String, String)>> {
    let value = value.trim();
    let (scheme, rest) = value.split_at(value.find(' ')?);
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.trim().is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            return None;
        }
        let mut val = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => val.push(chars.next()?),
                    c => val.push(c),
                }
            }
        } else {
            val.extend(std::iter::from_fn(|| chars.next_if(|c| *c != ',')));
            val = val.trim().to_string();
        }
        params.push((key.trim().to_string(), val));
    }
    Some(params)
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

/// The largest JSON answer read (a hub's tree page or model info is far smaller).
pub const MAX_JSON: usize = 32 << 20;

/// A whole body of at most `max` bytes: a larger announced `Content-Length` is refused
/// before anything is read, and a body without one is cut off as soon as it passes `max`,
/// so that a hostile server cannot make the process hold more.
pub(crate) async fn read_capped(mut response: Response, max: usize, url: &str) -> Result<Vec<u8>> {
    let too_large = |n: String| Error::Protocol {
        url: url.to_string(),
        message: format!("an answer of {n} bytes, more than the {max} accepted"),
    };
    if let Some(n) = response.content_length().filter(|&n| n > max as u64) {
        return Err(too_large(n.to_string()));
    }
    let mut buf = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Error::connection(url, &e))?
    {
        if buf.len() + chunk.len() > max {
            return Err(too_large("more than that".into()));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
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

    /// A server that answers every connection with `head` and then `body_len` bytes.
    async fn raw_server(head: String, body_len: usize) -> String {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let head = head.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut request).await;
                    let _ = socket.write_all(head.as_bytes()).await;
                    let chunk = vec![b'x'; 64 << 10];
                    let mut left = body_len;
                    while left > 0 {
                        let n = left.min(chunk.len());
                        if socket.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                        left -= n;
                    }
                });
            }
        });
        format!("http://{addr}/")
    }

    async fn capped(url: &str, max: usize) -> Result<Vec<u8>> {
        let client = client(&ClientOptions::default()).unwrap();
        let response = client.get(url).send().await.unwrap();
        read_capped(response, max, url).await
    }

    #[tokio::test]
    async fn a_body_larger_than_the_cap_is_refused_whether_announced_or_not() {
        // Announced: refused before a byte is read (the server never sends them).
        let url = raw_server(
            "HTTP/1.1 200 OK\r\ncontent-length: 1000000000000\r\n\r\n".into(),
            0,
        )
        .await;
        let e = capped(&url, 1 << 20).await.unwrap_err();
        assert!(
            e.to_string().contains("more than the 1048576 accepted"),
            "{e}"
        );
        // Not announced (read until the connection closes): cut off past the cap.
        let url = raw_server(
            "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".into(),
            4 << 20,
        )
        .await;
        let e = capped(&url, 1 << 20).await.unwrap_err();
        assert!(e.to_string().contains("accepted"), "{e}");
        // Within the cap: the whole body.
        let url = raw_server("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n".into(), 100).await;
        assert_eq!(capped(&url, 1 << 20).await.unwrap().len(), 100);
    }

    #[test]
    fn etags_lose_quotes_and_weakness() {
        assert_eq!(clean_etag("W/\"abc\"".into()), "abc");
        assert_eq!(clean_etag("\"abc\"".into()), "abc");
        assert_eq!(clean_etag("abc".into()), "abc");
    }

    #[test]
    fn bearer_challenges_are_parsed_with_commas_in_quotes() {
        let p = parse_bearer(
            r#"Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            p,
            [
                ("realm".into(), "https://auth.example/token".into()),
                ("service".into(), "registry".into()),
                ("scope".into(), "repository:a/b:pull,push".into())
            ]
        );
        assert_eq!(
            parse_bearer("bearer realm=x, error=\"a\\\"b\"").unwrap(),
            [
                ("realm".into(), "x".into()),
                ("error".into(), "a\"b".into())
            ]
        );
        assert!(parse_bearer("Basic realm=\"x\"").is_none());
        assert!(parse_bearer("Bearer realm=\"unterminated").is_none());
    }

    #[test]
    fn challenges_need_a_realm_url_and_no_downgrade() {
        let mut h = HeaderMap::new();
        let https = Url::parse("https://reg.example/v2/a/b/manifests/x").unwrap();
        let http = Url::parse("http://reg.example/v2/a/b/manifests/x").unwrap();
        // The hub's own 401 carries a realm that is no URL: not a token challenge.
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"Authentication required\", charset=\"UTF-8\""),
        );
        assert_eq!(Challenge::of(&h, &https), None);
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"http://auth.example/token\",scope=\"s\""),
        );
        assert_eq!(
            Challenge::of(&h, &https),
            None,
            "https registry, http realm"
        );
        assert_eq!(
            Challenge::of(&h, &http).unwrap().scope.as_deref(),
            Some("s")
        );
    }

    #[test]
    fn a_scope_covers_its_repository_only() {
        let s = "repository:library/tiny:pull";
        assert!(scope_covers(s, "/v2/library/tiny/blobs/sha256:ab"));
        assert!(scope_covers(s, "/v2/library/tiny/manifests/latest"));
        assert!(!scope_covers(s, "/v2/library/tiny2/manifests/latest"));
        assert!(!scope_covers(s, "/cdn/ab"));
        assert!(scope_covers(
            "registry:catalog:* repository:a/b:pull",
            "/v2/a/b/x"
        ));
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
