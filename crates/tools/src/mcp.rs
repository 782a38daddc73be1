//! One MCP server under supervision: started (or connected to), its tools listed on start and
//! again when it says they changed, restarted with backoff when it dies, stopped on demand.
//!
//! Nothing a server does can stop our process: start-up and every call have timeouts, a
//! crash ends only this server's task (calls in flight get an error as their result), and a
//! stdio server runs in its own process group, so stopping it kills the children it started
//! too — a grandchild holding the pipes open cannot hang shutdown.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, Tool};
use rmcp::service::{Peer, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde::Serialize;
use tokio::io::AsyncBufReadExt;
use tokio::sync::{Notify, watch};

use crate::ToolOutput;
use crate::config::{ServerConfig, Transport};

/// Where a server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    Starting,
    Running,
    /// Failed to start, crashed or was cut off; a restart is pending.
    Failed,
    Disabled,
    Stopped,
}

/// What the registry shows about a server.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    pub name: String,
    pub transport: &'static str,
    pub state: ServerState,
    /// Why it last failed (with the tail of a stdio server's stderr).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub tools: usize,
    /// Times it was started again after failing.
    pub restarts: u32,
}

/// Timeouts and backoff for every server.
#[derive(Debug, Clone, Copy)]
pub struct Supervision {
    pub call_timeout: Duration,
    pub start_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl Default for Supervision {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(60),
            start_timeout: Duration::from_secs(30),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
}

#[derive(Default)]
struct Live {
    state: Option<ServerState>,
    error: Option<String>,
    tools: Vec<Tool>,
    peer: Option<Peer<RoleClient>>,
    restarts: u32,
    stderr_tail: String,
    /// The process group of the running stdio server (its leader's pid).
    pgid: Option<u32>,
}

/// Kills what is left of a stdio server's process group: a server that exits cleanly when
/// its stdin closes leaves its own children behind otherwise (and they may hold the pipes).
fn kill_group(live: &Mutex<Live>) {
    let pgid = live.lock().unwrap().pgid.take();
    signal_group(pgid, libc::SIGKILL);
}

/// Asks a stdio server's process group to end (SIGTERM) when we stop it: a server busy in a
/// call does not read its closed stdin, and rmcp would wait 3 s before its own SIGTERM.
fn term_group(live: &Mutex<Live>) {
    let pgid = live.lock().unwrap().pgid;
    signal_group(pgid, libc::SIGTERM);
}

fn signal_group(pgid: Option<u32>, signal: i32) {
    if let Some(pgid) = pgid
        && let Ok(pgid) = i32::try_from(pgid)
        && pgid > 1
    {
        // SAFETY: killpg only sends a signal; ESRCH (the group is gone) is fine.
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
}

/// A supervised server. Dropping it stops the server.
pub struct McpServer {
    config: ServerConfig,
    live: Arc<Mutex<Live>>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    supervision: Supervision,
}

/// Our side of the MCP session: it only hears "the tool list changed".
#[derive(Clone)]
struct Handler {
    changed: Arc<Notify>,
}

impl ClientHandler for Handler {
    async fn on_tool_list_changed(&self, _context: rmcp::service::NotificationContext<RoleClient>) {
        // Relisted by the supervisor: a request from inside a notification handler would
        // wait on the loop that is running this handler.
        self.changed.notify_one();
    }
}

impl McpServer {
    /// Starts supervising `config` (a disabled server is only recorded).
    pub fn start(config: ServerConfig, supervision: Supervision) -> Self {
        let live = Arc::new(Mutex::new(Live::default()));
        let (stop, stop_rx) = watch::channel(false);
        let task = if config.enabled {
            live.lock().unwrap().state = Some(ServerState::Starting);
            Some(tokio::spawn(supervise(config.clone(), live.clone(), stop_rx, supervision)))
        } else {
            live.lock().unwrap().state = Some(ServerState::Disabled);
            None
        };
        Self { config, live, stop, task: Mutex::new(task), supervision }
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    pub fn status(&self) -> ServerStatus {
        let live = self.live.lock().unwrap();
        ServerStatus {
            name: self.config.name.clone(),
            transport: self.config.transport.kind(),
            state: live.state.unwrap_or(ServerState::Starting),
            error: live.error.clone(),
            tools: live.tools.len(),
            restarts: live.restarts,
        }
    }

    /// The tools of a running server (none otherwise).
    pub fn tools(&self) -> Vec<Tool> {
        let live = self.live.lock().unwrap();
        if live.state == Some(ServerState::Running) { live.tools.clone() } else { Vec::new() }
    }

    /// Calls `tool`. Every failure — server down, timeout, protocol error, the tool's own
    /// error — is a result with `is_error`, for the model to read.
    pub async fn call(&self, tool: &str, args: serde_json::Map<String, serde_json::Value>) -> ToolOutput {
        let (peer, state) = {
            let live = self.live.lock().unwrap();
            (live.peer.clone(), live.state)
        };
        let Some(peer) = peer.filter(|_| state == Some(ServerState::Running)) else {
            let why = self.status().error.unwrap_or_else(|| "not running".into());
            return ToolOutput::error(format!("MCP server \"{}\" is unavailable: {why}", self.config.name));
        };
        let timeout = self.config.timeout().unwrap_or(self.supervision.call_timeout);
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(args);
        match tokio::time::timeout(timeout, peer.call_tool(params)).await {
            Err(_) => ToolOutput::error(format!(
                "the tool {}_{tool} did not answer within {} ms (the server's \"timeout_ms\", or tools.call_timeout_seconds)",
                self.config.name,
                timeout.as_millis()
            )),
            Ok(Err(e)) => ToolOutput::error(format!("MCP server \"{}\": {e}", self.config.name)),
            Ok(Ok(result)) => {
                let value = serde_json::to_value(&result).unwrap_or_default();
                crate::result_text(&value)
            }
        }
    }

    /// Stops the server and waits (bounded) until its process is gone.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().unwrap().take();
        if let Some(mut task) = task {
            // The supervisor closes the session (stdin closed, SIGTERM, then SIGKILL to the
            // whole group); past this, abort it: dropping the child kills the group.
            if tokio::time::timeout(Duration::from_secs(10), &mut task).await.is_err() {
                task.abort();
            }
        }
        kill_group(&self.live);
        let mut live = self.live.lock().unwrap();
        live.state = Some(ServerState::Stopped);
        live.peer = None;
        live.tools.clear();
    }
}

impl Drop for McpServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

fn set_failed(live: &Mutex<Live>, why: String) {
    let mut l = live.lock().unwrap();
    let tail = l.stderr_tail.trim().to_owned();
    l.error = Some(if tail.is_empty() { why } else { format!("{why}; stderr: {tail}") });
    l.state = Some(ServerState::Failed);
    l.peer = None;
    l.tools.clear();
}

async fn supervise(config: ServerConfig, live: Arc<Mutex<Live>>, mut stop: watch::Receiver<bool>, sup: Supervision) {
    let mut backoff = sup.backoff_min;
    let mut first = true;
    loop {
        {
            let mut l = live.lock().unwrap();
            l.state = Some(ServerState::Starting);
            l.stderr_tail.clear();
            if !first {
                l.restarts += 1;
            }
        }
        first = false;
        let started = Instant::now();
        let changed = Arc::new(Notify::new());
        let handler = Handler { changed: changed.clone() };
        let connected = tokio::select! {
            r = tokio::time::timeout(sup.start_timeout, connect(&config, handler, live.clone())) => r,
            _ = stopped(&mut stop) => return,
        };
        match connected {
            Err(_) => set_failed(&live, format!("did not finish starting within {} s", sup.start_timeout.as_secs())),
            Ok(Err(e)) => set_failed(&live, e),
            Ok(Ok(running)) => {
                tracing::info!(server = %config.name, "MCP server connected");
                let asked_to_stop = run(&config, running, &changed, &live, &mut stop, &sup).await;
                kill_group(&live);
                if asked_to_stop {
                    return;
                }
            }
        }
        kill_group(&live);
        if *stop.borrow() {
            return;
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = sup.backoff_min;
        }
        tracing::warn!(server = %config.name, error = ?live.lock().unwrap().error, "MCP server down; restarting in {backoff:?}");
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stopped(&mut stop) => return,
        }
        backoff = (backoff * 2).min(sup.backoff_max);
    }
}

/// Serves one connected session until it ends. True when asked to stop.
async fn run(
    config: &ServerConfig,
    running: RunningService<RoleClient, Handler>,
    changed: &Notify,
    live: &Mutex<Live>,
    stop: &mut watch::Receiver<bool>,
    sup: &Supervision,
) -> bool {
    let peer = running.peer().clone();
    let cancel = running.cancellation_token();
    let mut ended = std::pin::pin!(running.waiting());
    match watch_session(config, &peer, ended.as_mut(), changed, live, stop, sup).await {
        End::Exited => {
            set_failed(live, "the server closed the connection (exited or crashed)".into());
            false
        }
        end @ (End::Stopped | End::Failed) => {
            // The one way a session is stopped: cancel it and wait (bounded) for its end.
            if matches!(end, End::Stopped) {
                term_group(live);
            }
            cancel.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(10), &mut ended).await;
            matches!(end, End::Stopped)
        }
    }
}

