//! Synthetic model files for tests, here and in other crates (not `cfg(test)` on
//! purpose). They have real-shaped headers — `general.*`, `{arch}.*` hyperparameters,
//! a full tokenizer vocabulary with scores and token types, and llama-style tensor
//! infos — and build in about a millisecond per 32k-token file.

use crate::types::GgmlType;
use crate::value::ValueType;
use crate::writer::{GgufWriter, encode_string};
use std::io;
use std::path::Path;

/// Recipe for a llama-like model file. Build one with [`LlamaLike::new`] (or
/// [`llama_like`] for the bytes) and adjust the public fields.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaLike {
    pub name: String,
    pub arch: String,
    /// `general.file_type` (a `llama_ftype`, e.g. 15 = Q4_K_M).
    pub file_type: u32,
    pub context_length: u64,
    pub n_vocab: usize,
    pub n_embd: u64,
    pub n_layer: u64,
    pub n_ff: u64,
    pub n_head: u64,
    pub n_head_kv: u64,
    pub chat_template: Option<String>,
    /// Write zero-filled tensor data. Off by default: the file is then header-only
    /// (small, fast, and reported by [`crate::GgufFile::data_truncated`]).
    pub with_tensor_data: bool,
    pub version: u32,
}

/// The default fixture's chat template (a ChatML-style Jinja snippet).
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

impl LlamaLike {
    pub fn new(
        name: &str,
        arch: &str,
        file_type: u32,
        context_length: u64,
        n_vocab: usize,
    ) -> Self {
        LlamaLike {
            name: name.to_string(),
            arch: arch.to_string(),
            file_type,
            context_length,
            n_vocab,
            n_embd: 256,
            n_layer: 2,
            n_ff: 512,
            n_head: 4,
            n_head_kv: 2,
            chat_template: Some(CHATML_TEMPLATE.to_string()),
            with_tensor_data: false,
            version: 3,
        }
    }

    /// Parameters the tensor infos add up to.
    pub fn parameter_count(&self) -> u64 {
        self.tensor_shapes()
            .iter()
            .map(|(_, dims, _)| dims.iter().product::<u64>())
            .sum()
    }

    fn tensor_shapes(&self) -> Vec<(String, Vec<u64>, GgmlType)> {
        let weight = weight_type(self.file_type);
        let e = self.n_embd;
        let kv = self.n_embd / self.n_head.max(1) * self.n_head_kv;
        let v = self.n_vocab as u64;
        let mut t = vec![("token_embd.weight".to_string(), vec![e, v], weight)];
        for i in 0..self.n_layer {
            let b = |s: &str| format!("blk.{i}.{s}");
            t.push((b("attn_norm.weight"), vec![e], GgmlType::F32));
            t.push((b("attn_q.weight"), vec![e, e], weight));
            t.push((b("attn_k.weight"), vec![e, kv], weight));
            t.push((b("attn_v.weight"), vec![e, kv], weight));
            t.push((b("attn_output.weight"), vec![e, e], weight));
            t.push((b("ffn_norm.weight"), vec![e], GgmlType::F32));
            t.push((b("ffn_gate.weight"), vec![e, self.n_ff], weight));
            t.push((b("ffn_up.weight"), vec![e, self.n_ff], weight));
            t.push((b("ffn_down.weight"), vec![self.n_ff, e], weight));
        }
        t.push(("output_norm.weight".to_string(), vec![e], GgmlType::F32));
        t
    }

    /// A writer holding this model, to add more entries before writing.
    pub fn writer(&self) -> GgufWriter {
        let a = &self.arch;
        let mut w = GgufWriter::with_version(self.version);
        // Key order follows convert_hf_to_gguf.py: general, hparams, file type,
        // tokenizer, and quantization_version last.
        w.kv("general.architecture", a.as_str())
            .kv("general.type", "model")
            .kv("general.name", self.name.as_str())
            .kv(&format!("{a}.context_length"), self.context_length as u32)
            .kv(&format!("{a}.embedding_length"), self.n_embd as u32)
            .kv(&format!("{a}.block_count"), self.n_layer as u32)
            .kv(&format!("{a}.feed_forward_length"), self.n_ff as u32)
            .kv(&format!("{a}.attention.head_count"), self.n_head as u32)
            .kv(
                &format!("{a}.attention.head_count_kv"),
                self.n_head_kv as u32,
            )
            .kv(&format!("{a}.rope.freq_base"), 10000.0f32)
            .kv(&format!("{a}.attention.layer_norm_rms_epsilon"), 1e-5f32)
            .kv("general.file_type", self.file_type)
            .kv("tokenizer.ggml.model", "llama");
        w.kv_raw(self.tokens_entry());
        w.kv_raw(self.scores_entry());
        w.kv_raw(self.token_type_entry());
        w.kv("tokenizer.ggml.bos_token_id", 1u32)
            .kv("tokenizer.ggml.eos_token_id", 2u32);
        if let Some(t) = &self.chat_template {
            w.kv("tokenizer.chat_template", t.as_str());
        }
        w.kv("general.quantization_version", 2u32);
        for (name, dims, ty) in self.tensor_shapes() {
            w.tensor_zeros(&name, &dims, ty);
        }
        w.header_only(!self.with_tensor_data);
        w
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.writer().to_bytes()
    }

