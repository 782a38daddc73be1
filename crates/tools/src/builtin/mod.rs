//! Built-in tools, each switched on or off in config (`[tools]`): the current date and time,
//! web search through a SearXNG-style JSON endpoint (offered only when one is configured),
//! fetching a URL as readable text, and read-only file tools inside configured roots (named
//! like llama-server's: `read_file`, `file_glob_search`, `grep_search`).

mod datetime;
mod fetch;
mod files;
mod search;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::{ToolInfo, ToolOutput, ToolSource};

pub use fetch::is_public;

/// What the built-ins may do (from `[tools]` in config).
#[derive(Debug, Clone)]
pub struct BuiltinSettings {
    pub datetime: bool,
    /// A SearXNG-style endpoint (`GET url?q=...&format=json`); no URL, no search tool.
    pub web_search_url: Option<String>,
    /// Sent as `Authorization: Bearer <key>` to the search endpoint.
    pub web_search_api_key: Option<String>,
    pub fetch: bool,
    /// Fetch may reach loopback and private addresses (off: they are refused).
    pub fetch_allow_private: bool,
    pub fetch_max_bytes: u64,
    pub fetch_timeout: Duration,
    /// Folders the file tools may read; none, no file tools.
    pub file_roots: Vec<PathBuf>,
}

impl Default for BuiltinSettings {
    fn default() -> Self {
        Self {
            datetime: true,
            web_search_url: None,
            web_search_api_key: None,
            fetch: true,
            fetch_allow_private: false,
            fetch_max_bytes: 1 << 20,
            fetch_timeout: Duration::from_secs(20),
            file_roots: Vec::new(),
        }
    }
}

pub(crate) struct Builtins {
    settings: BuiltinSettings,
    roots: files::Roots,
}

impl Builtins {
    pub(crate) fn new(settings: BuiltinSettings) -> Self {
        let roots = files::Roots::new(&settings.file_roots);
        Self { settings, roots }
    }

    pub(crate) fn tools(&self) -> Vec<ToolInfo> {
        let mut out = Vec::new();
        let mut add = |name: &str, description: &str, parameters: Value| {
            out.push(ToolInfo {
                name: name.to_owned(),
                description: description.to_owned(),
                parameters,
                source: ToolSource::Builtin,
            })
        };
        if self.settings.datetime {
            add(datetime::NAME, datetime::DESCRIPTION, datetime::schema());
        }
        if self.settings.web_search_url.is_some() {
            add(search::NAME, search::DESCRIPTION, search::schema());
        }
        if self.settings.fetch {
            add(fetch::NAME, fetch::DESCRIPTION, fetch::schema());
        }
        if !self.roots.is_empty() {
            for (name, description, schema) in files::tools() {
                add(name, description, schema);
            }
        }
        out
    }

    pub(crate) async fn call(&self, name: &str, args: &Map<String, Value>) -> ToolOutput {
        let result = match name {
            datetime::NAME => datetime::call(args),
            search::NAME => match &self.settings.web_search_url {
                Some(url) => search::call(url, self.settings.web_search_api_key.as_deref(), &self.settings, args).await,
                None => Err("web search is not configured (tools.web_search_url)".into()),
            },
            fetch::NAME => fetch::call(&self.settings, args).await,
            _ => {
                let roots = self.roots.clone();
                let name = name.to_owned();
                let args = args.clone();
                // Walking folders and reading files blocks: off the async threads.
                tokio::task::spawn_blocking(move || files::call(&roots, &name, &args))
                    .await
                    .unwrap_or_else(|e| Err(format!("the file tool failed: {e}")))
            }
        };
        match result {
            Ok(text) => ToolOutput::ok(text),
            Err(e) => ToolOutput::error(e),
        }
    }
}

/// A string argument, when present.
fn str_arg<'a>(args: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    args.get(key).and_then(Value::as_str)
}

fn object_schema(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required})
}
