//! Behaviour of the public API: layering, validation messages, broken files, persistence.

use std::fs;
use std::path::{Path, PathBuf};

use crate::*;

fn paths_in(dir: &Path) -> Paths {
    Paths {
        config_dir: dir.join("config"),
        data_dir: dir.join("data"),
    }
}

fn write_config(paths: &Paths, contents: impl AsRef<[u8]>) -> PathBuf {
    fs::create_dir_all(&paths.config_dir).unwrap();
    let file = paths.config_file();
    fs::write(&file, contents).unwrap();
    file
}

const NO_ENV: [(&str, &str); 0] = [];

fn flags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ---- layering ----

#[test]
fn flags_beat_env_beat_file_beat_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = paths_in(tmp.path());
    write_config(
        &paths,
        "[server]\nport = 1000\n[models]\nmodels_max = 2\nparallel = 3\n",
    );
    let env = [
        ("LLAMA_DASHBOARD_SERVER_PORT", "2000"),
        ("LLAMA_DASHBOARD_MODELS_MODELS_MAX", "5"),
        ("PATH", "/usr/bin"),
    ];
    let loaded = load(&paths, env, &flags(&[("server.port", "3000")])).unwrap();
    let c = &loaded.config;
    assert_eq!(c.server.port, 3000, "flag wins over env and file");
    assert_eq!(c.models.models_max, 5, "env wins over file");
    assert_eq!(c.models.parallel, 3, "file wins over default");
    assert_eq!(c.models.ctx_size, 4096, "default");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert!(loaded.file_exists);
    assert_eq!(loaded.file, paths.config_file());
}

#[test]
fn missing_file_gives_defaults_without_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let loaded = load(&paths_in(tmp.path()), NO_ENV, &[]).unwrap();
    assert_eq!(loaded.config, Config::default());
    assert!(loaded.warnings.is_empty());
    assert!(!loaded.file_exists);
}

#[test]
fn env_var_names_follow_the_keys() {
    assert_eq!(env_var_name("server.port"), "LLAMA_DASHBOARD_SERVER_PORT");
    assert_eq!(
        env_var_name("models.models_max"),
        "LLAMA_DASHBOARD_MODELS_MODELS_MAX"
    );
    assert_eq!(
        env_var_name("sources.huggingface_dir"),
        "LLAMA_DASHBOARD_SOURCES_HUGGINGFACE_DIR"
    );
    let mut names: Vec<String> = Config::keys().iter().map(|k| env_var_name(k)).collect();
    for (name, key) in names.iter().zip(Config::keys()) {
        assert_eq!(key_for_env_var(name), Some(*key));
    }
    names.sort();
    names.dedup();
    assert_eq!(
        names.len(),
        Config::keys().len(),
        "two keys share a variable"
    );
    assert!(!names.contains(&CONFIG_DIR_ENV.to_owned()));
    assert!(!names.contains(&DATA_DIR_ENV.to_owned()));
}

#[test]
fn every_key_can_be_set_from_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let mut expected = Config::default();
    expected.server.api_key = Some("secret".into());
    expected.models.dirs = vec!["/m1".into(), "/m2".into()];
    expected.models.n_gpu_layers = GpuLayers::Count(20);
    expected.sampling.top_p = 0.5;
    expected.sources.lmstudio = false;
    expected.log.level = LogLevel::Debug;
    let env: Vec<(String, String)> = Config::keys()
        .iter()
        .map(|k| (env_var_name(k), expected.get(k).unwrap()))
        .collect();
    // Borrowed pairs work as well as owned ones.
    let loaded = load(&paths_in(tmp.path()), &env, &[]).unwrap();
    assert_eq!(loaded.config, expected);
}

#[test]
fn bad_env_value_is_an_error_naming_the_variable_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let env = [("LLAMA_DASHBOARD_SERVER_PORT", "70000")];
    let err = load(&paths_in(tmp.path()), env, &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable LLAMA_DASHBOARD_SERVER_PORT: server.port: 70000 is out of range 1..=65535"
    );
    assert_eq!(err.key(), Some("server.port"));
}

#[cfg(unix)]
#[test]
fn non_utf8_env_value_is_an_error() {
    use std::os::unix::ffi::OsStringExt;
    let tmp = tempfile::tempdir().unwrap();
    let env = [(
        std::ffi::OsString::from("LLAMA_DASHBOARD_SERVER_HOST"),
        std::ffi::OsString::from_vec(vec![0xff, 0xfe]),
    )];
    let err = load(&paths_in(tmp.path()), env, &[]).unwrap_err();
    assert!(err.to_string().contains("not valid UTF-8"), "{err}");
    assert_eq!(err.key(), Some("server.host"));
}

#[test]
fn unknown_env_var_with_our_prefix_is_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let env = [
        ("LLAMA_DASHBOARD_SERVER_PROT", "1"),
        ("LLAMA_DASHBOARD_CONFIG_DIR", "/elsewhere"),
        ("LLAMA_DASHBOARD_DATA_DIR", "/elsewhere"),
    ];
    let loaded = load(&paths_in(tmp.path()), env, &[]).unwrap();
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0].contains("LLAMA_DASHBOARD_SERVER_PROT")
            && loaded.warnings[0].contains("did you mean LLAMA_DASHBOARD_SERVER_PORT"),
        "{}",
        loaded.warnings[0]
    );
}

