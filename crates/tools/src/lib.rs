//! The tool registry: the tools the server can run while a model answers — MCP servers we
//! supervise (stdio, SSE, streamable HTTP, through the official SDK `rmcp`) and built-in tools
//! (date/time, web search, fetch a URL, read-only files under configured roots).
//!
//! One concern only: no HTTP server, no engine. Every tool is named (`<server>_<tool>` for MCP
//! tools), has a JSON Schema, and is called with arguments checked against that schema first.
//! A call never fails the caller: an unavailable server, a timeout or the tool's own error is
//! the call's result text (`ToolOutput::is_error`), for the model to read.

pub mod builtin;
pub mod config;
mod mcp;
mod sse;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use serde_json::Value;

pub use builtin::BuiltinSettings;
pub use config::{DocumentError, EntryError, Parsed, ServerConfig, Transport};
pub use mcp::{ServerState, ServerStatus, Supervision};

/// What a tool call gave back: text for the model, and whether it is an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolOutput {
    pub text: String,
    pub is_error: bool,
}

impl ToolOutput {
    pub fn ok(text: impl Into<String>) -> Self {
        Self { text: text.into(), is_error: false }
    }
    pub fn error(text: impl Into<String>) -> Self {
        Self { text: text.into(), is_error: true }
    }
}

/// Where a tool comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolSource {
    Builtin,
    Mcp { server: String },
}

/// One tool as the model sees it (an OpenAI function) plus where it comes from.
#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    pub name: String,
    pub description: String,
    /// The tool's JSON Schema for its arguments (an object schema).
    pub parameters: Value,
    pub source: ToolSource,
}

impl ToolInfo {
    /// The OpenAI `tools[]` entry.
    pub fn definition(&self) -> Value {
        serde_json::json!({
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        })
    }
}

/// No tool by that name is offered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tool \"{0}\"")]
pub struct UnknownTool(pub String);

/// The registry. Cheap to share (`Arc`); MCP servers run on the tokio runtime it was used on.
pub struct Registry {
    servers: RwLock<BTreeMap<String, Arc<mcp::McpServer>>>,
    builtins: builtin::Builtins,
    supervision: Supervision,
}

impl Registry {
    pub fn new(builtins: BuiltinSettings, supervision: Supervision) -> Self {
        Self { servers: RwLock::new(BTreeMap::new()), builtins: builtin::Builtins::new(builtins), supervision }
    }

    /// Adds or replaces a server (a replaced one is stopped first). Must run on a tokio runtime.
    pub async fn put_server(&self, config: ServerConfig) {
        let old = self.servers.write().unwrap().remove(&config.name);
        if let Some(old) = old {
            old.shutdown().await;
        }
        let server = Arc::new(mcp::McpServer::start(config.clone(), self.supervision));
        self.servers.write().unwrap().insert(config.name, server);
    }

    /// Stops and forgets a server; false when there was none by that name.
    pub async fn remove_server(&self, name: &str) -> bool {
        let old = self.servers.write().unwrap().remove(name);
        match old {
            Some(old) => {
                old.shutdown().await;
                true
            }
            None => false,
        }
    }

    pub fn servers(&self) -> Vec<ServerStatus> {
        self.servers.read().unwrap().values().map(|s| s.status()).collect()
    }

    /// Every server's definition with its status, by name.
    pub fn entries(&self) -> Vec<(ServerConfig, ServerStatus)> {
        self.servers.read().unwrap().values().map(|s| (s.config().clone(), s.status())).collect()
    }

    pub fn server_configs(&self) -> Vec<ServerConfig> {
        self.servers.read().unwrap().values().map(|s| s.config().clone()).collect()
    }

    pub fn server(&self, name: &str) -> Option<ServerStatus> {
        self.servers.read().unwrap().get(name).map(|s| s.status())
    }

    /// Every tool offered: the built-ins switched on (when `builtins`), then each running
    /// server's tools as `<server>_<tool>`. A name already taken is skipped (llama-server's rule).
    pub fn tools(&self, builtins: bool) -> Vec<ToolInfo> {
        let mut out: Vec<ToolInfo> = if builtins { self.builtins.tools() } else { Vec::new() };
        let mut seen: std::collections::HashSet<String> = self.builtins.tools().into_iter().map(|t| t.name).collect();
        for (name, server) in self.servers.read().unwrap().iter() {
            for tool in server.tools() {
                let full = format!("{name}_{}", tool.name);
                if !seen.insert(full.clone()) {
                    tracing::warn!("MCP tool {full} collides with another tool; skipped");
                    continue;
                }
                out.push(ToolInfo {
                    name: full,
                    description: tool.description.as_deref().unwrap_or_default().to_owned(),
                    parameters: Value::Object((*tool.input_schema).clone()),
                    source: ToolSource::Mcp { server: name.clone() },
                });
            }
        }
        out
    }

