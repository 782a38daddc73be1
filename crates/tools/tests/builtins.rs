//! The built-in tools through the registry: web search against a local SearXNG stand-in,
//! fetch refusing loopback unless allowed, the date tool, and what is offered when.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use serde_json::json;
use tools::{BuiltinSettings, Registry, Supervision};

/// A one-thread HTTP server answering every request with `body` (as `ctype`), and sending the
/// request line and headers it saw back through the channel.
fn stand_in(ctype: &'static str, body: String) -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { continue };
            let mut head = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let _ = tx.send(head);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (format!("http://{addr}"), rx)
}

fn registry(settings: BuiltinSettings) -> Registry {
    Registry::new(settings, Supervision::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_search_asks_the_configured_provider_and_is_offered_only_with_one() {
    assert!(registry(BuiltinSettings::default()).find("web_search", true).is_none());
    let results = json!({"results": [
        {"title": "Rust", "url": "https://www.rust-lang.org/", "content": "A language empowering everyone."},
        {"title": "Crab", "url": "https://example.org/crab", "content": "Decapod."}
    ]});
    let (base, seen) = stand_in("application/json", results.to_string());
    let reg = registry(BuiltinSettings {
        web_search_url: Some(format!("{base}/search")),
        web_search_api_key: Some("sekrit".into()),
        ..Default::default()
    });
    let out = reg.call("web_search", json!({"query": "rust lang", "max_results": 1}), true).await.unwrap();
    assert!(!out.is_error, "{out:?}");
    assert_eq!(out.text, "1. Rust\n   https://www.rust-lang.org/\n   A language empowering everyone.");
    let head = seen.recv().unwrap();
    assert!(head.starts_with("GET /search?q=rust+lang&format=json "), "{head}");
    assert!(head.to_ascii_lowercase().contains("authorization: bearer sekrit"), "{head}");
    // Built-ins are not offered when the caller may not use them.
    assert!(reg.call("web_search", json!({"query": "x"}), false).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_refuses_loopback_unless_allowed_and_reads_html_as_text() {
    let page = "<html><head><title>T</title></head><body><h1>Hello</h1><p>Readable <b>text</b>.</p></body></html>";
    let (base, _seen) = stand_in("text/html; charset=utf-8", page.into());
    let refused = registry(BuiltinSettings::default());
    for url in [format!("{base}/page"), base.replace("127.0.0.1", "localhost"), "http://[::1]:9/".into()] {
        let out = refused.call("fetch_url", json!({"url": url}), true).await.unwrap();
        assert!(out.is_error && out.text.contains("loopback or private") && out.text.contains("tools.fetch_allow_private"), "{url}: {out:?}");
    }
    let out = refused.call("fetch_url", json!({"url": "file:///etc/passwd"}), true).await.unwrap();
    assert!(out.is_error && out.text.contains("only http and https"), "{out:?}");

    let allowed = registry(BuiltinSettings { fetch_allow_private: true, ..Default::default() });
    let out = allowed.call("fetch_url", json!({"url": format!("{base}/page")}), true).await.unwrap();
    assert!(!out.is_error, "{out:?}");
    assert!(out.text.contains("Hello") && out.text.contains("Readable") && !out.text.contains("<p>"), "{}", out.text);
    // Arguments are checked first.
    let out = allowed.call("fetch_url", json!({}), true).await.unwrap();
    assert!(out.is_error && out.text.contains("\"url\" is a required property"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switched_off_built_ins_are_not_offered() {
    let reg = registry(BuiltinSettings { datetime: false, fetch: false, ..Default::default() });
    assert!(reg.tools(true).is_empty());
    let reg = registry(BuiltinSettings::default());
    let names: Vec<String> = reg.tools(true).into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["current_datetime", "fetch_url"]);
    let out = reg.call("current_datetime", json!({"timezone": "Europe/Paris"}), true).await.unwrap();
    assert!(!out.is_error && out.text.contains("Europe/Paris"), "{out:?}");
}
