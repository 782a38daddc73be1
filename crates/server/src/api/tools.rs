//! Tools over HTTP (issue 14): llama-server's `GET /tools` and `POST /tools` in its shapes,
//! our `GET /api/tools`, and the MCP servers' management under `/api/mcp/servers` (admin).
//! The registry and its storage are `service::Tools`; this only maps requests to it.

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::SharedState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use service::tools::{ServerView, ToolInfo, ToolSource};

/// Who may run server tools: the admin, and inference keys when `tools.inference_keys`
/// allows them (the built-ins are off for inference keys otherwise); never a browser page
/// that may not use the management API (another loopback port's page may chat, not run
/// tools).
pub fn may_use_tools(
    state: &SharedState,
    access: Option<&Extension<crate::auth::Access>>,
    page: Option<&Extension<crate::guard::FromPage>>,
) -> ApiResult<()> {
    if page.is_some_and(|p| !p.may_manage) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "a page of this Origin may not run server tools: only the same origin and origins \
             listed in server.cors_origins (--cors-origin) may",
        ));
    }
    if crate::auth::is_admin(access) || state.tools.settings().inference_keys {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "server tools need the admin key (tools.inference_keys lets inference keys use them)",
    ))
}

/// llama-server's entry of `GET /tools`.
fn llama_entry(t: &ToolInfo) -> Value {
    json!({
        "display_name": t.name,
        "tool": t.name,
        "type": match t.source { ToolSource::Builtin => "server", ToolSource::Mcp { .. } => "mcp" },
        "permissions": {"write": false},
        "uses_cwd": false,
        "definition": t.definition(),
    })
}

/// `GET /tools`: every tool, as llama-server lists them.
pub async fn llama_list(
    State(state): State<SharedState>,
    access: Option<Extension<crate::auth::Access>>,
) -> ApiResult<Json<Value>> {
    may_use_tools(&state, access.as_ref(), None)?;
    Ok(Json(Value::Array(state.tools.list(true).iter().map(llama_entry).collect())))
}

#[derive(Debug, Deserialize)]
pub struct CallRequest {
    pub tool: String,
    #[serde(default)]
    pub params: Value,
    /// llama-server streams some of its own tools; ours answer at once.
    #[serde(default)]
    pub stream: bool,
}

/// `POST /tools {"tool", "params"}`: llama-server's answer, `{"plain_text_response": text}`
/// or `{"error": text}` (a tool's failure is 200, an unknown tool 404).
pub async fn llama_call(
    State(state): State<SharedState>,
    access: Option<Extension<crate::auth::Access>>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    // Who may call comes before what the body says.
    may_use_tools(&state, access.as_ref(), None)?;
    let req: CallRequest = serde_json::from_value(body).map_err(|e| ApiError::invalid("tool", e))?;
    if req.stream {
        return Err(ApiError::invalid("stream", "tool results are not streamed here; leave it out"));
    }
    let out = state.tools.call(&req.tool, req.params, true).await?;
    Ok(Json(if out.is_error { json!({"error": out.text}) } else { json!({"plain_text_response": out.text}) }))
}

/// `GET /api/tools`: built-ins and MCP tools, each MCP tool with its server's state, and the
/// servers.
pub async fn list(State(state): State<SharedState>) -> Json<Value> {
    let servers = state.tools.servers();
    let tools: Vec<Value> = state
        .tools
        .list(true)
        .iter()
        .map(|t| {
            let mut v = json!({
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
                "source": t.source,
            });
            if let ToolSource::Mcp { server } = &t.source
                && let Some(s) = servers.iter().find(|s| &s.status.name == server)
            {
                v["server_state"] = json!(s.status.state);
            }
            v
        })
        .collect();
    Json(json!({"tools": tools, "servers": servers}))
}

fn server_json(s: &ServerView) -> Value {
    json!(s)
}

/// `GET /api/mcp/servers`.
pub async fn servers(State(state): State<SharedState>) -> Json<Value> {
    Json(json!({"servers": state.tools.servers().iter().map(server_json).collect::<Vec<_>>()}))
}

/// `GET /api/mcp/servers/{name}`.
pub async fn server(State(state): State<SharedState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let s = state
        .tools
        .server(&name)
        .ok_or_else(|| ApiError::not_found(format!("no MCP server named \"{name}\"")))?;
    Ok(Json(server_json(&s)))
}

/// What `POST /api/mcp/servers` takes: one server, or an import.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    config: Option<Value>,
    #[serde(default, rename = "mcpServers")]
    mcp_servers: Option<Value>,
    #[serde(default)]
    replace: bool,
}

/// `POST /api/mcp/servers`: one server (`{"name", "config": {entry}}`) or an import
/// (`{"mcpServers": {...}}`, as a config file holds it; `"replace": true` overwrites names
/// that exist). An import answers with what was added and each bad entry's error.
pub async fn add(State(state): State<SharedState>, ApiJson(body): ApiJson<AddRequest>) -> ApiResult<(StatusCode, Json<Value>)> {
    if let Some(servers) = body.mcp_servers {
        let doc = json!({"mcpServers": servers}).to_string();
        let imported = state.tools.import(&doc, body.replace).await?;
        let status = if imported.added.is_empty() { StatusCode::BAD_REQUEST } else { StatusCode::CREATED };
        return Ok((status, Json(json!({"added": imported.added, "errors": imported.errors}))));
    }
    let name = body
        .name
        .ok_or_else(|| ApiError::invalid("name", "give \"name\" and \"config\", or an \"mcpServers\" object"))?;
    let config = body.config.ok_or_else(|| ApiError::invalid("config", "missing"))?;
    let s = state.tools.put(&name, config, body.replace).await?;
    Ok((StatusCode::CREATED, Json(server_json(&s))))
}

/// `PUT /api/mcp/servers/{name}`: the server's new `mcpServers` entry.
pub async fn edit(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    ApiJson(config): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    if state.tools.server(&name).is_none() {
        return Err(ApiError::not_found(format!("no MCP server named \"{name}\"")));
    }
    Ok(Json(server_json(&state.tools.put(&name, config, true).await?)))
}

/// `POST /api/mcp/servers/{name}/enable`.
pub async fn enable(State(state): State<SharedState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(server_json(&state.tools.set_enabled(&name, true).await?)))
}

/// `POST /api/mcp/servers/{name}/disable`.
pub async fn disable(State(state): State<SharedState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(server_json(&state.tools.set_enabled(&name, false).await?)))
}

/// `DELETE /api/mcp/servers/{name}`.
pub async fn remove(State(state): State<SharedState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    state.tools.remove(&name).await?;
    Ok(Json(json!({"removed": name})))
}