#[test]
fn bad_flag_is_an_error_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = paths_in(tmp.path());
    let err = load(&paths, NO_ENV, &flags(&[("models.parallel", "0")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "command line: models.parallel: 0 is out of range 1..=256"
    );
    let err = load(&paths, NO_ENV, &flags(&[("server.prot", "1")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "command line: unknown key `server.prot`; did you mean `server.port`?"
    );
}

#[test]
fn the_short_and_program_variables_are_read_not_warned_about() {
    let tmp = tempfile::tempdir().unwrap();
    let env = [
        ("LLAMA_DASHBOARD_API_KEY", "user-key"),
        ("LLAMA_DASHBOARD_ADMIN_API_KEY", "admin-key"),
        ("LLAMA_DASHBOARD_LOG", "debug,tower_http=warn"),
        ("LLAMA_DASHBOARD_TEST_MODEL", "/models/smol.gguf"),
        ("LLAMA_DASHBOARD_PYTHON", "/venv/bin/python"),
    ];
    let loaded = load(&paths_in(tmp.path()), env, &[]).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.config.server.api_key.as_deref(), Some("user-key"));
    assert_eq!(
        loaded.config.server.admin_api_key.as_deref(),
        Some("admin-key")
    );
    assert_eq!(
        key_for_env_var("LLAMA_DASHBOARD_API_KEY"),
        Some("server.api_key")
    );
    assert_eq!(key_for_env_var("LLAMA_DASHBOARD_LOG"), None);

    // The same value under both names is fine; two different ones is a mistake to report.
    let same = [
        ("LLAMA_DASHBOARD_API_KEY", "k"),
        ("LLAMA_DASHBOARD_SERVER_API_KEY", "k"),
    ];
    let loaded = load(&paths_in(tmp.path()), same, &[]).unwrap();
    assert_eq!(loaded.config.server.api_key.as_deref(), Some("k"));
    let differ = [
        ("LLAMA_DASHBOARD_API_KEY", "k1"),
        ("LLAMA_DASHBOARD_SERVER_API_KEY", "k2"),
    ];
    let err = load(&paths_in(tmp.path()), differ, &[]).unwrap_err();
    assert_eq!(err.key(), Some("server.api_key"));
    let msg = err.to_string();
    assert!(
        msg.contains("LLAMA_DASHBOARD_API_KEY") && msg.contains("set only one"),
        "{msg}"
    );
    assert!(
        !msg.contains("k1") && !msg.contains("k2"),
        "secrets are not echoed: {msg}"
    );
}

/// `HF_ENDPOINT` and `HF_TOKEN` set the download keys as huggingface_hub reads them;
/// our own variable, when set too, wins instead of conflicting.
#[test]
fn hugging_face_variables_set_the_download_keys_below_ours() {
    let tmp = tempfile::tempdir().unwrap();
    let env = [
        ("HF_ENDPOINT", "https://hf-mirror.com"),
        ("HF_TOKEN", "hf_abc"),
        ("HF_HOME", "/elsewhere"),
    ];
    let loaded = load(&paths_in(tmp.path()), env, &[]).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.config.download.hf_endpoint, "https://hf-mirror.com");
    assert_eq!(loaded.config.download.hf_token.as_deref(), Some("hf_abc"));
    let both = [
        ("HF_ENDPOINT", "https://hf-mirror.com"),
        ("LLAMA_DASHBOARD_DOWNLOAD_HF_ENDPOINT", "http://127.0.0.1:9"),
    ];
    let loaded = load(&paths_in(tmp.path()), both, &[]).unwrap();
    assert_eq!(loaded.config.download.hf_endpoint, "http://127.0.0.1:9");
    let empty = [("HF_ENDPOINT", ""), ("HF_TOKEN", "")];
    let loaded_empty = load(&paths_in(tmp.path()), empty, &[]).unwrap();
    assert_eq!(
        loaded_empty.config.download.hf_endpoint,
        "https://huggingface.co"
    );
    let defaults = load(&paths_in(tmp.path()), Vec::<(String, String)>::new(), &[]).unwrap();
    assert_eq!(
        defaults.config.download.hf_endpoint,
        "https://huggingface.co"
    );
    assert!(!format!("{:?}", loaded.config).contains("hf_abc"));
}

#[test]
fn unknown_env_var_names_the_closest_real_one() {
    let tmp = tempfile::tempdir().unwrap();
    for (var, want) in [
        ("LLAMA_DASHBOARD_PORT", "LLAMA_DASHBOARD_SERVER_PORT"),
        (
            "LLAMA_DASHBOARD_MODELS_CTXSIZE",
            "LLAMA_DASHBOARD_MODELS_CTX_SIZE",
        ),
        ("LLAMA_DASHBOARD_APIKEY", "LLAMA_DASHBOARD_SERVER_API_KEY"),
        ("LLAMA_DASHBOARD_TEST_MODEL3", "LLAMA_DASHBOARD_TEST_MODEL"),
    ] {
        let loaded = load(&paths_in(tmp.path()), [(var, "1")], &[]).unwrap();
        assert_eq!(loaded.warnings.len(), 1, "{var}: {:?}", loaded.warnings);
        let w = &loaded.warnings[0];
        assert!(w.contains(&format!("did you mean {want}?")), "{var}: {w}");
    }
    let loaded = load(
        &paths_in(tmp.path()),
        [("LLAMA_DASHBOARD_WHATEVER_ELSE", "1")],
        &[],
    )
    .unwrap();
    assert!(
        !loaded.warnings[0].contains("did you mean"),
        "{}",
        loaded.warnings[0]
    );
}

#[test]
fn every_row_of_the_table_is_consistent() {
    let mut names = Vec::new();
    for s in SETTINGS {
        assert!(s.env.starts_with(ENV_PREFIX), "{}", s.env);
        assert!(!s.about.is_empty() && !s.about.contains('\n'), "{}", s.env);
        if let Some(key) = s.key() {
            assert_eq!(
                s.env,
                env_var_name(key),
                "a key's variable follows its name"
            );
            assert!(
                s.default.is_none(),
                "{key}: a key's default comes from Config::default"
            );
            assert_eq!(
                s.secret,
                matches!(s.kind, Kind::Secret | Kind::Keys),
                "{key}"
            );
        }
        names.extend(s.env_names());
    }
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "a variable is listed twice");
    Config::default().validate().unwrap();
    let levels = Kind::Choice(&["trace", "debug", "info", "warn", "error"]);
    assert_eq!(crate::setting("log.level").unwrap().kind, levels);
    let names: Vec<&str> = LogLevel::ALL.iter().map(|l| l.as_str()).collect();
    assert_eq!(names, ["trace", "debug", "info", "warn", "error"]);
}

