//! The tool registry at run time (issue 14): the MCP servers stored in the database (admin
//! managed: import, add, edit, enable/disable, remove) plus those given to this process
//! (`tools.mcp_servers_config` / `tools.mcp_servers_json`, llama-server's flags), and the
//! built-in tools from `[tools]`. The registry itself (supervision, naming, validation,
//! calls) is the `tools` crate; this owns its life and its storage.

use std::sync::Arc;
use std::time::Duration;

use config::ToolsConfig;
use serde::Serialize;
use serde_json::Value;
pub use tools::{EntryError, ServerConfig, ServerState, ServerStatus, ToolInfo, ToolOutput, ToolSource};

use crate::{Models, ServiceError};

/// Where a server's definition lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// In the database: survives a restart, editable.
    Stored,
    /// From `tools.mcp_servers_config` / `tools.mcp_servers_json`: this process only.
    Flag,
}

/// A server as the API and CLI show it.
#[derive(Debug, Clone, Serialize)]
pub struct ServerView {
    #[serde(flatten)]
    pub status: ServerStatus,
    pub enabled: bool,
    pub origin: Origin,
    /// The `mcpServers` entry (header and env values masked).
    pub config: Value,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Imported {
    pub added: Vec<String>,
    pub errors: Vec<EntryError>,
}

pub struct Tools {
    registry: tools::Registry,
    models: Arc<Models>,
    flag_names: std::sync::Mutex<Vec<String>>,
    /// Held across each change (read the store, write it, restart the server), so two edits
    /// of one server apply one after the other.
    edits: tokio::sync::Mutex<()>,
    settings: ToolsConfig,
    /// Servers run only once [`Tools::start`] ran (the CLI's `mcp add` edits the store alone).
    started: std::sync::atomic::AtomicBool,
    /// How long a server may take to start and list its tools.
    start_timeout: Duration,
}

fn builtin_settings(c: &ToolsConfig) -> tools::BuiltinSettings {
    tools::BuiltinSettings {
        datetime: c.datetime,
        web_search_url: c.web_search_url.clone().filter(|u| !u.is_empty()),
        web_search_api_key: c.web_search_api_key.clone(),
        fetch: c.fetch,
        fetch_allow_private: c.fetch_allow_private,
        fetch_max_bytes: c.fetch_max_bytes,
        fetch_timeout: Duration::from_secs(c.fetch_timeout_seconds.into()),
        file_roots: c.file_roots.clone(),
    }
}

/// Values of `env` and `headers` (tokens, keys) are not shown back.
fn masked(entry: Value) -> Value {
    let mut entry = entry;
    for key in ["env", "headers"] {
        if let Some(Value::Object(m)) = entry.get_mut(key) {
            for v in m.values_mut() {
                *v = Value::String(config::MASK.to_owned());
            }
        }
    }
    entry
}

/// An edit may send an entry back as it was shown: every `env`/`headers` value of `server`
/// that is the mask takes the value `held` (the server's entry now) has under that name. A
/// mask with nothing behind it is refused, so the mask itself is never stored.
fn unmask(server: &mut ServerConfig, held: Option<&Value>) -> Result<(), ServiceError> {
    let (key, values) = match &mut server.transport {
        tools::Transport::Stdio { env, .. } => ("env", env),
        tools::Transport::Sse { headers, .. } | tools::Transport::StreamableHttp { headers, .. } => {
            ("headers", headers)
        }
    };
    for (k, v) in values.iter_mut().filter(|(_, v)| v.as_str() == config::MASK) {
        match held.and_then(|h| h.get(key)).and_then(|m| m.get(k.as_str())).and_then(Value::as_str) {
            Some(old) => *v = old.to_owned(),
            None => {
                return Err(ServiceError::invalid(
                    "config",
                    format!(
                        "\"{key}.{k}\" is the mask {:?} but MCP server \"{}\" holds no value for it: type the value",
                        config::MASK,
                        server.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

impl Tools {
    /// The registry with `[tools]`'s built-ins; no server runs until [`Tools::start`].
    pub fn new(models: Arc<Models>, settings: &ToolsConfig) -> Arc<Self> {
        let supervision = tools::Supervision {
            call_timeout: Duration::from_secs(settings.call_timeout_seconds.into()),
            ..Default::default()
        };
        Arc::new(Self {
            registry: tools::Registry::new(builtin_settings(settings), supervision.clone()),
            models,
            flag_names: Default::default(),
            edits: Default::default(),
            settings: settings.clone(),
            started: Default::default(),
            start_timeout: supervision.start_timeout,
        })
    }

    pub fn settings(&self) -> &ToolsConfig {
        &self.settings
    }

    /// Starts the stored servers and those of `tools.mcp_servers_config` / `_json`. A file
    /// that cannot be read or parsed is an error (the user named it); bad entries in it are
    /// returned as warnings and the rest start.
    pub async fn start(&self) -> Result<Vec<String>, ServiceError> {
        self.started.store(true, std::sync::atomic::Ordering::Release);
        let mut warnings = Vec::new();
        let mut flagged = Vec::new();
        if let Some(path) = &self.settings.mcp_servers_config {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ServiceError::invalid("tools.mcp_servers_config", format!("cannot read {}: {e}", path.display()))
            })?;
            let parsed = tools::config::parse(&text)
                .map_err(|e| ServiceError::invalid("tools.mcp_servers_config", format!("{}: {e}", path.display())))?;
            warnings.extend(parsed.errors.iter().map(|e| format!("{}: {e}", path.display())));
            flagged.extend(parsed.servers);
        }
        if let Some(json) = self.settings.mcp_servers_json.as_deref().filter(|j| !j.trim().is_empty()) {
            let parsed =
                tools::config::parse(json).map_err(|e| ServiceError::invalid("tools.mcp_servers_json", e.to_string()))?;
            warnings.extend(parsed.errors.iter().map(|e| format!("--mcp-servers-json: {e}")));
            flagged.extend(parsed.servers);
        }
        for stored in self.models.with_store(|s| s.mcp_servers()).await?.unwrap_or_default() {
            if flagged.iter().any(|f| f.name == stored.name) {
                warnings.push(format!("MCP server \"{}\": the one given to this process runs instead of the stored one", stored.name));
                continue;
            }
            match tools::config::parse_entry(&stored.name, &Value::Object(stored.config)) {
                Ok(mut server) => {
                    server.enabled = stored.enabled;
                    self.registry.put_server(server).await;
                }
                Err(e) => warnings.push(format!("stored MCP server \"{}\": {e}", stored.name)),
            }
        }
        let mut names = self.flag_names.lock().unwrap().clone();
        for server in flagged {
            names.push(server.name.clone());
            self.registry.put_server(server).await;
        }
        *self.flag_names.lock().unwrap() = names;
        for w in &warnings {
            tracing::warn!("{w}");
        }
        Ok(warnings)
    }

    /// The stored servers without starting anything: (name, enabled, `mcpServers` entry
    /// with secrets masked).
    pub async fn stored(&self) -> Result<Vec<(String, bool, Value)>, ServiceError> {
        let all = self.models.with_store(|s| s.mcp_servers()).await?.unwrap_or_default();
        Ok(all.into_iter().map(|s| (s.name, s.enabled, masked(Value::Object(s.config)))).collect())
    }

    /// Waits (at most `limit`) until no enabled server is still starting.
    pub async fn settle(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline
            && self.registry.servers().iter().any(|s| s.state == ServerState::Starting)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the servers [`Tools::start`] started have listed their tools or failed
    /// (at most a server's start timeout): `serve` reports ready after this, as llama-server
    /// lists its MCP tools before it answers, so a client's first `GET /tools` sees them.
    pub async fn warm_up(&self) {
        self.settle(self.start_timeout).await;
    }

    fn origin(&self, name: &str) -> Origin {
        if self.flag_names.lock().unwrap().iter().any(|n| n == name) { Origin::Flag } else { Origin::Stored }
    }

    /// Every server with its state.
    pub fn servers(&self) -> Vec<ServerView> {
        self.registry
            .entries()
            .into_iter()
            .map(|(config, status)| ServerView {
                origin: self.origin(&config.name),
                enabled: config.enabled,
                config: masked(config.to_entry()),
                status,
            })
            .collect()
    }

    pub fn server(&self, name: &str) -> Option<ServerView> {
        self.servers().into_iter().find(|s| s.status.name == name)
    }

    /// Adds (or with `replace`, edits) a stored server from its `mcpServers` entry, and
    /// starts it.
    /// An edit may send the entry back as it was shown, with `env`/`headers` values masked:
    /// a masked value keeps the stored one, and the mask itself is never stored.
    pub async fn put(&self, name: &str, entry: Value, replace: bool) -> Result<ServerView, ServiceError> {
        let _edit = self.edits.lock().await;
        let server = tools::config::parse_entry(name, &entry).map_err(|e| ServiceError::invalid("config", e))?;
        let view = ServerView {
            status: ServerStatus {
                name: server.name.clone(),
                transport: server.transport.kind(),
                state: if server.enabled { ServerState::Starting } else { ServerState::Disabled },
                error: None,
                tools: 0,
                restarts: 0,
            },
            enabled: server.enabled,
            origin: Origin::Stored,
            config: masked(server.to_entry()),
        };
        self.put_parsed(server, replace).await?;
        Ok(self.server(name).unwrap_or(view))
    }

    /// The entry of the server `name` as this process holds it (running or given at start),
    /// else as stored (a disabled server is only in the database); `None`: no such server.
    async fn held_entry(&self, name: &str) -> Result<Option<Value>, ServiceError> {
        if let Some(c) = self.registry.server_configs().into_iter().find(|c| c.name == name) {
            return Ok(Some(c.to_entry()));
        }
        let n = name.to_owned();
        let stored = self.models.with_store(|s| s.mcp_servers()).await?.unwrap_or_default();
        Ok(stored.into_iter().find(|s| s.name == n).map(|s| Value::Object(s.config)))
    }

    /// The one way a server's definition is stored (add, edit, import, enable/disable).
    async fn put_parsed(&self, mut server: ServerConfig, replace: bool) -> Result<(), ServiceError> {
        if self.origin(&server.name) == Origin::Flag {
            return Err(ServiceError::Conflict(format!(
                "MCP server \"{}\" comes from --mcp-servers-config/--mcp-servers-json and cannot be changed here",
                server.name
            )));
        }
        let held = self.held_entry(&server.name).await?;
        let exists = held.is_some();
        if !replace && exists {
            return Err(ServiceError::Conflict(format!("an MCP server named \"{}\" exists (edit it instead)", server.name)));
        }
        unmask(&mut server, held.as_ref())?;
        if !exists {
            self.check_room().await?;
        }
        let Value::Object(entry) = server.to_entry() else { unreachable!("an entry is an object") };
        let (name, enabled) = (server.name.clone(), server.enabled);
        self.models
            .with_store(move |s| s.put_mcp_server(&name, &entry, enabled))
            .await?
            .ok_or_else(|| ServiceError::Unsupported("no database: MCP servers cannot be stored".into()))?;
        if self.started.load(std::sync::atomic::Ordering::Acquire) {
            self.registry.put_server(server).await;
        }
        Ok(())
    }

    /// Refuses one more server when `tools.max_mcp_servers` are held (stored, and given to
    /// this process).
    async fn check_room(&self) -> Result<(), ServiceError> {
        let mut names: std::collections::HashSet<String> =
            self.registry.server_configs().into_iter().map(|c| c.name).collect();
        let stored = self.models.with_store(|s| s.mcp_servers()).await?.unwrap_or_default();
        names.extend(stored.into_iter().map(|s| s.name));
        let max = self.settings.max_mcp_servers as usize;
        if names.len() >= max {
            return Err(ServiceError::Conflict(format!(
                "{} MCP servers are held, the most tools.max_mcp_servers allows ({max}); \
                 remove one or raise the setting",
                names.len()
            )));
        }
        Ok(())
    }

    /// Imports every server of an `mcpServers` document (a file's text or pasted JSON);
    /// existing names are replaced when `replace`, else reported. Bad entries are reported by
    /// name and the others are added.
    pub async fn import(&self, text: &str, replace: bool) -> Result<Imported, ServiceError> {
        let _edit = self.edits.lock().await;
        let parsed = tools::config::parse(text).map_err(|e| ServiceError::invalid("mcpServers", e.to_string()))?;
        let mut out = Imported { errors: parsed.errors, ..Default::default() };
        for server in parsed.servers {
            let name = server.name.clone();
            match self.put_parsed(server, replace).await {
                Ok(()) => out.added.push(name),
                Err(e) => out.errors.push(EntryError { name, message: e.to_string() }),
            }
        }
        Ok(out)
    }

    /// Starts or stops a stored server, and remembers it.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<ServerView, ServiceError> {
        let _edit = self.edits.lock().await;
        let mut config = self
            .registry
            .server_configs()
            .into_iter()
            .find(|c| c.name == name)
            .ok_or_else(|| ServiceError::NotFound(format!("no MCP server named \"{name}\"")))?;
        config.enabled = enabled;
        self.put_parsed(config, true).await?;
        Ok(self.server(name).expect("just changed"))
    }

    /// Stops and deletes a stored server (also when it is not running here: the CLI).
    pub async fn remove(&self, name: &str) -> Result<(), ServiceError> {
        let _edit = self.edits.lock().await;
        if self.origin(name) == Origin::Flag {
            return Err(ServiceError::Conflict(format!(
                "MCP server \"{name}\" comes from --mcp-servers-config/--mcp-servers-json and cannot be removed here"
            )));
        }
        let n = name.to_owned();
        let stored = self.models.with_store(move |s| s.delete_mcp_server(&n)).await?.unwrap_or(false);
        let running = self.registry.remove_server(name).await;
        if !stored && !running {
            return Err(ServiceError::NotFound(format!("no MCP server named \"{name}\"")));
        }
        Ok(())
    }

    /// The tools offered (`builtins`: with the built-ins switched on).
    pub fn list(&self, builtins: bool) -> Vec<ToolInfo> {
        self.registry.tools(builtins)
    }

    /// The offered tools named in `selection` (`"*"` = all); an unknown name is a 400.
    pub fn select(&self, selection: &[String], builtins: bool) -> Result<Vec<ToolInfo>, ServiceError> {
        let all = self.list(builtins);
        if selection.iter().any(|s| s == "*") {
            return Ok(all);
        }
        selection
            .iter()
            .map(|name| {
                all.iter().find(|t| &t.name == name).cloned().ok_or_else(|| {
                    let names: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
                    ServiceError::invalid(
                        "server_tools",
                        format!("no server tool named \"{name}\" (offered: {})", if names.is_empty() { "none".into() } else { names.join(", ") }),
                    )
                })
            })
            .collect()
    }

    /// Calls a tool; only an unknown name is an error (404).
    pub async fn call(&self, name: &str, args: Value, builtins: bool) -> Result<ToolOutput, ServiceError> {
        self.registry
            .call(name, args, builtins)
            .await
            .map_err(|e| ServiceError::NotFound(e.to_string()))
    }

    /// Stops every server (bounded), at shutdown.
    pub async fn shutdown(&self) {
        self.registry.shutdown().await;
    }
}
