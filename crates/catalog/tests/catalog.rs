//! The catalog over real folder layouts built from synthetic GGUF files.

use catalog::{Root, Source, discover, scan_root};
use gguf::fixtures::LlamaLike;
use std::fs;
use std::path::{Path, PathBuf};

/// A complete model file (tensor data included: a header-only file is an incomplete one).
fn model(path: &Path, name: &str, file_type: u32, ctx: u64) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut m = LlamaLike::new(name, "llama", file_type, ctx, 500);
    m.n_embd = 32;
    m.n_ff = 64;
    m.with_tensor_data = true;
    m.write_path(path).unwrap();
}

/// `path` cut to `keep` of its bytes, as an interrupted download leaves it.
fn cut(path: &Path, keep: u64) -> u64 {
    let whole = fs::metadata(path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(keep)
        .unwrap();
    whole
}

fn projector(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = gguf::writer::GgufWriter::new();
    w.kv("general.architecture", "clip");
    w.kv("general.name", "projector");
    w.write_path(path).unwrap();
}

fn folder_scan(root: &Path) -> catalog::ScanReport {
    scan_root(&Root::new(Source::Folder, root))
}

#[test]
fn lists_models_recursively_with_header_facts() {
    let dir = tempfile::tempdir().unwrap();
    model(
        &dir.path().join("a/Llama-3-8B-Q4_K_M.gguf"),
        "Llama 3 8B",
        15,
        8192,
    );
    model(&dir.path().join("b/c/qwen-Q8_0.GGUF"), "Qwen", 7, 32768);
    let report = folder_scan(dir.path());
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.models.len(), 2);
    let m = report.find("Llama-3-8B-Q4_K_M").unwrap();
    assert_eq!(m.architecture.as_deref(), Some("llama"));
    assert_eq!(m.quantization.as_deref(), Some("Q4_K_M"));
    assert_eq!(m.context_length, Some(8192));
    assert_eq!(m.name.as_deref(), Some("Llama 3 8B"));
    assert_eq!(m.size, fs::metadata(&m.path).unwrap().len());
    assert_eq!(m.source, Source::Folder);
    let q = report.find("qwen-Q8_0").unwrap();
    assert_eq!(q.quantization.as_deref(), Some("Q8_0"));
    // Lookup by path works too.
    assert_eq!(
        report.find(q.path.to_str().unwrap()).unwrap().id,
        "qwen-Q8_0"
    );
}

#[test]
fn groups_split_parts_and_reports_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    for i in 1..=3 {
        model(
            &dir.path()
                .join(format!("big/Big-Q4_0-0000{i}-of-00003.gguf")),
            "Big",
            2,
            4096,
        );
    }
    model(
        &dir.path().join("gappy/Gap-00001-of-00003.gguf"),
        "Gap",
        2,
        4096,
    );
    model(
        &dir.path().join("gappy/Gap-00003-of-00003.gguf"),
        "Gap",
        2,
        4096,
    );
    model(
        &dir.path().join("headless/H-00002-of-00002.gguf"),
        "H",
        2,
        4096,
    );
    let report = folder_scan(dir.path());

    let big = report.find("Big-Q4_0").unwrap();
    assert_eq!(big.split_count, 3);
    assert_eq!(big.parts.len(), 3);
    assert!(big.is_complete());
    assert!(big.path.ends_with("Big-Q4_0-00001-of-00003.gguf"));
    let total: u64 = big
        .parts
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(big.size, total);

    let gap = report.find("Gap").unwrap();
    assert_eq!(gap.missing_parts, vec![2]);
    assert_eq!(
        gap.quantization.as_deref(),
        Some("Q4_0"),
        "first part is there, so its header is read"
    );

    let headless = report.find("H").unwrap();
    assert_eq!(headless.missing_parts, vec![1]);
    assert_eq!(
        headless.architecture, None,
        "no first part, no header to read"
    );
    assert_eq!(report.models.len(), 3);
}