#[test]
fn redacted_masks_only_secrets_that_are_set() {
    let c = non_default_config();
    let r = c.redacted();
    assert_eq!(r.server.api_key.as_deref(), Some(MASK));
    assert_eq!(r.server.admin_api_key.as_deref(), Some(MASK));
    assert_eq!(r.server.port, c.server.port);
    assert_eq!(r.models, c.models);
    assert!(!r.to_toml_string().contains("api_key = \"a\""));
    // Key tables keep their shape; only the key itself is masked.
    assert_eq!(r.server.keys.len(), 2);
    assert!(r.server.keys.iter().all(|k| k.key == MASK));
    assert_eq!(r.server.keys[0].name.as_deref(), Some("ci"));
    assert!(!r.server.keys[0].enabled);
    let shown = r.to_toml_string();
    assert!(
        !shown.contains("k-one") && !shown.contains("k-two"),
        "{shown}"
    );
    assert_eq!(
        Config::default().redacted(),
        Config::default(),
        "unset stays unset"
    );
}

#[test]
fn changes_keep_masked_secrets_and_drop_what_is_unchanged() {
    let mut c = Config::default();
    c.set("server.api_key", "real-secret").unwrap();
    c.set("server.port", "9000").unwrap();
    let shown = c.redacted();
    let pairs: Vec<(String, String)> = [
        ("server.api_key", shown.server.api_key.clone().unwrap()),
        ("server.port", "9000".to_owned()),
        ("models.parallel", "2".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(
        c.changes(&pairs).unwrap(),
        vec![("models.parallel".to_owned(), "2".to_owned())],
        "the mask keeps the secret; an unchanged port is not a change"
    );
    let bad = [("server.port".to_owned(), "http".to_owned())];
    assert!(c.changes(&bad).is_err(), "values are checked like `set`");
}

// ---- validation ----

#[test]
fn each_bad_value_names_its_key_and_the_reason() {
    let cases: &[(&str, &str, &str)] = &[
        ("server.host", "", "must not be empty"),
        ("server.host", "a b", "must not contain whitespace"),
        ("server.port", "0", "0 is out of range 1..=65535"),
        ("server.port", "70000", "70000 is out of range 1..=65535"),
        ("server.port", "http", "`http` is not an integer"),
        ("server.api_key", "two words", "must not contain whitespace"),
        (
            "server.admin_api_key",
            "tab\there",
            "must not contain whitespace",
        ),
        (
            "server.cors_origins",
            "[1, 2]",
            "is not a TOML array of strings",
        ),
        ("server.timeout_seconds", "0", "out of range 1..="),
        ("server.body_limit_mb", "-1", "out of range 1..="),
        (
            "models.dirs",
            "[\"unterminated",
            "is not a TOML array of strings",
        ),
        ("models.models_max", "0", "0 is out of range 1..=1024"),
        (
            "models.sleep_idle_seconds",
            "soon",
            "`soon` is not an integer",
        ),
        ("models.parallel", "257", "257 is out of range 1..=256"),
        ("models.ctx_size", "-1", "-1 is out of range 0..=4294967295"),
        (
            "models.n_gpu_layers",
            "-1",
            "`-1` is not \"auto\" or a number >= 0",
        ),
        ("models.threads", "0", "0 is out of range 1..=4096"),
        ("sources.ollama", "maybe", "`maybe` is not a boolean"),
        ("sources.huggingface", "2", "`2` is not a boolean"),
        ("sources.lmstudio", "", "is not a boolean"),
        ("sampling.temperature", "-0.1", "-0.1 must be >= 0"),
        ("sampling.temperature", "NaN", "NaN is not a finite number"),
        ("sampling.temperature", "inf", "inf is not a finite number"),
        ("sampling.top_k", "-1", "-1 is out of range 0..=2147483647"),
        ("sampling.top_p", "1.5", "1.5 is out of range 0..=1"),
        ("sampling.min_p", "-0.5", "-0.5 is out of range 0..=1"),
        ("sampling.repeat_penalty", "0", "0 must be > 0"),
        (
            "log.level",
            "verbose",
            "`verbose` is not one of trace, debug, info, warn, error",
        ),
    ];
    for (key, value, reason) in cases {
        let mut c = Config::default();
        let err = c.set(key, value).unwrap_err();
        assert_eq!(err.key(), Some(*key), "{key}={value}: {err}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("{key}: ")) && msg.contains(reason),
            "{key}={value}: got `{msg}`, want `{reason}`"
        );
        assert_eq!(
            c,
            Config::default(),
            "a failed set must not change anything"
        );
    }
}

#[test]
fn unknown_key_suggests_the_right_one() {
    let mut c = Config::default();
    let err = c.set("server.prot", "1").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown key `server.prot`; did you mean `server.port`?"
    );
    let err = c.set("server.ctx_size", "1").unwrap_err();
    assert!(
        err.to_string().contains("did you mean `models.ctx_size`"),
        "{err}"
    );
    let err = c.set("completely.different", "1").unwrap_err();
    assert_eq!(err.to_string(), "unknown key `completely.different`");
    assert_eq!(c.get("server.prot"), None);
}

#[test]
fn a_bare_or_misspelt_key_names_the_closest_real_one() {
    let mut c = Config::default();
    let err = c.set("port", "9123").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown key `port`; did you mean `server.port`?"
    );
    for (typed, want) in [
        ("ctx_size", "models.ctx_size"),
        ("server.prot", "server.port"),
        ("models.paralel", "models.parallel"),
        ("sampling.temprature", "sampling.temperature"),
        ("temperature", "sampling.temperature"),
        ("log.levle", "log.level"),
        ("sever", "server"),
    ] {
        let err = c.set(typed, "1").unwrap_err();
        assert!(
            err.to_string()
                .ends_with(&format!("; did you mean `{want}`?")),
            "{typed}: {err}"
        );
    }
    assert_eq!(c, Config::default());
}