    pub fn write_path(&self, path: &Path) -> io::Result<u64> {
        self.writer().write_path(path)
    }

    // The vocabulary arrays are encoded straight to bytes: building 32k `Value`s
    // per file would make a 1000-file catalog fixture needlessly slow.
    fn array_entry(key: &str, elem: ValueType, n: usize, per_item: usize) -> Vec<u8> {
        let mut buf = Vec::with_capacity(key.len() + 24 + n * per_item);
        encode_string(&mut buf, key.as_bytes());
        buf.extend_from_slice(&ValueType::Array.raw().to_le_bytes());
        buf.extend_from_slice(&elem.raw().to_le_bytes());
        buf.extend_from_slice(&(n as u64).to_le_bytes());
        buf
    }

    fn tokens_entry(&self) -> Vec<u8> {
        let mut buf =
            Self::array_entry("tokenizer.ggml.tokens", ValueType::String, self.n_vocab, 16);
        for i in 0..self.n_vocab {
            encode_string(&mut buf, token_text(i).as_bytes());
        }
        buf
    }

    fn scores_entry(&self) -> Vec<u8> {
        let mut buf = Self::array_entry("tokenizer.ggml.scores", ValueType::F32, self.n_vocab, 4);
        for i in 0..self.n_vocab {
            buf.extend_from_slice(&(-(i as f32)).to_le_bytes());
        }
        buf
    }

    fn token_type_entry(&self) -> Vec<u8> {
        let mut buf =
            Self::array_entry("tokenizer.ggml.token_type", ValueType::I32, self.n_vocab, 4);
        for i in 0..self.n_vocab {
            buf.extend_from_slice(&token_type(i).to_le_bytes());
        }
        buf
    }
}

/// Token `i` of the fixture vocabulary: SentencePiece-style specials, 256 byte
/// tokens, then plain pieces.
pub fn token_text(i: usize) -> String {
    match i {
        0 => "<unk>".to_string(),
        1 => "<s>".to_string(),
        2 => "</s>".to_string(),
        3..=258 => format!("<0x{:02X}>", i - 3),
        _ => format!("▁tok{i}"),
    }
}

fn token_type(i: usize) -> i32 {
    match i {
        0 => 2,       // unknown
        1 | 2 => 3,   // control
        3..=258 => 6, // byte
        _ => 1,       // normal
    }
}

/// The ggml type that most weights of a model with this `llama_ftype` have.
pub fn weight_type(file_type: u32) -> GgmlType {
    use GgmlType::*;
    match file_type {
        0 => F32,
        1 => F16,
        2 => Q4_0,
        3 | 4 => Q4_1,
        7 => Q8_0,
        8 => Q5_0,
        9 => Q5_1,
        10 | 21 => Q2_K,
        11..=13 => Q3_K,
        14 | 15 => Q4_K,
        16 | 17 => Q5_K,
        18 => Q6_K,
        19 => IQ2_XXS,
        20 => IQ2_XS,
        22 | 23 => IQ3_XXS,
        24 => IQ1_S,
        25 => IQ4_NL,
        26 | 27 => IQ3_S,
        28 | 29 => IQ2_S,
        30 => IQ4_XS,
        31 => IQ1_M,
        32 => BF16,
        36 => TQ1_0,
        37 => TQ2_0,
        38 => MXFP4,
        39 => NVFP4,
        40 => Q1_0,
        41 => Q2_0,
        _ => F16,
    }
}

/// Bytes of a llama-like, header-only model file with a real-sized vocabulary.
pub fn llama_like(
    name: &str,
    arch: &str,
    file_type: u32,
    context_length: u64,
    n_vocab: usize,
) -> Vec<u8> {
    LlamaLike::new(name, arch, file_type, context_length, n_vocab).to_bytes()
}

/// A small but complete model (tensor data included), about 40 KiB.
pub fn tiny() -> Vec<u8> {
    let mut m = LlamaLike::new("Tiny", "llama", 1, 2048, 300);
    m.n_embd = 32;
    m.n_ff = 64;
    m.n_layer = 1;
    m.with_tensor_data = true;
    m.to_bytes()
}
