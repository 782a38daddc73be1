//! Models from an Ollama store chat as Ollama would prompt them: the GGUF's own template
//! when it has one, else the family the manifest's Go template spells; the system layer as
//! the default system prompt; the params layer as the model's sampling defaults.

use super::*;

/// Ollama's ChatML template, as its library ships it for ChatML models (a Go template).
const CHATML_GO: &str = "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}\
{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n";

/// An Ollama store holding `gguf` as `gemmaml:latest` with a ChatML template layer, a system
/// layer and a params layer.
fn ollama_store(root: &Path, gguf: &Path) {
    let blobs = root.join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    // The weights are linked, not copied; the catalog does not hash blobs.
    std::os::unix::fs::symlink(gguf, blobs.join("sha256-00aa")).unwrap();
    std::fs::write(blobs.join("sha256-00bb"), CHATML_GO).unwrap();
    std::fs::write(blobs.join("sha256-00cc"), "You answer in French.").unwrap();
    std::fs::write(
        blobs.join("sha256-00dd"),
        r#"{"stop": ["<|im_end|>"], "temperature": 0.25, "top_k": 7}"#,
    )
    .unwrap();
    std::fs::write(blobs.join("sha256-00ee"), "{}").unwrap();
    let layer = |kind: &str, hex: &str| {
        json!({"mediaType": format!("application/vnd.ollama.image.{kind}"),
            "digest": format!("sha256:{hex}"), "size": 1})
    };
    let manifest = json!({"schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": "sha256:00ee", "size": 2},
        "layers": [layer("model", "00aa"), layer("template", "00bb"),
            layer("system", "00cc"), layer("params", "00dd")]});
    let path = root.join("manifests/registry.ollama.ai/library/gemmaml/latest");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, manifest.to_string()).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ollama_model_without_a_gguf_template_chats_with_its_template_layer() {
    let Some(gemma) = testkit::gemma3() else {
        return;
    };
    let store = tempfile::tempdir().unwrap();
    ollama_store(store.path(), &gemma);
    let dir = store.path().to_path_buf();
    let opts = Opts {
        gemma: true,
        ..Default::default()
    }
    .tweak(move |c| {
        c.sources.ollama = true;
        c.sources.ollama_dir = Some(dir.clone());
    });
    let Some(s) = TestServer::start(opts).await else {
        return;
    };
    let prompt = |model: &str, messages: Value| {
        let body = json!({"model": model, "messages": messages});
        let s = &s;
        async move {
            let (status, body) = s.post("/apply-template", &body).await;
            assert_eq!(status, 200, "{body}");
            body["prompt"].as_str().unwrap().to_owned()
        }
    };
    let hi = json!([{"role": "user", "content": "hi"}]);

    // The same GGUF (no tokenizer.chat_template) from a folder speaks Gemma's format...
    let folder = prompt(GEMMA, hi.clone()).await;
    assert!(folder.contains("<start_of_turn>user"), "{folder}");
    // ...and from the Ollama store, the ChatML its template layer spells, with the system
    // layer as the system prompt.
    let ollama = prompt("gemmaml:latest", hi.clone()).await;
    assert_eq!(
        ollama,
        "<|im_start|>system\nYou answer in French.<|im_end|>\n\
         <|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    );
    // A conversation's own system message replaces the default one.
    let own = prompt(
        "gemmaml:latest",
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]),
    )
    .await;
    assert!(
        own.starts_with("<|im_start|>system\nBe brief.<|im_end|>"),
        "{own}"
    );
    assert!(!own.contains("French"), "{own}");
    let (status, props) = s.get("/props?model=gemmaml:latest").await;
    assert_eq!(status, 200, "{props}");
    assert_eq!(props["chat_template_origin"], "builtin:chatml", "{props}");

    // The params layer: the model's sampling defaults where the request sets none.
    let settings = |model: &str, extra: Value| {
        let mut body = json!({"model": model, "prompt": "Hello", "n_predict": 1});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let s = &s;
        async move {
            let (status, body) = s.post("/completion", &body).await;
            assert_eq!(status, 200, "{body}");
            body["generation_settings"].clone()
        }
    };
    let g = settings("gemmaml:latest", json!({})).await;
    assert!(
        (g["temperature"].as_f64().unwrap() - 0.25).abs() < 1e-6,
        "{g}"
    );
    assert_eq!(g["top_k"], 7, "{g}");
    let g = settings("gemmaml:latest", json!({"temperature": 1.5, "top_k": 3})).await;
    assert!(
        (g["temperature"].as_f64().unwrap() - 1.5).abs() < 1e-6,
        "{g}"
    );
    assert_eq!(g["top_k"], 3, "the request's own values win: {g}");
    let g = settings(GEMMA, json!({})).await;
    assert_ne!(
        g["top_k"], 7,
        "a folder model keeps the server's defaults: {g}"
    );
}