#[test]
fn set_accepts_the_documented_forms() {
    let mut c = Config::default();
    c.set("models.dirs", "/a, /b ,,").unwrap();
    assert_eq!(c.models.dirs, [PathBuf::from("/a"), PathBuf::from("/b")]);
    c.set("models.dirs", r#"["/x,y", "~/z"]"#).unwrap();
    assert_eq!(c.models.dirs, [PathBuf::from("/x,y"), PathBuf::from("~/z")]);
    c.set("models.dirs", "[]").unwrap();
    assert!(c.models.dirs.is_empty());
    c.set("server.cors_origins", "http://a.test,http://b.test")
        .unwrap();
    assert_eq!(c.server.cors_origins, ["http://a.test", "http://b.test"]);
    c.set("server.cors_origins", "").unwrap();
    assert!(c.server.cors_origins.is_empty());

    for (v, want) in [("yes", true), ("OFF", false), ("1", true), ("False", false)] {
        c.set("sources.ollama", v).unwrap();
        assert_eq!(c.sources.ollama, want, "{v}");
    }
    c.set("models.n_gpu_layers", "33").unwrap();
    assert_eq!(c.models.n_gpu_layers, GpuLayers::Count(33));
    c.set("models.n_gpu_layers", "AUTO").unwrap();
    assert_eq!(c.models.n_gpu_layers, GpuLayers::Auto);
    c.set("models.threads", "8").unwrap();
    assert_eq!(c.models.threads, Some(8));
    c.set("models.threads", "auto").unwrap();
    assert_eq!(c.models.threads, None);
    c.set("server.api_key", "k-123").unwrap();
    assert_eq!(c.server.api_key.as_deref(), Some("k-123"));
    c.set("server.api_key", "").unwrap();
    assert_eq!(c.server.api_key, None);
    c.set("models.sleep_idle_seconds", "-5").unwrap();
    assert_eq!(c.models.sleep_idle(), None);
    c.set("models.sleep_idle_seconds", " 300 ").unwrap();
    assert_eq!(
        c.models.sleep_idle(),
        Some(std::time::Duration::from_secs(300))
    );
    c.set("log.level", "WARN").unwrap();
    assert_eq!(c.log.level, LogLevel::Warn);
}

fn non_default_config() -> Config {
    let mut c = Config::default();
    c.server.host = "0.0.0.0".into();
    c.server.api_key = Some("a".into());
    c.server.admin_api_key = Some("b".into());
    c.download.hf_token = Some("hf_t".into());
    c.download.hf_mirror = Some("https://m".into());
    c.server.cors_origins = vec!["http://x.test".into(), "*".into()];
    c.server.api_key_is_admin = true;
    c.server.keys = vec![
        ApiKey {
            key: "k-one".into(),
            name: Some("ci".into()),
            admin: true,
            rate_limit_per_minute: Some(30),
            enabled: false,
        },
        ApiKey {
            key: "k-two".into(),
            name: None,
            admin: false,
            rate_limit_per_minute: None,
            enabled: true,
        },
    ];
    c.server.rate_limit_per_minute = 60;
    c.server.auth_failures_per_minute = 3;
    c.server.allowed_hosts = vec!["llm.lan".into()];
    c.server.allow_open_network = true;
    c.server.default_model = Some("qwen3:8b".into());
    c.server.slot_save_path = Some("/slots".into());
    c.server.verbose_responses = true;
    c.server.slots_endpoint = false;
    c.server.metrics_endpoint = false;
    c.sampling.seed = 42;
    c.sampling.n_predict = 64;
    c.server.port = 9999;
    c.models.dirs = vec!["/with,comma".into(), "/models".into()];
    c.models.threads = Some(6);
    c.models.n_gpu_layers = GpuLayers::Count(0);
    c.models.ctx_size = 0;
    // Template text keeps its layout.
    c.models.chat_template = Some(" {{ messages }}\n".into());
    c.models.jinja = false;
    c.sources.huggingface_dir = Some("/hf".into());
    c.sampling.temperature = 0.7;
    c.sampling.min_p = 0.0;
    c.log.level = LogLevel::Trace;
    c.tools.web_search_url = Some("http://127.0.0.1:8888/search".into());
    c.tools.web_search_api_key = Some("k".into());
    c.tools.mcp_servers_config = Some("/mcp.json".into());
    c.tools.mcp_servers_json = Some(r#"{"mcpServers": {}}"#.into());
    c.tools.file_roots = vec!["/srv".into()];
    c.tools.fetch_allow_private = true;
    c.tools.max_steps = 3;
    c
}

#[test]
fn get_then_set_round_trips_every_key() {
    for source in [Config::default(), non_default_config()] {
        let mut rebuilt = Config::default();
        for key in Config::keys() {
            let v = source.get(key).unwrap();
            rebuilt
                .set(key, &v)
                .unwrap_or_else(|e| panic!("{key}={v}: {e}"));
        }
        assert_eq!(rebuilt, source);
    }
}

#[test]
fn keys_list_matches_the_schema() {
    // Every field set, so that none is skipped when serialized.
    let mut c = non_default_config();
    c.sources.ollama_dir = Some("/o".into());
    c.sources.lmstudio_dir = Some("/l".into());
    let table = toml::Table::try_from(&c).unwrap();
    let mut from_schema = Vec::new();
    for (section, v) in &table {
        for key in v.as_table().unwrap().keys() {
            from_schema.push(format!("{section}.{key}"));
        }
    }
    let mut listed: Vec<String> = Config::keys().iter().map(|k| k.to_string()).collect();
    from_schema.sort();
    listed.sort();
    assert_eq!(listed, from_schema);
}

#[cfg(unix)]
#[test]
fn non_utf8_paths_serialize_lossily_instead_of_failing() {
    use std::os::unix::ffi::OsStringExt;
    let mut c = Config::default();
    c.models.dirs = vec![PathBuf::from(std::ffi::OsString::from_vec(vec![
        b'/', 0xff,
    ]))];
    assert!(c.to_toml_string().contains("dirs = [\"/\u{fffd}\"]"));
}

#[test]
fn debug_output_hides_api_keys() {
    let c = non_default_config();
    let dbg = format!("{c:?}");
    assert!(dbg.contains("<redacted>"));
    assert!(!dbg.contains("api_key: Some(\"a\")"), "{dbg}");
    assert!(!dbg.contains("k-one") && !dbg.contains("k-two"), "{dbg}");
}

// ---- the file ----

fn load_file_warning(contents: impl AsRef<[u8]>) -> (LoadedConfig, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let paths = paths_in(tmp.path());
    let file = write_config(&paths, contents);
    let loaded = load(&paths, NO_ENV, &[]).unwrap();
    assert_eq!(loaded.config, Config::default(), "falls back to defaults");
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(loaded.file_exists);
    (loaded, file)
}

#[test]
fn file_value_out_of_range_warns_with_line_and_column() {
    let (loaded, file) = load_file_warning("# ports\n[server]\nport = 70000\n");
    let w = &loaded.warnings[0];
    let want = format!(
        "{}:3:8: server.port: 70000 is out of range 1..=65535",
        file.display()
    );
    assert!(w.contains(&want), "{w}");
    assert!(w.contains("using defaults"), "{w}");
}

#[test]
fn file_range_checked_after_typing_warns_with_position() {
    let (loaded, file) = load_file_warning("[sampling]\ntop_p = 1.5\n");
    let want = format!(
        "{}:2:9: sampling.top_p: 1.5 is out of range 0..=1",
        file.display()
    );
    assert!(loaded.warnings[0].contains(&want), "{}", loaded.warnings[0]);
}

#[test]
fn file_unknown_key_warns_with_full_key() {
    let (loaded, file) = load_file_warning("[server]\nhost = \"::1\"\nprot = 1\n");
    let want = format!(
        "{}:3:1: unknown key `server.prot`; did you mean `server.port`?",
        file.display()
    );
    assert!(loaded.warnings[0].contains(&want), "{}", loaded.warnings[0]);

    let (loaded, _) = load_file_warning("[sever]\nport = 1\n");
    assert!(
        loaded.warnings[0].contains("unknown key `sever`"),
        "{}",
        loaded.warnings[0]
    );
    let (loaded, _) = load_file_warning("[server.tls]\ncert = \"x\"\n");
    assert!(
        loaded.warnings[0].contains("unknown key `server.tls`"),
        "{}",
        loaded.warnings[0]
    );
}

#[test]
fn file_bad_type_warns_with_key() {
    let (loaded, file) = load_file_warning("[server]\nport = \"8080\"\n");
    let w = &loaded.warnings[0];
    let want = format!(
        "{}:2:8: server.port: expected an integer, found a string",
        file.display()
    );
    assert!(w.contains(&want), "{w}");
    let (loaded, _) = load_file_warning("[sources]\nollama = \"yes\"\n");
    assert!(
        loaded.warnings[0].contains("sources.ollama: expected true or false, found a string"),
        "{}",
        loaded.warnings[0]
    );

    let (loaded, _) = load_file_warning("[models]\nn_gpu_layers = -1\n");
    assert!(
        loaded.warnings[0].contains("models.n_gpu_layers: `-1` is not \"auto\" or a number >= 0"),
        "{}",
        loaded.warnings[0]
    );
    let (loaded, _) = load_file_warning("[models]\nctx_size = 1.5\n");
    assert!(
        loaded.warnings[0].contains("models.ctx_size: `1.5` is not an integer"),
        "{}",
        loaded.warnings[0]
    );
    let (loaded, _) = load_file_warning("server = 5\n");
    assert!(
        loaded.warnings[0].contains("server: must be a table"),
        "{}",
        loaded.warnings[0]
    );
}

#[test]
fn file_that_is_not_toml_warns() {
    let (loaded, file) = load_file_warning("this is not toml\n");
    let w = &loaded.warnings[0];
    assert!(w.contains(&format!("{}:1:", file.display())), "{w}");
}

#[test]
fn file_with_garbage_bytes_warns() {
    let garbage: Vec<u8> = (0..512u32).map(|i| (i * 7919 % 251) as u8).collect();
    let (loaded, file) = load_file_warning(garbage);
    assert!(loaded.warnings[0].contains(&file.display().to_string()));
}

#[test]
fn file_with_invalid_utf8_warns_with_position() {
    let mut bytes = b"[server]\nhost = \"caf".to_vec();
    bytes.extend([0xff, b'"', b'\n']);
    let (loaded, file) = load_file_warning(bytes);
    let want = format!("{}:2:12: not valid UTF-8", file.display());
    assert!(loaded.warnings[0].contains(&want), "{}", loaded.warnings[0]);
}

#[test]
fn unreadable_file_warns() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = paths_in(tmp.path());
    // A directory where the file should be: reading fails whatever our privileges are.
    fs::create_dir_all(paths.config_file()).unwrap();
    let loaded = load(&paths, NO_ENV, &[]).unwrap();
    assert_eq!(loaded.config, Config::default());
    assert!(
        loaded.warnings[0].contains("cannot read"),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn file_accepts_both_forms_of_gpu_layers_and_a_bom() {
    let c = parse(Path::new("c.toml"), "[models]\nn_gpu_layers = \"auto\"\n").unwrap();
    assert_eq!(c.models.n_gpu_layers, GpuLayers::Auto);
    let c = parse(Path::new("c.toml"), "\u{feff}[models]\nn_gpu_layers = 12\n").unwrap();
    assert_eq!(c.models.n_gpu_layers, GpuLayers::Count(12));
    let c = parse(Path::new("c.toml"), "models.parallel = 2\n").unwrap();
    assert_eq!(c.models.parallel, 2);
}

#[test]
fn file_takes_a_whole_number_where_a_number_belongs() {
    let c = parse(Path::new("c.toml"), "[sampling]\ntemperature = 1\n").unwrap();
    assert_eq!(c.sampling.temperature, 1.0);
}

#[test]
fn full_and_minimal_toml_parse_back_to_the_same_config() {
    let c = non_default_config();
    let full = c.to_toml_string();
    assert_eq!(parse(Path::new("c.toml"), &full).unwrap(), c);
    let minimal = c.to_minimal_toml_string();
    assert_eq!(parse(Path::new("c.toml"), &minimal).unwrap(), c);
    assert!(!minimal.contains("[sources]\nollama"), "{minimal}");
    assert!(
        !minimal.contains("top_k"),
        "defaults are left out: {minimal}"
    );
    assert_eq!(Config::default().to_minimal_toml_string(), "");
}

// ---- persistence ----

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn set_persisted_round_trips_and_keeps_other_file_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = paths_in(tmp.path());
    write_config(&paths, "[server]\napi_key = \"k\"\n");
    let c = set_persisted(&paths, "server.port", "9001").unwrap();
    assert_eq!(c.server.port, 9001);
    assert_eq!(c.server.api_key.as_deref(), Some("k"));

    // The environment is not baked into the file.
    let env = [("LLAMA_DASHBOARD_MODELS_PARALLEL", "7")];
    let loaded = load(&paths, env, &[]).unwrap();
    assert_eq!(loaded.config.models.parallel, 7);
    let c = set_persisted(&paths, "log.level", "debug").unwrap();
    assert_eq!(c.models.parallel, 4);

    let reread = ConfigFile::read(&paths.config_file()).unwrap();
    assert_eq!(reread.config, c);
    assert_eq!(reread.config.server.port, 9001);
    assert_eq!(reread.config.log.level, LogLevel::Debug);
    let text = fs::read_to_string(paths.config_file()).unwrap();
    assert!(!text.contains("parallel"), "{text}");

    // Setting a key back to its default removes it from the file.
    set_persisted(&paths, "server.port", "8080").unwrap();
    let text = fs::read_to_string(paths.config_file()).unwrap();
    assert!(!text.contains("port"), "{text}");
    assert_eq!(dir_entries(&paths.config_dir), ["config.toml"]);
}

#[test]
fn set_persisted_keeps_comments_and_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = paths_in(tmp.path());
    let original = "\
# My settings, ordered my way.

[models]
# big context for the long documents
ctx_size = 8192   # per slot
parallel = 2

[server]
port = 9000 # the usual one
host = \"0.0.0.0\"
";
    write_config(&paths, original);
    set_persisted(&paths, "server.port", "9123").unwrap();
    set_persisted(&paths, "sampling.top_k", "20").unwrap();
    set_persisted(&paths, "models.dirs", "/a,/b").unwrap();
    let text = fs::read_to_string(paths.config_file()).unwrap();
    let want = "\
# My settings, ordered my way.

[models]
# big context for the long documents
ctx_size = 8192   # per slot
parallel = 2
dirs = [\"/a\", \"/b\"]

[server]
port = 9123 # the usual one
host = \"0.0.0.0\"

[sampling]
top_k = 20
";
    assert_eq!(text, want);

    // Back to the default: the key leaves, its neighbours and comments stay.
    set_persisted(&paths, "models.parallel", "4").unwrap();
    set_persisted(&paths, "sampling.top_k", "40").unwrap();
    let text = fs::read_to_string(paths.config_file()).unwrap();
    assert!(
        !text.contains("parallel") && !text.contains("sampling"),
        "{text}"
    );
    assert!(text.contains("ctx_size = 8192   # per slot\n"), "{text}");
    assert!(
        text.contains("# big context for the long documents\n"),
        "{text}"
    );
    let c = ConfigFile::read(&paths.config_file()).unwrap().config;
    assert_eq!(
        (c.models.ctx_size, c.server.port, c.models.parallel),
        (8192, 9123, 4)
    );
}

#[test]
fn set_persisted_edits_dotted_and_inline_keys_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = paths_in(tmp.path());
    write_config(
        &paths,
        "models.parallel = 2 # two\nserver = { port = 9000 }\n",
    );
    set_persisted(&paths, "models.parallel", "3").unwrap();
    set_persisted(&paths, "server.port", "9001").unwrap();
    set_persisted(&paths, "models.ctx_size", "1024").unwrap();
    let text = fs::read_to_string(paths.config_file()).unwrap();
    let c = ConfigFile::read(&paths.config_file()).unwrap().config;
    assert_eq!(
        (c.models.parallel, c.server.port, c.models.ctx_size),
        (3, 9001, 1024),
        "{text}"
    );
    assert!(text.starts_with("models.parallel = 3 # two\n"), "{text}");
    assert!(text.contains("server = { port = 9001 }"), "{text}");
}

#[test]
fn set_persisted_all_is_all_or_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = paths_in(tmp.path());
    let original = "[server]\nport = 9000\n";
    write_config(&paths, original);
    let pairs = flags(&[("server.port", "9001"), ("models.parallel", "0")]);
    let err = set_persisted_all(&paths, &pairs).unwrap_err();
    assert_eq!(err.key(), Some("models.parallel"));
    assert_eq!(fs::read_to_string(paths.config_file()).unwrap(), original);
    let pairs = flags(&[("server.port", "9001"), ("models.parallel", "2")]);
    let c = set_persisted_all(&paths, &pairs).unwrap();
    assert_eq!((c.server.port, c.models.parallel), (9001, 2));
    assert_eq!(ConfigFile::read(&paths.config_file()).unwrap().config, c);
}