    /// The tool named `name`, if offered.
    pub fn find(&self, name: &str, builtins: bool) -> Option<ToolInfo> {
        self.tools(builtins).into_iter().find(|t| t.name == name)
    }

    /// Calls a tool. Only an unknown name is an `Err`; everything else — invalid arguments,
    /// a server down, a timeout, the tool's error — is the output text.
    pub async fn call(&self, name: &str, args: Value, builtins: bool) -> Result<ToolOutput, UnknownTool> {
        let tool = self.find(name, builtins).ok_or_else(|| UnknownTool(name.to_owned()))?;
        let args = match args {
            Value::Null => serde_json::Map::new(),
            Value::Object(m) => m,
            other => return Ok(ToolOutput::error(format!("the arguments of {name} must be a JSON object, not {other}"))),
        };
        if let Err(why) = validate(&tool.parameters, &Value::Object(args.clone())) {
            return Ok(ToolOutput::error(format!("invalid arguments for {name}: {why}")));
        }
        Ok(match &tool.source {
            ToolSource::Builtin => self.builtins.call(name, &args).await,
            ToolSource::Mcp { server } => {
                let handle = self.servers.read().unwrap().get(server).cloned();
                match handle {
                    Some(s) => s.call(&name[server.len() + 1..], args).await,
                    None => ToolOutput::error(format!("MCP server \"{server}\" was removed")),
                }
            }
        })
    }

    /// Stops every server (in parallel, each bounded).
    pub async fn shutdown(&self) {
        let all: Vec<_> = std::mem::take(&mut *self.servers.write().unwrap()).into_values().collect();
        futures::future::join_all(all.iter().map(|s| s.shutdown())).await;
    }
}

/// Checks `args` against the tool's JSON Schema. A schema the validator cannot compile is
/// not the caller's fault: the call goes on and the server judges.
pub fn validate(schema: &Value, args: &Value) -> Result<(), String> {
    let validator = match jsonschema::validator_for(schema) {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!("tool schema not usable for validation: {e}");
            return Ok(());
        }
    };
    let errors: Vec<String> = validator
        .iter_errors(args)
        .take(5)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() { e.to_string() } else { format!("{at}: {e}") }
        })
        .collect();
    if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
}

/// An MCP `CallToolResult` (as JSON) as text: text parts joined by newlines, other parts
/// described, `structuredContent` when there is no text; `isError` kept.
pub fn result_text(result: &Value) -> ToolOutput {
    let mut parts = Vec::new();
    for part in result.get("content").and_then(Value::as_array).into_iter().flatten() {
        match part.get("type").and_then(Value::as_str) {
            Some("text") => parts.push(part.get("text").and_then(Value::as_str).unwrap_or_default().to_owned()),
            Some("resource") => {
                let r = part.get("resource").cloned().unwrap_or_default();
                match r.get("text").and_then(Value::as_str) {
                    Some(t) => parts.push(t.to_owned()),
                    None => parts.push(format!("[resource {}]", r.get("uri").and_then(Value::as_str).unwrap_or("?"))),
                }
            }
            Some("resource_link") => {
                parts.push(format!("[resource {}]", part.get("uri").and_then(Value::as_str).unwrap_or("?")))
            }
            Some(kind @ ("image" | "audio")) => parts.push(format!(
                "[{kind} {}]",
                part.get("mimeType").and_then(Value::as_str).unwrap_or("of unknown type")
            )),
            _ => {}
        }
    }
    if parts.is_empty()
        && let Some(s) = result.get("structuredContent")
    {
        parts.push(s.to_string());
    }
    let is_error = result.get("isError").and_then(Value::as_bool).unwrap_or(false);
    let text = parts.join("\n");
    if is_error && text.is_empty() {
        return ToolOutput::error("the tool reported an error without a message");
    }
    ToolOutput { text, is_error }
}

/// rustls' ring provider for our HTTP clients (reqwest is built without one of its own).
pub(crate) fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_are_checked_against_the_schema() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]});
        assert!(validate(&schema, &json!({"a": 1})).is_ok());
        let e = validate(&schema, &json!({"a": "x"})).unwrap_err();
        assert!(e.contains("/a") && e.contains("integer"), "{e}");
        assert!(validate(&schema, &json!({})).unwrap_err().contains("\"a\" is a required property"));
    }

    #[test]
    fn results_become_text_and_errors_stay_errors() {
        let r = result_text(&json!({"content": [{"type": "text", "text": "a"}, {"type": "image", "mimeType": "image/png", "data": ""}, {"type": "text", "text": "b"}]}));
        assert_eq!(r, ToolOutput::ok("a\n[image image/png]\nb"));
        let r = result_text(&json!({"content": [{"type": "text", "text": "boom"}], "isError": true}));
        assert_eq!(r, ToolOutput::error("boom"));
        assert_eq!(result_text(&json!({"content": [], "structuredContent": {"x": 1}})), ToolOutput::ok("{\"x\":1}"));
    }
}
