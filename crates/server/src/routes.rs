//! Every route, registered once with its documentation: the router and `/openapi.json` are
//! built from the same table, so the document cannot miss a route.

use crate::api::{
    admin, bench, deployments, downloads, lmstudio, native, ollama_models, openai, sessions,
    system, tools, ws,
};
use crate::state::SharedState;
use axum::Router;
use axum::routing::{MethodRouter, delete, get, post, put};
use serde_json::{Map, Value, json};

/// One documented operation.
#[derive(Debug, Clone)]
pub struct Doc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    /// Also served on a deployment's own port, limited to its model.
    pub per_model: bool,
}

/// The routers built from the table, and its documentation.
pub struct Routes {
    /// Every route (the server's port).
    pub all: Router<SharedState>,
    /// The routes a deployment's own port serves: inference on one model.
    pub per_model: Router<SharedState>,
    pub docs: Vec<Doc>,
}

struct Table {
    routes: Routes,
}

impl Table {
    fn add(
        self,
        path: &'static str,
        tag: &'static str,
        route: MethodRouter<SharedState>,
        ops: &[(&'static str, &'static str)],
    ) -> Self {
        self.push(false, path, tag, route, ops)
    }

    /// A route that acts on one model: also served on deployments' own ports.
    fn model(
        self,
        path: &'static str,
        tag: &'static str,
        route: MethodRouter<SharedState>,
        ops: &[(&'static str, &'static str)],
    ) -> Self {
        self.push(true, path, tag, route, ops)
    }

    fn push(
        mut self,
        per_model: bool,
        path: &'static str,
        tag: &'static str,
        route: MethodRouter<SharedState>,
        ops: &[(&'static str, &'static str)],
    ) -> Self {
        let r = &mut self.routes;
        if per_model {
            r.per_model = std::mem::take(&mut r.per_model).route(path, route.clone());
        }
        r.all = std::mem::take(&mut r.all).route(path, route);
        for (method, summary) in ops {
            r.docs.push(Doc {
                method,
                path,
                summary,
                tag,
                per_model,
            });
        }
        self
    }
}

/// Where a model id goes in a path, and why so (the OpenAPI document carries this).
pub const MODEL_ID_IN_PATH: &str = "The model's id, alias or path, in one path segment. \
    Ids of Hugging Face models hold `/` (`org/repo/file`): send them percent-encoded \
    (`org%2Frepo%2Ffile`). The unencoded form (`/api/models/org/repo/file/details`) works \
    too: when a path under `/api/models/` has more segments than its route, every segment \
    before the operation's name (the last one) is taken as the id; on the routes that return \
    one model (`/v1/models/{id}`, `/models/{id}`, `/api/v0/models/{id}`) everything after \
    `models/` is. Ids with `:` (Ollama's `name:tag`) need no encoding.";

const MODELS_PREFIX: &str = "/api/models/";

/// The operations of `/api/models/{id}/<operation>`, from the table.
pub fn model_operations(docs: &[Doc]) -> Vec<&'static str> {
    let mut ops: Vec<&'static str> = docs
        .iter()
        .filter_map(|d| d.path.strip_prefix("/api/models/{id}/"))
        .collect();
    ops.sort_unstable();
    ops.dedup();
    ops
}

/// The routes whose last segment is a model id (`GET /v1/models/{id}` and its spellings).
const MODEL_ROUTES: &[&str] = &["/v1/models/", "/models/", "/api/v0/models/"];