/// Why [`watch_session`] returned.
enum End {
    /// The server closed the connection (it exited or crashed).
    Exited,
    /// We were told to stop it.
    Stopped,
    /// Its tools could not be listed (the state says why).
    Failed,
}

/// Lists the server's tools, and again on each change notice, until it ends or is stopped.
async fn watch_session<F: std::future::Future>(
    config: &ServerConfig,
    peer: &Peer<RoleClient>,
    mut ended: std::pin::Pin<&mut F>,
    changed: &Notify,
    live: &Mutex<Live>,
    stop: &mut watch::Receiver<bool>,
    sup: &Supervision,
) -> End {
    loop {
        let listed = tokio::select! {
            r = tokio::time::timeout(sup.call_timeout, peer.list_all_tools()) => r,
            _ = &mut ended => return End::Exited,
            _ = stopped(stop) => return End::Stopped,
        };
        match listed {
            Ok(Ok(tools)) => {
                tracing::info!(server = %config.name, tools = tools.len(), "MCP tools listed");
                let mut l = live.lock().unwrap();
                l.tools = tools;
                l.peer = Some(peer.clone());
                l.state = Some(ServerState::Running);
                l.error = None;
            }
            Ok(Err(e)) => set_failed(live, format!("tools/list failed: {e}")),
            Err(_) => set_failed(live, format!("tools/list did not answer within {} s", sup.call_timeout.as_secs())),
        }
        if live.lock().unwrap().state != Some(ServerState::Running) {
            return End::Failed;
        }
        // Until the server says its tools changed (a notice during the listing is kept by
        // `Notify`), or it ends, or we stop it.
        tokio::select! {
            _ = changed.notified() => {}
            _ = &mut ended => return End::Exited,
            _ = stopped(stop) => return End::Stopped,
        }
    }
}

