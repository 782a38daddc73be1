//! What a model can do, read from its GGUF file: the one place that knows which metadata
//! means chat, embeddings, rerank, tools, infill or vision.

use crate::entry::ModelEntry;

/// Every capability a model can have (and a user can mark it with).
pub const CAPABILITIES: &[&str] = &[
    "chat",
    "completion",
    "embedding",
    "rerank",
    "vision",
    "tools",
    "infill",
    // Set by the service (the chat templates know which templates think), or by the user.
    "thinking",
];

/// Architectures that only encode (no text generation): embedding models.
const ENCODER_ONLY: &[&str] = &[
    "bert",
    "nomic-bert",
    "nomic-bert-moe",
    "jina-bert-v2",
    "neo-bert",
    "modern-bert",
    "t5encoder",
];

/// llama.cpp's `LLAMA_POOLING_TYPE_RANK`: a classification head, i.e. a reranker.
const POOLING_RANK: u64 = 4;

/// Reads `entry`'s header (values only, arrays skipped) and says what it can do. Blocking.
pub fn capabilities(entry: &ModelEntry) -> Result<Vec<String>, gguf::GgufError> {
    Ok(from_file(&read_header(entry)?, entry.mmproj.is_some()))
}

/// `entry`'s header as capabilities read it: values only, arrays skipped. Blocking.
pub fn read_header(entry: &ModelEntry) -> Result<gguf::GgufFile, gguf::GgufError> {
    gguf::read_path(
        &entry.path,
        &gguf::ReadOptions {
            array_keep_whole: 0,
            array_preview: 0,
        },
    )
}

/// What a model with this header can do; `has_mmproj`: a projector file goes with it.
pub fn from_file(file: &gguf::GgufFile, has_mmproj: bool) -> Vec<String> {
    let arch = file.architecture().unwrap_or("");
    let pooling = file.get_u64(&format!("{arch}.pooling_type"));
    let encoder_only = ENCODER_ONLY.contains(&arch);
    let mut caps: Vec<&str> = Vec::new();
    if pooling == Some(POOLING_RANK) {
        caps.push("rerank");
    } else if encoder_only || pooling.is_some_and(|p| p > 0) {
        caps.push("embedding");
    } else {
        // Any decoder can produce (mean-pooled) embeddings, as llama-server does.
        caps.extend(["completion", "chat", "embedding"]);
        if file.chat_template().unwrap_or("").contains("tools") {
            caps.push("tools");
        }
        let fim = file.get("tokenizer.ggml.fim_pre_token_id").is_some()
            || file.get("tokenizer.ggml.prefix_token_id").is_some();
        if fim {
            caps.push("infill");
        }
    }
    if has_mmproj {
        caps.push("vision");
    }
    caps.into_iter().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gguf::fixtures::LlamaLike;

    fn caps_of(recipe: &LlamaLike, has_mmproj: bool) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        recipe.write_path(&path).unwrap();
        let file = gguf::read_path(&path, &gguf::ReadOptions::default()).unwrap();
        from_file(&file, has_mmproj)
    }

    #[test]
    fn decoders_chat_and_encoders_embed() {
        let mut chat = LlamaLike::new("c", "llama", 15, 4096, 300);
        assert_eq!(caps_of(&chat, false), ["completion", "chat", "embedding"]);
        chat.chat_template = Some("{% if tools %}{{ tools }}{% endif %}".into());
        assert_eq!(
            caps_of(&chat, true),
            ["completion", "chat", "embedding", "tools", "vision"]
        );
        let bert = LlamaLike::new("b", "bert", 1, 512, 300);
        assert_eq!(caps_of(&bert, false), ["embedding"]);
    }
}
