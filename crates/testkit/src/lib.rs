//! Test support shared by every crate's tests (a dev-dependency only).
//!
//! The real test models and the Python reference come from the environment
//! (`scripts/test.sh` sets it). The rule for a missing one is the project's: under
//! `CI=true` the test FAILS — a suite that silently skipped its real-model tests would
//! pass without testing anything — and elsewhere it prints a note and the test returns.

use std::path::PathBuf;

/// SmolLM2-135M-Instruct Q4_1 (llama, ChatML template).
pub const SMOLLM2: &str = "LLAMA_DASHBOARD_TEST_MODEL";
/// Gemma 3 270M Q4_K_M (gemma3, base model, no chat template).
pub const GEMMA3: &str = "LLAMA_DASHBOARD_TEST_MODEL_2";
/// A Python interpreter with the reference packages (`gguf`, SDKs) installed.
pub const PYTHON: &str = "LLAMA_DASHBOARD_PYTHON";

/// The file named by `var`, or `None` (with a note) when it is not set outside CI.
///
/// # Panics
/// Under `CI=true` when `var` is unset, and always when it names a missing file.
pub fn required_file(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var).map(PathBuf::from) {
        Some(p) => {
            assert!(p.exists(), "{var}={} does not exist", p.display());
            Some(p)
        }
        None => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but {var} is not set (scripts/test.sh sets it: run the suite through it)"
            );
            eprintln!("note: {var} not set; skipping this test (scripts/test.sh sets it)");
            None
        }
    }
}

/// The SmolLM2 test model.
pub fn smollm2() -> Option<PathBuf> {
    required_file(SMOLLM2)
}

/// The Gemma 3 test model.
pub fn gemma3() -> Option<PathBuf> {
    required_file(GEMMA3)
}

/// The reference Python.
pub fn python() -> Option<PathBuf> {
    required_file(PYTHON)
}

/// `scripts/py/<name>` in this repository.
pub fn py_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts/py")
        .join(name)
}

/// `tests/clients/<name>`: an official client SDK (openai, anthropic, ollama) driving the
/// binary, run by the Rust tests in the venv `scripts/setup.sh` makes.
pub fn client_check(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/clients")
        .join(name)
}

/// The `llama-dashboard` binary of this build, as `cargo_bin` finds it: a test runs from
/// `target/<profile>/deps/<test>-<hash>`, the binary is `target/<profile>/llama-dashboard`
/// (`cargo nextest run --workspace --all-targets` builds it before the tests). An in-process
/// test server runs its model workers with it.
///
/// # Panics
/// When it is not there.
pub fn dashboard_exe() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe.parent().expect("deps/");
    let dir = if dir.ends_with("deps") {
        dir.parent().expect("target/<profile>")
    } else {
        dir
    };
    let bin = dir.join(format!("llama-dashboard{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is not built: run the tests with `cargo nextest run --workspace --all-targets`",
        bin.display()
    );
    bin
}
