use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;
use serde_json::{Map, Value, json};

use crate::*;

fn params(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn pragma(store: &Store, name: &str) -> String {
    store
        .lock()
        .pragma_query_value(None, name, |r| r.get::<_, rusqlite::types::Value>(0))
        .map(|v| format!("{v:?}"))
        .unwrap()
}

// ---- opening ----

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
}

#[test]
fn open_creates_directory_migrates_and_reopens_idempotently() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("nested/dir/dashboard.db");
    {
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(store.path(), path);
        store.set_alias("m1", Some("one")).unwrap();
    }
    for _ in 0..2 {
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(store.resolve_alias("one").unwrap().as_deref(), Some("m1"));
    }
}

#[test]
fn file_database_uses_wal_and_foreign_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("d.db")).unwrap();
    assert_eq!(pragma(&store, "journal_mode"), r#"Text("wal")"#);
    assert_eq!(pragma(&store, "foreign_keys"), "Integer(1)");
    assert_eq!(pragma(&store, "busy_timeout"), "Integer(5000)");
}

#[test]
fn a_text_file_is_not_a_database_and_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("dashboard.db");
    let text = "these are my notes, not a database\n".repeat(40);
    std::fs::write(&path, &text).unwrap();
    let err = Store::open(&path).err().expect("must fail");
    assert!(
        matches!(&err, StoreError::NotADatabase { path: p } if p == &path),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn a_newer_database_is_refused_before_anything_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("dashboard.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
            .unwrap();
    }
    let err = Store::open(&path).err().expect("must fail");
    match &err {
        StoreError::TooNew {
            path: p,
            found,
            supported,
        } => {
            assert_eq!(p, &path);
            assert_eq!((*found, *supported), (99, SCHEMA_VERSION));
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("99"),
        "{msg}"
    );

    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!((version, mode.as_str()), (99, "delete"));
}

#[test]
fn an_unusable_directory_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let err = Store::open(&file.join("dashboard.db")).err().unwrap();
    assert!(matches!(err, StoreError::CreateDir { .. }), "{err:?}");
}

#[test]
fn an_empty_file_becomes_a_database() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("dashboard.db");
    std::fs::write(&path, "").unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
}

// ---- model settings ----

#[test]
fn unknown_model_has_no_settings() {
    let store = Store::open_in_memory().unwrap();
    assert_eq!(store.model_settings("nope").unwrap(), None);
    assert!(store.all_model_settings().unwrap().is_empty());
    assert_eq!(store.resolve_alias("nope").unwrap(), None);
}

#[test]
fn every_setter_round_trips_and_leaves_the_other_fields_alone() {
    let store = Store::open_in_memory().unwrap();
    let id = "hf:Qwen/Qwen3-8B-GGUF/Q4_K_M";
    let before = crate::now();

    store.set_favorite(id, true).unwrap();
    let s = store.model_settings(id).unwrap().unwrap();
    assert_eq!(
        s,
        ModelSettings {
            model_id: id.to_owned(),
            alias: None,
            favorite: true,
            capabilities: None,
            chat_template: None,
            launch_params: Map::new(),
            updated_at: s.updated_at,
        }
    );
    assert!(s.updated_at >= before);

    store.set_alias(id, Some("qwen")).unwrap();
    let caps = vec!["tools".to_owned(), "vision".to_owned()];
    store.set_capabilities(id, Some(&caps)).unwrap();
    store.set_chat_template(id, Some("{{ messages }}")).unwrap();
    let lp = params(json!({"ctx_size": 8192, "n_gpu_layers": "auto", "temperature": 0.7}));
    store.set_launch_params(id, &lp).unwrap();

    let s = store.model_settings(id).unwrap().unwrap();
    assert_eq!(s.alias.as_deref(), Some("qwen"));
    assert!(s.favorite);
    assert_eq!(s.capabilities.as_deref(), Some(&caps[..]));
    assert_eq!(s.chat_template.as_deref(), Some("{{ messages }}"));
    assert_eq!(s.launch_params, lp);

    // Clearing goes back to the defaults.
    store.set_alias(id, None).unwrap();
    store.set_favorite(id, false).unwrap();
    store.set_capabilities(id, None).unwrap();
    store.set_chat_template(id, None).unwrap();
    store.set_launch_params(id, &Map::new()).unwrap();
    let s = store.model_settings(id).unwrap().unwrap();
    assert_eq!(
        (
            s.alias,
            s.favorite,
            s.capabilities,
            s.chat_template,
            s.launch_params
        ),
        (None, false, None, None, Map::new())
    );
    assert_eq!(store.resolve_alias("qwen").unwrap(), None);

    // An empty capability list is an override too ("none"), distinct from "detected".
    store.set_capabilities(id, Some(&[])).unwrap();
    assert_eq!(
        store.model_settings(id).unwrap().unwrap().capabilities,
        Some(vec![])
    );

    assert!(store.remove_model_settings(id).unwrap());
    assert!(!store.remove_model_settings(id).unwrap());
    assert_eq!(store.model_settings(id).unwrap(), None);
}