#[test]
fn set_persisted_on_a_new_file_writes_the_header() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = paths_in(tmp.path());
    set_persisted(&paths, "server.port", "9001").unwrap();
    let text = fs::read_to_string(paths.config_file()).unwrap();
    assert!(
        text.starts_with("# llama-dashboard configuration."),
        "{text}"
    );
    assert!(text.ends_with("[server]\nport = 9001\n"), "{text}");
}

#[test]
fn set_persisted_creates_the_directory_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = paths_in(&tmp.path().join("deep/er"));
    set_persisted(&paths, "models.dirs", "/a,/b").unwrap();
    let loaded = load(&paths, NO_ENV, &[]).unwrap();
    assert_eq!(
        loaded.config.models.dirs,
        [PathBuf::from("/a"), PathBuf::from("/b")]
    );
}

#[test]
fn set_persisted_rejects_a_bad_value_without_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = paths_in(tmp.path());
    let err = set_persisted(&paths, "server.port", "0").unwrap_err();
    assert_eq!(err.to_string(), "server.port: 0 is out of range 1..=65535");
    assert!(!paths.config_file().exists());
}

#[test]
fn set_persisted_refuses_to_overwrite_a_corrupt_file() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = paths_in(tmp.path());
    let original = b"[server]\nport = 8080\n# my notes\nprot = 1\n";
    let file = write_config(&paths, original);
    let err = set_persisted(&paths, "server.port", "9000").unwrap_err();
    assert!(
        matches!(err, ConfigError::RefuseToOverwrite { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(msg.contains("unknown key `server.prot`"), "{msg}");
    assert_eq!(fs::read(&file).unwrap(), original);
}

#[test]
fn save_is_atomic_and_leaves_no_temporary_files() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("config.toml");
    fs::write(&path, "old").unwrap();
    save(&non_default_config(), &path).unwrap();
    assert_eq!(dir_entries(tmp.path()), ["config.toml"]);
    assert_eq!(
        ConfigFile::read(&path).unwrap().config,
        non_default_config()
    );

    // A failed save (the target is a non-empty directory) cleans up after itself too.
    let blocked = tmp.path().join("blocked");
    fs::create_dir_all(blocked.join("inside")).unwrap();
    assert!(matches!(
        save(&Config::default(), &blocked),
        Err(ConfigError::Write { .. })
    ));
    assert_eq!(dir_entries(tmp.path()), ["blocked", "config.toml"]);
}

#[cfg(unix)]
#[test]
fn save_keeps_secrets_private_and_symlinks_intact() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("dotfiles/config.toml");
    fs::create_dir_all(real.parent().unwrap()).unwrap();
    fs::write(&real, "").unwrap();
    let link = tmp.path().join("config.toml");
    std::os::unix::fs::symlink(&real, &link).unwrap();

    save(&non_default_config(), &link).unwrap();
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        ConfigFile::read(&link).unwrap().config,
        non_default_config()
    );
    let mode = fs::metadata(&real).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "mode {mode:o}");
}

