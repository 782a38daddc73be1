//! A web page the user visits, and clients that guess keys: Origin and Host (DNS rebinding)
//! checks, CORS, the open-network refusal, admin vs inference keys, rate limits, paths hidden
//! from inference keys.

use super::*;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;
use std::time::Duration;

const EVIL: &str = "https://evil.example";

/// The test server's client, sending `key` with every request (so `still_serves` works on a
/// server that needs a key).
fn use_key(s: &mut TestServer, key: &str) {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
    );
    s.client = reqwest::Client::builder()
        .default_headers(h)
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();
}

/// A `text/plain` POST, as a page's `fetch` sends without a preflight.
fn simple_post(s: &TestServer, path: &str, origin: &str, body: String) -> reqwest::RequestBuilder {
    s.client
        .post(s.url(path))
        .header("origin", origin)
        .header("content-type", "text/plain")
        .body(body)
}

fn chat_text() -> String {
    chat(FRANCE, 4).to_string()
}

/// A chat request from a page of `origin`: answered, with CORS allowing that origin.
async fn chat_from_page(s: &TestServer, origin: &str) {
    let resp = s
        .client
        .post(s.url("/v1/chat/completions"))
        .header("origin", origin)
        .json(&chat(FRANCE, 4))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "chat from {origin}");
    assert_eq!(resp.headers()["access-control-allow-origin"], origin);
}

/// `GET /api/config` from a page of `origin`.
async fn config_from_page(s: &TestServer, origin: &str) -> (u16, Value) {
    s.send(s.client.get(s.url("/api/config")).header("origin", origin))
        .await
}

/// `GET path` as a page that reached the server under `host` (its `Host` header).
async fn get_as_host(s: &TestServer, path: &str, host: &str) -> (u16, Value) {
    s.send(s.client.get(s.url(path)).header("host", host)).await
}

