//! The `llama-dashboard` binary end to end: real processes, real files, a private HOME,
//! config and data folders per test.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

/// A sandbox: its own HOME (so the real ~/.ollama or HF cache never leak in), config and
/// data folders.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(env.home()).unwrap();
        env
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }
    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("llama-dashboard").unwrap();
        c.env_clear()
            .env("HOME", self.home())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .arg("--config-dir")
            .arg(self.config_dir())
            .arg("--data-dir")
            .arg(self.data_dir());
        c
    }
    fn json(&self, args: &[&str]) -> Json {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?} printed no JSON: {e}"))
    }
}

fn fixture(path: &Path, name: &str, file_type: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    gguf::fixtures::LlamaLike::new(name, "llama", file_type, 4096, 300)
        .write_path(path)
        .unwrap();
}

/// `--help` prints the help even though no command means `serve` (tests/serve.rs).
#[test]
fn help_flag_prints_help_and_succeeds() {
    Env::new()
        .cmd()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Usage: llama-dashboard"));
}

#[test]
fn every_command_has_help() {
    let env = Env::new();
    for args in [
        vec!["models", "--help"],
        vec!["models", "list", "--help"],
        vec!["models", "scan", "--help"],
        vec!["models", "info", "--help"],
        vec!["models", "alias", "--help"],
        vec!["list", "--help"],
        vec!["rm", "--help"],
        vec!["remove", "--help"],
        vec!["config", "--help"],
        vec!["config", "show", "--help"],
        vec!["config", "set", "--help"],
        vec!["sessions", "--help"],
        vec!["sessions", "list", "--help"],
        vec!["sessions", "show", "--help"],
        vec!["sessions", "export", "--help"],
        vec!["sessions", "rm", "--help"],
    ] {
        env.cmd()
            .args(&args)
            .assert()
            .success()
            .stdout(predicate::str::contains("Usage:"));
    }
    for args in [
        ["models", "list"],
        ["models", "scan"],
        ["models", "info"],
        ["config", "show"],
    ] {
        env.cmd()
            .args(args)
            .arg("--help")
            .assert()
            .stdout(predicate::str::contains("--json"));
    }
}