// ---- paths and sources ----

#[test]
fn paths_prefer_flags_then_env_then_defaults() {
    let env = |name: &str| match name {
        CONFIG_DIR_ENV => Some("/env/config".into()),
        DATA_DIR_ENV => Some("/env/data".into()),
        _ => None,
    };
    let p = Paths::resolve_with(Some("/flag/config".into()), None, env).unwrap();
    assert_eq!(p.config_dir, PathBuf::from("/flag/config"));
    assert_eq!(p.data_dir, PathBuf::from("/env/data"));
    assert_eq!(p.config_file(), PathBuf::from("/flag/config/config.toml"));
    assert_eq!(p.database(), PathBuf::from("/env/data/dashboard.db"));
    assert_eq!(p.models_dir(), PathBuf::from("/env/data/models"));
}

#[cfg(target_os = "linux")]
#[test]
fn default_paths_on_linux() {
    let Some(home) = sources::home_dir() else {
        return;
    };
    let p = Paths::resolve_with(None, None, |_| None).unwrap();
    if std::env::var_os("XDG_CONFIG_HOME").is_none() {
        assert_eq!(p.config_dir, home.join(".config/llama-dashboard"));
    }
    if std::env::var_os("XDG_DATA_HOME").is_none() {
        assert_eq!(p.data_dir, home.join(".local/share/llama-dashboard"));
    }
}