/// The port the test server listens on.
fn port(s: &TestServer) -> u16 {
    s.base.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_page_cannot_shut_the_server_down() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let (status, body) = s
        .send(simple_post(&s, "/api/system/shutdown", EVIL, "{}".into()))
        .await;
    assert_eq!(status, 403, "{body}");
    // The management API's shape.
    assert_eq!(body["error"]["status"], 403, "{body}");
    let msg = error_message(&body);
    assert!(
        msg.contains("Origin 'https://evil.example' may not use the management API")
            && msg.contains("server.cors_origins"),
        "{msg}"
    );
    assert!(!s.state.is_shutting_down(), "the server began to shut down");
    still_serves(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_page_cannot_chat_but_curl_and_local_pages_can() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let (status, body) = s
        .send(simple_post(&s, "/v1/chat/completions", EVIL, chat_text()))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["type"], "permission_error",
        "OpenAI's shape: {body}"
    );
    assert!(
        error_message(&body).contains("Origin 'https://evil.example' is not allowed"),
        "{body}"
    );
    // `null` (sandboxed frames, file: pages) is foreign too; native routes answer natively.
    let (status, body) = s
        .send(simple_post(&s, "/completion", "null", "{}".into()))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], 403, "llama-server's shape: {body}");
    // No Origin (curl, SDKs): unaffected.
    let (status, body) = s.post("/v1/chat/completions", &chat(FRANCE, 4)).await;
    assert_eq!(status, 200, "{body}");
    // A page on a loopback origin may use the models (Ollama's default), with CORS...
    chat_from_page(&s, "http://localhost:3000").await;
    // ...but not manage the server: another port is another program.
    let (status, body) = config_from_page(&s, "http://localhost:3000").await;
    assert_eq!(status, 403, "{body}");
    assert!(error_message(&body).contains("management API"), "{body}");
    // The same origin (the dashboard) may.
    let (status, body) = config_from_page(&s, &s.base).await;
    assert_eq!(status, 200, "{body}");
    still_serves(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_page_cannot_open_a_websocket() {
    use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let ws_url = s.base.replace("http://", "ws://") + "/ws/logs";
    let mut req = ws_url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", HeaderValue::from_static(EVIL));
    match tokio_tungstenite::connect_async(req).await {
        Err(tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 403);
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["error"]["status"], 403, "{body}");
            assert!(error_message(&body).contains("management API"), "{body}");
        }
        Ok(_) => panic!("a foreign page opened /ws/logs"),
        Err(e) => panic!("{e}"),
    }
    // The dashboard (same origin) still connects.
    let mut req = ws_url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", HeaderValue::from_str(&s.base).unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap();
    still_serves(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dns_rebinding_cannot_read_the_configuration() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    // A page at evil.example whose name now points at 127.0.0.1: same-origin to the browser,
    // so no Origin on a GET; only the Host tells.
    let host = format!("evil.example:{}", port(&s));
    let (status, body) = get_as_host(&s, "/api/config", &host).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["status"], 403, "{body}");
    let msg = error_message(&body);
    assert!(
        msg.contains("Host 'evil.example") && msg.contains("server.allowed_hosts"),
        "{msg}"
    );
    assert!(body.get("config").is_none());
    // Loopback names still work.
    let (status, _) = get_as_host(&s, "/api/config", &format!("localhost:{}", port(&s))).await;
    assert_eq!(status, 200);
    still_serves(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_hosts_let_a_name_in() {
    let Some(s) = TestServer::start(
        Opts::default().tweak(|c| c.server.allowed_hosts = vec!["llm.example".into()]),
    )
    .await
    else {
        return;
    };
    let (status, body) = get_as_host(&s, "/api/config", &format!("llm.example:{}", port(&s))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get_as_host(&s, "/v1/models", "evil.example").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["type"], "permission_error", "{body}");
    assert!(
        error_message(&body).contains("Host 'evil.example'"),
        "{body}"
    );
    still_serves(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_origins_open_an_origin_and_preflights_agree() {
    let Some(s) = TestServer::start(
        Opts::default().tweak(|c| c.server.cors_origins = vec!["https://app.example".into()]),
    )
    .await
    else {
        return;
    };
    let preflight = |origin: &str, path: &str| {
        s.client
            .request(reqwest::Method::OPTIONS, s.url(path))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,authorization",
            )
    };
    let resp = preflight("https://app.example", "/v1/chat/completions")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    chat_from_page(&s, "https://app.example").await;
    // A listed origin may manage too.
    let (status, body) = config_from_page(&s, "https://app.example").await;
    assert_eq!(status, 200, "{body}");
    // A preflight from an origin the guard refuses gets llama-server's 200 without the
    // origin, which stops the browser; the request sent anyway (no preflight needed for
    // `text/plain`) is refused.
    let resp = preflight(EVIL, "/v1/chat/completions")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let (status, body) = s
        .send(simple_post(&s, "/v1/chat/completions", EVIL, chat_text()))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(error_message(&body).contains("not allowed"), "{body}");
    still_serves(&s).await;
}

/// A preflight as llama.cpp's server tests send it (`test_security.py`).
async fn preflight_from(s: &TestServer, origin: &str, method: &str, path: &str) -> HeaderMap {
    let resp = s
        .client
        .request(reqwest::Method::OPTIONS, s.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "Authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "a preflight from {origin} is answered 200"
    );
    resp.headers().clone()
}

/// `--cors-origins localhost`: loopback pages on any port are answered with their origin,
/// others with a bare 200 (the browser stops there), and their requests are refused.
#[tokio::test(flavor = "multi_thread")]
async fn the_localhost_keyword_reflects_loopback_origins_only() {
    let s = TestServer::empty(
        Opts::default().tweak(|c| c.server.cors_origins = vec!["localhost".into()]),
    )
    .await;
    for origin in [
        "http://localhost",
        "http://localhost:8080",
        "http://127.0.0.1",
        "http://127.0.0.1:3000",
        "http://[::1]",
        "http://[::1]:3000",
    ] {
        let h = preflight_from(&s, origin, "POST", "/completions").await;
        assert_eq!(h["access-control-allow-origin"], origin);
    }
    for origin in [
        "http://web.mydomain.fr",
        "http://evil.com",
        "http://notlocalhost",
        "http://localhost.evil.com",
    ] {
        let h = preflight_from(&s, origin, "POST", "/completions").await;
        assert!(
            h.get("access-control-allow-origin").is_none(),
            "{origin}: {h:?}"
        );
        let (status, body) = s
            .send(simple_post(&s, "/completions", origin, "{}".into()))
            .await;
        assert_eq!(status, 403, "{origin}: {body}");
        assert!(error_message(&body).contains("not allowed"), "{body}");
    }
}

/// Origins opened explicitly (`--cors-origins web.mydomain.fr`, `*`) get llama-server's
/// preflight answer: the origin reflected, credentials, its methods and headers.
#[tokio::test(flavor = "multi_thread")]
async fn explicit_cors_origins_answer_preflights_as_llama_server() {
    for (listed, origin) in [
        ("web.mydomain.fr", "http://web.mydomain.fr"),
        ("web.mydomain.fr", "https://web.mydomain.fr:8443"),
        ("https://app.example", "https://app.example"),
        ("*", "http://web.mydomain.fr"),
        // What llama.cpp's `test_cors_options` sends: not a browser's origin, but `*` takes
        // any page.
        ("*", "web.mydomain.fr"),
    ] {
        let s = TestServer::empty(
            Opts::default().tweak(move |c| c.server.cors_origins = vec![listed.into()]),
        )
        .await;
        let h = preflight_from(&s, origin, "POST", "/completions").await;
        assert_eq!(h["access-control-allow-origin"], origin, "{listed}");
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert_eq!(
            h["access-control-allow-methods"],
            "GET, POST, DELETE, OPTIONS"
        );
        assert_eq!(h["access-control-allow-headers"], "*");
        // The request itself carries the origin too.
        let resp = s
            .client
            .get(s.url("/health"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["access-control-allow-origin"], origin);
    }
    // A bare host name is that host, not a suffix nor another scheme.
    let s = TestServer::empty(
        Opts::default().tweak(|c| c.server.cors_origins = vec!["web.mydomain.fr".into()]),
    )
    .await;
    for origin in ["http://evil.web.mydomain.fr", "ftp://web.mydomain.fr"] {
        let h = preflight_from(&s, origin, "POST", "/completions").await;
        assert!(h.get("access-control-allow-origin").is_none(), "{origin}");
    }
    // Listed by name, it may manage, with our management API's PUT.
    let h = preflight_from(
        &s,
        "https://web.mydomain.fr",
        "PUT",
        "/api/system/log-level",
    )
    .await;
    assert_eq!(h["access-control-allow-origin"], "https://web.mydomain.fr");
    assert_eq!(
        h["access-control-allow-methods"],
        "GET, POST, DELETE, OPTIONS, PUT"
    );
    // `*` never opens management, preflight included.
    let s = TestServer::empty(Opts::default().tweak(|c| c.server.cors_origins = vec!["*".into()]))
        .await;
    let h = preflight_from(&s, EVIL, "POST", "/api/system/shutdown").await;
    assert!(h.get("access-control-allow-origin").is_none(), "{h:?}");
    assert_eq!(
        h["access-control-allow-methods"],
        "GET, POST, DELETE, OPTIONS"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_star_origin_opens_the_models_never_management() {
    let Some(s) =
        TestServer::start(Opts::default().tweak(|c| c.server.cors_origins = vec!["*".into()]))
            .await
    else {
        return;
    };
    let (status, body) = s
        .send(simple_post(&s, "/v1/chat/completions", EVIL, chat_text()))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s
        .send(simple_post(&s, "/api/system/shutdown", EVIL, "{}".into()))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(error_message(&body).contains("management API"), "{body}");
    assert!(!s.state.is_shutting_down());
    still_serves(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inference_key_alone_does_not_manage() {
    // Only an inference key: management is closed, not opened by that key.
    let Some(mut s) = TestServer::start(Opts {
        api_key: Some("inf".into()),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    use_key(&mut s, "inf");
    let (status, body) = s.get("/api/config").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["status"], 403, "{body}");
    let msg = error_message(&body);
    assert!(
        msg.contains("server.admin_api_key") && msg.contains("server.api_key_is_admin"),
        "{msg}"
    );
    let (status, _) = s.post("/api/system/shutdown", &serde_json::json!({})).await;
    assert_eq!(status, 403);
    assert!(!s.state.is_shutting_down());
    still_serves(&s).await;

    // With an admin key set as well: the same.
    let Some(mut s) = TestServer::start(Opts {
        api_key: Some("inf".into()),
        admin_key: Some("adm".into()),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    use_key(&mut s, "inf");
    let (status, body) = s.get("/api/config").await;
    assert_eq!(status, 403, "{body}");
    still_serves(&s).await;

    // One key for everything, when asked for.
    let Some(mut s) = TestServer::start(
        Opts {
            api_key: Some("inf".into()),
            ..Default::default()
        }
        .tweak(|c| c.server.api_key_is_admin = true),
    )
    .await
    else {
        return;
    };
    use_key(&mut s, "inf");
    let (status, body) = s.get("/api/config").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["config"]["server"]["api_key"], "********");
    still_serves(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_keys_are_throttled_per_address() {
    let Some(mut s) = TestServer::start(
        Opts {
            api_key: Some("good".into()),
            ..Default::default()
        }
        .tweak(|c| c.server.auth_failures_per_minute = 3),
    )
    .await
    else {
        return;
    };
    // The guesser comes from 127.0.0.2 (the whole 127/8 is loopback).
    let guesser = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let guess = |key: String| {
        guesser
            .post(s.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&chat(FRANCE, 4))
    };
    for i in 0..3 {
        let (status, body) = s.send(guess(format!("guess-{i}"))).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(error_message(&body), "invalid API key");
    }
    let resp = guess("guess-3".into()).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    let retry = retry_after(&resp);
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert!(
        error_message(&body).contains("server.auth_failures_per_minute"),
        "{body}"
    );
    // The right key from that address waits too: guessing must not go on at full speed.
    let (status, _) = s.send(guess("good".into())).await;
    assert_eq!(status, 429);
    // Other addresses are untouched.
    use_key(&mut s, "good");
    still_serves(&s).await;
}

/// 200 requests with 200 invented keys from one address answer `status` and leave at most
/// one rate-limit bucket behind.
async fn invented_keys_fill_one_bucket(s: &TestServer, status: u16) {
    for i in 0..200 {
        let req = s
            .client
            .get(s.url("/v1/models"))
            .bearer_auth(format!("junk-{i}"));
        let (got, body) = s.send(req).await;
        assert_eq!(got, status, "{body}");
        if status == 401 {
            assert_eq!(error_message(&body), "invalid API key");
        }
    }
    let buckets = s.state.keys.bucket_count();
    assert!(buckets <= 1, "{buckets} buckets for one client address");
}

#[tokio::test(flavor = "multi_thread")]
async fn invented_keys_make_no_buckets() {
    // An open server with a rate limit: keys are not checked, so they must not name buckets.
    let Some(s) = TestServer::start(Opts {
        rate_limit: Some(10_000),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    invented_keys_fill_one_bucket(&s, 200).await;
    still_serves(&s).await;

    // A keyed server: wrong keys count against the address, in one bucket.
    let Some(mut s) = TestServer::start(
        Opts {
            api_key: Some("good".into()),
            rate_limit: Some(10_000),
            ..Default::default()
        }
        .tweak(|c| c.server.auth_failures_per_minute = 100_000),
    )
    .await
    else {
        return;
    };
    invented_keys_fill_one_bucket(&s, 401).await;
    use_key(&mut s, "good");
    still_serves(&s).await;
}

fn key(key: &str, limit: Option<u32>, enabled: bool) -> config::ApiKey {
    config::ApiKey {
        key: key.into(),
        name: Some(format!("{key}-name")),
        admin: false,
        rate_limit_per_minute: limit,
        enabled,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_key_is_refused() {
    let Some(mut s) = TestServer::start(Opts::default().tweak(|c| {
        c.server.keys = vec![key("old", None, false), key("new", None, true)];
    }))
    .await
    else {
        return;
    };
    let (status, body) = s
        .send(s.client.get(s.url("/v1/models")).bearer_auth("old"))
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    assert!(error_message(&body).contains("disabled"), "{body}");
    // Disabled keys do not make the server open either.
    let (status, _) = s.get("/v1/models").await;
    assert_eq!(status, 401);
    use_key(&mut s, "new");
    still_serves(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_key_has_its_own_limit() {
    let Some(mut s) = TestServer::start(Opts::default().tweak(|c| {
        c.server.keys = vec![key("slow", Some(2), true), key("fast", None, true)];
    }))
    .await
    else {
        return;
    };
    for _ in 0..2 {
        let (status, _) = s
            .send(s.client.get(s.url("/v1/models")).bearer_auth("slow"))
            .await;
        assert_eq!(status, 200);
    }
    let (status, body) = s
        .send(s.client.get(s.url("/v1/models")).bearer_auth("slow"))
        .await;
    assert_eq!(status, 429, "{body}");
    let msg = error_message(&body);
    assert!(
        msg.contains("2 requests per minute for key 'slow-name'")
            && msg.contains("rate_limit_per_minute"),
        "{msg}"
    );
    assert!(!msg.contains("slow\""), "{msg}");
    // The other key (no limit of its own, none for the server) is untouched.
    use_key(&mut s, "fast");
    for _ in 0..5 {
        let (status, _) = s.get("/v1/models").await;
        assert_eq!(status, 200);
    }
    still_serves(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inference_keys_see_no_file_paths() {
    let Some(mut s) = TestServer::start(Opts {
        api_key: Some("inf".into()),
        admin_key: Some("adm".into()),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let (status, body) = s
        .send(s.client.get(s.url("/props?model=smol")).bearer_auth("inf"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["model_path"].is_null(), "{body}");
    assert!(!body.to_string().contains(".gguf"), "a path leaked: {body}");
    // The admin sees it.
    let (status, body) = s
        .send(s.client.get(s.url("/props?model=smol")).bearer_auth("adm"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["model_path"]
            .as_str()
            .is_some_and(|p| p.ends_with(".gguf")),
        "{body}"
    );
    use_key(&mut s, "inf");
    still_serves(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_server_on_the_network_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let paths = config::Paths::resolve(
        Some(dir.path().join("config")),
        Some(dir.path().join("data")),
    )
    .unwrap();
    let mut c = config::Config::default();
    c.server.host = "0.0.0.0".into();
    c.server.port = 1; // never bound: the check comes first
    let opts = server::ServeOptions {
        paths,
        config: c,
        extra_keys: (Vec::new(), Vec::new()),
        routing: Default::default(),
        launch: Default::default(),
        grace: Duration::from_secs(1),
        logs: server::logs::Logs::detached(),
    };
    let result = tokio::time::timeout(Duration::from_secs(30), server::serve(opts))
        .await
        .expect("serve must refuse at once, not run");
    let msg = result.expect_err("an open server on 0.0.0.0").to_string();
    assert!(
        msg.contains("refusing to listen on 0.0.0.0:1 without an API key")
            && msg.contains("--insecure-open")
            && msg.contains("server.allow_open_network"),
        "{msg}"
    );
    // The same server with a key, or on loopback, or opened on purpose, passes the check.
    let mut c = config::ServerConfig::default();
    let addr: std::net::SocketAddr = "0.0.0.0:8080".parse().unwrap();
    let none = (Vec::new(), Vec::new());
    assert!(
        server::refuse_open_network(addr, &server::auth::Keys::from_config(&c, &none), &c).is_err()
    );
    c.allow_open_network = true;
    assert!(
        server::refuse_open_network(addr, &server::auth::Keys::from_config(&c, &none), &c).is_ok()
    );
    c.allow_open_network = false;
    c.api_key = Some("k".into());
    assert!(
        server::refuse_open_network(addr, &server::auth::Keys::from_config(&c, &none), &c).is_ok()
    );
    let local: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let open = config::ServerConfig::default();
    assert!(
        server::refuse_open_network(local, &server::auth::Keys::from_config(&open, &none), &open)
            .is_ok()
    );
}

/// Header names go out title-cased (`Access-Control-Allow-Origin`), as llama-server sends
/// them: clients written against it look them up in plain, case-sensitive dicts.
#[tokio::test(flavor = "multi_thread")]
async fn header_names_are_title_case_on_the_wire() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!(
        "OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://localhost\r\n\
         Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.unwrap();
    let head = String::from_utf8_lossy(&raw);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("\r\nAccess-Control-Allow-Origin: http://localhost\r\n"),
        "{head}"
    );
    still_serves(&s).await;
}

/// Vertex AI's `/predict` is as closed to a foreign page as the routes it dispatches to: a
/// `text/plain` POST (no preflight) from another origin is refused before any instance runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_page_cannot_predict() {
    let opts = Opts::default().predict();
    let Some(s) = TestServer::start(opts).await else {
        return;
    };
    let body = serde_json::json!({"instances": [
        {"@requestFormat": "chatCompletions", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2},
    ]});
    let (status, answer) = s
        .send(simple_post(&s, "/predict", EVIL, body.to_string()))
        .await;
    assert_eq!(status, 403, "{answer}");
    assert!(
        error_message(&answer).contains("is not allowed"),
        "{answer}"
    );
    // The same body from curl (no Origin) is answered.
    let (status, answer) = s.post("/predict", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["predictions"][0]["object"], "chat.completion",
        "{answer}"
    );
    still_serves(&s).await;
}