/// `/api/models/org/repo/file/details` → `/api/models/org%2Frepo%2Ffile/details`, and
/// `/v1/models/org/repo/file` → `/v1/models/org%2Frepo%2Ffile`: the unencoded form of a model
/// id with `/`, made the one-segment form the routes declare. `None` when the path needs no
/// change.
pub fn encode_model_id(path: &str, operations: &[&str]) -> Option<String> {
    for prefix in MODEL_ROUTES {
        if let Some(id) = path.strip_prefix(prefix)
            && id.contains('/')
            && !id.split('/').any(str::is_empty)
        {
            return Some(format!("{prefix}{}", id.replace('/', "%2F")));
        }
    }
    let rest = path.strip_prefix(MODELS_PREFIX)?;
    let (id, op) = rest.rsplit_once('/')?;
    if !id.contains('/') || !operations.contains(&op) || id.split('/').any(str::is_empty) {
        return None;
    }
    Some(format!("{MODELS_PREFIX}{}/{op}", id.replace('/', "%2F")))
}

/// The routes and their documentation.
pub fn table() -> Routes {
    let mut t = Table {
        routes: Routes {
            all: Router::new(),
            per_model: Router::new(),
            docs: Vec::new(),
        },
    };
    // OpenAI-compatible, with and without the /v1 prefix (as llama-server).
    for (prefix, tag) in [("/v1", "openai"), ("", "openai")] {
        let p = |s: &'static str| -> &'static str {
            if prefix.is_empty() {
                s
            } else {
                Box::leak(format!("{prefix}{s}").into_boxed_str())
            }
        };
        t = t
            .model(
                p("/models"),
                tag,
                get(openai::list_models),
                &[("get", "List models with their state")],
            )
            .model(
                p("/models/{id}"),
                tag,
                get(openai::get_model),
                &[(
                    "get",
                    "One model, as the list shows it (seed 003's /models/:id)",
                )],
            )
            .model(
                p("/chat/completions"),
                tag,
                post(openai::chat_completions),
                &[(
                    "post",
                    "Chat completion (stream, tools, JSON mode, logprobs)",
                )],
            )
            .model(
                p("/chat/completions/input_tokens"),
                tag,
                post(openai::chat_input_tokens),
                &[("post", "Count the prompt tokens of a chat request")],
            )
            .model(
                p("/completions"),
                tag,
                // llama-server's native completion and OpenAI's share the unprefixed path:
                // it answers with both shapes' fields.
                if prefix.is_empty() {
                    post(openai::completions_both_shapes)
                } else {
                    post(openai::completions)
                },
                &[(
                    "post",
                    if prefix.is_empty() {
                        "Text completion: OpenAI's fields and llama-server's native ones together"
                    } else {
                        "Text completion"
                    },
                )],
            )
            .model(
                p("/embeddings"),
                tag,
                post(crate::api::embed::openai_embeddings),
                &[("post", "Embeddings")],
            )
            .model(
                p("/responses"),
                tag,
                post(crate::api::responses::create),
                &[("post", "Responses API")],
            )
            .model(
                p("/responses/input_tokens"),
                tag,
                post(crate::api::responses::input_tokens),
                &[("post", "Count the prompt tokens of a Responses request")],
            );
    }
    t = t
        // Anthropic's Messages API (its clients call `{base}/v1/messages`).
        .model(
            "/v1/messages",
            "anthropic",
            post(crate::api::anthropic::messages),
            &[(
                "post",
                "Anthropic Messages (stream, tools, thinking, output_config)",
            )],
        )
        .model(
            "/v1/messages/count_tokens",
            "anthropic",
            post(crate::api::anthropic::count_tokens),
            &[("post", "Count the input tokens of an Anthropic Messages request")],
        )
        // Ollama's inference routes (its clients call `{base}/api/chat`, ...).
        .model(
            "/api/chat",
            "ollama",
            post(crate::api::ollama_chat::chat),
            &[("post", "Ollama chat (NDJSON stream, format, tools, think)")],
        )
        .model(
            "/api/generate",
            "ollama",
            post(crate::api::ollama_chat::generate),
            &[("post", "Ollama generate (raw, suffix, images, context; NDJSON stream)")],
        )
        .model(
            "/api/embed",
            "ollama",
            post(crate::api::ollama_chat::embed),
            &[("post", "Ollama embeddings (normalised, several inputs)")],
        )
        .model(
            "/api/embeddings",
            "ollama",
            post(crate::api::ollama_chat::embeddings),
            &[("post", "Ollama legacy embeddings (one prompt, not normalised)")],
        )
        .model(
            "/v1/rerank",
            "native",
            post(crate::api::embed::rerank),
            &[("post", "Rerank documents")],
        )
        // llama.cpp-native
        .model(
            "/health",
            "native",
            get(native::health),
            &[("get", "Health (public)")],
        )
        .model(
            "/v1/health",
            "native",
            get(native::health),
            &[("get", "Health (public)")],
        )
        .add(
            "/metrics",
            "native",
            get(native::metrics),
            &[("get", "Prometheus metrics")],
        )
        .add(
            "/readiness",
            "native",
            get(native::readiness),
            &[(
                "get",
                "Readiness (public): 200 once a model is loaded or can be loaded, else 503 saying why",
            )],
        )
        // LM Studio's REST API v0: the OpenAI handlers with LM Studio's fields.
        .add(
            "/api/v0/models",
            "lmstudio",
            get(lmstudio::list_models),
            &[("get", "LM Studio: models with type, state, quantization, context lengths")],
        )
        .add(
            "/api/v0/models/{id}",
            "lmstudio",
            get(lmstudio::get_model),
            &[("get", "LM Studio: one model")],
        )
        .add(
            "/api/v0/chat/completions",
            "lmstudio",
            post(lmstudio::chat_completions),
            &[("post", "LM Studio: chat completion with stats, model_info, runtime")],
        )
        .add(
            "/api/v0/completions",
            "lmstudio",
            post(lmstudio::completions),
            &[("post", "LM Studio: text completion with stats, model_info, runtime")],
        )
        .add(
            "/api/v0/embeddings",
            "lmstudio",
            post(crate::api::embed::openai_embeddings),
            &[("post", "LM Studio: embeddings (OpenAI's shape)")],
        )
        .model(
            "/completion",
            "native",
            post(native::completion),
            &[("post", "llama.cpp completion")],
        )
        .model(
            "/tokenize",
            "native",
            post(native::tokenize),
            &[("post", "Tokenize (with_pieces)")],
        )
        .model(
            "/detokenize",
            "native",
            post(native::detokenize),
            &[("post", "Detokenize")],
        )
        .model(
            "/apply-template",
            "native",
            post(native::apply_template),
            &[("post", "Render the chat template")],
        )
        .model(
            "/embedding",
            "native",
            post(crate::api::embed::native_embedding),
            &[("post", "Embeddings (pooling none gives per-token vectors)")],
        )
        .model(
            "/reranking",
            "native",
            post(crate::api::embed::rerank),
            &[("post", "Rerank documents")],
        )
        .model(
            "/rerank",
            "native",
            post(crate::api::embed::rerank),
            &[("post", "Rerank documents")],
        )
        .model(
            "/infill",
            "native",
            post(crate::api::embed::infill),
            &[("post", "Fill in the middle")],
        )
        .model(
            "/props",
            "native",
            get(native::props),
            &[("get", "Server and model properties")],
        )
        .add(
            "/props",
            "native",
            post(native::set_props),
            &[("post", "Change default generation settings (admin)")],
        )
        .model(
            "/slots",
            "native",
            get(native::slots),
            &[("get", "Slots of a model")],
        )
        .add(
            "/slots/{id}",
            "native",
            post(native::slot_action),
            &[("post", "Save, restore or erase a slot (?action=, admin)")],
        )
        .model(
            "/lora-adapters",
            "native",
            get(crate::api::embed::lora_list),
            &[("get", "LoRA adapters of a model")],
        )
        .add(
            "/lora-adapters",
            "native",
            post(crate::api::embed::lora_set),
            &[("post", "Set LoRA scales (admin)")],
        )
        // Ollama's API: the model routes (its chat, generate and embed are inference routes).
        .add(
            "/",
            "ollama",
            get(ollama_models::root),
            &[(
                "get",
                "\"Ollama is running\" (text; HEAD too), for clients that probe for Ollama (public)",
            )],
        )
        .add(
            "/api/tags",
            "ollama",
            get(ollama_models::tags),
            &[("get", "Ollama: list models (every name with a tag)")],
        )
        .add(
            "/api/show",
            "ollama",
            post(ollama_models::show),
            &[(
                "post",
                "Ollama: a model's template, parameters, details, model_info, capabilities",
            )],
        )
        .add(
            "/api/ps",
            "ollama",
            get(ollama_models::ps),
            &[("get", "Ollama: loaded models, memory, expiry, context")],
        )
        .add(
            "/api/version",
            "ollama",
            get(ollama_models::version),
            &[("get", "Ollama: the Ollama API version this server follows")],
        )
        .add(
            "/api/pull",
            "ollama",
            post(ollama_models::pull),
            &[(
                "post",
                "Ollama: pull a model from an Ollama registry, NDJSON progress (admin)",
            )],
        )
        .add(
            "/api/delete",
            "ollama",
            delete(ollama_models::delete),
            &[("delete", "Ollama: delete a model or a copy's name (admin)")],
        )
        .add(
            "/api/copy",
            "ollama",
            post(ollama_models::copy),
            &[("post", "Ollama: give a model a second name (admin)")],
        )
        .add(
            "/api/create",
            "ollama",
            post(ollama_models::create),
            &[("post", "Ollama: create from a Modelfile (501, admin)")],
        )
        .add(
            "/api/push",
            "ollama",
            post(ollama_models::push),
            &[("post", "Ollama: push to a registry (501, admin)")],
        )
        // Management
        .add(
            "/api/models",
            "models",
            get(admin::list),
            &[("get", "All discovered models")],
        )
        .add(
            "/api/models/scan",
            "models",
            post(admin::scan),
            &[("post", "Rescan the model folders")],
        )
        // Downloads (PRD M6); seed 001's spellings below are the same handlers.
        .add(
            "/api/models/search",
            "download",
            get(downloads::search),
            &[(
                "get",
                "Search the hub for GGUF models (?q=&source=huggingface|ollama&category=&sort=&limit=)",
            )],
        )
        .add(
            "/api/models/categories",
            "download",
            get(downloads::categories),
            &[("get", "Model categories a search can filter by")],
        )
        .add(
            "/api/models/vram-estimate",
            "models",
            post(admin::vram_estimate),
            &[("post", "Memory estimate for a model and parameters")],
        )
        // One route per operation on a model; `{id}` is one segment (MODEL_ID_IN_PATH).
        .add(
            "/api/models/{id}/details",
            "models",
            get(admin::get_details),
            &[(
                "get",
                "Model details: GGUF metadata, memory estimate, load spec, capabilities",
            )],
        )
        .add(
            "/api/models/{id}/config",
            "models",
            get(admin::get_config).put(admin::put_config),
            &[
                ("get", "Stored and effective launch parameters"),
                ("put", "Store launch parameters"),
            ],
        )
        .add(
            "/api/models/{id}/template",
            "models",
            get(admin::get_template)
                .put(admin::put_template)
                .delete(admin::delete_template),
            &[
                ("get", "Chat template: custom, embedded, in use"),
                ("put", "Set a custom chat template"),
                ("delete", "Remove the custom chat template"),
            ],
        )
        .add(
            "/api/models/{id}/capabilities",
            "models",
            get(admin::get_capabilities).put(admin::put_capabilities),
            &[
                ("get", "Detected, overridden and effective capabilities"),
                ("put", "Override the capabilities (null: detect)"),
            ],
        )
        .add(
            "/api/models/{id}/info",
            "download",
            get(downloads::info),
            &[(
                "get",
                "A hub repository's facts and GGUF files ({id} = owner/name, ?revision=)",
            )],
        )
        .add(
            "/api/models/{id}/alias",
            "models",
            put(admin::put_alias),
            &[("put", "Set or remove the alias")],
        )
        .add(
            "/api/models/{id}/favorite",
            "models",
            put(admin::put_favorite),
            &[("put", "Mark or unmark as favorite")],
        )
        .add(
            "/api/models/{id}/load",
            "models",
            post(admin::load),
            &[("post", "Load (or reload with other parameters)")],
        )
        .add(
            "/api/models/{id}/unload",
            "models",
            post(admin::unload),
            &[("post", "Unload")],
        )
        .add(
            "/api/config",
            "system",
            get(system::get_config).put(system::put_config),
            &[
                ("get", "Configuration"),
                ("put", "Change configuration keys"),
            ],
        )
        .add(
            "/api/config/model-paths",
            "system",
            get(system::model_paths)
                .post(system::add_model_path)
                .delete(system::remove_model_path),
            &[
                ("get", "Model folders"),
                ("post", "Add a model folder"),
                ("delete", "Remove a model folder"),
            ],
        )
        .add(
            "/api/system/devices",
            "system",
            get(system::devices),
            &[("get", "Compute devices")],
        )
        .add(
            "/api/system/resources",
            "system",
            get(system::resources),
            &[("get", "CPU, memory, GPU, disks, per-model memory")],
        )
        .add(
            "/api/system/logs",
            "system",
            get(system::logs),
            &[("get", "Recent log lines (?level=&limit=)")],
        )
        .add(
            "/api/system/log-level",
            "system",
            put(system::set_log_level),
            &[("put", "Change the log level")],
        )
        .add(
            "/api/system/fs/browse",
            "system",
            get(system::browse),
            &[("get", "Browse inside the model folders")],
        )
        .add(
            "/api/system/ports",
            "system",
            get(system::ports),
            &[("get", "Ollama's and LM Studio's ports: configured, open")],
        )
        .add(
            "/api/system/ports/{name}/start",
            "system",
            post(system::port_start),
            &[(
                "post",
                "Open Ollama's or LM Studio's port ({name} = ollama | lmstudio; body {port?}, 0 = any free one)",
            )],
        )
        .add(
            "/api/system/ports/{name}/stop",
            "system",
            post(system::port_stop),
            &[("post", "Close Ollama's or LM Studio's port")],
        )
        .add(
            "/api/system/shutdown",
            "system",
            post(system::shutdown),
            &[("post", "Graceful shutdown")],
        )
        .add(
            "/tools",
            "tools",
            get(tools::llama_list).post(tools::llama_call),
            &[
                ("get", "llama-server: every tool (built-in and MCP) with its definition"),
                ("post", "llama-server: run a tool, {tool, params} → {plain_text_response} or {error}"),
            ],
        )
        .add(
            "/api/tools",
            "tools",
            get(tools::list),
            &[("get", "Built-in and MCP tools (each MCP tool with its server's state), and the MCP servers")],
        )
        .add(
            "/api/mcp/servers",
            "tools",
            get(tools::servers).post(tools::add),
            &[
                ("get", "MCP servers with their state"),
                ("post", "Add {name, config} or import {mcpServers: {...}, replace?}"),
            ],
        )
        .add(
            "/api/mcp/servers/{name}",
            "tools",
            get(tools::server).put(tools::edit).delete(tools::remove),
            &[
                ("get", "One MCP server"),
                ("put", "Replace its mcpServers entry"),
                ("delete", "Stop and forget it"),
            ],
        )
        .add(
            "/api/mcp/servers/{name}/enable",
            "tools",
            post(tools::enable),
            &[("post", "Start it and keep it on")],
        )
        .add(
            "/api/mcp/servers/{name}/disable",
            "tools",
            post(tools::disable),
            &[("post", "Stop it and keep it off")],
        )
        .add(
            "/api/deployments/start",
            "deployments",
            post(deployments::start),
            &[(
                "post",
                "Start a deployment: {model, name?, params?, port?} (port: its own port, 0 = any free one)",
            )],
        )
        .add(
            "/api/deployments/list",
            "deployments",
            get(deployments::list),
            &[("get", "List deployments")],
        )
        .add(
            "/api/deployments/{id}",
            "deployments",
            delete(deployments::remove),
            &[("delete", "Forget a stopped deployment")],
        )
        .add(
            "/api/deployments/{id}/status",
            "deployments",
            get(deployments::status),
            &[("get", "Deployment status")],
        )
        .add(
            "/api/deployments/{id}/logs",
            "deployments",
            get(deployments::logs),
            &[("get", "Deployment logs")],
        )
        .add(
            "/api/deployments/{id}/stop",
            "deployments",
            put(deployments::stop),
            &[("put", "Stop: unload the model, close its port")],
        )
        .add(
            "/api/deployments/{id}/restart",
            "deployments",
            put(deployments::restart),
            &[("put", "Restart with the same parameters and port")],
        )
        .add(
            "/api/download/search",
            "download",
            get(downloads::search),
            &[(
                "get",
                "Search the hub for GGUF models (?q=&source=&category=&sort=downloads|likes|updated&limit=)",
            )],
        )
        .add(
            "/api/download/files",
            "download",
            get(downloads::files),
            &[(
                "get",
                "A hub repository's GGUF files: sizes, quantization, split sets, projectors (?repo=&revision=)",
            )],
        )
        .add(
            "/api/download/start",
            "download",
            post(downloads::start),
            &[(
                "post",
                "Start a download: {name: org/repo[:QUANT] | URL | Ollama name:tag, file?, quant?, source?, revision?}",
            )],
        )
        .add(
            "/api/download/pause",
            "download",
            post(downloads::pause),
            &[("post", "Pause a download ({id} or ?id=); the partial file is kept")],
        )
        .add(
            "/api/download/resume",
            "download",
            post(downloads::resume),
            &[("post", "Resume a paused or failed download ({id} or ?id=)")],
        )
        .add(
            "/api/download/delete",
            "download",
            delete(downloads::delete),
            &[(
                "delete",
                "Cancel and forget a download ({id, delete_partial?} or ?id=&delete_partial=)",
            )],
        )
        .add(
            "/api/download/tasks",
            "download",
            get(downloads::tasks),
            &[("get", "Every download task with bytes, speed, ETA and state")],
        )
        .add(
            "/api/downloads/start",
            "download",
            post(downloads::start),
            &[("post", "Start a download (as /api/download/start)")],
        )
        .add(
            "/api/downloads/list",
            "download",
            get(downloads::tasks),
            &[("get", "Every download task (as /api/download/tasks)")],
        )
        .add(
            "/api/downloads/{id}",
            "download",
            delete(downloads::delete_by_path),
            &[("delete", "Cancel and forget a download (?delete_partial=true)")],
        )
        .add(
            "/api/downloads/{id}/status",
            "download",
            get(downloads::status),
            &[("get", "A download's state, bytes, speed and ETA")],
        )
        .add(
            "/api/downloads/{id}/pause",
            "download",
            put(downloads::pause_by_path),
            &[("put", "Pause a download")],
        )
        .add(
            "/api/downloads/{id}/resume",
            "download",
            put(downloads::resume_by_path),
            &[("put", "Resume a download")],
        )
        .add(
            "/api/bench/run",
            "bench",
            post(bench::run),
            &[("post", "Start a benchmark")],
        )
        .add(
            "/api/bench/results",
            "bench",
            get(bench::results),
            &[("get", "Benchmark results (?model=, ?compare=ID1,ID2)")],
        )
        .add(
            "/api/bench/results/{id}",
            "bench",
            delete(bench::delete),
            &[("delete", "Delete a result")],
        )
        // Chat sessions (issue 13): seed 001's spelling, REST-style listing, seed 003's aliases.
        .add(
            "/api/chat/sessions/create",
            "sessions",
            post(sessions::create),
            &[("post", "Create a chat session (title, model or models, params)")],
        )
        .add(
            "/api/chat/sessions",
            "sessions",
            get(sessions::list),
            &[("get", "List chat sessions, newest first (limit, offset, search)")],
        )
        .add(
            "/sessions",
            "sessions",
            get(sessions::list),
            &[("get", "List chat sessions (seed 003's spelling)")],
        )
        .add(
            "/api/chat/sessions/{id}",
            "sessions",
            get(sessions::get)
                .patch(sessions::patch)
                .delete(sessions::delete),
            &[
                ("get", "A chat session's settings"),
                ("patch", "Change a session's title, models, params or active branch"),
                ("delete", "Delete a chat session and its messages"),
            ],
        )
        .add(
            "/api/chat/history/{id}",
            "sessions",
            get(sessions::history),
            &[(
                "get",
                "A session's active branch (?branch=<message id> another, ?tree=1 every message)",
            )],
        )
        .add(
            "/chat/history/{id}",
            "sessions",
            get(sessions::history).delete(sessions::delete),
            &[
                ("get", "A session's history (seed 003's spelling)"),
                ("delete", "Delete a session (seed 003's spelling)"),
            ],
        )
        .add(
            "/api/chat/history/{id}/rollback",
            "sessions",
            post(sessions::rollback),
            &[("post", "Drop the last n messages of the active branch")],
        )
        .add(
            "/chat/history/{id}/rollback",
            "sessions",
            post(sessions::rollback),
            &[("post", "Drop the last n messages (seed 003's spelling)")],
        )
        .add(
            "/api/chat/send",
            "sessions",
            post(sessions::send),
            &[(
                "post",
                "Send a message to a session; each model's answer (models: [a, b]) as JSON or SSE",
            )],
        )
        .add(
            "/api/chat/sessions/{id}/regenerate",
            "sessions",
            post(sessions::regenerate),
            &[("post", "A new answer to the last question (a new branch)")],
        )
        .add(
            "/api/chat/sessions/{id}/edit",
            "sessions",
            post(sessions::edit),
            &[("post", "Ask an earlier question again, changed (a new branch)")],
        )
        .add(
            "/api/chat/sessions/{id}/stop",
            "sessions",
            post(sessions::stop),
            &[("post", "Stop the session's running answers, keeping their text")],
        )
        .add(
            "/api/chat/export/{id}",
            "sessions",
            post(sessions::export).get(sessions::export),
            &[
                ("post", "Download a session (?format=json|markdown)"),
                ("get", "Download a session (?format=json|markdown)"),
            ],
        )
        .add(
            "/api/chat/import",
            "sessions",
            post(sessions::import),
            &[("post", "Import a session's JSON export as a new session")],
        )
        .add(
            "/ws/chat/stream",
            "websocket",
            get(sessions::socket),
            &[("get", "Chat sessions over a WebSocket (seed 001)")],
        )
        .add(
            "/chat/ws",
            "websocket",
            get(sessions::socket),
            &[("get", "Chat sessions over a WebSocket (seed 003's spelling)")],
        )
        .add(
            "/ws/events",
            "websocket",
            get(ws::events),
            &[("get", "Event feed (WebSocket)")],
        )
        .add(
            "/ws/logs",
            "websocket",
            get(ws::logs),
            &[("get", "Live logs (WebSocket, ?level=)")],
        )
        .add(
            "/ws/download",
            "websocket",
            get(ws::downloads),
            &[("get", "Download progress and model.added (WebSocket)")],
        )
        .add(
            "/ws/download-progress",
            "websocket",
            get(ws::downloads),
            &[("get", "Download progress (WebSocket, as /ws/download)")],
        )
        .add(
            "/ws/bench",
            "websocket",
            get(ws::bench),
            &[("get", "Benchmark events (WebSocket)")],
        );
    t.routes
}