#[test]
fn source_dirs_follow_each_applications_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let no_env = |_: &str| None;
    let d = SourcesConfig::default().dirs_with(Some(home), no_env);
    assert_eq!(d.ollama, Some(home.join(".ollama/models")));
    assert_eq!(d.huggingface, Some(home.join(".cache/huggingface/hub")));
    assert_eq!(d.lmstudio, Some(home.join(".lmstudio/models")));

    // Old LM Studio layout is used only when it is the one that exists.
    fs::create_dir_all(home.join(".cache/lm-studio/models")).unwrap();
    let d = SourcesConfig::default().dirs_with(Some(home), no_env);
    assert_eq!(d.lmstudio, Some(home.join(".cache/lm-studio/models")));

    let env = |name: &str| match name {
        "HF_HOME" => Some("/hf-home".into()),
        "OLLAMA_MODELS" => Some("/ollama".into()),
        _ => None,
    };
    let d = SourcesConfig::default().dirs_with(Some(home), env);
    assert_eq!(d.huggingface, Some(PathBuf::from("/hf-home/hub")));
    assert_eq!(d.ollama, Some(PathBuf::from("/ollama")));
    let env = |name: &str| match name {
        "HF_HOME" => Some("/hf-home".into()),
        "HF_HUB_CACHE" => Some("/hub-cache".into()),
        _ => None,
    };
    let d = SourcesConfig::default().dirs_with(None, env);
    assert_eq!(d.huggingface, Some(PathBuf::from("/hub-cache")));
    assert_eq!(d.ollama, None, "no home, no override");

    let s = SourcesConfig {
        ollama: false,
        lmstudio_dir: Some("~/lms".into()),
        ..SourcesConfig::default()
    };
    let d = s.dirs_with(Some(home), no_env);
    assert_eq!(d.ollama, None, "disabled");
    assert_eq!(d.lmstudio, Some(home.join("lms")));
}

