//! Shared helpers: the test models (from the environment; under CI=true a missing model
//! fails the test, elsewhere it is a note and the test returns), loading, prompts.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use engine::{
    Completion, ContextParams, EngineError, Event, EventStream, GenerateRequest, ModelHandle,
    ModelHost, ModelParams, Prompt, SamplingParams,
};

/// The test model named by `var` (see `testkit::required_file` for the CI rule).
pub fn model_path(var: &str) -> Option<PathBuf> {
    testkit::required_file(var)
}

pub fn smollm() -> Option<PathBuf> {
    model_path("LLAMA_DASHBOARD_TEST_MODEL")
}

pub fn gemma() -> Option<PathBuf> {
    model_path("LLAMA_DASHBOARD_TEST_MODEL_2")
}

/// Test contexts use one thread: several hosts run at once in this binary, and OpenMP
/// threads spinning at barriers on an oversubscribed machine can slow llama.cpp down
/// a hundredfold (measured here: 0.7 tok/s with 2 threads vs 65 with 1 under load).
pub fn ctx(ctx_per_slot: u32, parallel: u32) -> ContextParams {
    ContextParams {
        ctx_per_slot,
        parallel,
        threads: Some(1),
        n_batch: 512,
        ..Default::default()
    }
}

/// Load SmolLM2 with its own host (for tests that count or own slots).
pub fn load_smollm(c: ContextParams) -> Option<ModelHandle> {
    let path = smollm()?;
    Some(ModelHost::load(ModelParams::new(path), c, |_| {}).expect("load SmolLM2"))
}

/// One SmolLM2 host shared by the tests that only need answers.
pub fn shared() -> Option<&'static ModelHandle> {
    static H: OnceLock<Option<ModelHandle>> = OnceLock::new();
    H.get_or_init(|| load_smollm(ctx(1024, 4))).as_ref()
}

pub fn chatml(user: &str) -> String {
    format!("<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")
}

pub const FRANCE: &str = "What is the capital of France?";

pub fn greedy(prompt: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        max_tokens: Some(max_tokens),
        sampling: SamplingParams::greedy(),
        ..GenerateRequest::new(Prompt::text(prompt))
    }
}

pub async fn run(h: &ModelHandle, req: GenerateRequest) -> Result<Completion, EngineError> {
    let stream = h.generate(req).await?;
    tokio::time::timeout(Duration::from_secs(300), stream.collect())
        .await
        .expect("generation timed out")
}

pub async fn next(s: &mut EventStream) -> Event {
    tokio::time::timeout(Duration::from_secs(120), s.recv())
        .await
        .expect("no event in time")
        .expect("stream ended")
}

/// Copy a GGUF model to `dst` with extra metadata entries (e.g. special token ids), keeping
/// its tensors byte for byte: the header is rewritten, the data section copied as is.
pub fn copy_with_metadata(
    src: &std::path::Path,
    dst: &std::path::Path,
    extra: &[(&str, gguf::Value)],
) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let file = gguf::read_path(src, &gguf::ReadOptions::keep_all()).expect("read the model");
    let mut w = gguf::writer::GgufWriter::with_version(file.version);
    for (k, v) in &file.kv {
        if k == "general.alignment" {
            continue;
        }
        w.kv(k, v.clone());
    }
    if file.get("general.alignment").is_some() {
        w.alignment(u32::try_from(file.alignment).unwrap());
    }
    for (k, v) in extra {
        w.kv(k, v.clone());
    }
    for t in &file.tensors {
        w.tensor_info_raw(&t.name, &t.dims, t.ggml_type.raw(), t.offset);
    }
    w.header_only(true);
    let mut out = std::io::BufWriter::new(std::fs::File::create(dst)?);
    out.write_all(&w.header_bytes())?;
    let mut input = std::fs::File::open(src)?;
    input.seek(SeekFrom::Start(file.data_offset))?;
    let mut data = Vec::new();
    input.read_to_end(&mut data)?;
    out.write_all(&data)?;
    out.flush()
}
