//! Every route, registered once with its documentation: the router and `/openapi.json` are
//! built from the same table, so the document cannot miss a route.

use crate::api::{admin, bench, deployments, native, openai, system, ws};
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
}

struct Table {
    router: Router<SharedState>,
    docs: Vec<Doc>,
}

impl Table {
    fn add(
        mut self,
        path: &'static str,
        tag: &'static str,
        route: MethodRouter<SharedState>,
        ops: &[(&'static str, &'static str)],
    ) -> Self {
        self.router = self.router.route(path, route);
        for (method, summary) in ops {
            self.docs.push(Doc {
                method,
                path,
                summary,
                tag,
            });
        }
        self
    }
}

/// The routes and their documentation.
pub fn table() -> (Router<SharedState>, Vec<Doc>) {
    let mut t = Table {
        router: Router::new(),
        docs: Vec::new(),
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
            .add(
                p("/models"),
                tag,
                get(openai::list_models),
                &[("get", "List models with their state")],
            )
            .add(
                p("/chat/completions"),
                tag,
                post(openai::chat_completions),
                &[(
                    "post",
                    "Chat completion (stream, tools, JSON mode, logprobs)",
                )],
            )
            .add(
                p("/completions"),
                tag,
                post(openai::completions),
                &[("post", "Text completion")],
            )
            .add(
                p("/embeddings"),
                tag,
                post(crate::api::embed::openai_embeddings),
                &[("post", "Embeddings")],
            )
            .add(
                p("/responses"),
                tag,
                post(crate::api::responses::create),
                &[("post", "Responses API")],
            );
    }
    t = t
        .add(
            "/v1/rerank",
            "native",
            post(crate::api::embed::rerank),
            &[("post", "Rerank documents")],
        )
        // llama.cpp-native
        .add(
            "/health",
            "native",
            get(native::health),
            &[("get", "Health (public)")],
        )
        .add(
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
            "/completion",
            "native",
            post(native::completion),
            &[("post", "llama.cpp completion")],
        )
        .add(
            "/tokenize",
            "native",
            post(native::tokenize),
            &[("post", "Tokenize (with_pieces)")],
        )
        .add(
            "/detokenize",
            "native",
            post(native::detokenize),
            &[("post", "Detokenize")],
        )
        .add(
            "/apply-template",
            "native",
            post(native::apply_template),
            &[("post", "Render the chat template")],
        )
        .add(
            "/embedding",
            "native",
            post(crate::api::embed::native_embedding),
            &[("post", "Embeddings (pooling none gives per-token vectors)")],
        )
        .add(
            "/reranking",
            "native",
            post(crate::api::embed::rerank),
            &[("post", "Rerank documents")],
        )
        .add(
            "/rerank",
            "native",
            post(crate::api::embed::rerank),
            &[("post", "Rerank documents")],
        )
        .add(
            "/infill",
            "native",
            post(crate::api::embed::infill),
            &[("post", "Fill in the middle")],
        )
        .add(
            "/props",
            "native",
            get(native::props).post(native::set_props),
            &[
                ("get", "Server and model properties"),
                ("post", "Change default generation settings (admin)"),
            ],
        )
        .add(
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
        .add(
            "/lora-adapters",
            "native",
            get(crate::api::embed::lora_list).post(crate::api::embed::lora_set),
            &[
                ("get", "LoRA adapters of a model"),
                ("post", "Set LoRA scales (admin)"),
            ],
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
        .add(
            "/api/models/vram-estimate",
            "models",
            post(admin::vram_estimate),
            &[("post", "Memory estimate for a model and parameters")],
        )
        .add(
            "/api/models/{*rest}",
            "models",
            get(admin::get)
                .post(admin::post)
                .put(admin::put)
                .delete(admin::delete),
            &[
                (
                    "get",
                    "{id}/details | {id}/config | {id}/template | {id}/capabilities",
                ),
                ("post", "{id}/load | {id}/unload"),
                (
                    "put",
                    "{id}/config | {id}/alias | {id}/favorite | {id}/template | {id}/capabilities",
                ),
                ("delete", "{id}/template"),
            ],
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
            "/api/system/shutdown",
            "system",
            post(system::shutdown),
            &[("post", "Graceful shutdown")],
        )
        .add(
            "/api/deployments/start",
            "deployments",
            post(deployments::start),
            &[("post", "Start a deployment")],
        )
        .add(
            "/api/deployments/list",
            "deployments",
            get(deployments::list),
            &[("get", "List deployments")],
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
            "/api/deployments/{id}/{action}",
            "deployments",
            put(deployments::action),
            &[("put", "stop | restart")],
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
            "/ws/bench",
            "websocket",
            get(ws::bench),
            &[("get", "Benchmark events (WebSocket)")],
        );
    (t.router, t.docs)
}

/// The OpenAPI 3.1 document for the routes.
pub fn openapi(docs: &[Doc]) -> Value {
    let mut paths = Map::new();
    for d in docs {
        let path = d.path.replace("{*rest}", "{rest}");
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
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