#[test]
fn a_file_root_is_that_one_model_with_its_split_parts() {
    let dir = tempfile::tempdir().unwrap();
    model(&dir.path().join("solo-Q4_0.gguf"), "Solo", 2, 2048);
    model(&dir.path().join("other.gguf"), "Other", 2, 2048);
    projector(&dir.path().join("mmproj-f16.gguf"));
    for i in 1..=2 {
        model(
            &dir.path().join(format!("big-{i:05}-of-00002.gguf")),
            "Big",
            2,
            2048,
        );
    }
    // llama-server's `-m FILE`: the id is the file's stem, never empty; the folder's other
    // models are not listed, nor is a projector attached (llama-server wants --mmproj).
    let report = folder_scan(&dir.path().join("solo-Q4_0.gguf"));
    assert_eq!(report.models.len(), 1, "{:?}", report.models);
    let m = &report.models[0];
    assert_eq!(m.id, "solo-Q4_0");
    assert_eq!(m.mmproj, None);
    assert_eq!(m.name.as_deref(), Some("Solo"));
    // A split model's first part brings its other parts.
    let report = folder_scan(&dir.path().join("big-00001-of-00002.gguf"));
    assert_eq!(report.models.len(), 1);
    assert_eq!(report.models[0].id, "big");
    assert_eq!(report.models[0].parts.len(), 2);
    assert!(report.models[0].is_complete());
    // A relative file name (no folder part) works too.
    let report = std::env::set_current_dir(dir.path())
        .map(|()| folder_scan(Path::new("other.gguf")))
        .unwrap();
    assert_eq!(report.models[0].id, "other");
}

#[test]
fn attaches_projectors_to_models_in_the_same_folder() {
    let dir = tempfile::tempdir().unwrap();
    model(
        &dir.path().join("vlm/gemma-3-4b-it-Q4_K_M.gguf"),
        "Gemma 3 4B",
        15,
        8192,
    );
    model(
        &dir.path().join("vlm/gemma-3-4b-it-Q8_0.gguf"),
        "Gemma 3 4B",
        7,
        8192,
    );
    projector(&dir.path().join("vlm/mmproj-model-f16.gguf"));
    projector(&dir.path().join("lonely/mmproj-x.gguf"));
    // A projector whose name does not say so is recognised by its architecture.
    model(&dir.path().join("other/model.gguf"), "M", 2, 2048);
    projector(&dir.path().join("other/vision-tower.gguf"));
    let report = folder_scan(dir.path());
    assert_eq!(report.models.len(), 3, "{:#?}", report.models);
    for id in ["gemma-3-4b-it-Q4_K_M", "gemma-3-4b-it-Q8_0"] {
        let m = report.find(id).unwrap();
        assert!(
            m.mmproj
                .as_ref()
                .unwrap()
                .ends_with("vlm/mmproj-model-f16.gguf")
        );
    }
    assert!(
        report
            .find("model")
            .unwrap()
            .mmproj
            .as_ref()
            .unwrap()
            .ends_with("other/vision-tower.gguf")
    );
    assert!(report.find("mmproj-model-f16").is_none());
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.path.ends_with("lonely/mmproj-x.gguf") && s.reason.contains("no model"))
    );
}

#[test]
fn skips_broken_and_foreign_files_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    model(&d.join("good.gguf"), "Good", 2, 2048);
    fs::write(d.join("notes.gguf"), b"this is not a model").unwrap();
    let mut truncated = gguf::fixtures::llama_like("T", "llama", 2, 2048, 500);
    truncated.truncate(40);
    fs::write(d.join("truncated.gguf"), truncated).unwrap();
    fs::write(d.join("weights.safetensors"), vec![0u8; 2 << 20]).unwrap();
    fs::write(d.join("model.gguf.part"), b"GGUF").unwrap();
    fs::write(d.join("README.md"), b"# hi").unwrap();
    fs::write(d.join("tokenizer.bin"), b"tiny").unwrap(); // small: config, not weights
    let report = folder_scan(d);
    assert_eq!(report.models.len(), 1);
    let reason = |name: &str| {
        report
            .skipped
            .iter()
            .find(|s| s.path.ends_with(name))
            .map(|s| s.reason.clone())
    };
    assert!(
        reason("notes.gguf")
            .unwrap()
            .to_lowercase()
            .contains("magic"),
        "{:?}",
        reason("notes.gguf")
    );
    assert!(
        reason("truncated.gguf").unwrap().contains("truncated"),
        "{:?}",
        reason("truncated.gguf")
    );
    assert!(
        reason("weights.safetensors")
            .unwrap()
            .contains("not a GGUF file")
    );
    assert_eq!(
        reason("model.gguf.part").as_deref(),
        Some("incomplete download")
    );
    assert_eq!(reason("README.md"), None);
    assert_eq!(reason("tokenizer.bin"), None);
}

