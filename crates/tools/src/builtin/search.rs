//! `web_search`: a SearXNG-style JSON endpoint (`GET <url>?q=<query>&format=json` answering
//! `{"results": [{"title", "url", "content"}]}`), configured by the admin, so it may be local.

use serde_json::{Map, Value, json};

use super::BuiltinSettings;

pub(super) const NAME: &str = "web_search";
pub(super) const DESCRIPTION: &str = "Search the web. Returns the top results with their title, URL and a snippet.";

pub(super) fn schema() -> Value {
    super::object_schema(
        json!({
            "query": {"type": "string", "description": "What to search for"},
            "max_results": {"type": "integer", "minimum": 1, "maximum": 20, "description": "How many results (default 5)"}
        }),
        &["query"],
    )
}

pub(super) async fn call(url: &str, key: Option<&str>, settings: &BuiltinSettings, args: &Map<String, Value>) -> Result<String, String> {
    let query = super::str_arg(args, "query").unwrap_or_default();
    if query.trim().is_empty() {
        return Err("the query is empty".into());
    }
    let max = args.get("max_results").and_then(Value::as_u64).unwrap_or(5).clamp(1, 20) as usize;
    let client = crate::mcp::http_client(Some(settings.fetch_timeout))?;
    let mut target = url::Url::parse(url).map_err(|e| format!("tools.web_search_url {url:?} is not a URL: {e}"))?;
    target.query_pairs_mut().append_pair("q", query).append_pair("format", "json");
    let mut req = client.get(target);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.map_err(|e| format!("the search provider did not answer: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("the search provider answered HTTP {}", resp.status()));
    }
    let bytes = super::fetch::read_capped(resp, settings.fetch_max_bytes).await?.0;
    let body: Value = serde_json::from_slice(&bytes).map_err(|e| format!("the search provider's answer is not JSON: {e}"))?;
    let results = body.get("results").and_then(Value::as_array).ok_or("the search provider's answer has no \"results\"")?;
    if results.is_empty() {
        return Ok(format!("No results for {query:?}."));
    }
    let field = |r: &Value, k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default().trim().to_owned();
    let lines: Vec<String> = results
        .iter()
        .take(max)
        .enumerate()
        .map(|(i, r)| format!("{}. {}\n   {}\n   {}", i + 1, field(r, "title"), field(r, "url"), field(r, "content")))
        .collect();
    Ok(lines.join("\n"))
}