#[test]
fn all_model_settings_lists_every_model_by_id() {
    let store = Store::open_in_memory().unwrap();
    store.set_favorite("b", true).unwrap();
    store.set_alias("a", Some("alpha")).unwrap();
    let all = store.all_model_settings().unwrap();
    let ids: Vec<&str> = all.iter().map(|s| s.model_id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
}

#[test]
fn an_alias_belongs_to_one_model() {
    let store = Store::open_in_memory().unwrap();
    store.set_alias("m1", Some("chat")).unwrap();
    // Setting it again on the same model is fine.
    store.set_alias("m1", Some("chat")).unwrap();

    let err = store.set_alias("m2", Some("chat")).unwrap_err();
    match &err {
        StoreError::AliasTaken { alias, model_id } => {
            assert_eq!((alias.as_str(), model_id.as_str()), ("chat", "m1"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "alias `chat` is already used by model `m1`"
    );
    assert!(matches!(
        store.set_alias("m2", Some("CHAT")),
        Err(StoreError::AliasTaken { .. })
    ));
    assert_eq!(store.resolve_alias("Chat").unwrap().as_deref(), Some("m1"));
    assert_eq!(store.model_settings("m2").unwrap(), None, "nothing written");

    // Once released, another model can take it.
    store.set_alias("m1", Some("other")).unwrap();
    store.set_alias("m2", Some("chat")).unwrap();
    assert_eq!(store.resolve_alias("chat").unwrap().as_deref(), Some("m2"));
}

#[test]
fn bad_aliases_and_arguments_are_rejected_with_a_reason() {
    let store = Store::open_in_memory().unwrap();
    let long = "x".repeat(ALIAS_MAX_CHARS + 1);
    let cases = [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        (" padded", "must not start or end with whitespace"),
        (long.as_str(), "at most 128 characters"),
        ("/models/x.gguf", "must not start with '/'"),
        ("line\u{7}bell", "control characters"),
    ];
    for (alias, reason) in cases {
        match store.set_alias("m", Some(alias)) {
            Err(StoreError::Invalid(msg)) => assert!(msg.contains(reason), "{alias:?}: {msg}"),
            other => panic!("{alias:?}: {other:?}"),
        }
    }
    store
        .set_alias("m", Some(&"é".repeat(ALIAS_MAX_CHARS)))
        .unwrap();
    store.set_alias("m", Some("org/model:q4")).unwrap();

    assert!(matches!(
        store.set_favorite("", true),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.set_capabilities("m", Some(&["".to_owned()])),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.set_chat_template("m", Some(" ")),
        Err(StoreError::Invalid(_))
    ));
}

#[test]
fn hand_edited_json_is_reported_not_panicked_on() {
    let store = Store::open_in_memory().unwrap();
    store.set_favorite("m", true).unwrap();
    store
        .lock()
        .execute(
            "UPDATE model_settings SET capabilities = '{\"not\": \"a list\"}'",
            [],
        )
        .unwrap();
    let err = store.model_settings("m").unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                column: "capabilities",
                ..
            }
        ),
        "{err:?}"
    );
    // The CHECK constraint keeps non-JSON out entirely.
    assert!(
        store
            .lock()
            .execute("UPDATE model_settings SET launch_params = 'nope'", [])
            .is_err()
    );
}

// ---- bench runs ----

#[test]
fn bench_runs_round_trip_newest_first() {
    let store = Store::open_in_memory().unwrap();
    let a = store
        .insert_bench_run("m1", &json!({"pp": 512}), &json!({"tps": 10.5}))
        .unwrap();
    let b = store
        .insert_bench_run("m2", &json!({}), &json!([1, 2]))
        .unwrap();
    let c = store
        .insert_bench_run("m1", &json!({"pp": 1024}), &json!({"tps": 9.0}))
        .unwrap();
    let all: Vec<i64> = store
        .bench_runs(None)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(all, [c, b, a]);
    let m1 = store.bench_runs(Some("m1")).unwrap();
    assert_eq!(m1.len(), 2);
    assert_eq!(m1[1].params, json!({"pp": 512}));
    assert_eq!(m1[1].results, json!({"tps": 10.5}));
    assert_eq!(m1[1].model_id, "m1");

    assert!(store.delete_bench_run(b).unwrap());
    assert!(!store.delete_bench_run(b).unwrap(), "already gone");
    assert_eq!(store.bench_runs(None).unwrap().len(), 2);
}

// ---- concurrency ----

#[test]
fn one_store_shared_by_many_threads() {
    let store = Arc::new(Store::open_in_memory().unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..25 {
                    let id = format!("t{t}-m{i}");
                    store.set_favorite(&id, i % 2 == 0).unwrap();
                    store.set_alias(&id, Some(&format!("a{t}-{i}"))).unwrap();
                    // Everyone fights over one alias; exactly one model ends up with it.
                    match store.set_alias(&id, Some("contested")) {
                        Ok(()) | Err(StoreError::AliasTaken { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                    assert!(store.model_settings(&id).unwrap().is_some());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let all = store.all_model_settings().unwrap();
    assert_eq!(all.len(), 8 * 25);
    let holders = all
        .iter()
        .filter(|s| s.alias.as_deref() == Some("contested"))
        .count();
    assert_eq!(holders, 1);
}

#[test]
fn several_connections_to_one_new_file_like_several_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("dashboard.db");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                // Every thread opens (and so migrates) the same new database at once.
                let store = Store::open(&path).unwrap();
                for i in 0..20 {
                    store.set_favorite(&format!("p{t}-{i}"), true).unwrap();
                    store.all_model_settings().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let store = Store::open(Path::new(&path)).unwrap();
    assert_eq!(store.all_model_settings().unwrap().len(), 4 * 20);
}

#[test]
fn deployments_round_trip_and_remember_whether_they_run() {
    let store = Store::open_in_memory().unwrap();
    assert!(store.deployments().unwrap().is_empty());
    let mut d = crate::StoredDeployment {
        id: "web".into(),
        model_id: "org/repo/model".into(),
        params: params(json!({"ctx_size": 1024})),
        port: Some(0),
        running: true,
        restarts: 0,
        created_at: 10,
    };
    store.put_deployment(&d).unwrap();
    let other = crate::StoredDeployment {
        id: "api".into(),
        port: None,
        created_at: 20,
        ..d.clone()
    };
    store.put_deployment(&other).unwrap();
    assert_eq!(store.deployments().unwrap(), vec![d.clone(), other.clone()]);

    // A start under the same name replaces it.
    d.params = params(json!({"parallel": 2}));
    d.port = Some(8123);
    store.put_deployment(&d).unwrap();
    assert_eq!(store.deployment("web").unwrap(), Some(d.clone()));

    assert!(store.set_deployment_running("web", false, 3).unwrap());
    let got = store.deployment("web").unwrap().unwrap();
    assert!(!got.running);
    assert_eq!(got.restarts, 3);
    assert!(!store.set_deployment_running("nope", true, 0).unwrap());

    assert!(store.delete_deployment("web").unwrap());
    assert!(!store.delete_deployment("web").unwrap());
    assert_eq!(store.deployments().unwrap(), vec![other]);

    let bad = crate::StoredDeployment {
        id: String::new(),
        ..d
    };
    assert!(matches!(
        store.put_deployment(&bad),
        Err(StoreError::Invalid(_))
    ));
}

#[test]
fn downloads_round_trip_with_their_state() {
    let store = Store::open_in_memory().unwrap();
    assert!(store.downloads().unwrap().is_empty());
    let d = crate::StoredDownload {
        id: 7,
        label: "org/repo:Q4_K_M".into(),
        spec: json!({"files": [{"url": "https://hub/x"}]}),
        state: "downloading".into(),
        reason: None,
        created_at: 10,
    };
    store.put_download(&d).unwrap();
    let other = crate::StoredDownload {
        id: 3,
        label: "llama3.2:1b".into(),
        ..d.clone()
    };
    store.put_download(&other).unwrap();
    assert_eq!(store.downloads().unwrap(), vec![other.clone(), d.clone()]);
    assert_eq!(store.next_download_id().unwrap(), 8);
    // A recorded id is never taken over by another task.
    assert!(
        store
            .put_download(&crate::StoredDownload {
                label: "another".into(),
                ..d.clone()
            })
            .is_err()
    );
    assert_eq!(store.downloads().unwrap()[1].label, d.label);

    assert!(
        store
            .set_download_state(7, "failed", Some("checksum mismatch"))
            .unwrap()
    );
    let got = &store.downloads().unwrap()[1];
    assert_eq!(
        (got.state.as_str(), got.reason.as_deref()),
        ("failed", Some("checksum mismatch"))
    );
    assert!(!store.set_download_state(99, "paused", None).unwrap());
    assert!(matches!(
        store.set_download_state(7, "exploded", None),
        Err(StoreError::Invalid(_))
    ));

    assert!(store.delete_download(3).unwrap());
    assert!(!store.delete_download(3).unwrap());
    assert_eq!(store.downloads().unwrap().len(), 1);
}