#[cfg(unix)]
#[test]
fn survives_symlink_loops_and_follows_symlinked_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    model(&d.join("real/m.gguf"), "M", 2, 2048);
    std::os::unix::fs::symlink(d.join("real/m.gguf"), d.join("link.gguf")).unwrap();
    std::os::unix::fs::symlink(d, d.join("real/loop")).unwrap();
    let report = folder_scan(d);
    assert!(
        report.skipped.iter().any(|s| s.reason == "symlink loop"),
        "{:?}",
        report.skipped
    );
    assert!(report.find("link").is_some());
    assert!(report.find("m").is_some());
}

#[test]
fn ids_are_unique_and_stable_across_folders() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    model(&a.path().join("x/same.gguf"), "A", 2, 2048);
    model(&b.path().join("y/same.gguf"), "B", 2, 2048);
    let roots = [
        Root::new(Source::Folder, a.path()),
        Root::new(Source::Folder, b.path()),
    ];
    let first = discover(&roots);
    let ids: Vec<&str> = first.models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, vec!["same", "y/same"]);
    assert_eq!(first.find("same").unwrap().name.as_deref(), Some("A"));
    assert_eq!(discover(&roots), first, "same files, same ids");
}

#[test]
fn missing_configured_folder_is_reported_but_missing_stores_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("gone");
    let report = discover(&[
        Root::new(Source::Folder, &gone),
        Root::new(Source::Ollama, &gone),
    ]);
    assert_eq!(report.skipped.len(), 1);
    assert!(report.skipped[0].reason.contains("does not exist"));
}

#[test]
fn files_cut_short_are_listed_as_incomplete_with_both_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let whole_file = dir.path().join("whole.gguf");
    model(&whole_file, "Whole", 2, 2048);
    let cut_file = dir.path().join("cut.gguf");
    model(&cut_file, "Cut", 2, 2048);
    let header = gguf::scan_path(&cut_file).unwrap().data_offset;
    // Cut right after the header: the header reads fine, the weights are missing.
    let expected = cut(&cut_file, header);
    for i in 1..=2 {
        model(
            &dir.path().join(format!("split-{i:05}-of-00002.gguf")),
            "Split",
            2,
            2048,
        );
    }
    let part2 = dir.path().join("split-00002-of-00002.gguf");
    let part2_size = cut(&part2, fs::metadata(&part2).unwrap().len() - 1);

    let report = folder_scan(dir.path());
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    let whole = report.find("whole").unwrap();
    assert!(whole.is_complete());
    assert_eq!(whole.incomplete, None);
    assert_eq!(whole.problem(), None);

    let m = report.find("cut").unwrap();
    assert!(!m.is_complete());
    let i = m.incomplete.as_ref().unwrap();
    assert_eq!((i.expected_size, i.actual_size), (expected, header));
    assert_eq!(i.path, cut_file);
    let problem = m.problem().unwrap();
    assert!(problem.contains("incomplete"), "{problem}");
    assert!(problem.contains(&expected.to_string()), "{problem}");
    assert_eq!(
        m.architecture.as_deref(),
        Some("llama"),
        "the header is still read"
    );

    // A split model with a short second part: the part is named.
    let s = report.find("split").unwrap();
    assert!(s.missing_parts.is_empty());
    let i = s.incomplete.as_ref().unwrap();
    assert_eq!(i.path, part2);
    assert_eq!(
        (i.expected_size, i.actual_size),
        (part2_size, part2_size - 1)
    );
    // JSON (the models API and `models list --json`) carries it too.
    let json = serde_json::to_value(m).unwrap();
    assert_eq!(json["incomplete"]["expected_size"], expected);
    assert_eq!(json["incomplete"]["actual_size"], header);
}

