//! Text-level chat logic used by the service layer and the HTTP API.
//!
//! - [`ChatMessage`], [`Tool`], [`ToolCall`]: conversations in OpenAI's wire shape;
//!   [`Roles`]: which message roles each protocol accepts.
//! - [`ChatTemplate`]: renders a conversation into a prompt with the model's
//!   HF Jinja template, the way Python Jinja2 would.
//! - [`builtin`]: templates for models that ship none, and [`select`] to pick
//!   between a custom, the model's and a built-in template.
//! - [`named`]: llama.cpp's built-in template names (`--chat-template llama3`).
//! - [`parse_tool_calls`] / [`ToolCallStream`]: tool calls out of generated
//!   text, whole or streamed.
//! - [`ThinkingTags`] / [`ReasoningSplitter`]: a thinking model's reasoning apart
//!   from its answer, whole or streamed.
//!
//! Nothing here touches llama.cpp: inputs and outputs are text. Stop strings and token
//! bytes → text live with the token loop, in `engine::stop`.

pub mod builtin;
mod error;
mod message;
pub mod named;
mod reasoning;
mod roles;
mod template;
mod tools;

pub use builtin::{
    Family, SelectedTemplate, TemplateOrigin, detect_family, family_in_text, select, select_with,
};
pub use error::TemplateError;
pub use message::{ChatMessage, ContentPart, ImageUrl, MessageContent, Tool, ToolCall};
pub use reasoning::{
    ReasoningFormat, ReasoningSplitter, SplitPiece, ThinkingTags, split_reasoning, template_thinks,
};
pub use roles::Roles;
pub use template::{ChatTemplate, ContentCaps, RenderContext, strftime};
pub use tools::{
    ParsedMessage, StreamEvent, ToolCallFormat, ToolCallStream, collect_events, detect_format,
    parse_tool_calls,
};
