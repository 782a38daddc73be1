//! MCP server definitions in the format people already have: `{"mcpServers": {name: {...}}}`
//! as Claude Desktop, Cursor and llama-server read it.
//!
//! `{"command", "args", "env", "cwd"}` is a server we start over stdio; `{"url", "headers",
//! "type"}` is a remote one (`type` `"sse"` for the legacy HTTP+SSE transport, `"http"` /
//! `"streamable-http"` / `"streamableHttp"` for streamable HTTP; without `type` a URL whose path
//! ends in `/sse` is SSE, any other streamable HTTP). Each entry is parsed on its own: a bad
//! one is reported by name and the others still load.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How we reach one MCP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "transport", rename_all = "snake_case")]
pub enum Transport {
    Stdio {
        command: String,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default)]
        env: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cwd: Option<String>,
    },
    Sse {
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
    StreamableHttp {
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
}

impl Transport {
    pub fn kind(&self) -> &'static str {
        match self {
            Transport::Stdio { .. } => "stdio",
            Transport::Sse { .. } => "sse",
            Transport::StreamableHttp { .. } => "streamable_http",
        }
    }
}

/// One MCP server: its name (the prefix of its tools' names) and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerConfig {
    pub name: String,
    #[serde(flatten)]
    pub transport: Transport,
    /// A disabled server is kept but not started.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Per-call timeout in milliseconds (llama-server's `timeout_ms`); `None` uses the
    /// registry's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

fn yes() -> bool {
    true
}

impl ServerConfig {
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_ms.map(Duration::from_millis)
    }

    /// This server as one entry of an `mcpServers` object (the export format).
    pub fn to_entry(&self) -> Value {
        let mut entry = serde_json::Map::new();
        match &self.transport {
            Transport::Stdio { command, args, env, cwd } => {
                entry.insert("command".into(), command.clone().into());
                entry.insert("args".into(), serde_json::json!(args));
                if !env.is_empty() {
                    entry.insert("env".into(), serde_json::json!(env));
                }
                if let Some(cwd) = cwd {
                    entry.insert("cwd".into(), cwd.clone().into());
                }
            }
            Transport::Sse { url, headers } | Transport::StreamableHttp { url, headers } => {
                entry.insert("url".into(), url.clone().into());
                let kind = if matches!(self.transport, Transport::Sse { .. }) { "sse" } else { "http" };
                entry.insert("type".into(), kind.into());
                if !headers.is_empty() {
                    entry.insert("headers".into(), serde_json::json!(headers));
                }
            }
        }
        if !self.enabled {
            entry.insert("disabled".into(), true.into());
        }
        if let Some(t) = self.timeout_ms {
            entry.insert("timeout_ms".into(), t.into());
        }
        Value::Object(entry)
    }
}

/// One entry that could not be used, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryError {
    pub name: String,
    pub message: String,
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MCP server \"{}\": {}", self.name, self.message)
    }
}

/// What a config file or pasted JSON gave: the servers that parsed and the entries that did not.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub servers: Vec<ServerConfig>,
    pub errors: Vec<EntryError>,
}

/// The whole text is not an `mcpServers` document (not JSON, or no `mcpServers` object).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DocumentError(pub String);

/// A server name becomes the prefix of tool names (`<server>_<tool>`): keep it to what every
/// tool-calling template and client accepts in a function name.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 48 {
        return Err("the name must be 1 to 48 characters".into());
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err("the name may hold only ASCII letters, digits, '-' and '_'".into());
    }
    Ok(())
}

/// Parses `{"mcpServers": {...}}` (a bare `{name: {...}}` map is accepted too: people paste
/// the inner object).
pub fn parse(text: &str) -> Result<Parsed, DocumentError> {
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| DocumentError(format!("MCP servers config is not valid JSON: {e}")))?;
    let Value::Object(mut top) = doc else {
        return Err(DocumentError("MCP servers config must be a JSON object with \"mcpServers\"".into()));
    };
    let servers = match top.remove("mcpServers") {
        Some(Value::Object(map)) => map,
        Some(_) => return Err(DocumentError("\"mcpServers\" must be an object of servers by name".into())),
        None if top.values().all(Value::is_object) => top,
        None => return Err(DocumentError("MCP servers config has no \"mcpServers\" object".into())),
    };
    let mut parsed = Parsed::default();
    for (name, entry) in servers {
        match parse_entry(&name, &entry) {
            Ok(server) => parsed.servers.push(server),
            Err(message) => parsed.errors.push(EntryError { name, message }),
        }
    }
    Ok(parsed)
}