fn ollama_manifest(models: &Path, name: &[&str; 4], layers: &[(&str, &str)]) {
    let p: PathBuf = name.iter().fold(models.join("manifests"), |p, s| p.join(s));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    let layers: Vec<_> = layers
        .iter()
        .map(|(t, d)| serde_json::json!({"mediaType": t, "digest": d, "size": 1}))
        .collect();
    let m = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:00", "size": 1},
        "layers": layers});
    fs::write(p, serde_json::to_vec(&m).unwrap()).unwrap();
}

#[test]
fn reads_ollama_store_through_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path();
    fs::create_dir_all(models.join("blobs")).unwrap();
    model(&models.join("blobs/sha256-aaaa"), "Llama 3.2", 15, 131072);
    projector(&models.join("blobs/sha256-bbbb"));
    fs::write(
        models.join("blobs/sha256-cccc"),
        "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}",
    )
    .unwrap();
    fs::write(models.join("blobs/sha256-dddd"), "You are terse.").unwrap();
    fs::write(
        models.join("blobs/sha256-eeee"),
        r#"{"stop": ["<|im_end|>"], "temperature": 0.5, "num_ctx": 4096}"#,
    )
    .unwrap();
    ollama_manifest(
        models,
        &["registry.ollama.ai", "library", "llama3.2", "latest"],
        &[
            ("application/vnd.ollama.image.model", "sha256:aaaa"),
            ("application/vnd.ollama.image.projector", "sha256:bbbb"),
            ("application/vnd.ollama.image.template", "sha256:cccc"),
            ("application/vnd.ollama.image.system", "sha256:dddd"),
            ("application/vnd.ollama.image.params", "sha256:eeee"),
        ],
    );
    ollama_manifest(
        models,
        &["registry.ollama.ai", "someone", "tuned", "q4"],
        &[("application/vnd.ollama.image.model", "sha256:aaaa")],
    );
    ollama_manifest(
        models,
        &["registry.ollama.ai", "library", "ghost", "latest"],
        &[("application/vnd.ollama.image.model", "sha256:dead")],
    );
    let broken = models.join("manifests/registry.ollama.ai/library/broken/latest");
    fs::create_dir_all(broken.parent().unwrap()).unwrap();
    fs::write(&broken, b"{not json").unwrap();

    let report = scan_root(&Root::new(Source::Ollama, models));
    let ids: Vec<&str> = report.models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, vec!["llama3.2:latest", "someone/tuned:q4"]);
    let m = report.find("llama3.2:latest").unwrap();
    assert_eq!(m.source, Source::Ollama);
    assert_eq!(m.quantization.as_deref(), Some("Q4_K_M"));
    assert_eq!(m.context_length, Some(131072));
    assert!(m.mmproj.as_ref().unwrap().ends_with("sha256-bbbb"));
    let o = m.ollama.as_ref().unwrap();
    assert!(o.manifest.ends_with("library/llama3.2/latest"));
    assert!(
        o.template
            .as_deref()
            .unwrap()
            .starts_with("{{ if .System }}<|im_start|>")
    );
    assert_eq!(o.system.as_deref(), Some("You are terse."));
    assert_eq!(o.params["num_ctx"], 4096);
    assert_eq!(o.params["stop"][0], "<|im_end|>");
    let tuned = report
        .find("someone/tuned:q4")
        .unwrap()
        .ollama
        .as_ref()
        .unwrap();
    assert_eq!((&tuned.template, &tuned.system), (&None, &None));
    assert!(tuned.params.is_empty());
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.reason.contains("missing blob"))
    );
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.path == broken && s.reason.contains("not an Ollama manifest"))
    );

    // What removing llama3.2 may delete: the blobs no other manifest names. An unreadable
    // manifest might name any blob, so nothing is offered while it is there.
    let e = catalog::ollama::blobs_only_in(models, &o.manifest).unwrap_err();
    assert!(e.contains("not deleting shared blobs"), "{e}");
    fs::remove_file(&broken).unwrap();
    let only = catalog::ollama::blobs_only_in(models, &o.manifest).unwrap();
    let names: Vec<String> = only
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    // `aaaa` (the weights) and the config `00` are shared with someone/tuned.
    assert_eq!(
        names,
        ["sha256-bbbb", "sha256-cccc", "sha256-dddd", "sha256-eeee"]
    );
}