#[test]
fn config_set_validates_persists_and_env_overrides() {
    let env = Env::new();
    env.cmd()
        .args(["config", "set", "server.port", "9000"])
        .assert()
        .success();
    let file = std::fs::read_to_string(env.config_dir().join("config.toml")).unwrap();
    assert!(file.contains("9000"), "{file}");
    assert_eq!(
        env.json(&["config", "show", "--json"])["config"]["server"]["port"],
        9000
    );

    // The environment beats the file, for display, without being written to it.
    let out = env
        .cmd()
        .env("LLAMA_DASHBOARD_SERVER_PORT", "9100")
        .args(["config", "show", "--json"])
        .output()
        .unwrap();
    let shown: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["config"]["server"]["port"], 9100);

    // Bad values and unknown keys are refused with the key named, and nothing is written.
    env.cmd()
        .args(["config", "set", "server.port", "70000"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("server.port"));
    env.cmd()
        .args(["config", "set", "server.prot", "1"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("server.prot"));
    assert_eq!(
        std::fs::read_to_string(env.config_dir().join("config.toml")).unwrap(),
        file
    );

    // A bad environment value is an error naming the variable.
    env.cmd()
        .env("LLAMA_DASHBOARD_SERVER_PORT", "lots")
        .args(["config", "show"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("LLAMA_DASHBOARD_SERVER_PORT"));
}

#[test]
fn config_show_masks_secrets_unless_asked() {
    let env = Env::new();
    env.cmd()
        .args(["config", "set", "server.api_key", "file-secret"])
        .assert()
        .success()
        .stdout(predicate::str::contains("file-secret").not());
    let shown = env.json(&["config", "show", "--json"]);
    assert_eq!(shown["config"]["server"]["api_key"], "********");
    let shown = env.json(&["config", "show", "--json", "--show-secrets"]);
    assert_eq!(shown["config"]["server"]["api_key"], "file-secret");

    // The short variable is a setting too: masked, and not called ignored.
    let out = env
        .cmd()
        .env("LLAMA_DASHBOARD_ADMIN_API_KEY", "env-secret")
        .env("LLAMA_DASHBOARD_LOG", "warn")
        .args(["config", "show"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("admin_api_key = \"********\""), "{stdout}");
    assert!(!stdout.contains("secret"), "{stdout}");
    assert!(!stderr.contains("ignored"), "{stderr}");
    env.cmd()
        .env("LLAMA_DASHBOARD_ADMIN_API_KEY", "env-secret")
        .args(["config", "show", "--show-secrets"])
        .assert()
        .success()
        .stdout(predicate::str::contains("admin_api_key = \"env-secret\""));
}

#[test]
fn config_set_keeps_comments_and_names_the_key_meant() {
    let env = Env::new();
    std::fs::create_dir_all(env.config_dir()).unwrap();
    let file = env.config_dir().join("config.toml");
    std::fs::write(&file, "# my server\n[server]\nhost = \"::1\" # v6 only\n").unwrap();
    env.cmd()
        .args(["config", "set", "server.port", "9123"])
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "# my server\n[server]\nhost = \"::1\" # v6 only\nport = 9123\n"
    );
    env.cmd()
        .args(["config", "set", "port", "9124"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "unknown key `port`; did you mean `server.port`?",
        ));
}

#[test]
fn corrupt_config_file_starts_with_defaults_and_warns() {
    let env = Env::new();
    std::fs::create_dir_all(env.config_dir()).unwrap();
    std::fs::write(
        env.config_dir().join("config.toml"),
        b"[server\nport = \xff\xfe",
    )
    .unwrap();
    env.cmd()
        .args(["config", "show", "--json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"port\": 8080"))
        .stderr(predicate::str::contains("config.toml"));
    // `config set` refuses to replace a file it cannot read.
    env.cmd()
        .args(["config", "set", "server.port", "9000"])
        .assert()
        .failure();
}

#[test]
fn models_list_and_scan_show_models_and_skipped_files() {
    let env = Env::new();
    let models = env.dir.path().join("models");
    fixture(&models.join("a/alpha-Q4_K_M.gguf"), "Alpha", 15);
    for i in 1..=2 {
        fixture(
            &models.join(format!("b/beta-Q8_0-0000{i}-of-00003.gguf")),
            "Beta",
            7,
        );
    }
    std::fs::write(models.join("broken.gguf"), b"GGUF\x03\x00\x00\x00").unwrap();
    env.cmd()
        .args(["config", "set", "models.dirs"])
        .arg(&models)
        .assert()
        .success();

    let listed = env.json(&["models", "list", "--json"]);
    let ids: Vec<&str> = listed["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["alpha-Q4_K_M", "beta-Q8_0"]);
    assert_eq!(listed["models"][0]["quantization"], "Q4_K_M");
    assert_eq!(listed["models"][1]["missing_parts"], serde_json::json!([3]));
    assert_eq!(listed["skipped"], 1);

    env.cmd()
        .args(["models", "list"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("alpha-Q4_K_M")
                .and(predicate::str::contains("missing part 3")),
        );

    let scanned = env.json(&["models", "scan", models.to_str().unwrap(), "--json"]);
    let skipped = scanned["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert!(
        skipped[0]["path"]
            .as_str()
            .unwrap()
            .ends_with("broken.gguf")
    );
    assert!(
        skipped[0]["reason"].as_str().unwrap().contains("truncated"),
        "{skipped:?}"
    );
    env.cmd()
        .args(["models", "scan"])
        .arg(&models)
        .assert()
        .success()
        .stdout(predicate::str::contains("broken.gguf").and(predicate::str::contains("truncated")));
    env.cmd()
        .args(["models", "scan", "/definitely/not/here"])
        .assert()
        .failure();
}

#[test]
fn aliases_persist_and_resolve() {
    let env = Env::new();
    let models = env.dir.path().join("models");
    fixture(&models.join("long-model-name-Q4_0.gguf"), "Long", 2);
    env.cmd()
        .args(["config", "set", "models.dirs"])
        .arg(&models)
        .assert()
        .success();
    env.cmd()
        .args(["models", "alias", "long-model-name-Q4_0", "short"])
        .assert()
        .success();
    let listed = env.json(&["models", "list", "--json"]);
    assert_eq!(listed["models"][0]["alias"], "short");
    let info = env.json(&["models", "info", "short", "--json"]);
    assert_eq!(info["summary"]["id"], "long-model-name-Q4_0");
    env.cmd()
        .args(["models", "info", "nope"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no model named"));
    env.cmd()
        .args(["models", "alias", "long-model-name-Q4_0"])
        .assert()
        .success();
    assert_eq!(
        env.json(&["models", "list", "--json"])["models"][0]["alias"],
        Json::Null
    );
}

#[test]
fn a_database_that_is_not_sqlite_is_named_in_the_error() {
    let env = Env::new();
    let models = env.dir.path().join("models");
    fixture(&models.join("m.gguf"), "M", 2);
    env.cmd()
        .args(["config", "set", "models.dirs"])
        .arg(&models)
        .assert()
        .success();
    std::fs::create_dir_all(env.data_dir()).unwrap();
    std::fs::write(
        env.data_dir().join("dashboard.db"),
        b"not a database, just text",
    )
    .unwrap();
    env.cmd()
        .args(["models", "alias", "m", "x"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("dashboard.db"));
    // Listing still works; only the aliases are missing, with a warning.
    env.cmd()
        .args(["models", "list"])
        .assert()
        .success()
        .stderr(predicate::str::contains("dashboard.db"));
}

#[test]
fn finds_models_in_ollama_and_hugging_face_stores_under_home() {
    let env = Env::new();
    let home = env.home();
    // Hugging Face cache.
    let snap = home.join(".cache/huggingface/hub/models--org--Repo-GGUF/snapshots/abc");
    fixture(&snap.join("Repo-Q4_K_M.gguf"), "Repo", 15);
    // Ollama store.
    let ollama = home.join(".ollama/models");
    fixture(&ollama.join("blobs/sha256-1234"), "Olla", 2);
    let manifest = ollama.join("manifests/registry.ollama.ai/library/olla/latest");
    std::fs::create_dir_all(manifest.parent().unwrap()).unwrap();
    std::fs::write(
        &manifest,
        r#"{"schemaVersion":2,"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:1234","size":1}]}"#,
    )
    .unwrap();
    let listed = env.json(&["models", "list", "--json"]);
    let rows: Vec<(String, String)> = listed["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["source"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        rows.contains(&("olla:latest".into(), "ollama".into())),
        "{rows:?}"
    );
    assert!(
        rows.contains(&("org/Repo-GGUF/Repo-Q4_K_M".into(), "huggingface".into())),
        "{rows:?}"
    );

    // Each source can be switched off.
    env.cmd()
        .args(["config", "set", "sources.ollama", "false"])
        .assert()
        .success();
    let listed = env.json(&["models", "list", "--json"]);
    assert!(
        listed["models"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["source"] != "ollama")
    );
}

/// The real Gemma test model through `models info`: the facts the issue names, and every key
/// matching what the `gguf` Python package reads.
#[test]
fn models_info_on_gemma_matches_the_gguf_package() {
    let (Some(model), Some(python)) = (testkit::gemma3(), testkit::python()) else {
        return;
    };
    let env = Env::new();
    let info = env.json(&["models", "info", model.to_str().unwrap(), "--json"]);
    let s = &info["summary"];
    assert_eq!(s["architecture"], "gemma3");
    assert_eq!(s["quantization"], "Q4_K_M");
    assert_eq!(s["context_length"], 32768);
    assert_eq!(
        s["chat_template"],
        Json::Null,
        "the Gemma test model carries no chat template"
    );
    let params = s["parameters"].as_u64().unwrap();
    assert!(
        (265_000_000..271_000_000).contains(&params),
        "≈268M parameters, got {params}"
    );
    env.cmd()
        .args(["models", "info"])
        .arg(&model)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("none (the file carries no chat template)")
                .and(predicate::str::contains("268.1M")),
        );

    let script = testkit::py_script("gguf_dump.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let py: Json = serde_json::from_slice(&out.stdout).unwrap();
    let py_kv = py["kv"].as_array().unwrap();
    let ours = info["gguf"]["kv"]
        .as_object()
        .expect("models info --json has gguf.kv");
    let mut py_keys: Vec<&str> = py_kv.iter().map(|k| k["key"].as_str().unwrap()).collect();
    let mut our_keys: Vec<&str> = ours.keys().map(String::as_str).collect();
    py_keys.sort_unstable();
    our_keys.sort_unstable();
    assert_eq!(our_keys, py_keys, "models info lists the same keys");
    for k in py_kv {
        let (key, value) = (k["key"].as_str().unwrap(), &k["value"]);
        match value.get("len") {
            // Big arrays: the printout carries the length and a preview of the first items.
            Some(len) => match ours[key].as_array() {
                // Short arrays are printed whole.
                Some(all) => assert_eq!(all, value["items"].as_array().unwrap(), "{key}"),
                None => {
                    assert_eq!(&ours[key]["len"], len, "{key} length");
                    let preview = ours[key]["preview"].as_array().unwrap();
                    assert_eq!(
                        preview[..],
                        value["items"].as_array().unwrap()[..preview.len()],
                        "{key} items"
                    );
                }
            },
            // float32 values print in their shortest form (1e-6); Python widens to f64 first.
            None if k["type"] == "float32" => {
                assert_eq!(
                    ours[key].as_f64().map(|v| v as f32),
                    value.as_f64().map(|v| v as f32),
                    "{key}"
                )
            }
            None => assert_eq!(&ours[key], value, "{key}"),
        }
    }
    assert_eq!(
        info["gguf"]["tensors"].as_array().unwrap().len(),
        py["tensors"].as_array().unwrap().len()
    );
}

/// `bench` on the real test model: llama-bench's tests, figures stored and listed again.
#[test]
fn bench_measures_and_keeps_history() {
    let Some(model) = testkit::smollm2() else {
        return;
    };
    let env = Env::new();
    let out = env.json(&[
        "bench",
        model.to_str().unwrap(),
        "-p",
        "32",
        "-n",
        "8",
        "-r",
        "2",
        "-t",
        "2",
        "--json",
    ]);
    let results = out["results"].as_array().unwrap();
    let tests: Vec<&str> = results
        .iter()
        .map(|r| r["test"].as_str().unwrap())
        .collect();
    assert_eq!(tests, vec!["pp32", "tg8"]);
    for r in results {
        assert!(r["avg_ts"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(r["samples_ts"].as_array().unwrap().len(), 2);
    }
    let history = env.json(&["bench", "--history", "--json"]);
    assert_eq!(history.as_array().unwrap().len(), 1);
    assert_eq!(history[0]["model"], "SmolLM2-135M-Instruct.Q4_1");
    env.cmd()
        .args(["bench", "--history"])
        .assert()
        .success()
        .stdout(predicate::str::contains("pp32"));
    // Bad parameters are refused before anything loads.
    env.cmd()
        .args(["bench"])
        .arg(&model)
        .args(["-p", "0", "-n", "0"])
        .assert()
        .failure();
    env.cmd()
        .args(["bench", "no-such-model"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no model named"));
}

/// `run` with a prompt answers once and exits; piped input is read as the prompt.
#[test]
fn run_answers_a_prompt_and_exits() {
    let Some(model) = testkit::smollm2() else {
        return;
    };
    let env = Env::new();
    let question = "What is the capital of France? Answer in one sentence.";
    for piped in [false, true] {
        let mut cmd = env.cmd();
        cmd.arg("run")
            .arg(&model)
            .args(["--temp", "0", "-n", "48", "-t", "1"]);
        if piped {
            cmd.write_stdin(format!("{question}\n"));
        } else {
            cmd.arg(question);
        }
        cmd.assert()
            .success()
            .stdout(predicate::str::contains("Paris"));
    }
}

/// `run --session new` starts a stored chat session, `run --session ID` continues it with
/// the earlier turns in the prompt, and `sessions list|show|export|rm` read and remove it.
#[test]
fn run_keeps_a_stored_session_and_sessions_manages_it() {
    let Some(model) = testkit::smollm2() else {
        return;
    };
    let env = Env::new();
    let run = |session: &str, prompt: &str| {
        let out = env
            .cmd()
            .arg("run")
            .arg(&model)
            .args(["--temp", "0", "-n", "24", "-t", "1", "--session", session, prompt])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let stderr = run("new", "My name is Ada. Say hello.");
    let id = stderr
        .lines()
        .find_map(|l| l.strip_prefix("session "))
        .unwrap_or_else(|| panic!("no session id in {stderr}"))
        .to_string();
    let list = env.json(&["sessions", "list", "--json"]);
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["sessions"][0]["id"], id.as_str());
    // Continuing prints the earlier turns and adds two messages.
    let stderr = run(&id, "What is my name?");
    assert!(stderr.contains("[user] My name is Ada."), "{stderr}");
    let shown = env.json(&["sessions", "show", &id, "--json"]);
    let msgs = shown["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 4, "{shown}");
    assert_eq!(msgs[2]["content"], "What is my name?");
    assert_eq!(msgs[3]["model"], "SmolLM2-135M-Instruct.Q4_1");
    let md = env
        .cmd()
        .args(["sessions", "export", &id, "--format", "markdown"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&md.stdout).contains("## User\n\nWhat is my name?"));
    env.cmd().args(["sessions", "rm", &id]).assert().success();
    env.cmd()
        .args(["sessions", "show", &id])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not found"));
}

/// A model without a chat template gets the built-in one of its family.
#[test]
fn run_uses_the_builtin_template_for_a_model_without_one() {
    let Some(model) = testkit::gemma3() else {
        return;
    };
    let env = Env::new();
    let out = env
        .cmd()
        .arg("-v")
        .arg("run")
        .arg(&model)
        .args(["Hello", "--temp", "0", "-n", "8", "-t", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("builtin:gemma"), "{stderr}");
}

/// `run` loads by the same rules as the server (flags > env > file > stored per model >
/// defaults): `[models]` from the environment reaches it, so a 64-token context refuses a
/// longer prompt instead of loading 4096; the model's stored launch parameters apply below
/// the environment, and a flag beats both.
#[test]
fn run_loads_with_the_config_and_the_stored_launch_parameters() {
    let Some(model) = testkit::smollm2() else {
        return;
    };
    let env = Env::new();
    let prompt = "Tell me about the sea and the sky and the birds. ".repeat(12);
    let run = |envs: &[(&str, &str)], flags: &[&str]| {
        let mut cmd = env.cmd();
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.arg("run")
            .arg(&model)
            .arg(&prompt)
            .args(["--temp", "0", "-n", "2", "-t", "1"])
            .args(flags)
            .output()
            .unwrap()
    };
    let too_long = |out: &std::process::Output, n_ctx: u32| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "exceeds the available context size ({n_ctx} tokens)"
            )),
            "{stderr}"
        );
    };
    let ctx = ("LLAMA_DASHBOARD_MODELS_CTX_SIZE", "64");
    too_long(&run(&[ctx], &[]), 64);
    // A flag beats the environment.
    let out = run(&[ctx], &["-c", "1024"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Stored launch parameters (as the dashboard stores them) apply without env or flag...
    let id = env.json(&["models", "info", model.to_str().unwrap(), "--json"])["summary"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let paths = config::Paths::resolve(Some(env.config_dir()), Some(env.data_dir())).unwrap();
    let store = store::Store::open(&paths.database()).unwrap();
    let params: serde_json::Map<String, Json> =
        serde_json::from_str(r#"{"ctx_size": 48}"#).unwrap();
    store.set_launch_params(&id, &params).unwrap();
    drop(store);
    too_long(&run(&[], &[]), 48);
    // ...and below the environment.
    too_long(&run(&[ctx], &[]), 64);
}

/// `llama-dashboard models info X | head -c1`: the reader is gone before the command writes;
/// the command ends the way C tools do (SIGPIPE, no output on stderr), never with a panic.
#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let env = Env::new();
    let models = env.dir.path().join("models");
    fixture(&models.join("alpha-Q4_K_M.gguf"), "Alpha", 15);
    env.cmd()
        .args(["config", "set", "models.dirs"])
        .arg(&models)
        .assert()
        .success();
    for args in [
        vec!["models", "info", "alpha-Q4_K_M"],
        vec!["models", "info", "alpha-Q4_K_M", "--json"],
        vec!["models", "list"],
        vec!["config", "show"],
    ] {
        // A pipe whose reading end is closed before the command starts: its first write
        // fails, whatever the output's size (no race with a reader).
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_llama-dashboard"));
        cmd.env_clear()
            .env("HOME", env.home())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_BACKTRACE", "1")
            .arg("--config-dir")
            .arg(env.config_dir())
            .arg("--data-dir")
            .arg(env.data_dir())
            .args(&args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped());
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?} wrote to stderr: {stderr}");
        assert_eq!(
            out.status.signal(),
            Some(13),
            "{args:?} should end by SIGPIPE, as `head` readers expect: {:?}",
            out.status
        );
    }
}

/// A model file with its tensor data (a header-only fixture is an incomplete file).
fn complete_fixture(path: &Path, name: &str) -> u64 {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut m = gguf::fixtures::LlamaLike::new(name, "llama", 2, 4096, 300);
    m.n_embd = 32;
    m.n_ff = 64;
    m.with_tensor_data = true;
    m.write_path(path).unwrap()
}

#[test]
fn list_is_models_list_and_files_cut_short_are_shown_incomplete_and_refused() {
    let env = Env::new();
    let models = env.data_dir().join("models");
    complete_fixture(&models.join("whole.gguf"), "Whole");
    let cut = models.join("cut.gguf");
    let expected = complete_fixture(&cut, "Cut");
    let header = gguf::scan_path(&cut).unwrap().data_offset;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&cut)
        .unwrap()
        .set_len(header)
        .unwrap();

    let listed = env.json(&["list", "--json"]);
    assert_eq!(listed, env.json(&["models", "list", "--json"]));
    let by_id = |id: &str| {
        listed["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_id("whole")["incomplete"], Json::Null);
    assert_eq!(by_id("cut")["incomplete"]["expected_size"], expected);
    assert_eq!(by_id("cut")["incomplete"]["actual_size"], header);
    env.cmd().arg("list").assert().success().stdout(
        predicate::str::contains("cut [incomplete:").and(predicate::str::contains("whole")),
    );

    // `models info` still shows the header, and says what is wrong.
    let info = env.json(&["models", "info", "cut", "--json"]);
    assert_eq!(info["summary"]["incomplete"]["expected_size"], expected);
    env.cmd()
        .args(["models", "info", "cut"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("Incomplete").and(predicate::str::contains(format!(
                "{header} of the {expected} bytes"
            ))),
        );
    // A command that would load it refuses before llama.cpp sees it.
    env.cmd()
        .args(["run", "cut", "hello"])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("incomplete").and(predicate::str::contains(format!(
                "{header} of the {expected} bytes"
            ))),
        );
}

/// An Ollama manifest naming `layers` (media type suffix, digest hex).
fn ollama_manifest(store: &Path, model: &str, layers: &[(&str, &str)]) -> PathBuf {
    let path = store.join(format!(
        "manifests/registry.ollama.ai/library/{model}/latest"
    ));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let layers: Vec<Json> = layers
        .iter()
        .map(|(kind, hex)| {
            serde_json::json!({"mediaType": format!("application/vnd.ollama.image.{kind}"),
                "digest": format!("sha256:{hex}"), "size": 1})
        })
        .collect();
    let m = serde_json::json!({"schemaVersion": 2,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:c0", "size": 1},
        "layers": layers});
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    path
}

#[cfg(unix)]
#[test]
fn rm_deletes_our_models_and_other_apps_only_when_forced() {
    let env = Env::new();
    let ours = env.data_dir().join("models/mine.gguf");
    complete_fixture(&ours, "Mine");
    // Ollama's store: two models sharing the weights blob.
    let ollama = env.home().join(".ollama/models");
    complete_fixture(&ollama.join("blobs/sha256-aa"), "Shared");
    for hex in ["c0", "t1", "t2"] {
        std::fs::write(ollama.join(format!("blobs/sha256-{hex}")), "{}").unwrap();
    }
    let one = ollama_manifest(&ollama, "one", &[("model", "aa"), ("template", "t1")]);
    let two = ollama_manifest(&ollama, "two", &[("model", "aa"), ("template", "t2")]);
    // Hugging Face cache: a snapshot link to a blob.
    let repo = env
        .home()
        .join(".cache/huggingface/hub/models--org--R-GGUF");
    let blob = repo.join("blobs/etag1");
    complete_fixture(&blob, "R");
    let snap = repo.join("snapshots/abc");
    std::fs::create_dir_all(&snap).unwrap();
    std::os::unix::fs::symlink(&blob, snap.join("R-Q4_0.gguf")).unwrap();

    let ids = |env: &Env| -> Vec<String> {
        env.json(&["list", "--json"])["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(&env),
        ["mine", "one:latest", "org/R-GGUF/R-Q4_0", "two:latest"]
    );

    // Ours: deleted.
    env.cmd()
        .args(["rm", "mine"])
        .assert()
        .success()
        .stdout(predicate::str::contains("deleted mine"));
    assert!(!ours.exists());

    // Another app's: refused, nothing touched, and the flag is named.
    for model in ["one:latest", "org/R-GGUF/R-Q4_0"] {
        env.cmd()
            .args(["rm", model])
            .assert()
            .failure()
            .stderr(predicate::str::contains("--force-external"));
    }
    assert!(one.exists() && blob.exists() && snap.join("R-Q4_0.gguf").exists());

    // Forced: the manifest and the blobs no other manifest uses; the shared weights stay.
    let removed = env.json(&["remove", "--force-external", "one:latest", "--json"]);
    let deleted: Vec<String> = removed["removed"][0]["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            Path::new(p.as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(deleted, ["latest", "sha256-t1"]);
    assert!(!one.exists() && two.exists());
    assert!(ollama.join("blobs/sha256-aa").exists());
    assert!(
        ollama.join("blobs/sha256-c0").exists(),
        "the config blob is shared too"
    );
    // The last user of the weights takes them with it.
    env.cmd()
        .args(["rm", "--force-external", "two:latest"])
        .assert()
        .success();
    assert!(!ollama.join("blobs/sha256-aa").exists());
    assert!(!ollama.join("blobs/sha256-c0").exists());

    // The Hugging Face cache: the snapshot link and its blob.
    env.cmd()
        .args(["rm", "--force-external", "org/R-GGUF/R-Q4_0"])
        .assert()
        .success();
    assert!(!blob.exists());
    assert!(std::fs::symlink_metadata(snap.join("R-Q4_0.gguf")).is_err());
    assert!(ids(&env).is_empty());

    env.cmd()
        .args(["rm", "nothing-here"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no model named"));
}

/// `mcp add|list|tools|rm` on the real binary with a real MCP server (the official Python
/// SDK's, over stdio): servers are stored in the database (a command with arguments and
/// environment, a URL with headers, an import in the `mcpServers` format), listed (JSON
/// and table, secrets masked), started to list their tools, and removed.
#[test]
fn mcp_commands_store_list_start_and_remove_servers() {
    let Some(py) = testkit::python() else {
        return;
    };
    let env = Env::new();
    let script = testkit::py_script("mcp_test_server.py");
    let (py, script) = (py.to_string_lossy(), script.to_string_lossy());
    env.cmd()
        .args(["mcp", "add", "t", "--env", "TOKEN=s3cret", "--", &py, &script])
        .assert()
        .success()
        .stdout(predicate::str::contains("Added t (stdio)"));
    env.cmd()
        .args(["mcp", "add", "remote", "--url", "http://127.0.0.1:9/mcp"])
        .args(["--header", "Authorization: Bearer xyz"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Added remote (streamable_http)"));
    // The same name again is refused; --replace edits it.
    env.cmd()
        .args(["mcp", "add", "t", "--", &py, &script])
        .assert()
        .failure()
        .stderr(predicate::str::contains("an MCP server named \"t\" exists"));
    // An import: a bad entry is named, the good one is added.
    let doc = serde_json::json!({"mcpServers": {
        "two": {"command": &*py, "args": [&*script]},
        "bad": {"args": []},
    }});
    env.cmd()
        .args(["mcp", "add", "--import", &doc.to_string()])
        .assert()
        .success()
        .stdout(predicate::str::contains("Added two"))
        .stderr(predicate::str::contains("bad").and(predicate::str::contains("needs \"command\"")));
    let listed = env.json(&["mcp", "list", "--json"]);
    let servers = listed["mcpServers"].as_object().unwrap();
    let names: Vec<&str> = servers.keys().map(String::as_str).collect();
    assert_eq!(names, ["remote", "t", "two"], "{listed}");
    assert_eq!(servers["t"]["args"], serde_json::json!([&*script]));
    assert_ne!(servers["t"]["env"]["TOKEN"], "s3cret", "secrets are masked: {listed}");
    assert_ne!(servers["remote"]["headers"]["Authorization"], "Bearer xyz", "{listed}");
    env.cmd()
        .args(["mcp", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("remote").and(predicate::str::contains("http://127.0.0.1:9/mcp")));

    // `tools` starts them: the stdio servers' tools by `<server>_<tool>`, the unreachable
    // URL as a failed server (the others still list).
    let tools = env.json(&["mcp", "tools", "--json"]);
    let names: Vec<&str> = tools["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    for want in ["t_echo", "t_add", "two_echo"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    let echo = tools["tools"].as_array().unwrap().iter().find(|t| t["name"] == "t_echo").unwrap();
    assert_eq!(echo["parameters"]["properties"]["message"]["type"], "string", "{echo}");
    let remote = tools["servers"].as_array().unwrap().iter().find(|s| s["name"] == "remote").unwrap();
    assert_eq!(remote["state"], "failed", "{remote}");
    env.cmd()
        .args(["mcp", "tools"])
        .assert()
        .success()
        .stdout(predicate::str::contains("t_echo").and(predicate::str::contains("running")));

    // Remove; an unknown name is an error.
    env.cmd().args(["mcp", "rm", "two"]).assert().success().stdout(predicate::str::contains("Removed two"));
    env.cmd()
        .args(["mcp", "rm", "two"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no MCP server named \"two\""));
    let listed = env.json(&["mcp", "list", "--json"]);
    assert!(listed["mcpServers"].get("two").is_none(), "{listed}");
    assert!(listed["mcpServers"].get("t").is_some(), "{listed}");
}