#[test]
fn model_dirs_always_start_with_the_data_models_dir() {
    let paths = paths_in(Path::new("/d"));
    let mut c = Config::default();
    assert_eq!(c.model_dirs(&paths), [PathBuf::from("/d/data/models")]);
    c.models.dirs = vec!["/d/data/models".into(), "/extra".into()];
    assert_eq!(
        c.model_dirs(&paths),
        [PathBuf::from("/d/data/models"), PathBuf::from("/extra")]
    );
}

#[test]
fn key_tables_from_the_file_text_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = paths_in(tmp.path());
    write_config(
        &paths,
        "[server]\nport = 9000\n\n[[server.keys]]\nkey = \"abc\"\nname = \"ci\"\nrate_limit_per_minute = 5\n\n\
         [[server.keys]]\nkey = \"def\"\nadmin = true\nenabled = false\n",
    );
    let loaded = load(&paths, Vec::<(String, String)>::new(), &[]).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let keys = &loaded.config.server.keys;
    assert_eq!(keys.len(), 2);
    assert_eq!(
        (
            keys[0].name.as_deref(),
            keys[0].admin,
            keys[0].rate_limit_per_minute,
            keys[0].enabled
        ),
        (Some("ci"), false, Some(5), true)
    );
    assert!(keys[1].admin && !keys[1].enabled);
    // The same tables as text (flags, variables, `config set`) and as JSON (the settings API).
    let mut c = Config::default();
    c.set(
        "server.keys",
        r#"[{ key = "abc", name = "ci", rate_limit_per_minute = 5 }]"#,
    )
    .unwrap();
    assert_eq!(c.server.keys[0], keys[0]);
    c.set("server.keys", r#"[{"key": "xyz", "admin": true}]"#)
        .unwrap();
    assert!(c.server.keys[0].admin && c.server.keys[0].enabled);
    // Bad tables name the problem, never the key.
    for (bad, says) in [
        (r#"[{ key = "" }]"#, "must not be empty"),
        (r#"[{ key = "a b" }]"#, "whitespace"),
        (r#"[{ key = "s3cret", rate_limit_per_minute = 0 }]"#, ">= 1"),
        (r#"[{ key = "s3cret" }, { key = "s3cret" }]"#, "twice"),
        (r#"[{ key = "s3cret", colour = "red" }]"#, "key tables"),
    ] {
        let e = c.set("server.keys", bad).unwrap_err().to_string();
        assert!(e.contains(says), "{bad}: {e}");
        assert!(!e.contains("s3cret"), "the key is echoed: {e}");
    }
}

#[test]
fn masked_key_tables_sent_back_keep_their_keys() {
    let mut c = Config::default();
    c.set(
        "server.keys",
        r#"[{ key = "first", name = "ci" }, { key = "second" }]"#,
    )
    .unwrap();
    // What a client shown the redacted configuration sends back (JSON, from the API).
    let shown = serde_json::to_value(&c.redacted().server.keys).unwrap();
    let back = vec![("server.keys".to_owned(), shown.to_string())];
    assert_eq!(
        c.changes(&back).unwrap(),
        vec![],
        "nothing edited, nothing changes"
    );
    // Edited: the named one disabled and moved last; masks still mean "keep" (by name, else
    // by place).
    let mut edited = shown.clone();
    edited[0]["enabled"] = serde_json::json!(false);
    let first = edited[0].clone();
    edited[0] = edited[1].clone();
    edited[1] = first;
    edited[0]["name"] = serde_json::json!("other");
    let pairs = vec![("server.keys".to_owned(), edited.to_string())];
    let changes = c.changes(&pairs).unwrap();
    assert_eq!(changes.len(), 1);
    let mut next = c.clone();
    next.set("server.keys", &changes[0].1).unwrap();
    let ci = next
        .server
        .keys
        .iter()
        .find(|k| k.name.as_deref() == Some("ci"))
        .unwrap();
    assert_eq!((ci.key.as_str(), ci.enabled), ("first", false));
    assert!(next.server.keys.iter().all(|k| k.key != MASK));
    // A new table cannot be masked.
    let pairs = vec![(
        "server.keys".to_owned(),
        format!(r#"[{{"key": "{MASK}"}}, {{"key": "{MASK}"}}, {{"key": "{MASK}"}}]"#),
    )];
    let e = c.changes(&pairs).unwrap_err().to_string();
    assert!(e.contains("key #3 is masked"), "{e}");
}