#[test]
fn an_ollama_blob_cut_short_is_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path();
    let blob = models.join("blobs/sha256-aaaa");
    model(&blob, "M", 15, 4096);
    let header = gguf::scan_path(&blob).unwrap().data_offset;
    let whole = cut(&blob, header + 10);
    ollama_manifest(
        models,
        &["registry.ollama.ai", "library", "m", "latest"],
        &[("application/vnd.ollama.image.model", "sha256:aaaa")],
    );
    let report = scan_root(&Root::new(Source::Ollama, models));
    let i = report.find("m:latest").unwrap().incomplete.clone().unwrap();
    assert_eq!((i.expected_size, i.actual_size), (whole, header + 10));
}

#[cfg(unix)]
#[test]
fn reads_hugging_face_cache_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path();
    let repo = hub.join("models--bartowski--Llama-3.2-1B-Instruct-GGUF");
    fs::create_dir_all(repo.join("refs")).unwrap();
    fs::write(repo.join("refs/main"), "bbbb\n").unwrap();
    model(&repo.join("blobs/etag1"), "old", 15, 8192);
    model(&repo.join("blobs/etag2"), "new", 15, 8192);
    fs::write(repo.join("blobs/etag3.incomplete"), b"GGUF").unwrap();
    for (rev, blob) in [("aaaa", "etag1"), ("bbbb", "etag2")] {
        let snap = repo.join("snapshots").join(rev);
        fs::create_dir_all(&snap).unwrap();
        std::os::unix::fs::symlink(
            format!("../../blobs/{blob}"),
            snap.join("Llama-3.2-1B-Instruct-Q4_K_M.gguf"),
        )
        .unwrap();
    }
    fs::create_dir_all(hub.join("datasets--x--y")).unwrap();
    let report = scan_root(&Root::new(Source::HuggingFace, hub));
    assert_eq!(report.models.len(), 1, "{:#?}", report);
    let m = &report.models[0];
    assert_eq!(
        m.id,
        "bartowski/Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q4_K_M"
    );
    assert_eq!(
        m.repo.as_deref(),
        Some("bartowski/Llama-3.2-1B-Instruct-GGUF")
    );
    assert_eq!(
        m.name.as_deref(),
        Some("new"),
        "the snapshot refs/main names wins"
    );
    assert_eq!(m.source, Source::HuggingFace);
}

#[test]
fn lm_studio_ids_are_publisher_repo_file() {
    let dir = tempfile::tempdir().unwrap();
    model(
        &dir.path()
            .join("lmstudio-community/Qwen3-8B-GGUF/Qwen3-8B-Q4_K_M.gguf"),
        "Qwen3",
        15,
        32768,
    );
    let report = scan_root(&Root::new(Source::LmStudio, dir.path()));
    let m = &report.models[0];
    assert_eq!(m.id, "lmstudio-community/Qwen3-8B-GGUF/Qwen3-8B-Q4_K_M");
    assert_eq!(m.repo.as_deref(), Some("lmstudio-community/Qwen3-8B-GGUF"));
}

#[test]
fn scans_the_real_test_models() {
    let (Some(smol), Some(gemma)) = (testkit::smollm2(), testkit::gemma3()) else {
        return;
    };
    let paths = [smol, gemma];
    let dir = tempfile::tempdir().unwrap();
    for p in &paths {
        std::os::unix::fs::symlink(p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let report = folder_scan(dir.path());
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    let smol = report.find("SmolLM2-135M-Instruct.Q4_1").unwrap();
    assert_eq!(
        (smol.architecture.as_deref(), smol.quantization.as_deref()),
        (Some("llama"), Some("Q4_1"))
    );
    let gemma = report.find("gemma-3-270m-q4_k_m").unwrap();
    assert_eq!(gemma.architecture.as_deref(), Some("gemma3"));
    assert_eq!(
        gemma.quantization.as_deref(),
        Some("Q4_K_M"),
        "file_type sits after the tokenizer in this file"
    );
    assert_eq!(gemma.context_length, Some(32768));
    assert_eq!(gemma.size, 253_113_024);
}
