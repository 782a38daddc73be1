//! The web dashboard on the server's port (`server::pages`): pages for browser navigations,
//! the API for everything else, cache headers, precompressed files, no key for either.

use super::*;
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, VARY};

const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// A server asking for an admin key: pages and their files must need none.
async fn keyed() -> TestServer {
    TestServer::empty(Opts {
        admin_key: Some("admin-key".into()),
        api_key: Some("inference-key".into()),
        ..Default::default()
    })
    .await
}

async fn navigate(s: &TestServer, path: &str) -> reqwest::Response {
    s.client.get(s.url(path)).header(ACCEPT, BROWSER).send().await.unwrap()
}

fn header(resp: &reqwest::Response, name: reqwest::header::HeaderName) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The script `index.html` loads (a hashed file under `/assets/`).
fn script_of(index: &str) -> String {
    let start = index.find("src=\"/assets/").expect("index.html loads /assets/…") + 5;
    index[start..].split('"').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn browsers_get_the_page_on_every_client_route_without_a_key() {
    let s = keyed().await;
    for path in ["/", "/models", "/models/org%2Frepo%2Fsmol", "/models/org/repo/smol", "/chat", "/download", "/bench", "/settings", "/logs"] {
        let resp = navigate(&s, path).await;
        assert_eq!(resp.status(), 200, "{path}");
        assert!(header(&resp, CONTENT_TYPE).starts_with("text/html"), "{path}");
        assert_eq!(header(&resp, CACHE_CONTROL), "no-cache", "{path}");
        assert!(header(&resp, VARY).contains("Accept"), "{path}");
        let body = resp.text().await.unwrap();
        assert!(body.contains("<div id=\"app\">"), "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn api_clients_on_the_same_paths_get_the_api() {
    let s = keyed().await;
    // `/`: Ollama's probe, as before.
    let (status, body) = s.get("/").await;
    assert_eq!((status, body), (200, json!("Ollama is running")));
    // `/models`: OpenAI's list, with its key rules.
    let (status, body) = s
        .send(s.client.get(s.url("/models")).header(ACCEPT, "application/json"))
        .await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = s
        .send(
            s.client
                .get(s.url("/models"))
                .header(ACCEPT, "application/json")
                .bearer_auth("inference-key"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "list", "{body}");
    // A page path only answers GET and HEAD with the page.
    let resp = s
        .client
        .post(s.url("/models"))
        .header(ACCEPT, BROWSER)
        .bearer_auth("admin-key")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert!(header(&resp, CONTENT_TYPE).starts_with("application/json"));
}

#[tokio::test(flavor = "multi_thread")]
async fn api_prefixes_and_unknown_paths_are_never_the_page() {
    // Unknown paths stay JSON 404s in their family's shape, even for a browser.
    let open = TestServer::empty(Opts::default()).await;
    let s = &open;
    for path in ["/api/nope", "/v1/nope", "/ws/nope", "/nope", "/chat/nope", "/assets/nope.js"] {
        let resp = navigate(&s, path).await;
        assert_eq!(resp.status(), 404, "{path}");
        assert!(header(&resp, CONTENT_TYPE).starts_with("application/json"), "{path}");
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"].is_object() || body["error"].is_string(), "{path}: {body}");
    }
    // Existing API routes keep their rules: a browser gets the API's 401, not a page.
    let keyed = keyed().await;
    let s = &keyed;
    for path in ["/api/models", "/v1/models", "/api/system/resources", "/metrics", "/props"] {
        let resp = navigate(&s, path).await;
        assert_eq!(resp.status(), 401, "{path}");
        assert!(header(&resp, CONTENT_TYPE).starts_with("application/json"), "{path}");
    }
    // Public API routes answer a browser with JSON.
    let resp = navigate(&s, "/health").await;
    assert_eq!(resp.status(), 200);
    assert!(header(&resp, CONTENT_TYPE).starts_with("application/json"));
}

#[tokio::test(flavor = "multi_thread")]
async fn assets_are_cached_for_good_and_sent_precompressed() {
    let s = keyed().await;
    let index = navigate(&s, "/").await.text().await.unwrap();
    let script = script_of(&index);

    // Plain, without a key, cached for good.
    let plain = s.client.get(s.url(&script)).send().await.unwrap();
    assert_eq!(plain.status(), 200, "{script}");
    assert_eq!(header(&plain, CACHE_CONTROL), "public, max-age=31536000, immutable");
    assert!(header(&plain, CONTENT_TYPE).contains("javascript"));
    assert_eq!(header(&plain, CONTENT_ENCODING), "");
    let plain_len = plain.bytes().await.unwrap().len();

    // Brotli first, gzip when brotli is refused; each smaller than the file.
    for (accept, coding) in [
        ("gzip, deflate, br, zstd", "br"),
        ("gzip, br;q=0", "gzip"),
        ("identity", ""),
    ] {
        let resp = s
            .client
            .get(s.url(&script))
            .header(ACCEPT_ENCODING, accept)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, CONTENT_ENCODING), coding, "{accept}");
        assert!(header(&resp, VARY).contains("Accept-Encoding"));
        let len = resp.bytes().await.unwrap().len();
        if coding.is_empty() {
            assert_eq!(len, plain_len);
        } else {
            assert!(len < plain_len, "{coding}: {len} of {plain_len}");
        }
    }

    // The page itself is precompressed too, and revalidated.
    let resp = s
        .client
        .get(s.url("/chat"))
        .header(ACCEPT, BROWSER)
        .header(ACCEPT_ENCODING, "br")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, CONTENT_ENCODING), "br");
    assert_eq!(header(&resp, CACHE_CONTROL), "no-cache");

    // HEAD: the headers, no body.
    let resp = s.client.head(s.url(&script)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.unwrap().is_empty());

    // Files the build made are served as themselves; their compressed copies are not files.
    let resp = s.client.get(s.url("/favicon.svg")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(header(&resp, CONTENT_TYPE).starts_with("image/svg"));
    let resp = s.client.get(s.url(&format!("{script}.br"))).send().await.unwrap();
    assert_eq!(resp.status(), 401, "a compressed copy is not a file of its own");
}

#[tokio::test(flavor = "multi_thread")]
async fn deployment_ports_serve_no_pages() {
    // A deployment's port serves only its model's routes (`deployment_app`): no dashboard.
    let s = TestServer::empty(Opts::default()).await;
    let app = server::deployment_app(s.state.clone(), server::ports::Pinned {
            deployment: "d".into(),
            model: "smol".into(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let resp = s
        .client
        .get(format!("http://{addr}/"))
        .header(ACCEPT, BROWSER)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}