/// One `mcpServers` entry.
pub fn parse_entry(name: &str, entry: &Value) -> Result<ServerConfig, String> {
    check_name(name)?;
    let Value::Object(obj) = entry else {
        return Err("the entry must be an object with \"command\" or \"url\"".into());
    };
    let string = |key: &str| -> Result<Option<String>, String> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("\"{key}\" must be a string")),
        }
    };
    let string_map = |key: &str| -> Result<BTreeMap<String, String>, String> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(format!("\"{key}.{k}\" must be a string")),
                })
                .collect(),
            Some(_) => Err(format!("\"{key}\" must be an object of strings")),
        }
    };
    let command = string("command")?;
    let url = string("url")?.or(string("serverUrl")?);
    let kind = string("type")?;
    let transport = match (command, url) {
        (Some(_), Some(_)) => return Err("give either \"command\" or \"url\", not both".into()),
        (None, None) => return Err("the entry needs \"command\" (stdio) or \"url\" (SSE / streamable HTTP)".into()),
        (Some(command), None) => {
            if command.trim().is_empty() {
                return Err("\"command\" is empty".into());
            }
            if let Some(k) = kind.as_deref().filter(|k| *k != "stdio") {
                return Err(format!("\"type\" is \"{k}\" but the entry has a \"command\" (stdio)"));
            }
            let args = match obj.get("args") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| "\"args\" must be an array of strings".to_owned()))
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err("\"args\" must be an array of strings".into()),
            };
            Transport::Stdio { command, args, env: string_map("env")?, cwd: string("cwd")? }
        }
        (None, Some(url)) => {
            let parsed = url::Url::parse(&url).map_err(|e| format!("\"url\" {url:?} is not a URL: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(format!("\"url\" must be http or https, not {}", parsed.scheme()));
            }
            let headers = string_map("headers")?;
            match kind.as_deref() {
                Some("sse") => Transport::Sse { url, headers },
                Some("http" | "streamable-http" | "streamable_http" | "streamableHttp") => {
                    Transport::StreamableHttp { url, headers }
                }
                Some(other) => {
                    return Err(format!(
                        "unknown \"type\" {other:?} (use \"sse\" or \"http\" for a URL, \"stdio\" for a command)"
                    ));
                }
                None if parsed.path().trim_end_matches('/').ends_with("/sse") => Transport::Sse { url, headers },
                None => Transport::StreamableHttp { url, headers },
            }
        }
    };
    let enabled = match obj.get("disabled").or(obj.get("enabled")) {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => {
            if obj.contains_key("disabled") { !b } else { *b }
        }
        Some(_) => return Err("\"disabled\" must be true or false".into()),
    };
    let timeout_ms = match obj.get("timeout_ms").or(obj.get("timeout")) {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().filter(|t| *t > 0).ok_or("\"timeout_ms\" must be a positive integer (milliseconds)")?),
    };
    Ok(ServerConfig { name: name.to_owned(), transport, enabled, timeout_ms })
}

/// Servers as an `mcpServers` document (what `mcp list --json` and the export give).
pub fn to_document(servers: &[ServerConfig]) -> Value {
    let map: serde_json::Map<String, Value> = servers.iter().map(|s| (s.name.clone(), s.to_entry())).collect();
    serde_json::json!({ "mcpServers": map })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_entry_and_bad_ones_by_name() {
        let text = r#"{"mcpServers": {
            "fs": {"command": "npx", "args": ["-y", "server-fs", "/tmp"], "env": {"A": "1"}},
            "remote": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer x"}},
            "legacy": {"url": "http://127.0.0.1:9/sse"},
            "typed": {"url": "http://127.0.0.1:9/events", "type": "sse", "disabled": true, "timeout_ms": 500},
            "nothing": {},
            "both": {"command": "a", "url": "http://x"},
            "badargs": {"command": "a", "args": "x"},
            "bad name!": {"command": "a"},
            "ftp": {"url": "ftp://x/y"}
        }}"#;
        let p = parse(text).unwrap();
        let names: Vec<_> = p.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["fs", "legacy", "remote", "typed"]);
        assert!(matches!(&p.servers[0].transport, Transport::Stdio { args, env, .. } if args.len() == 3 && env["A"] == "1"));
        assert_eq!(p.servers[1].transport.kind(), "sse");
        assert_eq!(p.servers[2].transport.kind(), "streamable_http");
        assert!(!p.servers[3].enabled);
        assert_eq!(p.servers[3].timeout_ms, Some(500));
        let errs: Vec<_> = p.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), 5, "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("\"nothing\"") && e.contains("needs \"command\"")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("\"both\"") && e.contains("not both")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("\"badargs\"") && e.contains("array of strings")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("\"bad name!\"") && e.contains("ASCII")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("\"ftp\"") && e.contains("http or https")), "{errs:?}");
    }

    #[test]
    fn documents_round_trip_and_bad_documents_say_why() {
        let p = parse(r#"{"mcpServers": {"a": {"command": "x", "args": ["1"]}, "b": {"url": "http://h/mcp"}}}"#).unwrap();
        let again = parse(&to_document(&p.servers).to_string()).unwrap();
        assert_eq!(p.servers, again.servers);
        assert!(parse("nope").unwrap_err().0.contains("not valid JSON"));
        assert!(parse("[]").unwrap_err().0.contains("mcpServers"));
        assert!(parse(r#"{"mcpServers": 3}"#).unwrap_err().0.contains("object of servers"));
        // The inner object pasted alone.
        assert_eq!(parse(r#"{"a": {"command": "x"}}"#).unwrap().servers.len(), 1);
    }
}