/// The HTTP client for remote servers: rustls with ring (the provider the workspace uses).
pub(crate) fn http_client(timeout: Option<Duration>) -> Result<reqwest::Client, String> {
    crate::install_crypto();
    let mut b = reqwest::Client::builder();
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    b.build().map_err(|e| format!("HTTP client: {e}"))
}

async fn connect(config: &ServerConfig, handler: Handler, live: Arc<Mutex<Live>>) -> Result<RunningService<RoleClient, Handler>, String> {
    match &config.transport {
        Transport::Stdio { command, args, env, cwd } => {
            use process_wrap::tokio::{CommandWrap, KillOnDrop, ProcessGroup};
            let mut wrap = CommandWrap::with_new(command, |c| {
                c.args(args).envs(env);
                if let Some(cwd) = cwd {
                    c.current_dir(cwd);
                }
            });
            wrap.wrap(ProcessGroup::leader()).wrap(KillOnDrop);
            let (proc, stderr) = rmcp::transport::TokioChildProcess::builder(wrap)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start {command:?}: {e}"))?;
            live.lock().unwrap().pgid = proc.id();
            if let Some(stderr) = stderr {
                // Drained so a chatty server never blocks on a full pipe; the tail explains a crash.
                let name = config.name.clone();
                tokio::spawn(async move {
                    let mut lines = tokio::io::BufReader::new(stderr).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        tracing::debug!(server = %name, "{line}");
                        let mut l = live.lock().unwrap();
                        l.stderr_tail.push_str(&line);
                        l.stderr_tail.push('\n');
                        if l.stderr_tail.len() > 2048 {
                            let mut cut = l.stderr_tail.len() - 2048;
                            while !l.stderr_tail.is_char_boundary(cut) {
                                cut += 1;
                            }
                            l.stderr_tail.drain(..cut);
                        }
                    }
                });
            }
            handler.serve(proc).await.map_err(|e| format!("MCP handshake failed: {e}"))
        }
        Transport::StreamableHttp { url, headers } => {
            use rmcp::transport::StreamableHttpClientTransport;
            use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
            let mut map = std::collections::HashMap::new();
            for (k, v) in headers {
                let name = http::HeaderName::try_from(k.as_str()).map_err(|e| format!("header {k:?}: {e}"))?;
                let value = http::HeaderValue::try_from(v.as_str()).map_err(|e| format!("header {k:?}: {e}"))?;
                map.insert(name, value);
            }
            let client = http_client(None)?;
            let transport = StreamableHttpClientTransport::with_client(
                client,
                StreamableHttpClientTransportConfig::with_uri(url.clone()).custom_headers(map),
            );
            handler.serve(transport).await.map_err(|e| format!("MCP handshake with {url} failed: {e}"))
        }
        Transport::Sse { url, headers } => {
            let client = http_client(None)?;
            let transport = crate::sse::SseTransport::connect(client, url, headers).await.map_err(|e| e.0)?;
            handler.serve(transport).await.map_err(|e| format!("MCP handshake with {url} failed: {e}"))
        }
    }
}
