//! One module per API family. Each parses its own wire format into the service's
//! protocol-neutral request and maps the outputs back; shared pieces live in `common`
//! (model choice, keep-alive, timeout, SSE) and `params` (sampling fields).

pub mod admin;
pub mod anthropic;
pub mod bench;
pub mod common;
pub mod deployments;
pub mod downloads;
pub mod embed;
pub mod lmstudio;
pub mod native;
pub mod ollama_chat;
pub mod ollama_models;
pub mod ollama_types;
pub mod openai;
pub mod params;
pub mod prompt;
pub mod responses;
pub mod sessions;
pub mod system;
pub mod tools;
pub mod vertex;
pub mod ws;