/// The OpenAPI 3.1 document for the routes.
pub fn openapi(docs: &[Doc]) -> Value {
    let mut paths = Map::new();
    for d in docs {
        let path = d.path.to_string();
        let model_id = path.starts_with("/api/models/{id}")
            || MODEL_ROUTES
                .iter()
                .any(|p| path.strip_prefix(p) == Some("{id}"));
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| {
                let mut p = json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}});
                if model_id && name == "id" {
                    p["description"] = json!(MODEL_ID_IN_PATH);
                }
                p
            })
            .collect();
        let public = crate::auth::required_access(d.method, d.path) == crate::auth::Access::None;
        let mut op = json!({
            "summary": d.summary,
            "tags": [d.tag],
            "operationId": format!("{}_{}", d.method, path.trim_start_matches('/').replace(['/', '{', '}', '-', '*'], "_")),
            "responses": {
                "200": {"description": "Success"},
                "4XX": {"description": "Client error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        });
        if model_id {
            op["description"] = json!(MODEL_ID_IN_PATH);
        } else if d.per_model {
            op["description"] = json!(
                "Also served on a deployment's own port, where `model` may only name that \
                 deployment's model (it is the default; another model is 404)."
            );
        }
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if matches!(d.method, "post" | "put") {
            op["requestBody"] = json!({"required": false, "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        if public {
            op["security"] = json!([]);
        }
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        entry[d.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Llama Dashboard",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "OpenAI-compatible, llama.cpp-native and management API of llama-dashboard.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "object", "properties": {
                        "message": {"type": "string"},
                        "type": {"type": "string"},
                        "code": {},
                        "param": {"type": ["string", "null"]},
                    }}},
                },
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_with_slashes_become_one_segment() {
        let ops = model_operations(&table().docs);
        assert!(ops.contains(&"details") && ops.contains(&"load"), "{ops:?}");
        let enc = |p| encode_model_id(p, &ops);
        assert_eq!(
            enc("/api/models/org/repo/file/details").as_deref(),
            Some("/api/models/org%2Frepo%2Ffile/details")
        );
        assert_eq!(
            enc("/api/models/org/repo/file:Q4/load").as_deref(),
            Some("/api/models/org%2Frepo%2Ffile:Q4/load")
        );
        // Already one segment, not an operation, not under /api/models, or empty segments.
        for p in [
            "/api/models/smol/details",
            "/api/models/org%2Frepo%2Ffile/details",
            "/api/models/org/repo/file/nope",
            "/api/models/scan",
            "/api/models/vram-estimate",
            "/api/models//x/details",
            "/api/models/a/b/",
            "/v1/models/smol",
            "/v1/models/org//smol",
            "/api/v0/models/a/",
        ] {
            assert_eq!(enc(p), None, "{p}");
        }
        // The model-retrieving routes: everything after the prefix is the id.
        assert_eq!(
            enc("/v1/models/org/repo/smol").as_deref(),
            Some("/v1/models/org%2Frepo%2Fsmol")
        );
        assert_eq!(
            enc("/models/org/repo/smol").as_deref(),
            Some("/models/org%2Frepo%2Fsmol")
        );
        assert_eq!(
            enc("/api/v0/models/org/repo/smol").as_deref(),
            Some("/api/v0/models/org%2Frepo%2Fsmol")
        );
    }

    #[test]
    fn every_operation_is_documented_once() {
        let docs = table().docs;
        let mut seen = std::collections::HashSet::new();
        for d in &docs {
            assert!(
                seen.insert((d.method, d.path)),
                "{} {} twice",
                d.method,
                d.path
            );
            assert!(
                !d.path.contains('*'),
                "a catch-all hides operations: {}",
                d.path
            );
        }
        // Deployments' ports serve inference only (Ollama's inference routes are under
        // `/api/` too), never management.
        let ollama = crate::api::ollama_types::INFERENCE_ROUTES;
        assert!(docs.iter().filter(|d| d.per_model).all(|d| {
            (!d.path.starts_with("/api/") || ollama.contains(&d.path))
                && !d.path.starts_with("/ws/")
        }));
    }
}
